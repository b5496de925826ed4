"""Connectivity matrices as images (nilearn's ``plot_matrix``)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from mpl_toolkits.axes_grid1 import make_axes_locatable
from scipy.cluster.hierarchy import leaves_list, linkage, optimal_leaf_ordering

from brainxr.plotting._inputs import as_graph

REORDER_METHODS = (True, False, "single", "complete", "average")
TRI_VALUES = ("full", "lower", "diag")


def reorder_matrix(matrix: np.ndarray, labels: list, method: str = "average"):
    """Order rows and columns by hierarchical clustering (optimal leaf ordering).

    Returns
    -------
    matrix : numpy.ndarray
    labels : list
    order : numpy.ndarray
        The new position of each original row.
    """
    order = leaves_list(optimal_leaf_ordering(linkage(matrix, method=method), matrix))
    return matrix[np.ix_(order, order)], [labels[i] for i in order], order


def mask_triangle(matrix: np.ndarray, tri: str) -> np.ma.MaskedArray:
    """Hide the upper triangle: with the diagonal (``'lower'``) or without (``'diag'``)."""
    keep = np.tri(len(matrix), k=-1 if tri == "lower" else 0, dtype=bool)
    return np.ma.masked_array(matrix, ~keep)


def _figure_and_axes(figure, axes):
    if axes is not None and figure is not None:
        raise ValueError(f"figure, axes: cannot be specified together; got figure={figure!r}, axes={axes!r}")
    if axes is not None:
        return axes.figure, axes
    if isinstance(figure, plt.Figure):
        return figure, figure.gca()
    fig = plt.figure(figsize=figure if figure is not None else (7, 5), layout="constrained")
    return fig, fig.add_subplot(1, 1, 1)


def plot_matrix(mat, title=None, labels=None, figure=None, axes=None, colorbar=True, cmap="RdBu_r", tri="full",
                auto_fit=True, grid=False, reorder=False, vmin=None, vmax=None, **kwargs):
    """Plot a matrix, e.g. a connectome, as an image with region names.

    Parameters
    ----------
    mat : (n, n) array-like or xarray.DataArray
        A brainxr connectivity DataArray ``(region, region_)`` provides the
        labels (coord ``region``).
    title : str, optional
    labels : sequence of str, False or None
        Row/column names; ``False`` hides the DataArray's names.
    figure : matplotlib Figure or (width, height), optional
    axes : matplotlib Axes, optional
    colorbar : bool
    cmap : colormap
    tri : {'full', 'lower', 'diag'}
        Show the whole matrix, its lower triangle, or the lower triangle with
        the diagonal.
    auto_fit : bool
        Make room for the labels.
    grid : bool
        Draw lines between cells.
    reorder : bool or {'single', 'complete', 'average'}
        Order rows by hierarchical clustering (``True`` is ``'average'``);
        needs labels.
    vmin, vmax : float, optional
    **kwargs
        Passed to :func:`~matplotlib.pyplot.imshow`.

    Returns
    -------
    matplotlib.image.AxesImage
    """
    if tri not in TRI_VALUES:
        raise ValueError(f"tri: expected one of {TRI_VALUES}, got {tri!r}")
    if reorder not in REORDER_METHODS:
        raise ValueError(f"reorder: expected one of {REORDER_METHODS}, got {reorder!r}")
    graph = as_graph(mat, labels=None if labels is False else labels, name="mat")
    matrix = graph.matrix
    labels = None if labels is False else graph.labels
    if labels is not None and all(label == "" for label in labels):
        labels = None
    fig, axes = _figure_and_axes(figure, axes)
    if reorder:
        if not labels:
            raise ValueError("reorder: labels are needed to show the reordering.")
        matrix, labels, _ = reorder_matrix(matrix, labels, "average" if reorder is True else reorder)
    shown = mask_triangle(matrix, tri) if tri != "full" else matrix
    image = axes.imshow(shown, cmap=cmap, vmin=vmin, vmax=vmax, aspect="equal", interpolation="nearest", **kwargs)
    axes.set_autoscale_on(False)
    ymin, ymax = axes.get_ylim()
    if labels:
        ticks = np.arange(len(labels))
        axes.set_xticks(ticks)
        axes.set_xticklabels(labels, size="x-small", rotation=50, ha="right")
        axes.set_yticks(ticks)
        axes.set_yticklabels(labels, size="x-small", rotation=10, ha="right", va="top")
    else:
        axes.xaxis.set_major_formatter(plt.NullFormatter())
        axes.yaxis.set_major_formatter(plt.NullFormatter())
    if grid:
        _draw_grid(axes, tri, len(matrix))
    axes.set_ylim(ymin, ymax)
    if auto_fit and labels and fig.get_layout_engine() is None:
        _fit_labels(axes)
    if colorbar:
        cax = make_axes_locatable(axes).append_axes("right", size="5%", pad=0.05)
        fig.colorbar(image, cax=cax)
    if title is not None:
        axes.set_title(title, size=16)
    return image


def _draw_grid(axes, tri: str, size: int) -> None:
    """Lines between the shown cells (nilearn's layout for each ``tri``)."""
    for i in range(size):
        edge = i + 0.5
        if tri == "full":
            axes.plot([edge, edge], [size - 0.5, -0.5], color="gray")
            axes.plot([size - 0.5, -0.5], [edge, edge], color="gray")
        else:
            row = edge if tri == "lower" else edge - 1
            axes.plot([edge, edge], [size - 0.5, row], color="gray")
            axes.plot([edge, -0.5], [row, row], color="gray")


def _fit_labels(axes) -> None:
    """Move the axes so that the tick labels fit in the figure."""
    fig = axes.figure
    renderer = fig.canvas.get_renderer()
    to_figure = fig.transFigure.inverted()
    label_width = axes.yaxis.get_tightbbox(renderer).transformed(to_figure).width
    position = axes.get_position()
    if position.xmin < 1.1 * label_width:
        position.x0 = 1.1 * label_width
        axes.set_position(position)
    label_height = axes.xaxis.get_tightbbox(renderer).transformed(to_figure).height
    position = axes.get_position()
    if position.ymin < 1.1 * label_height:
        position.y0 = 1.1 * label_height
        axes.set_position(position)
