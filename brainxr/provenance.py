"""Provenance of results: what made them, carried in attrs and written to disk.

Every cohort result (region signals, cleaned signals, connectomes, group
means) carries four attributes, each a JSON string so that any format
(Zarr, netCDF, a BIDS sidecar) stores it as it is:

``brainxr_version``
    The version of brainxr that computed the result.
``confounds_strategy``
    ``{"name": <preset or list of components>, "options": {...}}``: the
    strategy and every parameter of the confound selection it resolved to,
    or ``null`` when no confound was regressed.
``clean``
    The parameters of :func:`brainxr.signal.clean` (``t_r`` is the run's
    own, in the ``t_r`` run coordinate, unless it was given), or ``null``.
``atlas``
    ``{"kind", "name", "source", "sha256", "n_regions"}``: the regions the
    signals were extracted from; ``sha256`` hashes the atlas's values, grid
    and region names, so two results share it only if they used the same
    atlas.

:func:`provenance_attrs` makes them, :func:`carried` picks them from a
result's attrs to pass on to what is computed from it, and
:func:`read_provenance` decodes them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

PROVENANCE_KEYS = ("brainxr_version", "confounds_strategy", "clean", "atlas")


def brainxr_version() -> str:
    """The installed brainxr version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("brainxr")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


def _jsonable(value):
    """Plain JSON types from numpy scalars, arrays, tuples and paths."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def _dumps(value) -> str:
    return json.dumps(_jsonable(value), sort_keys=True)


def confounds_strategy_record(strategy, options: dict | None = None) -> dict | None:
    """The confounds strategy and the full set of selection parameters it resolves to.

    Parameters
    ----------
    strategy : str, sequence of str or None
        A preset name or noise components (see
        :func:`brainxr.interfaces.fmriprep.load_confounds_strategy`).
    options : dict, optional
        The options given by the user.

    Returns
    -------
    dict or None
    """
    if strategy is None:
        return None
    from brainxr.interfaces.fmriprep.denoise import strategy_parameters

    parameters = strategy_parameters(strategy, **(options or {}))
    name = strategy if isinstance(strategy, str) else list(strategy)
    return {"name": name, "options": dict(sorted(parameters.items()))}


def _hash_arrays(*arrays) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(array.tobytes() if array.dtype != object else repr(array.tolist()).encode())
    return digest.hexdigest()


def atlas_record(regions, name: str | None = None) -> dict:
    """What identifies the regions of an extraction.

    Parameters
    ----------
    regions : LabelsAtlas, MapsAtlas or Spheres
    name : str, optional
        A name for the atlas (default: its file name, or its kind).

    Returns
    -------
    dict
        ``kind``, ``name``, ``source`` (the file, or ``"in memory"``),
        ``sha256`` (of the values, grid and region names) and ``n_regions``.
    """
    from brainxr.regions.atlas import LabelsAtlas, MapsAtlas
    from brainxr.regions.spheres import Spheres

    if not isinstance(regions, (LabelsAtlas, MapsAtlas, Spheres)):
        raise TypeError(f"regions: expected a LabelsAtlas, MapsAtlas or Spheres, got {type(regions).__name__}")
    table = regions.regions
    names = table["region"].to_numpy(dtype=object).astype(str)
    if isinstance(regions, Spheres):
        kind, source = "spheres", "in memory"
        checksum = _hash_arrays(regions.seeds, np.asarray([np.nan if regions.radius is None else regions.radius]),
                                np.asarray([regions.allow_overlap]), names)
    else:
        kind = "labels" if isinstance(regions, LabelsAtlas) else "maps"
        source = str(regions.image.attrs.get("source", "in memory"))
        checksum = _hash_arrays(np.asarray(regions.image.values), regions.affine, names)
    if name is None:
        name = Path(source).name if source != "in memory" else kind
    return {"kind": kind, "name": name, "source": source, "sha256": checksum, "n_regions": int(len(table))}


def provenance_attrs(*, confounds_strategy=None, confounds_options: dict | None = None, clean: dict | None = None,
                     atlas: dict | None = None) -> dict:
    """The provenance attributes of a result (JSON strings).

    Parameters
    ----------
    confounds_strategy, confounds_options
        See :func:`confounds_strategy_record`.
    clean : dict, optional
        Cleaning parameters (None: the signals were not cleaned).
    atlas : dict, optional
        From :func:`atlas_record`.

    Returns
    -------
    dict
        ``brainxr_version``, ``confounds_strategy``, ``clean``, ``atlas``.
    """
    return {
        "brainxr_version": brainxr_version(),
        "confounds_strategy": _dumps(confounds_strategy_record(confounds_strategy, confounds_options)),
        "clean": _dumps(None if clean is None else dict(sorted(clean.items()))),
        "atlas": _dumps(atlas),
    }


def carried(attrs: dict) -> dict:
    """The provenance attributes among ``attrs`` (to pass on to derived results).

    Parameters
    ----------
    attrs : dict
        The attributes of a result.
    """
    return {key: attrs[key] for key in PROVENANCE_KEYS if key in attrs}


def read_provenance(attrs: dict) -> dict:
    """Decoded provenance of a result (keys absent from ``attrs`` are left out).

    Parameters
    ----------
    attrs : dict
        The attributes of a result or file.
    """
    decoded = {}
    for key in PROVENANCE_KEYS:
        if key in attrs:
            value = attrs[key]
            decoded[key] = json.loads(value) if isinstance(value, str) and key != "brainxr_version" else value
    return decoded


__all__ = [
    "PROVENANCE_KEYS",
    "atlas_record",
    "brainxr_version",
    "carried",
    "confounds_strategy_record",
    "provenance_attrs",
    "read_provenance",
]
