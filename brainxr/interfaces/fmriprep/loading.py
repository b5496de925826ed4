"""``load_confounds`` and ``load_confounds_strategy``: fMRIPrep confounds from files."""

from __future__ import annotations

import warnings
from dataclasses import replace

from brainxr.errors import InputFileError
from brainxr.interfaces.fmriprep.files import (
    as_image_list,
    check_image_name,
    find_confounds_file,
    read_confounds_metadata,
    read_confounds_table,
    read_tedana_tables,
    sidecar_path,
)
from brainxr.interfaces.fmriprep.presets import preset_parameters
from brainxr.interfaces.fmriprep.selection import ConfoundsStrategy, select_confounds


def load_confounds(
    img_files,
    strategy=("motion", "high_pass", "wm_csf"),
    motion: str = "full",
    scrub: int = 5,
    fd_threshold: float = 0.5,
    std_dvars_threshold: float = 1.5,
    wm_csf: str = "basic",
    global_signal: str = "basic",
    compcor: str = "anat_combined",
    n_compcor="all",
    ica_aroma: str = "full",
    tedana: str = "aggressive",
    demean: bool = True,
    min_volumes: int = 1,
):
    """Load the confounds of fMRIPrep images by noise component.

    Same parameters, files and results as
    :func:`nilearn.interfaces.fmriprep.load_confounds` (0.14); the selection
    itself is :func:`~brainxr.interfaces.fmriprep.select_confounds`, which
    documents every option.

    Parameters
    ----------
    img_files : str, path, or list
        fMRIPrep image(s): ``*_desc-preproc_bold.nii.gz``, ``*_bold.dtseries.nii``
        or a ``[left, right]`` pair of ``*_bold.func.gii`` (or a list of
        those). The confounds TSV and JSON must sit next to each image.
    strategy, motion, scrub, fd_threshold, std_dvars_threshold, wm_csf, \
global_signal, compcor, n_compcor, ica_aroma, demean, min_volumes
        See :func:`~brainxr.interfaces.fmriprep.select_confounds`.
        ``ica_aroma="full"`` needs a ``desc-smoothAROMAnonaggr`` image.
    tedana : {"aggressive", "non-aggressive"}, default="aggressive"
        With "tedana" in ``strategy``: the image is tedana's
        ``desc-optcom_bold.nii.gz`` and the regressors are its rejected (or
        rejected and accepted) ICA components.

    Returns
    -------
    confounds : pandas.DataFrame, list of them, or None
        One per image (a single one for a single image); None when
        ``strategy`` is empty.
    sample_mask : numpy.ndarray, None, or a list of them
        Kept volumes of each image (None: keep all).
    """
    spec = ConfoundsStrategy(
        strategy, motion=motion, scrub=scrub, fd_threshold=fd_threshold, std_dvars_threshold=std_dvars_threshold,
        wm_csf=wm_csf, global_signal=global_signal, compcor=compcor, n_compcor=n_compcor, ica_aroma=ica_aroma,
        tedana=tedana, demean=demean,
    )
    if "tedana" in strategy and len(strategy) > 1:
        warnings.warn(
            "TEDANA strategy will only look for the ~desc-ICA_mixing.tsv and the ~desc-tedana_metrics.tsv "
            "for the provided ~desc-optcom_bold.nii.gz from the tedana folder to load the rejected ICA "
            f"confounds. Other strategies: \n{[s for s in strategy if 'tedana' not in s]} will NOT be "
            "applied for the Tedana confounds.",
            UserWarning,
            stacklevel=2,
        )
    images, single = as_image_list(img_files)
    confounds, sample_masks = [], []
    for image in images:
        selected, sample_mask = _load_one(image, spec, min_volumes)
        confounds.append(selected)
        sample_masks.append(sample_mask)
    if single:
        confounds, sample_masks = confounds[0], sample_masks[0]
    if len(strategy) == 0:
        return None, sample_masks
    return confounds, sample_masks


def _load_one(image, spec: ConfoundsStrategy, min_volumes: int):
    strategy = spec.strategy
    use_tedana = "tedana" in strategy
    full_aroma = "ica_aroma" in strategy and spec.ica_aroma == "full" and not use_tedana
    check_image_name(image, full_aroma=full_aroma, tedana=use_tedana)
    confounds_file = find_confounds_file(image, tedana=use_tedana)
    if use_tedana:
        tables = read_tedana_tables(confounds_file)
        tedana_only = replace(spec, strategy=("tedana",))
        return select_confounds(tables["mixing"], None, tedana_only, tedana_tables=tables, min_volumes=min_volumes)
    table = read_confounds_table(confounds_file)
    metadata = read_confounds_metadata(sidecar_path(confounds_file))
    if metadata is None and "compcor" in strategy:
        raise InputFileError(
            sidecar_path(confounds_file),
            "Could not find the confounds json file, which CompCor needs (fMRIPrep >= 1.4.0)",
        )
    try:
        return select_confounds(table, metadata, spec, min_volumes=min_volumes)
    except ValueError as error:
        raise InputFileError(confounds_file, str(error)) from error


def load_confounds_strategy(img_files, denoise_strategy: str = "simple", **kwargs):
    """Load fMRIPrep confounds with a preset denoising strategy.

    Same presets and results as
    :func:`nilearn.interfaces.fmriprep.load_confounds_strategy` (0.14):
    "simple" (motion full, wm_csf basic, high_pass), "scrubbing" (+ wm_csf
    full, scrub 5, FD 0.5 mm, std DVARS 1.5), "compcor" (motion full,
    anat_combined, all components, high_pass) and "ica_aroma" (wm_csf basic,
    high_pass, on ICA-AROMA denoised images). ``global_signal`` adds the
    global signal to any preset.

    Parameters
    ----------
    img_files : str, path, or list
        See :func:`load_confounds`.
    denoise_strategy : {"simple", "scrubbing", "compcor", "ica_aroma"}
    **kwargs
        The preset's tunable parameters (see
        :func:`~brainxr.interfaces.fmriprep.presets.preset_parameters`).

    Returns
    -------
    confounds, sample_mask
        As :func:`load_confounds`.
    """
    return load_confounds(img_files, **preset_parameters(denoise_strategy, **kwargs))
