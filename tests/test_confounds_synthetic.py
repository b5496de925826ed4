"""Confounds and denoising on brainxr's synthetic fMRIPrep cohort, against nilearn."""

import warnings

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from nilearn import signal as nilearn_signal
from nilearn.interfaces import fmriprep as nilearn_fmriprep

from brainxr.datasets import make_synthetic_cohort
from brainxr.interfaces.fmriprep import clean_run, load_confounds, load_confounds_strategy
from brainxr.interfaces.fmriprep.files import read_confounds_metadata, read_confounds_table
from brainxr.masking import apply_mask
from brainxr.testing import raise_if_dask_computes

PRESETS = ["simple", "scrubbing", "compcor", "ica_aroma"]
BAND = dict(low_pass=0.08, high_pass=0.009)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    # motion_level: enough head motion for scrubbing to censor volumes
    return make_synthetic_cohort(
        tmp_path_factory.mktemp("synthetic"),
        n_subjects=2,
        n_volumes=100,
        resolution=8,
        n_regions=20,
        n_maps=4,
        motion_level=3.0,
        aroma=True,
        seed=3,
    )


def _image(run, preset):
    return str(run.aroma_bold if preset == "ica_aroma" else run.bold)


def _assert_same(result, expected):
    (confounds, sample_mask), (expected_confounds, expected_mask) = result, expected
    assert list(confounds.columns) == list(expected_confounds.columns)
    np.testing.assert_allclose(confounds.to_numpy(float), expected_confounds.to_numpy(float), rtol=1e-12, atol=1e-12)
    if expected_mask is None:
        assert sample_mask is None
    else:
        np.testing.assert_array_equal(sample_mask, expected_mask)


@pytest.mark.parametrize("overrides", [{}, {"global_signal": "basic"}], ids=["preset", "global_signal"])
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_equals_nilearn(cohort, preset, overrides):
    images = [_image(run, preset) for run in cohort.runs]
    expected = nilearn_fmriprep.load_confounds_strategy(images, preset, **overrides)
    result = load_confounds_strategy(images, preset, **overrides)
    for one, other in zip(zip(*result), zip(*expected)):
        _assert_same(one, other)


def test_scrubbing_censors_volumes(cohort):
    _, sample_masks = load_confounds_strategy(cohort.func, "scrubbing")
    _, non_steady = load_confounds_strategy(cohort.func, "simple")
    for scrubbed, steady, run in zip(sample_masks, non_steady, cohort.runs):
        assert steady[0] == run.n_dummy_scans
        assert len(scrubbed) < len(steady)


@pytest.mark.parametrize(
    "options",
    [
        dict(strategy=("motion", "high_pass", "compcor"), compcor="anat_separated", n_compcor=3),
        dict(strategy=("motion", "high_pass", "compcor"), compcor="temporal_anat_combined"),
        dict(strategy=("high_pass", "wm_csf", "global_signal", "scrub"), wm_csf="power2", scrub=0, fd_threshold=0.3),
        dict(strategy=("ica_aroma", "high_pass"), ica_aroma="basic"),
    ],
    ids=["anat_separated", "temporal_anat_combined", "scrub0", "aroma_basic"],
)
def test_components_equal_nilearn(cohort, options):
    for run in cohort.runs:
        _assert_same(load_confounds(str(run.bold), **options), nilearn_fmriprep.load_confounds(str(run.bold), **options))


@pytest.mark.parametrize("preset", PRESETS)
def test_denoising_a_stored_run_equals_nilearn(cohort, preset, fixed_nilearn_interpolation):
    run = cohort.runs[0]
    masked = apply_mask(_image(run, preset), run.mask)
    values = np.asarray(masked.values)
    bold = masked.copy(data=da.from_array(values, chunks=(values.shape[0], 64)))
    table = read_confounds_table(run.confounds)
    stored = xr.DataArray(table.to_numpy(np.float64), dims=("time", "confound"), coords={"confound": list(table.columns)})
    metadata = read_confounds_metadata(run.confounds_json)

    with raise_if_dask_computes():
        cleaned = clean_run(bold, stored, metadata, preset, **BAND)
    confounds, sample_mask = nilearn_fmriprep.load_confounds_strategy(_image(run, preset), preset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = nilearn_signal.clean(
            values.astype(np.float64), confounds=confounds, sample_mask=sample_mask, t_r=cohort.t_r, **BAND
        )
    np.testing.assert_allclose(cleaned.values, expected, atol=1e-4)  # float32 data: float32 result
    np.testing.assert_allclose(
        clean_run(masked.astype(np.float64), stored, metadata, preset, **BAND).values, expected, atol=1e-6
    )
    assert cleaned.sizes["time"] == len(sample_mask)
    pd.testing.assert_index_equal(cleaned.indexes["time"], masked.indexes["time"][sample_mask])
