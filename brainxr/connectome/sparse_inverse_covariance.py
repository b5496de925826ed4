"""Sparse inverse covariance: the graphical lasso, solved by QUIC, and its CV.

scikit-learn's API (:func:`graphical_lasso`, :class:`GraphicalLasso`,
:class:`GraphicalLassoCV`, :func:`graphical_lasso_path`) over a faster and
more accurate solver. The problem is scikit-learn's, unchanged::

    precision = argmin_X  tr(S X) - log det X + alpha * sum_{i != j} |X_ij|

(the diagonal is not penalised). Where scikit-learn solves it by block
coordinate descent (one lasso per column, first order), brainxr uses the
second-order QUIC method (Newton directions on an active set, see
:mod:`brainxr.connectome._quic`) and two exact reductions:

- **screening**: the solution is block diagonal along the connected
  components of the graph ``|S_ij| > alpha`` (Witten, Friedman and Simon
  2011; Mazumder and Hastie 2012), so each component is solved on its own,
  and isolated regions and pairs in closed form;
- **warm starts** along decreasing penalties, within a fold's path and from
  one grid refinement to the next, extrapolated along the path (secant)
  from the two closest solutions, with continuation (intermediate
  penalties) where two penalties are far apart.

Convergence is declared on a true duality gap (see
:func:`brainxr.connectome._quic.duality_gap`), which bounds the distance of
the objective to its optimum; scikit-learn's "dual gap" is a proxy that is
zero at the optimum but also at the diagonal starting point.

:class:`GraphicalLassoCV` runs scikit-learn's cross-validation procedure:
the same alpha grid and refinements, folds from ``check_cv``, held-out score
``log_likelihood(test_emp_cov, precision)`` and ``cv_results_``. Two things
differ, both documented on the class: folds can run in parallel threads
(the compiled solver releases the GIL), and with ``early_stopping=True``
(default) the alphas far past a fold's best held-out score are solved only
until their held-out likelihood falls, which saves the slowest solves
(dense, ill-conditioned) without touching the scores near the optimum.

The estimators are scikit-learn estimators (``EmpiricalCovariance``
subclasses, as scikit-learn's) that import scikit-learn on first use of its
protocol, as every brainxr estimator (:mod:`brainxr._estimator`): importing
``sklearn.covariance`` costs ~0.6 s, as much as the whole cross-validated
fit of a few dozen regions. Constructing, fitting on a numpy array and
reading the attributes need none of it: parameters that scikit-learn's
constraints accept are checked here, other values go through scikit-learn's
validation (its errors); ``cv=None`` or an int splits as scikit-learn's
``KFold`` (:mod:`brainxr.connectome._cross_validation`), other ``cv``
through its ``check_cv``; the
unpenalized score of ``cv_results_`` is ``EmpiricalCovariance``'s, computed
here. Before that first use, ``isinstance(estimator, EmpiricalCovariance)``
is False (scikit-learn's methods, ``score``, ``mahalanobis``, ..., work and
put it in place).
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from scipy.linalg import pinvh
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from threadpoolctl import threadpool_limits

from brainxr._arrays import is_finite_float_matrix
from brainxr._estimator import (
    Estimator,
    ScikitLearnConstraints,
    is_bool,
    is_int,
    is_int_at_least,
    is_none_or,
    is_one_of,
    is_real_above,
    is_verbose,
    replace_base_on_first_use,
    use_scikit_learn,
    validate_params,
)
from brainxr.connectome import _alpha_grid
from brainxr.connectome._cross_validation import check_cv, splits_as_kfold
from brainxr.connectome.covariance import empirical_covariance
from brainxr.connectome._quic import cholesky_logdet, inverse_from_cholesky, primal_objective, quic

__all__ = [
    "GraphicalLasso",
    "GraphicalLassoCV",
    "alpha_max",
    "graphical_lasso",
    "graphical_lasso_path",
]

_LOG_2PI = np.log(2 * np.pi)


# --------------------------------------------------------------------------
# input checks


def _check_emp_cov(emp_cov, name="emp_cov"):
    """A symmetric positive semi-definite matrix with a positive diagonal."""
    emp_cov = np.array(emp_cov, dtype=np.float64, order="C")
    if emp_cov.ndim != 2 or emp_cov.shape[0] != emp_cov.shape[1]:
        raise ValueError(f"{name} must be a square 2-D matrix, got shape {emp_cov.shape}")
    if emp_cov.shape[0] < 1:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(emp_cov)):
        raise ValueError(f"{name} contains NaN or infinite values")
    scale = np.abs(emp_cov).max()
    if not np.allclose(emp_cov, emp_cov.T, rtol=0, atol=1e-10 * max(scale, 1e-300)):
        raise ValueError(f"{name} must be symmetric")
    diagonal = np.diag(emp_cov)
    if np.any(diagonal <= 0):
        bad = np.flatnonzero(diagonal <= 0)
        raise ValueError(
            f"{name} must have a positive diagonal (a variance per feature); "
            f"features {bad[:10].tolist()} have variance {diagonal[bad[:10]].tolist()}"
        )
    smallest = np.linalg.eigvalsh(emp_cov)[0]
    if smallest < -1e-8 * scale * emp_cov.shape[0]:
        raise ValueError(
            f"{name} must be positive semi-definite (a covariance matrix); its "
            f"smallest eigenvalue is {smallest:.3g}"
        )
    return emp_cov


def alpha_max(emp_cov):
    """Smallest ``alpha`` whose graphical-lasso precision is diagonal.

    Parameters
    ----------
    emp_cov : ndarray of shape (n_features, n_features)
        The sample covariance matrix.

    Returns
    -------
    float
        The largest absolute off-diagonal entry of ``emp_cov``.
    """
    off_diagonal = np.abs(np.asarray(emp_cov, dtype=np.float64)).copy()
    np.fill_diagonal(off_diagonal, 0)
    return float(off_diagonal.max())


# --------------------------------------------------------------------------
# the solver with screening


def _sklearn_cost(objective, n_features):
    """scikit-learn's ``_objective``: ``-2 loglik + p log(2 pi) + alpha ||X||_off``."""
    return objective + 2 * n_features * _LOG_2PI


