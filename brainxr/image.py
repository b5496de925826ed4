"""Image functions: resampling, Gaussian smoothing, mean image, and nilearn's other ``image`` names.

The grid operations take a volume (a NIfTI path, a nibabel image or an
``(i, j, k[, ...])`` DataArray) and return a volume DataArray. Dask-backed
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
  replacing non-finite values by 0; large arrays (and any once numba is
  loaded) go through a compiled copy of it (:mod:`brainxr._smoothing`: the
  same operations in the same order, equal bit for bit, 2-4x faster).

nilearn's other image functions (``load_img``, ``new_img_like``,
``index_img``, ``iter_img``, ``concat_imgs``, ``math_img``,
``threshold_img``, ``binarize_img``, ``crop_img``, ``clean_img``,
``high_variance_confounds``, ...) return the kind of image they are given: a
DataArray for a DataArray (dask-backed data stays lazy, coordinates and
attrs carried over, the affine updated when the grid changes), and for a path
or a nibabel image an in-memory nibabel image with nilearn's dtype and header
rules, so that a nilearn script keeps calling ``.to_filename`` on it.
"""

from __future__ import annotations

import glob
import os
import sys
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import xarray as xr
from scipy import ndimage

from brainxr._arrays import array_module, is_dask_array
from brainxr.dims import GRID_COORD, SPATIAL_DIMS, TIME_DIM
from brainxr.geometry import Grid, get_grid, with_grid
from brainxr.inputs import check_niimg, image_grid, load_mask
from brainxr.nifti import from_nibabel

__all__ = [
    "grid_of",
    "same_grid",
    "resample_img",
    "resample_to_img",
    "smooth_array",
    "smooth_img",
    "mean_img",
    # nilearn's other image functions
    "binarize_img",
    "clean_img",
    "concat_imgs",
    "copy_img",
    "crop_img",
    "get_data",
    "high_variance_confounds",
    "index_img",
    "iter_img",
    "largest_connected_component_img",
    "load_img",
    "math_img",
    "new_img_like",
    "swap_img_hemispheres",
    "threshold_img",
]

# attrs describing the file a volume came from: dropped from derived images
_SOURCE_ATTRS = ("nifti", "source")

_INTERPOLATION_ORDER = {"nearest": 0, "linear": 1, "continuous": 3}

_FWHM_OVER_SIGMA = np.sqrt(8 * np.log(2))

#: arrays from this many values smooth through the compiled filter even when numba is not imported yet
#: (its import and first load, ~0.5 s, then pay for themselves); smaller ones use it once numba is loaded
_COMPILED_SMOOTHING_SIZE = 2**24


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
    grid = image_grid(img, name)
    return grid.shape, grid.affine


def same_grid(shape_a, affine_a, shape_b, affine_b) -> bool:
    """Whether two grids are the same (nilearn's ``check_same_fov`` test).

    Shapes must be equal and affines equal within ``numpy.allclose``'s
    default tolerances.

    Parameters
    ----------
    shape_a, affine_a : tuple of int and (4, 4) array-like
        The first grid.
    shape_b, affine_b : tuple of int and (4, 4) array-like
        The second grid.
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


def _derived_attrs(attrs: dict) -> dict:
    return {key: value for key, value in attrs.items() if key not in _SOURCE_ATTRS + ("affine", "grid_shape")}


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
    volume = check_niimg(img, name)
    if target_affine is None or target_shape is None:
        raise ValueError(f"{name}: resampling needs both target_affine and target_shape")
    target_affine = np.asarray(target_affine, dtype=np.float64)
    if target_affine.shape != (4, 4):
        raise ValueError(f"target_affine must be a 4x4 matrix, got shape {target_affine.shape}")
    target_shape = tuple(int(n) for n in target_shape)
    if len(target_shape) != 3:
        raise ValueError(f"target_shape must have 3 values, got {target_shape}")
    source_affine = get_grid(volume, name).affine
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
        xp = array_module(data)
        clip_range = (np.minimum(xp.nanmin(data), 0), np.maximum(xp.nanmax(data), 0))

    extra_dims = volume.dims[3:]
    if is_dask_array(data):
        import dask.array as dsa

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
    target = Grid(target_shape, target_affine)
    coords = {name_: volume[name_].variable for name_ in volume.coords if not set(volume[name_].dims) & set(SPATIAL_DIMS)}
    coords.update(target.world_coords())
    coords[GRID_COORD] = target.coordinate()
    return xr.DataArray(
        values,
        dims=SPATIAL_DIMS + extra_dims,
        coords=coords,
        attrs=_derived_attrs(volume.attrs),
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

    Parameters
    ----------
    source_img : str, os.PathLike, nibabel image or xarray.DataArray
        The image to resample.
    target_img : str, os.PathLike, nibabel image or xarray.DataArray
        The image whose grid (shape and affine) the result takes.
    interpolation, clip, fill_value
        As :func:`resample_img`.
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
                _gaussian_filter1d(arr, axis_sigma, axis)
    return arr


def _numba_loaded() -> bool:
    return "numba" in sys.modules


def _gaussian_filter1d(arr: np.ndarray, sigma: float, axis: int) -> None:
    """``scipy.ndimage.gaussian_filter1d`` in place; compiled for large float arrays (the same values, bit for bit)."""
    compiled = (
        arr.dtype in (np.float32, np.float64) and arr.ndim >= 2 and arr.flags.c_contiguous
        and (arr.size >= _COMPILED_SMOOTHING_SIZE or _numba_loaded())
    )
    if compiled:
        from brainxr._smoothing import gaussian_filter1d_inplace

        gaussian_filter1d_inplace(arr, sigma, axis)
    else:
        ndimage.gaussian_filter1d(arr, sigma, output=arr, axis=axis)


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
    volume = check_niimg(img, "img")
    if check_fwhm(fwhm) is None:
        return volume
    affine = get_grid(volume, "img").affine
    data = volume.data
    dtype = data.dtype if data.dtype.kind == "f" else np.dtype(np.float64 if data.dtype.itemsize >= 8 else np.float32)
    if is_dask_array(data):
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

    Parameters
    ----------
    img : str, os.PathLike, nibabel image or xarray.DataArray
        The image.
    dim : str
        The dimension averaged over.
    """
    volume = check_niimg(img, "img")
    if volume.ndim == 3:
        return volume
    if dim not in volume.dims:
        raise ValueError(f"img: no '{dim}' dim to average over, dims are {volume.dims}")
    data = volume.data
    dtype = data.dtype if data.dtype.kind == "f" else np.float64
    axis = volume.dims.index(dim)
    values = data.mean(axis=axis, dtype=dtype)
    dims = tuple(d for d in volume.dims if d != dim)
    coords = {name: volume[name].variable for name in volume.coords if dim not in volume[name].dims}
    return xr.DataArray(values, dims=dims, coords=coords, attrs=_derived_attrs(volume.attrs), name=volume.name)


