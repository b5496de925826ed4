"""Seed-to-voxel correlation maps.

The correlation of one or more seed signals with every voxel of a
``(time, voxel)`` masked image, computed block by block over the voxel chunks
(one matrix product per chunk, no rechunk of the voxel data), optionally
Fisher-z transformed, returned as a ``(seed, voxel)`` DataArray or a volume.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from brainxr.connectome.matrices import _is_dask
from brainxr.connectome.matrices import fisher_z as _fisher_z

__all__ = ["seed_to_voxel_correlation"]

# attrs of a masked image that describe its source file or time axis, not a map
_SOURCE_ATTRS = ("nifti", "source", "t_r", "toffset")


def _unit_centered_columns(values: np.ndarray) -> np.ndarray:
    """Center columns and scale them to unit Euclidean norm (NaN where constant)."""
    centered = values - values.mean(axis=0)
    norms = np.sqrt(np.einsum("ij,ij->j", centered, centered))
    with np.errstate(invalid="ignore", divide="ignore"):
        return centered / np.where(norms > 0, norms, np.nan)


def _seed_correlation_block(voxels, seeds, *, method: str, ddof: int):
    """``(time, voxel)`` block and prepared ``(time, seed)`` seeds -> ``(seed, voxel)``."""
    voxels = np.asarray(voxels, dtype=np.float64)
    if method == "pearson":
        return seeds.T @ _unit_centered_columns(voxels)
    return (seeds.T @ voxels) / (voxels.shape[0] - ddof)


def _as_seed_matrix(seeds):
    """``(values (time, seed), seed_dim or None, seed coords)`` from the seeds input."""
    if isinstance(seeds, xr.DataArray):
        if "time" not in seeds.dims or seeds.ndim > 2:
            raise ValueError(
                "seeds must be a (time,) or (time, seed) DataArray; got dims "
                f"{seeds.dims}."
            )
        if seeds.ndim == 1:
            return np.asarray(seeds.values, dtype=np.float64)[:, None], None, {}
        (seed_dim,) = [dim for dim in seeds.dims if dim != "time"]
        seeds = seeds.transpose("time", seed_dim)
        coords = {
            name: coord.variable
            for name, coord in seeds.coords.items()
            if coord.dims == (seed_dim,)
        }
        return np.asarray(seeds.values, dtype=np.float64), seed_dim, coords
    values = np.asarray(seeds, dtype=np.float64)
    if values.ndim == 1:
        return values[:, None], None, {}
    if values.ndim != 2:
        raise ValueError(
            f"seeds must be (time,) or (time, seed); got an array of shape {values.shape}."
        )
    return values, "seed", {}


def seed_to_voxel_correlation(
    seeds,
    voxels: xr.DataArray,
    *,
    method: str = "pearson",
    ddof: int = 1,
    fisher_z: bool = False,
    as_volume: bool = False,
) -> xr.DataArray:
    """Correlation of seed signals with every voxel.

    Parameters
    ----------
    seeds : xarray.DataArray or array-like
        ``(time,)`` for one seed, or ``(time, seed)`` (for example region
        signals ``(time, region)``; the second dim names the result's first).
    voxels : xarray.DataArray
        ``(time, voxel)`` masked signals (:func:`brainxr.masking.apply_mask`
        or a masker), numpy- or dask-backed. Dask data stays lazy, one task
        per voxel chunk, with the chunks unchanged.
    method : {"pearson", "dot"}, default="pearson"
        ``"pearson"``: the exact Pearson correlation of the raw signals (each
        centered and normalized here). ``"dot"``: ``seeds.T @ voxels /
        (n_samples - ddof)``, the computation of nilearn's seed-to-voxel
        example, for signals already standardized by the maskers; with
        nilearn's ``standardize="zscore_sample"`` (ddof=1) and ``ddof=1``
        this is again the Pearson correlation, and ``ddof=0`` reproduces the
        example's division by the number of samples.
    ddof : int, default=1
        Only for ``method="dot"``.
    fisher_z : bool, default=False
        Return ``arctanh(r)`` (``|r| = 1`` clipped to a finite value).
    as_volume : bool, default=False
        Return the map on the image grid, ``(i, j, k[, seed])``, with 0
        outside the mask (:func:`brainxr.masking.unmask`), ready for
        :func:`brainxr.nifti.to_nifti`.

    Returns
    -------
    xarray.DataArray
        ``(voxel,)`` for one ``(time,)`` seed, else ``(seed, voxel)``, with
        the voxel coordinates and the ``affine`` and ``grid_shape`` attrs of
        ``voxels``; float64. Voxels with constant signal get NaN (Pearson).
    """
    if method not in ("pearson", "dot"):
        raise ValueError(f"method={method!r}; expected 'pearson' or 'dot'.")
    if not isinstance(voxels, xr.DataArray) or set(voxels.dims) != {"time", "voxel"}:
        raise ValueError(
            "voxels must be a (time, voxel) DataArray (a masked image); got "
            + (f"dims {voxels.dims}." if isinstance(voxels, xr.DataArray) else type(voxels).__name__ + ".")
        )
    seed_values, seed_dim, seed_coords = _as_seed_matrix(seeds)
    voxels = voxels.transpose("time", "voxel")
    n_samples = voxels.sizes["time"]
    if seed_values.shape[0] != n_samples:
        raise ValueError(
            f"seeds have {seed_values.shape[0]} time points but voxels have "
            f"{n_samples}; they must come from the same run."
        )
    if (
        isinstance(seeds, xr.DataArray)
        and "time" in seeds.coords
        and "time" in voxels.coords
        and not np.allclose(seeds["time"].values, voxels["time"].values)
    ):
        raise ValueError(
            "seeds and voxels have different time coordinates; they must be "
            "the same time points of the same run."
        )
    if not np.all(np.isfinite(seed_values)):
        raise ValueError("seeds have NaN or infinite values.")
    if method == "pearson":
        constant = np.ptp(seed_values, axis=0) == 0
        if constant.any():
            raise ValueError(
                f"seed(s) {np.flatnonzero(constant).tolist()} have a constant "
                "signal; their correlation with any voxel is undefined."
            )
        seed_values = _unit_centered_columns(seed_values)
    elif n_samples - ddof <= 0:
        raise ValueError(f"ddof={ddof} must be smaller than the number of samples ({n_samples}).")

    data = voxels.data
    if _is_dask(data):
        import dask.array as da

        correlation = da.blockwise(
            _seed_correlation_block,
            "sv",
            data,
            "tv",
            da.from_array(seed_values, chunks=-1),
            "ts",
            concatenate=True,
            dtype=np.float64,
            meta=np.empty((0, 0)),
            method=method,
            ddof=ddof,
        )
    else:
        correlation = _seed_correlation_block(data, seed_values, method=method, ddof=ddof)
    if fisher_z:
        correlation = _fisher_z(correlation)

    coords = {
        name: coord.variable
        for name, coord in voxels.coords.items()
        if coord.dims == ("voxel",) or name == "grid"
    }
    attrs = {key: value for key, value in voxels.attrs.items() if key not in _SOURCE_ATTRS}
    attrs["stat"] = "fisher z" if fisher_z else "pearson correlation"
    name = "fisher_z" if fisher_z else "correlation"
    if seed_dim is None:
        result = xr.DataArray(correlation[0], dims=("voxel",), coords=coords, attrs=attrs, name=name)
    else:
        coords.update(seed_coords)
        result = xr.DataArray(
            correlation, dims=(seed_dim, "voxel"), coords=coords, attrs=attrs, name=name
        )
    if as_volume:
        from brainxr.masking import unmask

        return unmask(result)
    return result
