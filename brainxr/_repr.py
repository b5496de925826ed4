"""Text and HTML reprs of brainxr's public objects (what a notebook cell shows).

Each object's class keeps two one-line methods (``__repr__`` and
``_repr_html_``) that call the functions here; the functions read the
objects through their public attributes only, so that the classes may change
without their views breaking silently (the tests check every view). The HTML
is built from :mod:`brainxr._html`.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections import Counter
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from brainxr import _html

#: failures listed in a text repr
MAX_FAILURES_SHOWN = 5
#: sections with at most this many rows open expanded
EXPAND_UP_TO = 10


# ---------------------------------------------------------------- shared pieces


def voxel_size(affine) -> str:
    """``'4 mm'`` (isotropic) or ``'2 x 2 x 3 mm'``, from an affine's column norms."""
    sizes = np.sqrt((np.asarray(affine, dtype=float)[:3, :3] ** 2).sum(axis=0))
    if np.allclose(sizes, sizes[0], rtol=1e-3):
        return f"{sizes[0]:.3g} mm"
    return " x ".join(f"{s:.3g}" for s in sizes) + " mm"


def _affine_table(affine) -> str:
    frame = pd.DataFrame(np.round(np.asarray(affine, dtype=float), 4), columns=["i", "j", "k", "1"],
                         index=pd.Index(["x", "y", "z", ""], name=""))
    return _html.table(frame)


def _as_ras(volume: np.ndarray, affine) -> np.ndarray:
    """A 3D array reordered and flipped so that its axes run left->right, posterior->anterior, inferior->superior."""
    import nibabel as nib

    return nib.orientations.apply_orientation(volume, nib.orientations.io_orientation(np.asarray(affine)))


def _thumbnail(rgba: np.ndarray, alt: str, width: int = 360) -> str:
    return _html.png_image(rgba, alt, scale=max(1, int(round(width / rgba.shape[1]))))


def _label_colours(n: int) -> np.ndarray:
    """``(n, 4)`` distinct RGBA colours: hues a golden angle apart, so that neighbours differ."""
    from matplotlib.colors import hsv_to_rgb

    hues = (np.arange(n) * 0.618033988749895) % 1.0
    rgb = hsv_to_rgb(np.column_stack([hues, np.full(n, 0.65), np.full(n, 0.92)]))
    return np.column_stack([rgb, np.ones(n)])


def _index_image(index_volume: np.ndarray, affine, alpha: np.ndarray | None = None) -> np.ndarray:
    """Three orthogonal RGBA slices of a region-index volume (-1: background, transparent).

    ``alpha`` (a volume in [0, 1]) fades each voxel's colour (maps: weak weights).
    """
    index = _as_ras(index_volume, affine)
    inside = index >= 0
    at = [int(np.argmax(inside.sum(axis=tuple(a for a in range(3) if a != axis)))) for axis in range(3)]
    slices = _html.orthogonal_slices(index, background=-1, at=at)
    colours = _label_colours(int(index.max()) + 1 if index.max() >= 0 else 1)
    rgba = np.zeros(slices.shape + (4,))
    rgba[slices >= 0] = colours[slices[slices >= 0]]
    if alpha is not None:
        rgba[..., 3] *= np.clip(_html.orthogonal_slices(_as_ras(alpha, affine), background=0, at=at), 0, 1)
    return rgba


def _mask_image(mask: np.ndarray, affine) -> np.ndarray:
    slices = _html.orthogonal_slices(_as_ras(np.asarray(mask, dtype=bool), affine), background=False)
    rgba = np.zeros(slices.shape + (4,))
    rgba[slices] = (0.45, 0.45, 0.45, 1.0)
    return rgba


def _matrix_image(matrix: np.ndarray, cmap: str = "RdBu_r") -> np.ndarray:
    import matplotlib

    matrix = np.asarray(matrix, dtype=float)
    off_diagonal = matrix[~np.eye(len(matrix), dtype=bool)] if len(matrix) > 1 else matrix.ravel()
    peak = float(np.nanmax(np.abs(off_diagonal))) or 1.0
    return matplotlib.colormaps[cmap]((np.clip(matrix / peak, -1, 1) + 1) / 2)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _describe_error(error) -> str:
    if error is None:
        return ""
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}"
    return str(error)


