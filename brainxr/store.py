"""The Zarr (v3) cohort store: layout, format version, integrity and the read contract.

::

    cohort.zarr/                 a local path or any fsspec URL
      zarr.json                  attrs: brainxr_format, affine, grid_shape, n_voxels, voxel_chunk,
                                 created_by (written last when the store is created)
      mask          (i, j, k)    bool: the cohort mask; voxels outside are not stored
      voxel_index   (voxel, axis) int32: grid index (i, j, k) of each stored voxel
      index.json.gz              the runs index: the attributes of every complete run, one object
      locks/store.lock           held briefly: store creation, index updates
      locks/runs/<key>.lock      held by the ingest writing that run
      runs/
        <run key>/               one group per run, named by its BIDS entities
          zarr.json              attrs: brainxr_run, entities, t_r, n_volumes, source, qc, ..., complete
          bold       (time, voxel)     float32, chunks (n_volumes, voxel_chunk)
          confounds  (time, confound)  float64, NaN where the TSV had n/a
          confound   (confound,)       column names
          time       (time,)           seconds
          valid      (voxel,)          bool: the voxel has usable signal in this run
          confounds_metadata (1,)      the confounds JSON, as one string

Integrity. Every array is stored with a CRC-32C checksum (Zarr's ``crc32c``
codec) and with every chunk written, so flipped bytes, a truncated chunk or a
missing chunk of a complete run raise :class:`~brainxr.errors.StoreDamageError`
naming the store, the run and the array, never silently different numbers.

Completion. A run is complete once its ``complete`` attribute is true; it is
written last, after every array. A run listed in the index is complete: a run
is dropped from the index before it is rewritten (overwrite, repair), and
added after it is complete. The run groups are the source of truth; the index
is derived from them (and rebuilt from them for runs a killed ingest did not
index). Creating a store writes the root attributes last: a store without
them, holding nothing but what creation writes, is an interrupted creation
that the next ingest completes.

Format 1 (brainxr 0.1: no checksums, no index, per-run voxel chunks, the
confounds JSON in the run attributes) is read, never written.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import os
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property, lru_cache

import google_crc32c
import numpy as np
import pandas as pd
import xarray as xr
import zarr
from zarr.abc.codec import SupportsSyncCodec
from zarr.api.asynchronous import open_array as open_async_array
from zarr.codecs import BloscCodec, Crc32cCodec
from zarr.core.array_spec import ArrayConfig
from zarr.core.buffer import default_buffer_prototype
from zarr.core.buffer.cpu import Buffer as CpuBuffer
from zarr.core.codec_pipeline import codecs_from_list
from zarr.core.metadata import ArrayV3Metadata
from zarr.core.sync import sync as zarr_sync  # runs a coroutine on Zarr's own event loop (where its stores live)
from zarr.storage import WrapperStore

from brainxr._storage import LeaseLock, Location, _access_problem, as_location
from brainxr.errors import LocationError, StoreDamageError, StoreError
from brainxr.dims import VOXEL_DIM
from brainxr.geometry import MaskedGrid, with_t_r
from brainxr.masking import auto_voxel_chunk

FORMAT_VERSION = 2
RUNS = "runs"
LOCKS = "locks"
INDEX = "index.json.gz"
# Target size of a bold chunk (all of a run's time x some voxels), uncompressed:
# object-store GETs of 8-100 MB amortise their latency, and a worker thread holds
# a few chunks at a time within 1 GB.
VOXEL_CHUNK_MB = 32
# Byte shuffle rather than bitshuffle: on float32 BOLD (4 mm, 150 volumes) it compressed to 75% of the
# raw bytes against 74%, and decoded in 5 ms against 14 ms (encoded in 8 ms against 22 ms); every run is
# decoded once per pass of the cohort engine, so decode speed is what counts.
BOLD_COMPRESSORS = (BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"), Crc32cCodec())
CHECKSUM = (Crc32cCodec(),)
_WRITE_EVERY_CHUNK = {"write_empty_chunks": True}
# what creating a store writes (format 1 also wrote an `axis` array)
_CREATION_ENTRIES = {"zarr.json", "mask", "voxel_index", "axis", RUNS, LOCKS, INDEX}
STORE_LOCK_LEASE = 120.0
RUN_LOCK_LEASE = 300.0


# ---------------------------------------------------------------------------
# Run names


# A run key names a folder (or object prefix) under runs/: letters, digits and
# "_", "-", "." only, starting with a letter or digit. That rules out "", ".",
# "..", path separators, glob characters (which fsspec would expand) and
# anything a URL would reinterpret ("%", "?", "#", ":", "+", spaces...).
_SAFE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")
_RESERVED_KEYS = {"zarr.json"}


def validate_run_key(key: str, source=None) -> str:
    """Return ``key`` if it can name a run's group; raise a ValueError naming the source otherwise.

    Parameters
    ----------
    key : str
        A run key: BIDS entities (``sub-01_task-rest``) or a file stem.
    source : str or os.PathLike, optional
        The file the key comes from, named in the error.
    """
    if not isinstance(key, str) or not _SAFE_KEY.fullmatch(key) or key in _RESERVED_KEYS:
        origin = f" (from {source})" if source is not None else ""
        raise ValueError(
            f"{key!r}{origin} cannot name a run in a cohort store: a run name is BIDS entities "
            "(sub-01_task-rest) or a file name stem of letters, digits, '_', '-' and '.', starting "
            "with a letter or digit; rename the file with BIDS entities"
        )
    return key


def run_location(store, key: str) -> Location:
    """The group of run ``key``: always a direct child of ``runs/`` (the key is validated)."""
    return as_location(store) / RUNS / validate_run_key(key)


# ---------------------------------------------------------------------------
# The root: format, grid, creation


def _read_json(location: Location):
    """A JSON object, None if absent, {} if unreadable (a write cut short)."""
    try:
        return json.loads(location.read_bytes())
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError):
        return {}


def _checked_root_attrs(location: Location, meta) -> dict | None:
    """The root attributes of a brainxr store, None for an interrupted creation or an empty place."""
    attrs = (meta or {}).get("attributes", {}) if isinstance(meta, dict) else {}
    version = attrs.get("brainxr_format")
    if version is not None:
        if int(version) > FORMAT_VERSION:
            raise StoreError(
                f"{location}: written by a newer brainxr (store format {version}); this version reads "
                f"format {FORMAT_VERSION} and older: upgrade brainxr"
            )
        return attrs
    foreign = sorted(set(location.list_names()) - _CREATION_ENTRIES)
    if foreign:
        what = "a Zarr store" if meta else "a folder"
        raise StoreError(
            f"{location}: {what} but not a brainxr cohort store (no 'brainxr_format' attribute; holds "
            f"{', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''}); choose another store path"
        )
    if any(key != "zarr.json" for key in (location / RUNS).list_names()):
        raise StoreError(f"{location}: holds runs but no 'brainxr_format' attribute; not a brainxr cohort store")
    return None


def root_attrs(store) -> dict:
    """The root attributes of a store, after checking its format version."""
    location = as_location(store)
    meta = _read_json(location / "zarr.json")
    attrs = _checked_root_attrs(location, meta)
    if attrs is None:
        if meta is None and not location.list_names():
            raise StoreError(f"{location}: not a brainxr cohort store (no zarr.json)")
        raise StoreError(
            f"{location}: an interrupted store creation (no 'brainxr_format' attribute yet); "
            "run ingest again to complete it"
        )
    return attrs


def store_format(attrs: dict) -> int:
    return int(attrs["brainxr_format"])


def _grid_from(location: Location, attrs: dict) -> MaskedGrid:
    mask = _read_array(location, None, "mask", ())
    return MaskedGrid(affine=np.asarray(attrs["affine"], dtype=np.float64), mask=np.asarray(mask, dtype=bool))


def read_grid(store) -> MaskedGrid:
    """The cohort grid of a store."""
    location = as_location(store)
    return _grid_from(location, root_attrs(location))


@contextmanager
def store_lock(store, timeout: float = 600.0):
    """Hold the store lock (creation, index updates), waiting for another holder up to ``timeout`` s."""
    location = as_location(store)
    lock = LeaseLock(location / LOCKS / "store.lock", lease=STORE_LOCK_LEASE)
    if not lock.acquire(timeout=timeout):
        raise StoreError(f"{location}: the store lock is held by another process ({lock.describe_holder()}) "
                         f"for more than {timeout:.0f} s")
    try:
        yield
    finally:
        lock.release()


def run_lock(store, key: str) -> LeaseLock:
    """The (not yet acquired) lock of run ``key``."""
    return LeaseLock(as_location(store) / LOCKS / RUNS / f"{validate_run_key(key)}.lock", lease=RUN_LOCK_LEASE)


def open_or_create_store(store, make_grid, voxel_chunk_mb: float | None = None) -> dict:
    """The root attributes of a store to write into, creating (or completing) it if needed.

    Parameters
    ----------
    store : path, URL or Location
    make_grid : callable
        Returns ``(grid, n_volumes)`` for a new store: its grid and the
        number of volumes its bold chunks are sized for. Called only when the
        store does not exist yet.
    voxel_chunk_mb : float, optional
        Target size of a bold chunk of a new store (default 32 MB).

    Raises
    ------
    StoreError
        For a format-1 store (read-only), a newer format, or a place holding
        something else.
    """
    location = as_location(store)
    attrs = _checked_root_attrs(location, _read_json(location / "zarr.json"))
    if attrs is None:
        grid, n_volumes = make_grid()
        with store_lock(location):
            attrs = _checked_root_attrs(location, _read_json(location / "zarr.json"))
            if attrs is None:
                voxel_chunk = auto_voxel_chunk(n_volumes, 4, (voxel_chunk_mb or VOXEL_CHUNK_MB) * 2**20, grid.n_voxels)
                attrs = _create_root(location, grid, voxel_chunk)
    if store_format(attrs) < FORMAT_VERSION:
        raise StoreError(
            f"{location}: a store of format {attrs['brainxr_format']} (brainxr 0.1), readable but not "
            f"writable by this version (format {FORMAT_VERSION}: checksums, runs index); ingest into a "
            "new store"
        )
    return attrs


def _create_root(location: Location, grid: MaskedGrid, voxel_chunk: int) -> dict:
    """Write the arrays of a new store, then its root attributes, last (under the store lock)."""
    from brainxr import __version__

    (location / "zarr.json").remove()  # an interrupted creation's root without attributes
    zstore = location.zarr_store()
    zarr.create_array(zstore, name="mask", data=grid.mask, chunks=grid.shape, compressors=CHECKSUM,
                      dimension_names=("i", "j", "k"), overwrite=True, config=_WRITE_EVERY_CHUNK)
    zarr.create_array(zstore, name="voxel_index", data=grid.voxel_index, chunks=grid.voxel_index.shape,
                      compressors=CHECKSUM, dimension_names=(VOXEL_DIM, "axis"), overwrite=True,
                      config=_WRITE_EVERY_CHUNK)
    attrs = {
        "brainxr_format": FORMAT_VERSION,
        "affine": np.asarray(grid.affine).tolist(),
        "grid_shape": list(grid.shape),
        "n_voxels": grid.n_voxels,
        "voxel_chunk": int(voxel_chunk),
        "created_by": {"brainxr": __version__, "zarr": zarr.__version__},
        "created_at": _now(),
    }
    _write_root_attrs(location, attrs)
    return attrs


def _write_root_attrs(location: Location, attrs: dict) -> None:
    """The root ``zarr.json`` with its attributes, in one write: a store exists once this is done."""
    zarr.open_group(location.zarr_store(), mode="a", zarr_format=3, use_consolidated=False).attrs.put(attrs)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------
# The runs index


def read_index(store) -> dict:
    """Run key -> attributes of the complete runs in the index (empty if there is no index)."""
    location = as_location(store)
    try:
        data = json.loads(gzip.decompress((location / INDEX).read_bytes()))
        return dict(data["runs"])
    except FileNotFoundError:
        return {}
    except (OSError, EOFError, ValueError, KeyError, TypeError) as err:
        warnings.warn(f"{location}: the runs index {INDEX} is unreadable ({err}); it is rebuilt from the run "
                      "groups", stacklevel=2)
        return {}


def update_index(store, add: dict | None = None, remove=()) -> None:
    """Add complete runs (key -> attributes) to the index and drop others, under the store lock."""
    location = as_location(store)
    if not add and not remove:
        return
    with store_lock(location):
        runs = read_index(location)
        for key in remove:
            runs.pop(key, None)
        runs.update(add or {})
        payload = json.dumps({"brainxr_index": 1, "runs": dict(sorted(runs.items()))}, allow_nan=False)
        (location / INDEX).write_bytes(gzip.compress(payload.encode(), mtime=0))


# ---------------------------------------------------------------------------
# What a store holds


@dataclass
class StoreContents:
    """The complete and incomplete runs of a store, from its metadata only.

    Attributes
    ----------
    location : Location
    attrs : dict
        Root attributes (format, grid, voxel chunk).
    runs : dict
        Complete runs: key -> attributes, sorted by key.
    incomplete : list of str
        Runs present but not complete (being written, or interrupted).
    unindexed : list of str
        Complete runs missing from the index (a killed ingest); the next
        ingest indexes them.
    indexed : set of str
        Runs listed in the index.
    vanished : list of str
        Runs listed in the index whose group is gone (damage).
    """

    location: Location
    attrs: dict
    runs: dict = field(default_factory=dict)
    incomplete: list = field(default_factory=list)
    unindexed: list = field(default_factory=list)
    indexed: set = field(default_factory=set)
    vanished: list = field(default_factory=list)

    @property
    def format(self) -> int:
        return store_format(self.attrs)

    @property
    def voxel_chunk(self) -> int | None:
        """Voxels per stored bold chunk, the same for every run (None in format 1)."""
        return self.attrs.get("voxel_chunk")

    @cached_property
    def grid(self) -> MaskedGrid:
        return _grid_from(self.location, self.attrs)


def read_run_attrs(store, key: str) -> dict | None:
    """A run's attributes, or None if the run is absent or its metadata is unreadable.

    Parameters
    ----------
    store : str, os.PathLike or Location
        The store (path or URL).
    key : str
        The run's name.
    """
    meta = _read_json(run_location(store, key) / "zarr.json")
    return meta.get("attributes", {}) if meta else None


def _run_attrs_of(location: Location, keys) -> dict:
    """Attributes (or None) of several runs, fetched together (concurrent requests on object stores)."""
    found = {}
    for key, raw in zip(keys, location.read_many(f"{RUNS}/{key}/zarr.json" for key in keys)):
        try:
            found[key] = json.loads(raw).get("attributes") if raw is not None else None
        except (ValueError, UnicodeDecodeError, AttributeError):
            found[key] = None
    return found


def read_store(store) -> StoreContents:
    """The runs of a store from metadata: root attributes, the index and one listing of ``runs/``.

    A format-1 store (no index) reads every run's ``zarr.json``.
    """
    location = as_location(store)
    attrs = root_attrs(location)
    listed = [name for name in (location / RUNS).list_names() if name != "zarr.json" and _SAFE_KEY.fullmatch(name)]
    index = read_index(location) if store_format(attrs) >= 2 else {}
    vanished = sorted(set(index) - set(listed))
    if vanished:
        warnings.warn(f"{location}: runs listed in the index but absent from {RUNS}/: {vanished[:10]}; "
                      "brainxr.verify(store) lists damaged runs", stacklevel=2)
    contents = StoreContents(location, attrs, indexed=set(index), vanished=vanished)
    others = [key for key in listed if key not in index]
    found = _run_attrs_of(location, others) if others else {}
    for key in sorted(listed):
        run_attrs = index.get(key) or found.get(key)
        if run_attrs and run_attrs.get("complete") is True:
            contents.runs[key] = run_attrs
            if key not in index and store_format(attrs) >= 2:
                contents.unindexed.append(key)
        else:
            contents.incomplete.append(key)
    return contents


def scan_runs(store) -> tuple[dict, list]:
    """The complete runs of a store (key -> attributes) and the names of incomplete ones."""
    contents = read_store(store)
    return contents.runs, contents.incomplete


# ---------------------------------------------------------------------------
# Writing a run: lock (by the caller) -> remove its group -> arrays -> attributes, complete last


def remove_run(store, key: str) -> None:
    """Delete run ``key``'s group, and nothing else."""
    run_location(store, key).remove_tree()


