"""Interactive 3D connectomes and markers in the browser (``view_connectome``, ``view_markers``).

The page is self-contained: plotly.js (MIT, from the installed ``plotly``
package) and the data are embedded, so the saved HTML file opens offline.
It shows a translucent brain surface (marching cubes on a brain mask), the
nodes and the edges coloured by weight; the view rotates with the mouse and
a slider sets the edge threshold. The page exposes the number of drawn edges
as ``<body data-n-edges="...">``.
"""

from __future__ import annotations

import base64
import json
from functools import lru_cache
from html import escape
from importlib import resources

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import to_hex

from brainxr.plotting._inputs import as_graph, as_node_coords
from brainxr.plotting._mesh import cached_brain_surface_mesh
from brainxr.plotting._template import resolve_brain_mask
from brainxr.plotting.connectome import check_threshold
from brainxr.plotting.find_cuts import fast_abs_percentile
from brainxr.reporting._document import HTMLDocument

#: at most this many edges (the strongest) are embedded in the page
MAX_EDGES = 20000


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    import plotly

    return (resources.files(plotly) / "package_data" / "plotly.min.js").read_text(encoding="utf-8")


def _page_template() -> str:
    return (resources.files("brainxr.plotting") / "data" / "connectome_view.html").read_text(encoding="utf-8")


def _encode(array, dtype) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _colorscale(cmap, n_colors: int = 101) -> list:
    """A plotly colorscale (``[[position, 'rgb(...)'], ...]``) sampling ``cmap``."""
    cmap = plt.get_cmap(cmap)
    positions = np.linspace(0, 1, n_colors)
    rgb = (cmap(positions)[:, :3] * 255).round().astype(int)
    return [[float(round(p, 4)), f"rgb({r}, {g}, {b})"] for p, (r, g, b) in zip(positions, rgb)]


def _node_colors(color, n_nodes: int) -> list:
    if isinstance(color, str) and color == "auto":
        return [to_hex(c) for c in plt.cm.viridis(np.linspace(0, 1, n_nodes))]
    if isinstance(color, str) or (isinstance(color, tuple) and len(color) in (3, 4)):
        return [to_hex(color)] * n_nodes
    colors = list(color)
    if len(colors) != n_nodes:
        raise ValueError(f"node_color: {len(colors)} colors for {n_nodes} nodes; give one color or one per node")
    return [to_hex(c) for c in colors]


def _node_sizes(size, n_nodes: int):
    if np.ndim(size) == 0:
        return float(size)
    sizes = np.asarray(size, dtype=float).ravel()
    if len(sizes) != n_nodes:
        raise ValueError(f"node_size: {len(sizes)} sizes for {n_nodes} nodes; give one size or one per node")
    return sizes.tolist()


class ConnectomeView(HTMLDocument):
    """An interactive 3D view: ``save_as_html``, ``open_in_browser``, inline in Jupyter.

    Attributes
    ----------
    n_edges : int
        Number of edges drawn at the initial threshold.
    threshold : float
        The initial absolute edge threshold.
    """

    def __init__(self, html: str, n_edges: int = 0, threshold: float = 0.0, width: int = 600, height: int = 400):
        super().__init__(html, width=width, height=height)
        self.n_edges = n_edges
        self.threshold = threshold


def _render(view_data: dict, title) -> str:
    data = json.dumps(view_data, separators=(",", ":")).replace("</", "<\\/")
    page = _page_template()
    page = page.replace("__BRAINXR_TITLE__", escape(title or "brainxr view"))
    page = page.replace("__BRAINXR_DATA__", data)
    return page.replace("__BRAINXR_PLOTLY_JS__", _plotly_js())


def _mesh_data(brain_mask, opacity: float = 0.1) -> dict:
    mesh = cached_brain_surface_mesh(resolve_brain_mask(brain_mask))
    return {"vertices": _encode(mesh.vertices, "<f4"), "faces": _encode(mesh.faces, "<i4"),
            "color": "#bcbcbc", "opacity": opacity}


def _nodes_data(coords, color, size, labels) -> dict:
    if labels is not None:
        labels = [str(label) for label in labels]
        if len(labels) != len(coords):
            raise ValueError(f"node_labels: {len(labels)} labels for {len(coords)} nodes")
    return {"coords": _encode(coords, "<f4"), "color": _node_colors(color, len(coords)),
            "size": _node_sizes(size, len(coords)), "labels": labels}


