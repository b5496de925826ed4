"""brainxr.signal.clean on xarray and dask signals: labels, laziness, chunks, memory."""

import tracemalloc
import warnings

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr

from brainxr.signal import clean, make_cleaning_plan
from brainxr.signal.kernel import clean_block
from brainxr.testing import raise_if_dask_computes

T_R = 1.5
N_TIME, N_VOXELS = 90, 70


def _signals(seed=0, n_time=N_TIME, n_voxels=N_VOXELS, dtype=np.float64):
    rng = np.random.default_rng(seed)
    trend = np.linspace(0, 3, n_time)[:, None] * rng.uniform(-1, 1, n_voxels)
    values = 500 + rng.uniform(0, 100, n_voxels) + trend + rng.standard_normal((n_time, n_voxels)).cumsum(axis=0)
    return values.astype(dtype)


def _confounds(seed=1, n_time=N_TIME):
    return np.random.default_rng(seed).standard_normal((n_time, 4))


def _masked(values, chunks=None):
    """A (time, voxel) DataArray laid out as brainxr.apply_mask writes it."""
    n_time, n_voxels = values.shape
    data = values if chunks is None else da.from_array(values, chunks=(n_time, chunks))
    return xr.DataArray(
        data,
        dims=("time", "voxel"),
        coords={
            "time": np.arange(n_time) * T_R,
            "i": ("voxel", np.arange(n_voxels, dtype=np.int32)),
            "j": ("voxel", np.zeros(n_voxels, dtype=np.int32)),
            "k": ("voxel", np.ones(n_voxels, dtype=np.int32)),
            "x": ("voxel", np.arange(n_voxels) * 4.0),
        },
        attrs={"t_r": T_R, "affine": np.eye(4), "grid_shape": (n_voxels, 1, 2)},
        name="bold",
    )


OPTIONS = [
    dict(),
    dict(standardize="psc"),
    dict(standardize=None, detrend=False, low_pass=0.1),
    dict(low_pass=0.1, high_pass=0.01, sample_mask=np.r_[2:40, 44:85]),
    dict(filter="cosine", high_pass=0.01, sample_mask=np.r_[0:40, 44:N_TIME], standardize="psc"),
    dict(low_pass=0.1, high_pass=0.01, runs=np.repeat([0, 1], 45), standardize="psc"),
]
OPTION_IDS = ["default", "psc", "lowpass", "band-mask", "cosine-mask-psc", "runs-psc"]


@pytest.mark.parametrize("options", OPTIONS, ids=OPTION_IDS)
def test_dask_equals_numpy_and_stays_lazy(options):
    values = _signals()
    kwargs = dict(options, confounds=_confounds(), t_r=T_R)
    expected = clean(values, **kwargs)
    lazy_input = da.from_array(values, chunks=(N_TIME, 16))
    with raise_if_dask_computes():
        lazy = clean(lazy_input, **kwargs)
    assert isinstance(lazy, da.Array)
    assert lazy.chunks[1] == lazy_input.chunks[1]
    assert not any("rechunk" in name for name in lazy.dask.layers)
    with raise_if_dask_computes(max_computes=1):
        result = lazy.compute()
    np.testing.assert_allclose(result, expected, atol=1e-10)


@pytest.mark.parametrize("options", OPTIONS[:4], ids=OPTION_IDS[:4])
def test_dataarray_is_labeled_with_kept_volumes(options):
    values = _signals(2)
    masked = _masked(values, chunks=20)
    with raise_if_dask_computes():
        result = clean(masked, confounds=_confounds(2), **options)
    assert isinstance(result.data, da.Array)
    assert result.dims == ("time", "voxel")
    assert result.attrs == masked.attrs and result.name == "bold"
    kept = options.get("sample_mask", np.arange(N_TIME))
    np.testing.assert_array_equal(result["time"].values, masked["time"].values[kept])
    for coord in ("i", "j", "k", "x"):
        np.testing.assert_array_equal(result[coord].values, masked[coord].values)
    # attrs["t_r"] was used (t_r not passed)
    expected = clean(values, confounds=_confounds(2), t_r=T_R, **options)
    np.testing.assert_allclose(result.values, expected, atol=1e-10)


def test_dataarray_voxel_first_and_runs_coordinate():
    values = _signals(3)
    masked = _masked(values).assign_coords(run=("time", np.repeat(["b", "a"], 45))).transpose("voxel", "time")
    result = clean(masked, runs="run", low_pass=0.1)
    assert result.dims == ("voxel", "time")
    assert list(result["run"].values) == ["a"] * 45 + ["b"] * 45
    np.testing.assert_array_equal(result["time"].values, np.r_[masked["time"].values[45:], masked["time"].values[:45]])
    np.testing.assert_allclose(result.values.T[:45], clean(values[45:], low_pass=0.1, t_r=T_R), atol=1e-12)