# ---------------------------------------------------------------------------
# nilearn's other image functions: inputs and outputs
# ---------------------------------------------------------------------------


def _is_path(img) -> bool:
    return isinstance(img, (str, os.PathLike))


def _expand_wildcards(img, wildcards: bool = True):
    """A path with ``*`` / ``?`` / ``[`` as the sorted list of files it matches (nilearn's globbing)."""
    if not (wildcards and _is_path(img)):
        return img
    text = os.path.expanduser(str(img))
    if Path(text).exists() or not glob.has_magic(text):
        if not Path(text).exists():
            raise ValueError(f"File not found: '{text}'")
        return text
    matches = sorted(glob.glob(text))
    if not matches:
        raise ValueError(f"No files matching path: {text}")
    return matches


def _load(img, name: str = "img"):
    """A nibabel image (paths loaded lazily by nibabel) or a volume DataArray, as given."""
    if isinstance(img, xr.DataArray):
        return check_niimg(img, name)
    if _is_path(img):
        path = Path(os.path.expanduser(str(img)))
        if not path.exists():
            raise ValueError(f"{name}: file not found: '{path}'")
        return nib.load(path)
    if isinstance(img, nib.spatialimages.SpatialImage):
        return img
    raise TypeError(
        f"{name}: expected a NIfTI path, a nibabel image or a volume DataArray, got {type(img).__name__}"
    )


def _data(img):
    """The values of a loaded image: numpy for nibabel (nilearn's ``_get_data``), the (lazy) array of a DataArray."""
    if isinstance(img, xr.DataArray):
        return img.data
    return np.asanyarray(img.dataobj)


def _affine(img) -> np.ndarray:
    return get_grid(img).affine if isinstance(img, xr.DataArray) else np.asarray(img.affine, dtype=np.float64)


def _check_ndim(img, ndim: int, name: str):
    """The image checked as nilearn's ``check_niimg_3d/4d`` do (a 4D image of one volume is 3D)."""
    shape = img.shape
    if len(shape) == ndim:
        return img
    if ndim == 3 and len(shape) == 4 and shape[3] == 1:
        return _like(img, _data(img)[..., 0])
    raise ValueError(f"{name}: expected a {ndim}D image, got a {len(shape)}D image of shape {tuple(shape)}")


