"""The cohort engine: stacked runs, extraction and cleaning over (run chunk, voxel chunk) blocks.

Every result is compared with the per-run computation (one run opened as a
Dataset, extracted and cleaned on numpy), on several chunkings of the runs,
and its graph is checked to build without reading anything.
"""

import json
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import brainxr
from brainxr import store as cohort_store
from brainxr.interfaces.fmriprep import clean_run
from brainxr.regions import Spheres, load_labels_atlas, load_maps_atlas
from brainxr.testing import raise_if_dask_computes, replicate_cohort
from conftest import write_tiny_run

CLEAN = {"detrend": True, "standardize": "zscore_sample", "low_pass": 0.08, "high_pass": 0.009}


@pytest.fixture(scope="module")
def synthetic_store(small_synthetic, tmp_path_factory):
    """The small synthetic cohort (3 runs, 6 mm, 80 volumes) stored in 6 voxel chunks."""
    synthetic, _ = small_synthetic
    store = tmp_path_factory.mktemp("engine") / "cohort.zarr"
    brainxr.ingest(synthetic.root, store, voxel_chunk_mb=0.5, progress=False)
    return synthetic, store


@pytest.fixture(scope="module")
def ragged_store(tmp_path_factory):
    """Five tiny runs of 20 to 24 volumes in 9 voxel chunks."""
    root = tmp_path_factory.mktemp("ragged")
    for n in range(5):
        write_tiny_run(root / "derivatives", f"{n + 1:02d}", seed=n, n_volumes=20 + n)
    brainxr.ingest(root / "derivatives", root / "c.zarr", voxel_chunk_mb=0.05, progress=False)
    return root / "c.zarr"


def per_run(cohort, key, regions, strategy="mean", confounds_strategy=None, clean=None, min_coverage=None):
    """The reference: one run opened on its own, extracted and cleaned on numpy."""
    run = cohort[key].load()
    signals = brainxr.regions.extract(run, regions, strategy=strategy, min_coverage=min_coverage)
    if clean is None:
        return signals
    if confounds_strategy is None:
        return brainxr.signal.clean(signals, t_r=run.attrs["t_r"], **clean)
    _, metadata = cohort_store.read_confounds(cohort.path, key)
    return clean_run(signals, run["confounds"], metadata, confounds_strategy, t_r=run.attrs["t_r"], **clean)


def assert_run_equals(signals, key, expected, atol=1e-8):
    ours = signals.sel(run=key)
    n = int(ours["n_volumes"])
    assert n == expected.sizes["time"]
    np.testing.assert_allclose(ours.values[:n], expected.values, rtol=1e-7, atol=atol)
    assert np.isnan(ours.values[n:]).all()
    np.testing.assert_allclose(ours["onset"].values[:n], expected["time"].values)
    np.testing.assert_allclose(ours["coverage"].values, expected["coverage"].values, equal_nan=True)
    assert list(ours["region"].values) == list(expected["region"].values)


def _regions(synthetic, kind):
    if kind == "labels":
        return load_labels_atlas(synthetic.atlas_labels_img, lut=synthetic.atlas_labels_tsv)
    if kind == "maps":
        return load_maps_atlas(synthetic.atlas_maps_img)
    coords = pd.read_csv(synthetic.atlas_coords_tsv, sep="\t")[["x", "y", "z"]].to_numpy()[:12]
    return Spheres(coords, radius=8)


