"""Connectomes and node values on glass-brain projections.

``plot_connectome`` and ``plot_markers`` follow nilearn 0.14 (same names,
parameters, edge thresholding and colour scaling); a brainxr connectivity
DataArray ``(region, region_)`` brings its own node coordinates (coords
``x, y, z``).
"""

from __future__ import annotations

import numbers

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import Normalize

from brainxr.plotting._inputs import node_values_and_coords
from brainxr.plotting._template import resolve_brain_mask
from brainxr.plotting.displays import make_display, save_if_needed


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
        Edge style with :class:`~matplotlib.lines.Line2D`'s names (``color``,
        ``linewidth``, ``linestyle``, ``alpha``, ...; the edges are drawn as
        one :class:`~matplotlib.collections.LineCollection` per view, arrows
        for a directed graph), and arguments of
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
