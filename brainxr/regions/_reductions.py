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

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from brainxr._arrays import array_module, is_dask_array

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


#: voxels converted to float64 at a time by the numpy loop: the batch's float64 copy (time x 2048 x 8 bytes)
#: stays in the CPU's cache for the sparse product that reads it
BATCH_VOXELS = 2048

@dataclass(frozen=True, eq=False)
class ProjectionWeights:
    """A chunk's ``(voxel, region)`` weights prepared for :func:`project_columns`.

    The voxels with a weight, their rows of the weights, and those rows cut
    in transposed batches of :data:`BATCH_VOXELS` for the numpy loop:
    prepared once for a chunk, applied to every run's block of it (the
    cohort engine), not once per block.

    Attributes
    ----------
    n_regions : int
    needed : numpy.ndarray
        Indices of the chunk's voxels with a weight.
    rows : scipy.sparse.csr_matrix
        ``(needed voxel, region)`` float64 weights.
    batches : tuple
        ``(start, columns, transposed)`` per batch: its first position in
        ``needed``, its voxel indices and its ``(region, voxel)`` CSR weights.
    """

    n_regions: int
    needed: np.ndarray
    rows: sparse.csr_matrix
    batches: tuple

    @classmethod
    def of(cls, chunk_weights: sparse.csr_matrix) -> ProjectionWeights:
        chunk_weights = sparse.csr_matrix(chunk_weights, dtype=np.float64)
        chunk_weights.sort_indices()
        needed = np.flatnonzero(np.diff(chunk_weights.indptr) > 0)
        rows = chunk_weights[needed]
        batches = tuple((start, needed[start : start + BATCH_VOXELS], rows[start : start + BATCH_VOXELS].T.tocsr())
                        for start in range(0, needed.size, BATCH_VOXELS))
        return cls(chunk_weights.shape[1], needed, rows, batches)


def project_columns(block, chunk_weights, valid=None, *, ensure_finite=False, with_gram=False, with_counts=True,
                    known_finite=False, compiled=False):
    """Partial region sums of one ``(time, voxel)`` block: the kernel of every region extraction.

    Parameters
    ----------
    block : ``(time, voxel)`` array
    chunk_weights : scipy.sparse.csr_matrix or ProjectionWeights
        ``(voxel, region)`` weights of the block's voxels (prepared once when
        many blocks share them).
    valid : ``(voxel,)`` bool array, optional
        Voxels known to be invalid (a cohort run's ``valid``).
    ensure_finite, with_gram, with_counts
        See :func:`project_onto_regions`.
    known_finite : bool
        The block is finite everywhere (a cohort store's bold: ingest zeroes
        non-finite voxels and leaves them out of ``valid``), so it is not
        scanned for non-finite values.
    compiled : bool
        Sum with the compiled loop (numba, GIL released; half the time of
        the numpy loop on a 4 mm run, and threads run it in parallel) rather
        than numpy batches. For callers that project many blocks in one
        process (the cohort engine): numba's import (a third of a second)
        does not pay off on one image.

    Returns
    -------
    ``(rows, region)`` float64 array
        ``time`` rows of weighted sums, then (``with_counts``) the weighted
        count of valid voxels and (``with_gram``) the ``region`` rows of
        ``W_invalid.T @ W_invalid``. Only the voxels with a weight are
        read, in float64.
    """
    block = np.asarray(block)
    if block.dtype.kind != "f":
        block = block.astype(np.float64)
    prepared = chunk_weights if isinstance(chunk_weights, ProjectionWeights) else ProjectionWeights.of(chunk_weights)
    usable = (np.ones(prepared.needed.size, dtype=bool) if valid is None
              else np.array(np.asarray(valid, dtype=bool).ravel()[prepared.needed]))
    # scan: look for non-finite values; they make a voxel unusable, or count as 0 with ensure_finite
    scan = not known_finite
    sums, counts = (_compiled_sums if compiled else _batched_sums)(block, prepared, usable, scan, ensure_finite)
    parts = [sums]
    if with_counts:
        parts.append(counts[None, :])
    if with_gram:
        invalid_weights = prepared.rows[~usable]  # (invalid voxel, region)
        parts.append((invalid_weights.T @ invalid_weights).toarray())
    return np.concatenate(parts, axis=0)


def _batched_sums(block, prepared: ProjectionWeights, usable: np.ndarray, scan: bool, zero_non_finite: bool):
    """``(time, region)`` sums and ``(region,)`` counts by numpy batches; ``usable`` is updated in place."""
    sums = np.zeros((block.shape[0], prepared.n_regions))
    counts = np.zeros(prepared.n_regions)
    for start, columns, transposed in prepared.batches:
        values = block[:, columns]  # a copy (fancy indexing), so zeroed in place below
        batch_usable = usable[start : start + columns.size]  # a view: updated in place
        if scan:
            finite = np.isfinite(values)
            if zero_non_finite:
                values[~finite] = 0
            else:
                batch_usable &= finite.all(axis=0)
        if not batch_usable.all():
            values[:, ~batch_usable] = 0
        sums += (transposed @ values.T.astype(np.float64, order="C")).T
        counts += transposed @ batch_usable.astype(np.float64)
    return sums, counts


