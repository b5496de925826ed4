"""Connectivity of region and voxel signals, per run and over cohorts.

- nilearn-compatible layer: :class:`ConnectivityMeasure` and the helpers
  :func:`sym_matrix_to_vec`, :func:`vec_to_sym_matrix`, :func:`cov_to_corr`,
  :func:`prec_to_partial`.
- xarray-native: :func:`connectivity` turns ``(time, region)`` signals (or
  cohorts, lazily) into labeled ``(region, region_)`` matrices; group
  reductions :func:`mean_connectome`, :func:`geometric_mean`,
  :func:`tangent_space` are tree reductions over runs.
"""

from brainxr.connectome.estimation import (
    KINDS,
    NotPositiveDefiniteError,
    connectivity,
)
from brainxr.connectome.group import geometric_mean, mean_connectome, tangent_space
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

__all__ = [
    "KINDS",
    "ConnectivityMeasure",
    "NotPositiveDefiniteError",
    "connectivity",
    "cov_to_corr",
    "fisher_z",
    "geometric_mean",
    "inverse_fisher_z",
    "map_eigenvalues",
    "mean_connectome",
    "prec_to_partial",
    "sym_matrix_to_vec",
    "tangent_space",
    "vec_to_sym_matrix",
]
