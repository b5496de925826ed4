"""Dictionary learning + region extraction (nilearn's example workflow 002): brainxr beside nilearn.

Usage::

    python benchmarks/decomposition.py [--data DIR] [--subjects 12] [--volumes 120] [--resolution 3]
                                       [--components 5 20] [--quick]

A synthetic fMRIPrep cohort (:func:`brainxr.datasets.make_synthetic_cohort`,
generated once into ``--data`` and reused) goes through the workflow, for
each number of components:

1. ``DictLearning(n_components, smoothing_fwhm=6, random_state=0).fit(runs)``
   (the per-run mask, smoothing, cleaning and temporal SVD, then the group
   dictionary learning);
2. ``RegionExtractor(components_img_, threshold=0.5, standardize=True,
   min_region_size=1350).fit()``;
3. ``extractor.transform(run, confounds=motion)`` for every run.

Sides, each in its own subprocess (imports before the clock; wall time and
the process's own peak resident memory, VmHWM, see ``benchmarks/_harness.py``):

- ``nilearn``: nilearn 0.14.1 as the example runs it (``n_jobs=1``);
- ``nilearn n_jobs=2``: nilearn with its runs reduced by 2 joblib processes;
- ``brainxr``: the same calls on ``brainxr.decomposition`` /
  ``brainxr.regions`` (runs reduced as one lazy task each, on dask's threads,
  2 cores; numba JIT already cached by a warm-up run).

BLAS runs one thread per process on every side (2 cores: threads from BLAS
and from dask or joblib would otherwise compete). The components are
compared across sides (Hungarian matching of spatial correlations), and
brainxr's region extraction is run on nilearn's components and compared with
nilearn's regions (equal expected). Ratios are nilearn / brainxr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import measure, print_table  # noqa: E402

MOTION = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]

SETUP = """
import warnings
warnings.simplefilter("ignore")
import json
import numpy as np
import pandas as pd
func = json.loads({func!r})
confound_paths = json.loads({confounds!r})
confounds = [pd.read_csv(path, sep="\\t")[{motion!r}].to_numpy() for path in confound_paths]
{imports}
"""

BODY = """
dict_learn = DictLearning(n_components={n_components}, smoothing_fwhm=6.0, random_state=0{extra})
dict_learn.fit(func)
extractor = RegionExtractor(dict_learn.components_img_, threshold=0.5, standardize=True, min_region_size=1350)
extractor.fit()
signals = [extractor.transform(path, confounds=confound) for path, confound in zip(func, confounds)]
np.save({components_path!r}, dict_learn.components_)
dict_learn.components_img_.to_filename({components_img_path!r})
result = {{"n_regions": int(extractor.regions_img_.shape[-1]), "n_voxels": int(dict_learn.components_.shape[1]),
           "signals_shape": list(signals[0].shape)}}
