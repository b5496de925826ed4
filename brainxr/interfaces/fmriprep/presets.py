"""Preset denoising strategies (nilearn 0.14's ``load_confounds_strategy``)."""

from __future__ import annotations

import warnings

PRESETS = {
    "simple": {
        "strategy": ("high_pass", "motion", "wm_csf"),
        "motion": "full",
        "wm_csf": "basic",
        "global_signal": None,
        "demean": True,
    },
    "scrubbing": {
        "strategy": ("high_pass", "motion", "wm_csf", "scrub"),
        "motion": "full",
        "wm_csf": "full",
        "scrub": 5,
        "fd_threshold": 0.5,
        "std_dvars_threshold": 1.5,
        "global_signal": None,
        "demean": True,
    },
    "compcor": {
        "strategy": ("high_pass", "motion", "compcor"),
        "motion": "full",
        "n_compcor": "all",
        "compcor": "anat_combined",
        "global_signal": None,
        "demean": True,
    },
    "ica_aroma": {
        "strategy": ("high_pass", "wm_csf", "ica_aroma"),
        "wm_csf": "basic",
        "ica_aroma": "full",
        "global_signal": None,
        "demean": True,
    },
}


def preset_parameters(denoise_strategy: str, **kwargs) -> dict:
    """``load_confounds`` parameters of a preset, updated by the user's choices.

    Parameters
    ----------
    denoise_strategy : {"simple", "scrubbing", "compcor", "ica_aroma"}
    **kwargs
        Values for the preset's tunable parameters (None keeps the preset's).
        ``global_signal`` (any preset) adds the global signal with that
        expansion. Parameters the preset does not use are ignored with a
        warning, as in nilearn; ``ica_aroma`` is always "full".

    Returns
    -------
    dict
    """
    if denoise_strategy not in PRESETS:
        raise ValueError(f"denoise_strategy must be one of {tuple(PRESETS)}, got {denoise_strategy!r}")
    parameters = dict(PRESETS[denoise_strategy])
    tunable = [key for key in parameters if key not in ("strategy", "ica_aroma")]
    for key in tunable:
        value = kwargs.pop(key, None)
        if value is not None:
            parameters[key] = value
        if key == "global_signal":
            if isinstance(value, str):
                parameters["strategy"] += ("global_signal",)
            else:
                parameters.pop("global_signal", None)
    not_needed = [key for key, value in kwargs.items()]
    if not_needed:
        warnings.warn(
            f"The following parameters are not needed for the selected strategy '{denoise_strategy}': "
            f"{not_needed}; parameters accepted: {tunable}",
            stacklevel=3,
        )
    return parameters
