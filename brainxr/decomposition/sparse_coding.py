"""Lasso sparse coding of many samples at once, compiled (scikit-learn's ``lasso_cd`` coding).

scikit-learn's ``sparse_encode(..., algorithm="lasso_cd")`` solves one Lasso
per sample (for dictionary learning of brain maps: one per voxel) through
``Lasso.fit``, a Python-level loop over tens of thousands of small problems.
This module runs the same solver, scikit-learn's coordinate descent on the
Gram matrix (``enet_coordinate_descent_gram``: cyclic updates, duality-gap
stopping rule with ``tol`` scaled by ``|y|^2``, gap-safe screening), for all
samples in one compiled parallel loop. Computations are in float64, so the
codes agree with scikit-learn's to within its convergence tolerance.
"""

from __future__ import annotations

import warnings

import numba
import numpy as np
from sklearn.exceptions import ConvergenceWarning

__all__ = ["lasso_code"]

# samples converted to float64 at once
_BLOCK = 8192


@numba.njit(cache=True, nogil=True)
def _duality_gap(w, alpha, Qw, q, y_norm2, XtA, positive):
    """Duality gap of the Lasso (scikit-learn's ``gap_enet_gram``, L2 penalty 0)."""
    n_features = w.shape[0]
    q_dot_w = 0.0
    wQw = 0.0
    w_l1_norm = 0.0
    for j in range(n_features):
        q_dot_w += w[j] * q[j]
        wQw += w[j] * Qw[j]
        w_l1_norm += abs(w[j])
    R_norm2 = y_norm2 + wQw - 2.0 * q_dot_w
    Ry = y_norm2 - q_dot_w
    dual_norm_XtA = -np.inf if positive else 0.0
    for j in range(n_features):
        XtA[j] = q[j] - Qw[j]
        value = XtA[j] if positive else abs(XtA[j])
        if value > dual_norm_XtA:
            dual_norm_XtA = value
    primal = 0.5 * R_norm2 + alpha * w_l1_norm
    scale = alpha / dual_norm_XtA if dual_norm_XtA > alpha else 1.0
    dual = -0.5 * scale**2 * R_norm2 + scale * Ry
    return primal - dual, dual_norm_XtA


@numba.njit(cache=True, nogil=True)
def _screen(w, alpha, gap, dual_norm_XtA, XtA, Q, Qw, active, excluded, first):
    """Gap-safe screening: the features that may be non-zero go to ``active``; returns their count."""
    n_features = w.shape[0]
    radius = np.sqrt(2.0 * abs(gap)) / alpha
    n_active = 0
    for j in range(n_features):
        if first:
            if Q[j, j] == 0.0:
                w[j] = 0.0
                excluded[j] = True
                continue
        elif excluded[j]:
            continue
        Xj_theta = XtA[j] / max(alpha, dual_norm_XtA)
        d_j = (1.0 - abs(Xj_theta)) / np.sqrt(Q[j, j])
        if d_j <= radius:
            active[n_active] = j
            excluded[j] = False
            n_active += 1
        else:
            if w[j] != 0.0:
                for i in range(n_features):
                    Qw[i] -= w[j] * Q[j, i]
                w[j] = 0.0
            excluded[j] = True
    return n_active


@numba.njit(cache=True, nogil=True)
def _lasso_one(Q, q, y_norm2, alpha, max_iter, tol, positive, w):
    """One Lasso on the Gram matrix, from ``w`` (updated in place); returns whether it converged."""
    n_features = Q.shape[0]
    Qw = Q @ w
    XtA = np.zeros(n_features)
    active = np.empty(n_features, dtype=np.int64)
    excluded = np.zeros(n_features, dtype=np.bool_)
    gap_tol = tol * y_norm2
    gap, dual_norm_XtA = _duality_gap(w, alpha, Qw, q, y_norm2, XtA, positive)
    if 0.0 <= gap <= gap_tol:
        return True
    n_active = _screen(w, alpha, gap, dual_norm_XtA, XtA, Q, Qw, active, excluded, True)
    for n_iter in range(max_iter):
        w_max = 0.0
        d_w_max = 0.0
        for position in range(n_active):
            j = active[position]
            if Q[j, j] == 0.0:
                continue
            w_j = w[j]
            tmp = q[j] - Qw[j] + w_j * Q[j, j]
            if positive and tmp < 0.0:
                w[j] = 0.0
            else:
                w[j] = np.sign(tmp) * max(abs(tmp) - alpha, 0.0) / Q[j, j]
            if w[j] != w_j:
                step = w[j] - w_j
                for i in range(n_features):
                    Qw[i] += step * Q[j, i]
            d_w_max = max(d_w_max, abs(w[j] - w_j))
            w_max = max(w_max, abs(w[j]))
        if w_max == 0.0 or d_w_max / w_max <= tol or n_iter == max_iter - 1:
            gap, dual_norm_XtA = _duality_gap(w, alpha, Qw, q, y_norm2, XtA, positive)
            if gap <= gap_tol:
                return True
            n_active = _screen(w, alpha, gap, dual_norm_XtA, XtA, Q, Qw, active, excluded, False)
    return False


