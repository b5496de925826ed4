"""The cleaning plan of a run: every time-domain object the kernel needs.

A run's plan depends only on its length, confounds, sample mask and options,
never on the signals, so it is built once (it is small: a few ``(time, k)``
matrices) and shared by every block of voxels. It follows nilearn 0.14's
order of operations:

1. ``filter='cosine'``: cosine drift regressors appended to the confounds;
2. ``sample_mask``: with Butterworth filtering, censored volumes are replaced
   by a cubic spline through the kept ones (volumes outside the first and
   last kept ones are dropped unless ``extrapolate``); otherwise censored
   volumes are dropped now;
3. linear detrending of signals and confounds;
4. Butterworth filtering of signals and confounds, then censoring;
5. confounds standardized, orthonormalised by pivoted QR (numerically
   dependent columns dropped) and projected out of the signals;
6. standardization of the signals.

Every step before 6 is linear in the signals; the spline interpolation is
stored as a weight matrix on the kept volumes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields

import numpy as np

from brainxr.signal.filters import ButterworthFilter, cosine_drift, design_butterworth, filtfilt_columns
from brainxr.signal.kernel import EPS, detrend_columns, zscore_columns


@dataclass(frozen=True, eq=False)
class CleaningPlan:
    """Precomputed cleaning steps of one run (see the module docstring).

    Attributes
    ----------
    n_input : int
        Volumes in the run.
    support : slice or numpy.ndarray
        Input volumes that enter the cleaning (all, the span of the kept
        volumes, or the kept volumes themselves when censoring comes first).
    knots : numpy.ndarray
        Positions, within the support, of the kept volumes that carry the
        interpolation.
    interpolated : numpy.ndarray
        Positions, within the support, of the censored volumes to interpolate.
    interpolation_weights : numpy.ndarray, shape (len(interpolated), len(knots))
        Cubic-spline weights: ``support[interpolated] = weights @ support[knots]``.
    detrend : bool
    butterworth : ButterworthFilter or None
    censor : numpy.ndarray or None
        Rows kept after filtering (positions within the support).
    confound_basis : numpy.ndarray or None, shape (n_output, r)
        Orthonormal basis of the filtered, censored, standardized confounds.
    standardize : {'zscore_sample', 'psc', None}
    ensure_finite : bool
    output_frames : numpy.ndarray
        Index, in the run, of the volume behind each output row.
    """

    n_input: int
    support: slice | np.ndarray
    knots: np.ndarray
    interpolated: np.ndarray
    interpolation_weights: np.ndarray
    detrend: bool
    butterworth: ButterworthFilter | None
    censor: np.ndarray | None
    confound_basis: np.ndarray | None
    standardize: str | None
    ensure_finite: bool
    output_frames: np.ndarray

    @property
    def n_output(self) -> int:
        """Volumes in the cleaned run."""
        return len(self.output_frames)

    @property
    def work_rows(self) -> int:
        """Rows of the largest working array (the padded support)."""
        n_support = len(range(self.n_input)[self.support]) if isinstance(self.support, slice) else len(self.support)
        pad = self.butterworth.padlen if self.butterworth is not None else 0
        return n_support + 2 * pad

    def __dask_tokenize__(self):
        from dask.base import tokenize

        values = []
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, ButterworthFilter):
                value = (value.sos, value.zi, value.padtype, value.padlen)
            elif isinstance(value, slice):
                value = (value.start, value.stop)
            values.append(value)
        return ("CleaningPlan", tokenize(*values))


def _spline_weights(knot_times: np.ndarray, target_times: np.ndarray, extrapolate: bool) -> np.ndarray:
    """Weights ``W`` such that ``CubicSpline(knot_times, y)(target_times) == W @ y``.

    The not-a-knot cubic spline is linear in ``y``: fitting it to the identity
    gives its weights (in batches of columns to keep memory small).
    """
    from scipy.interpolate import CubicSpline  # imported here: with scipy.optimize, ~0.15 s of start-up

    n_knots = len(knot_times)
    weights = np.empty((len(target_times), n_knots))
    if len(target_times) == 0:
        return weights
    batch = 256
    for start in range(0, n_knots, batch):
        stop = min(start + batch, n_knots)
        unit = np.zeros((n_knots, stop - start))
        unit[np.arange(start, stop), np.arange(stop - start)] = 1.0
        weights[:, start:stop] = CubicSpline(knot_times, unit, extrapolate=extrapolate)(target_times)
    return weights


def _add_cosine_drifts(confounds, n_time: int, high_pass: float, t_r: float):
    """Append the cosine drift terms unless the user's confounds already hold them."""
    drifts = cosine_drift(high_pass, np.arange(n_time) * t_r)
    n_drifts = drifts.shape[1]
    if n_drifts == 0:
        warnings.warn(
            "Cosine filter was not created. The time series might be too short or the high "
            "pass filter is not suitable for the data.",
            stacklevel=4,
        )
        return confounds
    if confounds is None:
        return drifts
    with np.errstate(divide="ignore", invalid="ignore"):
        correlation = np.corrcoef(drifts.T, confounds.T)
    np.fill_diagonal(correlation, 0)
    if np.sum(correlation[:n_drifts, :].flatten() > 0.9) > 0:
        warnings.warn(
            "Cosine filter(s) exist in user supplied confounds.Use user supplied regressors only.",
            stacklevel=4,
        )
        return confounds
    return np.hstack((confounds, drifts))


