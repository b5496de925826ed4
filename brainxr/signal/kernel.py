"""The cleaning kernel: one function that cleans a ``(time, n)`` block.

:func:`clean_block` applies a :class:`~brainxr.signal.plan.CleaningPlan` to
the columns of a block. The numpy path calls it on the whole array, the dask
path maps it over voxel chunks (time in one chunk): every step but the
percent-signal-change decision is column-wise, so blocks are independent.

``standardize='psc'`` needs one number computed over *all* columns of a run
(nilearn adds the original mean back when cleaning removed it), so in that
case the kernel returns the centred residuals plus two rows of per-column
means, and :func:`finish_psc` divides once that number is known.
"""

from __future__ import annotations

import warnings

import numpy as np

from brainxr.signal.filters import filtfilt_buffer, padded_buffer

EPS = np.finfo(np.float64).eps

# Width of the float64 working arrays (columns are cleaned in batches so the
# working memory stays a few MB whatever the block size).
_WORK_BYTES = 4 * 2**20


_blas_controller = None


def single_threaded_blas():
    """A context in which BLAS/LAPACK run on one thread (for work parallel in threads of its own).

    The threadpoolctl controller is made once (~3 ms); entering the context
    then costs microseconds.
    """
    global _blas_controller
    if _blas_controller is None:
        from threadpoolctl import ThreadpoolController

        _blas_controller = ThreadpoolController()
    return _blas_controller.limit(limits=1, user_api="blas")


def output_dtype(dtype) -> np.dtype:
    """The dtype of cleaned signals: floats keep theirs, other types become float."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return dtype
    return np.dtype(np.float64 if dtype.itemsize == 8 else np.float32)


def subtract_product(values: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``values -= left @ right`` in place, without a temporary when BLAS can write in place."""
    if values.dtype == np.float64 and values.flags.c_contiguous and values.size:
        from scipy.linalg import blas  # on first use: a script that only standardizes never imports scipy.linalg

        # (left @ right).T = right.T @ left.T, accumulated into the Fortran-ordered values.T
        result = blas.dgemm(-1.0, right, left, beta=1.0, c=values.T, trans_a=1, trans_b=1, overwrite_c=1)
        if not np.shares_memory(result, values):  # the wrapper had to copy
            values[...] = result.T
    else:
        values -= left @ right
    return values


def detrend_columns(values: np.ndarray) -> np.ndarray:
    """Remove the mean and the linear trend of each column, in place (as nilearn)."""
    n_time = values.shape[0]
    if n_time == 1:
        warnings.warn(
            "Detrending of 3D signal has been requested but would lead to zero values. Skipping.",
            stacklevel=3,
        )
        return values
    regressor = np.arange(n_time, dtype=values.dtype)
    regressor -= regressor.mean()
    norm = np.sqrt((regressor**2).sum())
    if not norm < EPS:
        regressor /= norm
    # mean and trend coefficient of every column in one product (regressor sums to 0)
    design = np.stack([np.ones(n_time), regressor], axis=1)
    coefficients = np.stack([np.full(n_time, 1.0 / n_time), regressor]) @ values
    return subtract_product(values, design, coefficients)


