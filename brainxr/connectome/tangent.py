"""The geometric mean of covariances and the tangent space at it.

Fletcher's gradient descent (as in nilearn), in which each iteration is one
map over blocks of runs (per-run eigendecompositions giving
``logm(W C W)``) and one tree-reduced mean, and the tangent-space embedding
``logm(W C_k W)`` with ``W = mean^-1/2``. The same code runs on numpy stacks,
on the threaded scheduler and on a ``distributed.Client``. The per-run
estimation (:mod:`brainxr.connectome.estimation`, ``kind="tangent"``), the
group reductions (:mod:`brainxr.connectome.group`) and
:class:`~brainxr.connectome.ConnectivityMeasure` build on it.
"""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np
import xarray as xr
from scipy import linalg

from brainxr.connectome.matrices import (
    NotPositiveDefiniteError,
    _form_symmetric,
    _is_dask,
    map_eigenvalues,
)
from brainxr.provenance import carried

__all__ = ["geometric_mean", "tangent_space"]


def _run_dim(connectomes: xr.DataArray, what: str) -> str:
    missing = {"region", "region_"} - set(connectomes.dims)
    others = [dim for dim in connectomes.dims if dim not in ("region", "region_")]
    if missing or len(others) != 1:
        raise ValueError(
            f"{what} must be a (run, region, region_) DataArray; got dims "
            f"{connectomes.dims}."
        )
    return others[0]


def _square_coords(connectomes: xr.DataArray, run_dim: str) -> dict:
    return {
        name: coord.variable
        for name, coord in connectomes.coords.items()
        if run_dim not in coord.dims
    }


def _sum_of_checked_blocks(covariances, run_names, kept=None):
    """Sum of a block of covariances, checking each is symmetric positive definite.

    ``kept`` (``(run,)`` bool, optional) leaves runs out: those whose
    extraction failed (``error`` coordinate), whose matrices are NaN.
    """
    kept = np.ones(len(covariances), dtype=bool) if kept is None else np.asarray(kept, dtype=bool)
    for covariance, run_name in zip(covariances[kept], np.asarray(run_names, dtype=object)[kept]):
        if not np.all(np.isfinite(covariance)):
            raise ValueError(
                f"The covariance of {run_name} has non-finite values (a region "
                "excluded for missing coverage?); the geometric mean needs "
                "every covariance complete."
            )
        symmetric = np.allclose(covariance, covariance.T, atol=0, rtol=1e-7)
        try:
            if not symmetric:
                raise np.linalg.LinAlgError
            np.linalg.cholesky(covariance)
        except np.linalg.LinAlgError:
            raise NotPositiveDefiniteError(
                f"The covariance of {run_name} is not symmetric positive "
                "definite; the geometric mean and the tangent space need SPD "
                "covariances (use a shrunk estimator such as LedoitWolf)."
            ) from None
    return covariances[kept].sum(axis=0, keepdims=True)


# The kernels below work on a whole block of runs at once (stacked matmul and eigh, the same LAPACK calls per
# matrix as a loop): a loop of ~0.1 ms numpy calls per run let the two threads of a worker wait on each
# other's GIL at every call.


def _sum_of_logs_blocks(covariances, kept, whitening):
    """``sum_k logm(W C_k W)`` over the kept runs of a block: the map of one iteration.

    ``sum_k V_k log(w_k) V_k^T`` is one matrix product ``[V_1 log(w_1) ...] [V_1 ... ]^T``
    (inner size ``k p``): a third less time than ``k`` products of ``p x p`` and their sum.
    """
    whitened = whitening @ covariances[np.asarray(kept, dtype=bool)] @ whitening
    n_runs, size = whitened.shape[:2]
    if n_runs == 0:
        return np.zeros((1,) + covariances.shape[1:])
    values, vectors = np.linalg.eigh(whitened)
    scaled = vectors * np.log(values)[:, None, :]
    wide = scaled.transpose(1, 0, 2).reshape(size, n_runs * size)
    tall = vectors.transpose(0, 2, 1).reshape(n_runs * size, size)
    return (wide @ tall)[None]


