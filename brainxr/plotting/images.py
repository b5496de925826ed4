"""Volumes on cuts and glass-brain projections: statistical maps, anatomy, atlases.

``plot_stat_map``, ``plot_anat``, ``plot_glass_brain`` and
``plot_prob_atlas`` follow nilearn 0.14's parameters and defaults. Images may
be nibabel images, paths or brainxr DataArrays (a volume ``(i, j, k)`` or a
masked ``(voxel,)`` map such as a seed-to-voxel correlation map).
"""

from __future__ import annotations

import numbers
import warnings

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LinearSegmentedColormap, Normalize

from brainxr.plotting._graph import check_threshold
from brainxr.plotting._inputs import Volume, as_volume
from brainxr.plotting._template import resolve_brain_mask, template_anatomy
from brainxr.plotting.cm import alpha_cmap
from brainxr.plotting.displays import SLICER_MODES, make_display, save_if_needed
from brainxr.plotting.find_cuts import fast_abs_percentile, find_cut_slices, find_xyz_cut_coords


class _TemplateBackground:
    """Default background: the T1-like MNI152 template of :mod:`brainxr.datasets`."""

    def __repr__(self) -> str:
        return "MNI152TEMPLATE"


#: use the MNI152 template of :mod:`brainxr.datasets` as background
MNI152TEMPLATE = _TemplateBackground()


def border_values(data: np.ndarray, size: int = 2) -> np.ndarray:
    """Values of the ``size`` outermost voxels on each face of a volume."""
    faces = [data[:size], data[-size:], data[:, :size], data[:, -size:], data[:, :, :size], data[:, :, -size:]]
    return np.concatenate([face.ravel() for face in faces])


def load_background(bg_img, dim="auto", black_bg="auto"):
    """The background volume, whether it is dark, and its (dimmed) display range.

    Returns
    -------
    volume : Volume or None
    black_bg : bool
    vmin, vmax : float or None
    """
    if bg_img is None or bg_img is False:
        return None, (False if black_bg == "auto" else black_bg), None, None
    if dim != "auto" and not isinstance(dim, numbers.Number):
        raise ValueError(f"dim: expected a number or 'auto', got {dim!r}")
    if bg_img is MNI152TEMPLATE:
        volume = template_anatomy()
        data = np.nan_to_num(volume.data)
        vmin, vmax = 0.0, float(data.max())
        black_bg = False if black_bg == "auto" else black_bg
    else:
        volume = as_volume(bg_img, name="bg_img")
        data = np.nan_to_num(np.asarray(volume.data, dtype=float))
        vmin, vmax = float(data.min()), float(data.max())
        if black_bg == "auto":
            black_bg = bool(np.median(border_values(data)) <= 0.5 * (vmin + vmax))
    volume = Volume(data, volume.affine)
    if dim:
        vmin, vmax = _dimmed_range(dim, black_bg, vmin, vmax)
    return volume, black_bg, vmin, vmax


def _dimmed_range(dim, black_bg: bool, vmin: float, vmax: float):
    """Stretch the display range so the background looks dimmer (nilearn's rule)."""
    mean, half_range = 0.5 * (vmin + vmax), 0.5 * (vmax - vmin)
    if black_bg:
        dim = 0.8 if dim == "auto" else dim
        return vmin, mean + (1 + dim) * half_range
    dim = 0.6 if dim == "auto" else dim
    return 0.5 * (2 - dim) * mean - (1 + dim) * half_range, vmax


