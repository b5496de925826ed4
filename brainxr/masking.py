"""Masking: ``(i, j, k, time)`` volumes <-> ``(time, voxel)`` tables.

The voxel order is C order over ``(i, j, k)`` (``numpy.nonzero(mask)``), the
order nilearn's maskers use, so columns match nilearn's output one to one.
The ``voxel`` dim carries its grid index (``i, j, k``) and world position
(``x, y, z`` in mm); with ``affine`` and ``grid_shape`` in attrs that is all
:func:`unmask` needs to restore a volume.

One gather kernel and one scatter kernel serve numpy- and dask-backed data.
"""

from __future__ import annotations

from pathlib import Path

import dask.array as dsa
import nibabel as nib
import numpy as np
import xarray as xr

from brainxr.nifti import SPATIAL_DIMS, TIME_DIM, from_nibabel, open_nifti, world_coords

VOXEL_DIM = "voxel"

# Grids whose affines differ by less than this (mm) are the same grid.
AFFINE_ATOL = 1e-3


def as_volume(img, name: str = "img", chunks="auto") -> xr.DataArray:
    """Accept a path, a nibabel image or a volume DataArray; return a DataArray.

    Parameters
    ----------
    img : str, os.PathLike, nibabel image or xarray.DataArray
    name : str
        Parameter name used in error messages.
    chunks : "auto", int or None
        Passed to :func:`brainxr.open_nifti` for paths.
    """
    if isinstance(img, xr.DataArray):
        if not set(SPATIAL_DIMS) <= set(img.dims):
            raise ValueError(f"{name}: expected a volume with dims {SPATIAL_DIMS}[, time], got {img.dims}")
        if "affine" not in img.attrs:
            raise ValueError(f"{name}: the DataArray has no 'affine' attribute; it cannot be placed on a grid")
        return img
    if isinstance(img, (str, Path)):
        return open_nifti(img, chunks=chunks)
    if isinstance(img, nib.spatialimages.SpatialImage):
        return from_nibabel(img)
    raise TypeError(f"{name}: expected a NIfTI path, a nibabel image or a DataArray, got {type(img).__name__}")


def load_mask(mask, name: str = "mask", affine=None) -> tuple[np.ndarray, np.ndarray]:
    """Read a mask into a boolean ``(I, J, K)`` array and its affine.

    Parameters
    ----------
    mask : path, nibabel image, DataArray or boolean numpy array
        Non-zero voxels are in the mask.
    name : str
        Parameter name used in error messages.
    affine : array, optional
        The affine of a numpy ``mask`` (required for numpy input).
    """
    if isinstance(mask, np.ndarray):
        if affine is None:
            raise ValueError(f"{name}: a numpy mask needs an affine")
        values, mask_affine = mask, np.asarray(affine, dtype=np.float64)
    else:
        volume = as_volume(mask, name=name, chunks=None)
        values, mask_affine = np.asarray(volume.transpose(*SPATIAL_DIMS, ...).values), volume.attrs["affine"]
    if values.ndim == 4 and values.shape[3] == 1:
        values = values[..., 0]
    if values.ndim != 3:
        raise ValueError(f"{name}: expected a 3D mask, got shape {values.shape}")
    values = np.nan_to_num(values, nan=0.0) != 0
    if not values.any():
        raise ValueError(f"{name}: the mask is empty (no non-zero voxel)")
    return values, np.asarray(mask_affine, dtype=np.float64)


def check_same_grid(shape_a, affine_a, shape_b, affine_b, name_a: str, name_b: str) -> None:
    """Raise a ValueError naming both inputs if two grids differ."""
    if tuple(shape_a[:3]) != tuple(shape_b[:3]) or not np.allclose(affine_a, affine_b, atol=AFFINE_ATOL):
        raise ValueError(
            f"{name_a} and {name_b} are not on the same grid: shapes {tuple(shape_a[:3])} vs "
            f"{tuple(shape_b[:3])}, affines\n{np.round(affine_a, 4)}\nvs\n{np.round(affine_b, 4)}; "
            "resample one onto the other first (brainxr.image.resample_to_img)"
        )


def voxel_coords(mask: np.ndarray, affine) -> dict:
    """Coordinates of the ``voxel`` dim for the voxels of ``mask`` (C order)."""
    ijk = np.nonzero(mask)
    xyz = nib.affines.apply_affine(affine, np.column_stack(ijk)) if ijk[0].size else np.empty((0, 3))
    coords = {name: (VOXEL_DIM, index.astype(np.int32)) for name, index in zip(SPATIAL_DIMS, ijk)}
    coords.update({name: (VOXEL_DIM, xyz[:, axis]) for axis, name in enumerate("xyz")})
    return coords


