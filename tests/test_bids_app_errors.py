"""``brainxr run``: one readable line per mistake, failing runs reported while the others go on, resumption after a kill."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainxr.bids_app.specs import BidsAppError, parse_strategy
from brainxr.cli import build_parser, main


def run_cli(*argv) -> int:
    return main(["run", *map(str, argv)])


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    from brainxr.datasets import make_synthetic_cohort

    root = tmp_path_factory.mktemp("bids-app-errors")
    return make_synthetic_cohort(root / "fmriprep", n_subjects=3, n_volumes=40, resolution=6, n_regions=20, n_maps=6,
                                 seed=5)


def _error(capsys, code, *argv) -> str:
    assert run_cli(*argv) == code
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("case, pattern", [
    ("missing", r"bids_dir: .*/nowhere does not exist"),
    ("file", r"bids_dir: .*/a-file.txt is a file; expected the fMRIPrep derivatives folder"),
    ("empty", r"bids_dir: .*/empty is empty; expected fMRIPrep derivatives"),
    ("no-bold", r"bids_dir: .*/no-bold holds no fMRIPrep preprocessed BOLD image"),
])
def test_input_folder_messages(tmp_path, capsys, tree, case, pattern):
    folder = {"missing": tmp_path / "nowhere", "file": tmp_path / "a-file.txt", "empty": tmp_path / "empty",
              "no-bold": tmp_path / "no-bold"}[case]
    if case == "file":
        folder.write_text("x")
    elif case == "empty":
        folder.mkdir()
    elif case == "no-bold":
        (folder / "sub-01" / "anat").mkdir(parents=True)
        (folder / "sub-01" / "anat" / "sub-01_desc-preproc_T1w.nii.gz").write_bytes(b"")
    err = _error(capsys, 2, folder, tmp_path / "out", "participant", "--atlas", tree.atlas_labels_img)
    assert re.search(pattern, err), err


import re  # noqa: E402


@pytest.mark.parametrize("folder", ["bids_dir", "output_dir", "--work-dir"])
@pytest.mark.parametrize("url", ["s3://bucket/study", "memory://study", "s3:bucket/study"])
def test_a_url_is_refused_never_taken_for_a_local_folder(tmp_path, capsys, monkeypatch, tree, folder, url):
    """``brainxr run`` works on folders: a URL is an error naming it, never a local folder named 's3:' (issue 13)."""
    monkeypatch.chdir(tmp_path)
    argv = {"bids_dir": [url, "out"], "output_dir": [tree.root, url], "--work-dir": [tree.root, "out", "-w", url]}
    with pytest.raises(SystemExit) as exited:
        run_cli(*argv[folder][:2], "participant", *argv[folder][2:], "--atlas", tree.atlas_labels_img)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert re.search(rf"argument (-w/)?{folder}: {re.escape(url)}: (a URL; brainxr run reads and writes folders|looks like "
                     "a URL)", err), err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("options, pattern", [
    (["--participant-label", "04"], r"--participant-label: no sub-04 in .*; participants: 01, 02, 03"),
    (["--participant-label", "sub-1"], r"--participant-label: no sub-1 in .*; participants: 01, 02, 03"),
    (["--task", "Rest"], r"--task: no task 'Rest' in .*; tasks: rest"),
    (["--space", "MNI152NLin6Asym"], r"--space: no BOLD image in space 'MNI152NLin6Asym' in .*; spaces: MNI152NLin2009cAsym \(res 6\)"),
    (["--res", "2"], r"--res: no BOLD image at res '2' in .*; there are: MNI152NLin2009cAsym \(res 6\)"),
    (["--denoise-strategy", "scrubing"], r"--denoise-strategy scrubing: unknown strategy 'scrubing'; known: simple, scrubbing"),
    (["--denoise-strategy", "scrubbing:fd=0.2"], r"--denoise-strategy scrubbing:fd=0.2: scrubbing takes .*fd_threshold.*; not fd"),
    (["--denoise-strategy", "simple:motion=huge"], r"--denoise-strategy simple:motion=huge: motion must be one of"),
    (["--kind", "corelation"], r"--kind 'corelation': expected one of 'correlation'"),
    (["--low-pass", "0.01", "--high-pass", "0.1"], r"--high-pass 0.1 must be below --low-pass 0.01"),
    (["--cluster", "slurm"], r"--cluster slurm: --cluster-cores is required"),
    (["--dask-scheduler", "tcp://127.0.0.1:9", "--cluster", "slurm"], r"--dask-scheduler and --cluster: give one"),
])
def test_option_messages(tmp_path, capsys, tree, options, pattern):
    err = _error(capsys, 2, tree.root, tmp_path / "out", "participant", "--atlas", tree.atlas_labels_img, *options)
    assert re.search(pattern, err), err


def test_atlas_messages(tmp_path, capsys, tree, templateflow_home):
    err = _error(capsys, 2, tree.root, tmp_path / "out", "participant", "--atlas", "Schaefer2018:100Parcels8Networks")
    assert re.search(r"--atlas Schaefer2018:100Parcels8Networks: atlas .* not found; variants of Schaefer2018: "
                     r"Schaefer2018:100Parcels17Networks", err), err
    image = tmp_path / "tpl-X_atlas-Mine_dseg.nii.gz"
    shutil.copy(tree.atlas_labels_img, image)
    err = _error(capsys, 2, tree.root, tmp_path / "out", "participant", "--atlas", image)
    assert "no table of region names tpl-X_atlas-Mine_dseg.tsv next to the image" in err
    coords = tmp_path / "seeds.tsv"
    pd.DataFrame({"x": [0.0], "name": ["a"]}).to_csv(coords, sep="\t", index=False)
    err = _error(capsys, 2, tree.root, tmp_path / "out", "participant", "--atlas", coords)
    assert "a coordinates TSV needs columns x, y, z (mm); it lacks y, z" in err
    err = _error(capsys, 2, tree.root, tmp_path / "out", "participant", "--atlas", tmp_path / "missing.nii.gz")
    assert "--atlas" in err and "no such file" in err


def test_group_without_participant_outputs(tmp_path, capsys, tree):
    err = _error(capsys, 2, tree.root, tmp_path / "out", "group")
    assert "group level: no participant-level outputs in" in err and "run the participant level first" in err


def test_ingest_filter_typo(tmp_path, capsys, tree):
    assert main(["ingest", str(tree.root), str(tmp_path / "store.zarr"), "--filter", "task:rest"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "brainxr ingest: error: --filter task:rest: expected ENTITY=VALUE, e.g. task=rest (--debug shows the traceback)"


def test_debug_shows_the_traceback(tmp_path, tree):
    with pytest.raises(BidsAppError, match="does not exist"):
        run_cli(tmp_path / "nowhere", tmp_path / "out", "participant", "--debug")


def test_help_describes_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    parser = build_parser()
    run = parser._subparsers._group_actions[0].choices["run"]
    for action in run._actions:
        for option in action.option_strings:
            assert option in text
        assert action.help, action.dest
    for words in ("participant-label", "TemplateFlow", "giga_connectome", "jobqueue", "Exit code"):
        assert words in text
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.startswith("brainxr ")


def test_named_strategies_are_nilearn_parameters():
    assert parse_strategy("scrubbing.5+gsr").selection == ("scrubbing", {"fd_threshold": 0.5, "global_signal": "basic"})
    assert parse_strategy("acompcor50").selection == ("compcor", {})
    custom = parse_strategy("scrubbing:fd_threshold=0.3,scrub=0")
    assert custom.selection == ("scrubbing", {"fd_threshold": 0.3, "scrub": 0})
    assert custom.label == "scrubbingFdThreshold03Scrub0"


def test_strategy_json_files(tmp_path):
    giga = tmp_path / "mine.json"
    giga.write_text(json.dumps({"name": "mine", "function": "load_confounds_strategy",
                                "parameters": {"denoise_strategy": "simple", "motion": "basic"}}))
    assert parse_strategy(str(giga)).selection == ("simple", {"motion": "basic"})
    plain = tmp_path / "components.json"
    plain.write_text(json.dumps({"strategy": ["motion", "high_pass"], "motion": "derivatives"}))
    parsed = parse_strategy(str(plain))
    assert parsed.label == "components" and parsed.selection == (("motion", "high_pass"), {"motion": "derivatives"})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"strategy": ["motion", "wobble"]}))
    with pytest.raises(BidsAppError, match=r"--denoise-strategy .*bad.json: strategy must be one of"):
        parse_strategy(str(bad))


@pytest.mark.integration
def test_a_broken_run_among_good_ones(tmp_path, capsys, tree):
    source = tmp_path / "fmriprep"
    shutil.copytree(tree.root, source)
    broken = next(source.glob("sub-02/func/*_desc-preproc_bold.nii.gz"))
    data = broken.read_bytes()
    broken.write_bytes(data[: len(data) // 2])  # a truncated gzip stream
    out = tmp_path / "out"
    code = run_cli(source, out, "participant", "--atlas", tree.atlas_labels_img, "--quiet")
    assert code == 1
    printed = capsys.readouterr().out
    assert "2 run(s) processed, 0 already done, 1 failed" in printed
    assert re.search(r"FAILED sub-02_task-rest \(ingest\): .*sub-02_task-rest_space.*bold.nii.gz", printed), printed
    assert len(list(out.glob("sub-01/func/*_timeseries.tsv"))) == 1
    assert len(list(out.glob("sub-03/func/*_timeseries.tsv"))) == 1
    assert not (out / "sub-02").exists()
    log = next((out / "logs").glob("brainxr-run_participant_*.log")).read_text()
    assert "FAILED sub-02_task-rest (ingest)" in log and "Traceback" in log
    # the group level runs on the runs that succeeded
    assert run_cli(source, out, "group", "--quiet") == 0
    assert len(pd.read_csv(out / "group" / "runs_qc.tsv", sep="\t")) == 2


def test_templateflow_atlas_and_spheres(tmp_path, tree, templateflow_home):
    out = tmp_path / "out"
    coords = tmp_path / "seeds.tsv"
    pd.read_csv(tree.atlas_coords_tsv, sep="\t")[["name", "x", "y", "z"]].head(8).to_csv(coords, sep="\t", index=False)
    code = run_cli(tree.root, out, "participant", "--atlas", "Schaefer2018:100Parcels7Networks", coords,
                   "--radius", "6", "--participant-label", "01", "--quiet", "--kind", "correlation")
    assert code == 0
    tsv = next(out.glob("sub-01/func/*_seg-Schaefer2018100Parcels7Networks_desc-simple_timeseries.tsv"))
    sidecar = json.loads(tsv.with_suffix(".json").read_text())
    assert sidecar["Atlas"]["TemplateFlow"] == {"atlas": "Schaefer2018", "desc": "100Parcels7Networks",
                                                "template": "MNI152NLin2009cAsym", "resolution": 2}
    assert len(sidecar["Columns"]) == 100
    spheres = next(out.glob("sub-01/func/*_seg-seeds_desc-simple_timeseries.tsv"))
    table = pd.read_csv(spheres, sep="\t")
    assert table.shape[1] == 8 and json.loads(spheres.with_suffix(".json").read_text())["Atlas"]["Radius"] == 6.0


@pytest.mark.integration
def test_resumes_after_a_kill(tmp_path, tree):
    """A participant run killed mid-way: the rerun completes, skips what was done, and equals an uninterrupted run."""
    from brainxr.datasets import make_synthetic_cohort

    source = make_synthetic_cohort(tmp_path / "fmriprep", n_subjects=8, n_volumes=40, resolution=6, n_regions=20,
                                   seed=8).root
    out, work = tmp_path / "out", tmp_path / "work"
    arguments = ["run", str(source), str(out), "participant", "--atlas", str(tree.atlas_labels_img), "--work-dir",
                 str(work), "--n-workers", "1", "--quiet", "--kind", "correlation", "partial correlation"]
    # one run per batch in the killed process (read back from the store, or as ingested), so that the kill lands
    # between two runs' outputs, while ingest still has runs to do
    one_run_batches = ("import sys; from brainxr.bids_app import participant; participant.BATCH_BYTES = 1; "
                       "participant.INGESTED_BATCH_RUNS = 1; from brainxr.cli import main; sys.exit(main(sys.argv[1:]))")
    process = subprocess.Popen([sys.executable, "-c", one_run_batches, *arguments], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not list(out.glob("sub-*/func/*_timeseries.json")) and time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the run ended before it could be killed: {process.communicate()}")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = len(list(out.glob("sub-*/func/*_timeseries.json")))
    assert 0 < done_before < 8
    not_quiet = [argument for argument in arguments if argument != "--quiet"]  # the summary is printed
    rerun = subprocess.run([sys.executable, "-m", "brainxr.cli", *not_quiet], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    processed = int(re.search(r"(\d+) run\(s\) processed, (\d+) already done", rerun.stdout).group(1))
    assert processed <= 8 - done_before + 1  # what was done is skipped (a batch may finish its sidecars after the poll)
    assert len(list(out.glob("sub-*/func/*_timeseries.json"))) == 8
    assert not list(out.glob("sub-*/func/.*"))  # no temporary file left behind
    reference = tmp_path / "reference"
    assert run_cli(source, reference, "participant", "--atlas", tree.atlas_labels_img, "--work-dir", work,
                   "--quiet", "--kind", "correlation", "partial correlation", "--no-reports") == 0
    for path in sorted(reference.glob("sub-*/func/*.tsv")):
        resumed = out / path.relative_to(reference)
        np.testing.assert_array_equal(pd.read_csv(resumed, sep="\t", header=None).to_numpy(),
                                      pd.read_csv(path, sep="\t", header=None).to_numpy())


@pytest.mark.distributed
@pytest.mark.slow
def test_dask_scheduler_address(tmp_path, tree):
    """--dask-scheduler: worker processes (in another working directory) ingest and extract; same bytes as threads."""
    from distributed import LocalCluster

    workers_dir = tmp_path / "workers"
    workers_dir.mkdir()
    common = ["--atlas", tree.atlas_labels_img, "--participant-label", "01", "02", "--quiet", "--no-reports"]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      local_directory=str(workers_dir)) as cluster:
        assert run_cli(tree.root, tmp_path / "distributed", "participant", "--work-dir", tmp_path / "work-d",
                       "--dask-scheduler", cluster.scheduler_address, *common) == 0
    assert run_cli(tree.root, tmp_path / "threads", "participant", "--work-dir", tmp_path / "work-t", *common) == 0
    produced = sorted(p.relative_to(tmp_path / "threads") for p in (tmp_path / "threads").glob("sub-*/func/*.tsv"))
    assert len(produced) == 2 * 3
    for relative in produced:
        assert (tmp_path / "distributed" / relative).read_bytes() == (tmp_path / "threads" / relative).read_bytes()


def test_a_run_failing_one_strategy(tmp_path, capsys, tree):
    """A run whose confounds lack what a strategy needs fails for that strategy alone, named, and the others go on."""
    source = tmp_path / "fmriprep"
    shutil.copytree(tree.root, source)
    confounds_path = next(source.glob("sub-03/func/*_desc-confounds_timeseries.tsv"))
    table = pd.read_csv(confounds_path, sep="\t")
    table.drop(columns=["std_dvars"]).to_csv(confounds_path, sep="\t", index=False, na_rep="n/a")
    out = tmp_path / "out"
    code = run_cli(source, out, "participant", "--atlas", tree.atlas_labels_img, "--denoise-strategy", "simple",
                   "scrubbing", "--quiet", "--no-reports")
    assert code == 1
    printed = capsys.readouterr().out
    assert re.search(r"FAILED sub-03_task-rest \(Synth scrubbing\): ValueError: .*std_dvars", printed), printed
    assert len(list(out.glob("sub-*/func/*_desc-scrubbing_timeseries.tsv"))) == 2
    assert len(list(out.glob("sub-*/func/*_desc-simple_timeseries.tsv"))) == 3


def test_a_killed_write_leaves_nothing_behind_the_next_one(tmp_path):
    """Files are written under a temporary name and renamed; a rewrite removes the temporary a kill left."""
    from brainxr.bids_app.outputs import read_json, write_json

    target = tmp_path / "sub-01_desc-x_timeseries.json"
    leftover = tmp_path / ".sub-01_desc-x_timeseries.json.k1ll3d"
    leftover.write_text("{half")
    write_json(target, {"a": 1})
    assert read_json(target) == {"a": 1} and sorted(p.name for p in tmp_path.iterdir()) == [target.name]
