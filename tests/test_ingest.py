"""Ingest into the Zarr cohort store: content, idempotence, resumption after a kill, bad input."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import zarr

import brainxr
from brainxr import store as cohort_store
from brainxr.errors import IngestError, InputFileError, StoreError
from conftest import TINY_AFFINE, write_tiny_run


def _masked(bold_path, mask):
    return nib.load(str(bold_path)).get_fdata(dtype=np.float32)[mask].T


def test_ingest_folder_stores_runs_exactly(tiny_derivatives, tmp_path):
    report = brainxr.ingest(tiny_derivatives, tmp_path / "c.zarr", progress=False)
    assert sorted(report.ingested) == ["sub-01_task-rest", "sub-02_task-rest", "sub-03_task-rest"]
    cohort = brainxr.open_cohort(tmp_path / "c.zarr")
    assert list(cohort) == report.ingested
    mask = cohort.grid.mask
    # the cohort mask is the union of the runs' fMRIPrep brain masks
    brain_mask = nib.load(str(next(tiny_derivatives.rglob("sub-01*brain_mask.nii.gz")))).get_fdata() > 0
    np.testing.assert_array_equal(mask, brain_mask)
    for key in cohort:
        ds = cohort[key]
        sub = ds.attrs["entities"]["sub"]
        bold_path = next(tiny_derivatives.rglob(f"sub-{sub}_*preproc_bold.nii.gz"))
        np.testing.assert_array_equal(ds["bold"].values, _masked(bold_path, mask))
        table = pd.read_csv(next(tiny_derivatives.rglob(f"sub-{sub}_*confounds_timeseries.tsv")), sep="\t")
        np.testing.assert_array_equal(ds["confounds"].values, table.to_numpy())
        assert list(ds["confound"].values) == list(table.columns)
        assert ds.attrs["t_r"] == 2.0 and ds["bold"].brain.t_r == 2.0
        assert ds.attrs["source"]["sha256"] == hashlib.sha256(bold_path.read_bytes()).hexdigest()
        assert cohort_store.read_confounds(tmp_path / "c.zarr", key)[1] == {"csf": {"Method": "Mean"}}
        assert ds["valid"].values.all()
        # all of time in one chunk
        assert ds["bold"].chunks[0] == (30,)


def test_voxel_chunks_follow_the_requested_size(tiny_derivatives, tmp_path):
    brainxr.ingest(tiny_derivatives, tmp_path / "c.zarr", voxel_chunk_mb=0.05, progress=False)
    bold = zarr.open_group(str(tmp_path / "c.zarr"), mode="r")["runs/sub-01_task-rest/bold"]
    assert bold.chunks == (30, int(0.05 * 2**20 // (4 * 30)))


def test_second_ingest_skips_completed_runs_and_touches_nothing(tiny_derivatives, tmp_path):
    store = tmp_path / "c.zarr"
    brainxr.ingest(tiny_derivatives, store, progress=False)
    before = {p: p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file()}
    report = brainxr.ingest(tiny_derivatives, store, progress=False)
    assert report.ingested == [] and len(report.skipped) == 3
    after = {p: p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file()}
    assert before == after
    # a new run joins the existing store
    write_tiny_run(tiny_derivatives, "04", seed=4)
    report = brainxr.ingest(tiny_derivatives, store, progress=False)
    assert report.ingested == ["sub-04_task-rest"]
    assert len(brainxr.open_cohort(store)) == 4


def test_ingest_explicit_pairs(tiny_derivatives, tmp_path):
    pairs = [
        (p, next(p.parent.glob("*confounds_timeseries.tsv")))
        for p in sorted(tiny_derivatives.rglob("*preproc_bold.nii.gz"))
    ]
    report = brainxr.ingest(pairs[:2], tmp_path / "pairs.zarr", progress=False)
    assert report.ingested == ["sub-01_task-rest", "sub-02_task-rest"]
    cohort = brainxr.open_cohort(tmp_path / "pairs.zarr")
    assert cohort["sub-02_task-rest"]["confounds"].shape == (30, 4)


_KILLABLE_INGEST = textwrap.dedent(
    """
    import sys, time
    import brainxr.store as store
    write = store.write_bold_chunk
    def slow_write(bold, start, values):
        write(bold, start, values)
        sys.stdout.write(f"chunk {bold.path} {start}\\n")  # one write: a run's chunks are written by two threads
        sys.stdout.flush()
        time.sleep(0.4)
    store.write_bold_chunk = slow_write
    import brainxr
    brainxr.ingest(sys.argv[1], sys.argv[2], n_workers=1, voxel_chunk_mb=0.02, progress=False)
    """
)


@pytest.mark.integration
def test_killed_ingest_resumes_to_the_same_store(tiny_derivatives, tmp_path):
    store = tmp_path / "killed.zarr"
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLABLE_INGEST, str(tiny_derivatives), str(store)],
        stdout=subprocess.PIPE, text=True,
    )
    # wait until the first run is complete and the second is half written, then kill -9
    started = []  # runs in the order their chunks were written
    chunks_of_current = 0
    for line in proc.stdout:
        run = line.split()[1].split("/")[1]
        if run not in started:
            started.append(run)
            chunks_of_current = 0
        chunks_of_current += 1
        if len(started) == 2 and chunks_of_current >= 2:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished, interrupted = started

    cohort = brainxr.open_cohort(store)
    assert list(cohort) == [finished]  # the half-written run is not seen as complete
    assert cohort.incomplete == [interrupted]
    first_run_files = {p: p.read_bytes() for p in (store / "runs" / finished).rglob("*") if p.is_file()}

    report = brainxr.ingest(tiny_derivatives, store, progress=False)
    assert report.skipped == [finished]
    assert sorted(report.ingested) == sorted({"sub-01_task-rest", "sub-02_task-rest", "sub-03_task-rest"} - {finished})
    # the completed run was not touched
    assert first_run_files == {p: p.read_bytes() for p in (store / "runs" / finished).rglob("*") if p.is_file()}

    clean = tmp_path / "clean.zarr"
    brainxr.ingest(tiny_derivatives, clean, progress=False, voxel_chunk_mb=0.02)
    resumed, reference = brainxr.open_cohort(store), brainxr.open_cohort(clean)
    assert list(resumed) == list(reference)
    for key in reference:
        a, b = resumed[key], reference[key]
        for name in ("bold", "confounds", "valid"):
            np.testing.assert_array_equal(a[name].values, b[name].values)
        keep = lambda attrs: {k: v for k, v in attrs.items() if k not in ("ingested_at", "affine")}  # noqa: E731
        assert keep(a.attrs) == keep(b.attrs)
        np.testing.assert_array_equal(a["bold"].brain.affine, b["bold"].brain.affine)


def _bad_input_tree(root):
    """Three good runs and one of each kind of bad input."""
    for n, sub in enumerate(["01", "02", "03"]):
        write_tiny_run(root, sub, seed=n)
    # truncated gzip
    bad = write_tiny_run(root, "04", seed=4)
    payload = bad.read_bytes()
    bad.write_bytes(payload[: len(payload) * 2 // 3])
    # a 3D image
    three_d = write_tiny_run(root, "05", seed=5)
    nib.save(nib.Nifti1Image(np.ones((20, 24, 20), np.float32), TINY_AFFINE), str(three_d))
    # confounds shorter than the image
    short = write_tiny_run(root, "06", seed=6)
    tsv = next(short.parent.glob("*confounds_timeseries.tsv"))
    pd.read_csv(tsv, sep="\t").iloc[:20].to_csv(tsv, sep="\t", index=False, na_rep="n/a")
    # no repetition time anywhere
    no_tr = write_tiny_run(root, "07", seed=7, sidecar=False)
    img = nib.load(str(no_tr))
    img = nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine)
    img.header.set_xyzt_units("mm", "unknown")
    nib.save(img, str(no_tr))
    # off the cohort grid
    write_tiny_run(root, "08", seed=8, affine=TINY_AFFINE @ np.diag([1.0, 1.0, 1.2, 1.0]), brain_mask=False)
    return root


def test_bad_runs_fail_alone_and_are_reported_at_the_end(tmp_path):
    root = _bad_input_tree(tmp_path / "derivatives")
    with pytest.raises(IngestError) as caught:
        brainxr.ingest(root, tmp_path / "c.zarr", progress=False)
    failures = caught.value.failures
    assert sorted(failures) == [f"sub-0{n}_task-rest" for n in range(4, 9)]
    messages = {key: str(err) for key, err in failures.items()}
    assert "sub-04" in messages["sub-04_task-rest"] and "truncated" in messages["sub-04_task-rest"]
    assert "4D" in messages["sub-05_task-rest"] and "3D image" in messages["sub-05_task-rest"]
    assert "confounds_timeseries.tsv" in messages["sub-06_task-rest"] and "20 rows" in messages["sub-06_task-rest"]
    assert "sub-07" in messages["sub-07_task-rest"] and "repetition time" in messages["sub-07_task-rest"]
    assert "sub-08" in messages["sub-08_task-rest"] and "not on the cohort grid" in messages["sub-08_task-rest"]
    assert all(isinstance(err, InputFileError) for err in failures.values())
    # the good runs completed, the bad ones left nothing behind that looks complete
    cohort = brainxr.open_cohort(tmp_path / "c.zarr")
    assert list(cohort) == ["sub-01_task-rest", "sub-02_task-rest", "sub-03_task-rest"]
    report = caught.value.report
    assert len(report.ingested) == 3 and "FAILED sub-04_task-rest" in str(report)
    # on_error="return" reports without raising; the good runs are skipped this time
    report = brainxr.ingest(root, tmp_path / "c.zarr", progress=False, on_error="return")
    assert len(report.skipped) == 3 and len(report.failed) == 5


def test_nan_voxels_are_repaired_and_excluded(tmp_path):
    root = tmp_path / "derivatives"
    bold = write_tiny_run(root, "01")
    img = nib.load(str(bold))
    data = img.get_fdata(dtype=np.float32)
    data[10, 12, 10, 5] = np.nan
    data[11, 12, 10, :] = np.inf
    out = nib.Nifti1Image(data, img.affine, img.header)
    nib.save(out, str(bold))
    with pytest.warns(UserWarning, match="2 voxels had NaN/Inf"):
        brainxr.ingest(root, tmp_path / "c.zarr", progress=False)
    ds = brainxr.open_cohort(tmp_path / "c.zarr")["sub-01_task-rest"]
    bad = ((ds["i"] == 10) & (ds["j"] == 12) & (ds["k"] == 10)) | ((ds["i"] == 11) & (ds["j"] == 12) & (ds["k"] == 10))
    assert not ds["valid"].values[bad.values].any()
    assert ds["valid"].values.sum() == bad.size - 2
    assert np.isfinite(ds["bold"].values).all()
    assert ds.attrs["n_nonfinite_voxels"] == 2


def test_store_from_a_newer_version_is_refused(tiny_derivatives, tmp_path):
    store = tmp_path / "c.zarr"
    brainxr.ingest(tiny_derivatives, store, progress=False)
    meta = json.loads((store / "zarr.json").read_text())
    meta["attributes"]["brainxr_format"] = 99
    (store / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="c.zarr: written by a newer brainxr .store format 99"):
        brainxr.open_cohort(store)
    with pytest.raises(StoreError, match="newer brainxr"):
        brainxr.ingest(tiny_derivatives, store, progress=False)


def test_ingest_memory_stays_near_one_masked_run(tmp_path):
    import tracemalloc

    root = tmp_path / "derivatives"
    write_tiny_run(root, "01", n_volumes=120, shape=(30, 36, 30))
    masked_bytes = (24 * 30 * 26) * 120 * 4
    full_float64_bytes = 30 * 36 * 30 * 120 * 8
    brainxr.ingest(root, tmp_path / "warm-up.zarr", progress=False)  # imports are not the run's memory
    tracemalloc.start()
    brainxr.ingest(root, tmp_path / "c.zarr", progress=False, n_workers=1, block_size=4, voxel_chunk_mb=2)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # the run's buffer, plus the 2 MiB chunks being written (two at a time, each raw, compressed and checksummed),
    # plus a block of volumes
    chunks_in_flight = 2
    assert peak < masked_bytes + chunks_in_flight * 3 * 2 * 2**20 + 4 * 30 * 36 * 30 * 4 * 2
    assert peak < full_float64_bytes  # never even one float64 copy of the run


@pytest.mark.distributed
@pytest.mark.slow
def test_ingest_and_compute_on_a_distributed_cluster(tiny_derivatives, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=40) as cluster, \
            distributed.Client(cluster) as client:
        report = brainxr.ingest(tiny_derivatives, tmp_path / "c.zarr", client=client, progress=False)
        assert len(report.ingested) == 3
        cohort = brainxr.open_cohort(tmp_path / "c.zarr")
        # a small cohort computation: the global signal of each run, on the cluster
        means = {key: cohort.bold(key).mean("voxel") for key in cohort}
        computed = client.compute(list(means.values()), sync=True)
    for key, value in zip(means, computed):
        bold_path = next(tiny_derivatives.rglob(f"{key.split('_')[0]}_*preproc_bold.nii.gz"))
        np.testing.assert_allclose(value.values, _masked(bold_path, cohort.grid.mask).mean(axis=1), rtol=1e-5)


def test_off_grid_runs_are_resampled_on_request(tmp_path):
    from nilearn.image import resample_img

    root = tmp_path / "derivatives"
    write_tiny_run(root, "01", seed=1)
    shifted = TINY_AFFINE.copy()
    shifted[:3, 3] += [2.0, -2.0, 1.0]  # half a voxel off the cohort grid
    off = write_tiny_run(root, "02", seed=2, affine=shifted)
    with pytest.raises(IngestError, match="(?s)not on the cohort grid.*resample="):
        brainxr.ingest(root, tmp_path / "refused.zarr", mask=next(root.rglob("sub-01*brain_mask.nii.gz")), progress=False)
    report = brainxr.ingest(root, tmp_path / "c.zarr", mask=next(root.rglob("sub-01*brain_mask.nii.gz")),
                            resample="linear", progress=False)
    assert sorted(report.ingested) == ["sub-01_task-rest", "sub-02_task-rest"]
    cohort = brainxr.open_cohort(tmp_path / "c.zarr")
    ds = cohort["sub-02_task-rest"]
    assert ds.attrs["resampled"] == "linear"
    expected = resample_img(str(off), target_affine=TINY_AFFINE, target_shape=cohort.grid.shape,
                            interpolation="linear", force_resample=True, copy_header=True).get_fdata()
    np.testing.assert_allclose(ds["bold"].values, expected[cohort.grid.mask].T, rtol=1e-5, atol=1e-3)


def test_region_signals_while_ingesting_equal_the_extraction_from_the_store(tmp_path):
    """ingest(regions=..., on_result=...) reduces each run's voxels in memory to the raw region signals and coverage
    that Cohort.extract computes from the stored run (labels, maps, spheres; several voxel chunks), and the report
    keeps none of them."""
    from brainxr.datasets import make_synthetic_cohort
    from brainxr.regions import Spheres, load_labels_atlas, load_maps_atlas

    cohort = make_synthetic_cohort(tmp_path / "fmriprep", n_subjects=3, n_volumes=40, resolution=6, n_regions=20,
                                   n_maps=6, seed=5)
    bold_path = sorted(cohort.root.rglob("*_desc-preproc_bold.nii.gz"))[0]
    image = nib.load(bold_path)
    values = np.asarray(image.dataobj, dtype=np.float32)
    inside = np.argwhere(np.asarray(nib.load(cohort.atlas_labels_img).dataobj) > 0)[:30]
    values[inside[:, 0], inside[:, 1], inside[:, 2], 7] = np.nan  # voxels of regions: zeroed, invalid
    nib.save(nib.Nifti1Image(values, image.affine, image.header), bold_path)
    labels = load_labels_atlas(cohort.atlas_labels_img)
    atlases = [labels, load_maps_atlas(cohort.atlas_maps_img),
               Spheres(labels.regions[["x", "y", "z"]].to_numpy(float)[:5], radius=8.0, allow_overlap=True)]
    received = {}
    store = tmp_path / "cohort.zarr"
    with pytest.warns(UserWarning, match="NaN/Inf"):
        report = brainxr.ingest(cohort.root, store, regions=atlases, voxel_chunk_mb=0.05, progress=False,
                                on_result=lambda result: received.update({result.key: result.region_signals}))
    assert sorted(received) == sorted(report.ingested) and len(received) == 3
    assert all(result.region_signals is None for result in report.results)
    stored = brainxr.open_cohort(store)
    assert len(range(0, stored.grid.n_voxels, stored.voxel_chunk)) > 1
    for position, atlas in enumerate(atlases):
        expected = stored.extract(atlas).compute()
        for key, per_atlas in received.items():
            signals, run = per_atlas[position], expected.sel(run=key)
            np.testing.assert_allclose(signals.values, run.values[: signals.sizes["time"]], rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(signals["coverage"].values, run["coverage"].values, rtol=1e-12)
            assert list(signals["region"].values) == list(run["region"].values)
            np.testing.assert_array_equal(signals["x"].values, run["x"].values)
