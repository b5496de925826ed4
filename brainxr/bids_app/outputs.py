"""BIDS-derivative outputs (BEP017 conventions): names, sidecars, atomic writes.

Per run::

    sub-<l>[_ses-<l>]_task-<l>[_run-<i>]_space-<s>[_res-<r>]_seg-<atlas>_desc-<strategy>_timeseries.tsv/.json
    sub-<l>[_ses-<l>]_task-<l>[_run-<i>]_space-<s>[_res-<r>]_seg-<atlas>_meas-<M>_desc-<strategy>_relmat.tsv/.json
    sub-<l>[_ses-<l>]_task-<l>[_run-<i>]_space-<s>[_res-<r>]_seg-<atlas>_stat-coverage_bold.tsv

Every file is written to a temporary name and renamed into place, and a
run's timeseries sidecar is written last: a run whose sidecar exists (with
the same settings) is complete, so an interrupted run is redone and a
finished one is skipped.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import brainxr

CODE_URL = "https://github.com/brainxr/brainxr"
#: BIDS entity order of the names written here
ENTITY_ORDER = ("sub", "ses", "task", "acq", "ce", "rec", "dir", "run", "echo", "part", "space", "cohort", "res",
                "den", "seg", "stat", "meas", "desc")


def bids_name(entities: dict, suffix: str, extension: str) -> str:
    """A BIDS file name with the entities in BIDS order."""
    ordered = [key for key in ENTITY_ORDER if entities.get(key) not in (None, "")]
    return "_".join(f"{key}-{entities[key]}" for key in ordered) + f"_{suffix}{extension}"


def run_folder(output_dir: Path, entities: dict) -> Path:
    folder = Path(output_dir) / f"sub-{entities['sub']}"
    if entities.get("ses"):
        folder = folder / f"ses-{entities['ses']}"
    return folder / "func"


def _atomic_write(path: Path, write) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}."
    with os.scandir(path.parent) as entries:  # not glob: it compiles a pattern per file name (~2 ms a write)
        leftovers = [entry.path for entry in entries if entry.name.startswith(prefix)]
    for leftover in leftovers:  # a write of this file killed before its rename
        Path(leftover).unlink(missing_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path, content: dict) -> Path:
    text = json.dumps(content, indent=2, default=_json_default) + "\n"
    return _atomic_write(Path(path), lambda temporary: Path(temporary).write_text(text))


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _numeric_text(values: np.ndarray, header=None) -> str:
    """A float matrix as TSV text (10 significant digits, NaN as ``n/a``): 5x faster than ``DataFrame.to_csv``."""
    values = np.atleast_2d(np.asarray(values, dtype=float))
    row = "\t".join(["%.10g"] * values.shape[1]) + "\n"
    text = "".join(row % tuple(line) for line in values.tolist()).replace("nan", "n/a")
    return ("\t".join(map(str, header)) + "\n" if header is not None else "") + text


def write_tsv(path: Path, table: pd.DataFrame, index: bool = False) -> Path:
    """A table as a BIDS TSV (``n/a`` for missing values), written atomically."""
    if not index and len(table.columns) and all(pd.api.types.is_float_dtype(t) for t in table.dtypes):
        text = _numeric_text(table.to_numpy(), list(table.columns))
        return _atomic_write(Path(path), lambda temporary: Path(temporary).write_text(text))
    return _atomic_write(Path(path), lambda temporary: table.to_csv(
        temporary, sep="\t", index=index, na_rep="n/a", float_format="%.10g"))


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def write_dataset_description(output_dir: Path, bids_dir: Path) -> Path:
    """``dataset_description.json`` of the outputs (kept if already written)."""
    path = Path(output_dir) / "dataset_description.json"
    if path.exists():
        return path
    source = read_json(Path(bids_dir) / "dataset_description.json") or {}
    return write_json(path, {
        "Name": "brainxr connectivity derivatives",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "brainxr", "Version": brainxr.__version__, "CodeURL": CODE_URL,
                         "Description": "Region time series, connectomes and denoising QC from fMRIPrep derivatives "
                                        "(BEP017 conventions)."}],
        "SourceDatasets": [{"URL": Path(bids_dir).resolve().as_uri(),
                            **({"Name": source["Name"]} if "Name" in source else {}),
                            **({"Version": source["GeneratedBy"][0].get("Version")}
                               if source.get("GeneratedBy") else {})}],
        "License": source.get("License", "n/a"),
    })


def write_relmat(path: Path, matrix: np.ndarray, regions) -> Path:
    """A connectivity matrix as BEP017 ``relmat.tsv``: no header, no index, one row per region."""
    matrix = np.asarray(matrix, dtype=float)
    if matrix.shape != (len(regions), len(regions)):
        raise ValueError(f"{path}: a {matrix.shape} matrix for {len(regions)} regions")
    text = _numeric_text(matrix)
    return _atomic_write(Path(path), lambda temporary: Path(temporary).write_text(text))


def read_relmat(path: Path) -> np.ndarray:
    return pd.read_csv(path, sep="\t", header=None, na_values="n/a").to_numpy(float)