def _compiled_sums(block, prepared: ProjectionWeights, usable: np.ndarray, scan: bool, zero_non_finite: bool):
    """``(time, region)`` sums and ``(region,)`` counts by the compiled loop; ``usable`` is updated in place."""
    from brainxr.regions._projection_kernel import weighted_sums

    rows = prepared.rows
    sums = np.zeros((prepared.n_regions, block.shape[0]))
    counts = np.zeros(prepared.n_regions)
    weighted_sums(block, prepared.needed, usable, rows.indptr, rows.indices, rows.data, scan, zero_non_finite, sums,
                  counts)
    return sums.T, counts


def _project_block(block, *valid_block, weights, offsets, ensure_finite, with_gram, with_counts, block_id=None):
    """:func:`project_columns` of one voxel chunk of a dask array, stacked as ``(rows, 1, region)``."""
    chunk = 0 if block_id is None else block_id[1]
    chunk_weights = weights[offsets[chunk] : offsets[chunk + 1]]
    valid = valid_block[0] if valid_block else None
    partial = project_columns(block, chunk_weights, valid, ensure_finite=ensure_finite, with_gram=with_gram,
                              with_counts=with_counts)
    return partial[:, None, :]


def project_onto_regions(signals, weights: sparse.csr_matrix, ensure_finite: bool = False, with_gram: bool = False, valid=None):
    """Weighted sums of the signals of each region, in one pass over voxel chunks.

    Parameters
    ----------
    signals : numpy.ndarray or dask.array.Array
        ``(time, voxel)``. Dask arrays hold all of time in each chunk, except
        with ``ensure_finite`` (then blocks of volumes are reduced as they
        come: validity does not need whole time series).
    weights : scipy.sparse.csr_matrix
        ``(voxel, region)`` weights.
    ensure_finite : bool
        nilearn's handling of non-finite values (see the module docstring).
    with_gram : bool
        Also return ``W_invalid.T @ W_invalid`` over the invalid voxels.
    valid : ``(voxel,)`` bool array, optional
        Voxels known to be invalid (a cohort run's ``valid``), chunked like
        the signals' voxels.

    Returns
    -------
    sums : ``(time, region)`` float64 array, ``signals @ W`` over valid voxels
    counts : ``(region,)`` float64 array, ``valid @ W``
    invalid_gram : ``(region, region)`` float64 array or None
    """
    weights = sparse.csr_matrix(weights)
    n_time = signals.shape[0]
    n_regions = weights.shape[1]
    time_blocks = is_dask_array(signals) and ensure_finite and valid is None and signals.numblocks[0] > 1
    if time_blocks:
        # every voxel counts: the counts and the Gram of invalid voxels need no data
        counts = np.asarray(weights.sum(axis=0)).ravel()
        gram = np.zeros((n_regions, n_regions)) if with_gram else None
        offsets = np.concatenate([[0], np.cumsum(signals.chunks[1])])
        partials = signals.map_blocks(
            _project_block,
            weights=_delayed(weights),
            offsets=offsets,
            ensure_finite=True,
            with_gram=False,
            with_counts=False,
            chunks=(signals.chunks[0], (1,) * signals.numblocks[1], (n_regions,)),
            new_axis=2,
            dtype=np.float64,
            meta=np.empty((0, 0, 0), dtype=np.float64),
            token="region-partial-sums",
        )
        return partials.sum(axis=1, split_every=SPLIT_EVERY), counts, gram

    n_rows = n_time + 1 + (n_regions if with_gram else 0)
    options = {"ensure_finite": ensure_finite, "with_gram": with_gram, "with_counts": True}
    if is_dask_array(signals):
        if signals.numblocks[0] != 1:
            signals = signals.rechunk({0: -1})
        offsets = np.concatenate([[0], np.cumsum(signals.chunks[1])])
        import dask.array as dsa

        extra = ()
        if valid is not None:
            extra = (dsa.asarray(valid).rechunk((signals.chunks[1],))[None, :],)
        partials = dsa.map_blocks(
            _project_block,
            signals,
            *extra,
            weights=_delayed(weights),
            offsets=offsets,
            **options,
            chunks=((n_rows,), (1,) * signals.numblocks[1], (n_regions,)),
            new_axis=2,
            dtype=np.float64,
            meta=np.empty((0, 0, 0), dtype=np.float64),
            token="region-partial-sums",
        )
        totals = partials.sum(axis=1, split_every=SPLIT_EVERY)
    else:
        extra = () if valid is None else (np.asarray(valid)[None, :],)
        totals = _project_block(np.asarray(signals), *extra, weights=weights, offsets=np.array([0, signals.shape[1]]), **options)[:, 0]
    sums, counts = totals[:n_time], totals[n_time]
    invalid_gram = totals[n_time + 1 :] if with_gram else None
    return sums, counts, invalid_gram


def voxel_validity(signals, ensure_finite: bool = False):
    """``(voxel,)`` bool: the voxels whose signal is finite at every time point."""
    if ensure_finite:
        return array_module(signals).ones(signals.shape[1], dtype=bool)
    return array_module(signals).isfinite(signals).all(axis=0)


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
    is_dask = is_dask_array(signals)
    xp = array_module(signals)
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
        if signals.numblocks[0] != 1 and not ensure_finite:
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


def _delayed(weights):
    """The weight matrix as one task that every block of the graph shares."""
    import dask

    return dask.delayed(weights, pure=True)


def _align_chunks_with_regions(signals, assignment: np.ndarray):
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
