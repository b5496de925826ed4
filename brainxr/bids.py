"""BIDS file names and fMRIPrep derivatives discovery.

A run is identified by its BIDS entities (``sub``, ``ses``, ``task``, ``acq``,
``ce``, ``rec``, ``dir``, ``run``, ``echo``); :func:`run_key` turns them into
the name of the run's group in a cohort store. :func:`find_fmriprep_runs`
pairs every ``*_desc-preproc_bold.nii.gz`` of a derivatives folder with its
JSON sidecar, its brain mask and its ``*_desc-confounds_timeseries.tsv``
(+ JSON).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

# Entities that identify an acquisition, in BIDS order: they name a run.
RUN_ENTITIES = ("sub", "ses", "task", "acq", "ce", "rec", "dir", "run", "echo")
# Entities that describe a derivative of a run.
DERIVATIVE_ENTITIES = ("space", "cohort", "res", "den", "desc")

def parse_entities(path) -> dict:
    """BIDS entities of a file name, plus ``suffix`` and ``extension``.

    Examples
    --------
    >>> parse_entities("sub-01_task-rest_space-MNI_desc-preproc_bold.nii.gz")
    {'sub': '01', 'task': 'rest', 'space': 'MNI', 'desc': 'preproc', 'suffix': 'bold', 'extension': '.nii.gz'}
    """
    name = Path(path).name
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
    bold : pathlib.Path
        The 4D preprocessed BOLD image.
    entities : dict
        Its BIDS entities.
    sidecar : pathlib.Path or None
        The BOLD JSON sidecar (``RepetitionTime``).
    confounds : pathlib.Path or None
        The confounds TSV.
    confounds_json : pathlib.Path or None
        The confounds JSON (CompCor metadata).
    brain_mask : pathlib.Path or None
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


def files_for_bold(bold) -> RunFiles:
    """Find the sidecar, confounds and brain mask that go with a BOLD file."""
    bold = Path(bold)
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
            if candidate.exists():
                confounds = candidate
                json_path = candidate.with_suffix(".json")
                confounds_json = json_path if json_path.exists() else None
                break
        if confounds:
            break
    brain_mask = next(
        (p for p in _sibling(bold, entities, {"desc": "brain", "suffix": "mask", "extension": (".nii.gz", ".nii")}) if p.exists()),
        None,
    )
    return RunFiles(
        bold=bold,
        entities=entities,
        sidecar=sidecar if sidecar.exists() else None,
        confounds=confounds,
        confounds_json=confounds_json,
        brain_mask=brain_mask,
    )


def find_fmriprep_runs(root, space=None, **filters) -> list[RunFiles]:
    """Discover the preprocessed runs of an fMRIPrep derivatives folder.

    Parameters
    ----------
    root : str or os.PathLike
        The derivatives folder (holding ``sub-*/``).
    space : str, optional
        Output space to keep (``"MNI152NLin2009cAsym"``...). Required when
        the folder holds several spaces.
    **filters
        Entity values to keep, e.g. ``task="rest"``, ``res="2"``; a list keeps
        any of its values.

    Returns
    -------
    list of RunFiles
        Sorted by run key.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"source: {root} is not a directory")
    runs = [files_for_bold(path) for path in sorted(root.rglob("*_desc-preproc_bold.nii*"))]
    if space is not None:
        filters["space"] = space
    for name, wanted in filters.items():
        wanted = {str(v) for v in (wanted if isinstance(wanted, (list, tuple, set)) else [wanted])}
        runs = [run for run in runs if run.entities.get(name) in wanted]
    spaces = sorted({(run.entities.get("space"), run.entities.get("res")) for run in runs}, key=str)
    if len(spaces) > 1:
        listed = ", ".join(f"space-{s}" + (f"_res-{r}" if r else "") for s, r in spaces)
        raise ValueError(
            f"source: {root} holds runs in several spaces ({listed}); choose one with space=... (and res=...)"
        )
    keys = [run.key for run in runs]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"source: several BOLD files share the run names {duplicates} in {root}")
    return sorted(runs, key=lambda run: run.key)