def test_explicit_t_r_wins_over_attrs_with_a_warning():
    masked = _masked(_signals(4))
    with pytest.warns(UserWarning, match="differs from the signals' own t_r"):
        result = clean(masked, low_pass=0.1, t_r=2.0)
    np.testing.assert_allclose(result.values, clean(masked.values, low_pass=0.1, t_r=2.0), atol=1e-12)


def test_a_labeled_array_without_t_r_is_never_filtered_with_a_guessed_one():
    from brainxr.errors import GeometryError

    bare = _masked(_signals(4)).drop_attrs()
    with pytest.raises(GeometryError, match="t_r: signals carry no repetition time"):
        clean(bare, low_pass=0.1)
    with pytest.raises(GeometryError, match="t_r"):
        clean(bare, high_pass=0.01, filter="cosine")
    # nothing that needs the sampling rate: no error
    np.testing.assert_allclose(clean(bare).values, clean(bare.values), atol=1e-12)
    # plain arrays keep nilearn's default of 2.5 s
    np.testing.assert_allclose(
        clean(bare.values, low_pass=0.1), clean(bare.values, low_pass=0.1, t_r=2.5), atol=1e-12
    )


def test_time_chunked_input_gets_whole_time_series_in_bounded_chunks():
    values = _signals(5)
    lazy_input = da.from_array(values, chunks=(30, N_VOXELS))  # time blocks with every voxel
    with dask.config.set({"array.chunk-size": f"{N_TIME * 8 * 16}B"}):
        result = clean(lazy_input, low_pass=0.1, t_r=T_R)
    assert result.numblocks[0] == 1
    assert max(result.chunks[1]) <= 16 and result.numblocks[1] > 1
    np.testing.assert_allclose(result.compute(), clean(values, low_pass=0.1, t_r=T_R), atol=1e-10)


def test_plan_is_one_graph_key_shared_by_all_chunks():
    lazy_input = da.from_array(_signals(6), chunks=(N_TIME, 10))
    result = clean(lazy_input, confounds=_confounds(), low_pass=0.1, t_r=T_R)
    graph = dict(result.__dask_graph__())
    plan_keys = [key for key in graph if "CleaningPlan" in str(key)]
    assert len(plan_keys) == 1
    assert len(graph) == 2 * lazy_input.numblocks[1] + 1  # input chunks, cleaned chunks, plan


def test_float32_dask_result_is_float32():
    values = _signals(7, dtype=np.float32)
    result = clean(da.from_array(values, chunks=(N_TIME, 32)), low_pass=0.1, t_r=T_R, standardize="psc")
    assert result.dtype == np.float32
    computed = result.compute()
    assert computed.dtype == np.float32
    np.testing.assert_allclose(computed, clean(values, low_pass=0.1, t_r=T_R, standardize="psc"), rtol=1e-6, atol=1e-6)


def test_distributed_style_threads_give_same_result():
    values = _signals(8)
    lazy = clean(da.from_array(values, chunks=(N_TIME, 8)), confounds=_confounds(), low_pass=0.1, t_r=T_R)
    with dask.config.set(scheduler="threads", num_workers=2):
        threaded = lazy.compute()
    np.testing.assert_allclose(threaded, clean(values, confounds=_confounds(), low_pass=0.1, t_r=T_R), atol=1e-10)


@pytest.mark.parametrize("standardize", ["zscore_sample", "psc"])
def test_kernel_memory_is_output_plus_small_work(standardize):
    # a float32 block: the kernel allocates its output and a few MB of
    # float64 working arrays (columns are cleaned in batches), not copies
    values = np.random.default_rng(9).standard_normal((300, 20_000)).astype(np.float32) + 100
    plan = make_cleaning_plan(
        300,
        confounds=_confounds(9, n_time=300),
        sample_mask=np.r_[0:140, 146:300],
        low_pass=0.1,
        high_pass=0.01,
        t_r=T_R,
        standardize=standardize,
    )
    clean_block(values[:, :100], plan)  # compile outside the measurement
    tracemalloc.start()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = clean_block(values, plan)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < out.nbytes + 16 * 2**20, f"peak {peak / 2**20:.1f} MiB for a {out.nbytes / 2**20:.1f} MiB output"


@pytest.mark.distributed
@pytest.mark.slow
def test_distributed_worker_processes():
    distributed = pytest.importorskip("distributed")
    values = _signals(10)
    kwargs = dict(confounds=_confounds(), low_pass=0.1, high_pass=0.01, t_r=T_R, standardize="psc")
    lazy = clean(da.from_array(values, chunks=(N_TIME, 20)), **kwargs)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster):
        result = lazy.compute()
    np.testing.assert_allclose(result, clean(values, **kwargs), atol=1e-10)
