"""Stores and sources on object storage (issue 13): URLs, a real S3 API (moto server), few requests."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import brainxr
from brainxr import store as cohort_store
from brainxr._storage import as_location
from brainxr.errors import IngestError, LocationError
from conftest import write_tiny_run

CLEAN = {"detrend": True, "standardize": "zscore_sample", "low_pass": 0.08, "high_pass": 0.009}


# ---------------------------------------------------------------------------
# URLs


def test_urls_that_cannot_be_honoured_are_errors_never_local_folders(tiny_derivatives, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    for url, problem in [("memory:/cohort.zarr", "looks like a URL .* without '//'"),
                         ("nosuchprotocol://bucket/cohort.zarr", "unknown protocol 'nosuchprotocol'"),
                         ("s3:cohort.zarr", "looks like a URL")]:
        with pytest.raises(LocationError, match=f"{url}: {problem}"):
            brainxr.ingest(tiny_derivatives, url, progress=False)
        with pytest.raises(LocationError, match=problem):
            brainxr.open_cohort(url)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_missing_filesystem_package_is_named(monkeypatch):
    import fsspec

    def missing(protocol):
        raise ImportError(f"Install gcsfs to access {protocol}")

    monkeypatch.setattr(fsspec, "get_filesystem_class", missing)
    with pytest.raises(LocationError, match="gs://bucket/c.zarr: the gs:// protocol needs a package .*gcsfs"):
        as_location("gs://bucket/c.zarr")


def test_local_paths_and_file_urls_are_one_absolute_location(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert as_location("c.zarr") == as_location(tmp_path / "c.zarr") == as_location(f"file://{tmp_path}/c.zarr")
    assert str(as_location("sub/../c.zarr")) == str(tmp_path / "c.zarr")


def _same_store_contents(a, b):
    """Two stores hold the same runs with the same values."""
    ca, cb = brainxr.open_cohort(a), brainxr.open_cohort(b)
    assert list(ca) == list(cb)
    np.testing.assert_array_equal(ca.grid.mask, cb.grid.mask)
    pd.testing.assert_frame_equal(cohort_store.runs_table(a), cohort_store.runs_table(b))
    for key in ca:
        np.testing.assert_array_equal(cohort_store.read_bold(a, key), cohort_store.read_bold(b, key))
        np.testing.assert_array_equal(cohort_store.read_valid(a, key), cohort_store.read_valid(b, key))
        table_a, meta_a = cohort_store.read_confounds(a, key)
        table_b, meta_b = cohort_store.read_confounds(b, key)
        pd.testing.assert_frame_equal(table_a, table_b)
        assert meta_a == meta_b


def test_memory_store(tiny_derivatives, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"memory://brainxr-test-{os.getpid()}/cohort.zarr"
    report = brainxr.ingest(tiny_derivatives, url, progress=False, client=False)
    assert report.store == url and len(report.ingested) == 3
    brainxr.ingest(tiny_derivatives, tmp_path / "local.zarr", progress=False, client=False)
    _same_store_contents(url, tmp_path / "local.zarr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["derivatives", "local.zarr"]  # nothing else written locally
    assert brainxr.verify(url, progress=False, client=False).ok


# ---------------------------------------------------------------------------
# A real S3 API


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from brainxr.datasets import make_synthetic_cohort

    root = tmp_path_factory.mktemp("object-store")
    return make_synthetic_cohort(root / "derivatives", n_subjects=3, n_volumes=40, resolution=6, n_regions=20,
                                 seed=5)


def _upload(s3, folder, prefix="derivatives"):
    s3.fs.put(str(folder), f"{s3.bucket}/{prefix}", recursive=True)
    return f"{s3.url}/{prefix}"


def _pipeline(store, synthetic):
    """Region signals (cleaned with the run's confounds) and their correlations, computed."""
    from brainxr.regions import load_labels_atlas

    cohort = brainxr.open_cohort(store)
    atlas = load_labels_atlas(synthetic.atlas_labels_img, lut=synthetic.atlas_labels_tsv)
    signals = cohort.extract(atlas, confounds_strategy="simple", clean=CLEAN).compute()
    return signals, brainxr.connectivity(signals, kind="correlation")


@pytest.mark.integration
def test_s3_sources_and_store_equal_local_files(s3, synthetic, tmp_path):
    source = _upload(s3, synthetic.root)
    from brainxr.bids import find_fmriprep_runs

    runs = find_fmriprep_runs(source)
    assert [run.key for run in runs] == ["sub-01_task-rest", "sub-02_task-rest", "sub-03_task-rest"]
    assert str(runs[0].confounds).startswith(f"{s3.url}/derivatives/sub-01/") and runs[0].brain_mask is not None
    store = f"{s3.url}/cohort.zarr"
    report = brainxr.ingest(source, store, progress=False, client=False)
    assert report.store == store and len(report.ingested) == 3
    assert report.results[0].attrs["source"]["url"].startswith(f"{s3.url}/derivatives/")
    brainxr.ingest(synthetic.root, tmp_path / "local.zarr", progress=False, client=False)
    _same_store_contents(store, tmp_path / "local.zarr")
    # the same checksums of the sources, streamed from S3
    remote, local = cohort_store.read_store(store).runs, cohort_store.read_store(tmp_path / "local.zarr").runs
    for key in local:
        assert remote[key]["source"]["sha256"] == local[key]["source"]["sha256"]
        assert remote[key]["confounds_source"]["sha256"] == local[key]["confounds_source"]["sha256"]
    # a second ingest skips everything; verify reads every chunk back
    assert len(brainxr.ingest(source, store, progress=False, client=False).skipped) == 3
    assert brainxr.verify(store, progress=False, client=False).ok
    # extract + clean + connectivity on threads: identical to local files
    remote_results, local_results = _pipeline(store, synthetic), _pipeline(tmp_path / "local.zarr", synthetic)
    for ours, theirs in zip(remote_results, local_results):
        xr.testing.assert_identical(ours, theirs)
    # connectomes written back into each store and read again
    from brainxr.connectome import open_connectomes, write_connectomes

    write_connectomes(remote_results[1], store, "correlation", progress=False)
    write_connectomes(local_results[1], tmp_path / "local.zarr", "correlation", progress=False)
    xr.testing.assert_identical(open_connectomes(store, "correlation").compute(),
                                open_connectomes(tmp_path / "local.zarr", "correlation").compute())
    assert s3.fs.exists(f"{s3.bucket}/cohort.zarr/derivatives/connectome/correlation/correlation/zarr.json")
    # the report of a store at a URL is written in the working directory
    report = subprocess.run([sys.executable, "-m", "brainxr", "report", store, "--quiet"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort.report.html", "local.zarr"]


@pytest.mark.distributed
@pytest.mark.slow
def test_workers_in_another_directory_read_s3_and_relative_local_stores(s3, synthetic, tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed")
    source = _upload(s3, synthetic.root)
    client_dir, worker_dir = tmp_path / "client", tmp_path / "workers"
    client_dir.mkdir(), worker_dir.mkdir()
    monkeypatch.chdir(worker_dir)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        monkeypatch.chdir(client_dir)
        assert set(client.run(os.getcwd).values()) == {str(worker_dir)}
        store = f"{s3.url}/cohort.zarr"
        assert len(brainxr.ingest(source, store, progress=False, client=client).ingested) == 3
        # a local store named relative to the client's directory: the workers are elsewhere
        assert len(brainxr.ingest(os.path.relpath(synthetic.root), "local.zarr", progress=False,
                                  client=client).ingested) == 3
        assert not (worker_dir / "local.zarr").exists()
        on_cluster = _pipeline(store, synthetic)
        local_on_cluster = _pipeline("local.zarr", synthetic)
    threads = _pipeline(client_dir / "local.zarr", synthetic)
    for ours, cluster_local, reference in zip(on_cluster, local_on_cluster, threads):
        xr.testing.assert_identical(ours, reference)
        xr.testing.assert_identical(cluster_local, reference)


_KILLABLE_S3_INGEST = textwrap.dedent(
    """
    import sys, time
    import brainxr.store as store
    write = store.write_bold_chunk
    def slow_write(bold, start, values):
        write(bold, start, values)
        sys.stdout.write(f"chunk {bold.path}\\n")  # one write: a run's chunks are written by two threads
        sys.stdout.flush()
        time.sleep(0.5)
    store.write_bold_chunk = slow_write
    import brainxr
    brainxr.ingest(sys.argv[1], sys.argv[2], n_workers=1, voxel_chunk_mb=0.02, progress=False, client=False)
    """
)


@pytest.mark.integration
def test_a_killed_ingest_resumes_on_s3(s3, tmp_path):
    local = tmp_path / "derivatives"
    for n in range(3):
        write_tiny_run(local, f"{n + 1:02d}", seed=n)
    source = _upload(s3, local)
    store = f"{s3.url}/killed.zarr"
    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE_S3_INGEST, source, store], stdout=subprocess.PIPE,
                            text=True, env=dict(os.environ))
    started, chunks_of_current = [], 0
    for line in proc.stdout:
        run = line.split()[1].split("/")[1]
        if run not in started:
            started.append(run)
            chunks_of_current = 0
        chunks_of_current += 1
        if len(started) == 2 and chunks_of_current >= 2:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished, interrupted = started
    cohort = brainxr.open_cohort(store)
    assert list(cohort) == [finished] and cohort.incomplete == [interrupted]
    assert cohort_store.read_index(store) == {}  # killed before its first index batch: found by the listing
    s3.fs.rm(f"{s3.bucket}/killed.zarr/locks", recursive=True)  # a killed process's locks (stale on this host)
    report = brainxr.ingest(source, store, progress=False, client=False)
    assert report.skipped == [finished] and len(report.ingested) == 2
    assert sorted(cohort_store.read_index(store)) == sorted(brainxr.open_cohort(store))
    brainxr.ingest(local, tmp_path / "clean.zarr", voxel_chunk_mb=0.02, progress=False, client=False)
    _same_store_contents(store, tmp_path / "clean.zarr")


def test_a_stale_lock_of_a_killed_ingest_on_s3_is_broken(s3, tmp_path):
    local = tmp_path / "derivatives"
    write_tiny_run(local, "01")
    source = _upload(s3, local)
    store = f"{s3.url}/c.zarr"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket
    import time

    s3.fs.pipe(f"{s3.bucket}/c.zarr/locks/runs/sub-01_task-rest.lock", json.dumps(
        {"host": socket.gethostname(), "pid": int(dead.stdout), "started": time.time(), "heartbeat": time.time(),
         "token": "x"}).encode())
    report = brainxr.ingest(source, store, progress=False, client=False)
    assert report.ingested == ["sub-01_task-rest"]
    assert not s3.fs.exists(f"{s3.bucket}/c.zarr/locks/runs/sub-01_task-rest.lock")


def test_s3_errors_name_the_url(s3, tmp_path, monkeypatch):
    local = tmp_path / "derivatives"
    bold = write_tiny_run(local, "01")
    source = _upload(s3, local)
    store = f"{s3.url}/c.zarr"
    # a missing object: that run fails, naming its URL
    missing = f"{s3.url}/derivatives/sub-09/func/sub-09_task-rest_desc-preproc_bold.nii.gz"
    present = f"{source}/{bold.relative_to(local)}"
    with pytest.raises(IngestError) as caught:
        brainxr.ingest([present, missing], store, progress=False, client=False)
    assert list(caught.value.failures) == ["sub-09_task-rest"]
    assert f"{missing}: file not found" in str(caught.value.failures["sub-09_task-rest"])
    # a store that does not exist
    with pytest.raises(brainxr.errors.StoreError, match=f"{s3.url}/nothing.zarr: not a brainxr cohort store"):
        brainxr.open_cohort(f"{s3.url}/nothing.zarr")
    # a bucket that does not exist
    for call in (lambda: brainxr.open_cohort("s3://no-such-bucket-brainxr/c.zarr"),
                 lambda: brainxr.ingest(source, "s3://no-such-bucket-brainxr/c.zarr", progress=False, client=False),
                 lambda: brainxr.ingest("s3://no-such-bucket-brainxr/derivatives", store, progress=False)):
        with pytest.raises(LocationError, match="s3://no-such-bucket-brainxr/.*: the bucket does not exist"):
            call()
    # no credentials anywhere
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(LocationError, match=f"{store}: no credentials: set AWS_ACCESS_KEY_ID"):
        brainxr.open_cohort(store, storage_options={"skip_instance_cache": True})


@pytest.mark.integration
def test_opening_a_large_store_on_s3_takes_a_few_requests(s3, tmp_path):
    local = tmp_path / "derivatives"
    write_tiny_run(local, "01")
    store = f"{s3.url}/big.zarr"
    brainxr.ingest(local, store, progress=False, client=False)
    # 2,500 more complete runs (metadata only), indexed
    meta = json.loads(s3.fs.cat(f"{s3.bucket}/big.zarr/runs/sub-01_task-rest/zarr.json"))
    added = {}
    for n in range(2_500):
        key = f"sub-{n:05d}_task-big"
        added[key] = dict(meta["attributes"], entities={"sub": f"{n:05d}", "task": "big"})
    s3.fs.pipe({f"{s3.bucket}/big.zarr/runs/{key}/zarr.json": json.dumps(dict(meta, attributes=attrs)).encode()
                for key, attrs in added.items()})
    cohort_store.update_index(store, add=added)
    s3.server.reset_requests()
    cohort = brainxr.open_cohort(store, storage_options={"skip_instance_cache": True})
    requests = list(s3.server.requests)
    assert len(cohort) == 2_501
    gets = [path for method, path, _ in requests if method in ("GET", "HEAD") and "list-type" not in _]
    lists = [query for method, _, query in requests if "list-type" in query]
    assert not any("/runs/" in path for path in gets), gets  # nothing read per run
    assert len(lists) <= 3 + 1  # one listing of runs/ (1,000 names a page)
    assert len(requests) <= 12, requests



def test_a_remote_source_is_read_once_front_to_back(s3, tmp_path, monkeypatch):
    """Ingest streams a remote .nii.gz once, front to back (checksum and volumes in one pass); its header reads
    fetch a bounded prefix whatever the file's size (today three of 576 KiB a run: read_layout's)."""
    import s3fs

    local = tmp_path / "derivatives"
    for n in range(2):
        write_tiny_run(local, f"{n + 1:02d}", seed=n, n_volumes=400)  # 5.7 MB files
    source = _upload(s3, local)
    fetched = {}
    fetch = s3fs.core.S3File._fetch_range

    def counting(self, start, end):
        fetched.setdefault(self.path, []).append((start, end))
        return fetch(self, start, end)

    monkeypatch.setattr(s3fs.core.S3File, "_fetch_range", counting)
    brainxr.ingest(source, tmp_path / "c.zarr", n_workers=1, progress=False, client=False)
    bolds = [path for path in fetched if path.endswith("_desc-preproc_bold.nii.gz")]
    assert len(bolds) == 2
    for path in bolds:
        size, ranges = s3.fs.size(path), fetched[path]
        last_start = max(i for i, (start, _) in enumerate(ranges) if start == 0)
        headers, stream = ranges[:last_start], ranges[last_start:]
        assert all(end - start <= 2**20 for start, end in headers), (size, ranges)
        assert len(headers) <= 3, ranges
        # the stream: contiguous, front to back, each byte once, to the end
        assert all(a[1] == b[0] for a, b in zip(stream, stream[1:])) and stream[-1][1] >= size, (size, ranges)
        assert sum(end - start for start, end in stream) <= size + 2**23, (size, ranges)
