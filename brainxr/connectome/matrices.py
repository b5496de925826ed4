"""Operations on (stacks of) symmetric connectivity matrices.

Every function acts on the last two axes, so a single ``(n, n)`` matrix, a
cohort stack ``(run, n, n)`` and a dask array of either are all accepted; the
nilearn helpers (``sym_matrix_to_vec``, ``vec_to_sym_matrix``,
``cov_to_corr``, ``prec_to_partial``) return the same values as nilearn 0.14
for 2D input. Matrix functions of symmetric positive definite matrices
(``map_eigenvalues``) and the Fisher z transform of correlations also live
here.
"""

from __future__ import annotations

from math import floor, sqrt

import numpy as np
import xarray as xr

__all__ = [
    "NotPositiveDefiniteError",
    "cov_to_corr",
    "fisher_z",
    "inverse_fisher_z",
    "map_eigenvalues",
    "prec_to_partial",
    "sym_matrix_to_vec",
    "vec_to_sym_matrix",
]

# Largest float64 below 1: arctanh of it is finite (about 18.7).
_BELOW_ONE = np.nextafter(1.0, 0.0)
# Fisher z of a perfect correlation; averages of it may round a hair below.
_Z_OF_ONE = float(np.arctanh(_BELOW_ONE))


class NotPositiveDefiniteError(ValueError):
    """A covariance matrix that must be positive definite is not."""


def _is_dask(array) -> bool:
    return type(array).__module__.split(".")[0] == "dask"


def _check_square_stack(matrices, name: str) -> None:
    if matrices.ndim < 2 or matrices.shape[-1] != matrices.shape[-2]:
        raise ValueError(
            f"{name} must be a square matrix or a stack of square matrices "
            f"(..., n, n); got an array of shape {tuple(matrices.shape)}."
        )


def _tril_flat_indices(n_columns: int, discard_diagonal: bool) -> np.ndarray:
    """Row-major flat indices of the lower triangle, in nilearn's order."""
    offset = -1 if discard_diagonal else 0
    return np.flatnonzero(np.tril(np.ones((n_columns, n_columns), bool), k=offset))


def sym_matrix_to_vec(symmetric, discard_diagonal: bool = False):
    """Flatten the lower triangular part of symmetric matrices.

    Diagonal elements are divided by sqrt(2) so that the Euclidean norm of the
    vector equals the Frobenius norm of the matrix; ``discard_diagonal`` drops
    them. Acts on the last two axes.

    Parameters
    ----------
    symmetric : numpy.ndarray, dask.array.Array or xarray.DataArray, \
            shape (..., n, n)
        Symmetric matrices. A DataArray with ``(..., region, region_)`` dims
        gives a DataArray with an ``edge`` dim whose ``region`` and ``region_``
        coordinates name the two ends of each edge.
    discard_diagonal : bool, default=False
        If True, the diagonal is not returned.

    Returns
    -------
    vectors : same type as ``symmetric``, shape (..., n * (n + 1) / 2) or \
            (..., n * (n - 1) / 2)
        The lower triangles, row by row (nilearn's order).
    """
    if isinstance(symmetric, xr.DataArray):
        return _sym_dataarray_to_vec(symmetric, discard_diagonal)
    if not _is_dask(symmetric):
        symmetric = np.asarray(symmetric)
    _check_square_stack(symmetric, "symmetric")
    n_columns = symmetric.shape[-1]
    indices = _tril_flat_indices(n_columns, discard_diagonal)
    flat = symmetric.reshape(tuple(symmetric.shape[:-2]) + (n_columns * n_columns,))
    vectors = flat[..., indices]
    if discard_diagonal:
        return vectors
    scaling = np.ones(n_columns * n_columns)
    scaling[:: n_columns + 1] = sqrt(2.0)
    return vectors / scaling[indices]


