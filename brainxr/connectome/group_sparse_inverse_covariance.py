"""Group-sparse inverse covariance of several subjects, and its cross-validation.

nilearn's :class:`~nilearn.connectome.GroupSparseCovariance` and
:class:`~nilearn.connectome.GroupSparseCovarianceCV` (same parameters,
attributes and results) with the block coordinate descent compiled by numba
(:mod:`brainxr.connectome._group_bcd`) and cross-validation folds run in
parallel threads. The precisions of all subjects are estimated together and
share one sparsity pattern::

    minimise  sum_k n_k (tr(S_k K_k) - log det K_k) + alpha * sum_{i != j} ||K_ij.||_2

where ``n_k`` are the subjects' sample counts normalised to sum to one and
``K_ij.`` is the vector of entry ``(i, j)`` across subjects (Varoquaux et
al., NIPS 2010; algorithm of Honorio and Samaras, ICML 2010).

The iterations are nilearn's, operation for operation, so the same stopping
rules (``tol`` on the largest change of a precision entry, early stopping on
the held-out likelihood in cross-validation) stop them at the same point and
the cross-validation selects the same ``alpha_``. Arrays follow nilearn's
``(n_features, n_features, n_subjects)`` layout.

As the other brainxr estimators, they import scikit-learn at the first use
of its protocol only (:mod:`brainxr._estimator`): fit checks parameters that
scikit-learn's constraints accept, and finite float arrays, without it, and
``cv`` None or an int splits as its ``KFold``
(:mod:`brainxr.connectome._cross_validation`).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from numbers import Integral, Real

import numpy as np
from joblib import Memory, Parallel, delayed
from scipy import linalg
from threadpoolctl import threadpool_limits

from brainxr._arrays import is_finite_float_matrix
from brainxr._estimator import (
    Estimator,
    ScikitLearnConstraints,
    is_bool,
    is_int,
    is_int_at_least,
    is_none_or,
    is_real_above,
    is_verbose,
    validate_params,
)
from brainxr.connectome import _alpha_grid
from brainxr.connectome._cross_validation import check_cv, splits_as_kfold
from brainxr.connectome._group_bcd import (
    DERIVATIVE_ZERO,
    NEWTON_NOT_CONVERGED,
    bcd_sweep,
    group_log_likelihood,
)

__all__ = [
    "EarlyStopProbe",
    "GroupSparseCovariance",
    "GroupSparseCovarianceCV",
    "compute_alpha_max",
    "empirical_covariances",
    "group_sparse_covariance",
    "group_sparse_covariance_path",
    "group_sparse_scores",
]


# --------------------------------------------------------------------------
# inputs


def _as_signals(subject, index):
    """One subject's ``(n_samples, n_features)`` float64 array (xarray DataArrays too): scikit-learn's
    ``check_array``, imported only for what is not a finite 2-D float numpy array of at least 2 x 2."""
    if hasattr(subject, "dims"):
        subject = np.asarray(subject)
    if is_finite_float_matrix(subject):
        return np.asarray(subject, dtype=np.float64)
    from sklearn.utils import check_array

    try:
        return check_array(
            subject,
            accept_sparse=False,
            ensure_2d=True,
            ensure_min_features=2,
            ensure_min_samples=2,
            dtype=np.float64,
        )
    except ValueError as error:
        raise ValueError(f"subjects[{index}]: {error}") from None


def _check_subjects(subjects):
    if isinstance(subjects, np.ndarray):
        subjects = [subjects]
    if not isinstance(subjects, (list, tuple)):
        raise TypeError(
            "'subjects' must be a list of 2D arrays of shape (n_samples, "
            f"n_features). Got {subjects.__class__.__name__}"
        )
    if len(subjects) == 0:
        raise ValueError("'subjects' is empty: give at least one subject")
    return [_as_signals(subject, index) for index, subject in enumerate(subjects)]


def _tolerance_and_iterations():
    """scikit-learn's constraints of ``tol`` (a positive number, or None or -1: run ``max_iter``
    iterations, as nilearn) and of ``max_iter``."""
    from sklearn.utils._param_validation import Interval, Options

    return [Interval(Real, 0, None, closed="neither"), Options(Real, {-1}), None], [
        Interval(Integral, 0, None, closed="left")
    ]


def _is_tolerance(value):
    return value is None or is_real_above(0, inclusive=False)(value) or (is_int_at_least(-1)(value) and value == -1)


def _group_sparse_constraints():
    from sklearn.utils._param_validation import Interval

    tolerance, iterations = _tolerance_and_iterations()
    return {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "tol": tolerance,
        "max_iter": iterations,
        "verbose": ["verbose"],
        "memory": [None, str, os.PathLike, Memory],
        "memory_level": [Interval(Integral, 0, None, closed="left")],
    }


def _group_sparse_cv_constraints():
    from sklearn.utils._param_validation import Interval

    tolerance, iterations = _tolerance_and_iterations()
    return {
        "alphas": [Interval(Integral, 2, None, closed="left"), "array-like"],
        "n_refinements": [Interval(Integral, 1, None, closed="left")],
        "cv": ["cv_object"],
        "tol_cv": tolerance,
        "max_iter_cv": iterations,
        "tol": tolerance,
        "max_iter": iterations,
        "verbose": ["verbose"],
        "n_jobs": [Integral, None],
        "debug": ["boolean"],
        "early_stopping": ["boolean"],
    }


def _check_solver_params(alpha, max_iter, tol):
    """nilearn's parameters of one solve, with scikit-learn's checks and messages."""
    validate_params(GroupSparseCovariance(alpha=alpha, max_iter=max_iter, tol=tol))


def empirical_covariances(subjects, assume_centered=False, standardize=False):
    """Compute empirical covariances for several signals (nilearn's function).

    Parameters
    ----------
    subjects : list of ndarray, shape for each (n_samples, n_features)
        Signals of each subject; the number of samples may differ.
    assume_centered : bool, default=False
        If True, signals are not centered.
    standardize : bool, default=False
        If True, scale every signal to unit (population) variance first, so
        that the covariances are correlations.

    Returns
    -------
    emp_covs : ndarray of shape (n_features, n_features, n_subjects)
        Empirical covariances (symmetrised).
    n_samples : ndarray of shape (n_subjects,)
        Number of samples of each subject (float64).
    """
    if not hasattr(subjects, "__iter__"):
        raise ValueError(
            "'subjects' input argument must be an iterable. "
            f"You provided {subjects.__class__}"
        )
    n_features = [s.shape[1] for s in subjects]
    if len(set(n_features)) > 1:
        raise ValueError(
            "All subjects must have the same number of features.\n"
            f"You provided: {n_features}"
        )
    n_subjects = len(subjects)
    n_features = subjects[0].shape[1]
    emp_covs = np.empty((n_features, n_features, n_subjects), order="F")
    for k, signals in enumerate(subjects):
        if standardize:
            signals = signals / signals.std(axis=0)
        # scikit-learn's empirical_covariance, without its input validation
        if assume_centered:
            covariance = np.dot(signals.T, signals) / signals.shape[0]
        else:
            covariance = np.cov(signals.T, bias=1)
        emp_covs[..., k] = covariance + covariance.T
    emp_covs /= 2
    n_samples = np.asarray([s.shape[0] for s in subjects], dtype=np.float64)
    return emp_covs, n_samples


def compute_alpha_max(emp_covs, n_samples):
    """Critical values of the regularization parameter (nilearn's function).

    Parameters
    ----------
    emp_covs : ndarray of shape (n_features, n_features, n_subjects)
        Covariance matrix of each subject.
    n_samples : array-like of shape (n_subjects,)
        Number of samples behind each covariance.

    Returns
    -------
    alpha_max : float
        Smallest alpha giving diagonal precisions (complete sparsity).
    alpha_min : float
        Largest alpha giving fully dense precisions.
    """
    weights = np.asarray(n_samples, dtype=np.float64)
    weights = weights / weights.sum()
    off_diagonal = np.array(emp_covs, dtype=np.float64) * weights
    for k in range(off_diagonal.shape[-1]):
        np.fill_diagonal(off_diagonal[..., k], 0)
    norms = np.sqrt((off_diagonal**2).sum(axis=-1))
    return np.max(norms), np.min(norms[norms > 0])


def _normalised(n_samples):
    n_samples = np.asarray(n_samples, dtype=np.float64)
    return n_samples / n_samples.sum()


def _to_stack(array):
    """``(p, p, n_subjects)`` -> C-contiguous ``(n_subjects, p, p)``."""
    return np.ascontiguousarray(np.moveaxis(np.asarray(array, dtype=np.float64), -1, 0))


def _from_stack(stack):
    """``(n_subjects, p, p)`` -> Fortran-ordered ``(p, p, n_subjects)`` (nilearn's layout)."""
    return np.asfortranarray(np.moveaxis(stack, 0, -1))


# --------------------------------------------------------------------------
# scores


def group_sparse_scores(precisions, n_samples, emp_covs, alpha, duality_gap=False, debug=False):
    """Log-likelihood, objective and duality gap (nilearn's function).

    Parameters
    ----------
    precisions : ndarray of shape (n_features, n_features, n_subjects)
        Estimated precisions.
    n_samples : array-like of shape (n_subjects,)
        Sample counts behind ``precisions``, normalised to sum to one.
    emp_covs : ndarray of shape (n_features, n_features, n_subjects)
        Empirical covariances.
    alpha : float
        Regularization parameter.
    duality_gap : bool, default=False
        If True, also return an upper bound of the duality gap, which
        vanishes at the optimum.
    debug : bool, default=False
        If True, check intermediate matrices.

    Returns
    -------
    log_lik : float
        Log-likelihood of ``precisions`` on ``emp_covs`` (minus the loss,
        without the penalty).
    objective : float
        The objective that :func:`group_sparse_covariance` minimises.
    duality_gap : float
        Returned only if ``duality_gap`` is True.
    """
    n_features, _, n_subjects = emp_covs.shape
    n_samples = np.asarray(n_samples, dtype=np.float64)
    log_lik = group_log_likelihood(_to_stack(precisions), _to_stack(emp_covs), n_samples)
    l2 = np.sqrt((np.asarray(precisions) ** 2).sum(axis=-1))
    l12 = l2.sum() - np.diag(l2).sum()
    objective = alpha * l12 - log_lik
    if not duality_gap:
        return log_lik, objective

    A = np.empty(precisions.shape, dtype=np.float64, order="F")
    for k in range(n_subjects):
        precisions_inv = linalg.inv(precisions[..., k])
        if debug and not _is_spd(precisions_inv):
            raise AssertionError(f"the inverse of precision {k} is not positive definite")
        A[..., k] = n_samples[k] * (precisions_inv - emp_covs[..., k])
    # Project A on the set of feasible dual points
    norms = np.sqrt((A**2).sum(axis=-1))
    mask = norms > alpha
    for k in range(n_subjects):
        A[mask, k] *= alpha / norms[mask]
        np.fill_diagonal(A[..., k], 0)
    dual_obj = 0.0
    for k in range(n_subjects):
        B = emp_covs[..., k] + A[..., k] / n_samples[k]
        dual_obj += n_samples[k] * (n_features + _fast_logdet(B))
    if not np.isfinite(dual_obj):
        # a feasible point that is always positive definite (loose bound)
        for k in range(n_subjects):
            A[..., k] = -n_samples[k] * emp_covs[..., k]
            np.fill_diagonal(A[..., k], 0)
        largest = np.sqrt((A**2).sum(axis=-1)).max()
        gamma = min((alpha / largest, 0.05))
        dual_obj = 0.0
        for k in range(n_subjects):
            B = (1.0 - gamma) * emp_covs[..., k] + gamma * np.eye(n_features)
            dual_obj += n_samples[k] * (n_features + _fast_logdet(B))
    return log_lik, objective, objective - dual_obj


def _fast_logdet(matrix):
    sign, logdet = np.linalg.slogdet(matrix)
    return logdet if sign > 0 else -np.inf


def _is_spd(matrix):
    try:
        np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        return False
    return np.allclose(matrix, matrix.T)


# --------------------------------------------------------------------------
# the solver


def _warn_not_unit_variance(emp_covs):
    diagonals = np.diagonal(emp_covs, axis1=1, axis2=2)
    if (np.abs(diagonals - 1) > 0.1).any():
        warnings.warn(
            "Input signals do not all have unit variance. "
            "This can lead to numerical instability.",
            stacklevel=4,
        )


def _solve(
    emp_covs,
    n_samples,
    alpha,
    *,
    max_iter=10,
    tol=1e-3,
    precisions_init=None,
    probe_function=None,
    early_stop_covs=None,
    verbose=0,
    debug=False,
):
    """nilearn's ``_group_sparse_covariance`` on ``(n_subjects, p, p)`` stacks.

    ``n_samples`` must be normalised. ``probe_function`` is called with
    nilearn's layout. ``early_stop_covs`` (a stack of held-out covariances)
    applies nilearn's EarlyStopProbe rule without the Python call.

    Returns the precisions stack.
    """
    _check_solver_params(alpha, max_iter, tol)
    if tol == -1:
        tol = None
    _warn_not_unit_variance(emp_covs)
    if precisions_init is None:
        omega = np.zeros_like(emp_covs)
        for k in range(emp_covs.shape[0]):
            np.fill_diagonal(omega[k], 1.0 / np.diag(emp_covs[k]))
    else:
        omega = np.array(precisions_init, dtype=np.float64, order="C")

    def probe(iteration, previous):
        return probe_function(
            _from_stack(emp_covs),
            n_samples,
            alpha,
            max_iter,
            tol,
            iteration,
            _from_stack(omega),
            None if previous is None else _from_stack(previous),
        )

    if probe_function is not None:
        probe(-1, None)
    if early_stop_covs is not None:
        last_log_lik = group_log_likelihood(omega, early_stop_covs, n_samples)
    tolerance_reached = False
    interrupted = False
    max_norm = None
    for n in range(max_iter):
        if verbose:
            variation = f" variation (max norm): {max_norm:.3e} " if max_norm is not None else ""
            print(f"* iteration {n:d} ({100.0 * n / max_iter:.0f} %){variation} ...")
        omega_old = omega.copy()
        flags = bcd_sweep(omega, emp_covs, n_samples, float(alpha))
        if flags & DERIVATIVE_ZERO:
            warnings.warn("derivative was zero.", RuntimeWarning, stacklevel=3)
        if flags & NEWTON_NOT_CONVERGED:
            warnings.warn(
                "Newton-Raphson step did not converge.\n"
                "This may indicate a badly conditioned system.",
                stacklevel=3,
            )
        if debug:
            for k in range(omega.shape[0]):
                if not _is_spd(omega[k]):
                    raise AssertionError(f"precision {k} is not positive definite")
        if probe_function is not None and probe(n, omega_old):
            interrupted = True
            if verbose > 1:
                print("probe_function interrupted loop")
            break
        if early_stop_covs is not None:
            log_lik = group_log_likelihood(omega, early_stop_covs, n_samples)
            if last_log_lik > log_lik:
                interrupted = True
                if verbose > 1:
                    print(f"Log-likelihood on test set is decreasing. Stopping at iteration {n}")
                break
            last_log_lik = log_lik
        max_norm = np.abs(omega_old - omega).max()
        if tol is not None and max_norm < tol:
            tolerance_reached = True
            if verbose:
                print(f"tolerance reached at iteration number {n + 1:d}: {max_norm:.3e}")
            break
    if tol is not None and not tolerance_reached and not interrupted:
        warnings.warn(
            "Maximum number of iterations reached without getting "
            "to the requested tolerance level.",
            stacklevel=3,
        )
    return omega


def _group_sparse_covariance(
    emp_covs,
    n_samples,
    alpha,
    max_iter=10,
    tol=1e-3,
    precisions_init=None,
    probe_function=None,
    verbose=0,
    debug=False,
):
    """nilearn's private entry point: covariances in, precisions out, ``(p, p, n_subjects)``."""
    if precisions_init is not None:
        precisions_init = _to_stack(precisions_init)
    omega = _solve(
        _to_stack(emp_covs),
        _normalised(n_samples),
        alpha,
        max_iter=max_iter,
        tol=tol,
        precisions_init=precisions_init,
        probe_function=probe_function,
        verbose=verbose,
        debug=debug,
    )
    return _from_stack(omega)


def group_sparse_covariance(
    subjects,
    alpha,
    max_iter=50,
    tol=1e-3,
    verbose=0,
    probe_function=None,
    precisions_init=None,
    debug=False,
):
    """Compute sparse precision matrices and covariance matrices (nilearn's function).

    The precisions of all subjects are estimated together and have zeros at
    the same locations.

    Parameters
    ----------
    subjects : list of ndarray of shape (n_samples, n_features)
        Signals of each subject (the number of samples may differ; xarray
        DataArrays are accepted).
    alpha : float
        Regularization parameter (>= 0). With normalized signals, sensible
        values lie in [0, 1].
    max_iter : int, default=50
        Maximum number of iterations.
    tol : float or None, default=1e-3
        Stop when the largest change of a precision entry in an iteration is
        below ``tol``. None (or -1): run ``max_iter`` iterations.
    verbose : int, default=0
        Verbosity level.
    probe_function : callable or None, default=None
        Called before the first iteration and after each one with (emp_covs,
        n_samples, alpha, max_iter, tol, iteration, precisions,
        previous_precisions); returning True stops the iterations.
    precisions_init : ndarray of shape (n_features, n_features, n_subjects), default=None
        Starting precisions (default: the diagonal of inverse variances).
    debug : bool, default=False
        Check that every iterate is positive definite.

    Returns
    -------
    emp_covs : ndarray of shape (n_features, n_features, n_subjects)
        Empirical covariances.
    precisions : ndarray of shape (n_features, n_features, n_subjects)
        Estimated precisions.
    """
    _check_solver_params(alpha, max_iter, tol)
    subjects = _check_subjects(subjects)
    emp_covs, n_samples = empirical_covariances(subjects, assume_centered=False)
    precisions = _group_sparse_covariance(
        emp_covs,
        n_samples,
        alpha,
        max_iter=max_iter,
        tol=tol,
        verbose=verbose,
        precisions_init=precisions_init,
        probe_function=probe_function,
        debug=debug,
    )
    return emp_covs, precisions


def _fold_covariances(train_subjs, test_subjs, early_stopping):
    """Stacks used by a fold: standardized training and held-out covariances
    (for the scores) and raw held-out ones (for nilearn's early stopping)."""
    train_covs, train_n_samples = empirical_covariances(
        train_subjs, assume_centered=False, standardize=True
    )
    fold = {"train_covs": _to_stack(train_covs), "n_samples": _normalised(train_n_samples)}
    fold["test_covs"] = fold["early_stop_covs"] = None
    if test_subjs is not None:
        fold["test_covs"] = _to_stack(empirical_covariances(test_subjs, standardize=True)[0])
        if early_stopping:
            fold["early_stop_covs"] = _to_stack(empirical_covariances(test_subjs)[0])
    return fold


def _path(
    fold,
    alphas,
    *,
    tol=1e-3,
    max_iter=10,
    precisions_init=None,
    probe_function=None,
    verbose=0,
    debug=False,
):
    """``group_sparse_covariance_path`` on the stacks of :func:`_fold_covariances`."""
    omega = None if precisions_init is None else _to_stack(precisions_init)
    precisions_list, scores = [], []
    for alpha in alphas:
        omega = _solve(
            fold["train_covs"],
            fold["n_samples"],
            alpha,
            max_iter=max_iter,
            tol=tol,
            precisions_init=omega,
            probe_function=probe_function,
            early_stop_covs=fold["early_stop_covs"],
            verbose=max(0, verbose - 1),
            debug=debug,
        )
        if fold["test_covs"] is not None:
            scores.append(group_log_likelihood(omega, fold["test_covs"], fold["n_samples"]))
        precisions_list.append(_from_stack(omega))
    return precisions_list, scores


def group_sparse_covariance_path(
    train_subjs,
    alphas,
    test_subjs=None,
    tol=1e-3,
    max_iter=10,
    precisions_init=None,
    verbose=0,
    debug=False,
    probe_function=None,
):
    """Precisions for several values of alpha, each warm-starting the next
    (nilearn's function; training signals are standardized).

    Parameters
    ----------
    train_subjs : list of ndarray
        Training signals of each subject.
    alphas : list of float
        Values of alpha, best in decreasing order.
    test_subjs : list of ndarray, default=None
        Held-out signals of the same subjects, on which each estimate is scored.
    tol, max_iter, precisions_init, verbose, debug, probe_function
        As in :func:`group_sparse_covariance`.

    Returns
    -------
    precisions_list : list of ndarray
        Estimated precisions for each value of alpha.
    scores : list of float
        Held-out log-likelihood of each estimate; returned only if
        ``test_subjs`` is given.
    """
    train_subjs = _check_subjects(train_subjs)
    if test_subjs is not None:
        test_subjs = _check_subjects(test_subjs)
    precisions_list, scores = _path(
        _fold_covariances(train_subjs, test_subjs, early_stopping=False),
        alphas,
        tol=tol,
        max_iter=max_iter,
        precisions_init=precisions_init,
        probe_function=probe_function,
        verbose=verbose,
        debug=debug,
    )
    return (precisions_list, scores) if test_subjs is not None else precisions_list


class EarlyStopProbe:
    """Stop the iterations as soon as the held-out log-likelihood decreases.

    nilearn's probe for ``probe_function``: an instance is called before the
    first iteration and after each one.

    Parameters
    ----------
    test_subjs : list of ndarray
        Held-out signals of each subject.
    verbose : int, default=0
        Verbosity level.
    """

    def __init__(self, test_subjs, verbose=0):
        self.test_emp_covs, _ = empirical_covariances(test_subjs)
        self.verbose = verbose

    def __call__(self, emp_covs, n_samples, alpha, max_iter, tol, iter_n, omega, prev_omega):
        log_lik, _ = group_sparse_scores(omega, n_samples, self.test_emp_covs, alpha)
        if iter_n > -1 and self.last_log_lik > log_lik:
            if self.verbose:
                print(f"Log-likelihood on test set is decreasing. Stopping at iteration {iter_n}")
            return True
        self.last_log_lik = log_lik
        return None


# --------------------------------------------------------------------------
# estimators


class GroupSparseCovariance(Estimator):
    """Covariance and precision matrices of several subjects, group-sparse.

    nilearn's :class:`~nilearn.connectome.GroupSparseCovariance` with the
    compiled solver of :func:`group_sparse_covariance`.

    Parameters
    ----------
    alpha : float, default=0.1
        Regularization parameter (>= 0).
    tol : float, default=1e-3
        Stop when the largest change of a precision entry in an iteration is
        below ``tol``.
    max_iter : int, default=10
        Maximum number of iterations.
    verbose : int, default=0
        Verbosity level.
    memory : None, str, pathlib.Path or joblib.Memory, default=None
        Cache of the precision computation (used when ``memory_level >= 1``).
    memory_level : int, default=0
        Caching aggressiveness, as in nilearn.

    Attributes
    ----------
    covariances_ : ndarray of shape (n_features, n_features, n_subjects)
        Empirical covariance matrices.
    precisions_ : ndarray of shape (n_features, n_features, n_subjects)
        Precision matrices estimated by the group-sparse algorithm.
    memory_ : joblib.Memory
        The cache used.
    n_features_in_ : int
        Number of features seen during fit.
    """

    _parameter_constraints = ScikitLearnConstraints(_group_sparse_constraints)
    #: values that scikit-learn's constraints accept (see :func:`brainxr._estimator.validate_params`)
    _accepted_parameters = {
        "alpha": is_real_above(0, inclusive=True),
        "tol": _is_tolerance,
        "max_iter": is_int_at_least(0),
        "verbose": is_verbose,
        "memory": lambda memory: memory is None or isinstance(memory, (str, os.PathLike)),
        "memory_level": is_int_at_least(0),
    }

    def __init__(self, alpha=0.1, tol=1e-3, max_iter=10, verbose=0, memory=None, memory_level=0):
        self.alpha = alpha
        self.tol = tol
        self.max_iter = max_iter
        self.verbose = verbose
        self.memory = memory
        self.memory_level = memory_level

    def fit(self, subjects, y=None):
        """Fit the group-sparse precision model to the subjects' signals.

        Parameters
        ----------
        subjects : list of ndarray of shape (n_samples, n_features)
            Signals of each subject (xarray DataArrays are accepted).
        y : None
            Ignored.

        Returns
        -------
        self : GroupSparseCovariance
            The fitted estimator.
        """
        del y
        validate_params(self)
        subjects = _check_subjects(subjects)
        if isinstance(self.memory, Memory):
            self.memory_ = self.memory
        else:
            self.memory_ = Memory(location=None if self.memory is None else str(self.memory), verbose=0)
        if self.verbose:
            print("Computing covariance matrices")
        self.covariances_, n_samples = empirical_covariances(subjects, assume_centered=False)
        self.n_features_in_ = subjects[0].shape[1]
        if self.verbose:
            print("Computing precision matrices")
        solver = _group_sparse_covariance
        if self.memory_level >= 1 and self.memory_.location is not None:
            solver = self.memory_.cache(_group_sparse_covariance)
        self.precisions_ = solver(
            self.covariances_,
            n_samples,
            self.alpha,
            tol=self.tol,
            max_iter=self.max_iter,
            verbose=max(0, self.verbose - 1),
            debug=False,
        )
        return self

    def __sklearn_is_fitted__(self):
        return hasattr(self, "precisions_") and hasattr(self, "covariances_")


def _cv_fold(fold, alphas, tol, max_iter, precisions_init, verbose, debug):
    with warnings.catch_warnings():
        # as in nilearn, each solve may stop at max_iter_cv; the scores tell
        warnings.simplefilter("ignore", UserWarning)
        return _path(
            fold,
            alphas,
            tol=tol,
            max_iter=max_iter,
            precisions_init=precisions_init,
            verbose=verbose,
            debug=debug,
        )


class GroupSparseCovarianceCV(Estimator):
    """Group-sparse inverse covariance with a cross-validated choice of alpha.

    nilearn's :class:`~nilearn.connectome.GroupSparseCovarianceCV`: the same
    alpha grid, refinements, folds (one K-fold split per subject), held-out
    scores and early stopping, hence the same ``alpha_``, computed with the
    compiled solver; folds run in parallel threads when ``n_jobs`` asks.

    Parameters
    ----------
    alphas : int or list of float, default=4
        Initial number of points on the alpha grid (each refinement adds as
        many), or the grid itself (no refinement).
    n_refinements : int, default=4
        Number of times the grid is refined.
    cv : int, cross-validation generator or iterable, default=None
        Cross-validation scheme applied to each subject's samples (None:
        5-fold ``KFold``).
    tol_cv : float, default=1e-2
        Tolerance of the solves during the alpha selection.
    max_iter_cv : int, default=50
        Maximum number of iterations of those solves.
    tol : float, default=1e-3
        Tolerance of the final solve at the selected alpha.
    max_iter : int, default=100
        Maximum number of iterations of the final solve.
    verbose : int, default=0
        Verbosity level.
    n_jobs : int, default=1
        Number of folds solved at once (threads, one BLAS thread each); -1:
        all cores.
    debug : bool, default=False
        Check that every iterate is positive definite.
    early_stopping : bool, default=True
        Stop each solve of the alpha selection as soon as the held-out
        log-likelihood decreases (nilearn's heuristic).

    Attributes
    ----------
    covariances_ : ndarray of shape (n_features, n_features, n_subjects)
        Empirical covariance matrices.
    precisions_ : ndarray of shape (n_features, n_features, n_subjects)
        Precision matrices at the selected alpha; all share one sparsity pattern.
    alpha_ : float
        Selected penalization parameter.
    cv_alphas_ : list of float
        All values of alpha explored, in decreasing order.
    cv_scores_ : ndarray of shape (n_alphas,)
        Held-out log-likelihood of each explored alpha, averaged over the
        folds (nilearn's documentation says (n_alphas, n_folds); its code,
        followed here, stores the fold means).
    n_features_in_ : int
        Number of features seen during fit.
    """

    _parameter_constraints = ScikitLearnConstraints(_group_sparse_cv_constraints)
    _accepted_parameters = {
        "alphas": is_int_at_least(2),
        "n_refinements": is_int_at_least(1),
        "cv": splits_as_kfold,
        "tol_cv": _is_tolerance,
        "max_iter_cv": is_int_at_least(0),
        "tol": _is_tolerance,
        "max_iter": is_int_at_least(0),
        "verbose": is_verbose,
        "n_jobs": is_none_or(is_int),
        "debug": is_bool,
        "early_stopping": is_bool,
    }

    def __init__(
        self,
        alphas=4,
        n_refinements=4,
        cv=None,
        tol_cv=1e-2,
        max_iter_cv=50,
        tol=1e-3,
        max_iter=100,
        verbose=0,
        n_jobs=1,
        debug=False,
        early_stopping=True,
    ):
        self.alphas = alphas
        self.n_refinements = n_refinements
        self.cv = cv
        self.tol_cv = tol_cv
        self.max_iter_cv = max_iter_cv
        self.tol = tol
        self.max_iter = max_iter
        self.verbose = verbose
        self.n_jobs = n_jobs
        self.debug = debug
        self.early_stopping = early_stopping

    def fit(self, subjects, y=None):
        """Compute cross-validated group-sparse precisions.

        Parameters
        ----------
        subjects : list of ndarray of shape (n_samples, n_features)
            Signals of each subject (xarray DataArrays are accepted).
        y : None
            Ignored.

        Returns
        -------
        self : GroupSparseCovarianceCV
            The fitted estimator.
        """
        del y
        validate_params(self)
        subjects = _check_subjects(subjects)
        emp_covs, n_samples = empirical_covariances(subjects, assume_centered=False)
        self.n_features_in_ = subjects[0].shape[1]
        verbose = int(self.verbose)

        # One split per subject (their numbers of samples may differ), zipped
        # into folds; nilearn replays the same folds at every refinement.
        splits = [
            list(check_cv(self.cv, np.ones(s.shape[0])).split(s))
            for s in subjects
        ]
        folds = []
        for fold in zip(*splits, strict=False):
            train = [s[train_index] for s, (train_index, _) in zip(subjects, fold)]
            test = [s[test_index] for s, (_, test_index) in zip(subjects, fold)]
            folds.append(_fold_covariances(train, test, self.early_stopping))
        alphas, n_refinements = _alpha_grid.initial_grid(
            self.alphas, self.n_refinements, compute_alpha_max(emp_covs, n_samples)[0]
        )

        path = []  # (alpha, mean score, per-fold precisions), decreasing alpha
        precisions_init = [None] * len(folds)
        best_index = 0
        parallel = self.n_jobs is not None and self.n_jobs != 1
        with threadpool_limits(limits=1) if parallel else contextlib.nullcontext():
            for refinement in range(n_refinements):
                this_path = Parallel(n_jobs=self.n_jobs, prefer="threads", verbose=verbose)(
                    delayed(_cv_fold)(
                        fold,
                        alphas,
                        self.tol_cv,
                        self.max_iter_cv,
                        None if self.early_stopping else init,
                        max(0, verbose - 1),
                        self.debug,
                    )
                    for fold, init in zip(folds, precisions_init)
                )
                precisions_list, scores = zip(*this_path)
                precisions_list = list(zip(*precisions_list))
                scores = [np.mean(fold_scores) for fold_scores in zip(*scores)]
                path.extend(zip(alphas, scores, precisions_list))
                path.sort(key=lambda entry: entry[0], reverse=True)
                best_index, last_finite = _alpha_grid.best_index([entry[1] for entry in path])
                if refinement + 1 < n_refinements:
                    alphas, start = _alpha_grid.refined_grid(
                        [entry[0] for entry in path], best_index, last_finite, len(alphas)
                    )
                    precisions_init = path[start][2]
                if verbose and n_refinements > 1:
                    print(
                        "[GroupSparseCovarianceCV] Done refinement "
                        f"{refinement: 2} out of {n_refinements}"
                    )

        self.cv_scores_ = np.array([entry[1] for entry in path])
        cv_alphas = [entry[0] for entry in path]
        self.alpha_ = cv_alphas[best_index]
        self.cv_alphas_ = cv_alphas
        if verbose:
            print("Final optimization")
        self.covariances_ = emp_covs
        self.precisions_ = _group_sparse_covariance(
            emp_covs,
            n_samples,
            self.alpha_,
            tol=self.tol,
            max_iter=self.max_iter,
            verbose=max(0, verbose - 1),
            debug=self.debug,
        )
        return self

    def __sklearn_is_fitted__(self):
        return hasattr(self, "precisions_") and hasattr(self, "covariances_")