def _downcast_int64(data):
    """nilearn's ``_downcast_from_int64_if_possible`` (with its warnings)."""
    if data.dtype not in (np.int64, np.uint64) or is_dask_array(data):
        return data
    info = np.iinfo(np.int32)
    if data.size == 0 or (info.min <= data.min() and data.max() <= info.max):
        warnings.warn(
            "Data array used to create a new image contains 64-bit ints. This is likely due to creating the array "
            "with numpy and passing `int` as the `dtype`. Many tools such as FSL and SPM cannot deal with int64 in "
            "Nifti images, so for compatibility the data has been converted to int32.",
            stacklevel=4,
        )
        return data.astype(np.int32)
    warnings.warn(
        "Data array used to create a new image contains 64-bit ints, and some values too large to store in 32-bit "
        "ints. The resulting image thus contains 64-bit ints, which may cause some compatibility issues with some "
        "other tools or an error when saving the image to a Nifti file.",
        stacklevel=4,
    )
    return data


def _like(ref, data, affine=None, copy_header: bool = True):
    """An image of ``ref``'s kind holding ``data`` (nilearn's ``new_img_like``)."""
    if isinstance(ref, xr.DataArray):
        return _dataarray_like(ref, data, affine)
    affine = ref.affine if affine is None else np.asarray(affine)
    data = np.asarray(data)
    if data.dtype == bool:
        data = data.astype(np.uint8)
    data = _downcast_int64(data)
    header = None
    if copy_header and ref.header is not None:
        header = ref.header.copy()
        for field in ("scl_slope", "scl_inter", "glmax"):
            if field in header:
                header[field] = 0.0
        if "cal_max" in header:
            header["cal_max"] = np.max(data) if data.size > 0 else 0.0
        if "cal_min" in header:
            header["cal_min"] = np.min(data) if data.size > 0 else 0.0
    klass = nib.Nifti1Image if type(ref) is nib.Nifti1Pair else type(ref)
    return klass(data, affine, header=header)


def _dataarray_like(ref: xr.DataArray, data, affine=None) -> xr.DataArray:
    """``data`` labeled as ``ref``: same coords and attrs on the same grid, new grid coords otherwise."""
    affine = _affine(ref) if affine is None else np.asarray(affine, dtype=np.float64)
    if getattr(data, "dtype", None) == bool:
        data = data.astype(np.uint8)
    same_grid = tuple(data.shape[:3]) == tuple(ref.shape[:3]) and np.allclose(affine, _affine(ref))
    extra_dims = tuple(ref.dims[3:4]) if data.ndim == 4 else ()
    if data.ndim == 4 and not extra_dims:
        extra_dims = (TIME_DIM,)
    dims = SPATIAL_DIMS + extra_dims
    if same_grid:
        coords = {name: coord for name, coord in ref.coords.items() if set(coord.dims) <= set(dims)}
    else:
        coords = Grid(data.shape[:3], affine).coords
    for name, coord in ref.coords.items():
        if extra_dims and coord.dims == extra_dims and coord.size == data.shape[3]:
            coords[name] = coord
    attrs = {key: value for key, value in ref.attrs.items() if key not in ("affine", "grid_shape")}
    if not same_grid:
        attrs.pop("nifti", None)
    result = xr.DataArray(data, dims=dims, coords=coords, attrs=attrs)
    result.name = ref.name  # not the dask array's name, which xarray would take
    return result


# ---------------------------------------------------------------------------
# loading, creating, indexing
# ---------------------------------------------------------------------------


def load_img(img, wildcards: bool = True, dtype=None):
    """Load an image (nilearn's ``load_img``).

    Parameters
    ----------
    img : path, nibabel image, volume DataArray, or a list of 3D/4D images
        A path with wildcards (``*``, ``?``) loads the matching files,
        sorted, concatenated as 4D; a list is concatenated too.
    wildcards : bool, default=True
    dtype : numpy dtype or "auto", optional
        Convert the data (``"auto"``: int32 for integers, float32 for floats).

    Returns
    -------
    nibabel.Nifti1Image or xarray.DataArray
        A DataArray for a DataArray (lazy when it is), else a nibabel image
        (a file is read by nibabel on access).
    """
    img = _expand_wildcards(img, wildcards)
    if isinstance(img, (list, tuple)):
        return concat_imgs(img, dtype=dtype)
    loaded = _load(img)
    if dtype is None:
        return loaded
    data = _data(loaded)
    target = (np.int32 if data.dtype.kind in "iub" else np.float32) if dtype == "auto" else np.dtype(dtype)
    if data.dtype == target:
        return loaded
    converted = _like(loaded, data.astype(target))
    if isinstance(converted, nib.spatialimages.SpatialImage):
        converted.header.set_data_dtype(target)
    return converted


