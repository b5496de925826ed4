"""Streaming extraction from NIfTI files: one lazy task per run, bounded memory, nilearn-equal."""

import tracemalloc
import warnings

import nibabel as nib
import numpy as np
import pytest
from nilearn.maskers import NiftiMasker as NilearnNiftiMasker
from nilearn.regions import img_to_signals_labels

import brainxr
from brainxr import regions
from brainxr.datasets import load_mni152_brain_mask, load_synthetic_labels_atlas
from brainxr.regions._streaming import stream_masked
from brainxr.testing import raise_if_dask_computes


@pytest.fixture(scope="module")
def atlas():
    return load_synthetic_labels_atlas(resolution=4, n_regions=20)


@pytest.fixture(scope="module")
def bold_path(tmp_path_factory, atlas):
    rng = np.random.default_rng(0)
    values = rng.normal(size=atlas.maps.shape + (24,)).astype(np.float32) + 50
    img = nib.Nifti1Image(values, atlas.maps.affine)
    img.header.set_zooms((4.0, 4.0, 4.0, 2.0))
    path = tmp_path_factory.mktemp("stream") / "bold.nii.gz"
    nib.save(img, path)
    return path


def test_path_inputs_are_one_lazy_task_per_run(atlas, bold_path):
    with raise_if_dask_computes():
        lazy = regions.extract_labels(bold_path, atlas.maps)
    expected, _, _ = img_to_signals_labels(str(bold_path), atlas.maps)
    np.testing.assert_allclose(lazy.values, expected, rtol=1e-6)
    np.testing.assert_allclose(lazy["time"].values, 2.0 * np.arange(24))
    with raise_if_dask_computes():
        cohort = regions.extract_cohort({"a": bold_path, "b": str(bold_path)}, atlas.maps)
    np.testing.assert_allclose(cohort.values[1], expected, rtol=1e-6)


def test_stream_masked_equals_apply_mask_and_holds_few_blocks(tmp_path):
    rng = np.random.default_rng(1)
    values = rng.normal(size=(40, 40, 40, 64)).astype(np.float32)
    path = tmp_path / "run.nii.gz"
    nib.save(nib.Nifti1Image(values, np.eye(4)), path)
    support = np.zeros((40, 40, 40), bool)
    support[10:14, 10:14, 10:14] = True
    tracemalloc.start()
    result = stream_masked(path, support, block_size=8)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    np.testing.assert_array_equal(result, values[support].T)
    run_bytes = values.nbytes  # 16 MB
    block_bytes = values[..., :8].nbytes  # 2 MB
    assert peak < 5 * block_bytes < run_bytes / 1.5, (peak, block_bytes, run_bytes)


def test_whole_brain_signals_equal_nilearn_masker(bold_path):
    mask = load_mni152_brain_mask(resolution=4)
    expected = NilearnNiftiMasker(mask_img=mask, smoothing_fwhm=6, standardize=None).fit_transform(str(bold_path))
    with raise_if_dask_computes():
        lazy = regions.whole_brain_signals(bold_path, mask, smoothing_fwhm=6, voxel_chunks=5000)
    assert lazy.dims == ("time", "voxel") and lazy.chunks[1][0] == 5000
    np.testing.assert_allclose(lazy.values, expected, rtol=1e-5, atol=1e-4)
    in_memory = regions.whole_brain_signals(nib.load(bold_path), mask, smoothing_fwhm=6)
    np.testing.assert_allclose(in_memory.values, expected, rtol=1e-5, atol=1e-4)
    back = brainxr.unmask(lazy.isel(time=0))
    np.testing.assert_allclose(back.values[np.asarray(mask.dataobj).astype(bool)], expected[0], rtol=1e-5, atol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected_background = NilearnNiftiMasker(mask_strategy="background").fit_transform(str(bold_path))
    np.testing.assert_allclose(regions.whole_brain_signals(bold_path, "background").values, expected_background, rtol=1e-6)
    with pytest.raises(ValueError, match="neither a mask file nor a strategy"):
        regions.whole_brain_signals(bold_path, "skull")
