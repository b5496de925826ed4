"""Denoising QC metrics against scipy: QC-FC, its FDR share, its distance dependence, run by run sums."""

import numpy as np
import pytest
from scipy import stats

from brainxr.reporting.qc import QcfcSums, fdr_significant, qcfc, qcfc_summary


@pytest.fixture()
def cohort():
    rng = np.random.default_rng(0)
    mean_fd = rng.gamma(2.0, 0.1, size=40)
    edges = rng.normal(size=(40, 300)) + np.outer(mean_fd, np.linspace(-3, 3, 300))  # motion-related edges
    edges[3, 7] = np.nan  # a run without this edge
    distances = rng.uniform(10, 120, size=300)
    return edges, mean_fd, distances


def test_qcfc_equals_pearsonr(cohort):
    edges, mean_fd, _ = cohort
    r, p = qcfc(edges, mean_fd)
    for edge in (0, 7, 150, 299):
        keep = np.isfinite(edges[:, edge])
        expected = stats.pearsonr(mean_fd[keep], edges[keep, edge])
        assert r[edge] == pytest.approx(expected.statistic, abs=1e-12)
        assert p[edge] == pytest.approx(expected.pvalue, rel=1e-8)


def test_run_by_run_sums_equal_the_stacked_computation(cohort):
    edges, mean_fd, distances = cohort
    sums = QcfcSums(edges.shape[1])
    for run_edges, fd in zip(edges, mean_fd):
        sums.add(run_edges, fd)
    stacked, streamed = qcfc_summary(edges, mean_fd, distances), sums.summary(distances)
    np.testing.assert_allclose(streamed["qcfc"], stacked["qcfc"], atol=1e-10)
    for key in ("percent_significant", "percent_significant_fdr", "median_abs_qcfc", "distance_dependence", "n_runs"):
        assert streamed[key] == pytest.approx(stacked[key], abs=1e-10), key
    assert stacked["distance_dependence"] == pytest.approx(stats.spearmanr(distances, stacked["qcfc"]).statistic)


def test_fdr_equals_scipy(cohort):
    edges, mean_fd, _ = cohort
    _, p = qcfc(edges, mean_fd)
    np.testing.assert_array_equal(fdr_significant(p), stats.false_discovery_control(p) < 0.05)
    assert 0 < fdr_significant(p).sum() < p.size


def test_too_few_runs_give_nan():
    r, p = qcfc(np.ones((2, 3)), np.array([0.1, 0.2]))
    assert np.isnan(r).all() and np.isnan(p).all()
    with pytest.raises(ValueError, match="expected \\(run, edge\\) with 3 runs"):
        qcfc(np.ones((2, 3)), np.ones(3))


def test_distance_dependence_equals_spearmanr_with_ties(cohort):
    """Spearman's correlation (pandas' average ranks) equals scipy's, tied distances included."""
    edges, mean_fd, distances = cohort
    tied = np.round(distances / 10) * 10  # many equal distances
    tied[5] = np.nan  # an edge without a distance is left out
    summary = qcfc_summary(edges, mean_fd, tied)
    both = np.isfinite(tied) & np.isfinite(summary["qcfc"])
    expected = stats.spearmanr(tied[both], summary["qcfc"][both]).statistic
    assert summary["distance_dependence"] == pytest.approx(expected, rel=0, abs=1e-12)
    assert abs(expected) > 0.01
