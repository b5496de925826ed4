"""Benchmark: group connectomes of a cohort, brainxr beside nilearn (and sparse solvers).

Group correlation and tangent connectomes of N subjects x 400 regions x 300
samples (default N = 50 and 200, to show how memory grows with the cohort).
The synthetic region signals (each subject drawn from its own covariance
around a shared one) are written once to a Zarr store; each side reads them
from there, in its own subprocess:

- nilearn: loads the signals into a list of arrays, then
  ``ConnectivityMeasure(kind="correlation").fit_transform`` (group mean in
  ``mean_``) and ``ConnectivityMeasure(kind="tangent").fit_transform``
  (geometric mean in ``mean_``), all in memory; with the default BLAS
  threading, and again with one BLAS thread (a busy machine can make BLAS
  threads slower than one); the ratios are against the faster of the two.
- brainxr, lazy, 2 workers (the threaded scheduler with 2 threads, then a
  ``distributed.LocalCluster`` of 2 single-threaded worker processes): one
  pass over the signals computes every subject's correlation and covariance
  and writes them to a Zarr store (uncompressed); the group mean correlation
  is a tree reduction over the stored correlations; the geometric mean iterates map (per-subject ``logm(W C W)``) / tree-reduce
  passes over the stored covariances; the tangent matrices are written to the
  store. One BLAS thread per worker.

Wall time counts from the signals on disk to the results (in memory for
nilearn, in the store for brainxr); imports and the cluster start are
outside it (the start is printed). Peak memory is the largest sum of the
resident sizes of the side's process and all its descendants (workers,
nanny, scheduler), polled every 20 ms from /proc. The results of the two
sides are compared (max abs difference of the mean correlation, the
geometric mean and the tangent matrices of the first subjects).

When ``benchmarks/sparse_covariance.py`` (GraphicalLassoCV on 264 regions x
168 samples, GroupSparseCovarianceCV, brainxr beside scikit-learn/nilearn) is
present, it is run first so that one command prints all three.

Run ``python benchmarks/connectome.py`` (``--help`` for smaller sizes).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIDES = ("nilearn", "nilearn-1-blas-thread", "brainxr-threads", "brainxr-distributed")
NILEARN_SIDES = ("nilearn", "nilearn-1-blas-thread")
# subjects per task of the brainxr graphs (--runs-per-chunk)
RUNS_PER_CHUNK = int(os.environ.get("BRAINXR_BENCH_RUNS_PER_CHUNK", "4"))


# -- memory and CPU time of a process tree -----------------------------------

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICK = os.sysconf("SC_CLK_TCK")


def _descendants(root_pid: int) -> list[int]:
    """``root_pid`` and all its descendants (from /proc/<pid>/task/<tid>/children)."""
    found, stack = [], [root_pid]
    while stack:
        pid = stack.pop()
        found.append(pid)
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/children") as children:
                    stack.extend(int(child) for child in children.read().split())
            except OSError:
                continue
    return found


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _cpu_seconds(pid: int) -> float:
    """User + system time of ``pid`` and of its exited, waited-for children."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return sum(int(value) for value in fields[11:15]) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


class ProcessTreeMonitor:
    """Peak resident memory and CPU time of this process and its descendants.

    Memory is polled every ``interval`` seconds (the list of descendants is
    refreshed every ``refresh`` seconds, so polling stays cheap); CPU time is
    the difference of the tree's user + system time between enter and exit.
    """

    def __init__(self, interval: float = 0.02, refresh: float = 0.5):
        self.interval, self.refresh = interval, refresh
        self.pid = os.getpid()
        self.members = _descendants(self.pid)
        self.peak = self._rss()
        self.cpu_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _rss(self) -> int:
        return sum(_rss_bytes(pid) for pid in self.members)

    def _cpu(self) -> float:
        return sum(_cpu_seconds(pid) for pid in _descendants(self.pid))

    def _poll(self):
        refreshed = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - refreshed > self.refresh:
                self.members, refreshed = _descendants(self.pid), time.monotonic()
            self.peak = max(self.peak, self._rss())
            time.sleep(self.interval)

    def __enter__(self):
        self._cpu_start = self._cpu()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.members = _descendants(self.pid)
        self.peak = max(self.peak, self._rss())
        self.cpu_s = self._cpu() - self._cpu_start


# -- data ---------------------------------------------------------------------


def make_signals(store: Path, n_subjects: int, n_regions: int, n_samples: int, seed: int = 0):
    """Write ``signals (run, time, region)`` float64 to a Zarr store, one subject at a time."""
    import numpy as np
    import zarr

    rng = np.random.default_rng(seed)
    # shared covariance: a few networks (low rank) plus region-specific variance
    loadings = rng.standard_normal((n_regions, 12)) * rng.uniform(0.3, 1.0, 12)
    shared = loadings @ loadings.T + np.diag(rng.uniform(0.5, 1.5, n_regions))
    root = zarr.open_group(str(store), mode="w", zarr_format=3)
    signals = root.create_array(
        "signals",
        shape=(n_subjects, n_samples, n_regions),
        chunks=(1, n_samples, n_regions),
        dtype="float64",
        dimension_names=("run", "time", "region"),
    )
    for subject in range(n_subjects):
        deviation = rng.standard_normal((n_regions, 4)) * 0.5
        covariance = shared + deviation @ deviation.T
        factor = np.linalg.cholesky(covariance)
        signals[subject] = rng.standard_normal((n_samples, n_regions)) @ factor.T + 100.0
    root.attrs["subjects"] = [f"sub-{index:04d}" for index in range(n_subjects)]
    return store


