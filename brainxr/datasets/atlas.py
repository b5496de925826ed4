"""Synthetic atlases on the synthetic template: parcels, probabilistic maps, seeds.

Three atlases describe the same cortex, like the real ones brainxr's users know:

- :func:`load_synthetic_labels_atlas`: a labels image (Schaefer-like) whose
  parcels tile the gray matter, half in each hemisphere, named
  ``LH_Default_3``-style after 7 Yeo-like networks. Right parcels mirror the
  left ones, so parcel ``i`` and ``i + n_regions // 2`` are homotopic.
- :func:`load_synthetic_maps_atlas`: a 4D image of smooth, overlapping
  probabilistic maps (MSDL-like), each with a name, a network and a centre.
- the ``coords`` table of the labels atlas: one seed per parcel, inside it,
  for sphere-based workflows (like the Power-264 coordinates).

Parcels are a deterministic k-means partition of the left gray matter
(sampled at a fixed 4 mm reference, so all resolutions share the same
centroids) mirrored to the right, then a Voronoi assignment of each gray-matter
voxel of the requested grid.
"""

from __future__ import annotations

import functools
import numbers

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial.distance import cdist
from brainxr.datasets._bunch import Bunch

from brainxr.datasets import template as _template

#: the 7 Yeo-like networks, in label order
NETWORKS = ("Vis", "SomMot", "DorsAttn", "SalVentAttn", "Limbic", "Cont", "Default")

# Right-hemisphere anchor points (MNI mm) of each network; a parcel belongs to
# the network of the anchor nearest to its centroid (anchors are mirrored to
# the left).
_NETWORK_ANCHORS = {
    "Vis": [(10, -92, 2), (28, -88, 12), (20, -72, -10), (38, -78, -8), (8, -72, 12)],
    "SomMot": [(40, -22, 56), (22, -32, 66), (56, -14, 36), (52, -20, 14), (6, -20, 62), (22, -48, -24)],
    "DorsAttn": [(26, -60, 56), (46, -64, 2), (30, -6, 56), (40, -42, 48)],
    "SalVentAttn": [(38, 14, 0), (6, 20, 40), (56, -40, 28), (34, 44, 24), (24, 4, 2)],
    "Limbic": [(22, 32, -20), (40, 12, -34), (32, -8, -38), (8, 30, -16)],
    "Cont": [(44, 32, 30), (44, -54, 46), (10, -66, 42), (52, -50, -10), (36, -70, -40)],
    "Default": [(6, 52, 10), (6, -56, 30), (48, -66, 30), (58, -16, -16), (24, -26, -16), (12, -18, 8), (14, 40, 44)],
}

# fixed reference resolution (mm) at which the parcel centroids are computed
_REFERENCE_RESOLUTION = 4.0
_KMEANS_ITERATIONS = 40
# probabilistic maps: Gaussian width (mm) and the value below which a map is 0
_MAP_SIGMA = 9.0
_MAP_FLOOR = 0.05


def _check_count(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_n_regions(n_regions):
    n_regions = _check_count(n_regions, "n_regions", 2)
    if n_regions % 2:
        raise ValueError(
            f"n_regions must be even (parcels come in left-right homotopic pairs), got {n_regions}"
        )
    return n_regions


def _gray_matter_mask(resolution):
    """Voxels where gray matter is the largest tissue fraction."""
    tissue = _template.load_synthetic_mni152_tissue_maps(resolution)
    gm, wm, csf = (np.asarray(tissue[name].dataobj) for name in ("gm", "wm", "csf"))
    return (gm > 0) & (gm >= wm) & (gm >= csf)


def _farthest_point_init(points, k):
    """Deterministic k-means seeds: start at the most posterior-inferior point, then farthest points."""
    order = np.lexsort((points[:, 0], points[:, 2], points[:, 1]))
    chosen = [order[0]]
    distance = np.linalg.norm(points - points[order[0]], axis=1)
    for _ in range(1, k):
        nxt = int(np.argmax(distance))
        chosen.append(nxt)
        distance = np.minimum(distance, np.linalg.norm(points - points[nxt], axis=1))
    return points[chosen].copy()


def _kmeans(points, k):
    """Lloyd's k-means with a deterministic start; returns the centroids (k, 3)."""
    centroids = _farthest_point_init(points, k)
    for _ in range(_KMEANS_ITERATIONS):
        assignment = _nearest(points, centroids)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assignment, points)
        counts = np.bincount(assignment, minlength=k)
        empty = counts == 0
        centroids[~empty] = sums[~empty] / counts[~empty, None]
    return centroids


def _nearest(points, centroids):
    """Index of the nearest centroid of each point (blocked to bound memory)."""
    out = np.empty(len(points), dtype=np.intp)
    block = 65536
    for start in range(0, len(points), block):
        chunk = points[start : start + block]
        out[start : start + block] = np.argmin(cdist(chunk, centroids, "sqeuclidean"), axis=1)
    return out


