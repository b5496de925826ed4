"""Mask strategies of brainxr.masking against nilearn.masking."""

import nibabel as nib
import numpy as np
import pytest
from nilearn import masking as nilearn_masking

from brainxr import masking
from brainxr.datasets import load_synthetic_mni152_template
from brainxr.nifti import from_nibabel
from brainxr.testing import raise_if_dask_computes


@pytest.fixture(scope="module")
def epi_img():
    rng = np.random.default_rng(0)
    template = load_synthetic_mni152_template(resolution=4)
    anatomy = template.get_fdata().astype(np.float32)
    volumes = anatomy[..., None] * (1 + 0.05 * rng.normal(size=anatomy.shape + (6,))) + 5 * (anatomy[..., None] > 0)
    return nib.Nifti1Image(volumes.astype(np.float32), template.affine)


@pytest.mark.parametrize("kwargs", [{}, {"opening": 1, "connected": True}, {"border_size": 1}])
def test_background_mask_equals_nilearn(epi_img, kwargs):
    expected = nilearn_masking.compute_background_mask(epi_img, **kwargs).get_fdata().astype(bool)
    result = masking.compute_background_mask(epi_img, **kwargs)
    assert result.dtype == bool and result.dims == ("i", "j", "k")
    np.testing.assert_array_equal(result.values, expected)
    np.testing.assert_array_equal(result.brain.affine, epi_img.affine)


def test_background_mask_nan_background():
    values = np.full((8, 8, 8), np.nan, dtype=np.float32)
    values[2:6, 2:6, 2:6] = 3.0
    result = masking.compute_background_mask(nib.Nifti1Image(values, np.eye(4)))
    assert result.values.sum() == 64


@pytest.mark.parametrize(
    "kwargs", [{}, {"opening": False}, {"exclude_zeros": True}, {"lower_cutoff": 0.3, "upper_cutoff": 0.9, "connected": False}]
)
def test_epi_mask_equals_nilearn(epi_img, kwargs):
    expected = nilearn_masking.compute_epi_mask(epi_img, **kwargs).get_fdata().astype(bool)
    np.testing.assert_array_equal(masking.compute_epi_mask(epi_img, **kwargs).values, expected)


def test_epi_mask_streams_a_lazy_run(epi_img):
    run = from_nibabel(epi_img).chunk({"time": 2})
    expected = nilearn_masking.compute_epi_mask(epi_img).get_fdata().astype(bool)
    with raise_if_dask_computes(max_computes=1):
        result = masking.compute_epi_mask(run)
    np.testing.assert_array_equal(result.values, expected)


def test_epi_mask_bad_cutoffs(epi_img):
    with pytest.raises(ValueError, match="lower_cutoff"):
        masking.compute_epi_mask(epi_img, lower_cutoff=0.9, upper_cutoff=0.2)


def test_brain_mask_is_the_template_mask_on_the_grid(epi_img):
    # nilearn's own compute_brain_mask on a shifted grid: the MNI152 template of the
    # session's TemplateFlow cache is nilearn's (see test_datasets_mni152.py)
    from nilearn import masking as nilearn_masking

    shifted = epi_img.affine.copy()
    shifted[:3, 3] += 1.5
    target = nib.Nifti1Image(np.zeros(epi_img.shape[:3], np.float32), shifted)
    expected = np.asarray(nilearn_masking.compute_brain_mask(target).dataobj).astype(bool)
    result = masking.compute_brain_mask(target)
    np.testing.assert_array_equal(result.values, expected)
    assert expected.sum() > 1000


def test_intersect_masks_equals_nilearn(epi_img):
    masks = [
        masking.compute_background_mask(epi_img),
        masking.compute_epi_mask(epi_img),
        masking.compute_epi_mask(epi_img, opening=False, connected=False),
    ]
    nib_masks = [nib.Nifti1Image(m.values.astype(np.int8), epi_img.affine) for m in masks]
    for threshold in (0, 0.5, 1):
        expected = nilearn_masking.intersect_masks(nib_masks, threshold=threshold).get_fdata().astype(bool)
        np.testing.assert_array_equal(masking.intersect_masks(masks, threshold=threshold).values, expected)
    with pytest.raises(ValueError, match="threshold"):
        masking.intersect_masks(masks, threshold=2)
    other = nib.Nifti1Image(np.ones((3, 3, 3), np.int8), np.eye(4))
    with pytest.raises(ValueError, match=r"masks\[1\]"):
        masking.intersect_masks([masks[0], other])
