"""brainxr.maskers against nilearn.maskers on the synthetic cohort, over a grid of options.

Tolerance: signals equal nilearn's within 1e-5, relative to their largest
magnitude. The cohort is stored as scaled int16 (fMRIPrep's usual output),
which nibabel, nilearn and brainxr all read as float64, so both pipelines
run in double precision. On float32 images both run in float32 and each
differs from the float64 result by up to a few 1e-5 after confound
regression; those are compared at 1e-4 (:func:`test_float32_images`).
"""

import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn import image as nilearn_image
from nilearn import maskers as nilearn_maskers

from brainxr import maskers
from brainxr.datasets import make_synthetic_cohort
from brainxr.interfaces.fmriprep import load_confounds
from brainxr.masking import compute_brain_mask

RTOL = 1e-5
CLEANING = {"standardize": "zscore_sample", "detrend": True, "low_pass": 0.1, "high_pass": 0.01, "t_r": 2.0}
# nilearn's Butterworth filter of every voxel takes tens of seconds: voxel-wise tests clean without it
VOXEL_CLEANING = {"standardize": "zscore_sample", "detrend": True}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return make_synthetic_cohort(
        tmp_path_factory.mktemp("cohort"), n_subjects=2, n_volumes=40, resolution=4, n_regions=40, n_maps=12, dtype="int16"
    )


@pytest.fixture(scope="module")
def run(cohort):
    return cohort.runs[0]


@pytest.fixture(scope="module")
def confounds(run):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_confounds(str(run.bold), strategy=("motion", "wm_csf", "scrub"), motion="basic", scrub=0, fd_threshold=0.3)


@pytest.fixture(scope="module")
def seeds(cohort):
    return pd.read_csv(cohort.atlas_coords_tsv, sep="\t")[["x", "y", "z"]].to_numpy()[:8]


@pytest.fixture(scope="module")
def coarse_labels(cohort):
    """The labels atlas on a 5 mm grid, to exercise resampling."""
    affine = np.diag([5.0, 5.0, 5.0, 1.0])
    affine[:3, 3] = (-88, -124, -70)
    return nilearn_image.resample_img(cohort.atlas_labels_img, target_affine=affine, target_shape=(37, 44, 37), interpolation="nearest")


def assert_signals_equal(result, expected, rtol=RTOL):
    if isinstance(expected, list):
        assert isinstance(result, list) and len(result) == len(expected)
        for one, other in zip(result, expected):
            assert_signals_equal(one, other, rtol)
        return
    result, expected = np.asarray(result), np.asarray(expected)
    assert result.shape == expected.shape
    assert result.dtype == expected.dtype, (result.dtype, expected.dtype)
    scale = max(float(np.abs(expected).max()), 1e-12)
    np.testing.assert_allclose(result, expected, rtol=rtol, atol=rtol * scale)


