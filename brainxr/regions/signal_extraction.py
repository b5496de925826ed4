"""nilearn's region signal functions (``nilearn.regions.img_to_signals_labels`` and friends).

``img_to_signals_labels`` / ``signals_to_img_labels`` for labels images and
``img_to_signals_maps`` / ``signals_to_img_maps`` for probabilistic maps,
with nilearn 0.14.1's parameters, checks and results, on the kernels of
:mod:`brainxr.regions` (:func:`~brainxr.regions.labels.reduce_labels`,
:func:`~brainxr.regions.maps.project_maps`).

Images on disk are read a block of volumes at a time. For a DataArray image
the signals are a ``(time, region)`` DataArray, lazy when the image is; for
other inputs a numpy array in nilearn's dtype (float32 for float32 images,
else float64) and memory order.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import xarray as xr
from scipy import sparse

from brainxr._arrays import array_module
from brainxr.dims import TIME_DIM
from brainxr.geometry import Grid, check_same_grid, get_grid
from brainxr.inputs import check_niimg, load_mask
from brainxr.masking import apply_mask
from brainxr.regions._signals import values_per_region
from brainxr.regions.labels import check_strategy, reduce_labels
from brainxr.regions.maps import project_maps

__all__ = ["img_to_signals_labels", "img_to_signals_maps", "signals_to_img_labels", "signals_to_img_maps"]


def _image(img, name: str, ndim: int) -> xr.DataArray:
    volume = check_niimg(img, name=name)
    if ndim == 3 and volume.ndim == 4 and volume.shape[3] == 1:
        volume = volume.isel({volume.dims[3]: 0})
    if ndim == 4 and volume.ndim == 3:
        raise ValueError(f"{name}: expected a 4D image, got a 3D image of shape {tuple(volume.shape)}")
    if volume.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}D image, got shape {tuple(volume.shape)}")
    return volume


def _affine(volume: xr.DataArray) -> np.ndarray:
    return get_grid(volume).affine


def _values(img, name: str, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    volume = _image(img, name, ndim)
    values = np.asarray(volume.values)
    return values, _affine(volume)


def _check_mask(mask_img, shape, affine, name_of_reference: str):
    if mask_img is None:
        return None
    mask, mask_grid = load_mask(mask_img, name="mask_img", allow_empty=True)
    check_same_grid(mask_grid, Grid(shape, affine), "mask_img", name_of_reference)
    return mask


def _labels_data(labels: np.ndarray, mask, background_label, keep_masked_labels: bool):
    """nilearn's ``_get_labels_data``: the label values (sorted, background out) and the masked labels image."""
    present = [value for value in np.unique(labels) if value != background_label]
    labels_data = labels
    if mask is not None:
        labels_data = labels.copy()
        labels_data[~mask] = background_label
        if not keep_masked_labels:
            present = [value for value in np.unique(labels_data) if value != background_label]
    return present, labels_data


def _region_signals(values, volume: xr.DataArray, names, order: str, labeled: bool):
    """The signals as nilearn returns them, or labeled ``(time, region)`` for a DataArray image."""
    target = np.float32 if volume.dtype == np.float32 else np.float64
    if labeled:
        coords = {"region": ("region", [str(name) for name in names]), "label": ("region", list(names))}
        if TIME_DIM in volume.coords:
            coords[TIME_DIM] = volume[TIME_DIM].variable
        attrs = {key: value for key, value in volume.attrs.items() if key in ("t_r", "source")}
        return xr.DataArray(values.astype(target), dims=(TIME_DIM, "region"), coords=coords, attrs=attrs)
    return np.asarray(np.asarray(values), dtype=target, order=order)


def img_to_signals_labels(imgs, labels_img, mask_img=None, background_label=0, order="F", strategy="mean",
                          keep_masked_labels: bool = False, return_masked_atlas: bool = True, n_jobs=1):
    """Signals of the regions of a labels image (nilearn's ``img_to_signals_labels``).

    Parameters
    ----------
    imgs : 4D image (path, nibabel image or DataArray), on the labels' grid
    labels_img : 3D labels image
    mask_img : 3D mask, optional
        Voxels outside are background.
    background_label : number, default=0
    order : {"F", "C"}, default="F"
        Memory order of numpy signals.
    strategy : {"mean", "sum", "median", "minimum", "maximum", "variance", "standard_deviation"}
    keep_masked_labels : bool, default=False
        Keep (as zeros) the labels the mask removes.
    return_masked_atlas : bool, default=True
        Also return the masked labels image (int32).
    n_jobs : int
        Accepted for compatibility (the image is reduced as it is read).

    Returns
    -------
    signals : ``(time, n_labels)`` numpy array, or a labeled DataArray for a DataArray image
    labels : list of the label values, in the signals' order
    masked_atlas : nibabel image (with ``return_masked_atlas``)
    """
    del n_jobs
    check_strategy(strategy)
    labels, labels_affine = _values(labels_img, "labels_img", 3)
    volume = _image(imgs, "imgs", 4)
    check_same_grid(Grid(volume.shape[:3], _affine(volume)), Grid(labels.shape, labels_affine), "imgs", "labels_img")
    mask = _check_mask(mask_img, labels.shape, labels_affine, "labels_img")
    label_values, labels_data = _labels_data(labels, mask, background_label, keep_masked_labels)
    support = labels_data != background_label
    position = {value: index for index, value in enumerate(label_values)}
    if support.any():
        data = apply_mask(volume, support, voxel_chunks=None).transpose(TIME_DIM, "voxel").data
        assignment = np.asarray([position[value] for value in labels_data[support].tolist()], dtype=np.intp)
        values, _ = reduce_labels(data, assignment, len(label_values), strategy, ensure_finite=True)
        values = array_module(values).where(np.isnan(values), 0.0, values)
    else:
        values = np.zeros((volume.shape[3], len(label_values)))
    signals = _region_signals(values, volume, label_values, order, isinstance(imgs, xr.DataArray))
    label_list = [value.item() if hasattr(value, "item") else value for value in label_values]
    if not return_masked_atlas:
        import warnings

        warnings.warn('In version 0.15, "return_masked_atlas" parameter will be removed and the masked atlas will '
                      'always be returned. Set "return_masked_atlas" to True to avoid this warning.', FutureWarning,
                      stacklevel=2)
        return signals, label_list
    return signals, label_list, nib.Nifti1Image(labels_data.astype(np.int32), labels_affine)