def _sym_dataarray_to_vec(symmetric: xr.DataArray, discard_diagonal: bool):
    row_dim, col_dim = symmetric.dims[-2:]
    n_columns = symmetric.sizes[row_dim]
    rows, cols = np.divmod(_tril_flat_indices(n_columns, discard_diagonal), n_columns)
    vectors = sym_matrix_to_vec(symmetric.data, discard_diagonal=discard_diagonal)
    leading = symmetric.dims[:-2]
    coords = {
        name: coord
        for name, coord in symmetric.coords.items()
        if not ({row_dim, col_dim} & set(coord.dims))
    }
    for name, coord in symmetric.coords.items():
        if coord.dims == (row_dim,):
            coords[name] = ("edge", coord.values[rows])
        elif coord.dims == (col_dim,):
            coords[name] = ("edge", coord.values[cols])
    return xr.DataArray(
        vectors, dims=leading + ("edge",), coords=coords, attrs=symmetric.attrs
    )


def vec_to_sym_matrix(vec, diagonal=None):
    """Rebuild symmetric matrices from their flattened lower triangles.

    The inverse of :func:`sym_matrix_to_vec`: diagonal elements (in ``vec`` or
    given separately) are multiplied by sqrt(2). Acts on the last axis.

    Parameters
    ----------
    vec : numpy.ndarray or dask.array.Array, shape (..., n * (n + 1) / 2) \
            or (..., n * (n - 1) / 2) if ``diagonal`` is given
        Flattened lower triangles.
    diagonal : numpy.ndarray, shape (..., n), optional
        The diagonals, when they were discarded from ``vec``.

    Returns
    -------
    symmetric : numpy.ndarray or dask.array.Array, shape (..., n, n)
    """
    if isinstance(vec, xr.DataArray):
        vec = vec.data
    if _is_dask(vec):
        return _dask_vec_to_sym_matrix(vec, diagonal)
    vec = np.asarray(vec)
    n_values = vec.shape[-1]
    n_columns = (sqrt(8 * n_values + 1) - 1.0) / 2
    if diagonal is not None:
        n_columns += 1
    if n_columns > floor(n_columns):
        raise ValueError(
            f"vec: a vector of shape {vec.shape} is not the lower triangle of "
            "a symmetric matrix (its length must be n * (n + 1) / 2, or "
            "n * (n - 1) / 2 when the diagonal is given separately)."
        )
    n_columns = int(n_columns)
    leading = vec.shape[:-1]
    if diagonal is not None:
        diagonal = np.asarray(diagonal)
        if diagonal.shape[:-1] != leading or diagonal.shape[-1] != n_columns:
            raise ValueError(
                f"diagonal of shape {diagonal.shape} is incompatible with "
                f"vec of shape {vec.shape}: expected {leading + (n_columns,)}."
            )
    symmetric = np.zeros(leading + (n_columns, n_columns))
    mask = np.tril(np.ones((n_columns, n_columns), bool), k=-int(diagonal is not None))
    symmetric[..., mask] = vec
    symmetric.swapaxes(-1, -2)[..., mask] = vec
    on_diagonal = np.eye(n_columns, dtype=bool)
    if diagonal is not None:
        symmetric[..., on_diagonal] = diagonal
    symmetric[..., on_diagonal] *= sqrt(2)
    return symmetric


def _dask_vec_to_sym_matrix(vec, diagonal):
    import dask.array as da

    vec = vec.rechunk({vec.ndim - 1: -1})
    # validate the shapes on a tiny eager example of the same sizes
    vec_to_sym_matrix(
        np.zeros(vec.shape[-1:]),
        None if diagonal is None else np.zeros(diagonal.shape[-1:]),
    )
    if diagonal is not None and tuple(diagonal.shape[:-1]) != tuple(vec.shape[:-1]):
        raise ValueError(
            f"diagonal of shape {diagonal.shape} is incompatible with vec of "
            f"shape {vec.shape}: their leading dimensions differ."
        )
    n_values = vec.shape[-1]
    n_columns = int((sqrt(8 * n_values + 1) - 1) / 2) + int(diagonal is not None)
    arrays = [vec]
    if diagonal is not None:
        arrays.append(da.asarray(diagonal).rechunk(vec.chunks[:-1] + ((n_columns,),)))
    return da.map_blocks(
        vec_to_sym_matrix,
        *arrays,
        chunks=vec.chunks[:-1] + ((n_columns,), (n_columns,)),
        drop_axis=vec.ndim - 1,
        new_axis=[vec.ndim - 1, vec.ndim],
        dtype=np.float64,
        meta=np.empty((0,) * (vec.ndim + 1)),
    )


