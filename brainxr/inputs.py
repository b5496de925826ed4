"""What brainxr accepts as an image or a mask, and the one way it reads them.

:func:`check_niimg` (nilearn's name for the same job) turns a NIfTI path, a
nibabel image or a volume DataArray into a volume DataArray ``(i, j, k[,
...])`` that carries its grid; :func:`load_mask` turns any mask into a
boolean ``(I, J, K)`` array and its :class:`~brainxr.geometry.Grid`. Every
module that takes images calls these two; none reads images another way.

Part of the bottom layer: imports only :mod:`brainxr.dims`,
:mod:`brainxr.errors`, :mod:`brainxr.geometry` and :mod:`brainxr.nifti`.
"""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import xarray as xr

from brainxr.dims import SPATIAL_DIMS, TIME_DIM
from brainxr.geometry import Grid, get_grid
from brainxr.nifti import from_nibabel, nibabel_values, open_nifti, read_layout, read_values

__all__ = ["check_niimg", "image_values", "load_mask", "image_grid"]


def check_niimg(img, name: str = "img", ndim: int | None = None, chunks="auto", scaled_dtype=None) -> xr.DataArray:
    """Accept a path, a nibabel image or a volume DataArray; return a volume DataArray.

    Parameters
    ----------
    img : str, os.PathLike, nibabel image or xarray.DataArray
        A DataArray must have dims ``i, j, k`` (any others after them) and a
        grid (see :mod:`brainxr.geometry`).
    name : str
        Parameter name used in error messages.
    ndim : {3, 4, None}
        Required number of dims: a 4D image with one volume is accepted as
        3D, a 3D image as 4D with one volume (a ``time`` dim of length 1).
        ``None`` accepts any.
    chunks : "auto", int, dict or None
        For paths: volumes per dask chunk (:func:`brainxr.open_nifti`);
        ``None`` reads the image now.
    scaled_dtype : numpy dtype, optional
        dtype of the values of images stored with a scaling (scaled
        integers): default float32; nilearn's maskers see float64.

    Returns
    -------
    xarray.DataArray
        Dims ``(i, j, k[, ...])`` in that order, with its ``grid``.

    Raises
    ------
    TypeError
        For an input of another type.
    brainxr.errors.InputFileError
        For a missing or unreadable file.
    brainxr.errors.GeometryError
        For a DataArray without a grid.
    ValueError
        For a DataArray without spatial dims, or of the wrong ``ndim``.
    """
    if isinstance(img, xr.DataArray):
        if not set(SPATIAL_DIMS) <= set(img.dims):
            raise ValueError(
                f"{name}: expected a volume with dims {SPATIAL_DIMS}[, time], got {img.dims}"
                + ("; use brainxr.unmask() for (time, voxel) data" if "voxel" in img.dims else "")
            )
        get_grid(img, name)
        volume = img
    elif isinstance(img, (str, os.PathLike)):
        dtype = None if scaled_dtype is None else read_layout(img).scaled_as(scaled_dtype)
        volume = open_nifti(img, chunks=chunks, dtype=dtype)
    elif isinstance(img, nib.spatialimages.SpatialImage):
        volume = from_nibabel(img, scaled_dtype=scaled_dtype or np.float32)
    else:
        raise TypeError(f"{name}: expected a NIfTI path, a nibabel image or a DataArray, got {type(img).__name__}")
    volume = volume.transpose(*SPATIAL_DIMS, ...)
    if ndim == 3 and volume.ndim == 4 and volume.shape[3] == 1:
        volume = volume.isel({volume.dims[3]: 0}, drop=True)
    elif ndim == 4 and volume.ndim == 3:
        volume = volume.expand_dims(TIME_DIM, axis=3)
    if ndim is not None and volume.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}D image, got shape {tuple(volume.shape)}")
    return volume


def image_values(img, name: str = "img", scaled_dtype=None) -> tuple[np.ndarray, Grid]:
    """The values of a whole image, read now, and its grid: ``check_niimg(img, chunks=None)`` as numpy.

    A path or a nibabel image is read without building a DataArray: xarray
    imports ``dask.array`` (~0.3 s) when it builds its first variable, which
    a script that only reads small images whole does not need.

    Parameters
    ----------
    img : str, os.PathLike, nibabel image or xarray.DataArray
        The image.
    name : str
        Parameter name used in error messages.
    scaled_dtype : numpy dtype, optional
        As in :func:`check_niimg`.

    Returns
    -------
    values : numpy.ndarray
        Dims ``(i, j, k[, ...])``.
    grid : Grid
    """
    if isinstance(img, (str, os.PathLike)):
        layout = read_layout(img)
        return read_values(img, layout.scaled_as(scaled_dtype), layout), Grid(layout.shape[:3], layout.header.get_best_affine())
    if isinstance(img, nib.spatialimages.SpatialImage):
        return nibabel_values(img, scaled_dtype or np.float32), Grid(img.shape[:3], img.affine)
    volume = check_niimg(img, name, chunks=None)
    return np.asarray(volume.values), get_grid(volume, name)


def image_grid(img, name: str = "img") -> Grid:
    """The grid of an image (path, nibabel image or DataArray) without reading its values.

    Parameters
    ----------
    img : str, os.PathLike, nibabel image or xarray.DataArray
        The image.
    name : str
        Its parameter name, for error messages.
    """
    if isinstance(img, nib.spatialimages.SpatialImage):
        return Grid(img.shape[:3], img.affine)
    if isinstance(img, (str, os.PathLike)):
        layout = read_layout(img)
        return Grid(layout.shape[:3], layout.header.get_best_affine())
    if isinstance(img, xr.DataArray):
        return get_grid(img, name)
    raise TypeError(f"{name}: expected a NIfTI path, a nibabel image or a DataArray, got {type(img).__name__}")


def load_mask(mask, name: str = "mask", grid: Grid | None = None, allow_empty: bool = False) -> tuple[np.ndarray, Grid]:
    """Read a mask into a boolean ``(I, J, K)`` array and its grid.

    Parameters
    ----------
    mask : path, nibabel image, DataArray or boolean numpy array
        Non-zero (and non-NaN) voxels are in the mask.
    name : str
        Parameter name used in error messages.
    grid : Grid, optional
        The grid of a numpy ``mask`` (required for numpy input: it has none).
    allow_empty : bool, default=False
        Accept a mask without any voxel (otherwise a ValueError).

    Returns
    -------
    values : (I, J, K) bool numpy.ndarray
    grid : Grid
    """
    if isinstance(mask, np.ndarray):
        if grid is None:
            raise ValueError(f"{name}: a numpy mask has no affine; pass a mask image or DataArray")
        values = mask
        if values.shape[:3] != grid.shape:
            raise ValueError(f"{name}: a numpy mask of shape {values.shape} on a grid of shape {grid.shape}")
    else:
        values, grid = image_values(mask, name)
    if values.ndim == 4 and values.shape[3] == 1:
        values = values[..., 0]
    if values.ndim != 3:
        raise ValueError(f"{name}: expected a 3D mask, got shape {values.shape}")
    values = np.nan_to_num(values, nan=0.0) != 0
    if not allow_empty and not values.any():
        raise ValueError(f"{name}: the mask is empty (no non-zero voxel)")
    return values, grid


def is_path(img) -> bool:
    """Whether ``img`` names a file (str or path-like)."""
    return isinstance(img, (str, Path, os.PathLike))