def _first_line(text: str, width: int = 160) -> str:
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= width else line[: width - 3] + "..."


def _fields(obj) -> dict:
    """An object's fields: a dataclass's, else its public instance attributes."""
    if dataclasses.is_dataclass(obj):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return {k: v for k, v in vars(obj).items() if not k.startswith("_")}


def _short_value(value, width: int = 80, name: str = "") -> str:
    """A value as one short line of text (arrays by shape, paths by file name, ``*_bytes`` in MB, long text cut)."""
    if name.endswith("bytes") and isinstance(value, (int, np.integer)):
        return f"{value / 2**20:.1f} MB"
    if isinstance(value, Path) or (isinstance(value, str) and "/" in value and len(value) > width):
        return Path(value).name
    if isinstance(value, np.ndarray):
        return f"array{value.shape} {value.dtype}" if value.size > 16 else np.array2string(value, separator=", ")
    if isinstance(value, pd.DataFrame):
        return f"DataFrame ({len(value)} rows: {', '.join(map(str, value.columns))})"
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value) if isinstance(value, (str, Path)) else repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


# ---------------------------------------------------------------- cohort and grid


def cohort_html(cohort) -> str:
    """A cohort: runs, entities, timing, grid (with the mask) and incomplete runs."""
    table = cohort.runs
    grid = cohort.grid
    entity_columns = cohort.entity_columns
    counts = {c: table[c].dropna().astype(str).unique() for c in entity_columns}
    summary = " &middot; ".join(
        [f"<b>{len(cohort)}</b> {'run' if len(cohort) == 1 else 'runs'}"]
        + [f"{len(values)} {escape(name)}" for name, values in counts.items()]
        + [f"grid {grid.shape} at {voxel_size(grid.affine)}", f"{grid.n_voxels:,} voxels"]
    )
    entities = _html.section(
        "Entities", _html.key_values({name: escape(_html.short_list(sorted(values), 12)) for name, values in counts.items()}),
        len(counts), inline=escape(", ".join(f"{name}: {len(values)}" for name, values in counts.items())),
    )
    timing = []
    for column, unit in (("t_r", " s"), ("n_volumes", "")):
        if column in table and len(table):
            values = table[column].dropna()
            shown = (f"{values.min():g}{unit}" if values.min() == values.max()
                     else f"{values.min():g}-{values.max():g}{unit}") if len(values) else "-"
            timing.append(f"{'TR' if column == 't_r' else 'volumes'} {shown}")
    sections = [
        entities,
        _html.section("Timing", inline=escape(", ".join(timing))),
        _html.section("Runs", _html.table(table), len(table), expanded=len(table) <= EXPAND_UP_TO),
        grid_section(grid),
        _html.section("Incomplete runs", _html.pre("\n".join(map(str, cohort.incomplete))), len(cohort.incomplete),
                      inline="<span class='bxr-muted'>ignored; the next ingest redoes them</span>"
                      if cohort.incomplete else ""),
    ]
    if cohort.incomplete:
        summary += f" &middot; <span class='bxr-bad'>{len(cohort.incomplete)} incomplete</span>"
    return _html.obj_repr(repr(cohort), "brainxr.Cohort", str(cohort.path), summary, sections)


def grid_section(grid) -> str:
    details = (_html.key_values({"shape": escape(str(grid.shape)), "voxel size": voxel_size(grid.affine),
                                 "voxels in the mask": f"{grid.n_voxels:,}", "affine": _affine_table(grid.affine)})
               + _thumbnail(_mask_image(grid.mask, grid.affine), "cohort mask"))
    return _html.section("Grid", details,
                         inline=escape(f"{grid.shape}, {voxel_size(grid.affine)}, {grid.n_voxels:,} voxels"))


def grid_text(grid) -> str:
    return f"<brainxr Grid {grid.shape} at {voxel_size(grid.affine)}: {grid.n_voxels:,} voxels in the mask>"