def view_connectome(adjacency_matrix, node_coords=None, edge_threshold=None, edge_cmap="RdBu_r",
                    symmetric_cmap=True, linewidth=6.0, node_color="auto", node_size=3.0, colorbar=True,
                    colorbar_height=0.5, colorbar_fontsize=25, title=None, title_fontsize=25, node_labels=None,
                    brain_mask=None) -> ConnectomeView:
    """Interactive 3D connectome in a self-contained HTML page.

    Parameters
    ----------
    adjacency_matrix : (n, n) array-like or connectivity DataArray
        A DataArray ``(region, region_)`` provides node coordinates
        (``x, y, z``) and names (hover labels).
    node_coords : (n, 3) array-like, optional
    edge_threshold : float or str, optional
        Initial threshold: edges with ``|w|`` above it are drawn; a string
        such as ``"95%"`` is a percentile of the absolute weights (as in
        nilearn's ``view_connectome``). The page's slider changes it.
    edge_cmap : colormap
    symmetric_cmap : bool
        Colour range ``[-max|w|, max|w|]``; else ``[min w, max w]``.
    linewidth : float
    node_color : color, sequence of colors or 'auto' (viridis)
    node_size : float or sequence of float
    colorbar : bool
    colorbar_height : float
        Fraction of the plot height.
    colorbar_fontsize, title_fontsize : int
    title : str, optional
    node_labels : sequence of str, optional
        Hover text of each node; default the DataArray's region names.
    brain_mask : 3D image, optional
        Mask whose surface is drawn; default the template mask.

    Returns
    -------
    ConnectomeView
    """
    graph = as_graph(adjacency_matrix, node_coords)
    if graph.coords is None:
        raise ValueError("node_coords: required (the adjacency matrix carries no x, y, z coords)")
    matrix = graph.matrix
    if node_labels is None:
        node_labels = graph.labels
    if symmetric_cmap:
        peak = float(np.abs(matrix).max()) or 1.0
        vmin, vmax = -peak, peak
    else:
        vmin, vmax = float(matrix.min()), float(matrix.max())
        if vmin == vmax:
            vmin, vmax = vmin - 1, vmax + 1
    threshold = 0.0
    if edge_threshold is not None:
        threshold = check_threshold(edge_threshold, matrix.ravel(), percentile_func=fast_abs_percentile,
                                    name="edge_threshold")
    symmetric = bool(np.allclose(matrix, matrix.T, rtol=1e-3))
    selected = np.tril(matrix, k=-1) if symmetric else matrix - np.diag(np.diag(matrix))
    sources, targets = np.nonzero(selected)
    weights = selected[sources, targets].astype(np.float32)
    if len(weights) > MAX_EDGES:
        strongest = np.argsort(-np.abs(weights), kind="stable")[:MAX_EDGES]
        sources, targets, weights = sources[strongest], targets[strongest], weights[strongest]
    n_edges = int(np.count_nonzero(np.abs(weights) > threshold))
    max_abs = float(np.abs(weights).max()) if len(weights) else 0.0
    view_data = {
        "title": title, "title_fontsize": title_fontsize,
        "mesh": _mesh_data(brain_mask),
        "nodes": _nodes_data(graph.coords, node_color, node_size, node_labels),
        "edges": {
            "source": _encode(sources, "<i4"), "target": _encode(targets, "<i4"), "weight": _encode(weights, "<f4"),
            "threshold": threshold, "max_abs_weight": max_abs, "linewidth": linewidth,
            "colorscale": _colorscale(edge_cmap), "cmin": vmin, "cmax": vmax,
            "colorbar": bool(colorbar), "colorbar_height": colorbar_height, "colorbar_fontsize": colorbar_fontsize,
        },
    }
    return ConnectomeView(_render(view_data, title), n_edges=n_edges, threshold=threshold)


def view_markers(marker_coords, marker_color="auto", marker_size=5.0, marker_labels=None, title=None,
                 title_fontsize=25, brain_mask=None) -> ConnectomeView:
    """Interactive 3D markers (e.g. seeds or region centres) in a self-contained HTML page.

    Parameters
    ----------
    marker_coords : (n, 3) array-like or a (region,) DataArray with x, y, z coords
    marker_color : color, sequence of colors or 'auto'
    marker_size : float or sequence of float
    marker_labels : sequence of str, optional
        Hover text of each marker.
    title : str, optional
    title_fontsize : int
    brain_mask : 3D image, optional

    Returns
    -------
    ConnectomeView
    """
    if marker_labels is None and hasattr(marker_coords, "dims") and marker_coords.ndim == 1:
        marker_labels = [str(v) for v in marker_coords.coords[marker_coords.dims[0]].values]
    coords = as_node_coords(marker_coords, name="marker_coords")
    view_data = {"title": title, "title_fontsize": title_fontsize, "mesh": _mesh_data(brain_mask),
                 "nodes": _nodes_data(coords, marker_color, marker_size, marker_labels), "edges": None}
    return ConnectomeView(_render(view_data, title))