def _tangent_blocks(covariances, kept=None, *, whitening):
    """``logm(W C_k W)`` for each run of a block (NaN for the runs left out): the kernel of :func:`tangent_space`."""
    kept = np.ones(len(covariances), dtype=bool) if kept is None else np.asarray(kept, dtype=bool)
    tangent = np.full(covariances.shape, np.nan)
    tangent.reshape(-1, *covariances.shape[-2:])[kept.ravel()] = map_eigenvalues(
        np.log, whitening @ covariances.reshape(-1, *covariances.shape[-2:])[kept.ravel()] @ whitening)
    return tangent


def _in_task(block_function, *arguments, **keywords):
    """``block_function(*arguments, **keywords)`` with one BLAS thread (tasks already run one per core)."""
    from brainxr.engine import one_thread_per_task

    with one_thread_per_task():
        return block_function(*arguments, **keywords)


def _map_sum(block_function, covariances, *run_aligned, square=(), split_every=None):
    """Sum over runs of ``block_function`` applied per block of runs.

    ``run_aligned`` arrays follow the run axis; ``square`` arrays are shared
    ``(n, n)`` operands. For dask input this is one blockwise map and one tree
    reduction, computed now; for numpy input one call on the whole stack.
    """
    if not _is_dask(covariances):
        return block_function(covariances, *run_aligned, *square)[0]
    import dask.array as da

    arguments = [covariances, "rij"]
    for array in run_aligned:
        arguments += [da.from_array(array, chunks=(covariances.chunks[0],)), "r"]
    for array in square:
        arguments += [da.from_array(array, chunks=-1), "ij"]
    partial_sums = da.blockwise(
        _in_task,
        "rij",
        block_function,
        None,
        *arguments,
        adjust_chunks={"r": 1},
        dtype=np.float64,
        meta=np.empty((0, 0, 0)),
    )
    return partial_sums.sum(axis=0, split_every=split_every).compute()


def _as_covariance_stack(covariances):
    """``(data, run_names, template, kept)`` from a DataArray or an array stack.

    ``kept`` is False for the runs whose ``error`` coordinate is not empty
    (left by ``cohort.extract(..., on_error="skip")``).
    """
    kept = None
    if isinstance(covariances, xr.DataArray):
        run_dim = _run_dim(covariances, "covariances")
        covariances = covariances.transpose(run_dim, "region", "region_")
        labels = covariances[run_dim].values.tolist() if run_dim in covariances.coords else range(covariances.sizes[run_dim])
        names = [f"{run_dim} {label!r}" for label in labels]
        data = covariances.data
        template = covariances
        if "error" in covariances.coords and covariances["error"].dims == (run_dim,):
            kept = np.asarray(covariances["error"].values, dtype=object) == ""
    else:
        data = covariances if _is_dask(covariances) else np.asarray(covariances, dtype=np.float64)
        names = [f"matrix {index}" for index in range(data.shape[0])] if data.ndim == 3 else []
        template = None
    if data.ndim != 3 or data.shape[1] != data.shape[2]:
        raise ValueError(
            "covariances must be a stack of square matrices (run, n, n); got "
            f"shape {tuple(data.shape)}."
        )
    if data.shape[0] == 0:
        raise ValueError("covariances is empty; expected at least one matrix.")
    if kept is None:
        kept = np.ones(data.shape[0], dtype=bool)
    if not kept.any():
        raise ValueError("every run of covariances failed (see its 'error' coordinate); nothing to average.")
    if _is_dask(data):
        data = data.rechunk({1: -1, 2: -1}).astype(np.float64)
    return data, np.asarray(names, dtype=object), template, kept


