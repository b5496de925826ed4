"""view_connectome / view_markers: the self-contained page, and its behaviour in headless Chromium."""

import base64
import gzip
import io
import json
import re
import zlib

import numpy as np
import pytest
import xarray as xr
from test_plotting_data import brain_mask, browser, random_connectome  # noqa: F401 (fixtures)

from brainxr.plotting import view_connectome, view_markers
from brainxr.plotting._mesh import brain_surface_mesh
from brainxr.plotting._template import resolve_brain_mask
from brainxr.plotting.find_cuts import fast_abs_percentile


def _page_data(view) -> dict:
    text = re.search(r'<script type="application/json" class="brainxr-data">(.*?)</script>', view.html, re.S).group(1)
    return json.loads(text.replace("<\\/", "</"))


def _decode(text, dtype):
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=dtype)


def test_initial_edges_follow_the_threshold(brain_mask):  # noqa: F811
    weights, coords = random_connectome(30, seed=4)
    view = view_connectome(weights, coords, edge_threshold="95%", brain_mask=brain_mask)
    expected_threshold = fast_abs_percentile(weights.ravel(), 95) + 1e-5
    assert view.threshold == pytest.approx(expected_threshold)
    lower = weights[np.tril_indices(30, k=-1)].astype(np.float32)
    assert view.n_edges == np.count_nonzero(np.abs(lower) > view.threshold) > 0
    edges = _page_data(view)["edges"]
    assert edges["cmax"] == pytest.approx(np.abs(weights).max()) and edges["cmin"] == -edges["cmax"]
    assert len(_decode(edges["weight"], "<f4")) == len(lower)  # all edges shipped, the slider filters


def test_page_is_self_contained(brain_mask, tmp_path):  # noqa: F811
    weights, coords = random_connectome(8)
    view = view_connectome(weights, coords, title="</script><b>x</b>", brain_mask=brain_mask)
    html = view.html
    from brainxr.plotting.view import _compressed_plotly_js, _plotly_js

    assert gzip.decompress(base64.b64decode(_compressed_plotly_js())) == _plotly_js().encode()
    assert "plotly.js v" in _plotly_js()
    page_without_library = html.replace(_compressed_plotly_js(), "")  # the library is embedded, compressed
    assert len(page_without_library) < len(html) - 1_000_000
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=|https?://", page_without_library)
    assert "<b>x</b>" not in html.split("<body>")[0]  # the title is escaped
    path = view.save_as_html(tmp_path / "view.html")
    assert path.read_text(encoding="utf-8") == html
    iframe = view.get_iframe()
    assert iframe.startswith("<iframe srcdoc=") and "&lt;!DOCTYPE html&gt;" in iframe


def test_dataarray_supplies_coordinates_and_hover_names(brain_mask):  # noqa: F811
    weights, coords = random_connectome(5)
    names = [f"n{i}" for i in range(5)]
    conn = xr.DataArray(weights, dims=("region", "region_"),
                        coords={"region": names, "region_": names, "x": ("region", coords[:, 0]),
                                "y": ("region", coords[:, 1]), "z": ("region", coords[:, 2])})
    nodes = _page_data(view_connectome(conn, brain_mask=brain_mask))["nodes"]
    assert nodes["labels"] == names
    np.testing.assert_allclose(_decode(nodes["coords"], "<f4").reshape(-1, 3), coords, rtol=1e-6)


def test_markers_view_has_no_edges(brain_mask):  # noqa: F811
    view = view_markers([[0, -52, 18], [1, 50, -5]], marker_color=["red", "blue"], marker_labels=["PCC", "MPFC"],
                        brain_mask=brain_mask)
    data = _page_data(view)
    assert data["edges"] is None and data["nodes"]["color"] == ["#ff0000", "#0000ff"]
    with pytest.raises(ValueError, match="marker_coords"):
        view_markers([[0, 0]], brain_mask=brain_mask)
    with pytest.raises(ValueError, match="node_color"):
        view_markers([[0, 0, 0]], marker_color=["red", "blue"], brain_mask=brain_mask)


