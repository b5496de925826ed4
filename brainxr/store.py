"""The Zarr (v3) cohort store: layout, format version and completion markers.

::

    cohort.zarr/
      zarr.json                  attrs: brainxr_format, affine, grid_shape
      mask          (i, j, k)    bool: the cohort mask; voxels outside are not stored
      voxel_index   (voxel, axis) int32: grid index (i, j, k) of each stored voxel
      runs/
        <run key>/               one group per run, named by its BIDS entities
          zarr.json              attrs: entities, t_r, n_volumes, source, ..., complete
          bold       (time, voxel)     float32, all of time in a chunk
          confounds  (time, confound)  float64, NaN where the TSV had n/a
          confound   (confound,)       column names
          time       (time,)           seconds
          valid      (voxel,)          bool: the voxel has usable signal in this run

A run is complete once its ``complete`` attribute is true; that attribute is
written last, after every array, so a run interrupted mid-write is never taken
as complete, and is removed and rewritten by the next ingest. Completed runs
are never opened for writing again. The store is a local (or shared)
filesystem directory.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import zarr
from zarr.codecs import BloscCodec

from brainxr.errors import StoreError
from brainxr.masking import VOXEL_DIM, voxel_coords

FORMAT_VERSION = 1
RUNS = "runs"
BOLD_COMPRESSOR = BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle")


@dataclass(frozen=True)
class Grid:
    """The shared grid of a cohort: affine, shape and the mask of stored voxels."""

    affine: np.ndarray
    mask: np.ndarray

    @property
    def shape(self) -> tuple:
        return tuple(int(n) for n in self.mask.shape)

    @cached_property
    def voxel_index(self) -> np.ndarray:
        """``(voxel, 3)`` grid indices of the stored voxels, C order."""
        return np.column_stack(np.nonzero(self.mask)).astype(np.int32)

    @property
    def n_voxels(self) -> int:
        return int(self.mask.sum())

    @cached_property
    def coords(self) -> dict:
        """``voxel`` coordinates ``i, j, k, x, y, z``."""
        return voxel_coords(self.mask, self.affine)

    def same_as(self, shape, affine, atol: float = 1e-3) -> bool:
        return tuple(shape[:3]) == self.shape and np.allclose(affine, self.affine, atol=atol)

    def __repr__(self) -> str:
        from brainxr._repr import grid_text

        return grid_text(self)

    def _repr_html_(self) -> str:
        from brainxr._repr import grid_html

        return grid_html(self)


def _read_json(path: Path):
    with open(path) as f:
        return json.load(f)


def root_attrs(store) -> dict:
    """The root attributes of a store, after checking its format version."""
    store = Path(store)
    meta_path = store / "zarr.json"
    if not meta_path.exists():
        raise StoreError(f"{store}: not a brainxr cohort store (no zarr.json)")
    attrs = _read_json(meta_path).get("attributes", {})
    version = attrs.get("brainxr_format")
    if version is None:
        raise StoreError(f"{store}: a Zarr store but not a brainxr cohort store (no 'brainxr_format' attribute)")
    if int(version) > FORMAT_VERSION:
        raise StoreError(
            f"{store}: written by a newer brainxr (store format {version}); this version reads "
            f"format {FORMAT_VERSION} and older: upgrade brainxr"
        )
    return attrs


def read_grid(store) -> Grid:
    """The cohort grid of a store."""
    attrs = root_attrs(store)
    root = zarr.open_group(str(store), mode="r", zarr_format=3, use_consolidated=False)
    return Grid(affine=np.asarray(attrs["affine"], dtype=np.float64), mask=np.asarray(root["mask"][...], dtype=bool))


def init_store(store, grid: Grid) -> Grid:
    """Create a store for ``grid``, or check that an existing one has the same grid.

    Returns
    -------
    Grid
        The store's grid.
    """
    store = Path(store)
    if (store / "zarr.json").exists():
        existing = read_grid(store)
        if not existing.same_as(grid.shape, grid.affine) or not np.array_equal(existing.mask, grid.mask):
            raise StoreError(
                f"{store}: the store's grid (shape {existing.shape}, {existing.n_voxels} voxels) differs "
                f"from the requested one (shape {grid.shape}, {grid.n_voxels} voxels); use a new store"
            )
        return existing
    store.mkdir(parents=True, exist_ok=True)
    root = xr.Dataset(
        {
            "mask": (("i", "j", "k"), grid.mask),
            "voxel_index": ((VOXEL_DIM, "axis"), grid.voxel_index),
        },
        coords={"axis": np.array(["i", "j", "k"], dtype=object)},
    )
    root.to_zarr(str(store), mode="w-", consolidated=False, zarr_format=3)
    group = zarr.open_group(str(store), mode="r+", zarr_format=3, use_consolidated=False)
    group.create_group(RUNS)
    # the format marker goes last: a store without it is not a brainxr store
    group.attrs.update(
        {
            "brainxr_format": FORMAT_VERSION,
            "affine": np.asarray(grid.affine).tolist(),
            "grid_shape": list(grid.shape),
        }
    )
    return grid


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


def run_path(store, key: str) -> Path:
    return Path(store) / RUNS / validate_run_key(key)


def read_run_attrs(store, key: str) -> dict | None:
    """A run's attributes, or None if the run is absent or its metadata is unreadable."""
    path = run_path(store, key) / "zarr.json"
    try:
        return _read_json(path).get("attributes", {})
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def scan_runs(store) -> tuple[dict, list]:
    """The complete runs of a store and the names of incomplete ones.

    Reads only each run's small ``zarr.json``, never array data.

    Returns
    -------
    complete : dict
        Run key -> attributes, sorted by key.
    incomplete : list of str
    """
    runs_dir = Path(store) / RUNS
    complete, incomplete = {}, []
    if not runs_dir.is_dir():
        return complete, incomplete
    for entry in sorted(runs_dir.iterdir(), key=lambda p: p.name):
        if not entry.is_dir():
            continue
        attrs = read_run_attrs(store, entry.name)
        if attrs and attrs.get("complete") is True:
            complete[entry.name] = attrs
        else:
            incomplete.append(entry.name)
    return complete, incomplete


