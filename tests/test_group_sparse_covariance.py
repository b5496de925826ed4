"""brainxr.connectome.group_sparse_inverse_covariance against nilearn 0.14.1.

brainxr's block coordinate descent is nilearn's, compiled: the iterates, and
so the results of every stopping rule, match nilearn's to rounding errors.
"""

import warnings

import nilearn.connectome as nilearn_connectome
import nilearn.connectome.group_sparse_cov as nilearn_gsc
import numpy as np
import pytest
import xarray as xr
from sklearn.base import clone

from brainxr.connectome.group_sparse_inverse_covariance import (
    EarlyStopProbe,
    GroupSparseCovariance,
    GroupSparseCovarianceCV,
    compute_alpha_max,
    empirical_covariances,
    group_sparse_covariance,
    group_sparse_covariance_path,
    group_sparse_scores,
)


def group_signals(n_subjects=5, n_features=10, n_samples=(30, 50), density=0.15, seed=0):
    """Subjects sharing a sparse precision topology, with different weights."""
    rng = np.random.default_rng(seed)
    mask = np.triu(rng.random((n_features, n_features)) < density, k=1)
    subjects = []
    for _ in range(n_subjects):
        weights = np.zeros((n_features, n_features))
        weights[mask] = rng.uniform(0.2, 0.5, mask.sum()) * rng.choice([-1, 1], mask.sum())
        precision = weights + weights.T
        precision += np.eye(n_features) * (np.abs(np.linalg.eigvalsh(precision)).max() + 0.5)
        covariance = np.linalg.inv(precision)
        n = rng.integers(n_samples[0], n_samples[1] + 1)
        signals = rng.multivariate_normal(np.zeros(n_features), covariance, size=n)
        subjects.append(signals / signals.std(axis=0))
    return subjects


@pytest.fixture(scope="module")
def subjects():
    return group_signals()


def quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


