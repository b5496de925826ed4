"""HTML building blocks of brainxr's notebook views (``_repr_html_``), in xarray's style.

A view is one ``<div>`` that carries its own ``<style>`` (nothing external: it
shows offline and in a saved notebook), a plain-text fallback shown only when
the styles are not applied (an untrusted notebook strips them), a header (the
object's type, its name and a one-line summary) and sections. A section is a
title with a count that expands to its details: a checkbox and its label,
as in xarray, so no script is needed. Colours follow JupyterLab's theme
variables (light and dark), with fallbacks elsewhere.

This module is at the bottom: it imports nothing from brainxr.
"""

from __future__ import annotations

import base64
import io
import sys
import uuid
from html import escape

import numpy as np

_CSS = """
.bxr-wrap { --bxr-font0: var(--jp-content-font-color0, rgba(0,0,0,1));
  --bxr-font2: var(--jp-content-font-color2, rgba(0,0,0,0.54));
  --bxr-border: var(--jp-border-color2, #e0e0e0);
  --bxr-row: var(--jp-layout-color2, #f5f5f5);
  --bxr-bad: var(--jp-error-color1, #d32f2f); --bxr-good: var(--jp-success-color1, #388e3c);
  display: block !important; min-width: 300px; max-width: 760px; line-height: 1.5;
  font-size: 13px; color: var(--bxr-font0); padding-bottom: 4px; }
body.vscode-dark .bxr-wrap, html[data-theme=dark] .bxr-wrap, html[theme=dark] .bxr-wrap {
  --bxr-font0: rgba(255,255,255,1); --bxr-font2: rgba(255,255,255,0.6);
  --bxr-border: #444; --bxr-row: #2a2a2a; }
.bxr-fallback { display: none; }
.bxr-header { padding: 6px 0; border-bottom: solid 1px var(--bxr-border); margin-bottom: 4px; }
.bxr-type { color: var(--bxr-font2); }
.bxr-name { font-weight: bold; margin-left: 6px; word-break: break-all; }
.bxr-summary { color: var(--bxr-font0); margin-top: 2px; }
.bxr-sections { list-style: none; padding-left: 0 !important; margin: 0; }
.bxr-section > input { display: none; }
.bxr-section > label { color: var(--bxr-font2); font-weight: 500; cursor: pointer; display: inline-block; padding-top: 3px; }
.bxr-section > input:disabled + label { cursor: default; }
.bxr-section > label:before { display: inline-block; content: "\\25BA"; font-size: 11px; width: 15px; text-align: center; }
.bxr-section > input:checked + label:before { content: "\\25BC"; }
.bxr-section > input:disabled + label:before { color: transparent; }
.bxr-section > .bxr-inline { display: inline; margin-left: 8px; }
.bxr-section > .bxr-details { display: none; margin: 4px 0 6px 15px; }
.bxr-section > input:checked ~ .bxr-details { display: block; }
.bxr-kv { display: grid; grid-template-columns: max-content auto; column-gap: 12px; margin: 0; }
.bxr-kv dt { color: var(--bxr-font2); font-weight: normal; }
.bxr-kv dd { margin: 0; word-break: break-word; }
.bxr-table { border-collapse: collapse; font-size: 12px; margin: 2px 0; }
.bxr-table th, .bxr-table td { border: none; padding: 1px 8px; text-align: right; white-space: nowrap; }
.bxr-table th { color: var(--bxr-font2); font-weight: 500; border-bottom: solid 1px var(--bxr-border); }
.bxr-table tbody tr:nth-child(odd) { background: var(--bxr-row); }
.bxr-table td.bxr-text, .bxr-table th.bxr-text { text-align: left; }
.bxr-bad { color: var(--bxr-bad); font-weight: bold; }
.bxr-good { color: var(--bxr-good); }
.bxr-pre { white-space: pre-wrap; margin: 2px 0; font-size: 12px; }
.bxr-image { display: block; image-rendering: pixelated; margin: 4px 0; max-width: 100%; }
.bxr-muted { color: var(--bxr-font2); }
"""


def obj_repr(text_repr: str, kind: str, name: str = "", summary: str = "", sections=()) -> str:
    """One object's view: styles, text fallback, header and sections.

    Parameters
    ----------
    text_repr : str
        The plain-text repr, shown where the styles are not applied.
    kind : str
        The object's type, e.g. ``"brainxr.Cohort"``.
    name : str
        Its name or location (escaped here).
    summary : str
        One line of HTML under the header.
    sections : sequence of str
        Output of :func:`section`.
    """
    items = "".join(f"<li class='bxr-section'>{item}</li>" for item in sections)
    return (
        f"<div><style>{_CSS}</style>"
        f"<pre class='bxr-fallback'>{escape(text_repr)}</pre>"
        "<div class='bxr-wrap' style='display:none'>"
        f"<div class='bxr-header'><span class='bxr-type'>{escape(kind)}</span>"
        f"<span class='bxr-name'>{escape(str(name))}</span>"
        f"<div class='bxr-summary'>{summary}</div></div>"
        f"<ul class='bxr-sections'>{items}</ul>"
        "</div></div>"
    )


