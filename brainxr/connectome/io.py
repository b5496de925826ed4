"""Reading and writing connectomes: BIDS-derivative TSV files and Zarr groups.

``relmat.tsv`` files follow the layout XCP-D writes
(``sub-X_ses-Y_task-Z_run-1_space-S_seg-A_stat-pearsoncorrelation_relmat.tsv``):
a header row ``Node`` + region names, one row per region led by its name,
``n/a`` for missing values. Cohort connectomes ``(run, region, region_)`` go
into a Zarr (v3) group, by default ``derivatives/connectome/<name>`` of the
cohort store, written chunk by chunk from lazy arrays.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from brainxr.connectome.matrices import _is_dask

__all__ = [
    "open_connectomes",
    "read_relmat",
    "relmat_filename",
    "write_connectomes",
    "write_relmat",
    "write_relmats",
]

# BIDS entity order for the names of derivative files (unknown entities go
# before ``stat``, ``desc`` comes last).
_ENTITY_ORDER = (
    "sub", "ses", "task", "acq", "ce", "rec", "dir", "run", "echo", "part",
    "space", "cohort", "res", "den", "atlas", "seg", "stat", "desc",
)
_STAT_OF_KIND = {
    "covariance": "covariance",
    "precision": "precision",
    "partial correlation": "partialcorrelation",
    "tangent": "tangent",
}
_ENTITY_PATTERN = re.compile(r"^[A-Za-z0-9]+-[A-Za-z0-9]+$")
_CONNECTOME_GROUP = "derivatives/connectome"


def parse_entities(prefix: str) -> dict:
    """BIDS entities of a name like ``sub-01_ses-1_task-rest_run-1``.

    Parts that are not ``key-value`` pairs (a suffix such as ``bold``) are
    ignored.
    """
    entities = {}
    for part in str(prefix).split("_"):
        if _ENTITY_PATTERN.match(part):
            key, value = part.split("-", 1)
            entities[key] = value
    return entities


def default_stat(connectivity: xr.DataArray) -> str:
    """The ``stat`` entity for a connectivity DataArray, from its attrs."""
    kind = connectivity.attrs.get("kind")
    reduction = str(connectivity.attrs.get("reduction", ""))
    if "fisher z" in reduction and "tanh" not in reduction:
        return "fisherz"
    if kind == "correlation":
        estimator = str(connectivity.attrs.get("cov_estimator", ""))
        return "pearsoncorrelation" if estimator.startswith("EmpiricalCovariance") else "shrunkcorrelation"
    if kind in _STAT_OF_KIND:
        return _STAT_OF_KIND[kind]
    raise ValueError(
        "stat: cannot tell the statistic of this connectivity from its attrs "
        f"(kind={kind!r}); pass stat=, e.g. stat='pearsoncorrelation'."
    )


def relmat_filename(entities, *, stat: str, suffix: str = "relmat", extension: str = ".tsv", **more) -> str:
    """BIDS-derivative file name of a relationship matrix.

    Parameters
    ----------
    entities : dict or str
        BIDS entities (``{"sub": "01", "task": "rest"}``) or a name carrying
        them (``"sub-01_task-rest_run-1"``, such as a cohort store run name).
    stat : str
        The ``stat`` entity, e.g. ``"pearsoncorrelation"``.
    suffix, extension : str
        ``relmat`` and ``.tsv`` by default.
    **more
        Further entities, e.g. ``space="MNI152NLin2009cAsym"``, ``seg="4S156Parcels"``.

    Returns
    -------
    str
        e.g. ``sub-01_task-rest_run-1_space-MNI_seg-A_stat-pearsoncorrelation_relmat.tsv``.
    """
    if isinstance(entities, str):
        entities = parse_entities(entities)
    entities = {**entities, **{key: value for key, value in more.items() if value is not None}}
    entities["stat"] = stat
    if "sub" not in entities:
        raise ValueError(f"entities: a BIDS file name needs a 'sub' entity; got {entities}.")
    for key, value in entities.items():
        if not re.fullmatch(r"[A-Za-z0-9]+", str(key)) or not re.fullmatch(r"[A-Za-z0-9]+", str(value)):
            raise ValueError(
                f"entities: {key}-{value} is not a valid BIDS entity (letters and "
                "digits only on both sides of the dash)."
            )
    known = [key for key in _ENTITY_ORDER if key in entities and key not in ("stat", "desc")]
    unknown = [key for key in entities if key not in _ENTITY_ORDER]
    order = known + unknown + [key for key in ("stat", "desc") if key in entities]
    return "_".join(f"{key}-{entities[key]}" for key in order) + f"_{suffix}{extension}"


def _region_labels(connectivity: xr.DataArray) -> list[str]:
    if "region" in connectivity.coords:
        return [str(name) for name in connectivity["region"].values]
    return [str(index) for index in range(connectivity.sizes["region"])]


def _check_square_dataarray(connectivity, what):
    if not isinstance(connectivity, xr.DataArray) or set(connectivity.dims) != {"region", "region_"}:
        raise ValueError(
            f"{what} must be a (region, region_) DataArray; got "
            + (f"dims {connectivity.dims}." if isinstance(connectivity, xr.DataArray) else f"{type(connectivity).__name__}.")
        )


def write_relmat(connectivity: xr.DataArray, path, *, na_rep: str = "n/a") -> Path:
    """Write one connectivity matrix as a ``relmat.tsv`` file.

    Parameters
    ----------
    connectivity : xarray.DataArray
        ``(region, region_)`` matrix (computed if lazy).
    path : str or os.PathLike
        Output file; parent folders are created.
    na_rep : str, default="n/a"
        Text of missing values (BIDS uses ``n/a``).

    Returns
    -------
    pathlib.Path
    """
    _check_square_dataarray(connectivity, "connectivity")
    connectivity = connectivity.transpose("region", "region_")
    labels = _region_labels(connectivity)
    table = pd.DataFrame(np.asarray(connectivity.values, dtype=np.float64), index=labels, columns=labels)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, sep="\t", na_rep=na_rep, index_label="Node")
    return path


def read_relmat(path) -> xr.DataArray:
    """Read a ``relmat.tsv`` file into a ``(region, region_)`` DataArray.

    Files with a ``Node`` first column (XCP-D, :func:`write_relmat`) and
    files with only a header of region names are both read; ``n/a`` is NaN.
    The ``stat`` entity of the file name, if any, goes into ``attrs``.

    Parameters
    ----------
    path : str or os.PathLike
        The ``relmat.tsv`` file.
    """
    path = Path(path)
    table = pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=True)
    if table.columns[0] == "Node":
        table = table.set_index("Node")
    labels = [str(name) for name in table.columns]
    if table.shape[0] != table.shape[1]:
        raise ValueError(
            f"{path}: expected a square matrix with a header of region names; "
            f"got {table.shape[0]} rows and {table.shape[1]} columns."
        )
    if table.index.name == "Node" and [str(name) for name in table.index] != labels:
        raise ValueError(f"{path}: the row names (Node column) differ from the header.")
    names = np.asarray(labels, dtype=object)
    attrs = {"source": str(path)}
    stat = parse_entities(path.name.split(".")[0]).get("stat")
    if stat is not None:
        attrs["stat"] = stat
    return xr.DataArray(
        table.to_numpy(dtype=np.float64),
        dims=("region", "region_"),
        coords={"region": names, "region_": names.copy()},
        attrs=attrs,
    )


def write_relmats(
    connectomes: xr.DataArray,
    directory,
    *,
    stat: str | None = None,
    bids_folders: bool = True,
    progress: bool = True,
    **entities,
) -> list[Path]:
    """Write each run of a cohort as a BIDS-derivative ``relmat.tsv`` file.

    Parameters
    ----------
    connectomes : xarray.DataArray
        ``(run, region, region_)``; the run labels carry the BIDS entities
        (cohort store run names such as ``sub-01_ses-1_task-rest_run-1``).
        Lazy input is computed one chunk of runs at a time.
    directory : str or os.PathLike
        Root of the derivatives dataset.
    stat : str, optional
        ``stat`` entity; by default from the attrs (``kind``, estimator).
    bids_folders : bool, default=True
        Put each file in ``sub-X[/ses-Y]/func/``.
    progress : bool, default=True
        Show a bar counting the runs written (see :mod:`brainxr.progress`).
    **entities
        Entities added to every name, e.g. ``space=``, ``seg=``.

    Returns
    -------
    list of pathlib.Path
    """
    others = [dim for dim in connectomes.dims if dim not in ("region", "region_")]
    if not isinstance(connectomes, xr.DataArray) or len(others) != 1 or connectomes.ndim != 3:
        raise ValueError(
            "connectomes must be a (run, region, region_) DataArray; got "
            + (f"dims {connectomes.dims}." if isinstance(connectomes, xr.DataArray) else f"{type(connectomes).__name__}.")
        )
    (run_dim,) = others
    stat = stat or default_stat(connectomes)
    connectomes = connectomes.transpose(run_dim, "region", "region_")
    labels = [str(label) for label in connectomes[run_dim].values]
    directory = Path(directory)
    paths = []
    starts = np.cumsum((0,) + tuple(connectomes.chunks[0] if _is_dask(connectomes.data) else (connectomes.sizes[run_dim],)))
    from brainxr import progress as brainxr_progress  # imports dask: not for what only reads or plots matrices

    written = brainxr_progress.bar(len(labels), desc="write relmats", unit="run", progress=progress)
    for start, stop in zip(starts[:-1], starts[1:]):
        (block,) = brainxr_progress.compute(connectomes.isel({run_dim: slice(start, stop)}), progress=False)
        written.update(stop - start)
        for offset, label in enumerate(labels[start:stop]):
            run_entities = parse_entities(label)
            name = relmat_filename(run_entities, stat=stat, **entities)
            folder = directory
            if bids_folders:
                folder = folder / f"sub-{run_entities['sub']}"
                if "ses" in run_entities:
                    folder = folder / f"ses-{run_entities['ses']}"
                folder = folder / "func"
            paths.append(write_relmat(block.isel({run_dim: offset}), folder / name))
    written.close()
    return paths


def _storable(connectomes: xr.DataArray) -> xr.DataArray:
    """Zarr-ready: regular chunks; fixed-width strings as variable-length.

    Zarr chunks must all have one size (the last may be smaller); variable
    length strings are the string type with a stable Zarr v3 specification.
    """
    if _is_dask(connectomes.data):
        for dim, chunks in zip(connectomes.dims, connectomes.chunks):
            if len(chunks) > 1 and (len(set(chunks[:-1])) > 1 or chunks[-1] > chunks[0]):
                connectomes = connectomes.chunk({dim: max(chunks)})
    replacements = {
        name: coord.astype(object)
        for name, coord in connectomes.coords.items()
        if coord.dtype.kind == "U"
    }
    return connectomes.assign_coords(replacements) if replacements else connectomes


def write_connectomes(
    connectomes,
    store,
    name: str,
    *,
    group: str | None = None,
    mode: str = "w-",
    compute: bool = True,
    compressors=None,
    progress: bool = True,
    storage_options: dict | None = None,
):
    """Write connectomes into a Zarr (v3) group, chunk by chunk.

    Several kinds computed from the same signals (a mapping or Dataset) are
    written in one pass: one task graph reads each chunk of signals once and
    writes every kind from it, with memory flat in the number of runs. (Two
    separate computes, or a write and a group mean in the same compute, make
    dask hold the signals of many runs: compute group means from the store.)

    Parameters
    ----------
    connectomes : xarray.DataArray, xarray.Dataset or mapping of DataArray
        ``(run, region, region_)`` (or ``(region, region_)``) connectomes,
        lazy or not. A DataArray is stored as the variable ``name``; a
        mapping or Dataset keeps its variable names (e.g. ``correlation``,
        ``covariance``). Lazy data is computed and written one chunk of runs
        per task.
    store : str, os.PathLike, URL, Location or zarr store
        The Zarr store, for example the cohort store: a local path (made
        absolute, so that workers elsewhere write to it) or an fsspec URL
        (``s3://bucket/cohort.zarr``).
    name : str
        Names the group: ``derivatives/connectome/<name>``.
    group : str, optional
        Group path, to override that default.
    mode : {"w-", "w", "a"}, default="w-"
        ``"w-"`` fails if the group exists, ``"w"`` overwrites it, ``"a"``
        adds variables to it.
    compute : bool, default=True
        If False, return the ``dask.delayed`` write instead of writing.
    compressors : None, "auto" or zarr codecs, default=None
        Uncompressed by default: float64 connectivity values barely compress
        (to about 86% with zstd) while compression and decompression cost
        more CPU than the estimation itself when the matrices are read back
        at every iteration of a geometric mean. ``"auto"`` is Zarr's default.
    progress : bool, default=True
        Show a bar over the write's tasks (on the active distributed client,
        if any: see :mod:`brainxr.progress`).
    storage_options : dict, optional
        fsspec options of a URL (default: the standard environment).

    Returns
    -------
    str or dask.delayed.Delayed
        The group path, or the delayed write.
    """
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"name={name!r}: use letters, digits, '_', '.' or '-' only.")
    if isinstance(connectomes, xr.DataArray):
        variables = {name: connectomes}
    elif isinstance(connectomes, (xr.Dataset, dict)):
        variables = dict(connectomes.data_vars if isinstance(connectomes, xr.Dataset) else connectomes)
    else:
        raise TypeError(
            "connectomes must be a DataArray, a Dataset or a dict of DataArrays; "
            f"got {type(connectomes).__name__}."
        )
    for variable, values in variables.items():
        if not isinstance(values, xr.DataArray) or not {"region", "region_"} <= set(values.dims):
            raise ValueError(
                f"connectomes[{variable!r}] must be a (run, region, region_) or "
                "(region, region_) DataArray."
            )
    group = group or f"{_CONNECTOME_GROUP}/{name}"
    dataset = xr.Dataset({variable: _storable(values) for variable, values in variables.items()})
    store = _zarr_store(store, storage_options)
    delayed = dataset.to_zarr(
        store,
        group=group,
        mode=mode,
        compute=False,
        zarr_format=3,
        consolidated=False,
        encoding={variable: {"compressors": compressors} for variable in variables},
    )
    if not compute:
        return delayed
    from brainxr import progress as brainxr_progress

    brainxr_progress.compute(delayed, desc=f"write {name}", progress=progress)
    return group


def _zarr_store(store, storage_options=None):
    """Zarr's store for a path, URL or Location (brainxr's: the same ``memory://`` as the cohort store's)."""
    from zarr.abc.store import Store

    if isinstance(store, Store):
        return store
    from brainxr._storage import as_location

    return as_location(store, storage_options).zarr_store()