def grid_html(grid) -> str:
    summary = escape(f"{grid.shape} at {voxel_size(grid.affine)}, {grid.n_voxels:,} voxels in the mask")
    details = _html.key_values({"affine": _affine_table(grid.affine)})
    return _html.obj_repr(grid_text(grid), "brainxr Grid", "", summary,
                          [_html.section("Affine", details, expanded=True),
                           _html.section("Mask", _thumbnail(_mask_image(grid.mask, grid.affine), "mask"),
                                         expanded=True)])


# ---------------------------------------------------------------- atlases


def _atlas_kind(atlas) -> str:
    return "maps" if type(atlas).__name__ == "MapsAtlas" else "labels"


def atlas_text(atlas) -> str:
    noun = "maps" if _atlas_kind(atlas) == "maps" else "regions"
    names = _html.short_list(atlas.regions["region"], 4)
    return (f"<brainxr {type(atlas).__name__}: {atlas.n_regions} {noun} ({names}) on a {atlas.shape} grid "
            f"at {voxel_size(atlas.affine)}>")


def atlas_html(atlas) -> str:
    """An atlas: kind, regions, grid and a picture of the parcellation (three slices)."""
    kind = _atlas_kind(atlas)
    regions = atlas.regions.copy()
    if kind == "labels":
        index = atlas.region_index_volume()
        regions.insert(3, "voxels", atlas.sizes())
        picture = _index_image(index, atlas.affine)
        summary = f"labels atlas &middot; <b>{atlas.n_regions}</b> regions"
    else:
        values = np.asarray(atlas.image.values)
        strongest = values.max(axis=3)
        index = np.where(strongest > 0, values.argmax(axis=3), -1)
        # opaque from half the median positive weight: the maps' extent, not only their peaks
        scale = 0.5 * np.median(strongest[strongest > 0]) if (strongest > 0).any() else 1.0
        picture = _index_image(index, atlas.affine, alpha=strongest / scale)
        summary = f"probabilistic atlas &middot; <b>{atlas.n_regions}</b> maps"
    summary += escape(f" · grid {atlas.shape} at {voxel_size(atlas.affine)}")
    sections = [
        _html.section("Image", _thumbnail(picture, f"{kind} atlas: sagittal, coronal and axial slices"),
                      inline=escape("each region in its colour" if kind == "labels"
                                    else "the strongest map at each voxel"), expanded=True),
        _html.section("Regions", _html.table(regions.set_index("label")), len(regions),
                      inline=escape(_html.short_list(regions["region"], 4))),
        _html.section("Grid", _html.key_values({"shape": escape(str(atlas.shape)),
                                                "voxel size": voxel_size(atlas.affine),
                                                "affine": _affine_table(atlas.affine)})),
    ]
    return _html.obj_repr(atlas_text(atlas), f"brainxr.regions.{type(atlas).__name__}", "", summary, sections)


def spheres_text(spheres) -> str:
    radius = "the seed voxel only" if spheres.radius is None else f"radius {spheres.radius:g} mm"
    overlap = "overlap allowed" if spheres.allow_overlap else "no overlap"
    names = f" ({_html.short_list(spheres.names, 4)})" if spheres.names is not None else ""
    return f"<brainxr Spheres: {spheres.n_regions} seeds{names}, {radius}, {overlap}>"


def spheres_html(spheres) -> str:
    summary = escape(spheres_text(spheres)[len("<brainxr Spheres: "):-1])
    table = spheres.regions.set_index("label")
    return _html.obj_repr(spheres_text(spheres), "brainxr.regions.Spheres", "", summary,
                          [_html.section("Seeds", _html.table(table), len(table), expanded=len(table) <= EXPAND_UP_TO)])


# ---------------------------------------------------------------- ingest reports


def _status_counts(results) -> Counter:
    return Counter(str(getattr(result, "status", "?")) for result in results)


def _is_failure(result) -> bool:
    return getattr(result, "error", None) is not None or getattr(result, "status", "") == "failed"