def _network_of(points):
    """Network index (into :data:`NETWORKS`) of the anchor nearest to each point."""
    anchors, owners = [], []
    for index, name in enumerate(NETWORKS):
        for x, y, z in _NETWORK_ANCHORS[name]:
            anchors += [(x, y, z), (-x, y, z)]
            owners += [index, index]
    return np.asarray(owners)[_nearest(np.asarray(points, float), np.asarray(anchors, float))]


@functools.lru_cache(maxsize=8)
def _left_centroids(n_per_hemisphere):
    """Centroids of the left parcels, ordered by network then from front to back."""
    shape, affine = _template.mni152_grid(_REFERENCE_RESOLUTION)
    gm = _gray_matter_mask(_REFERENCE_RESOLUTION)
    xyz = _template.grid_world_coordinates(shape, affine)[gm.ravel()]
    left = xyz[xyz[:, 0] < 0]
    if n_per_hemisphere > len(left) // 4:
        raise ValueError(
            f"n_regions={2 * n_per_hemisphere} is too many for the synthetic cortex "
            f"(at most {2 * (len(left) // 4)})"
        )
    centroids = _kmeans(left, n_per_hemisphere)
    networks = _network_of(centroids)
    order = np.lexsort((-centroids[:, 1], networks))
    centroids, networks = centroids[order], networks[order]
    centroids.setflags(write=False)
    networks.setflags(write=False)
    return centroids, networks


