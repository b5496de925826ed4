"""Voxel-wise global connectivity without the voxel x voxel matrix.

For each voxel, a summary of its correlations with all other voxels: the mean
(of r or |r|) or the degree (how many exceed a threshold). As in FCMA, the
signals are z-scored once (centered, unit norm, so that a dot product is a
correlation) and the correlation matrix is visited tile by tile: one task per
pair of voxel chunks reduces its block of correlations to per-voxel partial
sums, and a tree reduction adds them over chunks. Memory is bounded by two
voxel chunks and one ``tile x tile`` block.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from brainxr.connectome.matrices import _is_dask

__all__ = ["global_connectivity"]

_MEASURES = ("mean", "degree")


def _unit_columns(values: np.ndarray, dtype) -> np.ndarray:
    """Centered, unit-norm columns; 0 for constant or non-finite columns."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values).all(axis=0)
    values = np.where(finite, values, 0.0)
    centered = values - values.mean(axis=0)
    norms = np.sqrt(np.einsum("ij,ij->j", centered, centered))
    valid = finite & (norms > 0)
    unit = np.divide(centered, norms, out=np.zeros_like(centered), where=valid)
    return unit.astype(dtype, copy=False)


def _pair_partial(rows, columns, *, measure, absolute, threshold, tile):
    """Per-row partial statistic of ``rows.T @ columns``, tile by tile.

    Returns ``(n_rows, 1)``: the sum of correlations (or of their absolute
    values) for ``measure="mean"``, the number above ``threshold`` for
    ``"degree"``.
    """
    n_rows, n_columns = rows.shape[1], columns.shape[1]
    totals = np.zeros(n_rows)
    for row_start in range(0, n_rows, tile):
        row_tile = rows[:, row_start : row_start + tile]
        for column_start in range(0, n_columns, tile):
            block = row_tile.T @ columns[:, column_start : column_start + tile]
            if absolute:
                np.abs(block, out=block)
            if measure == "mean":
                totals[row_start : row_start + tile] += block.sum(axis=1)
            else:
                totals[row_start : row_start + tile] += (block > threshold).sum(axis=1)
    return totals[:, None]


def _self_statistic(unit, *, measure, absolute, threshold):
    """Each voxel's own term in the sums (its correlation with itself)."""
    self_correlation = np.einsum("ij,ij->j", unit, unit).astype(np.float64)
    if measure == "mean":
        return self_correlation
    return (self_correlation > threshold).astype(np.float64)


def _finish(totals, self_terms, valid, n_valid, measure):
    """Leave each voxel's own term out, average if asked, NaN for invalid voxels.

    Written with numpy functions only, so it is lazy on dask arrays.
    """
    others = totals - self_terms
    if measure == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            others = others / (n_valid - 1)
    return np.where(valid, others, np.nan)


def global_connectivity(
    voxels: xr.DataArray,
    *,
    measure: str = "mean",
    absolute: bool = True,
    threshold: float | None = None,
    tile: int = 2048,
    dtype=np.float64,
    split_every: int | None = None,
) -> xr.DataArray:
    """Global connectivity of each voxel with all the others, computed in blocks.

    Parameters
    ----------
    voxels : xarray.DataArray
        ``(time, voxel)`` masked signals, numpy- or dask-backed (lazy, one
        task per pair of voxel chunks; the voxel chunks are kept).
    measure : {"mean", "degree"}, default="mean"
        ``"mean"``: mean correlation with every other voxel. ``"degree"``:
        number of other voxels whose correlation exceeds ``threshold``.
    absolute : bool, default=True
        Use ``|r|`` (mean absolute correlation, or degree counting strong
        negative correlations too).
    threshold : float in [0, 1), optional
        Required for ``measure="degree"``.
    tile : int, default=2048
        Side of the correlation tiles formed in memory inside a task.
    dtype : numpy.float64 or numpy.float32
        Precision of the matrix products (float32 is about twice as fast,
        with correlations accurate to about 1e-6).
    split_every : int, optional
        Fan-in of the tree reduction over voxel chunks.

    Returns
    -------
    xarray.DataArray
        ``(voxel,)`` with the voxel coordinates and ``affine`` and
        ``grid_shape`` attrs of ``voxels``. Voxels with a constant or
        non-finite signal are NaN and are left out of the others' statistics.
    """
    if measure not in _MEASURES:
        raise ValueError(f"measure={measure!r}; expected one of {list(_MEASURES)}.")
    if measure == "degree":
        if threshold is None or not 0 <= threshold < 1:
            raise ValueError(
                f"measure='degree' needs a threshold in [0, 1); got threshold={threshold!r}."
            )
    elif threshold is not None:
        raise ValueError("threshold is only used with measure='degree'.")
    if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype={dtype!r}; expected float32 or float64.")
    if int(tile) < 1:
        raise ValueError(f"tile={tile!r} must be a positive number of voxels.")
    if not isinstance(voxels, xr.DataArray) or set(voxels.dims) != {"time", "voxel"}:
        raise ValueError(
            "voxels must be a (time, voxel) DataArray (a masked image); got "
            + (f"dims {voxels.dims}." if isinstance(voxels, xr.DataArray) else type(voxels).__name__ + ".")
        )
    voxels = voxels.transpose("time", "voxel")
    if voxels.sizes["time"] < 2:
        raise ValueError(
            f"voxels have {voxels.sizes['time']} time point(s); correlations need at least 2."
        )
    options = dict(measure=measure, absolute=absolute, threshold=threshold)
    data = voxels.data
    if _is_dask(data):
        import dask.array as da

        unit = data.rechunk({0: -1}).map_blocks(
            _unit_columns, np.dtype(dtype), dtype=np.dtype(dtype)
        )
        partial = da.blockwise(
            _pair_partial,
            "vw",
            unit,
            "tv",
            unit,
            "tw",
            adjust_chunks={"w": 1},
            concatenate=True,
            dtype=np.float64,
            meta=np.empty((0, 0)),
            tile=int(tile),
            **options,
        )
        totals = partial.sum(axis=1, split_every=split_every)
        self_terms = unit.map_blocks(
            _self_statistic, drop_axis=0, dtype=np.float64, meta=np.empty((0,)), **options
        )
        valid = unit.map_blocks(
            lambda block: np.any(block != 0, axis=0), drop_axis=0, dtype=bool, meta=np.empty((0,), bool)
        )
        values = _finish(totals, self_terms, valid, valid.sum(), measure)
    else:
        unit = _unit_columns(data, np.dtype(dtype))
        totals = _pair_partial(unit, unit, tile=int(tile), **options)[:, 0]
        valid = np.any(unit != 0, axis=0)
        values = _finish(
            totals, _self_statistic(unit, **options), valid, valid.sum(), measure
        )
    coords = {name: coord.variable for name, coord in voxels.coords.items() if coord.dims == ("voxel",) or name == "grid"}
    attrs = {key: voxels.attrs[key] for key in ("affine", "grid_shape") if key in voxels.attrs}
    attrs["stat"] = (
        f"mean {'|r|' if absolute else 'r'} with all other voxels"
        if measure == "mean"
        else f"number of other voxels with {'|r|' if absolute else 'r'} > {threshold}"
    )
    return xr.DataArray(values, dims=("voxel",), coords=coords, attrs=attrs, name=f"global_{measure}")
