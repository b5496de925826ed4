"""Region extraction and seed-to-voxel maps: brainxr beside nilearn, in one run.

Usage::

    python benchmarks/extract.py [--data DIR] [--quick]

Scenarios (synthetic fMRIPrep cohorts from :func:`brainxr.datasets.make_synthetic_cohort`,
generated once into ``--data`` and reused):

1. Cohort labels extraction + cleaning (motion and WM/CSF confounds,
   0.01-0.08 Hz band-pass, detrend, z-score) with a 100-region labels atlas,
   for 8 subjects at 4 mm x 168 volumes and 2 subjects at 2 mm x 300 volumes:

   - ``nilearn``: ``NiftiLabelsMasker.fit_transform`` looping over subjects;
   - ``brainxr nii.gz``: :func:`brainxr.regions.extract_cohort` on the
     ``.nii.gz`` paths (each run one lazy task that decompresses the file once
     and reduces it as it streams), one dask graph for the cohort;
   - ``brainxr zarr``: the same on the runs of a Zarr cohort store
     (:func:`brainxr.ingest` once beforehand; its time is printed apart).

2. Seed-to-voxel map on one 2 mm x 300-volume run (nilearn's example): a
   PCC sphere (8 mm) and the whole brain smoothed 6 mm (the run's brain
   mask), both cleaned (confounds, band-pass 0.01-0.1 Hz, detrend,
   z-score), correlation map written to NIfTI:

   - ``nilearn``: NiftiSpheresMasker + NiftiMasker + numpy + inverse_transform;
   - ``brainxr``: one lazy graph (one streaming read of the run giving the
     seed's voxels and the brain smoothed block by block -> clean per voxel
     chunk -> correlation -> to_nifti).

Each measurement runs ``--repeat`` times (best wall time kept, largest peak
memory reported), each in its own subprocess (libraries imported and a tiny
array cleaned once before the clock starts, so that numba's one-off kernel
load in brainxr counts as start-up, like imports), which reports its wall time
and its peak resident memory (the kernel's high-water mark ``VmHWM`` of the
process, imports included; unlike ``ru_maxrss`` it does not inherit the
parent's peak across fork/exec). Results are
checked against nilearn's (max abs difference printed). Ratios are nilearn /
brainxr (higher is better for brainxr).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CONFOUND_COLUMNS = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z", "white_matter", "csf"]
LABELS_CLEANING = {"detrend": True, "standardize": "zscore_sample", "low_pass": 0.08, "high_pass": 0.01, "t_r": 2.0}
SEED_CLEANING = {"detrend": True, "standardize": "zscore_sample", "low_pass": 0.1, "high_pass": 0.01, "t_r": 2.0}
PCC = (0.0, -52.0, 18.0)


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------


def cohort_spec(name: str, quick: bool) -> dict:
    specs = {
        "4mm": {"n_subjects": 8, "n_volumes": 168, "resolution": 4},
        "2mm": {"n_subjects": 2, "n_volumes": 300, "resolution": 2},
    }
    spec = dict(specs[name])
    if quick:
        spec["n_volumes"] = min(spec["n_volumes"], 80)
        spec["n_subjects"] = min(spec["n_subjects"], 2)
    return spec


def prepare(data_dir: Path, name: str, quick: bool) -> dict:
    """Make the cohort (once) and its Zarr store (once); return paths and ingest time."""
    from brainxr.datasets import make_synthetic_cohort

    spec = cohort_spec(name, quick)
    folder = data_dir / f"cohort-{name}-{spec['n_subjects']}x{spec['n_volumes']}"
    marker = folder / ".complete"
    if not marker.exists():
        started = time.perf_counter()
        make_synthetic_cohort(folder, t_r=2.0, overwrite=True, **spec)
        marker.write_text("")
        print(f"  generated {folder.name} in {time.perf_counter() - started:.0f} s", flush=True)
    bolds = sorted(folder.glob("sub-*/func/*desc-preproc_bold.nii.gz"))
    info = {
        "folder": str(folder),
        "bolds": [str(p) for p in bolds],
        "confounds": [str(next(p.parent.glob("*desc-confounds_timeseries.tsv"))) for p in bolds],
        "masks": [str(next(p.parent.glob("*desc-brain_mask.nii.gz"))) for p in bolds],
        "atlas": str(next((folder / "atlas").glob("*_dseg.nii.gz"))),
        "store": str(folder / "cohort.zarr"),
    }
    timing = folder / "ingest_seconds.json"
    if not (folder / "cohort.zarr" / ".ingested").exists():
        import brainxr

        started = time.perf_counter()
        brainxr.ingest(folder, folder / "cohort.zarr", overwrite=True, progress=False)
        elapsed = time.perf_counter() - started
        (folder / "cohort.zarr" / ".ingested").write_text("")
        timing.write_text(json.dumps({"seconds": elapsed}))
    info["ingest_seconds"] = json.loads(timing.read_text())["seconds"] if timing.exists() else float("nan")
    return info


def read_confounds(path: str) -> np.ndarray:
    import pandas as pd

    return pd.read_csv(path, sep="\t")[CONFOUND_COLUMNS].to_numpy(dtype=np.float64)


# ---------------------------------------------------------------------------
# the measured work (each in its own subprocess)
# ---------------------------------------------------------------------------


def labels_nilearn(info: dict) -> np.ndarray:
    from nilearn.maskers import NiftiLabelsMasker

    signals = []
    for bold, confounds in zip(info["bolds"], info["confounds"]):
        masker = NiftiLabelsMasker(info["atlas"], **LABELS_CLEANING)
        signals.append(masker.fit_transform(bold, confounds=read_confounds(confounds)))
    return np.stack(signals)


def labels_brainxr_niigz(info: dict) -> np.ndarray:
    from brainxr.regions import extract_cohort, load_labels_atlas

    # paths: each run is one streaming task (decompressed once, ISA-L)
    runs = {Path(bold).name: bold for bold in info["bolds"]}
    confounds = {Path(bold).name: read_confounds(c) for bold, c in zip(info["bolds"], info["confounds"])}
    signals = extract_cohort(runs, load_labels_atlas(info["atlas"]), clean=LABELS_CLEANING, confounds=confounds)
    return np.asarray(signals.values)


def labels_brainxr_zarr(info: dict) -> np.ndarray:
    from brainxr.cohort import open_cohort
    from brainxr.regions import extract_cohort, load_labels_atlas

    import dask

    cohort = open_cohort(info["store"])
    runs = {key: cohort[key] for key in sorted(cohort)}
    # the confounds of every run in one read
    selected = [run["confounds"].sel(confound=CONFOUND_COLUMNS).data for run in runs.values()]
    confounds = dict(zip(runs, dask.compute(*selected)))
    signals = extract_cohort(runs, load_labels_atlas(info["atlas"]), clean=LABELS_CLEANING, confounds=confounds)
    return np.asarray(signals.values)


def seed_nilearn(info: dict, output: Path) -> np.ndarray:
    from nilearn.maskers import NiftiMasker, NiftiSpheresMasker

    bold, confounds = info["bolds"][0], read_confounds(info["confounds"][0])
    seed_masker = NiftiSpheresMasker([PCC], radius=8, **SEED_CLEANING)
    seed = seed_masker.fit_transform(bold, confounds=confounds)
    brain_masker = NiftiMasker(mask_img=info["masks"][0], smoothing_fwhm=6, **SEED_CLEANING)
    brain = brain_masker.fit_transform(bold, confounds=confounds)
    correlation = brain.T @ seed / seed.shape[0]
    brain_masker.inverse_transform(correlation.T).to_filename(output)
    return correlation[:, 0]


def seed_brainxr(info: dict, output: Path) -> np.ndarray:
    import nibabel as nib
    import xarray as xr

    from brainxr.masking import unmask
    from brainxr.nifti import to_nifti
    from brainxr.regions import extract_spheres, sphere_support, stream_signals
    from brainxr.signal import clean

    bold, confounds = info["bolds"][0], read_confounds(info["confounds"][0])
    image = nib.load(bold)
    seed_voxels = sphere_support([PCC], 8, image.shape[:3], image.affine)
    # one streaming read: the seed's raw voxels and the brain smoothed block by block
    signals = stream_signals(bold, {"seed": seed_voxels, "brain": info["masks"][0]}, smoothing_fwhm={"brain": 6})
    seed = clean(extract_spheres(signals["seed"], [PCC], radius=8), confounds=confounds, **SEED_CLEANING)
    brain = clean(signals["brain"], confounds=confounds, **SEED_CLEANING)
    seed_signal = seed.isel(region=0).data
    correlation = (brain.data * seed_signal[:, None]).sum(axis=0) / brain.sizes["time"]
    correlation = xr.DataArray(correlation, dims=("voxel",), coords=brain["voxel"].coords, attrs=brain.attrs)
    to_nifti(unmask(correlation), output)
    mask = np.asarray(nib.load(info["masks"][0]).dataobj).astype(bool)
    return np.asarray(nib.load(output).dataobj)[mask]


def _import_libraries(task: str) -> None:
    """Import what a task uses, and clean a tiny array once, before the clock
    starts: start-up is not the workload.

    The warm-up call is the same on both sides; for brainxr it is where numba
    loads its compiled Butterworth kernel (about half a second, once per
    process), for nilearn it costs milliseconds.
    """
    import importlib

    modules = ["nilearn.maskers", "nilearn.signal"] if "nilearn" in task else [
        "brainxr.cohort", "brainxr.image", "brainxr.regions", "brainxr.signal", "flox.core", "distributed",
    ]
    for module in [*modules, "pandas"]:
        importlib.import_module(module)
    library = importlib.import_module("nilearn.signal" if "nilearn" in task else "brainxr.signal")
    tiny = np.random.default_rng(0).standard_normal((40, 3))
    library.clean(tiny, **LABELS_CLEANING)


def worker(task: str, info_path: str, result_path: str) -> None:
    """Run one measurement; print wall time and peak memory as JSON."""
    info = json.loads(Path(info_path).read_text())
    _import_libraries(task)
    started = time.perf_counter()
    if task == "labels-nilearn":
        result = labels_nilearn(info)
    elif task == "labels-brainxr-niigz":
        result = labels_brainxr_niigz(info)
    elif task == "labels-brainxr-zarr":
        result = labels_brainxr_zarr(info)
    elif task == "seed-nilearn":
        result = seed_nilearn(info, Path(result_path).with_suffix(".nii.gz"))
    elif task == "seed-brainxr":
        result = seed_brainxr(info, Path(result_path).with_suffix(".nii.gz"))
    else:
        raise ValueError(task)
    wall = time.perf_counter() - started
    np.save(result_path, result)
    print(json.dumps({"wall_s": wall, "peak_mb": peak_memory_mb()}))


def peak_memory_mb() -> float:
    """Peak resident memory of this process in MB (``VmHWM``; ``ru_maxrss`` where /proc is absent)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(task: str, info: dict, scratch: Path, repeat: int = 1) -> dict:
    """Best wall time (and the largest peak memory) of ``repeat`` runs, each in a fresh process."""
    runs = [_measure_once(task, info, scratch) for _ in range(max(1, repeat))]
    best = min(runs, key=lambda run: run["wall_s"])
    best["peak_mb"] = max(run["peak_mb"] for run in runs)
    return best


