"""Templates and atlases through TemplateFlow's own client.

TemplateFlow (https://www.templateflow.org) distributes the standard spaces
(MNI152NLin2009cAsym, MNI152NLin6Asym, ...) and the atlases drawn on them
(Schaefer2018, DiFuMo, Harvard-Oxford as HOCPA/HOCPAL/HOSPA, ...), named as
BIDS files::

    tpl-<template>/tpl-<template>_res-<R>_atlas-<A>[_desc-<D>]_<dseg|probseg>.nii.gz
    tpl-<template>/tpl-<template>_atlas-<A>[_desc-<D>]_<dseg|probseg>.tsv

Files are found and downloaded by the ``templateflow`` package (its cache is
``$TEMPLATEFLOW_HOME``; its skeleton lists every file, and a file is fetched
on first use), never through URLs written here. Offline use: point
``TEMPLATEFLOW_HOME`` at a populated cache and set
``TEMPLATEFLOW_AUTOUPDATE=0``.

- :func:`get_template`: one template file (``get_template("MNI152NLin2009cAsym",
  resolution=2, desc="brain", suffix="mask")``);
- :func:`fetch_atlas`: an atlas image and its region table;
- :func:`load_atlas`: the same as a :class:`~brainxr.regions.LabelsAtlas` or
  :class:`~brainxr.regions.MapsAtlas`, ready for extraction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from brainxr._views import view
from brainxr.datasets._templateflow_client import (
    TemplateFlowError,
    _check_template,
    _client,
    _fetch,
    _query,
    _templates,
    get_template,
    templateflow_client,
)

__all__ = [
    "TemplateFlowError",
    "TemplateFlowAtlas",
    "available_atlases",
    "fetch_atlas",
    "get_template",
    "load_atlas",
    "templateflow_client",
]

#: Names users know, mapped to TemplateFlow's atlas identifiers.
ATLAS_ALIASES = {
    "HarvardOxfordCortical": "HOCPA",
    "HarvardOxfordCorticalLateralized": "HOCPAL",
    "HarvardOxfordSubcortical": "HOSPA",
}
_SEGMENTATION_SUFFIXES = ("dseg", "probseg")


@dataclass(frozen=True)
class TemplateFlowAtlas:
    """A TemplateFlow atlas: its image, region table and identity.

    Attributes
    ----------
    name : str
        TemplateFlow's atlas identifier (``Schaefer2018``).
    desc : str or None
        Variant (``100Parcels7Networks``).
    template : str
    resolution : int
    kind : {"dseg", "probseg"}
        Labels image or probabilistic maps.
    image : pathlib.Path
    table : pathlib.Path
        Its TSV (``index``, ``name``, ...).
    regions : pandas.DataFrame
        The TSV's rows.
    """

    name: str
    desc: str | None
    template: str
    resolution: int
    kind: str
    image: Path
    table: Path
    regions: pd.DataFrame

    @property
    def label(self) -> str:
        """The BIDS ``seg`` label: name and variant, e.g. ``Schaefer2018100Parcels7Networks``."""
        return self.name + (self.desc or "")

    __repr__ = view("templateflow_atlas_text")
    _repr_html_ = view("templateflow_atlas_html")


def _spec(name: str, desc: str | None) -> str:
    return name + (f":{desc}" if desc else "")


def available_atlases(template: str = "MNI152NLin2009cAsym", root=None, client=None) -> list[str]:
    """Atlases of a template as ``NAME[:DESC]`` (``:probseg``/``:dseg`` where both exist without a desc).

    Parameters
    ----------
    template : str
        TemplateFlow template.
    root, client
        TemplateFlow's cache folder or client (see :func:`fetch_atlas`).
    """
    client = _client(root, client)
    _check_template(client, template, f"atlases of {template}")
    found = set()
    for path in client.ls(template, suffix=list(_SEGMENTATION_SUFFIXES), extension=[".nii.gz", ".nii"]):
        entities = client.cache.layout.parse_file_entities(str(path))
        if "atlas" in entities:
            found.add((entities["atlas"], entities.get("desc"), entities["suffix"]))
    specs = set()
    for atlas, desc, suffix in found:
        ambiguous = desc is None and any(a == atlas and d is None and s != suffix for a, d, s in found)
        specs.add(_spec(atlas, desc if desc else (suffix if ambiguous else None)))
    return sorted(specs)


def _read_table(path: Path, what: str) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, sep="\t")
    except Exception as error:
        raise TemplateFlowError(f"{what}: unreadable region table {path} ({error})") from error
    if not {"index", "name"} <= set(table.columns):
        raise TemplateFlowError(f"{what}: {path} has columns {list(table.columns)}; expected 'index' and 'name'")
    return table


def fetch_atlas(name: str, desc: str | None = None, *, template: str = "MNI152NLin2009cAsym", resolution=2,
                suffix: str | None = None, root=None, client=None) -> TemplateFlowAtlas:
    """An atlas of TemplateFlow: its image (at the closest resolution) and region table.

    Parameters
    ----------
    name : str
        TemplateFlow's identifier (``Schaefer2018``, ``DiFuMo``, ``HOCPA``,
        ``HOCPAL``, ``HOSPA``, ...) or an alias (``HarvardOxfordCortical``,
        ``HarvardOxfordSubcortical``, ``HarvardOxfordCorticalLateralized``).
    desc : str, optional
        The variant: ``100Parcels7Networks``, ``64dimensions``, ``th25``...
    template : str, default="MNI152NLin2009cAsym"
    resolution : int, default=2
        Preferred resolution index; the closest available is taken.
    suffix : {"dseg", "probseg"}, optional
        When both exist (Harvard-Oxford without ``desc``).
    root : path, optional
        The TemplateFlow cache (default ``$TEMPLATEFLOW_HOME``).
    client : templateflow.client.TemplateFlowClient, optional
        A configured client (instead of ``root``).

    Returns
    -------
    TemplateFlowAtlas

    Raises
    ------
    TemplateFlowError
        Unknown template, atlas or variant (the available ones are listed),
        no region table, or a failed download.
    """
    client = _client(root, client)
    name = ATLAS_ALIASES.get(name, name)
    what = f"atlas {_spec(name, desc)} in {template}"
    _check_template(client, template, what)
    if suffix is not None and suffix not in _SEGMENTATION_SUFFIXES:
        raise TemplateFlowError(f"{what}: suffix must be 'dseg' or 'probseg', got {suffix!r}")
    suffixes = [suffix] if suffix else list(_SEGMENTATION_SUFFIXES)
    images = _query(client, template, atlas=name, desc=desc, suffix=suffixes, extension=[".nii.gz", ".nii"])
    kinds = sorted({path.name.split("_")[-1].split(".")[0] for path in images})
    if not images or len(kinds) > 1:
        every = available_atlases(template, client=client)
        choices = [spec for spec in every if spec.split(":")[0] == name]
        problem = "not found" if not images else "exists as labels (dseg) and maps (probseg): choose one"
        listing = (f"variants of {name}: {', '.join(choices)}" if choices else
                   f"atlases of {template}: {', '.join(every) or 'none'}")
        raise TemplateFlowError(f"{what}: {problem}; {listing}")
    kind = kinds[0]
    by_resolution = {}
    for path in images:
        entities = client.cache.layout.parse_file_entities(str(path))
        by_resolution[int(entities.get("resolution", 0))] = path
    chosen = min(by_resolution, key=lambda r: (abs(r - float(resolution)), r))
    image = by_resolution[chosen]
    table = _region_table_path(client, template, name, desc, kind, what)
    _fetch(client, [image, table], what)
    return TemplateFlowAtlas(name=name, desc=desc, template=template, resolution=chosen, kind=kind, image=image,
                             table=table, regions=_read_table(table, what))


def _region_table_path(client, template, name, desc, kind, what) -> Path:
    """The atlas's TSV in ``template``, else in another template (Harvard-Oxford's are in MNI152NLin6Asym only).

    Harvard-Oxford's thresholded labels (``desc-th25``) and probabilistic maps
    share one table without ``desc`` (``tpl-..._atlas-HOSPA_dseg.tsv``).
    """
    def tables(tpl):
        for suffix in (kind, *[s for s in _SEGMENTATION_SUFFIXES if s != kind]):
            for table_desc in dict.fromkeys((desc, None)):
                found = _query(client, tpl, atlas=name, desc=table_desc, suffix=suffix, extension=".tsv")
                if found:
                    return found
        return []

    found = tables(template)
    for other in [t for t in _templates(client) if t != template]:
        if found:
            break
        found = tables(other)
    if not found:
        raise TemplateFlowError(f"{what}: TemplateFlow has no region table (.tsv) for this atlas")
    return found[0]


def load_atlas(name: str, desc: str | None = None, **kwargs):
    """A TemplateFlow atlas ready for extraction, and its identity.

    Parameters
    ----------
    name, desc, **kwargs
        As :func:`fetch_atlas`.

    Returns
    -------
    atlas : brainxr.regions.LabelsAtlas or brainxr.regions.MapsAtlas
        Labels (``dseg``, named from the TSV by ``index``) or maps
        (``probseg``, one map per TSV row, in order).
    fetched : TemplateFlowAtlas
    """
    from brainxr.regions import load_labels_atlas, load_maps_atlas

    fetched = fetch_atlas(name, desc, **kwargs)
    if fetched.kind == "dseg":
        return load_labels_atlas(fetched.image, lut=fetched.regions[["index", "name"]]), fetched
    names = [str(value) for value in fetched.regions.sort_values("index")["name"]]
    return load_maps_atlas(fetched.image, names=names), fetched
