"""Benchmark: clean one (1200 x 230,000) float32 run, brainxr beside nilearn.

Both sides clean the same synthetic in-memory run (HCP-like: 1200 volumes,
t_r = 0.72 s, 230,000 voxels) with 36 confounds and a 0.009-0.08 Hz
band-pass. nilearn.signal.clean works on the numpy array; brainxr builds a
lazy graph over voxel chunks of the same array and computes it with a
2-thread scheduler into a preallocated output (``dask.array.store``, as when
writing to a store). Each side runs in its own subprocess, which reports its
wall time and peak resident memory (polled from /proc and checked against
``ru_maxrss``).

Run ``python benchmarks/clean.py`` (``--help`` for smaller sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

T_R = 0.72
LOW_PASS, HIGH_PASS = 0.08, 0.009


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakMemory:
    """Poll this process's resident memory in a thread; keep the peak."""

    def __init__(self, interval=0.005):
        self.interval = interval
        self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def make_run(n_time: int, n_voxels: int, seed: int = 0):
    """A float32 run with drifts, confound-driven signal and noise, and its confounds."""
    import numpy as np

    rng = np.random.default_rng(seed)
    times = np.arange(n_time) * T_R
    confounds = rng.standard_normal((n_time, 36)).cumsum(axis=0) * 0.1
    confounds[:, 30:] = np.cos(np.outer(times, np.linspace(0.001, 0.05, 6)))
    signals = np.empty((n_time, n_voxels), dtype=np.float32)
    block = 8192
    for start in range(0, n_voxels, block):
        stop = min(start + block, n_voxels)
        width = stop - start
        values = rng.standard_normal((n_time, width), dtype=np.float32)
        values += (confounds @ rng.standard_normal((36, width))).astype(np.float32)
        values += rng.uniform(500, 1500, width).astype(np.float32)
        signals[:, start:stop] = values
    return signals, confounds


def dask_view(array, chunk: int):
    """A dask array over the voxel chunks of an in-memory array, without copying it.

    (``dask.array.from_array`` copies numpy input first.)
    """
    import operator

    import dask
    import dask.array as da

    source = dask.delayed(array, pure=True)
    n_time, n_voxels = array.shape
    blocks = [
        da.from_delayed(
            dask.delayed(operator.getitem, pure=True)(source, (slice(None), slice(start, min(start + chunk, n_voxels)))),
            shape=(n_time, min(start + chunk, n_voxels) - start),
            dtype=array.dtype,
        )
        for start in range(0, n_voxels, chunk)
    ]
    return da.concatenate(blocks, axis=1)