def _check_init(init, n_features):
    init = np.asarray(init, dtype=np.float64)
    if init.ndim != 2 or init.shape != (n_features, n_features):
        raise ValueError(
            f"init must be a ({n_features}, {n_features}) matrix like the "
            f"covariances; got shape {init.shape}."
        )
    _sum_of_checked_blocks(init[None], ["init"])
    return init


def _fletcher_geometric_mean(data, run_names, init, max_iter, tol, split_every, kept=None):
    """Algorithm 3 of Fletcher & Joshi (2007), step for step as nilearn 0.14 (over the ``kept`` runs).

    With one BLAS thread throughout: for its own ``p x p`` steps, and so that
    the limit of the tasks of the threaded scheduler holds between passes.
    """
    from brainxr.engine import one_thread_per_task

    with one_thread_per_task():
        return _fletcher_iterations(data, run_names, init, max_iter, tol, split_every, kept)


def _fletcher_iterations(data, run_names, init, max_iter, tol, split_every, kept):
    kept = np.ones(data.shape[0], dtype=bool) if kept is None else kept
    n_runs = int(kept.sum())
    total = _map_sum(_sum_of_checked_blocks, data, run_names, kept, split_every=split_every)
    gmean = total / n_runs if init is None else _check_init(init, data.shape[1])

    norm_old = np.inf
    step = 1.0
    norm = np.inf
    for _ in range(max_iter):
        vals_gmean, vecs_gmean = linalg.eigh(gmean)
        gmean_inv_sqrt = _form_symmetric(np.sqrt, 1.0 / vals_gmean, vecs_gmean)
        with np.errstate(invalid="ignore"):
            logs_sum = _map_sum(
                _sum_of_logs_blocks, data, kept, square=(gmean_inv_sqrt,), split_every=split_every
            )
        logs_mean = logs_sum / n_runs
        if np.any(np.isnan(logs_mean)):
            raise FloatingPointError("Nan value after logarithm operation.")
        norm = np.linalg.norm(logs_mean)

        vals_log, vecs_log = linalg.eigh(logs_mean)
        gmean_sqrt = _form_symmetric(np.sqrt, vals_gmean, vecs_gmean)
        gmean = gmean_sqrt @ _form_symmetric(np.exp, vals_log * step, vecs_log) @ gmean_sqrt

        if norm < norm_old:
            norm_old = norm
        elif norm > norm_old:
            step = step / 2.0
            norm = norm_old
        if tol is not None and norm / gmean.size < tol:
            break
    if tol is not None and norm / gmean.size >= tol:
        warnings.warn(
            f"Maximum number of iterations {max_iter} reached without getting "
            f"to the requested tolerance level {tol}.",
            stacklevel=3,
        )
    return gmean


def geometric_mean(
    covariances,
    *,
    init=None,
    max_iter: int = 30,
    tol: float | None = 1e-7,
    split_every: int | None = None,
):
    """Geometric (Riemannian) mean of symmetric positive definite matrices.

    The minimizer of the sum of squared distances
    ``||logm(X^-1/2 C_k X^-1/2)||`` to the matrices, by Fletcher's gradient
    descent with nilearn 0.14's initialization (arithmetic mean), step
    halving and stopping rule (``norm / n**2 < tol``). Each iteration is one
    map over blocks of runs (``logm(W C_k W)`` by eigendecomposition) and one
    tree reduction of their mean, so for dask input memory stays bounded by a
    few blocks whatever the number of runs, and the iterations run unchanged
    on a ``distributed.Client``. Dask input is computed once per iteration
    (plus one pass that checks the matrices): persist it, or read it from a
    store, if producing it is costly.

    Parameters
    ----------
    covariances : xarray.DataArray, numpy.ndarray or dask.array.Array
        ``(run, region, region_)`` DataArray, or a ``(n, p, p)`` stack.
    init : numpy.ndarray, shape (p, p), optional
        Starting point, the arithmetic mean by default.
    max_iter : int, default=30
        Iterations at most (nilearn's ConnectivityMeasure uses 30).
    tol : float or None, default=1e-7
        Convergence threshold on the gradient norm divided by ``p**2``;
        None runs ``max_iter`` iterations.
    split_every : int, optional
        Fan-in of the tree reductions.

    Returns
    -------
    numpy.ndarray or xarray.DataArray
        The ``(p, p)`` geometric mean; a ``(region, region_)`` DataArray for
        DataArray input.

    Raises
    ------
    NotPositiveDefiniteError
        A matrix is not symmetric positive definite (the message names it).
    """
    data, run_names, template, kept = _as_covariance_stack(covariances)
    gmean = _fletcher_geometric_mean(data, run_names, init, max_iter, tol, split_every, kept)
    if template is None:
        return gmean
    run_dim = template.dims[0]
    return xr.DataArray(
        gmean,
        dims=("region", "region_"),
        coords=_square_coords(template, run_dim),
        attrs=dict(carried(template.attrs), kind="geometric mean of covariances", n_runs=int(kept.sum())),
        name="geometric_mean",
    )