def colorbar_and_data_ranges(data: np.ndarray, vmin=None, vmax=None, symmetric_cbar="auto"):
    """Colour range of a map and of its colorbar (nilearn's ``get_colorbar_and_data_ranges``).

    Returns
    -------
    cbar_vmin, cbar_vmax, vmin, vmax
    """
    data_min, data_max = float(np.nanmin(data)), float(np.nanmax(data))
    if symmetric_cbar == "auto":
        if vmin is None or vmax is None:
            low = data_min if vmin is None else max(vmin, data_min)
            high = data_max if vmax is None else min(vmax, data_max)
            symmetric_cbar = low < 0 < high
        else:
            symmetric_cbar = bool(np.isclose(vmin, -vmax))
    if symmetric_cbar:
        if vmin is None and vmax is None:
            vmax = max(-data_min, data_max)
            vmin = -vmax
        elif vmin is None:
            vmin = -vmax
        elif vmax is None:
            vmax = -vmin
        elif vmin != -vmax:
            warnings.warn(f"Specified vmin={vmin} and vmax={vmax} values do not create a symmetric colorbar. "
                          "The values will be modified to be symmetric.", stacklevel=3)
            vmax = max(abs(vmin), abs(vmax))
            vmin = -vmax
        cbar_vmin, cbar_vmax = vmin, vmax
    elif data_min >= 0:
        cbar_vmin, cbar_vmax = (0 if vmin is None else vmin), vmax
    elif data_max <= 0:
        cbar_vmin, cbar_vmax = vmin, (0 if vmax is None else vmax)
    else:
        cbar_vmin, cbar_vmax = vmin, vmax
    vmin = data_min if vmin is None else vmin
    vmax = data_max if vmax is None else vmax
    return cbar_vmin, cbar_vmax, float(vmin), float(vmax)


def _cut_coords(display_mode: str, volume: Volume | None, threshold, cut_coords):
    """Cut positions for a slicer: found in the image when not given."""
    directions = SLICER_MODES.get(display_mode)
    if directions is None:
        raise ValueError(f"display_mode: expected one of {sorted(SLICER_MODES)}, got {display_mode!r}")
    if len(directions) == 1:
        if cut_coords is None or isinstance(cut_coords, numbers.Integral):
            n_cuts = 7 if cut_coords is None else int(cut_coords)
            if volume is None:
                return list(np.linspace(-50, 50, n_cuts))
            return list(find_cut_slices(volume, directions, n_cuts))
        return [float(c) for c in np.atleast_1d(cut_coords)]
    if cut_coords is None:
        if volume is None:
            xyz = [0.0, 0.0, 0.0]
        else:
            xyz = find_xyz_cut_coords(volume, activation_threshold=threshold)
        return [xyz["xyz".index(d)] for d in directions]
    cut_coords = [float(c) for c in np.atleast_1d(cut_coords)]
    if len(cut_coords) == 3 and len(directions) < 3:
        return [cut_coords["xyz".index(d)] for d in directions]
    if len(cut_coords) != len(directions):
        raise ValueError(
            f"cut_coords: display_mode={display_mode!r} needs {len(directions)} coordinates "
            f"({', '.join(directions)}), got {cut_coords}"
        )
    return cut_coords


def _numeric_threshold(threshold, data):
    if threshold is None:
        return None
    if threshold == "auto":
        return max(fast_abs_percentile(data) - 1e-5, 0.0)
    return check_threshold(threshold, data, percentile_func=fast_abs_percentile, name="threshold")


def plot_img_with_bg(img, bg_img=None, cut_coords=None, output_file=None, display_mode="ortho", figure=None,
                     axes=None, title=None, threshold=None, annotate=True, draw_cross=True, black_bg=False,
                     colorbar=False, bg_vmin=None, bg_vmax=None, interpolation="nearest", cmap=None,
                     vmin=None, vmax=None, cbar_vmin=None, cbar_vmax=None, transparency=None, decimals=0,
                     **kwargs):
    """Cuts of ``img`` over a background volume: the engine of the slicer plots.

    ``img`` and ``bg_img`` are volumes (or ``None``); parameters as in
    :func:`plot_stat_map`.
    """
    volume = None
    if img is not None and img is not False:
        volume = as_volume(img, name="img")
        data = np.nan_to_num(np.asarray(volume.data, dtype=float))
        volume = Volume(data, volume.affine)
        threshold = _numeric_threshold(threshold, data)
    elif threshold is not None and not isinstance(threshold, numbers.Number):
        raise ValueError(f"threshold: without an image it must be a number, got {threshold!r}")
    if threshold is not None and threshold < 0:
        raise ValueError(f"threshold: must be non-negative, got {threshold}")
    cuts = _cut_coords(display_mode, volume if volume is not None else bg_img, threshold, cut_coords)
    display = make_display("slicer", display_mode, cut_coords=cuts, figure=figure, axes=axes,
                           black_bg=black_bg, colorbar=colorbar)
    if bg_img is not None:
        display.add_overlay(bg_img, threshold=1e-6, vmin=bg_vmin, vmax=bg_vmax, cmap="gray",
                            interpolation=interpolation)
    if volume is not None:
        display.add_overlay(volume, threshold=threshold, colorbar=colorbar, cmap=cmap, vmin=vmin, vmax=vmax,
                            cbar_vmin=cbar_vmin, cbar_vmax=cbar_vmax, transparency=transparency,
                            interpolation=interpolation, **kwargs)
    if annotate:
        display.annotate(decimals=decimals)
    if draw_cross:
        display.draw_cross()
    if title:
        display.title(title)
    return save_if_needed(display, output_file)


