"""High-variance confounds (CompCor-like), as nilearn's ``signal.high_variance_confounds``.

The maskers' ``high_variance_confounds=True`` and
:func:`brainxr.image.high_variance_confounds` (the same on the voxels of an
image) use this function.
"""

from __future__ import annotations

import numpy as np


def _detrend(signals: np.ndarray) -> np.ndarray:
    """Remove the mean and the linear trend of each column, in the signals' dtype."""
    signals = signals - signals.mean(axis=0)
    if signals.shape[0] == 1:
        return signals
    regressor = np.arange(signals.shape[0], dtype=signals.dtype)
    regressor -= regressor.mean()
    norm = np.sqrt((regressor**2).sum())
    if not norm < np.finfo(np.float64).eps:
        regressor /= norm
    signals -= np.outer(regressor, regressor @ signals)
    return signals


def high_variance_confounds(signals: np.ndarray, n_confounds: int = 5, percentile: float = 2.0, detrend: bool = True) -> np.ndarray:
    """The main temporal components of the highest-variance signals.

    Keeps the signals whose mean of squares (after detrending) is above the
    ``100 - percentile`` percentile and returns the ``n_confounds`` left
    singular vectors with the largest singular values.

    Parameters
    ----------
    signals : ``(time, n)`` array
    n_confounds : int, default=5
    percentile : float, default=2.0
    detrend : bool, default=True

    Returns
    -------
    ``(time, n_confounds)`` array
    """
    signals = np.asarray(signals)
    if signals.dtype.kind != "f":
        signals = signals.astype(np.float64)
    if detrend:
        signals = _detrend(signals)
    mean_square = (signals**2).mean(axis=0)
    threshold = np.nanpercentile(mean_square, 100.0 - percentile)
    selected = signals[:, mean_square > threshold]
    import scipy.linalg  # on first use (~30 ms of a fresh process)

    eigenvalues, eigenvectors = scipy.linalg.eigh(selected @ selected.T / selected.shape[0])
    order = np.argsort(eigenvalues)[::-1]
    return eigenvectors[:, order[:n_confounds]].copy()
