"""Group reductions over runs: mean connectome, geometric mean, tangent space."""

import warnings

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from nilearn.connectome import ConnectivityMeasure as NilearnConnectivityMeasure
from nilearn.connectome.connectivity_matrices import _geometric_mean

from brainxr.connectome import (
    NotPositiveDefiniteError,
    connectivity,
    geometric_mean,
    mean_connectome,
    tangent_space,
)
from brainxr.testing import assert_lazy_equals_eager, raise_if_dask_computes

TOL = 1e-6


def _signals(n_runs=8, n_samples=40, n_regions=5, seed=0):
    rng = np.random.default_rng(seed)
    factor = rng.standard_normal((n_regions, n_regions))
    covariance = np.linalg.inv(factor @ factor.T + n_regions * np.eye(n_regions))
    values = rng.multivariate_normal(np.zeros(n_regions), covariance, size=(n_runs, n_samples))
    return xr.DataArray(
        values,
        dims=("run", "time", "region"),
        coords={
            "run": [f"sub-{index:02d}" for index in range(n_runs)],
            "region": [f"r{index}" for index in range(n_regions)],
        },
    )


def _covariances(n_runs=8, chunk=None):
    covariances = connectivity(_signals(n_runs), "covariance")
    return covariances if chunk is None else covariances.chunk(run=chunk)


def _nilearn_measure(kind, signals):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        measure = NilearnConnectivityMeasure(kind=kind)
        return measure, measure.fit_transform(list(signals.values))


def test_mean_connectome_equals_nilearn_mean_and_is_a_lazy_tree_reduction():
    signals = _signals()
    measure, _ = _nilearn_measure("correlation", signals)
    correlations = connectivity(signals.chunk(run=1), "correlation")
    with raise_if_dask_computes():
        lazy_mean = mean_connectome(correlations, fisher_z=False, split_every=2)
    assert lazy_mean.dims == ("region", "region_") and lazy_mean.attrs["n_runs"] == 8
    # 8 run chunks combined two at a time: two levels of partial combines before
    # the final aggregate (a flat reduction would have none)
    layers = list(lazy_mean.data.dask.layers)
    assert sum(name.startswith("mean_combine-partial") for name in layers) == 2
    np.testing.assert_allclose(lazy_mean.values, measure.mean_, rtol=0, atol=TOL)
    eager_mean = mean_connectome(correlations.compute(), fisher_z=False)
    np.testing.assert_allclose(eager_mean.values, lazy_mean.values, rtol=0, atol=1e-14)


def test_mean_of_fisher_z_correlations():
    correlations = connectivity(_signals(), "correlation", cov_estimator="empirical")
    values = correlations.values
    expected_z = np.arctanh(np.clip(values, -1 + 1e-16, 1 - 1e-16)).mean(axis=0)
    mean_z = mean_connectome(correlations.chunk(run=3), back_transform=False)
    off_diagonal = ~np.eye(5, dtype=bool)
    np.testing.assert_allclose(mean_z.values[off_diagonal], expected_z[off_diagonal], rtol=1e-12)
    assert np.all(np.diagonal(mean_z.values) > 18)
    back = mean_connectome(correlations)  # correlations: Fisher z, back to r by default
    assert back.attrs["reduction"] == "mean over run of the tanh of the mean fisher z"
    np.testing.assert_allclose(back.values, np.tanh(mean_z.values), rtol=1e-12)
    assert np.all(np.diagonal(back.values) == 1.0)
    with pytest.raises(ValueError, match="back_transform=True needs fisher_z=True"):
        mean_connectome(correlations, fisher_z=False, back_transform=True)
    # covariances are averaged as they are
    covariances = connectivity(_signals(), "covariance")
    np.testing.assert_allclose(
        mean_connectome(covariances).values, covariances.values.mean(axis=0), rtol=1e-12
    )


def test_mean_skips_regions_missing_in_some_runs():
    correlations = connectivity(_signals(n_runs=4), "correlation").compute()
    values = correlations.values.copy()
    values[1, 2, :] = values[1, :, 2] = np.nan
    with_gap = correlations.copy(data=values)
    mean = mean_connectome(with_gap.chunk(run=2), fisher_z=False).values
    np.testing.assert_allclose(mean[2, 3], values[[0, 2, 3], 2, 3].mean(), rtol=1e-12)
    np.testing.assert_allclose(mean[0, 1], values[:, 0, 1].mean(), rtol=1e-12)


def test_geometric_mean_equals_nilearn_on_numpy_and_dask():
    covariances = _covariances()
    expected = _geometric_mean(list(covariances.values), max_iter=30, tol=1e-7)
    eager = geometric_mean(covariances)
    assert eager.dims == ("region", "region_")
    np.testing.assert_allclose(eager.values, expected, rtol=0, atol=TOL)
    np.testing.assert_allclose(geometric_mean(covariances.values), expected, rtol=0, atol=TOL)
    lazy = geometric_mean(covariances.chunk(run=3), split_every=2)
    np.testing.assert_allclose(lazy.values, eager.values, rtol=0, atol=1e-12)
    init = covariances.values[0]
    np.testing.assert_allclose(
        geometric_mean(covariances.values, init=init),
        _geometric_mean(list(covariances.values), init=init, max_iter=30, tol=1e-7),
        rtol=0,
        atol=TOL,
    )


