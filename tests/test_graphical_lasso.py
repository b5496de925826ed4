"""brainxr.connectome.sparse_inverse_covariance against scikit-learn's graphical lasso.

The reference for precisions is scikit-learn's ``graphical_lasso`` run to a
tight tolerance (tol=1e-10, enet_tol=1e-12), more accurate than its defaults;
optimality is also checked directly on the KKT conditions.
"""

import warnings

import dask.array as da
import numpy as np
import pytest
import sklearn.covariance as skcov
import xarray as xr
from sklearn.base import clone
from sklearn.datasets import make_sparse_spd_matrix
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold

from brainxr.connectome.sparse_inverse_covariance import (
    GraphicalLasso,
    GraphicalLassoCV,
    alpha_max,
    graphical_lasso,
    graphical_lasso_path,
)
from brainxr.testing import raise_if_dask_computes


def sparse_gaussian(n_features=30, n_samples=60, sparsity=0.9, seed=0):
    """Samples of a Gaussian with a known sparse precision, unit variances."""
    rng = np.random.RandomState(seed)
    precision = make_sparse_spd_matrix(
        n_features, alpha=sparsity, smallest_coef=0.2, largest_coef=0.6, random_state=rng
    )
    covariance = np.linalg.inv(precision)
    scale = np.sqrt(np.diag(covariance))
    covariance /= np.outer(scale, scale)
    return rng.multivariate_normal(np.zeros(n_features), covariance, size=n_samples)


