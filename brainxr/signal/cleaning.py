"""``clean``: nilearn-equal signal cleaning of numpy, xarray and dask signals."""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import xarray as xr

from brainxr._arrays import array_module, is_dask_array
from brainxr._docs import fill_doc
from brainxr.dims import TIME_DIM
from brainxr.errors import GeometryError
from brainxr.geometry import get_t_r
from brainxr.signal.kernel import clean_block, finish_psc, output_dtype, psc_adds_original_mean, single_threaded_blas
from brainxr.signal.plan import CleaningPlan, make_cleaning_plan
from brainxr.signal.validation import (
    check_confounds,
    check_filter,
    check_params,
    check_run_sample_masks,
    check_runs,
    check_standardize,
    split_butterworth_kwargs,
)


class _DefaultTR(float):
    """nilearn's default ``t_r`` (2.5 s), recognisable when it was not passed."""

    def __repr__(self):
        return "2.5"


NILEARN_DEFAULT_T_R = _DefaultTR(2.5)


@fill_doc
def clean(
    signals,
    runs=None,
    detrend: bool = True,
    standardize="zscore_sample",
    sample_mask=None,
    confounds=None,
    standardize_confounds: bool = True,
    filter="butterworth",
    low_pass: float | None = None,
    high_pass: float | None = None,
    t_r: float | None = NILEARN_DEFAULT_T_R,
    ensure_finite: bool = False,
    extrapolate: bool = False,
    copy: bool = True,
    **kwargs,
):
    """Clean signals: detrend, filter, remove confounds, standardize.

    Same parameters, defaults, order of operations and results as
    :func:`nilearn.signal.clean` (0.14), on numpy arrays, xarray DataArrays
    and dask arrays. With Butterworth filtering and a ``sample_mask``,
    censored volumes are replaced by a cubic spline through the kept ones,
    the signals and confounds are detrended and filtered, then the censored
    volumes are dropped before the confounds are projected out; with
    ``filter='cosine'`` or no filter, censored volumes are dropped first.

    Parameters
    ----------
    signals : numpy.ndarray, dask.array.Array or xarray.DataArray
        ``(time, n)`` signals. A DataArray needs a ``time`` dim (its other
        dim is kept with its coordinates; the result is labeled with the
        kept time points). Dask-backed signals give a lazy result, cleaned
        blockwise over the chunks of the non-time dim, which are kept as they
        are when time is in one chunk (otherwise the array is rechunked to
        whole time series in chunks of dask's ``array.chunk-size``).
    runs : array-like or str, optional
        Run label of each time point; each run is cleaned on its own and the
        runs are returned in sorted label order, as in nilearn. For a
        DataArray, the name of a coordinate along ``time`` also works.
        Unlike nilearn 0.14, ``standardize_confounds``, ``extrapolate`` and
        the ``butterworth__*`` options apply to every run (nilearn drops
        them when ``runs`` is given).
    %(detrend)s
    standardize : {'zscore_sample', 'psc', None}, default='zscore_sample'
        'zscore_sample': unit sample variance (ddof=1); 'psc': percent signal
        change, relative to the mean before cleaning when cleaning removed the
        mean. True and False mean 'zscore_sample' and None.
    sample_mask : array-like or list of array-like, optional
        Volumes to keep: a boolean mask (True keeps) or increasing integer
        indices; with ``runs``, a list with one mask per run, relative to the
        run.
    confounds : array-like, DataFrame, DataArray, path, or a list of those
        ``(time, k)`` regressors to remove (lists are stacked as columns).
        A path names a CSV/TSV file, with or without a header line. Must be
        finite.
    %(standardize_confounds)s
    filter : {'butterworth', 'cosine', False}, default='butterworth'
        'butterworth': zero-phase Butterworth filter with ``low_pass`` and/or
        ``high_pass``; 'cosine': discrete cosine drift regressors up to
        ``high_pass`` added to the confounds; False: no filtering.
    %(low_pass_high_pass)s
    t_r : float, optional
        Repetition time in seconds. For a DataArray, its own (the ``t_r``
        attribute of its ``time`` coordinate) unless passed: the data know
        their own sampling rate, and filtering a 0.72 s acquisition as if it
        were 2.5 s would silently shift every cutoff; a DataArray without one
        that needs filtering is an error naming ``t_r``. For numpy and dask
        arrays, nilearn's default of 2.5 s.
    ensure_finite : bool, default=False
        Replace non-finite values of the signals by zeros first. Otherwise a
        column holding NaN or Inf comes out NaN, as in nilearn.
    extrapolate : bool, default=False
        With Butterworth filtering and a ``sample_mask``, also extrapolate the
        censored volumes before the first and after the last kept one
        (otherwise they are left out of the filtering).
    copy : bool, default=True
        If False, a C-ordered float numpy array of one run may be overwritten
        by its cleaned values, the result being a view of its first rows (no
        second array of the signals' size; not for ``standardize='psc'``).
    **kwargs
        ``butterworth__order`` (default 5), ``butterworth__padtype``
        (``'odd'``), ``butterworth__padlen`` (scipy's default) for the
        Butterworth filter.

    Returns
    -------
    numpy.ndarray, dask.array.Array or xarray.DataArray
        Cleaned signals, same type as ``signals``, one row per kept volume,
        float (the input's float dtype, or float32/float64 for integers).

    Notes
    -----
    Censored volumes are interpolated as nilearn intends (its 0.14.1
    ``_interpolate_volumes`` indexes with ``~sample_mask`` on integer
    indices, which replaces the mirror images of the kept volumes instead of
    the censored ones; when censored volumes sit at both ends this also
    shifts nilearn's output by the number of dropped leading volumes).
    Signals that are constant (and finite) over the kept volumes come out as
    exact zeros whenever detrending or standardization removes their mean.
    """
    label_source = signals if isinstance(signals, xr.DataArray) else None
    data, runs = _unpack_signals(signals, runs)
    t_r = _resolve_t_r(t_r, label_source)
    try:
        options = plan_options(
            detrend=detrend, standardize=standardize, standardize_confounds=standardize_confounds, filter=filter,
            low_pass=low_pass, high_pass=high_pass, t_r=t_r, ensure_finite=ensure_finite, extrapolate=extrapolate,
            **kwargs,
        )
    except ValueError as err:
        if t_r is None and label_source is not None and "t_r" in str(err):
            raise GeometryError(
                "t_r", f"signals carry no repetition time (no 't_r' on their 'time' coordinate) and filtering needs one ({err})"
            ) from err
        raise
    if copy not in (True, False):
        raise ValueError(f"copy must be True or False, got {copy!r}")

    n_time = data.shape[0]
    runs = check_runs(runs, n_time)
    run_rows = _run_rows(runs, n_time)
    masks = check_run_sample_masks(sample_mask, [_length(rows, n_time) for rows in run_rows])
    confounds, _ = check_confounds(confounds, n_time)
    _warn_if_confounds_kept_raw(confounds, options, stacklevel=3)
    plans = [
        make_cleaning_plan(
            _length(rows, n_time), confounds=None if confounds is None else confounds[rows], sample_mask=mask,
            **options,
        )
        for rows, mask in zip(run_rows, masks)
    ]

    if is_dask_array(data):
        cleaned = [_clean_dask_run(data[rows], plan) for rows, plan in zip(run_rows, plans)]
    else:
        in_place = not copy and len(plans) == 1
        cleaned = [clean_with_plan(data[rows], plan, in_place) for rows, plan in zip(run_rows, plans)]
    if len(cleaned) == 1:
        cleaned = cleaned[0]
    else:
        cleaned = array_module(data).concatenate(cleaned, axis=0)

    if label_source is None:
        return cleaned
    frames = np.concatenate([np.arange(n_time)[rows][plan.output_frames] for rows, plan in zip(run_rows, plans)])
    return _labeled(cleaned, label_source, frames)