def test_each_iteration_is_one_compute():
    covariances = _covariances(chunk=2)
    with raise_if_dask_computes(max_computes=100) as scheduler:
        result = geometric_mean(covariances, max_iter=4, tol=None)
    # one pass checking the matrices (and the arithmetic mean), then one map-reduce per iteration
    assert scheduler.total_computes == 1 + 4
    expected = _geometric_mean(list(covariances.values), max_iter=4, tol=None)
    np.testing.assert_allclose(result.values, expected, rtol=0, atol=1e-10)


def test_max_iter_warning():
    with pytest.warns(UserWarning, match="Maximum number of iterations 1 reached"):
        geometric_mean(_covariances().values, max_iter=1, tol=1e-30)


def test_tangent_space_equals_nilearn():
    signals = _signals()
    measure, expected = _nilearn_measure("tangent", signals)
    covariances = connectivity(signals.chunk(run=3), "covariance")
    embedding = tangent_space(covariances)
    assert isinstance(embedding["tangent"].data, da.Array)
    assert embedding["tangent"].dims == ("run", "region", "region_")
    np.testing.assert_allclose(embedding["tangent"].values, expected, rtol=0, atol=TOL)
    np.testing.assert_allclose(embedding["mean"].values, measure.mean_, rtol=0, atol=TOL)
    np.testing.assert_allclose(embedding["whitening"].values, measure.whitening_, rtol=0, atol=TOL)
    # a reference mean from another group is used as given
    with raise_if_dask_computes():
        again = tangent_space(covariances, mean=embedding["mean"])
    np.testing.assert_allclose(again["tangent"].values, expected, rtol=0, atol=TOL)


@pytest.mark.parametrize("chunks", [-1, 1, 3, (2, 5, 1)])
@pytest.mark.parametrize("with_failed_run", [False, True])
def test_tangent_space_lazy_equals_eager(chunks, with_failed_run):
    """One kernel (xr.apply_ufunc): the same labeled tangent vectors on numpy and on any chunking of runs."""
    covariances = _covariances()
    if with_failed_run:  # as cohort.extract(..., on_error="skip") leaves a run whose extraction failed
        errors = np.array([""] * covariances.sizes["run"], dtype=object)
        errors[2] = "OSError: unreadable"
        covariances = covariances.where(covariances["run"] != "sub-02").assign_coords(error=("run", errors))
    eager = tangent_space(covariances)
    assert eager["tangent"].chunks is None
    # the data on dask, the coordinates in memory (as cohort.extract gives them)
    chunked = covariances.copy(data=covariances.chunk(run=chunks).data)
    with raise_if_dask_computes():
        lazy = tangent_space(chunked, mean=eager["mean"])
    assert_lazy_equals_eager(lazy["tangent"], eager["tangent"])
    xr.testing.assert_identical(lazy.drop_vars("tangent"), eager.drop_vars("tangent"))
    assert np.isnan(eager["tangent"].sel(run="sub-02")).all() == with_failed_run


def test_tangent_space_errors():
    covariances = _covariances(n_runs=3)
    with pytest.raises(ValueError, match="group of subjects.*got 1 run"):
        tangent_space(covariances.isel(run=[0]))
    with pytest.raises(TypeError, match="DataArray"):
        tangent_space(covariances.values)
    with pytest.raises(ValueError, match="init must be a \\(5, 5\\) matrix"):
        tangent_space(covariances, mean=np.eye(4))


def test_non_spd_or_incomplete_covariances_are_named():
    covariances = _covariances(n_runs=4)
    values = covariances.values.copy()
    values[2] -= 10 * np.eye(5)
    with pytest.raises(NotPositiveDefiniteError, match="run 'sub-02' is not symmetric positive definite"):
        geometric_mean(covariances.copy(data=values).chunk(run=1))
    values = covariances.values.copy()
    values[3, 0, 1] += 1.0  # not symmetric
    with pytest.raises(NotPositiveDefiniteError, match="run 'sub-03'"):
        geometric_mean(covariances.copy(data=values))
    values = covariances.values.copy()
    values[1, 4, :] = values[1, :, 4] = np.nan
    with pytest.raises(ValueError, match="run 'sub-01' has non-finite values"):
        geometric_mean(covariances.copy(data=values))
    with pytest.raises(ValueError, match="stack of square matrices"):
        geometric_mean(np.ones((3, 4, 5)))
    with pytest.raises(ValueError, match="\\(run, region, region_\\) DataArray"):
        mean_connectome(covariances.isel(run=0))


@pytest.mark.distributed
def test_geometric_mean_and_tangent_on_a_distributed_cluster():
    distributed = pytest.importorskip("distributed")
    signals = _signals(n_runs=6)
    measure, expected = _nilearn_measure("tangent", signals)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster) as client:
        covariances = connectivity(signals.chunk(run=2), "covariance")
        embedding = tangent_space(covariances, split_every=2)
        tangent = embedding["tangent"].data.compute()
        correlations = connectivity(signals.chunk(run=2), "correlation")
        mean = mean_connectome(correlations, fisher_z=False, split_every=2).values
        # the work ran on the two worker processes
        assert len(client.scheduler_info()["workers"]) == 2
    np.testing.assert_allclose(tangent, expected, rtol=0, atol=TOL)
    np.testing.assert_allclose(embedding["mean"].values, measure.mean_, rtol=0, atol=TOL)
    correlation_measure, _ = _nilearn_measure("correlation", signals)
    np.testing.assert_allclose(mean, correlation_measure.mean_, rtol=0, atol=TOL)
    assert dask.config.get("scheduler", None) != "distributed"
