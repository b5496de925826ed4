"""brainxr.regions.region_extractor against nilearn.regions (0.14).

Given the same maps, the regions are nilearn's exactly: ``regions_img_``
values, shape and affine, and ``index_``, for every thresholding strategy
and both extractors; ``connected_regions`` and ``connected_label_regions``
likewise. Signals from ``transform`` equal nilearn's within 1e-4 of their
largest magnitude (float32 images). Maps: multi-blob maps with positive and
negative parts built from the synthetic maps atlas (6 mm grid).
"""

import warnings

import nibabel as nib
import numpy as np
import pytest
import xarray as xr
from nilearn import image as nilearn_image
from nilearn import regions as nilearn_regions

from brainxr.datasets import load_synthetic_mni152_brain_mask, load_synthetic_labels_atlas, load_synthetic_maps_atlas
from brainxr.nifti import from_nibabel, open_nifti
from brainxr.regions.region_extractor import (
    RegionExtractor,
    connected_label_regions,
    connected_regions,
    threshold_maps,
)

RESOLUTION = 6


@pytest.fixture(scope="module")
def maps_img():
    """4 maps, each a signed sum of 4 blobs of the synthetic maps atlas (float32)."""
    atlas = load_synthetic_maps_atlas(resolution=RESOLUTION, n_maps=16)
    blobs = np.asarray(atlas.maps.dataobj)
    rng = np.random.default_rng(0)
    maps = np.zeros(blobs.shape[:3] + (4,), dtype=np.float32)
    for index in range(4):
        members = rng.choice(16, size=4, replace=False)
        weights = rng.uniform(0.5, 1.5, size=4) * np.array([1, 1, 1, -1])
        maps[..., index] = np.tensordot(blobs[..., members], weights, axes=([3], [0]))
    maps += 0.02 * rng.standard_normal(maps.shape).astype(np.float32) * (np.abs(maps) > 0)
    return nib.Nifti1Image(maps, atlas.maps.affine)


@pytest.fixture(scope="module")
def mask_img():
    return load_synthetic_mni152_brain_mask(resolution=RESOLUTION)


@pytest.fixture(scope="module")
def run(tmp_path_factory, maps_img):
    """A float32 run whose signals are the maps' time courses plus noise, and a confounds table."""
    rng = np.random.default_rng(1)
    brain = np.asarray(load_synthetic_mni152_brain_mask(resolution=RESOLUTION).dataobj) > 0
    courses = rng.standard_normal((50, 4))
    data = 500 + np.tensordot(np.asarray(maps_img.dataobj), courses.T, axes=([3], [0])) * 20
    data += 5 * rng.standard_normal(data.shape)
    image = nib.Nifti1Image((data * brain[..., None]).astype(np.float32), maps_img.affine)
    image.header.set_zooms((RESOLUTION,) * 3 + (2.0,))
    path = tmp_path_factory.mktemp("run") / "bold.nii.gz"
    nib.save(image, path)
    confounds = rng.standard_normal((50, 3))
    return str(path), confounds


def assert_same_regions(ours, theirs):
    assert ours.index_ == theirs.index_
    assert ours.regions_img_.shape == theirs.regions_img_.shape
    np.testing.assert_array_equal(ours.regions_img_.get_fdata(), theirs.regions_img_.get_fdata())
    np.testing.assert_array_equal(ours.regions_img_.affine, theirs.regions_img_.affine)
    assert ours.regions_img_.get_data_dtype() == theirs.regions_img_.get_data_dtype()


PARAMETERS = [
    {"threshold": 1.0},
    {"threshold": 0.5, "min_region_size": 1350, "standardize": True},
    {"threshold": 2.0, "extractor": "connected_components", "min_region_size": 500},
    {"threshold": 0.3, "thresholding_strategy": "img_value", "min_region_size": 200},
    {"threshold": 0.3, "thresholding_strategy": "img_value", "two_sided": True, "extractor": "connected_components"},
    {"threshold": 85, "thresholding_strategy": "percentile", "two_sided": True, "min_region_size": 300},
    {"threshold": 90, "thresholding_strategy": "percentile", "smoothing_fwhm": 10, "min_region_size": 0},
]


