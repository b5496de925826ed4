"""Masked signals of a NIfTI file in one streaming pass.

A ``.nii.gz`` run is decompressed once, front to back, a block of volumes
at a time (:func:`brainxr.nifti.iter_volume_blocks`, the ISA-L inflater).
Each block feeds one or more *outputs*: the voxels of a support mask,
gathered into a ``(time, voxel)`` array, optionally after Gaussian smoothing
or another transform of the block (:class:`MaskedOutput`), or the sum over
time of every voxel (:class:`VolumeSum`, for the mean image). Several outputs
(say the raw voxels of a seed and the smoothed voxels of the brain) share the
one read.

Block work runs in a small thread pool while the next block is inflated,
with at most ``workers + 1`` blocks of :data:`BLOCK_BYTES` in flight, so
memory is the outputs plus a few blocks, never the whole run. Smoothing works on the bounding box of the
support grown by the kernel's radius: the values inside the support are
exactly those of smoothing the whole volume (see :func:`_smoothing_box`).

:func:`lazy_stream_signals` wraps this as a single dask task per run: graphs
over many runs stay small, each run is read exactly once, and the task
pickles to worker processes (it holds the path, not the data).
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import xarray as xr

from brainxr.dims import TIME_DIM
from brainxr.geometry import masked_dataarray
from brainxr.image import check_fwhm, smooth_array
from brainxr.nifti import image_attrs, iter_volume_blocks, read_layout, time_coord

#: bytes of values per streamed block (volumes per block follow from the volume size): a few
#: blocks in flight and their smoothing copies stay well under 100 MB at 2 mm
BLOCK_BYTES = 2**24


def volumes_per_block(layout, dtype=None) -> int:
    """Volumes of a file per streamed block: :data:`BLOCK_BYTES` of values, at least one volume."""
    itemsize = np.dtype(dtype if dtype is not None else layout.value_dtype()).itemsize
    return max(1, BLOCK_BYTES // (int(np.prod(layout.shape[:3])) * itemsize))


def _smoothing_box(support: np.ndarray, affine, fwhm) -> tuple:
    """Slices of the support's bounding box grown by the Gaussian kernel's radius.

    ``scipy.ndimage.gaussian_filter1d`` reaches ``int(4 * sigma + 0.5)``
    voxels; the three 1D passes are separable, so values within that margin
    of an interior box face are the only ones that differ from smoothing
    the full volume, and the support stays out of that margin.
    """
    fwhm = check_fwhm(fwhm)
    ijk = np.nonzero(support)
    if isinstance(fwhm, str):
        radius = np.ones(3, dtype=int)
    else:
        voxel_size = np.sqrt(np.sum(np.asarray(affine)[:3, :3] ** 2, axis=0))
        sigma = np.broadcast_to(fwhm, (3,)) / (np.sqrt(8 * np.log(2)) * voxel_size)
        radius = np.array([int(4.0 * s + 0.5) if s > 0 else 0 for s in sigma])
    return tuple(
        slice(max(0, int(axis.min()) - r), min(size, int(axis.max()) + r + 1))
        for axis, r, size in zip(ijk, radius, support.shape)
    )


@dataclass(frozen=True)
class MaskedOutput:
    """What to gather from each streamed block.

    Attributes
    ----------
    support : ``(I, J, K)`` bool array
        Voxels kept (C order), on the grid of the transformed block.
    smoothing_fwhm : float, sequence or None
        Gaussian smoothing (mm) before gathering (nilearn's ``smooth_array``,
        non-finite values as 0 first).
    transform : callable, optional
        Any other ``(I, J, K, n) -> (I', J', K', n)`` block transform (applied
        first; then smoothing, if any, uses ``affine``).
    affine : (4, 4) array, optional
        Grid affine (needed for smoothing).
    """

    support: np.ndarray
    smoothing_fwhm: object = None
    transform: object = None
    affine: object = None

    def gather(self, block: np.ndarray) -> np.ndarray:
        """``(n, voxel)`` values of one ``(I, J, K, n)`` block."""
        if self.transform is not None:
            block = self.transform(block)
        if self.smoothing_fwhm is None:
            return block[self.support].T if block.ndim == 4 else block[self.support][None]
        box, positions = self._smoothing_layout
        # the box compacted in the block's own memory order (NIfTI's: i fastest) and seen as a C-ordered
        # (n, k, j, i) array: each volume contiguous and nothing transposed; the 1D passes along i, j, k in
        # nilearn's order give the same values in any layout
        volumes = np.asfortranarray(block[box]).T
        if volumes.dtype.kind in "iub":
            volumes = volumes.astype(np.float64 if volumes.dtype.itemsize >= 8 else np.float32)
        smoothed = smooth_array(volumes, self.affine, self.smoothing_fwhm, ensure_finite=True, copy=False, spatial_axes=(3, 2, 1))
        return smoothed.reshape(len(smoothed), -1).take(positions, axis=1)

    @cached_property
    def _smoothing_layout(self) -> tuple[tuple, np.ndarray]:
        """The box smoothing needs around the support, and the support's voxels (C order over ``(i, j, k)``) as
        positions in the box's ``(k, j, i)``-ordered volumes. Computed once per output, not per block."""
        box = _smoothing_box(self.support, self.affine, self.smoothing_fwhm)
        inside = self.support[box]
        i, j, k = np.nonzero(inside)
        return box, (k * inside.shape[1] + j) * inside.shape[0] + i

    @property
    def in_threads(self) -> bool:
        """Whether gathering is worth a worker thread (a transform or smoothing; not a plain gather)."""
        return self.smoothing_fwhm is not None or self.transform is not None

    def allocate(self, n_volumes: int, values: np.ndarray) -> np.ndarray:
        """The ``(time, voxel)`` result, given the first gathered block."""
        return np.empty((n_volumes, values.shape[1]), dtype=values.dtype)

    def accumulate(self, result: np.ndarray, start: int, values: np.ndarray) -> None:
        """Put a block's values in their rows."""
        result[start : start + values.shape[0]] = values


