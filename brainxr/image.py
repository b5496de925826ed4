"""Grid operations on volume images: resampling, Gaussian smoothing, mean image.

Every function takes a volume (a NIfTI path, a nibabel image or an
``(i, j, k[, ...])`` DataArray) and returns a volume DataArray. Dask-backed
images stay lazy and are processed a block of volumes at a time (whole
volumes in space, chunks over the trailing dims), so a run is never loaded
whole.

The arithmetic is nilearn's (0.14), so that results agree with
``nilearn.image.resample_img`` / ``resample_to_img`` / ``smooth_img`` /
``mean_img``:

- resampling maps target voxels into the source with
  ``inv(source_affine) @ target_affine`` and interpolates each 3D volume
  with :func:`scipy.ndimage.affine_transform` (order 0 ``"nearest"``, 1
  ``"linear"``, 3 ``"continuous"``), with nilearn's treatment of non-finite
  values (extrapolated 2 voxels out before interpolating, then put back as
  NaN) and optional clipping to the source range (0 included);
- smoothing converts the FWHM in mm to a sigma in voxels per axis from the
  affine's voxel sizes and runs :func:`scipy.ndimage.gaussian_filter1d`
  along each spatial axis (scipy's default ``"reflect"`` boundary), after
  replacing non-finite values by 0.
"""

from __future__ import annotations

import warnings

import dask.array as dsa
import numpy as np
import xarray as xr
from scipy import ndimage

from brainxr.nifti import SPATIAL_DIMS, TIME_DIM, world_coords

__all__ = [
    "grid_of",
    "same_grid",
    "resample_img",
    "resample_to_img",
    "smooth_array",
    "smooth_img",
    "mean_img",
    "index_img",
]

# attrs describing the file a volume came from: dropped from derived images
_SOURCE_ATTRS = ("nifti", "source")

_INTERPOLATION_ORDER = {"nearest": 0, "linear": 1, "continuous": 3}

_FWHM_OVER_SIGMA = np.sqrt(8 * np.log(2))


def _as_volume(img, name: str) -> xr.DataArray:
    # imported here: brainxr.masking imports this module for mask strategies
    from brainxr.masking import as_volume

    return as_volume(img, name=name).transpose(*SPATIAL_DIMS, ...)


def grid_of(img, name: str = "img") -> tuple[tuple[int, int, int], np.ndarray]:
    """The spatial shape and the affine of a volume.

    Parameters
    ----------
    img : path, nibabel image or volume DataArray
    name : str
        Parameter name used in error messages.

    Returns
    -------
    shape : tuple of 3 int
    affine : (4, 4) numpy.ndarray
    """
    if hasattr(img, "affine") and hasattr(img, "shape") and not isinstance(img, xr.DataArray):
        return tuple(int(n) for n in img.shape[:3]), np.asarray(img.affine, dtype=np.float64)
    volume = _as_volume(img, name)
    return tuple(int(n) for n in volume.shape[:3]), np.asarray(volume.attrs["affine"], dtype=np.float64)


def same_grid(shape_a, affine_a, shape_b, affine_b) -> bool:
    """Whether two grids are the same (nilearn's ``check_same_fov`` test).

    Shapes must be equal and affines equal within ``numpy.allclose``'s
    default tolerances.
    """
    return tuple(shape_a[:3]) == tuple(shape_b[:3]) and np.allclose(affine_a, affine_b)


# ---------------------------------------------------------------------------
# Resampling
# ---------------------------------------------------------------------------


