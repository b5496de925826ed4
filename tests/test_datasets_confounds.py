"""The synthetic confounds files: fMRIPrep's columns, JSON and maths; nilearn reads them."""

from __future__ import annotations

import itertools
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from brainxr.datasets import _fmriprep_confounds as fc
from brainxr.datasets import make_synthetic_cohort


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return make_synthetic_cohort(
        tmp_path_factory.mktemp("confounds"), n_subjects=1, n_volumes=100, resolution=6,
        n_regions=40, n_maps=8, aroma=True, motion_level=2.0,
    )


@pytest.fixture(scope="module")
def table(cohort):
    return pd.read_csv(cohort.runs[0].confounds, sep="\t")


@pytest.fixture(scope="module")
def metadata(cohort):
    return json.loads(cohort.runs[0].confounds_json.read_text())


def _prefixed(columns, prefix):
    return [c for c in columns if c.startswith(prefix)]


def test_columns_in_fmriprep_order(table):
    columns = list(table.columns)
    expanded = lambda name: [name, f"{name}_derivative1", f"{name}_power2", f"{name}_derivative1_power2"]  # noqa: E731
    head = expanded("global_signal") + expanded("csf") + expanded("white_matter")
    head += ["csf_wm", "tcompcor", "std_dvars", "dvars", "framewise_displacement", "rmsd"]
    assert columns[: len(head)] == head
    blocks = ["t_comp_cor_", "c_comp_cor_", "w_comp_cor_", "a_comp_cor_", "edge_comp_", "cosine", "non_steady_state_outlier"]
    positions = [columns.index(_prefixed(columns, prefix)[0]) for prefix in blocks]
    assert positions == sorted(positions)
    motion = list(itertools.chain.from_iterable(expanded(n) for n in fc.MOTION_COLUMNS))
    start = columns.index("trans_x")
    assert columns[start : start + 24] == motion
    assert columns.index("trans_x") > columns.index("non_steady_state_outlier01")
    assert _prefixed(columns, "motion_outlier") and _prefixed(columns, "aroma_motion_")
    assert len(_prefixed(columns, "edge_comp_")) == 24
    # fMRIPrep's spellings: no underscore before the number in these three
    for prefix in ("cosine", "non_steady_state_outlier", "motion_outlier"):
        assert all(c[len(prefix) :].isdigit() and len(c) == len(prefix) + 2 for c in _prefixed(columns, prefix))


def test_missing_values_only_where_fmriprep_writes_n_a(cohort, table):
    text = cohort.runs[0].confounds.read_text().splitlines()
    assert "n/a" in text[1] and all("n/a" not in line for line in text[2:])
    first = table.iloc[0]
    assert np.isnan(first[[c for c in table.columns if "derivative1" in c]]).all()
    assert np.isnan(first[["framewise_displacement", "std_dvars", "dvars", "rmsd"]]).all()
    assert table.iloc[1:].notna().all().all()


def test_compcor_metadata_as_fmriprep(table, metadata):
    for prefix, method, mask in (("a_comp_cor_", "aCompCor", "combined"), ("c_comp_cor_", "aCompCor", "CSF"),
                                 ("w_comp_cor_", "aCompCor", "WM"), ("t_comp_cor_", "tCompCor", None)):
        names = _prefixed(table.columns, prefix)
        assert names == [f"{prefix}{i:02d}" for i in range(len(names))]
        cumulative = []
        for name in names:
            entry = metadata[name]
            expected = {"CumulativeVarianceExplained", "Method", "Retained", "SingularValue", "VarianceExplained"}
            assert set(entry) == expected | ({"Mask"} if mask else set())
            assert entry["Method"] == method and entry["Retained"] is True and entry.get("Mask") == mask
            cumulative.append(entry["CumulativeVarianceExplained"])
        assert np.all(np.diff(cumulative) > 0)
        # components are kept until half of the variance is explained
        assert cumulative[-1] >= 0.5 and (len(cumulative) == 1 or cumulative[-2] < 0.5)
        values = np.array([metadata[n]["VarianceExplained"] for n in names])
        np.testing.assert_allclose(np.cumsum(values), cumulative, atol=1e-8)
    dropped = [key for key in metadata if key.startswith("dropped")]
    assert dropped and all(metadata[key]["Method"] == "EdgeRegressor" and not metadata[key]["Retained"] for key in dropped)
    assert metadata["global_signal"] == {"Method": "Mean"} and metadata["rot_x"]["Units"] == "rad"
    assert not any(key.startswith(("cosine", "motion_outlier")) for key in metadata)


