"""brainxr.regions.extract_cohort: lazy (run, time, region) results, ragged runs, cleaning, distributed."""

import warnings

import nibabel as nib
import numpy as np
import pytest
from nilearn.regions import img_to_signals_labels
from nilearn.signal import clean as nilearn_clean

import brainxr
from brainxr import regions
from brainxr.datasets import load_synthetic_mni152_brain_mask, load_synthetic_labels_atlas
from brainxr.nifti import from_nibabel
from brainxr.testing import raise_if_dask_computes


@pytest.fixture(scope="module")
def atlas():
    return load_synthetic_labels_atlas(resolution=4, n_regions=20)


@pytest.fixture(scope="module")
def cohort(atlas):
    rng = np.random.default_rng(0)
    mask = load_synthetic_mni152_brain_mask(resolution=4)
    imgs, runs = {}, {}
    for name, n_time in (("sub-01", 50), ("sub-02", 40)):
        img = nib.Nifti1Image(rng.normal(size=atlas.maps.shape + (n_time,)).astype(np.float32) + 100, atlas.maps.affine)
        img.header.set_zooms((4.0, 4.0, 4.0, 2.0))
        imgs[name] = img
        runs[name] = brainxr.apply_mask(from_nibabel(img).chunk({"time": 8}), mask, voxel_chunks=3000)
    return imgs, runs


def test_cohort_extraction_is_lazy_ragged_and_equals_per_run(atlas, cohort):
    imgs, runs = cohort
    loaded = regions.load_labels_atlas(atlas.maps, labels=atlas.labels)
    with raise_if_dask_computes():
        result = regions.extract_cohort(runs, loaded)
    assert result.dims == ("run", "time", "region")
    assert list(result["run"].values) == ["sub-01", "sub-02"]
    np.testing.assert_array_equal(result["n_volumes"].values, [50, 40])
    values = result.values
    for position, name in enumerate(runs):
        expected, _, _ = img_to_signals_labels(imgs[name], atlas.maps)
        n = len(expected)
        np.testing.assert_allclose(values[position, :n], expected, rtol=1e-6)
        assert np.isnan(values[position, n:]).all()
    np.testing.assert_allclose(result["onset"].values[1, :40], 2.0 * np.arange(40))
    assert np.isnan(result["onset"].values[1, 40:]).all()
    assert result["coverage"].dims == ("run", "region")


def test_cohort_cleaning_equals_nilearn_clean(atlas, cohort):
    imgs, runs = cohort
    rng = np.random.default_rng(1)
    confounds = {name: rng.normal(size=(img.shape[3], 3)) for name, img in imgs.items()}
    sample_mask = {"sub-01": np.arange(2, 50)}
    options = {"detrend": True, "standardize": "zscore_sample", "low_pass": 0.1, "high_pass": 0.01, "t_r": 2.0}
    with raise_if_dask_computes():
        result = regions.extract_cohort(runs, atlas.maps, clean=options, confounds=confounds, sample_mask=sample_mask)
    np.testing.assert_array_equal(result["n_volumes"].values, [48, 40])
    for position, name in enumerate(runs):
        # nilearn in float64 (brainxr's region signals are float64): rounding region means
        # of ~100 to float32 alone moves the z-scored signals by 1e-4
        img = imgs[name]
        signals, _, _ = img_to_signals_labels(nib.Nifti1Image(img.get_fdata(), img.affine), atlas.maps)
        expected = nilearn_clean(signals, confounds=confounds[name], sample_mask=sample_mask.get(name), **options)
        np.testing.assert_allclose(result.values[position, : len(expected)], expected, rtol=1e-5, atol=1e-5)


def test_cohort_bad_input(atlas, cohort):
    _, runs = cohort
    with pytest.raises(ValueError, match="runs"):
        regions.extract_cohort({}, atlas.maps)
    with pytest.raises(ValueError, match=r"confounds: no run named \['sub-09'\]"):
        regions.extract_cohort(runs, atlas.maps, confounds={"sub-09": np.zeros((3, 1))})


def _distributed_values(runs, maps):
    from distributed import Client, LocalCluster

    lazy = regions.extract_cohort(runs, maps)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster):
            return lazy.compute().values


@pytest.mark.slow
def test_cohort_runs_unchanged_on_distributed_workers(atlas, cohort):
    _, runs = cohort
    expected = regions.extract_cohort(runs, atlas.maps).values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # large-graph warnings: the test data are numpy-backed
        values = _distributed_values(runs, atlas.maps)
    np.testing.assert_allclose(values, expected, rtol=1e-6)


def test_cohort_run_datasets_leave_invalid_voxels_out(atlas, cohort):
    import xarray as xr

    _, runs = cohort
    bold = runs["sub-02"]
    labels = np.asarray(atlas.maps.dataobj)[bold["i"].values, bold["j"].values, bold["k"].values]
    valid = np.ones(bold.sizes["voxel"], dtype=bool)
    valid[np.flatnonzero(labels == 4)[::2]] = False
    run = xr.Dataset({"bold": bold, "valid": ("voxel", valid)}, attrs={"t_r": 2.0})
    run["valid"] = run["valid"].chunk({"voxel": 3000})
    with raise_if_dask_computes():
        result = regions.extract_cohort({"sub-02": run}, atlas.maps, strategy="mean")
        median = regions.extract_labels(run, atlas.maps, strategy="median")
    kept = bold.isel(voxel=np.flatnonzero(valid))
    expected = regions.extract_labels(kept, atlas.maps)
    np.testing.assert_allclose(result.isel(run=0).values, expected.values, rtol=1e-6)
    np.testing.assert_allclose(median.values, regions.extract_labels(kept, atlas.maps, strategy="median").values, rtol=1e-6)
    in_region = (labels == 4).sum()
    np.testing.assert_allclose(result["coverage"].values[0, 3], (in_region - (in_region + 1) // 2) / in_region)
