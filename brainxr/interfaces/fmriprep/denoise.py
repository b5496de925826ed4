"""Denoise one run from its fMRIPrep confounds: strategy selection + ``clean``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr

from brainxr.interfaces.fmriprep.selection import ConfoundsStrategy, select_confounds


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
    ``load_confounds``' default (list of components); see
    :meth:`ConfoundsStrategy.from_options`.
    """
    return ConfoundsStrategy.from_options(strategy, **options).as_dict()


def clean_run(
    bold,
    confounds_table,
    confounds_metadata=None,
    strategy="simple",
    *,
    min_volumes: int = 1,
    **kwargs,
):
    """Denoise one run: select its fMRIPrep confounds, then ``clean`` it.

    Parameters
    ----------
    bold : xarray.DataArray
        ``(time, voxel)`` (or ``(time, region)``) signals of the run, usually
        dask-backed; its ``t_r`` (see :mod:`brainxr.geometry`) is the
        repetition time unless ``t_r`` is passed.
    confounds_table : pandas.DataFrame or xarray.DataArray
        The run's fMRIPrep confounds (n/a as NaN), see :func:`as_confounds_table`.
    confounds_metadata : dict or str, optional
        The confounds JSON (a dict, or its text); needed for CompCor.
    strategy : str, sequence of str or ConfoundsStrategy, default="simple"
        A preset ("simple", "scrubbing", "compcor", "ica_aroma", as
        ``load_confounds_strategy``), noise components (as
        ``load_confounds``) or a whole strategy.
    min_volumes : int, default=1
        Raise if censoring leaves fewer volumes.
    **kwargs
        Strategy options (the options of :class:`ConfoundsStrategy`:
        ``motion``, ``scrub``, ``fd_threshold``, ... ; None or absent: the
        preset's or load_confounds' default), and :func:`brainxr.signal.clean`
        parameters (``low_pass``, ``high_pass``, ``detrend``, ``standardize``,
        ``filter``, ``t_r``, ...). The confounds and the sample mask come
        from the strategy.

    Returns
    -------
    xarray.DataArray
        The cleaned run, lazy when ``bold`` is dask-backed, labeled with the
        kept volumes. The confounds table is small and is read when the
        graph is built (the sample mask sets the output's length); the BOLD
        data are only read when the result is computed.
    """
    options = {name: kwargs.pop(name) for name in ConfoundsStrategy.option_names() if name in kwargs}
    clean_kwargs = kwargs
    for reserved in ("confounds", "sample_mask", "runs"):
        if reserved in clean_kwargs:
            raise ValueError(f"clean_run: {reserved} comes from the confounds strategy and cannot be passed")
    spec = ConfoundsStrategy.from_options(strategy, **{key: value for key, value in options.items() if value is not None})
    if "tedana" in spec.strategy:
        raise ValueError("clean_run: the 'tedana' strategy needs tedana's files; use load_confounds on the image")
    if isinstance(confounds_metadata, (str, bytes)):
        confounds_metadata = json.loads(confounds_metadata)
    table = as_confounds_table(confounds_table)
    if isinstance(bold, xr.DataArray) and "time" in bold.dims and bold.sizes["time"] != len(table):
        raise ValueError(
            f"confounds_table has {len(table)} rows but bold has {bold.sizes['time']} volumes: they are not the same run"
        )
    confounds, sample_mask = select_confounds(table, confounds_metadata, spec, min_volumes=min_volumes)
    if confounds is not None and confounds.shape[1] == 0:
        confounds = None
    from brainxr.signal import clean  # numba kernels: imported when a run is cleaned, not to parse a strategy

    return clean(bold, confounds=confounds, sample_mask=sample_mask, **clean_kwargs)
