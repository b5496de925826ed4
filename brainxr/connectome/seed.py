"""Seed-to-voxel correlation maps.

The correlation of one or more seed signals with every voxel of a
``(time, voxel)`` masked image, computed by one kernel wrapped with ``xr.apply_ufunc``:
on numpy data at once, on dask data one matrix product per voxel chunk (voxel
chunks kept; chunks along time joined), optionally
Fisher-z transformed, returned as a ``(seed, voxel)`` DataArray or a volume.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

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


def _seed_correlation_block(voxels, seeds, *, method: str, ddof: int, fisher_z: bool):
    """``(voxel, time)`` block and prepared ``(time, seed)`` seeds -> ``(voxel, seed)``.

    The one kernel of :func:`seed_to_voxel_correlation`, numpy in and out;
    ``xr.apply_ufunc`` puts the core dim ``time`` last.
    """
    # (time, voxel) in C order whatever the block's layout, and seeds.T @
    # voxels: each value then comes from the same sums for any chunking
    voxels = np.ascontiguousarray(np.asarray(voxels, dtype=np.float64).T)
    if method == "pearson":
        correlation = seeds.T @ _unit_centered_columns(voxels)
    else:
        correlation = (seeds.T @ voxels) / (voxels.shape[0] - ddof)
    return (_fisher_z(correlation) if fisher_z else correlation).T


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

    # one kernel for numpy data and for each voxel chunk of dask data
    correlation = xr.apply_ufunc(
        _seed_correlation_block,
        voxels,
        xr.DataArray(seed_values, dims=("time", "seed_")),
        input_core_dims=[["time"], ["time", "seed_"]],
        output_core_dims=[["seed_"]],
        kwargs={"method": method, "ddof": ddof, "fisher_z": fisher_z},
        dask="parallelized",
        output_dtypes=[np.float64],
        # time chunks are joined (each voxel's whole series is one product), voxel chunks kept
        dask_gufunc_kwargs={"allow_rechunk": True},
        keep_attrs=True,
    )
    attrs = {key: value for key, value in voxels.attrs.items() if key not in _SOURCE_ATTRS}
    attrs["stat"] = "fisher z" if fisher_z else "pearson correlation"
    coords = {
        name: coord.variable
        for name, coord in correlation.coords.items()
        if coord.dims == ("voxel",) or name == "grid"
    }
    if seed_dim is None:
        result = correlation.isel(seed_=0, drop=True)
    else:
        result = correlation.rename(seed_=seed_dim).transpose(seed_dim, "voxel")
        coords.update(seed_coords)
    result = xr.DataArray(
        result.data, dims=result.dims, coords=coords, attrs=attrs,
        name="fisher_z" if fisher_z else "correlation",
    )
    if as_volume:
        from brainxr.masking import unmask

        return unmask(result)
    return result
