"""``view``: the ``__repr__`` / ``_repr_html_`` methods of brainxr's public objects.

A class declares ``__repr__ = view("atlas_text")``; the function it names lives
in :mod:`brainxr._repr`, imported on first use (it imports pandas, which
``import brainxr`` does not pay for). This module is at the bottom: it imports
nothing from brainxr but, on first use, :mod:`brainxr._repr`, whose HTML is
built from :mod:`brainxr._html`.
"""

from __future__ import annotations

from importlib import import_module


class view:  # noqa: N801 - used as a method: __repr__ = view("cohort_text")
    """A ``__repr__`` or ``_repr_html_`` method that calls ``brainxr._repr.<name>(self)``.

    The views live in :mod:`brainxr._repr`, imported on first use (it imports
    pandas, which ``import brainxr`` does not pay for). A class declares
    ``__repr__ = view("atlas_text")`` and ``_repr_html_ = view("atlas_html")``.
    """

    def __init__(self, name: str):
        self.name = name

    def __set_name__(self, owner, attribute):
        self.__doc__ = f"The object's {'HTML view' if attribute == '_repr_html_' else 'short text repr'}."

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        function = getattr(import_module("brainxr._repr"), self.name)
        return lambda: function(obj)