def _components(emp_cov, alpha):
    """Connected components of the graph ``|S_ij| > alpha`` (i != j)."""
    adjacency = np.abs(emp_cov) > alpha
    np.fill_diagonal(adjacency, False)
    n_components, labels = connected_components(csr_matrix(adjacency), directed=False)
    return n_components, labels


def _solve(
    emp_cov,
    alpha,
    *,
    precision_init=None,
    tol=1e-4,
    enet_tol=1e-4,
    max_iter=100,
    verbose=False,
):
    """Graphical lasso at one alpha, block by block along the screening components.

    Returns
    -------
    covariance, precision : ndarray
    costs : list of (objective, duality_gap)
        scikit-learn's objective and the duality gap of the whole problem,
        after each iteration (blocks that finished earlier hold their values).
    n_iter : int
        Newton iterations of the slowest block.
    status : str
        "converged" or, from the first block that did not converge, "max_iter"
        or "stalled".
    """
    n_features = emp_cov.shape[0]
    if alpha == 0:
        factor, logdet = cholesky_logdet(emp_cov)
        if factor is None:
            raise ValueError(
                "alpha=0 (no penalty) needs a positive definite emp_cov; use "
                "alpha > 0 when there are fewer samples than features"
            )
        precision = inverse_from_cholesky(factor)
        # tr(S S^-1) - log det S^-1
        cost = _sklearn_cost(n_features + logdet, n_features)
        return emp_cov.copy(), precision, [(cost, 0.0)], 0, "converged"

    n_components, labels = _components(emp_cov, alpha)
    diagonal = np.diag(emp_cov)
    precision = np.zeros_like(emp_cov)
    covariance = np.zeros_like(emp_cov)
    isolated = np.bincount(labels, minlength=n_components)[labels] == 1
    precision[isolated, isolated] = 1.0 / diagonal[isolated]
    covariance[isolated, isolated] = diagonal[isolated]
    # An isolated region contributes S_ii / S_ii - log(1 / S_ii) to the objective.
    fixed_objective = float(np.sum(1.0 + np.log(diagonal[isolated])))
    histories = []
    status = "converged"
    for component in range(n_components):
        block = np.flatnonzero(labels == component)
        if block.size == 1:
            continue
        index = np.ix_(block, block)
        if block.size == 2:
            fixed_objective += _solve_pair(emp_cov[index], alpha, precision, covariance, index)
            continue
        block_init = None if precision_init is None else precision_init[index]
        block_cov, block_prec, history, block_status = quic(
            emp_cov[index],
            alpha,
            precision_init=block_init,
            tol=tol * block.size / n_features,
            enet_tol=enet_tol,
            max_iter=max_iter,
            verbose=verbose,
        )
        precision[index] = block_prec
        covariance[index] = block_cov
        histories.append(history)
        if status == "converged" and block_status != "converged":
            status = block_status
    n_iter = max((len(history) - 1 for history in histories), default=0)
    costs = []
    for iteration in range(1 if n_iter else 0, n_iter + 1):
        objective = fixed_objective + sum(h[min(iteration, len(h) - 1)][0] for h in histories)
        gap = sum((h[min(iteration, len(h) - 1)][1] for h in histories), 0.0)
        costs.append((_sklearn_cost(objective, n_features), gap))
    return covariance, precision, costs, n_iter, status


def _solve_pair(emp_cov, alpha, precision, covariance, index):
    """Closed-form solution of a two-region component (``|S_01| > alpha``).

    Optimality gives ``W_ii = S_ii`` and ``W_01 = S_01 - alpha sign(S_01)``;
    the precision is its inverse. Writes both at ``index``; returns the
    objective ``tr(S X) - log det X + 2 alpha |X_01|`` of the pair.
    """
    pair_covariance = emp_cov.copy()
    pair_covariance[0, 1] = pair_covariance[1, 0] = emp_cov[0, 1] - alpha * np.sign(emp_cov[0, 1])
    determinant = pair_covariance[0, 0] * pair_covariance[1, 1] - pair_covariance[0, 1] ** 2
    pair_precision = np.array(
        [[pair_covariance[1, 1], -pair_covariance[0, 1]], [-pair_covariance[0, 1], pair_covariance[0, 0]]]
    ) / determinant
    covariance[index] = pair_covariance
    precision[index] = pair_precision
    return (
        np.vdot(emp_cov, pair_precision) + np.log(determinant) + 2 * alpha * abs(pair_precision[0, 1])
    )


def _warn_not_converged(status, n_iter, costs):
    if status in ("max_iter", "stalled"):
        reason = (
            f"did not converge after {n_iter} iterations"
            if status == "max_iter"
            else f"stopped after {n_iter} iterations: no decrease above rounding errors"
        )
        from sklearn.exceptions import ConvergenceWarning

        warnings.warn(
            f"graphical_lasso: {reason}: dual gap: {costs[-1][1]:.3e}",
            ConvergenceWarning,
            stacklevel=3,
        )


