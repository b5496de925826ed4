"""The compiled loop of :func:`brainxr.regions._reductions.project_columns`.

A module of its own so that numba (a third of a second to import) is
imported when a projection first runs, not with every masker.
"""

import numba
import numpy as np

#: voxels gathered (and transposed to float64) at a time: ``TILE x time`` float64 stays in the CPU's cache
TILE = 256


@numba.njit(nogil=True, cache=True)
def weighted_sums(block, needed, usable, indptr, regions, weights, scan, zero_non_finite, sums, counts):
    """Add the weighted sums of the block's voxels to ``sums`` (region, time) and ``counts`` (region,).

    ``needed`` are the block's columns with a weight; the weights of
    ``needed[j]`` are ``weights[indptr[j]:indptr[j + 1]]`` for
    ``regions[indptr[j]:indptr[j + 1]]``. ``usable`` (one per needed voxel) is
    updated in place: with ``scan``, a voxel with a non-finite value is
    unusable, or, with ``zero_non_finite`` too, its non-finite values count
    as 0 (nilearn's ``ensure_finite``). A tile of voxels is gathered
    from the rows of the block (read in memory order), then each voxel's
    time series is added to its regions' rows (a loop that vectorises over
    time). The GIL is released: tasks of a threaded scheduler run in parallel.
    """
    n_time = block.shape[0]
    tile = np.empty((TILE, n_time))
    for first in range(0, needed.size, TILE):
        size = min(TILE, needed.size - first)
        for t in range(n_time):
            row = block[t]
            for j in range(size):
                value = np.float64(row[needed[first + j]])
                if scan and not np.isfinite(value):
                    if zero_non_finite:
                        value = 0.0
                    else:
                        usable[first + j] = False
                tile[j, t] = value
        for j in range(size):
            voxel = first + j
            if not usable[voxel]:
                continue
            series = tile[j]
            for k in range(indptr[voxel], indptr[voxel + 1]):
                weight = weights[k]
                counts[regions[k]] += weight
                region_sums = sums[regions[k]]
                for t in range(n_time):
                    region_sums[t] += weight * series[t]