def reference(emp_cov, alpha):
    """scikit-learn's graphical lasso, solved accurately."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return skcov.graphical_lasso(emp_cov, alpha, tol=1e-10, enet_tol=1e-12, max_iter=2000)


def kkt_residual(emp_cov, precision, alpha):
    """Largest violation of the optimality conditions of the graphical lasso.

    With W = precision^-1: W_ii = S_ii; S_ij - W_ij + alpha sign(X_ij) = 0 on
    the support; |S_ij - W_ij| <= alpha off the support.
    """
    gradient = emp_cov - np.linalg.inv(precision)
    off_diagonal = ~np.eye(len(emp_cov), dtype=bool)
    support = (precision != 0) & off_diagonal
    zeros = (precision == 0) & off_diagonal
    residuals = [np.abs(np.diag(gradient)).max()]
    if support.any():
        residuals.append(np.abs(gradient[support] + alpha * np.sign(precision[support])).max())
    if zeros.any():
        residuals.append(max(0.0, (np.abs(gradient[zeros]) - alpha).max()))
    return max(residuals)


@pytest.fixture(scope="module")
def signals():
    return sparse_gaussian()


@pytest.fixture(scope="module")
def emp_cov(signals):
    return skcov.empirical_covariance(signals)


@pytest.mark.parametrize("fraction", [0.05, 0.15, 0.3, 0.6])
def test_graphical_lasso_matches_accurate_sklearn(emp_cov, fraction):
    alpha = fraction * alpha_max(emp_cov)
    covariance, precision = graphical_lasso(emp_cov, alpha)
    ref_covariance, ref_precision = reference(emp_cov, alpha)
    # default tol=1e-4 on the duality gap: within 1e-3 of the optimum
    np.testing.assert_allclose(precision, ref_precision, atol=1e-3)
    np.testing.assert_allclose(covariance, ref_covariance, atol=1e-3)
    np.testing.assert_allclose(covariance @ precision, np.eye(len(emp_cov)), atol=1e-10)
    assert kkt_residual(emp_cov, precision, alpha) < 1e-3
    # a tight tolerance reaches the optimum to rounding errors
    _, precise = graphical_lasso(emp_cov, alpha, tol=1e-10)
    np.testing.assert_allclose(precise, ref_precision, atol=1e-7)
    assert kkt_residual(emp_cov, precise, alpha) < 1e-8


def test_graphical_lasso_is_more_accurate_than_sklearn_defaults(emp_cov):
    alpha = 0.1 * alpha_max(emp_cov)
    _, ref_precision = reference(emp_cov, alpha)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _, sk_precision = skcov.graphical_lasso(emp_cov, alpha)
    _, precision = graphical_lasso(emp_cov, alpha)
    assert np.abs(precision - ref_precision).max() < np.abs(sk_precision - ref_precision).max()


def test_costs_are_sklearn_objective_and_a_true_duality_gap(emp_cov):
    from sklearn.covariance._graph_lasso import _objective

    alpha = 0.2 * alpha_max(emp_cov)
    _, precision, costs, n_iter = graphical_lasso(
        emp_cov, alpha, return_costs=True, return_n_iter=True
    )
    assert len(costs) == n_iter > 0
    objective, gap = costs[-1]
    np.testing.assert_allclose(objective, _objective(emp_cov, precision, alpha), rtol=1e-12)
    _, ref_precision = reference(emp_cov, alpha)
    optimum = _objective(emp_cov, ref_precision, alpha)
    # the gap bounds the distance to the optimum, and is below tol
    assert 0 <= objective - optimum <= gap + 1e-12
    assert gap < 1e-4
    # objective decreases at every iteration
    objectives = [cost for cost, _ in costs]
    assert np.all(np.diff(objectives) <= 1e-12)


def test_screening_solves_components_separately():
    rng = np.random.RandomState(3)
    blocks = [skcov.empirical_covariance(rng.randn(40, size)) for size in (6, 2, 1, 4)]
    blocks[1][0, 1] = blocks[1][1, 0] = 0.5  # a connected pair (solved in closed form)
    size = sum(len(block) for block in blocks)
    emp_cov = np.zeros((size, size))
    start = 0
    for block in blocks:
        emp_cov[start : start + len(block), start : start + len(block)] = block
        start += len(block)
    permutation = rng.permutation(size)
    emp_cov = emp_cov[np.ix_(permutation, permutation)]
    alpha = 0.05
    _, precision = graphical_lasso(emp_cov, alpha, tol=1e-10)
    _, ref_precision = reference(emp_cov, alpha)
    np.testing.assert_allclose(precision, ref_precision, atol=1e-7)
    # zero across blocks, exactly
    inverse = np.argsort(permutation)
    unpermuted = precision[np.ix_(inverse, inverse)]
    assert np.all(unpermuted[:6, 6:] == 0) and np.all(unpermuted[6:8, 8:] == 0)
    assert unpermuted[6, 7] != 0
    # the isolated region gets 1 / S_ii
    assert unpermuted[8, 8] == 1 / blocks[2][0, 0]
    assert kkt_residual(emp_cov, precision, alpha) < 1e-8


def test_alpha_above_alpha_max_gives_the_diagonal(emp_cov):
    covariance, precision, n_iter = graphical_lasso(
        emp_cov, 1.01 * alpha_max(emp_cov), return_n_iter=True
    )
    np.testing.assert_array_equal(precision, np.diag(1 / np.diag(emp_cov)))
    np.testing.assert_array_equal(covariance, np.diag(np.diag(emp_cov)))
    assert n_iter == 0


def test_alpha_zero_inverts(emp_cov):
    covariance, precision = graphical_lasso(emp_cov, 0)
    np.testing.assert_allclose(precision, np.linalg.inv(emp_cov), rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(covariance, emp_cov)
    singular = skcov.empirical_covariance(np.random.RandomState(0).randn(5, 10))
    with pytest.raises(ValueError, match="alpha=0"):
        graphical_lasso(singular, 0)


def test_fewer_samples_than_features():
    signals = sparse_gaussian(n_features=40, n_samples=25, seed=2)
    emp_cov = skcov.empirical_covariance(signals)
    alpha = 0.2 * alpha_max(emp_cov)
    _, precision = graphical_lasso(emp_cov, alpha, tol=1e-8)
    _, ref_precision = reference(emp_cov, alpha)
    np.testing.assert_allclose(precision, ref_precision, atol=1e-5)
    assert kkt_residual(emp_cov, precision, alpha) < 1e-6


def band_limited(n_features=60, n_samples=80, n_frequencies=12, seed=3):
    """Signals spanning ``n_frequencies`` cosines only, as band-pass filtering
    leaves them: every sample lies in one low-dimensional subspace, so the
    held-out likelihood keeps rising as alpha falls."""
    rng = np.random.RandomState(seed)
    time = np.arange(n_samples)
    basis = np.cos(np.pi * np.outer(time + 0.5, np.arange(1, n_frequencies + 1)) / n_samples)
    mixing = rng.randn(n_frequencies, n_features) + 2.0 * rng.randn(1, n_features)
    signals = basis @ mixing
    return (signals - signals.mean(0)) / signals.std(0)


def test_band_limited_signals_solve_accurately_at_small_alpha():
    signals = band_limited()
    emp_cov = skcov.empirical_covariance(signals)
    assert np.linalg.matrix_rank(emp_cov) <= 12
    # where the precision grows along the directions the data never visit
    # (the solver with one coordinate-descent pass and no fallback took 364
    # iterations here)
    alpha = 0.1 * alpha_max(emp_cov)
    _, precision, costs, n_iter = graphical_lasso(emp_cov, alpha, tol=1e-8, return_costs=True, return_n_iter=True)
    assert n_iter < 100
    assert costs[-1][1] < 1e-8
    assert kkt_residual(emp_cov, precision, alpha) < 1e-4


def test_cv_on_band_limited_signals_stops_where_the_folds_fail():
    signals = band_limited()
    with pytest.warns(UserWarning, match="held-out likelihood still rose"):
        estimator = GraphicalLassoCV(cv=3, max_iter=40).fit(signals)
    alphas = estimator.cv_results_["alphas"][:-1]
    scores = estimator.cv_results_["mean_test_score"][:-1]
    below = alphas < estimator.alpha_
    # the smallest finite score is the best: the solves below it failed
    assert below.any() and np.all(scores[below] == -np.inf)
    assert np.all(np.isfinite(scores[~below]))
    assert scores[alphas == estimator.alpha_][0] == scores[np.isfinite(scores)].max()
    assert np.all(np.isfinite(estimator.precision_))
    assert np.linalg.eigvalsh(estimator.precision_).min() > 0


def test_cv_on_well_sampled_signals_does_not_warn(cv_signals):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        GraphicalLassoCV(cv=3).fit(cv_signals)


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (np.ones((3, 4)), "square"),
        (np.array([[1.0, 0.5], [0.2, 1.0]]), "symmetric"),
        (np.array([[1.0, 2.0], [2.0, 1.0]]), "positive semi-definite"),
        (np.array([[1.0, 0.0], [0.0, 0.0]]), "positive diagonal"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), "NaN"),
    ],
)
def test_bad_emp_cov(matrix, message):
    with pytest.raises(ValueError, match=message):
        graphical_lasso(matrix, 0.1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": -0.1}, "'alpha' parameter of GraphicalLasso must be a float in the range \\[0.0, inf\\]"),
        ({"alpha": np.nan}, "'alpha' parameter of GraphicalLasso .* Got nan"),
        ({"alpha": 0.1, "tol": 0}, "'tol' parameter of GraphicalLasso must be a float in the range \\(0.0"),
        ({"alpha": 0.1, "enet_tol": -1}, "'enet_tol' parameter"),
        ({"alpha": 0.1, "max_iter": -1}, "'max_iter' parameter of GraphicalLasso must be an int"),
        ({"alpha": 0.1, "mode": "newton"}, "'mode' parameter of GraphicalLasso must be a str among"),
    ],
)
def test_bad_parameters(emp_cov, kwargs, message):
    with pytest.raises(ValueError, match=message):
        graphical_lasso(emp_cov, **kwargs)


def test_max_iter_warns(emp_cov):
    with pytest.warns(ConvergenceWarning, match="did not converge after 1 iterations"):
        graphical_lasso(emp_cov, 0.05 * alpha_max(emp_cov), max_iter=1)


@pytest.mark.parametrize("assume_centered", [False, True])
def test_estimator_matches_sklearn(signals, assume_centered):
    alpha = 0.1
    model = GraphicalLasso(alpha=alpha, assume_centered=assume_centered).fit(signals)
    sk_model = skcov.GraphicalLasso(
        alpha=alpha, assume_centered=assume_centered, tol=1e-10, enet_tol=1e-12, max_iter=2000
    ).fit(signals)
    np.testing.assert_allclose(model.precision_, sk_model.precision_, atol=1e-4)
    np.testing.assert_allclose(model.covariance_, sk_model.covariance_, atol=1e-4)
    np.testing.assert_array_equal(model.location_, sk_model.location_)
    assert model.n_features_in_ == signals.shape[1]
    assert model.n_iter_ == len(model.costs_)
    # EmpiricalCovariance's methods work on the result
    np.testing.assert_allclose(model.score(signals), sk_model.score(signals), atol=1e-4)
    precomputed = GraphicalLasso(alpha=alpha, covariance="precomputed").fit(
        skcov.empirical_covariance(signals, assume_centered=assume_centered)
    )
    np.testing.assert_allclose(precomputed.precision_, model.precision_, atol=1e-12)


def test_estimator_bad_input(signals):
    with pytest.raises(ValueError, match="minimum of 2 is required"):
        GraphicalLasso().fit(signals[:1])
    with pytest.raises(ValueError, match="constant features"):
        GraphicalLasso().fit(np.c_[signals, np.ones(len(signals))])
    with pytest.raises(ValueError, match="'covariance' parameter of GraphicalLasso must be a str among \\{'precomputed'\\} or None"):
        GraphicalLasso(covariance="empirical").fit(signals)
    with pytest.raises(ValueError, match="'alpha' parameter of GraphicalLasso must be a float in the range \\[0.0, inf\\]. Got -1"):
        GraphicalLasso(alpha=-1).fit(signals)


def test_path_matches_accurate_sklearn(signals):
    train, test = signals[:45], signals[45:]
    emp_cov = skcov.empirical_covariance(train)
    test_cov = skcov.empirical_covariance(test)
    alphas = alpha_max(emp_cov) * np.array([0.5, 0.2, 0.1, 0.3])  # any order
    covariances, precisions, scores = graphical_lasso_path(train, alphas, X_test=test, tol=1e-10)
    for alpha, covariance, precision, score in zip(alphas, covariances, precisions, scores):
        ref_covariance, ref_precision = reference(emp_cov, alpha)
        np.testing.assert_allclose(precision, ref_precision, atol=1e-7)
        np.testing.assert_allclose(covariance, ref_covariance, atol=1e-7)
        np.testing.assert_allclose(score, skcov.log_likelihood(test_cov, ref_precision), atol=1e-7)
    covariances_only = graphical_lasso_path(train, alphas[:1])
    assert len(covariances_only) == 2


def within_a_grid_step(alpha, sklearn_cv):
    """Whether ``alpha`` is at most one step of scikit-learn's grid from its alpha_."""
    explored = np.sort(sklearn_cv.cv_results_["alphas"][:-1])
    position = np.searchsorted(explored, sklearn_cv.alpha_)
    neighbours = explored[max(position - 1, 0) : position + 2]
    step = np.max(np.abs(np.log(neighbours[1:] / neighbours[:-1])))
    return abs(np.log(alpha / sklearn_cv.alpha_)) <= step * (1 + 1e-9)