def section(title: str, details: str = "", n_items: int | None = None, inline: str = "",
            expanded: bool = False) -> str:
    """A section: its title (and count) expands to ``details``; ``inline`` HTML shows beside the title.

    A section without details (or with ``n_items == 0``) cannot be expanded.
    """
    section_id = f"bxr-{uuid.uuid4().hex}"
    has_details = bool(details) and n_items != 0
    count = "" if n_items is None else f" ({n_items})"
    state = (" checked" if expanded else "") if has_details else " disabled"
    html = (f"<input id='{section_id}' type='checkbox'{state}>"
            f"<label for='{section_id}'>{escape(title)}{count}</label>")
    if inline:
        html += f"<div class='bxr-inline'>{inline}</div>"
    if has_details:
        html += f"<div class='bxr-details'>{details}</div>"
    return html


def key_values(items) -> str:
    """A two-column list of ``(name, HTML value)`` pairs (a mapping or pairs); names are escaped."""
    pairs = items.items() if hasattr(items, "items") else items
    rows = "".join(f"<dt>{escape(str(key))}</dt><dd>{value}</dd>" for key, value in pairs)
    return f"<dl class='bxr-kv'>{rows}</dl>"


def table(frame, max_rows: int = 20, index: bool = True) -> str:
    """A pandas DataFrame as a compact table; past ``max_rows``, its first and last rows around a gap."""
    n_rows = len(frame)
    if n_rows > max_rows:
        head, tail = frame.iloc[: max_rows // 2], frame.iloc[-(max_rows // 2):]
        parts = [head, None, tail]
    else:
        parts = [frame]
    columns = ([frame.index.name or ""] if index else []) + [str(c) for c in frame.columns]
    numeric = ([False] if index else []) + [frame[c].dtype.kind in "iufb" for c in frame.columns]
    align = ["" if is_number else " class='bxr-text'" for is_number in numeric]
    header = "".join(f"<th{a}>{escape(c)}</th>" for c, a in zip(columns, align))
    body = []
    for part in parts:
        if part is None:
            body.append(f"<tr><td class='bxr-text bxr-muted' colspan='{len(columns)}'>"
                        f"... {n_rows - 2 * (max_rows // 2)} more rows ...</td></tr>")
            continue
        for label, row in zip(part.index, part.itertuples(index=False)):
            cells = ([label] if index else []) + list(row)
            body.append("<tr>" + "".join(f"<td{a}>{escape(format_value(v))}</td>" for v, a in zip(cells, align))
                        + "</tr>")
    return f"<table class='bxr-table'><thead><tr>{header}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def format_value(value) -> str:
    """A cell value as short text: floats with 4 significant digits, missing values as '-'."""
    if value is None:
        return "-"
    if isinstance(value, (float, np.floating)):
        return "-" if np.isnan(value) else f"{value:.4g}"
    return str(value)


def short_list(values, max_items: int = 6) -> str:
    """``'a, b, c, ..., z'``: the first and last values when there are many (text, not HTML)."""
    values = [str(v) for v in values]
    if len(values) <= max_items:
        return ", ".join(values)
    keep = max_items // 2
    return ", ".join(values[:keep] + ["..."] + values[-(max_items - keep - 1):])


def pre(text: str) -> str:
    """Preformatted text (error messages, tracebacks), wrapped."""
    return f"<pre class='bxr-pre'>{escape(str(text))}</pre>"


def png_image(rgb: np.ndarray, alt: str, scale: int = 1) -> str:
    """An ``(rows, cols, 3|4)`` image (floats in [0, 1] or uint8) as an embedded PNG, enlarged ``scale`` times."""
    from PIL import Image

    values = np.asarray(rgb)
    if values.dtype != np.uint8:
        values = (np.clip(values, 0, 1) * 255).round().astype(np.uint8)
    if scale > 1:
        values = values.repeat(scale, axis=0).repeat(scale, axis=1)
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, format="PNG", optimize=True)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f"<img class='bxr-image' alt='{escape(alt)}' width='{values.shape[1]}' height='{values.shape[0]}' "
            f"src='data:image/png;base64,{data}'>")


def orthogonal_slices(volume: np.ndarray, background=0, gap: int = 2, at=None) -> np.ndarray:
    """Sagittal, coronal and axial slices of a 3D volume, side by side.

    The volume is indexed ``(i, j, k)`` in RAS order (i: left to right,
    j: posterior to anterior, k: inferior to superior); each slice is shown
    with superior (or anterior) up. Cells between and around the slices hold
    ``background``; the slices share one height.

    Parameters
    ----------
    at : (i, j, k), optional
        Where to cut; default: on each axis, the slice with the most voxels
        other than ``background`` (for a cortical atlas, not its empty centre).
    """
    volume = np.asarray(volume)
    if at is None:
        inside = volume != background
        at = [int(np.argmax(inside.sum(axis=tuple(a for a in range(3) if a != axis)))) for axis in range(3)]
    i, j, k = at
    slices = [volume[i, :, :].T[::-1], volume[:, j, :].T[::-1], volume[:, :, k].T[::-1]]
    height = max(s.shape[0] for s in slices)
    padded = []
    for s in slices:
        pad = height - s.shape[0]
        padded.append(np.pad(s, ((pad // 2, pad - pad // 2), (0, gap)), constant_values=background))
    return np.concatenate(padded, axis=1)


def in_notebook() -> bool:
    """Whether the code runs in a Jupyter kernel (whose outputs a browser shows)."""
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    return type(shell).__name__ == "ZMQInteractiveShell"
