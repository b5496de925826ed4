"""TemplateFlow's client and its template files (below :mod:`brainxr.masking`).

The part of :mod:`brainxr.datasets.templateflow` that reads templates: the
client on ``$TEMPLATEFLOW_HOME``, :func:`get_template` and the queries and
downloads it is made of. The MNI152 templates (:mod:`brainxr.datasets.mni152`,
which ``compute_brain_mask`` reads) need only this; the atlas loaders of
:mod:`brainxr.datasets.templateflow` build on it and on :mod:`brainxr.regions`.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from brainxr.errors import BrainxrError

__all__ = ["TemplateFlowError", "get_template", "templateflow_client"]


class TemplateFlowError(BrainxrError, LookupError):
    """A template or atlas is not in TemplateFlow as asked (or could not be fetched)."""


def templateflow_client(root=None, **config):
    """TemplateFlow's client on ``root`` (default ``$TEMPLATEFLOW_HOME``, else its user cache).

    Parameters
    ----------
    root : path, optional
    **config
        The client's settings (``s3_root``, ``timeout``, ``autoupdate``...).

    Returns
    -------
    templateflow.client.TemplateFlowClient
    """
    from templateflow.client import TemplateFlowClient

    return TemplateFlowClient(root=root if root is not None else os.environ.get("TEMPLATEFLOW_HOME"), **config)


@functools.lru_cache(maxsize=4)
def _default_client(root, autoupdate):
    # one client per cache: its layout (an index of the cache's files) takes a second to build
    return templateflow_client(root)


def _client(root, client):
    if client is not None:
        return client
    return _default_client(root or os.environ.get("TEMPLATEFLOW_HOME"),
                           os.environ.get("TEMPLATEFLOW_AUTOUPDATE"))


def _query(client, template, **entities) -> list[Path]:
    """Paths the client lists for a query (nothing downloaded yet); ``desc=None`` means no desc."""
    from bids.layout import Query

    entities = {key: value for key, value in entities.items() if value is not None or key == "desc"}
    if entities.get("desc", 0) is None:
        entities["desc"] = Query.NONE
    if entities.get("resolution") is not None:
        entities["resolution"] = int(round(float(entities["resolution"])))
    return sorted(Path(path) for path in client.ls(template, **entities))


def _fetch(client, paths: list[Path], what: str) -> list[Path]:
    """Download (through the client) the listed files not yet in the cache."""
    missing = [path for path in paths if not path.is_file() or path.stat().st_size == 0]
    if missing:
        template = missing[0].parent.name.removeprefix("tpl-")
        try:
            for path in missing:
                entities = client.cache.layout.parse_file_entities(str(path))
                client.get(template, **{k: v for k, v in entities.items() if k != "template"})
        except Exception as error:  # the client raises RuntimeError / requests errors
            raise TemplateFlowError(
                f"{what}: TemplateFlow could not download {missing[0].name} into {client.cache.config.root} "
                f"({error}); check the network or set TEMPLATEFLOW_HOME to a cache that holds it"
            ) from error
    return paths


def _templates(client) -> list[str]:
    return sorted(client.templates())


def _check_template(client, template: str, what: str) -> None:
    templates = _templates(client)
    if template not in templates:
        raise TemplateFlowError(
            f"{what}: no template {template!r} in TemplateFlow (cache {client.cache.config.root}); "
            f"templates: {', '.join(templates) or 'none'}"
        )


def get_template(template: str, *, resolution=None, suffix: str = "T1w", desc=None, root=None, client=None,
                 **entities) -> Path:
    """One file of a TemplateFlow template, downloaded on first use.

    Parameters
    ----------
    template : str
        e.g. ``"MNI152NLin2009cAsym"``.
    resolution : int, optional
        TemplateFlow's resolution index (``res-02``: 2).
    suffix : str, default="T1w"
        ``T1w``, ``mask``, ``probseg``, ...
    desc : str, optional
        ``brain``, ``head``, ... (None: files without a ``desc``).
    root : path, optional
        The TemplateFlow cache (default ``$TEMPLATEFLOW_HOME``).
    client : templateflow.client.TemplateFlowClient, optional
        A configured client (instead of ``root``).
    **entities
        Other TemplateFlow entities (``label="GM"``, ``cohort=1``, ...).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    TemplateFlowError
        No such template, no file or several files matching (the choices
        are listed), or a failed download.

    Examples
    --------
    >>> get_template("MNI152NLin2009cAsym", resolution=2, desc="brain", suffix="mask")  # doctest: +SKIP
    PosixPath('.../tpl-MNI152NLin2009cAsym/tpl-MNI152NLin2009cAsym_res-02_desc-brain_mask.nii.gz')
    """
    client = _client(root, client)
    what = f"template {template} ({', '.join(f'{k}={v}' for k, v in dict(resolution=resolution, suffix=suffix, desc=desc, **entities).items() if v is not None)})"
    _check_template(client, template, what)
    query = dict(resolution=resolution, suffix=suffix, desc=desc, extension=[".nii.gz", ".nii"], **entities)
    paths = _query(client, template, **query)
    if len(paths) != 1:
        choices = [path.name for path in sorted(Path(p) for p in client.ls(template, suffix=suffix, extension=[".nii.gz", ".nii"]))]
        found = "no file" if not paths else f"{len(paths)} files"
        raise TemplateFlowError(f"{what}: {found} in TemplateFlow; {suffix} files of {template}: {', '.join(choices) or 'none'}")
    return _fetch(client, paths, what)[0]
