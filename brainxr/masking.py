"""Masking: ``(i, j, k, time)`` volumes <-> ``(time, voxel)`` tables.

The voxel order is C order over ``(i, j, k)`` (``numpy.nonzero(mask)``), the
order nilearn's maskers use, so columns match nilearn's output one to one.
The ``voxel`` dim carries its grid index (``i, j, k``) and world position
(``x, y, z`` in mm); with the ``grid`` coordinate (affine and shape, see
:mod:`brainxr.geometry`) that is all :func:`unmask` needs to restore a volume.

One gather kernel and one scatter kernel serve numpy- and dask-backed data.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import xarray as xr
from scipy import ndimage

from brainxr._arrays import is_dask_array
from brainxr.dims import SPATIAL_DIMS, TIME_DIM, VOXEL_DIM
from brainxr.geometry import Grid, check_same_grid, get_grid, masked_dataarray
from brainxr.image import mean_img, resample_img, smooth_array
from brainxr.inputs import check_niimg, image_grid, load_mask
from brainxr.nifti import from_nibabel


def _gather(block: np.ndarray, i: np.ndarray, j: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``(I, J, K[, n])`` -> ``(V[, n])``: the voxels at ``(i, j, k)``."""
    return block[i, j, k]


def auto_voxel_chunk(n_time: int, itemsize: int = 4, target_bytes: int = 128 * 2**20, n_voxels: int | None = None) -> int:
    """Voxels per chunk so that a ``(time, voxel)`` chunk holds about ``target_bytes`` (at most ``n_voxels``)."""
    chunk = int(max(1, target_bytes // max(1, n_time * itemsize)))
    return chunk if n_voxels is None else max(1, min(chunk, n_voxels))


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
        coords ``i, j, k, x, y, z``, the ``grid`` coordinate, the image's
        ``time`` coordinate (with its ``t_r``) and the image's attrs.
    """
    volume = check_niimg(img)
    grid = get_grid(volume, "img")
    if mask is None:
        first = volume.isel(time=0) if TIME_DIM in volume.dims else volume
        mask_values = np.asarray(first.values)
        mask_values = np.isfinite(mask_values) & (mask_values != 0)
    else:
        mask_values, mask_grid = load_mask(mask, grid=grid)
        check_same_grid(mask_grid, grid, "mask", "img")
    i, j, k = (index.astype(np.intp) for index in np.nonzero(mask_values))
    attrs = dict(volume.attrs)

    data = volume.data
    if volume.ndim == 3:
        values = data[i, j, k] if not is_dask_array(data) else data.map_blocks(
            _gather, i, j, k, drop_axis=(0, 1), chunks=(i.size,), dtype=data.dtype
        )
        return masked_dataarray(values, mask_values, grid.affine, (VOXEL_DIM,), attrs=attrs, name=volume.name)

    if is_dask_array(data):
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
    time = {TIME_DIM: volume[TIME_DIM].variable}
    return masked_dataarray(values, mask_values, grid.affine, coords=time, attrs=attrs, name=volume.name)


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
        Override the shape / affine of the ``grid`` coordinate (needed, both,
        when ``masked`` has none).

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
    if grid_shape is None or affine is None:
        grid = get_grid(masked, "masked")
        grid = Grid(grid.shape if grid_shape is None else grid_shape, grid.affine if affine is None else affine)
    else:
        grid = Grid(grid_shape, affine)
    grid_shape, affine = grid.shape, grid.affine

    other_dims = [dim for dim in masked.dims if dim != VOXEL_DIM]
    masked = masked.transpose(*other_dims, VOXEL_DIM)
    i, j, k = (masked[name].values.astype(np.intp) for name in SPATIAL_DIMS)
    dtype = np.result_type(masked.dtype, np.min_scalar_type(fill_value)) if masked.dtype.kind != "b" else masked.dtype

    data = masked.data
    if is_dask_array(data):
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

    coords = {name: masked[name].variable for name in masked.coords if VOXEL_DIM not in masked[name].dims}
    coords.update(grid.world_coords())
    coords["grid"] = grid.coordinate()
    attrs = {key: value for key, value in masked.attrs.items() if key not in ("grid_shape", "affine")}
    return xr.DataArray(values, dims=SPATIAL_DIMS + tuple(other_dims), coords=coords, attrs=attrs, name=masked.name)


# ---------------------------------------------------------------------------
# Mask computation (strategies of nilearn's NiftiMasker)
# ---------------------------------------------------------------------------


def mask_to_dataarray(mask: np.ndarray, affine, name: str = "mask") -> xr.DataArray:
    """A boolean ``(i, j, k)`` mask DataArray on the grid given by ``affine``."""
    mask = np.asarray(mask, dtype=bool)
    grid = Grid(mask.shape, affine)
    return xr.DataArray(mask, dims=SPATIAL_DIMS, coords={**grid.world_coords(), "grid": grid.coordinate()}, name=name)


def largest_connected_component(volume: np.ndarray) -> np.ndarray:
    """The largest connected component (6-connectivity) of a 3D boolean array.

    Raises a ValueError when the volume is empty.
    """
    labels, n_labels = ndimage.label(np.asarray(volume))
    if not n_labels:
        raise ValueError("No non-zero values: no connected components")
    if n_labels == 1:
        return np.asarray(volume).astype(bool)
    counts = np.bincount(labels.ravel().astype(int))
    counts[0] = 0
    return labels == counts.argmax()


def _post_process_mask(mask: np.ndarray, opening=2, connected=True, warning_msg="") -> np.ndarray:
    """Opening and largest connected component, as nilearn's ``_post_process_mask``."""
    if opening:
        opening = int(opening)
        mask = ndimage.binary_erosion(mask, iterations=opening)
    mask_any = mask.any()
    if not mask_any:
        warnings.warn(f"Computed an empty mask. {warning_msg}", UserWarning, stacklevel=3)
    if connected and mask_any:
        mask = largest_connected_component(mask)
    if opening:
        mask = ndimage.binary_dilation(mask, iterations=2 * opening)
        mask = ndimage.binary_erosion(mask, iterations=opening)
    return mask


def _mean_volume(img, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The mean volume of a 3D/4D image as numpy (one pass over a lazy run)."""
    volume = check_niimg(img, name=name)
    mean = mean_img(volume)
    return np.array(mean.transpose(*SPATIAL_DIMS).values), get_grid(volume, name).affine


def _border_values(data: np.ndarray, border_size: int) -> np.ndarray:
    return np.concatenate(
        [
            data[:border_size, :, :].ravel(),
            data[-border_size:, :, :].ravel(),
            data[:, :border_size, :].ravel(),
            data[:, -border_size:, :].ravel(),
            data[:, :, :border_size].ravel(),
            data[:, :, -border_size:].ravel(),
        ]
    )


def compute_background_mask(img, border_size: int = 2, connected: bool = False, opening=False) -> xr.DataArray:
    """Brain mask from the background value found on the border of the image.

    The background is the median of the mean image's values within
    ``border_size`` voxels of its faces (NaN if any border voxel is NaN);
    the mask holds every voxel whose mean differs from it. Equal to
    ``nilearn.masking.compute_background_mask``.

    Parameters
    ----------
    img : path, nibabel image or volume DataArray
        3D or 4D; a lazy 4D image is averaged in one streaming pass.
    border_size : int, default=2
    connected : bool, default=False
        Keep only the largest connected component.
    opening : bool or int, default=False
        Morphological opening iterations.

    Returns
    -------
    xarray.DataArray
        Boolean ``(i, j, k)`` mask on the image's grid.
    """
    data, affine = _mean_volume(img, "img")
    return mask_to_dataarray(background_mask_of_mean(data, border_size, connected, opening), affine)


def background_mask_of_mean(mean: np.ndarray, border_size: int = 2, connected: bool = False, opening=False) -> np.ndarray:
    """The kernel of :func:`compute_background_mask`: the boolean mask of a mean image (numpy in, numpy out)."""
    border = _border_values(mean, border_size)
    if np.isnan(border).any():
        # SPM-style images use NaN as background
        mask = np.logical_not(np.isnan(mean))
    else:
        mask = mean != np.median(border)
    return _post_process_mask(
        mask, opening=opening, connected=connected,
        warning_msg="Are you sure that input images have a homogeneous background.",
    )


def compute_epi_mask(
    img,
    lower_cutoff: float = 0.2,
    upper_cutoff: float = 0.85,
    connected: bool = True,
    opening=2,
    exclude_zeros: bool = False,
    ensure_finite: bool = True,
) -> xr.DataArray:
    """Brain mask of an EPI run by T. Nichols' histogram heuristic.

    The threshold is the middle of the widest gap between consecutive sorted
    values of the (lightly smoothed) mean image, between the
    ``lower_cutoff`` and ``upper_cutoff`` fractions of its histogram. Equal
    to ``nilearn.masking.compute_epi_mask``.

    Parameters
    ----------
    img : path, nibabel image or volume DataArray
        3D or 4D EPI image (not detrended); a lazy 4D image is averaged in one
        streaming pass.
    lower_cutoff, upper_cutoff : float
        Fractions of the histogram where the gap is looked for.
    connected : bool, default=True
        Keep only the largest connected component.
    opening : bool or int, default=2
        Morphological opening iterations (also enables a 1-voxel FWHM
        smoothing of the mean image).
    exclude_zeros : bool, default=False
        Leave zeros out of the histogram (zero-padded images).
    ensure_finite : bool, default=True
        Treat non-finite values as 0.

    Returns
    -------
    xarray.DataArray
        Boolean ``(i, j, k)`` mask on the image's grid.
    """
    mean, affine = _mean_volume(img, "img")
    mask = epi_mask_of_mean(mean, lower_cutoff, upper_cutoff, connected, opening, exclude_zeros, ensure_finite)
    return mask_to_dataarray(mask, affine)


def epi_mask_of_mean(mean: np.ndarray, lower_cutoff: float = 0.2, upper_cutoff: float = 0.85, connected: bool = True,
                     opening=2, exclude_zeros: bool = False, ensure_finite: bool = True) -> np.ndarray:
    """The kernel of :func:`compute_epi_mask`: the boolean mask of a mean image (numpy in, numpy out; ``mean`` is
    not modified)."""
    if not 0 <= lower_cutoff < upper_cutoff <= 1:
        raise ValueError(
            f"lower_cutoff and upper_cutoff must satisfy 0 <= lower_cutoff < upper_cutoff <= 1, "
            f"got {lower_cutoff} and {upper_cutoff}"
        )
    mean = np.array(mean)
    if opening:
        nan_mask = np.isnan(mean)
        mean = smooth_array(mean, np.eye(4), 1, ensure_finite=True, copy=False)
        mean[nan_mask] = np.nan
    if ensure_finite:
        mean[~np.isfinite(mean)] = 0
    sorted_values = np.sort(np.ravel(mean))
    if exclude_zeros:
        sorted_values = sorted_values[sorted_values != 0]
    lower = int(np.floor(lower_cutoff * len(sorted_values)))
    upper = min(int(np.floor(upper_cutoff * len(sorted_values))), len(sorted_values) - 1)
    delta = sorted_values[lower + 1 : upper + 1] - sorted_values[lower:upper]
    if delta.size == 0:
        raise ValueError(f"img: too few voxels ({len(sorted_values)}) to find an EPI mask threshold")
    widest = delta.argmax()
    threshold = 0.5 * (sorted_values[widest + lower] + sorted_values[widest + lower + 1])
    return _post_process_mask(
        mean >= threshold, opening=opening, connected=connected,
        warning_msg="Are you sure that input data are EPI images not detrended. ",
    )


def compute_brain_mask(img, threshold: float = 0.5, connected: bool = True, opening=2, mask_type: str = "whole-brain") -> xr.DataArray:
    """Whole-brain, gray-matter or white-matter mask from the MNI152 template, on the image's grid.

    nilearn's recipe on nilearn's template: the 1 mm MNI152 T1 (or gray /
    white matter) template of :mod:`brainxr.datasets.mni152` (TemplateFlow's
    ``MNI152NLin2009aSym``, scaled to [0, 1]) is resampled onto the image's
    grid with cubic interpolation and thresholded at ``threshold``, then
    opened and reduced to its largest connected component. Only the image's
    grid is used, not its values. Equal to
    ``nilearn.masking.compute_brain_mask``.

    Parameters
    ----------
    img : path, nibabel image or volume DataArray
    threshold : float, default=0.5
    connected : bool, default=True
    opening : bool or int, default=2
    mask_type : {"whole-brain", "gm", "wm"}

    Returns
    -------
    xarray.DataArray
        Boolean ``(i, j, k)`` mask on the image's grid.
    """
    from brainxr.datasets.mni152 import template_for_mask

    if mask_type not in ("whole-brain", "gm", "wm"):
        raise ValueError(f"mask_type must be 'whole-brain', 'gm' or 'wm', got {mask_type!r}")
    shape, affine = (grid := image_grid(img, "img")).shape, grid.affine
    template = from_nibabel(template_for_mask(mask_type))
    resampled = resample_img(template, affine, shape, interpolation="continuous", clip=False)
    mask = np.asarray(resampled.values) >= threshold
    mask = _post_process_mask(
        mask, opening=opening, connected=connected,
        warning_msg=f"{mask_type} mask is empty, lower the threshold or check your input FOV",
    )
    return mask_to_dataarray(mask, affine)


def intersect_masks(masks, threshold: float = 0.5, connected: bool = True) -> xr.DataArray:
    """Voxels in more than ``threshold`` of the masks (nilearn's ``intersect_masks``).

    Parameters
    ----------
    masks : list of masks (paths, nibabel images, DataArrays) on one grid
    threshold : float in [0, 1]
        1 keeps the intersection, 0 the union.
    connected : bool, default=True
        Keep only the largest connected component.

    Returns
    -------
    xarray.DataArray
        Boolean ``(i, j, k)`` mask.
    """
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be within [0, 1], got {threshold}")
    if len(masks) == 0:
        raise ValueError("masks: no mask provided for intersection")
    threshold = min(threshold, 1 - 1.0e-7)
    count = None
    for position, mask in enumerate(masks):
        values, grid = load_mask(mask, name=f"masks[{position}]", allow_empty=True)
        if count is None:
            count, reference = values.astype(int), grid
        else:
            check_same_grid(grid, reference, f"masks[{position}]", "masks[0]")
            count += values
    group = count > threshold * len(masks)
    if connected and group.any():
        group = largest_connected_component(group)
    return mask_to_dataarray(group, reference.affine)


def _multi_mask(images, name: str, compute, threshold: float, connected: bool, target_affine, target_shape):
    """nilearn's ``compute_multi_*_mask``: one mask per image (on the target grid), then their intersection."""
    if isinstance(images, (str, Path)) or not len(images):
        raise TypeError(f"{name}: expected a non-empty list of images, got {images!r}")
    masks = []
    for position, img in enumerate(images):
        volume = check_niimg(img, name=f"{name}[{position}]")
        if target_affine is not None or target_shape is not None:
            if target_affine is None or target_shape is None:
                raise ValueError(f"{name}: target_affine and target_shape go together (brainxr needs both)")
            volume = resample_img(mean_img(volume), target_affine, target_shape, interpolation="continuous")
        masks.append(compute(volume))
    return intersect_masks(masks, threshold=threshold, connected=connected)


def compute_multi_epi_mask(epi_imgs, lower_cutoff: float = 0.2, upper_cutoff: float = 0.85, connected: bool = True,
                           opening=2, threshold: float = 0.5, target_affine=None, target_shape=None,
                           exclude_zeros: bool = False, n_jobs=1, memory=None, verbose=0) -> xr.DataArray:
    """A mask common to several runs: :func:`compute_epi_mask` of each, intersected (nilearn's function).

    Parameters
    ----------
    epi_imgs : list of 3D/4D images (paths, nibabel images, DataArrays)
    lower_cutoff, upper_cutoff, connected, opening, exclude_zeros
        As :func:`compute_epi_mask`.
    threshold : float, default=0.5
        Fraction of the runs' masks a voxel must be in (:func:`intersect_masks`).
    target_affine, target_shape : optional
        Grid of the masks (each run's mean image resampled onto it first).
    n_jobs, memory, verbose
        Accepted for compatibility (the runs are reduced one after another, each in one pass).

    Returns
    -------
    xarray.DataArray
        Boolean ``(i, j, k)`` mask.
    """
    del n_jobs, memory, verbose
    return _multi_mask(
        epi_imgs, "epi_imgs",
        lambda volume: compute_epi_mask(volume, lower_cutoff=lower_cutoff, upper_cutoff=upper_cutoff,
                                        connected=connected, opening=opening, exclude_zeros=exclude_zeros),
        threshold, connected, target_affine, target_shape,
    )


def compute_multi_background_mask(data_imgs, border_size: int = 2, connected: bool = True, opening=2,
                                  threshold: float = 0.5, target_affine=None, target_shape=None, n_jobs=1,
                                  memory=None, verbose=0) -> xr.DataArray:
    """A mask common to several runs: :func:`compute_background_mask` of each, intersected (nilearn's function).

    Parameters
    ----------
    data_imgs : list of images
        The runs.
    border_size, connected, opening
        As :func:`compute_background_mask`.
    threshold, target_affine, target_shape
        As :func:`compute_multi_epi_mask`.
    n_jobs, memory, verbose
        Accepted for nilearn's signature; unused.
    """
    del n_jobs, memory, verbose
    return _multi_mask(
        data_imgs, "data_imgs",
        lambda volume: compute_background_mask(volume, border_size=border_size, connected=connected, opening=opening),
        threshold, connected, target_affine, target_shape,
    )


def compute_multi_brain_mask(target_imgs, threshold: float = 0.5, connected: bool = True, opening=2, memory=None,
                             verbose=0, mask_type: str = "whole-brain") -> xr.DataArray:
    """The template mask on the grid shared by several images (nilearn's ``compute_multi_brain_mask``).

    The images must share one grid (a ValueError names the first that does
    not); only their grid is used, as in :func:`compute_brain_mask`.

    Parameters
    ----------
    target_imgs : list of images
        The images.
    threshold, connected, opening, mask_type
        As :func:`compute_brain_mask`.
    memory, verbose
        Accepted for nilearn's signature; unused.
    """
    del memory, verbose
    if isinstance(target_imgs, (str, Path)) or not len(target_imgs):
        raise TypeError(f"target_imgs: expected a non-empty list of images, got {target_imgs!r}")
    first = image_grid(target_imgs[0], "target_imgs[0]")
    for position, img in enumerate(target_imgs[1:], start=1):
        check_same_grid(image_grid(img, f"target_imgs[{position}]"), first, f"target_imgs[{position}]", "target_imgs[0]")
    return compute_brain_mask(target_imgs[0], threshold=threshold, connected=connected, opening=opening,
                              mask_type=mask_type)