def plot_stat_map(stat_map_img, bg_img=MNI152TEMPLATE, cut_coords=None, output_file=None, display_mode="ortho",
                  colorbar=True, figure=None, axes=None, title=None, threshold=1e-6, annotate=True,
                  draw_cross=True, black_bg="auto", cmap="RdBu_r", symmetric_cbar="auto", dim="auto",
                  vmin=None, vmax=None, transparency=None, **kwargs):
    """Plot cuts of a statistical map (e.g. a seed-to-voxel correlation map) over an anatomy.

    Parameters
    ----------
    stat_map_img : 3D image (nibabel image, path, or brainxr DataArray)
        A masked ``(voxel,)`` DataArray is unmasked first.
    bg_img : 3D image, MNI152TEMPLATE or None
        Background; default the MNI152 template of :mod:`brainxr.datasets`.
    cut_coords : sequence of float or int, optional
        ``(x, y, z)`` of the cut for 'ortho'; for 'x', 'y', 'z' the list of
        cut positions or their number. Default: the centre of the largest
        cluster above threshold.
    output_file : str or Path, optional
        Save, close and return ``None``.
    display_mode : {'ortho', 'x', 'y', 'z', 'xz', 'yz', 'yx'}
    colorbar : bool
    figure, axes : optional
        As in :func:`plot_connectome`.
    title : str, optional
    threshold : float, str or None
        Values of absolute value at or below it are transparent; a string
        such as ``"90%"`` is a percentile of the absolute values.
    annotate, draw_cross : bool
    black_bg : bool or 'auto'
    cmap : colormap
    symmetric_cbar : bool or 'auto'
        Colour range symmetric around 0 ('auto': when the data have both signs).
    dim : float or 'auto'
        Dimming of the background.
    vmin, vmax : float, optional
    transparency : float, optional
        Opacity of the map.
    **kwargs
        Passed to :func:`~matplotlib.pyplot.imshow`.

    Returns
    -------
    SlicerDisplay or None
    """
    background, black_bg, bg_vmin, bg_vmax = load_background(bg_img, dim=dim, black_bg=black_bg)
    volume = as_volume(stat_map_img, name="stat_map_img")
    data = np.nan_to_num(np.asarray(volume.data, dtype=float))
    cbar_vmin, cbar_vmax, vmin, vmax = colorbar_and_data_ranges(data, vmin=vmin, vmax=vmax,
                                                                symmetric_cbar=symmetric_cbar)
    return plot_img_with_bg(Volume(data, volume.affine), bg_img=background, cut_coords=cut_coords,
                            output_file=output_file, display_mode=display_mode, figure=figure, axes=axes,
                            title=title, threshold=threshold, annotate=annotate, draw_cross=draw_cross,
                            black_bg=black_bg, colorbar=colorbar, bg_vmin=bg_vmin, bg_vmax=bg_vmax, cmap=cmap,
                            vmin=vmin, vmax=vmax, cbar_vmin=cbar_vmin, cbar_vmax=cbar_vmax,
                            transparency=transparency, **kwargs)


