"""``brainxr run``: the BIDS App end to end on a synthetic fMRIPrep tree, against nilearn.

Numbers: the timeseries equal nilearn's NiftiLabelsMasker / NiftiMapsMasker
with load_confounds_strategy's confounds and sample mask, within 1e-5 when
nilearn is fed the images as float64 (brainxr sums region signals in
float64) and within 1e-4 on the float32 images themselves (nilearn's float32
path rounds); the relmats equal ConnectivityMeasure's on those signals.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainxr.bids_app.outputs import read_relmat
from brainxr.cli import main
from test_plotting_data import browser  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration

SPACE_ENTITIES = "space-MNI152NLin2009cAsym_res-6"
STRATEGIES = ("simple", "scrubbing.5")
KINDS = ("correlation", "partial correlation", "covariance", "tangent")
# BIDS: key-value entities in the order of the entity table, then a suffix and an extension
ENTITY_ORDER = ["sub", "ses", "task", "acq", "ce", "rec", "dir", "run", "echo", "part", "space", "cohort", "res", "den",
                "seg", "stat", "meas", "desc"]
NAME = re.compile(r"^(?:[a-z]+-[A-Za-z0-9]+_)+[a-z]+\.(?:tsv|json)$")


def check_bids_name(name: str) -> dict:
    assert NAME.match(name), name
    parts = name.split(".")[0].split("_")
    keys = [part.split("-")[0] for part in parts[:-1]]
    assert keys == sorted(keys, key=ENTITY_ORDER.index), f"{name}: entities out of BIDS order"
    assert len(set(keys)) == len(keys), name
    return dict(part.split("-", 1) for part in parts[:-1])


def run_cli(*argv) -> int:
    return main(["run", *map(str, argv)])


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from brainxr.datasets import make_synthetic_cohort

    root = tmp_path_factory.mktemp("bids-app")
    cohort = make_synthetic_cohort(root / "fmriprep", n_subjects=4, n_volumes=60, resolution=6, n_regions=40, n_maps=12,
                                   seed=11)
    return cohort, root


@pytest.fixture(scope="module")
def outputs(synthetic):
    """participant + group on 4 runs, labels and maps atlases, two strategies, four kinds."""
    cohort, root = synthetic
    out = root / "out"
    common = ["--atlas", cohort.atlas_labels_img, cohort.atlas_maps_img, "--denoise-strategy", *STRATEGIES,
              "--kind", *KINDS, "--work-dir", root / "work", "--quiet"]
    assert run_cli(cohort.root, out, "participant", *common) == 0
    assert run_cli(cohort.root, out, "group", *common) == 0
    return cohort, out


def _relmat_path(out, run, atlas, strategy, meas):
    sub = run.split("_")[0]
    return out / sub / "func" / f"{run}_{SPACE_ENTITIES}_seg-{atlas}_meas-{meas}_desc-{strategy}_relmat.tsv"


def _timeseries(out, run, atlas, strategy):
    sub = run.split("_")[0]
    path = out / sub / "func" / f"{run}_{SPACE_ENTITIES}_seg-{atlas}_desc-{strategy}_timeseries.tsv"
    return pd.read_csv(path, sep="\t"), json.loads(path.with_suffix(".json").read_text())


def test_outputs_are_bids_derivatives(outputs):
    cohort, out = outputs
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0]["Name"] == "brainxr" and "CodeURL" in description["GeneratedBy"][0]
    assert description["SourceDatasets"][0]["URL"] == cohort.root.resolve().as_uri()
    names = [path.name for path in out.glob("sub-*/func/*")]
    # 4 runs x 2 atlases x 2 strategies x (timeseries + 4 relmats) x (tsv + json) + coverage per run and atlas
    assert len(names) == 4 * 2 * 2 * 5 * 2 + 4 * 2
    for name in names:
        entities = check_bids_name(name)
        assert entities["space"] == "MNI152NLin2009cAsym" and entities["seg"] in ("Synth", "SynthProb")
    for name in (path.name for path in (out / "group").glob("*relmat*")):
        check_bids_name(name)
    measures = {check_bids_name(n).get("meas") for n in names}
    assert measures == {None, "ShrunkCorrelation", "ShrunkPartialCorrelation", "ShrunkCovariance", "Tangent"}
    assert {check_bids_name(n).get("desc") for n in names} == {"simple", "scrubbing5", None}
    for run in cohort.runs:
        for name in (f"{run.name}_{SPACE_ENTITIES}_seg-Synth_stat-coverage_bold.tsv",):
            assert (out / f"sub-{run.subject}" / "func" / name).exists()
    assert sorted(p.name for p in out.glob("*.html")) == ["group.html", "sub-01.html", "sub-02.html", "sub-03.html",
                                                           "sub-04.html"]
    assert list((out / "logs").glob("brainxr-run_participant_*.log"))


def test_sidecars(outputs):
    cohort, out = outputs
    run = cohort.runs[0]
    table, sidecar = _timeseries(out, run.name, "Synth", "scrubbing5")
    assert sidecar["SamplingFrequency"] == pytest.approx(1 / cohort.t_r)
    assert sidecar["Columns"] == list(table.columns) == cohort.region_names
    confounds = pd.read_csv(run.confounds, sep="\t")
    fd = confounds["framewise_displacement"].to_numpy(float)
    assert sidecar["MeanFramewiseDisplacement"] == pytest.approx(np.nanmean(fd))
    assert set(sidecar["CensoredVolumes"]) >= set(range(cohort.parameters["n_dummy_scans"]))
    assert sidecar["NumberOfVolumesKept"] == len(table) == 60 - len(sidecar["CensoredVolumes"])
    assert "trans_x" in sidecar["ConfoundsUsed"] and "csf" in sidecar["ConfoundsUsed"]
    assert sidecar["DenoiseStrategy"]["Parameters"] == {"denoise_strategy": "scrubbing", "fd_threshold": 0.5}
    assert sidecar["Cleaning"]["standardize"] == "zscore_sample" and sidecar["Cleaning"]["t_r"] == cohort.t_r
    assert sidecar["Atlas"]["Image"]["SHA256"] and sidecar["Atlas"]["Table"]["Path"].endswith("_dseg.tsv")
    sources = {Path(s["Path"]).name: s["SHA256"] for s in sidecar["Sources"]}
    import hashlib

    assert sources[run.bold.name] == hashlib.sha256(run.bold.read_bytes()).hexdigest()
    assert run.confounds.name in sources
    assert sidecar["BrainxrVersion"]
    provenance = sidecar["Provenance"]
    assert provenance["confounds_strategy"]["name"] == "scrubbing"
    assert provenance["confounds_strategy"]["options"]["fd_threshold"] == 0.5
    assert provenance["clean"]["standardize"] == "zscore_sample" and provenance["atlas"]["name"] == "Synth"
    relmat = json.loads(_relmat_path(out, run.name, "Synth", "simple", "ShrunkCorrelation").with_suffix(".json").read_text())
    assert relmat["CovarianceEstimator"] == "LedoitWolf" and relmat["RegionNames"] == cohort.region_names


def _nilearn_signals(cohort, run, atlas_kind, strategy, dtype):
    from nilearn.interfaces.fmriprep import load_confounds_strategy
    from nilearn.maskers import NiftiLabelsMasker, NiftiMapsMasker

    parameters = {"simple": {}, "scrubbing.5": {"fd_threshold": 0.5}}[strategy]
    preset = strategy.split(".")[0]
    confounds, sample_mask = load_confounds_strategy(str(run.bold), preset, **parameters)
    img = nib.load(run.bold)
    img = nib.Nifti1Image(img.get_fdata(dtype=dtype), img.affine, img.header)
    img.set_data_dtype(dtype)
    common = dict(mask_img=str(run.mask), standardize="zscore_sample", detrend=True, t_r=cohort.t_r)
    if atlas_kind == "labels":
        masker = NiftiLabelsMasker(str(cohort.atlas_labels_img), **common)
    else:
        masker = NiftiMapsMasker(str(cohort.atlas_maps_img), **common)
    return masker.fit_transform(img, confounds=confounds, sample_mask=sample_mask)


@pytest.mark.parametrize("atlas_kind, atlas", [("labels", "Synth"), ("maps", "SynthProb")])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_timeseries_equal_nilearn(outputs, atlas_kind, atlas, strategy):
    cohort, out = outputs
    label = strategy.replace(".", "")
    for run in cohort.runs[:2]:
        table, _ = _timeseries(out, run.name, atlas, label)
        expected64 = _nilearn_signals(cohort, run, atlas_kind, strategy, np.float64)
        np.testing.assert_allclose(table.to_numpy(), expected64, atol=1e-5)
        expected32 = _nilearn_signals(cohort, run, atlas_kind, strategy, np.float32)
        np.testing.assert_allclose(table.to_numpy(), expected32, atol=1e-4)


@pytest.mark.parametrize("kind, meas", [("correlation", "ShrunkCorrelation"),
                                        ("partial correlation", "ShrunkPartialCorrelation"),
                                        ("covariance", "ShrunkCovariance")])
def test_relmats_equal_connectivity_measure(outputs, kind, meas):
    from nilearn.connectome import ConnectivityMeasure

    cohort, out = outputs
    for run in cohort.runs[:2]:
        table, _ = _timeseries(out, run.name, "Synth", "simple")
        expected = ConnectivityMeasure(kind=kind).fit_transform([table.to_numpy()])[0]
        np.testing.assert_allclose(read_relmat(_relmat_path(out, run.name, "Synth", "simple", meas)), expected,
                                   atol=1e-8)


def test_group_outputs(outputs):
    from nilearn.connectome import ConnectivityMeasure

    cohort, out = outputs
    signals = [_timeseries(out, run.name, "Synth", "scrubbing5")[0].to_numpy() for run in cohort.runs]
    measure = ConnectivityMeasure(kind="tangent")
    tangents = measure.fit_transform(signals)
    for run, expected in zip(cohort.runs, tangents):
        np.testing.assert_allclose(read_relmat(_relmat_path(out, run.name, "Synth", "scrubbing5", "Tangent")), expected,
                                   atol=1e-6)
    group = out / "group"
    mean = read_relmat(group / f"{SPACE_ENTITIES}_seg-Synth_stat-geometricmean_meas-ShrunkCovariance_desc-scrubbing5_relmat.tsv")
    np.testing.assert_allclose(mean, measure.mean_, atol=1e-6)
    correlations = np.stack([read_relmat(_relmat_path(out, run.name, "Synth", "scrubbing5", "ShrunkCorrelation"))
                             for run in cohort.runs])
    z = np.arctanh(np.clip(correlations, -1 + 1e-15, 1 - 1e-15))
    group_correlation = read_relmat(group / f"{SPACE_ENTITIES}_seg-Synth_stat-mean_meas-ShrunkCorrelation_desc-scrubbing5_relmat.tsv")
    off = ~np.eye(len(mean), dtype=bool)
    np.testing.assert_allclose(group_correlation[off], np.tanh(z.mean(axis=0))[off], atol=1e-10)
    runs = pd.read_csv(group / "runs_qc.tsv", sep="\t")
    assert list(runs["participant_id"]) == [f"sub-{run.subject}" for run in cohort.runs]
    assert {"mean_fd", "n_volumes_kept_simple", "n_volumes_kept_scrubbing5", "tdof_loss_simple",
            "mean_coverage_Synth", "mean_coverage_SynthProb"} <= set(runs.columns)
    qcfc = pd.read_csv(group / "qcfc.tsv", sep="\t")
    assert len(qcfc) == 4 and set(qcfc["strategy"]) == {"simple", "scrubbing5"}
    assert qcfc["n_runs"].eq(4).all() and qcfc["median_abs_qcfc"].between(0, 1).all()
    scrubbing = qcfc[(qcfc.atlas == "Synth") & (qcfc.strategy == "scrubbing5")].iloc[0]
    simple = qcfc[(qcfc.atlas == "Synth") & (qcfc.strategy == "simple")].iloc[0]
    assert scrubbing["mean_tdof_loss"] > simple["mean_tdof_loss"]  # censoring costs degrees of freedom


def test_reports_open_offline(outputs):
    cohort, out = outputs
    group = (out / "group.html").read_text()
    for heading in ("Motion and volumes kept", "Region coverage", "Denoising quality", "Strategies side by side: Synth",
                    "Group connectome: Synth, simple", "Group connectome: Synth, scrubbing5"):
        assert heading in group
    participant = (out / "sub-01.html").read_text()
    assert "Carpet plot" in participant or "data:image/png;base64" in participant
    assert "censored by scrubbing5" in participant and "Framewise displacement" in participant
    for page in (group, participant):
        assert not re.search(r"""(src|href)=["']https?://""", page)


