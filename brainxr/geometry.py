"""Where images sit in the world and in time: grids, the ``grid`` coordinate, ``t_r``.

A volume ``(i, j, k[, time])`` and a masked table ``(time, voxel)`` carry their
grid in a scalar coordinate named ``grid`` (rioxarray's ``spatial_ref`` idea):
its value is 0 and its attrs are

- ``affine``: the 4x4 voxel-to-world matrix (float64, mm),
- ``shape``: the spatial shape ``(I, J, K)`` of the grid.

The repetition time is the ``t_r`` attribute (seconds) of the ``time``
coordinate. Coordinates survive what attrs do not (reductions, arithmetic,
selections, ``xr.concat``) and Zarr round trips, so a result keeps its place
on the brain through any xarray operation that keeps its ``grid`` coordinate,
and loses it only with that coordinate.

Geometry is never guessed: :func:`get_grid` and :func:`get_t_r` raise
:class:`~brainxr.errors.GeometryError` naming the argument when it is
missing. Objects written before this layout (``affine``, ``grid_shape`` and
``t_r`` in attrs) are still read.

This module is part of the bottom layer: it imports only :mod:`brainxr.dims`,
:mod:`brainxr.errors` and (for its reprs) :mod:`brainxr._html` from brainxr.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import xarray as xr

from brainxr._views import view
from brainxr.dims import GRID_COORD, SPATIAL_DIMS, TIME_DIM, VOXEL_DIM, WORLD_COORDS
from brainxr.errors import GeometryError

__all__ = [
    "AFFINE_ATOL",
    "Grid",
    "MaskedGrid",
    "world_coords",
    "voxel_coords",
    "masked_dataarray",
    "check_same_grid",
    "get_grid",
    "has_grid",
    "with_grid",
    "get_t_r",
    "with_t_r",
]

#: grids whose affines differ by less than this (mm) are the same grid
AFFINE_ATOL = 1e-3


def _as_affine(affine, name: str = "affine") -> np.ndarray:
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise GeometryError(name, f"the affine must be a 4x4 matrix, got shape {affine.shape}")
    return affine


@dataclass(frozen=True, eq=False)
class Grid:
    """A voxel grid: its spatial shape and its voxel-to-world affine.

    Parameters
    ----------
    shape : 3 ints
        ``(I, J, K)``.
    affine : (4, 4) array
        Voxel-to-world matrix (mm).
    """

    shape: tuple
    affine: np.ndarray

    def __post_init__(self):
        shape = tuple(int(n) for n in self.shape)
        if len(shape) != 3:
            raise GeometryError("shape", f"a grid has 3 spatial axes, got shape {shape}")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "affine", _as_affine(self.affine))

    def same_as(self, other: Grid, atol: float = AFFINE_ATOL) -> bool:
        """Same shape and affines equal within ``atol`` mm.

        Parameters
        ----------
        other : Grid
            The grid to compare with.
        atol : float
            Tolerance on every affine entry, in mm.
        """
        return self.shape == tuple(other.shape) and np.allclose(self.affine, other.affine, atol=atol)

    def world_coords(self) -> dict:
        """1-D world coordinates ``x(i), y(j), z(k)`` (empty for an oblique affine)."""
        return world_coords(self.affine, self.shape)

    @property
    def coords(self) -> dict:
        """Coordinates of a volume on this grid: world ``x, y, z`` and the ``grid`` coordinate."""
        return {**self.world_coords(), GRID_COORD: self.coordinate()}

    def coordinate(self) -> xr.DataArray:
        """The scalar ``grid`` coordinate that carries this grid."""
        return xr.DataArray(0, attrs={"affine": self.affine.copy(), "shape": np.asarray(self.shape, dtype=np.int64)})

    def __repr__(self) -> str:
        return f"Grid(shape={self.shape}, affine={self.affine.tolist()})"


@dataclass(frozen=True, eq=False)
class MaskedGrid:
    """A grid and a mask of voxels on it (a cohort's stored voxels, a masker's mask).

    Parameters
    ----------
    affine : (4, 4) array
    mask : (I, J, K) bool array
    """

    affine: np.ndarray
    mask: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "affine", _as_affine(self.affine))
        mask = np.asarray(self.mask, dtype=bool)
        if mask.ndim != 3:
            raise GeometryError("mask", f"expected a 3D mask, got shape {mask.shape}")
        object.__setattr__(self, "mask", mask)

    @property
    def shape(self) -> tuple:
        return tuple(int(n) for n in self.mask.shape)

    @property
    def grid(self) -> Grid:
        return Grid(self.shape, self.affine)

    @cached_property
    def voxel_index(self) -> np.ndarray:
        """``(voxel, 3)`` grid indices of the voxels of the mask, C order."""
        return np.column_stack(np.nonzero(self.mask)).astype(np.int32)

    @property
    def n_voxels(self) -> int:
        return int(self.mask.sum())

    @cached_property
    def coords(self) -> dict:
        """``voxel`` coordinates ``i, j, k, x, y, z`` and the ``grid`` coordinate."""
        return voxel_coords(self.mask, self.affine)

    def same_as(self, shape, affine, atol: float = AFFINE_ATOL) -> bool:
        return tuple(shape[:3]) == self.shape and np.allclose(affine, self.affine, atol=atol)

    __repr__ = view("grid_text")
    _repr_html_ = view("grid_html")


def world_coords(affine, shape) -> dict:
    """1-D world coordinates ``x(i)``, ``y(j)``, ``z(k)`` for an axis-aligned affine.

    Returns an empty dict when the affine rotates or permutes the axes, where
    world positions are not separable per axis.

    Parameters
    ----------
    affine : (4, 4) array-like
        Voxel-to-world matrix.
    shape : tuple of int
        Spatial shape ``(i, j, k)`` of the grid.
    """
    affine = np.asarray(affine)
    rotation = affine[:3, :3]
    if not np.allclose(rotation, np.diag(np.diag(rotation))):
        return {}
    return {
        name: (dim, affine[axis, axis] * np.arange(shape[axis]) + affine[axis, 3])
        for axis, (name, dim) in enumerate(zip(WORLD_COORDS, SPATIAL_DIMS))
    }


def voxel_coords(mask: np.ndarray, affine) -> dict:
    """Coordinates of the ``voxel`` dim for the voxels of ``mask`` (C order), and the grid.

    Parameters
    ----------
    mask : (i, j, k) numpy.ndarray of bool
        The voxels.
    affine : (4, 4) array-like
        Voxel-to-world matrix of the mask's grid.

    Returns
    -------
    dict
        ``i, j, k`` (int32 grid index), ``x, y, z`` (mm) along ``voxel``,
        and the scalar ``grid`` coordinate.
    """
    affine = _as_affine(affine)
    ijk = np.nonzero(mask)
    xyz = np.column_stack(ijk) @ affine[:3, :3].T + affine[:3, 3] if ijk[0].size else np.empty((0, 3))
    coords = {name: (VOXEL_DIM, index.astype(np.int32)) for name, index in zip(SPATIAL_DIMS, ijk)}
    coords.update({name: (VOXEL_DIM, xyz[:, axis]) for axis, name in enumerate(WORLD_COORDS)})
    coords[GRID_COORD] = Grid(np.shape(mask), affine).coordinate()
    return coords


def masked_dataarray(values, mask: np.ndarray, affine, dims=(TIME_DIM, VOXEL_DIM), coords=None, attrs=None, name=None) -> xr.DataArray:
    """The one constructor of masked ``(..., voxel)`` DataArrays.

    Parameters
    ----------
    values : numpy or dask array
        Its last axis holds the voxels of ``mask`` in C order.
    mask : (I, J, K) bool array
    affine : (4, 4) array
        The mask's grid.
    dims : tuple of str
        Ending with ``voxel``.
    coords : dict, optional
        Other coordinates (``time``, ...).
    attrs : dict, optional
    name : str, optional

    Returns
    -------
    xarray.DataArray
        With voxel coords ``i, j, k, x, y, z`` and the ``grid`` coordinate.
    """
    all_coords = voxel_coords(mask, affine)
    all_coords.update(coords or {})
    return xr.DataArray(values, dims=dims, coords=all_coords, attrs=attrs, name=name)


def check_same_grid(grid_a: Grid, grid_b: Grid, name_a: str, name_b: str) -> None:
    """Raise a ValueError naming both inputs if two grids differ (beyond :data:`AFFINE_ATOL`).

    Parameters
    ----------
    grid_a, grid_b : Grid
        The grids.
    name_a, name_b : str
        The names of the inputs they belong to, for the message.
    """
    if not grid_a.same_as(grid_b):
        raise ValueError(
            f"{name_a} and {name_b} are not on the same grid: shapes {grid_a.shape} vs "
            f"{grid_b.shape}, affines\n{np.round(grid_a.affine, 4)}\nvs\n{np.round(grid_b.affine, 4)}; "
            "resample one onto the other first (brainxr.image.resample_to_img)"
        )


def has_grid(obj) -> bool:
    """Whether an xarray object carries a grid (coordinate, or the older attrs).

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        The object.
    """
    return GRID_COORD in obj.coords or "affine" in obj.attrs


def get_grid(obj, name: str = "img") -> Grid:
    """The grid of a volume or masked DataArray (or Dataset).

    Read from the ``grid`` coordinate; objects written before it carried
    ``affine`` (and ``grid_shape`` for masked tables) in attrs, which are read
    too.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
    name : str
        Parameter name used in error messages.

    Raises
    ------
    GeometryError
        When the object carries no grid, or when a volume's spatial dims no
        longer match its grid (it was sliced along ``i``, ``j`` or ``k``).
    """
    if GRID_COORD in obj.coords:
        attrs = obj.coords[GRID_COORD].attrs
        if "affine" not in attrs or "shape" not in attrs:
            raise GeometryError(name, f"the '{GRID_COORD}' coordinate lacks its 'affine' or 'shape' attribute")
        grid = Grid(attrs["shape"], attrs["affine"])
    elif "affine" in obj.attrs:
        if "grid_shape" in obj.attrs:
            shape = obj.attrs["grid_shape"]
        elif set(SPATIAL_DIMS) <= set(obj.dims):
            shape = [obj.sizes[dim] for dim in SPATIAL_DIMS]
        else:
            raise GeometryError(name, "has an 'affine' attribute but no grid shape ('grid_shape' attribute)")
        grid = Grid(shape, obj.attrs["affine"])
    else:
        raise GeometryError(
            name,
            f"no grid: expected a '{GRID_COORD}' coordinate with 'affine' and 'shape' attrs "
            "(as brainxr.open_nifti and brainxr.apply_mask make); the voxel-to-world affine is never guessed",
        )
    if set(SPATIAL_DIMS) <= set(obj.dims):
        sizes = tuple(obj.sizes[dim] for dim in SPATIAL_DIMS)
        if sizes != grid.shape:
            cropped = _cropped_grid(obj, grid, sizes)
            if cropped is None:
                raise GeometryError(
                    name,
                    f"its spatial dims {dict(zip(SPATIAL_DIMS, sizes))} no longer match its grid of shape "
                    f"{grid.shape} (sliced along i, j or k without its x, y, z coordinates to say where); "
                    f"resample it, or assign its grid with brainxr.geometry.with_grid",
                )
            grid = cropped
    return grid


def _cropped_grid(obj, grid: Grid, sizes: tuple) -> Grid | None:
    """The grid of a volume sliced along ``i, j, k``, from its world coordinates (rioxarray's way).

    Only for an axis-aligned grid whose ``x, y, z`` coordinates were sliced
    with the data and are still evenly spaced; None otherwise.
    """
    rotation = grid.affine[:3, :3]
    if not np.allclose(rotation, np.diag(np.diag(rotation))):
        return None
    affine = grid.affine.copy()
    for axis, (name, dim) in enumerate(zip(WORLD_COORDS, SPATIAL_DIMS)):
        if name not in obj.coords or obj.coords[name].dims != (dim,) or obj.sizes[dim] == 0:
            return None
        values = np.asarray(obj.coords[name].values, dtype=np.float64)
        if values.size > 1:
            steps = np.diff(values)
            if not np.allclose(steps, steps[0], atol=AFFINE_ATOL):
                return None
            affine[axis, axis] = steps[0]
        affine[axis, 3] = values[0]
    return Grid(sizes, affine)


def with_grid(obj, grid: Grid):
    """A copy of ``obj`` carrying ``grid`` (its older geometry attrs dropped).

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        The object.
    grid : Grid
        Its grid.
    """
    obj = obj.assign_coords({GRID_COORD: grid.coordinate()})
    stale = [key for key in ("affine", "grid_shape") if key in obj.attrs]
    if stale:
        obj.attrs = {key: value for key, value in obj.attrs.items() if key not in stale}
    return obj


def get_t_r(obj, name: str = "img", required: bool = True) -> float | None:
    """The repetition time (s) of an object with a ``time`` dim.

    Read from the ``t_r`` attribute of the ``time`` coordinate (older objects:
    ``t_r`` in attrs).

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        The object.
    name : str
        Its parameter name, for the error message.
    required : bool
        Raise when it is missing (else return None).

    Raises
    ------
    GeometryError
        When it is missing and ``required``.
    """
    t_r = None
    if TIME_DIM in obj.coords:
        t_r = obj.coords[TIME_DIM].attrs.get("t_r")
    if t_r is None:
        t_r = obj.attrs.get("t_r")
    if t_r is None:
        if required:
            raise GeometryError(
                name,
                f"no repetition time: expected a 't_r' attribute (seconds) on the '{TIME_DIM}' coordinate; "
                "pass t_r= explicitly (it is never guessed)",
            )
        return None
    return float(t_r)


def with_t_r(obj, t_r: float, start: float | None = None):
    """A copy of ``obj`` whose ``time`` coordinate carries ``t_r``.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        Has a ``time`` dim.
    t_r : float
        Repetition time in seconds (positive).
    start : float, optional
        When given (or when ``obj`` has no ``time`` coordinate), the
        coordinate is rebuilt as ``start + t_r * n``.
    """
    t_r = float(t_r)
    if not np.isfinite(t_r) or t_r <= 0:
        raise GeometryError("t_r", f"the repetition time must be a positive number of seconds, got {t_r}")
    if start is not None or TIME_DIM not in obj.coords:
        values = (0.0 if start is None else float(start)) + t_r * np.arange(obj.sizes[TIME_DIM])
    else:
        values = obj.coords[TIME_DIM].values
    attrs = dict(obj.coords[TIME_DIM].attrs) if TIME_DIM in obj.coords else {}
    attrs["t_r"] = t_r
    return obj.assign_coords({TIME_DIM: (TIME_DIM, values, attrs)})