@numba.njit(cache=True, parallel=True, nogil=True)
def _lasso_many(Q, covariance, y_norm2, alpha, max_iter, tol, positive):
    n_features, n_samples = covariance.shape
    code = np.zeros((n_samples, n_features))
    converged = np.ones(n_samples, dtype=np.bool_)
    for sample in numba.prange(n_samples):
        w = np.zeros(n_features)
        converged[sample] = _lasso_one(
            Q, np.ascontiguousarray(covariance[:, sample]), y_norm2[sample], alpha, max_iter, tol, positive, w
        )
        code[sample] = w
    return code, converged


def lasso_code(data, dictionary, alpha: float, max_iter: int = 1000, tol: float = 1e-8, positive: bool = False):
    """Sparse codes of ``data`` on ``dictionary`` by Lasso coordinate descent.

    For each sample ``x`` (row of ``data``), the code ``u`` minimizes
    ``0.5 * |x - u @ dictionary|^2 + alpha * |u|_1``, as scikit-learn's
    ``sparse_encode(data, dictionary, algorithm="lasso_cd", alpha=alpha)``.

    Parameters
    ----------
    data : ``(n_samples, n_features)`` array
    dictionary : ``(n_components, n_features)`` array
    alpha : float
        L1 penalty.
    max_iter : int, default=1000
        Coordinate-descent epochs per sample at most.
    tol : float, default=1e-8
        Stop when the duality gap is below ``tol * |x|^2`` (scikit-learn's
        rule and ``sparse_encode``'s value).
    positive : bool, default=False
        Constrain the codes to be non-negative.

    Returns
    -------
    ``(n_samples, n_components)`` numpy.ndarray
        In ``data``'s float dtype.
    """
    data = np.asarray(data)
    dictionary = np.asarray(dictionary)
    if data.ndim != 2 or dictionary.ndim != 2 or data.shape[1] != dictionary.shape[1]:
        raise ValueError(
            f"data and dictionary must be 2D with the same number of features, got shapes {data.shape} and "
            f"{dictionary.shape}"
        )
    if alpha <= 0:
        raise ValueError(f"alpha must be positive for Lasso coding, got {alpha}")
    dtype = data.dtype if data.dtype.kind == "f" else np.dtype(np.float64)
    n_features = data.shape[1]
    # scikit-learn passes alpha / n_features to Lasso, which scales it back by n_features
    penalty = float(alpha) / n_features * n_features
    dictionary64 = dictionary.astype(np.float64)
    gram = dictionary64 @ dictionary64.T
    # dictionary @ data.T and the squared norms in float64, a block of samples at a time (no float64 copy of data)
    covariance = np.empty((dictionary.shape[0], data.shape[0]))
    y_norm2 = np.empty(data.shape[0])
    for start in range(0, data.shape[0], _BLOCK):
        block = data[start:start + _BLOCK].astype(np.float64)
        covariance[:, start:start + _BLOCK] = dictionary64 @ block.T
        y_norm2[start:start + _BLOCK] = np.einsum("ij,ij->i", block, block)
    code, converged = _lasso_many(gram, covariance, y_norm2, penalty, int(max_iter), float(tol), bool(positive))
    if not converged.all():
        warnings.warn(
            f"Lasso coding did not converge for {int((~converged).sum())} of {len(converged)} samples within "
            f"{max_iter} iterations; increase max_iter or alpha.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return code.astype(dtype, copy=False)
