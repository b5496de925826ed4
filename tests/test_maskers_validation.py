"""Masker parameters are validated as nilearn 0.14.1 validates them (same error type, at fit)."""

import nibabel as nib
import numpy as np
import pytest
from nilearn import maskers as nilearn_maskers
from nilearn import signal as nilearn_signal

from brainxr import maskers, signal

AFFINE = np.diag([4.0, 4.0, 4.0, 1.0])
BAD_VALUES = {
    "standardize_confounds": ["zscore_sample", 1, None],
    "detrend": ["yes", 1],
    "standardize": ["zscore", "l2", 2],
    "low_pass": ["0.1", True],
    "high_pass": [[0.01]],
    "t_r": ["2"],
    "smoothing_fwhm": ["6", True],
    "memory_level": [1.5, "1"],
    "verbose": [1.0, "2"],
}


def _images():
    rng = np.random.default_rng(0)
    img = nib.Nifti1Image(rng.random((6, 7, 5, 20)).astype(np.float32) + 10, AFFINE)
    labels = nib.Nifti1Image(rng.integers(0, 4, (6, 7, 5)).astype(np.int16), AFFINE)
    maps = nib.Nifti1Image(rng.random((6, 7, 5, 3)).astype(np.float32), AFFINE)
    return img, labels, maps


def _pair(name):
    img, labels, maps = _images()
    arguments = {"NiftiMasker": {}, "NiftiLabelsMasker": {"labels_img": labels}, "NiftiMapsMasker": {"maps_img": maps},
                 "NiftiSpheresMasker": {"seeds": [(8.0, 8.0, 8.0)]}, "MultiNiftiMasker": {}}[name]
    return getattr(maskers, name), getattr(nilearn_maskers, name), arguments, img


@pytest.mark.parametrize("masker", ["NiftiMasker", "NiftiLabelsMasker", "NiftiMapsMasker", "NiftiSpheresMasker",
                                    "MultiNiftiMasker"])
@pytest.mark.parametrize("parameter", sorted(BAD_VALUES))
def test_bad_parameters_raise_as_in_nilearn(masker, parameter):
    ours, theirs, arguments, img = _pair(masker)
    for value in BAD_VALUES[parameter]:
        with pytest.raises((TypeError, ValueError)) as their_error:
            theirs(**arguments, **{parameter: value}).fit(img)
        with pytest.raises(their_error.type, match=parameter):
            ours(**arguments, **{parameter: value}).fit(img)


def test_clean_refuses_what_nilearn_refuses():
    signals, confounds = np.random.default_rng(0).random((30, 3)), np.random.default_rng(1).random((30, 2))
    for kwargs in ({"standardize_confounds": "zscore_sample"}, {"detrend": "no"}, {"low_pass": "0.1", "t_r": 2.0}):
        with pytest.raises(TypeError):
            nilearn_signal.clean(signals, confounds=confounds, **kwargs)
        with pytest.raises(TypeError, match=next(iter(kwargs))):
            signal.clean(signals, confounds=confounds, **kwargs)
