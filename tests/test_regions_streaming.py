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
from brainxr.datasets import load_synthetic_mni152_brain_mask, load_synthetic_labels_atlas
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
    mask = load_synthetic_mni152_brain_mask(resolution=4)
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


def test_stream_signals_reads_once_and_crops_smoothing_exactly(bold_path):
    from brainxr.image import smooth_array

    mask = np.asarray(load_synthetic_mni152_brain_mask(resolution=4).dataobj).astype(bool)
    img = nib.load(bold_path)
    seed = regions.sphere_support([(0.0, -52.0, 18.0)], 8, img.shape[:3], img.affine)
    with raise_if_dask_computes():
        outputs = regions.stream_signals(bold_path, {"seed": seed, "brain": mask}, smoothing_fwhm={"brain": 6}, voxel_chunks=4000)
    assert set(outputs) == {"seed", "brain"}
    # one read task feeds both outputs
    graph = dict(outputs["seed"].data.__dask_graph__()) | dict(outputs["brain"].data.__dask_graph__())
    assert sum(1 for key in graph if str(key[0] if isinstance(key, tuple) else key).startswith("stream_outputs")) == 1
    values = np.asarray(img.dataobj)
    np.testing.assert_array_equal(outputs["seed"].values, values[seed].T)
    np.testing.assert_array_equal(outputs["brain"].values, smooth_array(values, img.affine, 6)[mask].T)
    expected = regions.extract_spheres(img, [(0.0, -52.0, 18.0)], radius=8)
    np.testing.assert_allclose(regions.extract_spheres(outputs["seed"], [(0.0, -52.0, 18.0)], radius=8).values, expected.values, rtol=1e-6)
    with pytest.raises(ValueError, match=r"smoothing_fwhm: no mask named \['other'\]"):
        regions.stream_signals(bold_path, {"brain": mask}, smoothing_fwhm={"other": 6})
