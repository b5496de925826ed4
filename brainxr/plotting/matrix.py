"""Connectivity matrices as images (nilearn's ``plot_matrix``), readable with hundreds of regions."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from mpl_toolkits.axes_grid1 import make_axes_locatable

from brainxr.plotting._inputs import as_graph

REORDER_METHODS = (True, False, "single", "complete", "average", "network")
TRI_VALUES = ("full", "lower", "diag")
#: above this many rows, the tick labels are thinned (or grouped by network)
MAX_TICK_LABELS = 40


def reorder_matrix(matrix: np.ndarray, labels: list, method: str = "average"):
    """Order rows and columns by hierarchical clustering (optimal leaf ordering).

    Returns
    -------
    matrix : numpy.ndarray
    labels : list
    order : numpy.ndarray
        The new position of each original row.
    """
    from scipy.cluster.hierarchy import leaves_list, linkage, optimal_leaf_ordering  # only when reordering

    order = leaves_list(optimal_leaf_ordering(linkage(matrix, method=method), matrix))
    return matrix[np.ix_(order, order)], [labels[i] for i in order], order


def mask_triangle(matrix: np.ndarray, tri: str) -> np.ma.MaskedArray:
    """Hide the upper triangle: with the diagonal (``'lower'``) or without (``'diag'``)."""
    keep = np.tri(len(matrix), k=-1 if tri == "lower" else 0, dtype=bool)
    return np.ma.masked_array(matrix, ~keep)


def off_diagonal_limits(matrix: np.ndarray) -> tuple[float, float]:
    """Colour limits from the off-diagonal values: symmetric about 0 when they have both signs.

    The diagonal (ones of a correlation matrix, variances of a covariance)
    would otherwise set the scale and wash out every connection.
    """
    values = matrix[~np.eye(len(matrix), dtype=bool)] if len(matrix) > 1 else matrix.ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return -1.0, 1.0
    low, high = float(values.min()), float(values.max())
    if low < 0 < high:
        peak = max(-low, high)
        return -peak, peak
    return (low, high) if low < high else (low - 1, high + 1)


def _network_of_each_row(networks, labels, n_rows: int, mat) -> list | None:
    """One network name per row: given per row, as a mapping from row label, or the DataArray's ``network`` coord."""
    if networks is None:
        row_dim = getattr(mat, "dims", (None,))[0]
        coord = getattr(mat, "coords", {}).get("network")
        if coord is None or coord.dims != (row_dim,):
            return None
        networks = coord.values
    by_label = isinstance(networks, dict) or (
        isinstance(networks, pd.Series) and labels is not None and set(labels) <= set(networks.index.astype(str)))
    if by_label:
        networks = {str(key): value for key, value in networks.items()}
        if labels is None:
            raise ValueError("networks: a mapping from region name to network needs the region names (labels)")
        missing = [label for label in labels if label not in networks]
        if missing:
            raise ValueError(f"networks: no network for the regions {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        return [str(networks[label]) for label in labels]
    networks = [str(network) for network in np.asarray(networks, dtype=object).ravel()]
    if len(networks) != n_rows:
        raise ValueError(f"networks: {len(networks)} network names for a matrix of {n_rows} regions")
    return networks


def _network_order(networks: list) -> np.ndarray:
    """Rows grouped by network (networks in order of first appearance), stable within a network."""
    first = {}
    for network in networks:
        first.setdefault(network, len(first))
    return np.argsort([first[network] for network in networks], kind="stable")


def _network_blocks(networks: list) -> list[tuple[str, int, int]]:
    """``(network, start, stop)`` of each run of equal consecutive network names."""
    blocks, start = [], 0
    for row in range(1, len(networks) + 1):
        if row == len(networks) or networks[row] != networks[start]:
            blocks.append((networks[start], start, row))
            start = row
    return blocks


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
                auto_fit=True, grid=False, reorder=False, vmin=None, vmax=None, networks=None, diagonal=True,
                max_tick_labels=MAX_TICK_LABELS, **kwargs):
    """Plot a matrix, e.g. a connectome, as an image with region names.

    nilearn's ``plot_matrix``, readable with many regions: the diagonal does
    not set the colour scale, the rows can be grouped by network (one tick
    label per network, lines between networks), and past
    ``max_tick_labels`` rows the labels are thinned.

    Parameters
    ----------
    mat : (n, n) array-like or xarray.DataArray
        A brainxr connectivity DataArray ``(region, region_)`` provides the
        labels (coord ``region``) and, with a ``network`` coord, the networks.
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
    reorder : bool or {'single', 'complete', 'average', 'network'}
        Order rows by hierarchical clustering (``True`` is ``'average'``,
        needs labels), or group them by network (``'network'``, needs
        ``networks``; the order within a network is kept).
    vmin, vmax : float, optional
        Colour limits. Default: from the off-diagonal values, symmetric
        about 0 when they have both signs (nilearn's includes the diagonal).
    networks : sequence of str or mapping, optional
        The network of each row, or a mapping from row label to network
        (e.g. ``atlas.regions.set_index("region")["network"]``). Default: the
        DataArray's ``network`` coord, if any. Rows of one network are
        labelled once, at the centre of their block, when they are
        consecutive (``reorder="network"`` makes them so).
    diagonal : bool
        Show the diagonal (its values clipped to the colour scale) or leave
        its cells blank.
    max_tick_labels : int or None
        Past this many rows (and without networks), label every k-th row
        only; None labels every row.
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
    if max_tick_labels is not None and (isinstance(max_tick_labels, bool) or int(max_tick_labels) < 1):
        raise ValueError(f"max_tick_labels: expected a positive number of labels or None, got {max_tick_labels!r}")
    graph = as_graph(mat, labels=None if labels is False else labels, name="mat")
    matrix = graph.matrix
    labels = None if labels is False else graph.labels
    if labels is not None and all(label == "" for label in labels):
        labels = None
    row_networks = _network_of_each_row(networks, graph.labels, len(matrix), mat)
    fig, axes = _figure_and_axes(figure, axes)
    if reorder == "network":
        if row_networks is None:
            raise ValueError("reorder='network': pass networks= (the network of each region), or a DataArray "
                             "with a 'network' coord")
        order = _network_order(row_networks)
    elif reorder:
        if not labels:
            raise ValueError("reorder: labels are needed to show the reordering.")
        _, _, order = reorder_matrix(matrix, labels, "average" if reorder is True else reorder)
    else:
        order = np.arange(len(matrix))
    matrix = matrix[np.ix_(order, order)]
    labels = None if labels is None else [labels[i] for i in order]
    row_networks = None if row_networks is None else [row_networks[i] for i in order]
    if vmin is None or vmax is None:
        low, high = off_diagonal_limits(matrix)
        vmin = low if vmin is None else vmin
        vmax = high if vmax is None else vmax
    shown = mask_triangle(matrix, tri) if tri != "full" else np.ma.masked_array(matrix, np.zeros(matrix.shape, bool))
    if not diagonal:
        shown[np.diag_indices(len(matrix))] = np.ma.masked
    image = axes.imshow(shown, cmap=cmap, vmin=vmin, vmax=vmax, aspect="equal", interpolation="nearest", **kwargs)
    axes.set_autoscale_on(False)
    ymin, ymax = axes.get_ylim()
    blocks = _network_blocks(row_networks) if row_networks is not None else None
    if blocks is not None and len(blocks) < len(matrix):
        _label_networks(axes, blocks, tri, len(matrix))
    elif labels:
        _label_rows(axes, labels, max_tick_labels)
    else:
        axes.xaxis.set_major_formatter(plt.NullFormatter())
        axes.yaxis.set_major_formatter(plt.NullFormatter())
    if grid:
        _draw_grid(axes, tri, len(matrix))
    axes.set_ylim(ymin, ymax)
    if auto_fit and (labels or blocks) and fig.get_layout_engine() is None:
        _fit_labels(axes)
    if colorbar:
        cax = make_axes_locatable(axes).append_axes("right", size="5%", pad=0.05)
        fig.colorbar(image, cax=cax)
    if title is not None:
        axes.set_title(title, size=16)
    return image


def _label_rows(axes, labels: list, max_tick_labels: int | None) -> None:
    """Every row's name (nilearn's layout), or every k-th past ``max_tick_labels`` rows."""
    step = 1 if max_tick_labels is None else max(1, int(np.ceil(len(labels) / max_tick_labels)))
    ticks = np.arange(0, len(labels), step)
    shown = [labels[i] for i in ticks]
    axes.set_xticks(ticks)
    axes.set_xticklabels(shown, size="x-small", rotation=50, ha="right")
    axes.set_yticks(ticks)
    axes.set_yticklabels(shown, size="x-small", rotation=10, ha="right", va="top")


def _label_networks(axes, blocks: list, tri: str, size: int) -> None:
    """One tick label per network block, at its centre, and lines between blocks."""
    centres = [(start + stop - 1) / 2 for _, start, stop in blocks]
    names = [name for name, _, _ in blocks]
    axes.set_xticks(centres)
    axes.set_xticklabels(names, size="small", rotation=50, ha="right")
    axes.set_yticks(centres)
    axes.set_yticklabels(names, size="small")
    axes.tick_params(length=0)
    for _, start, _ in blocks[1:]:
        edge = start - 0.5
        if tri == "full":
            axes.axvline(edge, color="black", linewidth=0.6)
            axes.axhline(edge, color="black", linewidth=0.6)
        else:  # lines within the shown lower triangle only
            axes.plot([edge, edge], [size - 0.5, edge], color="black", linewidth=0.6)
            axes.plot([-0.5, edge], [edge, edge], color="black", linewidth=0.6)


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
