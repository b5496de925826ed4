"""Benchmark: sparse inverse covariance, brainxr beside scikit-learn and nilearn.

1. ``GraphicalLassoCV`` on 264 regions x 168 samples drawn from a known sparse
   precision (seeded; ``make_sparse_spd_matrix``, unit variances), brainxr
   beside scikit-learn, default parameters (5 folds, 4 alphas, 4 refinements).
   Problems: "moderate" (weak edges, the CV optimum lies where
   scikit-learn's solver converges) and "dense optimum" (strong edges: the
   optimum lies at small alphas where scikit-learn's coordinate descent fails
   and scores -inf, so it stops at its last finite score while brainxr solves
   there). A third, "sphere example", is the 264 Power-sphere signals of
   nilearn's sphere example computed by brainxr on a synthetic subject
   (100 volumes, 4 mm, "simple" confounds, 0.01-0.1 Hz): band-passed, they
   span about 25 dimensions, the held-out likelihood keeps rising as alpha
   falls, and each library stops where its solver gives up (brainxr: a fold
   solve that does not converge within max_iter / 4 Newton iterations). Reported: wall and CPU time, peak memory, ``alpha_`` of both and
   whether brainxr's is within one step of scikit-learn's final grid, and the
   error of each refit precision against an accurate solution at the same
   alpha (scikit-learn's ``graphical_lasso`` with tol=1e-8, enet_tol=1e-10).
2. One ``graphical_lasso`` solve of the moderate problem at scikit-learn's
   ``alpha_``, both with default tolerances: time and error.
3. ``GroupSparseCovarianceCV`` on 20 subjects x 40 regions x 150 samples
   (a shared sparse topology, seeded), brainxr beside nilearn, default
   parameters: times, memory, ``alpha_`` and precision differences.

Each side runs in its own subprocess (benchmarks/_harness.py): imports, data
generation and numba's compile-cache load happen before the clock; peak
memory is polled from /proc and checked against ``ru_maxrss``. CPU time of
the timed section is reported too (the 2-core machine is often shared).

Run ``python benchmarks/sparse_covariance.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import measure, print_table  # noqa: E402

ONE_BLAS_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

#: make_signals arguments of the GraphicalLassoCV problems
PROBLEMS = {
    "moderate": {"alpha": 0.98, "smallest_coef": 0.1, "largest_coef": 0.4},
    "dense optimum": {"alpha": 0.98, "smallest_coef": 0.4, "largest_coef": 0.7},
}
#: the signals of nilearn's sphere example, in brainxr, on a synthetic subject
SPHERE_EXAMPLE = "sphere example"

_MAKE_SIGNALS = """
import numpy as np
from sklearn.datasets import make_sparse_spd_matrix

def make_signals(n_features, n_samples, alpha, smallest_coef, largest_coef, seed=0):
    rng = np.random.RandomState(seed)
    precision = make_sparse_spd_matrix(n_features, alpha=alpha, smallest_coef=smallest_coef,
                                       largest_coef=largest_coef, random_state=rng)
    covariance = np.linalg.inv(precision)
    scale = np.sqrt(np.diag(covariance))
    covariance /= np.outer(scale, scale)
    return rng.multivariate_normal(np.zeros(n_features), covariance, size=n_samples)
"""

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


def _loadavg():
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _grid_step(alphas, alpha):
    """Largest log-ratio between ``alpha`` and its neighbours on the explored grid."""
    import numpy as np

    explored = np.sort(np.asarray(alphas))
    position = int(np.searchsorted(explored, alpha))
    neighbours = explored[max(position - 1, 0) : position + 2]
    return float(np.max(np.abs(np.log(neighbours[1:] / neighbours[:-1]))))


def _accurate(emp_cov, alpha):
    """scikit-learn's graphical lasso at tol=1e-8, enet_tol=1e-10 (brainxr's at 1e-12 if it fails)."""
    import warnings

    from sklearn.covariance import graphical_lasso

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return graphical_lasso(emp_cov, alpha, tol=1e-8, enet_tol=1e-10, max_iter=1000)[1], "scikit-learn"
        except FloatingPointError:
            from brainxr.connectome.sparse_inverse_covariance import graphical_lasso as brainxr_graphical_lasso

            return brainxr_graphical_lasso(emp_cov, alpha, tol=1e-12)[1], "brainxr tol=1e-12"


def _sphere_example_signals(folder):
    """(time, 264) Power-sphere signals of the sphere example's first subject, as it computes them."""
    import numpy as np

    from brainxr import datasets
    from brainxr.interfaces.fmriprep import load_confounds_strategy
    from brainxr.maskers import NiftiSpheresMasker

    data = datasets.make_synthetic_cohort(Path(folder) / "sphere-example", n_subjects=3, n_volumes=100,
                                          resolution=4, overwrite=True)
    confounds, sample_mask = load_confounds_strategy(data.func[0], denoise_strategy="simple")
    power = datasets.fetch_coords_power_2011()
    coords = np.vstack((power.rois["x"], power.rois["y"], power.rois["z"])).T
    masker = NiftiSpheresMasker(seeds=coords, smoothing_fwhm=6, radius=5.0, detrend=True,
                                standardize="zscore_sample", low_pass=0.1, high_pass=0.01, t_r=2)
    return masker.fit_transform(data.func[0], confounds=confounds, sample_mask=sample_mask)