def graphical_lasso(
    emp_cov,
    alpha,
    *,
    mode="cd",
    tol=1e-4,
    enet_tol=1e-4,
    max_iter=100,
    verbose=False,
    return_costs=False,
    eps=np.finfo(np.float64).eps,
    return_n_iter=False,
):
    """L1-penalized covariance estimator (scikit-learn's signature, QUIC solver).

    Parameters
    ----------
    emp_cov : array-like of shape (n_features, n_features)
        Empirical covariance from which to compute the covariance estimate:
        symmetric, positive semi-definite, with a positive diagonal.
    alpha : float
        The regularization parameter (>= 0): the higher alpha, the sparser the
        inverse covariance. ``alpha=0`` inverts ``emp_cov``.
    mode : {'cd', 'lars'}, default='cd'
        scikit-learn's choice of inner lasso solver, accepted for
        compatibility: brainxr's QUIC solver is used in both cases.
    tol : float, default=1e-4
        Stop when the duality gap falls below ``tol`` (a bound on the distance
        of the objective to its optimum).
    enet_tol : float, default=1e-4
        Tolerance of the inner solver computing each Newton direction: its
        conjugate gradients stop at the relative residual ``min(0.3,
        sqrt(dual gap))`` but never below ``enet_tol``. Like scikit-learn's, it
        controls the accuracy of the search directions, not of the estimate.
    max_iter : int, default=100
        Maximum number of Newton iterations.
    verbose : bool, default=False
        Print the objective and duality gap at each iteration.
    return_costs : bool, default=False
        Also return the ``(objective, dual_gap)`` pairs of each iteration.
    eps : float, default=eps
        Accepted for compatibility with scikit-learn, where it regularises its
        coordinate descent; QUIC's Cholesky-checked line search needs none.
    return_n_iter : bool, default=False
        Also return the number of iterations.

    Returns
    -------
    covariance : ndarray of shape (n_features, n_features)
        The estimated covariance matrix (the inverse of ``precision``).
    precision : ndarray of shape (n_features, n_features)
        The estimated sparse precision matrix.
    costs : list of (objective, dual_gap) pairs
        scikit-learn's objective and the duality gap after each iteration.
        Returned only if ``return_costs`` is True.
    n_iter : int
        Number of iterations. Returned only if ``return_n_iter`` is True.

    Notes
    -----
    The diagonal is not penalised, as in scikit-learn. The solution is
    computed separately on each connected component of ``|emp_cov| > alpha``.
    """
    # scikit-learn's checks and messages, as its graphical_lasso does
    validate_params(GraphicalLasso(
        alpha=alpha, mode=mode, tol=tol, enet_tol=enet_tol, max_iter=max_iter,
        verbose=verbose, eps=eps,
    ))
    alpha = float(alpha)
    emp_cov = _check_emp_cov(emp_cov)
    with _blas_threads(emp_cov.shape[0]):
        covariance, precision, costs, n_iter, status = _solve(
            emp_cov, alpha, tol=tol, enet_tol=enet_tol, max_iter=max_iter, verbose=verbose
        )
    _warn_not_converged(status, n_iter, costs)
    output = [covariance, precision]
    if return_costs:
        output.append(costs)
    if return_n_iter:
        output.append(n_iter)
    return tuple(output)


class _EmpiricalCovariancePlaceholder(Estimator):
    """Holds ``sklearn.covariance.EmpiricalCovariance``'s place in :class:`_BaseGraphicalLasso`'s bases.

    Its ``__init__`` sets what ``EmpiricalCovariance``'s sets; each of
    ``EmpiricalCovariance``'s methods puts scikit-learn in place (see
    :mod:`brainxr._estimator`), then calls scikit-learn's.
    """

    def __init__(self, *, store_precision=True, assume_centered=False):
        self.store_precision = store_precision
        self.assume_centered = assume_centered

    def get_precision(self):
        return _empirical_covariance_method(self, "get_precision")()

    def score(self, X_test, y=None):
        return _empirical_covariance_method(self, "score")(X_test, y)

    def error_norm(self, comp_cov, norm="frobenius", scaling=True, squared=True):
        return _empirical_covariance_method(self, "error_norm")(comp_cov, norm=norm, scaling=scaling, squared=squared)

    def mahalanobis(self, X):
        return _empirical_covariance_method(self, "mahalanobis")(X)

    def _set_covariance(self, covariance):
        return _empirical_covariance_method(self, "_set_covariance")(covariance)


def _empirical_covariance_method(estimator, name):
    """scikit-learn's ``EmpiricalCovariance`` method ``name`` bound to ``estimator``, once in place."""
    use_scikit_learn()
    return getattr(super(_BaseGraphicalLasso, estimator), name)


class _BaseGraphicalLasso(_EmpiricalCovariancePlaceholder):
    """Shared parameters; ``EmpiricalCovariance`` (once in place) brings score, mahalanobis, ..."""

    #: values that scikit-learn's constraints accept (see :func:`brainxr._estimator.validate_params`)
    _accepted_parameters = {
        "assume_centered": is_bool,
        "tol": is_real_above(0, inclusive=False),
        "enet_tol": is_real_above(0, inclusive=False),
        "max_iter": is_int_at_least(0),
        "mode": is_one_of("cd", "lars"),
        "verbose": is_verbose,
        "eps": is_real_above(0, inclusive=True),
    }

    def __init__(
        self,
        tol=1e-4,
        enet_tol=1e-4,
        max_iter=100,
        mode="cd",
        verbose=False,
        eps=np.finfo(np.float64).eps,
        assume_centered=False,
    ):
        super().__init__(assume_centered=assume_centered)
        self.tol = tol
        self.enet_tol = enet_tol
        self.max_iter = max_iter
        self.mode = mode
        self.verbose = verbose
        self.eps = eps

    def _validate_X(self, X, ensure_min_samples):
        """scikit-learn's ``validate_data`` (it sets ``n_features_in_``); imported only for
        what is not a finite 2-D float numpy array of enough samples and features."""
        if hasattr(X, "dims") and hasattr(X, "data"):
            # xarray: one compute for dask-backed data, then plain numpy
            X = np.asarray(X)
        if is_finite_float_matrix(X, min_rows=ensure_min_samples):
            self.n_features_in_ = X.shape[1]
            if hasattr(self, "feature_names_in_"):  # fitted before on a DataFrame
                del self.feature_names_in_
            return X
        from sklearn.utils.validation import validate_data

        return validate_data(
            self, X, ensure_min_features=2, ensure_min_samples=ensure_min_samples
        )


replace_base_on_first_use(_BaseGraphicalLasso, "sklearn.covariance", "EmpiricalCovariance")


def _graphical_lasso_constraints():
    import sklearn.covariance

    return dict(sklearn.covariance.GraphicalLasso._parameter_constraints)


def _graphical_lasso_cv_constraints():
    import sklearn.covariance

    return {**sklearn.covariance.GraphicalLassoCV._parameter_constraints, "early_stopping": ["boolean"]}


