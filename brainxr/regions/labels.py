"""Signals of the regions of a labels atlas, as one chunked reduction.

The mean (or sum) of each region is ``signals @ W / n`` with ``W`` the sparse
``(voxel, region)`` membership matrix: one sparse product per voxel chunk,
partial sums added in a tree. The other statistics (minimum, maximum,
variance, standard deviation, median) go through flox.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from brainxr._arrays import array_module
from brainxr.dims import SPATIAL_DIMS, TIME_DIM, VOXEL_DIM
from brainxr.geometry import Grid
from brainxr.inputs import load_mask
from brainxr.regions._reductions import grouped_reduce, project_onto_regions, voxel_validity
from brainxr.regions._signals import (
    grid_of_signals,
    masked_signals,
    region_signals,
    values_per_region,
    voxel_index,
)
from brainxr.regions.atlas import LabelsAtlas, assignment_matrix, load_labels_atlas

STRATEGIES = ("mean", "sum", "median", "minimum", "maximum", "variance", "standard_deviation")


def check_strategy(strategy: str) -> str:
    """Raise a ValueError naming ``strategy`` if it is not a known statistic."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    return strategy


def _mask_on_grid(mask, grid) -> np.ndarray | None:
    if mask is None:
        return None
    from brainxr.image import resample_img, same_grid

    values, mask_grid = load_mask(mask, name="mask")
    if not same_grid(values.shape, mask_grid.affine, grid.shape, grid.affine):
        from brainxr.masking import mask_to_dataarray

        values = resample_img(mask_to_dataarray(values, mask_grid.affine), grid.affine, grid.shape, interpolation="nearest", name="mask").values
    return values.astype(bool)


def _divide(sums, counts):
    """``sums / counts``, NaN where the count is 0 (without a warning, also inside dask tasks)."""
    xp = array_module(counts)
    return sums / xp.where(counts > 0, counts, np.nan)


