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
  one grid refinement to the next, with continuation (intermediate
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
"""

from __future__ import annotations

import contextlib
import operator
import sys
import time
import warnings
from numbers import Integral, Real

import numpy as np
from joblib import Parallel, delayed
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.covariance import EmpiricalCovariance, empirical_covariance
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import check_cv, cross_val_score
from sklearn.utils.validation import validate_data
from threadpoolctl import threadpool_limits

from brainxr.connectome._quic import cholesky_logdet, inverse_from_cholesky, quic

__all__ = [
    "GraphicalLasso",
    "GraphicalLassoCV",
    "alpha_max",
    "graphical_lasso",
    "graphical_lasso_path",
]

_LOG_2PI = np.log(2 * np.pi)
_MODES = ("cd", "lars")


# --------------------------------------------------------------------------
# input checks


def _check_alpha(alpha, name="alpha"):
    if isinstance(alpha, bool) or not isinstance(alpha, Real) or not np.isfinite(alpha):
        raise ValueError(f"{name} must be a finite number >= 0, got {alpha!r}")
    if alpha < 0:
        raise ValueError(f"{name} must be >= 0, got {alpha!r}")
    return float(alpha)


def _check_solver_params(tol, enet_tol, max_iter, mode):
    for name, value in (("tol", tol), ("enet_tol", enet_tol)):
        if isinstance(value, bool) or not isinstance(value, Real) or not value > 0:
            raise ValueError(f"{name} must be a number > 0, got {value!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, Integral) or max_iter < 0:
        raise ValueError(f"max_iter must be an integer >= 0, got {max_iter!r}")
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")


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
    heldout_cov=None,
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
        "converged" or, from the first block that did not converge, "max_iter",
        "stalled" or "early_stopped".
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
            heldout_cov=None if heldout_cov is None else heldout_cov[index],
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
    alpha = _check_alpha(alpha)
    _check_solver_params(tol, enet_tol, max_iter, mode)
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


class _BaseGraphicalLasso(EmpiricalCovariance):
    """Shared parameters; ``EmpiricalCovariance`` brings score, mahalanobis, ..."""

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
        if hasattr(X, "dims") and hasattr(X, "data"):
            # xarray: one compute for dask-backed data, then plain numpy
            X = np.asarray(X)
        return validate_data(
            self, X, ensure_min_features=2, ensure_min_samples=ensure_min_samples
        )


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
        alpha = _check_alpha(self.alpha)
        _check_solver_params(self.tol, self.enet_tol, self.max_iter, self.mode)
        if self.covariance not in (None, "precomputed"):
            raise ValueError(
                f"covariance must be None or 'precomputed', got {self.covariance!r}"
            )
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
#: Early stopping applies to penalties this factor below a fold's best one.
_EARLY_STOPPING_RATIO = 1.5
#: The folds' solves get ``max_iter`` divided by this many Newton iterations.
_FOLD_ITER_DIVISOR = 4
#: Smaller problems are solved with one BLAS thread.
_BLAS_THREADS_MIN_FEATURES = 1000


def _continuation(alpha_start, alpha_target):
    """Intermediate penalties from ``alpha_start`` down to (excluding) ``alpha_target``."""
    n_steps = int(np.ceil(np.log(alpha_start / alpha_target) / np.log(_CONTINUATION_RATIO)))
    if n_steps <= 1:
        return []
    return list(np.geomspace(alpha_start, alpha_target, n_steps + 1)[1:-1])


def _new_history():
    """A fold's record across refinements (see :func:`_path`)."""
    return {"best_alpha": None, "best_score": -np.inf, "smallest_alpha": np.inf, "failed_alpha": 0.0}


def _path(
    emp_cov,
    alphas,
    *,
    test_cov=None,
    precision_init=None,
    init_alpha=None,
    tol=1e-4,
    enet_tol=1e-4,
    max_iter=100,
    early_stopping=False,
    history=None,
    verbose=0,
):
    """Solutions (and held-out scores) along ``alphas``, warm-started in
    decreasing order; results are returned in the order of ``alphas``.

    ``precision_init`` solves the problem at ``init_alpha`` (None: unknown);
    without it the path starts from the diagonal solution at ``alpha_max``.
    Between penalties more than ``_CONTINUATION_RATIO`` apart, intermediate
    ones are solved first (to ``_CONTINUATION_TOL``): Newton then takes full
    steps.

    With ``early_stopping``, an alpha far past this fold's best held-out
    score is solved only until its held-out likelihood falls (see
    :class:`GraphicalLassoCV`). With ``test_cov``, a solve that does not
    converge within ``max_iter`` iterations fails: it scores ``-inf``, as a
    failed solve does in scikit-learn, and the smaller alphas (harder still)
    are not attempted. ``history`` carries, from one call to the next, the
    best converged score, its alpha, the smallest converged alpha and the
    largest failed one; it is updated in place.
    """
    order = np.argsort(alphas, kind="stable")[::-1]
    covariances = [None] * len(alphas)
    precisions = [None] * len(alphas)
    scores = [None] * len(alphas)
    precision = precision_init
    if history is None:
        history = _new_history()

    def converged_at(alpha, precision):
        if test_cov is None:
            return
        score = _log_likelihood(test_cov, precision)
        if score > history["best_score"]:
            history["best_alpha"], history["best_score"] = alpha, score
        history["smallest_alpha"] = min(history["smallest_alpha"], alpha)

    def past_the_best(alpha):
        # the held-out score fell after its best, and alpha is far below it
        best = history["best_alpha"]
        return (
            early_stopping
            and best is not None
            and history["smallest_alpha"] < best
            and alpha < best / _EARLY_STOPPING_RATIO
        )

    # penalty whose solution ``precision`` is (None: unknown, no continuation)
    current_alpha = alpha_max(emp_cov) if precision_init is None else init_alpha
    for position in order:
        alpha = float(alphas[position])
        if test_cov is not None and alpha <= history["failed_alpha"]:
            scores[position] = -np.inf
            continue
        status = None
        for step_alpha in [] if current_alpha is None else _continuation(current_alpha, alpha):
            stop_early = past_the_best(step_alpha)
            covariance, precision, _, _, status = _solve(
                emp_cov,
                step_alpha,
                precision_init=precision,
                tol=_CONTINUATION_TOL,
                enet_tol=enet_tol,
                max_iter=max_iter,
                heldout_cov=test_cov if stop_early else None,
            )
            if status in ("early_stopped", "max_iter"):
                break
            if status == "converged" and not stop_early:
                converged_at(step_alpha, precision)
        if status not in ("early_stopped", "max_iter"):
            stop_early = past_the_best(alpha)
            covariance, precision, _, _, status = _solve(
                emp_cov,
                alpha,
                precision_init=precision,
                tol=tol,
                enet_tol=enet_tol,
                max_iter=max_iter,
                heldout_cov=test_cov if stop_early else None,
                verbose=verbose > 1,
            )
            if status == "converged" and not stop_early:
                converged_at(alpha, precision)
        if test_cov is not None and status == "max_iter":
            history["failed_alpha"] = max(history["failed_alpha"], alpha)
            scores[position] = -np.inf
            if verbose > 1:
                print(f"[graphical_lasso_path] alpha: {alpha:.2e}, not converged in {max_iter} iterations")
            continue
        current_alpha = alpha
        covariances[position] = covariance
        precisions[position] = precision
        if test_cov is not None:
            score = _log_likelihood(test_cov, precision)
            scores[position] = score if np.isfinite(score) else -np.inf
            if verbose > 1:
                print(f"[graphical_lasso_path] alpha: {alpha:.2e}, score: {score:.2e}")
        elif verbose > 1:
            print(f"[graphical_lasso_path] alpha: {alpha:.2e}")
        if verbose == 1:
            sys.stderr.write(".")
    return covariances, precisions, scores


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
    _check_solver_params(tol, enet_tol, max_iter, mode)
    alphas = np.asarray(alphas, dtype=np.float64).ravel()
    for alpha in alphas:
        _check_alpha(alpha, "each of alphas")
    X = np.asarray(X, dtype=np.float64)
    emp_cov = empirical_covariance(X)
    _check_variances(emp_cov)
    precision_init = None
    if cov_init is not None:
        factor, _ = cholesky_logdet(_check_emp_cov(cov_init, "cov_init"))
        if factor is None:
            raise ValueError("cov_init must be positive definite")
        precision_init = inverse_from_cholesky(factor)
    test_cov = None if X_test is None else empirical_covariance(np.asarray(X_test))
    with _blas_threads(emp_cov.shape[0]):
        covariances, precisions, scores = _path(
            emp_cov,
            alphas,
            test_cov=test_cov,
            precision_init=precision_init,
            tol=tol,
            enet_tol=enet_tol,
            max_iter=max_iter,
            verbose=int(verbose),
        )
    # a failed solve (held-out scoring only) is NaN, as in scikit-learn
    covariances = [np.nan if c is None else c for c in covariances]
    precisions = [np.nan if p is None else p for p in precisions]
    if X_test is not None:
        return covariances, precisions, scores
    return covariances, precisions


def _fold_path(
    X, train, test, alphas, precision_init, init_alpha, tol, enet_tol, max_iter, early_stopping,
    history, verbose,
):
    """One fold of the CV: training covariance, path, held-out scores
    (``history`` is updated in place, see :func:`_path`)."""
    emp_cov = empirical_covariance(X[train])
    _check_variances(emp_cov, what="a training fold of X")
    test_cov = empirical_covariance(X[test])
    with warnings.catch_warnings():
        # Points that do not converge show up in their scores.
        warnings.simplefilter("ignore", ConvergenceWarning)
        _, precisions, scores = _path(
            emp_cov,
            alphas,
            test_cov=test_cov,
            precision_init=precision_init,
            init_alpha=init_alpha,
            tol=tol,
            enet_tol=enet_tol,
            max_iter=max_iter,
            early_stopping=early_stopping,
            history=history,
            verbose=verbose,
        )
    return precisions, scores


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
        around the best one), or the grid itself (values > 0, no refinement).
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
        Score the alphas far past a fold's optimum from partial solutions:
        once a fold's held-out score has fallen below its best, an alpha more
        than a factor 1.5 below the best one is iterated only until an
        iteration lowers the held-out log-likelihood below its starting value
        (the rule of nilearn's GroupSparseCovarianceCV). Those solves are the
        densest and slowest; their scores, already past the fall, are not the
        converged ones (``cv_results_`` shows them) but do not compete for
        ``alpha_``. Alphas near each fold's best are always solved to ``tol``.
        False solves every point to ``tol``.

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

    The folds' solves get ``max_iter / 4`` Newton iterations (scikit-learn's
    get ``max_iter / 10`` coordinate-descent sweeps, each far less work than
    a Newton iteration). One that does not converge within them counts as
    failed, as scikit-learn's failures do: it scores
    ``-inf`` and the fold's smaller alphas are not attempted, so the grid is
    refined above it. This bounds the time spent where the held-out
    likelihood keeps rising as alpha falls, which happens when the samples
    span fewer dimensions than there are features (band-pass filtered
    signals, for example, have about ``2 * n_samples * t_r * (low_pass -
    high_pass)`` degrees of freedom): the precision then grows without bound
    along the directions the data never visit and each halving of alpha
    costs more iterations. A :class:`UserWarning` says when the chosen alpha
    is the smallest one that converged.
    """

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

    def _initial_grid(self, emp_cov):
        if np.ndim(self.alphas) > 0:
            alphas = np.asarray(self.alphas, dtype=np.float64).ravel()
            if alphas.size == 0:
                raise ValueError("alphas must not be empty")
            for alpha in alphas:
                if not np.isfinite(alpha) or alpha <= 0:
                    raise ValueError(f"each of alphas must be a finite number > 0, got {alpha!r}")
            return alphas, 1
        n_alphas = self.alphas
        if isinstance(n_alphas, bool) or not isinstance(n_alphas, Integral) or n_alphas < 2:
            raise ValueError(f"alphas must be an integer >= 2 or a list of alphas, got {n_alphas!r}")
        if (
            isinstance(self.n_refinements, bool)
            or not isinstance(self.n_refinements, Integral)
            or self.n_refinements < 1
        ):
            raise ValueError(f"n_refinements must be an integer >= 1, got {self.n_refinements!r}")
        alpha_1 = alpha_max(emp_cov)
        alpha_0 = 1e-2 * alpha_1
        return np.logspace(np.log10(alpha_0), np.log10(alpha_1), n_alphas)[::-1], self.n_refinements

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
        _check_solver_params(self.tol, self.enet_tol, self.max_iter, self.mode)
        X = self._validate_X(X, ensure_min_samples=2)
        self.location_ = np.zeros(X.shape[1]) if self.assume_centered else X.mean(0)
        emp_cov = empirical_covariance(X, assume_centered=self.assume_centered)
        _check_variances(emp_cov)
        cv = check_cv(self.cv, y, classifier=False)
        alphas, n_refinements = self._initial_grid(emp_cov)
        verbose = int(self.verbose)
        inner_verbose = max(0, verbose - 1)

        # path entries: [alpha, per-fold scores, per-fold precisions (kept only
        # where a later grid starts)]
        path = []
        warm_starts = None
        warm_start_alpha = None
        histories = None  # per fold: best held-out score so far, for early stopping
        best_index = 0
        t0 = time.time()
        with _blas_threads(X.shape[1], self.n_jobs):
            for refinement in range(n_refinements):
                splits = list(cv.split(X, y))
                if warm_starts is None:
                    warm_starts = [None] * len(splits)
                if histories is None or len(histories) != len(splits):
                    histories = [None] * len(splits)
                histories = [
                    history if history is not None
                    else _new_history()
                    for history in histories
                ]
                results = _parallel(self.n_jobs, verbose)(
                    delayed(_fold_path)(
                        X,
                        train,
                        test,
                        alphas,
                        warm_start,
                        warm_start_alpha,
                        self.tol,
                        self.enet_tol,
                        _fold_max_iter(self.max_iter),
                        self.early_stopping,
                        history,
                        inner_verbose,
                    )
                    for (train, test), warm_start, history in zip(splits, warm_starts, histories)
                )
                fold_precisions = list(zip(*(precisions for precisions, _ in results)))
                fold_scores = list(zip(*(scores for _, scores in results)))
                path.extend(
                    [alpha, scores, precisions]
                    for alpha, scores, precisions in zip(alphas, fold_scores, fold_precisions)
                )
                path.sort(key=operator.itemgetter(0), reverse=True)

                # scikit-learn's selection: the last maximum (smallest alpha on ties)
                best_score = -np.inf
                last_finite_idx = 0
                for index, (_, scores, _) in enumerate(path):
                    this_score = np.mean(scores)
                    if this_score >= 0.1 / np.finfo(np.float64).eps:
                        this_score = np.nan
                    if np.isfinite(this_score):
                        last_finite_idx = index
                    if this_score >= best_score:
                        best_score = this_score
                        best_index = index

                if refinement + 1 < n_refinements:
                    if best_index == 0:
                        start = 0
                        alpha_1, alpha_0 = path[0][0], path[1][0]
                    elif best_index == last_finite_idx and best_index != len(path) - 1:
                        start = best_index
                        alpha_1, alpha_0 = path[best_index][0], path[best_index + 1][0]
                    elif best_index == len(path) - 1:
                        start = best_index
                        alpha_1, alpha_0 = path[best_index][0], 0.01 * path[best_index][0]
                    else:
                        start = best_index - 1
                        alpha_1, alpha_0 = path[best_index - 1][0], path[best_index + 1][0]
                    alphas = np.logspace(np.log10(alpha_1), np.log10(alpha_0), len(alphas) + 2)[1:-1]
                    # The new grid lies below alpha_1: start each fold there.
                    warm_starts, warm_start_alpha = path[start][2], path[start][0]
                    if warm_starts is None or len(warm_starts) != len(splits):
                        warm_starts, warm_start_alpha = [None] * len(splits), None
                # keep the fold solutions only where they may still be needed
                for index, entry in enumerate(path):
                    if index not in (best_index, best_index - 1) and entry[2] is not None:
                        entry[2] = None
                if verbose and n_refinements > 1:
                    print(
                        "[GraphicalLassoCV] Done refinement % 2i out of %i: % 3is"
                        % (refinement + 1, n_refinements, time.time() - t0)
                    )

            grid_alphas = [entry[0] for entry in path]
            grid_scores = [list(entry[1]) for entry in path]
            best_alpha = grid_alphas[best_index]
            best_precisions = path[best_index][2]

            # Finally, the score of the unpenalized empirical covariance, as scikit-learn.
            grid_alphas.append(0)
            grid_scores.append(
                # in this process: a few empirical covariances do not pay for
                # starting worker processes
                cross_val_score(EmpiricalCovariance(), X, cv=cv, verbose=inner_verbose)
            )
        grid_scores = np.array(grid_scores)
        self.cv_results_ = {"alphas": np.array(grid_alphas)}
        for i in range(grid_scores.shape[1]):
            self.cv_results_[f"split{i}_test_score"] = grid_scores[:, i]
        self.cv_results_["mean_test_score"] = np.mean(grid_scores, axis=1)
        with np.errstate(invalid="ignore"):  # the spread of -inf scores is nan
            self.cv_results_["std_test_score"] = np.std(grid_scores, axis=1)
        self.alpha_ = best_alpha
        mean_scores = self.cv_results_["mean_test_score"][:-1]
        if best_index + 1 < len(mean_scores) and np.all(mean_scores[best_index + 1 :] == -np.inf):
            warnings.warn(
                f"GraphicalLassoCV: the held-out likelihood still rose at alpha_={best_alpha:.3g}, "
                f"the smallest alpha whose fold solves converged within "
                f"{_fold_max_iter(self.max_iter)} iterations (max_iter / {_FOLD_ITER_DIVISOR}). The samples may span fewer dimensions than the "
                f"{X.shape[1]} features (band-pass filtered signals, for example); a larger "
                "max_iter explores smaller alphas, at a growing cost.",
                UserWarning,
                stacklevel=2,
            )

        # Refit on all samples, started from the mean of the folds' solutions.
        precision_init = None
        if best_precisions is not None and all(p is not None for p in best_precisions):
            precision_init = np.mean(best_precisions, axis=0)
        self.covariance_, self.precision_, self.costs_, self.n_iter_, status = _solve(
            emp_cov,
            best_alpha,
            precision_init=precision_init,
            tol=self.tol,
            enet_tol=self.enet_tol,
            max_iter=self.max_iter,
            verbose=inner_verbose > 0,
        )
        _warn_not_converged(status, self.n_iter_, self.costs_)
        return self


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
