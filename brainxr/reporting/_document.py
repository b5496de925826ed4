"""A self-contained HTML page that saves, opens in a browser and shows in Jupyter.

The base of interactive views (``view_connectome``) and reports: everything
the page needs (scripts, styles, images) is inside the HTML, so the saved
file opens offline.
"""

from __future__ import annotations

import tempfile
import threading
import time
import webbrowser
from html import escape
from pathlib import Path

from brainxr._views import view

WIDTH_DEFAULT = 800
HEIGHT_DEFAULT = 600


class HTMLDocument:
    """An HTML page, shown inline by Jupyter (in an iframe) or opened in a browser.

    Parameters
    ----------
    html : str
        The whole page (``<!DOCTYPE html>...``).
    width, height : int
        Size of the iframe in notebooks.

    Notes
    -----
    ``str(document)`` is the page; ``save_as_html(path)`` writes it.
    """

    def __init__(self, html: str, width: int = WIDTH_DEFAULT, height: int = HEIGHT_DEFAULT):
        self._html = html
        self.width = width
        self.height = height

    @property
    def html(self) -> str:
        """The whole page."""
        return self._html

    @property
    def width(self) -> int:
        return self._width

    @width.setter
    def width(self, value):
        self._width = _positive_int(value, "width")

    @property
    def height(self) -> int:
        return self._height

    @height.setter
    def height(self, value):
        self._height = _positive_int(value, "height")

    def resize(self, width: int, height: int) -> HTMLDocument:
        """Set the iframe size; returns the document.

        Parameters
        ----------
        width, height : int
            Size in pixels.
        """
        self.width, self.height = width, height
        return self

    def get_standalone(self) -> str:
        """The page itself."""
        return self.html

    def get_iframe(self, width: int | None = None, height: int | None = None) -> str:
        """The page inside an ``<iframe srcdoc=...>``, to embed in another page or a notebook.

        Parameters
        ----------
        width, height : int, optional
            Size in pixels; default the document's.
        """
        width = self.width if width is None else width
        height = self.height if height is None else height
        return (
            f'<iframe srcdoc="{escape(self.html, quote=True)}" width="{width}" height="{height}" '
            'frameBorder="0"></iframe>'
        )

    def _repr_html_(self) -> str:
        return self.get_iframe()

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {"text/html": self.get_iframe()}

    def __str__(self) -> str:
        return self.html

    __repr__ = view("document_text")

    def save_as_html(self, file_name) -> Path:
        """Write the page to ``file_name`` (UTF-8); it opens offline. Returns the path.

        Parameters
        ----------
        file_name : str or os.PathLike
            The file (its folder is created if needed).
        """
        path = Path(file_name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.html, encoding="utf-8")
        return path

    def open_in_browser(self, file_name=None, temp_file_lifetime: float = 30.0) -> Path:
        """Open the page in the default web browser.

        Parameters
        ----------
        file_name : str or Path, optional
            Where to save the page; default a temporary file, deleted after
            ``temp_file_lifetime`` seconds.
        temp_file_lifetime : float

        Returns
        -------
        Path
            The file that was opened.
        """
        if file_name is None:
            handle = tempfile.NamedTemporaryFile("w", suffix=".html", prefix="brainxr_", delete=False, encoding="utf-8")
            with handle:
                handle.write(self.html)
            path = Path(handle.name)
            threading.Thread(target=_remove_later, args=(path, temp_file_lifetime), daemon=True).start()
        else:
            path = self.save_as_html(file_name)
        webbrowser.open(path.resolve().as_uri())
        return path


def _remove_later(path: Path, delay: float) -> None:
    time.sleep(delay)
    path.unlink(missing_ok=True)


def _positive_int(value, name: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: expected a positive integer (pixels), got {value!r}") from error
    if number <= 0:
        raise ValueError(f"{name}: expected a positive integer (pixels), got {value!r}")
    return number
