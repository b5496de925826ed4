"""Benchmark: ingest a synthetic cohort into a Zarr store, beside nibabel's decompression floor.

The floor is the time nibabel alone takes to decompress the same .nii.gz
files (``np.asanyarray(nib.load(f).dataobj)``, one file after the other): no
masking, no writing. brainxr's ingest decompresses (ISA-L), masks, checksums,
compresses and writes every run, with 2 workers. Each side runs in its own
process; wall time, throughput (MB/s of decompressed data) and peak resident
memory are printed side by side. A second ingest of a quarter of the runs
shows that peak memory does not grow with the number of runs.

Run ``python benchmarks/ingest.py`` (defaults: 8 runs, 2 mm, 300 volumes;
``--help`` for smaller sizes). The synthetic cohort is generated once and
kept in ``--data``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import measure, print_table  # noqa: E402


def make_data(folder: Path, runs: int, volumes: int, resolution: float) -> Path:
    root = folder / f"ingest-n{runs}-v{volumes}-r{resolution:g}"
    if not (root / "dataset_description.json").exists():
        from brainxr.datasets import make_synthetic_cohort

        print(f"generating {runs} synthetic runs ({resolution:g} mm, {volumes} volumes) in {root} ...", flush=True)
        make_synthetic_cohort(root, n_subjects=runs, n_volumes=volumes, resolution=resolution, overwrite=True)
    return root


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--volumes", type=int, default=300)
    parser.add_argument("--resolution", type=float, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "brainxr-benchmark-data")
    args = parser.parse_args(argv)

    root = make_data(args.data, args.runs, args.volumes, args.resolution)
    files = sorted(str(p) for p in root.rglob("*_desc-preproc_bold.nii.gz"))
    scratch = Path(tempfile.mkdtemp(prefix="brainxr-ingest-bench-"))
    try:
        floor = measure(
            "import nibabel as nib, numpy as np",
            f"""
            nbytes = 0
            for f in {files!r}:
                nbytes += np.asanyarray(nib.load(f).dataobj).nbytes
            result = nbytes
            """,
        )
        ingest_code = """
            report = brainxr.ingest({source!r}, {store!r}, n_workers={workers}, progress=False)
            assert not report.failed, report.failed
            result = report.decompressed_bytes
            """
        full = measure(
            "import brainxr, brainxr.ingestion, zarr, xarray, dask",
            ingest_code.format(source=str(root), store=str(scratch / "all.zarr"), workers=args.workers),
        )
        quarter = sorted(root.rglob("*_desc-preproc_bold.nii.gz"))[: max(1, args.runs // 4)]
        pairs = [str(p) for p in quarter]
        few = measure(
            "import brainxr, brainxr.ingestion, zarr, xarray, dask",
            ingest_code.format(source=pairs, store=str(scratch / "few.zarr"), workers=args.workers),
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    mb = floor["result"] / 2**20
    rows = [
        ("nibabel decompression (floor)", f"{floor['wall_s']:.1f}", f"{mb / floor['wall_s']:.0f}",
         f"{floor['peak_mb']:.0f}", "1.00"),
        (f"brainxr ingest, {args.workers} workers, {args.runs} runs", f"{full['wall_s']:.1f}",
         f"{full['result'] / 2**20 / full['wall_s']:.0f}", f"{full['peak_mb']:.0f}",
         f"{full['wall_s'] / floor['wall_s']:.2f}"),
        (f"brainxr ingest, {args.workers} workers, {len(quarter)} runs", f"{few['wall_s']:.1f}",
         f"{few['result'] / 2**20 / few['wall_s']:.0f}", f"{few['peak_mb']:.0f}", "-"),
    ]
    print_table(
        f"Ingest of {args.runs} runs ({args.resolution:g} mm, {args.volumes} volumes, {mb:.0f} MB decompressed)",
        rows,
        ("", "wall s", "MB/s", "peak MB", "time / floor"),
    )
    print(f"\ntargets: time / floor <= 1.5 -> {full['wall_s'] / floor['wall_s']:.2f}; "
          f"peak < 1536 MB whatever the number of runs -> {full['peak_mb']:.0f} MB ({args.runs} runs), "
          f"{few['peak_mb']:.0f} MB ({len(quarter)} runs)")


if __name__ == "__main__":
    main()