def tangent_space(
    covariances: xr.DataArray,
    *,
    mean=None,
    max_iter: int = 30,
    tol: float | None = 1e-7,
    split_every: int | None = None,
) -> xr.Dataset:
    """Tangent-space embedding of covariances at their geometric mean.

    ``logm(W C_k W)`` with ``W = mean^-1/2``, as nilearn's
    ``ConnectivityMeasure(kind="tangent")``.

    Parameters
    ----------
    covariances : xarray.DataArray
        ``(run, region, region_)`` covariances (for example
        ``connectivity(signals, kind="covariance")``), at least 2 runs.
    mean : array-like, shape (n_regions, n_regions), optional
        Reference point (for example the geometric mean of a reference
        group); computed with :func:`geometric_mean` if None.
    max_iter, tol, split_every
        See :func:`geometric_mean`.

    Returns
    -------
    xarray.Dataset
        ``tangent`` ``(run, region, region_)`` (lazy for dask input),
        ``mean`` and ``whitening`` ``(region, region_)``.
    """
    if not isinstance(covariances, xr.DataArray):
        raise TypeError(
            "covariances must be a (run, region, region_) xarray.DataArray; got "
            f"{type(covariances).__name__}."
        )
    run_dim = _run_dim(covariances, "covariances")
    if covariances.sizes[run_dim] <= 1:
        raise ValueError(
            "Tangent space parametrization can only be applied to a group of "
            "subjects, as it returns deviations to the mean; got "
            f"{covariances.sizes[run_dim]} {run_dim}."
        )
    data, run_names, template, kept = _as_covariance_stack(covariances)
    if mean is None:
        mean = _fletcher_geometric_mean(data, run_names, None, max_iter, tol, split_every, kept)
    else:
        mean = _check_init(np.asarray(getattr(mean, "values", mean)), data.shape[1])
    whitening = map_eigenvalues(lambda values: 1.0 / np.sqrt(values), mean)
    # one kernel: on numpy data now, lazily on each chunk of runs of dask data (one BLAS thread per task)
    tangent = xr.apply_ufunc(
        partial(_in_task, _tangent_blocks) if _is_dask(data) else _tangent_blocks,
        template.copy(data=data),
        xr.DataArray(kept, dims=run_dim),
        input_core_dims=[["region", "region_"], []],
        output_core_dims=[["region", "region_"]],
        kwargs={"whitening": whitening},
        dask="parallelized",
        output_dtypes=[np.float64],
        keep_attrs=True,
    )
    square = ("region", "region_")
    group_attrs = dict(carried(template.attrs), n_runs=int(kept.sum()))
    return xr.Dataset(
        {
            "tangent": tangent.assign_attrs(kind="tangent").rename("tangent"),
            "mean": (square, mean, dict(group_attrs, kind="geometric mean of covariances")),
            "whitening": (square, whitening, dict(group_attrs, kind="inverse square root of the mean")),
        },
        coords=_square_coords(template, run_dim),
    )