def run_side(side: str, n_time: int, n_voxels: int, chunk: int, threads: int) -> dict:
    import resource

    import numpy as np

    signals, confounds = make_run(n_time, n_voxels)
    kwargs = dict(confounds=confounds, low_pass=LOW_PASS, high_pass=HIGH_PASS, t_r=T_R)
    if side == "nilearn":
        from nilearn.signal import clean

        clean(signals[:, :64].copy(), **kwargs)  # imports and first-call costs outside the timing
        baseline = _rss_bytes()
        with PeakMemory() as memory:
            start, cpu_start = time.perf_counter(), time.process_time()
            cleaned = clean(signals, **kwargs)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    elif side == "brainxr-numpy":
        from brainxr.signal import clean

        clean(signals[:, :64], **kwargs)  # numba compile / cache load outside the timing
        baseline = _rss_bytes()
        with PeakMemory() as memory:
            start, cpu_start = time.perf_counter(), time.process_time()
            cleaned = clean(signals, **kwargs)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    else:
        import dask
        import dask.array as da

        from brainxr.signal import clean

        clean(signals[:, :64], **kwargs)  # numba compile / cache load outside the timing
        baseline = _rss_bytes()
        with PeakMemory() as memory:
            start, cpu_start = time.perf_counter(), time.process_time()
            lazy = clean(dask_view(signals, chunk), **kwargs)
            cleaned = np.empty(lazy.shape, dtype=lazy.dtype)
            with dask.config.set(scheduler="threads", num_workers=threads):
                da.store(lazy, cleaned, lock=False)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "side": side,
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_bytes": max(memory.peak, max_rss),
        "baseline_bytes": baseline,
        "input_bytes": signals.nbytes,
        "output_bytes": cleaned.nbytes,
        "checksum": float(np.abs(cleaned[:, :: max(1, n_voxels // 1000)]).astype(np.float64).sum()),
        "sample": cleaned[:, :200:7].astype(np.float64).tolist(),
    }


def _child(side, args):
    env = dict(os.environ)
    if side.startswith("brainxr"):
        # dask's threads give the parallelism; one BLAS thread each avoids oversubscription
        env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = [
        sys.executable,
        __file__,
        "--side",
        side,
        "--n-time",
        str(args.n_time),
        "--n-voxels",
        str(args.n_voxels),
        "--chunk",
        str(args.chunk),
        "--threads",
        str(args.threads),
    ]
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-time", type=int, default=1200)
    parser.add_argument("--n-voxels", type=int, default=230_000)
    parser.add_argument("--chunk", type=int, default=16_384, help="voxels per dask chunk")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--side", choices=["nilearn", "brainxr", "brainxr-numpy"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(run_side(args.side, args.n_time, args.n_voxels, args.chunk, args.threads)))
        return

    import numpy as np

    gib = 2**30
    chunk_bytes = args.n_time * args.chunk * 4
    print(
        f"clean: ({args.n_time} x {args.n_voxels}) float32 run, 36 confounds, band-pass "
        f"{HIGH_PASS}-{LOW_PASS} Hz, t_r={T_R} s; brainxr: {args.threads} threads, "
        f"{args.chunk}-voxel chunks ({chunk_bytes / 2**20:.0f} MiB)"
    )
    results = {side: _child(side, args) for side in ("brainxr", "brainxr-numpy", "nilearn")}
    labels = {
        "nilearn": "nilearn.signal.clean (numpy)",
        "brainxr": f"brainxr, lazy, {args.threads} threads",
        "brainxr-numpy": "brainxr, numpy, 1 thread",
    }
    for side in ("nilearn", "brainxr", "brainxr-numpy"):
        r = results[side]
        print(
            f"  {labels[side]:30s} wall {r['wall_s']:7.2f} s   CPU {r['cpu_s']:7.2f} s   "
            f"peak RSS {r['peak_bytes'] / gib:5.2f} GiB   "
            f"(above the input run: {(r['peak_bytes'] - r['baseline_bytes']) / gib:5.2f} GiB)"
        )
    nilearn, brainxr = results["nilearn"], results["brainxr"]
    difference = np.abs(np.array(nilearn["sample"]) - np.array(brainxr["sample"])).max()
    print(f"  speed-up, nilearn / brainxr lazy wall time: {nilearn['wall_s'] / brainxr['wall_s']:.1f}x")
    print(f"  CPU time, nilearn / brainxr lazy:           {nilearn['cpu_s'] / brainxr['cpu_s']:.1f}x")
    print(f"  peak memory, brainxr lazy / nilearn:        {brainxr['peak_bytes'] / nilearn['peak_bytes']:.2f}")
    numpy_side = results["brainxr-numpy"]
    print(
        f"  brainxr numpy path: {nilearn['wall_s'] / numpy_side['wall_s']:.1f}x faster, "
        f"{numpy_side['peak_bytes'] / nilearn['peak_bytes']:.2f} of nilearn's peak memory"
    )
    working = brainxr["peak_bytes"] - brainxr["baseline_bytes"] - brainxr["output_bytes"]
    print(
        f"  brainxr working memory beyond input and output: {working / 2**20:.0f} MiB "
        f"= {working / chunk_bytes:.1f} chunks for {args.threads} threads"
    )
    print(f"  max |brainxr - nilearn| on a sample of voxels (float32 outputs): {difference:.2e}")
    print(f"  load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall times need an idle machine)")


if __name__ == "__main__":
    main()