def _measure_once(task: str, info: dict, scratch: Path) -> dict:
    info_path = scratch / f"{task}-info.json"
    info_path.write_text(json.dumps(info))
    result_path = scratch / f"{task}.npy"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    completed = subprocess.run(
        [sys.executable, __file__, "--worker", task, str(info_path), str(result_path)],
        capture_output=True, text=True, env=env, check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{task} failed:\n{completed.stderr[-3000:]}")
    measured = json.loads(completed.stdout.strip().splitlines()[-1])
    measured["result"] = np.load(result_path)
    return measured


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------


def row(label, measured, reference=None):
    text = f"  {label:<22} {measured['wall_s']:8.1f} s {measured['peak_mb']:8.0f} MB"
    if reference is not None:
        speed = reference["wall_s"] / measured["wall_s"]
        memory = reference["peak_mb"] / measured["peak_mb"]
        difference = float(np.nanmax(np.abs(measured["result"] - reference["result"])))
        text += f"   x{speed:5.1f} faster  x{memory:5.1f} less memory   max |diff| vs nilearn {difference:.2e}"
    print(text, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("BRAINXR_BENCH_DATA", "/tmp/brainxr-bench")))
    parser.add_argument("--quick", action="store_true", help="small cohorts (a smoke test, not the targets)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement; the best wall time is kept")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    args.data.mkdir(parents=True, exist_ok=True)
    scratch = args.data / "results"
    scratch.mkdir(exist_ok=True)
    print(
        f"brainxr extraction benchmark ({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, best of "
        f"{args.repeat}); data in {args.data}",
        flush=True,
    )

    for name in ("4mm", "2mm"):
        info = prepare(args.data, name, args.quick)
        spec = cohort_spec(name, args.quick)
        print(
            f"\nLabels extraction + cleaning: {spec['n_subjects']} subjects, {spec['resolution']} mm x "
            f"{spec['n_volumes']} volumes, 100 regions (Zarr ingest beforehand: {info['ingest_seconds']:.1f} s)",
            flush=True,
        )
        reference = measure("labels-nilearn", info, scratch, args.repeat)
        row("nilearn", reference)
        row("brainxr from .nii.gz", measure("labels-brainxr-niigz", info, scratch, args.repeat), reference)
        row("brainxr from Zarr", measure("labels-brainxr-zarr", info, scratch, args.repeat), reference)

    info = prepare(args.data, "2mm", args.quick)
    spec = cohort_spec("2mm", args.quick)
    print(f"\nSeed-to-voxel map: 1 run, 2 mm x {spec['n_volumes']} volumes, 6 mm smoothing, PCC sphere 8 mm", flush=True)
    reference = measure("seed-nilearn", info, scratch, args.repeat)
    row("nilearn", reference)
    row("brainxr", measure("seed-brainxr", info, scratch, args.repeat), reference)
    print(f"\n(load average at the end: {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
