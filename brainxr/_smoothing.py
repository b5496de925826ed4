"""scipy's Gaussian filter along one axis, compiled: the same values, bit for bit, several times faster.

``scipy.ndimage.gaussian_filter1d`` (nilearn's smoothing, one axis at a
time) reads each line into a float64 buffer extended by reflection
(``mode="reflect"``), computes every output as
``x[l] * w[0] + sum_{j=r..1} (x[l - j] + x[l + j]) * w[j]`` (its symmetric
kernel branch: outermost taps first) and rounds it to the array's dtype.
The kernels below do the same operations in the same order, but many lines
side by side, so that the loops vectorise. A module of its own so that numba
(a third of a second to import) is imported only where it pays.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["gaussian_filter1d_inplace", "gaussian_weights"]


def gaussian_weights(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """The centre and one side of scipy's Gaussian kernel: ``w[0]`` (centre), ``w[j]`` for offset ``j``.

    Built as ``scipy.ndimage._filters._gaussian_kernel1d`` builds it (the
    kernel is exactly symmetric: its values depend on ``x ** 2``).
    """
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    phi = phi / phi.sum()
    return phi[radius:].copy()


def _reflect_index(n: int, radius: int) -> np.ndarray:
    """Source index of positions ``-radius .. n + radius - 1`` under scipy's ``reflect`` extension (d c b a | a b c d | d c b a)."""
    position = np.mod(np.arange(-radius, n + radius), 2 * n)
    return np.where(position >= n, 2 * n - 1 - position, position).astype(np.int64)


@numba.njit(cache=True, nogil=True)
def _filter_middle_axis(values, weights, index):
    """Filter along axis 1 of a C-contiguous ``(outer, n, inner)`` array in place, the ``inner`` lines side by side."""
    outer, n, inner = values.shape
    radius = weights.shape[0] - 1
    line = np.empty((n, inner))
    total = np.empty(inner)
    for o in range(outer):
        for position in range(n):
            for q in range(inner):
                line[position, q] = values[o, position, q]
        for position in range(n):
            for q in range(inner):
                total[q] = line[position, q] * weights[0]
            for j in range(radius, 0, -1):
                left = index[position - j + radius]
                right = index[position + j + radius]
                weight = weights[j]
                for q in range(inner):
                    total[q] += (line[left, q] + line[right, q]) * weight
            for q in range(inner):
                values[o, position, q] = total[q]


@numba.njit(cache=True, nogil=True)
def _filter_last_axis(values, weights, index):
    """Filter along the last axis of a C-contiguous ``(outer, m, n)`` array in place.

    The ``m`` lines of each plane are transposed into a buffer side by side
    (with their reflected ends), so the arithmetic vectorises across lines.
    """
    outer, m, n = values.shape
    radius = weights.shape[0] - 1
    extended = np.empty((n + 2 * radius, m))
    total = np.empty(m)
    for o in range(outer):
        for q in range(m):
            for p in range(n + 2 * radius):
                extended[p, q] = values[o, q, index[p]]
        for position in range(n):
            for q in range(m):
                total[q] = extended[position + radius, q] * weights[0]
            for j in range(radius, 0, -1):
                weight = weights[j]
                for q in range(m):
                    total[q] += (extended[position + radius - j, q] + extended[position + radius + j, q]) * weight
            for q in range(m):
                values[o, q, position] = total[q]


def gaussian_filter1d_inplace(values: np.ndarray, sigma: float, axis: int) -> np.ndarray:
    """``scipy.ndimage.gaussian_filter1d(values, sigma, axis=axis, output=values)``, compiled.

    Parameters
    ----------
    values : numpy.ndarray
        C-contiguous float32 or float64 array of at least 2 dimensions,
        filtered in place.
    sigma : float
        Standard deviation of the kernel in voxels (truncated at 4 sigma, as
        scipy's default).
    axis : int
        The axis filtered.

    Returns
    -------
    numpy.ndarray
        ``values``.
    """
    if values.dtype not in (np.float32, np.float64) or not values.flags.c_contiguous or values.ndim < 2:
        raise ValueError(f"expected a C-contiguous float32/float64 array of 2 or more dims, got {values.dtype} {values.shape}")
    axis = axis % values.ndim
    weights = gaussian_weights(sigma)
    n = values.shape[axis]
    index = _reflect_index(n, weights.shape[0] - 1)
    outer = int(np.prod(values.shape[:axis]))
    inner = int(np.prod(values.shape[axis + 1:]))
    if inner > 1:
        _filter_middle_axis(values.reshape(outer, n, inner), weights, index)
    else:
        lines = values.shape[axis - 1] if axis > 0 else 1
        _filter_last_axis(values.reshape(outer // lines, lines, n), weights, index)
    return values
