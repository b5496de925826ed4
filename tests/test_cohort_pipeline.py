"""Cohort-wide cleaning, extraction and reports from the store, against nilearn on the same runs."""

import re

import nibabel as nib
import numpy as np
import pytest

import brainxr
from brainxr.testing import raise_if_dask_computes

CLEAN = {"detrend": True, "standardize": "zscore_sample", "low_pass": 0.08, "high_pass": 0.009}


@pytest.mark.parametrize("strategy", ["simple", "scrubbing"])
def test_cohort_extract_equals_nilearn_labels_masker(small_synthetic, strategy):
    from nilearn.interfaces.fmriprep import load_confounds_strategy
    from nilearn.maskers import NiftiLabelsMasker

    from brainxr.regions import load_labels_atlas

    synthetic, store = small_synthetic
    cohort = brainxr.open_cohort(store)
    atlas = load_labels_atlas(synthetic.atlas_labels_img, lut=synthetic.atlas_labels_tsv)
    with raise_if_dask_computes():  # nothing is read until computed, confounds included
        signals = cohort.extract(atlas, confounds_strategy=strategy, clean=CLEAN)
    signals = signals.compute()
    assert signals.dims == ("run", "time", "region")
    assert list(signals["sub"].values) == ["01", "02", "03"]
    for run in synthetic.runs:
        confounds, sample_mask = load_confounds_strategy(str(run.bold), denoise_strategy=strategy)
        masker = NiftiLabelsMasker(str(synthetic.atlas_labels_img), mask_img=cohort.mask_img, t_r=synthetic.t_r,
                                   **CLEAN)
        # nilearn on the same values in float64: on float32 input its own rounding reaches 6e-5
        bold = nib.load(str(run.bold))
        bold64 = nib.Nifti1Image(bold.get_fdata(dtype=np.float64), bold.affine, bold.header)
        bold64.set_data_dtype(np.float64)
        expected = masker.fit_transform(bold64, confounds=confounds, sample_mask=sample_mask)
        ours = signals.sel(run=run.name)
        n_kept = int(ours["n_volumes"])
        assert n_kept == expected.shape[0]
        np.testing.assert_allclose(ours.values[:n_kept], expected, atol=1e-5)
        assert np.isnan(ours.values[n_kept:]).all()


def test_cohort_clean_matches_nilearn_on_voxels(small_synthetic):
    from nilearn.interfaces.fmriprep import load_confounds_strategy
    from nilearn.maskers import NiftiMasker

    synthetic, store = small_synthetic
    cohort = brainxr.open_cohort(store)
    with raise_if_dask_computes():
        cleaned = cohort.clean(strategy="simple", low_pass=0.08, high_pass=0.009)
    run = synthetic.runs[1]
    confounds, sample_mask = load_confounds_strategy(str(run.bold), denoise_strategy="simple")
    masker = NiftiMasker(mask_img=cohort.mask_img, t_r=synthetic.t_r, detrend=True, standardize="zscore_sample",
                         low_pass=0.08, high_pass=0.009)
    expected = masker.fit_transform(str(run.bold), confounds=confounds, sample_mask=sample_mask)
    assert set(cleaned.data_vars) == {"bold"} and cleaned["bold"].dims == ("run", "time", "voxel")
    ours = cleaned["bold"].sel(run=run.name)
    n_kept = int(ours["n_volumes"])
    assert n_kept == expected.shape[0]
    valid = cohort[run.name]["valid"].values  # voxels outside this run's brain mask are constant zeros
    np.testing.assert_allclose(ours.values[:n_kept, valid], expected[:, valid], atol=1e-4)
    assert np.isnan(ours.values[n_kept:]).all()


def test_cohort_summary_and_report(small_synthetic, tmp_path):
    import pandas as pd

    synthetic, store = small_synthetic
    cohort = brainxr.open_cohort(store)
    summary = cohort.summary(confounds_strategy="scrubbing")
    for run in synthetic.runs:
        row = summary.set_index("run").loc[run.name]
        table = pd.read_csv(run.confounds, sep="\t")
        assert row["mean_fd"] == pytest.approx(table["framewise_displacement"].mean())
        assert row["n_volumes"] == 80 and row["n_volumes_kept"] <= 80 - run.n_dummy_scans
    path = cohort.report().save_as_html(tmp_path / "report.html")
    html = path.read_text()
    assert "sub-01_task-rest" in html and "mean FD" in html
    # opens offline: no script, style or image is fetched from the network (XML namespaces are not fetches)
    assert not re.search(r"""(src|href)\s*=\s*["']https?://""", html)
