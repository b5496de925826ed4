"""Benchmark: sparse inverse covariance, brainxr beside scikit-learn and nilearn.

Every side runs in a fresh Python process and its clock starts before the
first import: imports, numba's compilation or cache load, and the fit all
count, as for a user who runs a script. brainxr runs twice per problem:
**cold** (an empty ``NUMBA_CACHE_DIR``, the first use after installation:
the kernels are compiled) and **warm** (the cache the cold run wrote: every
later process); ``n_jobs=2`` runs warm. One BLAS thread everywhere (the
machine has 2 cores and is shared; scikit-learn's folds are sequential).

1. ``GraphicalLassoCV`` (default parameters but ``cv``) against
   scikit-learn's, on

   - ``network``: 264 regions x 168 samples drawn from a known sparse
     precision (``make_sparse_spd_matrix``, weak edges, unit variances,
     seeded), with ``cv=3`` and with the default 5 folds: the held-out
     likelihood has one maximum where scikit-learn's solver converges;
   - ``dense optimum``: the same with strong edges: the optimum lies at small
     alphas where scikit-learn's coordinate descent fails (-inf) and stops at
     its last finite score, while brainxr's converged scores stand;
   - ``Power-264`` and ``Dosenbach-160``: the sphere signals of nilearn's
     sphere example (seed 000) computed by brainxr's NiftiSpheresMasker on a
     synthetic subject as the example writes it (168 volumes, 4 mm, "simple"
     confounds, 6 mm smoothing, 0.01-0.1 Hz, ``cv=3``): band-passed, they span
     fewer dimensions than regions and the held-out likelihood rises as alpha
     falls until the solvers give up.

   Reported: wall and CPU time and their ratios (scikit-learn / brainxr), peak
   memory (``VmHWM``), ``alpha_``, whether brainxr's is within one step of
   scikit-learn's final grid (judged only where scikit-learn's choice is not
   its last finite score, i.e. its folds converged there), the error of each
   precision against an accurate solve at its own alpha_ (brainxr's
   ``graphical_lasso`` at a duality gap of 1e-10; scikit-learn's solver fails
   at some of these alphas), and the largest difference from scikit-learn's
   precision.
2. ``GroupSparseCovarianceCV`` on 20 subjects x 40 regions x 150 samples (a
   shared sparse topology, seeded) against nilearn's, default parameters:
   times, memory, ``alpha_`` and the largest precision difference.

Run ``python benchmarks/sparse_covariance.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import compile_bytecode, load_average, measure, print_table  # noqa: E402

ONE_BLAS_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

#: make_signals arguments of the network problems
NETWORKS = {
    "network": {"alpha": 0.98, "smallest_coef": 0.1, "largest_coef": 0.4},
    "dense optimum": {"alpha": 0.98, "smallest_coef": 0.4, "largest_coef": 0.7},
}
#: name -> (data, cv)
PROBLEMS = {
    "network cv=3": ("network", 3),
    "network cv=5": ("network", 5),
    "dense optimum cv=5": ("dense optimum", 5),
    "Power-264 spheres cv=3": ("Power-264", 3),
    "Dosenbach-160 spheres cv=3": ("Dosenbach-160", 3),
}

_MAKE_SUBJECTS = """
import numpy as np

