"""Self-contained HTML reports: masker reports and the cohort summary.

Every report is one HTML file with its figures (SVG or base64 PNG) and
styles inside, so it opens offline; in Jupyter it shows inline.

The names below are imported on first use: the reports need matplotlib
(0.4-0.8 s to import), which ``brainxr run --no-reports`` and the QC
numbers of :mod:`brainxr.reporting.qc` do not.
"""

from importlib import import_module

# public name -> module that defines it
_NAMES = {
    "HTMLDocument": "brainxr.reporting._document",
    "cohort_report": "brainxr.reporting.cohort_summary",
    "runs_summary": "brainxr.reporting.cohort_summary",
    "HTMLReport": "brainxr.reporting.html_report",
    "figure_to_png_base64": "brainxr.reporting.html_report",
    "figure_to_svg": "brainxr.reporting.html_report",
    "table_to_html": "brainxr.reporting.html_report",
    "build_masker_report": "brainxr.reporting.masker_report",
    "regions_figure": "brainxr.reporting.masker_report",
    "regions_summary_table": "brainxr.reporting.masker_report",
}

__all__ = sorted(_NAMES)


def __getattr__(name):
    if name in _NAMES:
        return getattr(import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'brainxr.reporting' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_NAMES))
