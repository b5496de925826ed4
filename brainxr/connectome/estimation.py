"""Connectivity matrices of region signals, per run and over cohorts.

One numpy kernel estimates the connectivity of one run's ``(time, region)``
signals (covariance estimator, z-scoring for correlations, inversion for
precision and partial correlation). :func:`connectivity` wraps it once with
``xr.apply_ufunc`` (core dims ``(time, region) -> (region, region_)``), so a
``(time, region)`` DataArray, a ``(run, time, region)`` cohort and a list of
runs of different lengths (NaN-padded into a cohort) go through the same
call: computed now for numpy data, mapped over chunks of runs for dask data.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence

import numpy as np
import xarray as xr
from scipy import linalg

from brainxr.connectome.covariance import KernelCovariance
from brainxr.connectome.tangent import tangent_space
from brainxr.connectome.matrices import (
    NotPositiveDefiniteError,
    _is_dask,
    cov_to_corr,
    prec_to_partial,
)

__all__ = ["KINDS", "NotPositiveDefiniteError", "connectivity", "resolve_estimator"]

KINDS = ("covariance", "correlation", "partial correlation", "tangent", "precision")
_PER_RUN_KINDS = ("covariance", "correlation", "partial correlation", "precision")
_INVERTING_KINDS = ("partial correlation", "precision", "tangent")
_ESTIMATOR_SHORTCUTS = ("ledoit_wolf", "empirical")


def resolve_estimator(cov_estimator):
    """Covariance estimator from the ``cov_estimator`` parameter.

    Parameters
    ----------
    cov_estimator : None, str or estimator
        None or ``"ledoit_wolf"``: the Ledoit-Wolf shrunk covariance
        (nilearn's default, ``LedoitWolf(store_precision=False)``);
        ``"empirical"``: the plain sample covariance (giving Pearson
        correlations); both computed by brainxr's kernels
        (:class:`~brainxr.connectome.covariance.KernelCovariance`, no
        scikit-learn import). Or any object with ``fit(X)`` and a
        ``covariance_`` attribute (scikit-learn covariance estimators,
        brainxr's GraphicalLasso), cloned before use.

    Returns
    -------
    estimator
        An unfitted estimator.
    """
    if cov_estimator is None:
        return KernelCovariance("ledoit_wolf")
    if isinstance(cov_estimator, str):
        if cov_estimator not in _ESTIMATOR_SHORTCUTS:
            raise ValueError(
                f"cov_estimator={cov_estimator!r} is not a known shortcut; "
                f"expected one of {sorted(_ESTIMATOR_SHORTCUTS)}, None or an "
                "estimator with fit() and covariance_."
            )
        return KernelCovariance(cov_estimator)
    if not hasattr(cov_estimator, "fit"):
        raise ValueError(
            "'cov_estimator' must be an estimator with '.fit()' and "
            "'.covariance_' (e.g. from sklearn.covariance); got "
            f"`{type(cov_estimator).__name__}`."
        )
    return _unfitted_copy(cov_estimator)


def _unfitted_copy(estimator):
    """A new unfitted estimator with the parameters of ``estimator`` (scikit-learn's ``clone``)."""
    if isinstance(estimator, KernelCovariance):
        return KernelCovariance(estimator.name)
    from sklearn.base import clone  # an estimator other than brainxr's kernels comes with scikit-learn

    return clone(estimator)


def fit_covariance(estimator, signals: np.ndarray) -> np.ndarray:
    """The covariance of ``(n_samples, n_features)`` signals by a fresh copy of ``estimator``, float64."""
    return np.asarray(_unfitted_copy(estimator).fit(signals).covariance_, dtype=np.float64)


def _is_empirical(estimator) -> bool:
    """Whether ``estimator`` is the plain sample covariance (brainxr's or scikit-learn's)."""
    if isinstance(estimator, KernelCovariance):
        return estimator.name == "empirical"
    # a scikit-learn estimator passed by the user: scikit-learn is imported already
    covariance_module = sys.modules.get("sklearn.covariance")
    return covariance_module is not None and type(estimator) is covariance_module.EmpiricalCovariance


def check_kind(kind: str, allowed=KINDS) -> str:
    """Raise a clear error for an unknown connectivity kind."""
    if kind not in allowed:
        raise ValueError(
            f"kind={kind!r} is not a connectivity kind; expected one of {list(allowed)}."
        )
    return kind


def check_standardize(standardize) -> bool:
    """Whether signals are z-scored before a correlation is estimated.

    ``True`` and ``"zscore_sample"`` z-score (ddof=1); ``False`` and ``None``
    do not.
    """
    if standardize is True or standardize == "zscore_sample":
        return True
    if standardize is False or standardize is None:
        return False
    raise ValueError(
        f"standardize={standardize!r} is not supported; expected True or "
        "'zscore_sample' (z-score each region, ddof=1), or False or None."
    )


def zscore_sample(signals: np.ndarray) -> np.ndarray:
    """Center columns and scale them to unit sample std (ddof=1), like nilearn.

    Columns whose std is below machine epsilon are only centered.
    """
    centered = signals - signals.mean(axis=0)
    std = centered.std(axis=0, ddof=1)
    std[std < np.finfo(np.float64).eps] = 1.0
    return centered / std


def _check_positive_definite(covariance, run_name, n_samples, estimator, kind):
    try:
        np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError:
        n_regions = covariance.shape[0]
        hint = ""
        if n_samples <= n_regions:
            hint = (
                f" There are fewer samples ({n_samples}) than regions "
                f"({n_regions}): use a shrunk estimator such as LedoitWolf "
                "(the default) or GraphicalLasso, or more samples."
            )
        name = repr(estimator).partition("(")[0] if isinstance(estimator, KernelCovariance) else type(estimator).__name__
        raise NotPositiveDefiniteError(
            f"The covariance of {run_name} estimated with "
            f"{name} is not positive definite, so "
            f"kind={kind!r} (which needs its inverse or logarithm) is undefined."
            + hint
        ) from None


def run_connectivity(
    signals: np.ndarray,
    kind: str,
    estimator,
    standardize: bool,
    run_name: str = "the run",
) -> np.ndarray:
    """Connectivity matrix of one run: the kernel shared by every code path.

    Parameters
    ----------
    signals : numpy.ndarray, shape (n_samples, n_regions)
        Finite region signals.
    kind : str
        One of ``covariance``, ``correlation``, ``partial correlation``,
        ``precision``; ``tangent`` returns the covariance (the tangent map is
        a group operation).
    estimator : covariance estimator
        Cloned before fitting.
    standardize : bool
        Z-score the signals (ddof=1) before estimating a correlation.
    run_name : str
        Used in error messages.

    Returns
    -------
    numpy.ndarray, shape (n_regions, n_regions), float64
    """
    signals = np.asarray(signals, dtype=np.float64)
    n_samples = signals.shape[0]
    if n_samples < 2:
        raise ValueError(
            f"kind={kind!r} needs at least 2 samples (time points) per run; "
            f"{run_name} has {n_samples}."
        )
    if kind == "correlation" and standardize:
        signals = zscore_sample(signals)
    covariance = fit_covariance(estimator, signals)
    if kind == "correlation":
        return cov_to_corr(covariance)
    if kind in ("covariance", "tangent"):
        return covariance
    _check_positive_definite(covariance, run_name, n_samples, estimator, kind)
    precision = linalg.inv(covariance)
    if kind == "precision":
        return precision
    return prec_to_partial(precision)


def _region_list(indices, region_names) -> str:
    names = [str(region_names[i]) for i in indices[:10]]
    more = f" and {len(indices) - 10} more" if len(indices) > 10 else ""
    return ", ".join(names) + more


def _connectivity_with_missing(
    signals, run_name, region_names, kind, estimator, standardize, empty_regions
):
    """The kernel on a run that may hold padding rows and empty regions.

    Time points where no region is finite are padding (runs shorter than the
    cohort's longest) and are dropped. Regions with no finite value are
    excluded (NaN rows and columns, with a warning) or an error. Any other
    non-finite value is an error.
    """
    finite = np.isfinite(signals)
    present_rows = finite.any(axis=1)
    signals, finite = signals[present_rows], finite[present_rows]
    n_regions = signals.shape[1]
    empty = ~finite.any(axis=0)
    if empty.all():
        raise ValueError(f"{run_name} has no finite signal in any region.")
    if empty.any():
        listed = _region_list(np.flatnonzero(empty), region_names)
        if empty_regions == "error":
            raise ValueError(
                f"{run_name}: region(s) {listed} have no finite signal (no "
                "coverage in this run); pass empty_regions='exclude' to leave "
                "them out of its connectome."
            )
        warnings.warn(
            f"{run_name}: region(s) {listed} have no finite signal (no coverage "
            "in this run) and are excluded from its connectome.",
            UserWarning,
            stacklevel=2,
        )
    kept = ~empty
    partial = ~finite[:, kept].all(axis=0)
    if partial.any():
        listed = _region_list(np.flatnonzero(kept)[partial], region_names)
        raise ValueError(
            f"{run_name}: region(s) {listed} have non-finite values at some "
            "time points only; censor those samples or clean the signals "
            "first (only regions missing for the whole run can be excluded)."
        )
    matrix = run_connectivity(signals[:, kept], kind, estimator, standardize, run_name)
    if not empty.any():
        return matrix
    full = np.full((n_regions, n_regions), np.nan)
    full[np.ix_(kept, kept)] = matrix
    return full


def _connectivity_blocks(
    signals, run_names, *errors, region_names, kind, estimator, standardize, empty_regions
):
    """``(..., time, region)`` signals -> ``(..., region, region_)`` matrices.

    The one kernel of :func:`connectivity`, numpy in and out: every leading
    index is a run (``run_names`` has the leading shape). ``xr.apply_ufunc``
    calls it on the whole array (numpy) or on each chunk of runs (dask).
    ``errors`` (optional, like ``run_names``): runs whose extraction failed
    (a non-empty message, left by ``cohort.extract(..., on_error="skip")``)
    get NaN matrices. BLAS runs one thread per task (tasks run in parallel).
    """
    from brainxr.engine import one_thread_per_task

    leading = signals.shape[:-2]
    n_regions = signals.shape[-1]
    runs = signals.reshape((-1,) + signals.shape[-2:])
    names = np.asarray(run_names, dtype=object).reshape(-1)
    failed = (np.asarray(errors[0], dtype=object).reshape(-1) != "") if errors else np.zeros(len(names), dtype=bool)
    matrices = np.full((runs.shape[0], n_regions, n_regions), np.nan)
    with one_thread_per_task():
        for index, (run_signals, run_name) in enumerate(zip(runs, names)):
            if not failed[index]:
                matrices[index] = _connectivity_with_missing(
                    run_signals, str(run_name), region_names, kind, estimator, standardize, empty_regions
                )
    return matrices.reshape(leading + (n_regions, n_regions))


def _check_signals_dataarray(signals, what="signals"):
    if not isinstance(signals, xr.DataArray):
        raise TypeError(
            f"{what} must be an xarray.DataArray with dims ('time', 'region') "
            f"(or a cohort with a run dim); got {type(signals).__name__}. "
            "For plain arrays use brainxr.connectome.ConnectivityMeasure."
        )
    missing = {"time", "region"} - set(signals.dims)
    if missing:
        raise ValueError(
            f"{what} must have 'time' and 'region' dims; got dims "
            f"{signals.dims} (missing {sorted(missing)})."
        )
    if signals.ndim > 3:
        raise ValueError(
            f"{what} must be (time, region) or (run, time, region); got dims "
            f"{signals.dims}."
        )


def _with_mirrored_region_coords(matrices: xr.DataArray) -> xr.DataArray:
    """Copy every coordinate along ``region`` onto ``region_`` (name suffixed ``_``)."""
    mirrored = {}
    for name, coord in matrices.coords.items():
        if "region" in coord.dims:
            dims = tuple("region_" if dim == "region" else dim for dim in coord.dims)
            # .data, not .values: a dask-backed coordinate stays lazy
            mirrored[f"{name}_"] = xr.Variable(dims, coord.variable.data, coord.attrs)
    return matrices.assign_coords(mirrored)


def _region_names(signals: xr.DataArray) -> tuple:
    if "region" in signals.coords:
        return tuple(str(name) for name in signals["region"].values)
    return tuple(f"#{index}" for index in range(signals.sizes["region"]))


def _check_sample_counts(n_samples, n_regions, kind, estimator, what):
    if n_samples < 2:
        raise ValueError(
            f"kind={kind!r} needs at least 2 samples (time points) per run; "
            f"{what} has {n_samples}."
        )
    if (
        kind in _INVERTING_KINDS
        and _is_empirical(estimator)
        and n_samples <= n_regions
    ):
        raise ValueError(
            f"kind={kind!r} with the empirical covariance needs more samples "
            f"than regions (its covariance is singular otherwise); {what} has "
            f"{n_samples} samples for {n_regions} regions. Use a shrunk "
            "estimator (LedoitWolf, the default, or GraphicalLasso)."
        )


def connectivity(
    signals,
    kind: str = "correlation",
    *,
    cov_estimator=None,
    standardize=True,
    empty_regions: str = "exclude",
):
    """Connectivity matrices of region signals, labeled by region.

    Parameters
    ----------
    signals : xarray.DataArray or sequence of xarray.DataArray
        ``(time, region)`` signals of one run; a cohort as a
        ``(run, time, region)`` DataArray (any name for the run dim; time
        points where every region is NaN are padding and are dropped per
        run); or a list of ``(time, region)`` DataArrays, possibly of
        different lengths, with the same regions. Dask-backed data gives a
        lazy result mapped over runs (each chunk of runs is one task); numpy
        data is computed now.
    kind : {"correlation", "partial correlation", "covariance", "precision", \
            "tangent"}, default="correlation"
        As nilearn's ``ConnectivityMeasure``. ``"tangent"`` needs a cohort of
        at least 2 runs; it computes the group geometric mean now and returns
        the tangent vectors (see :func:`tangent_space` to also get the mean).
    cov_estimator : None, "ledoit_wolf", "empirical" or estimator, optional
        Covariance estimator; default ``LedoitWolf(store_precision=False)``
        (nilearn's default: correlations are slightly shrunk). Use
        ``"empirical"`` for Pearson correlations.
    standardize : bool or "zscore_sample", default=True
        Z-score each region (ddof=1) before estimating a correlation, as
        nilearn does; only used for ``kind="correlation"``.
    empty_regions : {"exclude", "error"}, default="exclude"
        What to do with a region that has no finite value in a run (no
        coverage). ``"exclude"`` warns and leaves it out of that run's
        connectome: its row and column are NaN (for one run as for a cohort,
        eager or lazy: the shape never depends on the values). ``"error"``
        raises.

    Returns
    -------
    xarray.DataArray
        ``(region, region_)``, or ``(run, region, region_)`` for a cohort,
        float64, with the region coordinates duplicated (``region_``,
        ``label_``, ``x_``, ...) and attrs ``kind``, ``cov_estimator`` and
        ``standardize``.

    Raises
    ------
    ValueError
        Fewer than 2 samples, singular covariances for the kinds that invert
        them (:class:`NotPositiveDefiniteError`, naming the run), regions
        missing at some time points only, or bad parameters.
    """
    check_kind(kind)
    if empty_regions not in ("exclude", "error"):
        raise ValueError(
            f"empty_regions={empty_regions!r}; expected 'exclude' or 'error'."
        )
    standardize = check_standardize(standardize)
    estimator = resolve_estimator(cov_estimator)

    if isinstance(signals, Sequence) and not isinstance(signals, (str, bytes)):
        signals = _stack_runs(signals)
    else:
        _check_signals_dataarray(signals)
    if signals.ndim == 2 and kind == "tangent":
        raise ValueError(
            "kind='tangent' can only be applied to a group of runs, as "
            "it returns deviations to the group mean; got one run."
        )
    matrices = _apply_kernel(signals, kind, estimator, standardize, empty_regions)
    if kind == "tangent":
        return tangent_space(matrices)["tangent"]
    return matrices


def _attrs(kind, estimator, standardize, source_attrs=None) -> dict:
    from brainxr.provenance import carried

    return {
        **carried(source_attrs or {}),
        "kind": kind,
        "cov_estimator": repr(estimator),
        "standardize": bool(standardize) if kind == "correlation" else False,
    }


def _run_names(signals: xr.DataArray, run_dim: str | None):
    """Names of the runs for messages: a DataArray along ``run_dim``, or a string."""
    if run_dim is None:
        return "the run"
    if run_dim in signals.coords:
        labels = signals[run_dim].values.tolist()
        names = [f"{run_dim} {label!r}" for label in labels]
    elif signals.sizes[run_dim] == 1:
        names = ["the run"]
    else:
        names = [f"{run_dim} {index}" for index in range(signals.sizes[run_dim])]
    return xr.DataArray(np.asarray(names, dtype=object), dims=run_dim)


def _apply_kernel(signals, kind, estimator, standardize, empty_regions):
    """``([run,] time, region)`` -> ``([run,] region, region_)`` through one kernel.

    ``xr.apply_ufunc`` calls :func:`_connectivity_blocks` on numpy data now,
    and on each chunk of runs of dask data lazily, so both paths give the
    same values, coordinates and attrs.
    """
    run_dims = [dim for dim in signals.dims if dim not in ("time", "region")]
    run_dim = run_dims[0] if run_dims else None
    n_samples, n_regions = signals.sizes["time"], signals.sizes["region"]
    run_names = _run_names(signals, run_dim)
    what = "the run" if run_dim is None else (
        str(run_names.values[0]) if signals.sizes[run_dim] == 1 else f"each {run_dim}"
    )
    _check_sample_counts(n_samples, n_regions, kind, estimator, what)
    # runs whose extraction failed (cohort.extract(..., on_error="skip")) give NaN matrices
    errors = signals.coords.get("error")
    errors = [] if errors is None or run_dim is None or errors.dims != (run_dim,) else [
        xr.DataArray(errors.data, dims=run_dim)]
    if _is_dask(signals.data):
        signals = _whole_time_and_regions(signals, run_dim)
        if run_dim is not None:
            run_names = run_names.chunk({run_dim: signals.chunksizes[run_dim]})
            errors = [error.chunk({run_dim: signals.chunksizes[run_dim]}) for error in errors]
    matrices = xr.apply_ufunc(
        _connectivity_blocks,
        signals,
        run_names,
        *errors,
        input_core_dims=[["time", "region"], []] + [[]] * len(errors),
        output_core_dims=[["region", "region_"]],
        kwargs=dict(
            region_names=_region_names(signals),
            kind=kind,
            estimator=estimator,
            standardize=standardize,
            empty_regions=empty_regions,
        ),
        dask="parallelized",
        output_dtypes=[np.float64],
        dask_gufunc_kwargs={"output_sizes": {"region_": n_regions}},
        keep_attrs=False,
    )
    return _with_mirrored_region_coords(matrices).assign_attrs(
        _attrs(kind, estimator, standardize, signals.attrs)
    ).rename(kind.replace(" ", "_"))


def _whole_time_and_regions(signals: xr.DataArray, run_dim) -> xr.DataArray:
    """Dask signals (and their dask coordinates) with time and regions in one chunk.

    Only dask-backed variables are rechunked (``DataArray.chunk`` would turn
    numpy run coordinates into one-chunk dask arrays, inconsistent with the
    data's chunks of runs); dask coordinates along runs follow the data's
    chunks of runs.
    """
    data = signals.data.rechunk({signals.get_axis_num("time"): -1, signals.get_axis_num("region"): -1})
    target = dict(zip(signals.dims, data.chunks))
    coords = {
        name: coord.variable.chunk({dim: target[dim] for dim in coord.dims if dim in target})
        for name, coord in signals.coords.items()
        if _is_dask(coord.data) and name not in signals.dims
    }
    return signals.copy(data=data).assign_coords(coords)


def _stack_runs(runs) -> xr.DataArray:
    """A list of ``(time, region)`` runs -> ``(run, time, region)``, NaN-padded in time.

    Time points where every region is NaN are padding, dropped by the kernel
    (as for the cohorts of :func:`brainxr.regions.extract_cohort`). Region
    coordinates come from the first run.
    """
    if len(runs) == 0:
        raise ValueError("signals is an empty list; expected at least one run.")
    for index, run in enumerate(runs):
        _check_signals_dataarray(run, what=f"signals[{index}]")
        if run.ndim != 2:
            raise ValueError(
                f"signals[{index}] must be a (time, region) DataArray; got dims {run.dims}."
            )
    first = runs[0]
    for index, run in enumerate(runs[1:], start=1):
        if run.sizes["region"] != first.sizes["region"] or (
            "region" in first.coords
            and "region" in run.coords
            and not np.array_equal(run["region"].values, first["region"].values)
        ):
            raise ValueError(
                f"signals[{index}] has different regions from signals[0]; "
                "every run of a cohort must have the same regions in the same order."
            )
    if all("run" in run.coords and run["run"].ndim == 0 for run in runs):
        run_labels = [run["run"].item() for run in runs]
    else:
        run_labels = list(range(len(runs)))
    n_samples = max(run.sizes["time"] for run in runs)
    region_coords = {
        name: coord.variable
        for name, coord in first.coords.items()
        if coord.dims == ("region",)
    }
    padded = [
        xr.DataArray(run.transpose("time", "region").data, dims=("time", "region"))
        .astype(np.result_type(run.dtype, np.float64))
        .pad(time=(0, n_samples - run.sizes["time"]), constant_values=np.nan)
        for run in runs
    ]
    region_coords["run"] = ("run", np.asarray(run_labels))
    return xr.concat(padded, dim="run").assign_coords(region_coords)