@pytest.mark.parametrize("kind, strategy, confounds_strategy", [
    ("labels", "mean", "simple"),
    ("labels", "median", None),
    ("labels", "sum", "scrubbing"),
    ("maps", "mean", "simple"),
    ("spheres", "mean", "scrubbing"),
])
def test_extraction_equals_per_run_computation(synthetic_store, kind, strategy, confounds_strategy):
    synthetic, store = synthetic_store
    cohort = brainxr.open_cohort(store, runs_per_chunk=2)
    regions = _regions(synthetic, kind)
    clean = CLEAN if confounds_strategy else None
    with raise_if_dask_computes():
        signals = cohort.extract(regions, strategy, confounds_strategy=confounds_strategy, clean=clean)
    assert signals.name == "signals" and signals.dims == ("run", "time", "region")
    assert signals.data.name.startswith("region-signals-")
    assert cohort.blocks.run_chunks == (2, 1) and len(cohort.blocks.voxel_slices) == 6
    signals = signals.compute()
    for key in cohort:
        assert_run_equals(signals, key, per_run(cohort, key, regions, strategy, confounds_strategy, clean))


def test_ragged_runs_and_minimum_coverage(ragged_store):
    cohort = brainxr.open_cohort(ragged_store, runs_per_chunk=2)
    atlas = load_labels_atlas(_tiny_atlas())
    clean = {"detrend": True, "standardize": "zscore_sample", "high_pass": 0.01}
    signals = cohort.extract(atlas, confounds_strategy=["high_pass", "wm_csf"], clean=clean, min_coverage=0.5).compute()
    assert signals.sizes["time"] == 24
    np.testing.assert_array_equal(signals["n_volumes"].values, [20, 21, 22, 23, 24])
    for key in cohort:
        expected = per_run(cohort, key, atlas, "mean", ["high_pass", "wm_csf"], clean, min_coverage=0.5)
        assert_run_equals(signals, key, expected)
    assert np.isnan(signals.sel(region="outside").values).all()  # below min_coverage in every run


def _tiny_atlas():
    import nibabel as nib

    from conftest import TINY_AFFINE

    values = np.zeros((20, 24, 20), dtype=np.int16)
    values[3:10, 3:12, 2:10] = 1
    values[10:17, 3:12, 2:10] = 2
    values[3:17, 12:21, 2:18] = 3
    values[0:3, 0:3, 0:2] = 4  # outside every run's brain mask
    img = nib.Nifti1Image(values, TINY_AFFINE)
    return load_labels_atlas(img, labels=["Background", "left", "right", "back", "outside"])


@pytest.mark.parametrize("runs_per_chunk", [1, 3])
def test_run_chunkings_give_identical_results(ragged_store, runs_per_chunk):
    atlas = _tiny_atlas()
    options = dict(confounds_strategy=["wm_csf"], clean={"standardize": "zscore_sample", "low_pass": 0.1})
    reference = brainxr.open_cohort(ragged_store).extract(atlas, **options).compute()
    chunked = brainxr.open_cohort(ragged_store, runs_per_chunk=runs_per_chunk).extract(atlas, **options)
    assert chunked.chunks[0] == brainxr.open_cohort(ragged_store, runs_per_chunk=runs_per_chunk).blocks.run_chunks
    xr.testing.assert_identical(chunked.compute(), reference)


def test_stacked_dataset_reads_the_runs(ragged_store):
    cohort = brainxr.open_cohort(ragged_store, runs_per_chunk=2)
    with raise_if_dask_computes():
        stacked = cohort.to_dataset()
    assert stacked["bold"].dims == ("run", "time", "voxel") and stacked["bold"].shape == (5, 24, cohort.grid.n_voxels)
    assert stacked["bold"].chunks[0] == (2, 2, 1)
    for key in ["sub-01_task-rest", "sub-04_task-rest"]:
        run = cohort[key]
        n = run.sizes["time"]
        np.testing.assert_array_equal(stacked["bold"].sel(run=key).values[:n], run["bold"].values)
        assert np.isnan(stacked["bold"].sel(run=key).values[n:]).all()
        np.testing.assert_array_equal(stacked["valid"].sel(run=key).values, run["valid"].values)
        np.testing.assert_allclose(stacked["onset"].sel(run=key).values[:n], run["time"].values)
    assert list(stacked["sub"].values) == ["01", "02", "03", "04", "05"]
    with raise_if_dask_computes():
        motion = cohort.to_dataset(confounds=["framewise_displacement", "csf", "rot_x"])["confounds"]
    assert motion.dims == ("run", "time", "confound") and list(motion["confound"].values)[1] == "csf"
    for key in ["sub-02_task-rest", "sub-05_task-rest"]:
        table = cohort.confounds(key)
        values = motion.sel(run=key).values
        np.testing.assert_array_equal(values[: len(table), :2], table[["framewise_displacement", "csf"]].to_numpy())
        assert np.isnan(values[len(table):]).all() and np.isnan(values[:, 2]).all()  # padding; no rot_x column
    assert "mean_fd" in stacked.coords  # the QC numbers of the runs index
    np.testing.assert_array_equal(stacked["n_volumes"].values, [20, 21, 22, 23, 24])