@lru_cache(maxsize=256)
def _array_metadata(shape, dtype, chunks, dims, fill_value=None):
    """A Zarr array's metadata, as Zarr makes it (in memory), to create a run's nodes in one batch.

    ``bold`` (float32) is compressed, then checksummed; the other arrays are
    checksummed only. Cached: runs of a cohort mostly share their shapes, and
    the metadata is immutable.
    """
    compressors = BOLD_COMPRESSORS if dtype == "float32" else CHECKSUM
    return zarr.create_array(zarr.storage.MemoryStore(), shape=shape, dtype=dtype, chunks=chunks,
                             compressors=compressors, dimension_names=dims, fill_value=fill_value).metadata


def begin_run(store, key: str, n_volumes: int, voxel_chunk: int, t_r: float, confounds: pd.DataFrame | None,
              confounds_metadata: dict, valid: np.ndarray, attrs: dict) -> zarr.Array:
    """Create a run's group with its small arrays and an empty ``bold``; return ``bold``.

    Any previous group of the same name is removed first (the caller holds
    the run's lock and has dropped it from the index). The group and every
    array's metadata are created in one concurrent batch
    (``zarr.create_hierarchy``: a few requests on object stores, not a few
    per array). The run stays incomplete until :func:`finish_run`.
    """
    from zarr.core.group import GroupMetadata

    location = as_location(store)
    remove_run(location, key)
    columns = [] if confounds is None else [str(c) for c in confounds.columns]
    table = np.empty((n_volumes, 0)) if confounds is None else confounds.to_numpy(dtype=np.float64)
    small = {  # name: (values, dims, chunks, fill value)
        "time": (t_r * np.arange(n_volumes, dtype=np.float64), ("time",), None, None),
        "confound": (np.array(columns, dtype=object), ("confound",), None, None),
        "confounds": (table, ("time", "confound"), None, np.nan),
        "confounds_metadata": (np.array([json.dumps(confounds_metadata or {})], dtype=object), ("metadata",), None,
                               None),
        "valid": (np.asarray(valid, dtype=bool), (VOXEL_DIM,), (voxel_chunk,), None),
    }
    path = f"{RUNS}/{key}"
    nodes = {path: GroupMetadata(attributes=dict(attrs, complete=False))}
    for name, (values, dims, chunks, fill_value) in small.items():
        nodes[f"{path}/{name}"] = _array_metadata(
            values.shape, str if values.dtype == object else values.dtype.name,
            chunks or tuple(max(1, n) for n in values.shape), dims, fill_value)
    nodes[f"{path}/bold"] = _array_metadata((n_volumes, len(valid)), "float32", (n_volumes, voxel_chunk),
                                            ("time", VOXEL_DIM), np.nan)
    created = dict(zarr.create_hierarchy(store=location.zarr_store(), nodes=nodes))
    for name, (values, *_) in small.items():
        if values.size:
            created[f"{path}/{name}"].with_config(_WRITE_EVERY_CHUNK)[...] = values
    return created[f"{path}/bold"].with_config(_WRITE_EVERY_CHUNK)