def both(nilearn_masker, brainxr_masker, imgs, **transform_kwargs):
    """fit_transform with nilearn and brainxr, warnings silenced; returns (expected, result, fitted brainxr)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = nilearn_masker.fit_transform(imgs, **transform_kwargs)
        result = brainxr_masker.fit_transform(imgs, **transform_kwargs)
    return expected, result, brainxr_masker


LABELS_OPTIONS = [
    {},
    {"strategy": "median", "smoothing_fwhm": 6},
    {"strategy": "standard_deviation"},
    {"strategy": "maximum", "resampling_target": None},
    {"high_variance_confounds": True, "standardize": "psc"},
    {"standardize_confounds": False, "detrend": True, "clean_args": {"filter": "cosine"}, "high_pass": 0.02, "t_r": 2.0},
]


@pytest.mark.parametrize("options", LABELS_OPTIONS)
def test_labels_masker(cohort, run, options):
    expected, result, masker = both(
        nilearn_maskers.NiftiLabelsMasker(cohort.atlas_labels_img, lut=cohort.atlas_labels_tsv, **options),
        maskers.NiftiLabelsMasker(cohort.atlas_labels_img, lut=cohort.atlas_labels_tsv, **options),
        str(run.bold),
    )
    assert_signals_equal(result, expected)


def test_labels_masker_cleaning_confounds_sample_mask_and_attributes(cohort, run, confounds):
    confound_table, sample_mask = confounds
    assert sample_mask is not None and len(sample_mask) < 40
    reference = nilearn_maskers.NiftiLabelsMasker(cohort.atlas_labels_img, labels=["Background", *cohort.region_names[:40]], **CLEANING)
    expected, result, masker = both(
        reference,
        maskers.NiftiLabelsMasker(cohort.atlas_labels_img, labels=["Background", *cohort.region_names[:40]], **CLEANING),
        str(run.bold),
        confounds=confound_table,
        sample_mask=sample_mask,
    )
    assert_signals_equal(result, expected)
    assert masker.region_names_ == reference.region_names_
    assert masker.region_ids_ == reference.region_ids_
    assert masker.labels_ == reference.labels_
    assert masker.n_elements_ == reference.n_elements_
    assert list(masker.get_feature_names_out()) == list(reference.get_feature_names_out())
    pd.testing.assert_frame_equal(masker.lut_[["index", "name"]], reference.lut_[["index", "name"]], check_dtype=False)
    np.testing.assert_array_equal(masker.labels_img_.get_fdata(), reference.labels_img_.get_fdata())
    back = masker.inverse_transform(result)
    np.testing.assert_allclose(back.get_fdata(), reference.inverse_transform(expected).get_fdata(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("resampling_target", ["data", "labels"])
def test_labels_masker_resampling_and_mask(cohort, run, coarse_labels, resampling_target):
    options = {"mask_img": run.mask, "resampling_target": resampling_target}
    expected, result, masker = both(
        nilearn_maskers.NiftiLabelsMasker(coarse_labels, **options),
        maskers.NiftiLabelsMasker(coarse_labels, **options),
        str(run.bold),
    )
    assert_signals_equal(result, expected)
    reference = nilearn_maskers.NiftiLabelsMasker(coarse_labels, **options).fit(str(run.bold))
    np.testing.assert_array_equal(masker.labels_img_.get_fdata(), reference.labels_img_.get_fdata())
    np.testing.assert_array_equal(masker.mask_img_.get_fdata(), reference.mask_img_.get_fdata())


@pytest.mark.parametrize(
    "options",
    [{}, dict(CLEANING), {"mask_img": "run", "smoothing_fwhm": 5}, {"resampling_target": "maps", "standardize": "psc"}],
)
def test_maps_masker(cohort, run, options):
    options = dict(options)
    if options.get("mask_img") == "run":
        options["mask_img"] = run.mask
    expected, result, masker = both(
        nilearn_maskers.NiftiMapsMasker(cohort.atlas_maps_img, **options),
        maskers.NiftiMapsMasker(cohort.atlas_maps_img, **options),
        str(run.bold),
    )
    assert_signals_equal(result, expected)
    assert masker.n_elements_ == 12


def test_maps_masker_other_grid_and_inverse(cohort, run):
    affine = np.diag([5.0, 5.0, 5.0, 1.0])
    affine[:3, 3] = (-88, -124, -70)
    coarse_maps = nilearn_image.resample_img(cohort.atlas_maps_img, target_affine=affine, target_shape=(37, 44, 37))
    reference = nilearn_maskers.NiftiMapsMasker(coarse_maps)
    expected, result, masker = both(reference, maskers.NiftiMapsMasker(coarse_maps), str(run.bold))
    assert_signals_equal(result, expected)
    np.testing.assert_allclose(masker.maps_img_.get_fdata(), reference.maps_img_.get_fdata(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        masker.inverse_transform(result).get_fdata(), reference.inverse_transform(expected).get_fdata(), rtol=1e-4, atol=1e-3
    )


@pytest.mark.parametrize(
    "options",
    [{"radius": None}, {"radius": 8, **CLEANING}, {"radius": 6, "mask_img": "run", "smoothing_fwhm": 6}, {"radius": 10, "allow_overlap": True}],
)
def test_spheres_masker(run, seeds, options):
    options = dict(options)
    if options.get("mask_img") == "run":
        options["mask_img"] = run.mask
    expected, result, masker = both(
        nilearn_maskers.NiftiSpheresMasker(seeds, **options), maskers.NiftiSpheresMasker(seeds, **options), str(run.bold)
    )
    assert_signals_equal(result, expected)
    assert masker.seeds_ == [list(seed) for seed in seeds]


def test_spheres_masker_inverse_transform(run, seeds):
    reference = nilearn_maskers.NiftiSpheresMasker(seeds[:3], radius=8, mask_img=run.mask)
    expected, result, masker = both(reference, maskers.NiftiSpheresMasker(seeds[:3], radius=8, mask_img=run.mask), str(run.bold))
    np.testing.assert_allclose(
        masker.inverse_transform(result).get_fdata(), reference.inverse_transform(expected).get_fdata(), rtol=1e-5
    )
    with pytest.raises(ValueError, match="mask_img"):
        maskers.NiftiSpheresMasker(seeds[:3], radius=8).fit().inverse_transform(result)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"mask_strategy": "epi", "smoothing_fwhm": 6, **VOXEL_CLEANING},
        {"mask_img": "run", "high_variance_confounds": True, "detrend": True},
        {"mask_strategy": "background", "mask_args": {"opening": 1}, "target_affine": "5mm", "target_shape": (37, 44, 37)},
    ],
)
def test_nifti_masker(run, options):
    options = dict(options)
    if options.get("mask_img") == "run":
        options["mask_img"] = run.mask
    if options.get("target_affine") == "5mm":
        options["target_affine"] = np.diag([5.0, 5.0, 5.0, 1.0])
        options["target_affine"][:3, 3] = (-88, -124, -70)
    reference = nilearn_maskers.NiftiMasker(**options)
    expected, result, masker = both(reference, maskers.NiftiMasker(**options), str(run.bold))
    np.testing.assert_array_equal(masker.mask_img_.get_fdata(), reference.mask_img_.get_fdata())
    assert masker.n_elements_ == reference.n_elements_
    assert_signals_equal(result, expected)
    np.testing.assert_allclose(masker.inverse_transform(result[:2]).get_fdata(), reference.inverse_transform(expected[:2]).get_fdata(), rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_nifti_masker_template_strategy(run):
    masker = maskers.NiftiMasker(mask_strategy="whole-brain-template", standardize="zscore_sample")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = masker.fit_transform(str(run.bold))
    np.testing.assert_array_equal(masker.mask_img_.get_fdata().astype(bool), compute_brain_mask(str(run.bold)).values)
    expected = nilearn_maskers.NiftiMasker(mask_img=masker.mask_img_, standardize="zscore_sample").fit_transform(str(run.bold))
    assert_signals_equal(result, expected)


def test_multi_maskers(cohort, confounds):
    imgs = [str(one.bold) for one in cohort.runs]
    confound_list = [confounds[0], None]
    sample_masks = [confounds[1], None]
    kwargs = {"confounds": confound_list, "sample_mask": sample_masks}
    pairs = [
        (
            nilearn_maskers.MultiNiftiMasker(mask_strategy="epi", **VOXEL_CLEANING),
            maskers.MultiNiftiMasker(mask_strategy="epi", n_jobs=2, **VOXEL_CLEANING),
        ),
        (nilearn_maskers.MultiNiftiLabelsMasker(cohort.atlas_labels_img, **CLEANING), maskers.MultiNiftiLabelsMasker(cohort.atlas_labels_img, **CLEANING)),
        (nilearn_maskers.MultiNiftiMapsMasker(cohort.atlas_maps_img, **CLEANING), maskers.MultiNiftiMapsMasker(cohort.atlas_maps_img, **CLEANING)),
    ]
    for reference, masker in pairs:
        expected, result, _ = both(reference, masker, imgs, **kwargs)
        assert_signals_equal(result, expected)
        # one image gives one array
        assert_signals_equal(masker.transform(imgs[1]), reference.transform(imgs[1]))
    with pytest.raises(ValueError, match="number of confounds"):
        pairs[1][1].transform(imgs, confounds=[None])


def test_list_of_3d_images_and_3d_image(cohort, run):
    volumes = [nilearn_image.index_img(str(run.bold), index) for index in range(5)]
    expected, result, masker = both(
        nilearn_maskers.NiftiLabelsMasker(cohort.atlas_labels_img), maskers.NiftiLabelsMasker(cohort.atlas_labels_img), volumes
    )
    assert_signals_equal(result, expected)
    single = masker.transform(volumes[0])
    assert single.shape == (40,)
    np.testing.assert_allclose(single, expected[0], rtol=1e-6)
    other = nib.Nifti1Image(np.zeros((5, 5, 5), np.float32), np.eye(4))
    with pytest.raises(ValueError, match=r"imgs\[2\]: shape \(5, 5, 5\)"):
        masker.transform([volumes[0], volumes[1], other])


def test_float32_images(tmp_path_factory, confounds):
    cohort = make_synthetic_cohort(tmp_path_factory.mktemp("float32"), n_subjects=1, n_volumes=40, resolution=4, n_regions=40, n_maps=12)
    bold = str(cohort.runs[0].bold)
    expected, result, _ = both(
        nilearn_maskers.NiftiLabelsMasker(cohort.atlas_labels_img), maskers.NiftiLabelsMasker(cohort.atlas_labels_img), bold
    )
    assert result.dtype == np.float32
    assert_signals_equal(result, expected)
    expected, result, _ = both(
        nilearn_maskers.NiftiMapsMasker(cohort.atlas_maps_img, **CLEANING),
        maskers.NiftiMapsMasker(cohort.atlas_maps_img, **CLEANING),
        bold,
        confounds=confounds[0],
        sample_mask=confounds[1],
    )
    assert_signals_equal(result, expected, rtol=1e-4)