def _extrapolate_out_mask(data: np.ndarray, mask: np.ndarray, iterations: int = 1):
    """Fill a shell of voxels around ``mask`` with the mean of their in-mask neighbours.

    nilearn's ``masking.extrapolate_out_mask``: used before interpolating a
    volume that holds non-finite values, so that they do not spread.
    """
    if iterations > 1:
        data, mask = _extrapolate_out_mask(data, mask, iterations=iterations - 1)
    new_mask = ndimage.binary_dilation(mask)
    larger_mask = np.zeros(np.array(mask.shape) + 2, dtype=bool)
    larger_mask[1:-1, 1:-1, 1:-1] = mask
    masked_data = np.zeros(larger_mask.shape + data.shape[3:])
    masked_data[1:-1, 1:-1, 1:-1] = data
    masked_data[np.logical_not(larger_mask)] = np.nan
    outer_shell = larger_mask.copy()
    outer_shell[1:-1, 1:-1, 1:-1] = np.logical_xor(new_mask, mask)
    shell_i, shell_j, shell_k = np.where(outer_shell)
    neighbours = np.array(
        [
            masked_data[shell_i + di, shell_j + dj, shell_k + dk]
            for di, dj, dk in ((1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1))
        ]
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        extrapolation = np.nansum(neighbours, axis=0) / np.sum(np.isfinite(neighbours), axis=0)
    extrapolation[~np.isfinite(extrapolation)] = 0
    new_data = np.zeros_like(masked_data)
    new_data[outer_shell] = extrapolation
    new_data[larger_mask] = masked_data[larger_mask]
    return new_data[1:-1, 1:-1, 1:-1], new_mask


def _resample_volume(volume, matrix, offset, target_shape, order, out, fill_value) -> None:
    """Interpolate one 3D volume into ``out`` (nilearn's ``_resample_one_img``)."""
    non_finite = None
    if volume.dtype.kind == "f":
        non_finite = ~np.isfinite(volume)
        if non_finite.any():
            volume = _extrapolate_out_mask(volume, ~non_finite, iterations=2)[0]
        else:
            non_finite = None
    ndimage.affine_transform(
        volume, matrix, offset=offset, output_shape=target_shape, output=out, cval=fill_value, order=order
    )
    if non_finite is not None:
        resampled_non_finite = ndimage.affine_transform(
            non_finite, matrix, offset=offset, output_shape=target_shape, order=0
        )
        out[resampled_non_finite] = np.nan


def _resample_block(block, matrix, offset, target_shape, order, fill_value, dtype, clip_range):
    """Resample every 3D volume of an ``(I, J, K, ...)`` block."""
    values = np.asarray(block)
    if values.dtype.kind == "b":
        values = values.astype(np.uint8)
    out = np.zeros(tuple(target_shape) + values.shape[3:], dtype=np.dtype(dtype) if dtype != bool else np.uint8, order="F")
    for index in np.ndindex(*values.shape[3:]):
        spatial = (slice(None),) * 3 + index
        _resample_volume(values[spatial], matrix, offset, target_shape, order, out[spatial], fill_value)
    if clip_range is not None:
        vmin, vmax = (np.asarray(v).item() for v in clip_range)
        out.clip(vmin, vmax, out=out)
    if dtype == bool:
        out = out.astype(bool)
    return out


def _resampled_dtype(dtype: np.dtype, interpolation: str):
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return bool
    if interpolation == "continuous" and dtype.kind in "iu":
        # nilearn's _get_resampled_data_dtype: int16 -> float16 is bumped to float32
        name = dtype.name.replace("uint", "float").replace("int", "float")
        return np.dtype("float32") if name in ("float8", "float16") else np.dtype(name)
    return dtype.newbyteorder("=")


def _derived_attrs(attrs: dict, affine) -> dict:
    out = {key: value for key, value in attrs.items() if key not in _SOURCE_ATTRS}
    out["affine"] = np.asarray(affine, dtype=np.float64)
    return out


def resample_img(
    img,
    target_affine=None,
    target_shape=None,
    interpolation: str = "continuous",
    clip: bool = True,
    fill_value: float = 0.0,
    name: str = "img",
) -> xr.DataArray:
    """Resample a volume image onto the grid ``(target_shape, target_affine)``.

    Parameters
    ----------
    img : path, nibabel image or volume DataArray
        3D, or with trailing dims (``time``, ``map``...) resampled volume by
        volume; dask-backed images stay lazy.
    target_affine : (4, 4) array
        Affine of the target grid.
    target_shape : 3 ints
        Shape of the target grid.
    interpolation : {"continuous", "linear", "nearest"}
        Spline order 3, 1 or 0. ``"nearest"`` keeps integer label values.
    clip : bool, default=True
        Clip the result to the range of the source values (0 included), as
        nilearn's ``resample_img`` does against ringing.
    fill_value : float
        Value of target voxels outside the source field of view.
    name : str
        Parameter name used in error messages.

    Returns
    -------
    xarray.DataArray
        ``(i, j, k, ...)`` on the target grid, with its world coords and
        ``affine``; the image's other attrs are kept (not its file header).
        The input is returned unchanged when it is on the target grid already.
    """
    if interpolation not in _INTERPOLATION_ORDER:
        raise ValueError(
            f"interpolation must be one of {tuple(_INTERPOLATION_ORDER)}, got {interpolation!r}"
        )
    volume = _as_volume(img, name)
    if target_affine is None or target_shape is None:
        raise ValueError(f"{name}: resampling needs both target_affine and target_shape")
    target_affine = np.asarray(target_affine, dtype=np.float64)
    if target_affine.shape != (4, 4):
        raise ValueError(f"target_affine must be a 4x4 matrix, got shape {target_affine.shape}")
    target_shape = tuple(int(n) for n in target_shape)
    if len(target_shape) != 3:
        raise ValueError(f"target_shape must have 3 values, got {target_shape}")
    source_affine = np.asarray(volume.attrs["affine"], dtype=np.float64)
    if same_grid(volume.shape, source_affine, target_shape, target_affine):
        return volume

    if np.all(target_affine == source_affine):
        transform = np.eye(4)
    else:
        transform = np.linalg.inv(source_affine) @ target_affine
    matrix, offset = transform[:3, :3], transform[:3, 3]
    if np.all(np.diag(np.diag(matrix)) == matrix):
        matrix = np.diag(matrix)  # lets scipy use its faster zoom/shift path
    order = _INTERPOLATION_ORDER[interpolation]
    dtype = _resampled_dtype(volume.dtype, interpolation)

    data = volume.data
    clip_range = None
    if clip and volume.dtype.kind != "b":
        low, high = (np.nanmin, np.nanmax) if not isinstance(data, dsa.Array) else (dsa.nanmin, dsa.nanmax)
        clip_range = (np.minimum(low(data), 0), np.maximum(high(data), 0))

    extra_dims = volume.dims[3:]
    if isinstance(data, dsa.Array):
        data = data.rechunk({0: -1, 1: -1, 2: -1})
        clip_args = () if clip_range is None else tuple(dsa.asarray(v).reshape((1,) * data.ndim) for v in clip_range)
        values = dsa.map_blocks(
            _resample_with_clip,
            data,
            *clip_args,
            matrix=matrix,
            offset=offset,
            target_shape=target_shape,
            order=order,
            fill_value=fill_value,
            out_dtype=dtype,
            dtype=dtype,
            chunks=tuple((n,) for n in target_shape) + data.chunks[3:],
            meta=np.empty((0,) * data.ndim, dtype=dtype),
        )
    else:
        values = _resample_block(
            data, matrix, offset, target_shape, order, fill_value, dtype,
            None if clip_range is None else tuple(np.asarray(v) for v in clip_range),
        )
    coords = world_coords(target_affine, target_shape)
    coords.update({name_: volume[name_] for name_ in volume.coords if not set(volume[name_].dims) & set(SPATIAL_DIMS)})
    return xr.DataArray(
        values,
        dims=SPATIAL_DIMS + extra_dims,
        coords=coords,
        attrs=_derived_attrs(volume.attrs, target_affine),
        name=volume.name,
    )


def _resample_with_clip(block, *clip, matrix, offset, target_shape, order, fill_value, out_dtype):
    clip_range = (clip[0].ravel()[0], clip[1].ravel()[0]) if clip else None
    return _resample_block(block, matrix, offset, target_shape, order, fill_value, out_dtype, clip_range)


def resample_to_img(
    source_img, target_img, interpolation: str = "continuous", clip: bool = False, fill_value: float = 0.0
) -> xr.DataArray:
    """Resample ``source_img`` onto the grid of ``target_img``.

    Same as :func:`resample_img` with the target's shape and affine, and
    nilearn's ``resample_to_img`` default of no clipping.
    """
    target_shape, target_affine = grid_of(target_img, "target_img")
    return resample_img(
        source_img, target_affine, target_shape, interpolation=interpolation, clip=clip,
        fill_value=fill_value, name="source_img",
    )


# ---------------------------------------------------------------------------
# Smoothing
# ---------------------------------------------------------------------------


def _fast_smooth_array(arr: np.ndarray) -> np.ndarray:
    """nilearn's ``fwhm="fast"``: a [0.2, 1, 0.2] kernel per axis, normalized."""
    neighbor_weight = 0.2
    scale = 1 + 6 * neighbor_weight
    smoothed = arr.copy()
    weighted = neighbor_weight * arr
    smoothed[:-1] += weighted[1:]
    smoothed[1:] += weighted[:-1]
    smoothed[:, :-1] += weighted[:, 1:]
    smoothed[:, 1:] += weighted[:, :-1]
    smoothed[:, :, :-1] += weighted[:, :, 1:]
    smoothed[:, :, 1:] += weighted[:, :, :-1]
    smoothed /= scale
    return smoothed


def check_fwhm(fwhm):
    """Normalize ``fwhm``: None (no smoothing), ``"fast"``, or a 3-vector in mm."""
    if fwhm is None:
        return None
    if isinstance(fwhm, str):
        if fwhm != "fast":
            raise ValueError(f"fwhm must be a number of mm, a sequence of 3, 'fast' or None, got {fwhm!r}")
        return fwhm
    if np.isscalar(fwhm) and fwhm == 0:
        warnings.warn(
            f"The parameter 'fwhm' for smoothing is specified as {fwhm}. "
            "Setting it to None (no smoothing will be performed)",
            stacklevel=3,
        )
        return None
    values = np.asarray([0.0 if value is None else value for value in np.ravel(np.asarray([fwhm], dtype=object))], dtype=np.float64)
    if values.size not in (1, 3) or np.any(values < 0) or not np.all(np.isfinite(values)):
        raise ValueError(f"fwhm must be a non-negative number of mm or a sequence of 3, got {fwhm!r}")
    return values


def smooth_array(
    arr: np.ndarray, affine, fwhm, ensure_finite: bool = True, copy: bool = True, spatial_axes=(0, 1, 2)
) -> np.ndarray:
    """Gaussian smoothing of an ``(I, J, K[, n])`` array along its 3 spatial axes.

    The kernel of :func:`smooth_img`, equal to nilearn's ``smooth_array``.

    Parameters
    ----------
    arr : numpy.ndarray
        3D or 4D (volumes along the last axis, or along the first with
        ``spatial_axes=(1, 2, 3)``). Integer data becomes float32 (float64 for
        64-bit integers).
    affine : (4, 4) or (3, 3) array
        Gives the voxel sizes (not used for ``fwhm="fast"``).
    fwhm : float, sequence of 3, "fast" or None
        Full width at half maximum in mm.
    ensure_finite : bool
        Replace non-finite values by 0 first.
    copy : bool
        Work on a copy (the input is left untouched).
    spatial_axes : 3 ints
        The axes of ``i, j, k``. Each 1D pass gives the same values whatever
        the layout; with the volumes first and C order (``(n, I, J, K)``)
        each volume is contiguous, which is faster.
    """
    fwhm = check_fwhm(fwhm)
    if arr.dtype.kind in "iub":
        arr = arr.astype(np.float64 if arr.dtype.itemsize >= 8 else np.float32)
    elif copy:
        arr = arr.copy()
    if ensure_finite:
        arr[~np.isfinite(arr)] = 0
    if isinstance(fwhm, str):
        return _fast_smooth_array(arr)
    if fwhm is not None:
        scale = np.asarray(affine)[:3, :3]
        voxel_size = np.sqrt(np.sum(scale**2, axis=0))
        sigma = fwhm / (_FWHM_OVER_SIGMA * voxel_size)
        for axis, axis_sigma in zip(spatial_axes, sigma):
            if axis_sigma > 0.0:
                ndimage.gaussian_filter1d(arr, axis_sigma, output=arr, axis=axis)
    return arr


def _smooth_block(block, affine, fwhm, ensure_finite):
    return smooth_array(np.asarray(block), affine, fwhm, ensure_finite=ensure_finite, copy=True)


def smooth_img(img, fwhm, ensure_finite: bool = True) -> xr.DataArray:
    """Smooth a volume image with a Gaussian kernel, a block of volumes at a time.

    Parameters
    ----------
    img : path, nibabel image or volume DataArray
        3D or 4D; dask-backed images stay lazy (each chunk, a block of whole
        volumes, is smoothed on its own, so memory is one block).
    fwhm : float, sequence of 3, "fast" or None
        Full width at half maximum of the kernel in mm (per axis for a
        sequence). None returns the image unchanged; ``"fast"`` is nilearn's
        cheap [0.2, 1, 0.2] kernel.
    ensure_finite : bool, default=True
        Replace NaN and infinite values by 0 before smoothing (otherwise
        they spread).

    Returns
    -------
    xarray.DataArray
        Same dims, coords and attrs, float dtype.
    """
    volume = _as_volume(img, "img")
    if check_fwhm(fwhm) is None:
        return volume
    affine = np.asarray(volume.attrs["affine"], dtype=np.float64)
    data = volume.data
    dtype = data.dtype if data.dtype.kind == "f" else np.dtype(np.float64 if data.dtype.itemsize >= 8 else np.float32)
    if isinstance(data, dsa.Array):
        data = data.rechunk({0: -1, 1: -1, 2: -1})
        values = data.map_blocks(
            _smooth_block, affine=affine, fwhm=fwhm, ensure_finite=ensure_finite, dtype=dtype,
            meta=np.empty((0,) * data.ndim, dtype=dtype),
        )
    else:
        values = smooth_array(np.asarray(data), affine, fwhm, ensure_finite=ensure_finite, copy=True)
    return volume.copy(data=values)


# ---------------------------------------------------------------------------
# Reductions over volumes
# ---------------------------------------------------------------------------


def mean_img(img, dim: str = TIME_DIM) -> xr.DataArray:
    """Mean of a 4D image over its volumes (a 3D image is returned as is).

    The mean keeps the data's float dtype (integers give float64), as
    nilearn's ``mean_img``; dask-backed images stay lazy.
    """
    volume = _as_volume(img, "img")
    if volume.ndim == 3:
        return volume
    if dim not in volume.dims:
        raise ValueError(f"img: no '{dim}' dim to average over, dims are {volume.dims}")
    data = volume.data
    dtype = data.dtype if data.dtype.kind == "f" else np.float64
    axis = volume.dims.index(dim)
    values = data.mean(axis=axis, dtype=dtype)
    dims = tuple(d for d in volume.dims if d != dim)
    coords = {name: volume[name] for name in volume.coords if dim not in volume[name].dims}
    return xr.DataArray(values, dims=dims, coords=coords, attrs=_derived_attrs(volume.attrs, volume.attrs["affine"]), name=volume.name)


def index_img(img, index: int, dim: str = TIME_DIM) -> xr.DataArray:
    """One volume of a 4D image (the image itself when it is 3D)."""
    volume = _as_volume(img, "img")
    if volume.ndim == 3:
        return volume
    return volume.isel({dim: index})