@pytest.fixture(scope="module")
def cv_signals():
    return sparse_gaussian(n_features=20, n_samples=80, sparsity=0.9, seed=5)


@pytest.fixture(scope="module")
def sklearn_cv(cv_signals):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return skcov.GraphicalLassoCV().fit(cv_signals)


@pytest.fixture(scope="module")
def brainxr_cv(cv_signals):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return GraphicalLassoCV().fit(cv_signals)


def test_cv_matches_sklearn(cv_signals, sklearn_cv, brainxr_cv):
    # scikit-learn's path converges on this problem: no -inf score
    assert np.isfinite(sklearn_cv.cv_results_["mean_test_score"][:-1]).all()
    assert within_a_grid_step(brainxr_cv.alpha_, sklearn_cv)
    assert brainxr_cv.cv_results_.keys() == sklearn_cv.cv_results_.keys()
    # same first grid, same last row (alpha 0, the empirical covariance)
    first_grid = np.logspace(np.log10(alpha_max(skcov.empirical_covariance(cv_signals)) / 100),
                             np.log10(alpha_max(skcov.empirical_covariance(cv_signals))), 4)
    assert np.isin(np.round(first_grid, 12), np.round(brainxr_cv.cv_results_["alphas"], 12)).all()
    for key in ("alphas", "mean_test_score", "split0_test_score"):
        assert brainxr_cv.cv_results_[key][-1] == sklearn_cv.cv_results_[key][-1]
    # the refit precision is accurate at the chosen alpha
    _, ref_precision = reference(skcov.empirical_covariance(cv_signals), brainxr_cv.alpha_)
    assert np.abs(brainxr_cv.precision_ - ref_precision).max() < 1e-3
    np.testing.assert_allclose(brainxr_cv.location_, cv_signals.mean(0))
    assert brainxr_cv.n_iter_ == len(brainxr_cv.costs_)


