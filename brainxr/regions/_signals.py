"""Inputs and outputs of the extraction functions.

Extraction reads ``(time, voxel)`` signals (the masked layout of
:func:`brainxr.apply_mask` and of cohort runs). A volume image (a NIfTI path,
a nibabel image, an ``(i, j, k, time)`` DataArray) is accepted too: it is
masked to the voxels the regions need only, lazily.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from brainxr.dims import REGION_DIM, SPATIAL_DIMS, TIME_DIM, VOXEL_DIM
from brainxr.geometry import Grid, get_grid, get_t_r
from brainxr.inputs import check_niimg, image_grid
from brainxr.masking import apply_mask


def is_masked(signals) -> bool:
    """Whether ``signals`` are ``(time, voxel)`` signals or a cohort run (else a volume image)."""
    if isinstance(signals, xr.Dataset):
        return True
    return isinstance(signals, xr.DataArray) and VOXEL_DIM in signals.dims


def _split_run(signals, name: str):
    """A cohort run Dataset -> its ``bold`` (with the run's attrs) and ``valid``; else (signals, None)."""
    if not isinstance(signals, xr.Dataset):
        return signals, None
    if "bold" not in signals:
        raise ValueError(f"{name}: a cohort run Dataset needs a 'bold' variable, got {list(signals.data_vars)}")
    bold = signals["bold"].assign_attrs({**signals.attrs, **signals["bold"].attrs})
    return bold, (signals["valid"] if "valid" in signals else None)


def grid_of_signals(signals, name: str = "signals") -> Grid:
    """The grid of masked signals or of a volume image."""
    signals, _ = _split_run(signals, name)
    if is_masked(signals):
        absent = [coord for coord in SPATIAL_DIMS if coord not in signals.coords]
        if absent:
            raise ValueError(f"{name}: the '{VOXEL_DIM}' dim lacks the grid index coords {absent}")
        return get_grid(signals, name)
    return image_grid(signals, name)


def masked_signals(signals, support: np.ndarray, name: str = "signals", voxel_chunks="auto", restrict: bool = True):
    """``(time, voxel)`` signals for the regions, and the voxels' validity when known.

    Parameters
    ----------
    signals : (time, voxel) DataArray, cohort run Dataset, or volume image
    support : ``(I, J, K)`` bool array on the signals' grid
        The voxels the regions use. A volume is masked to them, lazily: a
        NIfTI file is read in one streaming pass (one task), an image
        DataArray block by block; masked signals are restricted to them when
        ``restrict``.
    voxel_chunks
        Voxels per chunk when masking a volume (see :func:`brainxr.apply_mask`).

    Returns
    -------
    masked : xarray.DataArray
        ``(time, voxel)``.
    valid : xarray.DataArray or None
        ``(voxel,)`` bool validity of a cohort run's voxels.
    """
    signals, valid = _split_run(signals, name)
    if is_masked(signals):
        if TIME_DIM not in signals.dims:
            signals = signals.expand_dims(TIME_DIM)
        signals = signals.transpose(TIME_DIM, VOXEL_DIM)
        i, j, k = (signals[name_].values.astype(np.intp) for name_ in SPATIAL_DIMS)
        inside = support[i, j, k]
        if restrict and not inside.all():
            keep = np.flatnonzero(inside)
            signals = signals.isel({VOXEL_DIM: keep})
            valid = None if valid is None else valid.isel({VOXEL_DIM: keep})
        return signals, valid
    if not support.any():
        raise ValueError(f"{name}: no voxel of the regions lies on the image")
    if isinstance(signals, (str, Path)):
        # a file: one streaming pass, one task
        from brainxr.regions._streaming import lazy_masked_signals

        grid = grid_of_signals(signals, name)
        return lazy_masked_signals(signals, support, grid.affine), None
    volume = check_niimg(signals, name=name)
    masked = apply_mask(volume, support, voxel_chunks=voxel_chunks)
    if TIME_DIM not in masked.dims:
        masked = masked.expand_dims(TIME_DIM)
    return masked, None


def voxel_index(signals: xr.DataArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid indices ``(i, j, k)`` of the voxels of masked signals."""
    return tuple(signals[name].values.astype(np.intp) for name in SPATIAL_DIMS)


def values_per_region(values, n_regions: int, name: str, unit: str = "regions") -> np.ndarray:
    """The ``(..., region)`` numpy values of a DataArray (its ``region`` dim last) or an array, one per region.

    Parameters
    ----------
    values : xarray.DataArray or array-like
        One value (or series) per region, regions on the last axis of an
        array or along the ``region`` dim of a DataArray.
    n_regions : int
        The number of regions expected.
    name : str
        The parameter's name, for the error.
    unit : str, default="regions"
        What the regions are called in the error (``"maps"``, ``"spheres"``).

    Returns
    -------
    numpy.ndarray
        ``(..., n_regions)``.

    Raises
    ------
    ValueError
        The last axis does not hold ``n_regions`` values.
    """
    values = values.transpose(..., REGION_DIM).values if isinstance(values, xr.DataArray) else np.asarray(values)
    if values.shape[-1] != n_regions:
        raise ValueError(f"{name}: expected {n_regions} {unit} (last axis), got {values.shape[-1]}")
    return values


def region_signals(values, signals: xr.DataArray, regions, coverage, strategy: str, name=None) -> xr.DataArray:
    """Wrap ``(time, region)`` values with the region and time coordinates.

    ``regions`` is a DataFrame with ``region``, ``label``, ``x``, ``y``, ``z``
    columns (and optionally ``name``).
    """
    coords = {
        REGION_DIM: (REGION_DIM, regions["region"].to_numpy(dtype=object).astype(str)),
        "label": (REGION_DIM, regions["label"].to_numpy()),
        "x": (REGION_DIM, regions["x"].to_numpy(dtype=np.float64)),
        "y": (REGION_DIM, regions["y"].to_numpy(dtype=np.float64)),
        "z": (REGION_DIM, regions["z"].to_numpy(dtype=np.float64)),
        "coverage": (REGION_DIM, coverage),
    }
    if "name" in regions:
        coords["name"] = (REGION_DIM, regions["name"].to_numpy(dtype=object).astype(str))
    for coord_name, coord in signals.coords.items():
        if coord.dims == (TIME_DIM,):
            coords[coord_name] = coord.variable
    t_r = get_t_r(signals, required=False)
    if t_r is not None and TIME_DIM in coords:
        coords[TIME_DIM] = coords[TIME_DIM].copy()
        coords[TIME_DIM].attrs["t_r"] = t_r
    attrs = {key: value for key, value in signals.attrs.items() if key in ("source", "run")}
    attrs["strategy"] = strategy
    return xr.DataArray(values, dims=(TIME_DIM, REGION_DIM), coords=coords, attrs=attrs, name=name or signals.name)
