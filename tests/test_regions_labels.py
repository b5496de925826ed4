"""brainxr.regions labels extraction against nilearn, numpy and dask, coverage and bad input."""

import warnings

import dask.array as dsa
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.regions import img_to_signals_labels, signals_to_img_labels

import brainxr
from brainxr import regions
from brainxr.datasets import load_synthetic_mni152_brain_mask, load_synthetic_labels_atlas
from brainxr.nifti import from_nibabel
from brainxr.testing import raise_if_dask_computes


@pytest.fixture(scope="module")
def atlas():
    return load_synthetic_labels_atlas(resolution=4, n_regions=20)


@pytest.fixture(scope="module")
def brain_mask():
    return load_synthetic_mni152_brain_mask(resolution=4)


@pytest.fixture(scope="module")
def bold(atlas):
    rng = np.random.default_rng(0)
    values = rng.normal(size=atlas.maps.shape + (7,)).astype(np.float32) + 10
    return nib.Nifti1Image(values, atlas.maps.affine)


def lazy_masked(img, mask, voxel_chunks=2000):
    return brainxr.apply_mask(from_nibabel(img).chunk({"time": 3}), mask, voxel_chunks=voxel_chunks)


@pytest.mark.parametrize("strategy", regions.STRATEGIES)
def test_labels_equal_nilearn_numpy_and_dask(bold, atlas, brain_mask, strategy):
    expected, ids, _ = img_to_signals_labels(bold, atlas.maps, strategy=strategy)
    eager = regions.extract_labels(bold, atlas.maps, strategy=strategy, labels=atlas.labels)
    assert eager.dims == ("time", "region")
    np.testing.assert_array_equal(eager["label"].values, ids)
    np.testing.assert_allclose(eager.values, expected, rtol=1e-6)
    masked = lazy_masked(bold, brain_mask)
    with raise_if_dask_computes():
        lazy = regions.extract_labels(masked, atlas.maps, strategy=strategy, labels=atlas.labels)
    assert isinstance(lazy.data, dsa.Array)
    # the synthetic atlas lies inside the brain mask: same voxels, same signals
    np.testing.assert_allclose(lazy.values, expected, rtol=1e-6)
    assert list(lazy["region"].values) == atlas.labels[1:]
    np.testing.assert_allclose(lazy["x"].values, atlas.lut["x"].values)
    np.testing.assert_allclose(lazy.coverage.values, 1.0)


def test_numpy_backed_masked_signals_give_the_same_result(bold, atlas, brain_mask):
    expected, _, _ = img_to_signals_labels(bold, atlas.maps)
    masked = brainxr.apply_mask(bold, brain_mask)
    assert isinstance(masked.data, np.ndarray)
    np.testing.assert_allclose(regions.extract_labels(masked, atlas.maps).values, expected, rtol=1e-6)