def zscore_columns(values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Centre and scale each column to unit sample variance (ddof=1).

    Columns whose deviation is below float64 eps are centred only. The
    centred values are left in ``values``; the result goes to ``out`` (any
    float dtype, possibly a strided view) or, by default, to ``values``.
    """
    if values.shape[0] == 1:
        warnings.warn(
            "Standardization of 3D signal has been requested but would lead to zero values. Skipping.",
            stacklevel=3,
        )
        if out is not None:
            out[...] = values
        return values if out is None else out
    n_time = values.shape[0]
    values -= np.full(n_time, 1.0 / n_time) @ values  # in place, broadcast over rows
    std = np.sqrt(np.einsum("ij,ij->j", values, values) / (n_time - 1))
    std[std < EPS] = 1.0
    return np.divide(values, std, out=values if out is None else out)


def _column_batches(n_columns: int, n_rows: int):
    width = max(64, _WORK_BYTES // (8 * max(n_rows, 1)))
    for start in range(0, n_columns, width):
        yield slice(start, min(start + width, n_columns))


def _residuals(block: np.ndarray, plan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps before standardization, on a float64 copy of a column batch.

    Returns the residuals ``(n_output, n)``, the mean of each column over the
    frames entering the cleaning (after interpolation, for 'psc') and a mask
    of constant columns.
    """
    padlen = plan.butterworth.padlen if plan.butterworth is not None else 0
    support = block[plan.support]
    buffer, work = padded_buffer(support.shape[0], support.shape[1], padlen)
    work[...] = support
    if plan.ensure_finite:
        work[~np.isfinite(work)] = 0
    knots = work[plan.knots] if plan.interpolated.size else work
    highest = knots.max(axis=0)
    # an all-Inf column is not constant: its cleaned values are NaN, as in nilearn
    constant = (highest == knots.min(axis=0)) & np.isfinite(highest)
    if plan.interpolated.size:
        work[plan.interpolated] = plan.interpolation_weights @ knots
    original_mean = work.mean(axis=0) if plan.standardize == "psc" else None
    if plan.detrend:
        detrend_columns(work)
    if plan.butterworth is not None:
        work = filtfilt_buffer(plan.butterworth, buffer)
    if plan.censor is not None:
        work = work[plan.censor]
    if plan.confound_basis is not None:
        basis = plan.confound_basis
        subtract_product(work, basis, basis.T @ work)
    return work, original_mean, constant


def clean_block(block: np.ndarray, plan, out: np.ndarray | None = None) -> np.ndarray:
    """Clean the columns of a ``(time, n)`` block of one run.

    Parameters
    ----------
    block : numpy.ndarray, shape (plan.n_input, n)
        Signals of one run, time first.
    plan : CleaningPlan
        The run's precomputed cleaning steps.
    out : numpy.ndarray, optional
        Where to write the result (shape and dtype as returned). It may be
        ``block`` itself or the view of its first rows: each batch of columns
        is copied out of ``block`` before its result is written.

    Returns
    -------
    numpy.ndarray
        ``(plan.n_output, n)`` cleaned signals in :func:`output_dtype`; for
        ``plan.standardize == 'psc'``, ``(plan.n_output + 2, n)``: centred
        residuals, then the residual mean and the original mean of each
        column, to be finished by :func:`finish_psc`.
    """
    if block.ndim != 2 or block.shape[0] != plan.n_input:
        raise ValueError(f"expected a ({plan.n_input}, n) block for this run, got shape {block.shape}")
    dtype = output_dtype(block.dtype)
    psc = plan.standardize == "psc"
    n_output = plan.n_output
    shape = (n_output + 2 if psc else n_output, block.shape[1])
    if out is None:
        out = np.empty(shape, dtype=dtype)
    elif out.shape != shape or out.dtype != dtype:
        raise ValueError(f"out: expected a {shape} {dtype} array, got {out.shape} {out.dtype}")
    # the constant-column rule: cleaning a constant signal gives exact zeros
    # wherever the maths gives zero (mean removal by detrending or standardizing)
    zero_constants = plan.detrend or plan.standardize is not None
    for columns in _column_batches(block.shape[1], plan.work_rows):
        residuals, original_mean, constant = _residuals(block[:, columns], plan)
        target = out[:n_output, columns]
        if plan.standardize == "zscore_sample":
            zscore_columns(residuals, out=target)
        elif psc:
            residual_mean = residuals.mean(axis=0)
            if n_output > 1:
                residuals -= residual_mean
            target[...] = residuals
            out[n_output, columns] = residual_mean
            out[n_output + 1, columns] = original_mean
        else:
            target[...] = residuals
        if zero_constants and constant.any():
            target[:, constant] = 0
    return out


def psc_adds_original_mean(residual_mean, original_mean) -> bool:
    """nilearn's test: was the mean removed by cleaning (then psc uses the original one)?"""
    with np.errstate(divide="ignore", invalid="ignore"):
        return bool(np.abs(residual_mean).mean() / np.abs(original_mean).mean() < 1e-1)


def finish_psc(parts: np.ndarray, add_original_mean, inplace: bool = False) -> np.ndarray:
    """Turn :func:`clean_block`'s psc output into percent signal change.

    Parameters
    ----------
    parts : numpy.ndarray, shape (n_output + 2, n)
    add_original_mean : bool
        The result of :func:`psc_adds_original_mean` over the whole run.
    inplace : bool, default=False
        Write the result over ``parts`` (and return a view of it).

    Returns
    -------
    numpy.ndarray, shape (n_output, n)
    """
    add_original_mean = bool(np.asarray(add_original_mean))
    centred, residual_mean, original_mean = parts[:-2], parts[-2], parts[-1]
    if centred.shape[0] == 1:
        warnings.warn(
            "Standardization of 3D signal has been requested but would lead to zero values. Skipping.",
            stacklevel=2,
        )
        return centred + original_mean if add_original_mean else centred.copy()
    mean = residual_mean.astype(np.float64) + (original_mean if add_original_mean else 0.0)
    scale = np.abs(mean)
    invalid = scale < EPS
    scale[invalid] = 1.0
    out = np.divide(centred, scale.astype(centred.dtype), out=centred if inplace else None)
    out *= 100
    if invalid.any():
        warnings.warn(
            "psc standardization strategy is meaningless for features that have a mean of 0. "
            "These time series are set to 0.",
            stacklevel=2,
        )
        out[:, invalid] = 0
    return out
