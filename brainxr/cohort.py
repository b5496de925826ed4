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

from brainxr import progress as _progress  # noqa: F401 - long cohort computations show a bar
from brainxr import store as cohort_store
from brainxr._html import view
from brainxr._storage import as_location
from brainxr.bids import RUN_ENTITIES
from brainxr.geometry import MaskedGrid


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
    grid : brainxr.geometry.MaskedGrid
    incomplete : list of str
        Runs present in the store but not complete (an interrupted ingest).
    """

    def __init__(self, path, runs: dict, grid: MaskedGrid, incomplete=()):
        location = as_location(path)
        self.path = Path(location.url) if location.is_local else location
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

    _repr_html_ = view("cohort_html")

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

    def subset(self, keys) -> "Cohort":
        """The cohort of the named runs, in the given order.

        Raises
        ------
        KeyError
            Naming a run that is not a complete run of the store.
        """
        keys = list(keys)
        unknown = [key for key in keys if key not in self._runs]
        if unknown:
            raise KeyError(f"no complete run {unknown[0]!r} in {self.path}; runs: {list(self._runs)[:10]}...")
        return Cohort(self.path, {key: self._runs[key] for key in keys}, self.grid, self.incomplete)

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
            coords={"grid": self.grid.grid.coordinate()},
            attrs={"store": str(self.path)},
        )
        nodes = {"/": root, "/runs": xr.Dataset()}
        nodes.update({f"/runs/{key}": ds for key, ds in self.datasets().items()})
        return xr.DataTree.from_dict(nodes)

    # -- confounds and cleaning -------------------------------------------
    def confounds(self, key: str) -> pd.DataFrame:
        """A run's stored fMRIPrep confounds table (n/a as NaN)."""
        from brainxr.interfaces.fmriprep.denoise import as_confounds_table

        return as_confounds_table(self[key]["confounds"])

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

        parameters = strategy_parameters(strategy, **options)
        return select_confounds(self.confounds(key), cohort_store.read_confounds_metadata(self.path, key),
                                **parameters)

    def clean(self, strategy="simple", confounds_options: dict | None = None, **clean_kwargs) -> dict:
        """Denoise every run's voxels: the lazy cleaned ``(time, voxel)`` runs.

        Parameters
        ----------
        strategy : str or sequence of str
            Confounds strategy (see :meth:`select_confounds`).
        confounds_options : dict, optional
            Strategy options (``motion``, ``scrub``, ...).
        **clean_kwargs
            :func:`brainxr.signal.clean` parameters (``low_pass``,
            ``high_pass``, ``detrend``, ``standardize``...); ``t_r`` defaults
            to each run's own.

        Returns
        -------
        dict
            Run name -> lazy cleaned DataArray (kept volumes only).

        Examples
        --------
        >>> cleaned = cohort.clean(strategy="simple", low_pass=0.08, high_pass=0.009)
        """
        from brainxr.interfaces.fmriprep import clean_run

        cleaned = {}
        for key in self:
            run = self[key]
            kwargs = dict(clean_kwargs)
            kwargs.setdefault("t_r", run.attrs["t_r"])
            cleaned[key] = clean_run(
                run["bold"], run["confounds"], cohort_store.read_confounds_metadata(self.path, key), strategy,
                **(confounds_options or {}), **kwargs,
            )
        return cleaned

    # -- region signals ----------------------------------------------------
    def extract(self, regions, strategy: str = "mean", *, confounds_strategy=None,
                confounds_options: dict | None = None, clean: dict | bool | None = None,
                min_coverage: float | None = None) -> xr.DataArray:
        """Region signals of every run, lazily: ``(run, time, region)``.

        The atlas is resampled once to the cohort grid; each run is reduced
        over its voxel chunks, then (optionally) its region signals are
        cleaned with the run's own confounds, as nilearn's maskers do.

        Parameters
        ----------
        regions : LabelsAtlas, MapsAtlas, Spheres, or a labels image
        strategy : str
            Reduction within each label (``"mean"``, ``"median"``, ...).
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

        Returns
        -------
        xarray.DataArray
            ``(run, time, region)``, NaN-padded for shorter runs, with the run
            entities as ``run`` coordinates (BIDS ``run`` as ``bids_run``).
        """
        from brainxr.regions import extract_cohort

        confounds, sample_mask = None, None
        if confounds_strategy is not None:
            selected = {key: self.select_confounds(key, confounds_strategy, **(confounds_options or {})) for key in self}
            confounds = {key: value[0] for key, value in selected.items()}
            sample_mask = {key: value[1] for key, value in selected.items()}
            clean = {} if clean in (None, True) else clean
        if clean is not None and clean is not False:
            clean = {} if clean is True else dict(clean)
            t_r = {self._runs[key].get("t_r") for key in self}
            if "t_r" not in clean:
                if len(t_r) > 1:
                    raise ValueError(f"clean: the runs have different repetition times {sorted(t_r)}; select runs "
                                     "with one TR (cohort.sel) or pass clean={'t_r': ...}")
                clean["t_r"] = t_r.pop()
        signals = extract_cohort(
            {key: self[key] for key in self}, regions, strategy=strategy, min_coverage=min_coverage,
            clean=clean, confounds=confounds, sample_mask=sample_mask,
        )
        table = self.runs
        return signals.assign_coords(
            {column: ("run", table.loc[list(signals["run"].values), column].astype(str).to_numpy())
             for column in table.columns if column not in ("t_r", "n_volumes", "n_valid_voxels")}
        )

    # -- summary ----------------------------------------------------------
    def summary(self, signals: xr.DataArray | None = None, confounds_strategy="simple") -> pd.DataFrame:
        """One row per run: entities, TR, volumes, volumes kept after scrubbing, mean FD.

        Parameters
        ----------
        signals : xarray.DataArray, optional
            ``(run, time, region)`` signals from :meth:`extract`, whose
            ``n_volumes`` gives the volumes kept; otherwise the volumes kept
            by ``confounds_strategy``.
        confounds_strategy : str or sequence of str
            Strategy whose sample mask counts the volumes kept.
        """
        table = self.runs.reset_index()
        mean_fd, kept = [], []
        for key in table["run"]:
            confounds = self.confounds(key)
            fd = confounds["framewise_displacement"] if "framewise_displacement" in confounds else None
            mean_fd.append(float(np.nanmean(fd)) if fd is not None and fd.notna().any() else np.nan)
            if signals is not None and key in signals["run"].values:
                kept.append(int(signals["n_volumes"].sel(run=key)))
            else:
                _, sample_mask = self.select_confounds(key, confounds_strategy)
                kept.append(len(confounds) if sample_mask is None else len(sample_mask))
        table["n_volumes_kept"] = kept
        table["mean_fd"] = mean_fd
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
        kwargs.setdefault("title", f"brainxr cohort report: {self.path.name}")
        kwargs.setdefault("brain_mask", self.mask_img)
        return cohort_report(self.summary(signals, confounds_strategy), coverage, group_connectome, **kwargs)

    @property
    def mask_img(self) -> nib.Nifti1Image:
        """The cohort mask as a NIfTI image."""
        return nib.Nifti1Image(self.grid.mask.astype(np.uint8), self.grid.affine)


def open_cohort(store, storage_options: dict | None = None) -> Cohort:
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

    Returns
    -------
    Cohort
    """
    contents = cohort_store.read_store(as_location(store, storage_options))
    return Cohort(contents.location, contents.runs, contents.grid, contents.incomplete)
