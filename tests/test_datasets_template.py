"""The synthetic MNI152-like template: grid, brain shape, tissue maps, T1 image."""

from __future__ import annotations

import numpy as np
import pytest

from brainxr.datasets import (
    load_synthetic_mni152_brain_mask,
    load_synthetic_mni152_template,
    load_synthetic_mni152_tissue_maps,
    mni152_grid,
)
from brainxr.datasets.template import resolution_label

MNI_2MM_AFFINE = np.array([[2, 0, 0, -90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]], float)


def _value_at(img, x, y, z):
    i, j, k, _ = np.rint(np.linalg.inv(img.affine) @ [x, y, z, 1]).astype(int)
    return np.asarray(img.dataobj)[i, j, k]


def test_2mm_grid_is_the_mni152_grid():
    img = load_synthetic_mni152_brain_mask(2)
    assert img.shape == (91, 109, 91)
    np.testing.assert_array_equal(img.affine, MNI_2MM_AFFINE)
    assert img.get_data_dtype() == np.uint8
    assert int(img.header["sform_code"]) == 4 and int(img.header["qform_code"]) == 4
    np.testing.assert_array_equal(img.header.get_qform(), MNI_2MM_AFFINE)
    assert set(np.unique(np.asarray(img.dataobj))) == {0, 1}


def test_2mm_mask_has_about_as_many_voxels_as_the_real_one():
    n_voxels = int(np.asarray(load_synthetic_mni152_brain_mask(2).dataobj).sum())
    assert 215_000 <= n_voxels <= 245_000  # real MNI152 2 mm brain mask: ~228k


@pytest.mark.parametrize("resolution, shape", [(3, (61, 73, 61)), (4, (46, 55, 46)), (6, (31, 37, 31)), (8, (23, 28, 23)), (2.5, (73, 87, 73))])
def test_other_resolutions_cover_the_same_box_and_brain(resolution, shape):
    img = load_synthetic_mni152_brain_mask(resolution)
    assert img.shape == shape == mni152_grid(resolution)[0]
    np.testing.assert_array_equal(img.affine[:3, 3], [-90, -126, -72])
    np.testing.assert_array_equal(np.diag(img.affine)[:3], [resolution] * 3)
    volume = np.asarray(img.dataobj).sum() * resolution**3
    reference = np.asarray(load_synthetic_mni152_brain_mask(2).dataobj).sum() * 8
    assert abs(volume / reference - 1) < 0.06


def test_brain_is_left_right_symmetric_with_a_midline_fissure():
    mask = np.asarray(load_synthetic_mni152_brain_mask(2).dataobj)
    np.testing.assert_array_equal(mask, mask[::-1])  # x = 0 is the middle voxel of the 2 mm grid
    img = load_synthetic_mni152_brain_mask(2)
    for y in (-60, -20, 30):
        assert _value_at(img, 0, y, 50) == 0  # interhemispheric fissure
        assert _value_at(img, -4, y, 50) == 1 and _value_at(img, 4, y, 50) == 1
    assert _value_at(img, 0, -14, 10) == 1  # the hemispheres join below it


def test_silhouette_has_temporal_lobes_cerebellum_and_brainstem():
    img = load_synthetic_mni152_brain_mask(2)
    for side in (-1, 1):
        assert _value_at(img, side * 44, -20, -25) == 1  # temporal lobe, below the frontal base
        assert _value_at(img, side * 24, -62, -34) == 1  # cerebellar hemisphere
        assert _value_at(img, side * 20, -28, -55) == 0  # beside the brainstem
        assert _value_at(img, side * 26, 40, -35) == 0  # below the orbital surface
    assert _value_at(img, 0, -28, -55) == 1  # brainstem
    mask = np.asarray(img.dataobj).astype(bool)
    # three projections: extents in mm close to the real brain's
    for axis, extent in ((0, (-72, 72)), (1, (-108, 74)), (2, (-72, 82))):
        others = tuple(a for a in range(3) if a != axis)
        occupied = np.flatnonzero(mask.any(axis=others))
        low, high = occupied[[0, -1]] * 2 + img.affine[axis, 3]
        assert extent[0] <= low <= extent[0] + 12 and extent[1] - 12 <= high <= extent[1]


def test_tissue_maps_are_probabilities_summing_to_one_in_the_brain():
    maps = load_synthetic_mni152_tissue_maps(4)
    mask = np.asarray(load_synthetic_mni152_brain_mask(4).dataobj).astype(bool)
    gm, wm, csf = (np.asarray(maps[name].dataobj) for name in ("gm", "wm", "csf"))
    for tissue in (gm, wm, csf):
        assert tissue.dtype == np.float32 and tissue.min() >= 0 and tissue.max() <= 1
        assert np.all(tissue[~mask] == 0)
    np.testing.assert_allclose((gm + wm + csf)[mask], 1.0, atol=1e-5)
    # tissue shares of the brain volume close to an adult brain's
    assert 0.28 < gm[mask].mean() < 0.45 and 0.4 < wm[mask].mean() < 0.6 and 0.08 < csf[mask].mean() < 0.2
    # cortex at the surface, white matter deep inside
    surface = mask & ~__import__("scipy").ndimage.binary_erosion(mask)
    assert gm[surface].mean() + csf[surface].mean() > 0.8 and wm[surface].mean() < 0.2


def test_t1_has_bright_white_matter_dark_csf_and_is_skull_stripped():
    t1 = np.asarray(load_synthetic_mni152_template(2).dataobj)
    maps = load_synthetic_mni152_tissue_maps(2)
    mask = np.asarray(load_synthetic_mni152_brain_mask(2).dataobj).astype(bool)
    assert t1.dtype == np.float32
    assert np.all(t1[~mask] == 0)
    pure = {name: np.asarray(maps[name].dataobj) > 0.95 for name in ("wm", "gm", "csf")}
    wm, gm, csf = (t1[pure[name]].mean() for name in ("wm", "gm", "csf"))
    assert wm > gm > csf > 0
    # the T1 image is the tissue mixture
    mixture = sum(np.asarray(maps[name].dataobj) * value for name, value in (("csf", 30), ("gm", 72), ("wm", 110)))
    np.testing.assert_allclose(t1, mixture, rtol=1e-5, atol=1e-4)
    # ventricles: CSF near the midline above the thalamus
    assert _value_at(load_synthetic_mni152_template(2), 8, -10, 18) < 40


def test_cached_and_read_only():
    first, second = load_synthetic_mni152_brain_mask(4), load_synthetic_mni152_brain_mask(4.0)
    assert first is not second  # a new image each call...
    np.testing.assert_array_equal(np.asarray(first.dataobj), np.asarray(second.dataobj))
    with pytest.raises(ValueError):
        np.asarray(load_synthetic_mni152_template(4).dataobj)[0, 0, 0] = 1  # ...sharing one read-only array


@pytest.mark.parametrize("bad", [0, -2, float("nan"), float("inf")])
def test_bad_resolution_is_rejected(bad):
    with pytest.raises(ValueError, match="resolution must be a positive number"):
        load_synthetic_mni152_brain_mask(bad)


@pytest.mark.parametrize("bad", ["2", None, True])
def test_resolution_must_be_a_number(bad):
    with pytest.raises(TypeError, match="resolution"):
        load_synthetic_mni152_template(bad)


def test_resolution_labels():
    assert resolution_label(2) == "2" and resolution_label(2.5) == "2p5" and resolution_label(4.0) == "4"
