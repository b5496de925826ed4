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

__all__ = ["array_module", "is_dask_array", "is_finite_float_matrix"]


def is_dask_array(data) -> bool:
    """Whether ``data`` is a ``dask.array.Array`` (False, without importing dask, when dask.array is not imported)."""
    array_type = getattr(sys.modules.get("dask.array"), "Array", None)
    return array_type is not None and isinstance(data, array_type)


def array_module(data):
    """The array module of ``data``: ``dask.array`` for a dask array, ``numpy`` otherwise."""
    return sys.modules["dask.array"] if is_dask_array(data) else np


def is_finite_float_matrix(data, min_rows: int = 2, min_columns: int = 2) -> bool:
    """Whether ``data`` is a plain 2-D numpy float array, finite, of at least ``min_rows x min_columns``:
    an input the estimators take as it is, without scikit-learn's validation (imported for anything else)."""
    return (
        type(data) is np.ndarray and data.ndim == 2 and data.dtype.kind == "f"
        and data.shape[0] >= min_rows and data.shape[1] >= min_columns and bool(np.isfinite(data).all())
    )