def signals_to_img_labels(signals, labels_img, mask_img=None, background_label=0, order="F"):
    """Paint region signals on a labels image (nilearn's ``signals_to_img_labels``).

    Parameters
    ----------
    signals : ``(time, n_labels)`` or ``(n_labels,)`` array or DataArray, in the sorted label order
    labels_img : 3D labels image
    mask_img : 3D mask, optional
        Voxels outside are 0.
    background_label : number, default=0
    order : {"F", "C"}

    Returns
    -------
    nibabel.Nifti1Image
        4D (3D for 1D signals) on the labels' grid, in the signals' dtype.
    """
    labels, affine = _values(labels_img, "labels_img", 3)
    mask = _check_mask(mask_img, labels.shape, affine, "labels_img")
    label_values, labels = _labels_data(labels, mask, background_label, keep_masked_labels=False)
    signals = values_per_region(signals, len(label_values), "signals")
    signals_2d = np.atleast_2d(signals)
    index = np.full(labels.shape, len(label_values), dtype=np.intp)
    for position, value in enumerate(label_values):
        index[labels == value] = position
    padded = np.concatenate([signals_2d, np.zeros((signals_2d.shape[0], 1), dtype=signals_2d.dtype)], axis=1)
    data = np.asarray(np.moveaxis(padded[:, index], 0, -1), order=order)
    if signals.ndim == 1:
        data = data[..., 0]
    return nib.Nifti1Image(data, affine)


def _maps(maps_img, mask_img, shape, affine, keep_masked_maps: bool):
    maps, maps_affine = _values(maps_img, "maps_img", 4)
    check_same_grid(Grid(maps.shape[:3], maps_affine), Grid(shape, affine), "maps_img", "imgs")
    indices = list(range(maps.shape[3]))
    mask = _check_mask(mask_img, maps.shape[:3], maps_affine, "maps_img")
    if mask is not None:
        maps = maps * mask[..., None]
        if not keep_masked_maps:
            indices = [index for index in indices if np.any(maps[..., index] != 0)]
            maps = maps[..., indices]
    return maps, maps_affine, indices


def img_to_signals_maps(imgs, maps_img, mask_img=None, keep_masked_maps: bool = False):
    """Least-squares signals of probabilistic maps (nilearn's ``img_to_signals_maps``).

    Parameters
    ----------
    imgs : 4D image on the maps' grid
    maps_img : 4D maps image
    mask_img : 3D mask, optional
        Weights outside are 0; maps left empty are dropped (unless ``keep_masked_maps``).
    keep_masked_maps : bool, default=False

    Returns
    -------
    signals : ``(time, n_maps)`` numpy array (labeled DataArray for a DataArray image)
    labels : list of int, the indices of the maps kept
    """
    volume = _image(imgs, "imgs", 4)
    maps, _, indices = _maps(maps_img, mask_img, volume.shape[:3], _affine(volume), keep_masked_maps)
    support = np.any(maps != 0, axis=3)
    if support.any():
        data = apply_mask(volume, support, voxel_chunks=None).transpose(TIME_DIM, "voxel").data
        weights = sparse.csr_matrix(maps[support])
        values, _ = project_maps(data, weights, ensure_finite=True)
    else:
        values = np.zeros((volume.shape[3], len(indices)))
    signals = _region_signals(values, volume, indices, "C", isinstance(imgs, xr.DataArray))
    return signals, indices


def signals_to_img_maps(region_signals, maps_img, mask_img=None):
    """Voxel signals ``X M^T`` from map signals ``X`` (nilearn's ``signals_to_img_maps``).

    Parameters
    ----------
    region_signals : (time, region) array-like or xarray.DataArray
        One signal per map (1D: one value per map).
    maps_img : 4D image
        The maps ``M``.
    mask_img : 3D image, optional
        Voxels outside it are 0.

    Returns
    -------
    nibabel.Nifti1Image
        4D (3D for 1D signals) on the maps' grid.
    """
    maps, affine = _values(maps_img, "maps_img", 4)
    region_signals = values_per_region(region_signals, maps.shape[3], "region_signals", "maps")
    signals_2d = np.atleast_2d(region_signals)
    if mask_img is not None:
        mask = _check_mask(mask_img, maps.shape[:3], affine, "maps_img")
        maps = maps * mask[..., None]
    data = np.tensordot(maps, signals_2d, axes=([3], [1]))
    if region_signals.ndim == 1:
        data = data[..., 0]
    return nib.Nifti1Image(data, affine)
