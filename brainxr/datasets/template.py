"""An MNI152-like template built in memory: brain mask, T1 image, tissue maps.

The template samples the implicit brain of :mod:`brainxr.datasets._anatomy`
on an MNI152 grid of any resolution. Nothing is downloaded, the result is the
same on every machine, and each resolution is built once per process.

At 2 mm the grid is the MNI152 2 mm grid, shape ``(91, 109, 91)``, affine
``[[2, 0, 0, -90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]]``; other
resolutions cover the same bounding box from the same corner.
"""

from __future__ import annotations

import functools
import math
import numbers

import nibabel as nib
import numpy as np
from scipy import ndimage
from brainxr.datasets._bunch import Bunch

from brainxr.datasets import _anatomy

#: world position (mm) of the centre of voxel (0, 0, 0)
GRID_ORIGIN = (-90.0, -126.0, -72.0)
#: extent (mm) from the first to the last voxel centre of the 2 mm grid
GRID_EXTENT = (180.0, 216.0, 180.0)
#: NIfTI xform code of MNI152 space
MNI_XFORM_CODE = 4

# T1-weighted intensities of the tissue classes (white matter normalized to 110)
_T1_INTENSITY = {"csf": 30.0, "gm": 72.0, "wm": 110.0}
# tissue maps are blurred by this many voxels to look like partial-volume maps
_PARTIAL_VOLUME_SIGMA = 0.5
# the anatomy is sampled at least every this many mm when computing tissue fractions
_SUBSAMPLE_SPACING_MM = 2.0


def check_resolution(resolution) -> float:
    """Return ``resolution`` as a float in mm, or raise a ValueError naming it."""
    if isinstance(resolution, bool) or not isinstance(resolution, numbers.Real):
        raise TypeError(
            f"resolution must be a positive number of millimetres, got {resolution!r}"
        )
    value = float(resolution)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"resolution must be a positive number of millimetres, got {resolution!r}"
        )
    return value


def mni152_grid(resolution=2):
    """Shape and affine of the MNI152 grid at ``resolution`` mm.

    Parameters
    ----------
    resolution : float, default=2
        Voxel size in mm (isotropic).

    Returns
    -------
    shape : tuple of int
        Spatial shape of the grid.
    affine : ndarray of shape (4, 4)
        Voxel-to-world affine.
    """
    resolution = check_resolution(resolution)
    shape = tuple(int(math.floor(extent / resolution + 1e-6)) + 1 for extent in GRID_EXTENT)
    affine = np.diag([resolution, resolution, resolution, 1.0])
    affine[:3, 3] = GRID_ORIGIN
    return shape, affine


def grid_world_coordinates(shape, affine, offsets=(0.0, 0.0, 0.0)):
    """World coordinates (mm) of every voxel centre, in C order, shape ``(n, 3)``."""
    axes = [np.arange(n, dtype=np.float64) + offset for n, offset in zip(shape, offsets)]
    xyz = (
        axes[0][:, None, None, None] * affine[:3, 0]
        + axes[1][None, :, None, None] * affine[:3, 1]
        + axes[2][None, None, :, None] * affine[:3, 2]
        + affine[:3, 3]
    )
    return xyz.reshape(-1, 3)


def resolution_label(resolution) -> str:
    """BIDS ``res`` label of a resolution: ``2`` for 2 mm, ``2p5`` for 2.5 mm."""
    resolution = check_resolution(resolution)
    text = f"{resolution:g}"
    return text.replace(".", "p")


def make_nifti(data, affine, *, intent_name=None):
    """Wrap an array in a Nifti1Image on the MNI grid (sform and qform code 4, mm units)."""
    img = nib.Nifti1Image(data, affine)
    img.header.set_qform(affine, code=MNI_XFORM_CODE)
    img.header.set_sform(affine, code=MNI_XFORM_CODE)
    img.header.set_xyzt_units("mm", "sec")
    if intent_name is not None:
        img.header.set_intent("none", name=intent_name)
    return img


