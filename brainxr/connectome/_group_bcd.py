"""Compiled block coordinate descent of nilearn's group-sparse covariance.

A line-by-line numba port of one iteration (a sweep over all columns) of the
algorithm in nilearn 0.14.1's ``_group_sparse_covariance`` (Honorio and
Samaras, "Multi-task learning of Gaussian graphical models", ICML 2010). It
minimises, over the precisions ``K_k`` of all subjects at once::

    sum_k n_k (tr(S_k K_k) - log det K_k) + alpha * sum_{i != j} ||K_ij.||_2

(``n_k`` the sample counts normalised to sum to one, ``K_ij.`` the vector of
entry ``(i, j)`` across subjects). Each column ``p`` is optimised with the
others fixed: the inverse of the precision without row/column ``p`` is kept
up to date by two Sherman-Morrison-Woodbury updates, the off-diagonal column
by coordinate descent where each coordinate is a group-lasso problem across
subjects solved in closed form up to one scalar (found by Newton-Raphson),
and the diagonal entry in closed form.

The operations, their order and the Newton-Raphson stopping rules are
nilearn's, so the iterates match nilearn's to rounding errors: the same
number of iterations, the same early-stopping decisions in cross-validation.
Arrays are laid out ``(subject, p, p)`` here (nilearn: ``(p, p, subject)``).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from scipy import linalg

#: Bits of the warning flags returned by :func:`bcd_sweep`.
DERIVATIVE_ZERO = 1
NEWTON_NOT_CONVERGED = 2


@njit(cache=True, nogil=True)
def _update_submatrix(full, sub, sub_inv, p, h, v):
    """Move ``sub`` (``full`` without row/column ``p - 1``) to ``full``
    without row/column ``p``, and its inverse ``sub_inv`` with it (nilearn's
    ``_update_submatrix``: two Sherman-Morrison-Woodbury updates)."""
    n = p - 1
    size = sub.shape[0]
    for i in range(n + 1):
        v[i] = full[i, n]
        h[i] = full[n, i]
    for i in range(n + 1, size):
        v[i] = full[i + 1, n]
        h[i] = full[n, i + 1]

    # change row: first usage of SWM identity
    coln = np.empty(size)
    denominator = 1.0
    for i in range(size):
        denominator += (h[i] - sub[n, i]) * sub_inv[i, n]
    for i in range(size):
        coln[i] = sub_inv[i, n] / denominator
    v_sub_inv = np.zeros(size)
    for i in range(size):
        delta = h[i] - sub[n, i]
        for j in range(size):
            v_sub_inv[j] += delta * sub_inv[i, j]
    for i in range(size):
        for j in range(size):
            sub_inv[i, j] -= coln[i] * v_sub_inv[j]
    for i in range(size):
        sub[n, i] = h[i]

    # change column: second usage of SWM identity
    rown = np.empty(size)
    denominator = 1.0
    for i in range(size):
        denominator += sub_inv[n, i] * (v[i] - sub[i, n])
    for i in range(size):
        rown[i] = sub_inv[n, i] / denominator
    sub_inv_u = np.zeros(size)
    for i in range(size):
        for j in range(size):
            sub_inv_u[i] += sub_inv[i, j] * (v[j] - sub[j, n])
    for i in range(size):
        for j in range(size):
            sub_inv[i, j] -= sub_inv_u[i] * rown[j]
    for i in range(size):
        sub[i, n] = v[i]

    # make sub_inv symmetric (overcomes some numerical limitations)
    for i in range(size):
        for j in range(i + 1, size):
            mean = (sub_inv[i, j] + sub_inv[j, i]) / 2.0
            sub_inv[i, j] = mean
            sub_inv[j, i] = mean
        sub_inv[i, i] = (sub_inv[i, i] + sub_inv[i, i]) / 2.0


def bcd_sweep(omega, emp_covs, n_samples, alpha):
    """One iteration of nilearn's block coordinate descent, in place.

    The inverses of the precisions without their first row and column start
    the sweep; they are computed here with scipy, as nilearn does, so that
    the compiled kernel holds loops only (and compiles in a fraction of the
    time numba's linear algebra takes).

    Parameters
    ----------
    omega : ndarray of shape (n_subjects, p, p)
        Current precisions, updated in place.
    emp_covs : ndarray of shape (n_subjects, p, p)
        Empirical covariances.
    n_samples : ndarray of shape (n_subjects,)
        Sample counts, normalised to sum to one.
    alpha : float
        Penalty.

    Returns
    -------
    int
        Warning flags: ``DERIVATIVE_ZERO`` and/or ``NEWTON_NOT_CONVERGED``
        when a Newton-Raphson solve met those conditions (nilearn warns).
    """
    first_inverses = np.stack([linalg.inv(precision[1:, 1:]) for precision in omega])
    return _bcd_sweep(omega, emp_covs, n_samples, float(alpha), first_inverses)


@njit(cache=True, nogil=True)
def _bcd_sweep(omega, emp_covs, n_samples, alpha, first_inverses):
    """:func:`bcd_sweep`'s loops (same parameters and result);
    ``first_inverses`` holds the inverse of each precision without its first
    row and column."""
    n_subjects, n_features, _ = omega.shape
    size = n_features - 1
    W = np.empty((n_subjects, size, size))
    W_inv = np.empty((n_subjects, size, size))
    y = np.empty((n_subjects, size))
    u = np.empty((n_subjects, size))
    c = np.empty(n_subjects)
    q = np.empty(n_subjects)
    cc = np.empty(n_subjects)
    two_ccq = np.empty(n_subjects)
    aq = np.empty(n_subjects)
    h = np.empty(size)
    v = np.empty(size)
    alpha2 = alpha * alpha
    flags = 0
    for p in range(n_features):
        if p == 0:
            for k in range(n_subjects):
                for i in range(size):
                    for j in range(size):
                        W[k, i, j] = omega[k, i + 1, j + 1]
                        W_inv[k, i, j] = first_inverses[k, i, j]
        else:
            for k in range(n_subjects):
                _update_submatrix(omega[k], W[k], W_inv[k], p, h, v)

        for k in range(n_subjects):
            for i in range(p):
                y[k, i] = omega[k, i, p]
                u[k, i] = emp_covs[k, i, p]
            for i in range(p + 1, n_features):
                y[k, i - 1] = omega[k, i, p]
                u[k, i - 1] = emp_covs[k, i, p]

        for m in range(size):
            # coordinate descent on y[:, m], a group-lasso problem across subjects
            c2 = 0.0
            for k in range(n_subjects):
                h12_y1 = 0.0
                for i in range(size):
                    if i != m:
                        h12_y1 += W_inv[k, i, m] * y[k, i]
                c[k] = -n_samples[k] * (emp_covs[k, p, p] * h12_y1 + u[k, m])
                c2 += c[k] * c[k]
            c2 = np.sqrt(c2)
            if c2 <= alpha:
                for k in range(n_subjects):
                    y[k, m] = 0.0
                continue
            for k in range(n_subjects):
                q[k] = n_samples[k] * emp_covs[k, p, p] * W_inv[k, m, m]
                cc[k] = c[k] * c[k]
                two_ccq[k] = 2.0 * cc[k] * q[k]
            # Newton-Raphson for x* = gamma diag(1 + gamma q)^-1 c
            gamma = 0.0
            fval = 0.0
            for _ in range(100):
                fder = 0.0
                fsum = 0.0
                for k in range(n_subjects):
                    aq[k] = 1.0 + gamma * q[k]
                    aq2 = aq[k] * aq[k]
                    fder += two_ccq[k] / (aq2 * aq[k])
                    fsum += cc[k] / aq2
                if fder == 0:
                    flags |= DERIVATIVE_ZERO
                    break
                fval = -(alpha2 - fsum) / fder
                gamma = fval + gamma
                if abs(fval) < 1.5e-8:
                    break
            if abs(fval) > 0.1:
                flags |= NEWTON_NOT_CONVERGED
            for k in range(n_subjects):
                y[k, m] = (gamma * c[k]) / aq[k]

        for k in range(n_subjects):
            for i in range(p):
                omega[k, i, p] = y[k, i]
                omega[k, p, i] = y[k, i]
            for i in range(p + 1, n_features):
                omega[k, i, p] = y[k, i - 1]
                omega[k, p, i] = y[k, i - 1]
            quadratic = 0.0
            for j in range(size):
                y_w_inv = 0.0
                for i in range(size):
                    y_w_inv += y[k, i] * W_inv[k, i, j]
                quadratic += y_w_inv * y[k, j]
            omega[k, p, p] = 1.0 / emp_covs[k, p, p] + quadratic
    return flags


def group_log_likelihood(omega, emp_covs, n_samples):
    """``sum_k n_k (log det K_k - tr(S_k K_k))``, ``-inf`` if a determinant is
    not positive: the log-likelihood of nilearn's ``group_sparse_scores``,
    term by term as nilearn computes it (its ``fast_logdet`` is ``slogdet``)."""
    signs, logdets = np.linalg.slogdet(omega)
    total = 0.0
    for k in range(omega.shape[0]):
        log_lik = -np.sum(emp_covs[k] * omega[k])
        log_lik += logdets[k] if signs[k] > 0 else -np.inf
        total += n_samples[k] * log_lik
    return total
