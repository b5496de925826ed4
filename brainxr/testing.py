"""Helpers for tests: assert that lazy code stays lazy.

Modelled on xarray's ``raise_if_dask_computes``: a dask scheduler that counts
how many times it is asked to compute and fails past a limit.
"""

from __future__ import annotations

import contextlib

import dask


class CountingScheduler:
    """A dask scheduler that counts its ``compute`` calls.

    Parameters
    ----------
    max_computes : int
        Number of computes allowed before a ``RuntimeError`` is raised.
    """

    def __init__(self, max_computes: int = 0):
        self.total_computes = 0
        self.max_computes = max_computes

    def __call__(self, dsk, keys, **kwargs):
        self.total_computes += 1
        if self.total_computes > self.max_computes:
            raise RuntimeError(
                f"Too many dask computations were scheduled: {self.total_computes} "
                f"(at most {self.max_computes} allowed)"
            )
        return dask.get(dsk, keys, **kwargs)


@contextlib.contextmanager
def raise_if_dask_computes(max_computes: int = 0):
    """Fail if more than ``max_computes`` dask computations happen inside the block.

    Yields the :class:`CountingScheduler` so a test can read ``total_computes``.
    """
    scheduler = CountingScheduler(max_computes)
    with dask.config.set(scheduler=scheduler):
        yield scheduler
