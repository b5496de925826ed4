"""Interactive 3D connectomes and markers in the browser (``view_connectome``, ``view_markers``).

A view shows a translucent brain surface (marching cubes on a brain mask),
the nodes and the edges coloured by weight; it rotates with the mouse and a
slider sets the edge threshold. It is drawn by plotly.js (MIT, from the
installed ``plotly`` package) and a small runtime
(``data/connectome_view.js``).

Sizes: plotly.js travels gzip-compressed (about 2 MB in base64 instead of
4.8 MB; the browser inflates it with ``DecompressionStream``) and the arrays
zlib-compressed. A saved page (:meth:`ConnectomeView.save_as_html`) holds
everything and opens offline. In a notebook, only the first view of the
session carries plotly.js; the next ones (tens of kilobytes) use it from the
page, so a notebook with several views stays small. The view's root element
exposes the number of drawn edges as ``data-n-edges`` (and ``data-rendered``
once drawn).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import sys
import uuid
import zlib
from functools import lru_cache
from html import escape
from importlib import resources
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import to_hex

from brainxr._html import in_notebook
from brainxr.plotting._inputs import as_graph, as_node_coords
from brainxr.plotting._mesh import cached_brain_surface_mesh
from brainxr.plotting._template import resolve_brain_mask
from brainxr.plotting._graph import check_threshold
from brainxr.plotting.find_cuts import fast_abs_percentile
from brainxr.reporting._document import HTMLDocument

#: at most this many edges (the strongest) are embedded in the page
MAX_EDGES = 20000


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    import plotly

    return (resources.files(plotly) / "package_data" / "plotly.min.js").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _compressed_plotly_js() -> str:
    """plotly.js, gzip-compressed and base64-encoded, kept in the user cache folder between sessions.

    Compressing at the best level takes about a second; the cached copy is
    checked against the installed plotly.js before use.
    """
    import platformdirs

    source = _plotly_js().encode("utf-8")
    name = f"plotly-{hashlib.sha256(source).hexdigest()[:16]}.js.gz.b64"
    cache = platformdirs.user_cache_path("brainxr") / name
    try:
        encoded = cache.read_text(encoding="ascii")
        if gzip.decompress(base64.b64decode(encoded)) == source:
            return encoded
    except (OSError, ValueError, EOFError, gzip.BadGzipFile):
        pass
    encoded = base64.b64encode(gzip.compress(source, compresslevel=9, mtime=0)).decode("ascii")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        partial.write_text(encoded, encoding="ascii")
        os.replace(partial, cache)
    except OSError:
        pass  # a read-only cache folder: compressed again in the next session
    return encoded


def _resource(name: str) -> str:
    return (resources.files("brainxr.plotting") / "data" / name).read_text(encoding="utf-8")


def _encode(array, dtype) -> str:
    """An array's bytes, zlib-compressed and base64-encoded (the runtime inflates them)."""
    raw = np.ascontiguousarray(array, dtype=dtype).tobytes()
    return base64.b64encode(zlib.compress(raw, 6)).decode("ascii")


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


# In a notebook, the first view shown carries plotly.js. A new run of that same cell
# replaces its output, so the view shown by that new run carries it again.
_NOTEBOOK = {"sent": False, "cell": None, "execution": None}


def reset_notebook_views() -> None:
    """Make the next view shown in this notebook carry plotly.js again.

    Needed only when the output of the view that brought plotly.js to the
    notebook was cleared (its later views then say so).
    """
    _NOTEBOOK.update(sent=False, cell=None, execution=None)


def _current_execution() -> tuple:
    """``(cell id, message id)`` of the cell being run by the kernel (None when unknown)."""
    try:
        parent = sys.modules["IPython"].get_ipython().kernel.get_parent()
        return parent.get("metadata", {}).get("cellId"), parent.get("header", {}).get("msg_id")
    except Exception:  # noqa: BLE001 - another kernel or frontend: no cell identity
        return None, None


def _claim_plotly() -> bool:
    """Whether the view about to be shown in the notebook carries plotly.js."""
    cell, execution = _current_execution()
    rerun_of_carrier = cell is not None and cell == _NOTEBOOK["cell"] and execution != _NOTEBOOK["execution"]
    if _NOTEBOOK["sent"] and not rerun_of_carrier:
        return False
    _NOTEBOOK.update(sent=True, cell=cell, execution=execution)
    return True


class ConnectomeView(HTMLDocument):
    """An interactive 3D view: ``save_as_html``, ``open_in_browser``, inline in Jupyter.

    Attributes
    ----------
    n_edges : int
        Number of edges drawn at the initial threshold.
    threshold : float
        The initial absolute edge threshold.
    """

    def __init__(self, view_data: dict, title=None, n_edges: int = 0, threshold: float = 0.0, width: int = 600,
                 height: int = 400):
        self._data = json.dumps(view_data, separators=(",", ":")).replace("</", "<\\/")
        page = _resource("connectome_view.html").replace("__BRAINXR_TITLE__", escape(title or "brainxr view"))
        super().__init__(page.replace("__BRAINXR_VIEW__", self._fragment("width: 100%; height: 100%", True, True)),
                         width=width, height=height)
        self.n_edges = n_edges
        self.threshold = threshold

    def _fragment(self, size: str, with_plotly: bool, standalone: bool = False) -> str:
        view_id = f"brainxr-view-{uuid.uuid4().hex}"
        fragment = (_resource("connectome_view_fragment.html").replace("__BRAINXR_ID__", view_id)
                    .replace("__BRAINXR_SIZE__", size)
                    .replace("__BRAINXR_STANDALONE__", " data-standalone" if standalone else "")
                    .replace("__BRAINXR_DATA__", self._data))
        scripts = [f"<script>{_resource('connectome_view.js')}</script>"]
        if with_plotly:
            scripts.append(f'<script>window.brainxrViews.providePlotly("{_compressed_plotly_js()}");</script>')
        scripts.append(f'<script>window.brainxrViews.render(document.getElementById("{view_id}"));</script>')
        return fragment + "\n".join(scripts)

    def notebook_html(self, with_plotly: bool | None = None) -> str:
        """The view as a notebook output (no iframe).

        Parameters
        ----------
        with_plotly : bool, optional
            Carry plotly.js. Default: in a Jupyter kernel, only the first view
            shown in the session (and a new run of its cell); elsewhere
            always, so that each output stands alone.
        """
        if with_plotly is None:
            with_plotly = _claim_plotly() if in_notebook() else True
        return self._fragment(f"width: 100%; max-width: {self.width}px; height: {self.height}px", with_plotly)

    def _repr_html_(self) -> str:
        return self.notebook_html()

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {"text/html": self.notebook_html()}

    def __repr__(self) -> str:
        edges = f"{self.n_edges} edges at |w| > {self.threshold:.3g}, " if self.n_edges else ""
        return (f"<brainxr ConnectomeView: {edges}a {len(self.html.encode('utf-8')) / 2**20:.1f} MB self-contained "
                "page; .save_as_html(path), .open_in_browser()>")


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
    return ConnectomeView(view_data, title, n_edges=n_edges, threshold=threshold)


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
    return ConnectomeView(view_data, title)

