"""The report of a masker: its regions, parameters and a picture of the regions.

The maskers of :mod:`brainxr.maskers` build their ``generate_report()`` with
:func:`build_masker_report`; :func:`regions_summary_table` and
:func:`regions_figure` compute nilearn's regions table and image.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from brainxr.plotting._inputs import as_volume
from brainxr.reporting.html_report import HTMLReport

REGIONS_COLUMNS = ["label value", "region name", "size (in mm^3)", "relative size (in %)"]


def regions_summary_table(labels_img, label_names=None, background_label=0) -> pd.DataFrame:
    """Size of each region of a labels atlas, as in nilearn's labels-masker report.

    Parameters
    ----------
    labels_img : 3D labels image (nibabel image, path or brainxr DataArray)
    label_names : mapping or sequence, optional
        ``{label value: name}``: one row per entry (the atlas's look-up
        table), in sorted label order, regions absent from the image with
        size 0, as nilearn lists them. A sequence: names in the order of the
        sorted label values (a leading background name is skipped when there
        is one more name than regions). Default: the image's label values,
        named by their value.
    background_label : int

    Returns
    -------
    pandas.DataFrame
        Columns ``label value``, ``region name``, ``size (in mm^3)`` (rounded
        to integers) and ``relative size (in %)`` (of all non-background
        voxels, 2 decimals); one row per non-background label.
    """
    volume = as_volume(labels_img, name="labels_img")
    values = np.rint(volume.data).astype(np.int64).ravel()
    present, counts = np.unique(values, return_counts=True)
    count_of = dict(zip(present.tolist(), counts.tolist()))
    if isinstance(label_names, dict):
        labels = np.asarray(sorted(int(k) for k in label_names), dtype=np.int64)
    else:
        labels = present
    labels = labels[labels != background_label]
    sizes = np.asarray([count_of.get(int(label), 0) for label in labels], dtype=np.int64)
    voxel_volume = abs(np.linalg.det(volume.affine[:3, :3]))
    total = sum(count for label, count in count_of.items() if label != background_label)
    names = _names_by_label(label_names, labels)
    return pd.DataFrame({
        REGIONS_COLUMNS[0]: labels.astype(int),
        REGIONS_COLUMNS[1]: [names.get(int(label), str(label)) for label in labels],
        REGIONS_COLUMNS[2]: np.round(sizes * voxel_volume).astype(int),
        REGIONS_COLUMNS[3]: np.round(sizes / total * 100, 2) if total else np.zeros(len(sizes)),
    })


def _names_by_label(label_names, labels) -> dict:
    if label_names is None:
        return {}
    if isinstance(label_names, dict):
        return {int(k): str(v) for k, v in label_names.items()}
    names = [str(name) for name in label_names]
    if len(names) == len(labels) + 1:
        names = names[1:]  # nilearn-style list starting with 'Background'
    if len(names) != len(labels):
        raise ValueError(f"label_names: {len(names)} names for {len(labels)} regions")
    return dict(zip((int(label) for label in labels), names))


def regions_figure(labels_img, img=None, title=None, cmap=None):
    """The regions over an image (e.g. the mean functional image), or over the template (nilearn's figure).

    Labels over an image: the image (``cmap``, default ``"CMRmap_r"``) with
    the outlines of the labels drawn as one set of contours; labels without
    an image: :func:`brainxr.plotting.plot_roi` over the MNI152 template.
    Maps: one outline per map at half its peak.

    Parameters
    ----------
    labels_img : 3D labels image, or 4D maps image
    img : 3D or 4D image, optional
        Background (a 4D image is averaged over time); default the MNI152
        template.
    title : str, optional
    cmap : colormap, optional

    Returns
    -------
    SlicerDisplay
    """
    from brainxr.plotting.find_cuts import find_xyz_cut_coords
    from brainxr.plotting.images import plot_anat, plot_img, plot_img_with_bg, plot_roi

    regions = as_volume(labels_img, name="labels_img", ndim=None)
    support = regions.data if regions.data.ndim == 3 else np.abs(regions.data).max(axis=3)
    support_volume = type(regions)((np.abs(support) > 0).astype(np.float32), regions.affine)
    cut_coords = find_xyz_cut_coords(support_volume, activation_threshold=0.5)
    background = None
    if img is not None:
        background = as_volume(img, name="img", ndim=None)
        if background.data.ndim == 4:
            background = type(background)(np.nanmean(background.data, axis=3), background.affine)
    if regions.data.ndim == 3:
        labels = type(regions)(np.rint(regions.data).astype(np.float32), regions.affine)
        if background is None:
            return plot_roi(labels, cut_coords=cut_coords, title=title)
        display = plot_img(background, cut_coords=cut_coords, title=title, black_bg=False,
                           cmap="CMRmap_r" if cmap is None else cmap)
        levels = MaxNLocator(7).tick_values(float(labels.data.min()), float(labels.data.max()))
        display.add_contours(labels, levels=list(levels), linewidths=3, cmap="viridis")
        return display
    if background is None:
        display = plot_anat(cut_coords=cut_coords, title=title, colorbar=False, draw_cross=False)
    else:
        display = plot_img_with_bg(background, cut_coords=cut_coords, title=title, cmap="CMRmap_r",
                                   draw_cross=False, black_bg=False)
    for single in regions.volumes():
        peak = float(np.abs(single.data).max())
        if peak > 0:
            display.add_contours(single, levels=[0.5 * peak], linewidths=1.5)
    return display


def build_masker_report(title: str, description: str | None = None, regions_table: pd.DataFrame | None = None,
                        parameters: dict | None = None, figure=None, warnings=(), summary: dict | None = None,
                        n_regions: int | None = None) -> HTMLReport:
    """Assemble a masker report (nilearn's layout) from what the masker knows.

    Parameters
    ----------
    title : str
        The masker's class name, e.g. ``"NiftiLabelsMasker"``.
    description : str, optional
        What the masker does (its docstring summary).
    regions_table : pandas.DataFrame, optional
        See :func:`regions_summary_table`.
    parameters : dict, optional
        The masker's parameters (``get_params()``).
    figure : matplotlib Figure or brainxr display, optional
        See :func:`regions_figure`.
    warnings : sequence of str
        Shown at the top (e.g. "No image provided to fit ...").
    summary : dict, optional
        Key figures shown under the title.
    n_regions : int, optional
        Number of regions, for the sentence above the table (default its length).

    Returns
    -------
    HTMLReport
    """
    report = HTMLReport(title, description)
    report.add_warnings(warnings)
    if summary:
        report.add_summary(None, summary)
    if figure is not None:
        report.add_figure(None, figure, image_format="png")
    if regions_table is not None:
        missing = [c for c in REGIONS_COLUMNS if c not in regions_table.columns]
        if missing:
            raise ValueError(f"regions_table: missing columns {missing}; expected {REGIONS_COLUMNS}")
        count = len(regions_table) if n_regions is None else n_regions
        report.add_text(None, "This report shows the regions defined by the labels of the mask.")
        report.add_text(None, f"The masker has {count} different non-overlapping regions.")
        report.add_table("Regions summary", regions_table)
    if parameters is not None:
        report.add_table("Parameters", dict(sorted(parameters.items())))
    report.add_text(None, "This report was generated based on information provided at instantiation and fit time. "
                          "Note that the masker can potentially perform resampling at transform time.")
    return report
