"""``brainxr run``: a BIDS App from fMRIPrep derivatives to connectomes, QC reports and BEP017 outputs.

:func:`run` is the command (:mod:`brainxr.cli` parses its options):

- participant level (:mod:`brainxr.bids_app.participant`): ingest into the
  cohort store of ``--work-dir``, extract each atlas's region signals once,
  clean them for each strategy, compute every kind of connectome, write
  BIDS-derivative files and one HTML report per participant;
- group level (:mod:`brainxr.bids_app.group`): group connectomes, tangent
  space, the runs x QC table, QC-FC and tDOF loss of each strategy, and the
  group report.

Reruns skip what is done (complete runs in the store, outputs whose sidecar
records the same settings); a rerun with nothing to do decides so from the
store's runs index and the output sidecars alone. A failing run is reported
and the others go on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from brainxr._views import view
from brainxr.bids_app.specs import BidsAppError, check_kinds, parse_atlas, parse_strategy

__all__ = ["BidsAppError", "RunSettings", "RunSummary", "run"]

log = logging.getLogger("brainxr.run")
#: voxels drawn in a participant report's carpet plot
CARPET_VOXELS = 3000


@dataclass
class RunSettings:
    """Every option of ``brainxr run`` (see ``brainxr run --help``).

    Attributes
    ----------
    bids_dir, output_dir : pathlib.Path
        The fMRIPrep derivatives (read only) and where outputs are written.
    analysis_level : {"participant", "group"}
        The level to run.
    participant_label, task, space, res
        Which runs (``--participant-label``, ``--task``, ``--space``, ``--res``).
    work_dir : pathlib.Path or None
        Folder of the cohort store (default ``output_dir/work``).
    overwrite : bool
        Ingest and compute again runs that are already done.
    atlas, radius
        The atlases (``--atlas``) and the radius of coordinate spheres.
    denoise_strategy : list of str
        The denoising strategies.
    smoothing_fwhm, standardize, detrend, low_pass, high_pass
        Cleaning of the region signals.
    kinds : list of str
        The kinds of connectome.
    cov_estimator : {"ledoit_wolf", "empirical"}
        The covariance estimator.
    n_workers : int
        Local threads when no cluster is used.
    reports, progress : bool
        Write the HTML reports; show progress bars.
    client : distributed.Client or None
        The cluster to run on.
    """

    bids_dir: Path
    output_dir: Path
    analysis_level: str
    participant_label: list | None = None
    task: str | None = None
    space: str | None = None
    res: str | None = None
    work_dir: Path | None = None
    overwrite: bool = False
    atlas: list = field(default_factory=lambda: ["Schaefer2018:100Parcels7Networks"])
    radius: float | None = None
    denoise_strategy: list = field(default_factory=lambda: ["simple"])
    smoothing_fwhm: float | None = None
    standardize: str | None = "zscore_sample"
    detrend: bool = True
    low_pass: float | None = None
    high_pass: float | None = None
    kinds: list = field(default_factory=lambda: ["correlation"])
    cov_estimator: str = "ledoit_wolf"
    n_workers: int = 2
    reports: bool = True
    progress: bool = True
    client: object = None

    @property
    def store(self) -> str:
        work = str(self.work_dir if self.work_dir is not None else Path(self.output_dir) / "work")
        return work.rstrip("/") + "/cohort.zarr"


@dataclass
class RunSummary:
    """What ``brainxr run`` did.

    Attributes
    ----------
    level : str
        ``"participant"`` or ``"group"``.
    output_dir : pathlib.Path
        Where the outputs are.
    processed, skipped : list
        The runs processed, and those already done.
    failures : list
        The runs that failed (run, stage, message, details).
    reports : list of pathlib.Path
        The HTML reports written.
    seconds : float
        Wall time.
    log_file : pathlib.Path or None
        The log of this run.
    """

    level: str
    output_dir: Path
    processed: list
    skipped: list
    failures: list
    reports: list
    seconds: float
    log_file: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.failures

    def __str__(self) -> str:
        lines = [f"brainxr run {self.level}: {len(self.processed)} run(s) processed, {len(self.skipped)} already done, "
                 f"{len(self.failures)} failed, in {self.seconds:.1f} s; outputs in {self.output_dir}"]
        lines += [f"  FAILED {f.run} ({f.stage}): {f.message}" for f in self.failures]
        lines += [f"  report: {path}" for path in self.reports]
        if self.log_file is not None:
            lines.append(f"  log: {self.log_file}")
        return "\n".join(lines)

    __repr__ = view("summary_text")
    _repr_html_ = view("summary_html")


def _check_settings(settings: RunSettings) -> None:
    if settings.analysis_level not in ("participant", "group"):
        raise BidsAppError(f"analysis_level: expected participant or group, got {settings.analysis_level!r}")
    if Path(settings.output_dir).resolve() == Path(settings.bids_dir).resolve():
        raise BidsAppError("output_dir: must differ from bids_dir (BIDS Apps never write into their input)")
    for name in ("low_pass", "high_pass", "smoothing_fwhm", "radius"):
        value = getattr(settings, name)
        if value is not None and not value > 0:
            raise BidsAppError(f"--{name.replace('_', '-')}: expected a positive number, got {value}")
    if settings.low_pass and settings.high_pass and settings.high_pass >= settings.low_pass:
        raise BidsAppError(f"--high-pass {settings.high_pass} must be below --low-pass {settings.low_pass}")
    if settings.cov_estimator not in ("ledoit_wolf", "empirical"):
        raise BidsAppError(f"--cov-estimator: expected ledoit_wolf or empirical, got {settings.cov_estimator!r}")
    settings.kinds = check_kinds(settings.kinds)


def _setup_log_file(output_dir: Path, level: str) -> tuple[Path, logging.Handler]:
    logs = Path(output_dir) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    path = logs / f"brainxr-run_{level}_{stamp}.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(logging.DEBUG)
    logging.getLogger("brainxr").addHandler(handler)
    logging.getLogger("brainxr").setLevel(logging.DEBUG)
    return path, handler


def _participant_reports(settings, outcome, atlases, strategies, space_entities) -> list:
    """One HTML report per participant with new outputs."""
    if not outcome.touched_participants:
        return []
    import xarray as xr

    from brainxr import store as cohort_store
    from brainxr.bids_app import outputs
    from brainxr.bids_app.participant import output_paths, run_entities
    from brainxr.reporting.connectivity_reports import participant_report

    cohort = outcome.cohort
    written = []
    kinds = [kind for kind in settings.kinds if kind != "tangent"]
    for participant in outcome.touched_participants:
        runs = []
        for key in cohort.sel(sub=participant):
            attrs = cohort_store.read_run_attrs(settings.store, key)
            entities = run_entities(attrs, settings, space_entities)
            censored, coverage, connectome, summary = {}, {}, None, {"volumes": attrs["n_volumes"], "TR (s)": attrs["t_r"]}
            for atlas in atlases:
                for strategy in strategies:
                    paths = output_paths(settings.output_dir, entities, atlas.label, strategy.label, kinds,
                                         settings.cov_estimator)
                    sidecar = outputs.read_json(paths["sidecar"])
                    if sidecar is None:
                        continue
                    censored[strategy.label] = sidecar["CensoredVolumes"]
                    coverage[atlas.label] = list(sidecar["RegionCoverage"].values())
                    summary["mean FD (mm)"] = f"{sidecar['MeanFramewiseDisplacement']:.3f}" \
                        if sidecar.get("MeanFramewiseDisplacement") is not None else "n/a"
                    summary[f"kept ({strategy.label})"] = sidecar["NumberOfVolumesKept"]
                    if connectome is None and kinds:
                        regions = sidecar["Columns"]
                        matrix = outputs.read_relmat(paths[kinds[0]])
                        connectome = xr.DataArray(matrix, dims=("region", "region_"),
                                                  coords={"region": regions, "region_": regions})
                        title = f"{kinds[0]}: {atlas.label}, {strategy.label}"
            confounds, _ = cohort_store.read_confounds(settings.store, key)
            bold = cohort.bold(key)
            step = max(1, bold.sizes["voxel"] // CARPET_VOXELS)
            runs.append({
                "name": key, "t_r": float(attrs["t_r"]), "summary": summary, "censored": censored,
                "fd": confounds["framewise_displacement"].to_numpy(float) if "framewise_displacement" in confounds else None,
                "carpet": np.asarray(bold[:, ::step].values, dtype=float), "coverage": coverage,
                "connectome": connectome, "connectome_title": title if connectome is not None else None,
            })
        report = participant_report(f"sub-{participant}", runs,
                                    "Quality of each run and its connectome, from brainxr run (participant level).")
        written.append(report.save_as_html(Path(settings.output_dir) / f"sub-{participant}.html"))
    return written


def _space_entities(runs) -> dict:
    entities = runs[0].entities
    return {key: entities[key] for key in ("space", "res", "den", "cohort") if key in entities}


def run(settings: RunSettings) -> RunSummary:
    """Run the BIDS App at ``settings.analysis_level``; see the module docstring.

    Parameters
    ----------
    settings : RunSettings
        Every option.

    Returns
    -------
    RunSummary
        ``.ok`` is False when some run failed (the others completed).

    Raises
    ------
    BidsAppError
        Bad input or options, before any work (one line, naming the option,
        file or folder).
    """
    from brainxr.bids_app.discovery import find_runs
    from brainxr.bids_app.outputs import write_dataset_description

    started = time.perf_counter()
    _check_settings(settings)
    settings.output_dir = Path(settings.output_dir)
    runs = find_runs(settings.bids_dir, settings.participant_label, settings.task, settings.space, settings.res)
    space_entities = _space_entities(runs)
    log_file, handler = _setup_log_file(settings.output_dir, settings.analysis_level)
    try:
        write_dataset_description(settings.output_dir, settings.bids_dir)
        if settings.analysis_level == "participant":
            outcome, reports = _participant(settings, runs, space_entities)
        else:
            outcome, reports = _group(settings, space_entities)
        for failure in outcome.failures:
            log.error("FAILED %s (%s): %s\n%s", failure.run, failure.stage, failure.message, failure.details)
        summary = RunSummary(settings.analysis_level, settings.output_dir, outcome.processed, outcome.skipped,
                             outcome.failures, reports, time.perf_counter() - started, log_file)
        log.info("%s", summary)
        return summary
    finally:
        logging.getLogger("brainxr").removeHandler(handler)
        handler.close()


def _participant(settings, runs, space_entities):
    from brainxr.bids_app.participant import run_participant_level

    template = space_entities.get("space")
    resolution = space_entities.get("res")
    atlases = [parse_atlas(spec, template, int(resolution) if resolution and resolution.isdigit() else 2,
                           settings.radius) for spec in settings.atlas]
    strategies = [parse_strategy(spec) for spec in settings.denoise_strategy]
    for items, option in ((atlases, "--atlas"), (strategies, "--denoise-strategy")):
        labels = [item.label for item in items]
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise BidsAppError(f"{option}: two values give the same output label {repeated[0]!r}")
    log.info("participant level: %d run(s), atlases %s, strategies %s, kinds %s", len(runs),
             [a.label for a in atlases], [s.label for s in strategies], settings.kinds)
    outcome = run_participant_level(settings, runs, atlases, strategies, space_entities,
                                    show_progress=settings.progress)
    reports = _participant_reports(settings, outcome, atlases, strategies, space_entities) if settings.reports else []
    return outcome, reports


def _group(settings, space_entities):
    from brainxr.bids_app.group import atlas_and_strategy_labels, run_group_level

    atlases, strategies = atlas_and_strategy_labels(settings.output_dir)
    if not atlases:
        raise BidsAppError(f"group level: no participant-level outputs in {settings.output_dir}; run the participant "
                           "level first")
    report_path = Path(settings.output_dir) / "group.html"
    outcome = run_group_level(settings, atlases, strategies, space_entities,
                              required=[report_path.name] if settings.reports else [])
    if not settings.reports:
        return outcome, []
    if outcome.up_to_date:
        return outcome, [report_path]
    from brainxr.reporting.connectivity_reports import group_report

    report = group_report(outcome.runs_table, outcome.qcfc_table, outcome.qc,
                          description="Runs, motion, coverage, group connectomes and denoising quality of each "
                                      "strategy side by side, from brainxr run (group level).")
    return outcome, [report.save_as_html(report_path)]