def test_rerun_skips_what_is_done(outputs, capsys):
    cohort, out = outputs
    sidecar = next(out.glob("sub-01/func/*_desc-simple_timeseries.json"))
    before = sidecar.stat().st_mtime_ns
    common = ["--atlas", cohort.atlas_labels_img, cohort.atlas_maps_img, "--denoise-strategy", *STRATEGIES,
              "--kind", *KINDS, "--work-dir", out.parent / "work"]
    started = time.perf_counter()
    assert run_cli(cohort.root, out, "participant", *common) == 0
    assert time.perf_counter() - started < 120  # a loose bound on a shared machine; benchmarks/bids_app.py times it
    assert "0 run(s) processed, 4 already done, 0 failed" in capsys.readouterr().out
    assert sidecar.stat().st_mtime_ns == before


def test_rerun_with_nothing_to_do_reads_only_the_index_and_sidecars(outputs):
    """A rerun of both levels in a fresh process: nothing is written and no extraction, cleaning, connectivity or
    reporting code is imported (the decision comes from the store's runs index and the output sidecars)."""
    cohort, out = outputs
    common = ["--atlas", str(cohort.atlas_labels_img), str(cohort.atlas_maps_img), "--denoise-strategy", *STRATEGIES,
              "--kind", *KINDS, "--work-dir", str(out.parent / "work")]
    files = {path: path.stat().st_mtime_ns for path in out.rglob("*") if path.is_file() and "logs" not in path.parts}
    code = f"""
import sys
from brainxr.cli import main
for level in ("participant", "group"):
    assert main(["run", {str(cohort.root)!r}, {str(out)!r}, level, *{common!r}]) == 0
heavy = ("brainxr.signal", "brainxr.regions", "brainxr.connectome", "brainxr.reporting", "brainxr.cohort", "sklearn",
         "numba")
print("imported:", [name for name in heavy if name in sys.modules])
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "brainxr run participant: 0 run(s) processed, 4 already done, 0 failed" in done.stdout
    assert "brainxr run group: 0 run(s) processed, 4 already done, 0 failed" in done.stdout
    assert "imported: []" in done.stdout, done.stdout
    assert {path: path.stat().st_mtime_ns for path in files} == files


def test_run_without_reports_imports_neither_matplotlib_nor_distributed_nor_numba(synthetic, tmp_path):
    """Both levels with --no-reports on local threads, in a fresh process: matplotlib (the reports), distributed
    (which dask imports to look for a client whenever a scheduler is named), numba (the sparse estimators'
    kernels; no sparse kind is asked), scikit-learn (the default Ledoit-Wolf is brainxr's kernel) and scipy.stats
    (QC-FC) are never imported."""
    cohort, _ = synthetic
    code = f"""
import sys
from brainxr.cli import main
for level in ("participant", "group"):
    assert main(["run", {str(cohort.root)!r}, {str(tmp_path / "out")!r}, level, "--atlas",
                 {str(cohort.atlas_labels_img)!r}, "--work-dir", {str(tmp_path / "work")!r}, "--quiet",
                 "--no-reports"]) == 0
print("imported:", [name for name in ("matplotlib", "distributed", "numba", "sklearn", "scipy.stats")
                    if name in sys.modules])
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "imported: []" in done.stdout, done.stdout
    assert len(list((tmp_path / "out").glob("sub-*/func/*_timeseries.tsv"))) == 4


def test_group_rerun_redoes_what_changed(outputs, tmp_path):
    """The group level is skipped only when its inputs, its options and every file it wrote are the same."""
    cohort, original = outputs
    out = tmp_path / "out"
    shutil.copytree(original, out)  # outputs moved elsewhere stay up to date (their record is relative)
    common = ["--atlas", cohort.atlas_labels_img, cohort.atlas_maps_img, "--denoise-strategy", *STRATEGIES,
              "--work-dir", tmp_path / "work", "--quiet", "--no-reports"]
    mean = next((out / "group").glob("*_seg-Synth_stat-mean_meas-ShrunkCorrelation_desc-simple_relmat.tsv"))
    tangent = next(out.glob("sub-02/func/*_seg-SynthProb_meas-Tangent_desc-scrubbing5_relmat.tsv"))
    record = json.loads((out / "group" / "qcfc.json").read_text())
    assert {str(mean.relative_to(out)), str(tangent.relative_to(out)), "group/runs_qc.tsv"} <= set(record["Outputs"])
    assert record["n_runs"]["Description"]
    before = mean.stat().st_mtime_ns
    assert run_cli(cohort.root, out, "group", *common, "--kind", *KINDS) == 0
    assert mean.stat().st_mtime_ns == before
    expected = tangent.read_text()
    tangent.unlink()  # a file the group level wrote is gone: redone
    assert run_cli(cohort.root, out, "group", *common, "--kind", *KINDS) == 0
    assert tangent.read_text() == expected and mean.stat().st_mtime_ns > before
    before = mean.stat().st_mtime_ns
    assert run_cli(cohort.root, out, "group", *common, "--kind", "correlation") == 0  # other options: redone
    assert mean.stat().st_mtime_ns > before
    assert json.loads((out / "group" / "qcfc.json").read_text())["BrainxrSettings"] != record["BrainxrSettings"]
    sidecar = next(out.glob("sub-03/func/*_seg-Synth_desc-simple_timeseries.json"))
    content = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps(dict(content, BrainxrSettings="other")))  # a participant output redone: redone
    before = mean.stat().st_mtime_ns
    assert run_cli(cohort.root, out, "group", *common, "--kind", "correlation") == 0
    assert mean.stat().st_mtime_ns > before