def plot_anat(anat_img=MNI152TEMPLATE, cut_coords=None, output_file=None, display_mode="ortho", figure=None,
              axes=None, title=None, annotate=True, threshold=None, draw_cross=True, black_bg="auto", dim="auto",
              cmap="gray", colorbar=False, vmin=None, vmax=None, **kwargs):
    """Plot cuts of an anatomical image (default the MNI152 template).

    Parameters as in :func:`plot_stat_map`; ``dim`` dims the image.

    Returns
    -------
    SlicerDisplay or None
    """
    anatomy, black_bg, anat_vmin, anat_vmax = load_background(anat_img, dim=dim, black_bg=black_bg)
    if anatomy is None:
        raise ValueError("anat_img: an anatomical image is required")
    return plot_img_with_bg(anatomy, cut_coords=cut_coords, output_file=output_file, display_mode=display_mode,
                            figure=figure, axes=axes, title=title, threshold=threshold, annotate=annotate,
                            draw_cross=draw_cross, black_bg=black_bg, colorbar=colorbar,
                            vmin=anat_vmin if vmin is None else vmin, vmax=anat_vmax if vmax is None else vmax,
                            cmap=cmap, **kwargs)


def plot_img(img, cut_coords=None, output_file=None, display_mode="ortho", figure=None, axes=None, title=None,
             threshold=None, annotate=True, draw_cross=True, black_bg=False, colorbar=True, bg_img=None, vmin=None,
             vmax=None, cmap="gray", transparency=None, **kwargs):
    """Plot cuts of any 3D image (nilearn's ``plot_img``), optionally over a background.

    Parameters as in :func:`plot_stat_map`; no background by default, grey
    colormap, the image's own range.

    Returns
    -------
    SlicerDisplay or None
    """
    background, black_bg, bg_vmin, bg_vmax = load_background(bg_img, dim=False, black_bg=black_bg)
    volume = as_volume(img, name="img")
    data = np.nan_to_num(np.asarray(volume.data, dtype=float))
    vmin = float(data.min()) if vmin is None else vmin
    vmax = float(data.max()) if vmax is None else vmax
    return plot_img_with_bg(Volume(data, volume.affine), bg_img=background, cut_coords=cut_coords,
                            output_file=output_file, display_mode=display_mode, figure=figure, axes=axes,
                            title=title, threshold=threshold, annotate=annotate, draw_cross=draw_cross,
                            black_bg=black_bg, colorbar=colorbar, bg_vmin=bg_vmin, bg_vmax=bg_vmax, cmap=cmap,
                            vmin=vmin, vmax=vmax, transparency=transparency, **kwargs)


def plot_epi(epi_img=None, cut_coords=None, output_file=None, display_mode="ortho", figure=None, axes=None,
             title=None, annotate=True, draw_cross=True, black_bg=True, colorbar=True, cmap="gray", vmin=None,
             vmax=None, **kwargs):
    """Plot cuts of an EPI image (nilearn's ``plot_epi``): :func:`plot_img` on a black background.

    A 4D image is averaged over time first.

    Returns
    -------
    SlicerDisplay or None
    """
    if epi_img is not None:
        volume = as_volume(epi_img, name="epi_img", ndim=None)
        if volume.data.ndim == 4:
            volume = Volume(np.nanmean(volume.data, axis=3), volume.affine)
        epi_img = volume
    return plot_img(epi_img, cut_coords=cut_coords, output_file=output_file, display_mode=display_mode,
                    figure=figure, axes=axes, title=title, annotate=annotate, draw_cross=draw_cross,
                    black_bg=black_bg, colorbar=colorbar, cmap=cmap, vmin=vmin, vmax=vmax, **kwargs)


