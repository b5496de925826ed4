"""connectivity(): labeled connectomes of runs and cohorts, eager and lazy."""

import warnings

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from nilearn.connectome import ConnectivityMeasure as NilearnConnectivityMeasure
from sklearn.base import BaseEstimator
from sklearn.covariance import EmpiricalCovariance

from brainxr.connectome import NotPositiveDefiniteError, connectivity
from brainxr.testing import raise_if_dask_computes

TOL = 1e-6
PER_RUN_KINDS = ["covariance", "correlation", "partial correlation", "precision"]


def _cohort(n_runs=5, n_samples=40, n_regions=6, seed=0):
    """``(run, time, region)`` signals from a known precision, labeled as brainxr does."""
    rng = np.random.default_rng(seed)
    factor = rng.standard_normal((n_regions, n_regions))
    covariance = np.linalg.inv(factor @ factor.T + n_regions * np.eye(n_regions))
    values = rng.multivariate_normal(np.zeros(n_regions), covariance, size=(n_runs, n_samples))
    names = [f"region {index}" for index in range(n_regions)]
    return xr.DataArray(
        values * rng.uniform(0.5, 2, n_regions) + 5.0,
        dims=("run", "time", "region"),
        coords={
            "run": [f"sub-{index:02d}_task-rest" for index in range(n_runs)],
            "time": 2.0 * np.arange(n_samples),
            "region": names,
            "label": ("region", np.arange(1, n_regions + 1)),
            "x": ("region", np.linspace(-40, 40, n_regions)),
        },
    )


