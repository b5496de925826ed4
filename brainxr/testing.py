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

    Parameters
    ----------
    max_computes : int
        Computations allowed.
    """
    scheduler = CountingScheduler(max_computes)
    with dask.config.set(scheduler=scheduler):
        yield scheduler


def assert_lazy_equals_eager(lazy, eager, *, atol: float = 0.0) -> None:
    """Assert that a dask-backed result, computed, is the numpy-backed one.

    Coordinates, attrs and names are compared with
    ``xarray.testing.assert_identical``; values too, exactly, unless ``atol``
    is given (where the order of a reduction, or a BLAS product over blocks of
    another width, may change the last bits): then within ``atol``.

    Parameters
    ----------
    lazy : xarray.DataArray
        The result of the dask path, not computed yet.
    eager : xarray.DataArray
        The result of the numpy path.
    atol : float, default=0.0
        Absolute tolerance on the values (0: identical values).
    """
    import xarray as xr

    assert lazy.chunks is not None, "the lazy path computed: its result holds no dask array"
    lazy = lazy.compute()
    if atol:
        xr.testing.assert_allclose(lazy, eager, atol=atol, rtol=0)
        lazy = lazy.copy(data=eager.values)
    xr.testing.assert_identical(lazy, eager)


def replicate_cohort(source, target, n_runs: int, *, arrays: bool = True, vary_confounds: float = 1e-3) -> list:
    """A cohort store of ``n_runs`` runs made cheaply from the runs of ``source``.

    Run ``i`` copies run ``i % n_source`` of ``source`` under the subject
    ``sub-<i:06d>``: its array files are hard links (no data is copied), its
    attributes name the new subject, and its confounds are rewritten with
    every regressor scaled by ``1 + vary_confounds * noise`` (noise drawn
    from ``numpy.random.default_rng(i)``), so that no two runs are the same.
    Outlier indicator and cosine columns are kept as they are. For scale
    tests and benchmarks (``benchmarks/scale.py``).

    Parameters
    ----------
    source, target : path
        A store written by :func:`brainxr.ingest`, and the new store (must
        not exist).
    n_runs : int
    arrays : bool, default=True
        False copies only the runs' metadata (a store for graph building:
        any attempt to read a run's arrays fails).
    vary_confounds : float

    Returns
    -------
    list of str
        The new run keys, in order.
    """
    import json
    import os
    import shutil
    from pathlib import Path

    import numpy as np
    import zarr

    from brainxr import store as cohort_store

    source, target = Path(source), Path(target)
    complete, _ = cohort_store.scan_runs(source)
    base = list(complete)
    if not base:
        raise ValueError(f"{source}: no complete run to replicate")
    target.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.name in (cohort_store.RUNS, cohort_store.INDEX, cohort_store.LOCKS):
            continue
        if entry.is_dir():
            shutil.copytree(entry, target / entry.name, copy_function=os.link)
        else:
            os.link(entry, target / entry.name)
    runs = target / cohort_store.RUNS
    runs.mkdir()
    confounds = {key: cohort_store.read_confounds(source, key)[0] for key in base} if arrays else {}
    keys, indexed = [], {}
    for index in range(n_runs):
        key_source = base[index % len(base)]
        attrs = dict(complete[key_source])
        entities = dict(attrs.get("entities", {}), sub=f"{index:06d}")
        key = "_".join([f"sub-{index:06d}"] + key_source.split("_")[1:])
        destination = runs / key
        if arrays:
            shutil.copytree(source / cohort_store.RUNS / key_source, destination, copy_function=os.link)
            os.remove(destination / "zarr.json")  # a new file, never the source's inode
        else:
            destination.mkdir()
        meta = json.loads((source / cohort_store.RUNS / key_source / "zarr.json").read_text())
        meta["attributes"] = indexed[key] = dict(attrs, entities=entities)
        (destination / "zarr.json").write_text(json.dumps(meta))
        if arrays and vary_confounds:
            table = confounds[key_source]
            fixed = [c for c in table.columns if "outlier" in c or c.startswith("cosine")]
            noise = np.random.default_rng(index).standard_normal(table.shape)
            noise[:, [table.columns.get_loc(c) for c in fixed]] = 0
            values = table.to_numpy(dtype=np.float64) * (1 + vary_confounds * noise)
            chunks = destination / "confounds" / "c"
            shutil.rmtree(chunks, ignore_errors=True)  # hard links: never write through them
            zarr.open_array(str(destination / "confounds"), mode="r+", zarr_format=3)[...] = values
        keys.append(key)
    cohort_store.update_index(target, add=indexed)
    return keys
