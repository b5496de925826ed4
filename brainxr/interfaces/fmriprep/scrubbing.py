"""Volume censoring: motion outliers (Power et al. 2014 scrubbing) and sample masks.

Same rules as nilearn 0.14: a volume is an outlier when its framewise
displacement exceeds ``fd_threshold`` or its standardized DVARS exceeds
``std_dvars_threshold``; with ``scrub > 0``, the kept segments shorter than
``scrub`` volumes (including those at both ends) are removed too. The sample
mask keeps the volumes flagged by no outlier column (fMRIPrep's
``non_steady_state_outlier_XX`` and the motion outliers).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SCRUB_COLUMNS = ("framewise_displacement", "std_dvars")


def remove_short_segments(outliers: np.ndarray, n_volumes: int, scrub: int) -> np.ndarray:
    """Add to ``outliers`` the kept segments shorter than ``scrub`` volumes.

    Parameters
    ----------
    outliers : numpy.ndarray
        Sorted indices of the outlier volumes (at least one).
    n_volumes : int
    scrub : int
        Minimal length of a kept segment.

    Returns
    -------
    numpy.ndarray
        Sorted unique outlier indices.
    """
    outliers = list(outliers)
    if outliers[0] < scrub:
        outliers = list(range(outliers[0])) + outliers
    if n_volumes - (outliers[-1] + 1) < scrub:
        outliers = outliers + list(range(outliers[-1], n_volumes))
    gaps = np.diff(outliers)
    short = np.flatnonzero((gaps > 1) & (gaps < scrub + 1))
    between = [range(outliers[i] + 1, outliers[i + 1]) for i in short]
    for segment in between:
        outliers.extend(segment)
    return np.unique(np.asarray(outliers, dtype=np.int64))


def motion_outliers(table: pd.DataFrame, scrub: int, fd_threshold: float, std_dvars_threshold: float) -> pd.DataFrame:
    """One-hot ``motion_outlier_N`` columns of the volumes to scrub.

    Raises
    ------
    ValueError
        If the table lacks ``framewise_displacement`` or ``std_dvars``.
    """
    missing = [column for column in SCRUB_COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(f"strategy 'scrub' needs the confounds columns {missing}, which the table lacks")
    n_volumes = len(table)
    fd = np.flatnonzero(table["framewise_displacement"].to_numpy(dtype=float) > fd_threshold)
    dvars = np.flatnonzero(table["std_dvars"].to_numpy(dtype=float) > std_dvars_threshold)
    outliers = np.unique(np.concatenate((fd, dvars)))
    if scrub > 0 and len(outliers) > 0:
        outliers = remove_short_segments(outliers, n_volumes, scrub)
    one_hot = np.eye(n_volumes, dtype=int)[outliers].T
    return pd.DataFrame(one_hot, columns=[f"motion_outlier_{i}" for i in range(len(outliers))])


def is_outlier_column(name: str) -> bool:
    """Columns that flag volumes to censor rather than regressors to remove."""
    return "motion_outlier" in name or "non_steady_state" in name
