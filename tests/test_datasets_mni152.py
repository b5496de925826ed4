"""The real MNI152 through TemplateFlow: templates, masks and plot backgrounds equal to nilearn's.

The session's ``$TEMPLATEFLOW_HOME`` (``templateflow_home`` in conftest) holds
nilearn's own MNI152 files as TemplateFlow's ``MNI152NLin2009aSym``, in
TemplateFlow's layout, so brainxr reads through TemplateFlow what nilearn
reads from its package and the results must be equal.
"""

import warnings

import nibabel as nib
import numpy as np
import pytest
from nilearn import datasets as nilearn_datasets
from nilearn import masking as nilearn_masking
from nilearn.maskers import NiftiMasker as NilearnNiftiMasker

from brainxr import datasets, masking
from brainxr.datasets import mni152
from brainxr.maskers import NiftiMasker


def _values(img):
    return np.asarray(img.dataobj)


@pytest.mark.parametrize("resolution", [None, pytest.param(2, marks=pytest.mark.slow), 3])  # 2 mm: the slow one
def test_templates_and_masks_equal_nilearn(resolution):
    for name in ("load_mni152_template", "load_mni152_gm_template", "load_mni152_wm_template",
                 "load_mni152_brain_mask", "load_mni152_gm_mask", "load_mni152_wm_mask"):
        ours, theirs = getattr(datasets, name)(resolution), getattr(nilearn_datasets, name)(resolution)
        assert ours.shape == theirs.shape, name
        np.testing.assert_array_equal(ours.affine, theirs.affine)
        np.testing.assert_allclose(_values(ours), _values(theirs), atol=1e-6, err_msg=name)
    template = datasets.load_mni152_template(resolution)
    assert template.get_data_dtype() == np.float32
    assert 0.9 < np.asanyarray(template.dataobj).max() <= 1 + 1e-6  # maximum 1 at 1 mm, then resampled


@pytest.mark.parametrize("mask_type", ["whole-brain", "gm", "wm"])
def test_compute_brain_mask_equals_nilearn(mask_type):
    target = nib.Nifti1Image(np.zeros((45, 54, 45, 2), np.float32), np.diag([4.0, 4.0, 4.0, 1.0]) @
                             np.array([[1, 0, 0, -22.5], [0, 1, 0, -31.5], [0, 0, 1, -18], [0, 0, 0, 1]]))
    ours = masking.compute_brain_mask(target, mask_type=mask_type)
    theirs = nilearn_masking.compute_brain_mask(target, mask_type=mask_type)
    np.testing.assert_array_equal(np.asarray(ours.values), _values(theirs).astype(bool))


@pytest.mark.parametrize("strategy", ["whole-brain-template", "gm-template", "wm-template"])
def test_nifti_masker_template_strategies_equal_nilearn(strategy):
    rng = np.random.default_rng(0)
    epi = nib.Nifti1Image(rng.random((30, 36, 30, 5)).astype(np.float32), np.array(
        [[6.0, 0, 0, -90], [0, 6, 0, -126], [0, 0, 6, -72], [0, 0, 0, 1]]))
    ours = NiftiMasker(mask_strategy=strategy).fit(epi)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = NilearnNiftiMasker(mask_strategy=strategy).fit(epi)
    np.testing.assert_array_equal(_values(ours.mask_img_).astype(bool), _values(theirs.mask_img_).astype(bool))
    assert ours.n_elements_ == int(_values(theirs.mask_img_).sum()) > 0


def test_other_templateflow_templates_are_one_argument_away(templateflow_home):
    path = next((templateflow_home / "tpl-MNI152NLin2009cAsym").glob("*res-01_T1w.nii.gz"))
    stored = nib.load(path)
    template = datasets.load_mni152_template(template="MNI152NLin2009cAsym", resolution=6)
    np.testing.assert_allclose(template.affine[:3, :3], stored.affine[:3, :3])
    mask = np.asarray(nib.load(path.with_name(path.name.replace("_T1w", "_desc-brain_mask"))).dataobj) > 0
    expected = np.where(mask, np.asarray(stored.dataobj, np.float32), 0)
    np.testing.assert_allclose(_values(template), expected / expected.max(), atol=1e-6)


def test_offline_without_the_template_falls_back_to_the_synthetic_brain_and_warns(tmp_path, monkeypatch):
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(tmp_path / "empty"))
    mni152.clear_cache()
    try:
        with pytest.warns(mni152.TemplateFallbackWarning, match="synthetic MNI152-like brain"):
            template = datasets.load_mni152_template(4)
        synthetic = datasets.load_synthetic_mni152_template(4)
        assert template.shape == synthetic.shape
        np.testing.assert_allclose(_values(template), _values(synthetic) / _values(synthetic).max(), atol=1e-6)
    finally:
        monkeypatch.undo()
        mni152.clear_cache()


def test_prepared_templates_are_kept_for_the_next_process(monkeypatch, tmp_path):
    monkeypatch.setenv("BRAINXR_DATA", str(tmp_path))
    mni152.clear_cache()
    first = datasets.load_mni152_template(3)
    kept = list((tmp_path / "mni152").glob("*3mm*.nii"))
    assert len(kept) == 1
    mni152.clear_cache()
    np.testing.assert_array_equal(_values(datasets.load_mni152_template(3)), _values(first))
    mni152.clear_cache()


def test_plot_background_is_nilearns_template():
    import matplotlib.pyplot as plt
    from nilearn import plotting as nilearn_plotting

    from brainxr import plotting

    def drawn(display):  # the background's non-zero pixels of the three cuts (crop-independent)
        arrays = [np.ma.filled(image.get_array(), 0) for ax in display.frame_axes.figure.axes for image in ax.get_images()
                  if np.ndim(image.get_array()) == 2]
        values = np.concatenate([array.ravel() for array in arrays])
        return np.sort(values[values > 1e-6])  # nilearn masks the template at its float eps

    try:
        ours, theirs = plotting.plot_anat(cut_coords=(0, -20, 10)), nilearn_plotting.plot_anat(cut_coords=(0, -20, 10))
        np.testing.assert_allclose(drawn(ours), drawn(theirs), atol=1e-6)
    finally:
        plt.close("all")