def new_img_like(ref_niimg, data, affine=None, copy_header: bool = True):
    """An image of the reference's kind holding ``data`` (nilearn's ``new_img_like``).

    Parameters
    ----------
    ref_niimg : path, nibabel image, volume DataArray, or a list of those (the first is used)
    data : numpy array (or dask array for a DataArray reference)
        Booleans are stored as uint8; int64 as int32 when the values fit (with nilearn's warning).
    affine : (4, 4) array, optional
        Default: the reference's.
    copy_header : bool, default=True
        Copy the reference's header (nibabel), resetting scaling and
        ``cal_min``/``cal_max`` as nilearn does.

    Returns
    -------
    nibabel image (the reference's class) or xarray.DataArray
    """
    if isinstance(ref_niimg, (list, tuple)):
        if not ref_niimg:
            raise TypeError("ref_niimg: an empty list has no reference image")
        ref_niimg = ref_niimg[0]
    if not (_is_path(ref_niimg) or isinstance(ref_niimg, (nib.spatialimages.SpatialImage, xr.DataArray))):
        raise TypeError(f"The reference image should be a niimg. {ref_niimg!r} was passed")
    return _like(_load(ref_niimg, "ref_niimg"), data, affine, copy_header)


def get_data(img) -> np.ndarray:
    """The image's values (nilearn's ``get_data``): the array itself for in-memory images, no scaling copy.

    A DataArray gives its (possibly dask) array.

    Parameters
    ----------
    img : str, os.PathLike, nibabel image or xarray.DataArray
        The image.
    """
    return _data(_load(img))


def copy_img(img):
    """A copy of an image, data and header (nilearn's ``copy_img``).

    Parameters
    ----------
    img : str, os.PathLike, nibabel image or xarray.DataArray
        The image.
    """
    if isinstance(img, xr.DataArray):
        return img.copy(deep=True)
    if not isinstance(img, nib.spatialimages.SpatialImage):
        raise ValueError("Input value is not an image")
    return _like(img, _data(img).copy(), img.affine.copy(), copy_header=True)


def index_img(imgs, index):
    """Volumes of a 4D image selected along its last dim (nilearn's ``index_img``).

    Parameters
    ----------
    imgs : 4D image (path, nibabel image or DataArray)
    index : int, slice, list, boolean array or pandas Series
        An int gives a 3D image.

    Returns
    -------
    nibabel image or xarray.DataArray (lazy for a lazy DataArray)
    """
    img = _check_ndim(_load(imgs, "imgs"), 4, "imgs")
    if hasattr(index, "iloc") and hasattr(index, "to_numpy"):
        index = index.to_numpy().flatten()
    n_volumes = img.shape[3]
    if isinstance(index, (int, np.integer)) and not -n_volumes <= index < n_volumes:
        raise IndexError(f"Integer index {index} out of range for last dimension with size {n_volumes}")
    if isinstance(img, xr.DataArray):
        return img.isel({img.dims[3]: index})
    if isinstance(index, (int, np.integer, slice)):
        data = np.asanyarray(img.slicer[..., index].dataobj)
    else:
        data = _data(img)[:, :, :, index]
    return _like(img, data, img.affine)


def iter_img(imgs):
    """Iterate over the volumes of a 4D image (nilearn's ``iter_img``).

    Parameters
    ----------
    imgs : str, os.PathLike, nibabel image or xarray.DataArray
        A 4D image.

    Yields
    ------
    3D nibabel images, or 3D DataArrays for a DataArray (lazy for a lazy one)
    """
    img = _check_ndim(_load(imgs, "imgs"), 4, "imgs")
    for index in range(img.shape[3]):
        if isinstance(img, xr.DataArray):
            yield img.isel({img.dims[3]: index})
        else:
            yield _like(img, _data(img)[..., index], img.affine)


def concat_imgs(niimgs, dtype=np.float32, ensure_ndim=None, memory=None, memory_level=0, auto_resample: bool = False,
                verbose=0):
    """Concatenate 3D or 4D images along time (nilearn's ``concat_imgs``).

    Parameters
    ----------
    niimgs : list of images, or a path with wildcards
        All 3D or all 4D, on one grid (or resampled onto the first with
        ``auto_resample``). DataArrays are concatenated lazily.
    dtype : numpy dtype or None, default=float32
        None keeps the first image's dtype.
    ensure_ndim : {None, 4}
        nilearn's check of the result's dimensionality.
    memory, memory_level, verbose
        Accepted for compatibility (nothing is cached).
    auto_resample : bool, default=False

    Returns
    -------
    4D nibabel image, or a DataArray when the first image is one
    """
    del memory, memory_level, verbose
    niimgs = _expand_wildcards(niimgs)
    if _is_path(niimgs) or isinstance(niimgs, (nib.spatialimages.SpatialImage, xr.DataArray)):
        niimgs = [niimgs]
    images = [_load(img, f"niimgs[{position}]") for position, img in enumerate(niimgs)]
    if not images:
        raise TypeError("Cannot concatenate empty objects")
    ndim = len(images[0].shape) if ensure_ndim is None else ensure_ndim - 1
    if ndim not in (3, 4):
        raise TypeError(f"Concatenated images must be 3D or 4D. You gave a list of {ndim}D images")
    images = [_check_ndim(img, ndim, f"niimgs[{position}]") for position, img in enumerate(images)]
    first = images[0]
    shape, affine = tuple(first.shape[:3]), _affine(first)
    for position, img in enumerate(images[1:], start=1):
        if tuple(img.shape[:3]) != shape or not np.allclose(_affine(img), affine):
            if not auto_resample:
                raise ValueError(
                    f"niimgs[{position}]: shape {tuple(img.shape[:3])} or affine differ from niimgs[0]'s "
                    f"({shape}); pass auto_resample=True or resample the images first"
                )
            resampled = resample_img(img if isinstance(img, xr.DataArray) else from_nibabel(img), affine, shape,
                                     interpolation="continuous")
            images[position] = resampled if isinstance(first, xr.DataArray) else _like(first, resampled.values)
    if dtype is None:
        dtype = _data(first).dtype
    blocks = [_data(img) if ndim == 4 else _data(img)[..., None] for img in images]
    if isinstance(first, xr.DataArray):
        lazy = next((block for block in blocks if is_dask_array(block)), None)
        stacked = array_module(lazy).concatenate([block.astype(dtype) for block in blocks], axis=3)
        result = _dataarray_like(first.expand_dims(TIME_DIM, axis=3) if first.ndim == 3 else first, stacked)
        return result.drop_vars(TIME_DIM, errors="ignore") if result.sizes[result.dims[3]] != first.shape[-1] else result
    data = np.empty(shape + (sum(block.shape[3] for block in blocks),), order="F", dtype=dtype)
    start = 0
    for block in blocks:
        data[..., start : start + block.shape[3]] = block
        start += block.shape[3]
    return _like(first, data, first.affine)


