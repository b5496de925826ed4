"""Chunked reductions of ``(time, voxel)`` signals onto regions.

The kernels here turn signals into region signals in one pass over the voxel
chunks, with a tree reduction over chunks, and serve numpy arrays (one
chunk) and dask arrays alike:

- :func:`project_onto_regions`: ``signals @ W`` for a sparse ``(voxel,
  region)`` weight matrix ``W`` (0/1 for labels and spheres, map values for
  probabilistic maps), plus the per-region count of valid voxels and, for
  maps, the Gram matrix of the invalid voxels' weights. Each voxel chunk
  gives a partial sum; the partial sums are added in a tree.
- :func:`grouped_reduce`: the other label statistics (minimum, maximum,
  variance, standard deviation, median) through :func:`flox.groupby_reduce`,
  map-reduce over voxel chunks; the median, which needs all the voxels of a
  region at once, runs blockwise after sorting voxels by region and aligning
  chunk boundaries with region boundaries.

A voxel is *valid* when its signal is finite at every time point. Invalid
voxels are left out of every statistic (``ensure_finite=False``, brainxr's
default) or, as nilearn does, have their non-finite values replaced by 0 and
count as valid (``ensure_finite=True``).
"""

from __future__ import annotations

import dask
import dask.array as dsa
import numpy as np
from scipy import sparse

#: partial sums combined per tree level
SPLIT_EVERY = 8

#: the statistics of :func:`grouped_reduce` and their flox aggregations
FLOX_FUNCS = {
    "minimum": "nanmin",
    "maximum": "nanmax",
    "variance": "nanvar",
    "standard_deviation": "nanstd",
    "median": "nanmedian",
}


def _prepared_values(values: np.ndarray, ensure_finite: bool) -> tuple[np.ndarray, np.ndarray]:
    """Signals with invalid entries zeroed, and the per-voxel validity."""
    finite = np.isfinite(values)
    if ensure_finite:
        return (values if finite.all() else np.where(finite, values, 0)), np.ones(values.shape[1], dtype=bool)
    valid = finite.all(axis=0)
    return (values if valid.all() else np.where(valid, values, 0)), valid


def _project_block(block, weights, offsets, ensure_finite, with_gram, block_id=None):
    """Partial region sums of one voxel chunk, stacked as ``(rows, 1, region)``.

    Rows: ``time`` sums of weighted signals, then the weighted count of valid
    voxels, then (``with_gram``) the ``region`` rows of ``W_invalid.T @ W_invalid``.
    """
    chunk = 0 if block_id is None else block_id[1]
    chunk_weights = weights[offsets[chunk] : offsets[chunk + 1]]
    values, valid = _prepared_values(np.asarray(block), ensure_finite)
    sums = np.asarray((chunk_weights.T @ values.T.astype(np.float64, copy=False)).T)
    counts = np.asarray(chunk_weights.T @ valid.astype(np.float64)).reshape(1, -1)
    parts = [sums, counts]
    if with_gram:
        invalid_weights = chunk_weights[~valid]
        parts.append(np.asarray((invalid_weights.T @ invalid_weights).todense()))
    return np.concatenate(parts, axis=0)[:, None, :]


def project_onto_regions(signals, weights: sparse.csr_matrix, ensure_finite: bool = False, with_gram: bool = False):
    """Weighted sums of the signals of each region, in one pass over voxel chunks.

    Parameters
    ----------
    signals : numpy.ndarray or dask.array.Array
        ``(time, voxel)``; dask arrays must hold all of time in each chunk.
    weights : scipy.sparse.csr_matrix
        ``(voxel, region)`` weights.
    ensure_finite : bool
        nilearn's handling of non-finite values (see the module docstring).
    with_gram : bool
        Also return ``W_invalid.T @ W_invalid`` over the invalid voxels.

    Returns
    -------
    sums : ``(time, region)`` float64 array, ``signals @ W`` over valid voxels
    counts : ``(region,)`` float64 array, ``valid @ W``
    invalid_gram : ``(region, region)`` float64 array or None
    """
    n_time = signals.shape[0]
    n_regions = weights.shape[1]
    n_rows = n_time + 1 + (n_regions if with_gram else 0)
    if isinstance(signals, dsa.Array):
        if signals.numblocks[0] != 1:
            signals = signals.rechunk({0: -1})
        offsets = np.concatenate([[0], np.cumsum(signals.chunks[1])])
        weights_key = dask.delayed(weights, pure=True)
        partials = signals.map_blocks(
            _project_block,
            weights_key,
            offsets,
            ensure_finite,
            with_gram,
            chunks=((n_rows,), (1,) * signals.numblocks[1], (n_regions,)),
            new_axis=2,
            dtype=np.float64,
            meta=np.empty((0, 0, 0), dtype=np.float64),
            token="region-partial-sums",
        )
        totals = partials.sum(axis=1, split_every=SPLIT_EVERY)
    else:
        totals = _project_block(np.asarray(signals), weights, np.array([0, signals.shape[1]]), ensure_finite, with_gram)[:, 0]
    sums, counts = totals[:n_time], totals[n_time]
    invalid_gram = totals[n_time + 1 :] if with_gram else None
    return sums, counts, invalid_gram


