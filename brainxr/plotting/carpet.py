"""Carpet plot (grayplot): voxel intensities over time as one image.

Works on 4D images and on brainxr's masked ``(time, voxel)`` DataArrays; for
a dask-backed DataArray the detrending and standardisation run per voxel
chunk and the carpet is computed once, already decimated in time.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.gridspec import GridSpecFromSubplotSpec

from brainxr.geometry import get_t_r
from brainxr.plotting._inputs import as_volume

#: above this many volumes the carpet is decimated in time by powers of 2 (nilearn's rule)
LONG_CUTOFF = 800
#: at most this many voxels (evenly spaced rows) are drawn: more than a figure has pixel rows,
#: so the picture is the same while memory and time stay bounded for whole-brain runs
MAX_ROWS = 4000


def detrend_standardize(signals: np.ndarray, detrend: bool = True, standardize: bool = True) -> np.ndarray:
    """Remove a linear trend from each column and z-score it (ddof=1; constant columns stay 0).

    Works on one ``(time, voxel)`` block: the kernel of both the numpy and the
    dask paths.
    """
    signals = np.asarray(signals, dtype=np.float64)
    signals = signals - signals.mean(axis=0)
    if detrend and len(signals) > 1:
        ramp = np.arange(len(signals), dtype=np.float64)
        ramp -= ramp.mean()
        signals = signals - np.outer(ramp, ramp @ signals / (ramp @ ramp))
    if standardize and len(signals) > 1:
        std = signals.std(axis=0, ddof=1)
        std[std < np.finfo(np.float64).eps] = 1.0
        signals = signals / std
    return signals.astype(np.float32)


def _masked_signals(img, mask_img):
    """``(time, voxel)`` signals (numpy or dask), per-voxel label values or None, and the TR."""
    if isinstance(img, xr.DataArray) and "voxel" in img.dims and "time" in img.dims:
        signals = img.transpose("time", "voxel").data
        return signals, None, get_t_r(img, "img", required=False)
    t_r = None
    if isinstance(img, xr.DataArray):
        t_r = get_t_r(img, "img", required=False)
    elif hasattr(img, "header") and len(img.header.get_zooms()) > 3:
        t_r = float(img.header.get_zooms()[3])
    volume = as_volume(img, name="img", ndim=4)
    if mask_img is None:
        labels = None
        keep = np.nan_to_num(volume.data).std(axis=3) > 0
    else:
        mask = as_volume(mask_img, name="mask_img")
        if mask.shape[:3] != volume.shape[:3] or not np.allclose(mask.affine, volume.affine):
            raise ValueError(
                f"mask_img: must be on the image grid (shape {volume.shape[:3]}), got shape {mask.shape[:3]}"
            )
        values = np.rint(mask.data).astype(np.int64)
        keep = values != 0
        labels = values[keep] if len(np.unique(values)) > 2 else None
    return volume.data[keep].T, labels, t_r


def plot_carpet(img, mask_img=None, mask_labels=None, t_r=None, detrend=True, output_file=None, figure=None,
                axes=None, vmin=None, vmax=None, title=None, cmap="gray", cmap_labels="gist_ncar",
                standardize=True):
    """Plot voxel intensities across time (Power's grayplot), as nilearn's ``plot_carpet``.

    Parameters
    ----------
    img : 4D image or masked DataArray ``(time, voxel)``
        A dask-backed DataArray stays lazy until the carpet is computed, in
        one pass over only the voxels drawn (at most ``MAX_ROWS``, evenly
        spaced in voxel order).
    mask_img : 3D image, optional
        Voxels to show; a labels image (more than two values) also orders the
        voxels by label and draws a colour strip of the labels. Default: the
        voxels whose signal varies over time.
    mask_labels : dict, optional
        Label name -> value, to name the strip's labels.
    t_r : float, optional
        Repetition time in seconds; default from the image.
    detrend, standardize : bool
        Remove each voxel's linear trend; z-score each voxel.
    output_file, figure, axes, title
        As in the other plotting functions.
    vmin, vmax : float, optional
        Default the mean +/- 2 mean standard deviations of the voxels.
    cmap, cmap_labels : colormap

    Returns
    -------
    matplotlib.figure.Figure or None
    """
    signals, labels, image_t_r = _masked_signals(img, mask_img)
    t_r = t_r or image_t_r or 1.0
    if labels is not None:
        order = np.argsort(labels, kind="stable")
        labels = labels[order]
        signals = signals[:, order]
    if signals.shape[1] > MAX_ROWS:
        rows = np.linspace(0, signals.shape[1] - 1, MAX_ROWS).round().astype(np.intp)
        signals = signals[:, rows]
        labels = labels[rows] if labels is not None else None
    n_volumes = signals.shape[0]
    decimation = 2 ** int(np.ceil(np.log2(np.ceil(n_volumes / LONG_CUTOFF)))) if n_volumes > LONG_CUTOFF else 1
    if hasattr(signals, "dask"):  # a dask array: one kernel call per voxel chunk, one compute
        signals = signals.rechunk({0: -1})
        carpet = signals.map_blocks(detrend_standardize, detrend, standardize, dtype=np.float32)[::decimation]
        carpet = carpet.compute()
    else:
        carpet = detrend_standardize(signals, detrend, standardize)[::decimation]
    if figure is None:
        figure = axes.figure if axes is not None else plt.figure(figsize=(10, 5))
    if axes is None:
        axes = figure.add_subplot(1, 1, 1)
    elif axes.figure is not figure:
        raise ValueError("axes: the axes passed are not in the figure")
    std = float(np.mean(carpet.std(axis=0)))
    mean = float(carpet.mean())
    image_kwargs = {"interpolation": "nearest", "aspect": "auto", "cmap": cmap,
                    "vmin": vmin if vmin is not None else mean - 2 * std,
                    "vmax": vmax if vmax is not None else mean + 2 * std}
    if labels is not None:
        grid = GridSpecFromSubplotSpec(1, 2, subplot_spec=axes.get_subplotspec(), width_ratios=[2, 100], wspace=0.0)
        strip = figure.add_subplot(grid[0])
        strip.imshow(labels[:, None], interpolation="none", aspect="auto", cmap=cmap_labels)
        strip.set_xticks([])
        if mask_labels:
            names = {value: name for name, value in mask_labels.items()}
            present = np.unique(labels)
            strip.set_yticks([np.mean(np.flatnonzero(labels == value)) for value in present])
            strip.set_yticklabels([str(names.get(value, value)) for value in present])
        else:
            strip.set_yticks([])
        strip.tick_params(axis="both", which="both", length=0)
        axes.remove()
        axes = figure.add_subplot(grid[1])
    axes.imshow(carpet.T, **image_kwargs)
    axes.grid(False)
    axes.set_yticks([])
    interval = max((len(carpet) + 1) // 5, 1)
    ticks = list(range(len(carpet)))[::interval]
    axes.set_xticks(ticks)
    axes.set_xticklabels([f"{t * t_r * decimation:.02f}" for t in ticks])
    axes.set_xlabel("time (s)")
    if title:
        axes.set_title(title)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.xaxis.set_ticks_position("bottom")
    axes.spines["bottom"].set_position(("outward", 10))
    if not mask_labels:
        axes.yaxis.set_ticks_position("left")
        axes.spines["left"].set_position(("outward", 20 if labels is not None else 10))
        axes.set_ylabel("voxels")
    if output_file is not None:
        figure.savefig(output_file)
        plt.close(figure)
        return None
    return figure