@pytest.mark.parametrize("parameters", PARAMETERS, ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()))
def test_regions_equal_nilearn(maps_img, parameters):
    ours = RegionExtractor(maps_img, **parameters).fit()
    theirs = nilearn_regions.RegionExtractor(maps_img, **parameters).fit()
    assert len(ours.index_) > 4  # the maps were split
    assert_same_regions(ours, theirs)
    assert ours.n_elements_ == len(ours.index_)


def test_regions_with_a_mask_on_another_grid_equal_nilearn(maps_img):
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = (-90, -126, -72)
    brain = nilearn_image.resample_img(
        load_synthetic_mni152_brain_mask(resolution=RESOLUTION), target_affine=affine, target_shape=(46, 55, 46),
        interpolation="nearest", force_resample=True, copy_header=True,
    )
    parameters = {"threshold": 80, "thresholding_strategy": "percentile", "two_sided": True, "min_region_size": 300,
                  "mask_img": brain, "resampling_target": "maps"}
    ours = RegionExtractor(maps_img, **parameters).fit()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = nilearn_regions.RegionExtractor(maps_img, **parameters).fit()
    assert_same_regions(ours, theirs)


@pytest.mark.parametrize("extract_type", ["local_regions", "connected_components"])
@pytest.mark.parametrize("smoothing_fwhm", [6, None])
def test_connected_regions_equal_nilearn(maps_img, mask_img, extract_type, smoothing_fwhm):
    thresholded = nib.Nifti1Image(threshold_maps(np.asarray(maps_img.dataobj), 0.2), maps_img.affine)
    ours, our_index = connected_regions(thresholded, 400, extract_type, smoothing_fwhm, mask_img=mask_img)
    theirs, their_index = nilearn_regions.connected_regions(thresholded, 400, extract_type, smoothing_fwhm, mask_img=mask_img)
    assert our_index == their_index
    np.testing.assert_array_equal(ours.get_fdata(), theirs.get_fdata())


