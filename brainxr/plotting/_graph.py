"""Edges of a connectivity graph as nilearn selects and colours them.

Shared by the static displays (:mod:`brainxr.plotting.displays`), the
connectome plots and the interactive views; it imports no other plotting
module.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np

from brainxr.plotting._inputs import as_graph


def scoreatpercentile(data: np.ndarray, percentile: float) -> float:
    """The ``percentile`` of ``data`` with linear interpolation (scipy's ``scoreatpercentile``)."""
    return float(np.percentile(np.asarray(data, dtype=float).ravel(), percentile))


def check_threshold(threshold, data: np.ndarray, percentile_func=scoreatpercentile, name: str = "threshold") -> float:
    """A threshold as a number: a float as given, ``"99.8%"`` as that percentile of ``abs(data)``.

    A percentile threshold gets ``1e-5`` added, as in nilearn, so that the
    value at the percentile itself is dropped.
    """
    if isinstance(threshold, str):
        message = f'{name}: given as a string it must be a number followed by the percent sign, e.g. "25.3%"; got {threshold!r}'
        if not threshold.endswith("%"):
            raise ValueError(message)
        try:
            percentile = float(threshold[:-1])
        except ValueError as error:
            raise ValueError(message) from error
        if not 0 <= percentile <= 100:
            raise ValueError(f"{name}: a percentile must lie between 0% and 100%, got {threshold!r}")
        return float(percentile_func(np.abs(data), percentile)) + 1e-5
    if not isinstance(threshold, numbers.Real):
        raise TypeError(f"{name}: expected a number or a string finishing with a percent sign, got {threshold!r}")
    if threshold < 0:
        raise ValueError(f"{name}: must be non-negative (it applies to absolute values), got {threshold}")
    return float(threshold)


def warn_if_not_symmetric(matrix: np.ndarray) -> bool:
    """Whether the matrix is symmetric; warns that a directed graph is drawn otherwise."""
    symmetric = bool(np.allclose(matrix, matrix.T, rtol=1e-3))
    if not symmetric:
        warnings.warn("'adjacency_matrix' is not symmetric.\nA directed graph will be plotted.", stacklevel=3)
    return symmetric


@dataclass(frozen=True)
class GraphEdges:
    """The edges that survive thresholding.

    Attributes
    ----------
    node_coords : numpy.ndarray ``(n_nodes, 3)``
    pairs : numpy.ndarray ``(n_edges, 2)``
        Node indices of each edge (row, column); for a symmetric matrix only
        the lower triangle.
    values : numpy.ndarray ``(n_edges,)``
    line_coords : numpy.ndarray ``(n_edges, 2, 3)``
    symmetric : bool
    threshold : float or None
        The absolute threshold applied.
    """

    node_coords: np.ndarray
    pairs: np.ndarray
    values: np.ndarray
    line_coords: np.ndarray
    symmetric: bool
    threshold: float | None


def graph_edges(adjacency_matrix, node_coords=None, edge_threshold=None) -> GraphEdges:
    """Edges of a graph above ``edge_threshold`` (in absolute value), as nilearn selects them.

    Parameters
    ----------
    adjacency_matrix : (n, n) array-like or connectivity DataArray
    node_coords : (n, 3) array-like, optional when the DataArray carries x, y, z
    edge_threshold : float, str or None
        A number, or a percentile of the absolute off-diagonal values such
        as ``"99.8%"`` (of the lower triangle for a symmetric matrix).
    """
    graph = as_graph(adjacency_matrix, node_coords)
    if graph.coords is None:
        raise ValueError("node_coords: required (the adjacency matrix carries no x, y, z coords)")
    matrix = graph.matrix
    symmetric = warn_if_not_symmetric(matrix)
    threshold = None
    if edge_threshold is not None:
        if symmetric:
            candidates = matrix[np.tril_indices_from(matrix, k=-1)]
        else:
            candidates = matrix.ravel()
        threshold = check_threshold(edge_threshold, np.abs(candidates), name="edge_threshold")
        matrix = np.where(np.abs(matrix) < threshold, 0.0, matrix)
    selected = np.tril(matrix, k=-1) if symmetric else matrix
    rows, cols = np.nonzero(selected)
    pairs = np.column_stack([rows, cols]).astype(np.intp)
    return GraphEdges(
        node_coords=graph.coords,
        pairs=pairs,
        values=matrix[rows, cols],
        line_coords=graph.coords[pairs] if len(pairs) else np.zeros((0, 2, 3)),
        symmetric=symmetric,
        threshold=threshold,
    )


def edge_color_range(values: np.ndarray, edge_vmin=None, edge_vmax=None) -> tuple:
    """The colour range of edges: symmetric around 0 unless both bounds are given."""
    if edge_vmin is None and edge_vmax is None:
        peak = float(np.abs(values).max()) if len(values) else 1.0
        return -peak, peak
    if edge_vmin is None:
        if edge_vmax <= 0:
            raise ValueError("edge_vmin: if edge_vmax is set to a non-positive number then edge_vmin needs to be specified")
        return -edge_vmax, edge_vmax
    if edge_vmax is None:
        if edge_vmin >= 0:
            raise ValueError("edge_vmax: if edge_vmin is set to a non-negative number then edge_vmax needs to be specified")
        return edge_vmin, -edge_vmin
    return edge_vmin, edge_vmax