def test_cv_scores_are_held_out_likelihoods_of_accurate_solutions(cv_signals):
    alphas = [0.3, 0.15, 0.08]
    model = GraphicalLassoCV(alphas=alphas, cv=3, tol=1e-10, early_stopping=False).fit(cv_signals)
    np.testing.assert_allclose(model.cv_results_["alphas"][:-1], sorted(alphas, reverse=True))
    for fold, (train, test) in enumerate(KFold(3).split(cv_signals)):
        emp_cov = skcov.empirical_covariance(cv_signals[train])
        test_cov = skcov.empirical_covariance(cv_signals[test])
        expected = [
            skcov.log_likelihood(test_cov, reference(emp_cov, alpha)[1])
            for alpha in sorted(alphas, reverse=True)
        ]
        np.testing.assert_allclose(model.cv_results_[f"split{fold}_test_score"][:-1], expected, atol=1e-7)
    best = np.argmax(model.cv_results_["mean_test_score"][:-1])
    assert model.alpha_ == model.cv_results_["alphas"][best]


def test_early_stopping_keeps_the_choice(cv_signals, brainxr_cv):
    exact = GraphicalLassoCV(early_stopping=False).fit(cv_signals)
    assert exact.alpha_ == brainxr_cv.alpha_


@pytest.mark.parametrize("seed", [0, 2, 3])
def test_early_stopping_explores_the_same_grid(seed):
    """Skipped alphas (past a fall, seen at grid points or at the continuation
    steps between them) are brackets like the solved ones: the refinements,
    the explored alphas and the choice are those of solving everything."""
    signals = sparse_gaussian(n_features=30, n_samples=40, seed=seed)
    early = GraphicalLassoCV(cv=3).fit(signals)
    exact = GraphicalLassoCV(cv=3, early_stopping=False).fit(signals)
    skipped = ~np.isfinite(early.cv_results_["mean_test_score"][:-1])
    assert skipped.sum() >= 3
    assert np.isfinite(exact.cv_results_["mean_test_score"][:-1]).all()
    np.testing.assert_array_equal(early.cv_results_["alphas"], exact.cv_results_["alphas"])
    assert early.alpha_ == exact.alpha_
    # the skipped alphas scored below the best when solved
    exact_scores = exact.cv_results_["mean_test_score"][:-1]
    assert exact_scores[skipped].max() < exact_scores.max()


