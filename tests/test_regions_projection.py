"""The kernel of every region extraction: partial region sums of a (time, voxel) block."""

import numpy as np
import pytest
from scipy import sparse

from brainxr.regions import _projection_kernel, _reductions
from brainxr.regions._reductions import ProjectionWeights, project_columns


def _reference(block, weights, valid, ensure_finite):
    """Dense float64 sums, counts and invalid-voxel Gram, written out plainly."""
    block = np.asarray(block, dtype=np.float64)
    dense = weights.toarray()
    finite = np.isfinite(block)
    if ensure_finite:
        block = np.where(finite, block, 0.0)
        is_valid = np.ones(block.shape[1], dtype=bool)
    else:
        is_valid = finite.all(axis=0)
        block = np.where(is_valid, block, 0.0)
    if valid is not None:
        is_valid &= valid
        block = np.where(valid, block, 0.0)
    needed = np.abs(dense).sum(axis=1) > 0
    invalid = dense[needed & ~is_valid]
    return np.concatenate([block @ dense, (is_valid.astype(float) @ dense)[None, :], invalid.T @ invalid])


@pytest.fixture
def problem():
    rng = np.random.default_rng(3)
    n_time, n_voxels, n_regions = 23, 700, 9
    block = rng.normal(100, 5, (n_time, n_voxels)).astype(np.float32)
    block[4, 10] = np.nan  # a voxel non-finite at one time point
    block[:, 11] = np.inf
    # maps-like weights: several regions per voxel, some voxels without any
    weights = sparse.random(n_voxels, n_regions, density=0.3, random_state=4, format="csr")
    valid = rng.random(n_voxels) > 0.05
    return block, weights, valid


@pytest.mark.parametrize("ensure_finite", [False, True])
@pytest.mark.parametrize("given_valid", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("compiled", [False, True])
def test_sums_counts_and_gram_equal_the_dense_computation(problem, ensure_finite, given_valid, dtype, compiled,
                                                          monkeypatch):
    monkeypatch.setattr(_reductions, "BATCH_VOXELS", 256)
    block, weights, valid = problem
    block = block.astype(dtype)
    valid = valid if given_valid else None
    expected = _reference(block, weights, valid, ensure_finite)
    options = {"ensure_finite": ensure_finite, "with_gram": True, "compiled": compiled}
    from_matrix = project_columns(block, weights, valid, **options)
    prepared = ProjectionWeights.of(weights)
    from_prepared = project_columns(block, prepared, valid, **options)
    np.testing.assert_allclose(from_matrix, expected, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(from_prepared, from_matrix)
    # the voxels with a weight span several numpy batches and several tiles of the compiled loop
    assert len(prepared.batches) > 2
    assert prepared.needed.size > 2 * _projection_kernel.TILE


def test_labels_weights_give_region_means_as_numpy(problem):
    """One region per voxel (a labels atlas): sums and counts equal numpy's grouped sums."""
    block, _, valid = problem
    block = np.nan_to_num(block, posinf=0.0)
    labels = np.random.default_rng(5).integers(-1, 7, block.shape[1])
    voxels = np.flatnonzero(labels >= 0)
    weights = sparse.csr_matrix((np.ones(voxels.size), (voxels, labels[voxels])), shape=(block.shape[1], 7))
    result = project_columns(block, weights, valid, known_finite=True, compiled=True)
    np.testing.assert_allclose(project_columns(block, weights, valid, known_finite=True), result, rtol=1e-12)
    for region in range(7):
        members = (labels == region) & valid
        np.testing.assert_allclose(result[:-1, region], block[:, members].astype(np.float64).sum(axis=1), rtol=1e-12)
        assert result[-1, region] == members.sum()


@pytest.mark.parametrize("compiled", [False, True])
def test_an_integer_block_is_summed_in_float64(problem, compiled):
    _, weights, _ = problem
    block = np.arange(23 * 700, dtype=np.int16).reshape(23, 700)
    np.testing.assert_allclose(project_columns(block, weights, compiled=compiled)[:-1], block @ weights.toarray(),
                               rtol=1e-12)


def test_a_known_finite_block_gives_the_sums_of_a_scanned_one(problem):
    block, weights, valid = problem
    block = np.nan_to_num(block, posinf=0.0)  # what ingest stores: finite everywhere
    scanned = project_columns(block, weights, valid, with_gram=True)
    trusted = project_columns(block, ProjectionWeights.of(weights), valid, with_gram=True, known_finite=True)
    np.testing.assert_array_equal(trusted, scanned)
    compiled = project_columns(block, ProjectionWeights.of(weights), valid, with_gram=True, known_finite=True,
                               compiled=True)
    np.testing.assert_allclose(compiled, scanned, rtol=1e-12)


def test_the_block_is_left_unchanged(problem):
    block, weights, valid = problem
    before = block.copy()
    for compiled in (False, True):
        project_columns(block, weights, valid, known_finite=True, compiled=compiled)
        project_columns(block, weights, valid, ensure_finite=True, compiled=compiled)
        project_columns(block, weights, valid, compiled=compiled)
    np.testing.assert_array_equal(block, before)


def test_a_cohorts_chunk_weights_are_prepared_once_per_chunk_layout(problem):
    import pandas as pd

    from brainxr.regions.cohort import RegionWeights

    block, weights, valid = problem
    region_weights = RegionWeights("maps", "least_squares", weights, np.ones(weights.shape[1]), pd.DataFrame())
    layout = [slice(0, 300), slice(300, 700)]
    prepared = region_weights.chunk_weights(layout)
    assert region_weights.chunk_weights([slice(0, 300), slice(300, 700)]) is prepared  # every run shares them
    assert region_weights.chunk_weights([slice(0, 700)]) is not prepared
    assert region_weights.for_tasks()._prepared_chunks == {}  # not sent to every task
    summed = sum(project_columns(block[:, chunk], weights_of_chunk, valid[chunk], with_gram=True)
                 for chunk, weights_of_chunk in zip(layout, prepared))
    np.testing.assert_allclose(summed, project_columns(block, weights, valid, with_gram=True), rtol=1e-12, atol=1e-9)
