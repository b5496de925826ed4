"""Self-contained HTML reports: masker reports and the cohort summary.

Every report is one HTML file with its figures (SVG or base64 PNG) and
styles inside, so it opens offline; in Jupyter it shows inline.
"""

from brainxr.reporting._document import HTMLDocument
from brainxr.reporting.cohort_report import cohort_report, runs_summary
from brainxr.reporting.html_report import HTMLReport, figure_to_png_base64, figure_to_svg, table_to_html
from brainxr.reporting.masker_report import build_masker_report, regions_figure, regions_summary_table

__all__ = [
    "HTMLDocument",
    "HTMLReport",
    "build_masker_report",
    "cohort_report",
    "figure_to_png_base64",
    "figure_to_svg",
    "regions_figure",
    "regions_summary_table",
    "runs_summary",
    "table_to_html",
]
