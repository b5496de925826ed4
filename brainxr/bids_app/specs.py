"""What ``--atlas`` and ``--denoise-strategy`` name: parsed once, checked before any work.

An atlas is a TemplateFlow atlas (``Schaefer2018:100Parcels7Networks``,
``DiFuMo:64dimensions``, ``HOSPA:th25``), a labels (``dseg``) or
probabilistic (``probseg``) NIfTI file with its TSV of names beside it, or a
coordinates TSV (``x``, ``y``, ``z`` columns in mm) for spheres of
``--radius`` mm. A denoising strategy is one of nilearn's presets with its
parameters (``scrubbing:fd_threshold=0.3``), one of giga_connectome's named
variants (``simple+gsr``, ``scrubbing.5``, ``acompcor50``...) or a JSON file
of ``load_confounds`` / ``load_confounds_strategy`` options.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from brainxr.bids import parse_entities
from brainxr.errors import BrainxrError
from brainxr.interfaces.fmriprep.denoise import strategy_parameters
from brainxr.interfaces.fmriprep.presets import PRESETS
from brainxr.interfaces.fmriprep.selection import check_strategy


class BidsAppError(BrainxrError, ValueError):
    """A problem with the command's input or options, told in one line."""


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(2**22):
            digest.update(block)
    return digest.hexdigest()


def bids_label(text: str) -> str:
    """A BIDS label (letters and digits only) from any name: ``scrubbing.5+gsr`` -> ``scrubbing5gsr``."""
    return re.sub(r"[^A-Za-z0-9]", "", str(text))


# ---------------------------------------------------------------- strategies

#: giga_connectome's named strategies: load_confounds_strategy parameters
NAMED_STRATEGIES = {
    "simple+gsr": {"denoise_strategy": "simple", "global_signal": "basic"},
    "scrubbing.2": {"denoise_strategy": "scrubbing", "fd_threshold": 0.2},
    "scrubbing.2+gsr": {"denoise_strategy": "scrubbing", "fd_threshold": 0.2, "global_signal": "basic"},
    "scrubbing.5": {"denoise_strategy": "scrubbing", "fd_threshold": 0.5},
    "scrubbing.5+gsr": {"denoise_strategy": "scrubbing", "fd_threshold": 0.5, "global_signal": "basic"},
    "acompcor50": {"denoise_strategy": "compcor"},
    "icaaroma": {"denoise_strategy": "ica_aroma"},
}


@dataclass(frozen=True)
class Strategy:
    """A denoising strategy.

    Attributes
    ----------
    name : str
        As given (``scrubbing.5+gsr``, a JSON file's ``name``).
    label : str
        Its BIDS ``desc`` label.
    function : {"load_confounds_strategy", "load_confounds"}
    parameters : dict
        That function's parameters (``denoise_strategy`` or ``strategy``
        plus options), as JSON.
    """

    name: str
    label: str
    function: str
    parameters: dict = field(hash=False)

    @property
    def selection(self) -> tuple:
        """``(strategy, options)`` for :meth:`brainxr.Cohort.select_confounds`."""
        options = dict(self.parameters)
        if self.function == "load_confounds_strategy":
            return options.pop("denoise_strategy"), options
        return tuple(options.pop("strategy")), options

    def as_json(self) -> dict:
        return {"Name": self.name, "Function": self.function, "Parameters": self.parameters}


