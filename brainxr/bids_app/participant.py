"""Participant level: fMRIPrep runs -> cohort store -> region signals -> cleaned signals -> connectomes.

The runs are ingested into the cohort store of ``--work-dir`` (complete runs
are skipped). The raw region signals of each atlas come from the runs' voxels
while ingest holds them in memory (``ingest(regions=...)``), or, for runs
already in the store, are extracted once a batch of runs at a time from the
store (``Cohort.extract``, one read of the voxels); they are then cleaned for
each strategy with the run's own confounds and sample mask (as nilearn's
maskers clean region signals after extraction, so the numbers are the same),
and every connectivity kind is computed from the same cleaned signals. A run
fails alone: its error is recorded and the others go on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import traceback
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

import brainxr
from brainxr import store as cohort_store
from brainxr.bids_app import outputs
from brainxr.bids_app.specs import KINDS, measure_label

log = logging.getLogger("brainxr.run")

#: raw region signals held at once (bytes of float64): batches of runs are sized to it
BATCH_BYTES = 128 * 2**20
#: runs ingested now whose region signals are cleaned and written together, while ingest goes on: at most this
#: many, and at most an eighth of the runs, so that a small cohort's first outputs (and the imports of cleaning and
#: connectivity, ~1 s) overlap its ingest instead of following it
INGESTED_BATCH_RUNS = 16


@dataclass
class Failure:
    """A run (or a run with one atlas) that could not be processed."""

    run: str
    stage: str
    message: str
    details: str = ""


@dataclass
class Outcome:
    """What a level did: runs processed, skipped (already done) and failed, and files written."""

    processed: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failures: list = field(default_factory=list)
    reports: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


def cleaning_parameters(settings) -> dict:
    return {"detrend": settings.detrend, "standardize": settings.standardize or False,
            "low_pass": settings.low_pass, "high_pass": settings.high_pass, "standardize_confounds": True,
            "filter": "butterworth", "smoothing_fwhm": settings.smoothing_fwhm}


def settings_digest(run_attrs: dict, atlas, strategy, settings) -> str:
    """Digest of everything a run's outputs depend on: a changed setting makes the run redo."""
    content = {
        "source": (run_attrs.get("source") or {}).get("sha256"),
        "confounds": (run_attrs.get("confounds_source") or {}).get("sha256"),
        "atlas": atlas.provenance, "strategy": strategy.as_json(), "clean": cleaning_parameters(settings),
        "kinds": [kind for kind in settings.kinds if kind != "tangent"], "cov_estimator": settings.cov_estimator,
        "version": brainxr.__version__,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def run_entities(run_attrs: dict, settings, space_entities: dict) -> dict:
    entities = {k: v for k, v in run_attrs.get("entities", {}).items() if k in outputs.ENTITY_ORDER[:10]}
    return dict(entities, **space_entities)


def output_paths(output_dir, entities: dict, atlas_label: str, strategy_label: str, kinds, cov_estimator) -> dict:
    folder = outputs.run_folder(output_dir, entities)
    base = dict(entities, seg=atlas_label, desc=strategy_label)
    paths = {
        "timeseries": folder / outputs.bids_name(base, "timeseries", ".tsv"),
        "sidecar": folder / outputs.bids_name(base, "timeseries", ".json"),
        "coverage": folder / outputs.bids_name(dict(entities, seg=atlas_label, stat="coverage"), "bold", ".tsv"),
    }
    for kind in kinds:
        measure = dict(base, meas=measure_label(kind, cov_estimator))
        paths[kind] = folder / outputs.bids_name(measure, "relmat", ".tsv")
        paths[kind + ".json"] = folder / outputs.bids_name(measure, "relmat", ".json")
    return paths


def is_done(paths: dict, digest: str, kinds) -> bool:
    sidecar = outputs.read_json(paths["sidecar"])
    if not sidecar or sidecar.get("BrainxrSettings") != digest:
        return False
    return all(paths[kind].exists() for kind in kinds) and paths["timeseries"].exists()


def connectomes(cleaned: list, regions: list, kind: str, cov_estimator: str) -> np.ndarray:
    """The matrices of a kind for a batch of runs' cleaned signals, in one call (ConnectivityMeasure's numbers).

    Runs of different lengths are NaN-padded at the end (padding is dropped
    per run); a region without signal in a run is a NaN row and column.
    """
    from brainxr.connectome import connectivity

    estimator = cov_estimator
    if kind == "sparse inverse covariance":
        from brainxr.connectome import GraphicalLassoCV

        estimator = GraphicalLassoCV()
    longest = max(len(values) for values in cleaned)
    stacked = np.full((len(cleaned), longest, len(regions)), np.nan)
    for position, values in enumerate(cleaned):
        stacked[position, : len(values)] = values
    signals = xr.DataArray(stacked, dims=("run", "time", "region"), coords={"region": regions})
    return np.asarray(connectivity(signals, kind=KINDS[kind][0], cov_estimator=estimator).values)


def tdof_loss(n_volumes: int, n_kept: int, n_regressors: int, t_r: float, low_pass, high_pass) -> float:
    """Temporal degrees of freedom lost: censored volumes, regressors and the filtered-out band.

    The band-pass share is the fraction of the kept volumes' frequencies
    (0 to Nyquist) that the filter removes (Parkes et al. 2018 count
    regressors, censored volumes and filter bands this way).
    """
    nyquist = 0.5 / t_r
    removed = 0.0
    if low_pass is not None and low_pass < nyquist:
        removed += (nyquist - low_pass) / nyquist
    if high_pass is not None:
        removed += min(high_pass, nyquist) / nyquist
    return float((n_volumes - n_kept) + n_regressors + removed * n_kept)


@dataclass
class _Cleaned:
    """One run's signals cleaned by one strategy, and what its sidecar records."""

    key: str
    paths: dict
    digest: str
    values: np.ndarray
    sidecar: dict


def _clean_run(key, raw_values, run_attrs, confounds_table, confounds_metadata, atlas, strategy, settings, paths,
               digest, regions, region_facts) -> _Cleaned:
    """Select a run's confounds for a strategy and clean its raw region signals (the maskers' cleaning)."""
    from brainxr.interfaces.fmriprep import select_confounds
    from brainxr.interfaces.fmriprep.denoise import strategy_parameters
    from brainxr.provenance import provenance_attrs, read_provenance
    from brainxr.signal import clean

    t_r = float(run_attrs["t_r"])
    n_volumes = int(run_attrs["n_volumes"])
    preset, options = strategy.selection
    confounds, sample_mask = select_confounds(confounds_table, confounds_metadata or None,
                                              **strategy_parameters(preset, **options))
    kept = np.arange(n_volumes) if sample_mask is None else np.asarray(sample_mask)
    regressors = None if confounds is None or confounds.shape[1] == 0 else confounds
    cleaned = clean(raw_values[:n_volumes], confounds=None if regressors is None else regressors.to_numpy(float),
                    sample_mask=sample_mask, t_r=t_r, detrend=settings.detrend,
                    standardize=settings.standardize or False, low_pass=settings.low_pass,
                    high_pass=settings.high_pass, standardize_confounds=True, filter="butterworth")
    fd = confounds_table["framewise_displacement"] if "framewise_displacement" in confounds_table else None
    cleaning = dict(cleaning_parameters(settings), t_r=t_r)
    sidecar = {
        "Atlas": atlas.provenance, "DenoiseStrategy": strategy.as_json(), "Cleaning": cleaning,
        "BrainxrVersion": brainxr.__version__,
        "Provenance": read_provenance(provenance_attrs(confounds_strategy=preset, confounds_options=options,
                                                       atlas=atlas.record, clean=cleaning)),
        "SamplingFrequency": 1.0 / t_r,
        "Columns": regions,
        "NumberOfVolumes": n_volumes,
        "NumberOfVolumesKept": int(len(kept)),
        "CensoredVolumes": sorted(set(range(n_volumes)) - set(kept.tolist())),
        "ConfoundsUsed": [] if regressors is None else list(regressors.columns),
        "MeanFramewiseDisplacement": None if fd is None else float(np.nanmean(fd)),
        "MaxFramewiseDisplacement": None if fd is None else float(np.nanmax(fd)),
        "TemporalDegreesOfFreedomLoss": tdof_loss(n_volumes, len(kept), 0 if regressors is None else regressors.shape[1],
                                                  t_r, settings.low_pass, settings.high_pass),
        **region_facts,
        # the source's path or URL: "url" since store format 2, "path" in format 1
        "Sources": [{"Path": run_attrs[name].get("url", run_attrs[name].get("path")), "SHA256": run_attrs[name].get("sha256")}
                    for name in ("source", "confounds_source") if run_attrs.get(name)],
        "BrainxrSettings": digest,
    }
    return _Cleaned(key, paths, digest, cleaned, sidecar)


def _write_run(item: _Cleaned, matrices: dict, regions, kinds, settings) -> None:
    """A run's timeseries, coverage and relmats, then its timeseries sidecar (last: it marks the run done)."""
    paths = item.paths
    outputs.write_tsv(paths["timeseries"], pd.DataFrame(item.values, columns=regions))
    if not paths["coverage"].exists() or settings.overwrite:
        coverage = [item.sidecar["RegionCoverage"][name] for name in regions]
        outputs.write_tsv(paths["coverage"], pd.DataFrame([coverage], columns=regions, dtype=float))
    common = {key: item.sidecar[key] for key in ("Atlas", "DenoiseStrategy", "Cleaning", "BrainxrVersion", "Provenance")}
    estimator = {"ledoit_wolf": "LedoitWolf", "empirical": "EmpiricalCovariance"}[settings.cov_estimator]
    for kind in kinds:
        outputs.write_relmat(paths[kind], matrices[kind], regions)
        outputs.write_json(paths[kind + ".json"], dict(
            common, Measure=measure_label(kind, settings.cov_estimator), Kind=kind,
            CovarianceEstimator="GraphicalLassoCV" if kind == "sparse inverse covariance" else estimator,
            RegionNames=regions, Sources=[paths["timeseries"].name]))
    outputs.write_json(paths["sidecar"], item.sidecar)


def process_batch(raw: xr.DataArray, attrs: dict, confounds: dict, atlas, strategies, settings, space_entities,
                  failures: list) -> set:
    """Clean a batch of runs for each strategy, compute every kind over the batch at once, write the outputs.

    A run that fails (its cleaning, or its connectivity) is added to
    ``failures`` and the others are written. Returns the runs written.
    """
    regions = [str(name) for name in raw["region"].values]
    kinds = [kind for kind in settings.kinds if kind != "tangent"]
    coverage = raw["coverage"].transpose("run", "region").values if "coverage" in raw.coords else None
    centres = np.stack([raw[axis].values for axis in "xyz"], axis=1) if all(a in raw.coords for a in "xyz") else None
    written, failed = set(), set()
    for strategy in strategies:
        batch = []
        for position, key in enumerate(raw["run"].values.tolist()):
            if key in failed:
                continue
            entities = run_entities(attrs[key], settings, space_entities)
            paths = output_paths(settings.output_dir, entities, atlas.label, strategy.label, kinds, settings.cov_estimator)
            digest = settings_digest(attrs[key], atlas, strategy, settings)
            if not settings.overwrite and is_done(paths, digest, kinds):
                continue
            facts = {
                "RegionCoverage": dict(zip(regions, (coverage[position] if coverage is not None
                                                     else np.ones(len(regions))).tolist())),
                "RegionCentres": dict(zip(regions, centres.tolist())) if centres is not None else None,
            }
            try:
                batch.append(_clean_run(key, np.asarray(raw.values[position], dtype=np.float64), attrs[key],
                                        *confounds[key], atlas, strategy, settings, paths, digest, regions, facts))
            except Exception as error:
                failed.add(key)
                failures.append(Failure(key, f"{atlas.label} {strategy.label}", f"{type(error).__name__}: {error}",
                                        traceback.format_exc()))
        if not batch:
            continue
        matrices = {}
        for kind in kinds:
            try:
                matrices[kind] = connectomes([item.values for item in batch], regions, kind, settings.cov_estimator)
            except Exception:  # some run's matrix failed: find which, one run at a time
                matrices[kind] = []
                for item in batch:
                    try:
                        matrices[kind].append(connectomes([item.values], regions, kind, settings.cov_estimator)[0])
                    except Exception as error:
                        matrices[kind].append(None)
                        failed.add(item.key)
                        failures.append(Failure(item.key, f"{atlas.label} {strategy.label} {kind}",
                                                f"{type(error).__name__}: {error}", traceback.format_exc()))
        for position, item in enumerate(batch):
            if item.key in failed:
                continue
            _write_run(item, {kind: matrices[kind][position] for kind in kinds}, regions, kinds, settings)
            written.add(item.key)
    return written - failed


def _smooth_block(block: np.ndarray, ijk: np.ndarray, shape: tuple, affine: np.ndarray, fwhm: float) -> np.ndarray:
    """Smooth a ``(time, voxel)`` block of whole volumes: scatter onto the grid, Gaussian filter, gather."""
    from brainxr.image import smooth_array

    volumes = np.zeros((block.shape[0], *shape), dtype=np.float32)
    volumes[:, ijk[:, 0], ijk[:, 1], ijk[:, 2]] = block
    smoothed = smooth_array(volumes, affine, fwhm, copy=False, spatial_axes=(1, 2, 3))
    return smoothed[:, ijk[:, 0], ijk[:, 1], ijk[:, 2]].astype(np.float32)


def smoothed_extract(cohort, regions, fwhm: float, volumes_per_task: int = 16) -> xr.DataArray:
    """Raw region signals of smoothed runs: each block of volumes is smoothed on the cohort grid, then extracted.

    As nilearn's maskers, smoothing comes before extraction; the store holds
    the cohort mask's voxels, so voxels outside it count as 0 (fMRIPrep's
    BOLD images are not masked: nilearn smooths with their values outside
    the brain, which changes regions at the brain's edge).
    """
    from brainxr.regions import extract_cohort

    grid = cohort.grid
    ijk = np.asarray(grid.voxel_index)
    runs = {}
    for key in cohort:
        run = cohort[key]
        bold = run["bold"].data.rechunk({0: volumes_per_task, 1: -1})
        smoothed = bold.map_blocks(_smooth_block, ijk, tuple(grid.shape), np.asarray(grid.affine), fwhm,
                                   dtype=np.float32)
        runs[key] = run.assign(bold=(run["bold"].dims, smoothed, run["bold"].attrs))
    return extract_cohort(runs, regions)


def _batches(keys, n_volumes: dict, n_regions: int):
    batch, size = [], 0
    for key in keys:
        nbytes = int(n_volumes[key]) * n_regions * 8
        if batch and size + nbytes > BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(key)
        size += nbytes
    if batch:
        yield batch


def _all_done(settings, runs, atlases, strategies, space_entities) -> bool:
    """Whether every run is stored, unchanged, with up-to-date outputs for every atlas and strategy.

    Decided from the store's runs index (one file) and the runs' output
    sidecars only: no run is opened and nothing heavy is imported.
    """
    from brainxr.ingestion import source_changed

    stored = cohort_store.read_index(settings.store)
    kinds = [kind for kind in settings.kinds if kind != "tangent"]
    for run in runs:
        attrs = stored.get(run.key)
        if attrs is None or source_changed(run, attrs):  # ingest has work, or a warning to give
            return False
        entities = run_entities(attrs, settings, space_entities)
        for atlas in atlases:
            for strategy in strategies:
                paths = output_paths(settings.output_dir, entities, atlas.label, strategy.label, kinds,
                                     settings.cov_estimator)
                if not is_done(paths, settings_digest(attrs, atlas, strategy, settings), kinds):
                    return False
    return True


def _stored_attrs(store, keys) -> dict:
    """The attributes of stored runs: from the runs index, else (a format-1 store) each run's group."""
    index = cohort_store.read_index(store)
    return {key: index.get(key) or cohort_store.read_run_attrs(store, key) for key in keys}


def _stacked(keys: list, signals: list) -> xr.DataArray:
    """``(run, time, region)`` raw signals (NaN after each run's end) from each run's ``(time, region)`` signals."""
    longest = max(item.sizes["time"] for item in signals)
    values = np.full((len(keys), longest, signals[0].sizes["region"]), np.nan)
    for position, item in enumerate(signals):
        values[position, : item.sizes["time"]] = item.values
    first = signals[0]
    coords = {"run": keys, "coverage": (("run", "region"), np.stack([item["coverage"].values for item in signals]))}
    coords.update({name: coord for name, coord in first.coords.items() if name != "coverage"})
    return xr.DataArray(values, dims=("run", "time", "region"), coords=coords)


class _IngestedRuns:
    """Cleans and writes the outputs of runs as ingest finishes them, a batch at a time, from their region signals.

    ``add`` is ingest's ``on_result``: it runs in the calling thread while the
    ingest threads go on with the next runs. A run is handled here only once
    it is complete in the store (its outputs are then written as for a run
    read back from the store); runs that fail are recorded in ``failures``.
    """

    def __init__(self, settings, atlases, strategies, space_entities, failures, touched: set, handled: set,
                 n_runs: int):
        self.settings, self.atlases, self.strategies = settings, atlases, strategies
        self.space_entities, self.failures = space_entities, failures
        self.touched, self.handled = touched, handled
        self.pending = {}
        self.batch_runs = max(1, min(INGESTED_BATCH_RUNS, n_runs // 8))

    def add(self, result) -> None:
        if result.status not in ("ingested", "repaired") or result.region_signals is None:
            return
        self.pending[result.key] = (result.attrs, result.region_signals)
        if len(self.pending) >= self.batch_runs:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        pending, self.pending = self.pending, {}
        keys = list(pending)
        self.handled.update(keys)
        attrs = {key: pending[key][0] for key in keys}
        confounds = {}
        for key in keys:
            try:
                confounds[key] = cohort_store.read_confounds(self.settings.store, key)
            except Exception as error:
                self.failures.append(Failure(key, "confounds", f"{type(error).__name__}: {error}",
                                             traceback.format_exc()))
        keys = [key for key in keys if key in confounds]
        if not keys:
            return
        from brainxr.engine import one_thread_per_task

        # one BLAS thread: BLAS threads on (200 x 100) signals made LedoitWolf 10x slower on 2 busy cores
        with one_thread_per_task():
            for position, atlas in enumerate(self.atlases):
                raw = _stacked(keys, [pending[key][1][position] for key in keys])
                self.touched |= process_batch(raw, attrs, confounds, atlas, self.strategies, self.settings,
                                              self.space_entities, self.failures)


def run_participant_level(settings, runs, atlases, strategies, space_entities, show_progress=True) -> Outcome:
    """The participant level on discovered runs; see the module docstring."""
    started = time.perf_counter()
    outcome = Outcome()
    outcome.touched_participants, outcome.cohort = [], None
    if not settings.overwrite and _all_done(settings, runs, atlases, strategies, space_entities):
        log.info("participant level: all %d run(s) already done", len(runs))
        outcome.skipped = sorted(run.key for run in runs)
        outcome.seconds = time.perf_counter() - started
        return outcome
    from brainxr import progress
    from brainxr.engine import one_thread_per_task
    from brainxr.provenance import atlas_record

    for atlas in atlases:
        atlas.record = atlas_record(atlas.regions, atlas.label)  # loaded now: a bad atlas is told before any work
    store = settings.store
    touched, handled = set(), set()
    # the region signals of the runs ingested now come from their voxels in memory (no read back from the store)
    ingested = _IngestedRuns(settings, atlases, strategies, space_entities, outcome.failures, touched, handled,
                             len(runs))
    ingest = brainxr.ingest(runs, store, overwrite=settings.overwrite,
                            client=settings.client if settings.client is not None else False,
                            n_workers=settings.n_workers, progress=show_progress, on_error="return",
                            regions=None if settings.smoothing_fwhm else [atlas.regions for atlas in atlases],
                            on_result=ingested.add)
    ingested.flush()
    for key, error in ingest.failed.items():
        outcome.failures.append(Failure(key, "ingest", f"{type(error).__name__}: {error}",
                                        "".join(traceback.format_exception(error))))
    failed = {failure.run for failure in outcome.failures}
    cohort = brainxr.open_cohort(store)
    keys = [run.key for run in runs if run.key not in failed and run.key in cohort]
    cohort = cohort.subset(keys)
    # run metadata (sources and their checksums, TR) from the runs index; confounds and their JSON through the
    # store's read contract
    attrs = _stored_attrs(store, keys)
    kinds = [kind for kind in settings.kinds if kind != "tangent"]
    for atlas in atlases:
        todo = []
        for key in keys:
            if key in handled:
                continue
            entities = run_entities(attrs[key], settings, space_entities)
            done = all(is_done(output_paths(settings.output_dir, entities, atlas.label, strategy.label, kinds,
                                            settings.cov_estimator),
                               settings_digest(attrs[key], atlas, strategy, settings), kinds)
                       for strategy in strategies)
            if settings.overwrite or not done:
                todo.append(key)
        log.info("atlas %s: %d run(s) done as they were ingested, %d to extract from the store, %d already done",
                 atlas.label, len(handled), len(todo), len(keys) - len(todo) - len(handled))
        n_volumes = {key: attrs[key]["n_volumes"] for key in todo}
        for batch in _batches(todo, n_volumes, atlas.regions.n_regions):
            try:
                if settings.smoothing_fwhm:
                    raw = smoothed_extract(cohort.subset(batch), atlas.regions, settings.smoothing_fwhm)
                else:
                    raw = cohort.subset(batch).extract(atlas.regions)
                local = {} if settings.client is not None else {"num_workers": settings.n_workers}
                (raw,) = progress.compute(raw, desc=f"extract {atlas.label}", progress=show_progress,
                                          client=settings.client if settings.client is not None else False, **local)
            except Exception as error:  # the whole batch could not be read: every run of it failed
                for key in batch:
                    outcome.failures.append(Failure(key, f"extract {atlas.label}", f"{type(error).__name__}: {error}",
                                                    traceback.format_exc()))
                continue
            confounds = {}
            for key in batch:
                try:
                    confounds[key] = cohort_store.read_confounds(store, key)
                except Exception as error:
                    outcome.failures.append(Failure(key, "confounds", f"{type(error).__name__}: {error}",
                                                    traceback.format_exc()))
            if confounds:
                with one_thread_per_task():
                    touched |= process_batch(raw.sel(run=list(confounds)), attrs, confounds, atlas, strategies,
                                             settings, space_entities, outcome.failures)
    failed = {failure.run for failure in outcome.failures}
    outcome.processed = sorted(touched - failed)
    outcome.skipped = sorted(set(keys) - touched - failed)
    outcome.seconds = time.perf_counter() - started
    outcome.touched_participants = sorted({attrs[key]["entities"]["sub"] for key in touched})
    outcome.cohort = cohort
    return outcome
