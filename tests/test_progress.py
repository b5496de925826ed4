"""brainxr.progress: bars over local and distributed computations, and the active client by default."""

import re
import threading
import time

import dask
import dask.array as da
import numpy as np
import pytest

import brainxr
from brainxr import progress


def _final_count(text: str, desc: str) -> tuple[int, int]:
    """``(done, total)`` of the last state of a tqdm text bar named ``desc``."""
    states = re.findall(rf"{desc}: +\d+%\|[^|]*\| (\d+)/(\d+)", text)
    assert states, text
    return tuple(int(n) for n in states[-1])


@pytest.fixture(autouse=True)
def auto_bar_registered():
    """Each test starts with the automatic bar registered (other tests' threads may have lost it: dask's limit)."""
    progress._keep_auto_bar()


@pytest.fixture
def no_auto_delay():
    previous = progress.set_options(delay=0)
    yield
    progress.set_options(**previous)


@pytest.fixture
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0",
                                  silence_logs=50) as local, distributed.Client(local) as client:
        yield client
        time.sleep(0.3)  # lets distributed's progress feed notice its closed comm before the cluster stops


def test_compute_counts_every_task_and_returns_dask_values(capsys):
    x = da.random.default_rng(0).normal(size=(60, 40), chunks=(10, 20))
    expected = dask.compute(x.sum(), x.mean(axis=0))
    tasks = len(dask.optimize(x.sum(), x.mean(axis=0))[0].__dask_graph__()) + 1
    computed = progress.compute(x.sum(), x.mean(axis=0), desc="stats")
    np.testing.assert_allclose(computed[0], expected[0])
    np.testing.assert_allclose(computed[1], expected[1])
    done, total = _final_count(capsys.readouterr().err, "stats")
    assert done == total > tasks / 2  # the bar counted the optimized graph's tasks, to the end


def test_compute_of_xarray_objects_keeps_labels(capsys):
    import xarray as xr

    data = xr.DataArray(da.ones((4, 6), chunks=2), dims=("run", "region"), coords={"run": list("abcd")}, name="s")
    (computed,) = progress.compute(data.mean("region"), desc="mean")
    xr.testing.assert_identical(computed, data.mean("region").compute())
    assert "mean: 100%" in capsys.readouterr().err


def test_progress_off_shows_nothing(capsys, monkeypatch):
    x = da.ones(10, chunks=2).sum()
    assert progress.compute(x, progress=False) == (10,)
    monkeypatch.setenv("BRAINXR_PROGRESS", "0")
    assert progress.compute(x) == (10,)
    assert list(progress.as_completed([dask.delayed(int)(3)])) == [3]
    assert capsys.readouterr().err == ""


def test_long_computations_show_a_bar_by_themselves(capsys, no_auto_delay):
    x = da.ones((20, 20), chunks=5).sum()
    assert x.compute() == 400
    assert "compute: 100%" in capsys.readouterr().err
    progress.set_options(delay=30)  # a quick computation shows no bar
    assert x.compute() == 400
    assert capsys.readouterr().err == ""
    progress.set_options(delay=0, auto=False)
    try:
        assert x.compute() == 400
        assert capsys.readouterr().err == ""
    finally:
        progress.set_options(auto=True)


def test_explicit_bar_is_not_doubled_and_other_threads_show_none(capsys, no_auto_delay):
    x = da.ones((20, 20), chunks=5).sum()
    progress.compute(x, desc="mine")
    err = capsys.readouterr().err
    assert "mine: 100%" in err and "compute:" not in err
    thread = threading.Thread(target=x.compute)
    thread.start()
    thread.join()
    assert capsys.readouterr().err == ""


def test_as_completed_on_threads_runs_n_workers_at_a_time(capsys):
    lock, running, peak = threading.Lock(), [0], [0]

    def work(i):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return i * 10

    tasks = [dask.delayed(work, pure=False)(i) for i in range(8)]
    done = progress.as_completed(tasks, desc="runs", unit="run", n_workers=3)
    results = []
    for result in done:
        results.append(result)
        done.set_postfix(last=result)
    assert sorted(results) == [i * 10 for i in range(8)]
    assert peak[0] == 3
    assert _final_count(capsys.readouterr().err, "runs") == (8, 8)


def test_as_completed_left_early_cancels_tasks_not_started():
    started = []

    def work(i):
        started.append(i)
        time.sleep(0.05)
        return i

    tasks = [dask.delayed(work, pure=False)(i) for i in range(20)]
    for _ in progress.as_completed(tasks, n_workers=2, progress=False):
        break
    time.sleep(0.2)
    assert len(started) <= 4


def test_as_completed_reraises_a_task_error():
    def fail(i):
        raise RuntimeError(f"run {i} broke")

    with pytest.raises(RuntimeError, match="run 1 broke"):
        list(progress.as_completed([dask.delayed(fail)(1)], progress=False))
    with pytest.raises(ValueError, match="n_workers"):
        progress.as_completed([], n_workers=0)