def write_bold_chunk(bold: zarr.Array, start: int, values: np.ndarray) -> None:
    """Write one voxel chunk (all of time) of a run's ``bold``."""
    bold[:, start : start + values.shape[1]] = values


def finish_run(store, key: str, attrs: dict) -> dict:
    """Mark a run complete: its attributes, with ``complete=True``, written last. Returns them."""
    attrs = dict(attrs, complete=True)
    zarr.open_group(as_location(store).zarr_store(), path=f"{RUNS}/{key}", mode="r+", zarr_format=3,
                    use_consolidated=False).attrs.put(attrs)
    return attrs


# ---------------------------------------------------------------------------
# Reading: the contract cohort tasks build on. Each function reads one run's
# data, never more; damaged data raises StoreDamageError naming store, run, array.


class _MissingChunk(Exception):
    def __init__(self, key: str):
        self.key = key
        super().__init__(key)


class _ChunkGuard(WrapperStore):
    """A read-only store wrapper for which a missing chunk of a checksummed array is an error.

    Zarr reads a missing chunk as the fill value. Arrays written with a
    ``crc32c`` codec (format 2) have every chunk written, so there a missing
    chunk is damage. The wrapper learns which arrays are checksummed from the
    ``zarr.json`` documents Zarr reads through it.
    """

    def __init__(self, store):
        super().__init__(store)
        self._checksummed: set = set()

    def _with_store(self, store):
        wrapped = type(self)(store)
        wrapped._checksummed = self._checksummed
        return wrapped

    async def get(self, key, prototype, byte_range=None):
        value = await self._store.get(key, prototype, byte_range)
        if key.endswith("zarr.json"):
            if value is not None and b'"crc32c"' in value.to_bytes():
                self._checksummed.add(key[: -len("zarr.json")])
        elif value is None and any(_is_chunk_of(key, prefix) for prefix in self._checksummed):
            raise _MissingChunk(key)
        return value


