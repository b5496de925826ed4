"""Group level: group connectomes, tangent space, QC table and denoising QC from the participant outputs.

Reads the participant level's timeseries (TSV + sidecar) of every selected
run, for each atlas and strategy, and writes under ``OUTPUT_DIR/group/``:

- ``..._seg-<A>_stat-mean_meas-<M>_desc-<S>_relmat.tsv``: the mean connectome of
  each kind (correlations averaged as Fisher z);
- with ``--kind tangent``: ``..._stat-geometricmean_meas-<Shrunk>Covariance_...``
  (the tangent-space reference) and each run's tangent vector
  (``sub-..._meas-Tangent_desc-<S>_relmat.tsv`` in the run's folder);
- ``runs_qc.tsv``: one row per run: participant, entities, mean/max FD,
  volumes, volumes kept, tDOF loss per strategy, mean region coverage per atlas;
- ``qcfc.tsv``: per atlas and strategy: runs, edges, % edges with significant
  QC-FC (uncorrected, FDR), median |QC-FC|, distance dependence, mean tDOF loss;
- ``qcfc.json``: its columns, the digest of the inputs and the files written.
  Written last; a rerun whose participant outputs and options are the same
  (and whose files are all there) computes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

import brainxr
from brainxr.bids_app import outputs
from brainxr.bids_app.participant import KINDS, Failure, Outcome, measure_label
from brainxr.bids_app.specs import BidsAppError

log = logging.getLogger("brainxr.run")


def _entities_of(name: str) -> dict:
    return dict(part.split("-", 1) for part in name.split("_")[:-1] if "-" in part)


def collect_runs(output_dir: Path, atlas_label: str, strategy_label: str, participant_label=None, task=None) -> list:
    """(sidecar path, sidecar, entities) of each run's participant-level timeseries, sorted by name."""
    found = []
    pattern = f"sub-*/**/func/*_seg-{atlas_label}_desc-{strategy_label}_timeseries.json"
    for path in sorted(Path(output_dir).glob(pattern)):
        entities = _entities_of(path.name)
        if participant_label and entities.get("sub") not in {p.removeprefix("sub-") for p in participant_label}:
            continue
        if task is not None and entities.get("task") != task:
            continue
        sidecar = outputs.read_json(path)
        if sidecar is None or not path.with_suffix(".tsv").exists():
            continue
        found.append((path, sidecar, entities))
    return found


def _run_name(entities: dict) -> str:
    return "_".join(f"{k}-{entities[k]}" for k in outputs.ENTITY_ORDER[:10] if k in entities)


def _signals(path: Path) -> np.ndarray:
    return pd.read_csv(path.with_suffix(".tsv"), sep="\t", na_values="n/a").to_numpy(float)


def _lower(matrix: np.ndarray) -> np.ndarray:
    return matrix[np.tril_indices(matrix.shape[0], -1)]