@functools.lru_cache(maxsize=8)
def _tissue_fractions(resolution):
    """Fractions of CSF, GM and WM in each voxel, and the brain mask (read-only arrays)."""
    shape, affine = mni152_grid(resolution)
    n_sub = max(1, math.ceil(resolution / _SUBSAMPLE_SPACING_MM - 1e-9))
    steps = (np.arange(n_sub) + 0.5) / n_sub - 0.5
    counts = np.zeros((4, int(np.prod(shape))), dtype=np.float32)
    for di in steps:
        for dj in steps:
            for dk in steps:
                labels = _anatomy.tissue_labels(grid_world_coordinates(shape, affine, (di, dj, dk)))
                counts[labels, np.arange(labels.size)] += 1.0
    counts /= n_sub**3
    counts = counts.reshape((4, *shape))
    mask = counts[0] <= 0.5
    tissues = {}
    for name, label in (("csf", _anatomy.CSF), ("gm", _anatomy.GRAY_MATTER), ("wm", _anatomy.WHITE_MATTER)):
        tissues[name] = ndimage.gaussian_filter(counts[label], _PARTIAL_VOLUME_SIGMA, mode="constant")
    total = sum(tissues.values())
    safe_total = np.where(total > 0, total, 1.0)
    for name in tissues:
        fraction = np.where(mask, tissues[name] / safe_total, 0.0).astype(np.float32)
        # a masked voxel whose blurred tissue vanished keeps its own class
        tissues[name] = fraction
    orphan = mask & (total <= 0)
    if orphan.any():
        tissues["wm"][orphan] = 1.0
    for array in (*tissues.values(), mask):
        array.setflags(write=False)
    return mask, tissues


def load_synthetic_mni152_brain_mask(resolution=2):
    """Brain mask of the synthetic MNI152 template.

    Parameters
    ----------
    resolution : float, default=2
        Voxel size in mm. At 2 mm the grid is the MNI152 2 mm grid
        ``(91, 109, 91)``; any positive value covers the same bounding box.

    Returns
    -------
    nibabel.Nifti1Image
        uint8 image, 1 inside the brain (about 233,000 voxels at 2 mm).
    """
    resolution = check_resolution(resolution)
    shape, affine = mni152_grid(resolution)
    mask, _ = _tissue_fractions(resolution)
    return make_nifti(mask.astype(np.uint8), affine)


def load_synthetic_mni152_tissue_maps(resolution=2):
    """Gray matter, white matter and CSF probability maps of the synthetic template.

    The three maps sum to 1 inside :func:`load_synthetic_mni152_brain_mask` and are 0
    outside it; they are the partial-volume fractions that
    :func:`load_synthetic_mni152_template` is made of.

    Parameters
    ----------
    resolution : float, default=2
        Voxel size in mm.

    Returns
    -------
    sklearn.utils.Bunch
        ``gm``, ``wm`` and ``csf``: float32 Nifti1Images.
    """
    resolution = check_resolution(resolution)
    _, affine = mni152_grid(resolution)
    _, tissues = _tissue_fractions(resolution)
    return Bunch(**{name: make_nifti(tissues[name], affine) for name in ("gm", "wm", "csf")})


@functools.lru_cache(maxsize=8)
def _t1_array(resolution):
    _, tissues = _tissue_fractions(resolution)
    t1 = sum(tissues[name] * _T1_INTENSITY[name] for name in ("csf", "gm", "wm"))
    t1 = t1.astype(np.float32)
    t1.setflags(write=False)
    return t1


def load_synthetic_mni152_template(resolution=2):
    """A skull-stripped T1-weighted image of the synthetic template.

    Bright white matter (110), darker cortical and deep gray matter (72),
    dark CSF in sulci and ventricles (30), 0 outside the brain; partial-volume
    voxels mix these by the fractions of :func:`load_synthetic_mni152_tissue_maps`.

    Parameters
    ----------
    resolution : float, default=2
        Voxel size in mm.

    Returns
    -------
    nibabel.Nifti1Image
        float32 image.
    """
    resolution = check_resolution(resolution)
    _, affine = mni152_grid(resolution)
    return make_nifti(_t1_array(resolution), affine)