def test_invalid_voxels_are_excluded_and_coverage_reported(bold, atlas, brain_mask):
    values = np.asarray(bold.dataobj).copy()
    labels = np.asarray(atlas.maps.dataobj)
    region_voxels = np.argwhere(labels == 3)
    hidden = region_voxels[: len(region_voxels) // 2]
    values[tuple(hidden.T) + (2,)] = np.nan  # one time point makes the voxel invalid
    img = nib.Nifti1Image(values, bold.affine)
    kept = labels == 3
    kept[tuple(hidden.T)] = False
    expected = values[kept].mean(axis=0)
    for signals in (img, lazy_masked(img, brain_mask)):
        result = regions.extract_labels(signals, atlas.maps)
        np.testing.assert_allclose(result.sel(region="3").values, expected, rtol=1e-6)
        coverage = result.coverage.sel(region="3").values
        np.testing.assert_allclose(coverage, kept.sum() / (labels == 3).sum())
        dropped = regions.extract_labels(signals, atlas.maps, min_coverage=0.9)
        assert np.isnan(dropped.sel(region="3").values).all()
        assert np.isfinite(dropped.sel(region="4").values).all()
    # nilearn's handling: NaN -> 0, voxels kept
    nilearn_values, _, _ = img_to_signals_labels(img, atlas.maps)
    np.testing.assert_allclose(regions.extract_labels(img, atlas.maps, ensure_finite=True).values, nilearn_values, rtol=1e-6)


def test_regions_outside_the_data_have_nan_and_zero_coverage(bold, atlas, brain_mask):
    mask = np.asarray(brain_mask.dataobj).astype(bool)
    labels = np.asarray(atlas.maps.dataobj)
    mask[labels == 5] = False
    masked = lazy_masked(bold, nib.Nifti1Image(mask.astype(np.uint8), bold.affine))
    result = regions.extract_labels(masked, atlas.maps)
    assert result.sizes["region"] == 20
    assert np.isnan(result.sel(region="5").values).all()
    assert result.coverage.sel(region="5").values.item() == 0


def test_mask_and_lut_and_names(bold, atlas, tmp_path):
    lut_path = tmp_path / "atlas_dseg.tsv"
    atlas.lut[["index", "name"]].to_csv(lut_path, sep="\t", index=False)
    result = regions.extract_labels(bold, atlas.maps, lut=lut_path)
    assert list(result["region"].values) == list(atlas.lut["name"])
    mask = np.zeros(bold.shape[:3], np.uint8)
    mask[:23] = 1
    mask_img = nib.Nifti1Image(mask, bold.affine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected, ids, _ = img_to_signals_labels(bold, atlas.maps, mask_img=mask_img)
    masked_result = regions.extract_labels(bold, atlas.maps, mask=mask_img)
    present = masked_result.isel(region=np.flatnonzero(masked_result.coverage.values > 0))
    np.testing.assert_array_equal(present["label"].values, ids)
    np.testing.assert_allclose(present.values, expected, rtol=1e-6)


def test_duplicate_names_are_made_unique(bold, atlas):
    names = ["Background"] + ["same"] * 20
    result = regions.extract_labels(bold, atlas.maps, labels=names)
    assert result["region"].values[0] == "same (1)"
    assert len(set(result["region"].values)) == 20
    assert (result["name"].values == "same").all()


def test_atlas_on_another_grid_is_resampled_once(atlas):
    rng = np.random.default_rng(1)
    affine = np.diag([5.0, 5.0, 5.0, 1.0])
    affine[:3, 3] = (-88, -124, -70)
    bold5 = nib.Nifti1Image(rng.normal(size=(37, 44, 37, 4)).astype(np.float32), affine)
    loaded = regions.load_labels_atlas(atlas.maps)
    first = loaded.on_grid(bold5.shape[:3], bold5.affine)
    assert loaded.on_grid(bold5.shape[:3], bold5.affine) is first
    from nilearn.image import resample_img

    resampled = resample_img(atlas.maps, target_affine=affine, target_shape=bold5.shape[:3], interpolation="nearest")
    expected, ids, _ = img_to_signals_labels(bold5, resampled)
    result = regions.extract_labels(bold5, loaded)
    np.testing.assert_array_equal(result["label"].values, ids)
    np.testing.assert_allclose(result.values, expected, rtol=1e-6)


def test_vanishing_labels_are_named_in_a_warning(bold):
    labels = np.zeros((40, 40, 40), np.int16)
    labels[10:30, 10:30, 10:30] = 1
    labels[20, 20, 21] = 7  # a one-voxel region that a 4 mm grid misses
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    affine[:3, 3] = -20
    atlas = regions.load_labels_atlas(nib.Nifti1Image(labels, affine), labels=["Background", "big", "tiny"])
    target_affine = np.diag([4.0, 4.0, 4.0, 1.0])
    target_affine[:3, 3] = -18
    with pytest.warns(UserWarning, match=r"vanished.*7: 'tiny'"):
        on_grid = atlas.on_grid((10, 10, 10), target_affine)
    assert list(on_grid.regions["name"]) == ["big"]


def test_bad_input(bold, atlas):
    with pytest.raises(ValueError, match="strategy"):
        regions.extract_labels(bold, atlas.maps, strategy="mode")
    with pytest.raises(ValueError, match="min_coverage"):
        regions.extract_labels(bold, atlas.maps, min_coverage=2)
    with pytest.raises(ValueError, match="labels_img: the image has no label"):
        regions.extract_labels(bold, nib.Nifti1Image(np.zeros(bold.shape[:3], np.int16), bold.affine))
    with pytest.raises(ValueError, match="either labels or a lookup table"):
        regions.load_labels_atlas(atlas.maps, labels=atlas.labels, lut=atlas.lut)
    with pytest.warns(UserWarning, match="padding with 'unknown'"):
        short = regions.load_labels_atlas(atlas.maps, labels=["a", "b"])
    assert list(short.regions["name"])[:3] == ["a", "b", "unknown"]
    from brainxr.masking import apply_mask

    masked = apply_mask(bold, load_synthetic_mni152_brain_mask(resolution=4))
    with pytest.raises(ValueError, match="no grid"):
        regions.extract_labels(masked.drop_vars("grid"), atlas.maps)


def test_labels_to_volume_equals_nilearn(atlas):
    rng = np.random.default_rng(3)
    signals = rng.normal(size=(4, 20))
    expected = signals_to_img_labels(signals, atlas.maps).get_fdata()
    result = regions.labels_to_volume(signals, atlas.maps)
    assert result.dims == ("i", "j", "k", "time")
    np.testing.assert_allclose(result.values, expected)
    np.testing.assert_allclose(regions.labels_to_volume(signals[0], atlas.maps).values, expected[..., 0])


def test_look_up_table_matches_nilearn(atlas):
    from nilearn.maskers import NiftiLabelsMasker

    for kwargs in ({}, {"labels": atlas.labels}, {"labels": atlas.labels[1:]}, {"lut": atlas.lut[["index", "name"]]}):
        masker = NiftiLabelsMasker(atlas.maps, **kwargs).fit()
        table = regions.look_up_table(np.asarray(atlas.maps.dataobj), 0, **kwargs)
        pd.testing.assert_frame_equal(
            table[["index", "name"]].reset_index(drop=True),
            masker.lut_[["index", "name"]].reset_index(drop=True),
            check_dtype=False,
        )