def _problem_signals(problem, n_features, n_samples, folder):
    namespace = {}
    exec(_MAKE_SIGNALS, namespace)
    if problem == SPHERE_EXAMPLE:
        return _sphere_example_signals(folder)
    return namespace["make_signals"](n_features, n_samples, **PROBLEMS[problem])


def _cv_side(side, signals_path, out):
    estimator = {
        "scikit-learn": "sklearn.covariance.GraphicalLassoCV()",
        "brainxr": "BrainxrGraphicalLassoCV()",
        "brainxr n_jobs=2": "BrainxrGraphicalLassoCV(n_jobs=2)",
    }[side]
    setup = f"""
import numpy as np
import warnings, time
import sklearn.covariance
from brainxr.connectome.sparse_inverse_covariance import GraphicalLassoCV as BrainxrGraphicalLassoCV
X = np.load({str(signals_path)!r})
BrainxrGraphicalLassoCV(alphas=2, n_refinements=1, cv=2).fit(X[:40, :8])  # compile cache
warnings.simplefilter("ignore")
"""
    body = f"""
cpu = time.process_time()
model = {estimator}.fit(X)
cpu = time.process_time() - cpu
np.save({str(out)!r}, model.precision_)
result = {{"alpha": float(model.alpha_), "alphas": model.cv_results_["alphas"][:-1].tolist(),
          "scores": model.cv_results_["mean_test_score"][:-1].tolist(), "cpu_s": cpu}}
"""
    env = dict(os.environ, **ONE_BLAS_THREAD)
    return measure(setup, body, env=env)


def bench_graphical_lasso_cv(n_features=264, n_samples=168, problems=(*PROBLEMS, SPHERE_EXAMPLE)):
    """GraphicalLassoCV: brainxr beside scikit-learn (see the module docstring)."""
    import numpy as np
    from sklearn.covariance import empirical_covariance

    sides = ("scikit-learn", "brainxr", "brainxr n_jobs=2")
    with tempfile.TemporaryDirectory() as folder:
        for problem in problems:
            X = _problem_signals(problem, n_features, n_samples, folder)
            signals_path = Path(folder) / "signals.npy"
            np.save(signals_path, X)
            print(f"\nGraphicalLassoCV, {problem} problem: {X.shape[1]} regions x {X.shape[0]} samples "
                  f"(load average before: {_loadavg()})", flush=True)
            runs = {}
            for side in sides:
                out = Path(folder) / f"{side.replace(' ', '_')}.npy"
                runs[side] = _cv_side(side, signals_path, out)
                runs[side]["precision"] = np.load(out)
            emp_cov = empirical_covariance(X)
            sklearn_result = runs["scikit-learn"]["result"]
            step = _grid_step(sklearn_result["alphas"], sklearn_result["alpha"])
            sklearn_failed = int(np.sum(~np.isfinite(sklearn_result["scores"])))
            references = {}
            rows = []
            for side in sides:
                run = runs[side]
                alpha = run["result"]["alpha"]
                if alpha not in references:
                    references[alpha] = _accurate(emp_cov, alpha)
                reference, reference_name = references[alpha]
                error = float(np.abs(run["precision"] - reference).max())
                distance = abs(np.log(alpha / sklearn_result["alpha"]))
                rows.append((
                    side,
                    f"{run['wall_s']:.2f}",
                    f"{run['result']['cpu_s']:.2f}",
                    f"{runs['scikit-learn']['wall_s'] / run['wall_s']:.1f}x",
                    f"{runs['scikit-learn']['result']['cpu_s'] / run['result']['cpu_s']:.1f}x",
                    f"{run['peak_mb']:.0f} ({run['peak_above_baseline_mb']:.0f})",
                    f"{alpha:.4f}",
                    "-" if side == "scikit-learn" else ("yes" if distance <= step * (1 + 1e-9) else "NO")
                    + f" ({distance / step:.2f} step)",
                    f"{error:.1e}",
                    f"{np.count_nonzero(np.triu(run['precision'], 1))}",
                ))
            print_table(
                f"scikit-learn scored -inf at {sklearn_failed} of {len(sklearn_result['scores'])} alphas; "
                f"its final grid step near alpha_ is x{np.exp(step):.3f}; precision error against "
                f"an accurate solution ({', '.join(sorted({name for _, name in references.values()}))}) "
                "at the same alpha",
                rows,
                ("side", "wall s", "CPU s", "wall ratio", "CPU ratio", "peak MB (above start)", "alpha_",
                 "within a grid step", "precision error", "edges"),
            )
            if problem == "moderate":
                _bench_single_solve(X, emp_cov, sklearn_result["alpha"])
    print(f"(load average after: {_loadavg()})")


