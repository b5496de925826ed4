"""Ground-truth connectivity of the synthetic cohort and region signals drawn from it.

The truth is a sparse precision (inverse covariance) matrix over the parcels
of the synthetic labels atlas:

- each parcel is linked to its homotopic partner in the other hemisphere;
- to its nearest parcels of the same network in the same hemisphere;
- to the nearest same-network parcel in the other hemisphere (for some);
- a few negative partial correlations join the default network to the
  dorsal-attention and salience networks (the classic anticorrelation).

Partial correlations are set on these edges, the diagonal is made dominant
(so the matrix is positive definite with a bounded condition number) and the
matrix is rescaled so that the covariance has a unit diagonal (it is then
also the correlation matrix).

Region signals are draws from N(0, covariance), temporally band-limited by
convolution with a unit-energy canonical haemodynamic response: the same
filter on every region, so the covariance of the filtered signals is still
the truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal as sps
from scipy import stats

_N_WITHIN_NEIGHBOURS = 3
_HOMOTOPIC_STRENGTH = 0.35
_WITHIN_STRENGTH = 0.25
_CROSS_STRENGTH = 0.12
_ANTI_STRENGTH = -0.15
_DIAGONAL_MARGIN = 0.3
_ANTICORRELATED = (("Default", "DorsAttn"), ("Default", "SalVentAttn"))


@dataclass(frozen=True)
class GroundTruth:
    """Sparse precision and its covariance, over named regions (unit-variance scale)."""

    precision: np.ndarray
    covariance: np.ndarray
    region_names: tuple

    @property
    def partial_correlation(self):
        """Partial correlations ``-P_ij / sqrt(P_ii P_jj)``, ones on the diagonal."""
        scale = np.sqrt(np.diag(self.precision))
        partial = -self.precision / np.outer(scale, scale)
        np.fill_diagonal(partial, 1.0)
        return partial


def make_ground_truth(region_table, rng):
    """Build the sparse ground-truth precision over the regions of ``region_table``.

    Parameters
    ----------
    region_table : pandas.DataFrame
        ``name, network, hemisphere, x, y, z`` in label order, left half then
        the mirrored right half (as :func:`load_synthetic_labels_atlas`).
    rng : numpy.random.Generator

    Returns
    -------
    GroundTruth
    """
    n_regions = len(region_table)
    half = n_regions // 2
    centres = region_table[["x", "y", "z"]].to_numpy(float)
    networks = region_table["network"].to_numpy()
    hemispheres = region_table["hemisphere"].to_numpy()
    distance = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    partial = np.zeros((n_regions, n_regions))

    def link(i, j, strength):
        value = strength * rng.uniform(0.8, 1.2)
        partial[i, j] = partial[j, i] = value

    for i in range(half):
        link(i, i + half, _HOMOTOPIC_STRENGTH)
    for i in range(n_regions):
        same = np.flatnonzero((networks == networks[i]) & (hemispheres == hemispheres[i]))
        same = same[same != i]
        for j in same[np.argsort(distance[i, same])][:_N_WITHIN_NEIGHBOURS]:
            if partial[i, j] == 0:
                link(i, j, _WITHIN_STRENGTH)
    for i in range(half):
        other = np.flatnonzero((networks == networks[i]) & (hemispheres != hemispheres[i]))
        other = other[other != i + half]
        if len(other) and rng.uniform() < 0.5:
            j = other[np.argmin(distance[i, other])]
            if partial[i, j] == 0:
                link(i, j, _CROSS_STRENGTH)
    for first, second in _ANTICORRELATED:
        for i in np.flatnonzero(networks == second):
            candidates = np.flatnonzero((networks == first) & (hemispheres == hemispheres[i]))
            if len(candidates):
                j = candidates[np.argmin(distance[i, candidates])]
                link(i, j, _ANTI_STRENGTH)

    precision = -partial
    np.fill_diagonal(precision, np.abs(partial).sum(axis=1) + _DIAGONAL_MARGIN)
    covariance = np.linalg.inv(precision)
    scale = np.sqrt(np.diag(covariance))
    covariance = covariance / np.outer(scale, scale)
    precision = precision * np.outer(scale, scale)
    # exact symmetry, so that files and Cholesky factors do not depend on rounding
    covariance = (covariance + covariance.T) / 2
    precision = (precision + precision.T) / 2
    np.fill_diagonal(covariance, 1.0)
    return GroundTruth(precision, covariance, tuple(region_table["name"]))


def haemodynamic_filter(t_r, duration=32.0):
    """SPM's canonical double-gamma response sampled every ``t_r`` s, unit energy."""
    times = np.arange(0.0, duration, t_r)
    response = stats.gamma.pdf(times, 6.0) - stats.gamma.pdf(times, 16.0) / 6.0
    return response / np.linalg.norm(response)


def band_limited_noise(n_times, n_signals, t_r, rng, covariance=None):
    """Gaussian signals with the given covariance, filtered by the haemodynamic response.

    Parameters
    ----------
    n_times, n_signals : int
    t_r : float
    rng : numpy.random.Generator
    covariance : ndarray (n_signals, n_signals), optional
        Identity when omitted.

    Returns
    -------
    ndarray (n_times, n_signals), float64
    """
    kernel = haemodynamic_filter(t_r)
    burn_in = len(kernel)
    white = rng.standard_normal((n_times + burn_in, n_signals))
    if covariance is not None:
        white = white @ np.linalg.cholesky(covariance).T
    filtered = sps.lfilter(kernel, [1.0], white, axis=0)
    return filtered[burn_in:]
