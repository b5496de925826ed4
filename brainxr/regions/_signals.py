"""Inputs and outputs of the extraction functions.

Extraction reads ``(time, voxel)`` signals (the masked layout of
:func:`brainxr.apply_mask` and of cohort runs). A volume image (a NIfTI path,
a nibabel image, an ``(i, j, k, time)`` DataArray) is accepted too: it is
masked to the voxels the regions need only, lazily.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from brainxr.masking import VOXEL_DIM, apply_mask, as_volume
from brainxr.nifti import SPATIAL_DIMS, TIME_DIM

REGION_DIM = "region"


@dataclass(frozen=True)
class Grid:
    """The voxel grid of some signals: spatial shape and affine."""

    shape: tuple
    affine: np.ndarray


def is_masked(signals) -> bool:
    """Whether ``signals`` are ``(time, voxel)`` / ``(voxel,)`` signals (else a volume image)."""
    return isinstance(signals, xr.DataArray) and VOXEL_DIM in signals.dims


def grid_of_signals(signals, name: str = "signals") -> Grid:
    """The grid of masked signals (from their attrs) or of a volume image."""
    if is_masked(signals):
        missing = [key for key in ("affine", "grid_shape") if key not in signals.attrs]
        if missing:
            raise ValueError(
                f"{name}: (time, voxel) signals need the attrs 'affine' and 'grid_shape' "
                f"(as made by brainxr.apply_mask); missing {missing}"
            )
        absent = [coord for coord in SPATIAL_DIMS if coord not in signals.coords]
        if absent:
            raise ValueError(f"{name}: the '{VOXEL_DIM}' dim lacks the grid index coords {absent}")
        return Grid(tuple(int(n) for n in signals.attrs["grid_shape"]), np.asarray(signals.attrs["affine"], dtype=np.float64))
    volume = as_volume(signals, name=name)
    return Grid(tuple(int(n) for n in volume.shape[:3]), np.asarray(volume.attrs["affine"], dtype=np.float64))


def masked_signals(signals, support: np.ndarray, name: str = "signals", voxel_chunks="auto") -> xr.DataArray:
    """``(time, voxel)`` signals: masked signals restricted to ``support``, or a volume masked by it.

    Parameters
    ----------
    signals : (time, voxel) DataArray or volume image
    support : ``(I, J, K)`` bool array on the signals' grid
        The voxels the regions use.
    """
    if is_masked(signals):
        if TIME_DIM not in signals.dims:
            signals = signals.expand_dims(TIME_DIM)
        signals = signals.transpose(TIME_DIM, VOXEL_DIM)
        i, j, k = (signals[name_].values.astype(np.intp) for name_ in SPATIAL_DIMS)
        inside = support[i, j, k]
        return signals if inside.all() else signals.isel({VOXEL_DIM: np.flatnonzero(inside)})
    volume = as_volume(signals, name=name)
    if not support.any():
        raise ValueError(f"{name}: no voxel of the regions lies on the image")
    masked = apply_mask(volume, support, voxel_chunks=voxel_chunks)
    if TIME_DIM not in masked.dims:
        masked = masked.expand_dims(TIME_DIM)
    return masked


def voxel_index(signals: xr.DataArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid indices ``(i, j, k)`` of the voxels of masked signals."""
    return tuple(signals[name].values.astype(np.intp) for name in SPATIAL_DIMS)


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
            coords[coord_name] = coord
    attrs = {key: value for key, value in signals.attrs.items() if key in ("t_r", "source", "run")}
    attrs["strategy"] = strategy
    return xr.DataArray(values, dims=(TIME_DIM, REGION_DIM), coords=coords, attrs=attrs, name=name or signals.name)
