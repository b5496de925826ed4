"""Symmetric-matrix helpers: equal to nilearn 0.14, on numpy, dask and xarray."""

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from nilearn import connectome as nilearn_connectome
from nilearn.connectome.connectivity_matrices import _map_eigenvalues

from brainxr.connectome import (
    cov_to_corr,
    fisher_z,
    inverse_fisher_z,
    map_eigenvalues,
    prec_to_partial,
    sym_matrix_to_vec,
    vec_to_sym_matrix,
)
from brainxr.testing import raise_if_dask_computes

TOL = 1e-12


@pytest.fixture
def spd_stack():
    rng = np.random.default_rng(0)
    factors = rng.standard_normal((4, 6, 6))
    return factors @ factors.transpose(0, 2, 1) + 0.5 * np.eye(6)


@pytest.mark.parametrize("discard_diagonal", [False, True])
def test_sym_matrix_to_vec_equals_nilearn_on_numpy_and_dask(spd_stack, discard_diagonal):
    expected = nilearn_connectome.sym_matrix_to_vec(spd_stack, discard_diagonal=discard_diagonal)
    np.testing.assert_allclose(
        sym_matrix_to_vec(spd_stack, discard_diagonal=discard_diagonal), expected, rtol=0, atol=TOL
    )
    lazy = da.from_array(spd_stack, chunks=(3, 6, 6))
    with raise_if_dask_computes():
        vectors = sym_matrix_to_vec(lazy, discard_diagonal=discard_diagonal)
    assert isinstance(vectors, da.Array)
    np.testing.assert_allclose(vectors.compute(), expected, rtol=0, atol=TOL)


@pytest.mark.parametrize("discard_diagonal", [False, True])
def test_vec_to_sym_matrix_inverts_and_equals_nilearn(spd_stack, discard_diagonal):
    vectors = nilearn_connectome.sym_matrix_to_vec(spd_stack, discard_diagonal=discard_diagonal)
    diagonal = None
    if discard_diagonal:
        diagonal = np.diagonal(spd_stack, axis1=-2, axis2=-1) / np.sqrt(2)
    expected = nilearn_connectome.vec_to_sym_matrix(vectors, diagonal=diagonal)
    rebuilt = vec_to_sym_matrix(vectors, diagonal=diagonal)
    np.testing.assert_allclose(rebuilt, expected, rtol=0, atol=TOL)
    np.testing.assert_allclose(rebuilt, spd_stack, rtol=1e-12)

    lazy_diagonal = None if diagonal is None else da.from_array(diagonal, chunks=(2, 6))
    with raise_if_dask_computes():
        lazy = vec_to_sym_matrix(da.from_array(vectors, chunks=(2, -1)), diagonal=lazy_diagonal)
    assert lazy.chunks == ((2, 2), (6,), (6,))
    np.testing.assert_allclose(lazy.compute(), expected, rtol=0, atol=TOL)


def test_vec_to_sym_matrix_rejects_bad_lengths():
    with pytest.raises(ValueError, match="n \\* \\(n \\+ 1\\) / 2"):
        vec_to_sym_matrix(np.ones(5))
    with pytest.raises(ValueError, match="diagonal of shape"):
        vec_to_sym_matrix(np.ones(3), diagonal=np.ones(4))
    with pytest.raises(ValueError, match="n \\* \\(n \\+ 1\\) / 2"):
        vec_to_sym_matrix(da.ones(5))


def test_sym_matrix_to_vec_rejects_non_square():
    with pytest.raises(ValueError, match="symmetric must be a square matrix"):
        sym_matrix_to_vec(np.ones((3, 4)))


def test_sym_matrix_to_vec_labels_edges_of_a_dataarray(spd_stack):
    names = [f"r{i}" for i in range(6)]
    matrices = xr.DataArray(
        spd_stack,
        dims=("run", "region", "region_"),
        coords={"run": list("abcd"), "region": names, "region_": names},
    )
    vectors = sym_matrix_to_vec(matrices, discard_diagonal=True)
    assert vectors.dims == ("run", "edge")
    assert vectors.sizes["edge"] == 15
    # nilearn's order: row by row through the lower triangle
    assert list(vectors["region"].values[:3]) == ["r1", "r2", "r2"]
    assert list(vectors["region_"].values[:3]) == ["r0", "r0", "r1"]
    assert vectors.sel(run="c").values[2] == spd_stack[2, 2, 1]


def test_cov_to_corr_and_prec_to_partial_equal_nilearn(spd_stack):
    for matrix in spd_stack:
        np.testing.assert_allclose(
            cov_to_corr(matrix), nilearn_connectome.cov_to_corr(matrix), rtol=0, atol=TOL
        )
        np.testing.assert_allclose(
            prec_to_partial(matrix), nilearn_connectome.prec_to_partial(matrix), rtol=0, atol=TOL
        )
    stacked = cov_to_corr(spd_stack)
    assert np.all(np.diagonal(stacked, axis1=-2, axis2=-1) == 1.0)
    with raise_if_dask_computes():
        lazy = prec_to_partial(da.from_array(spd_stack, chunks=(1, 6, 6)))
    np.testing.assert_allclose(
        lazy.compute()[3], nilearn_connectome.prec_to_partial(spd_stack[3]), rtol=0, atol=TOL
    )
    labeled = cov_to_corr(xr.DataArray(spd_stack, dims=("run", "region", "region_")))
    assert isinstance(labeled, xr.DataArray)
    np.testing.assert_allclose(labeled.values, stacked)


def test_fisher_z_is_finite_at_one_and_lazy():
    values = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 1.0 + 1e-15, np.nan])
    z = fisher_z(values)
    np.testing.assert_allclose(z[1:4], np.arctanh(values[1:4]))
    assert np.isfinite(z[[0, 4, 5]]).all() and z[4] > 18 and z[0] < -18
    assert np.isnan(z[6])
    np.testing.assert_allclose(inverse_fisher_z(z[:6]), np.clip(values[:6], -1, 1))
    with raise_if_dask_computes():
        lazy = fisher_z(da.from_array(values, chunks=3))
    np.testing.assert_array_equal(lazy.compute(), z)


def test_map_eigenvalues_on_stacks_equals_nilearn(spd_stack):
    logs = map_eigenvalues(np.log, spd_stack)
    for matrix, log in zip(spd_stack, logs):
        np.testing.assert_allclose(log, _map_eigenvalues(np.log, matrix), atol=1e-10)
    np.testing.assert_allclose(map_eigenvalues(np.exp, logs), spd_stack, rtol=1e-10)
