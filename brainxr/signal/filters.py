"""Temporal filters: Butterworth band-pass (zero phase) and cosine drift terms.

The Butterworth filter is :func:`scipy.signal.sosfiltfilt` with nilearn's
design (``butter(N=order, output="sos")``, critical frequencies nudged inside
``(0, Nyquist)``). scipy filters one column at a time along ``axis=0``; here a
numba kernel runs the same direct-form II transposed recursion over all the
columns of a ``(time, n)`` block at once, row by row, which is several times
faster on voxel tables and gives the same numbers (the arithmetic is the same,
term for term).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import numpy as np

PADTYPES = ("odd", "even", "constant", None)


@dataclass(frozen=True)
class ButterworthFilter:
    """A designed zero-phase Butterworth filter, ready to run on blocks.

    Attributes
    ----------
    sos : numpy.ndarray, shape (n_sections, 6)
        Second-order sections (float64).
    zi : numpy.ndarray, shape (n_sections, 2)
        Steady-state initial conditions for a unit step (``sosfilt_zi``).
    padtype : {"odd", "even", "constant", None}
        Extension added at both ends before filtering.
    padlen : int
        Number of samples added at each end (0 when ``padtype`` is None).
    """

    sos: np.ndarray
    zi: np.ndarray
    padtype: str | None
    padlen: int

    def check_length(self, n_time: int) -> None:
        """Raise if a signal of ``n_time`` samples is too short to be padded."""
        if n_time <= self.padlen:
            raise ValueError(
                f"Butterworth filtering needs more than padlen={self.padlen} time points "
                f"(padtype={self.padtype!r}) but the run has {n_time} to filter; use a "
                "shorter butterworth__padlen, or censor fewer volumes at the run's edges"
            )


def _nudge_critical_frequency(btype: str, freq: float, nyquist: float) -> float:
    """Keep a critical frequency strictly inside (0, Nyquist), as nilearn does."""
    eps = np.finfo(np.float32).eps
    if freq >= nyquist:
        freq = nyquist - (nyquist * 10 * eps)
        warnings.warn(
            f"The frequency specified for the {btype} pass filter is too high to be handled "
            "by a digital filter (superior to Nyquist frequency). "
            f"It has been lowered to {freq} (Nyquist frequency).",
            stacklevel=3,
        )
    elif freq < 0.0:
        freq = nyquist * eps
        warnings.warn(
            f"The frequency specified for the {btype} pass filter is too low to be handled "
            f"by a digital filter (must be non-negative). It has been set to eps: {freq}.",
            stacklevel=3,
        )
    return freq


def design_butterworth(
    sampling_rate: float,
    low_pass: float | None = None,
    high_pass: float | None = None,
    order: int = 5,
    padtype: str | None = "odd",
    padlen: int | None = None,
) -> ButterworthFilter | None:
    """Design nilearn's Butterworth filter.

    Parameters
    ----------
    sampling_rate : float
        Samples per second (``1 / t_r``).
    low_pass, high_pass : float or None
        Cutoff frequencies in Hz; both None means no filtering.
    order : int, default=5
        Butterworth order.
    padtype : {"odd", "even", "constant", None}, default="odd"
        Padding, as in :func:`scipy.signal.sosfiltfilt`.
    padlen : int or None
        Padding length; None uses scipy's default for second-order sections.

    Returns
    -------
    ButterworthFilter or None
        None when there is nothing to filter: no cutoff, or a band whose two
        cutoffs were both moved to the same frequency (nilearn then returns the
        signals unfiltered, with a warning).
    """
    if low_pass is None and high_pass is None:
        return None
    if low_pass is not None and high_pass is not None and high_pass >= low_pass:
        raise ValueError(
            f"high_pass ({high_pass}) must be lower than low_pass ({low_pass}): "
            "a band-pass filter keeps the frequencies between them"
        )
    if padtype not in PADTYPES:
        raise ValueError(f"butterworth__padtype must be one of {PADTYPES}, got {padtype!r}")
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"butterworth__order must be a positive integer, got {order!r}")
    if padlen is not None and (
        isinstance(padlen, bool) or not isinstance(padlen, (int, np.integer)) or padlen < 0
    ):
        raise ValueError(f"butterworth__padlen must be None or a non-negative integer, got {padlen!r}")

    nyquist = sampling_rate * 0.5
    critical = []
    if high_pass is not None:
        btype = "high"
        critical.append(_nudge_critical_frequency(btype, high_pass, nyquist))
    if low_pass is not None:
        btype = "low"
        critical.append(_nudge_critical_frequency(btype, low_pass, nyquist))
    if len(critical) == 2:
        btype = "band"
        if critical[0] == critical[1]:
            warnings.warn(
                "Signals are returned unfiltered because band-pass critical frequencies are "
                "equal. Please check that inputs for sampling_rate, low_pass, and high_pass "
                "are valid.",
                stacklevel=2,
            )
            return None
        wn = tuple(critical)
    else:
        wn = critical[0]
    return _butterworth(int(order), wn, btype, float(sampling_rate), padtype, padlen)


@functools.lru_cache(maxsize=64)
def _butterworth(order: int, wn, btype: str, sampling_rate: float, padtype, padlen) -> ButterworthFilter:
    """The filter of checked parameters, designed once per process (a cohort's runs share a few).

    Designing it (scipy's ``butter`` and ``sosfilt_zi``) took about 2 ms, a
    large share of a cohort run's cleaning plan. Callers share its arrays and never write them (they stay
    writeable: numba compiles its kernels anew for read-only arrays).
    """
    from scipy import signal as sp_signal  # imported here: ~1 s of scipy.signal start-up only when filtering

    sos = sp_signal.butter(N=order, Wn=list(wn) if isinstance(wn, tuple) else wn, btype=btype, output="sos",
                           fs=sampling_rate)
    sos = np.ascontiguousarray(sos, dtype=np.float64)

    # scipy.signal.sosfiltfilt's default padding length
    n_taps = 2 * len(sos) + 1 - min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    if padtype is None:
        edge = 0
    elif padlen is None:
        edge = 3 * n_taps
    else:
        edge = int(padlen)
    zi = np.ascontiguousarray(sp_signal.sosfilt_zi(sos), dtype=np.float64)
    return ButterworthFilter(sos=sos, zi=zi, padtype=padtype, padlen=edge)


def padded_buffer(n_time: int, n_columns: int, padlen: int) -> tuple[np.ndarray, np.ndarray]:
    """A float64 ``(n_time + 2 padlen, n_columns)`` buffer and the view of its middle rows."""
    buffer = np.empty((n_time + 2 * padlen, n_columns), dtype=np.float64)
    return buffer, buffer[padlen : padlen + n_time]


def filtfilt_buffer(butter: ButterworthFilter, buffer: np.ndarray) -> np.ndarray:
    """Zero-phase filter, in place, the signals in the middle rows of ``buffer``.

    ``buffer`` comes from :func:`padded_buffer` with ``butter.padlen``; its
    edge rows are filled here with the padding, then both passes run.

    Returns
    -------
    numpy.ndarray
        The view of the filtered middle rows.
    """
    edge = butter.padlen
    n_time = buffer.shape[0] - 2 * edge
    butter.check_length(n_time)
    values = buffer[edge : edge + n_time]
    if edge:
        first, last = values[0], values[-1]
        head = values[edge:0:-1]  # x[edge], ..., x[1]
        tail = values[-2 : -edge - 2 : -1]  # x[-2], ..., x[-edge-1]
        if butter.padtype == "odd":
            np.subtract(2 * first, head, out=buffer[:edge])
            np.subtract(2 * last, tail, out=buffer[edge + n_time :])
        elif butter.padtype == "even":
            buffer[:edge] = head
            buffer[edge + n_time :] = tail
        else:  # constant
            buffer[:edge] = first
            buffer[edge + n_time :] = last
    from brainxr.signal._sosfilt import sosfilt_rows  # numba, imported when a filter first runs

    state = butter.zi[:, :, None] * buffer[0][None, None, :]
    sosfilt_rows(butter.sos, buffer, state, False)
    state = butter.zi[:, :, None] * buffer[-1][None, None, :]
    sosfilt_rows(butter.sos, buffer, state, True)
    return values


def filtfilt_columns(butter: ButterworthFilter, values: np.ndarray) -> np.ndarray:
    """Zero-phase filter every column of a ``(time, n)`` array.

    Equals ``scipy.signal.sosfiltfilt(butter.sos, values, axis=0,
    padtype=butter.padtype, padlen=butter.padlen)``.

    Parameters
    ----------
    butter : ButterworthFilter
    values : numpy.ndarray, shape (n_time, n)

    Returns
    -------
    numpy.ndarray
        float64 array of the same shape (a new array).
    """
    butter.check_length(values.shape[0])
    shape = values.shape
    values = values.reshape(shape[0], -1)
    buffer, middle = padded_buffer(values.shape[0], values.shape[1], butter.padlen)
    middle[...] = values
    return filtfilt_buffer(butter, buffer).reshape(shape)


def butterworth(
    signals,
    sampling_rate: float,
    low_pass: float | None = None,
    high_pass: float | None = None,
    order: int = 5,
    padtype: str | None = "odd",
    padlen: int | None = None,
    copy: bool = False,
) -> np.ndarray:
    """Apply a low-, high- or band-pass Butterworth filter (zero phase).

    Same parameters and results as :func:`nilearn.signal.butterworth`.

    Parameters
    ----------
    signals : numpy.ndarray, shape (n_time,) or (n_time, n)
        A signal is a column.
    sampling_rate : float
        Samples per second, in Hz.
    low_pass, high_pass : float or None
        Cutoff frequencies in Hz.
    order : int, default=5
    padtype : {"odd", "even", "constant", None}, default="odd"
    padlen : int or None
    copy : bool, default=False
        If False, ``signals`` is filtered in place (and returned).

    Returns
    -------
    numpy.ndarray
    """
    signals = np.asarray(signals)
    design = design_butterworth(sampling_rate, low_pass, high_pass, order, padtype, padlen)
    if design is None:
        return signals.copy() if copy else signals
    filtered = filtfilt_columns(design, signals.reshape(signals.shape[0], -1)).reshape(signals.shape)
    if copy:
        return filtered
    signals[...] = filtered
    return signals


def cosine_drift(high_pass: float, frame_times: np.ndarray) -> np.ndarray:
    """Discrete cosine (DCT-II) drift regressors up to ``high_pass`` Hz.

    Same as :func:`nilearn.glm.first_level.design_matrix.create_cosine_drift`
    without its final constant column.

    Parameters
    ----------
    high_pass : float
        Cutoff frequency in Hz.
    frame_times : numpy.ndarray, shape (n_time,)
        Acquisition times in seconds.

    Returns
    -------
    numpy.ndarray, shape (n_time, n_drifts)
    """
    n_frames = len(frame_times)
    times = np.arange(n_frames)
    dt = (frame_times[-1] - frame_times[0]) / (n_frames - 1)
    if high_pass * dt >= 0.5:
        warnings.warn(
            "High-pass filter will span all accessible frequencies and saturate the design "
            f"matrix. You may want to reduce the high_pass value.The provided value is {high_pass} Hz",
            stacklevel=3,
        )
    order = min(n_frames - 1, int(np.floor(2 * n_frames * high_pass * dt)))
    drifts = np.zeros((n_frames, order))
    normalizer = np.sqrt(2.0 / n_frames)
    for k in range(1, order + 1):
        drifts[:, k - 1] = normalizer * np.cos((np.pi / n_frames) * (times + 0.5) * k)
    return drifts
