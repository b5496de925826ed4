"""Connectivity of region and voxel signals, per run and over cohorts.

- nilearn-compatible layer: :class:`ConnectivityMeasure` and the helpers
  :func:`sym_matrix_to_vec`, :func:`vec_to_sym_matrix`, :func:`cov_to_corr`,
  :func:`prec_to_partial`.
- xarray-native: :func:`connectivity` turns ``(time, region)`` signals (or
  cohorts, lazily) into labeled ``(region, region_)`` matrices; group
  reductions :func:`mean_connectome`, :func:`geometric_mean`,
  :func:`tangent_space` are tree reductions over runs.
- voxel-wise: :func:`seed_to_voxel_correlation` (correlation / Fisher z maps,
  lazily over voxel chunks) and :func:`global_connectivity` (blocked, never
  forming the voxel x voxel matrix).
- files: :func:`write_relmat` / :func:`read_relmat` (BIDS-derivative
  ``relmat.tsv``), :func:`write_connectomes` / :func:`open_connectomes`
  (Zarr groups of the cohort store).
- sparse inverse covariance: :class:`GraphicalLasso`,
  :class:`GraphicalLassoCV`, :class:`GroupSparseCovariance`,
  :class:`GroupSparseCovarianceCV` (nilearn's and scikit-learn's estimators).
"""

from brainxr.connectome.estimation import (
    KINDS,
    NotPositiveDefiniteError,
    connectivity,
)
from brainxr.connectome.global_connectivity import global_connectivity
from brainxr.connectome.group import group_sparse_inputs, mean_connectome
from brainxr.connectome.tangent import geometric_mean, tangent_space
from brainxr.connectome.io import (
    open_connectomes,
    read_relmat,
    relmat_filename,
    write_connectomes,
    write_relmat,
    write_relmats,
)
from brainxr.connectome.matrices import (
    cov_to_corr,
    fisher_z,
    inverse_fisher_z,
    map_eigenvalues,
    prec_to_partial,
    sym_matrix_to_vec,
    vec_to_sym_matrix,
)
from brainxr.connectome.measure import ConnectivityMeasure
from brainxr.connectome.seed import seed_to_voxel_correlation

# The sparse estimators' compiled kernels import numba (~0.25 s): loaded on first use, so that what needs
# none of them (``brainxr run`` without the sparse kind) does not pay for it.
_COMPILED = {
    "GraphicalLasso": "sparse_inverse_covariance",
    "GraphicalLassoCV": "sparse_inverse_covariance",
    "graphical_lasso": "sparse_inverse_covariance",
    "graphical_lasso_path": "sparse_inverse_covariance",
    "GroupSparseCovariance": "group_sparse_inverse_covariance",
    "GroupSparseCovarianceCV": "group_sparse_inverse_covariance",
    "group_sparse_covariance": "group_sparse_inverse_covariance",
    "group_sparse_covariance_path": "group_sparse_inverse_covariance",
}


def __getattr__(name):
    if name in _COMPILED:
        import importlib

        return getattr(importlib.import_module(f"brainxr.connectome.{_COMPILED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_COMPILED))


__all__ = [
    "KINDS",
    "ConnectivityMeasure",
    "GraphicalLasso",
    "GraphicalLassoCV",
    "GroupSparseCovariance",
    "GroupSparseCovarianceCV",
    "NotPositiveDefiniteError",
    "connectivity",
    "cov_to_corr",
    "fisher_z",
    "geometric_mean",
    "global_connectivity",
    "graphical_lasso",
    "graphical_lasso_path",
    "group_sparse_covariance",
    "group_sparse_covariance_path",
    "group_sparse_inputs",
    "inverse_fisher_z",
    "map_eigenvalues",
    "mean_connectome",
    "open_connectomes",
    "prec_to_partial",
    "read_relmat",
    "relmat_filename",
    "seed_to_voxel_correlation",
    "sym_matrix_to_vec",
    "tangent_space",
    "vec_to_sym_matrix",
    "write_connectomes",
    "write_relmat",
    "write_relmats",
]
