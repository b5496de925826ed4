"""The README tour as a notebook (examples/tour.ipynb), run cell by cell by a Jupyter kernel (nbclient).

It runs as a new user would run it, on a smaller cohort (the parameters are
injected after the cell tagged ``parameters``, as papermill does); every
brainxr object a cell ends with must show its HTML view, long work its
progress bar, and the interactive views load plotly.js once.
"""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell
from test_plotting_data import browser  # noqa: F401 (fixture)

TOUR = Path(__file__).resolve().parents[1] / "examples" / "tour.ipynb"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def executed_tour(tmp_path_factory):
    notebook = nbformat.read(TOUR, as_version=4)
    workdir = tmp_path_factory.mktemp("tour")
    parameters = next(n for n, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", []))
    notebook.cells.insert(parameters + 1, new_code_cell(
        f"n_subjects, n_volumes, resolution, n_regions = 3, 60, 6, 100\nworkdir = {str(workdir / 'tour')!r}",
        metadata={"tags": ["injected-parameters"]}))
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(workdir)}}).execute()  # raises on a cell's error
    path = workdir / "tour.ipynb"
    nbformat.write(notebook, path)
    return notebook, path


def _cell(notebook, source_end: str):
    """The code cell whose source ends with ``source_end``."""
    matches = [cell for cell in notebook.cells if cell.cell_type == "code" and cell.source.strip().endswith(source_end)]
    assert len(matches) == 1, source_end
    return matches[0]


def _html(cell) -> str:
    return "".join(output.get("data", {}).get("text/html", "") for output in cell.outputs)


@pytest.mark.parametrize(("source_end", "shown"), [
    ("synthetic", ["brainxr.datasets.SyntheticCohort", "3 runs", "data:image/png;base64"]),
    ("report", ["brainxr IngestReport", "3 ingested"]),
    ("cohort", ["brainxr.Cohort", "<b>3</b> runs", "sub-02_task-rest", "data:image/png;base64"]),
    ('cohort.sel(sub="01", task="rest")   # runs selected by BIDS entities', ["brainxr.Cohort", "<b>1</b> run "]),
    ("atlas", ["brainxr.regions.LabelsAtlas", "100</b> regions", "data:image/png;base64"]),
    ("signals.brain   # what brainxr offers on this DataArray", ["brainxr .brain accessor", "plot_matrix"]),
    ("run", ["xarray.Dataset", "bold", "confounds"]),
    ("signals", ["xarray.DataArray", "region"]),
    ("group", ["xarray.DataArray", "region_"]),
])
def test_cells_show_html_views(executed_tour, source_end, shown):
    notebook, _ = executed_tour
    cell = _cell(notebook, source_end)
    html = _html(cell)
    assert all(text in html for text in shown), (source_end, html[:500])
    text = "".join(output.get("data", {}).get("text/plain", "") for output in cell.outputs)
    # a short text repr beside the HTML (a group result's provenance attributes take ~4 of its lines)
    assert 0 < len(text) < 2500 and " at 0x" not in text


def test_long_work_shows_progress_and_figures_are_drawn(executed_tour):
    notebook, _ = executed_tour
    ingest = _cell(notebook, "report")
    streams = "".join(output.get("text", "") for output in ingest.outputs if output.output_type == "stream")
    assert "ingest: 100%" in streams and "3/3" in streams
    for source_end in ('title="group correlations");', 'title="group connectome");'):
        assert any("image/png" in output.get("data", {}) for output in _cell(notebook, source_end).outputs)
    report = _html(_cell(notebook, "cohort.report(signals=signals, group_connectome=group)"))
    assert report.startswith("<iframe srcdoc=")


def test_views_load_plotly_once_and_the_notebook_stays_small(executed_tour):
    from brainxr.plotting.view import _compressed_plotly_js

    notebook, path = executed_tour
    views = [_html(cell) for cell in notebook.cells if cell.cell_type == "code" and "brainxr-view" in _html(cell)]
    assert len(views) == 2
    library = _compressed_plotly_js()
    assert library in views[0] and library not in views[1]
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert sum(_html(cell).count('window.brainxrViews.providePlotly("') for cell in code_cells) == 1
    # before: each view embedded 6 MB of page in an iframe (the tour notebook was 7.6 MB with two views)
    size = path.stat().st_size
    assert size < 3.8e6, size


@pytest.mark.browser
def test_executed_tour_renders_offline_in_a_notebook_like_page(executed_tour, browser, tmp_path):  # noqa: F811
    from test_view_connectome import _notebook_like_page, _views_rendered

    notebook, _ = executed_tour
    outputs = [html for html in (_html(cell) for cell in notebook.cells if cell.cell_type == "code") if html]
    page = _notebook_like_page(outputs, tmp_path / "tour.html")
    browser.get(page.resolve().as_uri())
    edges = _views_rendered(browser, 2)
    assert len(edges) == 2 and all(n > 0 for n in edges)
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(function (r) {"
                                       " return r.name; });")
    assert [name for name in resources if not name.startswith(("data:", "blob:"))] == []