def _is_chunk_of(key: str, prefix: str) -> bool:
    """Whether ``key`` is a chunk key (``c/0/1``, Zarr v3's default encoding) of the array at ``prefix``."""
    if not key.startswith(prefix):
        return False
    rest = key[len(prefix):]
    return rest == "c" or rest.startswith("c/")


def _array_path(key: str | None, name: str) -> str:
    return name if key is None else f"{RUNS}/{validate_run_key(key)}/{name}"


@contextmanager
def _damage_errors(location: Location, key: str | None, name: str):
    """Turn what goes wrong reading a stored array into StoreDamageError (or LocationError for access)."""
    try:
        yield
    except (StoreDamageError, LocationError):
        raise
    except _MissingChunk as err:
        raise StoreDamageError(location, key, name, f"chunk {err.key.rsplit('/c/', 1)[-1]!r} is missing "
                                                   "(a complete run has every chunk written)") from err
    except Exception as err:
        access = _access_problem(err)
        if access is not None:
            raise LocationError(str(location), access) from err
        text = str(err)
        if isinstance(err, ValueError) and "checksum" in text:
            problem = "a chunk fails its checksum (flipped or truncated bytes)"
        elif type(err).__name__ in ("ArrayNotFoundError", "NodeNotFoundError", "FileNotFoundError",
                                    "GroupNotFoundError"):
            problem = "the array is missing"
        else:
            problem = f"cannot be read ({type(err).__name__}: {err})"
        raise StoreDamageError(location, key, name, problem) from err