def test_smoothing_equals_nilearn(synthetic, tmp_path):
    """--smoothing-fwhm smooths each volume before extraction, as the maskers' smoothing_fwhm
    (the synthetic images are 0 outside the brain, so the cohort mask loses nothing)."""
    from nilearn.interfaces.fmriprep import load_confounds_strategy
    from nilearn.maskers import NiftiLabelsMasker

    cohort, root = synthetic
    out = tmp_path / "out"
    assert run_cli(cohort.root, out, "participant", "--atlas", cohort.atlas_labels_img, "--participant-label", "02",
                   "--smoothing-fwhm", "8", "--work-dir", root / "work", "--quiet", "--no-reports") == 0
    run = cohort.runs[1]
    table, sidecar = _timeseries(out, run.name, "Synth", "simple")
    assert sidecar["Cleaning"]["smoothing_fwhm"] == 8.0
    confounds, sample_mask = load_confounds_strategy(str(run.bold), "simple")
    img = nib.load(run.bold)
    img = nib.Nifti1Image(img.get_fdata(), img.affine, img.header)
    masker = NiftiLabelsMasker(str(cohort.atlas_labels_img), mask_img=str(run.mask), smoothing_fwhm=8,
                               standardize="zscore_sample", detrend=True, t_r=cohort.t_r)
    expected = masker.fit_transform(img, confounds=confounds, sample_mask=sample_mask)
    np.testing.assert_allclose(table.to_numpy(), expected, atol=1e-5)


@pytest.mark.browser
def test_reports_open_offline_in_chromium(outputs, browser):  # noqa: F811
    """Every image of the participant and group reports decodes in headless Chromium, with no console error."""
    from selenium.webdriver.support.ui import WebDriverWait

    cohort, out = outputs
    for page in (out / "group.html", out / "sub-02.html"):
        browser.get(page.resolve().as_uri())
        WebDriverWait(browser, 60).until(lambda d: d.execute_script("return document.readyState") == "complete")
        assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
        assert browser.execute_script(
            "return Array.from(document.images).every(function (i) { return i.complete && i.naturalWidth > 0; })")
        figures = browser.execute_script("return document.querySelectorAll('div.figure').length")
        assert figures >= (8 if page.name == "group.html" else 4), (page.name, figures)
