"""Signals of spheres around seeds (in mm), as one chunked reduction.

The voxels of a sphere are nilearn's (``NiftiSpheresMasker``): the candidate
voxels within ``radius`` mm of the seed (distance <= radius), plus the voxel
nearest to the seed (rounded voxel coordinates) and the first candidate
whose world coordinates, truncated to integers, equal the truncated seed;
``radius=None`` keeps only those. Candidates are the voxels of the signals
(of the mask when one is given). The mean of each sphere is then the same
sparse reduction as for labels, with a ``(voxel, sphere)`` matrix that may
have several spheres per voxel when ``allow_overlap``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from scipy import sparse

from brainxr._views import view
from brainxr.dims import TIME_DIM, VOXEL_DIM
from brainxr.geometry import Grid as _Grid
from brainxr.regions._reductions import project_onto_regions
from brainxr.regions._signals import (
    grid_of_signals,
    is_masked,
    masked_signals,
    region_signals,
    values_per_region,
    voxel_index,
)
from brainxr.regions.labels import _divide, _mask_on_grid


def check_seeds(seeds) -> np.ndarray:
    """``(n_seeds, 3)`` float array of seed coordinates, or a ValueError naming the bad seed."""
    error = "seeds: expected a list of (x, y, z) triplets of coordinates in mm"
    if seeds is None or not hasattr(seeds, "__iter__") or isinstance(seeds, str):
        raise ValueError(f"{error}, got {type(seeds).__name__}")
    checked = []
    for position, seed in enumerate(seeds):
        if not hasattr(seed, "__len__"):
            raise ValueError(f"{error}; seed #{position} is not a triplet: {seed!r} ({type(seed).__name__})")
        if len(seed) != 3:
            raise ValueError(f"{error}; seed #{position} has {len(seed)} values instead of 3: {list(seed)!r}")
        checked.append([float(value) for value in seed])
    if not checked:
        raise ValueError(f"{error}, got an empty list")
    values = np.asarray(checked, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        bad = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
        raise ValueError(f"{error}; seed #{bad} is not finite: {checked[bad]}")
    return values


def sphere_adjacency(seeds, radius, candidate_ijk: np.ndarray, affine, allow_overlap: bool = False, where: str = "the data") -> sparse.csr_matrix:
    """``(seed, candidate voxel)`` boolean matrix of the voxels of each sphere.

    Parameters
    ----------
    seeds : ``(n_seeds, 3)`` coordinates in mm
    radius : float or None
        Sphere radius in mm; None keeps the seed's voxel only.
    candidate_ijk : ``(n_voxels, 3)`` int
        Grid indices of the candidate voxels.
    affine : (4, 4) array
    allow_overlap : bool
        Otherwise a ValueError names the overlapping seeds.
    where : str
        What the candidates are, for error messages.

    Raises
    ------
    ValueError
        If a sphere holds no candidate voxel (naming the seed), or if spheres
        overlap without ``allow_overlap``.
    """
    from scipy.spatial import cKDTree  # imported here: not a labels or maps script's start-up

    seeds = check_seeds(seeds)
    if radius is not None and (not np.isscalar(radius) or not radius >= 0):
        raise ValueError(f"radius must be a non-negative number of mm or None, got {radius!r}")
    affine = np.asarray(affine, dtype=np.float64)
    candidate_ijk = np.asarray(candidate_ijk, dtype=np.intp)
    world = candidate_ijk @ affine[:3, :3].T + affine[:3, 3]
    # position of each candidate by grid index, for the seed's nearest voxel
    grid_lookup = _grid_lookup(candidate_ijk)
    truncated_world = world.astype(int)
    inverse = np.linalg.inv(affine)
    tree = cKDTree(world) if radius is not None and len(world) else None
    rows, cols = [], []
    for position, seed in enumerate(seeds):
        members = set()
        if tree is not None:
            near = np.asarray(tree.query_ball_point(seed, r=radius * (1 + 1e-9) + 1e-9), dtype=np.intp)
            if near.size:
                difference = world[near] - seed
                squared = difference[:, 0] * difference[:, 0] + difference[:, 1] * difference[:, 1] + difference[:, 2] * difference[:, 2]
                members.update(near[squared <= radius * radius].tolist())
        nearest = np.round(inverse[:3, :3] @ seed + inverse[:3, 3]).astype(int)
        nearest_position = grid_lookup(nearest)
        if nearest_position is not None:
            members.add(nearest_position)
        matches = np.flatnonzero((truncated_world == np.asarray([int(v) for v in seed])).all(axis=1))
        if matches.size:
            members.add(int(matches[0]))
        rows.extend([position] * len(members))
        cols.extend(sorted(members))
    adjacency = sparse.csr_matrix(
        (np.ones(len(rows), dtype=bool), (rows, cols)), shape=(len(seeds), len(candidate_ijk)), dtype=bool
    )
    sizes = np.asarray(adjacency.sum(axis=1)).ravel()
    empty = np.flatnonzero(sizes == 0)
    if empty.size:
        described = ", ".join(f"#{index} at {seeds[index].tolist()}" for index in empty)
        raise ValueError(
            f"seeds: the sphere{'s' if empty.size > 1 else ''} of seed {described} "
            f"(radius {radius} mm) hold{'' if empty.size > 1 else 's'} no voxel of {where}; "
            "is the seed outside the brain or the image?"
        )
    if not allow_overlap:
        shared = np.asarray(adjacency.sum(axis=0)).ravel() >= 2
        if shared.any():
            overlapping = np.flatnonzero(np.asarray(adjacency[:, np.flatnonzero(shared)].sum(axis=1)).ravel())
            raise ValueError(
                f"seeds: overlap detected between the spheres of seeds {overlapping.tolist()} "
                f"(radius {radius} mm); pass allow_overlap=True or a smaller radius"
            )
    return adjacency


def voxels_near_seeds(seeds, radius, shape, affine) -> np.ndarray:
    """``(n, 3)`` grid indices, in C order, of the voxels of a grid that may belong to a seed's sphere.

    A sphere's voxels (see :func:`sphere_adjacency`) lie within ``radius``
    mm of the seed, or are its nearest voxel, or have the seed's truncated
    world coordinates (within 2 mm of it on each axis): a box of
    ``radius + 2`` mm plus one voxel around each seed holds them all, and
    keeps their order. Passing these rather than every voxel of the grid to
    :func:`sphere_adjacency` gives the same spheres, without a search over
    the whole volume.
    """
    seeds = check_seeds(seeds)
    affine = np.asarray(affine, dtype=np.float64)
    reach = (0.0 if radius is None else float(radius)) + 2.0
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64) * reach
    inverse = np.linalg.inv(affine)
    near = np.zeros(tuple(shape), dtype=bool)
    upper = np.asarray(shape) - 1
    for seed in seeds:
        ijk = (seed + corners) @ inverse[:3, :3].T + inverse[:3, 3]
        low = np.clip(np.floor(ijk.min(axis=0)).astype(int) - 1, 0, upper)
        high = np.clip(np.ceil(ijk.max(axis=0)).astype(int) + 1, -1, upper)
        if np.all(high >= low):
            near[low[0] : high[0] + 1, low[1] : high[1] + 1, low[2] : high[2] + 1] = True
    return np.argwhere(near)


def _grid_lookup(candidate_ijk: np.ndarray):
    """A function giving the candidate position of a grid index (or None)."""
    if len(candidate_ijk) == 0:
        return lambda ijk: None
    upper = candidate_ijk.max(axis=0) + 1
    table = np.full(tuple(upper), -1, dtype=np.int64)
    table[tuple(candidate_ijk.T)] = np.arange(len(candidate_ijk))

    def lookup(ijk):
        if np.any(ijk < 0) or np.any(ijk >= upper):
            return None
        found = int(table[tuple(ijk)])
        return None if found < 0 else found

    return lookup


@dataclass(frozen=True)
class Spheres:
    """Spheres around seeds: the regions of seed-based extraction.

    Attributes
    ----------
    seeds : ``(n_seeds, 3)`` coordinates in mm
    radius : float or None
        In mm; None: the seed's voxel only.
    allow_overlap : bool
    names : tuple of str, optional
    """

    seeds: np.ndarray
    radius: float | None = None
    allow_overlap: bool = False
    names: tuple | None = None

    def __post_init__(self):
        object.__setattr__(self, "seeds", check_seeds(self.seeds))
        if self.names is not None:
            if len(self.names) != len(self.seeds):
                raise ValueError(f"names: {len(self.names)} names given for {len(self.seeds)} seeds")
            object.__setattr__(self, "names", tuple(str(name) for name in self.names))

    @property
    def n_regions(self) -> int:
        return len(self.seeds)

    @property
    def regions(self) -> pd.DataFrame:
        names = list(self.names) if self.names is not None else [f"sphere_{index}" for index in range(self.n_regions)]
        return pd.DataFrame(
            {
                "label": np.arange(self.n_regions),
                "name": names,
                "region": names if len(set(names)) == len(names) else [f"{n} ({i})" for i, n in enumerate(names)],
                "x": self.seeds[:, 0],
                "y": self.seeds[:, 1],
                "z": self.seeds[:, 2],
            }
        )

    __repr__ = view("spheres_text")
    _repr_html_ = view("spheres_html")


def extract_spheres(
    signals,
    seeds,
    radius: float | None = None,
    mask=None,
    allow_overlap: bool = False,
    ensure_finite: bool = False,
    names=None,
    min_coverage: float | None = None,
) -> xr.DataArray:
    """Mean signal in a sphere around each seed.

    Parameters
    ----------
    signals : DataArray or volume image
        ``(time, voxel)`` signals (numpy or dask) or a 4D image, masked
        lazily to the spheres' voxels.
    seeds : list of (x, y, z) in mm, or Spheres
    radius : float, optional
        Sphere radius in mm (None: the seed's voxel).
    mask : mask image, optional
        Candidate voxels must be in this mask (resampled with nearest
        neighbour to the grid if needed).
    allow_overlap : bool, default=False
        Allow a voxel in several spheres (otherwise a ValueError naming the
        overlapping seeds).
    ensure_finite : bool, default=False
        False: voxels with non-finite values are left out; True: they count
        as 0 (nilearn).
    names : list of str, optional
        One name per seed (default ``sphere_<index>``).
    min_coverage : float in [0, 1], optional
        Spheres whose fraction of valid voxels is below this get NaN signals.

    Returns
    -------
    xarray.DataArray
        ``(time, region)`` float64, coords ``region``, ``label`` (seed
        index), ``x, y, z`` (the seed) and ``coverage``.

    Raises
    ------
    ValueError
        If a sphere has no voxel (the seed is named), or spheres overlap
        without ``allow_overlap``.
    """
    spheres = seeds if isinstance(seeds, Spheres) else Spheres(seeds, radius, allow_overlap, names)
    grid = grid_of_signals(signals)
    mask_values = _mask_on_grid(mask, grid)
    if is_masked(signals):
        candidate_ijk = np.column_stack(voxel_index(signals["bold"] if isinstance(signals, xr.Dataset) else signals))
        if mask_values is not None:
            candidate_ijk = candidate_ijk[mask_values[tuple(candidate_ijk.T)]]
        where = "the data" + (" within the mask" if mask_values is not None else "")
    else:
        in_grid = mask_values if mask_values is not None else np.ones(grid.shape, dtype=bool)
        candidate_ijk = np.column_stack(np.nonzero(in_grid))
        where = "the mask" if mask_values is not None else "the image"
    adjacency = sphere_adjacency(spheres.seeds, spheres.radius, candidate_ijk, grid.affine, spheres.allow_overlap, where)
    used = np.flatnonzero(np.asarray(adjacency.sum(axis=0)).ravel())
    support = np.zeros(grid.shape, dtype=bool)
    support[tuple(candidate_ijk[used].T)] = True
    masked, valid = masked_signals(signals, support)
    # rows of the weights follow the order of the masked voxels
    column_of = np.full(grid.shape, -1, dtype=np.int64)
    column_of[tuple(candidate_ijk[used].T)] = used
    weights = adjacency[:, column_of[voxel_index(masked)]].T.astype(np.float64).tocsr()
    data = masked.transpose(TIME_DIM, VOXEL_DIM).data
    sums, counts, _ = project_onto_regions(data, weights, ensure_finite=ensure_finite, valid=None if valid is None else valid.data)
    values = _divide(sums, counts)  # float64, as the sums
    sizes = np.asarray(adjacency.sum(axis=1)).ravel()
    coverage = counts / sizes
    if min_coverage is not None:
        import dask.array as dsa

        values = (dsa if hasattr(values, "dask") else np).where(coverage[None, :] >= min_coverage, values, np.nan)
    result = region_signals(values, masked, spheres.regions, coverage, "mean")
    result.attrs["radius"] = spheres.radius if spheres.radius is not None else "none"
    return result


def sphere_support(seeds, radius, shape, affine, mask=None) -> np.ndarray:
    """``(I, J, K)`` bool: the voxels of all the spheres (nilearn's choice of voxels).

    Candidates are all the voxels of the grid, or those of ``mask``.

    Parameters
    ----------
    seeds : list of (x, y, z) or Spheres
        The centres, in mm.
    radius : float
        Radius in mm (ignored for ``Spheres``, which carry theirs).
    shape : tuple of int
        Spatial shape of the grid.
    affine : (4, 4) array-like
        Voxel-to-world matrix of the grid.
    mask : mask image, optional
        Candidate voxels.
    """
    spheres = seeds if isinstance(seeds, Spheres) else Spheres(seeds, radius, allow_overlap=True)
    candidates = np.ones(tuple(shape), dtype=bool) if mask is None else _mask_on_grid(mask, _Grid(tuple(shape), np.asarray(affine)))
    candidate_ijk = np.column_stack(np.nonzero(candidates))
    adjacency = sphere_adjacency(spheres.seeds, spheres.radius, candidate_ijk, affine, allow_overlap=True, where="the grid")
    support = np.zeros(tuple(shape), dtype=bool)
    support[tuple(candidate_ijk[np.flatnonzero(np.asarray(adjacency.sum(axis=0)).ravel())].T)] = True
    return support


def spheres_to_volume(region_values, seeds, mask, radius=None, allow_overlap: bool = False) -> xr.DataArray:
    """Paint sphere values back on a mask's grid (nilearn's spheres ``inverse_transform``).

    Each voxel gets the mean of the values of the spheres that hold it.

    Parameters
    ----------
    region_values : ``(..., region)`` DataArray or array
    seeds : list of (x, y, z) or Spheres
    mask : mask image
        The grid and the candidate voxels.
    radius : float, optional
        Radius in mm (default: the ``Spheres``' own).
    allow_overlap : bool
        Allow spheres to share voxels.

    Returns
    -------
    xarray.DataArray
        ``(i, j, k[, time])`` on the mask's grid.
    """
    from brainxr.dims import VOXEL_DIM as _VOXEL
    from brainxr.geometry import masked_dataarray
    from brainxr.inputs import load_mask
    from brainxr.masking import unmask

    spheres = seeds if isinstance(seeds, Spheres) else Spheres(seeds, radius, allow_overlap)
    mask_values, mask_grid = load_mask(mask, name="mask")
    affine = mask_grid.affine
    candidate_ijk = np.column_stack(np.nonzero(mask_values))
    adjacency = sphere_adjacency(spheres.seeds, spheres.radius, candidate_ijk, affine, spheres.allow_overlap, "the mask")
    adjacency = adjacency.astype(np.float64)
    if spheres.allow_overlap:
        shared = np.maximum(1, np.asarray(adjacency.sum(axis=0)).ravel())
        adjacency = adjacency @ sparse.diags(1 / shared)
    values = values_per_region(region_values, spheres.n_regions, "region_values", "spheres")
    voxel_values = np.asarray((adjacency.T @ np.atleast_2d(values).T).T)
    if values.ndim == 1:
        voxel_values = voxel_values[0]
    dims = ((TIME_DIM,) if values.ndim == 2 else ()) + (_VOXEL,)
    return unmask(masked_dataarray(voxel_values, mask_values, affine, dims))


__all__ = ["Spheres", "check_seeds", "extract_spheres", "sphere_adjacency", "sphere_support", "spheres_to_volume"]