def _bench_single_solve(X, emp_cov, alpha):
    import numpy as np

    rows = []
    reference, reference_name = _accurate(emp_cov, alpha)
    for side, call in (
        ("scikit-learn", "sklearn.covariance.graphical_lasso(S, ALPHA)[1]"),
        ("brainxr", "brainxr_graphical_lasso(S, ALPHA)[1]"),
    ):
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "precision.npy"
            setup = _MAKE_SIGNALS + f"""
import warnings, time
import sklearn.covariance
from brainxr.connectome.sparse_inverse_covariance import graphical_lasso as brainxr_graphical_lasso
from sklearn.covariance import empirical_covariance
warnings.simplefilter("ignore")
S = empirical_covariance(make_signals({X.shape[1]}, {X.shape[0]}, **{PROBLEMS['moderate']!r}))
ALPHA = {alpha!r}
brainxr_graphical_lasso(S[:10, :10], ALPHA)  # compile cache
"""
            body = f"""
cpu = time.process_time()
precision = {call}
cpu = time.process_time() - cpu
np.save({str(out)!r}, precision)
result = {{"cpu_s": cpu}}
"""
            run = measure(setup, body, env=dict(os.environ, **ONE_BLAS_THREAD))
            precision = np.load(out)
        rows.append((side, run["wall_s"], run["result"]["cpu_s"], float(np.abs(precision - reference).max())))
    print_table(
        f"graphical_lasso at alpha={alpha:.4f}, default tolerances; error against {reference_name} "
        "tol=1e-8",
        [(side, f"{wall:.3f}", f"{cpu:.3f}", f"{rows[0][1] / wall:.1f}x", f"{error:.1e}")
         for side, wall, cpu, error in rows],
        ("side", "wall s", "CPU s", "wall ratio", "precision error"),
    )


def bench_group_sparse_covariance_cv(n_subjects=20, n_features=40, n_samples=150):
    """GroupSparseCovarianceCV: brainxr beside nilearn (see the module docstring)."""
    import numpy as np

    print(f"\nGroupSparseCovarianceCV: {n_subjects} subjects x {n_features} regions x {n_samples} "
          f"samples (load average before: {_loadavg()})", flush=True)
    sides = {
        "nilearn": "nilearn.connectome.GroupSparseCovarianceCV()",
        "brainxr": "BrainxrGroupSparseCovarianceCV()",
        "brainxr n_jobs=2": "BrainxrGroupSparseCovarianceCV(n_jobs=2)",
    }
    runs = {}
    with tempfile.TemporaryDirectory() as folder:
        for side, estimator in sides.items():
            out = Path(folder) / f"{side.replace(' ', '_')}.npy"
            setup = _MAKE_SUBJECTS + f"""
import warnings, time
import nilearn.connectome
from brainxr.connectome.group_sparse_inverse_covariance import GroupSparseCovarianceCV as BrainxrGroupSparseCovarianceCV
subjects = make_subjects({n_subjects}, {n_features}, {n_samples})
warnings.simplefilter("ignore")
BrainxrGroupSparseCovarianceCV(alphas=[0.1], cv=2).fit(
    [s[:20, :5] for s in subjects[:2]])  # compile cache
"""
            body = f"""
cpu = time.process_time()
model = {estimator}.fit(subjects)
cpu = time.process_time() - cpu
np.save({str(out)!r}, model.precisions_)
result = {{"alpha": float(model.alpha_), "alphas": list(map(float, model.cv_alphas_)), "cpu_s": cpu}}
"""
            runs[side] = measure(setup, body, env=dict(os.environ, **ONE_BLAS_THREAD))
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
            f"{run['peak_mb']:.0f} ({run['peak_above_baseline_mb']:.0f})",
            f"{alpha:.6f}",
            "-" if side == "nilearn" else ("yes" if distance <= step * (1 + 1e-9) else "NO")
            + f" ({distance / step:.2f} step)",
            f"{np.abs(run['precisions'] - reference['precisions']).max():.1e}",
        ))
    print_table(
        "precision difference: max |brainxr - nilearn| over all subjects",
        rows,
        ("side", "wall s", "CPU s", "wall ratio", "CPU ratio", "peak MB (above start)", "alpha_",
         "within a grid step", "precision diff"),
    )
    print(f"(load average after: {_loadavg()})")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regions", type=int, default=264)
    parser.add_argument("--samples", type=int, default=168)
    parser.add_argument("--problems", default=",".join([*PROBLEMS, SPHERE_EXAMPLE]),
                        help="comma-separated: " + ", ".join([*PROBLEMS, SPHERE_EXAMPLE]))
    parser.add_argument("--subjects", type=int, default=20)
    parser.add_argument("--group-regions", type=int, default=40)
    parser.add_argument("--group-samples", type=int, default=150)
    parser.add_argument("--skip-group", action="store_true")
    args = parser.parse_args()
    problems = tuple(p.strip() for p in args.problems.split(",") if p.strip())
    if problems:
        bench_graphical_lasso_cv(args.regions, args.samples, problems)
    if not args.skip_group:
        bench_group_sparse_covariance_cv(args.subjects, args.group_regions, args.group_samples)


if __name__ == "__main__":
    main()