def _nilearn(kind, runs, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return NilearnConnectivityMeasure(kind=kind, **params).fit_transform(runs)


@pytest.mark.parametrize("kind", PER_RUN_KINDS)
def test_single_run_is_labeled_and_equals_nilearn(kind):
    signals = _cohort(n_runs=1).isel(run=0)
    result = connectivity(signals, kind)
    assert result.dims == ("region", "region_")
    assert list(result["region_"].values) == list(signals["region"].values)
    np.testing.assert_array_equal(result["x_"].values, signals["x"].values)
    np.testing.assert_array_equal(result["label"].values, signals["label"].values)
    assert "time" not in result.coords
    assert result.attrs["kind"] == kind
    np.testing.assert_allclose(result.values, _nilearn(kind, [signals.values])[0], rtol=0, atol=TOL)


@pytest.mark.parametrize("kind", PER_RUN_KINDS + ["tangent"])
def test_cohort_lazy_equals_eager_and_nilearn(kind):
    signals = _cohort()
    eager = connectivity(signals, kind)
    if kind == "tangent":
        lazy = connectivity(signals.chunk(run=2), kind)  # computes the group mean now
    else:
        with raise_if_dask_computes():
            lazy = connectivity(signals.chunk(run=2), kind)
    assert isinstance(lazy.data, da.Array)
    assert lazy.data.chunks[0] == (2, 2, 1)
    assert lazy.dims == ("run", "region", "region_")
    assert list(lazy["run"].values) == list(signals["run"].values)
    np.testing.assert_allclose(lazy.values, eager.values, rtol=0, atol=1e-12)
    expected = _nilearn(kind, list(signals.values))
    np.testing.assert_allclose(eager.values, expected, rtol=0, atol=TOL)


def test_pearson_correlation_with_the_empirical_estimator():
    signals = _cohort(n_runs=1).isel(run=0)
    result = connectivity(signals, "correlation", cov_estimator="empirical")
    np.testing.assert_allclose(result.values, np.corrcoef(signals.values.T), atol=1e-12)


def test_list_of_runs_with_different_lengths():
    cohort = _cohort(n_runs=3, n_samples=50)
    runs = [
        cohort.isel(run=index, time=slice(0, 30 + 10 * index)).chunk() for index in range(3)
    ]
    with raise_if_dask_computes():
        result = connectivity(runs, "partial correlation")
    assert list(result["run"].values) == list(cohort["run"].values)
    expected = _nilearn("partial correlation", [run.values for run in runs])
    np.testing.assert_allclose(result.values, expected, rtol=0, atol=TOL)
    unlabeled = [run.drop_vars("run") for run in runs]
    assert list(connectivity(unlabeled)["run"].values) == [0, 1, 2]


def test_nan_padding_of_shorter_runs_is_dropped():
    cohort = _cohort(n_runs=2, n_samples=40)
    padded = cohort.copy(data=cohort.values.copy())
    padded[1, 30:] = np.nan
    result = connectivity(padded.chunk(run=1), "covariance")
    expected = _nilearn("covariance", [cohort.values[0], cohort.values[1, :30]])
    np.testing.assert_allclose(result.values, expected, rtol=0, atol=TOL)


def test_empty_region_is_excluded_with_a_warning():
    cohort = _cohort(n_runs=2)
    values = cohort.values.copy()
    values[1, :, 2] = np.nan
    with_gap = cohort.copy(data=values)

    single = with_gap.isel(run=1)
    with pytest.warns(UserWarning, match="region\\(s\\) region 2 have no finite signal"):
        result = connectivity(single, "correlation")
    # the region keeps its place (NaN row and column): eager and lazy results
    # have the same shape whatever the values
    assert result.shape == (6, 6)
    assert np.isnan(result.values[2]).all() and np.isnan(result.values[:, 2]).all()
    kept = [0, 1, 3, 4, 5]
    np.testing.assert_allclose(
        result.values[np.ix_(kept, kept)],
        _nilearn("correlation", [values[1][:, kept]])[0],
        rtol=0,
        atol=TOL,
    )

    lazy = connectivity(with_gap.chunk(run=1), "correlation")
    with pytest.warns(UserWarning, match="run 'sub-01_task-rest'"):
        stacked = lazy.values
    np.testing.assert_array_equal(stacked[1], result.values)
    assert np.isfinite(stacked[0]).all()

    with pytest.raises(ValueError, match="region 2 have no finite signal.*empty_regions='exclude'"):
        connectivity(single, "correlation", empty_regions="error")


#: numpy, one dask chunk, several dask chunks (of runs, and of time and regions)
CHUNKINGS = [None, -1, {"run": 2, "time": 7, "region": 4}]


def _chunked(signals, chunks):
    if chunks is None:
        return signals
    if chunks == -1:
        return signals.chunk(-1)
    return signals.chunk({dim: size for dim, size in chunks.items() if dim in signals.dims})


@pytest.mark.parametrize("chunks", CHUNKINGS[1:])
@pytest.mark.parametrize("kind", PER_RUN_KINDS + ["tangent"])
@pytest.mark.parametrize("one_run", [True, False])
@pytest.mark.filterwarnings("ignore:.*have no finite signal:UserWarning")
def test_lazy_equals_eager_with_coordinates(kind, chunks, one_run):
    """The same labeled result from numpy and dask inputs, with an empty region."""
    if kind == "tangent" and one_run:
        pytest.skip("tangent needs a group of runs")
    cohort = _cohort(n_runs=5, n_samples=30)
    values = cohort.values.copy()
    if kind != "tangent":  # the geometric mean needs complete covariances
        values[1, :, 3] = np.nan
    values[2, 25:] = np.nan  # a shorter run, padded
    signals = cohort.copy(data=values).assign_coords(
        coverage=(("run", "region"), np.linspace(0.5, 1, 30).reshape(5, 6)),
        onset=(("run", "time"), np.tile(2.0 * np.arange(30), (5, 1))),
    )
    signals.attrs["units"] = "a.u."
    if one_run:
        signals = signals.isel(run=1)
    eager = connectivity(signals, kind)
    lazy = connectivity(_chunked(signals, chunks), kind)
    if kind == "tangent":
        # the group mean is a tree reduction over chunks of runs: sums in
        # another order, equal to rounding
        xr.testing.assert_allclose(lazy.compute(), eager, rtol=0, atol=1e-12)
        lazy = lazy.copy(data=eager.data)
    else:
        assert isinstance(lazy.data, da.Array)
    xr.testing.assert_identical(lazy.compute(), eager)
    expected_dims = ("region", "region_") if one_run else ("run", "region", "region_")
    assert eager.dims == expected_dims
    assert "onset" not in eager.coords and "time" not in eager.coords
    np.testing.assert_array_equal(eager["coverage_"].values, signals["coverage"].values)


def test_partly_missing_region_is_an_error():
    signals = _cohort(n_runs=1).isel(run=0)
    values = signals.values.copy()
    values[5, 1] = np.nan
    with pytest.raises(ValueError, match="region 1 have non-finite values at some time points"):
        connectivity(signals.copy(data=values))


def test_too_few_samples():
    signals = _cohort(n_runs=2, n_samples=5, n_regions=8)
    with pytest.raises(ValueError, match="at least 2 samples.*has 1"):
        connectivity(signals.isel(run=0, time=[0]))
    with pytest.raises(ValueError, match="more samples than regions.*5 samples for 8 regions"):
        connectivity(signals, "partial correlation", cov_estimator="empirical")
    # the default shrunk estimator is fine with fewer samples than regions
    assert np.isfinite(connectivity(signals, "precision").values).all()


class _IndefiniteCovariance(BaseEstimator):
    """An estimator returning a matrix that is not positive definite."""

    def fit(self, X):
        self.covariance_ = np.cov(X.T) - 10 * np.eye(X.shape[1])
        return self


def test_non_positive_definite_covariance_names_the_run():
    cohort = _cohort(n_runs=3)
    values = cohort.values.copy()
    values[1, 4:] = np.nan  # run 1 is padding after 4 samples: fewer than its 6 regions
    signals = cohort.copy(data=values).chunk(run=1)
    lazy = connectivity(signals, "partial correlation", cov_estimator="empirical")
    with pytest.raises(
        NotPositiveDefiniteError,
        match="run 'sub-01_task-rest' estimated with EmpiricalCovariance.*fewer samples \\(4\\)",
    ):
        lazy.compute()
    with pytest.raises(NotPositiveDefiniteError, match="run 'sub-01_task-rest'"):
        connectivity(signals, "tangent", cov_estimator="empirical")
    with pytest.raises(NotPositiveDefiniteError, match="_IndefiniteCovariance is not positive definite"):
        connectivity(cohort.isel(run=0), "precision", cov_estimator=_IndefiniteCovariance())


def test_bad_arguments():
    signals = _cohort(n_runs=2)
    with pytest.raises(ValueError, match="kind='spam'"):
        connectivity(signals, "spam")
    with pytest.raises(ValueError, match="empty_regions='drop'"):
        connectivity(signals, empty_regions="drop")
    with pytest.raises(TypeError, match="must be an xarray.DataArray.*ConnectivityMeasure"):
        connectivity(signals.values[0])
    with pytest.raises(ValueError, match="'time' and 'region' dims.*missing \\['region'\\]"):
        connectivity(signals.rename(region="parcel"))
    with pytest.raises(ValueError, match="group of runs"):
        connectivity(signals.isel(run=0), "tangent")
    other = signals.isel(run=1).assign_coords(region=[f"other {i}" for i in range(6)])
    with pytest.raises(ValueError, match="signals\\[1\\] has different regions"):
        connectivity([signals.isel(run=0), other])
    with pytest.raises(ValueError, match="empty list"):
        connectivity([])


def test_cohort_coordinates_of_the_extraction_pipeline_are_kept():
    """extract_cohort's layout: NaN padding, per-run coverage and onsets."""
    signals = _cohort(n_runs=2, n_samples=30)
    values = signals.values.copy()
    values[1, 20:] = np.nan
    coverage = np.array([[1.0] * 6, [1.0, 0.9, 1.0, 1.0, 0.8, 1.0]])
    extracted = signals.copy(data=values).assign_coords(
        n_volumes=("run", [30, 20]),
        coverage=(("run", "region"), coverage),
        onset=(("run", "time"), np.where(np.isnan(values[:, :, 0]), np.nan, 2.0)),
    )
    result = connectivity(extracted.chunk(run=1), "correlation")
    assert result["coverage"].dims == ("run", "region")
    assert result["coverage_"].dims == ("run", "region_")
    np.testing.assert_array_equal(result["coverage_"].values, coverage)
    np.testing.assert_array_equal(result["n_volumes"].values, [30, 20])
    assert "onset" not in result.coords
    expected = _nilearn("correlation", [values[0], values[1, :20]])
    np.testing.assert_allclose(result.values, expected, rtol=0, atol=TOL)


def test_dask_signals_with_numpy_run_coordinates():
    """cohort.extract's output: dask data chunked by run, numpy (run, time) and (run, region) coords."""
    signals = _cohort(n_runs=3, n_samples=30)
    extracted = signals.assign_coords(onset=(("run", "time"), np.tile(2.0 * np.arange(30), (3, 1))),
                                      coverage=(("run", "region"), np.ones((3, 6))))
    lazy = extracted.copy(data=da.from_array(extracted.values, chunks=(1, 10, 6)))
    xr.testing.assert_identical(connectivity(lazy, "correlation").compute(), connectivity(extracted, "correlation"))