def _open_array(location: Location, key: str | None, name: str) -> zarr.Array:
    return zarr.open_array(_ChunkGuard(location.zarr_store(read_only=True)), path=_array_path(key, name), mode="r",
                           zarr_format=3)


async def _read_async(store, key: str | None, name: str, selection):
    array = await open_async_array(store=store, path=_array_path(key, name), mode="r", zarr_format=3)
    return await array.getitem(selection if selection != () else ...)


@dataclass(frozen=True)
class _SyncDecoding:
    """How to decode an array's chunks in the calling thread: its metadata and codecs, last applied first."""

    metadata: ArrayV3Metadata
    steps: tuple  # (codec, the chunk spec it decodes to), in decoding order, after the checksum
    checksummed: bool  # the array has a crc32c codec
    checksum_outermost: bool  # ... applied last: its check is the first decoding step (done by _read_local_file)


@lru_cache(maxsize=1024)
def _sync_decoding(document: bytes) -> _SyncDecoding | None:
    """The decoding of the array whose ``zarr.json`` is ``document``; None where Zarr must read it.

    Cached by the document's bytes: the runs of a store share a few array
    layouts, so a run's arrays are not parsed again. None for anything but a
    Zarr v3 array whose codecs all decode synchronously (Zarr's
    ``SupportsSyncCodec``: the built-in codecs; not sharding).
    """
    try:
        fields = json.loads(document)
        if fields.get("zarr_format") != 3 or fields.get("node_type") != "array":
            return None
        metadata = ArrayV3Metadata.from_dict(fields)
    except Exception:  # Zarr reads it again and names what is wrong
        return None
    if not all(isinstance(codec, SupportsSyncCodec) for codec in metadata.codecs):
        return None
    spec = metadata.get_chunk_spec((0,) * metadata.ndim, ArrayConfig.from_dict({}), default_buffer_prototype())
    array_array, array_bytes, bytes_bytes = codecs_from_list(metadata.codecs)
    steps = []
    for codec in (*array_array, array_bytes, *bytes_bytes):
        steps.append((codec, spec))
        spec = codec.resolve_metadata(spec)
    checksummed = any(isinstance(codec, Crc32cCodec) for codec in metadata.codecs)
    steps = steps[::-1]
    checksum_outermost = isinstance(steps[0][0], Crc32cCodec)
    return _SyncDecoding(metadata, tuple(steps[1:] if checksum_outermost else steps), checksummed, checksum_outermost)