# ---------------------------------------------------------------------------
# arithmetic and thresholds
# ---------------------------------------------------------------------------


def math_img(formula: str, copy_header_from: str | None = None, **imgs):
    """Evaluate a numpy expression on images (nilearn's ``math_img``).

    Parameters
    ----------
    formula : str
        A Python expression of the image names and ``np`` (e.g.
        ``"np.mean(img, axis=-1)"``, ``"img1 - img2"``).
    copy_header_from : str, optional
        Name of the image whose header the result gets.
    **imgs
        The images, on one grid. With DataArrays the formula runs on their
        (dask) arrays: the result stays lazy.

    Returns
    -------
    nibabel image, or a DataArray when the images are DataArrays
    """
    missing = [name for name in imgs if name not in formula and name != copy_header_from]
    if missing:
        warnings.warn(f"Some images ({missing}) are not mentioned in the formula={formula!r}.", stacklevel=2)
    if copy_header_from is not None and copy_header_from not in imgs:
        raise ValueError(
            f"copy_header_from={copy_header_from!r} but '{copy_header_from}' is missing from 'imgs' that contains: "
            f"{imgs.keys()}"
        )
    loaded = {name: _load(img, name) for name, img in imgs.items()}
    if not loaded:
        raise ValueError(f"math_img: no image given for the formula {formula!r}")
    names = list(loaded)
    reference = loaded[names[0]]
    for name in names[1:]:
        img = loaded[name]
        if tuple(img.shape[:3]) != tuple(reference.shape[:3]) or not np.allclose(_affine(img), _affine(reference)):
            raise ValueError(
                f"Input images cannot be compared: {name} and {names[0]} have different shapes "
                f"({tuple(img.shape[:3])} vs {tuple(reference.shape[:3])}) or affines"
            )
    namespace = {name: _float_data(img) for name, img in loaded.items()}
    namespace["np"] = np
    try:
        result = eval(formula, namespace)  # noqa: S307 (nilearn's documented behaviour)
    except Exception as error:
        error.args = (f"Input formula couldn't be processed, you provided '{formula}',", *error.args)
        raise
    last = loaded[names[-1]]
    if copy_header_from is None:
        return _like(last, result, _affine(last), copy_header=False)
    source = loaded[copy_header_from]
    if np.ndim(result) != len(source.shape):
        raise ValueError(
            "Cannot copy the header. The result of the formula has a different number of dimensions than the image "
            "to copy the header from."
        )
    return _like(source, result, _affine(source))


def _float_data(img):
    """nilearn's ``safe_get_data``: the values, as stored (a copy for numpy)."""
    data = _data(img)
    return data if is_dask_array(data) else np.array(data)


