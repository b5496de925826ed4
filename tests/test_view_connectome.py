"""view_connectome / view_markers: the self-contained page, and its behaviour in headless Chromium."""

import base64
import io
import json
import re

import numpy as np
import pytest
import xarray as xr
from test_plotting_data import brain_mask, browser, random_connectome  # noqa: F401 (fixtures)

from brainxr.plotting import view_connectome, view_markers
from brainxr.plotting._mesh import brain_surface_mesh
from brainxr.plotting._template import resolve_brain_mask
from brainxr.plotting.find_cuts import fast_abs_percentile


def _page_data(view) -> dict:
    text = re.search(r'<script id="brainxr-data" type="application/json">(.*?)</script>', view.html, re.S).group(1)
    return json.loads(text.replace("<\\/", "</"))


def _decode(text, dtype):
    return np.frombuffer(base64.b64decode(text), dtype=dtype)


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
    assert "plotly.js v" in html  # the library is embedded
    from brainxr.plotting.view import _plotly_js

    page_without_library = html.replace(_plotly_js(), "")
    assert len(page_without_library) < len(html) - 1_000_000
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=|https?://", page_without_library)
    assert "<b>x</b>" not in html.split("<body>")[0]  # the title is escaped
    path = view.save_as_html(tmp_path / "view.html")
    assert path.read_text(encoding="utf-8") == html
    iframe = view._repr_html_()
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


# ---------------------------------------------------------------- headless Chromium


def _load(browser, path):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(path.resolve().as_uri())
    WebDriverWait(browser, 60).until(lambda d: d.execute_script("return document.body.dataset.rendered") == "true")
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def _drawn_segments(browser) -> int:
    return browser.execute_script(
        "var gd = document.getElementById('brainxr-plot');"
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
    canvas = browser.find_element("id", "brainxr-plot")
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
            "var s = document.getElementById('brainxr-threshold'); s.value = arguments[0];"
            "s.dispatchEvent(new Event('input'));", value)
        slider_value = float(browser.execute_script("return document.getElementById('brainxr-threshold').value"))
        counts[value] = int(browser.execute_script("return document.body.dataset.nEdges"))
        assert counts[value] == np.count_nonzero(lower > slider_value) == _drawn_segments(browser)
    assert counts[0.0] > counts[0.5] > counts[1.0] > counts[float(lower.max())] == 0


@pytest.mark.browser
def test_markers_page_loads(browser, brain_mask, tmp_path):  # noqa: F811
    view = view_markers([[0, -52, 18], [-46, -68, 32]], marker_labels=["PCC", "LTPJ"], brain_mask=brain_mask)
    assert _load(browser, view.save_as_html(tmp_path / "markers.html")) == []
    assert browser.execute_script("return document.body.dataset.nEdges") == "0"
