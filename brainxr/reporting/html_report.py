"""HTML reports: titled sections of text, tables and figures in one offline page."""

from __future__ import annotations

import base64
import io
from html import escape

import matplotlib.pyplot as plt
import pandas as pd

from brainxr.reporting._document import HTMLDocument

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 1.5em auto;
       max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; border-bottom: 2px solid #4a6fa5; padding-bottom: .3em; }
h2 { font-size: 1.25em; color: #2c4a75; margin-top: 1.6em; }
p.description { color: #444; }
table.brainxr-table { border-collapse: collapse; margin: .5em 0 1em; font-size: .9em; }
table.brainxr-table th, table.brainxr-table td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; }
table.brainxr-table th { background: #eef2f8; }
table.brainxr-table tr:nth-child(even) td { background: #fafafa; }
div.figure { margin: .5em 0 1em; }
div.figure svg, div.figure img { max-width: 100%; height: auto; }
p.caption { color: #555; font-size: .9em; }
ul.warnings { color: #8a4b00; }
div.summary span { display: inline-block; margin: 0 1.5em .3em 0; }
div.summary b { font-size: 1.2em; }
"""


def figure_to_svg(figure) -> str:
    """The figure as inline SVG markup (no XML prolog), closing it.

    Parameters
    ----------
    figure : matplotlib.figure.Figure or brainxr display
        The figure.
    """
    figure = getattr(figure, "figure", figure)
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", facecolor=figure.get_facecolor(), bbox_inches="tight")
    plt.close(figure)
    svg = buffer.getvalue()
    return svg[svg.index("<svg"):]


def figure_to_png_base64(figure, dpi: int = 100) -> str:
    """The figure as a base64 PNG ``<img>`` tag, closing it.

    Parameters
    ----------
    figure : matplotlib.figure.Figure or brainxr display
        The figure.
    dpi : int
        Resolution of the PNG.
    """
    figure = getattr(figure, "figure", figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, facecolor=figure.get_facecolor(), bbox_inches="tight")
    plt.close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}" alt="figure"/>'


def table_to_html(table, index: bool = False, float_format: str = "{:.4g}") -> str:
    """A DataFrame (or a mapping ``name -> value``) as an HTML table with escaped cells.

    Parameters
    ----------
    table : pandas.DataFrame or dict
        The table; a mapping becomes two columns, ``Parameter`` and ``Value``.
    index : bool
        Include the DataFrame's index.
    float_format : str
        Format of floating-point cells.
    """
    if isinstance(table, dict):
        table = pd.DataFrame({"Parameter": list(table), "Value": [_short_repr(v) for v in table.values()]})
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table: expected a pandas DataFrame or a dict, got {type(table).__name__}")
    formatters = {
        column: (lambda value, fmt=float_format: fmt.format(value) if pd.notna(value) else "n/a")
        for column in table.columns
        if pd.api.types.is_float_dtype(table[column])
    }
    return table.to_html(index=index, classes="brainxr-table", border=0, escape=True, formatters=formatters,
                         na_rep="n/a")


def _short_repr(value, limit: int = 300) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


class HTMLReport(HTMLDocument):
    """A report: a title, a description and sections, in one self-contained page.

    Parameters
    ----------
    title : str
    description : str, optional
        A paragraph under the title (plain text).
    width, height : int
        Size of the iframe in notebooks.

    Examples
    --------
    >>> report = HTMLReport("Run summary", "Quality of the runs.")
    >>> report = report.add_table("Runs", runs_dataframe).add_figure("Motion", figure)
    >>> report.save_as_html("report.html")  # doctest: +SKIP
    """

    def __init__(self, title: str, description: str | None = None, width: int = 900, height: int = 700):
        self.title = title
        self.description = description
        self._sections: list = []
        super().__init__("", width=width, height=height)

    @property
    def html(self) -> str:
        """The page, rendered from the sections."""
        parts = [f"<h1>{escape(self.title)}</h1>"]
        if self.description:
            parts.append(f'<p class="description">{escape(self.description)}</p>')
        for heading, content in self._sections:
            if heading:
                parts.append(f"<h2>{escape(heading)}</h2>")
            parts.append(content)
        body = "\n".join(parts)
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{escape(self.title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
            f"<body>\n{body}\n</body>\n</html>\n"
        )

    @property
    def sections(self) -> list:
        """Headings of the sections, in order."""
        return [heading for heading, _ in self._sections]

    def add_html(self, heading: str | None, content: str) -> HTMLReport:
        """Add a section of raw HTML (trusted markup). Returns the report.

        Parameters
        ----------
        heading : str or None
            The section's heading (None: no heading).
        content : str
            The HTML.
        """
        self._sections.append((heading, content))
        return self

    def add_text(self, heading: str | None, text: str) -> HTMLReport:
        """Add a paragraph of plain text (escaped). Returns the report.

        Parameters
        ----------
        heading : str or None
            The section's heading (None: no heading).
        text : str
            The text.
        """
        return self.add_html(heading, f"<p>{escape(text)}</p>")

    def add_table(self, heading: str | None, table, caption: str | None = None, index: bool = False) -> HTMLReport:
        """Add a table from a DataFrame or a ``{name: value}`` mapping. Returns the report.

        Parameters
        ----------
        heading : str or None
            The section's heading (None: no heading).
        table : pandas.DataFrame or dict
            The table (see :func:`table_to_html`).
        caption : str, optional
            A line under the table.
        index : bool
            Include the DataFrame's index.
        """
        content = table_to_html(table, index=index)
        if caption:
            content += f'<p class="caption">{escape(caption)}</p>'
        return self.add_html(heading, content)

    def add_figure(self, heading: str | None, figure, caption: str | None = None, image_format: str = "svg") -> HTMLReport:
        """Add a matplotlib figure (or brainxr display), embedded as SVG or base64 PNG, and close it.

        Parameters
        ----------
        heading : str or None
            The section's heading (None: no heading).
        figure : matplotlib.figure.Figure or brainxr display
            The figure.
        caption : str, optional
            A line under the figure.
        image_format : {"svg", "png"}
            How the figure is embedded.
        """
        if image_format not in ("svg", "png"):
            raise ValueError(f"image_format: expected 'svg' or 'png', got {image_format!r}")
        markup = figure_to_svg(figure) if image_format == "svg" else figure_to_png_base64(figure)
        content = f'<div class="figure">{markup}</div>'
        if caption:
            content += f'<p class="caption">{escape(caption)}</p>'
        return self.add_html(heading, content)

    def add_warnings(self, messages) -> HTMLReport:
        """Add a list of warnings (plain text), if any. Returns the report.

        Parameters
        ----------
        messages : iterable of str
            The warnings.
        """
        messages = list(messages)
        if messages:
            items = "".join(f"<li>{escape(str(message))}</li>" for message in messages)
            self.add_html("Warnings", f'<ul class="warnings">{items}</ul>')
        return self

    def add_summary(self, heading: str | None, values: dict) -> HTMLReport:
        """Add a line of key figures, ``{label: value}``. Returns the report.

        Parameters
        ----------
        heading : str or None
            The section's heading (None: no heading).
        values : dict
            Label -> value.
        """
        items = "".join(f"<span>{escape(str(label))}: <b>{escape(str(value))}</b></span>" for label, value in values.items())
        return self.add_html(heading, f'<div class="summary">{items}</div>')