def plot_roi(roi_img, bg_img=MNI152TEMPLATE, cut_coords=None, output_file=None, display_mode="ortho", figure=None,
             axes=None, title=None, annotate=True, draw_cross=True, black_bg="auto", threshold=0.5, alpha=0.7,
             cmap="gist_ncar", dim="auto", colorbar=True, vmin=None, vmax=None, view_type="continuous",
             linewidths=2.5, **kwargs):
    """Plot regions of interest (a mask or a labels image) over an anatomy (nilearn's ``plot_roi``).

    Parameters
    ----------
    roi_img : 3D image
        A binary mask or integer labels.
    threshold : float, default=0.5
        Values at or below it are transparent.
    alpha : float, default=0.7
        Opacity of the regions.
    view_type : {"continuous", "contours"}
        Filled regions, or one outline per label value.
    linewidths : float
        Outline width (``view_type="contours"``).
    Other parameters as in :func:`plot_stat_map`.

    Returns
    -------
    SlicerDisplay or None
    """
    if threshold is not None and isinstance(threshold, numbers.Number) and threshold < 0:
        raise ValueError(f"threshold should be a non-negative number, got {threshold}")
    if view_type not in ("continuous", "contours"):
        raise ValueError(f"view_type must be one of ['continuous', 'contours'], got {view_type!r}")
    background, black_bg, bg_vmin, bg_vmax = load_background(bg_img, dim=dim, black_bg=black_bg)
    volume = as_volume(roi_img, name="roi_img")
    data = np.nan_to_num(np.asarray(volume.data, dtype=float))
    shown = Volume(data, volume.affine) if view_type == "continuous" else None
    display = plot_img_with_bg(shown, bg_img=background, cut_coords=cut_coords if shown is not None or cut_coords
                               is not None else find_xyz_cut_coords(Volume(data, volume.affine)),
                               display_mode=display_mode, figure=figure, axes=axes, title=title, annotate=annotate,
                               draw_cross=draw_cross, black_bg=black_bg, threshold=threshold if shown is not None
                               else None, colorbar=colorbar and shown is not None, bg_vmin=bg_vmin, bg_vmax=bg_vmax,
                               cmap=cmap, vmin=vmin, vmax=vmax, transparency=alpha, **kwargs)
    if view_type == "contours":
        colors = plt.get_cmap(cmap)
        values = np.unique(np.rint(data[data != 0]))
        for position, value in enumerate(values):
            color = colors(position / max(1, len(values) - 1))
            region = Volume((np.rint(data) == value).astype(np.float32), volume.affine)
            display.add_contours(region, levels=[0.5], colors=[color], linewidths=linewidths)
            display.add_contours(region, filled=True, levels=[0.5, 1.5], colors=[color], alpha=alpha)
    return save_if_needed(display, output_file)


def plot_glass_brain(stat_map_img, output_file=None, display_mode="ortho", colorbar=True, figure=None, axes=None,
                     title=None, threshold="auto", annotate=True, black_bg=False, cmap=None, alpha=0.7,
                     vmin=None, vmax=None, plot_abs=True, symmetric_cbar="auto", brain_mask=None, **kwargs):
    """Plot a map as maximum-intensity projections on a glass brain.

    Parameters
    ----------
    stat_map_img : 3D image
    brain_mask : 3D image, optional
        Mask whose projections draw the outlines; default the template mask
        of :mod:`brainxr.datasets`, else the map's own non-zero voxels.
    plot_abs : bool
        Project the absolute value (default) or the signed value of largest
        magnitude.
    threshold : float, str, 'auto' or None
        'auto' is the 80th percentile of the absolute values.
    Other parameters as in :func:`plot_stat_map` and :func:`plot_connectome`.

    Returns
    -------
    ProjectorDisplay or None
    """
    volume = as_volume(stat_map_img, name="stat_map_img")
    data = np.nan_to_num(np.asarray(volume.data, dtype=float))
    volume = Volume(data, volume.affine)
    threshold = _numeric_threshold(threshold, data)
    if cmap is None:
        cmap = "inferno" if plot_abs else "RdBu_r"
    if plot_abs:
        cbar_vmin, cbar_vmax, vmin, vmax = colorbar_and_data_ranges(np.abs(data), vmin=vmin, vmax=vmax,
                                                                    symmetric_cbar=False)
    else:
        cbar_vmin, cbar_vmax, vmin, vmax = colorbar_and_data_ranges(data, vmin=vmin, vmax=vmax,
                                                                    symmetric_cbar=symmetric_cbar)
    display = make_display("projector", display_mode, figure=figure, axes=axes, black_bg=black_bg,
                           colorbar=colorbar, brain_mask=resolve_brain_mask(brain_mask, data_volume=volume),
                           alpha=alpha, plot_abs=plot_abs)
    display.add_overlay(volume, threshold=threshold, colorbar=colorbar, cmap=cmap, vmin=vmin, vmax=vmax,
                        cbar_vmin=cbar_vmin, cbar_vmax=cbar_vmax, **kwargs)
    if annotate:
        display.annotate()
    if title:
        display.title(title)
    return save_if_needed(display, output_file)


