"""Ingest: NIfTI runs and their confounds -> one Zarr cohort store.

Each run is decompressed once, streaming a block of volumes at a time; its
masked voxels are gathered into ``(time, voxel)`` chunks (all of time in a
chunk) and written, then the run is marked complete. Runs go in parallel
through dask: local threads, or the workers of a ``distributed.Client``.

Ingest is resumable and idempotent: completed runs are skipped; a run left
incomplete by an interruption is removed and redone; a bad run fails alone
and is reported at the end while the others complete.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import xarray as xr

from brainxr import progress as brainxr_progress
from brainxr import store as cohort_store
from brainxr.bids import RunFiles, files_for_bold, find_fmriprep_runs, parse_entities, run_key
from brainxr.errors import IngestError, InputFileError
from brainxr.masking import load_mask
from brainxr.nifti import _TIME_UNIT_SECONDS, iter_volume_blocks, read_layout


@dataclass
class RunResult:
    """What happened to one run."""

    key: str
    status: str  # "ingested", "skipped" or "failed"
    source: str = ""
    error: Exception | None = None
    seconds: float = 0.0
    decompressed_bytes: int = 0

    def __repr__(self) -> str:
        from brainxr._repr import run_result_text

        return run_result_text(self)

    def _repr_html_(self) -> str:
        from brainxr._repr import run_result_html

        return run_result_html(self)


@dataclass
class IngestReport:
    """Summary of an ingest.

    Attributes
    ----------
    store : pathlib.Path
    results : list of RunResult
    seconds : float
        Wall time of the whole ingest.
    """

    store: Path
    results: list = field(default_factory=list)
    seconds: float = 0.0

    def _with(self, status):
        return [r.key for r in self.results if r.status == status]

    @property
    def ingested(self) -> list:
        return self._with("ingested")

    @property
    def skipped(self) -> list:
        return self._with("skipped")

    @property
    def failed(self) -> dict:
        return {r.key: r.error for r in self.results if r.status == "failed"}

    @property
    def decompressed_bytes(self) -> int:
        return sum(r.decompressed_bytes for r in self.results)

    def __str__(self):
        lines = [
            f"ingest into {self.store}: {len(self.ingested)} ingested, {len(self.skipped)} skipped "
            f"(already complete), {len(self.failed)} failed in {self.seconds:.1f} s"
        ]
        lines += [f"  FAILED {key}: {err}" for key, err in self.failed.items()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        from brainxr._repr import ingest_report_text

        return ingest_report_text(self)

    def _repr_html_(self) -> str:
        from brainxr._repr import ingest_report_html

        return ingest_report_html(self)


# ---------------------------------------------------------------------------
# Sources


def _as_path(value) -> Path | None:
    return None if value is None else Path(value)


def runs_from_source(source, space=None, **filters) -> list[RunFiles]:
    """The runs to ingest from a derivatives folder or an explicit list.

    Parameters
    ----------
    source : path or list
        An fMRIPrep derivatives folder, or a list whose items are a BOLD path,
        a ``(bold, confounds)`` pair or a :class:`~brainxr.bids.RunFiles`.
    """
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        return find_fmriprep_runs(source, space=space, **filters)
    if isinstance(source, (str, Path)):
        source = [source]
    runs = []
    for item in source:
        if isinstance(item, RunFiles):
            runs.append(item)
            continue
        bold, confounds = (item, None) if isinstance(item, (str, Path)) else (item[0], item[1])
        run = files_for_bold(bold)
        if confounds is not None:
            run.confounds = Path(confounds)
            json_path = run.confounds.with_suffix(".json")
            run.confounds_json = json_path if json_path.exists() else None
        runs.append(run)
    keys = [_key_of(run) for run in runs]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f"source: several runs would be stored under the same name: {repeated}")
    return runs


def _key_of(run: RunFiles) -> str:
    """The store name of a run: its BIDS run entities, else its file name stem (unchecked)."""
    try:
        return run_key(run.entities)
    except ValueError:
        return run.bold.name.split(".nii")[0]


# ---------------------------------------------------------------------------
# The cohort grid


def _first_volume_mask(layout) -> np.ndarray:
    _, block = next(iter_volume_blocks(layout.path, block_size=1, dtype=np.float32, layout=layout))
    values = block[..., 0]
    return np.isfinite(values) & (values != 0)


def cohort_grid(runs: list[RunFiles], mask=None) -> cohort_store.Grid:
    """The grid of a new store: the mask's, or the first readable run's.

    The cohort mask is ``mask`` if given, else the union of the runs' brain
    masks (fMRIPrep ``desc-brain_mask``) on that grid, else the union of the
    runs' non-zero voxels in their first volume. Unreadable runs are left to
    fail on their own later.
    """
    if mask is not None:
        values, affine = load_mask(mask)
        return cohort_store.Grid(affine=affine, mask=values)
    reference, union = None, None
    for run in runs:
        try:
            layout = read_layout(run.bold)
        except InputFileError:
            continue
        affine = layout.header.get_best_affine()
        if reference is None:
            reference = (layout.shape[:3], affine)
            union = np.zeros(layout.shape[:3], dtype=bool)
        if layout.shape[:3] != reference[0] or not np.allclose(affine, reference[1], atol=1e-3):
            continue
        try:
            if run.brain_mask is not None:
                values, mask_affine = load_mask(run.brain_mask, name=str(run.brain_mask))
                if values.shape == reference[0] and np.allclose(mask_affine, affine, atol=1e-3):
                    union |= values
                    continue
            union |= _first_volume_mask(layout)
        except (InputFileError, ValueError):
            continue
    if reference is None:
        raise ValueError("source: no readable BOLD image to define the cohort grid")
    if not union.any():
        raise ValueError("source: the runs' masks are empty; pass mask=")
    return cohort_store.Grid(affine=np.asarray(reference[1], dtype=np.float64), mask=union)


# ---------------------------------------------------------------------------
# One run


def _repetition_time(run: RunFiles, layout, t_r) -> float:
    if t_r is not None:
        return float(t_r)
    from_sidecar = run.repetition_time()
    if from_sidecar is not None:
        return from_sidecar
    _, time_unit = layout.header.get_xyzt_units()
    zooms = layout.header.get_zooms()
    if time_unit in _TIME_UNIT_SECONDS and len(zooms) > 3 and zooms[3] > 0:
        return float(zooms[3]) * _TIME_UNIT_SECONDS[time_unit]
    raise InputFileError(
        run.bold,
        "missing repetition time: no RepetitionTime in a JSON sidecar and no time unit/pixdim[4] "
        "in the header; pass t_r=",
    )


def _read_confounds(run: RunFiles, n_volumes: int):
    if run.confounds is None:
        return None, {}
    path = run.confounds
    if not path.exists():
        raise InputFileError(path, "confounds file not found")
    try:
        table = pd.read_csv(path, sep="\t", na_values=["n/a", "N/A", "NaN", "nan"])
    except Exception as err:
        raise InputFileError(path, f"unreadable confounds TSV ({err})") from err
    non_numeric = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    if non_numeric:
        raise InputFileError(path, f"non-numeric confound columns {non_numeric}")
    if len(table) != n_volumes:
        raise InputFileError(
            path, f"{len(table)} rows of confounds but the image {run.bold.name} has {n_volumes} volumes"
        )
    metadata = {}
    if run.confounds_json is not None:
        try:
            metadata = json.loads(Path(run.confounds_json).read_text())
        except json.JSONDecodeError as err:
            raise InputFileError(run.confounds_json, f"invalid JSON ({err})") from err
    return table, metadata


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(2**22):
            digest.update(chunk)
    return digest.hexdigest()


def _source_record(path: Path) -> dict:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _to_grid(values: np.ndarray, affine, grid: cohort_store.Grid, interpolation: str) -> np.ndarray:
    """Resample ``(I, J, K[, n])`` values from ``affine``'s grid onto the cohort grid."""
    from brainxr.image import resample_img

    dims = ("i", "j", "k", "time")[: values.ndim]
    volume = xr.DataArray(values, dims=dims, attrs={"affine": affine})
    resampled = resample_img(volume, target_affine=grid.affine, target_shape=grid.shape, interpolation=interpolation)
    return np.asarray(resampled.values, dtype=values.dtype)


