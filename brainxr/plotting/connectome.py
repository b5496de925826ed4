"""Connectomes and node values on glass-brain projections.

``plot_connectome`` and ``plot_markers`` follow nilearn 0.14 (same names,
parameters, edge thresholding and colour scaling); a brainxr connectivity
DataArray ``(region, region_)`` brings its own node coordinates (coords
``x, y, z``).
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import Normalize

from brainxr.plotting._inputs import as_graph, node_values_and_coords
from brainxr.plotting._template import resolve_brain_mask
from brainxr.plotting.displays import make_display, save_if_needed


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


def plot_connectome(adjacency_matrix, node_coords=None, node_color="auto", node_size=50, edge_cmap="RdBu_r",
                    edge_vmin=None, edge_vmax=None, edge_threshold=None, output_file=None, display_mode="ortho",
                    figure=None, axes=None, title=None, annotate=True, black_bg=False, alpha=0.7,
                    edge_kwargs=None, node_kwargs=None, colorbar=True, brain_mask=None):
    """Plot a connectome on glass-brain projections.

    Parameters
    ----------
    adjacency_matrix : (n, n) array-like, scipy.sparse matrix or xarray.DataArray
        Edge weights; a symmetric matrix draws an undirected graph, otherwise
        arrows. A brainxr connectivity DataArray ``(region, region_)``
        provides the node coordinates (coords ``x, y, z``).
    node_coords : (n, 3) array-like, optional
        Node positions in mm (MNI space); required for a plain array.
    node_color : color, sequence of colors or 'auto'
        'auto' picks colors from the Set2 colormap.
    node_size : float or sequence of float
        Marker area in points^2.
    edge_cmap : colormap
    edge_vmin, edge_vmax : float, optional
        Colour range of edges; by default symmetric around 0 at the largest
        absolute kept weight.
    edge_threshold : float or str, optional
        Keep edges whose absolute weight is at least this number, or above
        this percentile of the absolute weights (e.g. ``"99.8%"``).
    output_file : str or Path, optional
        Save the figure there, close it and return ``None``.
    display_mode : {'ortho', 'x', 'y', 'z', 'xz', 'yz', 'yx', 'l', 'r', 'lr', 'lzr', 'lyr', 'lzry', 'lyrz'}
    figure : matplotlib Figure, int or (width, height), optional
    axes : matplotlib Axes or [left, bottom, width, height], optional
    title : str, optional
    annotate : bool
        Write 'L'/'R' on the coronal and axial views.
    black_bg : bool
    alpha : float
        Opacity of the glass-brain outlines.
    edge_kwargs, node_kwargs : dict, optional
        Passed to each edge's :class:`~matplotlib.lines.Line2D` and to
        :func:`~matplotlib.pyplot.scatter`.
    colorbar : bool
    brain_mask : 3D image, optional
        Mask whose projections draw the glass brain; default the MNI152
        template mask of :mod:`brainxr.datasets`.

    Returns
    -------
    ProjectorDisplay or None
        ``None`` when ``output_file`` is given.
    """
    display = make_display("projector", display_mode, figure=figure, axes=axes, black_bg=black_bg,
                           colorbar=colorbar, brain_mask=resolve_brain_mask(brain_mask), alpha=alpha)
    display.add_graph(adjacency_matrix, node_coords, node_color=node_color, node_size=node_size, edge_cmap=edge_cmap,
                      edge_vmin=edge_vmin, edge_vmax=edge_vmax, edge_threshold=edge_threshold,
                      edge_kwargs=edge_kwargs, node_kwargs=node_kwargs, colorbar=colorbar)
    _finish(display, title, annotate)
    return save_if_needed(display, output_file)


def _finish(display, title, annotate):
    if annotate:
        display.annotate()
    if title:
        display.title(title)


def plot_markers(node_values, node_coords=None, node_size="auto", node_cmap="gray", node_vmin=None, node_vmax=None,
                 node_threshold=None, alpha=0.7, output_file=None, display_mode="ortho", figure=None, axes=None,
                 title=None, annotate=True, black_bg=False, node_kwargs=None, colorbar=True, brain_mask=None):
    """Plot nodes coloured by a value (e.g. node strength) on glass-brain projections.

    Parameters
    ----------
    node_values : (n,) array-like or xarray.DataArray
        One value per node; a ``(region,)`` DataArray provides the node
        coordinates (coords ``x, y, z``).
    node_coords : (n, 3) array-like, optional
    node_size : 'auto', float or sequence of float
        'auto' is ``min(1e4 / n, 100)``.
    node_cmap : colormap
    node_vmin, node_vmax : float, optional
        Colour range; default the range of the (kept) values.
    node_threshold : float, optional
        Show only nodes with a value above it.
    alpha : float
        Opacity of the markers.
    output_file, display_mode, figure, axes, title, annotate, black_bg, colorbar, brain_mask
        As in :func:`plot_connectome`.
    node_kwargs : dict, optional
        Passed to :func:`~matplotlib.pyplot.scatter`.

    Returns
    -------
    ProjectorDisplay or None
    """
    values, coords = node_values_and_coords(node_values, node_coords)
    display = make_display("projector", display_mode, figure=figure, axes=axes, black_bg=black_bg,
                           colorbar=colorbar, brain_mask=resolve_brain_mask(brain_mask))
    if isinstance(node_size, str) and node_size == "auto":
        node_size = min(1e4 / len(coords), 100)
    if node_threshold is not None:
        if node_threshold > values.max():
            raise ValueError(
                f"node_threshold: {node_threshold} should not exceed the highest node value {values.max()}"
            )
        kept = values > node_threshold
        values, coords = values[kept], coords[kept]
        if not isinstance(node_size, numbers.Number):
            node_size = np.asarray(node_size)[kept]
    vmin = values.min() if node_vmin is None else node_vmin
    vmax = values.max() if node_vmax is None else node_vmax
    if vmin == vmax:
        vmin, vmax = 0.9 * vmin, 1.1 * vmax
    norm = Normalize(vmin=vmin, vmax=vmax)
    cmap = plt.get_cmap(node_cmap)
    node_kwargs = {**(node_kwargs or {}), "alpha": alpha}
    display.add_markers(coords, marker_color=cmap(norm(values)), marker_size=node_size, **node_kwargs)
    if colorbar:
        display._colorbar = True
        display._show_colorbar(cmap, norm)
    _finish(display, title, annotate)
    return save_if_needed(display, output_file)