"""

IMPORTS = {
    "nilearn": "from nilearn.decomposition import DictLearning\nfrom nilearn.regions import RegionExtractor",
    "brainxr": "from brainxr.decomposition import DictLearning\nfrom brainxr.regions.region_extractor import RegionExtractor",
}


def prepare(data_dir: Path, n_subjects: int, n_volumes: int, resolution: float):
    from brainxr.datasets import make_synthetic_cohort

    folder = data_dir / f"cohort-{n_subjects}x{n_volumes}-{resolution}mm"
    marker = folder / "ready.json"
    if marker.exists():
        return json.loads(marker.read_text())
    cohort = make_synthetic_cohort(folder / "derivatives", n_subjects=n_subjects, n_volumes=n_volumes,
                                   resolution=resolution, seed=0, overwrite=True)
    spec = {"func": cohort.func, "confounds": cohort.confounds}
    marker.write_text(json.dumps(spec))
    return spec


def run_side(side: str, spec: dict, n_components: int, out: Path) -> dict:
    library = "nilearn" if side.startswith("nilearn") else "brainxr"
    extra = ", n_jobs=2" if side == "nilearn n_jobs=2" else ""
    setup = SETUP.format(func=json.dumps(spec["func"]), confounds=json.dumps(spec["confounds"]), motion=MOTION,
                         imports=IMPORTS[library])
    tag = side.replace(" ", "_").replace("=", "")
    body = BODY.format(n_components=n_components, extra=extra, components_path=str(out / f"{tag}-{n_components}.npy"),
                       components_img_path=str(out / f"{tag}-{n_components}.nii.gz"))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return measure(setup, body, env=env)


def matched_correlations(first, second):
    from scipy.optimize import linear_sum_assignment

    k = len(first)
    with np.errstate(invalid="ignore", divide="ignore"):  # an all-zero map has no correlation (counted as 0)
        correlation = np.nan_to_num(np.corrcoef(first, second)[:k, k:])
    rows, columns = linear_sum_assignment(-np.abs(correlation))
    return np.abs(correlation[rows, columns])


def regions_on_the_same_maps(components_img_path: str) -> tuple[bool, int]:
    """brainxr's regions of nilearn's components equal nilearn's (and how many)."""
    import warnings

    from nilearn.regions import RegionExtractor as NilearnRegionExtractor

    from brainxr.regions.region_extractor import RegionExtractor

    options = {"threshold": 0.5, "standardize": True, "min_region_size": 1350}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = NilearnRegionExtractor(components_img_path, **options).fit()
    ours = RegionExtractor(components_img_path, **options).fit()
    same = ours.index_ == theirs.index_ and np.array_equal(ours.regions_img_.get_fdata(), theirs.regions_img_.get_fdata())
    return same, len(ours.index_)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "brainxr-bench-decomposition")
    parser.add_argument("--subjects", type=int, default=12)
    parser.add_argument("--volumes", type=int, default=120)
    parser.add_argument("--resolution", type=float, default=3)
    parser.add_argument("--components", type=int, nargs="+", default=[5, 20])
    parser.add_argument("--quick", action="store_true", help="4 subjects x 60 volumes at 4 mm, 5 components")
    args = parser.parse_args()
    if args.quick:
        args.subjects, args.volumes, args.resolution, args.components = 4, 60, 4, [5]
    args.data.mkdir(parents=True, exist_ok=True)
    spec = prepare(args.data, args.subjects, args.volumes, args.resolution)
    print(f"decomposition: {args.subjects} runs x {args.volumes} volumes at {args.resolution:g} mm, "
          f"DictLearning(smoothing_fwhm=6) + RegionExtractor(threshold=0.5, min_region_size=1350) + transform "
          f"of every run with 6 motion confounds")
    out = Path(tempfile.mkdtemp(prefix="decomposition-", dir=args.data))
    # warm-up: numba compiles brainxr's Lasso coding once and caches it, as any second use would find it
    run_side("brainxr", spec, min(args.components), out)
    rows = []
    for n_components in args.components:
        results = {side: run_side(side, spec, n_components, out) for side in ("nilearn", "nilearn n_jobs=2", "brainxr")}
        ours = np.load(out / f"brainxr-{n_components}.npy")
        theirs = np.load(out / f"nilearn-{n_components}.npy")
        similarity = matched_correlations(ours, theirs)
        same_regions, n_regions = regions_on_the_same_maps(str(out / f"nilearn-{n_components}.nii.gz"))
        reference = results["nilearn"]
        for side, result in results.items():
            peak = f"{result['peak_mb']:.0f} ({result['peak_above_baseline_mb']:.0f} above imports)"
            peak += " main process only" if "n_jobs" in side else ""
            rows.append((
                n_components, side, f"{result['wall_s']:.1f}", peak,
                f"{reference['wall_s'] / result['wall_s']:.2f}", f"{result['peak_mb'] / reference['peak_mb']:.2f}",
                result["result"]["n_regions"],
            ))
        rows.append((n_components, "brainxr vs nilearn maps", f"matched |r| min {similarity.min():.3f}",
                     f"median {np.median(similarity):.3f}", "", "",
                     f"brainxr on nilearn's maps: same regions {same_regions} ({n_regions})"))
    print_table(
        f"{len(spec['func'])} runs, {results['brainxr']['result']['n_voxels']} voxels in the mask",
        rows,
        ("components", "side", "wall s", "peak MB", "nilearn / side wall", "side / nilearn peak", "regions"),
    )
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
          "(wall times need an idle machine)")


if __name__ == "__main__":
    main()