def _gather(block: np.ndarray, i: np.ndarray, j: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``(I, J, K[, n])`` -> ``(V[, n])``: the voxels at ``(i, j, k)``."""
    return block[i, j, k]


def auto_voxel_chunk(n_time: int, itemsize: int = 4, target_bytes: int = 128 * 2**20) -> int:
    """Voxels per chunk so that a ``(time, voxel)`` chunk holds about ``target_bytes``."""
    return int(max(1, target_bytes // max(1, n_time * itemsize)))


def apply_mask(img, mask=None, voxel_chunks="auto") -> xr.DataArray:
    """Mask a volume image into a ``(time, voxel)`` (or ``(voxel,)``) DataArray.

    Parameters
    ----------
    img : path, nibabel image or DataArray
        3D or 4D image; dask-backed images stay lazy.
    mask : path, nibabel image, DataArray or boolean array, optional
        Must be on the image's grid. Default: the voxels where the first
        volume is non-zero and finite.
    voxel_chunks : "auto", int or None
        For dask-backed 4D images, voxels per chunk of the result, with all of
        time in one chunk (``"auto"``: about 128 MB chunks). ``None`` keeps the
        image's time blocks with all voxels in each chunk (no rechunk).

    Returns
    -------
    xarray.DataArray
        ``(time, voxel)`` for 4D images, ``(voxel,)`` for 3D, with voxel
        coords ``i, j, k, x, y, z`` and attrs ``affine``, ``grid_shape`` (and
        the image's other attrs, such as ``t_r``).
    """
    volume = as_volume(img).transpose(*SPATIAL_DIMS, ...)
    affine = volume.attrs["affine"]
    grid_shape = tuple(volume.shape[:3])
    if mask is None:
        first = volume.isel(time=0) if TIME_DIM in volume.dims else volume
        mask_values = np.asarray(first.values)
        mask_values = np.isfinite(mask_values) & (mask_values != 0)
    else:
        mask_values, mask_affine = load_mask(mask, affine=affine)
        check_same_grid(mask_values.shape, mask_affine, grid_shape, affine, "mask", "img")
    i, j, k = (index.astype(np.intp) for index in np.nonzero(mask_values))
    coords = voxel_coords(mask_values, affine)
    attrs = dict(volume.attrs, grid_shape=grid_shape)

    data = volume.data
    if volume.ndim == 3:
        values = data[i, j, k] if not isinstance(data, dsa.Array) else data.map_blocks(
            _gather, i, j, k, drop_axis=(0, 1), chunks=(i.size,), dtype=data.dtype
        )
        return xr.DataArray(values, dims=(VOXEL_DIM,), coords=coords, attrs=attrs, name=volume.name)

    if isinstance(data, dsa.Array):
        data = data.rechunk({0: -1, 1: -1, 2: -1})
        values = data.map_blocks(
            _gather, i, j, k, drop_axis=(0, 1), chunks=((i.size,), data.chunks[3]), dtype=data.dtype
        ).T
        if voxel_chunks is not None:
            if voxel_chunks == "auto":
                voxel_chunks = auto_voxel_chunk(values.shape[0], values.dtype.itemsize)
            values = values.rechunk({0: -1, 1: int(voxel_chunks)})
    else:
        values = np.ascontiguousarray(_gather(np.asarray(data), i, j, k).T)
    coords[TIME_DIM] = volume[TIME_DIM].values
    return xr.DataArray(values, dims=(TIME_DIM, VOXEL_DIM), coords=coords, attrs=attrs, name=volume.name)


def _scatter(block: np.ndarray, i, j, k, grid_shape, fill_value) -> np.ndarray:
    """``(..., V)`` -> ``(I, J, K, ...)``: place voxel values on the grid."""
    out = np.full(tuple(grid_shape) + block.shape[:-1], fill_value, dtype=block.dtype)
    out[i, j, k] = np.moveaxis(block, -1, 0)
    return out


def unmask(masked: xr.DataArray, fill_value=0, grid_shape=None, affine=None) -> xr.DataArray:
    """Put ``(..., voxel)`` data back on its grid.

    Parameters
    ----------
    masked : xarray.DataArray
        Has a ``voxel`` dim with ``i, j, k`` coords (as made by
        :func:`apply_mask`); other dims (``time``, seeds, components...) are
        kept after the spatial ones.
    fill_value : scalar
        Value outside the mask.
    grid_shape, affine : optional
        Override ``masked.attrs["grid_shape"]`` / ``["affine"]``.

    Returns
    -------
    xarray.DataArray
        Dims ``(i, j, k, *other dims)``. Dask-backed input stays lazy, chunked
        along the other dims with whole volumes in a chunk.
    """
    if VOXEL_DIM not in masked.dims:
        raise ValueError(f"masked: expected a '{VOXEL_DIM}' dim, got dims {masked.dims}")
    missing = [name for name in SPATIAL_DIMS if name not in masked.coords]
    if missing:
        raise ValueError(f"masked: the '{VOXEL_DIM}' dim lacks the grid index coords {missing}")
    grid_shape = tuple(grid_shape if grid_shape is not None else masked.attrs.get("grid_shape", ()))
    if len(grid_shape) != 3:
        raise ValueError("masked: no 3D 'grid_shape' attribute; pass grid_shape=")
    affine = np.asarray(affine if affine is not None else masked.attrs.get("affine", np.eye(4)), dtype=np.float64)

    other_dims = [dim for dim in masked.dims if dim != VOXEL_DIM]
    masked = masked.transpose(*other_dims, VOXEL_DIM)
    i, j, k = (masked[name].values.astype(np.intp) for name in SPATIAL_DIMS)
    dtype = np.result_type(masked.dtype, np.min_scalar_type(fill_value)) if masked.dtype.kind != "b" else masked.dtype

    data = masked.data
    if isinstance(data, dsa.Array):
        data = data.rechunk({data.ndim - 1: -1})
        values = data.map_blocks(
            _scatter,
            i, j, k, grid_shape, fill_value,
            drop_axis=data.ndim - 1,
            new_axis=(0, 1, 2),
            chunks=tuple((n,) for n in grid_shape) + data.chunks[:-1],
            dtype=dtype,
        )
    else:
        values = _scatter(np.asarray(data, dtype=dtype), i, j, k, grid_shape, fill_value)

    coords = world_coords(affine, grid_shape)
    coords.update({name: masked[name] for name in masked.coords if VOXEL_DIM not in masked[name].dims})
    attrs = {key: value for key, value in masked.attrs.items() if key != "grid_shape"}
    attrs["affine"] = affine
    return xr.DataArray(values, dims=SPATIAL_DIMS + tuple(other_dims), coords=coords, attrs=attrs, name=masked.name)
