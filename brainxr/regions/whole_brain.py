"""Whole-brain ``(time, voxel)`` signals: a mask strategy, optional smoothing, lazily.

The whole-brain counterpart of the region extractions (nilearn's
``NiftiMasker``): the mask is given or computed (``"background"``,
``"epi"``, or a template mask), volumes are smoothed a block at a time before
masking, and the result is a lazy ``(time, voxel)`` DataArray ready for
:func:`brainxr.signal.clean`, seed maps, or
:func:`brainxr.unmask` + :func:`brainxr.to_nifti` back to a volume.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import xarray as xr

from brainxr import masking
from brainxr._arrays import is_dask_array
from brainxr.dims import TIME_DIM, VOXEL_DIM
from brainxr.geometry import Grid, get_grid
from brainxr.image import smooth_img
from brainxr.inputs import check_niimg, image_grid, load_mask
from brainxr.masking import apply_mask

MASK_STRATEGIES = {
    "background": masking.compute_background_mask,
    "epi": masking.compute_epi_mask,
    "whole-brain-template": partial(masking.compute_brain_mask, mask_type="whole-brain"),
    "gm-template": partial(masking.compute_brain_mask, mask_type="gm"),
    "wm-template": partial(masking.compute_brain_mask, mask_type="wm"),
}


def resolve_mask(img, mask, **mask_args) -> tuple[np.ndarray, Grid]:
    """A boolean mask and its grid: given (image), or computed by a strategy name."""
    if isinstance(mask, str) and mask in MASK_STRATEGIES:
        computed = MASK_STRATEGIES[mask](img, **mask_args)
        return np.asarray(computed.values), get_grid(computed, "mask")
    if isinstance(mask, str) and not Path(mask).exists():
        raise ValueError(f"mask: {mask!r} is neither a mask file nor a strategy among {tuple(MASK_STRATEGIES)}")
    return load_mask(mask, name="mask")


def _zero_non_finite(block):
    return np.where(np.isfinite(block), block, 0) if block.dtype.kind == "f" else block


def whole_brain_signals(
    img, mask="background", smoothing_fwhm=None, ensure_finite: bool = True, voxel_chunks: int = 16384, **mask_args
) -> xr.DataArray:
    """Lazy ``(time, voxel)`` signals of the voxels of a brain mask.

    Parameters
    ----------
    img : path, nibabel image or volume DataArray
        4D run. A NIfTI file is read in one streaming pass (one task); a
        dask-backed image is processed block by block.
    mask : mask image or strategy name, default="background"
        A mask on the image's grid, or ``"background"``, ``"epi"``,
        ``"whole-brain-template"``, ``"gm-template"``, ``"wm-template"``
        (computed now, from the image; see :mod:`brainxr.masking`).
    smoothing_fwhm : float, optional
        Gaussian smoothing (mm) of each volume before masking.
    ensure_finite : bool, default=True
        Non-finite values become 0 (nilearn's masking does the same).
    voxel_chunks : int, default=16384
        Voxels per chunk of the result (all of time in each chunk).
    **mask_args
        Options of the mask strategy.

    Returns
    -------
    xarray.DataArray
        ``(time, voxel)`` with voxel coords ``i, j, k, x, y, z`` and the
        ``grid`` coordinate; ``brainxr.unmask`` puts it back on the grid.
    """
    from brainxr.image import same_grid

    values, mask_grid = resolve_mask(img, mask, **mask_args)
    affine = mask_grid.affine
    image = image_grid(img, "img")
    if not same_grid(image.shape, image.affine, values.shape, affine):
        raise ValueError(
            "mask and img are not on the same grid; resample one onto the other first (brainxr.image.resample_img)"
        )
    if isinstance(img, (str, Path)):
        from brainxr.regions._streaming import lazy_masked_signals

        signals = lazy_masked_signals(img, values, affine, smoothing_fwhm=smoothing_fwhm)
        signals = signals.chunk({VOXEL_DIM: voxel_chunks})
    else:
        signals = apply_mask(smooth_img(check_niimg(img), smoothing_fwhm), values, voxel_chunks=voxel_chunks)
    if ensure_finite:
        data = signals.data
        data = data.map_blocks(_zero_non_finite, dtype=data.dtype) if is_dask_array(data) else _zero_non_finite(np.asarray(data))
        signals = signals.copy(data=data)
    return signals.transpose(TIME_DIM, VOXEL_DIM) if TIME_DIM in signals.dims else signals


def stream_signals(path, masks: dict, smoothing_fwhm: dict | None = None, voxel_chunks: int = 16384, ensure_finite: bool = True) -> dict:
    """Several lazy ``(time, voxel)`` outputs of one NIfTI file, read once.

    For workflows that need the same run twice, such as a seed-to-voxel map
    (the raw voxels of a seed sphere and the smoothed voxels of the brain):
    both come from one streaming pass over the file.

    Parameters
    ----------
    path : str or os.PathLike
        A 4D NIfTI file.
    masks : dict of name -> mask (image or boolean array on the file's grid)
    smoothing_fwhm : dict of name -> float, optional
        Gaussian smoothing (mm) of the volumes for these outputs.
    voxel_chunks : int
        Voxels per chunk of each output.
    ensure_finite : bool
        Non-finite values become 0.

    Returns
    -------
    dict of name -> xarray.DataArray
    """
    from brainxr.image import same_grid
    from brainxr.regions._streaming import MaskedOutput, lazy_stream_signals

    if not isinstance(path, (str, Path)):
        raise TypeError(f"path: expected a NIfTI file path, got {type(path).__name__}")
    path_grid = image_grid(path, "path")
    shape, affine = path_grid.shape, path_grid.affine
    smoothing_fwhm = smoothing_fwhm or {}
    unknown = sorted(set(smoothing_fwhm) - set(masks))
    if unknown:
        raise ValueError(f"smoothing_fwhm: no mask named {unknown}; masks are {list(masks)}")
    outputs = []
    for name, mask in masks.items():
        values, mask_grid = load_mask(mask, name=f"masks[{name!r}]", grid=path_grid)
        if not same_grid(values.shape, mask_grid.affine, shape, affine):
            raise ValueError(f"masks[{name!r}]: not on the grid of {path}; resample it first (brainxr.image.resample_img)")
        outputs.append(MaskedOutput(values, smoothing_fwhm.get(name), None, affine))
    signals = lazy_stream_signals(path, outputs, names=list(masks))
    result = {}
    for name, output in zip(masks, signals):
        output = output.chunk({VOXEL_DIM: voxel_chunks})
        if ensure_finite:
            output = output.copy(data=output.data.map_blocks(_zero_non_finite, dtype=output.dtype))
        result[name] = output
    return result