# -- the two sides ------------------------------------------------------------


def run_nilearn(data: Path, n_subjects: int, out: Path) -> dict:
    import warnings

    import numpy as np
    import zarr
    from nilearn.connectome import ConnectivityMeasure

    warnings.simplefilter("ignore", FutureWarning)
    source = zarr.open_group(str(data), mode="r")["signals"]
    # first-call costs outside the timing
    ConnectivityMeasure(kind="tangent").fit_transform([source[0][:, :20], source[1][:, :20]])
    with ProcessTreeMonitor() as memory:
        start = time.perf_counter()
        subjects = [source[index] for index in range(n_subjects)]
        correlation = ConnectivityMeasure(kind="correlation")
        correlations = correlation.fit_transform(subjects)
        stage_correlation = time.perf_counter() - start
        tangent = ConnectivityMeasure(kind="tangent")
        tangents = tangent.fit_transform(subjects)
        wall = time.perf_counter() - start
    np.save(out / "mean_correlation.npy", correlation.mean_)
    np.save(out / "geometric_mean.npy", tangent.mean_)
    np.save(out / "tangent_first.npy", tangents[:3])
    np.save(out / "correlation_first.npy", correlations[:3])
    return {
        "wall_s": wall,
        "cpu_s": memory.cpu_s,
        "stages": {"load + correlation": stage_correlation},
        "peak_bytes": memory.peak,
    }


def run_brainxr(data: Path, n_subjects: int, out: Path, distributed: bool) -> dict:
    import dask
    import numpy as np
    import xarray as xr

    from brainxr.connectome import (
        connectivity,
        mean_connectome,
        open_connectomes,
        tangent_space,
        write_connectomes,
    )

    cluster_start = 0.0
    if distributed:
        from distributed import Client, LocalCluster

        started = time.perf_counter()
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
        # imports on the workers outside the timing, as in this process
        client.run(lambda: __import__("brainxr.connectome.estimation") and __import__("zarr"))
        cluster_start = time.perf_counter() - started
        scheduler = {}
    else:
        scheduler = {"scheduler": "threads", "num_workers": 2}
    store = out / "cohort.zarr"
    with dask.config.set(**scheduler):  # first-call costs outside the timing
        warm = xr.DataArray(np.random.default_rng(0).standard_normal((2, 30, 5)), dims=("run", "time", "region"))
        tangent_space(connectivity(warm.chunk(run=1), "covariance"))["tangent"].compute()

    with dask.config.set(**scheduler), ProcessTreeMonitor() as memory:
        start = time.perf_counter()
        signals = xr.open_dataset(
            str(data), engine="zarr", chunks={"run": RUNS_PER_CHUNK}, consolidated=False
        )["signals"].isel(run=slice(0, n_subjects))
        kinds = {
            "correlation": connectivity(signals, "correlation"),
            "covariance": connectivity(signals, "covariance"),
        }
        # one pass over the signals writes both kinds (one graph, one sink)
        write_connectomes(kinds, store, "cohort")
        stage_correlation = time.perf_counter() - start
        # the plain mean, as nilearn's mean_ (brainxr's default averages Fisher z)
        mean_values = mean_connectome(
            open_connectomes(store, "cohort", kind="correlation"), fisher_z=False, split_every=8
        ).values
        stage_group_mean = time.perf_counter() - start - stage_correlation
        embedding = tangent_space(
            open_connectomes(store, "cohort", kind="covariance"), split_every=8
        )
        stage_mean = time.perf_counter() - start - stage_correlation - stage_group_mean
        write_connectomes(embedding["tangent"], store, "tangent")
        wall = time.perf_counter() - start
    np.save(out / "mean_correlation.npy", mean_values)
    np.save(out / "geometric_mean.npy", embedding["mean"].values)
    np.save(out / "tangent_first.npy", open_connectomes(store, "tangent")[:3].values)
    np.save(out / "correlation_first.npy", open_connectomes(store, "cohort", kind="correlation")[:3].values)
    if distributed:
        client.close()
        cluster.close()
    return {
        "wall_s": wall,
        "stages": {
            "correlation + covariance pass": stage_correlation,
            "mean correlation": stage_group_mean,
            "geometric mean": stage_mean,
            "tangent write": wall - stage_correlation - stage_group_mean - stage_mean,
        },
        "peak_bytes": memory.peak,
        "cpu_s": memory.cpu_s,
        "cluster_start_s": cluster_start,
    }