def remove_run(store, key: str) -> None:
    """Delete a run's group (used for incomplete runs before they are redone), and nothing else."""
    path = run_path(store, key)
    if path.parent != Path(store) / RUNS:
        raise ValueError(f"{key!r}: not a run of {store}")
    shutil.rmtree(path, ignore_errors=True)


def auto_voxel_chunk(n_volumes: int, target_mb: float) -> int:
    return int(max(1, target_mb * 2**20 // (4 * max(1, n_volumes))))


def begin_run(store, key: str, n_volumes: int, n_voxels: int, voxel_chunk: int,
              t_r: float, confounds: pd.DataFrame | None, valid: np.ndarray, attrs: dict) -> zarr.Array:
    """Create a run's group with its small arrays and an empty ``bold``; return ``bold``.

    Any previous, incomplete group of the same name is removed first. The run
    stays incomplete until :func:`finish_run`.
    """
    remove_run(store, key)
    columns = [] if confounds is None else [str(c) for c in confounds.columns]
    table = np.empty((n_volumes, 0)) if confounds is None else confounds.to_numpy(dtype=np.float64)
    small = xr.Dataset(
        {
            "confounds": (("time", "confound"), table),
            "valid": ((VOXEL_DIM,), np.asarray(valid, dtype=bool)),
        },
        coords={"time": t_r * np.arange(n_volumes), "confound": np.array(columns, dtype=object)},
    )
    small.to_zarr(str(store), group=f"{RUNS}/{key}", mode="w", consolidated=False, zarr_format=3)
    group = _open_run_group(store, key)
    group.attrs.update(dict(attrs, complete=False))
    return group.create_array(
        "bold",
        shape=(n_volumes, n_voxels),
        chunks=(n_volumes, voxel_chunk),
        dtype="float32",
        fill_value=np.nan,
        compressors=BOLD_COMPRESSOR,
        dimension_names=("time", VOXEL_DIM),
    )


def write_bold_chunk(bold: zarr.Array, start: int, values: np.ndarray) -> None:
    """Write one voxel chunk (all of time) of a run's ``bold``."""
    bold[:, start : start + values.shape[1]] = values


def _open_run_group(store, key: str) -> zarr.Group:
    return zarr.open_group(str(store), path=f"{RUNS}/{key}", mode="r+", zarr_format=3, use_consolidated=False)


def finish_run(store, key: str, attrs: dict) -> None:
    """Mark a run complete: its attributes, with ``complete=True``, written last."""
    _open_run_group(store, key).attrs.update(dict(attrs, complete=True))


# ---------------------------------------------------------------------------
# Reading runs inside tasks: the contract the cohort engine builds on. Each
# function reads one run's data, never more, and raises StoreDamageError
# naming the store, the run and the array when stored data cannot be read.


def runs_table(store) -> pd.DataFrame:
    """One row per complete run, indexed by run key (``run``), from metadata only.

    Columns: the run-identifying BIDS entities (the ``run`` entity as
    ``bids_run``), ``t_r``, ``n_volumes``, ``n_valid_voxels``.
    """
    from brainxr.bids import RUN_ENTITIES

    complete, _ = scan_runs(store)
    columns = {"bids_run" if e == "run" else e: e for e in RUN_ENTITIES}
    rows = {}
    for key, attrs in complete.items():
        entities = attrs.get("entities", {})
        row = {column: entities[entity] for column, entity in columns.items() if entity in entities}
        row.update(t_r=attrs.get("t_r"), n_volumes=attrs.get("n_volumes"), n_valid_voxels=attrs.get("n_valid_voxels"))
        rows[key] = row
    present = [c for c in columns if any(c in row for row in rows.values())]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=present + ["t_r", "n_volumes", "n_valid_voxels"])
    table.index.name = "run"
    return table


def _read_run_array(store, key: str, name: str, selection=()):
    try:
        array = zarr.open_array(str(store), path=f"{RUNS}/{key}/{name}", mode="r", zarr_format=3)
        return array[selection] if selection != () else array[...]
    except Exception as err:
        from brainxr.errors import StoreDamageError

        raise StoreDamageError(store, key, name, f"cannot be read ({type(err).__name__}: {err})") from err


def read_bold(store, key: str, voxels: slice = slice(None)) -> np.ndarray:
    """A run's ``(n_volumes, voxel)`` float32 BOLD signal over a slice of the store's voxels."""
    return _read_run_array(store, key, "bold", (slice(None), voxels))


def read_valid(store, key: str, voxels: slice = slice(None)) -> np.ndarray:
    """A run's ``(voxel,)`` validity over a slice of the store's voxels."""
    return np.asarray(_read_run_array(store, key, "valid", (voxels,)), dtype=bool)


def read_confounds(store, key: str) -> tuple[pd.DataFrame, dict]:
    """A run's confounds table (n/a as NaN, fMRIPrep column names) and its confounds JSON."""
    values = _read_run_array(store, key, "confounds")
    columns = [str(c) for c in _read_run_array(store, key, "confound")]
    metadata = (read_run_attrs(store, key) or {}).get("confounds_metadata") or {}
    return pd.DataFrame(np.asarray(values, dtype=np.float64), columns=columns), metadata


def open_run(store, key: str, grid: Grid, attrs: dict | None = None) -> xr.Dataset:
    """A complete run as a lazy Dataset with voxel coordinates and grid attributes.

    Only metadata is read; ``bold`` and ``confounds`` are dask arrays.
    """
    attrs = attrs if attrs is not None else read_run_attrs(store, key)
    if not attrs or attrs.get("complete") is not True:
        raise StoreError(f"{store}: run {key!r} is not complete (interrupted ingest?); re-run ingest")
    ds = xr.open_zarr(str(store), group=f"{RUNS}/{key}", consolidated=False, chunks={}, zarr_format=3)
    ds = ds.assign_coords({name: value for name, value in grid.coords.items()})
    grid_attrs = {
        "affine": grid.affine,
        "grid_shape": grid.shape,
        "t_r": attrs.get("t_r"),
        "run": key,
        "entities": attrs.get("entities", {}),
    }
    ds.attrs = dict(attrs, **grid_attrs)
    ds["bold"].attrs = dict(grid_attrs)
    return ds