def _value(text: str):
    """An option value from the command line: number, null/true/false, or text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _checked(name: str, function: str, parameters: dict, where: str) -> Strategy:
    parameters = dict(parameters)
    try:
        if function == "load_confounds_strategy":
            preset = parameters.get("denoise_strategy")
            if preset not in PRESETS:
                raise ValueError(f"denoise_strategy must be one of {', '.join(PRESETS)}, got {preset!r}")
            tunable = set(PRESETS[preset]) - {"strategy", "ica_aroma"} | {"global_signal"}
            unknown = sorted(set(parameters) - tunable - {"denoise_strategy"})
            if unknown:
                raise ValueError(f"{preset} takes {', '.join(sorted(tunable))}; not {', '.join(unknown)}")
            resolved = strategy_parameters(preset, **{k: v for k, v in parameters.items() if k != "denoise_strategy"})
            check_strategy(resolved.pop("strategy"), **resolved)
        elif function == "load_confounds":
            components = parameters.get("strategy")
            if not isinstance(components, (list, tuple)) or not components:
                raise ValueError("load_confounds needs 'strategy', a list of noise components")
            resolved = strategy_parameters(list(components), **{k: v for k, v in parameters.items() if k != "strategy"})
            check_strategy(resolved.pop("strategy"), **resolved)
        else:
            raise ValueError(f"'function' must be load_confounds_strategy or load_confounds, got {function!r}")
    except (ValueError, TypeError, KeyError) as error:
        raise BidsAppError(f"{where}: {error}") from None
    return Strategy(name=name, label=bids_label(name), function=function, parameters=parameters)


def parse_strategy(spec: str) -> Strategy:
    """A ``--denoise-strategy`` value as a :class:`Strategy`.

    Forms: a preset (``simple``, ``scrubbing``, ``compcor``, ``ica_aroma``),
    a preset with parameters (``scrubbing:fd_threshold=0.3,scrub=0``), a
    giga_connectome variant (``simple+gsr``, ``scrubbing.2``,
    ``scrubbing.2+gsr``, ``scrubbing.5``, ``scrubbing.5+gsr``,
    ``acompcor50``, ``icaaroma``), or a JSON file: giga_connectome's format
    ``{"name", "function", "parameters"}`` or plain ``load_confounds``
    options with ``strategy``.
    """
    where = f"--denoise-strategy {spec}"
    if spec.endswith(".json"):
        path = Path(spec)
        if not path.is_file():
            raise BidsAppError(f"{where}: no such JSON file")
        try:
            content = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise BidsAppError(f"{where}: invalid JSON ({error})") from None
        if not isinstance(content, dict):
            raise BidsAppError(f"{where}: expected a JSON object of load_confounds options")
        if "parameters" in content:
            return _checked(str(content.get("name") or path.stem), content.get("function", "load_confounds_strategy"),
                            content["parameters"], where)
        function = "load_confounds_strategy" if "denoise_strategy" in content else "load_confounds"
        return _checked(path.stem, function, content, where)
    if spec in NAMED_STRATEGIES:
        return _checked(spec, "load_confounds_strategy", NAMED_STRATEGIES[spec], where)
    preset, _, options = spec.partition(":")
    if preset not in PRESETS:
        known = ", ".join([*PRESETS, *NAMED_STRATEGIES])
        raise BidsAppError(f"{where}: unknown strategy {preset!r}; known: {known}, or a JSON file of load_confounds options")
    parameters = {"denoise_strategy": preset}
    label = preset
    for item in filter(None, options.split(",")):
        key, equals, value = item.partition("=")
        if not equals:
            raise BidsAppError(f"{where}: expected KEY=VALUE after ':', got {item!r}")
        parameters[key.strip()] = _value(value.strip())
        label += key.strip().title().replace("_", "") + str(value.strip())
    return _checked(spec if not options else label, "load_confounds_strategy", parameters, where)


# ------------------------------------------------------------------- atlases

@dataclass
class AtlasChoice:
    """An atlas to extract: its identity now, its regions loaded on first use.

    Deciding whether outputs are up to date needs only the label and the
    provenance (files and checksums); loading the regions imports the
    extraction code, which a rerun with nothing to do never needs.

    Attributes
    ----------
    spec : str
        As given on the command line.
    label : str
        The BIDS ``seg`` label.
    provenance : dict
        Name, source files and their checksums, kind; written in sidecars.
    record : dict, optional
        :func:`brainxr.provenance.atlas_record` of the regions.
    """

    spec: str
    label: str
    provenance: dict
    load: object = field(repr=False, compare=False)
    record: dict | None = None

    @property
    def regions(self):
        """The LabelsAtlas, MapsAtlas or Spheres (loaded once; a bad atlas raises :class:`BidsAppError`)."""
        if not hasattr(self, "_regions"):
            try:
                self._regions = self.load()
            except ValueError as error:
                raise BidsAppError(f"--atlas {self.spec}: {error}") from None
        return self._regions


def _table_next_to(image: Path, where: str) -> Path:
    stem = image.name.split(".nii")[0]
    table = image.with_name(stem + ".tsv")
    if not table.is_file():
        raise BidsAppError(f"{where}: no table of region names {table.name} next to the image (columns index, name)")
    return table


def _file_atlas(spec: str, path: Path, radius) -> AtlasChoice:
    where = f"--atlas {spec}"
    entities = parse_entities(path)
    label = bids_label(entities.get("atlas", "") + entities.get("desc", "")) or bids_label(path.name.split(".")[0])
    if path.name.endswith(".tsv"):
        table = pd.read_csv(path, sep="\t")
        missing = [c for c in ("x", "y", "z") if c not in table.columns]
        if missing:
            raise BidsAppError(f"{where}: a coordinates TSV needs columns x, y, z (mm); it lacks {', '.join(missing)}")
        names = table["name"].astype(str).tolist() if "name" in table.columns else None

        def spheres():
            from brainxr.regions import Spheres

            return Spheres(table[["x", "y", "z"]].to_numpy(float), radius=radius, names=names, allow_overlap=True)

        return AtlasChoice(spec, label, {"Name": label, "Type": "spheres", "Radius": radius,
                                         "Coordinates": {"Path": str(path.resolve()), "SHA256": sha256_of(path)}},
                           spheres)
    if not path.name.endswith((".nii", ".nii.gz")):
        raise BidsAppError(f"{where}: expected a TemplateFlow atlas (NAME:DESC), a .nii[.gz] dseg/probseg image or a coordinates .tsv")
    table_path = _table_next_to(path, where)
    table = pd.read_csv(table_path, sep="\t")
    if not {"index", "name"} <= set(table.columns):
        raise BidsAppError(f"{where}: {table_path.name} has columns {list(table.columns)}; expected index and name")
    import nibabel as nib

    ndim = len(nib.load(str(path)).shape)
    kind = entities.get("suffix") if entities.get("suffix") in ("dseg", "probseg") else ("probseg" if ndim == 4 else "dseg")

    def regions():
        from brainxr.regions import load_labels_atlas, load_maps_atlas

        if kind == "dseg":
            return load_labels_atlas(path, lut=table[["index", "name"]])
        return load_maps_atlas(path, names=table.sort_values("index")["name"].astype(str).tolist())

    provenance = {"Name": label, "Type": kind, "Image": {"Path": str(path.resolve()), "SHA256": sha256_of(path)},
                  "Table": {"Path": str(table_path.resolve()), "SHA256": sha256_of(table_path)}}
    return AtlasChoice(spec, label, provenance, regions)


def parse_atlas(spec: str, template: str, resolution, radius=None) -> AtlasChoice:
    """An ``--atlas`` value: a file (dseg/probseg NIfTI with its TSV, coordinates TSV) or a TemplateFlow atlas.

    Its files are found (TemplateFlow atlases fetched) and checked now; its
    regions are loaded when first used (:attr:`AtlasChoice.regions`).
    """
    path = Path(spec)
    if path.suffix in (".tsv", ".nii", ".gz") or path.exists():
        if not path.is_file():
            raise BidsAppError(f"--atlas {spec}: no such file")
        return _file_atlas(spec, path, radius)
    from brainxr.datasets.templateflow import TemplateFlowError, fetch_atlas

    name, _, desc = spec.partition(":")
    suffix = desc if desc in ("dseg", "probseg") else None
    desc = None if suffix or not desc else desc
    try:
        fetched = fetch_atlas(name, desc, template=template, resolution=resolution or 2, suffix=suffix)
    except TemplateFlowError as error:
        raise BidsAppError(f"--atlas {spec}: {error}") from None

    def regions():
        from brainxr.datasets.templateflow import load_atlas

        return load_atlas(name, desc, template=template, resolution=resolution or 2, suffix=suffix)[0]

    provenance = {
        "Name": fetched.label, "Type": fetched.kind, "TemplateFlow": {
            "atlas": fetched.name, "desc": fetched.desc, "template": fetched.template, "resolution": fetched.resolution},
        "Image": {"Path": str(fetched.image), "SHA256": sha256_of(fetched.image)},
        "Table": {"Path": str(fetched.table), "SHA256": sha256_of(fetched.table)},
    }
    return AtlasChoice(spec, fetched.label, provenance, regions)


# --------------------------------------------------------------------- kinds

#: --kind -> (connectivity kind, BIDS meas label with the default estimator, with the empirical one)
KINDS = {
    "correlation": ("correlation", "ShrunkCorrelation", "PearsonCorrelation"),
    "partial correlation": ("partial correlation", "ShrunkPartialCorrelation", "PartialCorrelation"),
    "covariance": ("covariance", "ShrunkCovariance", "Covariance"),
    "precision": ("precision", "ShrunkPrecision", "Precision"),
    "sparse inverse covariance": ("partial correlation", "SparsePartialCorrelation", "SparsePartialCorrelation"),
    "tangent": ("tangent", "Tangent", "Tangent"),
}


def measure_label(kind: str, cov_estimator: str) -> str:
    """The BIDS ``meas`` label of a kind computed with an estimator (``ledoit_wolf`` or ``empirical``)."""
    return KINDS[kind][2 if cov_estimator == "empirical" else 1]


def check_kinds(kinds) -> list[str]:
    kinds = list(dict.fromkeys(kinds))
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        raise BidsAppError(f"--kind {unknown[0]!r}: expected one of {', '.join(repr(k) for k in KINDS)}")
    return kinds


__all__ = ["AtlasChoice", "BidsAppError", "KINDS", "NAMED_STRATEGIES", "Strategy", "bids_label", "check_kinds",
           "measure_label", "parse_atlas", "parse_strategy", "sha256_of"]
