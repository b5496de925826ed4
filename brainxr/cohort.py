"""Cohorts: the runs of a Zarr cohort store, selected by BIDS entities and computed as one.

:func:`open_cohort` reads the store's metadata only (its grid and its runs
table). A :class:`Cohort` is that table plus the grid: its runs are stacked
along a ``run`` dim (:meth:`Cohort.to_dataset`), and its computations
(:meth:`Cohort.extract`, :meth:`Cohort.clean`) are lazy graphs over chunks of
runs (:mod:`brainxr.engine`) whose size and build time do not grow in Python
with the number of runs. A single run is still a lazy Dataset
(``cohort[key]``).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize

from brainxr import engine
from brainxr import progress as _progress  # noqa: F401 - long cohort computations show a bar
from brainxr import store as cohort_store
from brainxr._views import view
from brainxr._storage import as_location
from brainxr.bids import RUN_ENTITIES
from brainxr.dims import REGION_DIM, RUN_DIM, TIME_DIM, VOXEL_DIM
from brainxr.geometry import MaskedGrid

ON_ERROR = ("raise", "skip")
#: BIDS long entity names -> the short names runs are selected by
_LONG_ENTITY_NAMES = {"subject": "sub", "session": "ses", "acquisition": "acq", "reconstruction": "rec",
                      "direction": "dir", "echo": "echo", "space": "space", "task": "task", "run": "run"}


def entity_column(entity: str) -> str:
    """Column (or coordinate) name of a BIDS entity in cohort tables: ``run`` becomes ``bids_run``."""
    return "bids_run" if entity == "run" else entity


def entity_columns(entities: dict) -> dict:
    """The run-identifying entities of a run, under their cohort column names."""
    return {entity_column(k): v for k, v in entities.items() if k in RUN_ENTITIES}


#: the runs table's columns that name BIDS entities (the others are numbers: t_r, n_volumes, QC)
ENTITY_COLUMNS = tuple(entity_column(entity) for entity in RUN_ENTITIES)


def _column_entity(column: str) -> str:
    return "run" if column == "bids_run" else column


class Cohort(Mapping):
    """The complete runs of a cohort store.

    A read-only mapping from run name (``"sub-01_task-rest"``) to the run as a
    lazy :class:`xarray.Dataset` with ``bold (time, voxel)``, ``confounds
    (time, confound)`` and ``valid (voxel,)``; and the cohort as one: its
    runs stacked (:meth:`to_dataset`) and computed together
    (:meth:`extract`, :meth:`clean`).

    Parameters
    ----------
    path : path, URL or Location
        The store.
    runs : pandas.DataFrame or dict
        The runs table (:func:`brainxr.store.runs_table`): one row per run,
        indexed by run name; or run name -> stored attributes.
    grid : brainxr.geometry.MaskedGrid
    incomplete : list of str
        Runs present in the store but not complete (an interrupted ingest).
    voxel_chunk : int
        Voxels per stored bold chunk.
    runs_per_chunk : int, optional
        Runs per chunk of the stacked arrays; by default chosen so that a
        task handles about 256 MB of bold
        (:data:`brainxr.engine.TASK_BOLD_BYTES`).
    """

    def __init__(self, path, runs: pd.DataFrame | dict, grid: MaskedGrid, incomplete=(), voxel_chunk: int | None = None,
                 runs_per_chunk: int | None = None):
        location = as_location(path)
        self.path = Path(location.url) if location.is_local else location
        self._table = cohort_store.runs_table_of(runs) if isinstance(runs, Mapping) else runs
        self.grid = grid
        self.incomplete = list(incomplete)
        self._voxel_chunk = voxel_chunk
        if runs_per_chunk is not None and (not isinstance(runs_per_chunk, (int, np.integer)) or runs_per_chunk < 1):
            raise ValueError(f"runs_per_chunk must be a positive integer, got {runs_per_chunk!r}")
        self._runs_per_chunk = runs_per_chunk

    @property
    def voxel_chunk(self) -> int:
        """Voxels per stored bold chunk (the store-wide value; format 1: the first run's, read once)."""
        if self._voxel_chunk is None:
            self._voxel_chunk = _voxel_chunk(self.path, next(iter(self), None), self.grid.n_voxels)
        return self._voxel_chunk

    # -- the mapping ------------------------------------------------------
    def __getitem__(self, key: str) -> xr.Dataset:
        if key not in self._table.index:
            raise KeyError(f"no complete run {key!r} in {self.path}; runs: {list(self._table.index[:10])}...")
        return cohort_store.open_run(self.path, key, self.grid)

    def __iter__(self):
        return iter(self._table.index)

    def __len__(self) -> int:
        return len(self._table)

    def __contains__(self, key) -> bool:
        return key in self._table.index

    _repr_html_ = view("cohort_html")

    def __repr__(self) -> str:
        table = self.runs
        parts = [f"<brainxr.Cohort {self.path}: {len(self)} runs on a {self.grid.shape} grid, "
                 f"{self.grid.n_voxels} voxels>"]
        for column in self.entity_columns:
            values = sorted(table[column].dropna().astype(str).unique())
            shown = ", ".join(values[:6]) + (", ..." if len(values) > 6 else "")
            parts.append(f"  {_column_entity(column)}: {len(values)} ({shown})")
        if self.incomplete:
            parts.append(f"  incomplete (ignored): {len(self.incomplete)}")
        return "\n".join(parts)

    # -- selection --------------------------------------------------------
    @property
    def runs(self) -> pd.DataFrame:
        """One row per run (indexed by run name): its entities, ``t_r``, ``n_volumes``, ``n_valid_voxels``, QC numbers.

        The BIDS ``run`` entity is the column ``bids_run``, as ``run`` names the
        runs themselves.
        """
        return self._table.copy()

    @property
    def entity_columns(self) -> list:
        """The runs table's columns that hold BIDS entities (``sub``, ``ses``, ``task``, ...)."""
        return [column for column in self._table.columns if column in ENTITY_COLUMNS]

    def _warn_runs_without_valid_voxels(self) -> None:
        """Warn (from the runs table, nothing read) about runs whose region signals can only be NaN."""
        empty = self._table.index[pd.to_numeric(self._table["n_valid_voxels"], errors="coerce") == 0]
        if len(empty):
            names = ", ".join(map(str, empty[:5])) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
            warnings.warn(f"{self.path}: run(s) {names} have no valid voxel (every voxel of the cohort mask is "
                          "zero or non-finite in the run); their region signals are NaN", UserWarning, stacklevel=3)

    def _subset(self, keep) -> Cohort:
        return Cohort(self.path, self._table[keep], self.grid, self.incomplete, self._voxel_chunk, self._runs_per_chunk)

    def subset(self, keys) -> Cohort:
        """The cohort of the named runs, in the given order.

        Raises
        ------
        KeyError
            Naming a run that is not a complete run of the store.
        """
        keys = list(keys)
        unknown = [key for key in keys if key not in self._table.index]
        if unknown:
            raise KeyError(f"no complete run {unknown[0]!r} in {self.path}; runs: {list(self._table.index[:10])}...")
        return Cohort(self.path, self._table.loc[keys], self.grid, self.incomplete, self._voxel_chunk,
                      self._runs_per_chunk)

    def sel(self, **entities) -> Cohort:
        """The runs whose entities match, e.g. ``cohort.sel(sub="01", task="rest")``.

        A list of values keeps runs matching any of them.

        Raises
        ------
        ValueError
            An entity the runs do not have (the known ones are listed), a
            value no run has (the values are listed), or entities that exist
            but match no run together.
        """
        table = self._table
        known = [_column_entity(column) for column in self.entity_columns]
        keep = np.ones(len(table), dtype=bool)
        for name, wanted in entities.items():
            column = entity_column(name)
            if column not in self.entity_columns:
                hint = _LONG_ENTITY_NAMES.get(name)
                hint = f"; did you mean {hint!r}?" if hint in known else ""
                raise ValueError(f"sel(): the runs of {self.path} have no entity {name!r}; their entities are "
                                 f"{known}{hint}")
            wanted = [str(w) for w in (wanted if isinstance(wanted, (list, tuple, set, np.ndarray)) else [wanted])]
            have = table[column].astype(str).where(table[column].notna())
            present = set(have.dropna())
            missing = [w for w in wanted if w not in present]
            if missing:
                values = sorted(present)
                raise ValueError(f"sel({name}={missing[0]!r}): no run has {name} {', '.join(map(repr, missing))}; "
                                 f"the values of {name} are {values[:20]}{' ...' if len(values) > 20 else ''}")
            keep &= have.isin(wanted).to_numpy()
        if not keep.any():
            described = ", ".join(f"{name}={value!r}" for name, value in entities.items())
            raise ValueError(f"sel({described}): each value exists, but no run has all of them")
        return self._subset(keep)

    # -- the stacked view -------------------------------------------------
    @property
    def runs_per_chunk(self) -> int:
        """Runs per chunk of the stacked arrays (by default, about 256 MB of bold per task)."""
        if self._runs_per_chunk is not None:
            return self._runs_per_chunk
        n_time = int(self._table["n_volumes"].max()) if len(self) else 1
        return engine.runs_per_chunk(n_time, min(self.voxel_chunk, max(1, self.grid.n_voxels)))

    @property
    def blocks(self) -> engine.RunBlocks:
        """The cohort's runs and voxels cut into the blocks of its stacked arrays (:class:`brainxr.engine.RunBlocks`)."""
        return self._blocks(self.runs_per_chunk)

    def reduction_blocks(self, result_bytes_per_run: int) -> engine.RunBlocks:
        """The blocks of the graphs that reduce runs (see :func:`brainxr.engine.reduction_runs_per_chunk`).

        Parameters
        ----------
        result_bytes_per_run : int
            Bytes of one run's result (its region signals, say): chunks of
            runs are cut so that a task's results stay small.

        Returns
        -------
        brainxr.engine.RunBlocks
            The runs in chunks, or the cohort's own chunks when
            ``runs_per_chunk`` was given to :func:`open_cohort`.
        """
        if self._runs_per_chunk is not None:
            return self.blocks
        n_time = int(self._table["n_volumes"].max()) if len(self) else 1
        return self._blocks(engine.reduction_runs_per_chunk(n_time, min(self.voxel_chunk, max(1, self.grid.n_voxels)),
                                                            result_bytes_per_run))

    def _blocks(self, runs_per_chunk: int) -> engine.RunBlocks:
        if len(self) == 0:
            raise ValueError(f"{self.path}: the cohort has no run")
        table = self._table
        return engine.RunBlocks(
            location=self.path,
            keys=table.index.to_numpy(dtype=object),
            n_volumes=table["n_volumes"].to_numpy(dtype=np.int64),
            t_r=pd.to_numeric(table["t_r"], errors="coerce").to_numpy(dtype=np.float64),
            n_voxels=self.grid.n_voxels,
            voxel_chunk=min(self.voxel_chunk, max(1, self.grid.n_voxels)),
            runs_per_chunk=min(runs_per_chunk, len(self)),
        )

    def _run_coords(self) -> dict:
        """The runs table as ``run`` coordinates (entities as strings, metadata as numbers)."""
        table = self._table
        coords = {RUN_DIM: (RUN_DIM, table.index.to_numpy(dtype=object).astype(str))}
        for column in self.entity_columns:
            coords[column] = (RUN_DIM, table[column].astype(str).to_numpy())
        coords["t_r"] = (RUN_DIM, pd.to_numeric(table["t_r"], errors="coerce").to_numpy(dtype=np.float64))
        coords["n_volumes"] = (RUN_DIM, table["n_volumes"].to_numpy(dtype=np.int64))
        for column in table.columns:
            if column not in coords and column not in ENTITY_COLUMNS:  # n_valid_voxels, QC numbers
                coords[column] = (RUN_DIM, pd.to_numeric(table[column], errors="coerce").to_numpy())
        return coords

    def _time_coord(self, n_time: int):
        """The stacked ``time`` coordinate: volume positions, with the runs' ``t_r`` when they share one."""
        t_r = pd.to_numeric(self._table["t_r"], errors="coerce").unique()
        attrs = {"t_r": float(t_r[0])} if len(t_r) == 1 and np.isfinite(t_r[0]) else {}
        return (TIME_DIM, np.arange(n_time), dict(attrs, units="volume index (seconds in onset)"))

    def to_dataset(self, confounds=None) -> xr.Dataset:
        """The runs stacked, lazily: one Dataset for the whole cohort.

        Parameters
        ----------
        confounds : list of str, optional
            Confound columns to stack as well (``["framewise_displacement",
            "trans_x", ...]``). Runs store different sets of confounds (their
            CompCor components, cosines and outliers vary), so the columns
            are named: a run that lacks one has NaN there.

        Returns
        -------
        xarray.Dataset
            ``bold (run, time, voxel)`` float32 (NaN after each run's last
            volume) and ``valid (run, voxel)``, dask arrays read from the
            store by blocks of (run chunk, voxel chunk); ``confounds (run,
            time, confound)`` float64 when asked; ``onset (run, time)``
            seconds; the runs table as ``run`` coordinates; the voxel
            coordinates; the grid in attrs. Built from metadata only.
        """
        blocks = self.blocks
        coords = self._run_coords()
        coords[TIME_DIM] = self._time_coord(blocks.n_time)
        coords["onset"] = ((RUN_DIM, TIME_DIM), engine.onsets(blocks, None, blocks.token))
        coords.update(self.grid.coords)
        variables = {
            "bold": ((RUN_DIM, TIME_DIM, VOXEL_DIM), engine.stacked_bold(blocks)),
            "valid": ((RUN_DIM, VOXEL_DIM), engine.stacked_valid(blocks)),
        }
        if confounds is not None:
            confounds = [confounds] if isinstance(confounds, str) else [str(column) for column in confounds]
            variables["confounds"] = ((RUN_DIM, TIME_DIM, "confound"), engine.stacked_confounds(blocks, confounds))
            coords["confound"] = ("confound", np.asarray(confounds, dtype=object))
        return xr.Dataset(variables, coords=coords, attrs={"store": str(self.path)})

    # -- single runs -------------------------------------------------------
    def bold(self, key: str) -> xr.DataArray:
        """A run's lazy ``(time, voxel)`` BOLD signal."""
        return self[key]["bold"]

    def datasets(self) -> dict:
        """All runs as lazy Datasets (one xarray object per run: for small cohorts)."""
        return {key: self[key] for key in self}

    def to_datatree(self) -> xr.DataTree:
        """The cohort as a DataTree: the grid at the root, one node per run under ``runs`` (small cohorts)."""
        root = xr.Dataset(
            {"mask": (("i", "j", "k"), self.grid.mask)},
            coords={"grid": self.grid.grid.coordinate()},
            attrs={"store": str(self.path)},
        )
        nodes = {"/": root, "/runs": xr.Dataset()}
        nodes.update({f"/runs/{key}": ds for key, ds in self.datasets().items()})
        return xr.DataTree.from_dict(nodes)

    # -- confounds ----------------------------------------------------------
    def confounds(self, key: str) -> pd.DataFrame:
        """A run's stored fMRIPrep confounds table (n/a as NaN)."""
        if key not in self:
            raise KeyError(f"no complete run {key!r} in {self.path}")
        return cohort_store.read_confounds(self.path, key)[0]

    def select_confounds(self, key: str, strategy="simple", **options):
        """A run's confounds and sample mask for a denoising strategy.

        Parameters
        ----------
        key : str
            Run name.
        strategy : str or sequence of str
            A preset of :func:`~brainxr.interfaces.fmriprep.load_confounds_strategy`
            (``"simple"``, ``"scrubbing"``, ``"compcor"``, ``"ica_aroma"``) or
            noise components as in :func:`~brainxr.interfaces.fmriprep.load_confounds`.
        **options
            Strategy options (``motion``, ``scrub``, ``fd_threshold``, ...).

        Returns
        -------
        confounds : pandas.DataFrame or None
        sample_mask : numpy.ndarray or None
        """
        from brainxr.interfaces.fmriprep import select_confounds
        from brainxr.interfaces.fmriprep.denoise import strategy_parameters

        if key not in self:
            raise KeyError(f"no complete run {key!r} in {self.path}")
        table, metadata = cohort_store.read_confounds(self.path, key)
        return select_confounds(table, metadata, **strategy_parameters(strategy, **options))

    # -- cleaning -------------------------------------------------------------
    def _cleaning(self, clean: dict, confounds_strategy, confounds_options, on_error: str):
        """Check the cleaning once for the whole cohort; the runs its metadata rule out.

        Returns
        -------
        cleaning : brainxr.engine.Cleaning
        failing : dict
            Run name -> why it cannot be cleaned (too short for the filter,
            no repetition time), from the runs table alone.
        """
        from brainxr.interfaces.fmriprep.denoise import strategy_parameters
        from brainxr.signal.cleaning import plan_options
        from brainxr.signal.filters import design_butterworth

        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        clean = dict(clean)
        for reserved in ("confounds", "sample_mask", "runs"):
            if reserved in clean:
                raise ValueError(f"clean: {reserved!r} comes from the cohort (confounds_strategy and the store) "
                                 "and cannot be passed")
        given_t_r = clean.pop("t_r", None)
        selection = None
        if confounds_strategy is not None:
            selection = strategy_parameters(confounds_strategy, **(confounds_options or {}))
            if "tedana" in selection["strategy"]:
                raise ValueError("confounds_strategy: 'tedana' needs tedana's files, which a cohort store does not keep")
        elif confounds_options:
            raise ValueError("confounds_options were given without a confounds_strategy")
        n_volumes = self._table["n_volumes"].to_numpy(dtype=np.int64)
        t_r = pd.to_numeric(self._table["t_r"], errors="coerce").to_numpy(dtype=np.float64)
        if given_t_r is not None:
            t_r = np.full(len(self), float(given_t_r))
        failing = {}
        options = None
        for repetition in np.unique(t_r[np.isfinite(t_r)]):
            options = plan_options(**clean, t_r=float(repetition))
            if options["filter"] == "butterworth":
                butter = design_butterworth(1.0 / repetition, low_pass=options["low_pass"],
                                            high_pass=options["high_pass"], **options["butterworth_options"])
                short = (t_r == repetition) & (n_volumes <= (butter.padlen if butter is not None else -1))
                for key, n in zip(self._table.index[short], n_volumes[short]):
                    failing[key] = (f"{n} volumes, too short for the Butterworth filter (t_r={repetition:g} s, "
                                    f"it needs more than padlen={butter.padlen})")
        if options is None:
            options = plan_options(**clean, t_r=None)
        if not np.isfinite(t_r).all() and options["filter"] is not False:
            for key in self._table.index[~np.isfinite(t_r)]:
                failing[key] = "no repetition time (t_r) in the store, and filtering needs one; pass clean={'t_r': ...}"
        checked = dict(options, t_r=None)
        return engine.Cleaning(selection, checked, None if given_t_r is None else float(given_t_r), on_error), failing

    def _without_failing(self, failing: dict, on_error: str, what: str) -> Cohort:
        if not failing:
            return self
        listed = "; ".join(f"{key}: {why}" for key, why in list(failing.items())[:10])
        more = f" (and {len(failing) - 10} more)" if len(failing) > 10 else ""
        if on_error == "raise":
            raise ValueError(f"{what}: {len(failing)} run(s) cannot be processed: {listed}{more}. "
                             "Select the other runs (cohort.sel) or pass on_error='skip'")
        warnings.warn(f"{what}: skipping {len(failing)} run(s): {listed}{more}", UserWarning, stacklevel=3)
        keep = ~self._table.index.isin(list(failing))
        if not keep.any():
            raise ValueError(f"{what}: no run left to process: {listed}{more}")
        return self._subset(keep)

    def clean(self, strategy="simple", confounds_options: dict | None = None, on_error: str = "raise",
              **clean_kwargs) -> xr.Dataset:
        """Denoise every run's voxels, lazily: one labeled Dataset.

        Each run's confounds are selected by ``strategy`` and its cleaning
        plan built inside the tasks (nothing is read now); its voxels are
        cleaned a voxel chunk at a time.

        Parameters
        ----------
        strategy : str or sequence of str
            Confounds strategy (see :meth:`select_confounds`).
        confounds_options : dict, optional
            Strategy options (``motion``, ``scrub``, ...).
        on_error : {"raise", "skip"}, default="raise"
            A run that cannot be cleaned (too short for the filter, its
            confounds lack what the strategy needs, censoring leaves too few
            volumes): "raise" stops with an error naming it; "skip" leaves it
            out (runs ruled out by the runs table, listed in the
            ``skipped_runs`` attribute with a warning) or all-NaN with its
            reason in the ``error`` coordinate (runs that fail in a task).
        **clean_kwargs
            :func:`brainxr.signal.clean` parameters (``low_pass``,
            ``high_pass``, ``detrend``, ``standardize``...); ``t_r`` defaults
            to each run's own.

        Returns
        -------
        xarray.Dataset
            ``bold (run, time, voxel)`` float32 cleaned signals, the kept
            volumes first and NaN after; ``n_volumes (run)`` volumes kept and
            ``onset (run, time)`` their times in seconds; the run and voxel
            coordinates; the provenance attributes (:mod:`brainxr.provenance`).

        Examples
        --------
        >>> cleaned = cohort.clean(strategy="simple", low_pass=0.08, high_pass=0.009)
        """
        from brainxr.provenance import provenance_attrs

        cleaning, failing = self._cleaning(clean_kwargs, strategy, confounds_options, on_error)
        cohort = self._without_failing(failing, on_error, "clean")
        blocks = cohort.blocks
        token = tokenize(blocks.token, cleaning, "clean")
        plans = engine.cleaning_plans(blocks, cleaning, token)
        psc = cleaning.options["standardize"] == "psc"
        cleaned = engine.cleaned_bold(blocks, plans, psc, on_error, token)
        coords = cohort._run_coords()
        coords[TIME_DIM] = self._time_coord(blocks.n_time)
        coords["n_volumes"] = (RUN_DIM, engine.kept_volumes(blocks, plans, token))
        coords["onset"] = ((RUN_DIM, TIME_DIM), engine.onsets(blocks, plans, token))
        if on_error == "skip":
            coords["error"] = (RUN_DIM, engine.run_errors(plans, token))
        coords.update(self.grid.coords)
        attrs = dict(store=str(self.path), **provenance_attrs(confounds_strategy=strategy,
                                                             confounds_options=confounds_options,
                                                             clean=_clean_record(clean_kwargs)))
        if failing:
            attrs["skipped_runs"] = json.dumps(failing)
        return xr.Dataset({"bold": ((RUN_DIM, TIME_DIM, VOXEL_DIM), cleaned)}, coords=coords, attrs=attrs)

    # -- region signals ----------------------------------------------------
    def extract(self, regions, strategy: str = "mean", *, confounds_strategy=None,
                confounds_options: dict | None = None, clean: dict | bool | None = None,
                min_coverage: float | None = None, ensure_finite: bool = False,
                on_error: str = "raise") -> xr.DataArray:
        """Region signals of every run, lazily: ``(run, time, region)``.

        The regions are turned into voxel weights once for the cohort grid;
        each run is then reduced over its voxel chunks, and (optionally) its
        region signals are cleaned with its own confounds, as nilearn's
        maskers do. The graph holds one task per (chunk of runs, voxel
        chunk) for the reduction and one per chunk of runs for the rest;
        nothing is read until it is computed.

        Parameters
        ----------
        regions : LabelsAtlas, MapsAtlas, Spheres, or a labels image
        strategy : str
            Statistic within each label (``"mean"``, ``"sum"``, ``"median"``,
            ...; see :func:`brainxr.regions.extract_labels`).
        confounds_strategy : str or sequence of str, optional
            Regress the run's confounds selected by this strategy (and censor
            the volumes it flags). Implies cleaning.
        confounds_options : dict, optional
            Strategy options (``motion``, ``scrub``...).
        clean : bool or dict, optional
            :func:`brainxr.signal.clean` parameters for the region signals;
            ``t_r`` defaults to each run's own.
        min_coverage : float, optional
            Regions with a smaller fraction of valid voxels in a run are NaN.
        ensure_finite : bool, default=False
            Count non-finite values as 0 (nilearn) instead of leaving their
            voxels out.
        on_error : {"raise", "skip"}, default="raise"
            See :meth:`clean`.

        Returns
        -------
        xarray.DataArray
            ``signals (run, time, region)`` float64, the (kept) volumes of
            each run first and NaN after, with coords ``n_volumes (run)``,
            ``onset (run, time)`` (seconds), ``coverage (run, region)``, the
            runs table (entities as strings, BIDS ``run`` as ``bids_run``,
            ``t_r``), the region coords, ``error (run)`` with
            ``on_error="skip"``; and the provenance attributes
            (:mod:`brainxr.provenance`).
        """
        from brainxr.provenance import atlas_record, provenance_attrs
        from brainxr.regions import MapsAtlas, Spheres, load_labels_atlas
        from brainxr.regions.cohort import region_weights

        if min_coverage is not None and not 0 <= min_coverage <= 1:
            raise ValueError(f"min_coverage must be within [0, 1], got {min_coverage}")
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        if not isinstance(regions, (MapsAtlas, Spheres)):
            regions = load_labels_atlas(regions)
        cleaning = None
        failing = {}
        if confounds_strategy is not None and clean in (None, True):
            clean = {}
        if clean is not None and clean is not False:
            clean = {} if clean is True else dict(clean)
            cleaning, failing = self._cleaning(clean, confounds_strategy, confounds_options, on_error)
        elif confounds_options:
            raise ValueError("confounds_options were given without a confounds_strategy")
        cohort = self._without_failing(failing, on_error, "extract")
        cohort._warn_runs_without_valid_voxels()
        weights = region_weights(regions, self.grid.shape, self.grid.affine, self.grid.voxel_index, strategy)
        n_time = int(cohort._table["n_volumes"].max())
        rows = n_time + 1 + (weights.n_regions if weights.with_gram else 0)
        blocks = cohort.reduction_blocks(8 * rows * weights.n_regions)
        record = atlas_record(regions)
        attrs = provenance_attrs(confounds_strategy=confounds_strategy, confounds_options=confounds_options,
                                 clean=None if cleaning is None else _clean_record(clean), atlas=record)
        token = tokenize(blocks.token, attrs["atlas"], attrs["clean"], attrs["confounds_strategy"], strategy,
                         min_coverage, ensure_finite, on_error)
        totals = engine.region_totals(blocks, weights, ensure_finite, token)
        plans = None if cleaning is None else engine.cleaning_plans(blocks, cleaning, token)
        values = engine.region_values(totals, blocks, weights, plans, min_coverage, on_error, token)

        coords = cohort._run_coords()
        coords[TIME_DIM] = self._time_coord(blocks.n_time)
        coords["n_volumes"] = (RUN_DIM, engine.kept_volumes(blocks, plans, token))
        coords["onset"] = ((RUN_DIM, TIME_DIM), engine.onsets(blocks, plans, token))
        coords["coverage"] = ((RUN_DIM, REGION_DIM), engine.region_coverage(totals, blocks, weights, token))
        if plans is not None and on_error == "skip":
            coords["error"] = (RUN_DIM, engine.run_errors(plans, token))
        table = weights.regions
        coords[REGION_DIM] = (REGION_DIM, table["region"].to_numpy(dtype=object).astype(str))
        coords["label"] = (REGION_DIM, table["label"].to_numpy())
        if "name" in table:
            coords["name"] = (REGION_DIM, table["name"].to_numpy(dtype=object).astype(str))
        for axis in "xyz":
            coords[axis] = (REGION_DIM, table[axis].to_numpy(dtype=np.float64))
        attrs["strategy"] = weights.statistic
        if failing:
            attrs["skipped_runs"] = json.dumps(failing)
        return xr.DataArray(values, dims=(RUN_DIM, TIME_DIM, REGION_DIM), coords=coords, attrs=attrs, name="signals")

    # -- summary ----------------------------------------------------------
    def summary(self, signals: xr.DataArray | None = None, confounds_strategy="simple") -> pd.DataFrame:
        """One row per run: entities, TR, volumes, volumes kept after scrubbing, mean FD.

        Computed now, one task per chunk of runs (each reads its runs'
        confounds tables).

        Parameters
        ----------
        signals : xarray.DataArray, optional
            ``(run, time, region)`` signals from :meth:`extract`, whose
            ``n_volumes`` gives the volumes kept; otherwise the volumes kept
            by ``confounds_strategy``.
        confounds_strategy : str or sequence of str
            Strategy whose sample mask counts the volumes kept.
        """
        import dask

        from brainxr.interfaces.fmriprep.denoise import strategy_parameters

        blocks = self.reduction_blocks(16)
        selection = strategy_parameters(confounds_strategy)
        token = tokenize(blocks.token, selection, "summary")
        numbers = engine.confounds_summary(blocks, selection, token)
        (numbers,) = dask.compute(numbers)
        table = self.runs.reset_index()
        table["n_volumes_kept"] = numbers[:, 0].astype(np.int64)
        table["mean_fd"] = numbers[:, 1]
        if signals is not None:
            kept = signals["n_volumes"].to_series()
            known = table["run"].isin(kept.index)
            table.loc[known, "n_volumes_kept"] = kept.loc[table.loc[known, "run"]].to_numpy()
        return table

    def report(self, signals: xr.DataArray | None = None, group_connectome: xr.DataArray | None = None,
               confounds_strategy="simple", **kwargs):
        """The cohort summary report: runs, TR, volumes kept, motion, coverage, group connectome.

        Parameters
        ----------
        signals : xarray.DataArray, optional
            ``(run, time, region)`` from :meth:`extract` (gives volumes kept and
            region coverage).
        group_connectome : xarray.DataArray, optional
            ``(region, region_)`` group matrix to show.
        confounds_strategy : str
            Used for volumes kept when ``signals`` is not given.
        **kwargs
            Passed to :func:`brainxr.reporting.cohort_report`.

        Returns
        -------
        brainxr.reporting.HTMLReport
            ``.save_as_html(path)`` writes one self-contained HTML file.
        """
        from brainxr.reporting import cohort_report

        coverage = None
        if signals is not None and "coverage" in signals.coords:
            values = np.asarray(signals["coverage"].transpose("region", "run").values)
            coverage = pd.DataFrame(values, index=[str(r) for r in signals["region"].values],
                                    columns=[str(r) for r in signals["run"].values])
        kwargs.setdefault("title", f"brainxr cohort report: {Path(str(self.path)).name}")
        kwargs.setdefault("brain_mask", self.mask_img)
        return cohort_report(self.summary(signals, confounds_strategy), coverage, group_connectome, **kwargs)

    @property
    def mask_img(self) -> nib.Nifti1Image:
        """The cohort mask as a NIfTI image."""
        return nib.Nifti1Image(self.grid.mask.astype(np.uint8), self.grid.affine)


def _clean_record(clean: dict) -> dict:
    """The cleaning parameters as recorded in provenance: signal.clean's defaults made explicit."""
    import inspect

    from brainxr.signal import clean as clean_function

    defaults = {name: parameter.default for name, parameter in inspect.signature(clean_function).parameters.items()
                if parameter.default is not inspect.Parameter.empty
                and name not in ("runs", "sample_mask", "confounds", "t_r")}
    record = dict(defaults, **{key: value for key, value in clean.items()})
    record.setdefault("t_r", "each run's own (run coordinate t_r)")
    return record


def _voxel_chunk(store, key: str | None, n_voxels: int) -> int:
    """Voxels per stored bold chunk of a format-1 store (no store-wide value): run ``key``'s."""
    import zarr

    if key is None:
        return max(1, n_voxels)
    location = as_location(store)
    bold = zarr.open_array(location.zarr_store(), path=f"{cohort_store.RUNS}/{key}/bold", mode="r", zarr_format=3)
    return int(bold.chunks[1])


def open_cohort(store, storage_options: dict | None = None, runs_per_chunk: int | None = None) -> Cohort:
    """Open a cohort store.

    Only metadata is read: the root (format version, grid, mask), the runs
    index and one listing of the runs (a few requests on object storage,
    however many runs). Runs left incomplete by an interrupted ingest are
    listed in ``cohort.incomplete`` and otherwise ignored.

    Parameters
    ----------
    store : path, URL or Location
        A store written by :func:`brainxr.ingest`: a local path or an fsspec
        URL (``s3://bucket/cohort.zarr``).
    storage_options : dict, optional
        fsspec options of a URL (default: the standard environment, e.g.
        ``AWS_ENDPOINT_URL``).
    runs_per_chunk : int, optional
        Runs per chunk of the cohort's stacked arrays and of its graphs
        (default: chosen by bytes, see :mod:`brainxr.engine`).

    Returns
    -------
    Cohort
    """
    contents = cohort_store.read_store(as_location(store, storage_options))
    return Cohort(contents.location, cohort_store.runs_table_of(contents.runs), contents.grid, contents.incomplete,
                  contents.voxel_chunk, runs_per_chunk)