class GraphicalLasso(_BaseGraphicalLasso):
    """Sparse inverse covariance estimation with an l1-penalized estimator.

    scikit-learn's :class:`~sklearn.covariance.GraphicalLasso` with brainxr's
    QUIC solver (see :func:`graphical_lasso`).

    Parameters
    ----------
    alpha : float, default=0.01
        The regularization parameter (>= 0).
    mode : {'cd', 'lars'}, default='cd'
        Accepted for compatibility; the QUIC solver is used in both cases.
    covariance : "precomputed", default=None
        If "precomputed", ``fit`` takes the covariance matrix instead of data.
    tol : float, default=1e-4
        Duality gap at which iterations stop.
    enet_tol : float, default=1e-4
        Tolerance of the inner solver computing each Newton direction.
    max_iter : int, default=100
        Maximum number of Newton iterations.
    verbose : bool, default=False
        Print the objective and duality gap at each iteration.
    eps : float, default=eps
        Accepted for compatibility with scikit-learn; unused by QUIC.
    assume_centered : bool, default=False
        If True, data are not centered before computation.

    Attributes
    ----------
    location_ : ndarray of shape (n_features,)
        Estimated location, i.e. the estimated mean.
    covariance_ : ndarray of shape (n_features, n_features)
        Estimated covariance matrix.
    precision_ : ndarray of shape (n_features, n_features)
        Estimated (sparse) precision matrix.
    n_iter_ : int
        Number of iterations run.
    costs_ : list of (objective, dual_gap) pairs
        scikit-learn's objective and the duality gap after each iteration.
    n_features_in_ : int
        Number of features seen during fit.
    """

    _parameter_constraints = ScikitLearnConstraints(_graphical_lasso_constraints)
    _accepted_parameters = {
        **_BaseGraphicalLasso._accepted_parameters,
        "alpha": is_real_above(0, inclusive=True),
        "covariance": is_one_of(None, "precomputed"),
    }

    def __init__(
        self,
        alpha=0.01,
        *,
        mode="cd",
        covariance=None,
        tol=1e-4,
        enet_tol=1e-4,
        max_iter=100,
        verbose=False,
        eps=np.finfo(np.float64).eps,
        assume_centered=False,
    ):
        super().__init__(
            tol=tol,
            enet_tol=enet_tol,
            max_iter=max_iter,
            mode=mode,
            verbose=verbose,
            eps=eps,
            assume_centered=assume_centered,
        )
        self.alpha = alpha
        self.covariance = covariance

    def fit(self, X, y=None):
        """Fit the GraphicalLasso model to X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data (or, with ``covariance="precomputed"``, the covariance).
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        validate_params(self)
        alpha = float(self.alpha)
        X = self._validate_X(X, ensure_min_samples=2)
        if self.covariance == "precomputed":
            emp_cov = _check_emp_cov(X, name="X (precomputed covariance)")
            self.location_ = np.zeros(X.shape[1])
        else:
            emp_cov = empirical_covariance(X, assume_centered=self.assume_centered)
            _check_variances(emp_cov)
            self.location_ = np.zeros(X.shape[1]) if self.assume_centered else X.mean(0)
        with _blas_threads(emp_cov.shape[0]):
            self.covariance_, self.precision_, self.costs_, self.n_iter_, status = _solve(
                emp_cov,
                alpha,
                tol=self.tol,
                enet_tol=self.enet_tol,
                max_iter=self.max_iter,
                verbose=self.verbose,
            )
        _warn_not_converged(status, self.n_iter_, self.costs_)
        return self


def _log_likelihood(emp_cov, precision):
    """scikit-learn's ``log_likelihood`` (mean Gaussian log-likelihood of the
    samples behind ``emp_cov``), with the log-determinant from a Cholesky
    factorisation (``-inf`` if ``precision`` is not positive definite)."""
    _, logdet = cholesky_logdet(precision)
    n_features = precision.shape[0]
    return (-np.vdot(emp_cov, precision) + logdet - n_features * _LOG_2PI) / 2.0


def _check_variances(emp_cov, what="X"):
    variances = np.diag(emp_cov)
    if np.any(variances <= 0):
        bad = np.flatnonzero(variances <= 0)
        raise ValueError(
            f"{what} has constant features (zero variance), which have no "
            f"precision: columns {bad[:10].tolist()}"
        )


# --------------------------------------------------------------------------
# paths and cross-validation


#: Penalty ratio between continuation steps, and their duality-gap tolerance.
_CONTINUATION_RATIO = 2.0
_CONTINUATION_TOL = 1e-1
#: The folds' solves get ``max_iter`` divided by this many Newton iterations.
_FOLD_ITER_DIVISOR = 4
#: Smaller problems are solved with one BLAS thread.
_BLAS_THREADS_MIN_FEATURES = 1000


def _continuation(alpha_start, alpha_target):
    """Intermediate penalties from ``alpha_start`` down to (excluding) ``alpha_target``."""
    if alpha_target <= 0:  # no penalty: a plain inversion, no path
        return []
    n_steps = int(np.ceil(np.log(alpha_start / alpha_target) / np.log(_CONTINUATION_RATIO)))
    if n_steps <= 1:
        return []
    return list(np.geomspace(alpha_start, alpha_target, n_steps + 1)[1:-1])


def _solve_from(
    emp_cov, alpha, precision, from_alpha, *, tol, enet_tol, max_iter, verbose=False,
    give_up=False,
):
    """Solve at ``alpha`` starting from ``precision``, the solution at ``from_alpha``.

    ``precision=None`` starts from the diagonal solution at ``alpha_max``.
    Between penalties more than ``_CONTINUATION_RATIO`` apart, intermediate
    ones are solved first (to ``_CONTINUATION_TOL``), so that Newton takes
    full steps. Returns :func:`_solve`'s tuple; with ``give_up``, a
    continuation step that does not converge ends the attempt there
    (``None`` matrices and its status).
    """
    if precision is None:
        from_alpha = alpha_max(emp_cov)
    steps = [] if from_alpha is None or from_alpha <= alpha else _continuation(from_alpha, alpha)
    for step_alpha in steps:
        _, precision, _, _, status = _solve(
            emp_cov, step_alpha, precision_init=precision, tol=_CONTINUATION_TOL,
            enet_tol=enet_tol, max_iter=max_iter,
        )
        if give_up and status != "converged":
            return None, None, [], max_iter, status
    return _solve(
        emp_cov, alpha, precision_init=precision, tol=tol, enet_tol=enet_tol,
        max_iter=max_iter, verbose=verbose,
    )


def graphical_lasso_path(
    X,
    alphas,
    cov_init=None,
    X_test=None,
    mode="cd",
    tol=1e-4,
    enet_tol=1e-4,
    max_iter=100,
    verbose=False,
    eps=np.finfo(np.float64).eps,
):
    """l1-penalized covariance estimator along a path of decreasing alphas.

    scikit-learn's :func:`~sklearn.covariance.graphical_lasso_path`; each
    solution warm-starts the next.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data from which to compute the covariance estimate (centered).
    alphas : array-like of shape (n_alphas,)
        The regularization parameters (> 0); solved in decreasing order,
        returned in the given order.
    cov_init : ndarray of shape (n_features, n_features), default=None
        Initial guess for the covariance (its inverse starts the path).
    X_test : ndarray of shape (n_test_samples, n_features), default=None
        Held-out data on which to score each solution.
    mode, eps
        Accepted for compatibility with scikit-learn.
    tol, enet_tol, max_iter, verbose
        As in :func:`graphical_lasso`.

    Returns
    -------
    covariances_ : list of ndarray of shape (n_features, n_features)
    precisions_ : list of ndarray of shape (n_features, n_features)
    scores_ : list of float
        Held-out log-likelihoods; returned only if ``X_test`` is given. A
        solve that does not converge within ``max_iter`` then fails, as in
        :class:`GraphicalLassoCV`: its score is ``-inf``, its matrices are
        ``nan`` (as scikit-learn's failures), and smaller alphas are skipped.
    """
    alphas = np.asarray(alphas, dtype=np.float64).ravel()
    for alpha in alphas:
        validate_params(GraphicalLasso(
            alpha=float(alpha), mode=mode, tol=tol, enet_tol=enet_tol, max_iter=max_iter,
            verbose=verbose, eps=eps,
        ))
    X = np.asarray(X, dtype=np.float64)
    emp_cov = empirical_covariance(X)
    _check_variances(emp_cov)
    precision = None
    if cov_init is not None:
        factor, _ = cholesky_logdet(_check_emp_cov(cov_init, "cov_init"))
        if factor is None:
            raise ValueError("cov_init must be positive definite")
        precision = inverse_from_cholesky(factor)
    test_cov = None if X_test is None else empirical_covariance(np.asarray(X_test))
    covariances = [np.nan] * len(alphas)
    precisions = [np.nan] * len(alphas)
    scores = [-np.inf] * len(alphas)
    current_alpha = None
    verbose = int(verbose)
    with _blas_threads(emp_cov.shape[0]):
        for position in np.argsort(alphas, kind="stable")[::-1]:
            alpha = float(alphas[position])
            covariance, next_precision, costs, n_iter, status = _solve_from(
                emp_cov, alpha, precision, current_alpha, tol=tol, enet_tol=enet_tol,
                max_iter=max_iter, verbose=verbose > 1, give_up=test_cov is not None,
            )
            if test_cov is not None and status != "converged":
                if verbose > 1:
                    print(f"[graphical_lasso_path] alpha: {alpha:.2e}, did not converge ({status})")
                break  # smaller alphas are harder still: they fail too
            _warn_not_converged(status, n_iter, costs)
            precision, current_alpha = next_precision, alpha
            covariances[position], precisions[position] = covariance, precision
            if test_cov is not None:
                scores[position] = _fold_score(test_cov, precision)
            if verbose > 1:
                print(f"[graphical_lasso_path] alpha: {alpha:.2e}")
            elif verbose:
                sys.stderr.write(".")
    if X_test is not None:
        return covariances, precisions, scores
    return covariances, precisions


def _fold_score(test_cov, precision):
    """Held-out log-likelihood, ``-inf`` where it is not finite."""
    score = _log_likelihood(test_cov, precision)
    return score if np.isfinite(score) else -np.inf


def _fold_solve(fold, alpha, precision, from_alpha, tol, enet_tol, max_iter, previous=None):
    """One fold at one alpha: ``(precision, score)``, or ``(None, -inf)``
    when the solve (or a continuation step) does not converge within
    ``max_iter`` iterations. ``previous``: ``(alpha, precision)`` of the
    solution before ``(from_alpha, precision)`` on the path, to extrapolate
    the starting point from (see :func:`_secant_start`)."""
    train_cov, test_cov = fold
    if previous is not None:
        precision = _secant_start(train_cov, alpha, precision, from_alpha, *previous)
    _, precision, _, _, status = _solve_from(
        train_cov, alpha, precision, from_alpha, tol=tol, enet_tol=enet_tol,
        max_iter=max_iter, give_up=True,
    )
    if status != "converged":
        return None, -np.inf
    return precision, _fold_score(test_cov, precision)


#: A fall of the mean held-out score counts when it exceeds this many
#: standard errors of the fold-by-fold differences, or when it lies at least
#: this factor below the best alpha (a step of the first grid is 4.6).
_FALL_STANDARD_ERRORS = 2.0
_COARSE_FALL_RATIO = 4.0


def _past_a_fall(alpha, explored):
    """Whether the held-out score clearly fell between ``alpha`` and the best
    alpha explored above it.

    ``explored`` holds ``(alpha, fold scores)`` pairs. The fall is clear when
    some alpha in between scores below the best in the mean by more than
    ``_FALL_STANDARD_ERRORS`` standard errors of the fold-by-fold
    differences, or lies ``_COARSE_FALL_RATIO`` or more below the best: the
    small dips of noisy small-sample curves between close alphas do not count.
    """
    above = [
        (other, np.asarray(scores)) for other, scores in explored
        if other > alpha and np.all(np.isfinite(scores))
    ]
    if not above:
        return False
    best_mean = max(scores.mean() for _, scores in above)
    best_alpha, best_scores = min(
        ((other, scores) for other, scores in above if scores.mean() == best_mean),
        key=lambda entry: entry[0],
    )
    for other, scores in above:
        if other < best_alpha:
            differences = scores - best_scores
            if differences.mean() < 0 and other * _COARSE_FALL_RATIO <= best_alpha:
                return True
            spread = differences.std(ddof=1) / np.sqrt(differences.size) if differences.size > 1 else 0.0
            if differences.mean() + _FALL_STANDARD_ERRORS * spread < 0:
                return True
    return False


def _parallel(n_jobs, verbose):
    """Sequential, or threads with one BLAS thread each (the solver releases the GIL)."""
    return Parallel(n_jobs=n_jobs, prefer="threads", verbose=verbose)


class GraphicalLassoCV(_BaseGraphicalLasso):
    """Sparse inverse covariance with a cross-validated choice of the l1 penalty.

    scikit-learn's :class:`~sklearn.covariance.GraphicalLassoCV` (same
    parameters, attributes and cross-validation procedure) over brainxr's
    QUIC solver with screening and warm starts.

    Parameters
    ----------
    alphas : int or array-like of shape (n_alphas,), default=4
        Number of points on the alpha grid (refined ``n_refinements`` times
        around the best one), or the grid itself (values >= 0, no refinement).
    n_refinements : int, default=4
        The number of times the grid is refined.
    cv : int, cross-validation generator or iterable, default=None
        Cross-validation splitting strategy, as in scikit-learn (None: 5-fold
        ``KFold``).
    tol : float, default=1e-4
        Duality gap at which iterations stop, in the folds and in the final fit.
    enet_tol : float, default=1e-4
        Tolerance of the inner solver computing each Newton direction.
    max_iter : int, default=100
        Maximum number of Newton iterations per solve (a quarter of it per
        solve in the folds, see Notes).
    mode : {'cd', 'lars'}, default='cd'
        Accepted for compatibility; the QUIC solver is used in both cases.
    n_jobs : int, default=None
        Folds solved in parallel: ``None`` or 1 is sequential, -1 uses all
        cores. Parallel folds run in threads limited to one BLAS thread each.
    verbose : bool or int, default=False
        Print progress (refinements; more with higher values).
    eps : float, default=eps
        Accepted for compatibility with scikit-learn; unused by QUIC.
    assume_centered : bool, default=False
        If True, data are not centered before computing the final covariance
        (folds are always centered, as in scikit-learn).
    early_stopping : bool, default=True
        Skip the penalties past a clear fall of the mean held-out score: an
        alpha is not solved (it scores ``-inf`` in ``cv_results_``, as a
        failure) when, between it and the best alpha explored above it, the
        mean score has fallen below the best by more than two standard
        errors of the fold-by-fold differences, or at an alpha 4 times
        smaller than the best or less. Those alphas are the densest and
        slowest to solve, and with a mean score that rises to one maximum and
        then falls they cannot be the best. The scores of the continuation
        steps between two grid points (see Notes) count as evidence of a
        fall, so the descent stops before the densest solve. A skipped alpha
        counts as scored below the best when the next grid is bracketed: the
        grids explored are those of solving every point. False solves every
        point, as scikit-learn does. Every score that competes for
        ``alpha_`` comes from a converged solve either way.

    Attributes
    ----------
    location_ : ndarray of shape (n_features,)
        Estimated location, i.e. the estimated mean.
    covariance_ : ndarray of shape (n_features, n_features)
        Estimated covariance matrix.
    precision_ : ndarray of shape (n_features, n_features)
        Estimated precision matrix (inverse covariance).
    costs_ : list of (objective, dual_gap) pairs
        Of the final fit, after each iteration.
    alpha_ : float
        Penalization parameter selected.
    cv_results_ : dict of ndarrays
        ``alphas`` (all explored, then 0), ``split{k}_test_score``,
        ``mean_test_score``, ``std_test_score``, as in scikit-learn (the row
        of alpha 0 scores the unpenalized empirical covariance).
    n_iter_ : int
        Number of iterations run for the optimal alpha.
    n_features_in_ : int
        Number of features seen during fit.

    Notes
    -----
    The selection follows scikit-learn's exactly: the grid spans
    ``[alpha_max / 100, alpha_max]`` log-uniformly, is refined between the
    neighbours of the best mean held-out score, ties go to the smallest
    alpha, and the model is refit on all data at the chosen alpha. The held-out
    scores differ from scikit-learn's where its solver is inexact (it runs at
    most ``max_iter / 10`` iterations per point) or fails (it scores ``-inf``
    at small alphas when the problem is ill-conditioned, typically with fewer
    samples than features); brainxr's solves are converged there, so its
    ``alpha_`` can be smaller than scikit-learn's, which then sits on its
    last finite score.

    The folds are solved together, alpha after alpha in decreasing order,
    each fold warm-started from its solution at the closest alpha above (the
    previous one of the grid, or one an earlier grid kept), or from the
    linear extrapolation of its solutions at the two closest solved alphas
    above when that point is positive definite with a lower objective; between two alphas
    more than twice apart, intermediate (continuation) penalties are solved
    first, to a duality gap of 0.1, for every fold. A fold's solve gets
    ``max_iter / 4`` Newton iterations (scikit-learn's get ``max_iter / 10``
    coordinate-descent sweeps, each far less work than a Newton iteration);
    one that does not converge within them fails, as scikit-learn's failures
    do: that alpha scores ``-inf`` in every fold (the folds not yet solved
    there are not attempted), and so do the smaller alphas of that grid, which
    are not attempted either; the grid is then refined above the failure. This bounds the time spent where the held-out
    likelihood keeps rising as alpha falls, which happens when the samples
    span fewer dimensions than there are features (band-pass filtered
    signals, for example, have about ``2 * n_samples * t_r * (low_pass -
    high_pass)`` degrees of freedom): the precision then grows without bound
    along the directions the data never visit and each halving of alpha
    costs more iterations. A :class:`UserWarning` says when the chosen alpha
    is the smallest one that converged.
    """

    _parameter_constraints = ScikitLearnConstraints(_graphical_lasso_cv_constraints)
    _accepted_parameters = {
        **_BaseGraphicalLasso._accepted_parameters,
        "alphas": is_int_at_least(0),
        "n_refinements": is_int_at_least(1),
        "cv": splits_as_kfold,
        "n_jobs": is_none_or(is_int),
        "early_stopping": is_bool,
    }

    def __init__(
        self,
        *,
        alphas=4,
        n_refinements=4,
        cv=None,
        tol=1e-4,
        enet_tol=1e-4,
        max_iter=100,
        mode="cd",
        n_jobs=None,
        verbose=False,
        eps=np.finfo(np.float64).eps,
        assume_centered=False,
        early_stopping=True,
    ):
        super().__init__(
            tol=tol,
            enet_tol=enet_tol,
            max_iter=max_iter,
            mode=mode,
            verbose=verbose,
            eps=eps,
            assume_centered=assume_centered,
        )
        self.alphas = alphas
        self.n_refinements = n_refinements
        self.cv = cv
        self.n_jobs = n_jobs
        self.early_stopping = early_stopping

    def fit(self, X, y=None):
        """Fit the GraphicalLasso covariance model to X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data from which to compute the covariance estimate. An
            ``xarray.DataArray`` of ``(time, region)`` signals works too.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        validate_params(self)
        X = self._validate_X(X, ensure_min_samples=2)
        self.location_ = np.zeros(X.shape[1]) if self.assume_centered else X.mean(0)
        emp_cov = empirical_covariance(X, assume_centered=self.assume_centered)
        _check_variances(emp_cov)
        cv = check_cv(self.cv, y)
        alphas, n_refinements = _alpha_grid.initial_grid(
            self.alphas, self.n_refinements, alpha_max(emp_cov)
        )
        verbose = int(self.verbose)
        fold_max_iter = _fold_max_iter(self.max_iter)

        # [alpha, per-fold scores, per-fold precisions (kept only where a
        # later grid can start), outcome], in decreasing order of alpha; outcome
        # is _SOLVED, _FAILED or _SKIPPED
        explored = []
        # (alpha, per-fold scores) of the continuation steps: evidence of a
        # fall for early stopping, not grid points
        steps = []
        warm_starts, warm_start_alpha = None, None
        t0 = time.time()
        with _blas_threads(X.shape[1], self.n_jobs):
            for refinement in range(n_refinements):
                folds = []
                for train, test in cv.split(X, y):
                    train_cov = empirical_covariance(X[train])
                    _check_variances(train_cov, what="a training fold of X")
                    folds.append((train_cov, empirical_covariance(X[test])))
                if warm_starts is None or len(warm_starts) != len(folds):
                    warm_starts, warm_start_alpha = [None] * len(folds), None
                self._cv_grid(
                    folds, alphas, warm_starts, warm_start_alpha, explored, steps, fold_max_iter, verbose
                )
                explored_alphas = [entry[0] for entry in explored]
                best, last_finite = _best_index(explored)
                bracket = (np.inf, np.inf)
                if refinement + 1 < n_refinements:
                    alphas, start = _alpha_grid.refined_grid(
                        explored_alphas, best, last_finite, len(alphas)
                    )
                    warm_start_alpha, _, warm_starts, _ = explored[start]
                    below = [alpha for alpha in explored_alphas if alpha < min(alphas)]
                    above = [alpha for alpha in explored_alphas if alpha > warm_start_alpha]
                    bracket = (max(below, default=0.0), min(above, default=warm_start_alpha))
                # The later grids lie inside this bracket and start from one
                # of its points (extrapolating from the point above it, see
                # _secant_start): the other solutions are dropped.
                for entry in explored:
                    if not bracket[0] <= entry[0] <= bracket[1]:
                        entry[2] = None
                if verbose and n_refinements > 1:
                    print(
                        "[GraphicalLassoCV] Done refinement % 2i out of %i: % 3is"
                        % (refinement + 1, n_refinements, time.time() - t0)
                    )
            best_alpha = explored_alphas[best]

            grid_alphas = explored_alphas + [0]
            grid_scores = [list(entry[1]) for entry in explored]
            # Finally, the score of the unpenalized empirical covariance, as scikit-learn.
            grid_scores.append(_empirical_scores(X, cv.split(X, y)))
            grid_scores = np.array(grid_scores)
            self.cv_results_ = {"alphas": np.array(grid_alphas)}
            for i in range(grid_scores.shape[1]):
                self.cv_results_[f"split{i}_test_score"] = grid_scores[:, i]
            self.cv_results_["mean_test_score"] = np.mean(grid_scores, axis=1)
            with np.errstate(invalid="ignore"):  # the spread of -inf scores is nan
                self.cv_results_["std_test_score"] = np.std(grid_scores, axis=1)
            self.alpha_ = best_alpha
            outcomes = [entry[3] for entry in explored]
            if best + 1 < len(outcomes) and _FAILED in outcomes[best + 1 :] and all(
                outcome != _SOLVED for outcome in outcomes[best + 1 :]
            ):
                warnings.warn(
                    f"GraphicalLassoCV: the held-out likelihood still rose at alpha_={best_alpha:.3g}, "
                    f"the smallest alpha whose fold solves converged within {fold_max_iter} "
                    f"iterations (max_iter / {_FOLD_ITER_DIVISOR}). The samples may span fewer "
                    f"dimensions than the {X.shape[1]} features (band-pass filtered signals, for "
                    "example); a larger max_iter explores smaller alphas, at a growing cost.",
                    UserWarning,
                    stacklevel=2,
                )

            # Refit on all samples, along the path from alpha_max.
            self.covariance_, self.precision_, self.costs_, self.n_iter_, status = _solve_from(
                emp_cov, best_alpha, None, None, tol=self.tol, enet_tol=self.enet_tol,
                max_iter=self.max_iter, verbose=max(0, verbose - 1) > 0,
            )
        _warn_not_converged(status, self.n_iter_, self.costs_)
        return self

    def _cv_grid(self, folds, alphas, warm_starts, warm_start_alpha, explored, steps, max_iter, verbose):
        """Solve every fold along one grid, alpha after alpha in decreasing
        order, and add the scores (and solutions) to ``explored``.

        Between penalties more than ``_CONTINUATION_RATIO`` apart, the
        intermediate (continuation) penalties are solved for every fold first
        and their held-out scores added to ``steps``: with early stopping, a
        clear fall there ends the descent before the densest solve.
        """
        precisions = list(warm_starts)
        from_alpha = warm_start_alpha
        failed = False
        parallel = _parallel(self.n_jobs, max(0, verbose - 1))
        batch = effective_n_jobs(self.n_jobs)
        new = []

        def evidence():
            return [(entry[0], entry[1]) for entry in explored + new if entry[3] == _SOLVED] + steps

        def solve_folds(alpha, tol, previous=None):
            """Every fold at ``alpha`` from ``precisions``, in batches of
            n_jobs: ``[(precision, score)]``, or None as soon as one fails."""
            results = []
            work = list(zip(folds, precisions))
            for start in range(0, len(work), batch):
                results += parallel(
                    delayed(_fold_solve)(
                        fold, alpha, precision, from_alpha, tol, self.enet_tol, max_iter,
                        None if previous is None else (previous[0], previous[1][index]),
                    )
                    for index, (fold, precision) in enumerate(work[start : start + batch], start)
                )
                if any(precision is None for precision, _ in results):
                    return None
            return results

        for alpha in sorted(alphas, reverse=True):
            alpha = float(alpha)
            outcome = _FAILED if failed else _SOLVED
            if not failed and self.early_stopping and _past_a_fall(alpha, evidence()):
                outcome = _SKIPPED
            # warm start from the closest solution above, which an earlier
            # grid may hold (the previous alpha of this grid can be further)
            closer = [
                entry for entry in explored
                if entry[2] is not None and alpha < entry[0] < (np.inf if from_alpha is None else from_alpha)
            ]
            if closer and len(closer[-1][2]) == len(folds):
                from_alpha, precisions = closer[-1][0], list(closer[-1][2])
            # continuation steps (none from the diagonal start: each fold's
            # own alpha_max differs, _solve_from steps from there)
            for step_alpha in [] if from_alpha is None or outcome != _SOLVED else _continuation(from_alpha, alpha):
                results = solve_folds(step_alpha, _CONTINUATION_TOL)
                if results is None:
                    failed, outcome = True, _FAILED
                    break
                precisions = [precision for precision, _ in results]
                from_alpha = step_alpha
                steps.append((step_alpha, [score for _, score in results]))
                if self.early_stopping and _past_a_fall(alpha, evidence()):
                    outcome = _SKIPPED
                    break
            previous = _previous_solution(explored + new, from_alpha, len(folds))
            results = solve_folds(alpha, self.tol, previous) if outcome == _SOLVED else None
            if outcome == _SOLVED and results is None:
                failed, outcome = True, _FAILED
            if outcome != _SOLVED:
                # scored -inf in every fold, whichever were attempted
                new.append([alpha, [-np.inf] * len(folds), None, outcome])
            else:
                precisions = [precision for precision, _ in results]
                new.append([alpha, [score for _, score in results], precisions, outcome])
                from_alpha = alpha
            scores = new[-1][1]
            if verbose > 1:
                print(f"[GraphicalLassoCV] alpha: {alpha:.3e}, mean score: {np.mean(scores):.4e} ({outcome})")
            elif verbose:
                sys.stderr.write(".")
        # scikit-learn's order: decreasing alpha, earlier entries first on ties
        explored.extend(new)
        explored.sort(key=lambda entry: entry[0], reverse=True)