def test_surface_mesh_is_closed_small_and_in_the_brain(brain_mask):  # noqa: F811
    mask = resolve_brain_mask(brain_mask)
    mesh = brain_surface_mesh(mask)
    assert 1000 < len(mesh.faces) < 40000
    edges = np.sort(np.concatenate([mesh.faces[:, [0, 1]], mesh.faces[:, [1, 2]], mesh.faces[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert np.all(counts == 2)  # every edge shared by two triangles: a closed surface
    inside = np.argwhere(mask.data > 0)
    world = mask.affine[:3, :3] @ inside.T + mask.affine[:3, 3:4]
    np.testing.assert_allclose(mesh.vertices.min(axis=0), world.min(axis=1), atol=6)
    np.testing.assert_allclose(mesh.vertices.max(axis=0), world.max(axis=1), atol=6)


def test_bad_inputs(brain_mask):  # noqa: F811
    with pytest.raises(ValueError, match="node_coords"):
        view_connectome(np.eye(3), brain_mask=brain_mask)
    with pytest.raises(ValueError, match="edge_threshold"):
        view_connectome(np.eye(3), np.zeros((3, 3)), edge_threshold="high", brain_mask=brain_mask)
    with pytest.raises(ValueError, match="node_labels"):
        view_connectome(np.eye(3), np.zeros((3, 3)), node_labels=["a"], brain_mask=brain_mask)


def test_notebook_outputs_carry_plotly_once_and_stay_small(brain_mask):  # noqa: F811
    from brainxr.plotting.view import _compressed_plotly_js

    views = [view_connectome(*random_connectome(n, seed=n), edge_threshold="90%", brain_mask=brain_mask)
             for n in (264, 100, 30)]
    library = _compressed_plotly_js()
    first, *others = [view.notebook_html(with_plotly=index == 0) for index, view in enumerate(views)]
    assert library in first and not any(library in other for other in others)
    assert not any("<iframe" in output for output in [first, *others])
    # today's iframe outputs were about 6 MB each (18 MB for three); nilearn's pages are 2.6-2.8 MB
    assert len(first) < 2.6e6 and all(len(other) < 0.4e6 for other in others)
    assert len(views[0].html) < 2.6e6
    assert views[0].notebook_html(with_plotly=False) != views[0].notebook_html(with_plotly=False)  # own ids


def test_a_kernel_sends_plotly_with_the_first_view_and_a_rerun_of_its_cell(brain_mask, monkeypatch):  # noqa: F811
    from brainxr.plotting import reset_notebook_views, view as view_module

    execution = {"now": ("cell-a", "msg-1")}
    monkeypatch.setattr(view_module, "in_notebook", lambda: True)
    monkeypatch.setattr(view_module, "_current_execution", lambda: execution["now"])
    reset_notebook_views()
    view = view_markers([[0, -52, 18]], brain_mask=brain_mask)
    library = view_module._compressed_plotly_js()

    def carries(cell, message):
        execution["now"] = (cell, message)
        return library in view._repr_html_()

    assert carries("cell-a", "msg-1")  # the first view of the session
    assert not carries("cell-a", "msg-1")  # a second view in the same run of that cell
    assert not carries("cell-b", "msg-2")  # another cell
    assert carries("cell-a", "msg-3")  # the carrier cell again: its old output goes away
    assert not carries("cell-c", "msg-4")
    assert not carries(None, "msg-5")  # a frontend that does not say which cell runs
    reset_notebook_views()
    assert carries("cell-d", "msg-6")
    monkeypatch.setattr(view_module, "in_notebook", lambda: False)
    assert carries("cell-e", "msg-7")  # outside a kernel every output stands alone


# ---------------------------------------------------------------- headless Chromium


def _load(browser, path):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(path.resolve().as_uri())
    WebDriverWait(browser, 60).until(lambda d: d.execute_script("return document.body.dataset.rendered") == "true")
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def _drawn_segments(browser) -> int:
    return browser.execute_script(
        "var gd = document.querySelector('.brainxr-plot');"
        "var edges = gd.data.filter(function (t) { return t.name === 'edges'; })[0];"
        "return edges ? edges.x.length / 3 : 0;"
    )


@pytest.mark.browser
def test_page_loads_without_errors_and_draws(browser, brain_mask, tmp_path):  # noqa: F811
    from PIL import Image

    weights, coords = random_connectome(25, seed=5)
    view = view_connectome(weights, coords, edge_threshold="90%", title="test", brain_mask=brain_mask)
    errors = _load(browser, view.save_as_html(tmp_path / "view.html"))
    assert errors == []
    assert int(browser.execute_script("return document.body.dataset.nEdges")) == view.n_edges == _drawn_segments(browser)
    canvas = browser.find_element("css selector", ".brainxr-plot")
    shot = np.asarray(Image.open(io.BytesIO(canvas.screenshot_as_png)).convert("RGB")).astype(int)
    colourful = np.abs(shot - shot.mean(axis=2, keepdims=True)).sum(axis=2) > 60  # edge colours, not grey/white
    grey = (np.abs(shot - shot.mean(axis=2, keepdims=True)).sum(axis=2) < 10) & (shot.mean(axis=2) < 240)
    assert colourful.sum() > 500  # edges drawn
    assert grey.sum() > 2000  # the brain surface drawn


@pytest.mark.browser
def test_threshold_slider_changes_the_drawn_edges(browser, brain_mask, tmp_path):  # noqa: F811
    weights, coords = random_connectome(25, seed=6)
    view = view_connectome(weights, coords, edge_threshold="80%", brain_mask=brain_mask)
    assert _load(browser, view.save_as_html(tmp_path / "view.html")) == []
    lower = np.abs(weights[np.tril_indices(25, k=-1)].astype(np.float32))
    counts = {}
    for value in (0.0, 0.5, 1.0, float(lower.max())):
        browser.execute_script(
            "var s = document.querySelector('.brainxr-threshold'); s.value = arguments[0];"
            "s.dispatchEvent(new Event('input'));", value)
        slider_value = float(browser.execute_script("return document.querySelector('.brainxr-threshold').value"))
        counts[value] = int(browser.execute_script("return document.body.dataset.nEdges"))
        assert counts[value] == np.count_nonzero(lower > slider_value) == _drawn_segments(browser)
    assert counts[0.0] > counts[0.5] > counts[1.0] > counts[float(lower.max())] == 0


@pytest.mark.browser
def test_markers_page_loads(browser, brain_mask, tmp_path):  # noqa: F811
    view = view_markers([[0, -52, 18], [-46, -68, 32]], marker_labels=["PCC", "LTPJ"], brain_mask=brain_mask)
    assert _load(browser, view.save_as_html(tmp_path / "markers.html")) == []
    assert browser.execute_script("return document.body.dataset.nEdges") == "0"


def _notebook_like_page(outputs, path, inserted_by_script=False):
    """A page holding notebook outputs: in order as a static export (nbconvert), or inserted one by
    one by a script that re-creates their script elements, as JupyterLab renders outputs."""
    cells = "".join(f"<div class='cell'><p>In [{n}]</p><div class='output'>{'' if inserted_by_script else html}</div>"
                    "</div>" for n, html in enumerate(outputs))
    script = ""
    if inserted_by_script:
        script = ("<script>var outputs = " + json.dumps(outputs).replace("</", "<\\/") + ";"
                  "var order = JSON.parse(document.body.dataset.order);"
                  "function insert(n) {"
                  "  var target = document.querySelectorAll('.output')[n]; target.innerHTML = outputs[n];"
                  "  target.querySelectorAll('script').forEach(function (old) {"
                  "    var s = document.createElement('script');"
                  "    if (old.type) { s.type = old.type; } s.className = old.className; s.text = old.text;"
                  "    old.parentNode.replaceChild(s, old); });"
                  "}"
                  "order.forEach(function (n, k) { setTimeout(function () { insert(n); }, 300 * k); });"
                  "</script>")
    order = json.dumps(list(range(len(outputs)))[::-1])
    path.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body data-order='{order}'>"
                    f"{cells}{script}</body></html>", encoding="utf-8")
    return path


def _views_rendered(browser, n_views):
    from selenium.webdriver.support.ui import WebDriverWait

    script = ("var roots = document.querySelectorAll('.brainxr-view');"
              "return roots.length === arguments[0] && Array.from(roots).every(function (r) {"
              "  return r.dataset.rendered === 'true'; });")
    WebDriverWait(browser, 90).until(lambda d: d.execute_script(script, n_views))
    return browser.execute_script("return Array.from(document.querySelectorAll('.output .brainxr-view'))"
                                  ".map(function (r) { return Number(r.dataset.nEdges); });")


@pytest.mark.browser
@pytest.mark.parametrize("inserted_by_script", [False, True], ids=["static-export", "jupyterlab-like"])
def test_three_views_in_a_notebook_page_share_one_plotly(browser, brain_mask, tmp_path, inserted_by_script):  # noqa: F811
    views = [view_connectome(*random_connectome(n, seed=n), edge_threshold="90%", brain_mask=brain_mask)
             for n in (40, 25, 12)]
    outputs = [view.notebook_html(with_plotly=index == 0) for index, view in enumerate(views)]
    # inserted by script, the outputs arrive last first: the later views wait for the first one's plotly.js
    page = _notebook_like_page(outputs, tmp_path / "notebook.html", inserted_by_script)
    browser.get(page.resolve().as_uri())
    edges = _views_rendered(browser, 3)
    assert edges == [view.n_edges for view in views]
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(function (r) {"
                                       " return r.name; });")
    assert [name for name in resources if not name.startswith(("data:", "blob:"))] == []  # offline
    assert browser.execute_script("return document.querySelectorAll('.brainxr-plot .main-svg').length") >= 3
