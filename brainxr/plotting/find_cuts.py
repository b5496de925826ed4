"""Where to cut a volume for display, and where regions of an atlas sit.

The same rules as nilearn 0.14 (``nilearn.plotting.find_cuts``), so the same
image gives the same cut coordinates.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage

from brainxr.masking import largest_connected_component
from brainxr.plotting._inputs import as_volume, axis_aligned, voxel_to_world

DEFAULT_CUT_COORDS = (0.0, 0.0, 0.0)


def fast_abs_percentile(data: np.ndarray, percentile: float = 80) -> float:
    """The ``percentile`` of ``abs(data)`` by partial sort (nilearn's approximation, the same value).

    The zeros are counted, not partitioned: a map or a thresholded image is mostly zeros, and
    ``np.partition`` among many equal values is ~10x slower than a full sort.
    """
    values = np.abs(np.asarray(data, dtype=float).ravel())
    if values.size == 0:
        return 0.0
    index = min(int(values.size * 0.01 * percentile), values.size - 1)
    nonzero = values[values != 0]
    below = values.size - nonzero.size  # the zeros come first in the sorted values
    if index < below:
        return 0.0
    return float(np.partition(nonzero, index - below)[index - below])


def _world(affine, voxel) -> list:
    return voxel_to_world(affine, voxel)[0].tolist()


def find_xyz_cut_coords(img, mask_img=None, activation_threshold=None) -> list:
    """Find the centre of the largest activation cluster of a 3D image.

    Parameters
    ----------
    img : 3D image (nibabel image, path or brainxr DataArray)
    mask_img : 3D image, optional
        Restrict the search to this mask (same grid as ``img``).
    activation_threshold : float, optional
        Absolute value above which voxels count as active; default the 80th
        percentile of the non-zero absolute values.

    Returns
    -------
    list of 3 float
        ``[x, y, z]`` in mm.
    """
    if activation_threshold is not None and activation_threshold < 0:
        raise ValueError(f"activation_threshold: must be non-negative, got {activation_threshold}")
    volume = as_volume(img, name="img")
    data = np.nan_to_num(np.asarray(volume.data, dtype=float))
    affine = volume.affine
    if np.all(data == 0):
        warnings.warn(f"Given img is empty. Returning default cut_coords={DEFAULT_CUT_COORDS} instead.", stacklevel=2)
        return _world(affine, DEFAULT_CUT_COORDS)
    offset = np.zeros(3)
    work = data.copy()
    if mask_img is not None:
        mask_volume = as_volume(mask_img, name="mask_img")
        if not np.allclose(mask_volume.affine, affine):
            raise ValueError(
                f"mask_img: its affine\n{mask_volume.affine}\nis different from img affine\n{affine}"
            )
        mask = mask_volume.data != 0
        if not mask.any():
            warnings.warn("Could not determine cut coords: Provided mask is empty. Returning center of mass instead.", stacklevel=2)
            return _world(affine, ndimage.center_of_mass(np.abs(work)))
        box = ndimage.find_objects(mask.astype(int))[0]
        work = work[box] * mask[box]
        offset += [s.start for s in box]
    if work.max() == work.min() == 0:
        warnings.warn("Could not determine cut coords: All values were masked. Returning center of mass of unmasked data instead.", stacklevel=2)
        return _world(affine, ndimage.center_of_mass(np.abs(data)))
    if activation_threshold is None:
        activation_threshold = fast_abs_percentile(work[work != 0], 80)
    eps = float(2 * np.finfo(np.float64).eps)
    active = np.abs(work) > (activation_threshold - eps)
    if not active.any():
        warnings.warn("Could not determine cut coords: All voxels were masked by the thresholding. Returning the center of mass instead.", stacklevel=2)
        return _world(affine, np.add(ndimage.center_of_mass(np.abs(work)), offset))
    active = largest_connected_component(active)
    box = ndimage.find_objects(active.astype(int))[0]
    work = work[box] * active[box]
    active = active[box]
    offset += [s.start for s in box]
    second_threshold = np.abs(np.mean(work[active]))
    second_mask = np.abs(work) > second_threshold
    if second_mask.sum() > 50:
        work = work * largest_connected_component(second_mask)
    centre = np.add(ndimage.center_of_mass(np.abs(work)), offset)
    return _world(affine, centre)


def find_parcellation_cut_coords(
    labels_img, background_label=0, return_label_names: bool = False, label_hemisphere: str = "left"
):
    """Centre of each region of a labels atlas (centre of mass of its largest piece).

    For a region present in both hemispheres, the piece in ``label_hemisphere``
    is used, as in nilearn.

    Parameters
    ----------
    labels_img : 3D image of integer labels
    background_label : int
        Label value of the background.
    return_label_names : bool
        Also return the label values, in the order of the coordinates.
    label_hemisphere : {'left', 'right'}

    Returns
    -------
    coords : numpy.ndarray of shape (n_labels, 3)
    labels : list, only when ``return_label_names``
    """
    if label_hemisphere not in ("left", "right"):
        raise ValueError(f"label_hemisphere: expected 'left' or 'right', got {label_hemisphere!r}")
    volume = axis_aligned(as_volume(labels_img, name="labels_img"), interpolation="nearest")
    labels_data = np.rint(volume.data).astype(np.int64)
    values = np.unique(labels_data)
    values = values[values != background_label]
    midline = int(np.linalg.solve(volume.affine, [0, 0, 0, 1])[0])
    remapped = np.searchsorted(values, labels_data)
    remapped = np.where(np.isin(labels_data, values), remapped + 1, 0)
    boxes = ndimage.find_objects(remapped)
    centres = []
    for index, box in enumerate(boxes):
        region = remapped[box] == index + 1
        first_x = box[0].start
        x_index = np.arange(first_x, box[0].stop)[:, None, None]
        left = region & (x_index < midline)
        right = region & (x_index >= midline)
        if left.any() or not right.any():
            piece = left if label_hemisphere == "left" else right
            if not piece.any():
                piece = region
        else:
            piece = region
        components, _ = ndimage.label(piece)
        counts = np.bincount(components.ravel())
        counts[0] = 0
        largest = components == counts.argmax()
        centres.append(np.add(ndimage.center_of_mass(largest), [s.start for s in box]))
    coords = voxel_to_world(volume.affine, centres) if centres else np.zeros((0, 3))
    if return_label_names:
        return coords, values.tolist()
    return coords


def find_probabilistic_atlas_cut_coords(maps_img) -> np.ndarray:
    """Centre of each map of a 4D probabilistic atlas (:func:`find_xyz_cut_coords` per map).

    Parameters
    ----------
    maps_img : 4D image
        The maps (path, nibabel image or DataArray).

    Returns
    -------
    numpy.ndarray of shape (n_maps, 3)
    """
    maps = as_volume(maps_img, name="maps_img", ndim=4)
    return np.array([find_xyz_cut_coords(single) for single in maps.volumes()])


def find_cut_slices(img, direction: str = "z", n_cuts: int = 7) -> np.ndarray:
    """World positions of ``n_cuts`` evenly spaced cuts through the data along ``direction``.

    The cuts span the extent of the voxels above the 80th percentile of the
    absolute non-zero values (the whole image when empty), away from its edges.

    Parameters
    ----------
    img : 3D image
        The image (path, nibabel image or DataArray).
    direction : {"x", "y", "z"}
        The axis of the cuts.
    n_cuts : int
        Number of cuts.
    """
    if direction not in ("x", "y", "z"):
        raise ValueError(f"direction: expected 'x', 'y' or 'z', got {direction!r}")
    if not isinstance(n_cuts, (int, np.integer)) or n_cuts < 1:
        raise ValueError(f"n_cuts: expected a positive integer, got {n_cuts!r}")
    volume = axis_aligned(as_volume(img, name="img"))
    axis = "xyz".index(direction)
    data = np.abs(np.nan_to_num(volume.data))
    nonzero = data[data > 0]
    if nonzero.size:
        active = data >= fast_abs_percentile(nonzero, 80)
        profile = np.flatnonzero(active.any(axis=tuple(a for a in range(3) if a != axis)))
        first, last = profile[0], profile[-1]
    else:
        first, last = 0, data.shape[axis] - 1
    positions = np.linspace(first, last, n_cuts + 2)[1:-1] if n_cuts > 1 else np.array([(first + last) / 2])
    return volume.affine[axis, axis] * positions + volume.affine[axis, 3]