def plan_options(
    *,
    detrend: bool = True,
    standardize="zscore_sample",
    standardize_confounds: bool = True,
    filter="butterworth",
    low_pass: float | None = None,
    high_pass: float | None = None,
    t_r: float | None = None,
    ensure_finite: bool = False,
    extrapolate: bool = False,
    **kwargs,
) -> dict:
    """Check :func:`clean`'s parameters; return the options of a run's cleaning plan.

    Parameters are those of :func:`clean` (``t_r`` already resolved). An
    unknown name is an error listing the parameters and suggesting the
    closest one.

    Returns
    -------
    dict
        Keyword arguments of :func:`~brainxr.signal.plan.make_cleaning_plan`
        (all but ``confounds`` and ``sample_mask``): ``filter`` is the
        filter that really runs, ``butterworth_options`` unprefixed.
    """
    butterworth_options = split_butterworth_kwargs(kwargs)
    check_params({"detrend": detrend, "standardize_confounds": standardize_confounds, "low_pass": low_pass,
                  "high_pass": high_pass, "t_r": t_r})
    if extrapolate not in (True, False):
        raise ValueError(f"extrapolate must be True or False, got {extrapolate!r}")
    if ensure_finite not in (True, False):
        raise ValueError(f"ensure_finite must be True or False, got {ensure_finite!r}")
    return dict(
        detrend=detrend,
        standardize=check_standardize(standardize),
        standardize_confounds=standardize_confounds,
        filter=check_filter(filter, low_pass, high_pass, t_r),
        low_pass=low_pass,
        high_pass=high_pass,
        t_r=t_r,
        ensure_finite=ensure_finite,
        extrapolate=extrapolate,
        butterworth_options=butterworth_options,
    )