def voxel_validity(signals, ensure_finite: bool = False):
    """``(voxel,)`` bool: the voxels whose signal is finite at every time point."""
    if ensure_finite:
        return (dsa if isinstance(signals, dsa.Array) else np).ones(signals.shape[1], dtype=bool)
    return (dsa if isinstance(signals, dsa.Array) else np).isfinite(signals).all(axis=0)


def grouped_reduce(signals, assignment: np.ndarray, n_regions: int, strategy: str, ensure_finite: bool = False):
    """Minimum, maximum, variance, standard deviation or median of each region.

    Parameters
    ----------
    signals : numpy.ndarray or dask.array.Array
        ``(time, voxel)``.
    assignment : ``(voxel,)`` int array
        Region index of each voxel, -1 for none.
    n_regions : int
    strategy : {"minimum", "maximum", "variance", "standard_deviation", "median"}
        Variance and standard deviation are population statistics (ddof=0),
        as :mod:`scipy.ndimage`'s.
    ensure_finite : bool
        nilearn's handling of non-finite values (see the module docstring).

    Returns
    -------
    ``(time, region)`` array (NaN for regions without a valid voxel), float64
    for variance and standard deviation, the signals' float dtype otherwise.
    """
    from flox.core import groupby_reduce

    func = FLOX_FUNCS[strategy]
    is_dask = isinstance(signals, dsa.Array)
    xp = dsa if is_dask else np
    if signals.dtype.kind != "f":
        signals = signals.astype(np.float64)
    if ensure_finite:
        signals = xp.where(xp.isfinite(signals), signals, 0)
    else:
        valid = xp.isfinite(signals).all(axis=0)
        signals = xp.where(valid, signals, np.nan)
    dtype = np.float64 if strategy in ("variance", "standard_deviation") else None
    finalize = {"ddof": 0} if strategy in ("variance", "standard_deviation") else None
    in_region = assignment >= 0
    if not in_region.all():
        signals = signals[:, np.flatnonzero(in_region)]
        assignment = assignment[in_region]
    method = None
    if is_dask:
        if signals.numblocks[0] != 1:
            signals = signals.rechunk({0: -1})
        if strategy == "median":
            signals, assignment = _align_chunks_with_regions(signals, assignment)
            method = "blockwise"
        else:
            method = "map-reduce"
    result, _ = groupby_reduce(
        signals,
        assignment,
        func=func,
        expected_groups=np.arange(n_regions),
        axis=-1,
        fill_value=np.nan,
        dtype=dtype,
        method=method,
        finalize_kwargs=finalize,
    )
    return result


def _align_chunks_with_regions(signals: dsa.Array, assignment: np.ndarray):
    """Sort voxels by region and cut chunks on region boundaries (for blockwise medians)."""
    order = np.argsort(assignment, kind="stable")
    assignment = assignment[order]
    if np.any(order[1:] < order[:-1]):
        signals = signals[:, order]
    target = max(signals.chunks[1])
    region_ends = np.concatenate([np.flatnonzero(np.diff(assignment)) + 1, [assignment.size]])
    edges, previous_end = [0], 0
    for end in region_ends:
        # cut before a region that would overflow the current chunk (regions are never split)
        if end - edges[-1] > target and previous_end > edges[-1]:
            edges.append(previous_end)
        previous_end = end
    edges.append(assignment.size)
    chunks = tuple(int(b - a) for a, b in zip(edges[:-1], edges[1:]) if b > a)
    return signals.rechunk({1: chunks}), assignment
