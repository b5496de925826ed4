"""Dask arrays told apart from numpy ones without importing dask.

An object can only be a dask array once ``dask.array`` has been imported, so
a module asks here rather than importing ``dask.array`` itself: a script
that reads its images eagerly (a masker on a small run) never pays dask's
import (~0.3 s of a fresh process), and dask is imported where a lazy array
is built. Part of the bottom layer: imports nothing from brainxr.
"""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["array_module", "is_dask_array"]


def is_dask_array(data) -> bool:
    """Whether ``data`` is a ``dask.array.Array`` (False, without importing dask, when dask.array is not imported)."""
    array_type = getattr(sys.modules.get("dask.array"), "Array", None)
    return array_type is not None and isinstance(data, array_type)


def array_module(data):
    """The array module of ``data``: ``dask.array`` for a dask array, ``numpy`` otherwise."""
    return sys.modules["dask.array"] if is_dask_array(data) else np
