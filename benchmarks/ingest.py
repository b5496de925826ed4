"""Benchmark: ingest a synthetic cohort into a Zarr store, beside nibabel's decompression floor.

Two parts, each side in its own fresh process (wall time, throughput and the
process's own peak resident memory, VmHWM; see ``_harness.py``):

1. **Large runs.** The floor is the time nibabel alone takes to decompress
   the same .nii.gz files (``np.asanyarray(nib.load(f).dataobj)``, one file
   after the other): no masking, no writing. brainxr's ingest decompresses
   (ISA-L), masks, checksums, compresses and writes every run, with 2
   workers. A second ingest of a quarter of the runs shows that peak memory
   does not grow with the number of runs.
2. **Many small runs** (``--small-runs``, default 1,000): the per-run cost of
   ingest (runs/s), with peak memory for a quarter of the runs and for all of
   them (flat), the time spent making the cohort mask (the union of the
   runs' brain masks, a parallel tree reduction) and the time until the
   first run is complete. The small runs are hard links to a few synthetic
   runs under new subject names.

Run ``python benchmarks/ingest.py`` (defaults: 8 runs, 2 mm, 300 volumes;
1,000 small runs of 8 mm x 60 volumes; ``--help`` for other sizes). The
synthetic data is generated once and kept in ``--data``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import load_average, measure, print_table  # noqa: E402


def make_data(folder: Path, runs: int, volumes: int, resolution: float) -> Path:
    root = folder / f"ingest-n{runs}-v{volumes}-r{resolution:g}"
    if not (root / "dataset_description.json").exists():
        from brainxr.datasets import make_synthetic_cohort

        print(f"generating {runs} synthetic runs ({resolution:g} mm, {volumes} volumes) in {root} ...", flush=True)
        make_synthetic_cohort(root, n_subjects=runs, n_volumes=volumes, resolution=resolution, overwrite=True)
    return root


def make_many_runs(folder: Path, runs: int, volumes: int, resolution: float, distinct: int = 4) -> Path:
    """``runs`` fMRIPrep-like runs: hard links to ``distinct`` synthetic runs under new subject names."""
    root = folder / f"ingest-many-n{runs}-v{volumes}-r{resolution:g}"
    if (root / "dataset_description.json").exists():
        return root
    base = make_data(folder, distinct, volumes, resolution)
    print(f"linking {runs} small runs in {root} ...", flush=True)
    shutil.rmtree(root, ignore_errors=True)
    for n in range(runs):
        source = base / f"sub-{n % distinct + 1:02d}" / "func"
        target = root / f"sub-{n:05d}" / "func"
        target.mkdir(parents=True)
        for file in source.iterdir():
            os.link(file, target / file.name.replace(f"sub-{n % distinct + 1:02d}_", f"sub-{n:05d}_"))
    shutil.copy(base / "dataset_description.json", root / "dataset_description.json")
    return root


_TIMED_INGEST = """
    import time
    import brainxr.ingestion as ingestion, brainxr.store as cohort_store
    phases = {{}}
    started = time.perf_counter()
    grid = ingestion.cohort_grid
    def timed_grid(*args, **kwargs):
        begun = time.perf_counter()
        try:
            return grid(*args, **kwargs)
        finally:
            phases["grid_s"] = time.perf_counter() - begun
    ingestion.cohort_grid = timed_grid
    finish = cohort_store.finish_run
    def first_finish(*args, **kwargs):
        phases.setdefault("first_run_s", time.perf_counter() - started)
        return finish(*args, **kwargs)
    cohort_store.finish_run = first_finish
    report = brainxr.ingest({source!r}, {store!r}, n_workers={workers}, progress=False, client=False)
    assert not report.failed, report.failed
    result = dict(phases, bytes=report.decompressed_bytes, runs=len(report.ingested))
    """


def large_runs(args, scratch: Path, setup: str) -> None:
    """Part 1: a few large runs beside nibabel's decompression floor."""
    root = make_data(args.data, args.runs, args.volumes, args.resolution)
    files = sorted(str(p) for p in root.rglob("*_desc-preproc_bold.nii.gz"))
    floor = measure(
        "import nibabel as nib, numpy as np",
        f"""
        nbytes = 0
        for f in {files!r}:
            nbytes += np.asanyarray(nib.load(f).dataobj).nbytes
        result = nbytes
        """,
    )
    full = measure(setup, _TIMED_INGEST.format(source=str(root), store=str(scratch / "all.zarr"),
                                               workers=args.workers))
    quarter = sorted(root.rglob("*_desc-preproc_bold.nii.gz"))[: max(1, args.runs // 4)]
    few = measure(setup, _TIMED_INGEST.format(source=[str(p) for p in quarter], store=str(scratch / "few.zarr"),
                                              workers=args.workers))
    mb = floor["result"] / 2**20
    rows = [
        ("nibabel decompression (floor)", f"{floor['wall_s']:.1f}", f"{mb / floor['wall_s']:.0f}", "-",
         f"{floor['peak_mb']:.0f}", "1.00"),
    ]
    for measured, n in ((full, args.runs), (few, len(quarter))):
        result = measured["result"]
        rows.append((f"brainxr ingest, {args.workers} workers, {n} runs", f"{measured['wall_s']:.1f}",
                     f"{result['bytes'] / 2**20 / measured['wall_s']:.0f}", f"{n / measured['wall_s']:.2f}",
                     f"{measured['peak_mb']:.0f}",
                     f"{measured['wall_s'] / floor['wall_s']:.2f}" if n == args.runs else "-"))
    print_table(
        f"Ingest of {args.runs} runs ({args.resolution:g} mm, {args.volumes} volumes, {mb:.0f} MB decompressed)",
        rows,
        ("", "wall s", "MB/s", "runs/s", "peak MB", "time / floor"),
    )
    print(f"\ntargets: time / floor <= 1.5 -> {full['wall_s'] / floor['wall_s']:.2f}; "
          f"peak < 1536 MB whatever the number of runs -> {full['peak_mb']:.0f} MB ({args.runs} runs), "
          f"{few['peak_mb']:.0f} MB ({len(quarter)} runs)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=8, help="number of large runs (0: skip that part)")
    parser.add_argument("--volumes", type=int, default=300)
    parser.add_argument("--resolution", type=float, default=2)
    parser.add_argument("--small-runs", type=int, default=1000, help="number of small runs (0: skip that part)")
    parser.add_argument("--small-volumes", type=int, default=60)
    parser.add_argument("--small-resolution", type=float, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "brainxr-benchmark-data")
    args = parser.parse_args(argv)
    print(f"brainxr ingest benchmark ({load_average()} at the start)")

    scratch = Path(tempfile.mkdtemp(prefix="brainxr-ingest-bench-"))
    setup = "import brainxr, brainxr.ingestion, zarr, xarray, dask"
    try:
        if args.runs:
            large_runs(args, scratch, setup)
        many = []
        if args.small_runs:
            small = make_many_runs(args.data, args.small_runs, args.small_volumes, args.small_resolution)
            for n_runs in (max(1, args.small_runs // 4), args.small_runs):
                bolds = sorted(str(p) for p in small.rglob("*_desc-preproc_bold.nii.gz"))[:n_runs]
                source = str(small) if n_runs == args.small_runs else bolds
                many.append((n_runs, measure(setup, _TIMED_INGEST.format(
                    source=source, store=str(scratch / f"many-{n_runs}.zarr"), workers=args.workers))))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    if many:
        rows = []
        for n_runs, measured in many:
            result = measured["result"]
            rows.append((f"{n_runs} runs", f"{measured['wall_s']:.1f}", f"{n_runs / measured['wall_s']:.1f}",
                         f"{result['bytes'] / 2**20 / measured['wall_s']:.0f}", f"{result['grid_s']:.1f}",
                         f"{result['first_run_s']:.1f}", f"{measured['peak_mb']:.0f}"))
        print_table(
            f"Ingest of many small runs ({args.small_resolution:g} mm, {args.small_volumes} volumes), "
            f"{args.workers} workers",
            rows,
            ("", "wall s", "runs/s", "MB/s", "mask union s", "first run done s", "peak MB"),
        )
        (small_n, small_m), (large_n, large_m) = many
        print(f"\npeak memory flat in the number of runs: {small_m['peak_mb']:.0f} MB ({small_n} runs) vs "
              f"{large_m['peak_mb']:.0f} MB ({large_n} runs)")
    print(f"{load_average()} at the end")


if __name__ == "__main__":
    main()
