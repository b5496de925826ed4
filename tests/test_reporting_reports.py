"""HTML reports: the document object, masker reports (vs nilearn's regions table) and the cohort report."""

import re

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from test_plotting_data import brain_mask, browser, random_connectome, t1  # noqa: F401 (fixtures)

from brainxr.reporting import (
    HTMLDocument,
    HTMLReport,
    build_masker_report,
    cohort_report,
    figure_to_png_base64,
    figure_to_svg,
    regions_figure,
    regions_summary_table,
    runs_summary,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _external_references(html: str):
    return re.findall(r'(?:src|href)="(?!data:)[^"#]+"', html)


def _labels_img(t1, n_regions=6):  # noqa: F811
    rng = np.random.default_rng(0)
    labels = np.zeros(t1.shape, np.int16)
    inside = np.asarray(t1.dataobj) > 40
    labels[inside] = rng.integers(1, n_regions + 1, inside.sum())
    return nib.Nifti1Image(labels, t1.affine)


def test_document_saves_the_page_and_wraps_it_in_an_iframe(tmp_path):
    document = HTMLDocument("<!DOCTYPE html><html><body><p>\"a\" & b</p></body></html>", width=300, height=200)
    path = document.save_as_html(tmp_path / "sub" / "page.html")
    assert path.read_text(encoding="utf-8") == document.html == str(document)
    iframe = document.get_iframe()
    assert iframe.startswith('<iframe srcdoc="&lt;!DOCTYPE html&gt;') and 'width="300" height="200"' in iframe
    assert "&amp;" in iframe and "&quot;a&quot;" in iframe
    assert document._repr_mimebundle_()["text/html"] == document._repr_html_() == iframe
    with pytest.raises(ValueError, match="width"):
        document.resize(-1, 10)


def test_open_in_browser_writes_the_file_and_opens_it(tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    document = HTMLDocument("<html><body>x</body></html>")
    path = document.open_in_browser(tmp_path / "page.html")
    assert opened == [path.resolve().as_uri()] and path.read_text() == document.html
    temporary = document.open_in_browser(temp_file_lifetime=0.01)
    assert opened[-1] == temporary.resolve().as_uri()


def test_report_embeds_figures_and_tables_offline():
    figure, axes = plt.subplots()
    axes.plot([0, 1], [1, 0])
    png_figure, _ = plt.subplots()
    report = (
        HTMLReport("Title <1>", "A description & more")
        .add_figure("Figure", figure, caption="cap")
        .add_figure(None, png_figure, image_format="png")
        .add_table("Table", pd.DataFrame({"a": [1.5, np.nan], "b": ["<x>", "y"]}))
        .add_table("Parameters", {"standardize": "zscore_sample", "t_r": 2.0})
        .add_warnings(["careful <here>"])
    )
    html = report.html
    assert report.sections == ["Figure", None, "Table", "Parameters", "Warnings"]
    assert "<svg" in html and "data:image/png;base64," in html
    assert "&lt;x&gt;" in html and "careful &lt;here&gt;" in html and "Title &lt;1&gt;" in html
    assert "n/a" in html and "zscore_sample" in html
    assert _external_references(html) == []
    assert not plt.get_fignums()  # embedding closes the figures
    with pytest.raises(ValueError, match="image_format"):
        report.add_figure(None, plt.figure(), image_format="gif")
    with pytest.raises(TypeError, match="table"):
        report.add_table(None, [1, 2])


def test_figure_helpers_accept_displays(brain_mask):  # noqa: F811
    from brainxr.plotting import plot_connectome

    weights, coords = random_connectome(5)
    assert figure_to_svg(plot_connectome(weights, coords, brain_mask=brain_mask)).startswith("<svg")
    assert figure_to_png_base64(plot_connectome(weights, coords, brain_mask=brain_mask)).startswith("<img src=\"data:image/png")


def test_regions_summary_table_matches_nilearn_labels_masker_report(t1):  # noqa: F811
    from nilearn.maskers import NiftiLabelsMasker

    labels_img = _labels_img(t1)
    names = ["Background"] + [f"region {i}" for i in range(1, 7)]
    masker = NiftiLabelsMasker(labels_img, labels=names).fit()
    masker.generate_report()
    theirs = masker._report_content["summary"].reset_index(drop=True)
    ours = regions_summary_table(labels_img, names)
    assert list(ours.columns) == list(theirs.columns)
    pd.testing.assert_frame_equal(ours, theirs, check_dtype=False)


def test_regions_summary_table_names_and_errors(t1):  # noqa: F811
    labels_img = _labels_img(t1, 3)
    table = regions_summary_table(labels_img, {1: "a", 3: "c", 7: "absent"})  # the look-up table's rows
    assert table["region name"].tolist() == ["a", "c", "absent"]
    assert table["size (in mm^3)"].iloc[-1] == 0
    assert regions_summary_table(labels_img)["region name"].tolist() == ["1", "2", "3"]
    assert regions_summary_table(labels_img)["relative size (in %)"].sum() == pytest.approx(100, abs=0.05)
    with pytest.raises(ValueError, match="label_names"):
        regions_summary_table(labels_img, ["a"])


def test_masker_report_has_nilearn_sections(t1):  # noqa: F811
    labels_img = _labels_img(t1)
    table = regions_summary_table(labels_img)
    report = build_masker_report("NiftiLabelsMasker", "Class for masking of Niimg-like objects.", table,
                                 {"standardize": "zscore_sample", "labels_img": labels_img},
                                 regions_figure(labels_img, t1), warnings=["No image provided to fit."])
    html = report.html
    for text in ("Regions summary", "Parameters", "The masker has 6 different non-overlapping regions",
                 "label value", "relative size (in %)", "No image provided to fit.", "data:image/png;base64,"):
        assert text in html
    assert _external_references(html) == []
    with pytest.raises(ValueError, match="regions_table"):
        build_masker_report("M", regions_table=table.drop(columns="region name"))


def test_regions_figure_of_maps_and_default_background(t1):  # noqa: F811
    from test_plotting_data import blob_map

    maps = nib.Nifti1Image(np.stack([np.asarray(blob_map(t1, [c]).dataobj) for c in [(-30, 0, 10), (30, 0, 10)]], -1), t1.affine)
    display = regions_figure(maps, t1)
    assert sum(len(ax.ax.collections) for ax in display.axes.values()) >= 2
    assert regions_figure(_labels_img(t1, 2)).axes  # over the MNI152 template of brainxr.datasets


def _runs():
    return pd.DataFrame({
        "run": ["sub-01_task-rest", "sub-02_task-rest", "sub-02_task-rest_run-2"],
        "sub": ["01", "02", "02"], "task": "rest", "t_r": [2.0, 2.0, 2.5],
        "n_volumes": [100, 100, 80], "n_volumes_kept": [100, 90, 40], "mean_fd": [0.1, 0.25, 0.7],
    })


def test_runs_summary_counts():
    summary = runs_summary(_runs())
    assert summary == {"runs": 3, "subjects": 2, "TR (s)": "2, 2.5", "volumes kept": "230 / 280 (82.1%)",
                       "mean FD (mm)": "0.350"}


def test_cohort_report_is_one_offline_page(tmp_path, brain_mask):  # noqa: F811
    weights, coords = random_connectome(12)
    names = [f"r{i}" for i in range(12)]
    conn = xr.DataArray(np.tanh(weights / 2), dims=("region", "region_"),
                        coords={"region": names, "region_": names, "x": ("region", coords[:, 0]),
                                "y": ("region", coords[:, 1]), "z": ("region", coords[:, 2])})
    coverage = pd.DataFrame(np.ones((12, 3)), index=names, columns=_runs()["run"])
    coverage.iloc[3, 1] = 0.2
    report = cohort_report(_runs(), coverage, conn, brain_mask=brain_mask)
    html = report.save_as_html(tmp_path / "cohort.html").read_text(encoding="utf-8")
    assert report.sections[:4] == ["Summary", "Runs", "Motion and scrubbing", "Region coverage"]
    assert "Group connectome" in report.sections
    assert "r3" in html and "Regions below 50% coverage" in html and "sub-02_task-rest_run-2" in html
    assert html.count("<svg") >= 4
    assert _external_references(html) == []


def test_cohort_report_checks_its_inputs():
    with pytest.raises(ValueError, match="mean_fd"):
        cohort_report(_runs().drop(columns="mean_fd"))
    with pytest.raises(TypeError, match="runs"):
        cohort_report({"run": []})
    with pytest.raises(ValueError, match="group_connectome"):
        cohort_report(_runs(), group_connectome=xr.DataArray(np.zeros((2, 3, 3))))
    minimal = cohort_report(_runs())
    assert minimal.sections == ["Summary", "Runs", "Motion and scrubbing"]


@pytest.mark.browser
def test_cohort_report_opens_offline_in_chromium(browser, tmp_path, brain_mask):  # noqa: F811
    from selenium.webdriver.support.ui import WebDriverWait

    weights, coords = random_connectome(8)
    names = [f"r{i}" for i in range(8)]
    conn = xr.DataArray(np.tanh(weights / 2), dims=("region", "region_"),
                        coords={"region": names, "region_": names, "x": ("region", coords[:, 0]),
                                "y": ("region", coords[:, 1]), "z": ("region", coords[:, 2])})
    report = cohort_report(_runs(), group_connectome=conn, brain_mask=brain_mask)
    report.add_figure("PNG", plt.figure(figsize=(2, 2)), image_format="png")
    browser.get(report.save_as_html(tmp_path / "cohort.html").resolve().as_uri())
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    assert browser.execute_script("return document.querySelectorAll('svg').length") >= 3
    assert browser.execute_script(
        "return Array.from(document.images).every(function (i) { return i.complete && i.naturalWidth > 0; })")
    assert browser.execute_script("return document.querySelectorAll('table.brainxr-table tr').length") == 4


@pytest.mark.parametrize("names", ["lut", "labels"])
@pytest.mark.parametrize("fit_on_data", [False, True])
@pytest.mark.parametrize("transformed", [False, True])
def test_labels_masker_report_lists_every_region_as_nilearn(names, fit_on_data, transformed):
    """Regions absent from the labels on the data grid are listed with size 0, as nilearn lists them."""
    import warnings

    from nilearn.maskers import NiftiLabelsMasker as NilearnLabelsMasker

    from brainxr.maskers import NiftiLabelsMasker

    data = np.zeros((12, 12, 12), np.int16)
    data[1:4, 1:5, 1:6], data[5:9, 2:9, 3:8], data[9, 9, 9] = 1, 2, 4  # label 4: one voxel, lost at 4 mm
    labels_img = nib.Nifti1Image(data, np.diag([2.0, 2, 2, 1]))
    func = nib.Nifti1Image(np.random.default_rng(0).random((6, 6, 6, 10)).astype("f4"), np.diag([4.0, 4, 4, 1]))
    kwargs = ({"lut": pd.DataFrame({"index": [0, 1, 2, 3, 4], "name": ["Background", "a", "b", "c", "d"]})}
              if names == "lut" else {"labels": ["Background", "a", "b", "d"]})
    tables = []
    for masker_class in (NilearnLabelsMasker, NiftiLabelsMasker):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            masker = masker_class(labels_img, **kwargs).fit(func if fit_on_data else None)
            if transformed:
                masker.transform(func)
            masker.generate_report()
        tables.append(masker._report_content["summary"].reset_index(drop=True) if masker_class is NilearnLabelsMasker
                      else masker._report_parts()["regions_table"])
    pd.testing.assert_frame_equal(tables[1], tables[0], check_dtype=False)
    if not transformed:  # after transform, nilearn lists the regions of the transformed data
        assert (tables[1]["label value"] == 4).any()