def _counts_text(counts: Counter) -> str:
    order = sorted(counts, key=lambda status: (status != "ingested", status == "failed", status))
    return ", ".join(f"{counts[status]} {status}" for status in order) or "no runs"


def ingest_report_text(report) -> str:
    results = list(report.results)
    seconds = getattr(report, "seconds", None)
    timing = f" in {seconds:.1f} s" if seconds else ""
    lines = [f"<brainxr IngestReport {report.store}: {_plural(len(results), 'run')}: "
             f"{_counts_text(_status_counts(results))}{timing}>"]
    failures = [result for result in results if _is_failure(result)]
    lines += [f"  FAILED {result.key}: {_first_line(_describe_error(result.error))}"
              for result in failures[:MAX_FAILURES_SHOWN]]
    if len(failures) > MAX_FAILURES_SHOWN:
        lines.append(f"  ... and {len(failures) - MAX_FAILURES_SHOWN} more failures (report.failed)")
    return "\n".join(lines)


def _results_table(results) -> pd.DataFrame:
    rows = []
    for result in results:
        row = {name: value for name, value in _fields(result).items() if name not in ("error", "status")}
        rows.append({name: value if isinstance(value, (float, np.floating)) else _short_value(value, name=name)
                     for name, value in row.items()})
    frame = pd.DataFrame(rows)
    if "key" in frame:
        frame = frame.set_index("key")
        frame.index.name = "run"
    return frame


def ingest_report_html(report) -> str:
    """Counts per status, the failures with their reasons, then the runs of each status."""
    results = list(report.results)
    counts = _status_counts(results)
    failures = [result for result in results if _is_failure(result)]
    seconds = getattr(report, "seconds", None)
    parts = []
    for status in sorted(counts, key=lambda status: (status != "ingested", status == "failed", status)):
        css = "bxr-bad" if status == "failed" else ("bxr-good" if status == "ingested" else "")
        parts.append(f"<span class='{css}'>{counts[status]} {escape(status)}</span>")
    summary = f"<b>{_plural(len(results), 'run')}</b>: " + (", ".join(parts) or "none")
    if seconds:
        summary += f" in {seconds:.1f} s"
    sections = []
    if failures:
        rows = "".join(
            f"<dt>{escape(str(result.key))}</dt><dd>{_html.pre(_describe_error(result.error))}"
            + (f"<span class='bxr-muted'>{escape(str(result.source))}</span>" if getattr(result, "source", "") else "")
            + "</dd>" for result in failures)
        sections.append(_html.section("Failed", f"<dl class='bxr-kv'>{rows}</dl>", len(failures), expanded=True))
    for status in sorted(counts):
        if status == "failed":
            continue
        chosen = [result for result in results if str(result.status) == status]
        sections.append(_html.section(status.capitalize(), _html.table(_results_table(chosen)), len(chosen),
                                      expanded=len(chosen) <= EXPAND_UP_TO and not failures))
    others = {name: escape(_short_value(value, name=name)) for name, value in _fields(report).items()
              if name not in ("results", "store")}
    properties = {name: getattr(report, name) for name, attribute in vars(type(report)).items()
                  if isinstance(attribute, property) and name not in ("ingested", "skipped", "failed")}
    others.update({name: escape(_short_value(value, name=name)) for name, value in properties.items()})
    if others:
        sections.append(_html.section("Details", _html.key_values(others), len(others)))
    return _html.obj_repr(ingest_report_text(report), f"brainxr {type(report).__name__}", str(report.store),
                          summary, sections)


def run_result_text(result) -> str:
    status = str(getattr(result, "status", "?"))
    seconds = getattr(result, "seconds", None)
    text = f"<brainxr {type(result).__name__} {result.key}: {status}"
    if _is_failure(result):
        text += f": {_first_line(_describe_error(result.error))}"
    elif seconds:
        text += f" in {seconds:.2f} s"
    return text + ">"