def test_random_walker_solves_on_one_blas_thread_with_nilearn_regions(maps_img, monkeypatch):
    """The random walker's conjugate gradients (short vectors, hundreds of iterations) run on one BLAS thread
    whatever the process's setting, and still give nilearn's regions (nilearn's own use the process's threads)."""
    from scipy.sparse import linalg
    from threadpoolctl import threadpool_info, threadpool_limits

    blas_threads = []
    solve = linalg.cg

    def recording_cg(*args, **kwargs):
        blas_threads.append({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"})
        return solve(*args, **kwargs)

    monkeypatch.setattr(linalg, "cg", recording_cg)
    thresholded = nib.Nifti1Image(threshold_maps(np.asarray(maps_img.dataobj), 0.2), maps_img.affine)
    with threadpool_limits(limits=2, user_api="blas"):
        ours, our_index = connected_regions(thresholded, 400, "local_regions")
    assert blas_threads and all(threads == {1} for threads in blas_threads)
    monkeypatch.setattr(linalg, "cg", solve)
    theirs, their_index = nilearn_regions.connected_regions(thresholded, 400, "local_regions")
    assert our_index == their_index
    np.testing.assert_array_equal(ours.get_fdata(), theirs.get_fdata())


def test_connected_regions_of_a_dataarray(maps_img):
    volume = from_nibabel(maps_img)
    ours, index = connected_regions(volume.isel(time=0) if "time" in volume.dims else volume[..., 0], 400)
    theirs, their_index = nilearn_regions.connected_regions(nilearn_image.index_img(maps_img, 0), 400)
    assert index == their_index
    np.testing.assert_array_equal(ours.get_fdata(), theirs.get_fdata())


def test_no_region_found(maps_img):
    with pytest.warns(UserWarning, match="No supra threshold regions"):
        assert connected_regions(maps_img, min_region_size=1e9) == (None, None)
    with pytest.raises(ValueError, match="maps_img: no region found"):
        RegionExtractor(maps_img, min_region_size=1e9).fit()


@pytest.mark.parametrize("connect_diag, min_size", [(True, None), (False, None), (True, 2000)])
def test_connected_label_regions_equal_nilearn(connect_diag, min_size):
    labels = np.asarray(load_synthetic_labels_atlas(resolution=RESOLUTION, n_regions=40).maps.dataobj)
    affine = load_synthetic_labels_atlas(resolution=RESOLUTION, n_regions=40).maps.affine
    # merge parcels far apart into one label: labels of several connected components
    merged = nib.Nifti1Image(np.where(labels > 0, labels % 7 + 1, 0).astype(np.int16), affine)
    names = [f"network {value}" for value in range(1, 8)]
    ours, our_names = connected_label_regions(merged, min_size=min_size, connect_diag=connect_diag, labels=names)
    theirs, their_names = nilearn_regions.connected_label_regions(merged, min_size=min_size, connect_diag=connect_diag,
                                                                  labels=names)
    assert our_names == their_names and len(our_names) > 7
    np.testing.assert_array_equal(np.asarray(ours.dataobj), np.asarray(theirs.dataobj))
    # int32 on disk too (nilearn keeps the input header's int16, which more than 32767 labels would overflow)
    assert ours.get_data_dtype() == np.int32
    np.testing.assert_array_equal(
        np.asarray(connected_label_regions(merged).dataobj), np.asarray(nilearn_regions.connected_label_regions(merged).dataobj)
    )


def test_transform_equals_nilearn(maps_img, run):
    path, confounds = run
    parameters = {"threshold": 0.5, "standardize": "zscore_sample", "detrend": True, "min_region_size": 1350}
    ours = RegionExtractor(maps_img, **parameters).fit()
    theirs = nilearn_regions.RegionExtractor(maps_img, **parameters).fit()
    signals = ours.transform(path, confounds=confounds)
    expected = theirs.transform(path, confounds=confounds)
    assert signals.shape == expected.shape == (50, len(ours.index_))
    np.testing.assert_allclose(signals, expected, rtol=0, atol=1e-4 * np.abs(expected).max())
    # brainxr inputs: a lazy volume DataArray and (time, voxel) signals
    volume = open_nifti(path)
    np.testing.assert_allclose(ours.transform(volume, confounds=confounds), signals, rtol=0, atol=1e-5)
    labeled = ours.set_output(transform="xarray").transform(path, confounds=confounds)
    assert isinstance(labeled, xr.DataArray) and labeled.dims == ("time", "region")
    np.testing.assert_allclose(labeled.values, signals)


def test_fit_keeps_the_parameters(maps_img):
    extractor = RegionExtractor(maps_img, threshold=90, thresholding_strategy="percentile").fit()
    # nilearn rewrites its threshold parameter to "90%"; brainxr leaves parameters as given
    assert extractor.threshold == 90 and extractor.maps_img is maps_img
    refitted = extractor.fit()
    assert refitted.index_ == extractor.index_


def test_bad_input(maps_img):
    with pytest.raises(ValueError, match="'thresholding_strategy' must be one of"):
        RegionExtractor(maps_img, thresholding_strategy="top").fit()
    with pytest.raises(ValueError, match="The given input to threshold is not valid"):
        RegionExtractor(maps_img, threshold=None).fit()
    with pytest.raises(ValueError, match="The given input to threshold is not valid"):
        RegionExtractor(maps_img, threshold="90%").fit()
    with pytest.raises(ValueError, match="threshold given as ratio to the number of voxels"):
        RegionExtractor(maps_img, threshold=5.0).fit()
    with pytest.raises(ValueError, match="'extractor' must be one of"):
        RegionExtractor(maps_img, extractor="watershed").fit()
    with pytest.raises(ValueError, match="maps_img: expected a 4D image"):
        RegionExtractor(nilearn_image.index_img(maps_img, 0)).fit()
    with pytest.raises(ValueError, match="maps_img: a 4D maps image is required"):
        RegionExtractor().fit()
    with pytest.raises(ValueError, match='"threshold" should not be a negative value when two_sided=True'):
        RegionExtractor(maps_img, threshold=-0.1, thresholding_strategy="img_value", two_sided=True).fit()
    with pytest.raises(ValueError, match="'extract_type' must be one of"):
        connected_regions(maps_img, extract_type="watershed")
    labels = nib.Nifti1Image(np.array([[[0, 1], [2, -1]]], dtype=np.int16), np.eye(4))
    with pytest.raises(ValueError, match="negative integers as labels"):
        connected_label_regions(labels)
    positive = nib.Nifti1Image(np.array([[[0, 1], [2, 2]]], dtype=np.int16), np.eye(4))
    with pytest.raises(ValueError, match="The number of labels: 1 provided"):
        connected_label_regions(positive, labels=["only one"])
    with pytest.raises(ValueError, match="'connect_diag' must be specified as True or False"):
        connected_label_regions(positive, connect_diag="yes")
