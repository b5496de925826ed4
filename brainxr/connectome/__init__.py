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
from brainxr.connectome.group_sparse_inverse_covariance import (
    GroupSparseCovariance,
    GroupSparseCovarianceCV,
    group_sparse_covariance,
    group_sparse_covariance_path,
)
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
from brainxr.connectome.sparse_inverse_covariance import (
    GraphicalLasso,
    GraphicalLassoCV,
    graphical_lasso,
    graphical_lasso_path,
)

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
