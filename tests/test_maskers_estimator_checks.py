"""scikit-learn's and nilearn's estimator checks on every masker, as nilearn's own test suite runs them.

scikit-learn's checks run with nilearn's list of the checks that do not apply
to image estimators (``return_expected_failed_checks``); nilearn's own
checks (``nilearn_check_estimator``: fitting, dtypes, cleaning, confounds,
sample masks, reports, pickling, ...) run on brainxr's maskers through the
same scikit-learn tags nilearn reads (``estimator_type="masker"``,
``input_tags.niimg_like``).

The checks brainxr does not pass yet are listed in ``KNOWN_FAILURES`` with
why, and run as strict xfails: a check that starts passing must leave the
list, a passing check that breaks fails the suite.
"""

import warnings

import matplotlib
import pytest

matplotlib.use("Agg")

from nilearn._utils.estimator_checks import nilearn_check_estimator, return_expected_failed_checks  # noqa: E402
from nilearn.conftest import _img_labels, _img_maps  # noqa: E402
from sklearn.utils.estimator_checks import estimator_checks_generator  # noqa: E402

from brainxr import maskers  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore")]

#: scikit-learn's checks run on the defaults, nilearn's on maskers given their regions (as nilearn's tests do)
ESTIMATORS = [
    (maskers.NiftiMasker(), maskers.NiftiMasker()),
    (maskers.MultiNiftiMasker(), maskers.MultiNiftiMasker()),
    (maskers.NiftiLabelsMasker(), maskers.NiftiLabelsMasker(labels_img=_img_labels())),
    (maskers.NiftiMapsMasker(), maskers.NiftiMapsMasker(maps_img=_img_maps())),
    (maskers.NiftiSpheresMasker(seeds=[(1, 1, 1)]), maskers.NiftiSpheresMasker(seeds=[(1, 1, 1)])),
    (maskers.MultiNiftiLabelsMasker(), maskers.MultiNiftiLabelsMasker(labels_img=_img_labels())),
    (maskers.MultiNiftiMapsMasker(), maskers.MultiNiftiMapsMasker(maps_img=_img_maps())),
]