def test_cv_parallel_folds_give_the_same_result(cv_signals, brainxr_cv):
    parallel = GraphicalLassoCV(n_jobs=2).fit(cv_signals)
    assert parallel.alpha_ == brainxr_cv.alpha_
    for key, value in brainxr_cv.cv_results_.items():
        np.testing.assert_allclose(parallel.cv_results_[key], value, rtol=1e-12)
    np.testing.assert_allclose(parallel.precision_, brainxr_cv.precision_, rtol=1e-12)


def test_cv_accepts_dataarrays(cv_signals, brainxr_cv):
    signals = xr.DataArray(cv_signals, dims=("time", "region"))
    np.testing.assert_array_equal(GraphicalLassoCV().fit(signals).precision_, brainxr_cv.precision_)
    lazy = signals.chunk({"time": 20})
    assert isinstance(lazy.data, da.Array)
    with raise_if_dask_computes(max_computes=1):
        model = GraphicalLassoCV().fit(lazy)
    np.testing.assert_array_equal(model.precision_, brainxr_cv.precision_)


def test_cv_is_an_sklearn_estimator(cv_signals, brainxr_cv):
    model = clone(GraphicalLassoCV(alphas=3, n_refinements=2, cv=3))
    assert model.get_params()["n_refinements"] == 2
    model.fit(cv_signals)
    # scikit-learn's rows: every explored alpha (a refined grid may repeat
    # one), then alpha 0
    assert len(model.cv_results_["alphas"]) == 3 + 3 + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sklearn_model = skcov.GraphicalLassoCV(alphas=3, n_refinements=2, cv=3).fit(cv_signals)
    np.testing.assert_allclose(model.cv_results_["alphas"], sklearn_model.cv_results_["alphas"], rtol=1e-12)
    assert np.isfinite(brainxr_cv.score(cv_signals))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alphas": 1}, "alphas must be an integer >= 2"),
        ({"alphas": [0.1, -0.2]}, "each of alphas must be a finite number >= 0"),
        ({"alphas": []}, "alphas must not be empty"),
        ({"n_refinements": 0}, "'n_refinements' parameter of GraphicalLassoCV must be an int in the range \\[1, inf\\)"),
        ({"tol": -1}, "'tol' parameter of GraphicalLassoCV"),
        ({"early_stopping": "yes"}, "'early_stopping' parameter of GraphicalLassoCV must be an instance of 'bool'"),
    ],
)
def test_cv_bad_parameters(cv_signals, kwargs, message):
    with pytest.raises(ValueError, match=message):
        GraphicalLassoCV(**kwargs).fit(cv_signals)


