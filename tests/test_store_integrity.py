"""Store integrity (issue 10): run names, store creation, locks, checksums, verify and repair."""

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import brainxr
from brainxr import store as cohort_store
from brainxr.errors import IngestError, StoreDamageError, StoreError
from brainxr.testing import raise_if_dask_computes
from conftest import write_tiny_run

DATA = Path(__file__).parent / "data"


def _snapshot(folder):
    """Every file under a folder with its bytes."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


HOSTILE_NAMES = [
    "..nii.gz", "...nii.gz", ".nii.gz", "....nii.gz", "*.nii.gz", "sub-*_task-rest_bold.nii.gz",
    "zarr.json.nii.gz", "a b.nii.gz", "x%2F..nii.gz", "q?.nii.gz", "h#1.nii.gz", "c:d.nii.gz", "[ab].nii.gz",
    "-rf.nii.gz", "~.nii.gz", "sub-01_task-a%2Fb_bold.nii.gz", "sub-01_task-%2E%2E_bold.nii.gz",
]


def test_no_file_name_makes_ingest_remove_anything_outside_its_run(tmp_path):
    source = tmp_path / "derivatives"
    write_tiny_run(source, "01")
    store = tmp_path / "c.zarr"
    brainxr.ingest(source, store, progress=False)
    (tmp_path / "neighbour.txt").write_text("not the store's")
    before = _snapshot(tmp_path)
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    template = next(source.rglob("*_desc-preproc_bold.nii.gz"))
    files = []
    for name in HOSTILE_NAMES:
        shutil.copy(template, hostile / name)
        files.append(hostile / name)
    with pytest.raises(IngestError) as caught:
        brainxr.ingest(files, store, progress=False)
    assert len(caught.value.failures) == len(HOSTILE_NAMES)
    for err in caught.value.failures.values():
        assert "cannot name a run in a cohort store" in str(err)
    after = _snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k.parts[0] != "hostile"} == before
    assert list(brainxr.open_cohort(store)) == ["sub-01_task-rest"]


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=40))
def test_a_run_path_is_always_a_direct_child_of_runs(key):
    try:
        cohort_store.validate_run_key(key)
    except ValueError as err:
        assert repr(key) in str(err)
        with pytest.raises(ValueError):
            cohort_store.run_location("/store", key)
        return
    run = cohort_store.run_location("/store", key)
    assert str(run.parent) == "/store/runs" and run.name == key and key not in (".", "..", "zarr.json")


# ---------------------------------------------------------------------------
# Store creation is atomic or resumable


def _interrupted_creation(store, grid_source):
    """What an ingest killed between writing the root zarr.json and its format attribute leaves behind."""
    import numpy as np
    import zarr

    mask = nib.load(str(next(grid_source.rglob("*brain_mask.nii.gz")))).get_fdata() > 0
    root = zarr.open_group(str(store), mode="w", zarr_format=3)
    root.create_array("mask", data=mask)
    root.create_array("voxel_index", data=np.column_stack(np.nonzero(mask)).astype(np.int32))
    root.create_group("runs")


def test_an_interrupted_store_creation_is_completed_by_the_next_ingest(tiny_derivatives, tmp_path):
    store = tmp_path / "c.zarr"
    _interrupted_creation(store, tiny_derivatives)
    with pytest.raises(StoreError, match="interrupted store creation.*run ingest again"):
        brainxr.open_cohort(store)
    report = brainxr.ingest(tiny_derivatives, store, progress=False)
    assert len(report.ingested) == 3
    assert len(brainxr.open_cohort(store)) == 3


_KILLED_AT_CREATION = textwrap.dedent(
    """
    import os, signal, sys
    import brainxr.store as store
    def killed(location, attrs):  # the root arrays are written; the format attribute is next
        os.kill(os.getpid(), signal.SIGKILL)
    store._write_root_attrs = killed
    import brainxr
    brainxr.ingest(sys.argv[1], sys.argv[2], progress=False)
    """
)


@pytest.mark.integration
def test_an_ingest_killed_while_creating_the_store_resumes(tiny_derivatives, tmp_path):
    store = tmp_path / "c.zarr"
    killed = subprocess.run([sys.executable, "-c", _KILLED_AT_CREATION, str(tiny_derivatives), str(store)])
    assert killed.returncode == -signal.SIGKILL
    assert (store / "zarr.json").exists() and (store / "mask").exists()
    report = brainxr.ingest(tiny_derivatives, store, progress=False)
    assert len(report.ingested) == 3
    cohort = brainxr.open_cohort(store)
    assert len(cohort) == 3 and cohort.grid.n_voxels > 0


def test_a_folder_holding_something_else_is_never_taken_over(tiny_derivatives, tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "thesis.tex").write_text("keep me")
    with pytest.raises(StoreError, match="not a brainxr cohort store.*thesis.tex"):
        brainxr.ingest(tiny_derivatives, folder, progress=False)
    assert sorted(p.name for p in folder.iterdir()) == ["thesis.tex"]


def test_a_format1_store_is_read_only(tiny_derivatives, tmp_path):
    store = shutil.copytree(DATA / "format1.zarr", tmp_path / "format1.zarr")
    before = _snapshot(store)
    with pytest.raises(StoreError, match="format 1.*readable but not writable.*new store"):
        brainxr.ingest(tiny_derivatives, store, progress=False)
    assert _snapshot(store) == before


# ---------------------------------------------------------------------------
# Two ingests at once


_SLOW_INGEST = textwrap.dedent(
    """
    import os, sys, time
    import brainxr.store as store
    source, target, signals, role = sys.argv[1:5]
    started, ready = os.path.join(signals, "first-started"), os.path.join(signals, "second-ready")
    write = store.write_bold_chunk
    def slow_write(bold, start, values):
        write(bold, start, values)
        if role == "first":  # mid-run, wait until the second ingest starts
            open(started, "a").close()
            while not os.path.exists(ready):
                time.sleep(0.05)
        time.sleep(0.3)
    store.write_bold_chunk = slow_write
    import brainxr
    if role == "second":
        while not os.path.exists(started):
            time.sleep(0.05)
        open(ready, "w").close()
    report = brainxr.ingest(source, target, n_workers=2, voxel_chunk_mb=0.05, progress=False)
    print(report, flush=True)
    """
)


@pytest.mark.integration
def test_two_ingests_at_once_share_the_runs_and_say_so(tmp_path):
    source = tmp_path / "derivatives"
    for n in range(6):
        write_tiny_run(source, f"{n + 1:02d}", seed=n)
    store = tmp_path / "c.zarr"
    command = [sys.executable, "-c", _SLOW_INGEST, str(source), str(store), str(tmp_path)]
    first = subprocess.Popen(command + ["first"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(command + ["second"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out_second, err_second = second.communicate(timeout=600)
    out_first, err_first = first.communicate(timeout=600)
    for process, out, err in ((first, out_first, err_first), (second, out_second, err_second)):
        assert process.returncode == 0, err
        assert "Traceback" not in err and "FAILED" not in out
    # every run was written once, by one of them; the second left the runs being written to the first, and said so
    counts = [int(re.search(r": (\d+) ingested", out).group(1)) for out in (out_first, out_second)]
    assert sum(counts) == 6, (out_first, out_second)
    assert "were being written by another ingest and were left to it" in out_second
    assert re.search(r"sub-0\d_task-rest: host .*, pid \d+, since", out_second)
    cohort = brainxr.open_cohort(store)
    assert len(cohort) == 6 and cohort.incomplete == []
    assert brainxr.verify(store, progress=False).ok
    assert sorted(cohort_store.read_index(store)) == sorted(cohort)
    assert not list((store / "locks" / "runs").iterdir())


def test_a_stale_run_lock_of_a_dead_process_is_broken(tiny_derivatives, tmp_path):
    store = tmp_path / "c.zarr"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock = store / "locks" / "runs" / "sub-01_task-rest.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": int(dead.stdout), "started": time.time(),
                                "heartbeat": time.time(), "token": "x"}))
    report = brainxr.ingest(tiny_derivatives, store, progress=False)
    assert len(report.ingested) == 3 and not report.locked


def test_a_live_run_lock_is_respected_and_named(tiny_derivatives, tmp_path):
    store = tmp_path / "c.zarr"
    lock = store / "locks" / "runs" / "sub-02_task-rest.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"host": "node7", "pid": 4242, "started": time.time(), "heartbeat": time.time(),
                                "token": "x"}))
    report = brainxr.ingest(tiny_derivatives, store, progress=False)
    assert report.ingested == ["sub-01_task-rest", "sub-03_task-rest"]
    assert list(report.locked) == ["sub-02_task-rest"] and "host node7, pid 4242" in report.locked["sub-02_task-rest"]
    assert "being written by another ingest" in str(report)
    lock.write_text(json.dumps({"host": "node7", "pid": 4242, "started": 0, "heartbeat": 0, "token": "x"}))
    report = brainxr.ingest(tiny_derivatives, store, progress=False)  # the lease has expired: stale
    assert report.ingested == ["sub-02_task-rest"]


# ---------------------------------------------------------------------------
# Checksums, damaged chunks, verify and repair


def _chunk(store, key, array, index=-1):
    chunks = sorted(p for p in (store / "runs" / key / array / "c").rglob("*") if p.is_file())
    return chunks[index]


def _flip(path, n_bytes=16):
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for offset in range(n_bytes):
        data[middle + offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def ingested(tiny_derivatives, tmp_path):
    store = tmp_path / "c.zarr"
    brainxr.ingest(tiny_derivatives, store, voxel_chunk_mb=0.05, progress=False)
    return tiny_derivatives, store


DAMAGE = {
    "flipped bytes": (_flip, "fails its checksum"),
    "truncated chunk": (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "fails its checksum"),
    "deleted chunk": (lambda p: p.unlink(), "is missing"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("array", ["bold", "confounds"])
def test_damaged_chunks_raise_errors_naming_store_run_and_array(ingested, damage, array):
    _, store = ingested
    key = "sub-02_task-rest"
    damage_chunk, problem = DAMAGE[damage]
    damage_chunk(_chunk(store, key, array))
    expected = rf"{re.escape(str(store))}: run '{key}', array '{array}': .*{problem}"
    with pytest.raises(StoreDamageError, match=expected):
        cohort_store.read_bold(store, key) if array == "bold" else cohort_store.read_confounds(store, key)
    run = brainxr.open_cohort(store)[key]
    with pytest.raises(StoreDamageError, match=expected):
        run[array].values
    # the other runs read as before
    assert np.isfinite(cohort_store.read_bold(store, "sub-01_task-rest")).all()
    report = brainxr.verify(store, progress=False)
    assert list(report.damaged) == [key] and report.damaged[key][0].array == array
    assert f"DAMAGED {key}" in str(report)


def test_arrays_read_together_equal_single_reads_and_damage_names_its_array(ingested):
    _, store = ingested
    key = "sub-02_task-rest"
    voxels = slice(3, 40)
    together = cohort_store.read_run_arrays(store, key, {"bold": (slice(None), voxels), "valid": (voxels,),
                                                         "confound": ()})
    assert list(together) == ["bold", "valid", "confound"]
    np.testing.assert_array_equal(together["bold"], cohort_store.read_bold(store, key, voxels))
    np.testing.assert_array_equal(together["valid"], cohort_store.read_valid(store, key, voxels))
    table, _ = cohort_store.read_confounds(store, key)
    assert [str(name) for name in together["confound"]] == list(table.columns)

    _flip(_chunk(store, key, "valid"))
    expected = rf"{re.escape(str(store))}: run '{key}', array 'valid': .*fails its checksum"
    with pytest.raises(StoreDamageError, match=expected):
        cohort_store.read_run_arrays(store, key, {"bold": (), "valid": ()})
    # the undamaged array of the same run still reads alone
    assert np.isfinite(cohort_store.read_run_arrays(store, key, {"bold": ()})["bold"]).all()
    with pytest.raises(StoreDamageError, match=rf"run '{key}', array 'missing': the array is missing"):
        cohort_store.read_run_arrays(store, key, {"bold": (), "missing": ()})


def _command(*args, **kwargs):
    """Run ``brainxr ARGS`` in a new process (the command's --quiet would turn progress bars off in this one)."""
    return subprocess.run([sys.executable, "-m", "brainxr", *map(str, args)], capture_output=True, text=True, **kwargs)


def test_verify_command_lists_damaged_runs(ingested):
    _, store = ingested
    intact = _command("verify", store, "--quiet")
    assert intact.returncode == 0 and "3 complete runs checked, 0 damaged" in intact.stdout
    _flip(_chunk(store, "sub-03_task-rest", "valid"))
    _chunk(store, "sub-01_task-rest", "bold", 0).unlink()
    completed = _command("verify", store, "--quiet")
    assert completed.returncode == 1
    assert "3 complete runs checked, 2 damaged" in completed.stdout
    assert "DAMAGED sub-01_task-rest: chunk" in completed.stdout and "is missing" in completed.stdout
    assert "DAMAGED sub-03_task-rest: a chunk fails its checksum" in completed.stdout


def test_repair_rewrites_damaged_runs_whose_sources_match(ingested, tmp_path):
    source, store = ingested
    reference = {key: cohort_store.read_bold(store, key) for key in ("sub-01_task-rest", "sub-02_task-rest")}
    _flip(_chunk(store, "sub-01_task-rest", "bold"))
    _chunk(store, "sub-02_task-rest", "confounds").unlink()
    _chunk(store, "sub-03_task-rest", "bold").unlink()
    # sub-03's source changed since: it cannot be repaired from it
    bold3 = next(source.rglob("sub-03_*preproc_bold.nii.gz"))
    img = nib.load(str(bold3))
    nib.save(nib.Nifti1Image(np.asanyarray(img.dataobj) * 2, img.affine, img.header), str(bold3))
    report = brainxr.ingest(source, store, repair=True, progress=False, on_error="return")
    assert report.repaired == ["sub-01_task-rest", "sub-02_task-rest"]
    assert "sources changed since ingest" in str(report.failed["sub-03_task-rest"])
    for key, values in reference.items():
        np.testing.assert_array_equal(cohort_store.read_bold(store, key), values)
    assert list(brainxr.verify(store, progress=False).damaged) == ["sub-03_task-rest"]
    # an intact store: repair checks and skips everything
    assert brainxr.ingest(source, store, repair=True, progress=False, on_error="return").repaired == []


def test_an_all_zero_run_is_ingested_with_a_warning_naming_it(tmp_path):
    source = tmp_path / "derivatives"
    write_tiny_run(source, "01")
    zero = write_tiny_run(source, "02", seed=2)
    img = nib.load(str(zero))
    nib.save(nib.Nifti1Image(np.zeros(img.shape, np.float32), img.affine, img.header), str(zero))
    with pytest.warns(UserWarning, match="run sub-02_task-rest .*every voxel of the cohort mask is zero"):
        brainxr.ingest(source, tmp_path / "c.zarr", progress=False)
    cohort = brainxr.open_cohort(tmp_path / "c.zarr")
    assert cohort.runs.loc["sub-02_task-rest", "n_valid_voxels"] == 0
    grid = cohort.grid  # the tiny runs have no atlas: one label per half of the grid
    labels = np.zeros(grid.shape, np.int16)
    labels[: grid.shape[0] // 2] = 1
    labels[grid.shape[0] // 2:] = 2
    with pytest.warns(UserWarning, match="run\\(s\\) sub-02_task-rest have no valid voxel"), raise_if_dask_computes():
        signals = cohort.extract(nib.Nifti1Image(labels, grid.affine))  # warned from the runs table: nothing read
    assert np.isnan(signals.sel(run="sub-02_task-rest").values).all()