def _empirical_scores(X, splits):
    """The held-out scores of ``EmpiricalCovariance()`` fitted on each training fold
    (scikit-learn's ``cross_val_score(EmpiricalCovariance(), X, cv=cv)``, a test checks it):
    the test samples centered on the training mean, scored against the pseudo-inverse
    of the training covariance."""
    scores = []
    for train, test in splits:
        location = X[train].mean(0)
        precision = pinvh(empirical_covariance(X[train]), check_finite=False)
        test_cov = empirical_covariance(X[test] - location, assume_centered=True)
        sign, logdet = np.linalg.slogdet(precision)
        logdet = logdet if sign > 0 else -np.inf
        score = -np.sum(test_cov * precision) + logdet - precision.shape[0] * np.log(2 * np.pi)
        scores.append(score / 2.0)
    return np.array(scores)


#: Secant warm starts extrapolate at most this many times the last step of the path.
_SECANT_MAX_RATIO = 1.0


def _secant_start(emp_cov, alpha, precision, from_alpha, previous_alpha, previous_precision):
    """The starting point at ``alpha`` extrapolated linearly along the path
    from the solutions at ``previous_alpha`` and ``from_alpha`` (above it),
    if it is positive definite and has a lower objective at ``alpha`` than
    ``precision``; else ``precision``.

    The solution path is piecewise smooth in ``alpha``: on the close alphas
    of a refined grid the secant point starts Newton nearer the solution
    (measured: a fifth to a third fewer iterations there). The solve and its
    convergence test are unchanged.
    """
    if not previous_alpha > from_alpha > alpha:
        return precision
    ratio = (from_alpha - alpha) / (previous_alpha - from_alpha)
    if ratio > _SECANT_MAX_RATIO:
        return precision
    predicted = precision + ratio * (precision - previous_precision)
    _, logdet = cholesky_logdet(predicted)
    if not np.isfinite(logdet):
        return precision
    _, start_logdet = cholesky_logdet(precision)
    if primal_objective(emp_cov, predicted, logdet, alpha) < primal_objective(emp_cov, precision, start_logdet, alpha):
        return predicted
    return precision