def run_result_html(result) -> str:
    status = str(getattr(result, "status", "?"))
    css = "bxr-bad" if _is_failure(result) else ("bxr-good" if status == "ingested" else "")
    summary = f"<span class='{css}'>{escape(status)}</span>"
    fields = {name: escape(str(value) if isinstance(value, (str, Path)) else _short_value(value, name=name))
              for name, value in _fields(result).items() if name not in ("key", "status", "error")}
    sections = [_html.section("Fields", _html.key_values(fields), len(fields), expanded=True)]
    if _is_failure(result):
        sections.insert(0, _html.section("Error", _html.pre(_describe_error(result.error)), expanded=True))
    return _html.obj_repr(run_result_text(result), f"brainxr {type(result).__name__}", str(result.key), summary,
                          sections)


# ---------------------------------------------------------------- the synthetic cohort


def _layout(synthetic) -> str:
    parameters = synthetic.parameters or {}
    parts = [_plural(parameters.get("n_subjects", len({run.subject for run in synthetic.runs})), "subject")]
    if "n_sessions" in parameters:
        parts.append(_plural(parameters["n_sessions"], "session"))
    if "n_runs" in parameters:
        parts.append(_plural(parameters["n_runs"], "run"))
    tasks = sorted({run.task for run in synthetic.runs})
    return " x ".join(parts) + f", task {', '.join(tasks)}"


def synthetic_cohort_text(synthetic) -> str:
    networks = len(set(synthetic.region_networks))
    fields = [f.name for f in dataclasses.fields(synthetic)] + ["func", "confounds", "masks", "partial_correlation"]
    return (f"<brainxr SyntheticCohort {synthetic.root}: {_plural(len(synthetic.runs), 'run')} "
            f"({_layout(synthetic)}), {synthetic.n_volumes} volumes at TR {synthetic.t_r:g} s, "
            f"{synthetic.resolution:g} mm; {len(synthetic.region_names)} regions in {networks} networks>\n"
            f"  fields: {', '.join(fields)}")


def synthetic_cohort_html(synthetic) -> str:
    """Layout, the runs and their files, the atlases, the ground truth (with its picture) and the parameters."""
    root = Path(synthetic.root)

    def relative(path) -> str:
        try:
            return str(Path(path).relative_to(root))
        except ValueError:
            return str(path)

    runs = pd.DataFrame([{"run": run.name, "sub": run.subject, "ses": run.session, "task": run.task,
                          "bids run": run.run, "dummy scans": run.n_dummy_scans, "bold": relative(run.bold)}
                         for run in synthetic.runs]).set_index("run")
    runs = runs.dropna(axis=1, how="all")
    files = {name: escape(relative(getattr(synthetic, name)))
             for name in ("atlas_labels_img", "atlas_labels_tsv", "atlas_maps_img", "atlas_maps_tsv",
                          "atlas_coords_tsv", "template_mask", "template_t1w", "precision_tsv", "covariance_tsv")
             if getattr(synthetic, name, None) is not None}
    networks = Counter(synthetic.region_networks)
    truth = (_html.key_values({"regions": str(len(synthetic.region_names)),
                               "networks": escape(", ".join(f"{name} ({n})" for name, n in networks.items()))})
             + "<div class='bxr-muted'>true partial correlations (synthetic.partial_correlation)</div>"
             + _thumbnail(_matrix_image(synthetic.partial_correlation), "ground-truth partial correlations",
                          width=240))
    summary = escape(f"{len(synthetic.runs)} runs ({_layout(synthetic)}) · {synthetic.n_volumes} volumes at "
                     f"TR {synthetic.t_r:g} s · {synthetic.resolution:g} mm")
    sections = [
        _html.section("Runs", _html.table(runs), len(runs), inline=escape("synthetic.func, .confounds, .masks: "
                                                                           "one path per run"),
                      expanded=len(runs) <= EXPAND_UP_TO),
        _html.section("Atlases, template and truth files", _html.key_values(files), len(files)),
        _html.section("Ground truth", truth, inline=escape(f"{len(synthetic.region_names)} regions in "
                                                          f"{len(networks)} networks")),
        _html.section("Parameters", _html.key_values({k: escape(str(v)) for k, v in synthetic.parameters.items()}),
                      len(synthetic.parameters)),
    ]
    return _html.obj_repr(synthetic_cohort_text(synthetic), "brainxr.datasets.SyntheticCohort", str(root), summary,
                          sections)


