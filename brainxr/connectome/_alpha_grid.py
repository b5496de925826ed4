"""The search for the penalty of the cross-validated sparse estimators.

scikit-learn's ``GraphicalLassoCV`` searches ``alpha`` on a log grid that is
refined around the best mean held-out score; nilearn's
``GroupSparseCovarianceCV`` copies that search. Both of brainxr's estimators
(:class:`~brainxr.connectome.GraphicalLassoCV`,
:class:`~brainxr.connectome.GroupSparseCovarianceCV`) use these functions, so
the rules are written once:

- :func:`initial_grid`: ``n_alphas`` points log-uniform on
  ``[alpha_max / 100, alpha_max]``, decreasing, or the user's alphas (then
  no refinement);
- :func:`best_index`: the last maximum of the mean scores over the explored
  alphas sorted in decreasing order (the smallest alpha on ties); scores
  above ``0.1 / eps`` are nonsense and ignored;
- :func:`refined_grid`: ``n_alphas`` points strictly between the neighbours
  of the best alpha (or below it, when it is the smallest explored or the
  smallest finite one).
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

__all__ = ["best_index", "initial_grid", "refined_grid"]

#: Mean scores at or above this are numerical nonsense (scikit-learn's rule).
_ABSURD_SCORE = 0.1 / np.finfo(np.float64).eps


def initial_grid(alphas, n_refinements, alpha_max):
    """The first grid of penalties and the number of refinements.

    Parameters
    ----------
    alphas : int or array-like
        Number of grid points (at least 2), or the penalties themselves
        (each >= 0; then the grid is not refined).
    n_refinements : int
        Number of grids explored when ``alphas`` is a number.
    alpha_max : float
        The smallest penalty with a diagonal solution.

    Returns
    -------
    alphas : ndarray, decreasing when made here
    n_refinements : int
    """
    if np.ndim(alphas) > 0:
        grid = np.asarray(alphas, dtype=np.float64).ravel()
        if grid.size == 0:
            raise ValueError("alphas must not be empty")
        bad = grid[~(np.isfinite(grid) & (grid >= 0))]
        if bad.size:
            raise ValueError(f"each of alphas must be a finite number >= 0, got {float(bad[0])!r}")
        return grid, 1
    if isinstance(alphas, bool) or not isinstance(alphas, Integral) or alphas < 2:
        raise ValueError(f"alphas must be an integer >= 2 or a list of alphas, got {alphas!r}")
    grid = np.logspace(np.log10(1e-2 * alpha_max), np.log10(alpha_max), alphas)[::-1]
    return grid, n_refinements


def best_index(mean_scores):
    """Index of the best mean score and of the last finite one.

    Parameters
    ----------
    mean_scores : sequence of float
        Mean held-out scores of the explored alphas, in decreasing order of
        alpha.

    Returns
    -------
    best : int
        The last maximum (the smallest alpha on ties).
    last_finite : int
        The last index with a finite, sensible score (0 if none).
    """
    best, last_finite, best_score = 0, 0, -np.inf
    for index, score in enumerate(mean_scores):
        if score >= _ABSURD_SCORE:
            score = np.nan
        if np.isfinite(score):
            last_finite = index
        if score >= best_score:
            best, best_score = index, score
    return best, last_finite


def refined_grid(explored_alphas, best, last_finite, n_alphas):
    """The next grid: ``n_alphas`` points strictly inside a bracket of the best.

    Parameters
    ----------
    explored_alphas : sequence of float
        The explored penalties in decreasing order.
    best, last_finite : int
        From :func:`best_index`.
    n_alphas : int
        Number of points of the new grid.

    Returns
    -------
    alphas : ndarray, decreasing
    start : int
        Index of the explored alpha just above the new grid, whose solutions
        warm-start it.
    """
    n_explored = len(explored_alphas)
    if best == 0:
        start = 0
        lower = explored_alphas[1] if n_explored > 1 else 1e-2 * explored_alphas[0]
    elif best == last_finite and best != n_explored - 1:
        # the best is the last finite score: look between it and the failure
        start, lower = best, explored_alphas[best + 1]
    elif best == n_explored - 1:
        start, lower = best, 1e-2 * explored_alphas[best]
    else:
        start, lower = best - 1, explored_alphas[best + 1]
    upper = explored_alphas[start]
    alphas = np.logspace(np.log10(upper), np.log10(lower), n_alphas + 2)[1:-1]
    return alphas, start