def _pearson(signals: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.corrcoef(signals, rowvar=False)


def _correlations(paths: list, n_workers: int, runs_per_chunk: int = 64):
    """Each run's Pearson correlation of its cleaned signals, in order; read on ``n_workers`` threads (pandas'
    parser and the matrix product release the GIL), a chunk of runs at a time (bounded memory)."""
    from concurrent.futures import ThreadPoolExecutor

    def correlation(path):
        return _pearson(_signals(path))

    with ThreadPoolExecutor(max(1, n_workers)) as pool:
        for start in range(0, len(paths), runs_per_chunk):
            yield from pool.map(correlation, paths[start : start + runs_per_chunk])


def _lazy_relmats(paths: list, n_regions: int, runs_per_chunk: int = 64):
    """The relmat files of the runs as one dask array ``(run, region, region)``, read a chunk of runs at a time."""
    import dask
    import dask.array as da

    def read(chunk):
        return np.stack([outputs.read_relmat(path) for path in chunk])

    blocks = [da.from_delayed(dask.delayed(read)(paths[i:i + runs_per_chunk]),
                              shape=(len(paths[i:i + runs_per_chunk]), n_regions, n_regions), dtype=float)
              for i in range(0, len(paths), runs_per_chunk)]
    return da.concatenate(blocks, axis=0)


def _group_for(settings, atlas_label, strategy_label, runs, regions, group_dir, space_entities, outcome,
               files: list) -> dict:
    """Group outputs of one atlas and strategy, in memory bounded by a chunk of runs (tangent space aside).

    The paths of the files written are appended to ``files``.
    """
    from brainxr import progress
    from brainxr.connectome import connectivity, mean_connectome, tangent_space
    from brainxr.reporting.qc import QcfcSums

    names = [_run_name(entities) for _, _, entities in runs]
    base = dict({k: v for k, v in space_entities.items()}, seg=atlas_label, desc=strategy_label)
    if settings.task:
        base["task"] = settings.task
    coords = {"region": regions}
    centres = runs[0][1].get("RegionCentres")
    if centres:
        xyz = np.array([centres[name] for name in regions], dtype=float)
        coords.update({axis: ("region", xyz[:, i]) for i, axis in enumerate("xyz")})
    written = {}
    for kind in settings.kinds:
        if kind == "tangent":
            continue
        paths = [path.parent / outputs.bids_name(dict(entities, meas=measure_label(kind, settings.cov_estimator)),
                                                 "relmat", ".tsv") for path, _, entities in runs]
        matrices = xr.DataArray(_lazy_relmats(paths, len(regions)), dims=("run", "region", "region_"),
                                coords={"run": names, "region": regions, "region_": regions},
                                attrs={"kind": KINDS[kind][0]})
        (mean,) = progress.compute(mean_connectome(matrices), progress=False, client=settings.client)
        path = group_dir / outputs.bids_name(dict(base, stat="mean", meas=measure_label(kind, settings.cov_estimator)),
                                             "relmat", ".tsv")
        files.append(outputs.write_relmat(path, mean.values, regions))
        files.append(outputs.write_json(path.with_suffix(".json"), {
            "Measure": measure_label(kind, settings.cov_estimator), "Kind": kind, "Statistic": mean.attrs.get("reduction"),
            "NumberOfRuns": len(runs), "Runs": names, "RegionNames": regions}))
        written[kind] = mean
    if "tangent" in settings.kinds:
        if len(runs) < 2:
            outcome.failures.append(Failure("group", f"tangent {atlas_label} {strategy_label}",
                                            "the tangent space needs at least 2 runs"))
        else:
            # the tangent space holds every run's covariance in memory: (runs x regions^2) floats
            signals = [_signals(path) for path, _, _ in runs]
            longest = max(len(values) for values in signals)
            stacked = np.full((len(signals), longest, len(regions)), np.nan)
            for position, values in enumerate(signals):
                stacked[position, : len(values)] = values
            covered = np.all(np.isfinite(stacked).any(axis=1), axis=0)
            cohort_signals = xr.DataArray(stacked[:, :, covered], dims=("run", "time", "region"),
                                          coords={"run": names, "region": np.asarray(regions)[covered]})
            del signals, stacked
            covariances = connectivity(cohort_signals, kind="covariance", cov_estimator=settings.cov_estimator)
            tangent = tangent_space(covariances)
            kept = [str(r) for r in cohort_signals["region"].values]
            full = pd.DataFrame(np.nan, index=regions, columns=regions)
            mean = full.copy()
            mean.loc[kept, kept] = tangent["mean"].values
            covariance_label = measure_label("covariance", settings.cov_estimator)
            path = group_dir / outputs.bids_name(dict(base, stat="geometricmean", meas=covariance_label), "relmat", ".tsv")
            files.append(outputs.write_relmat(path, mean.to_numpy(), regions))
            files.append(outputs.write_json(path.with_suffix(".json"), {
                "Measure": covariance_label, "Statistic": "geometric mean (tangent-space reference, Fletcher)",
                "NumberOfRuns": len(runs), "Runs": names, "RegionNames": regions,
                "RegionsExcluded": sorted(set(regions) - set(kept))}))
            for position, (sidecar_path, _, entities) in enumerate(runs):
                vector = full.copy()
                vector.loc[kept, kept] = tangent["tangent"].values[position]
                run_path = sidecar_path.parent / outputs.bids_name(dict(entities, meas="Tangent"), "relmat", ".tsv")
                files.append(outputs.write_relmat(run_path, vector.to_numpy(), regions))
                files.append(outputs.write_json(run_path.with_suffix(".json"), {
                    "Measure": "Tangent", "Kind": "tangent", "Reference": path.name, "RegionNames": regions,
                    "GroupRuns": names, "Sources": [sidecar_path.with_suffix(".tsv").name]}))
            written["tangent"] = tangent["mean"]
    # denoising QC: QC-FC on Pearson correlations of the cleaned signals, summed run by run
    sums = QcfcSums(len(regions) * (len(regions) - 1) // 2)
    z_sum, z_count = np.zeros((len(regions), len(regions))), np.zeros((len(regions), len(regions)))
    for (path, sidecar, _), correlation in zip(runs, _correlations([path for path, _, _ in runs], settings.n_workers)):
        sums.add(_lower(correlation), sidecar.get("MeanFramewiseDisplacement"))
        z = np.arctanh(np.clip(correlation, -0.999999, 0.999999))
        z_sum += np.nan_to_num(z)
        z_count += np.isfinite(z)
    distances = None
    if centres:
        difference = xyz[:, None, :] - xyz[None, :, :]
        distances = _lower(np.sqrt((difference**2).sum(-1)))
    summary = sums.summary(distances)
    summary["distances"] = distances
    summary["tdof_loss"] = np.array([sidecar["TemporalDegreesOfFreedomLoss"] for _, sidecar, _ in runs], dtype=float)
    summary["n_volumes"] = np.array([sidecar["NumberOfVolumes"] for _, sidecar, _ in runs], dtype=float)
    group_correlation = written.get("correlation")
    if group_correlation is None:
        with np.errstate(invalid="ignore", divide="ignore"):
            group_correlation = xr.DataArray(np.tanh(z_sum / z_count), dims=("region", "region_"),
                                             coords={"region": regions, "region_": regions})
    if centres:
        group_correlation = group_correlation.assign_coords(
            {axis: ("region", xyz[:, i]) for i, axis in enumerate("xyz")}
            | {f"{axis}_": ("region_", xyz[:, i]) for i, axis in enumerate("xyz")})
    summary["group_correlation"] = group_correlation
    return summary


#: the group level's record: a sidecar of qcfc.tsv written last, with the digest of the inputs and the files written
RECORD = "qcfc.json"
QCFC_COLUMNS = {
    "atlas": "Atlas (seg label)", "strategy": "Denoising strategy (desc label)", "n_runs": "Runs in the group",
    "n_edges": "Region pairs", "percent_significant_qcfc": "Edges whose QC-FC correlation is significant (p < 0.05)",
    "percent_significant_qcfc_fdr": "The same after FDR correction",
    "median_abs_qcfc": "Median absolute QC-FC correlation",
    "qcfc_distance_dependence": "Spearman correlation of QC-FC with the distance between regions",
    "mean_tdof_loss": "Mean loss of temporal degrees of freedom", "mean_tdof_loss_percent": "The same, in % of volumes",
}


def inputs_digest(settings, collected: dict) -> str:
    """Digest of what the group outputs depend on: each run's participant outputs (their settings digest) and
    the group's options."""
    content = {
        "runs": {f"{atlas} {strategy}": [(str(path.relative_to(settings.output_dir)), sidecar.get("BrainxrSettings"))
                                          for path, sidecar, _ in runs]
                 for (atlas, strategy), runs in collected.items()},
        "kinds": settings.kinds, "cov_estimator": settings.cov_estimator, "version": brainxr.__version__,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def is_up_to_date(output_dir: Path, digest: str, required=()) -> bool:
    """Whether the group outputs were written from the same inputs and are all there (with ``required`` files)."""
    record = outputs.read_json(Path(output_dir) / "group" / RECORD)
    if not record or record.get("BrainxrSettings") != digest:
        return False
    return all((Path(output_dir) / name).exists() for name in [*record.get("Outputs", []), *required])


def run_group_level(settings, atlases: list, strategies: list, space_entities: dict, required=()) -> Outcome:
    """The group level on the participant outputs; returns the outcome and keeps the QC for the report.

    When the outputs were written from the same participant outputs and
    options and are all there (with the ``required`` files, relative to the
    output folder), nothing is computed: ``outcome.up_to_date`` is True.
    """
    started = time.perf_counter()
    outcome = Outcome()
    output_dir = Path(settings.output_dir)
    group_dir = output_dir / "group"
    collected = {}
    for atlas_label in atlases:
        for strategy_label in strategies:
            runs = collect_runs(output_dir, atlas_label, strategy_label, settings.participant_label, settings.task)
            if not runs:
                raise BidsAppError(
                    f"group level: no participant-level timeseries for atlas {atlas_label} and strategy "
                    f"{strategy_label} in {output_dir}; run the participant level first")
            regions = runs[0][1]["Columns"]
            mismatched = [path.name for path, sidecar, _ in runs if sidecar["Columns"] != regions]
            if mismatched:
                raise BidsAppError(f"group level: {mismatched[0]} has other regions than {runs[0][0].name}")
            collected[(atlas_label, strategy_label)] = runs
    digest = inputs_digest(settings, collected)
    outcome.up_to_date = not settings.overwrite and is_up_to_date(output_dir, digest, required)
    if outcome.up_to_date:
        outcome.skipped = sorted({_run_name(entities) for runs in collected.values() for _, _, entities in runs})
        outcome.seconds = time.perf_counter() - started
        log.info("group level: outputs already up to date with the %d run(s)", len(outcome.skipped))
        return outcome
    from brainxr.engine import one_thread_per_task

    rows, qc_rows, qc, files = {}, [], {}, []
    for (atlas_label, strategy_label), runs in collected.items():
        regions = runs[0][1]["Columns"]
        with one_thread_per_task():  # small matrices: BLAS threads only contend for the cores
            summary = _group_for(settings, atlas_label, strategy_label, runs, regions, group_dir, space_entities,
                                 outcome, files)
        qc[(atlas_label, strategy_label)] = summary
        qc_rows.append({
            "atlas": atlas_label, "strategy": strategy_label, "n_runs": summary["n_runs"],
            "n_edges": summary["n_edges"], "percent_significant_qcfc": summary["percent_significant"],
            "percent_significant_qcfc_fdr": summary["percent_significant_fdr"],
            "median_abs_qcfc": summary["median_abs_qcfc"], "qcfc_distance_dependence": summary["distance_dependence"],
            "mean_tdof_loss": float(np.mean(summary["tdof_loss"])),
            "mean_tdof_loss_percent": float(100 * np.mean(summary["tdof_loss"] / summary["n_volumes"])),
        })
        for path, sidecar, entities in runs:
            row = rows.setdefault(_run_name(entities), {
                "participant_id": f"sub-{entities['sub']}",
                **{k: entities[k] for k in ("ses", "task", "acq", "run") if k in entities},
                "mean_fd": sidecar.get("MeanFramewiseDisplacement"), "max_fd": sidecar.get("MaxFramewiseDisplacement"),
                "n_volumes": sidecar["NumberOfVolumes"]})
            row[f"n_volumes_kept_{strategy_label}"] = sidecar["NumberOfVolumesKept"]
            row[f"tdof_loss_{strategy_label}"] = sidecar["TemporalDegreesOfFreedomLoss"]
            coverage = list(sidecar.get("RegionCoverage", {}).values())
            row[f"mean_coverage_{atlas_label}"] = float(np.mean(coverage)) if coverage else np.nan
    runs_table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("run").reset_index()
    files.append(outputs.write_tsv(group_dir / "runs_qc.tsv", runs_table))
    files.append(outputs.write_tsv(group_dir / "qcfc.tsv", pd.DataFrame(qc_rows)))
    outputs.write_json(group_dir / RECORD, {  # last: it marks the group outputs complete (a failure: redone)
        **{column: {"Description": text} for column, text in QCFC_COLUMNS.items()},
        "BrainxrSettings": digest if not outcome.failures else None,
        "Outputs": sorted(str(path.relative_to(output_dir)) for path in files)})
    outcome.processed = list(rows)
    outcome.seconds = time.perf_counter() - started
    outcome.qc = qc
    outcome.runs_table = runs_table
    outcome.qcfc_table = pd.DataFrame(qc_rows)
    return outcome


def atlas_and_strategy_labels(output_dir: Path) -> tuple[list, list]:
    """The atlas and strategy labels of the participant outputs present."""
    atlases, strategies = set(), set()
    for path in Path(output_dir).glob("sub-*/**/func/*_timeseries.json"):
        match = re.search(r"_seg-([A-Za-z0-9]+)_desc-([A-Za-z0-9]+)_timeseries", path.name)
        if match:
            atlases.add(match.group(1))
            strategies.add(match.group(2))
    return sorted(atlases), sorted(strategies)
