"""Covariance kernels of the default estimators: Ledoit-Wolf and the empirical covariance.

nilearn's ``ConnectivityMeasure`` estimates covariances with scikit-learn's
``LedoitWolf(store_precision=False)`` by default (``EmpiricalCovariance`` for
Pearson correlations). brainxr computes these two with the numpy kernels
below, the same formulas and order of operations as
``sklearn.covariance.ledoit_wolf`` / ``ledoit_wolf_shrinkage`` /
``empirical_covariance`` (tested against them at 1e-12), because importing
scikit-learn's estimators costs about 0.8 s in every fresh process
(``sklearn.base`` imports ``scipy.stats``): more than ``brainxr run``
spends on the connectomes of a small study. Any other estimator (a
scikit-learn object passed by the user, brainxr's ``GraphicalLasso``) is
fitted as given.

:class:`KernelCovariance` wraps a kernel in the estimator protocol that the
connectivity code uses (``fit(X)`` then ``covariance_``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["KernelCovariance", "empirical_covariance", "ledoit_wolf"]


def empirical_covariance(X, *, assume_centered=False) -> np.ndarray:
    """Maximum-likelihood covariance of centered columns, as scikit-learn's ``empirical_covariance``.

    Parameters
    ----------
    X : array-like, shape (n_samples, n_features)
        Samples in rows.
    assume_centered : bool, default=False
        If True, the columns are not centered (``X.T @ X / n_samples``).

    Returns
    -------
    numpy.ndarray, shape (n_features, n_features), float64
        ``(X - mean).T @ (X - mean) / n_samples``.
    """
    X = np.asarray(X, dtype=np.float64)
    if assume_centered:
        return np.dot(X.T, X) / X.shape[0]
    return np.atleast_2d(np.cov(X.T, bias=True))


def _ledoit_wolf_shrinkage(X: np.ndarray, block_size: int) -> float:
    """scikit-learn's ``ledoit_wolf_shrinkage`` of centered ``X`` (n_features > 1).

    The sums of ``X2.T @ X2`` and of the squares of ``X.T @ X`` are taken over
    blocks of ``block_size`` features, in scikit-learn's order, so that the
    Gram matrices of many features are never formed whole.
    """
    n_samples, n_features = X.shape
    X2 = X**2
    emp_cov_trace = np.sum(X2, axis=0) / n_samples
    mu = np.sum(emp_cov_trace) / n_features
    n_splits = int(n_features / block_size)
    blocks = [slice(block_size * index, block_size * (index + 1)) for index in range(n_splits)]
    blocks.append(slice(block_size * n_splits, None))
    beta_ = 0.0  # sum of the coefficients of X2.T @ X2
    delta_ = 0.0  # sum of the squared coefficients of X.T @ X
    for rows in blocks:
        for cols in blocks:
            beta_ += np.sum(np.dot(X2.T[rows], X2[:, cols]))
            delta_ += np.sum(np.dot(X.T[rows], X[:, cols]) ** 2)
    delta_ /= n_samples**2
    beta = 1.0 / (n_features * n_samples) * (beta_ / n_samples - delta_)
    # the sum of the squared coefficients of (X.T @ X / n_samples - mu * I), over n_features
    delta = (delta_ - 2.0 * mu * emp_cov_trace.sum() + n_features * mu**2) / n_features
    # never shrink by more than 1 (that would flip the covariances' signs)
    beta = min(beta, delta)
    return 0.0 if beta == 0 else float(beta / delta)


def ledoit_wolf(X, *, assume_centered: bool = False, block_size: int = 1000) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf shrunk covariance, as scikit-learn's ``LedoitWolf().fit(X)``.

    Parameters
    ----------
    X : array-like, shape (n_samples, n_features)
        Samples in rows.
    assume_centered : bool, default=False
        If True, ``X`` is used as is (its columns are taken to have zero
        mean); otherwise each column's mean is subtracted first.
    block_size : int, default=1000
        Features per block in the shrinkage's sums (memory, not the result).

    Returns
    -------
    covariance : numpy.ndarray, shape (n_features, n_features), float64
        ``(1 - shrinkage) * S + shrinkage * trace(S) / n_features * I``,
        ``S`` the empirical covariance.
    shrinkage : float
        The Ledoit-Wolf shrinkage, in [0, 1]; 0 for a single feature.
    """
    X = np.asarray(X, dtype=np.float64)
    if not assume_centered:
        X = X - X.mean(axis=0)
    n_samples, n_features = X.shape
    if n_features == 1:  # one variance: the same whatever the shrinkage
        return np.atleast_2d((X**2).mean()), 0.0
    shrinkage = _ledoit_wolf_shrinkage(X, block_size)
    empirical = np.dot(X.T, X) / n_samples
    mu = np.trace(empirical) / n_features
    shrunk = (1.0 - shrinkage) * empirical
    shrunk.flat[:: n_features + 1] += shrinkage * mu
    return shrunk, shrinkage


class KernelCovariance:
    """A default covariance estimator computed by :func:`ledoit_wolf` or :func:`empirical_covariance`.

    It stands where nilearn puts scikit-learn's ``LedoitWolf(store_precision=False)``
    or ``EmpiricalCovariance(store_precision=False)``, whose repr it keeps (the
    ``cov_estimator`` attribute of connectivity results, and provenance).

    Parameters
    ----------
    name : {"ledoit_wolf", "empirical"}
        The estimator.

    Attributes
    ----------
    covariance_ : numpy.ndarray, shape (n_features, n_features)
        After :meth:`fit`.
    location_ : numpy.ndarray, shape (n_features,)
        The columns' means, after :meth:`fit`.
    shrinkage_ : float
        The Ledoit-Wolf shrinkage (``"ledoit_wolf"`` only), after :meth:`fit`.
    """

    _REPRS = {
        "ledoit_wolf": "LedoitWolf(store_precision=False)",
        "empirical": "EmpiricalCovariance(store_precision=False)",
    }

    def __init__(self, name: str):
        if name not in self._REPRS:
            raise ValueError(f"KernelCovariance: name={name!r}; expected one of {sorted(self._REPRS)}.")
        self.name = name

    def fit(self, X, y=None) -> KernelCovariance:
        """Estimate the covariance of ``X`` (n_samples, n_features); ``y`` is ignored."""
        X = np.asarray(X, dtype=np.float64)
        self.location_ = X.mean(axis=0)
        if self.name == "empirical":
            self.covariance_ = empirical_covariance(X)
        else:
            self.covariance_, self.shrinkage_ = ledoit_wolf(X)
        return self

    def __repr__(self) -> str:
        return self._REPRS[self.name]
