"""Denoise one run from its fMRIPrep confounds: strategy selection + ``clean``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr

from brainxr.interfaces.fmriprep.presets import PRESETS, preset_parameters
from brainxr.interfaces.fmriprep.selection import select_confounds
from brainxr.signal import clean

# load_confounds' defaults, for a strategy given as a list of components
COMPONENT_DEFAULTS = dict(
    motion="full",
    scrub=5,
    fd_threshold=0.5,
    std_dvars_threshold=1.5,
    wm_csf="basic",
    global_signal="basic",
    compcor="anat_combined",
    n_compcor="all",
    ica_aroma="full",
    demean=True,
)


def as_confounds_table(confounds) -> pd.DataFrame:
    """A run's confounds as a DataFrame.

    Parameters
    ----------
    confounds : pandas.DataFrame or xarray.DataArray
        A DataArray ``(time, confound)`` with the column names as its
        ``confound`` coordinate, as in a cohort store (dask-backed arrays are
        read: the table is small).
    """
    if isinstance(confounds, pd.DataFrame):
        return confounds
    if isinstance(confounds, xr.DataArray):
        if confounds.ndim != 2 or "time" not in confounds.dims:
            raise ValueError(f"confounds_table: expected a (time, confound) DataArray, got dims {confounds.dims}")
        confounds = confounds.transpose("time", ...)
        column_dim = confounds.dims[1]
        if column_dim not in confounds.coords:
            raise ValueError(f"confounds_table: the DataArray has no {column_dim!r} coordinate naming its columns")
        names = [str(name) for name in confounds[column_dim].values]
        return pd.DataFrame(np.asarray(confounds.values, dtype=np.float64), columns=names)
    raise ValueError(f"confounds_table must be a DataFrame or a (time, confound) DataArray, got {type(confounds).__name__}")


def strategy_parameters(strategy="simple", **options) -> dict:
    """``select_confounds`` parameters for a preset name or a list of components.

    Options left to None take the preset's value (preset name) or
    ``load_confounds``' default (list of components).
    """
    if isinstance(strategy, str):
        if strategy not in PRESETS:
            raise ValueError(
                f"strategy must be a preset name {tuple(PRESETS)} or a list of noise components, got {strategy!r}"
            )
        return preset_parameters(strategy, **options)
    unknown = sorted(set(options) - set(COMPONENT_DEFAULTS))
    if unknown:
        raise TypeError(f"unknown confounds strategy option(s) {unknown}; accepted: {sorted(COMPONENT_DEFAULTS)}")
    parameters = {key: (COMPONENT_DEFAULTS[key] if options.get(key) is None else options[key]) for key in COMPONENT_DEFAULTS}
    return dict(parameters, strategy=tuple(strategy))


def clean_run(
    bold,
    confounds_table,
    confounds_metadata=None,
    strategy="simple",
    *,
    motion=None,
    scrub=None,
    fd_threshold=None,
    std_dvars_threshold=None,
    wm_csf=None,
    global_signal=None,
    compcor=None,
    n_compcor=None,
    ica_aroma=None,
    demean=None,
    min_volumes: int = 1,
    **clean_kwargs,
):
    """Denoise one run: select its fMRIPrep confounds, then ``clean`` it.

    Parameters
    ----------
    bold : xarray.DataArray
        ``(time, voxel)`` (or ``(time, region)``) signals of the run, usually
        dask-backed; ``attrs["t_r"]`` gives the repetition time unless
        ``t_r`` is passed.
    confounds_table : pandas.DataFrame or xarray.DataArray
        The run's fMRIPrep confounds (n/a as NaN), see :func:`as_confounds_table`.
    confounds_metadata : dict or str, optional
        The confounds JSON (a dict, or its text); needed for CompCor.
    strategy : str or sequence of str, default="simple"
        A preset ("simple", "scrubbing", "compcor", "ica_aroma", as
        ``load_confounds_strategy``) or noise components (as
        ``load_confounds``).
    motion, scrub, fd_threshold, std_dvars_threshold, wm_csf, global_signal, \
compcor, n_compcor, ica_aroma, demean
        Strategy options (None: the preset's or load_confounds' default);
        see :func:`~brainxr.interfaces.fmriprep.select_confounds`.
    min_volumes : int, default=1
        Raise if censoring leaves fewer volumes.
    **clean_kwargs
        :func:`brainxr.signal.clean` parameters (``low_pass``, ``high_pass``,
        ``detrend``, ``standardize``, ``filter``, ``t_r``, ...). The
        confounds and the sample mask come from the strategy.

    Returns
    -------
    xarray.DataArray
        The cleaned run, lazy when ``bold`` is dask-backed, labeled with the
        kept volumes. The confounds table is small and is read when the
        graph is built (the sample mask sets the output's length); the BOLD
        data are only read when the result is computed.
    """
    for reserved in ("confounds", "sample_mask", "runs"):
        if reserved in clean_kwargs:
            raise ValueError(f"clean_run: {reserved} comes from the confounds strategy and cannot be passed")
    options = dict(
        motion=motion,
        scrub=scrub,
        fd_threshold=fd_threshold,
        std_dvars_threshold=std_dvars_threshold,
        wm_csf=wm_csf,
        global_signal=global_signal,
        compcor=compcor,
        n_compcor=n_compcor,
        ica_aroma=ica_aroma,
        demean=demean,
    )
    if isinstance(strategy, str):
        options = {key: value for key, value in options.items() if value is not None}
    parameters = strategy_parameters(strategy, **options)
    if "tedana" in parameters["strategy"]:
        raise ValueError("clean_run: the 'tedana' strategy needs tedana's files; use load_confounds on the image")
    if isinstance(confounds_metadata, (str, bytes)):
        confounds_metadata = json.loads(confounds_metadata)
    table = as_confounds_table(confounds_table)
    if isinstance(bold, xr.DataArray) and "time" in bold.dims and bold.sizes["time"] != len(table):
        raise ValueError(
            f"confounds_table has {len(table)} rows but bold has {bold.sizes['time']} volumes: they are not the same run"
        )
    confounds, sample_mask = select_confounds(table, confounds_metadata, min_volumes=min_volumes, **parameters)
    if confounds is not None and confounds.shape[1] == 0:
        confounds = None
    return clean(bold, confounds=confounds, sample_mask=sample_mask, **clean_kwargs)
