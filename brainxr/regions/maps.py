"""Signals of probabilistic maps: unregularized least squares, as one chunked reduction.

With ``M`` the ``(voxel, map)`` weights and ``Y`` the ``(time, voxel)``
signals, the region signals ``X`` minimise ``||Y - X M^T||`` over the voxels:
``X = Y M (M^T M)^+``. The Gram matrix ``M^T M`` is computed once per atlas
and voxel set; the data pass is one sparse product per voxel chunk
(``Y_chunk @ M_chunk``) with a tree sum. Voxels without valid signal are
removed from both terms (their share of the Gram matrix comes out of the
same pass). The pseudo-inverse solve gives the minimum-norm solution of
``scipy.linalg.lstsq`` (nilearn's ``img_to_signals_maps``) for full-rank and
rank-deficient maps alike.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from brainxr._arrays import array_module, is_dask_array
from brainxr.dims import SPATIAL_DIMS, TIME_DIM, VOXEL_DIM
from brainxr.geometry import Grid
from brainxr.regions._reductions import project_onto_regions
from brainxr.regions._signals import grid_of_signals, masked_signals, region_signals, values_per_region, voxel_index
from brainxr.regions.atlas import MapsAtlas, load_maps_atlas
from brainxr.regions.labels import _mask_on_grid


def _solve_least_squares(sums: np.ndarray, invalid_gram: np.ndarray, gram: np.ndarray, out_dtype) -> np.ndarray:
    """``(time, map)`` signals from ``Y M`` and the Gram matrix of the valid voxels."""
    import scipy.linalg  # on first use (~30 ms of a fresh process): the labels maskers import this module

    solution = scipy.linalg.lstsq(gram - invalid_gram, np.asarray(sums).T, lapack_driver="gelsd")[0]
    return solution.T.astype(out_dtype, copy=False)


def project_maps(data, weights, ensure_finite: bool = False, gram: np.ndarray | None = None, valid=None):
    """The kernel of :func:`extract_maps` on a ``(time, voxel)`` array.

    Parameters
    ----------
    data : numpy.ndarray or dask.array.Array
        ``(time, voxel)`` signals.
    weights : scipy.sparse matrix
        ``(voxel, map)`` weights of the same voxels.
    ensure_finite : bool
        Replace non-finite values by 0 (nilearn) instead of leaving the
        voxels out.
    gram : ``(map, map)`` array, optional
        ``weights.T @ weights``, if already computed.
    valid : ``(voxel,)`` bool array, optional
        Voxels known to be invalid are left out.

    Returns
    -------
    values : ``(time, map)`` float64 least-squares signals
    valid_weight : ``(map,)`` summed weight of each map over valid voxels
    """
    if gram is None:
        gram = np.asarray((weights.T @ weights).todense())
    sums, counts, invalid_gram = project_onto_regions(data, weights, ensure_finite=ensure_finite, with_gram=True, valid=valid)
    out_dtype = np.dtype(np.float64)
    if is_dask_array(sums):
        import dask.array as dsa

        values = dsa.blockwise(
            _solve_least_squares, "tk", sums, "tk", invalid_gram, "kj", gram=gram, out_dtype=out_dtype,
            concatenate=True, dtype=out_dtype, meta=np.empty((0, 0), dtype=out_dtype),
        )
    else:
        values = _solve_least_squares(sums, invalid_gram, gram, out_dtype)
    return values, counts


def extract_maps(
    signals,
    atlas,
    mask=None,
    min_coverage: float | None = None,
    ensure_finite: bool = False,
    names=None,
    interpolation: str = "linear",
) -> xr.DataArray:
    """Least-squares signals of each map of a probabilistic atlas.

    Parameters
    ----------
    signals : DataArray or volume image
        ``(time, voxel)`` signals (numpy or dask), or a 4D image masked
        lazily to the maps' support.
    atlas : MapsAtlas, path, nibabel image or DataArray
        4D maps; resampled to the signals' grid when on another grid (once
        per grid, ``interpolation`` linear by default as nilearn's maskers at
        fit time).
    mask : mask image, optional
        Only voxels in this mask count.
    min_coverage : float in [0, 1], optional
        Maps whose weight over voxels with valid signal is below this
        fraction of their weight on the grid get NaN signals.
    ensure_finite : bool, default=False
        False: voxels with a non-finite value are left out of the fit. True:
        non-finite values count as 0, as nilearn does.
    names : list of str, optional
        One name per map when ``atlas`` is an image.
    interpolation : {"linear", "continuous", "nearest"}

    Returns
    -------
    xarray.DataArray
        ``(time, region)`` with coords ``region``, ``label`` (map index),
        ``x, y, z`` (weighted centre) and ``coverage``; maps without any valid
        voxel get NaN signals.
    """
    if min_coverage is not None and not 0 <= min_coverage <= 1:
        raise ValueError(f"min_coverage must be within [0, 1], got {min_coverage}")
    atlas = load_maps_atlas(atlas, names=names)
    grid = grid_of_signals(signals)
    atlas = atlas.on_grid(grid.shape, grid.affine, interpolation=interpolation)
    mask_values = _mask_on_grid(mask, grid)
    support = atlas.support(mask_values)
    masked, valid = masked_signals(signals, support, restrict=False)
    i, j, k = voxel_index(masked)
    weights = atlas.matrix(i, j, k)
    if mask_values is not None:
        weights = weights.multiply(mask_values[i, j, k][:, None]).tocsr()
    data = masked.transpose(TIME_DIM, VOXEL_DIM).data
    values, valid_weight = project_maps(data, weights, ensure_finite=ensure_finite, valid=None if valid is None else valid.data)
    total_weight = np.abs(atlas.image.values[support]).sum(axis=0) if support.any() else np.zeros(atlas.n_regions)
    with np.errstate(invalid="ignore", divide="ignore"):
        coverage = valid_weight / np.where(total_weight > 0, total_weight, np.nan)
    xp = array_module(values)
    keep = coverage > 0 if min_coverage is None else coverage >= min_coverage
    values = xp.where(keep[None, :], values, np.nan)
    return region_signals(values, masked, atlas.regions, coverage, "least_squares")


def maps_to_volume(region_values, atlas, mask=None) -> xr.DataArray:
    """Voxel signals ``X M^T`` from map signals ``X`` (nilearn's ``signals_to_img_maps``).

    Parameters
    ----------
    region_values : ``(..., region)`` DataArray or array
    atlas : MapsAtlas or maps image
    mask : mask image, optional
        Voxels outside it are 0.

    Returns
    -------
    xarray.DataArray
        ``(i, j, k[, time])`` on the atlas's grid.
    """
    atlas = load_maps_atlas(atlas)
    values = values_per_region(region_values, atlas.n_regions, "region_values", "maps")
    maps = atlas.image.values
    if mask is not None:
        maps = maps * _mask_on_grid(mask, Grid(atlas.shape, atlas.affine))[..., None]
    volume = np.tensordot(maps, np.atleast_2d(values), axes=([3], [1]))
    if values.ndim == 1:
        volume = volume[..., 0]
    dims = SPATIAL_DIMS + ((TIME_DIM,) if values.ndim == 2 else ())
    return xr.DataArray(volume, dims=dims, coords=Grid(atlas.shape, atlas.affine).coords)


__all__ = ["MapsAtlas", "extract_maps", "maps_to_volume", "project_maps"]