@dataclass(frozen=True)
class VolumeSum:
    """The float64 sum over time of every voxel, ``(I, J, K)``: a run's mean image from the same read."""

    in_threads = True

    def gather(self, block: np.ndarray) -> np.ndarray:
        return block.sum(axis=3, dtype=np.float64)

    def allocate(self, n_volumes: int, values: np.ndarray) -> np.ndarray:
        return np.zeros_like(values)

    def accumulate(self, result: np.ndarray, start: int, values: np.ndarray) -> None:
        result += values


def stream_outputs(path, outputs, dtype=None, block_size: int | None = None, workers: int = 2) -> tuple:
    """Read a NIfTI file once and fill a result per output.

    Parameters
    ----------
    path : str or os.PathLike
        A 4D (or 3D) ``.nii`` / ``.nii.gz`` file.
    outputs : sequence of MaskedOutput or VolumeSum
    dtype : numpy dtype, optional
        Of the values read (default: float32 for scaled data, else as stored).
    block_size : int, optional
        Volumes per block (default: :func:`volumes_per_block`).
    workers : int
        Threads processing blocks while the next ones are read.

    Returns
    -------
    tuple of numpy.ndarray
        One result per output: ``(n_volumes, n_support_voxels)`` for a
        MaskedOutput, ``(I, J, K)`` for a VolumeSum.
    """
    layout = read_layout(path)
    n_volumes = layout.n_volumes
    block_size = block_size or volumes_per_block(layout, dtype)
    results = [None] * len(outputs)

    def process(start, block):
        if block.ndim == 3:
            block = block[..., None]
        return start, [output.gather(block) for output in outputs]

    def store(processed):
        start, gathered = processed
        for position, (output, values) in enumerate(zip(outputs, gathered)):
            if results[position] is None:
                results[position] = output.allocate(n_volumes, values)
            output.accumulate(results[position], start, values)

    threaded = workers > 1 and any(output.in_threads for output in outputs)
    # up to ``workers`` blocks are processed while the next one is read: as many buffers plus one
    blocks = iter_volume_blocks(path, block_size, dtype, layout, n_buffers=workers + 1 if threaded else 1)
    if not threaded:
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
    return tuple(results)


def stream_masked(path, support: np.ndarray, block_transform=None, dtype=None, block_size: int | None = None, workers: int = 2) -> np.ndarray:
    """``(time, voxel)`` values of the ``support`` voxels of a NIfTI file, in one pass.

    ``block_transform`` (``(I, J, K, n) -> (I', J', K', n)``) is applied to
    each block first; the support is on its output grid. See
    :func:`stream_outputs`.
    """
    (values,) = stream_outputs(path, [MaskedOutput(support, transform=block_transform)], dtype, block_size, workers)
    return values


def _output_dtype(layout, output: MaskedOutput, dtype) -> np.dtype:
    value_dtype = np.dtype(dtype) if dtype is not None else layout.value_dtype()
    probe = np.zeros((2, 2, 2, 1), dtype=value_dtype)
    if output.transform is not None:
        value_dtype = output.transform(np.zeros(layout.shape[:3] + (1,), dtype=value_dtype)).dtype
        probe = probe.astype(value_dtype)
    if output.smoothing_fwhm is not None:
        value_dtype = smooth_array(probe, np.eye(4), output.smoothing_fwhm).dtype
    return np.dtype(value_dtype)


def lazy_stream_signals(path, outputs, dtype=None, names=None) -> list[xr.DataArray]:
    """:func:`stream_outputs` as lazy ``(time, voxel)`` DataArrays sharing one dask task.

    Parameters
    ----------
    path : str or os.PathLike
    outputs : sequence of MaskedOutput
        Each needs its ``affine`` (the grid of its support).
    dtype : numpy dtype, optional

    Returns
    -------
    list of xarray.DataArray
        ``(time, voxel)`` with voxel coords ``i, j, k, x, y, z``, the ``grid``
        coordinate, ``time`` in seconds (with ``t_r``) and attrs ``source``
        and the header's.
    """
    import dask
    import dask.array as dsa

    layout = read_layout(path)
    outputs = list(outputs)
    task = dask.delayed(stream_outputs, pure=True, nout=len(outputs))(str(path), outputs, dtype)
    attrs = image_attrs(layout.header, source=layout.path)
    attrs.pop("nifti", None)
    times = time_coord(layout.header, layout.n_volumes)
    arrays = []
    for position, output in enumerate(outputs):
        affine = np.asarray(output.affine if output.affine is not None else layout.header.get_best_affine(), dtype=np.float64)
        n_voxels = int(np.count_nonzero(output.support))
        data = dsa.from_delayed(task[position], shape=(layout.n_volumes, n_voxels), dtype=_output_dtype(layout, output, dtype))
        name = names[position] if names is not None else layout.path.name.split(".nii")[0]
        arrays.append(masked_dataarray(data, output.support, affine, coords={TIME_DIM: times}, attrs=dict(attrs), name=name))
    return arrays


def lazy_masked_signals(path, support: np.ndarray, affine, block_transform=None, dtype=None, smoothing_fwhm=None) -> xr.DataArray:
    """One lazy ``(time, voxel)`` output of a streamed file (see :func:`lazy_stream_signals`)."""
    (signals,) = lazy_stream_signals(path, [MaskedOutput(support, smoothing_fwhm, block_transform, affine)], dtype)
    return signals
