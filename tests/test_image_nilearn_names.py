"""nilearn's everyday ``image`` functions in brainxr: equal to nilearn's, lazy and labeled for DataArrays.

Each function is compared with nilearn 0.14.1's on nibabel images (values,
dtype, affine exactly; cleaning within 1e-5), and on DataArrays (numpy- and
dask-backed with several chunkings): the result is a DataArray with the
input's coordinates, built without computing when the input is lazy, equal
to nilearn's values.
"""

from __future__ import annotations

import warnings

import dask.array as dsa
import nibabel as nib
import numpy as np
import pytest
import xarray as xr
from nilearn import image as nilearn_image

from brainxr import image
from brainxr.nifti import from_nibabel, open_nifti
from brainxr.testing import raise_if_dask_computes

AFFINE = np.array([[3.0, 0, 0, -10], [0, 3, 0, -20], [0, 0, 3, -5], [0, 0, 0, 1]])
CHUNKINGS = [None, 1, 7, -1]  # None: numpy-backed; else volumes per dask chunk


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    bold = rng.standard_normal((10, 11, 9, 60)).astype(np.float32)
    bold[..., :] += np.linspace(0, 3, 60, dtype=np.float32)
    stat = rng.standard_normal((10, 11, 9))
    mask = np.zeros((10, 11, 9), np.uint8)
    mask[2:8, 3:9, 2:7] = 1
    return {"bold": nib.Nifti1Image(bold, AFFINE), "stat": nib.Nifti1Image(stat, AFFINE),
            "mask": nib.Nifti1Image(mask, AFFINE)}


def assert_same_image(ours, theirs, atol=0.0):
    assert isinstance(ours, nib.Nifti1Image)
    assert ours.shape == theirs.shape
    assert ours.get_data_dtype() == theirs.get_data_dtype()
    ours_data, their_data = np.asanyarray(ours.dataobj), np.asanyarray(theirs.dataobj)
    assert ours_data.dtype == their_data.dtype
    np.testing.assert_allclose(ours_data, their_data, atol=atol, rtol=0)
    np.testing.assert_array_equal(ours.affine, theirs.affine)


def as_dataarray(img, chunks):
    volume = from_nibabel(img)
    if chunks is not None:
        volume = volume.chunk({dim: (chunks if dim == "time" else -1) for dim in volume.dims})
    return volume


def assert_labeled_like(result, theirs, reference: xr.DataArray, atol=0.0):
    """A DataArray on nilearn's grid, with nilearn's values, keeping the reference's spatial coords."""
    assert isinstance(result, xr.DataArray)
    assert result.dims[:3] == ("i", "j", "k")
    np.testing.assert_allclose(result.brain.affine, theirs.affine)
    np.testing.assert_allclose(np.asarray(result.values), np.asanyarray(theirs.dataobj), atol=atol, rtol=0)
    if result.shape[:3] == reference.shape[:3]:
        for name in ("x", "y", "z"):
            xr.testing.assert_identical(result[name], reference[name])


# -- nibabel inputs: equal to nilearn -------------------------------------------


def test_index_iter_concat_equal_nilearn(images):
    bold, stat = images["bold"], images["stat"]
    assert_same_image(image.index_img(bold, 3), nilearn_image.index_img(bold, 3))
    assert_same_image(image.index_img(bold, slice(2, 5)), nilearn_image.index_img(bold, slice(2, 5)))
    assert_same_image(image.index_img(bold, [0, 4, 2]), nilearn_image.index_img(bold, [0, 4, 2]))
    ours, theirs = list(image.iter_img(bold)), list(nilearn_image.iter_img(bold))
    assert len(ours) == len(theirs) == 60
    assert_same_image(ours[-1], theirs[-1])
    assert_same_image(image.concat_imgs([stat, stat, stat]), nilearn_image.concat_imgs([stat, stat, stat]))
    assert_same_image(image.concat_imgs([bold, bold], dtype=None), nilearn_image.concat_imgs([bold, bold], dtype=None))
    with pytest.raises(IndexError, match="out of range"):
        image.index_img(bold, 60)