def test_cv_too_few_samples(cv_signals):
    with pytest.raises(ValueError, match="n_splits=5 greater than the number of samples"):
        GraphicalLassoCV().fit(cv_signals[:4])
    signals = cv_signals[:9].copy()
    signals[:, 0] = 0
    signals[-1, 0] = 1  # constant in the training samples of the last fold
    with pytest.raises(ValueError, match="a training fold of X has constant features"):
        GraphicalLassoCV(cv=3).fit(signals)


def test_path_marks_failed_solves_like_sklearn():
    signals = band_limited()
    alphas = alpha_max(skcov.empirical_covariance(signals)) * np.array([0.5, 0.2, 0.02, 0.01])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        covariances, precisions, scores = graphical_lasso_path(
            signals[::2], alphas, X_test=signals[1::2], max_iter=20
        )
    failed = [bool(score == -np.inf) for score in scores]
    assert not failed[0] and failed[-1]
    # once a solve fails, the smaller alphas are not attempted
    assert failed == sorted(failed)
    for covariance, precision, is_failed in zip(covariances, precisions, failed):
        assert np.all(np.isnan(precision)) == is_failed
        assert np.all(np.isnan(covariance)) == is_failed


def _check_scores_are_converged(model, signals, cv=5):
    """Every finite fold score is the held-out likelihood of an accurate
    solution (within what a duality gap of ``tol`` = 1e-4 leaves)."""
    for fold, (train, test) in enumerate(KFold(cv).split(signals)):
        emp_cov = skcov.empirical_covariance(signals[train])
        test_cov = skcov.empirical_covariance(signals[test])
        for alpha, score in zip(model.cv_results_["alphas"][:-1], model.cv_results_[f"split{fold}_test_score"][:-1]):
            if np.isfinite(score):
                # scikit-learn's solver fails at some small alphas: a duality gap of 1e-12
                accurate = graphical_lasso(emp_cov, alpha, tol=1e-12, max_iter=1000)[1]
                expected = skcov.log_likelihood(test_cov, accurate)
                assert score == pytest.approx(expected, abs=5e-3), (alpha, fold)


