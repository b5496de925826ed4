"""``brainxr demo``: ``brainxr run`` on the synthetic cohort, a folder Python can start in, a clean store for new data."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from brainxr.cli import main


def _sources_in_store(store):
    from brainxr import store as cohort_store

    return {key: cohort_store.read_run_attrs(store, key)["source"]["sha256"] for key in cohort_store.runs_table(store).index}


@pytest.mark.slow
def test_demo_runs_the_bids_app_and_restarts_clean_for_new_data(tmp_path, capsys):
    out = tmp_path / "demo"
    arguments = ["demo", str(out), "--subjects", "3", "--volumes", "40", "--resolution", "8", "--quiet"]
    assert main(arguments + ["--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert f"brainxr run {out / 'fmriprep'} {out / 'connectivity'} participant --atlas" in printed
    assert "ground truth recovered" in printed
    assert sorted(p.name for p in out.iterdir()) == ["connectivity", "fmriprep", "work"]
    assert not list(out.rglob("brainxr"))  # no folder named like the package anywhere
    assert (out / "connectivity" / "group.html").exists() and (out / "connectivity" / "sub-01.html").exists()
    assert len(list((out / "connectivity").glob("sub-*/func/*_desc-scrubbing5_timeseries.tsv"))) == 3
    # Python started in the demo's folder imports the library, not a folder of outputs
    imported = subprocess.run([sys.executable, "-c", "import brainxr; print(brainxr.__file__)"], cwd=out,
                              capture_output=True, text=True, check=True).stdout.strip()
    assert not imported.startswith(str(out))

    first = _sources_in_store(out / "work" / "cohort.zarr")
    sidecar = next((out / "connectivity").glob("sub-01/func/*_desc-simple_timeseries.json"))
    first_digest = json.loads(sidecar.read_text())["BrainxrSettings"]
    # the same arguments again: nothing is made again
    assert main(arguments + ["--seed", "1"]) == 0
    assert _sources_in_store(out / "work" / "cohort.zarr") == first
    capsys.readouterr()
    # another seed: new data, and the store and outputs hold the new data only
    assert main(arguments + ["--seed", "2"]) == 0
    second = _sources_in_store(out / "work" / "cohort.zarr")
    assert second.keys() == first.keys() and all(second[k] != first[k] for k in first)
    for bold in (out / "fmriprep").glob("sub-*/func/*_desc-preproc_bold.nii.gz"):
        key = bold.name.split("_space-")[0]
        assert second[key] == hashlib.sha256(bold.read_bytes()).hexdigest()
    assert json.loads(sidecar.read_text())["BrainxrSettings"] != first_digest