def test_load_new_like_copy_get_data_equal_nilearn(images, tmp_path):
    stat = images["stat"]
    path = tmp_path / "stat.nii.gz"
    stat.to_filename(path)
    for kind in ("a", "b"):
        stat.to_filename(tmp_path / f"vol_{kind}.nii.gz")
    assert_same_image(image.load_img(path), nilearn_image.load_img(path))
    assert_same_image(image.load_img(str(tmp_path / "vol_*.nii.gz")), nilearn_image.load_img(str(tmp_path / "vol_*.nii.gz")))
    assert_same_image(image.load_img(stat, dtype="auto"), nilearn_image.load_img(stat, dtype="auto"))
    data = np.asarray(stat.dataobj) > 0
    assert_same_image(image.new_img_like(stat, data), nilearn_image.new_img_like(stat, data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_same_image(image.new_img_like(stat, data.astype(np.int64)),
                          nilearn_image.new_img_like(stat, data.astype(np.int64)))
    copied = image.copy_img(stat)
    assert_same_image(copied, nilearn_image.copy_img(stat))
    assert np.asanyarray(copied.dataobj) is not np.asanyarray(stat.dataobj)
    np.testing.assert_array_equal(image.get_data(path), nilearn_image.get_data(path))
    with pytest.raises(ValueError, match="No files matching"):
        image.load_img(str(tmp_path / "nothing_*.nii"))


@pytest.mark.parametrize("two_sided", [True, False])
@pytest.mark.parametrize("threshold", [0.5, "80%", -0.5])
def test_threshold_and_binarize_equal_nilearn(images, threshold, two_sided):
    stat, mask = images["stat"], images["mask"]
    if two_sided and threshold == -0.5:
        with pytest.raises(ValueError, match="negative"):
            image.threshold_img(stat, threshold, two_sided=True)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kwargs in ({}, {"mask_img": mask}, {"cluster_threshold": 6}):
            assert_same_image(image.threshold_img(stat, threshold, two_sided=two_sided, **kwargs),
                              nilearn_image.threshold_img(stat, threshold, two_sided=two_sided, **kwargs))
        assert_same_image(image.binarize_img(stat, threshold, two_sided=two_sided),
                          nilearn_image.binarize_img(stat, threshold, two_sided=two_sided))


def test_math_crop_components_equal_nilearn(images):
    bold, stat, mask = images["bold"], images["stat"], images["mask"]
    assert_same_image(image.math_img("np.mean(img, axis=-1)", img=bold), nilearn_image.math_img("np.mean(img, axis=-1)", img=bold))
    assert_same_image(image.math_img("a - b * 2", a=stat, b=stat, copy_header_from="a"),
                      nilearn_image.math_img("a - b * 2", a=stat, b=stat, copy_header_from="a"))
    with pytest.raises(ValueError, match="different shapes"):
        image.math_img("a + b", a=stat, b=image.index_img(bold, slice(0, 2)).slicer[:5])
    for rtol in (1e-8, 0.5):
        ours, their = image.crop_img(mask, rtol=rtol, return_offset=True), nilearn_image.crop_img(mask, rtol=rtol, return_offset=True)
        assert_same_image(ours[0], their[0])
        assert ours[1] == their[1]
    two_blobs = np.asarray(mask.dataobj).copy()
    two_blobs[0, 0, 0] = 1
    blobs = nib.Nifti1Image(two_blobs, AFFINE)
    assert_same_image(image.largest_connected_component_img(blobs), nilearn_image.largest_connected_component_img(blobs))
    assert_same_image(image.swap_img_hemispheres(stat), nilearn_image.swap_img_hemispheres(stat))


def test_clean_img_and_high_variance_confounds_equal_nilearn(images):
    bold, mask = images["bold"], images["mask"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for kwargs in ({}, {"t_r": 2.0, "low_pass": 0.1, "high_pass": 0.01}, {"mask_img": mask},
                       {"detrend": False, "standardize": "zscore_sample", "clean__sample_mask": np.arange(2, 58)}):
            assert_same_image(image.clean_img(bold, **kwargs), nilearn_image.clean_img(bold, **kwargs), atol=2e-5)
    with pytest.raises(ValueError, match="t_r"):
        image.clean_img(bold, low_pass=0.1)
    for kwargs in ({}, {"mask_img": mask}, {"n_confounds": 3, "percentile": 10.0, "detrend": False}):
        np.testing.assert_allclose(np.abs(image.high_variance_confounds(bold, **kwargs)),
                                   np.abs(nilearn_image.high_variance_confounds(bold, **kwargs)), atol=1e-5)  # float32 data


def test_signal_high_variance_confounds_equal_nilearn(images):
    from nilearn import signal as nilearn_signal

    from brainxr import signal

    series = np.asarray(images["bold"].dataobj).reshape(-1, 60).T.astype(np.float64)
    np.testing.assert_allclose(np.abs(signal.high_variance_confounds(series)),
                               np.abs(nilearn_signal.high_variance_confounds(series)), atol=1e-10)


# -- DataArray inputs: labeled, lazy where the input is ---------------------------


@pytest.mark.parametrize("chunks", CHUNKINGS)
def test_dataarray_results_labeled_and_lazy(images, chunks):
    bold = as_dataarray(images["bold"], chunks)
    stat = as_dataarray(images["stat"], None if chunks is None else -1)
    lazy = chunks is not None
    with raise_if_dask_computes():
        indexed = image.index_img(bold, slice(2, 5))
        volumes = list(image.iter_img(bold))
        mean = image.math_img("np.mean(img, axis=-1)", img=bold)
        thresholded = image.threshold_img(bold, 0.5)
        binarized = image.binarize_img(stat, 0.5)
        concatenated = image.concat_imgs([stat, stat])
        new = image.new_img_like(bold, bold.data * 2)
        cleaned = image.clean_img(bold, t_r=2.0, low_pass=0.1, standardize="zscore_sample",
                                  mask_img=images["mask"])
    for result in (indexed, volumes[0], mean, thresholded, binarized, concatenated, new, cleaned):
        assert isinstance(result.data, dsa.Array) is lazy
    xr.testing.assert_identical(indexed, bold.isel(time=slice(2, 5)))
    xr.testing.assert_identical(volumes[4], bold.isel(time=4))
    nib_bold, nib_stat = images["bold"], images["stat"]
    assert_labeled_like(mean, nilearn_image.math_img("np.mean(img, axis=-1)", img=nib_bold), bold, atol=1e-6)
    assert_labeled_like(thresholded, nilearn_image.threshold_img(nib_bold, 0.5), bold)
    assert_labeled_like(binarized, nilearn_image.binarize_img(nib_stat, 0.5), stat)
    assert_labeled_like(concatenated, nilearn_image.concat_imgs([nib_stat, nib_stat]), stat)
    xr.testing.assert_identical(new, bold.copy(data=bold.data * 2))
    assert_labeled_like(cleaned, nilearn_image.clean_img(nib_bold, t_r=2.0, low_pass=0.1, standardize="zscore_sample",
                                                         mask_img=images["mask"]), bold, atol=2e-5)
    xr.testing.assert_identical(cleaned["time"], bold["time"])


def test_dataarray_crop_moves_the_grid(images):
    mask = from_nibabel(images["mask"])
    cropped, offset = image.crop_img(mask, return_offset=True)
    theirs = nilearn_image.crop_img(images["mask"])
    assert_labeled_like(cropped, theirs, mask)
    # the world coordinates of the kept voxels are unchanged; the affine starts at the box
    xr.testing.assert_identical(cropped["x"].drop_vars("grid"), mask["x"].isel(i=offset[0]).drop_vars("grid"))
    np.testing.assert_allclose(cropped.brain.affine, theirs.affine)


def test_file_inputs_read_lazily(images, tmp_path):
    path = tmp_path / "bold.nii.gz"
    images["bold"].to_filename(path)
    bold = open_nifti(path, chunks=5)
    with raise_if_dask_computes():
        cleaned = image.clean_img(bold, detrend=True, standardize="zscore_sample")
    assert_labeled_like(cleaned, nilearn_image.clean_img(path, detrend=True, standardize="zscore_sample"), bold, atol=2e-5)


def test_bad_inputs_named():
    with pytest.raises(TypeError, match="imgs: expected a NIfTI path"):
        image.index_img(np.zeros((3, 3, 3, 2)), 0)
    with pytest.raises(ValueError, match="imgs: expected a 4D image"):
        image.index_img(nib.Nifti1Image(np.zeros((3, 3, 3)), np.eye(4)), 0)
    with pytest.raises(ValueError, match="threshold.*percent"):
        image.threshold_img(nib.Nifti1Image(np.ones((3, 3, 3)), np.eye(4)), "90")
    with pytest.raises(ValueError, match="copy_header_from"):
        image.math_img("a", a=nib.Nifti1Image(np.ones((3, 3, 3)), np.eye(4)), copy_header_from="b")