def synthetic_run_text(run) -> str:
    return f"<brainxr SyntheticRun {run.name}: {run.bold}, {run.n_dummy_scans} dummy scans>"


def synthetic_run_html(run) -> str:
    files = {name: escape(str(getattr(run, name))) for name in
             ("bold", "bold_json", "mask", "confounds", "confounds_json", "true_timeseries", "aroma_bold")
             if getattr(run, name, None) is not None}
    truth = {"region_signals": escape(_short_value(run.region_signals)), "motion": escape(_short_value(run.motion)),
             "n_dummy_scans": str(run.n_dummy_scans)}
    return _html.obj_repr(synthetic_run_text(run), "brainxr.datasets.SyntheticRun", run.name,
                          escape(", ".join(f"{k}-{v}" for k, v in run.entities.items())),
                          [_html.section("Files", _html.key_values(files), len(files), expanded=True),
                           _html.section("Ground truth", _html.key_values(truth), len(truth), expanded=True)])


# ---------------------------------------------------------------- the .brain accessor


def _accessor_members(accessor) -> tuple[dict, dict]:
    """What an accessor offers, read from it: ``{property: value or error}``, ``{method: callable}``."""
    properties, methods = {}, {}
    for name in dir(accessor):
        if name.startswith("_"):
            continue
        attribute = inspect.getattr_static(accessor, name, None)
        if isinstance(attribute, property):
            try:
                properties[name] = attribute.fget(accessor)
            except Exception as error:  # noqa: BLE001 - shown as the reason it is unavailable
                properties[name] = error
        else:
            member = getattr(accessor, name, None)
            if callable(member):
                methods[name] = member
    return properties, methods