@pytest.mark.parametrize("early_stopping", [True, False])
def test_fold_scores_come_from_converged_solves(early_stopping):
    """8 samples x 12 features: early-stopped fold solves once scored above
    every converged one and gave alpha_ 0.0387 where scikit-learn gives 0.357."""
    signals = np.random.default_rng(5).standard_normal((8, 12))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = skcov.GraphicalLassoCV().fit(signals)
        model = GraphicalLassoCV(early_stopping=early_stopping).fit(signals)
    assert model.alpha_ == pytest.approx(expected.alpha_, rel=1e-12)
    assert model.alpha_ == pytest.approx(0.3573, abs=1e-4)
    _check_scores_are_converged(model, signals)


def _sklearn_choice_is_converged(sklearn_cv):
    """scikit-learn's alpha_ is not its last finite score (a failure boundary)."""
    alphas = sklearn_cv.cv_results_["alphas"][:-1]
    scores = sklearn_cv.cv_results_["mean_test_score"][:-1]
    best = np.flatnonzero(alphas == sklearn_cv.alpha_)[-1]
    return best + 1 < len(scores) and np.isfinite(scores[best + 1])


@pytest.mark.slow
@pytest.mark.parametrize(("n_samples", "n_features"), [(8, 12), (10, 16), (12, 20), (16, 24), (20, 30)])
def test_small_problems_with_fewer_samples_than_features_match_sklearn(n_samples, n_features):
    """Wherever scikit-learn's own choice comes from converged folds, brainxr's
    alpha_ is within one step of its grid, with and without early stopping,
    and every score that competes is a converged one."""
    compared = 0
    for seed in range(4):
        signals = np.random.default_rng(seed).standard_normal((n_samples, n_features))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sklearn_cv = skcov.GraphicalLassoCV().fit(signals)
            models = [GraphicalLassoCV(early_stopping=flag).fit(signals) for flag in (True, False)]
        for model in models:
            _check_scores_are_converged(model, signals)
        if _sklearn_choice_is_converged(sklearn_cv):
            compared += 1
            for model in models:
                assert within_a_grid_step(model.alpha_, sklearn_cv), (seed, model.early_stopping)
    assert compared >= 2