def open_connectomes(store, name: str, *, kind: str | None = None, group: str | None = None,
                     storage_options: dict | None = None) -> xr.DataArray:
    """Open connectomes written by :func:`write_connectomes`, lazily.

    Parameters
    ----------
    store : str, os.PathLike, URL, Location or zarr store
    name : str
        The ``name`` given to :func:`write_connectomes`.
    kind : str, optional
        Which variable of the group (``"correlation"``...); may be left out
        when the group holds one variable.
    group : str, optional
        Default ``derivatives/connectome/<name>``.
    storage_options : dict, optional
        fsspec options of a URL.

    Returns
    -------
    xarray.DataArray
        Dask-backed, chunked as stored.
    """
    group = group or f"{_CONNECTOME_GROUP}/{name}"
    zarr_store, store = _zarr_store(store, storage_options), str(store)
    try:
        dataset = xr.open_dataset(
            zarr_store, group=group, engine="zarr", chunks={}, consolidated=False, zarr_format=3
        )
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{store}: no connectome group {group!r} ({error}).") from None
    variables = sorted(dataset.data_vars)
    if kind is None:
        if len(variables) != 1:
            raise ValueError(
                f"{store}: group {group!r} holds {variables}; pass kind= to choose one."
            )
        kind = variables[0]
    if kind not in dataset:
        raise KeyError(f"{store}: group {group!r} has no variable {kind!r}; it has {variables}.")
    return dataset[kind]
