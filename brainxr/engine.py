"""The cohort engine: lazy computations over (run chunk, voxel chunk) blocks of a store.

A cohort's runs are stacked along a ``run`` dim and cut into chunks of runs
(:class:`RunBlocks`); the voxels are cut in the store's own bold chunks. Each
graph here is built from the runs table with a constant number of array
operations, whatever the number of runs:

- per-run values (run keys, lengths, repetition times) enter the graph as
  run-chunked numpy arrays, one small task per chunk of runs;
- objects every task shares (the region weights of a voxel chunk, the
  checked options) enter once, as a key or a layer argument;
- everything that depends on a run's data happens inside the tasks: its
  arrays are read through the store's read contract
  (:func:`brainxr.store.read_bold`, ``read_valid``, ``read_confounds``), its
  confounds are selected and its cleaning plan is built there.

Nothing is read while a graph is built. The stages and their tasks, for ``R``
run chunks and ``V`` voxel chunks:

- :func:`stacked_bold` / :func:`stacked_valid`: the stored runs as
  ``(run, time, voxel)`` (NaN after each run's last volume) and
  ``(run, voxel)``, ``R x V`` reading tasks;
- :func:`region_totals`: weighted sums of each region (labels, maps, spheres),
  ``R x V`` tasks that read and reduce a run at a time, then a tree sum over
  voxel chunks;
- :func:`cleaning_plans`: per run, confounds read and selected (strategy,
  scrubbing, sample mask) and the cleaning plan built, ``R`` tasks;
- :func:`region_signals`: region values from the sums, cleaned, ``R`` tasks;
- :func:`cleaned_bold`: the voxels cleaned, ``R x V`` tasks.

Every task runs its numpy kernels with one BLAS thread
(:func:`one_thread_per_task`): tasks already run in parallel, one per core.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from dataclasses import dataclass
from functools import cached_property

import dask
import dask.array as da
import numpy as np
from dask.base import tokenize

from brainxr import store as cohort_store
from brainxr.errors import StoreDamageError

#: bytes of bold (float32, all of a run's volumes) in a block of the stacked arrays
TASK_BOLD_BYTES = 256 * 2**20
#: bytes of bold a reduction task reads, one run at a time (about a second of work)
TASK_READ_BYTES = 2**30
#: bytes of per-run results (sums, region signals, matrices) a reduction task holds
TASK_RESULT_BYTES = 64 * 2**20
#: partial results combined per level of the tree reductions over voxel chunks
SPLIT_EVERY = 8


# -- threads -------------------------------------------------------------------------


_threads_lock = threading.Lock()
_threads_users = 0
_threads_limiter = None
_threadpools = (0, None)  # (len(sys.modules) when found, threadpoolctl.ThreadpoolController)

#: glibc's thresholds inside cohort tasks: buffers below MMAP_THRESHOLD come from the heap, and free heap
#: memory above TRIM_THRESHOLD goes back to the OS (see :func:`tune_allocator`)
MMAP_THRESHOLD = 64 * 2**20
TRIM_THRESHOLD = 128 * 2**20
_allocator_tuned = None


def tune_allocator(command: bool = False) -> bool:
    """Let glibc reuse per-run buffers: on dask worker processes, and in the ``brainxr`` command (once per process).

    Dask's nanny starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``,
    which also turns glibc's dynamic mmap threshold off: every buffer over
    128 kB (a run's bold chunk and its copies, 10-60 MB) is then mapped and
    unmapped run after run, its pages faulted in anew each time. Measured on
    100 runs (4 mm, 150 volumes), region extraction took 23.7 s of task time
    on two worker processes against 3.0 s with glibc's own thresholds. Where
    that environment variable asks for less than :data:`TRIM_THRESHOLD`, the
    thresholds become :data:`MMAP_THRESHOLD` / :data:`TRIM_THRESHOLD`
    (``mallopt``): per-run buffers stay on the heap, larger free memory is
    still returned. Elsewhere (the threaded scheduler, other platforms) and
    with ``BRAINXR_TUNE_MALLOC=0`` glibc is left alone, except that the
    ``brainxr`` command sets them in its own process (``command=True``, unless
    the environment sets a threshold):
    glibc's dynamic threshold stops at 32 MB, so a stored 32 MB bold chunk
    and its encoded copies were mapped afresh for every run (ingest of a
    2 mm run: 0.35 s of system time against 0.17 s with these thresholds).
    The command also caps glibc's arenas at one per CPU (glibc's default is
    eight): each thread that encodes chunks (zarr's) would otherwise keep its
    own freed copies (``benchmarks/bids_app.py``, 8 runs at 2 mm: peak 927 MB
    with the thresholds alone, 742 MB with two arenas, 809 MB untuned).

    Parameters
    ----------
    command : bool
        Set them whatever the environment (the command's own process).

    Returns
    -------
    bool
        Whether this process's thresholds were set (now or before).
    """
    global _allocator_tuned
    if _allocator_tuned or (_allocator_tuned is not None and not command):
        return _allocator_tuned
    _allocator_tuned = False
    requested = os.environ.get("MALLOC_TRIM_THRESHOLD_", "")
    if (sys.platform.startswith("linux") and os.environ.get("BRAINXR_TUNE_MALLOC", "1") != "0"
            and ((requested.isdigit() and int(requested) < TRIM_THRESHOLD) or (command and not requested))):
        import ctypes

        try:
            mallopt = ctypes.CDLL("libc.so.6").mallopt
        except (OSError, AttributeError):  # not glibc
            return _allocator_tuned
        m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8  # glibc's malloc.h
        _allocator_tuned = bool(mallopt(m_mmap_threshold, MMAP_THRESHOLD)) and bool(
            mallopt(m_trim_threshold, TRIM_THRESHOLD))
        if command and _allocator_tuned and not os.environ.get("MALLOC_ARENA_MAX"):
            mallopt(m_arena_max, max(2, os.cpu_count() or 2))
    return _allocator_tuned


def _loaded_threadpools():
    """threadpoolctl's controller of the thread pools (BLAS, OpenMP) loaded in this process.

    Finding them scans every loaded library (~4 ms), and the limit is set
    again whenever the tasks of a cohort graph pause: the controller is kept
    until a module import may have loaded another library (scipy brings its
    own OpenBLAS).
    """
    global _threadpools
    if _threadpools[0] != len(sys.modules):
        from threadpoolctl import ThreadpoolController

        _threadpools = (len(sys.modules), ThreadpoolController())
    return _threadpools[1]


@contextlib.contextmanager
def one_thread_per_task():
    """Run the block inside with one BLAS/OpenMP thread (and one numba thread).

    Cohort tasks already run in parallel, one per core (the threads of the
    threaded scheduler, or of a worker): a task that also starts several
    BLAS threads oversubscribes the cores, which on a busy machine made the
    tangent space of 16 runs take 44 s instead of 1 s. BLAS has one thread
    setting per process, so the limit is set (threadpoolctl) when the first
    task of this process starts and the previous limits are restored when
    the last one ends. numba's setting is per thread.
    """
    global _threads_users, _threads_limiter

    with _threads_lock:
        if _allocator_tuned is None:
            tune_allocator()
        if _threads_users == 0:
            _threads_limiter = _loaded_threadpools().limit(limits=1)
        _threads_users += 1
    numba = sys.modules.get("numba")
    if not hasattr(numba, "set_num_threads"):  # not imported, or being imported by another thread
        numba = None
    numba_threads = numba.get_num_threads() if numba is not None else None
    if numba is not None:
        numba.set_num_threads(1)
    try:
        yield
    finally:
        if numba is not None:
            numba.set_num_threads(numba_threads)
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                _threads_limiter.restore_original_limits()
                _threads_limiter = None


# -- the blocks of a cohort ------------------------------------------------------------


def runs_per_chunk(n_time: int, voxel_chunk: int, target_bytes: int = TASK_BOLD_BYTES) -> int:
    """Runs per chunk of the stacked arrays: a block (``n_time x voxel_chunk`` float32 per run) of about ``target_bytes``."""
    return int(max(1, target_bytes // max(1, 4 * n_time * voxel_chunk)))


def reduction_runs_per_chunk(n_time: int, voxel_chunk: int, result_bytes_per_run: int) -> int:
    """Runs per chunk of the graphs that reduce runs (extraction and what follows).

    Their tasks read a run at a time, so memory does not bound the chunk:
    it is cut at about :data:`TASK_READ_BYTES` of bold read per task (a
    second or so of work: fewer, longer tasks make a smaller graph) and
    :data:`TASK_RESULT_BYTES` of per-run results held.
    """
    by_read = TASK_READ_BYTES // max(1, 4 * n_time * voxel_chunk)
    by_result = TASK_RESULT_BYTES // max(1, result_bytes_per_run)
    return int(max(1, min(by_read, by_result)))


@dataclass(frozen=True, eq=False)
class RunBlocks:
    """A cohort cut into blocks: its runs in chunks of runs, its voxels in the store's chunks.

    Attributes
    ----------
    location
        The store (what the read contract of :mod:`brainxr.store` takes).
    keys : numpy.ndarray
        ``(run,)`` run keys (object).
    n_volumes : numpy.ndarray
        ``(run,)`` volumes of each run.
    t_r : numpy.ndarray
        ``(run,)`` repetition times (NaN where unknown).
    n_voxels : int
        Stored voxels.
    voxel_chunk : int
        Voxels per stored bold chunk.
    runs_per_chunk : int
    """

    location: object
    keys: np.ndarray
    n_volumes: np.ndarray
    t_r: np.ndarray
    n_voxels: int
    voxel_chunk: int
    runs_per_chunk: int

    @property
    def n_runs(self) -> int:
        return len(self.keys)

    @property
    def n_time(self) -> int:
        """Length of the stacked time axis: the longest run."""
        return int(self.n_volumes.max()) if self.n_runs else 0

    @cached_property
    def token(self) -> str:
        return tokenize(str(self.location), self.keys, self.n_volumes, self.t_r, self.voxel_chunk, self.runs_per_chunk)

    @property
    def run_chunks(self) -> tuple:
        full, last = divmod(self.n_runs, self.runs_per_chunk)
        return (self.runs_per_chunk,) * full + ((last,) if last else ())

    @cached_property
    def voxel_slices(self) -> list:
        return [slice(start, min(start + self.voxel_chunk, self.n_voxels))
                for start in range(0, self.n_voxels, self.voxel_chunk)]

    def per_run(self, name: str, values) -> da.Array:
        """A ``(run,)`` numpy array as a run-chunked dask array (one small task per chunk)."""
        values = np.asarray(values)
        return da.from_array(values, chunks=(self.run_chunks,), name=f"{name}-{self.token}")

    def per_voxel_chunk(self, name: str, items, token) -> da.Array:
        """One object per voxel chunk (a slice, the chunk's weights) as a dask array chunked by one."""
        values = np.empty(len(items), dtype=object)
        values[:] = items
        return da.from_array(values, chunks=1, name=f"{name}-{token}")

    @cached_property
    def keys_array(self) -> da.Array:
        return self.per_run("run-keys", self.keys)

    @cached_property
    def n_volumes_array(self) -> da.Array:
        return self.per_run("run-n-volumes", self.n_volumes)

    @cached_property
    def t_r_array(self) -> da.Array:
        return self.per_run("run-t-r", self.t_r)

    def voxel_blocks(self, chunks=None) -> da.Array:
        """The voxel slices of the chunks ``chunks`` (default: all)."""
        slices = self.voxel_slices if chunks is None else [self.voxel_slices[c] for c in chunks]
        return self.per_voxel_chunk("voxel-slices", slices, tokenize(self.token, chunks))

    def voxel_chunk_sizes(self, chunks=None) -> tuple:
        slices = self.voxel_slices if chunks is None else [self.voxel_slices[c] for c in chunks]
        return tuple(s.stop - s.start for s in slices)


# -- errors that name the run ----------------------------------------------------------


class RunFailure:
    """A run that failed inside a task (kept instead of raising with ``on_error="skip"``)."""

    def __init__(self, key: str, message: str):
        self.key, self.message = key, message

    def __repr__(self):
        return f"RunFailure({self.key!r}, {self.message!r})"


def _naming_run(error: Exception, key: str) -> Exception:
    """``error`` with the run named first in its message (same type when it can be rebuilt)."""
    message = f"run {key!r}: {error}"
    try:
        named = type(error)(message)
    except Exception:  # an exception type with another signature: keep it, with a note
        error.add_note(f"(in run {key!r})")
        return error
    return named


def _run_guard(key: str, on_error: str, run):
    """``run()``, or a :class:`RunFailure` naming ``key`` (``on_error="skip"``); damage always raises."""
    try:
        return run()
    except StoreDamageError:
        raise
    except Exception as error:
        if on_error == "raise":
            raise _naming_run(error, key) from error
        return RunFailure(key, f"{type(error).__name__}: {error}")


# -- reading ---------------------------------------------------------------------------


def _read_bold_block(keys, voxel_slice, *, location, n_time):
    voxels = voxel_slice[0]
    block = np.full((len(keys), n_time, voxels.stop - voxels.start), np.nan, dtype=np.float32)
    for position, key in enumerate(keys):
        values = cohort_store.read_bold(location, key, voxels, writeable=False)  # copied into the block
        block[position, : values.shape[0]] = values
    return block


def _read_bold_and_valid(location, key, voxels: slice):
    """A run's bold and validity over a slice of voxels, read together (one call to the store; read-only views)."""
    arrays = cohort_store.read_run_arrays(location, key, {"bold": (slice(None), voxels), "valid": (voxels,)},
                                          writeable=False)
    return arrays["bold"], np.asarray(arrays["valid"], dtype=bool)


def _read_valid_block(keys, voxel_slice, *, location):
    voxels = voxel_slice[0]
    return np.stack([cohort_store.read_valid(location, key, voxels) for key in keys]).reshape(
        len(keys), voxels.stop - voxels.start)


def stacked_bold(blocks: RunBlocks) -> da.Array:
    """``(run, time, voxel)`` float32 bold of every run, NaN after each run's last volume."""
    return da.blockwise(
        _read_bold_block, "rtv",
        blocks.keys_array, "r",
        blocks.voxel_blocks(), "v",
        new_axes={"t": blocks.n_time},
        adjust_chunks={"v": blocks.voxel_chunk_sizes()},
        location=blocks.location, n_time=blocks.n_time,
        dtype=np.float32, meta=np.empty((0, 0, 0), dtype=np.float32), name=f"bold-{blocks.token}",
    )


def stacked_valid(blocks: RunBlocks) -> da.Array:
    """``(run, voxel)`` bool: the voxels with usable signal in each run."""
    return da.blockwise(
        _read_valid_block, "rv",
        blocks.keys_array, "r",
        blocks.voxel_blocks(), "v",
        adjust_chunks={"v": blocks.voxel_chunk_sizes()},
        location=blocks.location, dtype=bool, meta=np.empty((0, 0), dtype=bool), name=f"valid-{blocks.token}",
    )


def _read_confounds_block(keys, *, location, columns, n_time):
    block = np.full((len(keys), n_time, len(columns)), np.nan)
    for position, key in enumerate(keys):
        table, _ = cohort_store.read_confounds(location, key, metadata=False)
        for index, column in enumerate(columns):
            if column in table:
                block[position, : len(table), index] = table[column].to_numpy(dtype=np.float64)
    return block


def stacked_confounds(blocks: RunBlocks, columns) -> da.Array:
    """``(run, time, confound)`` float64: the named confounds of every run (NaN where a run lacks one).

    A run's confounds table is read whole (one small stored chunk), so one
    task per chunk of runs reads them.
    """
    columns = [str(column) for column in columns]
    return da.blockwise(
        _read_confounds_block, "rtc", blocks.keys_array, "r",
        new_axes={"t": blocks.n_time, "c": len(columns)}, location=blocks.location, columns=columns,
        n_time=blocks.n_time, dtype=np.float64, meta=np.empty((0, 0, 0)),
        name=f"confounds-{tokenize(blocks.token, columns)}",
    )


# -- region extraction ----------------------------------------------------------------


def _project_runs_block(keys, voxel_slice, chunk_weights, *, location, n_time, ensure_finite, with_gram):
    """Partial region sums of one voxel chunk of each run of a chunk: ``(run, 1, rows, region)``.

    Rows: ``n_time`` rows of sums (zeros after the run's last volume), the
    count of valid voxels, then (``with_gram``) the Gram rows of the invalid
    voxels' weights. A run is read, reduced and released before the next.
    """
    from brainxr.regions._reductions import project_columns

    voxels, weights = voxel_slice[0], chunk_weights[0]
    n_regions = weights.n_regions
    out = np.zeros((len(keys), 1, n_time + 1 + (n_regions if with_gram else 0), n_regions))
    with one_thread_per_task():
        for position, key in enumerate(keys):
            bold, valid = _read_bold_and_valid(location, key, voxels)
            partial = project_columns(bold, weights, valid, ensure_finite=ensure_finite, with_gram=with_gram,
                                      known_finite=True, compiled=True)
            n = bold.shape[0]
            out[position, 0, :n] = partial[:n]
            out[position, 0, n_time:] = partial[n:]
    return out


def _reduce_runs_block(keys, *, location, n_time, weights, voxel_slices, ensure_finite):
    """A label statistic of each run of a chunk: ``(run, n_time + 1, region)`` values then counts.

    The statistics other than sums need each region's voxels together: a
    run's region voxels are gathered chunk by chunk into one array (the
    largest memory of these tasks), then reduced by flox.
    """
    in_region = weights.assignment >= 0
    assignment = weights.assignment[in_region]
    out = np.full((len(keys), n_time + 1, weights.n_regions), np.nan)
    with one_thread_per_task():
        for position, key in enumerate(keys):
            columns, valid = [], []
            for voxels in voxel_slices:
                keep = in_region[voxels]
                if keep.any():
                    bold, chunk_valid = _read_bold_and_valid(location, key, voxels)
                    columns.append(bold[:, keep])
                    valid.append(chunk_valid[keep])
            bold = np.concatenate(columns, axis=1)
            values, counts = _reduce_labels(bold, assignment, weights, np.concatenate(valid), ensure_finite)
            out[position, : bold.shape[0]] = values
            out[position, n_time] = counts
    return out


def _reduce_labels(bold, assignment, weights, valid, ensure_finite):
    from brainxr.regions.labels import reduce_labels

    return reduce_labels(bold, assignment, weights.n_regions, weights.statistic, ensure_finite, valid=valid)


def region_totals(blocks: RunBlocks, weights, ensure_finite: bool, token: str) -> da.Array:
    """``(run, rows, region)`` per-run totals over all voxel chunks (see :func:`_project_runs_block`).

    For the sums (labels mean and sum, spheres, maps): one task per (run
    chunk, voxel chunk with a weight), then a tree sum over voxel chunks.
    For the other label statistics: one task per run chunk.
    """
    if not weights.projected:
        rows = blocks.n_time + 1
        return da.blockwise(
            _reduce_runs_block, "rxk",
            blocks.keys_array, "r",
            new_axes={"x": rows, "k": weights.n_regions},
            location=blocks.location, n_time=blocks.n_time, weights=dask.delayed(weights.for_tasks(), pure=True),
            voxel_slices=blocks.voxel_slices, ensure_finite=ensure_finite,
            dtype=np.float64, meta=np.empty((0, 0, 0)), name=f"region-statistic-{token}",
        )
    chunk_weights = weights.chunk_weights(blocks.voxel_slices)
    used = [index for index, chunk in enumerate(chunk_weights) if chunk.needed.size]
    rows = blocks.n_time + 1 + (weights.n_regions if weights.with_gram else 0)
    partials = da.blockwise(
        _project_runs_block, "rcxk",
        blocks.keys_array, "r",
        blocks.voxel_blocks(used), "c",
        blocks.per_voxel_chunk("region-weights", [chunk_weights[c] for c in used], token), "c",
        new_axes={"x": rows, "k": weights.n_regions},
        location=blocks.location, n_time=blocks.n_time, ensure_finite=ensure_finite, with_gram=weights.with_gram,
        dtype=np.float64, meta=np.empty((0, 0, 0, 0)), name=f"region-partial-sums-{token}",
    )
    return partials.sum(axis=1, split_every=SPLIT_EVERY)


# -- cleaning plans ------------------------------------------------------------------


@dataclass(frozen=True)
class Cleaning:
    """What cleaning a cohort's runs needs, checked once when the graph is built.

    Attributes
    ----------
    selection : dict or None
        Parameters of :func:`~brainxr.interfaces.fmriprep.select_confounds`
        (the resolved confounds strategy), None for no confounds.
    options : dict
        Options of the runs' cleaning plans (:func:`brainxr.signal.cleaning.plan_options`).
    t_r : float or None
        A repetition time given for every run; None: each run's own.
    on_error : {"raise", "skip"}
    """

    selection: dict | None
    options: dict
    t_r: float | None
    on_error: str = "raise"


def _needs_confounds_json(selection: dict) -> bool:
    """Whether a confounds selection reads the confounds JSON (only CompCor's does): one more array per run."""
    return "compcor" in selection["strategy"]


def _run_plan(key, n_volumes, t_r, location, cleaning: Cleaning):
    from brainxr.interfaces.fmriprep import select_confounds
    from brainxr.signal.cleaning import run_plan

    confounds = sample_mask = None
    if cleaning.selection is not None:
        table, metadata = cohort_store.read_confounds(location, key, metadata=_needs_confounds_json(cleaning.selection))
        if len(table) != n_volumes:
            raise ValueError(f"its confounds table has {len(table)} rows for {n_volumes} volumes")
        confounds, sample_mask = select_confounds(table, metadata, **cleaning.selection)
        if confounds is not None and confounds.shape[1] == 0:
            confounds = None
    options = dict(cleaning.options, t_r=float(t_r) if cleaning.t_r is None else cleaning.t_r)
    return run_plan(int(n_volumes), confounds, sample_mask, options)


def _plans_block(keys, n_volumes, t_r, *, location, cleaning):
    plans = np.empty(len(keys), dtype=object)
    with one_thread_per_task():
        for position, key in enumerate(keys):
            plans[position] = _run_guard(
                key, cleaning.on_error,
                lambda: _run_plan(key, n_volumes[position], t_r[position], location, cleaning),  # noqa: B023
            )
    return plans


def cleaning_plans(blocks: RunBlocks, cleaning: Cleaning, token: str) -> da.Array:
    """``(run,)`` object array: each run's :class:`~brainxr.signal.plan.CleaningPlan` (or :class:`RunFailure`).

    One task per chunk of runs reads their confounds, selects them and builds
    their plans; the plans are small (a few ``(time, k)`` matrices) and are
    shared by every task that cleans the runs' signals.
    """
    return da.blockwise(
        _plans_block, "r",
        blocks.keys_array, "r", blocks.n_volumes_array, "r", blocks.t_r_array, "r",
        location=blocks.location, cleaning=cleaning,
        dtype=object, meta=np.empty((0,), dtype=object), name=f"cleaning-plans-{token}",
    )


def _kept_block(plans):
    return np.array([0 if isinstance(plan, RunFailure) else plan.n_output for plan in plans], dtype=np.int64)


def _onset_block(n_volumes, t_r, *plans, n_time):
    """Seconds from each run's start of its output volumes, NaN after the last one."""
    onset = np.full((len(n_volumes), n_time), np.nan)
    for position, (n, repetition) in enumerate(zip(n_volumes, t_r)):
        if plans:
            plan = plans[0][position]
            frames = np.empty(0) if isinstance(plan, RunFailure) else plan.output_frames
        else:
            frames = np.arange(n)
        onset[position, : len(frames)] = frames * repetition
    return onset


def _error_block(plans):
    return np.array([plan.message if isinstance(plan, RunFailure) else "" for plan in plans], dtype=object)


def kept_volumes(blocks: RunBlocks, plans: da.Array | None, token: str) -> da.Array | np.ndarray:
    """``(run,)`` volumes of each run's output (after censoring; 0 for a failed run)."""
    if plans is None:
        return blocks.n_volumes
    return da.blockwise(_kept_block, "r", plans, "r", dtype=np.int64, meta=np.empty((0,), np.int64),
                        name=f"kept-volumes-{token}")


def onsets(blocks: RunBlocks, plans: da.Array | None, token: str) -> da.Array:
    """``(run, time)`` seconds of each output volume from its run's start (NaN in the padding)."""
    extra = () if plans is None else (plans, "r")
    return da.blockwise(
        _onset_block, "rt", blocks.n_volumes_array, "r", blocks.t_r_array, "r", *extra,
        new_axes={"t": blocks.n_time}, n_time=blocks.n_time,
        dtype=np.float64, meta=np.empty((0, 0)), name=f"onset-{token}",
    )


def run_errors(plans: da.Array, token: str) -> da.Array:
    """``(run,)`` strings: why each run failed, ``""`` for the runs that did not.

    Typed as variable-length strings (xarray's vlen ``str`` dtype), so that
    writing them to Zarr needs no computation to find their width.
    """
    from xarray.coding.strings import create_vlen_dtype

    strings = create_vlen_dtype(str)
    return da.blockwise(_error_block, "r", plans, "r", dtype=strings, meta=np.empty((0,), dtype=strings),
                        name=f"run-errors-{token}")


# -- region signals ----------------------------------------------------------------------


def _region_values_block(totals, keys, n_volumes, *plans, weights, n_time, min_coverage, on_error):
    """``(run, time, region)`` float64 region signals of a chunk of runs, cleaned when plans are given."""
    from brainxr.signal.cleaning import clean_with_plan

    out = np.full((len(n_volumes), n_time, weights.n_regions), np.nan)
    with one_thread_per_task():
        for position, n in enumerate(n_volumes):
            total = totals[position]
            counts = total[n_time]
            if weights.projected:
                gram = total[n_time + 1:] if weights.with_gram else None
                values = weights.finish(total[:n], counts, gram, min_coverage)
            else:
                values = weights.masked_by_coverage(total[:n], counts, min_coverage)
            if plans:
                plan = plans[0][position]
                if isinstance(plan, RunFailure):
                    continue
                values = _run_guard(keys[position], on_error, lambda: clean_with_plan(values, plan))  # noqa: B023
                if isinstance(values, RunFailure):
                    continue
            out[position, : len(values)] = values
    return out


def _coverage_block(totals, *, weights, n_time):
    return weights.coverage(totals[:, n_time, :])


def region_values(totals: da.Array, blocks: RunBlocks, weights, plans: da.Array | None, min_coverage,
                  on_error: str, token: str) -> da.Array:
    """``(run, time, region)`` region signals: the statistic of each region, then the run's cleaning."""
    extra = () if plans is None else (plans, "r")
    return da.blockwise(
        _region_values_block, "rtk",
        totals, "rxk", blocks.keys_array, "r", blocks.n_volumes_array, "r", *extra,
        new_axes={"t": blocks.n_time}, concatenate=True,
        weights=dask.delayed(weights.for_tasks(), pure=True), n_time=blocks.n_time, min_coverage=min_coverage,
        on_error=on_error,
        dtype=np.float64, meta=np.empty((0, 0, 0)), name=f"region-signals-{token}",
    )


def region_coverage(totals: da.Array, blocks: RunBlocks, weights, token: str) -> da.Array:
    """``(run, region)`` fraction of each region's voxels (or weight) with valid signal in each run."""
    return da.blockwise(
        _coverage_block, "rk", totals, "rxk", concatenate=True,
        weights=dask.delayed(weights.for_tasks(), pure=True), n_time=blocks.n_time,
        dtype=np.float64, meta=np.empty((0, 0)), name=f"coverage-{token}",
    )


# -- cleaned voxels ----------------------------------------------------------------------


def _clean_bold_block(keys, plans, voxel_slice, *, location, n_time, psc, on_error):
    """``(run, n_time (+2 for psc), voxel)`` cleaned bold of a chunk of runs over one voxel chunk.

    With ``standardize="psc"`` the rows ``n_time`` and ``n_time + 1`` hold
    each column's residual and original means (:func:`~brainxr.signal.kernel.clean_block`'s
    parts), for the run-wide decision of :func:`_finish_psc_block`.
    """
    from brainxr.signal.kernel import clean_block

    voxels = voxel_slice[0]
    out = np.full((len(keys), n_time + (2 if psc else 0), voxels.stop - voxels.start), np.nan, dtype=np.float32)
    with one_thread_per_task():
        for position, (key, plan) in enumerate(zip(keys, plans)):
            if isinstance(plan, RunFailure):
                continue
            bold = cohort_store.read_bold(location, key, voxels, writeable=False)  # clean_block leaves it unchanged
            cleaned = _run_guard(key, on_error, lambda: clean_block(bold, plan))  # noqa: B023
            if isinstance(cleaned, RunFailure):
                continue
            n = plan.n_output
            out[position, :n] = cleaned[:n]
            if psc:
                out[position, n_time:] = cleaned[n:]
    return out


def _psc_sums_block(parts, *, n_time):
    """Per run, the sums over a voxel chunk of ``|residual mean|`` and ``|original mean|``: ``(run, 1, 2)``."""
    means = np.abs(parts[:, n_time:, :].astype(np.float64))
    return means.sum(axis=2)[:, None, :]


def _finish_psc_block(parts, sums, plans, *, n_time):
    from brainxr.signal.kernel import finish_psc

    out = np.full((parts.shape[0], n_time, parts.shape[2]), np.nan, dtype=parts.dtype)
    for position, plan in enumerate(plans):
        if isinstance(plan, RunFailure):
            continue
        n = plan.n_output
        residual, original = sums[position]
        with np.errstate(divide="ignore", invalid="ignore"):
            add_original_mean = bool(residual / original < 1e-1)  # nilearn's test, over all of the run's columns
        run_parts = np.concatenate([parts[position, :n], parts[position, n_time:]])
        out[position, :n] = finish_psc(run_parts, add_original_mean, inplace=True)
    return out


def cleaned_bold(blocks: RunBlocks, plans: da.Array, psc: bool, on_error: str, token: str) -> da.Array:
    """``(run, time, voxel)`` float32 cleaned voxels, packed at the start of the time axis (NaN after).

    One task per (run chunk, voxel chunk) reads the runs' bold and applies
    their plans; percent signal change adds a tree sum over voxel chunks (its
    decision depends on all of a run's voxels) and a finishing map.
    """
    chunks = blocks.voxel_chunk_sizes()
    parts = da.blockwise(
        _clean_bold_block, "rtv",
        blocks.keys_array, "r", plans, "r", blocks.voxel_blocks(), "v",
        new_axes={"t": blocks.n_time + (2 if psc else 0)}, adjust_chunks={"v": chunks},
        location=blocks.location, n_time=blocks.n_time, psc=psc, on_error=on_error,
        dtype=np.float32, meta=np.empty((0, 0, 0), dtype=np.float32), name=f"cleaned-bold-{token}",
    )
    if not psc:
        return parts
    sums = da.blockwise(
        _psc_sums_block, "rvx", parts, "rtv", new_axes={"x": 2}, adjust_chunks={"v": 1}, n_time=blocks.n_time,
        concatenate=True, dtype=np.float64, meta=np.empty((0, 0, 0)), name=f"psc-sums-{token}",
    ).sum(axis=1, split_every=SPLIT_EVERY)
    return da.blockwise(
        _finish_psc_block, "rtv", parts, "rtv", sums, "rx", plans, "r",
        adjust_chunks={"t": blocks.n_time}, concatenate=True, n_time=blocks.n_time,
        dtype=np.float32, meta=np.empty((0, 0, 0), dtype=np.float32), name=f"cleaned-bold-psc-{token}",
    )


# -- confounds summary -------------------------------------------------------------------


def _confounds_summary_block(keys, n_volumes, *, location, selection):
    from brainxr.interfaces.fmriprep import select_confounds

    out = np.empty((len(keys), 2))
    for position, (key, n) in enumerate(zip(keys, n_volumes)):
        table, metadata = cohort_store.read_confounds(location, key, metadata=_needs_confounds_json(selection))
        _, sample_mask = _run_guard(key, "raise", lambda: select_confounds(table, metadata, **selection))  # noqa: B023
        fd = table["framewise_displacement"].to_numpy() if "framewise_displacement" in table else np.empty(0)
        out[position, 0] = n if sample_mask is None else len(sample_mask)
        out[position, 1] = np.nanmean(fd) if np.isfinite(fd).any() else np.nan
    return out


def confounds_summary(blocks: RunBlocks, selection: dict, token: str) -> da.Array:
    """``(run, 2)``: volumes kept by a confounds strategy and mean framewise displacement of each run."""
    return da.blockwise(
        _confounds_summary_block, "rx", blocks.keys_array, "r", blocks.n_volumes_array, "r",
        new_axes={"x": 2}, location=blocks.location, selection=selection,
        dtype=np.float64, meta=np.empty((0, 0)), name=f"confounds-summary-{token}",
    )
