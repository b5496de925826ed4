"""Text and HTML reprs of the objects a notebook cell can end with: short, informative, valid, self-contained."""

import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import brainxr
from brainxr.ingestion import IngestReport, RunResult
from brainxr.regions import load_labels_atlas, load_maps_atlas

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Checker(HTMLParser):
    """Balanced tags, ids, label targets and every embedded resource of an HTML fragment."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.ids, self.label_targets, self.sources, self.text = [], [], [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "label" and "for" in attrs:
            self.label_targets.append(attrs["for"])
        for name in ("src", "href", "xlink:href"):
            if name in attrs:
                self.sources.append(attrs[name])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def check_html(html: str) -> str:
    """Assert the xarray-style properties of a repr; return its visible text."""
    checker = _Checker()
    checker.feed(html)
    checker.close()
    assert checker.errors == [] and checker.stack == [], (checker.errors, checker.stack)
    assert len(checker.ids) == len(set(checker.ids)), "repeated ids"
    assert set(checker.label_targets) <= set(checker.ids), "a section label without its checkbox"
    assert all(source.startswith("data:") for source in checker.sources), checker.sources  # nothing external
    assert not re.search(r"<script|<link|@import|url\(", html)
    assert "<style>" in html and "class='bxr-fallback'" in html
    return " ".join(checker.text)


def check_text(text: str, max_lines: int = 4, max_chars: int = 700) -> None:
    assert len(text.splitlines()) <= max_lines and len(text) <= max_chars, text
    assert "array(" not in text and "[[" not in text and " at 0x" not in text, text


def embedded_pngs(html: str) -> list:
    from PIL import Image

    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))
            for data in re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)]


def test_html_blocks_are_balanced_and_collapsible():
    from brainxr import _html

    html = _html.obj_repr("<text & repr>", "kind", "name<x>", "summary", [
        _html.section("Empty", "details", n_items=0), _html.section("Open", "<b>x</b>", 1, expanded=True),
        _html.section("Inline", inline="i")])
    text = check_html(html)
    assert "<text & repr>" in text and "name<x>" in text  # escaped, shown as text
    assert html.count("type='checkbox'") == 3 and html.count(" disabled") == 2 and html.count(" checked") == 1


@pytest.fixture(scope="module")
def cohort_and_atlas(small_synthetic):
    synthetic, store = small_synthetic
    cohort = brainxr.open_cohort(store)
    atlas = load_labels_atlas(synthetic.atlas_labels_img, lut=synthetic.atlas_labels_tsv)
    return synthetic, cohort, atlas


def test_cohort_repr_shows_runs_entities_grid_and_incomplete_runs(cohort_and_atlas):
    _, cohort, _ = cohort_and_atlas
    text = check_html(cohort._repr_html_())
    for key in cohort:
        assert key in text
    assert "3 runs" in text and "3 sub" in text and str(cohort.grid.shape) in text
    assert f"{cohort.grid.n_voxels:,} voxels" in text and "Incomplete runs (0)" in text
    (mask,) = embedded_pngs(cohort._repr_html_())
    assert mask.shape[1] >= 200 and (mask[..., 3] > 0).mean() > 0.2  # the mask's three slices
    check_text(repr(cohort), max_lines=6)
    interrupted = brainxr.Cohort(cohort.path, cohort.runs, cohort.grid,
                                 incomplete=["sub-09_task-rest"])
    html = interrupted._repr_html_()
    assert "1 incomplete" in check_html(html) and "sub-09_task-rest" in html
    assert "Incomplete runs (1)" in check_html(html)


def test_grid_repr_does_not_print_its_mask(cohort_and_atlas):
    _, cohort, _ = cohort_and_atlas
    grid = cohort.grid
    check_text(repr(grid), max_lines=1)
    assert str(grid.shape) in repr(grid) and "6 mm" in repr(grid)
    assert "affine" in check_html(grid._repr_html_()).lower()


def test_labels_atlas_repr_has_a_picture_of_every_region(cohort_and_atlas):
    _, _, atlas = cohort_and_atlas
    text = repr(atlas)
    check_text(text, max_lines=1)
    assert f"{atlas.n_regions} regions" in text and atlas.regions["region"].iloc[0] in text
    html = atlas._repr_html_()
    shown = check_html(html)
    assert f"{atlas.n_regions} regions" in shown and "labels atlas" in shown
    assert all(name in shown for name in atlas.regions["region"].iloc[:5])  # the regions table
    (picture,) = embedded_pngs(html)
    colours = {tuple(pixel) for pixel in picture.reshape(-1, picture.shape[-1]) if pixel[-1] == 255}
    assert len(colours) >= atlas.n_regions // 3  # three slices cross many regions, each in its colour
    assert len(html) < 60_000


def test_maps_atlas_repr(small_synthetic):
    synthetic, _ = small_synthetic
    maps = load_maps_atlas(synthetic.atlas_maps_img)
    check_text(repr(maps), max_lines=1)
    assert f"{maps.n_regions} maps" in repr(maps)
    html = maps._repr_html_()
    assert "probabilistic atlas" in check_html(html)
    (picture,) = embedded_pngs(html)
    assert (picture[..., 3] > 0).sum() > 500


def test_spheres_repr():
    from brainxr.regions.spheres import Spheres

    spheres = Spheres(np.array([[0, -52, 18], [1, 50, -5], [0, 0, 0]] * 100), radius=8)
    check_text(repr(spheres), max_lines=1)
    assert "300 seeds" in repr(spheres) and "radius 8 mm" in repr(spheres)
    assert "more rows" in check_html(spheres._repr_html_())  # a long table is cut


def _failing_derivatives(root):
    from conftest import write_tiny_run

    for n, sub in enumerate(["01", "02"]):
        write_tiny_run(root, sub, seed=n)
    bad = write_tiny_run(root, "03", seed=2)
    confounds = next(bad.parent.glob("*confounds_timeseries.tsv"))
    confounds.write_text("\n".join(confounds.read_text().splitlines()[:5]) + "\n")  # too few rows
    return root


def test_ingest_report_repr_counts_and_failures(tmp_path):
    report = brainxr.ingest(_failing_derivatives(tmp_path / "d"), tmp_path / "c.zarr", progress=False,
                            on_error="return")
    text = repr(report)
    check_text(text, max_lines=3)
    assert "3 runs: 2 ingested, 1 failed" in text and "FAILED sub-03_task-rest: InputFileError" in text
    html = report._repr_html_()
    shown = check_html(html)
    assert "2 ingested" in shown and "1 failed" in shown and "Failed (1)" in shown and "Ingested (2)" in shown
    assert "rows of confounds but the image" in shown  # the reason
    assert "sub-01_task-rest" in shown and "MB" in shown
    again = brainxr.ingest(tmp_path / "d", tmp_path / "c.zarr", progress=False, on_error="return")
    assert "2 skipped" in repr(again) and "Skipped (2)" in check_html(again._repr_html_())
    result = report.results[-1]
    check_text(repr(result), max_lines=1)
    assert repr(result).startswith("<brainxr RunResult sub-03_task-rest: failed: InputFileError")
    assert "Error" in check_html(result._repr_html_())
    assert "ingested in" in repr(report.results[0])


def test_ingest_report_repr_stays_short_with_many_failures():
    results = [RunResult(f"sub-{n:03d}", "failed", f"/data/sub-{n:03d}.nii.gz", ValueError("bad\n" + "x" * 500))
               for n in range(50)] + [RunResult("sub-ok", "ingested", "/data/ok.nii.gz", None, 1.5, 2**20)]
    report = IngestReport(Path("store.zarr"), results, 12.0)
    text = repr(report)
    check_text(text, max_lines=8, max_chars=1200)
    assert "51 runs: 1 ingested, 50 failed in 12.0 s" in text and "45 more failures" in text
    assert "Failed (50)" in check_html(report._repr_html_())


def test_synthetic_cohort_repr(small_synthetic):
    synthetic, _ = small_synthetic
    text = repr(synthetic)
    check_text(text, max_lines=2, max_chars=800)
    assert "3 runs (3 subjects x 1 session x 1 run, task rest)" in text and "40 regions" in text
    assert "func" in text and "atlas_labels_img" in text  # what the bunch holds
    html = synthetic._repr_html_()
    shown = check_html(html)
    assert all(run.name in shown for run in synthetic.runs) and "Ground truth" in shown
    (truth,) = embedded_pngs(html)
    assert truth.shape[0] >= 40
    run = synthetic.runs[0]
    check_text(repr(run), max_lines=1)
    assert run.name in repr(run) and str(run.bold.name) in check_html(run._repr_html_())


def test_accessor_repr_lists_what_the_class_offers(monkeypatch):
    import xarray as xr

    from brainxr.accessor import BrainAccessor

    data = xr.DataArray(np.zeros((3, 4)), dims=("time", "voxel"), name="bold", attrs={"t_r": 2.0})
    accessor = data.brain
    offered = [name for name in dir(accessor) if not name.startswith("_")]
    text = repr(accessor)
    check_text(text, max_lines=3, max_chars=2000)
    assert "(time: 3, voxel: 4)" in text and all(name in text for name in offered)
    shown = check_html(accessor._repr_html_())
    assert all(name in shown for name in offered) and "not available" in shown  # no affine here

    def brand_new(self, threshold=0.5):
        """A method added to the class appears in the repr."""

    monkeypatch.setattr(BrainAccessor, "brand_new", brand_new, raising=False)
    monkeypatch.setattr(BrainAccessor, "__dir__", lambda self: sorted(set(object.__dir__(self)) | set(offered)))
    shown = check_html(data.brain._repr_html_())
    assert "brand_new(threshold=)" in shown and "A method added to the class appears in the repr." in shown


def test_views_and_reports_print_a_short_line(tmp_path):
    from brainxr.plotting import view_markers

    view = view_markers([[0, -52, 18], [1, 50, -5]])
    text = repr(view)
    check_text(text, max_lines=1)
    assert text.startswith("<brainxr ConnectomeView") and "MB" in text and "save_as_html" in text


def test_report_objects_print_their_first_lines_only(tmp_path):
    from brainxr.bids_app import RunSummary
    from brainxr.bids_app.participant import Failure
    from brainxr.demo import DemoOutputs
    from brainxr.errors import StoreDamageError
    from brainxr.ingestion import VerifyReport

    checked = [f"sub-{n:05d}_task-rest" for n in range(5000)]
    damaged = {f"sub-{n:05d}_task-rest": [StoreDamageError("s.zarr", f"sub-{n:05d}_task-rest", "bold",
                                                            "chunk 0.3 fails its checksum")] for n in range(12)}
    verify = VerifyReport("s.zarr", checked, damaged, ["sub-99999_task-rest"], 3.5)
    text = repr(verify)
    check_text(text, max_lines=10, max_chars=1500)
    assert text.startswith("<brainxr VerifyReport: verify s.zarr: 5000 complete runs checked, 12 damaged")
    assert "more lines (print() shows them all)" in text and str(verify).count("\n") > 12
    shown = check_html(verify._repr_html_())
    assert "Checked (5000)" in shown and "Damaged (12)" in shown and "Incomplete (1)" in shown
    assert "fails its checksum" in shown and "more ..." in shown and "repair=True" in shown

    summary = RunSummary("participant", tmp_path, checked, [], [Failure("sub-7", "extract", "no brain mask")],
                         [tmp_path / "report.html"], 12.0)
    check_text(repr(summary), max_lines=10, max_chars=1500)
    assert "5000 run(s) processed" in repr(summary) and "FAILED sub-7 (extract): no brain mask" in repr(summary)
    assert "Failures (1)" in check_html(summary._repr_html_())

    demo = DemoOutputs(tmp_path, tmp_path / "d", tmp_path / "s.zarr", tmp_path / "b", ["brainxr run ..."],
                       [tmp_path / "r.html"], 0.93, {"ingest": 1.0})
    check_text(repr(demo), max_lines=10, max_chars=1500)
    assert "ground truth recovered" in check_html(demo._repr_html_())


def test_templateflow_atlas_repr(tmp_path):
    import pandas as pd

    from brainxr.datasets.templateflow import TemplateFlowAtlas

    regions = pd.DataFrame({"index": range(1, 401), "name": [f"7Networks_LH_Vis_{n}" for n in range(1, 401)]})
    atlas = TemplateFlowAtlas("Schaefer2018", "400Parcels7Networks", "MNI152NLin2009cAsym", 2, "dseg",
                              tmp_path / "atlas.nii.gz", tmp_path / "atlas.tsv", regions)
    check_text(repr(atlas), max_lines=1)
    assert "Schaefer2018 400Parcels7Networks (dseg)" in repr(atlas) and "400 regions" in repr(atlas)
    shown = check_html(atlas._repr_html_())
    assert "Regions (400)" in shown and "more rows" in shown