def _run_child(side: str, data: Path, n_subjects: int, out: Path) -> dict:
    env = dict(os.environ)
    if side != "nilearn":
        # parallelism comes from the 2 workers; one BLAS thread each avoids oversubscription
        env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = [
        sys.executable, __file__, "--side", side, "--data", str(data),
        "--subjects", str(n_subjects), "--out", str(out),
    ]
    completed = subprocess.run(command, env=env, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{side} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-5000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _compare(reference: Path, other: Path) -> dict:
    import numpy as np

    return {
        name: float(np.abs(np.load(reference / f"{name}.npy") - np.load(other / f"{name}.npy")).max())
        for name in ("mean_correlation", "geometric_mean", "tangent_first", "correlation_first")
    }


def _run_sparse_benchmarks():
    """Run benchmarks/sparse_covariance.py (the sparse solvers' benchmark) if present."""
    path = HERE / "sparse_covariance.py"
    if not path.exists():
        print("(benchmarks/sparse_covariance.py not present: GraphicalLassoCV and "
              "GroupSparseCovarianceCV benchmarks skipped)")
        return
    spec = importlib.util.spec_from_file_location("sparse_covariance", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(HERE))
    spec.loader.exec_module(module)
    runners = [
        getattr(module, name)
        for name in ("bench_graphical_lasso_cv", "bench_group_sparse_covariance_cv")
        if callable(getattr(module, name, None))
    ]
    if not runners and callable(getattr(module, "main", None)):
        runners = [module.main]
    for runner in runners:
        runner()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subject-counts", default="50,200", help="comma-separated cohort sizes")
    parser.add_argument("--regions", type=int, default=400)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--sides", default=",".join(SIDES))
    parser.add_argument("--runs-per-chunk", type=int, default=RUNS_PER_CHUNK, help="subjects per brainxr task")
    parser.add_argument("--skip-sparse", action="store_true", help="do not run benchmarks/sparse_covariance.py")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--subjects", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.side:
        if args.side in NILEARN_SIDES:
            result = run_nilearn(args.data, args.subjects, args.out)
        else:
            result = run_brainxr(args.data, args.subjects, args.out, args.side == "brainxr-distributed")
        print(json.dumps(result))
        return

    if not args.skip_sparse:
        _run_sparse_benchmarks()

    os.environ["BRAINXR_BENCH_RUNS_PER_CHUNK"] = str(args.runs_per_chunk)  # for the children
    counts = [int(count) for count in args.subject_counts.split(",")]
    sides = [side for side in args.sides.split(",") if side]
    workdir = Path(tempfile.mkdtemp(prefix="brainxr-connectome-bench-"))
    try:
        data = workdir / "signals.zarr"
        print(
            f"\nGroup correlation + tangent connectomes: {max(counts)} subjects x "
            f"{args.regions} regions x {args.samples} samples (float64, Zarr, "
            f"{max(counts) * args.regions * args.samples * 8 / 2**20:.0f} MiB); "
            f"brainxr: {args.runs_per_chunk} subjects per task"
        )
        print(
            "  (wall and CPU time from the signals on disk to the results; peak RSS of the "
            "process tree;\n   load average: 1-minute average of the machine when the side ended, "
            f"on {os.cpu_count()} CPUs)"
        )
        make_signals(data, max(counts), args.regions, args.samples)
        rows = []
        for count in counts:
            results = {}
            for side in sides:
                out = workdir / f"{side}-{count}"
                out.mkdir()
                results[side] = _run_child(side, data, count, out)
                results[side]["out"] = out
                results[side]["load_average"] = os.getloadavg()[0]
            references = [results[side] for side in sides if side in NILEARN_SIDES]
            reference = min(references, key=lambda result: result["wall_s"]) if references else None
            for side in sides:
                result = results[side]
                ratio = ""
                if reference is not None and side not in NILEARN_SIDES:
                    ratio = (
                        f"  speed-up x{reference['wall_s'] / result['wall_s']:.2f}, "
                        f"memory x{result['peak_bytes'] / reference['peak_bytes']:.2f}"
                    )
                start = (
                    f" (+ {result['cluster_start_s']:.1f} s cluster start)"
                    if result.get("cluster_start_s") else ""
                )
                print(
                    f"  N={count:4d}  {side:21s} wall {result['wall_s']:7.2f} s{start}   "
                    f"CPU {result['cpu_s']:7.1f} s   peak RSS {result['peak_bytes'] / 2**20:6.0f} MiB"
                    f"   (load average {result['load_average']:.1f}){ratio}"
                )
                print("             " + ", ".join(f"{k} {v:.2f} s" for k, v in result["stages"].items()))
                if reference is not None and side not in NILEARN_SIDES:
                    differences = _compare(reference["out"], result["out"])
                    print("             max |brainxr - nilearn|: " + ", ".join(
                        f"{k} {v:.1e}" for k, v in differences.items()))
                rows.append((count, side, result["wall_s"], result["peak_bytes"]))
        if len(counts) > 1:
            print("  memory growth from N=%d to N=%d subjects:" % (counts[0], counts[-1]))
            for side in sides:
                peaks = [peak for count, name, _, peak in rows if name == side]
                print(f"    {side:20s} {peaks[0] / 2**20:7.0f} -> {peaks[-1] / 2**20:7.0f} MiB "
                      f"(x{peaks[-1] / peaks[0]:.2f})")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