def _cutoff(threshold, values, two_sided: bool) -> float:
    """nilearn's ``check_threshold``: a number, or a percentile string such as ``"95%"`` of the values.

    For lazy values a number is taken as it is (the check of its range, a
    warning in nilearn, would compute the image).
    """
    message = f'If "threshold" is given as string it should be a number followed by the percent sign, e.g. "25.3%"'
    percentile = isinstance(threshold, str)
    if percentile:
        if not threshold.endswith("%"):
            raise ValueError(message)
        try:
            threshold = float(threshold[:-1])
        except ValueError as error:
            error.args += (message,)
            raise
    elif isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)):
        raise TypeError("threshold should be either a number or a string finishing with a percent sign")
    threshold = float(threshold)
    if threshold < 0 and two_sided:
        raise ValueError('"threshold" should not be a negative value when two_sided=True.')
    if threshold < 0 and percentile:
        raise ValueError('"threshold" should not be a negative percentile value.')
    if is_dask_array(values):
        if not percentile:
            return threshold
        values = values.compute()
    values = np.asarray(values)
    if threshold >= 0:
        values = np.abs(values) if two_sided else values[values >= 0]
        if percentile:
            return float(np.percentile(values, threshold) + 1e-5)
        if values.size and threshold > values.max():
            warnings.warn(f"The given float value must not exceed {values.max()}. But, you have given "
                          f"threshold={threshold}.", UserWarning, stacklevel=4)
    else:
        values = values[values <= 0]
        if values.size and threshold < values.min():
            warnings.warn(f"The given float value must not be less than {values.min()}. But, you have given "
                          f"threshold={threshold}.", UserWarning, stacklevel=4)
    return threshold


def _apply_threshold(data, two_sided: bool, cutoff: float):
    if two_sided:
        below = (-cutoff < data) & (data < cutoff)
    elif cutoff >= 0:
        below = data < cutoff
    else:
        below = data > cutoff
    return data * ~below if is_dask_array(data) else np.where(below, data.dtype.type(0), data)


def _cluster_size_threshold(volume: np.ndarray, cluster_threshold) -> np.ndarray:
    """Zero the clusters (6-connectivity, each sign apart) smaller than ``cluster_threshold`` voxels."""
    volume = volume.copy()
    structure = ndimage.generate_binary_structure(3, 1)
    for sign in np.unique(np.sign(volume)):
        labels, _ = ndimage.label((volume * sign) > 0, structure)
        sizes = np.bincount(labels.ravel())
        small = sizes < cluster_threshold
        small[0] = False
        volume[small[labels]] = 0
    return volume


def _mask_on_grid(mask_img, img) -> np.ndarray:
    """A 3D boolean mask on ``img``'s grid (resampled with nearest neighbour when needed)."""
    mask, mask_grid = load_mask(mask_img, name="mask_img", allow_empty=True)
    if mask.shape != tuple(img.shape[:3]) or not np.allclose(mask_grid.affine, _affine(img)):
        as_float = with_grid(xr.DataArray(mask.astype(np.float32), dims=SPATIAL_DIMS), mask_grid)
        mask = np.asarray(resample_img(as_float, _affine(img), img.shape[:3], interpolation="nearest").values) > 0
    return mask


def threshold_img(img, threshold, cluster_threshold=0, two_sided: bool = True, mask_img=None, copy: bool = True,
                  copy_header: bool = True):
    """Set to 0 the voxels below a threshold, and the clusters smaller than a size (nilearn's ``threshold_img``).

    Parameters
    ----------
    img : 3D or 4D image
    threshold : float or str
        A value, or a percentile of the (absolute, when two-sided) values
        in the mask such as ``"90%"``.
    cluster_threshold : int, default=0
        Clusters (6-connected, each sign apart) of fewer voxels are removed.
    two_sided : bool, default=True
        Keep ``|x| >= threshold`` (else ``x >= threshold``, or
        ``x <= threshold`` for a negative threshold).
    mask_img : 3D mask, optional
        Voxels outside are set to 0 and ignored by percentiles.
    copy, copy_header : bool
        As in nilearn.

    Returns
    -------
    nibabel image, or a DataArray (lazy when the input is, unless a
    percentile or cluster threshold needs the values)
    """
    del copy  # the input is never modified
    loaded = _load(img)
    data = _data(loaded)
    if is_dask_array(data):
        xp = array_module(data)
        data = xp.where(xp.isfinite(data), data, 0)
    else:
        data = np.array(data)
        if data.dtype.kind == "f":
            data[~np.isfinite(data)] = 0
    values_for_cutoff = data
    if mask_img is not None:
        mask = _mask_on_grid(mask_img, loaded)
        values_for_cutoff = data[mask]
        keep = mask if data.ndim == 3 else mask[..., None]
        data = data * keep if is_dask_array(data) else np.where(keep, data, data.dtype.type(0))
    cutoff = _cutoff(threshold, values_for_cutoff, two_sided)
    data = _apply_threshold(data, two_sided, cutoff)
    if cluster_threshold > 0:
        data = np.asarray(data)
        volumes = data[..., None] if data.ndim == 3 else data
        volumes = np.stack([_cluster_size_threshold(volumes[..., n], cluster_threshold)
                            for n in range(volumes.shape[3])], axis=3)
        data = volumes[..., 0] if data.ndim == 3 else volumes
    return _like(loaded, data, _affine(loaded), copy_header=copy_header)


