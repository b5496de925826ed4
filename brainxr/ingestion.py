"""Ingest: NIfTI runs and their confounds -> one Zarr cohort store; verify and repair.

Each run is decompressed once, streaming a block of volumes at a time (from a
local disk or object storage); its masked voxels are gathered into ``(time,
voxel)`` chunks (all of time in a chunk) and written, then the run is marked
complete. Runs go in parallel through dask: local threads, or the workers of
a ``distributed.Client`` (which open the store and the sources from their
URLs or absolute paths).

Ingest is resumable and idempotent: completed runs are skipped; a run left
incomplete by an interruption is removed and redone; a bad run fails alone
and is reported at the end while the others complete. Each run is written
under its own lock, so concurrent ingests into one store skip the runs the
other is writing (and say so). Finished runs are added to the store's runs
index in batches.

:func:`verify` reads every chunk of every complete run and lists damaged
ones; ``ingest(..., repair=True)`` rewrites them from their sources, when the
sources still match the checksums recorded at ingest.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import xarray as xr

from brainxr import progress as brainxr_progress
from brainxr import store as cohort_store
from brainxr._views import view
from brainxr._storage import Location, as_location
from brainxr.bids import RunFiles, files_for_bold, find_fmriprep_runs, run_key
from brainxr.errors import IngestError, InputFileError, LocationError, StoreDamageError
from brainxr.geometry import Grid, MaskedGrid, with_grid
from brainxr.inputs import load_mask
from brainxr.nifti import _TIME_UNIT_SECONDS, iter_volume_blocks, read_layout

# the driver adds finished runs to the index at least this often
INDEX_BATCH_RUNS = 200
INDEX_BATCH_SECONDS = 30.0


@dataclass
class RunResult:
    """What happened to one run.

    Attributes
    ----------
    key : str
        The run's name in the store.
    status : str
        ``"ingested"``, ``"repaired"``, ``"skipped"`` (already complete, or
        intact when repairing), ``"locked"`` (being written by another
        ingest: ``holder`` says who) or ``"failed"`` (``error``).
    source : str
        The run's BOLD file (path or URL).
    error : Exception or None
        What stopped a failed run.
    seconds : float
        Wall time of the run.
    decompressed_bytes : int
        Bytes of NIfTI data read.
    attrs : dict or None
        The run's stored attributes.
    warnings : list of str
        Warnings raised while ingesting it.
    holder : str
        Who holds the lock of a locked run (host, pid, since).
    region_signals : list or None
        With ``ingest(..., regions=...)``, for the ``on_result`` callback
        only: the run's raw region signals, one ``(time, region)`` DataArray
        per region set (see :func:`ingest`).
    """

    key: str
    status: str
    source: str = ""
    error: Exception | None = None
    seconds: float = 0.0
    decompressed_bytes: int = 0
    attrs: dict | None = None
    warnings: list = field(default_factory=list)
    holder: str = ""
    region_signals: list | None = None

    __repr__ = view("run_result_text")
    _repr_html_ = view("run_result_html")


@dataclass
class IngestReport:
    """Summary of an ingest.

    Attributes
    ----------
    store : str
        The store (absolute path or URL).
    results : list of RunResult
    seconds : float
        Wall time of the whole ingest.
    """

    store: str
    results: list = field(default_factory=list)
    seconds: float = 0.0

    def _with(self, status):
        return [r.key for r in self.results if r.status == status]

    @property
    def ingested(self) -> list:
        return self._with("ingested")

    @property
    def repaired(self) -> list:
        return self._with("repaired")

    @property
    def skipped(self) -> list:
        return self._with("skipped")

    @property
    def locked(self) -> dict:
        """Runs another ingest was writing: run key -> who holds its lock."""
        return {r.key: r.holder for r in self.results if r.status == "locked"}

    @property
    def failed(self) -> dict:
        return {r.key: r.error for r in self.results if r.status == "failed"}

    @property
    def decompressed_bytes(self) -> int:
        return sum(r.decompressed_bytes for r in self.results)

    def __str__(self):
        repaired = f", {len(self.repaired)} repaired" if self.repaired else ""
        lines = [
            f"ingest into {self.store}: {len(self.ingested)} ingested{repaired}, {len(self.skipped)} skipped "
            f"(already complete), {len(self.failed)} failed in {self.seconds:.1f} s"
        ]
        if self.locked:
            lines.append(f"  {len(self.locked)} run(s) were being written by another ingest and were left to it "
                         "(run ingest again once it has finished to check them):")
            lines += [f"    {key}: {holder}" for key, holder in self.locked.items()]
        lines += [f"  FAILED {key}: {err}" for key, err in self.failed.items()]
        return "\n".join(lines)

    __repr__ = view("ingest_report_text")
    _repr_html_ = view("ingest_report_html")


# ---------------------------------------------------------------------------
# Sources


def runs_from_source(source, space=None, storage_options: dict | None = None, **filters) -> list[RunFiles]:
    """The runs to ingest from a derivatives folder or an explicit list.

    Parameters
    ----------
    source : path, URL or list
        An fMRIPrep derivatives folder (local or a URL), or a list whose items
        are a BOLD path or URL, a ``(bold, confounds)`` pair or a
        :class:`~brainxr.bids.RunFiles`.
    storage_options : dict, optional
        fsspec options of the source URLs.
    """
    if isinstance(source, (str, Path, Location)):
        location = _source_location(source, storage_options)
        if location.is_dir():
            return find_fmriprep_runs(location, space=space, **filters)
        if not location.exists():
            try:
                location.parent.list_names()  # a missing bucket is a LocationError saying so
            except LocationError as err:
                raise LocationError(location, err.problem) from err
            raise FileNotFoundError(f"source: {location} does not exist")
        source = [location]
    runs = []
    for item in source:
        if isinstance(item, RunFiles):
            runs.append(item)
            continue
        bold, confounds = (item, None) if isinstance(item, (str, Path, Location)) else (item[0], item[1])
        run = files_for_bold(_source_location(bold, storage_options))
        if confounds is not None:
            confounds = _source_location(confounds, storage_options)
            run.confounds = Path(confounds.url) if confounds.is_local else confounds
            json_file = run.confounds.with_name(run.confounds.name.rsplit(".", 1)[0] + ".json")
            run.confounds_json = json_file if json_file.exists() else None
        runs.append(run)
    keys = [_key_of(run) for run in runs]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f"source: several runs would be stored under the same name: {repeated}")
    return runs


def _source_location(value, storage_options):
    """A source path or URL; storage options apply to URLs only."""
    is_url = isinstance(value, str) and "://" in value
    return as_location(value, storage_options if is_url or isinstance(value, Location) else None)


def _key_of(run: RunFiles) -> str:
    """The store name of a run: its BIDS run entities, else its file name stem (unchecked)."""
    try:
        return run_key(run.entities)
    except ValueError:
        return run.bold.name.split(".nii")[0]


def _nifti_source(file):
    """What the NIfTI reader takes: a local Path, or the Location of a URL."""
    location = as_location(file)
    return Path(location.url) if location.is_local else location


def _load_mask_file(file, name: str):
    """A brain mask (boolean array, affine) from a local or remote NIfTI file."""
    location = as_location(file)
    if location.is_local:
        return _mask_and_affine(location.url, name)
    import nibabel as nib

    data = location.read_bytes()
    if location.name.endswith(".gz"):
        data = gzip.decompress(data)
    klass = nib.Nifti2Image if int(np.frombuffer(data[:4], "<i4")[0]) == 540 else nib.Nifti1Image
    return _mask_and_affine(klass.from_bytes(data), name)


def _mask_and_affine(mask, name: str = "mask"):
    values, grid = load_mask(mask, name=name)
    return values, grid.affine


# ---------------------------------------------------------------------------
# The cohort grid


def _first_volume_mask(layout) -> np.ndarray:
    _, block = next(iter_volume_blocks(layout.path, block_size=1, dtype=np.float32, layout=layout))
    values = block[..., 0]
    return np.isfinite(values) & (values != 0)


def _run_brain_mask(run: RunFiles, shape, affine) -> np.ndarray:
    """A run's brain mask on the reference grid: its fMRIPrep mask, else its non-zero first volume.

    Runs that are unreadable or off the reference grid give an empty mask
    (they fail on their own later).
    """
    try:
        layout = read_layout(_nifti_source(run.bold))
        if layout.shape[:3] != tuple(shape) or not np.allclose(layout.header.get_best_affine(), affine, atol=1e-3):
            return np.zeros(shape, dtype=bool)
        if run.brain_mask is not None:
            values, mask_affine = _load_mask_file(run.brain_mask, str(run.brain_mask))
            if values.shape == tuple(shape) and np.allclose(mask_affine, affine, atol=1e-3):
                return values
        return _first_volume_mask(layout)
    except (InputFileError, ValueError, OSError):
        return np.zeros(shape, dtype=bool)


def cohort_grid(runs: list[RunFiles], mask=None, client=None, n_workers: int = 2) -> tuple[MaskedGrid, int]:
    """The grid of a new store (the mask's, or the first readable run's) and that run's number of volumes.

    The cohort mask is ``mask`` if given, else the union of the runs' brain
    masks (fMRIPrep ``desc-brain_mask``) on that grid, else of the runs'
    non-zero voxels in their first volume: a tree reduction over the runs,
    in parallel (threads, or the client's workers).
    """
    reference = None
    for run in runs:
        try:
            reference = read_layout(_nifti_source(run.bold))
            break
        except InputFileError:
            continue
    if reference is None:
        raise ValueError("source: no readable BOLD image to define the cohort grid")
    n_volumes = reference.n_volumes
    if mask is not None:
        values, affine = _load_mask_file(mask, "mask") if isinstance(mask, (str, Path, Location)) else _mask_and_affine(mask)
        return MaskedGrid(affine=affine, mask=values), n_volumes
    import dask.array as da

    shape, affine = reference.shape[:3], reference.header.get_best_affine()
    masks = [da.from_delayed(dask.delayed(_run_brain_mask, pure=True)(run, shape, affine), shape, dtype=bool)
             for run in runs]
    union = da.stack(masks).any(axis=0, split_every=8)
    union = client.compute(union, sync=True) if client is not None else union.compute(
        scheduler=brainxr_progress.local_scheduler("threads"), num_workers=n_workers)
    if not union.any():
        raise ValueError("source: the runs' masks are empty; pass mask=")
    return MaskedGrid(affine=affine, mask=np.asarray(union)), n_volumes


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
    """The confounds table, its JSON and the TSV's source record (one read of each file)."""
    if run.confounds is None:
        return None, {}, None
    location = as_location(run.confounds)
    try:
        raw = location.read_bytes()
    except FileNotFoundError:
        raise InputFileError(run.confounds, "confounds file not found") from None
    try:
        table = pd.read_csv(io.BytesIO(raw), sep="\t", na_values=["n/a", "N/A", "NaN", "nan"])
    except Exception as err:
        raise InputFileError(run.confounds, f"unreadable confounds TSV ({err})") from err
    non_numeric = [c for c, dtype in table.dtypes.items() if not pd.api.types.is_numeric_dtype(dtype)]
    if non_numeric:
        raise InputFileError(run.confounds, f"non-numeric confound columns {non_numeric}")
    if len(table) != n_volumes:
        raise InputFileError(
            run.confounds, f"{len(table)} rows of confounds but the image {run.bold.name} has {n_volumes} volumes"
        )
    metadata = {}
    if run.confounds_json is not None:
        try:
            metadata = json.loads(as_location(run.confounds_json).read_bytes())
        except json.JSONDecodeError as err:
            raise InputFileError(run.confounds_json, f"invalid JSON ({err})") from err
    record = dict(_source_record(run.confounds), sha256=hashlib.sha256(raw).hexdigest())
    return table, metadata, record


def _source_record(file) -> dict:
    """Where a source file is and which version of it: URL (or absolute path), size, modification time."""
    location = as_location(file)
    return {"url": str(location), **location.stat()}


def _qc(confounds: pd.DataFrame | None) -> dict:
    """Per-run QC numbers kept in the runs index (mean and max framewise displacement)."""
    if confounds is None or "framewise_displacement" not in confounds:
        return {}
    fd = confounds["framewise_displacement"].to_numpy(dtype=np.float64)
    if not np.isfinite(fd).any():
        return {}
    return {"mean_fd": float(np.nanmean(fd)), "max_fd": float(np.nanmax(fd))}


def _to_grid(values: np.ndarray, affine, grid: MaskedGrid, interpolation: str) -> np.ndarray:
    """Resample ``(I, J, K[, n])`` values from ``affine``'s grid onto the cohort grid."""
    from brainxr.image import resample_img

    dims = ("i", "j", "k", "time")[: values.ndim]
    volume = with_grid(xr.DataArray(values, dims=dims), Grid(values.shape[:3], affine))
    resampled = resample_img(volume, target_affine=grid.affine, target_shape=grid.shape, interpolation=interpolation)
    return np.asarray(resampled.values, dtype=values.dtype)


def _changed_sources(recorded: dict, attrs: dict) -> list[str]:
    """Sources whose sha256 differs from the one recorded when the run was ingested."""
    changed = []
    for name in ("source", "confounds_source"):
        old, new = (recorded.get(name) or {}), (attrs.get(name) or {})
        if old.get("sha256") != new.get("sha256"):
            changed.append(f"{new.get('url') or old.get('url')} (sha256 {old.get('sha256')} when ingested, "
                           f"{new.get('sha256')} now)")
    return changed


def _region_sums(chunks: list, starts, valid: np.ndarray, weights) -> np.ndarray:
    """A run's region sums from its voxel chunks in memory: the rows the cohort engine reduces from the store.

    ``(time + 1 (+ region), region)``: :func:`~brainxr.regions._reductions.project_columns`
    of each chunk (the values and ``valid`` the store receives), summed over chunks.
    """
    from brainxr.regions._reductions import project_columns

    slices = [slice(start, start + chunk.shape[1]) for start, chunk in zip(starts, chunks)]
    total = None
    for voxels, chunk, chunk_weights in zip(slices, chunks, weights.chunk_weights(slices)):
        # known_finite: non-finite voxels were zeroed and left out of ``valid``, as the engine knows of stored chunks
        partial = project_columns(chunk, chunk_weights, valid[voxels], with_gram=weights.with_gram, known_finite=True)
        total = partial if total is None else total + partial
    return total


def region_signals_of(sums: np.ndarray, n_volumes: int, weights) -> xr.DataArray:
    """Raw ``(time, region)`` signals and ``coverage (region)`` of a run from its region sums.

    The same numbers as ``Cohort.extract(regions)`` of the stored run
    (:meth:`~brainxr.regions.cohort.RegionWeights.finish` of the same sums),
    with its region coordinates.
    """
    counts = sums[n_volumes]
    gram = sums[n_volumes + 1:] if weights.with_gram else None
    table = weights.regions
    coords = {"region": ("region", table["region"].to_numpy(dtype=object).astype(str)),
              "coverage": ("region", weights.coverage(counts))}
    coords.update({axis: ("region", table[axis].to_numpy(dtype=np.float64)) for axis in "xyz" if axis in table})
    return xr.DataArray(weights.finish(sums[:n_volumes], counts, gram), dims=("time", "region"), coords=coords)


class _BufferPool:
    """Arrays handed from a finished run to the next by the local ingest threads; dropped with the pool.

    A run's voxel chunks are 0.1-0.7 GB of ``(time, voxel)`` buffers. Fresh
    memory costs a page fault per page, and glibc maps afresh every buffer
    over 32 MB (a 32 MB stored chunk is just over): 0.3-0.5 s of CPU per 2 mm
    run on a busy machine (huge-page compaction), against ~0.05 s to fill
    buffers already in memory. At most ``capacity`` free arrays are kept.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._free = []
        self._lock = threading.Lock()

    def empty(self, shape: tuple, dtype) -> np.ndarray:
        """A free array of this shape and dtype (contents undefined), or a new one."""
        with self._lock:
            for position, array in enumerate(self._free):
                if array.shape == shape and array.dtype == dtype:
                    return self._free.pop(position)
        return np.empty(shape, dtype)

    def give(self, array: np.ndarray) -> None:
        """Return an array no longer used; the oldest free arrays beyond ``capacity`` are dropped."""
        with self._lock:
            self._free.append(array)
            del self._free[: max(0, len(self._free) - self.capacity)]


def read_voxel_chunks(source, layout, grid: MaskedGrid, voxel_chunk: int, block_size: int = 8, hasher=None,
                      buffers: _BufferPool | None = None, resample=False) -> tuple[range, list]:
    """Decode a run's BOLD once and gather the cohort grid's voxels into the ``(time, voxel)`` chunks a store keeps.

    Parameters
    ----------
    source, layout
        The run's BOLD (as :func:`~brainxr.nifti.iter_volume_blocks` takes it) and its header.
    grid : MaskedGrid
        The cohort grid: its voxels, in order, are gathered.
    voxel_chunk : int
        Voxels per stored chunk.
    block_size : int
        Volumes decompressed at a time.
    hasher : hashlib hash object, optional
        Updated with every byte of the file as stored (the source's checksum, at no second read).
    buffers : _BufferPool, optional
        Where the chunk buffers come from (default: new arrays).
    resample : False, "linear" or "continuous"
        Resample each block of volumes onto the grid first (a run off the cohort grid).

    Returns
    -------
    starts : range
        First voxel of each chunk.
    chunks : list of numpy.ndarray
        One C-contiguous float32 ``(time, voxel)`` buffer per stored chunk (written without another copy).
    """
    i, j, k = (grid.voxel_index[:, axis] for axis in range(3))
    # each cohort voxel's offset in a volume as NIfTI stores it (i fastest)
    offsets = np.ravel_multi_index((i, j, k), grid.shape, order="F")
    starts = range(0, grid.n_voxels, voxel_chunk)
    buffers = buffers or _BufferPool(0)
    chunks = [buffers.empty((layout.n_volumes, min(voxel_chunk, grid.n_voxels - s)), np.dtype(np.float32))
              for s in starts]
    affine = layout.header.get_best_affine()
    for first, block in iter_volume_blocks(source, block_size, np.float32, layout, hasher, n_buffers=1):
        if resample:
            block = _to_grid(block, affine, grid, resample)
        volumes = block.T.reshape(block.shape[3], -1)  # (time, I*J*K): a view of the F-ordered block
        stop = first + len(volumes)
        for s, chunk in zip(starts, chunks):
            # gathered row by row straight into the chunk (mode="clip": unbuffered; the offsets are in range)
            np.take(volumes, offsets[s : s + chunk.shape[1]], axis=1, out=chunk[first:stop], mode="clip")
        del block, volumes
    return starts, chunks


def write_voxel_chunks(bold, starts, chunks: list, buffers: _BufferPool | None = None) -> None:
    """Write a run's voxel chunks (from :func:`read_voxel_chunks`) into its ``bold`` array.

    The chunk buffers then go back to ``buffers`` (if given), for the next run.
    """
    # the chunks are encoded and written concurrently: one at a time, this thread waited for each (a quarter
    # of its time at 2 mm) while zarr's threads compressed and wrote it
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="brainxr-write") as writers:
        list(writers.map(functools.partial(cohort_store.write_bold_chunk, bold), starts, chunks))
    if buffers is not None:
        for chunk in chunks:
            buffers.give(chunk)  # to the next run, or freed


def ingest_run(run: RunFiles, store, grid: MaskedGrid, voxel_chunk: int, t_r=None, block_size: int = 8,
               resample=False, recorded: dict | None = None, overwrite: bool = False,
               region_weights=None, buffers: _BufferPool | None = None) -> RunResult:
    """Ingest one run into a store (whose grid is ``grid``) under the run's lock; errors are returned.

    Parameters
    ----------
    region_weights : list of RegionWeights, optional
        Also reduce the run's voxels, while in memory, to the region sums of
        each (``RunResult.region_signals``: one ``(time + 1, region)`` array
        each, turned into signals by :func:`region_signals_of`).
    recorded : dict, optional
        For a repair: the damaged run's attributes. The run is rewritten only
        if it is still damaged and its sources still match the recorded
        checksums.
    overwrite : bool
        Rewrite the run even if it is complete (otherwise a run another
        ingest completed meanwhile is skipped).
    buffers : _BufferPool, optional
        Where the run's voxel chunk buffers come from and go back to once
        written (local threads); default: new arrays.
    """
    key = _key_of(run)
    started = time.perf_counter()
    location = as_location(store)
    lock = cohort_store.run_lock(location, key)
    if not lock.acquire():
        return RunResult(key, "locked", str(run.bold), holder=lock.describe_holder())
    try:
        if recorded is not None and not cohort_store.verify_run(location, key, recorded, grid.n_voxels):
            return RunResult(key, "skipped", str(run.bold), seconds=time.perf_counter() - started)
        if recorded is None and not overwrite and (cohort_store.read_run_attrs(location, key) or {}).get("complete"):
            # completed by another ingest since this one listed the store: theirs stands
            return RunResult(key, "skipped", str(run.bold), seconds=time.perf_counter() - started)
        bold_source = _nifti_source(run.bold)
        layout = read_layout(bold_source)
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
        confounds, confounds_metadata, confounds_record = _read_confounds(run, n_volumes)
        run_mask = None
        if run.brain_mask is not None:
            values, mask_affine = _load_mask_file(run.brain_mask, str(run.brain_mask))
            if grid.same_as(values.shape, mask_affine):
                run_mask = values
            elif resample:
                run_mask = _to_grid(values.astype(np.uint8), mask_affine, grid, "nearest") > 0

        i, j, k = (grid.voxel_index[:, axis] for axis in range(3))
        buffers = buffers or _BufferPool(0)
        hasher = hashlib.sha256()
        starts, chunks = read_voxel_chunks(bold_source, layout, grid, voxel_chunk, block_size, hasher, buffers,
                                           resample if off_grid else False)

        valid = np.empty(grid.n_voxels, dtype=bool)
        n_repaired, any_signal = 0, False
        for s, chunk in zip(starts, chunks):
            finite = np.isfinite(chunk).all(axis=0)
            if not finite.all():
                n_repaired += int((~finite).sum())
                chunk[:, ~finite] = 0.0  # non-finite voxels are kept out of `valid`
            nonzero = (chunk != 0).any(axis=0)
            any_signal |= bool(nonzero.any())
            valid[s : s + chunk.shape[1]] = finite & nonzero
        if run_mask is not None:
            valid &= run_mask[i, j, k]
        sums = None if region_weights is None else [_region_sums(chunks, starts, valid, w) for w in region_weights]

        messages = []
        if n_repaired:
            messages.append(f"{run.bold}: {n_repaired} voxels had NaN/Inf values; they were set to 0 and excluded "
                            "from the run's valid voxels")
        if not any_signal:
            messages.append(f"run {key} ({run.bold}): every voxel of the cohort mask is zero in every volume; "
                            "the run has no valid voxel and its region signals will be NaN")
        elif not valid.any():
            messages.append(f"run {key} ({run.bold}): no valid voxel (none both non-zero and in the run's brain "
                            "mask); its region signals will be NaN")

        attrs = {
            "brainxr_run": 2,
            "entities": {name: value for name, value in run.entities.items() if name not in ("extension",)},
            "t_r": repetition_time,
            "n_volumes": n_volumes,
            "n_valid_voxels": int(valid.sum()),
            "n_nonfinite_voxels": n_repaired,
            "n_confounds": 0 if confounds is None else confounds.shape[1],
            "source": dict(_source_record(run.bold), sha256=hasher.hexdigest()),
            "confounds_source": confounds_record,
            "brain_mask_source": None if run.brain_mask is None else str(run.brain_mask),
            "resampled": resample if off_grid else None,
            "qc": _qc(confounds),
        }
        status = "ingested"
        if recorded is not None:
            changed = _changed_sources(recorded, attrs)
            if changed:
                raise InputFileError(run.bold, "damaged in the store but cannot be repaired: its sources changed "
                                               f"since ingest: {'; '.join(changed)}; pass overwrite=True to ingest "
                                               "the new sources")
            cohort_store.update_index(location, remove=[key])  # "listed in the index" means complete
            status = "repaired"
        bold = cohort_store.begin_run(location, key, n_volumes, voxel_chunk, repetition_time, confounds,
                                      confounds_metadata, valid, attrs)
        write_voxel_chunks(bold, starts, chunks, buffers)
        del chunks
        if not lock.held():
            raise RuntimeError(f"run {key}: its lock was taken over by another ingest while it was written "
                               "(judged stale); the run is left incomplete")
        attrs["ingested_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        attrs = cohort_store.finish_run(location, key, attrs)
        return RunResult(key, status, str(run.bold), None, time.perf_counter() - started,
                         n_volumes * layout.volume_nbytes, attrs=attrs, warnings=messages, region_signals=sums)
    except Exception as err:  # one bad run must not stop the others
        return RunResult(key, "failed", str(run.bold), err, time.perf_counter() - started)
    finally:
        lock.release()


def source_changed(run: RunFiles, attrs: dict) -> bool:
    """Whether a stored run's BOLD source changed since it was ingested (its size or modification time).

    Parameters
    ----------
    run : RunFiles
        The run's source files.
    attrs : dict
        The stored run's attributes (from the store's index or its group).
    """
    recorded = attrs.get("source") or {}
    current = _source_record(run.bold)
    return recorded.get("size") != current["size"] or recorded.get("mtime_ns") != current["mtime_ns"]


def _already_done(run: RunFiles, attrs: dict) -> bool:
    """A complete run is kept; warn when its source changed since (size or modification time)."""
    if source_changed(run, attrs):
        warnings.warn(
            f"{run.bold}: changed since it was ingested as {_key_of(run)!r}; the stored run is kept. "
            "Pass overwrite=True to ingest it again.",
            stacklevel=3,
        )
    return True


# ---------------------------------------------------------------------------
# Running per-run tasks


def _run_all(tasks, keys, client, n_workers, progress, on_result=None, desc="ingest"):
    """Compute the per-run tasks with a progress bar; return their results in ``keys`` order."""
    results = []
    done = brainxr_progress.as_completed(tasks, desc=desc, unit="run", progress=progress,
                                         client=client or False, n_workers=n_workers)
    for result in done:
        results.append(result)
        failed = sum(getattr(r, "status", None) == "failed" for r in results)
        if failed:
            done.set_postfix(failed=failed)
        if on_result is not None:
            on_result(result)
    order = {key: n for n, key in enumerate(keys)}
    return sorted(results, key=lambda r: order.get(getattr(r, "key", None), len(order)))


class _IndexBatcher:
    """Adds finished runs to the store's index every ``INDEX_BATCH_RUNS`` runs or ``INDEX_BATCH_SECONDS``."""

    def __init__(self, location: Location):
        self.location = location
        self.pending: dict = {}
        self.last = time.monotonic()

    def __call__(self, result) -> None:
        if result.attrs is not None:
            self.pending[result.key] = result.attrs
        if len(self.pending) >= INDEX_BATCH_RUNS or time.monotonic() - self.last > INDEX_BATCH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            cohort_store.update_index(self.location, add=self.pending)
            self.pending = {}
        self.last = time.monotonic()


# ---------------------------------------------------------------------------
# The whole ingest


def ingest(source, store, *, space=None, mask=None, t_r=None, resample=False, client=None, n_workers: int = 2,
           block_size: int = 8, voxel_chunk_mb: float | None = None, overwrite: bool = False, repair: bool = False,
           storage_options: dict | None = None, source_storage_options: dict | None = None,
           progress: bool = True, on_error: str = "raise", regions=None, on_result=None, **filters) -> IngestReport:
    """Ingest fMRI runs and their confounds into a Zarr cohort store.

    Parameters
    ----------
    source : path, URL or list
        An fMRIPrep derivatives folder, local or a URL
        (``*_desc-preproc_bold.nii.gz`` with JSON sidecars,
        ``*_desc-confounds_timeseries.tsv`` + JSON and
        ``*_desc-brain_mask.nii.gz`` are discovered), or a list of BOLD
        paths/URLs or ``(bold, confounds)`` pairs.
    store : path, URL or Location
        The store (created if needed; an existing store is added to): a
        local path or an fsspec URL (``s3://bucket/cohort.zarr``...).
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
    voxel_chunk_mb : float, optional
        Target size of a stored ``bold`` chunk (all of the first run's time x
        some voxels) of a new store; default 32 MB. A store keeps the voxel
        chunk it was created with.
    overwrite : bool
        Ingest again runs that are already complete.
    repair : bool
        Check every complete run of the source (every chunk of every array)
        and rewrite the damaged ones from their sources, if the sources still
        match the checksums recorded at ingest.
    storage_options : dict, optional
        fsspec options of a store URL (default: the standard environment,
        e.g. ``AWS_ENDPOINT_URL``), and of a source URL unless
        ``source_storage_options`` is given.
    source_storage_options : dict, optional
        fsspec options of the source URLs.
    progress : bool
        Show a progress bar (and, on a cluster, the dashboard link); see
        :mod:`brainxr.progress`.
    on_error : {"raise", "return"}
        After all runs are done, raise an :class:`~brainxr.errors.IngestError`
        listing failed runs, or only report them.
    regions : list, optional
        Atlases (labels with the mean, maps, spheres: what
        :meth:`Cohort.extract <brainxr.cohort.Cohort.extract>` takes) whose raw
        region signals ``on_result`` receives for each run ingested now,
        reduced from the run's voxels while they are in memory (the store is
        written as without them): ``result.region_signals`` holds one
        ``(time, region)`` DataArray per atlas, with ``coverage (region)``,
        equal to ``Cohort.extract(atlas)`` of the stored run. They are
        dropped after the callback, so the report stays small.
    on_result : callable, optional
        Called with each :class:`RunResult` as its run finishes (in the
        calling thread, while the other runs go on).
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
    if overwrite and repair:
        raise ValueError("overwrite and repair: choose one (overwrite rewrites every run, repair damaged ones)")
    started = time.perf_counter()
    client = brainxr_progress.active_client(client)
    location = as_location(store, storage_options)
    runs = runs_from_source(source, space=space,
                            storage_options=storage_options if source_storage_options is None
                            else source_storage_options, **filters)
    results, valid_runs = [], []
    for run in runs:
        try:
            cohort_store.validate_run_key(_key_of(run), run.bold)
            valid_runs.append(run)
        except ValueError as err:  # refused before anything is written or removed
            results.append(RunResult(_key_of(run), "failed", str(run.bold), InputFileError(run.bold, str(err))))

    attrs = cohort_store.open_or_create_store(
        location, lambda: cohort_grid(valid_runs, mask, client, n_workers), voxel_chunk_mb
    )
    contents = cohort_store.read_store(location)
    grid = contents.grid
    if mask is not None:
        values, affine = _load_mask_file(mask, "mask") if isinstance(mask, (str, Path, Location)) else _mask_and_affine(mask)
        if not grid.same_as(values.shape, affine) or not np.array_equal(values, grid.mask):
            raise ValueError(f"mask: differs from the mask of the existing store {location}")

    todo, repairs, drop = [], {}, []
    for run in valid_runs:
        key = _key_of(run)
        stored = contents.runs.get(key)
        if stored is None or overwrite:
            todo.append(run)
            if key in contents.indexed:
                drop.append(key)
        elif repair:
            todo.append(run)
            repairs[key] = stored
        elif _already_done(run, stored):
            results.append(RunResult(key, "skipped", str(run.bold)))
    # complete runs a killed ingest did not index, then runs about to be rewritten out of the index
    cohort_store.update_index(location, add={key: contents.runs[key] for key in contents.unindexed
                                             if key not in drop}, remove=drop)

    weights = None
    if regions:
        from brainxr.regions.cohort import region_weights

        weights = [region_weights(atlas, grid.shape, grid.affine, grid.voxel_index) for atlas in regions]
    if client is not None:
        [grid_arg, weights_arg] = client.scatter([grid, weights], broadcast=True)
        buffers = None
    else:
        grid_arg, weights_arg = grid, weights
        buffers = _BufferPool(n_workers * len(range(0, grid.n_voxels, attrs["voxel_chunk"])))
    tasks = [
        dask.delayed(ingest_run, pure=False)(
            run, location, grid_arg, attrs["voxel_chunk"], t_r, block_size, resample or False,
            repairs.get(_key_of(run)), overwrite, weights_arg, buffers, dask_key_name=f"ingest-{_key_of(run)}")
        for run in todo
    ]
    batcher = _IndexBatcher(location)

    def finished(result):
        batcher(result)
        if result.region_signals is not None:
            n_volumes = result.attrs["n_volumes"]
            result.region_signals = [region_signals_of(sums, n_volumes, atlas_weights)
                                     for sums, atlas_weights in zip(result.region_signals, weights)]
        if on_result is not None:
            on_result(result)
        result.region_signals = None

    try:
        results += _run_all(tasks, [_key_of(run) for run in todo], client, n_workers, progress, on_result=finished)
    finally:
        batcher.flush()
    report = IngestReport(store=str(location), results=results, seconds=time.perf_counter() - started)
    for result in results:
        for message in result.warnings:
            warnings.warn(message, stacklevel=2)
    if report.failed and on_error == "raise":
        error = IngestError(report.failed)
        error.report = report
        raise error
    return report


# ---------------------------------------------------------------------------
# Verification


@dataclass
class VerifyReport:
    """What :func:`verify` found.

    Attributes
    ----------
    store : str
    checked : list of str
        Complete runs whose every chunk was read.
    damaged : dict
        Run key -> list of :class:`~brainxr.errors.StoreDamageError` (one per
        damaged array). The store's own arrays are under the key ``None``.
    incomplete : list of str
        Runs left incomplete by an interrupted ingest (not damage: the next
        ingest redoes them).
    seconds : float
    """

    store: str
    checked: list = field(default_factory=list)
    damaged: dict = field(default_factory=dict)
    incomplete: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.damaged

    def __str__(self):
        lines = [f"verify {self.store}: {len(self.checked)} complete runs checked, {len(self.damaged)} damaged "
                 f"in {self.seconds:.1f} s"]
        for key, problems in self.damaged.items():
            for problem in problems:
                lines.append(f"  DAMAGED {key if key is not None else '(store)'}: {problem.problem} "
                             f"[array {problem.array}]")
        if self.incomplete:
            lines.append(f"  {len(self.incomplete)} incomplete run(s) (interrupted ingest; ingest redoes them): "
                         f"{', '.join(self.incomplete[:10])}{', ...' if len(self.incomplete) > 10 else ''}")
        if self.damaged:
            lines.append("  repair from the sources: brainxr.ingest(SOURCE, STORE, repair=True) "
                         "(brainxr ingest SOURCE STORE --repair)")
        return "\n".join(lines)

    __repr__ = view("summary_text")
    _repr_html_ = view("summary_html")


@dataclass
class _Checked:
    key: str
    problems: list


def _verify_task(location, key: str, attrs: dict, n_voxels: int) -> _Checked:
    return _Checked(key, cohort_store.verify_run(location, key, attrs, n_voxels))


def verify(store, *, storage_options: dict | None = None, client=None, n_workers: int = 2,
           progress: bool = True) -> VerifyReport:
    """Check every chunk of every complete run of a store against its checksum.

    Parameters
    ----------
    store : path, URL or Location
    storage_options : dict, optional
        fsspec options of a store URL.
    client : distributed.Client, None or False
        Check on this cluster; None: the active client if any, else local
        threads; False: local threads.
    n_workers : int
        Local threads when no client is used.
    progress : bool

    Returns
    -------
    VerifyReport
        ``report.damaged`` maps each damaged run to what is wrong (missing,
        truncated or corrupt chunks, arrays of the wrong shape, a run listed
        as complete whose group is gone).
    """
    started = time.perf_counter()
    client = brainxr_progress.active_client(client)
    location = as_location(store, storage_options)
    contents = cohort_store.read_store(location)
    n_voxels = int(contents.attrs.get("n_voxels") or cohort_store.read_grid(location).n_voxels)
    report = VerifyReport(store=str(location), incomplete=list(contents.incomplete))
    root = cohort_store.verify_root(location)
    if root:
        report.damaged[None] = root
    for key in contents.vanished:
        report.damaged[key] = [StoreDamageError(location, key, "zarr.json", "listed in the index as complete but "
                                                                          "its group is missing")]
    keys = list(contents.runs)
    tasks = [dask.delayed(_verify_task, pure=False)(location, key, contents.runs[key], n_voxels,
                                                     dask_key_name=f"verify-{key}") for key in keys]
    for checked in _run_all(tasks, keys, client, n_workers, progress, desc="verify"):
        report.checked.append(checked.key)
        if checked.problems:
            report.damaged[checked.key] = checked.problems
    report.seconds = time.perf_counter() - started
    return report