def _region_table(n_regions):
    """Names, networks and hemispheres of the parcels, in label order."""
    centroids, networks = _left_centroids(n_regions // 2)
    rows = []
    for hemi, sign in (("LH", -1), ("RH", 1)):
        counters = dict.fromkeys(NETWORKS, 0)
        for centroid, network_index in zip(centroids, networks):
            network = NETWORKS[network_index]
            counters[network] += 1
            rows.append(
                {
                    "index": len(rows) + 1,
                    "name": f"{hemi}_{network}_{counters[network]}",
                    "network": network,
                    "hemisphere": hemi,
                }
            )
    return pd.DataFrame(rows)


@functools.lru_cache(maxsize=16)
def _labels_array(resolution, n_regions):
    shape, affine = _template.mni152_grid(resolution)
    gm = _gray_matter_mask(resolution)
    centroids, _ = _left_centroids(n_regions // 2)
    xyz = _template.grid_world_coordinates(shape, affine)
    labels = np.zeros(int(np.prod(shape)), dtype=np.int16)
    flat_gm = gm.ravel()
    points = xyz[flat_gm]
    # fold the right hemisphere onto the left: mirrored voxels get mirrored parcels
    right = points[:, 0] >= 0
    folded = points.copy()
    folded[:, 0] = -np.abs(folded[:, 0])
    nearest = _nearest(folded, centroids) + 1
    nearest[right] += n_regions // 2
    labels[flat_gm] = nearest
    labels = labels.reshape(shape)
    labels.setflags(write=False)
    return labels


def _parcel_seeds(labels, affine, n_regions):
    """Per parcel: the in-parcel voxel nearest to its centre of mass (world mm)."""
    index = np.arange(1, n_regions + 1)
    centres = np.asarray(ndimage.center_of_mass(np.ones(labels.shape), labels, index))
    seeds = np.full((n_regions, 3), np.nan)
    ijk = np.argwhere(labels > 0)
    values = labels[labels > 0]
    order = np.argsort(values, kind="stable")
    ijk, values = ijk[order], values[order]
    bounds = np.searchsorted(values, np.arange(1, n_regions + 2))
    for region in range(n_regions):
        members = ijk[bounds[region] : bounds[region + 1]]
        if len(members):
            closest = members[np.argmin(((members - centres[region]) ** 2).sum(1))]
            seeds[region] = closest @ affine[:3, :3].T + affine[:3, 3]
    centres_mm = centres @ affine[:3, :3].T + affine[:3, 3]
    return centres_mm, seeds


def load_synthetic_labels_atlas(resolution=2, n_regions=100):
    """A Schaefer-like labels atlas of the synthetic template.

    Parameters
    ----------
    resolution : float, default=2
        Voxel size in mm of the atlas grid (the MNI152 grid of
        :func:`brainxr.datasets.load_synthetic_mni152_brain_mask`).
    n_regions : int, default=100
        Number of parcels, an even number: ``n_regions // 2`` per hemisphere.

    Returns
    -------
    sklearn.utils.Bunch
        - ``maps``: int16 Nifti1Image, 0 background, ``1..n_regions`` parcels
          (left hemisphere first, then the mirrored right parcels in the same order);
        - ``labels``: list of names, ``"Background"`` first (nilearn's convention);
        - ``lut``: DataFrame ``index, name, network, hemisphere, x, y, z``
          (``x, y, z`` the parcel's centre of mass in mm);
        - ``coords``: DataFrame ``index, name, network, x, y, z`` of one seed
          per parcel, a voxel inside the parcel next to its centre of mass;
        - ``networks``: the 7 network names.
    """
    resolution = _template.check_resolution(resolution)
    n_regions = _check_n_regions(n_regions)
    _, affine = _template.mni152_grid(resolution)
    labels = _labels_array(resolution, n_regions)
    table = _region_table(n_regions)
    centres, seeds = _parcel_seeds(labels, affine, n_regions)
    lut = table.assign(x=centres[:, 0], y=centres[:, 1], z=centres[:, 2])
    coords = table[["index", "name", "network"]].assign(x=seeds[:, 0], y=seeds[:, 1], z=seeds[:, 2])
    return Bunch(
        maps=_template.make_nifti(labels, affine),
        labels=["Background", *table["name"]],
        lut=lut,
        coords=coords,
        networks=list(NETWORKS),
    )


@functools.lru_cache(maxsize=8)
def _maps_array(resolution, n_maps):
    """Smooth overlapping maps: each a Gaussian around a few homotopic/network seeds."""
    shape, affine = _template.mni152_grid(resolution)
    brain, tissues = _template._tissue_fractions(resolution)
    cortex = tissues["gm"] + 0.3 * tissues["wm"]
    n_pairs = n_maps // 2
    centroids, networks = _left_centroids(n_pairs)
    stack = np.zeros((n_maps, *shape), dtype=np.float32)  # one contiguous volume per map
    centres = np.zeros((n_maps, 3))
    owners = np.zeros(n_maps, dtype=int)
    inverse = np.linalg.inv(affine)
    reach = _MAP_SIGMA * np.sqrt(-2 * np.log(_MAP_FLOOR))  # beyond it the blob is below the floor
    for index in range(n_maps):
        pair, side = index // 2, index % 2
        if pair >= n_pairs:  # odd count: the last map is bilateral
            pair, side = n_pairs - 1, None
        centre = centroids[pair].copy()
        mirrored = centre * (-1, 1, 1)
        sides = [centre, mirrored] if side is None else [(centre, mirrored)[side]]
        value = stack[index]
        for seed in sides:
            # evaluate the Gaussian only in the box where it can exceed the floor
            lo = np.floor((inverse[:3, :3] @ (seed - reach) + inverse[:3, 3])).astype(int).clip(0, None)
            hi = np.ceil((inverse[:3, :3] @ (seed + reach) + inverse[:3, 3])).astype(int) + 1
            box = tuple(slice(a, min(b, n)) for a, b, n in zip(lo, hi, shape))
            ijk = np.stack(np.meshgrid(*[np.arange(b.start, b.stop) for b in box], indexing="ij"), -1)
            xyz = ijk @ affine[:3, :3].T + affine[:3, 3]
            blob = np.exp(-((xyz - seed) ** 2).sum(-1) / (2 * _MAP_SIGMA**2)) * cortex[box]
            value[box] = np.maximum(value[box], blob)
        value[value < _MAP_FLOOR] = 0
        value /= max(float(value.max()), 1e-12)
        centres[index] = np.mean(sides, axis=0)
        owners[index] = networks[pair]
    stack[:, ~brain] = 0
    maps = np.ascontiguousarray(np.moveaxis(stack, 0, -1))
    maps.setflags(write=False)
    return maps, centres, owners


def load_synthetic_maps_atlas(resolution=2, n_maps=32):
    """An MSDL-like probabilistic atlas of the synthetic template.

    Each map is a smooth blob on the cortex (a Gaussian of 9 mm sigma weighted
    by gray and some white matter, peak 1, cut below 0.05) around one parcel centroid of the
    ``n_maps``-parcel labels atlas; maps come in left-right pairs and overlap
    their neighbours.

    Parameters
    ----------
    resolution : float, default=2
        Voxel size in mm.
    n_maps : int, default=32
        Number of maps.

    Returns
    -------
    sklearn.utils.Bunch
        - ``maps``: 4D float32 Nifti1Image, one map per volume;
        - ``labels``: list of map names (``L Default 1``-style, as MSDL's);
        - ``region_coords``: list of ``(x, y, z)`` centres in mm;
        - ``networks``: network of each map;
        - ``lut``: DataFrame ``index, name, network, x, y, z``.
    """
    resolution = _template.check_resolution(resolution)
    n_maps = _check_count(n_maps, "n_maps", 2)
    _, affine = _template.mni152_grid(resolution)
    maps, centres, owners = _maps_array(resolution, n_maps)
    names, counters = [], {}
    for index, owner in enumerate(owners):
        side = "L" if centres[index, 0] < 0 else ("R" if centres[index, 0] > 0 else "B")
        key = (side, NETWORKS[owner])
        counters[key] = counters.get(key, 0) + 1
        names.append(f"{side} {NETWORKS[owner]} {counters[key]}")
    lut = pd.DataFrame(
        {
            "index": np.arange(n_maps),
            "name": names,
            "network": [NETWORKS[o] for o in owners],
            "x": centres[:, 0],
            "y": centres[:, 1],
            "z": centres[:, 2],
        }
    )
    return Bunch(
        maps=_template.make_nifti(maps, affine),
        labels=names,
        region_coords=[tuple(map(float, c)) for c in centres],
        networks=list(lut["network"]),
        lut=lut,
    )