def _warn_if_confounds_kept_raw(confounds, options: dict, stacklevel: int) -> None:
    if confounds is not None and not options["detrend"] and not options["standardize_confounds"]:
        warnings.warn(
            "When confounds are provided, one must perform detrend and/or standardize confounds. "
            f"You provided detrend={options['detrend']}, standardize_confounds={options['standardize_confounds']}. "
            "If confounds were not standardized or demeaned before passing to signal.clean signal "
            "will not be correctly cleaned. ",
            stacklevel=stacklevel + 1,
        )


def run_plan(n_time: int, confounds, sample_mask, options: dict) -> CleaningPlan:
    """The cleaning plan of one run from its confounds and sample mask (checked as :func:`clean` does).

    Parameters
    ----------
    n_time : int
        Volumes in the run.
    confounds : array-like, DataFrame or None
    sample_mask : array-like or None
    options : dict
        From :func:`plan_options`.
    """
    confounds, _ = check_confounds(confounds, n_time)
    (mask,) = check_run_sample_masks(sample_mask, [n_time])
    _warn_if_confounds_kept_raw(confounds, options, stacklevel=2)
    return make_cleaning_plan(n_time, confounds=confounds, sample_mask=mask, **options)


def _unpack_signals(signals, runs):
    """Return the ``(time, n)`` array behind ``signals`` and the run labels."""
    if isinstance(signals, xr.DataArray):
        if TIME_DIM not in signals.dims or signals.ndim != 2:
            raise ValueError(
                f"signals: expected a 2D DataArray with a {TIME_DIM!r} dim, got dims {signals.dims}"
            )
        if isinstance(runs, str):
            if runs not in signals.coords or signals[runs].dims != (TIME_DIM,):
                raise ValueError(f"runs: {runs!r} is not a coordinate along {TIME_DIM!r} of signals")
            runs = signals[runs].values
        data = signals.transpose(TIME_DIM, ...).data
    elif is_dask_array(signals):
        data = signals
    else:
        data = np.asarray(signals)
    if data.ndim != 2:
        raise ValueError(f"signals must be 2D (time, features), got shape {data.shape}")
    if data.dtype.kind not in "biuf":
        raise ValueError(f"signals must hold numbers, got dtype {data.dtype}")
    if is_dask_array(data) and data.numblocks[0] > 1:
        # the kernel needs whole time series: time goes in one chunk, and the
        # other dim is split so that chunks keep dask's configured size
        # (time-blocked images often hold every voxel in each chunk)
        data = data.rechunk({0: -1, 1: "auto"})
    return data, runs


def _resolve_t_r(t_r, label_source):
    """The repetition time to use: explicit, else the DataArray's own (None if it has none).

    nilearn's default of 2.5 s applies to plain arrays only.
    """
    if label_source is None:
        return float(t_r) if t_r is NILEARN_DEFAULT_T_R else t_r
    own = get_t_r(label_source, "signals", required=False)
    if t_r is NILEARN_DEFAULT_T_R:
        return own
    if own is not None and isinstance(t_r, (int, float)) and not isinstance(t_r, bool) and not np.isclose(t_r, own):
        warnings.warn(f"t_r={t_r} differs from the signals' own t_r={own}; using t_r={t_r}", stacklevel=3)
    return t_r


