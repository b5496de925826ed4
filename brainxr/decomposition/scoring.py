"""Explained variance of spatial components, run by run.

nilearn's ``_explained_variance`` scores components on the stacked data of
all runs. Every term it needs is a sum over rows (volumes), so here each run
contributes its partial sums and the runs are never stacked: memory is one
run per worker however many runs are scored.

- ``per_component=True``: for unit-norm component ``c``, the residual of
  ``X`` after removing its projection ``p = X c`` is ``X - p c^T``; its
  variance over all entries comes from ``sum(X)``, ``sum(X**2)``, ``sum(p)``,
  ``sum(p**2)`` and ``sum(c)``. The score is ``1 - var(residual) / var(X)``,
  floored at 0.
- ``per_component=False``: each volume is regressed (with an intercept, as
  scikit-learn's ``LinearRegression``) on all components over the voxels; the
  score is one minus the residual sum of squares (without the intercept, as
  nilearn) over the data sum of squares.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LinearRegression

__all__ = ["combine_variance_terms", "explained_variance", "normalized_components", "variance_terms"]


def normalized_components(components: np.ndarray) -> np.ndarray:
    """Components scaled to unit L2 norm (all-zero components left as they are)."""
    norms = np.sqrt(np.sum(components**2, axis=1))
    norms[norms == 0] = 1
    return components / norms[:, np.newaxis]


def variance_terms(data: np.ndarray, components: np.ndarray, per_component: bool = True) -> dict:
    """One run's partial sums for the explained variance.

    Parameters
    ----------
    data : ``(time, voxel)`` numpy.ndarray
    components : ``(component, voxel)`` unit-norm components
        (see :func:`normalized_components`).
    per_component : bool

    Returns
    -------
    dict of float64 sums (see :func:`combine_variance_terms`).
    """
    values = np.asarray(data, dtype=np.float64)
    terms = {"count": values.size, "sum": values.sum(), "sum_squares": np.einsum("ij,ij->", values, values)}
    if per_component:
        projections = np.asarray(components, dtype=np.float64) @ values.T
        terms["projection_sum"] = projections.sum(axis=1)
        terms["projection_sum_squares"] = np.einsum("ij,ij->i", projections, projections)
        terms["component_sum"] = np.asarray(components, dtype=np.float64).sum(axis=1)
    else:
        regression = LinearRegression(fit_intercept=True).fit(components.T, data.T)
        residuals = data - regression.coef_.dot(components)
        terms["residual_sum_squares"] = float(np.einsum("ij,ij->", residuals, residuals, dtype=np.float64))
    return terms


def _add_terms(first: dict, second: dict) -> dict:
    return {key: first[key] + second[key] for key in first}


def combine_variance_terms(terms: list, per_component: bool = True):
    """The explained variance from the partial sums of every run.

    Returns
    -------
    float, or ``(component,)`` numpy.ndarray with ``per_component``.
    """
    total = terms[0]
    for more in terms[1:]:
        total = _add_terms(total, more)
    count = total["count"]
    if not per_component:
        return float(np.maximum(0.0, 1.0 - total["residual_sum_squares"] / total["sum_squares"]))
    full_variance = total["sum_squares"] / count - (total["sum"] / count) ** 2
    residual_sum = total["sum"] - total["projection_sum"] * total["component_sum"]
    # |x - p c|^2 summed = |x|^2 - 2 p.(Xc) + |p|^2 |c|^2 = |x|^2 - |p|^2 for unit-norm c
    residual_sum_squares = total["sum_squares"] - total["projection_sum_squares"]
    residual_variance = residual_sum_squares / count - (residual_sum / count) ** 2
    return np.maximum(0.0, 1.0 - residual_variance / full_variance)


def explained_variance(data: np.ndarray, components: np.ndarray, per_component: bool = True):
    """Explained variance of ``components`` on an in-memory ``(sample, voxel)`` matrix.

    Parameters
    ----------
    data : ``(sample, voxel)`` numpy.ndarray
    components : ``(component, voxel)`` numpy.ndarray
        Not necessarily normalized.
    per_component : bool, default=True
        One score per component (variance left after removing that
        component alone), or one score for the whole set (least-squares fit
        of every volume on all components).

    Returns
    -------
    float or ``(component,)`` numpy.ndarray
        Scores in [0, 1].
    """
    unit = normalized_components(np.asarray(components))
    return combine_variance_terms([variance_terms(data, unit, per_component)], per_component)