def plot_prob_atlas(maps_img, bg_img=MNI152TEMPLATE, view_type="auto", threshold="auto", linewidths=2.5,
                    cut_coords=None, output_file=None, display_mode="ortho", figure=None, axes=None, title=None,
                    annotate=True, draw_cross=True, black_bg="auto", dim="auto", colorbar=True,
                    cmap="gist_rainbow", vmin=None, vmax=None, alpha=0.7):
    """Plot the maps of a probabilistic atlas (4D) over an anatomy, one colour per map.

    Parameters
    ----------
    maps_img : 4D image (nibabel image, path or brainxr DataArray ``(i, j, k, map)``)
    view_type : {'auto', 'contours', 'filled_contours', 'continuous'}
        'auto': contours above 20 maps, filled contours above 10, else continuous.
    threshold : 'auto', float, str, list or None
        Per map (a list), or for all; 'auto' keeps about the top
        ``0.2 / n_maps`` of each map (scaled by view type) as nilearn.
    linewidths : float
        Contour line width (contours only).
    alpha : float
        Opacity of the maps.
    Other parameters as in :func:`plot_stat_map`.

    Returns
    -------
    SlicerDisplay or None
    """
    valid = ("auto", "contours", "filled_contours", "continuous")
    if view_type not in valid:
        raise ValueError(f"view_type: expected one of {valid}, got {view_type!r}")
    maps = as_volume(maps_img, name="maps_img", ndim=4)
    if bg_img is None or bg_img is False:
        if cut_coords is None:
            cut_coords = _cut_coords(display_mode, Volume(np.abs(maps.data).sum(axis=3), maps.affine), None, None)
        display = plot_img_with_bg(None, cut_coords=cut_coords, display_mode=display_mode, figure=figure,
                                   axes=axes, title=title, annotate=annotate, draw_cross=draw_cross,
                                   black_bg=black_bg is True)
    else:
        display = plot_anat(bg_img, cut_coords=cut_coords, display_mode=display_mode, figure=figure, axes=axes,
                            title=title, annotate=annotate, draw_cross=draw_cross, black_bg=black_bg, dim=dim,
                            vmin=vmin, vmax=vmax, colorbar=False)
    n_maps = maps.shape[3]
    colors = plt.get_cmap(cmap)(np.linspace(0, 1, n_maps))
    if view_type == "auto":
        view_type = "contours" if n_maps > 20 else "filled_contours" if n_maps > 10 else "continuous"
    if threshold is None:
        threshold = 1e-6
    elif isinstance(threshold, str) and threshold == "auto":
        factor = {"contours": 1.0, "filled_contours": 0.8, "continuous": 0.5}[view_type]
        threshold = f"{100 * (1 - 0.2 * factor / n_maps):f}%"
    if isinstance(threshold, (list, tuple, np.ndarray)):
        thresholds = list(threshold)
        if len(thresholds) != n_maps:
            raise ValueError(f"threshold: {len(thresholds)} values for {n_maps} maps; give one per map")
    else:
        thresholds = [threshold] * n_maps
    for single, color, map_threshold in zip(maps.volumes(), colors, thresholds):
        level = max(check_threshold(map_threshold, single.data, percentile_func=fast_abs_percentile), 1e-6)
        if view_type == "continuous":
            display.add_overlay(single, threshold=level, cmap=alpha_cmap(color), transparency=alpha)
        else:
            extra = {} if view_type == "filled_contours" else {"linewidths": linewidths}
            display.add_contours(single, levels=[level], colors=[color], filled=view_type == "filled_contours",
                                 transparency=alpha, linestyles="solid", **extra)
    if colorbar and n_maps > 1:
        display._colorbar = True
        segmented = LinearSegmentedColormap.from_list("segmented colors", colors, n_maps + 1)
        display._show_colorbar(segmented, Normalize(1, n_maps + 1))
        ticks = np.round(np.linspace(1, n_maps, min(n_maps, 10))).astype(int)
        display._cbar.set_ticks(ticks + 0.5)
        display._cbar.set_ticklabels([str(t) for t in ticks])
        display._colorbar_ax.annotate("Map #", xy=(1, 1.03), ha="right", va="bottom", xycoords="axes fraction")
    elif colorbar:
        warnings.warn("The image maps contains a single image. No color map needed.", RuntimeWarning, stacklevel=2)
    return save_if_needed(display, output_file)
