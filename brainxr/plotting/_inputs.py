"""Turn what users pass to the plotting functions into plain arrays.

Plotting needs numbers in memory: a volume as ``(data, affine)``, a
connectivity matrix with its node coordinates and names. Inputs may be
nibabel images, paths, numpy arrays or brainxr's labeled DataArrays (see
docs/architecture.md); a labeled DataArray carries its own affine, region
names and coordinates so they need not be passed again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import scipy.ndimage
import scipy.sparse
import xarray as xr

from brainxr.dims import VOXEL_DIM
from brainxr.inputs import image_values
from brainxr.masking import unmask


@dataclass(frozen=True)
class Volume:
    """A 3D (or 4D) array on a voxel grid with its voxel-to-world affine.

    Parameters
    ----------
    data : numpy.ndarray
        Voxel values, spatial axes first.
    affine : numpy.ndarray
        4x4 voxel-to-world matrix (mm).
    """

    data: np.ndarray
    affine: np.ndarray

    @property
    def shape(self) -> tuple:
        return self.data.shape

    def bounds(self) -> tuple:
        """World extent ``((xmin, xmax), (ymin, ymax), (zmin, zmax))`` of voxel centres.

        Only meaningful on an axis-aligned grid (see :func:`axis_aligned`).
        """
        corners = np.array([[0, 0, 0, 1], [*(np.array(self.shape[:3]) - 1), 1]], dtype=float)
        first, last = (self.affine @ corners.T)[:3].T
        return tuple((min(a, b), max(a, b)) for a, b in zip(first, last))

    def content_key(self) -> tuple:
        """A key identifying the grid and the non-zero voxels, for caches of derived shapes."""
        return self.data.shape, self.affine.tobytes(), hash(np.packbits(self.data > 0).tobytes())

    def volumes(self):
        """Iterate over the 3D volumes of a 4D image (or yield the 3D image)."""
        if self.data.ndim == 3:
            yield self
            return
        for index in range(self.data.shape[3]):
            yield Volume(self.data[..., index], self.affine)


def _volume_values(img, name: str):
    """Values (float or bool) and affine of an image, through :func:`brainxr.inputs.image_values`.

    A masked ``(voxel[, other])`` DataArray is put back on its grid (0 outside).
    """
    if isinstance(img, xr.DataArray) and VOXEL_DIM in img.dims:
        if img.ndim > 2:
            raise ValueError(f"{name}: expected dims (voxel,) or (voxel, one other), got {img.dims}")
        img = unmask(img, fill_value=0)
    data, grid = image_values(img, name)
    if data.dtype.kind not in "fb":
        data = data.astype(np.float32)
    return data, grid.affine


def as_volume(img, name: str = "img", ndim: int | None = 3) -> Volume:
    """Read a volume from a nibabel image, a path or a brainxr DataArray.

    Parameters
    ----------
    img : nibabel image, str, os.PathLike or xarray.DataArray
        The image. A DataArray is either a volume ``(i, j, k[, time])`` with
        ``attrs["affine"]`` or a masked ``(voxel[, ...])`` array with voxel
        coords ``i, j, k`` and attrs ``affine``, ``grid_shape``.
    name : str
        Parameter name used in error messages.
    ndim : {3, 4, None}
        Number of dimensions required; a 4D image with a single volume is
        accepted as 3D. ``None`` accepts both.

    Returns
    -------
    Volume
    """
    if isinstance(img, Volume):
        data, affine = img.data, img.affine
    else:
        if isinstance(img, (str, os.PathLike)) and not os.path.exists(img):
            raise FileNotFoundError(f"{name}: no such image file: {os.fspath(img)}")
        data, affine = _volume_values(img, name)
    if data.ndim == 5 and data.shape[3] == 1:
        data = data[:, :, :, 0]
    if data.dtype.kind == "b":
        data = data.astype(np.float32)
    if ndim == 3 and data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim not in (3, 4) or (ndim is not None and data.ndim != ndim):
        expected = f"{ndim}D" if ndim else "3D or 4D"
        raise ValueError(f"{name}: expected a {expected} image, got an array of shape {data.shape}")
    if affine.shape != (4, 4):
        raise ValueError(f"{name}: the affine must be a 4x4 matrix, got shape {affine.shape}")
    return Volume(data, affine)


def axis_aligned(volume: Volume, interpolation: str = "continuous") -> Volume:
    """Reorder the voxel axes so that i, j, k run along +x, +y, +z.

    Axis permutations and flips are exact; an oblique affine is resampled on
    an axis-aligned grid of the smallest voxel size.

    Parameters
    ----------
    volume : Volume
    interpolation : {'continuous', 'nearest'}
        Used only when resampling is needed.
    """
    linear = volume.affine[:3, :3]
    order = np.argmax(np.abs(linear), axis=0)  # world axis of each voxel axis
    if sorted(order) == [0, 1, 2]:
        permutation = np.argsort(order)  # voxel axis along each world axis
        permuted = linear[:, permutation]
        if np.allclose(permuted - np.diag(np.diag(permuted)), 0, atol=1e-6 * np.abs(permuted).max()):
            rest = tuple(range(3, volume.data.ndim))
            data = np.transpose(volume.data, (*permutation, *rest))
            affine = np.eye(4)
            affine[:3, :3] = permuted
            affine[:3, 3] = volume.affine[:3, 3]
            for axis in range(3):
                if affine[axis, axis] < 0:
                    data = np.flip(data, axis=axis)
                    affine[:3, 3] += affine[:3, axis] * (data.shape[axis] - 1)
                    affine[:3, axis] *= -1
            return Volume(data, affine)
    return _resample_axis_aligned(volume, interpolation)


def _resample_axis_aligned(volume: Volume, interpolation: str) -> Volume:
    voxel_size = np.sqrt((volume.affine[:3, :3] ** 2).sum(axis=0)).min()
    shape = np.array(volume.shape[:3])
    corners = np.array(np.meshgrid(*[[0, n - 1] for n in shape], indexing="ij")).reshape(3, -1)
    world = volume.affine[:3, :3] @ corners + volume.affine[:3, 3:4]
    low, high = world.min(axis=1), world.max(axis=1)
    target_shape = tuple(np.ceil((high - low) / voxel_size).astype(int) + 1)
    target = np.eye(4)
    target[:3, :3] *= voxel_size
    target[:3, 3] = low
    mapping = np.linalg.inv(volume.affine) @ target
    order = 0 if interpolation == "nearest" else 1

    def resample(data3d):
        return scipy.ndimage.affine_transform(
            data3d, mapping[:3, :3], offset=mapping[:3, 3], output_shape=target_shape, order=order, cval=0.0
        )

    if volume.data.ndim == 3:
        data = resample(volume.data)
    else:
        data = np.stack([resample(volume.data[..., t]) for t in range(volume.data.shape[3])], axis=-1)
    return Volume(data, target)


def world_to_voxel(affine: np.ndarray, coords) -> np.ndarray:
    """World coordinates ``(n, 3)`` to (fractional) voxel indices."""
    coords = np.atleast_2d(np.asarray(coords, dtype=float))
    return (np.linalg.inv(affine) @ np.c_[coords, np.ones(len(coords))].T)[:3].T


def voxel_to_world(affine: np.ndarray, indices) -> np.ndarray:
    """Voxel indices ``(n, 3)`` to world coordinates in mm."""
    indices = np.atleast_2d(np.asarray(indices, dtype=float))
    return (affine @ np.c_[indices, np.ones(len(indices))].T)[:3].T


@dataclass(frozen=True)
class Graph:
    """A connectivity matrix with what is known about its nodes.

    Parameters
    ----------
    matrix : numpy.ndarray
        ``(n, n)`` edge weights, NaN replaced by 0.
    coords : numpy.ndarray or None
        ``(n, 3)`` node positions in mm.
    labels : list of str or None
        Node names.
    """

    matrix: np.ndarray
    coords: np.ndarray | None
    labels: list | None


def _region_coords(da: xr.DataArray, dim: str) -> np.ndarray | None:
    if all(c in da.coords and da.coords[c].dims == (dim,) for c in ("x", "y", "z")):
        return np.column_stack([np.asarray(da.coords[c].values, dtype=float) for c in ("x", "y", "z")])
    return None


def as_graph(adjacency, node_coords=None, labels=None, name: str = "adjacency_matrix") -> Graph:
    """Read a connectivity matrix, taking node coordinates and names from a DataArray.

    Parameters
    ----------
    adjacency : array-like, scipy.sparse matrix or xarray.DataArray
        ``(n, n)`` matrix. A brainxr connectivity DataArray ``(region,
        region_)`` provides node coordinates (coords ``x, y, z``) and names
        (coord ``region``).
    node_coords : array-like of shape (n, 3), optional
        Overrides the DataArray's coordinates.
    labels : sequence of str, optional
        Overrides the DataArray's region names.
    name : str
        Parameter name used in error messages.
    """
    if isinstance(adjacency, xr.DataArray):
        if adjacency.ndim != 2:
            raise ValueError(
                f"{name}: expected one (region, region_) matrix, got dims {adjacency.dims}; "
                "reduce the leading dim first, e.g. conn.mean('run')"
            )
        row_dim = adjacency.dims[0]
        if node_coords is None:
            node_coords = _region_coords(adjacency, row_dim)
        if labels is None and row_dim in adjacency.coords:
            labels = [str(v) for v in adjacency.coords[row_dim].values]
        matrix = np.asarray(adjacency.values, dtype=float)
    elif scipy.sparse.issparse(adjacency):
        matrix = adjacency.toarray().astype(float)
    else:
        matrix = np.ma.filled(np.ma.asarray(adjacency, dtype=float), 0.0)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"{name}: expected a square (n, n) matrix, got shape {matrix.shape}")
    matrix = np.nan_to_num(matrix, nan=0.0, posinf=0.0, neginf=0.0)
    if node_coords is not None:
        node_coords = as_node_coords(node_coords, len(matrix), name="node_coords")
    if labels is not None:
        labels = [str(label) for label in labels]
        if len(labels) != len(matrix):
            raise ValueError(f"labels: {len(labels)} names for a matrix of {len(matrix)} nodes")
    return Graph(matrix, node_coords, labels)


def as_node_coords(node_coords, n_nodes: int | None = None, name: str = "node_coords") -> np.ndarray:
    """Validate node positions as an ``(n, 3)`` float array."""
    if isinstance(node_coords, xr.DataArray) and node_coords.ndim == 1:
        found = _region_coords(node_coords, node_coords.dims[0])
        if found is None:
            raise ValueError(f"{name}: the DataArray has no x, y, z coords")
        node_coords = found
    coords = np.asarray(node_coords, dtype=float)
    if coords.ndim != 2 or coords.shape[1] != 3:
        raise ValueError(f"{name}: expected an array of shape (n, 3) in mm, got shape {coords.shape}")
    if n_nodes is not None and len(coords) != n_nodes:
        raise ValueError(f"{name}: {len(coords)} coordinates for {n_nodes} nodes; expected shape ({n_nodes}, 3)")
    if not np.isfinite(coords).all():
        raise ValueError(f"{name}: coordinates must be finite")
    return coords


def node_values_and_coords(node_values, node_coords=None):
    """Node values as a 1D array and their coordinates (from a DataArray when not given)."""
    if isinstance(node_values, xr.DataArray):
        if node_values.ndim != 1:
            raise ValueError(f"node_values: expected a 1D (region,) DataArray, got dims {node_values.dims}")
        if node_coords is None:
            node_coords = _region_coords(node_values, node_values.dims[0])
        node_values = node_values.values
    values = np.asarray(node_values, dtype=float).ravel()
    if node_coords is None:
        raise ValueError("node_coords: required (the node values carry no x, y, z coords)")
    coords = as_node_coords(node_coords)
    if values.shape != (len(coords),):
        raise ValueError(
            f"node_values: expected a vector of length {len(coords)} (one per node), got shape {values.shape}"
        )
    return values, coords