@pytest.mark.parametrize(
    ("route", "density"), [("dense", 0.03), ("dense", 0.4), ("loops", 0.03), ("loops", 0.4), ("csr", 0.03)]
)
def test_newton_products_equal_the_double_precision_sandwich(route, density):
    """QUIC's Hessian and preconditioner products ``(M V M)`` at the free set,
    by each route (BLAS and the dots of the wanted entries, loops over the
    support, a sparse ``M``), equal the double-precision product to single
    precision."""
    from brainxr.connectome._quic import _Sandwich

    rng = np.random.default_rng(0)
    p = 60
    factor = rng.standard_normal((p, p))
    middle = factor @ factor.T / p + np.eye(p)
    if route == "csr":
        middle *= rng.random((p, p)) < 0.02
        middle = np.triu(middle) + np.triu(middle, 1).T + np.eye(p)
    upper = np.triu(rng.random((p, p)) < density)
    np.fill_diagonal(upper, True)
    cols, rows = np.nonzero(upper.T)  # sorted by column, as QUIC's free set
    vals = rng.standard_normal(rows.size)
    product = _Sandwich(middle, rows, cols)
    product.dense = route == "dense"
    if route != "csr":
        product.csr = None
    assert (product.csr is not None) == (route == "csr")
    v = np.zeros((p, p))
    v[rows, cols] = vals
    v[cols, rows] = vals
    expected = (middle @ v @ middle)[rows, cols]
    np.testing.assert_allclose(product(vals), expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def test_secant_start_is_nearer_the_solution_on_a_refined_grid():
    """Extrapolating the two solutions above ``alpha`` along the path starts
    closer to the solution at ``alpha`` than the closest solution does, and
    the solve from there converges to the same optimum."""
    from brainxr.connectome._quic import cholesky_logdet, primal_objective
    from brainxr.connectome._quic import quic as module_quic
    from brainxr.connectome.sparse_inverse_covariance import _secant_start

    emp_cov = skcov.empirical_covariance(sparse_gaussian(n_features=40, n_samples=30, seed=3))
    alphas = alpha_max(emp_cov) * 0.3 * 0.93 ** np.arange(3)  # a refined grid: geometric
    solutions = [graphical_lasso(emp_cov, alpha, tol=1e-10, max_iter=500)[1] for alpha in alphas]
    start = _secant_start(emp_cov, alphas[2], solutions[1], alphas[1], alphas[0], solutions[0])
    assert start is not solutions[1]
    assert np.abs(start - solutions[2]).max() < np.abs(solutions[1] - solutions[2]).max()

    def suboptimality(precision):
        objective = primal_objective(emp_cov, precision, cholesky_logdet(precision)[1], alphas[2])
        optimum = primal_objective(emp_cov, solutions[2], cholesky_logdet(solutions[2])[1], alphas[2])
        return objective - optimum

    assert 0 < suboptimality(start) < 0.2 * suboptimality(solutions[1])
    converged = graphical_lasso(emp_cov, alphas[2], tol=1e-10, max_iter=500)[1]
    from_start = module_quic(emp_cov, alphas[2], precision_init=start, tol=1e-10, max_iter=500)[1]
    np.testing.assert_allclose(from_start, converged, rtol=0, atol=1e-6)
    # beyond the last step of the path, or with a worse objective: the closest solution
    far = _secant_start(emp_cov, alphas[2] / 3, solutions[1], alphas[1], alphas[0], solutions[0])
    assert far is solutions[1]
    worse = _secant_start(emp_cov, alphas[2], solutions[1], alphas[1], alphas[0], solutions[1] + np.eye(40))
    assert worse is solutions[1]


def test_secant_warm_starts_keep_the_cv_choice(monkeypatch):
    """The folds' secant warm starts change where Newton starts, not what it
    converges to: the same grid, alpha_ and held-out scores (to the solver's
    tolerance) as plain warm starts, on signals with fewer samples than features."""
    import brainxr.connectome.sparse_inverse_covariance as module

    signals = sparse_gaussian(n_features=40, n_samples=36, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        secant = GraphicalLassoCV(cv=3).fit(signals)
        monkeypatch.setattr(module, "_previous_solution", lambda *args: None)
        plain = GraphicalLassoCV(cv=3).fit(signals)
    np.testing.assert_array_equal(secant.cv_results_["alphas"], plain.cv_results_["alphas"])
    assert secant.alpha_ == plain.alpha_
    np.testing.assert_allclose(secant.cv_results_["mean_test_score"], plain.cv_results_["mean_test_score"],
                               rtol=0, atol=1e-3)


@pytest.mark.parametrize("n_features", [1, 2, 7, 50])
def test_inverse_from_cholesky_is_the_symmetric_c_ordered_inverse(n_features):
    from brainxr.connectome._quic import cholesky_logdet, inverse_from_cholesky

    factor = np.random.default_rng(n_features).standard_normal((n_features, n_features))
    matrix = factor @ factor.T + n_features * np.eye(n_features)
    inverse = inverse_from_cholesky(cholesky_logdet(matrix)[0])
    assert inverse.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(inverse, inverse.T)
    np.testing.assert_allclose(inverse, np.linalg.inv(matrix), rtol=1e-10, atol=1e-12)