#: (masker, check) -> why brainxr does not pass it yet
KNOWN_FAILURES: dict[tuple[str, str], str] = {
    ("NiftiMasker", "nilearn:check_doc_attributes"): "ValueError: Missing docstring for parameters [smoothing_fwhm, standardize, standardize_confounds, detrend, ...",
    ("NiftiMasker", "nilearn:check_set_output"): "ValueError: set_output: transform must be one of ('default', 'pandas', 'xarray'), got 'polars'",
    ("NiftiMasker", "nilearn:check_tags"): "AttributeError: 'NiftiMasker' object has no attribute '_more_tags'",
    ("NiftiMasker", "nilearn:check_doc_link"): "AssertionError: Doc link '' does not match expected pattern 'https://nilearn\\.github\\.io/(dev|stable|\\d+...",
    ("NiftiMasker", "nilearn:check_img_estimator_dtypes"): "ValueError: mask_img: the mask is empty (it masks all data)",
    ("NiftiMasker", "nilearn:check_img_estimator_dtypes_transform"): "ValueError: mask_img: the mask is empty (it masks all data)",
    ("NiftiMasker", "nilearn:check_img_estimator_verbose"): "AssertionError (a nilearn behaviour not matched)",
    ("NiftiMasker", "nilearn:check_img_estimator_dtypes_inverse_transform"): "ValueError: Image data has type int64, which may cause incompatibilities with other tools. To use this type...",
    ("NiftiMasker", "nilearn:check_masker_empty_data_messages"): "AssertionError: Regex pattern did not match.",
    ("NiftiMasker", "nilearn:check_masker_fit_with_empty_mask"): "AssertionError: Regex pattern did not match.",
    ("NiftiMasker", "nilearn:check_masker_fit_with_non_finite_in_mask"): "Failed: DID NOT WARN. No warnings of type (<class 'UserWarning'>,) were emitted.",
    ("NiftiMasker", "nilearn:check_masker_generate_report"): "AttributeError: 'NiftiMasker' object has no attribute '_report_content'",
    ("NiftiMasker", "nilearn:check_masker_generate_report_false"): "AttributeError: 'NiftiMasker' object has no attribute '_has_report_data'",
    ("NiftiMasker", "nilearn:check_masker_joblib_cache"): "AssertionError (a nilearn behaviour not matched)",
    ("NiftiMasker", "nilearn:check_masker_mask_img"): "AssertionError (a nilearn behaviour not matched)",
    ("NiftiMasker", "nilearn:check_masker_mask_img_from_imgs"): "AssertionError (a nilearn behaviour not matched)",
    ("NiftiMasker", "nilearn:check_masker_no_mask_no_img"): "ValueError: Parameter 'imgs' must be provided to NiftiMasker.fit() if no mask is passed to mask_img.",
    ("NiftiMasker", "nilearn:check_masker_transformer"): "AttributeError: 'NiftiMasker' object has no attribute 'transform_single_imgs'",
    ("NiftiMasker", "nilearn:check_masker_transformer_high_variance_confounds"): "ValueError: confounds file '<tmp>' has an incorrect length: the signals have 10 time points, the confounds 11",
    ("NiftiMasker", "nilearn:check_masker_verbose"): "AssertionError (a nilearn behaviour not matched)",
    ("NiftiMasker", "nilearn:check_masker_with_confounds"): "ValueError: confounds contain NaN or infinite values in 'column 0', 'column 1', 'column 2', 'column 4', 'co...",
    ("NiftiMasker", "nilearn:check_nifti_masker_fit_transform_5d"): "ValueError: imgs[0]: expected 3D images to concatenate into one run, got shape (7, 8, 9, 5); pass 4D runs o...",
    ("NiftiMasker", "nilearn:check_nifti_masker_generate_report_after_fit_with_only_mask"): "AssertionError (a nilearn behaviour not matched)",
    ("MultiNiftiMasker", "nilearn:check_doc_attributes"): "ValueError: Missing docstring for parameters [mask_img, runs, smoothing_fwhm, standardize, standardize_conf...",
    ("MultiNiftiMasker", "nilearn:check_set_output"): "ValueError: set_output: transform must be one of ('default', 'pandas', 'xarray'), got 'polars'",
    ("MultiNiftiMasker", "nilearn:check_tags"): "AttributeError: 'MultiNiftiMasker' object has no attribute '_more_tags'",
    ("MultiNiftiMasker", "nilearn:check_doc_link"): "AssertionError: Doc link '' does not match expected pattern 'https://nilearn\\.github\\.io/(dev|stable|\\d+...",
    ("MultiNiftiMasker", "nilearn:check_img_estimator_dtypes"): "ValueError: mask_img: the mask is empty (it masks all data)",
    ("MultiNiftiMasker", "nilearn:check_img_estimator_dtypes_transform"): "ValueError: mask_img: the mask is empty (it masks all data)",
    ("MultiNiftiMasker", "nilearn:check_img_estimator_clean_dtype"): "TypeError: 'confounds' must be a None or a list. Got ndarray.",
    ("MultiNiftiMasker", "nilearn:check_img_estimator_verbose"): "AssertionError (a nilearn behaviour not matched)",
    ("MultiNiftiMasker", "nilearn:check_img_estimator_dtypes_inverse_transform"): "ValueError: Image data has type int64, which may cause incompatibilities with other tools. To use this type...",
    ("MultiNiftiMasker", "nilearn:check_masker_empty_data_messages"): "AssertionError: Regex pattern did not match.",
    ("MultiNiftiMasker", "nilearn:check_masker_fit_with_empty_mask"): "AssertionError: Regex pattern did not match.",
    ("MultiNiftiMasker", "nilearn:check_masker_fit_with_non_finite_in_mask"): "Failed: DID NOT WARN. No warnings of type (<class 'UserWarning'>,) were emitted.",
    ("MultiNiftiMasker", "nilearn:check_masker_generate_report"): "AttributeError: 'MultiNiftiMasker' object has no attribute '_report_content'",
    ("MultiNiftiMasker", "nilearn:check_masker_generate_report_false"): "AttributeError: 'MultiNiftiMasker' object has no attribute '_has_report_data'",
    ("MultiNiftiMasker", "nilearn:check_masker_joblib_cache"): "AssertionError (a nilearn behaviour not matched)",
    ("MultiNiftiMasker", "nilearn:check_masker_mask_img"): "AssertionError (a nilearn behaviour not matched)",
    ("MultiNiftiMasker", "nilearn:check_masker_mask_img_from_imgs"): "AssertionError (a nilearn behaviour not matched)",
    ("MultiNiftiMasker", "nilearn:check_masker_no_mask_no_img"): "ValueError: Parameter 'imgs' must be provided to MultiNiftiMasker.fit() if no mask is passed to mask_img.",
    ("MultiNiftiMasker", "nilearn:check_masker_transformer"): "AttributeError: 'MultiNiftiMasker' object has no attribute 'transform_single_imgs'",
    ("MultiNiftiMasker", "nilearn:check_masker_transformer_high_variance_confounds"): "TypeError: 'confounds' must be a None or a list. Got ndarray.",
    ("MultiNiftiMasker", "nilearn:check_masker_verbose"): "AssertionError (a nilearn behaviour not matched)",
    ("MultiNiftiMasker", "nilearn:check_masker_transformer_sample_mask"): "TypeError: 'sample_mask' must be a None or a list. Got ndarray.",
    ("MultiNiftiMasker", "nilearn:check_masker_with_confounds"): "TypeError: 'confounds' must be a None or a list. Got ndarray.",
    ("MultiNiftiMasker", "nilearn:check_nifti_masker_fit_transform"): "AssertionError (a nilearn behaviour not matched)",
    ("MultiNiftiMasker", "nilearn:check_nifti_masker_fit_transform_5d"): "Failed: DID NOT RAISE DimensionError",
    ("MultiNiftiMasker", "nilearn:check_nifti_masker_generate_report_after_fit_with_only_mask"): "AssertionError (a nilearn behaviour not matched)",
    ("NiftiLabelsMasker", "nilearn:check_doc_attributes"): "ValueError: Missing docstring for parameters [low_pass, high_pass, t_r, memory, memory_level] in estimator ...",
    ("NiftiLabelsMasker", "nilearn:check_set_output"): "ValueError: set_output: transform must be one of ('default', 'pandas', 'xarray'), got 'polars'",
    ("NiftiLabelsMasker", "nilearn:check_tags"): "AttributeError: 'NiftiLabelsMasker' object has no attribute '_more_tags'",
    ("NiftiLabelsMasker", "nilearn:check_doc_link"): "AssertionError: Doc link '' does not match expected pattern 'https://nilearn\\.github\\.io/(dev|stable|\\d+...",
    ("NiftiLabelsMasker", "nilearn:check_img_estimator_dict_unchanged"): "ValueError: Estimator changes '__dict__' keys during 'transform'.",
    ("NiftiLabelsMasker", "nilearn:check_img_estimator_verbose"): "AssertionError (a nilearn behaviour not matched)",
    ("NiftiLabelsMasker", "nilearn:check_img_estimator_dtypes_inverse_transform"): "ValueError: Image data has type int64, which may cause incompatibilities with other tools. To use this type...",
    ("NiftiLabelsMasker", "nilearn:check_masker_empty_data_messages"): "AssertionError: Regex pattern did not match.",
    ("NiftiLabelsMasker", "nilearn:check_masker_fit_with_empty_mask"): "AssertionError: Regex pattern did not match.",
    ("NiftiLabelsMasker", "nilearn:check_masker_fit_with_non_finite_in_mask"): "Failed: DID NOT WARN. No warnings of type (<class 'UserWarning'>,) were emitted.",
    ("NiftiLabelsMasker", "nilearn:check_masker_generate_report"): "AttributeError: 'NiftiLabelsMasker' object has no attribute '_report_content'",
    ("NiftiLabelsMasker", "nilearn:check_masker_generate_report_false"): "AttributeError: 'NiftiLabelsMasker' object has no attribute '_has_report_data'",
    ("NiftiLabelsMasker", "nilearn:check_masker_joblib_cache"): "AssertionError (a nilearn behaviour not matched)",
    ("NiftiLabelsMasker", "nilearn:check_masker_mask_img"): "AssertionError (a nilearn behaviour not matched)",
    ("NiftiLabelsMasker", "nilearn:check_masker_transform_resampling"): "AssertionError (a nilearn behaviour not matched)",
    ("NiftiLabelsMasker", "nilearn:check_masker_transformer"): "AttributeError: 'NiftiLabelsMasker' object has no attribute 'transform_single_imgs'",
    ("NiftiLabelsMasker", "nilearn:check_masker_transformer_high_variance_confounds"): "ValueError: confounds file '<tmp>' has an incorrect length: the signals have 10 time points, the confounds 11",
    ("NiftiLabelsMasker", "nilearn:check_masker_verbose"): "AssertionError (a nilearn behaviour not matched)",
    ("NiftiLabelsMasker", "nilearn:check_masker_with_confounds"): "ValueError: confounds contain NaN or infinite values in 'column 0', 'column 1', 'column 2', 'column 4', 'co...",
    ("NiftiLabelsMasker", "nilearn:check_nifti_masker_fit_transform_5d"): "ValueError: imgs[0]: expected 3D images to concatenate into one run, got shape (7, 8, 9, 5); pass 4D runs o...",
    ("NiftiLabelsMasker", "nilearn:check_nifti_masker_generate_report_after_fit_with_only_mask"): "AssertionError (a nilearn behaviour not matched)",
    ("NiftiMapsMasker", "nilearn:check_doc_attributes"): "ValueError: Missing docstring for parameters [smoothing_fwhm, standardize, standardize_confounds, high_vari...",
    ("NiftiMapsMasker", "nilearn:check_set_output"): "ValueError: set_output: transform must be one of ('default', 'pandas', 'xarray'), got 'polars'",
    ("NiftiMapsMasker", "nilearn:check_tags"): "AttributeError: 'NiftiMapsMasker' object has no attribute '_more_tags'",
    ("NiftiMapsMasker", "nilearn:check_doc_link"): "AssertionError: Doc link '' does not match expected pattern 'https://nilearn\\.github\\.io/(dev|stable|\\d+...",
    ("NiftiMapsMasker", "nilearn:check_img_estimator_verbose"): "AssertionError (a nilearn behaviour not matched)",
    ("NiftiMapsMasker", "nilearn:check_img_estimator_dtypes_inverse_transform"): "ValueError: Image data has type int64, which may cause incompatibilities with other tools. To use this type...",
    ("NiftiMapsMasker", "nilearn:check_masker_empty_data_messages"): "AssertionError: Regex pattern did not match.",
    ("NiftiMapsMasker", "nilearn:check_masker_fit_with_empty_mask"): "AssertionError: Regex pattern did not match.",
    ("NiftiMapsMasker", "nilearn:check_masker_fit_with_non_finite_in_mask"): "Failed: DID NOT WARN. No warnings of type (<class 'UserWarning'>,) were emitted.",
    ("NiftiMapsMasker", "nilearn:check_masker_generate_report"): "AttributeError: 'NiftiMapsMasker' object has no attribute '_report_content'",
    ("NiftiMapsMasker", "nilearn:check_masker_generate_report_false"): "AttributeError: 'NiftiMapsMasker' object has no attribute '_has_report_data'",
    ("NiftiMapsMasker", "nilearn:check_masker_joblib_cache"): "AssertionError (a nilearn behaviour not matched)",
    ("NiftiMapsMasker", "nilearn:check_masker_mask_img"): "AssertionError (a nilearn behaviour not matched)",
    ("NiftiMapsMasker", "nilearn:check_masker_transform_resampling"): "AssertionError (a nilearn behaviour not matched)",
    ("NiftiMapsMasker", "nilearn:check_masker_transformer"): "AttributeError: 'NiftiMapsMasker' object has no attribute 'transform_single_imgs'",
    ("NiftiMapsMasker", "nilearn:check_masker_transformer_high_variance_confounds"): "ValueError: confounds file '<tmp>' has an incorrect length: the signals have 10 time points, the confounds 11",
    ("NiftiMapsMasker", "nilearn:check_masker_verbose"): "AssertionError (a nilearn behaviour not matched)",
    ("NiftiMapsMasker", "nilearn:check_masker_with_confounds"): "ValueError: confounds contain NaN or infinite values in 'column 0', 'column 1', 'column 2', 'column 4', 'co...",
    ("NiftiMapsMasker", "nilearn:check_nifti_masker_fit_transform_5d"): "ValueError: imgs[0]: expected 3D images to concatenate into one run, got shape (7, 8, 9, 5); pass 4D runs o...",
    ("NiftiMapsMasker", "nilearn:check_nifti_masker_generate_report_after_fit_with_only_mask"): "AssertionError (a nilearn behaviour not matched)",
    ("NiftiSpheresMasker", "nilearn:check_doc_attributes"): "ValueError: Missing docstring for parameters [smoothing_fwhm, standardize, standardize_confounds, high_vari...",
    ("NiftiSpheresMasker", "nilearn:check_set_output"): "ValueError: Please provide mask_img at initialization to provide a reference for the inverse_transform.",
    ("NiftiSpheresMasker", "nilearn:check_tags"): "AttributeError: 'NiftiSpheresMasker' object has no attribute '_more_tags'",
    ("NiftiSpheresMasker", "nilearn:check_doc_link"): "AssertionError: Doc link '' does not match expected pattern 'https://nilearn\\.github\\.io/(dev|stable|\\d+...",
    ("NiftiSpheresMasker", "nilearn:check_img_estimator_dtype_bool"): "ValueError: Please provide mask_img at initialization to provide a reference for the inverse_transform.",
    ("NiftiSpheresMasker", "nilearn:check_img_estimator_pickle"): "ValueError: Please provide mask_img at initialization to provide a reference for the inverse_transform.",
    ("NiftiSpheresMasker", "nilearn:check_img_estimator_verbose"): "AssertionError (a nilearn behaviour not matched)",
    ("NiftiSpheresMasker", "nilearn:check_img_estimator_dtypes_inverse_transform"): "ValueError: Please provide mask_img at initialization to provide a reference for the inverse_transform.",
    ("NiftiSpheresMasker", "nilearn:check_masker_empty_data_messages"): "Failed: DID NOT RAISE ValueError",
    ("NiftiSpheresMasker", "nilearn:check_masker_fit_with_empty_mask"): "AssertionError: Regex pattern did not match.",
    ("NiftiSpheresMasker", "nilearn:check_masker_fit_with_non_finite_in_mask"): "Failed: DID NOT WARN. No warnings of type (<class 'UserWarning'>,) were emitted.",
    ("NiftiSpheresMasker", "nilearn:check_masker_generate_report"): "AttributeError: 'NiftiSpheresMasker' object has no attribute '_report_content'",
    ("NiftiSpheresMasker", "nilearn:check_masker_generate_report_false"): "AttributeError: 'NiftiSpheresMasker' object has no attribute '_has_report_data'",
    ("NiftiSpheresMasker", "nilearn:check_masker_inverse_transform"): "ValueError: Please provide mask_img at initialization to provide a reference for the inverse_transform.",
    ("NiftiSpheresMasker", "nilearn:check_masker_joblib_cache"): "AssertionError (a nilearn behaviour not matched)",
    ("NiftiSpheresMasker", "nilearn:check_masker_mask_img"): "AssertionError (a nilearn behaviour not matched)",
    ("NiftiSpheresMasker", "nilearn:check_masker_transformer"): "AttributeError: 'NiftiSpheresMasker' object has no attribute 'transform_single_imgs'",
    ("NiftiSpheresMasker", "nilearn:check_masker_transformer_high_variance_confounds"): "ValueError: confounds file '<tmp>' has an incorrect length: the signals have 10 time points, the confounds 11",
    ("NiftiSpheresMasker", "nilearn:check_masker_verbose"): "AssertionError (a nilearn behaviour not matched)",
    ("NiftiSpheresMasker", "nilearn:check_masker_with_confounds"): "ValueError: confounds contain NaN or infinite values in 'column 0', 'column 1', 'column 2', 'column 4', 'co...",
    ("NiftiSpheresMasker", "nilearn:check_nifti_masker_fit_transform_5d"): "ValueError: imgs[0]: expected 3D images to concatenate into one run, got shape (7, 8, 9, 5); pass 4D runs o...",
    ("NiftiSpheresMasker", "nilearn:check_nifti_masker_generate_report_after_fit_with_only_mask"): "AssertionError (a nilearn behaviour not matched)",
    ("MultiNiftiLabelsMasker", "nilearn:check_doc_attributes"): "ValueError: Missing docstring for parameters [labels_img, labels, lut, background_label, mask_img, smoothin...",
    ("MultiNiftiLabelsMasker", "nilearn:check_set_output"): "ValueError: set_output: transform must be one of ('default', 'pandas', 'xarray'), got 'polars'",
    ("MultiNiftiLabelsMasker", "nilearn:check_tags"): "AttributeError: 'MultiNiftiLabelsMasker' object has no attribute '_more_tags'",
    ("MultiNiftiLabelsMasker", "nilearn:check_doc_link"): "AssertionError: Doc link '' does not match expected pattern 'https://nilearn\\.github\\.io/(dev|stable|\\d+...",
    ("MultiNiftiLabelsMasker", "nilearn:check_img_estimator_clean_dtype"): "TypeError: 'confounds' must be a None or a list. Got ndarray.",
    ("MultiNiftiLabelsMasker", "nilearn:check_img_estimator_dict_unchanged"): "ValueError: Estimator changes '__dict__' keys during 'transform'.",
    ("MultiNiftiLabelsMasker", "nilearn:check_img_estimator_verbose"): "AssertionError (a nilearn behaviour not matched)",
    ("MultiNiftiLabelsMasker", "nilearn:check_img_estimator_dtypes_inverse_transform"): "ValueError: Image data has type int64, which may cause incompatibilities with other tools. To use this type...",
    ("MultiNiftiLabelsMasker", "nilearn:check_masker_empty_data_messages"): "AssertionError: Regex pattern did not match.",
    ("MultiNiftiLabelsMasker", "nilearn:check_masker_fit_with_empty_mask"): "AssertionError: Regex pattern did not match.",
    ("MultiNiftiLabelsMasker", "nilearn:check_masker_fit_with_non_finite_in_mask"): "Failed: DID NOT WARN. No warnings of type (<class 'UserWarning'>,) were emitted.",
    ("MultiNiftiLabelsMasker", "nilearn:check_masker_generate_report"): "AttributeError: 'MultiNiftiLabelsMasker' object has no attribute '_report_content'",
    ("MultiNiftiLabelsMasker", "nilearn:check_masker_generate_report_false"): "AttributeError: 'MultiNiftiLabelsMasker' object has no attribute '_has_report_data'",
    ("MultiNiftiLabelsMasker", "nilearn:check_masker_joblib_cache"): "AssertionError (a nilearn behaviour not matched)",
    ("MultiNiftiLabelsMasker", "nilearn:check_masker_mask_img"): "AssertionError (a nilearn behaviour not matched)",
    ("MultiNiftiLabelsMasker", "nilearn:check_masker_transform_resampling"): "AssertionError (a nilearn behaviour not matched)",
    ("MultiNiftiLabelsMasker", "nilearn:check_masker_transformer"): "AttributeError: 'MultiNiftiLabelsMasker' object has no attribute 'transform_single_imgs'",
    ("MultiNiftiLabelsMasker", "nilearn:check_masker_transformer_high_variance_confounds"): "TypeError: 'confounds' must be a None or a list. Got ndarray.",
    ("MultiNiftiLabelsMasker", "nilearn:check_masker_verbose"): "AssertionError (a nilearn behaviour not matched)",
    ("MultiNiftiLabelsMasker", "nilearn:check_masker_transformer_sample_mask"): "TypeError: 'sample_mask' must be a None or a list. Got ndarray.",
    ("MultiNiftiLabelsMasker", "nilearn:check_masker_with_confounds"): "TypeError: 'confounds' must be a None or a list. Got ndarray.",
    ("MultiNiftiLabelsMasker", "nilearn:check_nifti_masker_fit_transform"): "AssertionError (a nilearn behaviour not matched)",
    ("MultiNiftiLabelsMasker", "nilearn:check_nifti_masker_fit_transform_5d"): "Failed: DID NOT RAISE DimensionError",
    ("MultiNiftiLabelsMasker", "nilearn:check_nifti_masker_generate_report_after_fit_with_only_mask"): "AssertionError (a nilearn behaviour not matched)",
    ("MultiNiftiMapsMasker", "nilearn:check_doc_attributes"): "ValueError: Missing docstring for parameters [maps_img, mask_img, allow_overlap, smoothing_fwhm, standardiz...",
    ("MultiNiftiMapsMasker", "nilearn:check_set_output"): "ValueError: set_output: transform must be one of ('default', 'pandas', 'xarray'), got 'polars'",
    ("MultiNiftiMapsMasker", "nilearn:check_tags"): "AttributeError: 'MultiNiftiMapsMasker' object has no attribute '_more_tags'",
    ("MultiNiftiMapsMasker", "nilearn:check_doc_link"): "AssertionError: Doc link '' does not match expected pattern 'https://nilearn\\.github\\.io/(dev|stable|\\d+...",
    ("MultiNiftiMapsMasker", "nilearn:check_img_estimator_clean_dtype"): "TypeError: 'confounds' must be a None or a list. Got ndarray.",
    ("MultiNiftiMapsMasker", "nilearn:check_img_estimator_verbose"): "AssertionError (a nilearn behaviour not matched)",
    ("MultiNiftiMapsMasker", "nilearn:check_img_estimator_dtypes_inverse_transform"): "ValueError: Image data has type int64, which may cause incompatibilities with other tools. To use this type...",
    ("MultiNiftiMapsMasker", "nilearn:check_masker_empty_data_messages"): "AssertionError: Regex pattern did not match.",
    ("MultiNiftiMapsMasker", "nilearn:check_masker_fit_with_empty_mask"): "AssertionError: Regex pattern did not match.",
    ("MultiNiftiMapsMasker", "nilearn:check_masker_fit_with_non_finite_in_mask"): "Failed: DID NOT WARN. No warnings of type (<class 'UserWarning'>,) were emitted.",
    ("MultiNiftiMapsMasker", "nilearn:check_masker_generate_report"): "AttributeError: 'MultiNiftiMapsMasker' object has no attribute '_report_content'",
    ("MultiNiftiMapsMasker", "nilearn:check_masker_generate_report_false"): "AttributeError: 'MultiNiftiMapsMasker' object has no attribute '_has_report_data'",
    ("MultiNiftiMapsMasker", "nilearn:check_masker_joblib_cache"): "AssertionError (a nilearn behaviour not matched)",
    ("MultiNiftiMapsMasker", "nilearn:check_masker_mask_img"): "AssertionError (a nilearn behaviour not matched)",
    ("MultiNiftiMapsMasker", "nilearn:check_masker_transform_resampling"): "AssertionError (a nilearn behaviour not matched)",
    ("MultiNiftiMapsMasker", "nilearn:check_masker_transformer"): "AttributeError: 'MultiNiftiMapsMasker' object has no attribute 'transform_single_imgs'",
    ("MultiNiftiMapsMasker", "nilearn:check_masker_transformer_high_variance_confounds"): "TypeError: 'confounds' must be a None or a list. Got ndarray.",
    ("MultiNiftiMapsMasker", "nilearn:check_masker_verbose"): "AssertionError (a nilearn behaviour not matched)",
    ("MultiNiftiMapsMasker", "nilearn:check_masker_transformer_sample_mask"): "TypeError: 'sample_mask' must be a None or a list. Got ndarray.",
    ("MultiNiftiMapsMasker", "nilearn:check_masker_with_confounds"): "TypeError: 'confounds' must be a None or a list. Got ndarray.",
    ("MultiNiftiMapsMasker", "nilearn:check_nifti_masker_fit_transform"): "AssertionError (a nilearn behaviour not matched)",
    ("MultiNiftiMapsMasker", "nilearn:check_nifti_masker_fit_transform_5d"): "Failed: DID NOT RAISE DimensionError",
    ("MultiNiftiMapsMasker", "nilearn:check_nifti_masker_generate_report_after_fit_with_only_mask"): "AssertionError (a nilearn behaviour not matched)",
}


def _check_name(check) -> str:
    return getattr(check, "func", check).__name__


def _cases():
    cases = []
    for estimator, with_regions in ESTIMATORS:
        expected = return_expected_failed_checks(estimator)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for instance, check in estimator_checks_generator(estimator, legacy=True, mark="skip",
                                                              expected_failed_checks=expected):
                cases.append((instance, check, "sklearn:" + _check_name(check)))
        for instance, check, name in nilearn_check_estimator([with_regions]):
            cases.append((instance, check, "nilearn:" + name))
    params = []
    for instance, check, name in cases:
        key = (type(instance).__name__, name)
        marks = [pytest.mark.xfail(reason=KNOWN_FAILURES[key], strict=True)] if key in KNOWN_FAILURES else []
        params.append(pytest.param(instance, check, id=f"{key[0]}-{name}", marks=marks))
    return params


@pytest.mark.parametrize("estimator, check", _cases())
def test_estimator_check(estimator, check):
    check(estimator)