def extract_labels(
    signals,
    atlas,
    strategy: str = "mean",
    mask=None,
    min_coverage: float | None = None,
    ensure_finite: bool = False,
    labels=None,
    lut=None,
    background_label=0,
) -> xr.DataArray:
    """Statistic of the signals of each region of a labels atlas.

    Parameters
    ----------
    signals : DataArray or volume image
        ``(time, voxel)`` signals (numpy or dask; as made by
        :func:`brainxr.apply_mask` or read from a cohort store), or a 4D
        image (path, nibabel image, ``(i, j, k, time)`` DataArray), masked
        lazily to the atlas's voxels.
    atlas : LabelsAtlas, path, nibabel image or DataArray
        The labels image; resampled to the signals' grid with nearest
        neighbour when on another grid (once per grid, with a warning naming
        the labels that vanish).
    strategy : {"mean", "sum", "median", "minimum", "maximum", "variance", "standard_deviation"}
        Statistic over the voxels of a region (variance and standard
        deviation with ddof=0, as :mod:`scipy.ndimage`).
    mask : mask image, optional
        Only voxels in this mask count (resampled to the grid with nearest
        neighbour if needed).
    min_coverage : float in [0, 1], optional
        Regions whose fraction of voxels with valid signal is below this get
        NaN signals.
    ensure_finite : bool, default=False
        False: voxels with a non-finite value at any time are left out (and
        lower the coverage). True: non-finite values are replaced by 0 and
        the voxels count, as nilearn does.
    labels, lut, background_label
        Region names, look-up table and background value when ``atlas`` is
        an image (see :func:`brainxr.regions.load_labels_atlas`).

    Returns
    -------
    xarray.DataArray
        ``(time, region)``, lazy for dask-backed signals, with coords
        ``region`` (unique names), ``label`` (label value), ``name``,
        ``x, y, z`` (centre of mass, mm) and ``coverage`` (fraction of the
        region's voxels on the grid that have valid signal; regions without
        any have NaN signals). float64: sums are accumulated in float64 and
        region signals are small, so cleaning and connectivity downstream
        keep the precision.

    Examples
    --------
    >>> bold = brainxr.apply_mask("sub-01_bold.nii.gz", "sub-01_mask.nii.gz")
    >>> extract_labels(bold, "atlas_dseg.nii.gz", lut="atlas_dseg.tsv").sel(region="LH_Vis_1")
    """
    check_strategy(strategy)
    if min_coverage is not None and not 0 <= min_coverage <= 1:
        raise ValueError(f"min_coverage must be within [0, 1], got {min_coverage}")
    atlas = load_labels_atlas(atlas, labels=labels, lut=lut, background_label=background_label)
    grid = grid_of_signals(signals)
    atlas = atlas.on_grid(grid.shape, grid.affine)
    mask_values = _mask_on_grid(mask, grid)
    masked, valid = masked_signals(signals, atlas.support(mask_values), restrict=False)
    i, j, k = voxel_index(masked)
    assignment = atlas.assignment(i, j, k)
    if mask_values is not None:
        assignment = np.where(mask_values[i, j, k], assignment, -1)
    data = masked.transpose(TIME_DIM, VOXEL_DIM).data
    values, counts = reduce_labels(data, assignment, atlas.n_regions, strategy, ensure_finite, valid=None if valid is None else valid.data)
    sizes = atlas.sizes() if mask_values is None else np.bincount(
        atlas.region_index_volume()[mask_values & (atlas.region_index_volume() >= 0)], minlength=atlas.n_regions
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        coverage = counts / np.where(sizes > 0, sizes, np.nan)
    if min_coverage is not None:
        values = array_module(values).where(coverage[None, :] >= min_coverage, values, np.nan)
    return region_signals(values, masked, atlas.regions, coverage, strategy)


def reduce_labels(data, assignment: np.ndarray, n_regions: int, strategy: str, ensure_finite: bool = False, valid=None):
    """The kernel of :func:`extract_labels` on a ``(time, voxel)`` array.

    Parameters
    ----------
    data : numpy.ndarray or dask.array.Array
        ``(time, voxel)`` signals.
    assignment : ``(voxel,)`` int
        Region index of each voxel, -1 for none.
    n_regions : int
    strategy : str
    ensure_finite : bool
    valid : ``(voxel,)`` bool array, optional
        Voxels known to be invalid are left out.

    Returns
    -------
    values : ``(time, region)`` array, NaN for regions without valid voxels
    counts : ``(region,)`` number of valid voxels of each region
    """
    check_strategy(strategy)
    weights = assignment_matrix(assignment, n_regions)
    xp = array_module(data)
    # region signals are small: keep the float64 accumulation (minima, maxima and medians are data values)
    out_dtype = np.dtype(np.float64)
    if strategy in ("mean", "sum"):
        sums, counts, _ = project_onto_regions(data, weights, ensure_finite=ensure_finite, valid=valid)
        values = _divide(sums, counts) if strategy == "mean" else xp.where(counts > 0, sums, np.nan)
        return values.astype(out_dtype), counts
    if valid is not None:
        data = xp.where(xp.asarray(valid)[None, :], data, np.nan)
    validity = voxel_validity(data, ensure_finite)
    _, counts, _ = project_onto_regions(xp.where(validity, 1.0, np.nan)[None, :], weights)
    values = grouped_reduce(data, assignment, n_regions, strategy, ensure_finite=ensure_finite)
    values = values.astype(out_dtype)
    return values, counts


def labels_to_volume(region_values: xr.DataArray | np.ndarray, atlas, mask=None, fill_value=0) -> xr.DataArray:
    """Paint region values back on the atlas: each voxel gets its region's value.

    Parameters
    ----------
    region_values : ``(..., region)`` DataArray or array
        One value (or series) per region of ``atlas``, in the atlas's order.
    atlas : LabelsAtlas or labels image
    mask : mask image, optional
        Voxels outside it get ``fill_value``.
    fill_value : scalar
        Value of the voxels outside every region (and outside ``mask``).

    Returns
    -------
    xarray.DataArray
        ``(i, j, k[, time])`` on the atlas's grid.
    """
    atlas = load_labels_atlas(atlas)
    values = values_per_region(region_values, atlas.n_regions, "region_values")
    index = atlas.region_index_volume()
    if mask is not None:
        index = np.where(_mask_on_grid(mask, Grid(atlas.shape, atlas.affine)), index, -1)
    values_2d = np.atleast_2d(values)
    padded = np.concatenate([values_2d, np.full((values_2d.shape[0], 1), fill_value, dtype=values_2d.dtype)], axis=1)
    volume = np.moveaxis(padded[:, index], 0, -1)
    if values.ndim == 1:
        volume = volume[..., 0]
    dims = SPATIAL_DIMS + ((TIME_DIM,) if values.ndim == 2 else ())
    coords = Grid(atlas.shape, atlas.affine).coords
    if isinstance(region_values, xr.DataArray) and TIME_DIM in region_values.coords and values.ndim == 2:
        coords[TIME_DIM] = region_values[TIME_DIM].variable
    return xr.DataArray(volume, dims=dims, coords=coords)


__all__ = ["STRATEGIES", "check_strategy", "extract_labels", "labels_to_volume", "reduce_labels", "LabelsAtlas"]
