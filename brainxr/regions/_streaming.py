"""Masked signals of a NIfTI file in one streaming pass.

A ``.nii.gz`` run is decompressed once, front to back, a block of volumes
at a time (:func:`brainxr.nifti.iter_volume_blocks`, the ISA-L inflater);
each block is optionally transformed (smoothed, resampled) and the voxels of
a support mask are gathered into one ``(time, voxel)`` array. Block
transforms run in a small thread pool while the next block is inflated, with
at most ``workers + 1`` blocks in flight, so memory is the masked output plus
a few blocks, never the whole run.

:func:`lazy_masked_signals` wraps this as a single dask task per run: graphs
over many runs stay small, each run is read exactly once, and the task
pickles to worker processes (it holds the path, not the data).
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor

import dask
import dask.array as dsa
import numpy as np
import xarray as xr

from brainxr.nifti import TIME_DIM, image_attrs, iter_volume_blocks, read_layout

#: volumes per streamed block
BLOCK_SIZE = 16


def stream_masked(path, support: np.ndarray, block_transform=None, dtype=None, block_size: int = BLOCK_SIZE, workers: int = 2) -> np.ndarray:
    """``(time, voxel)`` values of the ``support`` voxels (C order) of a NIfTI file.

    Parameters
    ----------
    path : str or os.PathLike
        A 4D (or 3D) ``.nii`` / ``.nii.gz`` file.
    support : ``(I, J, K)`` bool array
        The voxels to keep, on the grid of ``block_transform``'s output (the
        file's grid when there is no transform).
    block_transform : callable, optional
        ``(I, J, K, n) array -> (I', J', K', n) array``, applied to each block
        of volumes before gathering (smoothing, resampling).
    dtype : numpy dtype, optional
        Of the values read (default: float32 for scaled data, else as stored).
    block_size : int
    workers : int
        Threads transforming blocks while the next ones are read.

    Returns
    -------
    numpy.ndarray
        ``(n_volumes, n_support_voxels)``.
    """
    layout = read_layout(path)
    i, j, k = np.nonzero(support)
    n_volumes = layout.n_volumes
    output = None

    def process(start, block):
        if block.ndim == 3:
            block = block[..., None]
        if block_transform is not None:
            block = block_transform(block)
        return start, block[i, j, k].T

    def store(result):
        nonlocal output
        start, values = result
        if output is None:
            output = np.empty((n_volumes, i.size), dtype=values.dtype)
        output[start : start + values.shape[0]] = values

    blocks = iter_volume_blocks(path, block_size, dtype, layout)
    if block_transform is None or workers <= 1:
        for start, block in blocks:
            store(process(start, block))
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending = deque()
            for start, block in blocks:
                pending.append(pool.submit(process, start, block))
                while len(pending) > workers:
                    store(pending.popleft().result())
            while pending:
                store(pending.popleft().result())
    return output


def lazy_masked_signals(path, support: np.ndarray, affine, block_transform=None, dtype=None, voxel_coords=None, name=None) -> xr.DataArray:
    """:func:`stream_masked` as a lazy ``(time, voxel)`` DataArray (one dask task).

    Parameters
    ----------
    path : str or os.PathLike
    support : ``(I, J, K)`` bool array
    affine : (4, 4) array
        Affine of the support's grid.
    block_transform, dtype
        As in :func:`stream_masked`.
    voxel_coords : dict, optional
        Coordinates of the voxel dim (default from the support and affine).

    Returns
    -------
    xarray.DataArray
        ``(time, voxel)`` with voxel coords ``i, j, k, x, y, z``, ``time``
        in seconds and attrs ``affine``, ``grid_shape``, ``t_r``, ``source``.
    """
    from brainxr.masking import voxel_coords as make_voxel_coords

    layout = read_layout(path)
    value_dtype = np.dtype(dtype) if dtype is not None else layout.value_dtype()
    if block_transform is not None:
        probe = block_transform(np.zeros(layout.shape[:3] + (1,), dtype=value_dtype))
        value_dtype = probe.dtype
    n_voxels = int(np.count_nonzero(support))
    task = dask.delayed(stream_masked, pure=True)(str(path), support, block_transform, dtype)
    data = dsa.from_delayed(task, shape=(layout.n_volumes, n_voxels), dtype=value_dtype)
    attrs = image_attrs(layout.header, layout.header.get_best_affine(), source=layout.path)
    attrs.pop("nifti", None)
    attrs.update(affine=np.asarray(affine, dtype=np.float64), grid_shape=tuple(int(n) for n in support.shape))
    coords = dict(voxel_coords if voxel_coords is not None else make_voxel_coords(support, affine))
    coords[TIME_DIM] = (TIME_DIM, float(layout.header["toffset"]) + attrs.get("t_r", 1.0) * np.arange(layout.n_volumes))
    return xr.DataArray(data, dims=(TIME_DIM, "voxel"), coords=coords, attrs=attrs, name=name or layout.path.name.split(".nii")[0])
