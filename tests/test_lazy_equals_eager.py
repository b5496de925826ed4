"""One kernel, two paths: each operation gives the same labeled object on numpy and on any dask chunking.

Each kernel is run on a numpy-backed input and on dask-backed copies chunked
in several ways (one chunk, every volume or voxel apart, uneven blocks, and
chunkings drawn by hypothesis); the results are compared whole, coordinates
and attrs included, with ``xarray.testing.assert_identical`` (values within
a stated tolerance where a reduction order may differ).
"""

from __future__ import annotations

import dask.array
import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import brainxr
from brainxr.geometry import Grid, with_grid, with_t_r
from brainxr.image import mean_img, resample_img, smooth_img
from brainxr.masking import apply_mask, unmask
from brainxr.regions import extract_labels
from brainxr.signal import clean
from brainxr.testing import assert_lazy_equals_eager, raise_if_dask_computes

SHAPE = (6, 7, 5)
N_TIME = 40
AFFINE = np.array([[-3.0, 0, 0, 9], [0, 3, 0, -12], [0, 0, 3, -6], [0, 0, 0, 1]])
#: time chunkings of a (i, j, k, time) volume: None is numpy
VOLUME_CHUNKS = [None, -1, 1, 7]
#: voxel chunkings of a (time, voxel) table
VOXEL_CHUNKS = [None, -1, 1, 17]


def _volume() -> xr.DataArray:
    values = np.random.default_rng(0).standard_normal(SHAPE + (N_TIME,)).astype(np.float32) + 10
    volume = xr.DataArray(values, dims=("i", "j", "k", "time"), attrs={"source": "synthetic"}, name="bold")
    return with_t_r(with_grid(volume, Grid(SHAPE, AFFINE)), 2.0)


def _mask() -> np.ndarray:
    mask = np.zeros(SHAPE, bool)
    mask[1:5, 1:6, 1:4] = True
    return mask


def _chunked(da: xr.DataArray, dim: str, chunks):
    """The same DataArray on dask (its data only: coordinates stay in memory, as brainxr makes them)."""
    if chunks is None:
        return da
    sizes = {axis: (chunks if name == dim else -1) for axis, name in enumerate(da.dims)}
    return da.copy(data=dask.array.from_array(da.values, chunks=sizes))


VOLUME_KERNELS = {
    "apply_mask": lambda v: apply_mask(v, _mask(), voxel_chunks=None),
    "smooth_img": lambda v: smooth_img(v, 5.0),
    "resample_img": lambda v: resample_img(v, AFFINE * [[1.5], [1.5], [1.5], [1]], (4, 5, 4), interpolation="linear"),
    "mean_img": lambda v: mean_img(v),
    "unmask(apply_mask)": lambda v: unmask(apply_mask(v, _mask(), voxel_chunks=None)),
}


@pytest.mark.parametrize("kernel", VOLUME_KERNELS)
@pytest.mark.parametrize("chunks", VOLUME_CHUNKS[1:])
def test_volume_kernels_lazy_equal_eager(kernel, chunks):
    function = VOLUME_KERNELS[kernel]
    eager = function(_volume())
    assert eager.chunks is None
    with raise_if_dask_computes():
        lazy = function(_chunked(_volume(), "time", chunks))
    assert_lazy_equals_eager(lazy, eager, atol=1e-5 if kernel == "mean_img" else 0.0)


MASKED_KERNELS = {
    "clean": lambda m: clean(m, detrend=True, standardize="zscore_sample", low_pass=0.2, high_pass=0.02),
    "unmask": lambda m: unmask(m),
    "extract_labels": lambda m: extract_labels(m, _labels()),
}


def _labels() -> xr.DataArray:
    labels = np.zeros(SHAPE, np.int16)
    labels[1:3, 1:6, 1:4] = 1
    labels[3:5, 1:4, 1:4] = 2
    labels[3:5, 4:6, 1:4] = 3
    return with_grid(xr.DataArray(labels, dims=("i", "j", "k")), Grid(SHAPE, AFFINE))


@pytest.mark.parametrize("kernel", MASKED_KERNELS)
@pytest.mark.parametrize("chunks", VOXEL_CHUNKS[1:])
def test_masked_kernels_lazy_equal_eager(kernel, chunks):
    function = MASKED_KERNELS[kernel]
    masked = apply_mask(_volume(), _mask())
    eager = function(masked)
    with raise_if_dask_computes():
        lazy = function(_chunked(masked, "voxel", chunks))
    assert_lazy_equals_eager(lazy, eager, atol=1e-10 if kernel != "unmask" else 0.0)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    time_chunks=st.lists(st.integers(1, N_TIME), min_size=1, max_size=4),
    kernel=st.sampled_from(sorted(VOLUME_KERNELS)),
)
def test_any_time_chunking_gives_the_eager_result(time_chunks, kernel):
    sizes = []
    for size in time_chunks:
        if sum(sizes) + size >= N_TIME:
            break
        sizes.append(size)
    sizes.append(N_TIME - sum(sizes))
    function = VOLUME_KERNELS[kernel]
    eager = function(_volume())
    lazy = function(_chunked(_volume(), "time", tuple(sizes)))
    assert_lazy_equals_eager(lazy, eager, atol=1e-5 if kernel == "mean_img" else 0.0)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    voxel_chunk=st.integers(1, 60),
    kernel=st.sampled_from(sorted(MASKED_KERNELS)),
)
def test_any_voxel_chunking_gives_the_eager_result(voxel_chunk, kernel):
    function = MASKED_KERNELS[kernel]
    masked = apply_mask(_volume(), _mask())
    eager = function(masked)
    lazy = function(_chunked(masked, "voxel", voxel_chunk))
    assert_lazy_equals_eager(lazy, eager, atol=1e-10 if kernel != "unmask" else 0.0)


def test_open_nifti_lazy_equals_eager(tmp_path):
    path = brainxr.to_nifti(_volume(), tmp_path / "bold.nii.gz")
    eager = brainxr.open_nifti(path, chunks=None)
    for chunks in (1, 5, "auto"):
        assert_lazy_equals_eager(brainxr.open_nifti(path, chunks=chunks), eager)
    assert_lazy_equals_eager(xr.open_dataarray(path, engine="nifti", chunks={"time": 4}), eager)