@pytest.mark.parametrize("standardize", ["zscore_sample", "psc"])
def test_clean_is_one_dataset_equal_to_per_run_cleaning(synthetic_store, standardize):
    synthetic, store = synthetic_store
    cohort = brainxr.open_cohort(store, runs_per_chunk=2)
    options = dict(CLEAN, standardize=standardize)
    with raise_if_dask_computes():
        cleaned = cohort.clean("scrubbing", **options)
    assert isinstance(cleaned, xr.Dataset) and cleaned["bold"].dims == ("run", "time", "voxel")
    assert json.loads(cleaned.attrs["confounds_strategy"])["name"] == "scrubbing"
    assert json.loads(cleaned.attrs["clean"])["standardize"] == standardize
    cleaned = cleaned.compute()
    for key in list(cohort)[:2]:
        run = cohort[key]
        _, metadata = cohort_store.read_confounds(store, key)
        expected = clean_run(run["bold"], run["confounds"], metadata, "scrubbing", t_r=run.attrs["t_r"], **options)
        ours = cleaned["bold"].sel(run=key)
        n = int(ours["n_volumes"])
        assert n == expected.sizes["time"]
        np.testing.assert_allclose(ours.values[:n], expected.values, rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(ours["onset"].values[:n], expected["time"].values)


def test_a_run_too_short_for_the_filter_is_named_or_skipped(tmp_path):
    root = tmp_path / "derivatives"
    for n, length in enumerate([40, 5, 40]):
        write_tiny_run(root, f"{n + 1:02d}", seed=n, n_volumes=length)
    brainxr.ingest(root, tmp_path / "c.zarr", progress=False)
    cohort = brainxr.open_cohort(tmp_path / "c.zarr")
    band_pass = {"low_pass": 0.1, "high_pass": 0.01}
    with pytest.raises(ValueError, match=r"1 run\(s\) cannot be processed: sub-02_task-rest: 5 volumes, too short "
                                         r"for the Butterworth filter"):
        cohort.extract(_tiny_atlas(), clean=band_pass)
    with pytest.warns(UserWarning, match="skipping 1 run"):
        signals = cohort.extract(_tiny_atlas(), clean=band_pass, on_error="skip")
    assert list(signals["run"].values) == ["sub-01_task-rest", "sub-03_task-rest"]
    assert list(json.loads(signals.attrs["skipped_runs"])) == ["sub-02_task-rest"]
    assert np.isfinite(signals.sel(region="left").values).all()


def test_a_run_failing_inside_its_task_is_named_or_reported(tmp_path):
    root = tmp_path / "derivatives"
    for n in range(3):
        write_tiny_run(root, f"{n + 1:02d}", seed=n)
    table = root / "sub-02" / "func" / "sub-02_task-rest_desc-confounds_timeseries.tsv"
    pd.read_csv(table, sep="\t").drop(columns=["csf"]).to_csv(table, sep="\t", index=False, na_rep="n/a")
    brainxr.ingest(root, tmp_path / "c.zarr", progress=False)
    cohort = brainxr.open_cohort(tmp_path / "c.zarr")
    with raise_if_dask_computes():  # the confounds are read by the tasks, not now
        signals = cohort.extract(_tiny_atlas(), confounds_strategy=["wm_csf"], clean={"standardize": "zscore_sample"})
    with pytest.raises(ValueError, match=r"run 'sub-02_task-rest': The confounds table lacks what this strategy "
                                         r"needs: wm_csf: csf"):
        signals.compute()
    signals = cohort.extract(_tiny_atlas(), confounds_strategy=["wm_csf"], clean={"standardize": "zscore_sample"},
                             on_error="skip").compute()
    errors = dict(zip(signals["run"].values, signals["error"].values))
    assert errors["sub-01_task-rest"] == errors["sub-03_task-rest"] == ""
    assert errors["sub-02_task-rest"].startswith("ValueError: The confounds table lacks")
    assert np.isnan(signals.sel(run="sub-02_task-rest").values).all()
    assert int(signals["n_volumes"].sel(run="sub-02_task-rest")) == 0
    assert np.isfinite(signals.sel(run="sub-01_task-rest", region="left").values).all()
    # connectivity and group means leave the failed run out
    from brainxr.connectome import connectivity, mean_connectome, tangent_space

    regions = signals.sel(region=["left", "right", "back"])
    correlations = connectivity(regions)
    assert np.isnan(correlations.sel(run="sub-02_task-rest").values).all()
    assert np.isfinite(mean_connectome(correlations).values).all()
    tangent = tangent_space(connectivity(regions.chunk({"run": 2}), kind="covariance"))
    assert tangent["mean"].attrs["n_runs"] == 2
    expected = tangent_space(connectivity(regions.sel(run=["sub-01_task-rest", "sub-03_task-rest"]), kind="covariance"))
    np.testing.assert_allclose(tangent["mean"].values, expected["mean"].values, rtol=1e-10)
    assert np.isnan(tangent["tangent"].sel(run="sub-02_task-rest").values).all()


def test_unknown_cleaning_parameter_suggests_the_closest(ragged_store):
    cohort = brainxr.open_cohort(ragged_store)
    with pytest.raises(TypeError, match=r"'standardise' \(accepted: runs, detrend, standardize, .*\); did you mean "
                                        r"'standardize'\?"):
        cohort.extract(_tiny_atlas(), clean={"standardise": "zscore_sample"})
    with pytest.raises(TypeError, match="did you mean 'low_pass'"):
        cohort.clean(["wm_csf"], lowpass=0.1)
    with pytest.raises(ValueError, match="on_error must be one of"):
        cohort.extract(_tiny_atlas(), on_error="ignore")
    with pytest.raises(ValueError, match="'confounds' comes from the cohort"):
        cohort.extract(_tiny_atlas(), clean={"confounds": np.zeros((20, 1))})


def test_provenance_travels_to_connectomes_and_the_store(ragged_store, tmp_path):
    from brainxr.connectome import connectivity, mean_connectome, open_connectomes, write_connectomes
    from brainxr.provenance import read_provenance

    cohort = brainxr.open_cohort(ragged_store)
    signals = cohort.extract(_tiny_atlas(), confounds_strategy=["wm_csf"], clean={"low_pass": 0.1})
    correlations = connectivity(signals.sel(region=["left", "right", "back"]))
    provenance = read_provenance(correlations.attrs)
    assert provenance["atlas"]["kind"] == "labels" and provenance["clean"]["low_pass"] == 0.1
    assert provenance["confounds_strategy"]["name"] == ["wm_csf"]
    assert read_provenance(mean_connectome(correlations).attrs) == provenance
    write_connectomes(correlations, tmp_path / "out.zarr", "correlation")
    assert read_provenance(open_connectomes(tmp_path / "out.zarr", "correlation").attrs) == provenance


def test_thousand_runs_build_without_reading_and_equal_per_run(small_synthetic, tmp_path):
    from brainxr.connectome import connectivity, mean_connectome, write_connectomes

    synthetic, store = small_synthetic
    replicate_cohort(store, tmp_path / "big.zarr", 1000)
    atlas = load_labels_atlas(synthetic.atlas_labels_img, lut=synthetic.atlas_labels_tsv)
    with raise_if_dask_computes():
        cohort = brainxr.open_cohort(tmp_path / "big.zarr", runs_per_chunk=50)
        signals = cohort.extract(atlas, confounds_strategy="simple", clean=CLEAN)
        correlation = connectivity(signals, kind="correlation")
        covariance = connectivity(signals, kind="covariance")
        group = mean_connectome(correlation)
        write = write_connectomes({"correlation": correlation, "covariance": covariance}, tmp_path / "out.zarr",
                                  "scale", compute=False)
    graph = write.__dask_graph__()
    n_chunks = 1000 // 50
    # tasks grow with the chunks of runs, not with the runs
    assert len(graph) < 40 * n_chunks, len(graph)
    assert len(group.__dask_graph__()) < 20 * n_chunks
    sampled = ["sub-000000_task-rest", "sub-000517_task-rest", "sub-000999_task-rest"]
    values = signals.sel(run=sampled).compute()
    for key in sampled:
        assert_run_equals(values, key, per_run(cohort, key, atlas, "mean", "simple", CLEAN))


@pytest.mark.distributed
def test_threads_and_worker_processes_give_identical_results(synthetic_store):
    from distributed import Client, LocalCluster

    from brainxr.connectome import connectivity, mean_connectome

    synthetic, store = synthetic_store
    cohort = brainxr.open_cohort(store, runs_per_chunk=2)
    atlas = load_labels_atlas(synthetic.atlas_labels_img, lut=synthetic.atlas_labels_tsv)
    signals = cohort.extract(atlas, confounds_strategy="scrubbing", clean=CLEAN, on_error="skip")
    correlations = connectivity(signals, kind="correlation")
    group = mean_connectome(correlations)
    with dask_config(scheduler="threads", num_workers=2):
        expected = [value.compute() for value in (signals, correlations, group)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # port in use, etc.
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster):
            computed = [value.compute() for value in (signals, correlations, group)]
    for ours, reference in zip(computed, expected):
        xr.testing.assert_identical(ours, reference)


def dask_config(**options):
    import dask

    return dask.config.set(**options)


MEMORY_SCRIPT = """
import json, os, sys
import numpy as np
from distributed import Client, LocalCluster
import brainxr
from brainxr.connectome import connectivity, mean_connectome, write_connectomes, open_connectomes
from brainxr.regions import load_labels_atlas

store, atlas, lut, limit = sys.argv[1:5]
def peak():
    with open("/proc/self/status") as status:
        return [int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM")][0]
cohort = brainxr.open_cohort(store)
bold_bytes = int(cohort.runs["n_volumes"].sum()) * cohort.grid.n_voxels * 4
with LocalCluster(n_workers=2, threads_per_worker=1, memory_limit=limit, dashboard_address=None) as cluster, \\
        Client(cluster) as client:
    pids = client.run(os.getpid)
    signals = cohort.extract(load_labels_atlas(atlas, lut=lut), confounds_strategy="simple",
                             clean={"low_pass": 0.08, "high_pass": 0.009})
    write_connectomes(connectivity(signals), store, "memory", mode="w")
    group = mean_connectome(open_connectomes(store, "memory")).compute()
    print(json.dumps({"bold_bytes": bold_bytes, "peaks": list(client.run(peak).values()),
                      "same_workers": client.run(os.getpid) == pids, "finite": bool(np.isfinite(group.values).all()),
                      "runs": len(cohort)}))
"""


@pytest.mark.slow
def test_workers_hold_a_cohort_larger_than_their_memory(small_synthetic, tmp_path):
    import subprocess
    import sys

    from dask.utils import parse_bytes

    synthetic, store = small_synthetic
    replicate_cohort(store, tmp_path / "big.zarr", 600)
    limit = "600MiB"
    completed = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(tmp_path / "big.zarr"), str(synthetic.atlas_labels_img),
         str(synthetic.atlas_labels_tsv), limit],
        capture_output=True, text=True, timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["runs"] == 600 and result["finite"] and result["same_workers"]
    assert result["bold_bytes"] > 2 * parse_bytes(limit)  # the cohort is larger than both workers together
    assert max(result["peaks"]) < parse_bytes(limit), result["peaks"]