@pytest.mark.parametrize("alpha", [0.005, 0.05, 0.2])
@pytest.mark.parametrize(("max_iter", "tol"), [(50, 1e-3), (5, -1)])
def test_group_sparse_covariance_matches_nilearn(subjects, alpha, max_iter, tol):
    expected_covs, expected = quiet(
        nilearn_connectome.group_sparse_covariance, subjects, alpha, max_iter=max_iter, tol=tol
    )
    covs, precisions = quiet(group_sparse_covariance, subjects, alpha, max_iter=max_iter, tol=tol)
    np.testing.assert_allclose(covs, expected_covs, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(precisions, expected, rtol=1e-10, atol=1e-12)
    assert precisions.shape == (10, 10, 5) and precisions.flags.f_contiguous
    # shared sparsity pattern
    zeros = precisions == 0
    assert np.all(zeros.all(axis=-1) == zeros.any(axis=-1))


def test_reaches_the_optimum(subjects):
    """Converged precisions: a vanishing duality gap (nilearn's bound), and
    KKT conditions of the group lasso checked directly."""
    alpha = 0.05
    emp_covs, precisions = group_sparse_covariance(subjects, alpha, max_iter=1000, tol=1e-10)
    n_samples = np.array([len(s) for s in subjects], float)
    n_samples /= n_samples.sum()
    _, objective, gap = group_sparse_scores(precisions, n_samples, emp_covs, alpha, duality_gap=True)
    assert 0 <= gap < 1e-8
    # gradient of the smooth part: n_k (S_k - K_k^-1)
    gradient = np.stack(
        [n_samples[k] * (emp_covs[..., k] - np.linalg.inv(precisions[..., k])) for k in range(5)], -1
    )
    off_diagonal = ~np.eye(10, dtype=bool)
    norms = np.sqrt((precisions**2).sum(-1))
    support = (norms > 0) & off_diagonal
    np.testing.assert_allclose(np.diagonal(gradient).T, 0, atol=1e-8)
    # on the support: gradient = -alpha K_ij / ||K_ij||; off it: ||gradient_ij|| <= alpha
    np.testing.assert_allclose(
        gradient[support], -alpha * precisions[support] / norms[support][:, None], atol=1e-7
    )
    assert np.sqrt((gradient[~support & off_diagonal] ** 2).sum(-1)).max() <= alpha + 1e-9
    _, nilearn_objective = nilearn_gsc.group_sparse_scores(
        quiet(nilearn_connectome.group_sparse_covariance, subjects, alpha, max_iter=1000, tol=1e-10)[1],
        n_samples, emp_covs, alpha,
    )
    np.testing.assert_allclose(objective, nilearn_objective, rtol=1e-12)


def test_estimator_matches_nilearn(subjects):
    expected = quiet(nilearn_connectome.GroupSparseCovariance(alpha=0.05).fit, subjects)
    model = quiet(GroupSparseCovariance(alpha=0.05).fit, subjects)
    np.testing.assert_allclose(model.covariances_, expected.covariances_, rtol=1e-13)
    np.testing.assert_allclose(model.precisions_, expected.precisions_, rtol=1e-10, atol=1e-12)
    assert model.n_features_in_ == 10
    assert clone(model).get_params() == model.get_params()


def test_estimator_caches_with_memory(subjects, tmp_path):
    model = quiet(GroupSparseCovariance(alpha=0.05, memory=tmp_path, memory_level=1).fit, subjects)
    cached = list(tmp_path.rglob("output.pkl"))
    assert len(cached) == 1
    again = quiet(GroupSparseCovariance(alpha=0.05, memory=str(tmp_path), memory_level=1).fit, subjects)
    np.testing.assert_array_equal(again.precisions_, model.precisions_)
    assert list(tmp_path.rglob("output.pkl")) == cached


@pytest.fixture(scope="module")
def nilearn_cv(subjects):
    return quiet(nilearn_connectome.GroupSparseCovarianceCV().fit, subjects)


@pytest.fixture(scope="module")
def brainxr_cv(subjects):
    return quiet(GroupSparseCovarianceCV().fit, subjects)


def test_cv_matches_nilearn(nilearn_cv, brainxr_cv):
    assert brainxr_cv.alpha_ == nilearn_cv.alpha_
    np.testing.assert_allclose(brainxr_cv.cv_alphas_, nilearn_cv.cv_alphas_, rtol=1e-14)
    np.testing.assert_allclose(brainxr_cv.cv_scores_, nilearn_cv.cv_scores_, rtol=1e-10)
    np.testing.assert_allclose(brainxr_cv.precisions_, nilearn_cv.precisions_, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(brainxr_cv.covariances_, nilearn_cv.covariances_)


def test_cv_without_early_stopping_matches_nilearn(subjects):
    kwargs = {"alphas": 3, "n_refinements": 2, "cv": 3, "early_stopping": False}
    expected = quiet(nilearn_connectome.GroupSparseCovarianceCV(**kwargs).fit, subjects)
    model = quiet(GroupSparseCovarianceCV(**kwargs).fit, subjects)
    assert model.alpha_ == expected.alpha_
    np.testing.assert_allclose(model.cv_scores_, expected.cv_scores_, rtol=1e-10)
    np.testing.assert_allclose(model.precisions_, expected.precisions_, rtol=1e-9, atol=1e-12)


def test_cv_explicit_alphas(subjects):
    alphas = [0.02, 0.1, 0.05]
    expected = quiet(nilearn_connectome.GroupSparseCovarianceCV(alphas=alphas).fit, subjects)
    model = quiet(GroupSparseCovarianceCV(alphas=np.array(alphas)).fit, subjects)
    assert model.cv_alphas_ == [0.1, 0.05, 0.02]
    assert model.alpha_ == expected.alpha_
    np.testing.assert_allclose(model.cv_scores_, expected.cv_scores_, rtol=1e-10)


def test_cv_parallel_folds(subjects, brainxr_cv):
    model = quiet(GroupSparseCovarianceCV(n_jobs=2).fit, subjects)
    assert model.alpha_ == brainxr_cv.alpha_
    np.testing.assert_array_equal(model.cv_scores_, brainxr_cv.cv_scores_)
    np.testing.assert_array_equal(model.precisions_, brainxr_cv.precisions_)


def test_accepts_dataarrays(subjects, brainxr_cv):
    arrays = [xr.DataArray(s, dims=("time", "region")).chunk({"time": 10}) for s in subjects]
    model = quiet(GroupSparseCovarianceCV().fit, arrays)
    np.testing.assert_array_equal(model.precisions_, brainxr_cv.precisions_)


def test_path_and_probe_match_nilearn(subjects):
    train = [s[: len(s) // 2] for s in subjects]
    test = [s[len(s) // 2 :] for s in subjects]
    alphas = [0.2, 0.1, 0.05]
    calls = []

    def probe(emp_covs, n_samples, alpha, max_iter, tol, iteration, omega, previous):
        calls.append((alpha, iteration, omega.shape, previous is None))

    expected, expected_scores = quiet(
        nilearn_gsc.group_sparse_covariance_path, train, alphas, test_subjs=test, max_iter=20
    )
    precisions, scores = quiet(
        group_sparse_covariance_path, train, alphas, test_subjs=test, max_iter=20, probe_function=probe
    )
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-10)
    for got, reference in zip(precisions, expected):
        np.testing.assert_allclose(got, reference, rtol=1e-9, atol=1e-12)
    assert calls[0] == (0.2, -1, (10, 10, 5), True)
    assert calls[1][1] == 0 and not calls[1][3]
    # nilearn's early-stopping probe, as a Python callable, stops at the same point
    expected_stopped = quiet(
        nilearn_connectome.group_sparse_covariance, train, 0.01,
        probe_function=nilearn_gsc.EarlyStopProbe(test),
    )[1]
    stopped = quiet(group_sparse_covariance, train, 0.01, probe_function=EarlyStopProbe(test))[1]
    np.testing.assert_allclose(stopped, expected_stopped, rtol=1e-9, atol=1e-12)
    assert len(group_sparse_covariance_path(train, alphas[:1])) == 1


def test_helpers_match_nilearn(subjects):
    for standardize in (False, True):
        covs, n_samples = empirical_covariances(subjects, standardize=standardize)
        expected_covs, expected_n = nilearn_gsc.empirical_covariances(subjects, standardize=standardize)
        np.testing.assert_allclose(covs, expected_covs, rtol=1e-14, atol=1e-16)
        np.testing.assert_array_equal(n_samples, expected_n)
    assert compute_alpha_max(covs, n_samples) == pytest.approx(
        nilearn_gsc.compute_alpha_max(covs, n_samples.copy()), rel=1e-14
    )
    precisions = quiet(group_sparse_covariance, subjects, 0.1)[1]
    weights = n_samples / n_samples.sum()
    np.testing.assert_allclose(
        group_sparse_scores(precisions, weights, covs, 0.1, duality_gap=True),
        nilearn_gsc.group_sparse_scores(precisions, weights, covs, 0.1, duality_gap=True),
        rtol=1e-10,
    )


def test_warns_like_nilearn(subjects):
    unscaled = [s * 3 for s in subjects]
    with pytest.warns(UserWarning, match="do not all have unit variance"):
        group_sparse_covariance(unscaled, 0.1)
    with pytest.warns(UserWarning, match="Maximum number of iterations reached"):
        group_sparse_covariance(subjects, 0.01, max_iter=1)


def test_debug_checks_every_iterate(subjects):
    expected = quiet(group_sparse_covariance, subjects, 0.05)[1]
    np.testing.assert_array_equal(quiet(group_sparse_covariance, subjects, 0.05, debug=True)[1], expected)


@pytest.mark.parametrize(
    ("subjects_in", "error", "message"),
    [
        ("not a list", TypeError, "must be a list of 2D arrays"),
        ([], ValueError, "is empty"),
        ([np.ones((10, 3)), np.ones((10, 4))], ValueError, "same number of features"),
        ([np.random.default_rng(0).normal(size=(1, 3))], ValueError, r"subjects\[0\]: .*minimum of 2"),
        ([np.random.default_rng(0).normal(size=(10, 1))], ValueError, r"subjects\[0\]: .*feature"),
        ([np.full((10, 3), np.nan)], ValueError, r"subjects\[0\]: .*NaN"),
    ],
)
def test_bad_subjects(subjects_in, error, message):
    with pytest.raises(error, match=message):
        group_sparse_covariance(subjects_in, 0.1)
    with pytest.raises(error, match=message):
        GroupSparseCovarianceCV().fit(subjects_in)


def test_bad_iterations(subjects):
    with pytest.raises(ValueError, match="'max_iter' parameter of GroupSparseCovariance must be an int in the range \\[0, inf\\)"):
        group_sparse_covariance(subjects, 0.1, max_iter=-1)
    with pytest.raises(ValueError, match="'tol' parameter of GroupSparseCovariance must be a float in the range \\(0.0, inf\\), a float among \\{-1\\} or None. Got -3"):
        GroupSparseCovariance(tol=-3).fit(subjects)


@pytest.mark.parametrize("alpha", [-0.1, "0.1", None])
def test_bad_alpha(subjects, alpha):
    message = "'alpha' parameter of GroupSparseCovariance must be a float in the range \\[0.0, inf\\)"
    with pytest.raises(ValueError, match=message):
        group_sparse_covariance(subjects, alpha)
    with pytest.raises(ValueError, match=message):
        GroupSparseCovariance(alpha=alpha).fit(subjects)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alphas": 1}, "'alphas' parameter of GroupSparseCovarianceCV must be an int in the range \\[2, inf\\) or an array-like"),
        ({"alphas": []}, "alphas must not be empty"),
        ({"alphas": [0.1, -1]}, "each of alphas must be a finite number >= 0, got -1.0"),
        ({"n_refinements": 0}, "'n_refinements' parameter of GroupSparseCovarianceCV must be an int in the range \\[1, inf\\)"),
        ({"max_iter_cv": 2.5}, "'max_iter_cv' parameter of GroupSparseCovarianceCV must be an int"),
        ({"tol_cv": 0}, "'tol_cv' parameter of GroupSparseCovarianceCV must be a float in the range \\(0.0, inf\\)"),
        ({"tol": "small"}, "'tol' parameter of GroupSparseCovarianceCV"),
        ({"early_stopping": "yes"}, "'early_stopping' parameter of GroupSparseCovarianceCV must be an instance of 'bool'"),
    ],
)
def test_cv_bad_parameters(subjects, kwargs, message):
    with pytest.raises(ValueError, match=message):
        GroupSparseCovarianceCV(**kwargs).fit(subjects)
