"""Cohorts: the runs of a Zarr cohort store, selected by BIDS entities.

:func:`open_cohort` reads only the small metadata of each run (never array
data); each run opens on demand as a lazy :class:`xarray.Dataset`, and the
whole cohort as an :class:`xarray.DataTree`. Cohort-wide computations
(cleaning, extraction, connectivity) build lazy graphs over these runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import xarray as xr

from brainxr import store as cohort_store
from brainxr.bids import RUN_ENTITIES


def entity_column(entity: str) -> str:
    """Column (or coordinate) name of a BIDS entity in cohort tables: ``run`` becomes ``bids_run``."""
    return "bids_run" if entity == "run" else entity


def entity_columns(entities: dict) -> dict:
    """The run-identifying entities of a run, under their cohort column names."""
    return {entity_column(k): v for k, v in entities.items() if k in RUN_ENTITIES}


class Cohort(Mapping):
    """The complete runs of a cohort store.

    A read-only mapping from run name (``"sub-01_task-rest"``) to the run as a
    lazy :class:`xarray.Dataset` with ``bold (time, voxel)``, ``confounds
    (time, confound)`` and ``valid (voxel,)``.

    Parameters
    ----------
    path : path
        The store.
    runs : dict
        Run name -> stored attributes (entities, t_r, n_volumes, ...).
    grid : brainxr.store.Grid
    incomplete : list of str
        Runs present in the store but not complete (an interrupted ingest).
    """

    def __init__(self, path, runs: dict, grid: cohort_store.Grid, incomplete=()):
        self.path = Path(path)
        self._runs = dict(runs)
        self.grid = grid
        self.incomplete = list(incomplete)

    # -- the mapping ------------------------------------------------------
    def __getitem__(self, key: str) -> xr.Dataset:
        if key not in self._runs:
            raise KeyError(f"no complete run {key!r} in {self.path}; runs: {list(self._runs)[:10]}...")
        return cohort_store.open_run(self.path, key, self.grid, self._runs[key])

    def __iter__(self):
        return iter(self._runs)

    def __len__(self) -> int:
        return len(self._runs)

    def __repr__(self) -> str:
        table = self.runs
        parts = [f"<brainxr.Cohort {self.path}: {len(self)} runs on a {self.grid.shape} grid, "
                 f"{self.grid.n_voxels} voxels>"]
        for name in RUN_ENTITIES:
            if entity_column(name) in table:
                values = sorted(table[entity_column(name)].dropna().unique())
                shown = ", ".join(values[:6]) + (", ..." if len(values) > 6 else "")
                parts.append(f"  {name}: {len(values)} ({shown})")
        if self.incomplete:
            parts.append(f"  incomplete (ignored): {len(self.incomplete)}")
        return "\n".join(parts)

    # -- selection --------------------------------------------------------
    @property
    def runs(self) -> pd.DataFrame:
        """One row per run (indexed by run name): its entities, ``t_r`` and ``n_volumes``.

        The BIDS ``run`` entity is the column ``bids_run``, as ``run`` names the
        runs themselves.
        """
        rows = {key: entity_columns(attrs.get("entities", {})) for key, attrs in self._runs.items()}
        for key, attrs in self._runs.items():
            rows[key].update(t_r=attrs.get("t_r"), n_volumes=attrs.get("n_volumes"),
                             n_valid_voxels=attrs.get("n_valid_voxels"))
        columns = [entity_column(e) for e in RUN_ENTITIES if any(entity_column(e) in r for r in rows.values())]
        table = pd.DataFrame.from_dict(rows, orient="index", columns=columns + ["t_r", "n_volumes", "n_valid_voxels"])
        table.index.name = "run"
        return table

    def sel(self, **entities) -> "Cohort":
        """The runs whose entities match, e.g. ``cohort.sel(sub="01", task="rest")``.

        A list of values keeps runs matching any of them.
        """
        def matches(attrs):
            have = attrs.get("entities", {})
            for name, wanted in entities.items():
                wanted = wanted if isinstance(wanted, (list, tuple, set)) else [wanted]
                if str(have.get(name)) not in {str(w) for w in wanted}:
                    return False
            return True

        return Cohort(self.path, {k: a for k, a in self._runs.items() if matches(a)}, self.grid, self.incomplete)

    # -- data -------------------------------------------------------------
    def bold(self, key: str) -> xr.DataArray:
        """A run's lazy ``(time, voxel)`` BOLD signal."""
        return self[key]["bold"]

    def datasets(self) -> dict:
        """All runs as lazy Datasets."""
        return {key: self[key] for key in self}

    def to_datatree(self) -> xr.DataTree:
        """The cohort as a DataTree: the grid at the root, one node per run under ``runs``."""
        root = xr.Dataset(
            {"mask": (("i", "j", "k"), self.grid.mask)},
            attrs={"affine": self.grid.affine, "grid_shape": self.grid.shape, "store": str(self.path)},
        )
        nodes = {"/": root, "/runs": xr.Dataset()}
        nodes.update({f"/runs/{key}": ds for key, ds in self.datasets().items()})
        return xr.DataTree.from_dict(nodes)

    @property
    def mask_img(self) -> nib.Nifti1Image:
        """The cohort mask as a NIfTI image."""
        return nib.Nifti1Image(self.grid.mask.astype(np.uint8), self.grid.affine)


def open_cohort(store) -> Cohort:
    """Open a cohort store.

    Only metadata is read: the root (format version, grid, mask) and each
    run's attributes. Runs left incomplete by an interrupted ingest are listed
    in ``cohort.incomplete`` and otherwise ignored.

    Parameters
    ----------
    store : path
        A store written by :func:`brainxr.ingest`.

    Returns
    -------
    Cohort
    """
    grid = cohort_store.read_grid(store)
    complete, incomplete = cohort_store.scan_runs(store)
    return Cohort(store, complete, grid, incomplete)