def test_group_sparse_inputs_equal_nilearn_empirical_covariances(ragged_store):
    from nilearn.connectome.group_sparse_cov import empirical_covariances

    from brainxr.connectome import group_sparse_inputs

    cohort = brainxr.open_cohort(ragged_store, runs_per_chunk=2)
    signals = cohort.extract(_tiny_atlas(), confounds_strategy=["wm_csf"], clean={"low_pass": 0.1}).sel(
        region=["left", "right", "back"])
    with raise_if_dask_computes():
        inputs = group_sparse_inputs(signals)
    assert inputs["covariance"].chunks[0] == (2, 2, 1)
    inputs = inputs.compute()
    computed = signals.compute()
    runs = [computed.sel(run=key).values[: int(n)] for key, n in zip(computed["run"].values, computed["n_volumes"].values)]
    expected, n_samples = empirical_covariances(runs)
    np.testing.assert_allclose(inputs["covariance"].transpose("region", "region_", "run").values, expected,
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(inputs["n_samples"].values, n_samples)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
@pytest.mark.parametrize(("environment", "command", "tuned"), [
    ({"MALLOC_TRIM_THRESHOLD_": "65536"}, False, True),  # a dask nanny's worker: thresholds set
    ({}, False, False),  # glibc's dynamic thresholds are left alone
    ({"MALLOC_TRIM_THRESHOLD_": str(2**30)}, False, False),  # a larger threshold the user asked for
    ({"MALLOC_TRIM_THRESHOLD_": "65536", "BRAINXR_TUNE_MALLOC": "0"}, False, False),
    ({}, True, True),  # the brainxr command's own process
    ({"MALLOC_TRIM_THRESHOLD_": str(2**30)}, True, False),
    ({"BRAINXR_TUNE_MALLOC": "0"}, True, False),
])
def test_allocator_is_tuned_only_under_a_nanny_trim_threshold(environment, command, tuned):
    """Engine tasks keep per-run buffers on the heap where dask's nanny disabled glibc's dynamic thresholds,
    and so does the brainxr command in its own process (unless the environment sets a threshold)."""
    import os
    import subprocess

    env = {key: value for key, value in os.environ.items()
           if key not in ("MALLOC_TRIM_THRESHOLD_", "BRAINXR_TUNE_MALLOC")}
    code = ("from brainxr import engine\n"
            "with engine.one_thread_per_task():\n"
            "    pass\n"
            f"print(engine.tune_allocator(command={command}))")
    result = subprocess.run([sys.executable, "-c", code], env={**env, **environment}, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == str(tuned)



def test_one_thread_per_task_limits_every_blas_and_finds_them_once(monkeypatch):
    """Each task runs with one BLAS thread in numpy's and scipy's OpenBLAS alike; the libraries are scanned
    again only after an import (a scan costs ~4 ms, and the limit is set whenever the tasks pause)."""
    import scipy.linalg  # noqa: F401  (its own OpenBLAS)
    import threadpoolctl

    from brainxr import engine

    monkeypatch.setattr(engine, "_threadpools", (0, None))
    before = {info["filepath"]: info["num_threads"] for info in threadpoolctl.threadpool_info()}
    controllers = []
    for _ in range(5):
        with engine.one_thread_per_task():
            inside = threadpoolctl.threadpool_info()
        controllers.append(engine._threadpools[1])
    assert len({id(controller) for controller in controllers}) == 1
    assert {info["filepath"] for info in inside} == set(before)
    assert all(info["num_threads"] == 1 for info in inside if info["user_api"] == "blas")
    assert {info["filepath"]: info["num_threads"] for info in threadpoolctl.threadpool_info()} == before
