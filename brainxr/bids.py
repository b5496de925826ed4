"""BIDS file names and fMRIPrep derivatives discovery.

A run is identified by its BIDS entities (``sub``, ``ses``, ``task``, ``acq``,
``ce``, ``rec``, ``dir``, ``run``, ``echo``); :func:`run_key` turns them into
the name of the run's group in a cohort store. :func:`find_fmriprep_runs`
pairs every ``*_desc-preproc_bold.nii.gz`` of a derivatives folder with its
JSON sidecar, its brain mask and its ``*_desc-confounds_timeseries.tsv``
(+ JSON). The folder may be local or remote (any fsspec URL): it is listed
once, and files are paired from that listing.

A file is a :class:`pathlib.Path` when local, and a
:class:`brainxr._storage.Location` (``name``, ``parent``, ``exists()``,
``open()``, ``read_text()``...) when it is a URL.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from brainxr._storage import as_location

# Entities that identify an acquisition, in BIDS order: they name a run.
RUN_ENTITIES = ("sub", "ses", "task", "acq", "ce", "rec", "dir", "run", "echo")
# Entities that describe a derivative of a run.
DERIVATIVE_ENTITIES = ("space", "cohort", "res", "den", "desc")

def _file(location):
    """A file as RunFiles holds it: a Path when local, the Location of a URL otherwise."""
    return Path(location.url) if location.is_local else location


def parse_entities(path) -> dict:
    """BIDS entities of a file name, plus ``suffix`` and ``extension``.

    Examples
    --------
    >>> parse_entities("sub-01_task-rest_space-MNI_desc-preproc_bold.nii.gz")
    {'sub': '01', 'task': 'rest', 'space': 'MNI', 'desc': 'preproc', 'suffix': 'bold', 'extension': '.nii.gz'}
    """
    name = path.name if hasattr(path, "name") else Path(path).name
    stem, dot, rest = name.partition(".")
    entities = {}
    for part in stem.split("_"):
        key, sep, value = part.partition("-")
        if sep and key and value:
            entities[key] = value
        elif part:
            entities["suffix"] = part
    entities["extension"] = dot + rest if dot else ""
    return entities


def run_entities(entities: dict) -> dict:
    """Only the entities that identify a run, in BIDS order."""
    return {name: entities[name] for name in RUN_ENTITIES if name in entities}


def run_key(entities: dict) -> str:
    """Name of a run: its identifying entities joined BIDS-style.

    Examples
    --------
    >>> run_key({"sub": "01", "task": "rest", "run": "2", "space": "MNI"})
    'sub-01_task-rest_run-2'
    """
    identity = run_entities(entities)
    if not identity:
        raise ValueError(f"no BIDS run entities (sub, ses, task, run, ...) in {entities}")
    return "_".join(f"{name}-{value}" for name, value in identity.items())


@dataclass
class RunFiles:
    """The files of one preprocessed run.

    Attributes
    ----------
    bold : pathlib.Path or Location
        The 4D preprocessed BOLD image.
    entities : dict
        Its BIDS entities.
    sidecar : pathlib.Path, Location or None
        The BOLD JSON sidecar (``RepetitionTime``).
    confounds : pathlib.Path, Location or None
        The confounds TSV.
    confounds_json : pathlib.Path, Location or None
        The confounds JSON (CompCor metadata).
    brain_mask : pathlib.Path, Location or None
        The run's brain mask in the same space.
    """

    bold: Path
    entities: dict = field(default_factory=dict)
    sidecar: Path | None = None
    confounds: Path | None = None
    confounds_json: Path | None = None
    brain_mask: Path | None = None

    @property
    def key(self) -> str:
        return run_key(self.entities)

    def repetition_time(self) -> float | None:
        """``RepetitionTime`` from the JSON sidecar, if any."""
        if self.sidecar is None or not self.sidecar.exists():
            return None
        try:
            meta = json.loads(self.sidecar.read_text())
        except json.JSONDecodeError as err:
            from brainxr.errors import InputFileError

            raise InputFileError(self.sidecar, f"invalid JSON sidecar ({err})") from err
        value = meta.get("RepetitionTime")
        return float(value) if value is not None else None


def _sibling(bold: Path, entities: dict, replace: dict, drop=()) -> list[Path]:
    """Candidate paths of a file named like ``bold`` with some entities changed."""
    kept = {k: v for k, v in entities.items() if k not in ("suffix", "extension") and k not in drop}
    kept.update({k: v for k, v in replace.items() if k not in ("suffix", "extension")})
    ordered = [k for k in RUN_ENTITIES + DERIVATIVE_ENTITIES if k in kept] + [
        k for k in kept if k not in RUN_ENTITIES + DERIVATIVE_ENTITIES
    ]
    stem = "_".join(f"{k}-{kept[k]}" for k in ordered)
    return [bold.parent / f"{stem}_{replace['suffix']}{ext}" for ext in replace["extension"]]


def files_for_bold(bold, existing=None, storage_options: dict | None = None) -> RunFiles:
    """Find the sidecar, confounds and brain mask that go with a BOLD file.

    Parameters
    ----------
    bold : path, URL or Location
    existing : set of str, optional
        Every file of the folder (paths or URLs, as ``str(location)``), from
        one listing; without it each candidate is checked on its own.
    storage_options : dict, optional
        fsspec options of a URL.
    """
    bold = _file(as_location(bold, storage_options))

    def exists(candidate) -> bool:
        return str(candidate) in existing if existing is not None else candidate.exists()

    entities = parse_entities(bold)
    sidecar = bold.with_name(bold.name.split(".nii")[0] + ".json")
    confounds = None
    confounds_json = None
    for desc in ("confounds", "confounds_regressors"):  # fMRIPrep >= 20.2, then older
        suffix = "timeseries" if desc == "confounds" else "regressors"
        for candidate in _sibling(
            bold, entities, {"desc": "confounds", "suffix": suffix, "extension": (".tsv",)},
            drop=("space", "cohort", "res", "den", "desc"),
        ):
            if exists(candidate):
                confounds = candidate
                json_path = candidate.with_name(candidate.name[: -len(".tsv")] + ".json")
                confounds_json = json_path if exists(json_path) else None
                break
        if confounds:
            break
    brain_mask = next(
        (p for p in _sibling(bold, entities, {"desc": "brain", "suffix": "mask", "extension": (".nii.gz", ".nii")})
         if exists(p)),
        None,
    )
    return RunFiles(
        bold=bold,
        entities=entities,
        sidecar=sidecar if exists(sidecar) else None,
        confounds=confounds,
        confounds_json=confounds_json,
        brain_mask=brain_mask,
    )


def find_fmriprep_runs(root, space=None, storage_options: dict | None = None, **filters) -> list[RunFiles]:
    """Discover the preprocessed runs of an fMRIPrep derivatives folder.

    Parameters
    ----------
    root : str, os.PathLike or Location
        The derivatives folder (holding ``sub-*/``): a local path or a URL
        (``s3://bucket/derivatives``), listed once.
    space : str, optional
        Output space to keep (``"MNI152NLin2009cAsym"``...). Required when
        the folder holds several spaces.
    storage_options : dict, optional
        fsspec options of a URL.
    **filters
        Entity values to keep, e.g. ``task="rest"``, ``res="2"``; a list keeps
        any of its values.

    Returns
    -------
    list of RunFiles
        Sorted by run key.
    """
    location = as_location(root, storage_options)
    if not location.is_dir():
        raise FileNotFoundError(f"source: {location} is not a directory")
    files = location.find()
    existing = {str(_file(f)) for f in files}
    bolds = [f for f in files if re.fullmatch(r".*_desc-preproc_bold\.nii(\.gz)?", f.name)]
    runs = [files_for_bold(bold, existing) for bold in bolds]
    if space is not None:
        filters["space"] = space
    for name, wanted in filters.items():
        wanted = {str(v) for v in (wanted if isinstance(wanted, (list, tuple, set)) else [wanted])}
        runs = [run for run in runs if run.entities.get(name) in wanted]
    spaces = sorted({(run.entities.get("space"), run.entities.get("res")) for run in runs}, key=str)
    if len(spaces) > 1:
        listed = ", ".join(f"space-{s}" + (f"_res-{r}" if r else "") for s, r in spaces)
        raise ValueError(
            f"source: {location} holds runs in several spaces ({listed}); choose one with space=... (and res=...)"
        )
    keys = [run.key for run in runs]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"source: several BOLD files share the run names {duplicates} in {location}")
    return sorted(runs, key=lambda run: run.key)