def _chunk_ranges(selection, shape) -> list | None:
    """``[(start, stop), ...]`` per axis of a selection of slices (``()`` for all); None for anything else."""
    if not isinstance(selection, tuple) or len(selection) > len(shape):
        return None
    ranges = []
    for axis, size in enumerate(shape):
        part = selection[axis] if axis < len(selection) else slice(None)
        if not isinstance(part, slice):
            return None
        start, stop, step = part.indices(size)
        if step != 1:
            return None
        ranges.append((start, max(start, stop)))
    return ranges


def _read_local_file(path: str, checksum: bool = False) -> bytes:
    """The bytes of a file of a local store (every read of :func:`_read_local_array` goes through here).

    With ``checksum``, the file ends with the CRC-32C of the rest (Zarr's
    ``crc32c`` codec): it is checked, and the rest returned. The rest is read
    as its own ``bytes`` object because google_crc32c releases the GIL only
    for ``bytes`` (Zarr's codec passes it a NumPy view and holds the GIL:
    ~20% of the time the cohort pipeline's tasks held it, ad hoc).
    """
    with open(path, "rb") as file:
        if not checksum:
            return file.read()
        data = file.read(max(0, os.fstat(file.fileno()).st_size - 4))
        stored = file.read()
    computed = google_crc32c.value(data).to_bytes(4, "little")
    if computed != stored:
        raise ValueError(f"Stored and computed checksum do not match. Stored: {stored!r}. Computed: {computed!r}.")
    return data


def _read_local_chunk(decoding: _SyncDecoding, array_dir: str, array_path: str, coords) -> np.ndarray:
    """One decoded chunk of a local array (its fill value where it was never written, unless checksummed)."""
    metadata = decoding.metadata
    chunk_key = metadata.encode_chunk_key(coords)
    try:
        data = CpuBuffer.from_bytes(_read_local_file(os.path.join(array_dir, *chunk_key.split("/")),
                                                     checksum=decoding.checksum_outermost))
    except FileNotFoundError:
        if decoding.checksummed:
            raise _MissingChunk(f"{array_path}/{chunk_key}") from None
        return np.full(metadata.chunk_grid.chunk_shape, metadata.fill_value, dtype=metadata.dtype.to_native_dtype())
    for codec, spec in decoding.steps:
        data = codec._decode_sync(data, spec)
    return data.as_numpy_array()