def make_subjects(n_subjects, n_features, n_samples, density=0.1, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.triu(rng.random((n_features, n_features)) < density, k=1)
    subjects = []
    for _ in range(n_subjects):
        weights = np.zeros((n_features, n_features))
        weights[mask] = rng.uniform(0.1, 0.4, mask.sum()) * rng.choice([-1, 1], mask.sum())
        precision = weights + weights.T
        precision += np.eye(n_features) * (np.abs(np.linalg.eigvalsh(precision)).max() + 0.5)
        signals = rng.multivariate_normal(np.zeros(n_features), np.linalg.inv(precision), size=n_samples)
        subjects.append(signals / signals.std(axis=0))
    return subjects
"""


def _network_signals(n_features, n_samples, alpha, smallest_coef, largest_coef, seed=0):
    import numpy as np
    from sklearn.datasets import make_sparse_spd_matrix

    rng = np.random.RandomState(seed)
    precision = make_sparse_spd_matrix(n_features, alpha=alpha, smallest_coef=smallest_coef,
                                       largest_coef=largest_coef, random_state=rng)
    covariance = np.linalg.inv(precision)
    scale = np.sqrt(np.diag(covariance))
    covariance /= np.outer(scale, scale)
    return rng.multivariate_normal(np.zeros(n_features), covariance, size=n_samples)


@functools.cache
def _sphere_example_subject(folder):
    """The sphere example's data: a synthetic fMRIPrep subject (168 volumes, 4 mm), made once."""
    from brainxr import datasets

    return datasets.make_synthetic_cohort(Path(folder) / "sphere-example", n_subjects=3, n_volumes=168,
                                          resolution=4, overwrite=True)


def _sphere_signals(folder, atlas):
    """The (time, region) sphere signals of the sphere example's first subject, as it computes them."""
    import numpy as np

    from brainxr import datasets
    from brainxr.interfaces.fmriprep import load_confounds_strategy
    from brainxr.maskers import NiftiSpheresMasker

    data = _sphere_example_subject(str(folder))
    confounds, sample_mask = load_confounds_strategy(data.func[0], denoise_strategy="simple")
    if atlas == "Power-264":
        coords, radius = datasets.fetch_coords_power_2011(), 5.0
    else:
        coords, radius = datasets.fetch_coords_dosenbach_2010(), 4.5
    coords = np.vstack((coords.rois["x"], coords.rois["y"], coords.rois["z"])).T
    masker = NiftiSpheresMasker(seeds=coords, smoothing_fwhm=6, radius=radius, detrend=True,
                                standardize="zscore_sample", low_pass=0.1, high_pass=0.01, t_r=2)
    return masker.fit_transform(data.func[0], confounds=confounds, sample_mask=sample_mask)


def _signals(data, folder):
    if data in NETWORKS:
        return _network_signals(264, 168, **NETWORKS[data])
    return _sphere_signals(folder, data)


def _grid_step(alphas, alpha):
    """Largest log-ratio between ``alpha`` and its neighbours on the explored grid."""
    import numpy as np

    explored = np.sort(np.asarray(alphas))
    position = int(np.searchsorted(explored, alpha))
    neighbours = explored[max(position - 1, 0) : position + 2]
    return float(np.max(np.abs(np.log(neighbours[1:] / neighbours[:-1]))))


def _converged_choice(result):
    """scikit-learn's alpha_ has a finite score after it: its folds converged around it."""
    import numpy as np

    alphas, scores = np.asarray(result["alphas"]), np.asarray(result["scores"])
    best = np.flatnonzero(alphas == result["alpha"])[-1]
    return bool(best + 1 < len(scores) and np.isfinite(scores[best + 1]))


def _accurate(emp_cov, alpha):
    """The graphical lasso at ``alpha`` to a duality gap of 1e-10."""
    import warnings

    from brainxr.connectome import graphical_lasso

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return graphical_lasso(emp_cov, alpha, tol=1e-10, max_iter=1000)[1]


def _fresh(body, env, out):
    """``body`` (imports included) in a fresh process; the precision saved to ``out``."""
    return measure(
        "",
        "cpu_start = time.process_time()\n" + body + "\nresult['cpu_s'] = time.process_time() - cpu_start\n",
        env=env,
        epilogue=f"np.save({str(out)!r}, precision)\n",
    )


def bench_graphical_lasso_cv(problems):
    """GraphicalLassoCV: brainxr beside scikit-learn (see the module docstring)."""
    import numpy as np
    from sklearn.covariance import empirical_covariance

    with tempfile.TemporaryDirectory() as folder:
        for problem in problems:
            data, cv = PROBLEMS[problem]
            X = np.asarray(_signals(data, folder))
            signals_path = Path(folder) / "signals.npy"
            np.save(signals_path, X)
            cache = Path(folder) / f"numba-cache-{problem.replace(' ', '_')}"
            print(f"\nGraphicalLassoCV, {problem}: {X.shape[1]} regions x {X.shape[0]} samples "
                  f"({load_average()})", flush=True)
            sides = {
                "scikit-learn": ("sklearn.covariance", f"GraphicalLassoCV(cv={cv})", {}),
                "brainxr cold": ("brainxr.connectome", f"GraphicalLassoCV(cv={cv})", {"NUMBA_CACHE_DIR": str(cache)}),
                "brainxr warm": ("brainxr.connectome", f"GraphicalLassoCV(cv={cv})", {"NUMBA_CACHE_DIR": str(cache)}),
                "brainxr warm n_jobs=2": ("brainxr.connectome", f"GraphicalLassoCV(cv={cv}, n_jobs=2)",
                                          {"NUMBA_CACHE_DIR": str(cache)}),
            }
            runs = {}
            for side, (module, estimator, extra_env) in sides.items():
                out = Path(folder) / "precision.npy"
                body = f"""
import warnings
import numpy as np
from {module} import GraphicalLassoCV
warnings.simplefilter("ignore")
X = np.load({str(signals_path)!r})
model = {estimator}.fit(X)
precision = model.precision_
result = {{"alpha": float(model.alpha_), "alphas": model.cv_results_["alphas"][:-1].tolist(),
          "scores": model.cv_results_["mean_test_score"][:-1].tolist()}}
"""
                env = {key: value for key, value in os.environ.items() if not key.startswith("NUMBA_")}
                runs[side] = _fresh(body, dict(env, **ONE_BLAS_THREAD, **extra_env), out)
                runs[side]["precision"] = np.load(out)
            emp_cov = empirical_covariance(X)
            reference = runs["scikit-learn"]
            sklearn_result = reference["result"]
            step = _grid_step(sklearn_result["alphas"], sklearn_result["alpha"])
            converged = _converged_choice(sklearn_result)
            accurate = {}
            rows = []
            for side, run in runs.items():
                alpha = run["result"]["alpha"]
                if alpha not in accurate:
                    accurate[alpha] = _accurate(emp_cov, alpha)
                distance = abs(np.log(alpha / sklearn_result["alpha"]))
                if side == "scikit-learn":
                    within = "-"
                else:
                    within = ("yes" if distance <= step * (1 + 1e-9) else "NO") + f" ({distance / step:.2f} step)"
                    if not converged:
                        within += ", scikit-learn at its failure"
                rows.append((
                    side,
                    f"{run['wall_s']:.2f}",
                    f"{run['result']['cpu_s']:.2f}",
                    f"{reference['wall_s'] / run['wall_s']:.1f}x",
                    f"{reference['result']['cpu_s'] / run['result']['cpu_s']:.1f}x",
                    f"{run['peak_mb']:.0f}",
                    f"{alpha:.4f}",
                    within,
                    f"{np.abs(run['precision'] - accurate[alpha]).max():.1e}",
                    f"{np.abs(run['precision'] - reference['precision']).max():.1e}",
                    f"{np.count_nonzero(np.triu(run['precision'], 1))}",
                ))
            failed = int(np.sum(~np.isfinite(sklearn_result["scores"])))
            print_table(
                f"imports and compilation included; scikit-learn scored -inf at {failed} of "
                f"{len(sklearn_result['scores'])} alphas; its final grid step near alpha_ is x{np.exp(step):.3f}",
                rows,
                ("side", "wall s", "CPU s", "wall ratio", "CPU ratio", "peak MB", "alpha_", "within a grid step",
                 "error vs accurate", "max diff vs sklearn", "edges"),
            )
            print(f"({load_average()})", flush=True)


def bench_group_sparse_covariance_cv(n_subjects=20, n_features=40, n_samples=150):
    """GroupSparseCovarianceCV: brainxr beside nilearn (see the module docstring)."""
    import numpy as np

    print(f"\nGroupSparseCovarianceCV: {n_subjects} subjects x {n_features} regions x {n_samples} "
          f"samples ({load_average()})", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        cache = Path(folder) / "numba-cache"
        sides = {
            "nilearn": ("nilearn.connectome", "GroupSparseCovarianceCV()", {}),
            "brainxr cold": ("brainxr.connectome", "GroupSparseCovarianceCV()", {"NUMBA_CACHE_DIR": str(cache)}),
            "brainxr warm": ("brainxr.connectome", "GroupSparseCovarianceCV()", {"NUMBA_CACHE_DIR": str(cache)}),
            "brainxr warm n_jobs=2": ("brainxr.connectome", "GroupSparseCovarianceCV(n_jobs=2)",
                                      {"NUMBA_CACHE_DIR": str(cache)}),
        }
        runs = {}
        for side, (module, estimator, extra_env) in sides.items():
            out = Path(folder) / "precisions.npy"
            body = _MAKE_SUBJECTS + f"""
import warnings
from {module} import GroupSparseCovarianceCV
warnings.simplefilter("ignore")
subjects = make_subjects({n_subjects}, {n_features}, {n_samples})
model = {estimator}.fit(subjects)
precision = model.precisions_
result = {{"alpha": float(model.alpha_), "alphas": list(map(float, model.cv_alphas_))}}
"""
            env = {key: value for key, value in os.environ.items() if not key.startswith("NUMBA_")}
            runs[side] = _fresh(body, dict(env, **ONE_BLAS_THREAD, **extra_env), out)
            runs[side]["precisions"] = np.load(out)
    reference = runs["nilearn"]
    step = _grid_step(reference["result"]["alphas"], reference["result"]["alpha"])
    rows = []
    for side, run in runs.items():
        alpha = run["result"]["alpha"]
        distance = abs(np.log(alpha / reference["result"]["alpha"]))
        rows.append((
            side,
            f"{run['wall_s']:.2f}",
            f"{run['result']['cpu_s']:.2f}",
            f"{reference['wall_s'] / run['wall_s']:.1f}x",
            f"{reference['result']['cpu_s'] / run['result']['cpu_s']:.1f}x",
            f"{run['peak_mb']:.0f}",
            f"{alpha:.6f}",
            "-" if side == "nilearn" else ("yes" if distance <= step * (1 + 1e-9) else "NO")
            + f" ({distance / step:.2f} step)",
            f"{np.abs(run['precisions'] - reference['precisions']).max():.1e}",
        ))
    print_table(
        "imports and compilation included; precision difference: max |brainxr - nilearn| over all subjects",
        rows,
        ("side", "wall s", "CPU s", "wall ratio", "CPU ratio", "peak MB", "alpha_", "within a grid step",
         "precision diff"),
    )
    print(f"({load_average()})")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", default=",".join(PROBLEMS),
                        help="comma-separated, among: " + ", ".join(PROBLEMS))
    parser.add_argument("--subjects", type=int, default=20)
    parser.add_argument("--group-regions", type=int, default=40)
    parser.add_argument("--group-samples", type=int, default=150)
    parser.add_argument("--skip-group", action="store_true")
    args = parser.parse_args()
    problems = [p.strip() for p in args.problems.split(",") if p.strip()]
    unknown = set(problems) - set(PROBLEMS)
    if unknown:
        parser.error(f"unknown problems {sorted(unknown)}; choose among {list(PROBLEMS)}")
    compile_bytecode("brainxr")  # as installed: nilearn's and scikit-learn's bytecode is there too
    if problems:
        bench_graphical_lasso_cv(problems)
    if not args.skip_group:
        bench_group_sparse_covariance_cv(args.subjects, args.group_regions, args.group_samples)


if __name__ == "__main__":
    main()
