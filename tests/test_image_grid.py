"""brainxr.image: resampling, smoothing and mean image against nilearn, eager and lazy."""

import warnings

import dask.array as dsa
import nibabel as nib
import numpy as np
import pytest
from nilearn import image as nilearn_image

from brainxr import image
from brainxr.nifti import from_nibabel
from brainxr.testing import raise_if_dask_computes

SOURCE_AFFINE = np.array([[3.0, 0, 0, -30], [0, 3, 0, -40], [0, 0, 3, -20], [0, 0, 0, 1]])
TARGET_AFFINE = np.array([[4.0, 0, 0, -31], [0, 4, 0, -38], [0, 0, 4, -21], [0, 0, 0, 1]])
TARGET_SHAPE = (9, 10, 8)


@pytest.fixture(scope="module")
def bold_img():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(12, 14, 10, 5)).astype(np.float32)
    data[2, 3, 4, 1] = np.nan
    return nib.Nifti1Image(data, SOURCE_AFFINE)


def lazy(img, chunk=2):
    return from_nibabel(img).chunk({"time": chunk})


@pytest.mark.parametrize("interpolation", ["nearest", "linear", "continuous"])
@pytest.mark.parametrize("clip", [True, False])
def test_resample_img_equals_nilearn(bold_img, interpolation, clip):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = nilearn_image.resample_img(
            bold_img, target_affine=TARGET_AFFINE, target_shape=TARGET_SHAPE, interpolation=interpolation, clip=clip
        ).get_fdata()
    eager = image.resample_img(bold_img, TARGET_AFFINE, TARGET_SHAPE, interpolation=interpolation, clip=clip)
    np.testing.assert_allclose(eager.values, expected, rtol=1e-6, atol=1e-6)
    assert np.array_equal(np.isnan(eager.values), np.isnan(expected))
    with raise_if_dask_computes():
        lazy_result = image.resample_img(lazy(bold_img), TARGET_AFFINE, TARGET_SHAPE, interpolation=interpolation, clip=clip)
    assert isinstance(lazy_result.data, dsa.Array)
    np.testing.assert_allclose(lazy_result.values, eager.values, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(lazy_result.brain.affine, TARGET_AFFINE)
    np.testing.assert_allclose(lazy_result["x"].values, -31 + 4 * np.arange(9))


def test_resample_rotated_source_and_labels_keep_values():
    rng = np.random.default_rng(1)
    angle = 0.2
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    affine = SOURCE_AFFINE.copy()
    affine[:3, :3] = SOURCE_AFFINE[:3, :3] @ rotation
    values = rng.normal(size=(12, 14, 10)).astype(np.float32)
    img = nib.Nifti1Image(values, affine)
    expected = nilearn_image.resample_img(img, target_affine=TARGET_AFFINE, target_shape=TARGET_SHAPE).get_fdata()
    np.testing.assert_allclose(image.resample_img(img, TARGET_AFFINE, TARGET_SHAPE).values, expected, atol=1e-6)

    labels = rng.integers(0, 6, size=(12, 14, 10)).astype(np.int16)
    labels_img = nib.Nifti1Image(labels, SOURCE_AFFINE)
    expected = nilearn_image.resample_img(
        labels_img, target_affine=TARGET_AFFINE, target_shape=TARGET_SHAPE, interpolation="nearest"
    ).get_fdata()
    result = image.resample_to_img(labels_img, nib.Nifti1Image(np.zeros(TARGET_SHAPE), TARGET_AFFINE), interpolation="nearest")
    assert result.dtype == np.int16
    np.testing.assert_array_equal(result.values, expected)


def test_resample_same_grid_is_a_no_op(bold_img):
    volume = from_nibabel(bold_img)
    assert image.resample_img(volume, SOURCE_AFFINE, (12, 14, 10)).data is volume.data


def test_resample_bad_arguments(bold_img):
    with pytest.raises(ValueError, match="interpolation"):
        image.resample_img(bold_img, TARGET_AFFINE, TARGET_SHAPE, interpolation="cubic")
    with pytest.raises(ValueError, match="target_shape"):
        image.resample_img(bold_img, TARGET_AFFINE, (9, 10))
    with pytest.raises(ValueError, match="target_affine"):
        image.resample_img(bold_img, np.eye(3), TARGET_SHAPE)


@pytest.mark.parametrize("fwhm", [6, [6, None, 3], "fast"])
def test_smooth_img_equals_nilearn(bold_img, fwhm):
    expected = nilearn_image.smooth_img(bold_img, fwhm).get_fdata()
    eager = image.smooth_img(bold_img, fwhm)
    np.testing.assert_allclose(eager.values, expected, rtol=1e-6, atol=1e-6)
    with raise_if_dask_computes():
        lazy_result = image.smooth_img(lazy(bold_img), fwhm)
    assert lazy_result.chunks[3] == (2, 2, 1)
    np.testing.assert_allclose(lazy_result.values, expected, rtol=1e-6, atol=1e-6)


def test_smooth_array_leaves_input_and_handles_integers(bold_img):
    values = np.asarray(bold_img.dataobj).copy()
    before = values.copy()
    image.smooth_array(values, SOURCE_AFFINE, 5)
    np.testing.assert_array_equal(values, before)
    ints = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    assert image.smooth_array(ints, np.eye(4), 2).dtype == np.float32
    with pytest.warns(UserWarning, match="fwhm"):
        assert image.smooth_img(bold_img, 0) is not None
    with pytest.raises(ValueError, match="fwhm"):
        image.smooth_img(bold_img, "slow")
    with pytest.raises(ValueError, match="fwhm"):
        image.smooth_img(bold_img, -2)


@pytest.mark.parametrize(
    "shape, dtype",
    [((6, 23, 27, 23), np.float32), ((23, 27, 23, 6), np.float32), ((3, 5, 2, 7), np.float32), ((2, 1, 4, 3), np.float64), ((9, 8, 7), np.float64)],
)
def test_compiled_gaussian_filter_equals_scipy_bit_for_bit(shape, dtype):
    """The compiled filter repeats scipy's operations in order: identical values (short axes, wide kernels,
    zero radius and the reflected ends included), along every axis."""
    from scipy import ndimage

    from brainxr._smoothing import gaussian_filter1d_inplace

    values = (np.random.default_rng(1).standard_normal(shape) * 1000).astype(dtype)
    for sigma in (0.64, 0.3, 2.5, 0.05):
        for axis in range(values.ndim):
            expected = values.copy()
            ndimage.gaussian_filter1d(expected, sigma, output=expected, axis=axis)
            np.testing.assert_array_equal(gaussian_filter1d_inplace(values.copy(), sigma, axis), expected)
    with pytest.raises(ValueError, match="C-contiguous"):
        gaussian_filter1d_inplace(np.asfortranarray(values), 1.0, 0)


def test_smooth_array_compiled_and_scipy_paths_agree(bold_img, monkeypatch):
    """Arrays above the size threshold take the compiled filter; the result is scipy's, bit for bit."""
    values = np.nan_to_num(np.asarray(bold_img.dataobj))
    monkeypatch.setattr(image, "_COMPILED_SMOOTHING_SIZE", 0)
    compiled = image.smooth_array(values, SOURCE_AFFINE, [6, 4, 5])
    monkeypatch.setattr(image, "_COMPILED_SMOOTHING_SIZE", np.inf)
    monkeypatch.setattr(image, "_numba_loaded", lambda: False)
    scipy_result = image.smooth_array(values, SOURCE_AFFINE, [6, 4, 5])
    np.testing.assert_array_equal(compiled, scipy_result)


def test_mean_img_equals_nilearn(bold_img):
    finite = nib.Nifti1Image(np.nan_to_num(bold_img.get_fdata()).astype(np.float32), SOURCE_AFFINE)
    expected = nilearn_image.mean_img(finite).get_fdata()
    np.testing.assert_allclose(image.mean_img(finite).values, expected, rtol=1e-6)
    with raise_if_dask_computes():
        lazy_mean = image.mean_img(lazy(finite))
    np.testing.assert_allclose(lazy_mean.values, expected, rtol=1e-5, atol=1e-6)
    assert image.index_img(finite, 2).shape == (12, 14, 10)