def ingest_run(run: RunFiles, store, grid: cohort_store.Grid, t_r=None, block_size: int = 8,
               voxel_chunk_mb: float = 64, resample=False) -> RunResult:
    """Ingest one run into a store (whose grid is ``grid``); errors are returned, not raised."""
    key = _key_of(run)
    started = time.perf_counter()
    try:
        layout = read_layout(run.bold)
        if len(layout.shape) != 4:
            raise InputFileError(run.bold, f"expected a 4D time series, got a 3D image of shape {layout.shape}")
        affine = layout.header.get_best_affine()
        off_grid = not grid.same_as(layout.shape, affine)
        if off_grid and not resample:
            raise InputFileError(
                run.bold,
                f"not on the cohort grid: shape {layout.shape[:3]} vs {grid.shape}, affine\n"
                f"{np.round(affine, 3)}\nvs\n{np.round(grid.affine, 3)}; pass resample='linear' (or "
                "'continuous') to resample it onto the cohort grid, or ingest it into another store",
            )
        repetition_time = _repetition_time(run, layout, t_r)
        n_volumes = layout.n_volumes
        confounds, confounds_metadata = _read_confounds(run, n_volumes)
        run_mask = None
        if run.brain_mask is not None:
            values, mask_affine = load_mask(run.brain_mask, name=str(run.brain_mask))
            if grid.same_as(values.shape, mask_affine):
                run_mask = values
            elif resample:
                run_mask = _to_grid(values.astype(np.uint8), mask_affine, grid, "nearest") > 0

        i, j, k = (grid.voxel_index[:, axis] for axis in range(3))
        voxel_chunk = min(cohort_store.auto_voxel_chunk(n_volumes, voxel_chunk_mb), grid.n_voxels)
        starts = range(0, grid.n_voxels, voxel_chunk)
        # one C-contiguous (time, voxel) buffer per stored chunk: written without another copy
        chunks = [np.empty((n_volumes, min(voxel_chunk, grid.n_voxels - s)), np.float32) for s in starts]
        hasher = hashlib.sha256()
        for first, block in iter_volume_blocks(run.bold, block_size, np.float32, layout, hasher):
            if off_grid:
                block = _to_grid(block, affine, grid, resample)
            stop = first + block.shape[3]
            for s, chunk in zip(starts, chunks):
                sl = slice(s, s + chunk.shape[1])
                chunk[first:stop] = block[i[sl], j[sl], k[sl]].T
            del block

        valid = np.empty(grid.n_voxels, dtype=bool)
        n_repaired = 0
        for s, chunk in zip(starts, chunks):
            finite = np.isfinite(chunk).all(axis=0)
            if not finite.all():
                n_repaired += int((~finite).sum())
                chunk[:, ~finite] = 0.0  # non-finite voxels are kept out of `valid`
            valid[s : s + chunk.shape[1]] = finite & (chunk != 0).any(axis=0)
        if run_mask is not None:
            valid &= run_mask[i, j, k]

        attrs = {
            "brainxr_run": 1,
            "entities": {name: value for name, value in run.entities.items() if name not in ("extension",)},
            "t_r": repetition_time,
            "n_volumes": n_volumes,
            "n_valid_voxels": int(valid.sum()),
            "n_nonfinite_voxels": n_repaired,
            "source": dict(_source_record(run.bold), sha256=hasher.hexdigest()),
            "confounds_source": None if run.confounds is None else dict(
                _source_record(run.confounds), sha256=_file_sha256(run.confounds)
            ),
            "confounds_metadata": confounds_metadata,
            "brain_mask_source": None if run.brain_mask is None else str(run.brain_mask),
            "resampled": resample if off_grid else None,
        }
        bold = cohort_store.begin_run(
            store, key, n_volumes, grid.n_voxels, voxel_chunk, repetition_time, confounds, valid, attrs
        )
        for s in starts:
            cohort_store.write_bold_chunk(bold, s, chunks.pop(0))  # free each buffer once written
        attrs["ingested_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        cohort_store.finish_run(store, key, attrs)
        if n_repaired:
            warnings.warn(
                f"{run.bold}: {n_repaired} voxels had NaN/Inf values; they were set to 0 and excluded "
                "from the run's valid voxels",
                stacklevel=2,
            )
        return RunResult(key, "ingested", str(run.bold), None, time.perf_counter() - started,
                         n_volumes * layout.volume_nbytes)
    except Exception as err:  # one bad run must not stop the others
        return RunResult(key, "failed", str(run.bold), err, time.perf_counter() - started)


def _already_done(run: RunFiles, attrs: dict | None) -> bool:
    if not attrs or attrs.get("complete") is not True:
        return False
    recorded = attrs.get("source", {})
    current = _source_record(run.bold)
    if recorded.get("size") == current["size"] and recorded.get("mtime_ns") == current["mtime_ns"]:
        return True
    warnings.warn(
        f"{run.bold}: changed since it was ingested as {_key_of(run)!r}; the stored run is kept. "
        "Pass overwrite=True to ingest it again.",
        stacklevel=3,
    )
    return True


# ---------------------------------------------------------------------------
# The whole ingest


def _run_all(tasks, keys, client, n_workers, progress):
    """Compute the per-run tasks with a progress bar; return their results in ``keys`` order."""
    results = []
    done = brainxr_progress.as_completed(tasks, desc="ingest", unit="run", progress=progress,
                                         client=client or False, n_workers=n_workers)
    for result in done:
        results.append(result)
        failed = sum(r.status == "failed" for r in results)
        if failed:
            done.set_postfix(failed=failed)
    order = {key: n for n, key in enumerate(keys)}
    return sorted(results, key=lambda r: order.get(r.key, len(order)))


def ingest(source, store, *, space=None, mask=None, t_r=None, resample=False, client=None, n_workers: int = 2,
           block_size: int = 8, voxel_chunk_mb: float = 64, overwrite: bool = False,
           progress: bool = True, on_error: str = "raise", **filters) -> IngestReport:
    """Ingest fMRI runs and their confounds into a Zarr cohort store.

    Parameters
    ----------
    source : path or list
        An fMRIPrep derivatives folder (``*_desc-preproc_bold.nii.gz`` with
        JSON sidecars, ``*_desc-confounds_timeseries.tsv`` + JSON and
        ``*_desc-brain_mask.nii.gz`` are discovered), or a list of BOLD paths
        or ``(bold, confounds)`` pairs.
    store : path
        The store directory (created if needed; an existing store is added to).
    space : str, optional
        Output space to ingest when the folder holds several.
    mask : path or image, optional
        The cohort mask (its grid is the cohort grid). Default: the union of
        the runs' brain masks. A store keeps the mask it was created with.
    t_r : float, optional
        Repetition time for every run (default: each run's sidecar, then header).
    resample : False, "linear" or "continuous"
        Runs whose grid differs from the cohort grid are refused (False, the
        default) or resampled onto it, a block of volumes at a time, with
        this interpolation (their brain masks with nearest neighbour).
    client : distributed.Client, None or False
        Run on this cluster. None (the default): on the active
        ``distributed.Client`` if there is one, else on local threads;
        False: local threads even when a client is active.
    n_workers : int
        Local threads (runs in parallel) when no client is used.
    block_size : int
        Volumes decompressed at a time.
    voxel_chunk_mb : float
        Target size of a stored ``bold`` chunk (all of time x some voxels).
    overwrite : bool
        Ingest again runs that are already complete.
    progress : bool
        Show a progress bar (and, on a cluster, the dashboard link); see
        :mod:`brainxr.progress`.
    on_error : {"raise", "return"}
        After all runs are done, raise an :class:`~brainxr.errors.IngestError`
        listing failed runs, or only report them.
    **filters
        Entity filters for folder sources, e.g. ``task="rest"``.

    Returns
    -------
    IngestReport
    """
    if on_error not in ("raise", "return"):
        raise ValueError(f"on_error: expected 'raise' or 'return', got {on_error!r}")
    if resample not in (False, None, "linear", "continuous"):
        raise ValueError(f"resample: expected False, 'linear' or 'continuous', got {resample!r}")
    started = time.perf_counter()
    store = Path(store)
    runs = runs_from_source(source, space=space, **filters)
    if (store / "zarr.json").exists():
        grid = cohort_store.read_grid(store)
        if mask is not None:
            values, affine = load_mask(mask)
            if not grid.same_as(values.shape, affine) or not np.array_equal(values, grid.mask):
                raise ValueError(f"mask: differs from the mask of the existing store {store}")
    else:
        grid = cohort_store.init_store(store, cohort_grid(runs, mask))

    client = brainxr_progress.active_client(client)
    results, todo = [], []
    for run in runs:
        key = _key_of(run)
        try:
            cohort_store.validate_run_key(key, run.bold)
        except ValueError as err:  # refused before anything is written or removed
            results.append(RunResult(key, "failed", str(run.bold), InputFileError(run.bold, str(err))))
            continue
        if not overwrite and _already_done(run, cohort_store.read_run_attrs(store, key)):
            results.append(RunResult(key, "skipped", str(run.bold)))
        else:
            todo.append(run)
    if client is not None:
        [grid_arg] = client.scatter([grid], broadcast=True)
    else:
        grid_arg = grid
    tasks = [
        dask.delayed(ingest_run, pure=False)(run, str(store), grid_arg, t_r, block_size, voxel_chunk_mb,
                                             resample or False, dask_key_name=f"ingest-{_key_of(run)}")
        for run in todo
    ]
    results += _run_all(tasks, [_key_of(run) for run in todo], client, n_workers, progress)
    report = IngestReport(store=store, results=results, seconds=time.perf_counter() - started)
    if report.failed and on_error == "raise":
        error = IngestError(report.failed)
        error.report = report
        raise error
    return report