def test_components_are_orthonormal_high_passed_and_zero_on_dummies(cohort, table):
    n_dummy = cohort.runs[0].n_dummy_scans
    for prefix in ("a_comp_cor_", "t_comp_cor_", "edge_comp_"):
        components = table[_prefixed(table.columns, prefix)].to_numpy()
        assert np.all(components[:n_dummy] == 0)
        steady = components[n_dummy:]
        np.testing.assert_allclose(steady.T @ steady, np.eye(steady.shape[1]), atol=1e-6)
        cosines = table[_prefixed(table.columns, "cosine")].to_numpy()[n_dummy:]
        np.testing.assert_allclose(cosines.T @ steady, 0, atol=1e-6)
        np.testing.assert_allclose(steady.sum(axis=0), 0, atol=1e-6)
    outliers = table[_prefixed(table.columns, "non_steady_state_outlier")].to_numpy()
    np.testing.assert_array_equal(outliers, np.eye(len(table))[:, :n_dummy])


def test_cosine_basis_is_fmriprep_dct_of_the_steady_volumes(cohort, table):
    n_dummy, t_r = cohort.runs[0].n_dummy_scans, cohort.t_r
    n_steady = len(table) - n_dummy
    cosines = table[_prefixed(table.columns, "cosine")].to_numpy()
    # 128 s high-pass: floor(2 * n * dt / 128) - 1 non-constant regressors
    assert cosines.shape[1] == int(np.floor(2 * n_steady * t_r / 128)) - 1
    nilearn_signal = pytest.importorskip("nilearn.signal")
    reference = nilearn_signal.create_cosine_drift(1 / 128, t_r * np.arange(n_steady))
    np.testing.assert_allclose(cosines[n_dummy:], reference[:, : cosines.shape[1]], atol=1e-9)