def binarize_img(img, threshold=0.0, mask_img=None, two_sided: bool = False, copy_header: bool = True):
    """1 where :func:`threshold_img` keeps a voxel, 0 elsewhere, as int8 (nilearn's ``binarize_img``).

    Parameters
    ----------
    img : str, os.PathLike, nibabel image or xarray.DataArray
        The image.
    threshold, mask_img, two_sided, copy_header
        As :func:`threshold_img`.
    """
    thresholded = threshold_img(img, threshold, mask_img=mask_img, two_sided=two_sided, copy_header=copy_header)
    data = _data(thresholded).astype(bool).astype(np.int8)
    return _like(thresholded, data, _affine(thresholded))


def crop_img(img, rtol: float = 1e-8, copy: bool = True, pad: bool = True, return_offset: bool = False,
             copy_header: bool = True):
    """Crop an image to the box of its non-negligible values (nilearn's ``crop_img``).

    Parameters
    ----------
    img : 3D or 4D image
    rtol : float, default=1e-8
        Values within ``rtol * max(|values|)`` of 0 are negligible.
    copy : bool, default=True
    pad : bool, default=True
        Keep one voxel of zeros around the box.
    return_offset : bool, default=False
        Also return the slices kept.
    copy_header : bool, default=True

    Returns
    -------
    image (the input's kind; the affine moved to the box's corner), and the slices with ``return_offset``
    """
    loaded = _load(img)
    data = np.asarray(_data(loaded))
    infinity_norm = max(-data.min(), data.max())
    passes = (data < -rtol * infinity_norm) | (data > rtol * infinity_norm)
    if data.ndim == 4:
        passes = passes.any(axis=-1)
    coords = np.array(np.nonzero(passes))
    if coords.shape[1] == 0:
        start, end, pad = np.zeros(3, dtype=int), np.array(data.shape[:3]), False
        warnings.warn(f"No values above {rtol}. Returning original image.", stacklevel=2)
    else:
        start, end = coords.min(axis=1), coords.max(axis=1) + 1
    if pad:
        start, end = np.maximum(start - 1, 0), np.minimum(end + 1, data.shape[:3])
    slices = tuple(slice(int(a), int(b)) for a, b in zip(start, end))
    affine = _affine(loaded)
    cropped_affine = np.eye(4)
    cropped_affine[:3, :3] = affine[:3, :3]
    cropped_affine[:3, 3] = affine[:3, 3] + affine[:3, :3] @ np.array([s.start for s in slices])
    if isinstance(loaded, xr.DataArray):
        cropped = loaded.isel(dict(zip(SPATIAL_DIMS, slices)))
        cropped = with_grid(cropped.copy(deep=copy), Grid(cropped.shape[:3], cropped_affine))
        cropped.attrs = {k: v for k, v in cropped.attrs.items() if k != "nifti"}
    else:
        values = data[slices]
        cropped = _like(loaded, values.copy() if copy else values, cropped_affine, copy_header=copy_header)
    return (cropped, slices) if return_offset else cropped


def largest_connected_component_img(imgs):
    """The largest connected component (6-connectivity) of each 3D image (nilearn's function).

    Parameters
    ----------
    imgs : 3D image or list of 3D images

    Returns
    -------
    image (uint8 for nibabel, as nilearn's booleans) or list of images
    """
    single = _is_path(imgs) or not isinstance(imgs, (list, tuple))
    results = []
    for position, img in enumerate([imgs] if single else imgs):
        loaded = _check_ndim(_load(img, "imgs" if single else f"imgs[{position}]"), 3, "imgs")
        volume = np.asarray(_data(loaded))
        labels, n_labels = ndimage.label(volume)
        if not n_labels:
            raise ValueError("No non-zero values: no connected components")
        counts = np.bincount(labels.ravel())
        counts[0] = 0
        results.append(_like(loaded, labels == counts.argmax(), _affine(loaded)))
    return results[0] if single else results


def swap_img_hemispheres(img):
    """The image mirrored left-right along its first axis (nilearn's ``swap_img_hemispheres``).

    The image must be axis-aligned with a positive diagonal (RAS), as
    nilearn's reordered images are.

    Parameters
    ----------
    img : str, os.PathLike, nibabel image or xarray.DataArray
        The image.
    """
    loaded = _check_ndim(_load(img), 3, "img")
    affine = _affine(loaded)
    if not np.allclose(affine[:3, :3], np.diag(np.diag(affine[:3, :3]))) or (np.diag(affine)[:3] < 0).any():
        raise ValueError(
            "img: swap_img_hemispheres needs an axis-aligned image with positive voxel sizes (RAS); "
            "resample it first (brainxr.image.resample_img)"
        )
    return _like(loaded, _data(loaded)[::-1], affine)


# ---------------------------------------------------------------------------
# signals of whole images
# ---------------------------------------------------------------------------