def _run_rows(runs, n_time: int) -> list:
    """Rows of each run, in sorted label order (slices when contiguous)."""
    if runs is None:
        return [slice(0, n_time)]
    rows = []
    for label in np.unique(runs):
        index = np.flatnonzero(runs == label)
        contiguous = index[-1] - index[0] + 1 == len(index)
        rows.append(slice(int(index[0]), int(index[-1]) + 1) if contiguous else index)
    return rows


def _length(rows, n_time: int) -> int:
    return len(range(n_time)[rows]) if isinstance(rows, slice) else len(rows)


#: values of the signals cleaned per task when a run is cleaned in threads
_TASK_VALUES = 2**22


def clean_with_plan(block: np.ndarray, plan: CleaningPlan, in_place: bool = False) -> np.ndarray:
    """Clean one run's ``(time, n)`` numpy signals with its plan (percent signal change finished).

    Signals wider than a task of :data:`_TASK_VALUES` values are cleaned a
    task of columns at a time in threads, BLAS on one thread: the kernel's
    compiled filter and BLAS release the GIL, so threads clean disjoint
    columns in parallel, where BLAS's own threads would only compete with
    them (and spin on a loaded machine: 10x slower measured at load 8 on 2
    cores). A run narrower than one task (a cohort task's region signals) is
    cleaned in the calling thread.

    Parameters
    ----------
    block : numpy.ndarray
        ``(time, n)`` signals of one run.
    plan : CleaningPlan
        The run's cleaning plan.
    in_place : bool
        Write the result over the first rows of ``block`` when its dtype and
        order allow (no second array of the signals' size).

    Returns
    -------
    numpy.ndarray
        ``(plan.n_output, n)`` cleaned signals.
    """
    psc = plan.standardize == "psc"
    n_rows = plan.n_output + 2 if psc else plan.n_output
    dtype = output_dtype(block.dtype)
    if in_place and not psc and block.dtype == dtype and block.flags.c_contiguous:
        cleaned = block[:n_rows]
    else:
        cleaned = np.empty((n_rows, block.shape[1]), dtype=dtype)
    width = max(1, _TASK_VALUES // max(1, block.shape[0]))
    tasks = [slice(start, start + width) for start in range(0, block.shape[1], width)]

    def clean_columns(columns):
        clean_block(block[:, columns], plan, out=cleaned[:, columns])

    if len(tasks) <= 1:
        clean_block(block, plan, out=cleaned)
    else:
        with single_threaded_blas(), ThreadPoolExecutor(max_workers=min(len(tasks), available_cores())) as pool:
            list(pool.map(clean_columns, tasks))
    if not psc:
        return cleaned
    n = plan.n_output
    add_mean = psc_adds_original_mean(cleaned[n], cleaned[n + 1])
    return finish_psc(cleaned, add_mean, inplace=True)


def available_cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _clean_dask_run(block, plan: CleaningPlan):
    import dask
    import dask.array as da

    dtype = output_dtype(block.dtype)
    meta = np.empty((0, 0), dtype=dtype)
    # one graph key holds the plan; every voxel chunk depends on it
    plan_key = dask.delayed(plan, pure=True)
    n = plan.n_output
    if plan.standardize != "psc":
        return block.map_blocks(
            clean_block, plan_key, chunks=((n,), block.chunks[1]), dtype=dtype, meta=meta, token="clean"
        )
    parts = block.map_blocks(
        clean_block, plan_key, chunks=((n + 2,), block.chunks[1]), dtype=dtype, meta=meta, token="clean-psc-parts"
    )
    add_mean = da.blockwise(
        psc_adds_original_mean,
        "",
        parts[n],
        "v",
        parts[n + 1],
        "v",
        concatenate=True,
        dtype=bool,
        meta=np.empty((), bool),
    )
    return da.blockwise(
        finish_psc, "tv", parts, "tv", add_mean, "", adjust_chunks={"t": n}, dtype=dtype, meta=meta, token="clean-psc"
    )


def _labeled(cleaned, source: xr.DataArray, frames: np.ndarray) -> xr.DataArray:
    """Wrap cleaned ``(time, n)`` data with the coordinates of ``source``."""
    ordered = source.transpose(TIME_DIM, ...)
    coords = {
        name: coord.isel({TIME_DIM: frames}) if TIME_DIM in coord.dims else coord
        for name, coord in ordered.coords.items()
    }
    result = xr.DataArray(cleaned, dims=ordered.dims, coords=coords, attrs=dict(source.attrs), name=source.name)
    return result.transpose(*source.dims)