def _confound_basis(confounds: np.ndarray, standardize_confounds: bool) -> np.ndarray | None:
    """Orthonormal basis of the confounds' column space (pivoted QR, as nilearn)."""
    if standardize_confounds:
        confounds = zscore_columns(confounds)
    else:
        # only rescale: a constant column must stay a constant regressor
        largest = np.max(np.abs(confounds), axis=0)
        largest[largest == 0] = 1
        confounds = confounds / largest
    from scipy import linalg  # on first use (~30 ms of a fresh process): a script without confounds skips it

    q, r, _ = linalg.qr(confounds, mode="economic", pivoting=True)
    diagonal = np.abs(np.diag(r))
    # nilearn keeps |R_ii| > 100 eps; a column that depends on the others
    # exactly leaves |R_ii| at rounding level (~1e-14 for z-scored columns),
    # which can pass that absolute bar and project out a noise direction. The
    # bar here also scales with the problem, as numpy.linalg.matrix_rank does.
    tolerance = max(EPS * 100.0, (diagonal[0] if diagonal.size else 0.0) * max(confounds.shape) * EPS)
    basis = q[:, diagonal > tolerance]
    return np.ascontiguousarray(basis) if basis.shape[1] else None


def make_cleaning_plan(
    n_time: int,
    *,
    confounds: np.ndarray | None = None,
    sample_mask: np.ndarray | None = None,
    detrend: bool = True,
    standardize: str | None = "zscore_sample",
    standardize_confounds: bool = True,
    filter: str | bool = "butterworth",
    low_pass: float | None = None,
    high_pass: float | None = None,
    t_r: float | None = 2.5,
    ensure_finite: bool = False,
    extrapolate: bool = False,
    butterworth_options: dict | None = None,
) -> CleaningPlan:
    """Build the cleaning plan of one run.

    Parameters are those of :func:`brainxr.signal.clean`, already checked:
    ``confounds`` a finite float64 ``(n_time, k)`` array or None,
    ``sample_mask`` sorted unique indices or None, ``filter`` the filter that
    really runs (``'butterworth'``, ``'cosine'`` or False).

    Returns
    -------
    CleaningPlan
    """
    butterworth_options = butterworth_options or {}
    if filter == "cosine":
        confounds = _add_cosine_drifts(confounds, n_time, high_pass, t_r)
        if low_pass is not None:
            warnings.warn("low_pass is not implemented for filter='cosine'", stacklevel=3)

    no_interpolation = np.empty(0, dtype=np.int64)
    knots, interpolated, weights = no_interpolation, no_interpolation, np.empty((0, 0))
    censor = None
    if sample_mask is None:
        support = slice(0, n_time)
        output_frames = np.arange(n_time)
    elif filter == "butterworth":
        # interpolate censored volumes, filter, then censor
        start, stop = (0, n_time) if extrapolate else (int(sample_mask[0]), int(sample_mask[-1]) + 1)
        support = slice(start, stop)
        knots = sample_mask - start
        interpolated = np.setdiff1d(np.arange(stop - start), knots)
        frame_times = np.arange(n_time, dtype=np.float64) * t_r
        weights = _spline_weights(frame_times[sample_mask], frame_times[interpolated + start], extrapolate)
        censor = knots
        output_frames = sample_mask
    else:
        # censor first (cosine drifts were built on the full run above)
        support = sample_mask
        output_frames = sample_mask

    butter = None
    if filter == "butterworth":
        butter = design_butterworth(1.0 / t_r, low_pass=low_pass, high_pass=high_pass, **butterworth_options)
        if butter is not None:
            butter.check_length(len(range(n_time)[support]))

    basis = None
    if confounds is not None:
        work = np.array(confounds[support], dtype=np.float64)
        if interpolated.size:
            work[interpolated] = weights @ work[knots]
        if detrend:
            detrend_columns(work)
        if butter is not None:
            work = filtfilt_columns(butter, work)
        if censor is not None:
            work = work[censor]
        basis = _confound_basis(work, standardize_confounds)

    return CleaningPlan(
        n_input=n_time,
        support=support,
        knots=knots,
        interpolated=interpolated,
        interpolation_weights=weights,
        detrend=bool(detrend),
        butterworth=butter,
        censor=censor,
        confound_basis=basis,
        standardize=standardize,
        ensure_finite=bool(ensure_finite),
        output_frames=np.asarray(output_frames, dtype=np.int64),
    )