def _read_local_array(array_dir: str, array_path: str, selection, writeable: bool):
    """An array of a local store read and decoded in the calling thread; None where Zarr must read it.

    Zarr 3.1 sends every read through its one event-loop thread and decodes
    each chunk in yet another thread: reading a 4 mm run's four arrays cost
    about 12 ms of CPU, half of it in hand-offs that hold the GIL (so two
    cohort tasks wait on each other). The same chunks decoded here with
    Zarr's own codecs (their synchronous methods) cost about 6 ms. Zarr 3.2
    adds such a path (``FusedCodecPipeline``) but needs Python 3.12. Object
    storage keeps Zarr's concurrent requests.
    """
    decoding = _sync_decoding(_read_local_file(os.path.join(array_dir, "zarr.json")))
    if decoding is None:
        return None
    metadata = decoding.metadata
    ranges = _chunk_ranges(selection, metadata.shape)
    chunk_shape = metadata.chunk_grid.chunk_shape
    if ranges is None or 0 in chunk_shape:
        return None
    chunk_spans = [range(start // size, -(-stop // size)) for (start, stop), size in zip(ranges, chunk_shape)]
    if all(len(span) == 1 for span in chunk_spans):  # within one chunk: a view of it, copied only if asked for
        coords = tuple(span[0] for span in chunk_spans)
        chunk = _read_local_chunk(decoding, array_dir, array_path, coords)
        part = chunk[tuple(slice(start - index * size, stop - index * size)
                           for (start, stop), index, size in zip(ranges, coords, chunk_shape))] if coords else chunk
        return part.copy() if (writeable and not part.flags.writeable) or not part.flags.c_contiguous else part
    out = np.empty([stop - start for start, stop in ranges], dtype=metadata.dtype.to_native_dtype())
    for coords in itertools.product(*chunk_spans):
        chunk = _read_local_chunk(decoding, array_dir, array_path, coords)
        origin = [index * size for index, size in zip(coords, chunk_shape)]
        source = tuple(slice(max(start, o) - o, min(stop, o + size) - o)
                       for (start, stop), o, size in zip(ranges, origin, chunk_shape))
        target = tuple(slice(max(start, o) - start, min(stop, o + size) - start)
                       for (start, stop), o, size in zip(ranges, origin, chunk_shape))
        out[target] = chunk[source]
    return out


def read_run_arrays(store, key: str | None, selections: dict, *, writeable: bool = True) -> dict:
    """Arrays of one run (or of the store's root, ``key=None``), read together.

    On a local store they are read and decoded in the calling thread
    (:func:`_read_local_array`). Elsewhere the reads go to Zarr's event loop
    in one call and run there concurrently: reading a run's small arrays one
    synchronous call at a time cost about 2 ms each in thread hand-offs, and
    on object storage their requests overlap.

    Parameters
    ----------
    store : str, os.PathLike or Location
        The store (path or URL).
    key : str or None
        The run's name; None for the store's root arrays.
    selections : dict
        Array name -> selection (a tuple of slices; ``()`` for all of it).

    writeable : bool, default=True
        False lets an array be a read-only view of its decoded chunk (no
        copy), for callers that only read it.

    Returns
    -------
    dict
        Array name -> numpy array, in the order of ``selections``.

    Raises
    ------
    StoreDamageError
        An array is missing, a chunk fails its checksum or is missing.
    """
    location = as_location(store)
    values = {}
    if location.is_local:
        for name in list(selections):
            with _damage_errors(location, key, name):
                array_path = _array_path(key, name)
                value = _read_local_array(os.path.join(location.url, array_path), array_path, selections[name],
                                          writeable)
            if value is not None:
                values[name] = value
        if len(values) == len(selections):
            return values
    guarded = _ChunkGuard(location.zarr_store(read_only=True))
    remaining = {name: selection for name, selection in selections.items() if name not in values}

    async def read_all():
        reads = (_read_async(guarded, key, name, selection) for name, selection in remaining.items())
        return await asyncio.gather(*reads, return_exceptions=True)

    for name, value in zip(remaining, zarr_sync(read_all())):
        if isinstance(value, BaseException):
            with _damage_errors(location, key, name):
                raise value
        values[name] = value
    return {name: values[name] for name in selections}


def _read_array(location: Location, key: str | None, name: str, selection=()):
    return read_run_arrays(location, key, {name: selection})[name]


def read_bold(store, key: str, voxels: slice = slice(None), *, writeable: bool = True) -> np.ndarray:
    """A run's ``(n_volumes, voxel)`` float32 BOLD signal over a slice of the store's voxels.

    Parameters
    ----------
    store : str, os.PathLike or Location
        The store (path or URL).
    key : str
        The run's name.
    voxels : slice
        The store's voxels to read (default all).
    writeable : bool, default=True
        False lets the array be a read-only view of the decoded chunk (see :func:`read_run_arrays`).
    """
    return read_run_arrays(as_location(store), key, {"bold": (slice(None), voxels)}, writeable=writeable)["bold"]


def read_valid(store, key: str, voxels: slice = slice(None)) -> np.ndarray:
    """A run's ``(voxel,)`` validity over a slice of the store's voxels.

    Parameters
    ----------
    store : str, os.PathLike or Location
        The store (path or URL).
    key : str
        The run's name.
    voxels : slice
        The store's voxels to read (default all).
    """
    return np.asarray(_read_array(as_location(store), key, "valid", (voxels,)), dtype=bool)


def read_confounds(store, key: str, metadata: bool = True) -> tuple[pd.DataFrame, dict | None]:
    """A run's confounds table (n/a as NaN, fMRIPrep column names) and its confounds JSON.

    Parameters
    ----------
    store : str, os.PathLike or Location
        The store (path or URL).
    key : str
        The run's name.
    metadata : bool, default=True
        Also read the confounds JSON (only CompCor selection needs it);
        None is returned in its place otherwise.
    """
    location = as_location(store)
    names = {"confounds": (), "confound": ()}
    attrs = None
    if metadata:
        attrs = read_run_attrs(location, key) or {}
        if attrs.get("brainxr_run", 1) >= 2:
            names["confounds_metadata"] = ()
    arrays = read_run_arrays(location, key, names)
    table = pd.DataFrame(np.asarray(arrays["confounds"], dtype=np.float64), columns=[str(c) for c in arrays["confound"]])
    if not metadata:
        return table, None
    return table, _confounds_metadata(location, key, attrs, arrays.get("confounds_metadata"))


def read_confounds_metadata(store, key: str) -> dict:
    """A run's confounds JSON (CompCor metadata...), ``{}`` if it had none.

    Parameters
    ----------
    store : str, os.PathLike or Location
        The store (path or URL).
    key : str
        The run's name.
    """
    location = as_location(store)
    attrs = read_run_attrs(location, key) or {}
    stored = _read_array(location, key, "confounds_metadata") if attrs.get("brainxr_run", 1) >= 2 else None
    return _confounds_metadata(location, key, attrs, stored)


def _confounds_metadata(location: Location, key: str, attrs: dict, stored) -> dict:
    """The confounds JSON from the ``confounds_metadata`` array (format 2) or the run attributes (format 1)."""
    if stored is None:
        return attrs.get("confounds_metadata") or {}
    try:
        return json.loads(str(stored[0]))
    except ValueError as err:
        raise StoreDamageError(location, key, "confounds_metadata", f"not JSON ({err})") from err


def runs_table(store) -> pd.DataFrame:
    """One row per complete run, indexed by run key (``run``), from metadata only.

    Columns: the run-identifying BIDS entities (the ``run`` entity as
    ``bids_run``), ``t_r``, ``n_volumes``, ``n_valid_voxels``, and the QC
    numbers of the runs index (``mean_fd``, ``max_fd``) when recorded.
    """
    return runs_table_of(read_store(store).runs)


def runs_table_of(complete: dict) -> pd.DataFrame:
    """:func:`runs_table` from run key -> attributes (as :func:`scan_runs` returns them)."""
    from brainxr.bids import RUN_ENTITIES

    columns = {"bids_run" if e == "run" else e: e for e in RUN_ENTITIES}
    rows = {}
    for key, attrs in complete.items():
        entities = attrs.get("entities", {})
        row = {column: entities[entity] for column, entity in columns.items() if entity in entities}
        row.update(t_r=attrs.get("t_r"), n_volumes=attrs.get("n_volumes"), n_valid_voxels=attrs.get("n_valid_voxels"))
        row.update(attrs.get("qc") or {})
        rows[key] = row
    present = [c for c in columns if any(c in row for row in rows.values())]
    qc = sorted({name for attrs in complete.values() for name in (attrs.get("qc") or {})})
    table = pd.DataFrame.from_dict(rows, orient="index", columns=present + ["t_r", "n_volumes", "n_valid_voxels"] + qc)
    table.index.name = "run"
    return table


class _StoredArray:
    """One array of a stored run as dask reads it: every read goes through the damage checks."""

    def __init__(self, location: Location, key: str, name: str, shape, dtype):
        self.location, self.key, self.name = location, key, name
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, selection):
        return _read_array(self.location, self.key, self.name, selection)


def open_run(store, key: str, grid: MaskedGrid, attrs: dict | None = None) -> xr.Dataset:
    """A complete run as a lazy Dataset with voxel coordinates, its grid and its ``t_r``.

    The grid is the ``grid`` coordinate and the repetition time the ``t_r``
    attribute of the ``time`` coordinate (see :mod:`brainxr.geometry`).

    Only metadata (and the small ``time`` and ``confound`` arrays) is read;
    ``bold``, ``confounds`` and ``valid`` are dask arrays whose every read
    checks the stored data (:class:`~brainxr.errors.StoreDamageError`).
    """
    import dask.array as da
    from dask.base import tokenize

    location = as_location(store)
    attrs = attrs if attrs is not None else read_run_attrs(location, key)
    if not attrs or attrs.get("complete") is not True:
        raise StoreError(f"{location}: run {key!r} is not complete (interrupted ingest?); re-run ingest")
    token = tokenize(location.url, key, attrs.get("ingested_at"), attrs.get("source"))

    def lazy(name, dims):
        with _damage_errors(location, key, name):
            stored = _open_array(location, key, name)
        reader = _StoredArray(location, key, name, stored.shape, stored.dtype)
        return dims, da.from_array(reader, chunks=stored.chunks, name=f"{name}-{token}", asarray=False,
                                   inline_array=True)

    small = read_run_arrays(location, key, {"time": (), "confound": ()})
    ds = xr.Dataset(
        {
            "bold": lazy("bold", ("time", VOXEL_DIM)),
            "confounds": lazy("confounds", ("time", "confound")),
            "valid": lazy("valid", (VOXEL_DIM,)),
        },
        coords={
            "time": ("time", small["time"]),
            "confound": ("confound", np.array([str(c) for c in small["confound"]], dtype=object)),
        },
    )
    ds = ds.assign_coords(grid.coords)
    if attrs.get("t_r") is not None:
        ds = with_t_r(ds, attrs["t_r"])
    run_attrs = {"run": key, "entities": attrs.get("entities", {})}
    ds.attrs = dict(attrs, **run_attrs)
    ds["bold"].attrs = dict(run_attrs)
    return ds


# ---------------------------------------------------------------------------
# Verification


def _chunk_selections(array: zarr.Array):
    """One selection per stored chunk of an array."""
    ranges = [range(0, n, c) for n, c in zip(array.shape, array.chunks)]
    for starts in itertools.product(*ranges):
        yield tuple(slice(s, s + c) for s, c in zip(starts, array.chunks))


def _verify_array(location: Location, key: str | None, name: str, expected_shape=None) -> StoreDamageError | None:
    """Read every chunk of one array; the damage found, if any."""
    try:
        with _damage_errors(location, key, name):
            array = _open_array(location, key, name)
            if expected_shape is not None and tuple(array.shape) != tuple(expected_shape):
                raise StoreDamageError(location, key, name,
                                       f"shape {tuple(array.shape)} instead of {tuple(expected_shape)}")
            for selection in _chunk_selections(array):
                array[selection]
    except StoreDamageError as err:
        return err
    return None


def verify_run(store, key: str, attrs: dict, n_voxels: int) -> list[StoreDamageError]:
    """Check every chunk of every array of a complete run; the damage found (empty if intact)."""
    location = as_location(store)
    n_volumes = attrs.get("n_volumes")
    expected = {
        "bold": (n_volumes, n_voxels),
        "valid": (n_voxels,),
        "confounds": None,
        "confound": None,
        "time": (n_volumes,),
    }
    if attrs.get("brainxr_run", 1) >= 2:
        expected["confounds_metadata"] = (1,)
    current = read_run_attrs(location, key)
    if not current or current.get("complete") is not True:
        return [StoreDamageError(location, key, "zarr.json", "the run's group is missing or incomplete although "
                                                             "the index lists it as complete")]
    problems = [_verify_array(location, key, name, shape) for name, shape in expected.items()]
    return [problem for problem in problems if problem is not None]


def verify_root(store) -> list[StoreDamageError]:
    """Check the store's own arrays (mask, voxel_index)."""
    location = as_location(store)
    problems = [_verify_array(location, None, "mask"), _verify_array(location, None, "voxel_index")]
    return [problem for problem in problems if problem is not None]