def _apply_to_data(function, array):
    """Apply ``function`` to the data of a DataArray, or to an array."""
    if isinstance(array, xr.DataArray):
        return array.copy(data=function(array.data))
    return function(array)


def cov_to_corr(covariance):
    """Correlation matrices from covariance matrices.

    Parameters
    ----------
    covariance : array-like or xarray.DataArray, shape (..., n, n)
        Covariance matrices (numpy, dask or DataArray).

    Returns
    -------
    correlation : same type as ``covariance``
        ``cov_ij / sqrt(cov_ii cov_jj)``, with exactly 1 on the diagonal.
    """
    return _apply_to_data(_cov_to_corr, covariance)


def _cov_to_corr(covariance):
    if not _is_dask(covariance):
        covariance = np.asarray(covariance)
    _check_square_stack(covariance, "covariance")
    diagonal = np.diagonal(covariance, axis1=-2, axis2=-1)
    inv_sqrt = 1.0 / np.sqrt(diagonal)
    # same operand order as nilearn: cov * d_j * d_i
    correlation = covariance * inv_sqrt[..., None, :] * inv_sqrt[..., :, None]
    on_diagonal = np.eye(covariance.shape[-1], dtype=bool)
    return np.where(on_diagonal, 1.0, correlation)


def prec_to_partial(precision):
    """Partial correlation matrices from precision matrices.

    Parameters
    ----------
    precision : array-like or xarray.DataArray, shape (..., n, n)
        Precision (inverse covariance) matrices.

    Returns
    -------
    partial_correlation : same type as ``precision``
        ``-prec_ij / sqrt(prec_ii prec_jj)``, with exactly 1 on the diagonal.
    """
    return _apply_to_data(_prec_to_partial, precision)


def _prec_to_partial(precision):
    partial = -_cov_to_corr(precision)
    on_diagonal = np.eye(partial.shape[-1], dtype=bool)
    return np.where(on_diagonal, 1.0, partial)


def fisher_z(correlation):
    """Fisher z transform, ``arctanh(r)``, finite at ``|r| = 1``.

    Values are clipped to the largest float64 below 1 in magnitude before
    ``arctanh``, so a perfect correlation (a diagonal, a seed with itself)
    maps to about +/-18.7 rather than infinity, and rounding just above 1
    does not give NaN. NaN stays NaN.

    Parameters
    ----------
    correlation : numpy.ndarray, dask.array.Array or xarray.DataArray
        Correlation values; the type (and laziness) is preserved.

    Returns
    -------
    z : same type as ``correlation``
    """
    return np.arctanh(np.clip(correlation, -_BELOW_ONE, _BELOW_ONE))


def inverse_fisher_z(z):
    """Inverse Fisher transform, ``tanh(z)``, back to correlation values.

    The inverse of :func:`fisher_z` at ``|r| = 1`` too: z at (or within 1e-9
    of) the clipped value of a perfect correlation gives exactly +/-1.

    Parameters
    ----------
    z : array-like or xarray.DataArray
        Fisher z values.
    """
    return np.where(np.abs(z) >= _Z_OF_ONE - 1e-9, np.sign(z), np.tanh(z))


def _form_symmetric(function, eigenvalues, eigenvectors):
    """``V f(w) V^T`` for (stacks of) eigen decompositions."""
    scaled = eigenvectors * function(eigenvalues)[..., None, :]
    return scaled @ np.swapaxes(eigenvectors, -1, -2)


def map_eigenvalues(function, symmetric):
    """Apply a function to the eigenvalues of symmetric matrices.

    ``V f(w) V^T`` where ``symmetric = V w V^T``: ``np.log`` gives the matrix
    logarithm, ``np.sqrt`` the square root, ``lambda w: 1 / np.sqrt(w)`` the
    inverse square root of positive definite matrices.

    Parameters
    ----------
    function : callable
        Vectorized function of the eigenvalues.
    symmetric : numpy.ndarray, shape (..., n, n)
        Real symmetric matrices (only the lower triangle is read).

    Returns
    -------
    numpy.ndarray, shape (..., n, n)
    """
    eigenvalues, eigenvectors = np.linalg.eigh(symmetric)
    return _form_symmetric(function, eigenvalues, eigenvectors)
