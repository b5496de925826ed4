"""The compiled Butterworth recursion of :mod:`brainxr.signal.filters`.

A module of its own so that numba (a third of a second to import) is
imported when a filter first runs, not with every masker.
"""

import numba
import numpy as np


@numba.njit(nogil=True, cache=True)
def sosfilt_rows(sos, values, state, backward):
    """Run the cascade over the rows of ``values`` in place, all columns at once.

    ``state`` (n_sections, 2, n_columns) holds the filter delays and is
    updated. The delays of each section and the current row live in their
    own contiguous arrays, so the loop over columns vectorises.
    """
    n_time, n_columns = values.shape
    n_sections = sos.shape[0]
    delay0 = state[:, 0, :].copy()
    delay1 = state[:, 1, :].copy()
    row = np.empty(n_columns)
    for step in range(n_time):
        t = n_time - 1 - step if backward else step
        for c in range(n_columns):
            row[c] = values[t, c]
        for s in range(n_sections):
            b0 = sos[s, 0]
            b1 = sos[s, 1]
            b2 = sos[s, 2]
            a1 = sos[s, 4]
            a2 = sos[s, 5]
            z0 = delay0[s]
            z1 = delay1[s]
            for c in range(n_columns):
                x = row[c]
                y = b0 * x + z0[c]
                z0[c] = b1 * x - a1 * y + z1[c]
                z1[c] = b2 * x - a2 * y
                row[c] = y
        for c in range(n_columns):
            values[t, c] = row[c]
    state[:, 0, :] = delay0
    state[:, 1, :] = delay1