def _signature(method) -> str:
    try:
        parameters = list(inspect.signature(method).parameters.values())
    except (TypeError, ValueError):
        return "(...)"
    if [p.kind for p in parameters] == [inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD]:
        return "(...)"
    names = [p.name if p.default is inspect.Parameter.empty else f"{p.name}=" for p in parameters
             if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
    shown = names[:4] + (["..."] if len(names) > 4 else [])
    return f"({', '.join(shown)})"


def _doc_line(member) -> str:
    return _first_line(inspect.getdoc(member) or "", 110)


def _dataarray_summary(accessor) -> str:
    data = getattr(accessor, "_obj", None)
    if data is None:
        data = getattr(accessor, "_da", None)
    if data is None:
        return ""
    dims = ", ".join(f"{dim}: {size}" for dim, size in data.sizes.items())
    name = f" {data.name!r}" if data.name is not None else ""
    return f"DataArray{name} ({dims})"


def accessor_text(accessor) -> str:
    properties, methods = _accessor_members(accessor)
    return (f"<brainxr .brain accessor of a {_dataarray_summary(accessor)}>\n"
            f"  properties: {', '.join(properties)}\n"
            f"  methods: {', '.join(methods)}")


def accessor_html(accessor) -> str:
    """The accessor's properties (with their values here) and methods (with their first doc line)."""
    properties, methods = _accessor_members(accessor)
    shown = {}
    for name, value in properties.items():
        if isinstance(value, Exception):
            shown[name] = f"<span class='bxr-muted'>not available: {escape(_first_line(str(value)))}</span>"
        elif isinstance(value, np.ndarray) and value.ndim == 2:
            shown[name] = _html.pre(np.array2string(np.round(value, 4), separator=" "))
        else:
            shown[name] = escape(_short_value(value))
    listed = {f"{name}{_signature(method)}": escape(_doc_line(method)) for name, method in methods.items()}
    sections = [_html.section("Properties", _html.key_values(shown), len(shown), expanded=True),
                _html.section("Methods", _html.key_values(listed), len(listed), expanded=True)]
    return _html.obj_repr(accessor_text(accessor), "brainxr .brain accessor", "",
                          escape(f"of a {_dataarray_summary(accessor)}"), sections)


# ---------------------------------------------------------------- pages


def document_text(document) -> str:
    """An HTML page object: its type, title and size, and how to use it."""
    import re

    title = re.search(r"<title>(.*?)</title>", document.html[:20000], re.S)
    title = f" {title.group(1).strip()!r}" if title and title.group(1).strip() else ""
    size = len(document.html.encode("utf-8"))
    return (f"<brainxr {type(document).__name__}{title}: a self-contained HTML page of {size / 2**20:.1f} MB; "
            ".save_as_html(path), .open_in_browser()>")


# ---------------------------------------------------------------- summaries (objects whose str() is their report)


MAX_SUMMARY_LINES = 8


def summary_text(obj) -> str:
    """A report object's ``str()``, cut after a few lines (its lists can hold thousands of runs)."""
    lines = str(obj).splitlines() or [type(obj).__name__]
    shown = [f"<brainxr {type(obj).__name__}: {lines[0]}>"] + lines[1:MAX_SUMMARY_LINES]
    if len(lines) > MAX_SUMMARY_LINES:
        shown.append(f"  ... {len(lines) - MAX_SUMMARY_LINES} more lines (print() shows them all)")
    return "\n".join(shown)


def _item_text(item) -> str:
    if isinstance(item, BaseException):
        return _describe_error(item)
    if isinstance(item, (list, tuple)) and item and all(isinstance(i, BaseException) for i in item):
        return "; ".join(_describe_error(i) for i in item)
    return _short_value(item, 200)


def _items_html(value) -> str:
    if isinstance(value, dict):
        return _html.key_values({str(key): escape(_first_line(_item_text(item), 300)) for key, item in value.items()})
    rows = [escape(_first_line(_item_text(item), 300)) for item in value]
    if len(rows) > 40:
        rows = rows[:20] + [f"<span class='bxr-muted'>... {len(rows) - 40} more ...</span>"] + rows[-20:]
    return "<br>".join(rows)


def summary_html(obj) -> str:
    """A report object: its ``str()`` report, then each of its lists and mappings as a collapsible section."""
    lines = str(obj).splitlines() or [""]
    sections = []
    if len(lines) > 1:
        sections.append(_html.section("Report", _html.pre("\n".join(lines[1:])), len(lines) - 1,
                                      expanded=len(lines) <= 30))
    for name, value in _fields(obj).items():
        if isinstance(value, (list, tuple, dict)):
            sections.append(_html.section(name.replace("_", " ").capitalize(), _items_html(value), len(value)))
    scalars = {name: escape(_short_value(value, name=name)) for name, value in _fields(obj).items()
               if not isinstance(value, (list, tuple, dict))}
    if scalars:
        sections.append(_html.section("Details", _html.key_values(scalars), len(scalars)))
    return _html.obj_repr(summary_text(obj), f"brainxr {type(obj).__name__}", "", escape(lines[0]), sections)


def templateflow_atlas_text(atlas) -> str:
    desc = f" {atlas.desc}" if atlas.desc else ""
    return (f"<brainxr TemplateFlowAtlas {atlas.name}{desc} ({atlas.kind}) in {atlas.template} res-{atlas.resolution}: "
            f"{len(atlas.regions)} regions; image {Path(atlas.image).name}>")


def templateflow_atlas_html(atlas) -> str:
    details = {"template": escape(str(atlas.template)), "resolution": escape(str(atlas.resolution)),
               "kind": escape("labels image (dseg)" if atlas.kind == "dseg" else "probabilistic maps (probseg)"),
               "image": escape(str(atlas.image)), "table": escape(str(atlas.table))}
    sections = [_html.section("Files", _html.key_values(details), len(details), expanded=True),
                _html.section("Regions", _html.table(atlas.regions), len(atlas.regions),
                              inline=escape(_html.short_list(atlas.regions.get("name", atlas.regions.index), 4)))]
    return _html.obj_repr(templateflow_atlas_text(atlas), "brainxr TemplateFlowAtlas", atlas.label,
                          escape(f"{len(atlas.regions)} regions in {atlas.template} at res-{atlas.resolution}"),
                          sections)
