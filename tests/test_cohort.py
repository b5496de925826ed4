"""Opening a cohort store: selection, lazy runs, DataTree, scale."""

import json
import os
import time

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

import brainxr
from brainxr.testing import raise_if_dask_computes
from conftest import write_tiny_run


@pytest.fixture
def store(tmp_path):
    root = tmp_path / "derivatives"
    for n, (sub, task) in enumerate([("01", "rest"), ("01", "nback"), ("02", "rest"), ("03", "rest")]):
        write_tiny_run(root, sub, seed=n, task=task, n_volumes=20 + n)
    brainxr.ingest(root, tmp_path / "c.zarr", progress=False)
    return tmp_path / "c.zarr"


def test_select_runs_by_entities(store):
    cohort = brainxr.open_cohort(store)
    assert len(cohort) == 4
    assert list(cohort.sel(sub="01")) == ["sub-01_task-nback", "sub-01_task-rest"]
    assert list(cohort.sel(task="rest", sub=["02", "03"])) == ["sub-02_task-rest", "sub-03_task-rest"]
    table = cohort.runs
    assert list(table.columns[:2]) == ["sub", "task"]
    assert table.loc["sub-03_task-rest", "n_volumes"] == 23
    assert "sub: 3 (01, 02, 03)" in repr(cohort)
    with pytest.raises(KeyError, match="no complete run 'sub-09_task-rest'"):
        cohort["sub-09_task-rest"]


def test_selection_errors_name_what_matched_nothing(store):
    cohort = brainxr.open_cohort(store)
    # an entity the runs do not have: the known ones are listed (long BIDS names get a hint)
    with pytest.raises(ValueError, match=r"no entity 'subject'; their entities are \['sub', 'task'\]; did you mean 'sub'"):
        cohort.sel(subject="01")
    with pytest.raises(ValueError, match=r"no entity 'ses'"):
        cohort.sel(ses="1")
    # a value no run has: which one, and the values there are
    with pytest.raises(ValueError, match=r"sel\(task='Rest'\): no run has task 'Rest'; the values of task are \['nback', 'rest'\]"):
        cohort.sel(task="Rest")
    with pytest.raises(ValueError, match=r"no run has sub '99'"):
        cohort.sel(sub=["02", "99"])
    # values that exist but not together
    with pytest.raises(ValueError, match=r"sel\(sub='02', task='nback'\): each value exists, but no run has all of them"):
        cohort.sel(sub="02", task="nback")


def test_runs_are_lazy_and_labeled(store):
    cohort = brainxr.open_cohort(store)
    with raise_if_dask_computes():
        ds = cohort["sub-02_task-rest"]
        bold = cohort.bold("sub-02_task-rest")
        centred = bold - bold.mean("time")
    assert ds["bold"].dims == ("time", "voxel")
    assert set("ijkxyz") <= set(bold.coords)
    assert bold.brain.grid_shape == cohort.grid.shape
    np.testing.assert_array_equal(bold.brain.affine, cohort.grid.affine)
    assert centred.shape == (22, cohort.grid.n_voxels)
    # unmasking a run restores its volume
    volume = brainxr.unmask(bold)
    assert volume.shape == cohort.grid.shape + (22,)


def test_cohort_as_datatree(store):
    cohort = brainxr.open_cohort(store)
    tree = cohort.to_datatree()
    assert sorted(tree["runs"].children) == sorted(cohort)
    np.testing.assert_array_equal(tree["mask"].values, cohort.grid.mask)
    run = tree["runs/sub-01_task-rest"].to_dataset()
    assert run["bold"].dims == ("time", "voxel")
    # xarray's own zarr backend reads the store as well
    opened = xr.open_datatree(store, engine="zarr", chunks={}, consolidated=False)
    np.testing.assert_array_equal(
        opened["runs/sub-03_task-rest/bold"].values, cohort["sub-03_task-rest"]["bold"].values
    )


def test_opening_ten_thousand_runs_reads_the_index_not_each_run(store, monkeypatch):
    from brainxr import store as cohort_store
    from brainxr._storage import Location

    # 10,000 more complete runs in the index (their groups hold metadata only: reading any array would fail)
    meta = json.loads((store / "runs" / "sub-02_task-rest" / "zarr.json").read_text())
    added = {}
    for n in range(10_000):
        key = f"sub-{n:05d}_task-big"
        (store / "runs" / key).mkdir()
        attrs = dict(meta["attributes"], entities={"sub": f"{n:05d}", "task": "big"})
        (store / "runs" / key / "zarr.json").write_text(json.dumps(dict(meta, attributes=attrs)))
        added[key] = attrs
    cohort_store.update_index(store, add=added)

    read = []
    for name in ("read_bytes", "read_many"):
        real = getattr(Location, name)

        def spy(self, *args, _real=real, _name=name, **kwargs):
            read.append((_name, self.url, list(args[0]) if args else None))
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(Location, name, spy)
    zarr_keys = []
    real_get = zarr.storage.LocalStore.get

    async def spying_get(self, key, *args, **kwargs):
        zarr_keys.append(key)
        return await real_get(self, key, *args, **kwargs)

    monkeypatch.setattr(zarr.storage.LocalStore, "get", spying_get)
    real_read_local_file = cohort_store._read_local_file

    def spying_read_local_file(path, **kwargs):
        zarr_keys.append(os.path.relpath(path, store).replace(os.sep, "/"))
        return real_read_local_file(path, **kwargs)

    monkeypatch.setattr(cohort_store, "_read_local_file", spying_read_local_file)
    started = time.perf_counter()
    cohort = brainxr.open_cohort(store)
    seconds = time.perf_counter() - started
    assert len(cohort) == 10_004
    assert len(cohort.sel(task="big")) == 10_000
    # the root's zarr.json and the index, nothing per run
    assert sorted(url.rsplit("/", 1)[-1] for _, url, _ in read) == ["index.json.gz", "zarr.json"]
    assert sorted(zarr_keys) == ["mask/c/0/0/0", "mask/zarr.json"]  # the cohort mask, no run's data
    assert seconds < 10


def test_store_read_contract_equals_the_lazy_run(store):
    """runs_table / read_bold / read_valid / read_confounds: what cohort tasks read."""
    from brainxr import store as cohort_store
    from brainxr.errors import StoreDamageError

    cohort = brainxr.open_cohort(store)
    table = cohort_store.runs_table(store)
    pd.testing.assert_frame_equal(table, cohort.runs)
    key = table.index[0]
    run = cohort[key]
    np.testing.assert_array_equal(cohort_store.read_bold(store, key, slice(5, 50)), run["bold"].values[:, 5:50])
    np.testing.assert_array_equal(cohort_store.read_valid(store, key), run["valid"].values)
    confounds, metadata = cohort_store.read_confounds(store, key)
    pd.testing.assert_frame_equal(confounds, cohort.confounds(key), check_dtype=False)
    assert metadata == {"csf": {"Method": "Mean"}}
    with pytest.raises(StoreDamageError, match="run 'sub-99_task-rest', array 'bold'"):
        cohort_store.read_bold(store, "sub-99_task-rest")