def _previous_solution(explored, from_alpha, n_folds):
    """``(alpha, per-fold precisions)`` of the solved grid point just above
    ``from_alpha``, if ``from_alpha`` itself is a solved grid point (not a
    continuation step) and both still hold their solutions; else None."""
    solved = sorted(
        ((entry[0], entry[2]) for entry in explored
         if entry[2] is not None and entry[3] == _SOLVED and len(entry[2]) == n_folds),
        key=lambda pair: pair[0],
    )
    if from_alpha is None or from_alpha not in [alpha for alpha, _ in solved]:
        return None
    # the grids can repeat an alpha: the next distinct one above
    return next(((alpha, precisions) for alpha, precisions in solved if alpha > from_alpha), None)


#: Outcomes of a grid point: solved in every fold; a fold did not converge
#: (it and the smaller alphas of its grid score -inf, as scikit-learn's
#: failures); not solved, past a clear fall of the held-out score (-inf too).
_SOLVED, _FAILED, _SKIPPED = "solved", "failed", "skipped"


def _best_index(explored):
    """``_alpha_grid.best_index`` of the explored grid points, where an alpha
    skipped past a fall counts as scored below the best (the next grid
    brackets the best between its neighbours, as it would had it been
    solved), and only a failure as the end of the finite scores."""
    best, last_finite = _alpha_grid.best_index([np.mean(entry[1]) for entry in explored])
    skipped = [index for index, entry in enumerate(explored) if entry[3] == _SKIPPED]
    return best, max([last_finite] + skipped)


def _fold_max_iter(max_iter):
    """Newton iterations allowed per solve in the folds (scikit-learn's folds
    get a tenth of its coordinate-descent sweeps; a Newton iteration does
    far more work than a sweep)."""
    return max(1, -(-max_iter // _FOLD_ITER_DIVISOR))


def _blas_threads(n_features, n_jobs=None):
    """One BLAS thread for parallel folds, and below ``_BLAS_THREADS_MIN_FEATURES``
    features, where threads cost more than they save (measured: the CV of 264
    regions took twice as long with two BLAS threads as with one)."""
    if (n_jobs is not None and n_jobs != 1) or n_features < _BLAS_THREADS_MIN_FEATURES:
        return threadpool_limits(limits=1)
    return contextlib.nullcontext()