def test_motion_fd_rmsd_and_spikes(cohort, table):
    run = cohort.runs[0]
    motion = table[list(fc.MOTION_COLUMNS)].to_numpy()
    np.testing.assert_allclose(motion, run.motion, rtol=1e-9, atol=1e-12)
    diff = np.abs(np.diff(motion, axis=0))
    np.testing.assert_allclose(table["framewise_displacement"][1:], diff[:, :3].sum(1) + 50 * diff[:, 3:].sum(1), rtol=1e-8)
    np.testing.assert_allclose(table["trans_x_derivative1"][1:], np.diff(motion[:, 0]), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(table["rot_y_power2"], motion[:, 4] ** 2, rtol=1e-8, atol=1e-15)
    # rmsd grows with motion and vanishes without it
    assert np.corrcoef(table["rmsd"][1:], table["framewise_displacement"][1:])[0, 1] > 0.7
    assert np.allclose(fc.rms_deviation(np.zeros((5, 6)), (90, 108, 90))[1:], 0)
    spikes = table[_prefixed(table.columns, "motion_outlier")].to_numpy()
    flagged = np.flatnonzero((table["framewise_displacement"] > 0.5) | (table["std_dvars"] > 1.5))
    assert len(flagged) > 0
    np.testing.assert_array_equal(np.argmax(spikes, axis=0), flagged)
    assert np.all(spikes.sum(axis=0) == 1)


def _dvars_reference(bold):
    """nipype's compute_dvars, transcribed without blocking (percentiles, then AR(1))."""
    mfunc = bold.T.astype(np.float64)
    mfunc = mfunc / np.median(mfunc) * 1000
    func_sd = (np.percentile(mfunc, 75, axis=1, method="lower") - np.percentile(mfunc, 25, axis=1, method="lower")) / 1.349
    keep = func_sd > 1e-7
    mfunc, func_sd = mfunc[keep], func_sd[keep]
    centred = mfunc - mfunc.mean(1, keepdims=True)
    ar1 = np.array([np.correlate(x, x, "full")[len(x)] / np.dot(x, x) for x in centred])
    diff_sdhat = np.sqrt((1 - ar1) * 2) * func_sd
    diff = np.diff(mfunc, axis=1)
    plain = np.sqrt((diff**2).mean(0))
    return plain / diff_sdhat.mean(), plain


def test_dvars_matches_a_direct_transcription_of_nipype():
    rng = np.random.default_rng(0)
    bold = (1000 + rng.standard_normal((40, 20000)).cumsum(0) * 3).astype(np.float32)
    bold[:, :5] = 1000.0  # zero-variance voxels are removed
    standardized, plain = fc.dvars(bold)
    reference_std, reference_plain = _dvars_reference(bold)
    assert np.isnan(standardized[0]) and np.isnan(plain[0])
    np.testing.assert_allclose(plain[1:], reference_plain, rtol=1e-6)
    np.testing.assert_allclose(standardized[1:], reference_std, rtol=1e-6)


def test_noise_components_match_svd():
    rng = np.random.default_rng(1)
    data = rng.standard_normal((80, 300)) @ np.diag(np.linspace(3, 0.1, 300)) + rng.standard_normal((80, 1))
    components, singular, variance, cumulative = fc.noise_components(data, 2.0, 0.5)
    # nipype: cosine high-pass, voxel-wise variance normalisation, then SVD
    design = fc.cosine_drift(128.0, 2.0 * np.arange(80))
    filtered = data - design @ np.linalg.lstsq(design, data, rcond=None)[0]
    filtered /= filtered.std(0)
    u, s, _ = np.linalg.svd(filtered, full_matrices=False)
    np.testing.assert_allclose(singular, s, rtol=1e-6, atol=1e-6)
    n_keep = int(np.searchsorted(np.cumsum(s**2) / np.sum(s**2), 0.5) + 1)
    assert components.shape == (80, n_keep)
    np.testing.assert_allclose(np.abs(np.sum(components * u[:, :n_keep], axis=0)), 1, atol=1e-6)


STRATEGIES = ("simple", "scrubbing", "compcor")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_nilearn_presets_accept_the_files(cohort, strategy):
    fmriprep = pytest.importorskip("nilearn.interfaces.fmriprep")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        confounds, sample_mask = fmriprep.load_confounds_strategy(cohort.func[0], strategy)
    assert len(confounds) == cohort.n_volumes and confounds.notna().all().all()
    assert sample_mask is not None and 0 not in sample_mask and 1 not in sample_mask  # dummies out
    if strategy == "compcor":
        assert len(_prefixed(confounds.columns, "a_comp_cor_")) >= 1
    if strategy == "scrubbing":
        assert len(sample_mask) < cohort.n_volumes - cohort.runs[0].n_dummy_scans


def test_nilearn_ica_aroma_presets(cohort):
    fmriprep = pytest.importorskip("nilearn.interfaces.fmriprep")
    run = cohort.runs[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full, _ = fmriprep.load_confounds_strategy(str(run.aroma_bold), "ica_aroma")
        basic, _ = fmriprep.load_confounds(str(run.bold), strategy=("ica_aroma",), ica_aroma="basic")
    assert set(full.columns) >= {"csf", "white_matter"} and not _prefixed(full.columns, "aroma")
    assert basic.shape[1] >= 1 and all(c.startswith("aroma_motion_") for c in basic.columns)
    # the AROMA noise components capture the motion regressors
    motion = pd.read_csv(run.confounds, sep="\t")[list(fc.MOTION_COLUMNS)].to_numpy()
    design = np.column_stack([np.ones(len(basic)), basic.to_numpy()])
    residual = motion - design @ np.linalg.lstsq(design, motion, rcond=None)[0]
    assert np.mean(1 - residual.var(0) / motion.var(0)) > 0.8


@pytest.mark.parametrize("motion", ["basic", "power2", "derivatives", "full"])
@pytest.mark.parametrize("compcor, n_compcor", [("anat_combined", "all"), ("anat_separated", 2), ("temporal", "all"),
                                                ("temporal_anat_combined", 3), ("temporal_anat_separated", "all")])
def test_nilearn_strategy_grid(cohort, motion, compcor, n_compcor):
    fmriprep = pytest.importorskip("nilearn.interfaces.fmriprep")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        confounds, sample_mask = fmriprep.load_confounds(
            cohort.func[0],
            strategy=("high_pass", "motion", "wm_csf", "global_signal", "compcor", "scrub", "non_steady_state"),
            motion=motion, wm_csf="full", global_signal="derivatives", compcor=compcor, n_compcor=n_compcor,
            scrub=0, fd_threshold=0.4, std_dvars_threshold=2.0,
        )
    n_motion = {"basic": 6, "power2": 12, "derivatives": 12, "full": 24}[motion]
    assert len(_prefixed(confounds.columns, "trans_")) + len(_prefixed(confounds.columns, "rot_")) == n_motion
    assert confounds.notna().all().all() and len(sample_mask) < cohort.n_volumes
    if "temporal" in compcor:
        assert _prefixed(confounds.columns, "t_comp_cor_")
    if compcor.endswith("separated"):
        assert _prefixed(confounds.columns, "c_comp_cor_") and _prefixed(confounds.columns, "w_comp_cor_")


@pytest.mark.parametrize("shape", [(7, 5), (40, 20001), (31, 3)])
def test_blocked_median_is_exact(shape):
    rng = np.random.default_rng(shape[1])
    for values in (rng.standard_normal(shape), np.round(rng.standard_normal(shape) * 3), np.abs(rng.standard_normal(shape)) * 1e3):
        values = values.astype(np.float32)
        assert fc.blocked_median(values) == np.median(values.astype(np.float64))
    assert fc.blocked_median(np.full((3, 4), 7.0, dtype=np.float32)) == 7.0
