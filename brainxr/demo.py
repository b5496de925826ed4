"""``brainxr demo``: the BIDS App (``brainxr run``) on a built-in synthetic fMRIPrep cohort.

It writes, under OUTDIR:

- ``fmriprep/``: the synthetic fMRIPrep derivatives (the input; its ground
  truth in ``fmriprep/ground_truth``, its atlas in ``fmriprep/atlas``);
- ``work/cohort.zarr``: the cohort store (``--work-dir``);
- ``connectivity/``: the BIDS-derivative outputs of ``brainxr run``
  (participant then group level), its participant reports
  (``sub-XX.html``) and group report (``group.html``).

No folder is named ``brainxr``, so Python started in OUTDIR imports the
library. A rerun with the same arguments reuses the data and skips what is
done; with other arguments (another ``--seed``...) the data are made again
and the store and outputs start clean.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brainxr._views import view

STRATEGIES = ("simple", "scrubbing.5")
KINDS = ("correlation", "partial correlation", "tangent")


@dataclass
class DemoOutputs:
    """Where the demo wrote its outputs, the commands it ran, and how well it recovered the ground truth."""

    outdir: Path
    derivatives: Path
    store: Path
    bids_outputs: Path
    commands: list = field(default_factory=list)
    reports: list = field(default_factory=list)
    truth_recovery: float = float("nan")
    seconds: dict = field(default_factory=dict)
    summary: object = None

    def __str__(self):
        lines = [
            f"brainxr demo outputs in {self.outdir}:",
            f"  synthetic fMRIPrep derivatives  {self.derivatives}",
            f"  cohort store (Zarr)             {self.store}",
            f"  connectivity derivatives        {self.bids_outputs}",
        ]
        lines += [f"  report                          {path}" for path in self.reports]
        lines += ["  the commands it ran:"] + [f"    {command}" for command in self.commands]
        lines.append("  ground truth recovered: correlation of the group partial correlations with the "
                     f"true ones = {self.truth_recovery:.2f}")
        lines.append("  timings: " + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in self.seconds.items()))
        return "\n".join(lines)

    __repr__ = view("summary_text")
    _repr_html_ = view("summary_html")


def _parameters_file(derivatives: Path) -> Path:
    return derivatives / "ground_truth" / "parameters.json"


def run_demo(outdir="brainxr-demo", n_subjects: int = 8, n_volumes: int = 200, resolution: float = 4,
             seed: int = 0, n_workers: int = 2, quiet: bool = False) -> DemoOutputs:
    """Make the synthetic cohort and run ``brainxr run`` on it, participant then group level.

    Parameters
    ----------
    outdir : path
        Output folder (created).
    n_subjects, n_volumes, resolution, seed
        The synthetic cohort (:func:`brainxr.datasets.make_synthetic_cohort`).
    n_workers : int
        Threads.
    quiet : bool
        No progress bars.

    Returns
    -------
    DemoOutputs
    """
    from brainxr._command_line import run_command, run_parser
    from brainxr.datasets import make_synthetic_cohort

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    outputs = DemoOutputs(outdir=outdir, derivatives=outdir / "fmriprep", store=outdir / "work" / "cohort.zarr",
                          bids_outputs=outdir / "connectivity")
    wanted = dict(n_subjects=n_subjects, n_volumes=n_volumes, resolution=float(resolution), seed=seed)
    started = time.perf_counter()
    previous = _parameters_file(outputs.derivatives)
    recorded = json.loads(previous.read_text()) if previous.exists() else {}
    if any(recorded.get(key) != value for key, value in wanted.items()):
        # other data: the store and the outputs of the previous data must not be reused
        for stale in (outdir / "work", outputs.bids_outputs):
            shutil.rmtree(stale, ignore_errors=True)
        make_synthetic_cohort(outputs.derivatives, overwrite=True, **wanted)
    outputs.seconds["synthetic data"] = time.perf_counter() - started
    atlas = next((outputs.derivatives / "atlas").glob("*_atlas-Synth_dseg.nii.gz"))

    parser = run_parser()
    common = ["--atlas", str(atlas), "--denoise-strategy", *STRATEGIES, "--kind", *KINDS,
              "--work-dir", str(outdir / "work"), "--n-workers", str(n_workers)] + (["--quiet"] if quiet else [])
    for level in ("participant", "group"):
        argv = ["run", str(outputs.derivatives), str(outputs.bids_outputs), level, *common]
        outputs.commands.append("brainxr " + " ".join(f"'{a}'" if " " in a else a for a in argv))
        started = time.perf_counter()
        summary = run_command(parser.parse_args(argv))
        outputs.seconds[f"brainxr run {level}"] = time.perf_counter() - started
        outputs.reports += summary.reports
        if level == "participant":
            outputs.summary = summary
        elif not summary.ok:
            outputs.summary = summary
    outputs.truth_recovery = _truth_recovery(outputs)
    return outputs


def _truth_recovery(outputs: DemoOutputs) -> float:
    """Correlation of the group mean partial correlations (simple strategy) with the ground truth."""
    import pandas as pd

    from brainxr.bids_app.outputs import read_json, read_relmat

    truth_dir = outputs.derivatives / "ground_truth"
    paths = sorted((outputs.bids_outputs / "group").glob("*_stat-mean_meas-ShrunkPartialCorrelation_desc-simple_relmat.tsv"))
    if not paths:
        return float("nan")
    estimate = read_relmat(paths[0])
    names = read_json(paths[0].with_suffix(".json"))["RegionNames"]
    precision = pd.read_csv(truth_dir / "precision.tsv", sep="\t", index_col=0).loc[names, names].to_numpy()
    scale = np.sqrt(np.diag(precision))
    truth = -precision / np.outer(scale, scale)
    lower = np.tril_indices(len(names), -1)
    keep = np.isfinite(estimate[lower])
    return float(np.corrcoef(estimate[lower][keep], truth[lower][keep])[0, 1])
