"""``compute_multi_*_mask``: one mask per run, intersected, equal to nilearn's."""

import nibabel as nib
import numpy as np
import pytest
from nilearn import masking as nilearn_masking

from brainxr import masking
from brainxr.nifti import from_nibabel

AFFINE = np.diag([3.0, 3.0, 3.0, 1.0])


def _epi(seed, shift):
    rng = np.random.default_rng(seed)
    data = rng.random((16, 18, 14, 6)).astype(np.float32) * 10
    data[3 + shift:13 + shift, 3:15, 2:12] += 100
    return nib.Nifti1Image(data, AFFINE)


@pytest.mark.parametrize("threshold", [0.0, 0.5, 1.0])
def test_multi_masks_equal_nilearn(threshold):
    runs = [_epi(0, 0), _epi(1, 1), _epi(2, 2)]
    for ours, theirs, kwargs in (
        (masking.compute_multi_epi_mask, nilearn_masking.compute_multi_epi_mask, {"opening": 1}),
        (masking.compute_multi_background_mask, nilearn_masking.compute_multi_background_mask, {}),
    ):
        mask = ours(runs, threshold=threshold, **kwargs)
        expected = np.asarray(theirs(runs, threshold=threshold, **kwargs).dataobj).astype(bool)
        np.testing.assert_array_equal(np.asarray(mask.values), expected)
        np.testing.assert_allclose(mask.brain.affine, AFFINE)
    lazy_runs = [from_nibabel(run).chunk({"time": 2}) for run in runs]
    np.testing.assert_array_equal(masking.compute_multi_epi_mask(lazy_runs, threshold=threshold, opening=1).values,
                                  masking.compute_multi_epi_mask(runs, threshold=threshold, opening=1).values)


def test_multi_epi_mask_on_a_target_grid():
    runs = [_epi(0, 0), _epi(1, 1)]
    target = np.diag([6.0, 6.0, 6.0, 1.0])
    mask = masking.compute_multi_epi_mask(runs, target_affine=target, target_shape=(8, 9, 7), opening=0)
    assert mask.shape == (8, 9, 7)
    np.testing.assert_allclose(mask.brain.affine, target)
    expected = nilearn_masking.compute_multi_epi_mask(runs, target_affine=target, target_shape=(8, 9, 7), opening=0)
    agreement = (np.asarray(mask.values) == np.asarray(expected.dataobj).astype(bool)).mean()
    assert agreement > 0.97  # the mean of resampled volumes vs the resampled mean: edges may differ


def test_multi_brain_mask_is_the_template_mask_on_the_shared_grid():
    runs = [_epi(0, 0), _epi(1, 1)]
    np.testing.assert_array_equal(masking.compute_multi_brain_mask(runs).values, masking.compute_brain_mask(runs[0]).values)
    other = nib.Nifti1Image(np.ones((5, 5, 5, 2), np.float32), AFFINE)
    with pytest.raises(ValueError, match=r"target_imgs\[1\] and target_imgs\[0\] are not on the same grid"):
        masking.compute_multi_brain_mask([runs[0], other])
    with pytest.raises(TypeError, match="non-empty list"):
        masking.compute_multi_epi_mask([])