def test_active_client_is_used_by_default(cluster, capsys):
    from distributed import get_worker

    def where(_):
        return get_worker().address

    assert progress.active_client() is cluster
    assert progress.active_client(False) is None
    worker = next(iter(cluster.scheduler_info()["workers"]))
    assert progress.compute(dask.delayed(where)(1), desc="where") == (worker,)
    captured = capsys.readouterr()
    assert f"dask dashboard: {cluster.dashboard_link}" in captured.err
    assert "100% Completed" in captured.out  # distributed's own progress bar
    assert list(progress.as_completed([dask.delayed(where)(i) for i in range(3)], unit="run")) == [worker] * 3
    assert "dask dashboard" in capsys.readouterr().err
    with pytest.raises(ValueError):  # client=False: local threads, where no worker exists
        progress.compute(dask.delayed(where)(1), client=False, progress=False)


def test_ingest_uses_the_active_client(cluster, tiny_derivatives, tmp_path):
    from distributed import get_task_stream

    with get_task_stream(cluster) as stream:
        report = brainxr.ingest(tiny_derivatives, tmp_path / "c.zarr", progress=False)
    assert len(report.ingested) == 3
    assert sorted(task["key"] for task in stream.data if str(task["key"]).startswith("ingest-")) == [
        f"ingest-sub-0{n}_task-rest" for n in (1, 2, 3)]
    with get_task_stream(cluster) as stream:
        report = brainxr.ingest(tiny_derivatives, tmp_path / "d.zarr", progress=False, client=False)
    assert len(report.ingested) == 3 and [task["key"] for task in stream.data] == []


def test_ingest_bar_counts_runs(tiny_derivatives, tmp_path, capsys):
    brainxr.ingest(tiny_derivatives, tmp_path / "c.zarr", n_workers=2)
    assert _final_count(capsys.readouterr().err, "ingest") == (3, 3)


def test_cohort_writes_show_their_progress(tmp_path, capsys):
    import xarray as xr

    from brainxr.connectome import connectivity, write_connectomes, write_relmats

    rng = np.random.default_rng(0)
    signals = xr.DataArray(rng.standard_normal((5, 30, 4)), dims=("run", "time", "region"),
                           coords={"run": [f"sub-{n:02d}_task-rest" for n in range(5)],
                                   "region": [f"r{n}" for n in range(4)]}).chunk(run=2)
    correlations = connectivity(signals, "correlation", cov_estimator="empirical")
    write_connectomes(correlations, tmp_path / "c.zarr", "correlation")
    done, total = _final_count(capsys.readouterr().err, "write correlation")
    assert done == total > 0
    write_relmats(correlations, tmp_path / "bids")
    assert _final_count(capsys.readouterr().err, "write relmats") == (5, 5)
    write_relmats(correlations, tmp_path / "quiet", progress=False)
    write_connectomes(correlations, tmp_path / "c.zarr", "again", progress=False)
    assert capsys.readouterr().err == ""


def test_as_completed_threads_keep_the_automatic_bar(capsys, no_auto_delay):
    def work(i):
        time.sleep(0.01)
        return i

    for _ in range(3):
        assert sorted(progress.as_completed([dask.delayed(work, pure=False)(i) for i in range(8)], progress=False,
                                            n_workers=4)) == list(range(8))
    assert da.ones((20, 20), chunks=5).sum().compute() == 400
    assert "compute: 100%" in capsys.readouterr().err


def test_ingest_on_an_in_process_cluster_keeps_the_automatic_bar(cluster, tiny_derivatives, tmp_path, capsys,
                                                                 no_auto_delay):
    from dask.callbacks import Callback

    Callback.active.discard(progress._AUTO_BAR._callback)  # as concurrent local computations may leave it
    brainxr.ingest(tiny_derivatives, tmp_path / "c.zarr", progress=False)
    assert progress._AUTO_BAR._callback in Callback.active
    assert da.ones((20, 20), chunks=5).sum().compute(scheduler="threads") == 400
    assert "compute: 100%" in capsys.readouterr().err


def test_quiet_command_called_from_python_leaves_bars_and_warnings_as_they_were(tmp_path, capsys, no_auto_delay):
    """``brainxr ... --quiet`` through cli.main() (a test, a notebook) turns bars and warnings off for itself only."""
    import logging
    import warnings

    from brainxr import cli

    handlers = list(logging.getLogger("brainxr").handlers)
    filters = list(warnings.filters)
    assert cli.main(["verify", str(tmp_path / "missing.zarr"), "--quiet"]) != 0  # fails: no such store
    assert progress.set_options() == {"auto": True, "delay": 0.0}
    assert warnings.filters == filters
    assert logging.getLogger("brainxr").handlers == handlers
    capsys.readouterr()
    assert da.ones((20, 20), chunks=5).sum().compute() == 400
    assert "compute: 100%" in capsys.readouterr().err