def _voxel_signals(img, mask_img):
    """``(time, voxel)`` values of a 4D image: every voxel (C order) or those of ``mask_img``, and the mask."""
    loaded = _check_ndim(_load(img, "imgs"), 4, "imgs")
    data = _data(loaded)
    n_volumes = loaded.shape[3]
    mask = None if mask_img is None else _mask_on_grid(mask_img, loaded)
    if mask is None:
        signals = data.reshape(-1, n_volumes).T
    elif is_dask_array(data):
        flat = data.reshape(-1, n_volumes)
        signals = flat[np.flatnonzero(mask)].T
    else:
        signals = data[mask].T
    return loaded, signals, mask


def high_variance_confounds(imgs, n_confounds: int = 5, percentile: float = 2.0, detrend: bool = True, mask_img=None):
    """Confounds from the voxels of highest variance (nilearn's ``image.high_variance_confounds``).

    Parameters
    ----------
    imgs : 4D image
    n_confounds : int, default=5
    percentile : float, default=2.0
        Highest-variance percentile of voxels kept.
    detrend : bool, default=True
    mask_img : 3D mask, optional
        Only its voxels are considered (default every voxel).

    Returns
    -------
    ``(time, n_confounds)`` numpy array (see :func:`brainxr.signal.high_variance_confounds`)
    """
    from brainxr.signal import high_variance_confounds as signal_confounds  # noqa: PLC0415 (signal imports nothing of image)

    _, signals, _ = _voxel_signals(imgs, mask_img)
    return signal_confounds(np.asarray(signals), n_confounds=n_confounds, percentile=percentile, detrend=detrend)


def clean_img(imgs, runs=None, detrend: bool = True, standardize=True, confounds=None, low_pass=None, high_pass=None,
              t_r=None, ensure_finite: bool = False, mask_img=None, **kwargs):
    """Clean every voxel's time series (nilearn's ``clean_img``): :func:`brainxr.signal.clean` per voxel.

    Parameters
    ----------
    imgs : 4D image
    runs, detrend, standardize, confounds, low_pass, high_pass, t_r, ensure_finite
        As :func:`brainxr.signal.clean` (nilearn's defaults of ``clean_img``:
        detrend and standardize). Filtering needs ``t_r``.
    mask_img : 3D mask, optional
        Only its voxels are cleaned; the others are 0 in the result.
    **kwargs
        ``clean__<name>``: more parameters of ``clean`` (e.g. ``clean__sample_mask``).

    Returns
    -------
    4D image of the input's kind; a dask-backed DataArray is cleaned lazily, chunk of voxels by chunk.
    """
    from brainxr.signal import clean  # noqa: PLC0415

    if (low_pass is not None or high_pass is not None) and t_r is None:
        loaded = _load(imgs, "imgs")
        extra = ""
        if isinstance(loaded, nib.spatialimages.SpatialImage) and len(loaded.shape) == 4:
            extra = f"imgs header suggest it to be {loaded.header.get_zooms()[3]}"
        raise ValueError(f"Repetition time (t_r) must be specified for filtering. You specified None. {extra}")
    clean_kwargs = {key[len("clean__"):]: value for key, value in kwargs.items() if key.startswith("clean__")}
    loaded, signals, mask = _voxel_signals(imgs, mask_img)
    if is_dask_array(signals):
        signals = signals.rechunk({0: -1})
    cleaned = clean(signals, runs=runs, detrend=detrend, standardize=standardize, confounds=confounds,
                    low_pass=low_pass, high_pass=high_pass, t_r=t_r, ensure_finite=ensure_finite, **clean_kwargs)
    n_kept = cleaned.shape[0]
    shape = tuple(loaded.shape[:3])
    if mask is None:
        volumes = cleaned.T.reshape(shape + (n_kept,))
    elif is_dask_array(cleaned):
        index = np.full(int(np.prod(shape)), cleaned.shape[1], dtype=np.intp)
        index[np.flatnonzero(mask)] = np.arange(cleaned.shape[1])
        xp = array_module(cleaned)
        padded = xp.concatenate([cleaned, xp.zeros((n_kept, 1), dtype=cleaned.dtype)], axis=1)
        volumes = padded[:, index].T.reshape(shape + (n_kept,))
    else:
        volumes = np.zeros(shape + (n_kept,), dtype=cleaned.dtype)
        volumes[mask] = cleaned.T
    if isinstance(loaded, xr.DataArray) and n_kept != loaded.shape[3]:
        loaded = loaded.isel({loaded.dims[3]: _kept_volumes(clean_kwargs.get("sample_mask"), loaded.shape[3])})
    return _like(loaded, volumes, _affine(loaded))


def _kept_volumes(sample_mask, n_volumes: int) -> np.ndarray:
    keep = np.asarray(sample_mask)
    return np.flatnonzero(keep) if keep.dtype == bool else keep % n_volumes
