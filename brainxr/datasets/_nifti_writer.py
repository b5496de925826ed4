"""Write a gzipped 4D NIfTI-1 file a block of volumes at a time.

nibabel writes an image from one array in memory; a 2 mm run of 300 volumes is
over a gigabyte of float32, so the synthetic cohort streams instead: the
header goes first, then each block of volumes in the file's (Fortran) order,
through ISA-L's gzip compressor running in a background thread so that
compression overlaps with generating the next block. The gzip header carries no
file name and no time stamp: the same data give the same bytes.
"""

from __future__ import annotations

import os

import nibabel as nib
import numpy as np
from isal import igzip_threaded

from brainxr.datasets.template import MNI_XFORM_CODE

# NIfTI-1 single file: 348-byte header + 4-byte extension flag, data at 352
_VOX_OFFSET = 352


def nifti_header(shape, affine, dtype, *, t_r=None, scl_slope=None, scl_inter=None, descrip=""):
    """A NIfTI-1 header on the MNI grid: sform/qform code 4, mm and seconds, pixdim[4] = TR."""
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    zooms = list(np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0)))
    if len(shape) == 4:
        zooms.append(float(t_r) if t_r is not None else 1.0)
    header.set_zooms(zooms)
    header.set_xyzt_units("mm", "sec")
    header.set_qform(affine, code=MNI_XFORM_CODE)
    header.set_sform(affine, code=MNI_XFORM_CODE)
    header.set_data_offset(_VOX_OFFSET)
    if scl_slope is not None:
        header["scl_slope"] = scl_slope
        header["scl_inter"] = 0.0 if scl_inter is None else scl_inter
    if descrip:
        header["descrip"] = descrip.encode("ascii")[:79]
    return header


class StreamingNiftiWriter:
    """Write a ``.nii.gz`` 4D image volume block by volume block.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (``.nii.gz``).
    header : nibabel.Nifti1Header
        Header of the whole image (from :func:`nifti_header`); its shape says
        how many volumes must be written.
    compresslevel : int, default=1
        ISA-L compression level (0-3).

    Notes
    -----
    Use as a context manager; :meth:`write` takes arrays of shape
    ``(x, y, z, n)`` already in the on-disk dtype. Closing checks that every
    volume was written; a missing volume, or an error inside the ``with``
    block, removes the partial file.
    """

    def __init__(self, path, header, *, compresslevel=1):
        self.path = os.fspath(path)
        self.header = header
        self.shape = header.get_data_shape()
        self.dtype = header.get_data_dtype()
        self.n_written = 0
        self._stream = igzip_threaded.open(self.path, "wb", compresslevel=compresslevel, threads=1)
        self._stream.write(header.binaryblock)
        self._stream.write(b"\x00" * (_VOX_OFFSET - len(header.binaryblock)))

    def write(self, block):
        """Append volumes: ``block`` has shape ``(x, y, z, n)`` and the header's dtype."""
        block = np.asarray(block)
        if block.shape[:3] != tuple(self.shape[:3]) or block.dtype != self.dtype:
            raise ValueError(
                f"{self.path}: expected a block of shape {tuple(self.shape[:3])} + (n,) "
                f"and dtype {self.dtype}, got {block.shape} {block.dtype}"
            )
        if self.n_written + block.shape[3] > self.shape[3]:
            raise ValueError(f"{self.path}: more than {self.shape[3]} volumes written")
        self._stream.write(block.tobytes(order="F"))
        self.n_written += block.shape[3]

    def write_file_ordered(self, volumes):
        """Append volumes given as a C-contiguous ``(n, x * y * z)`` array in file order
        (x fastest), as one would get from ``block.reshape(-1, n, order="F").T``."""
        volumes = np.ascontiguousarray(volumes, dtype=self.dtype)
        n_voxels = int(np.prod(self.shape[:3]))
        if volumes.ndim != 2 or volumes.shape[1] != n_voxels:
            raise ValueError(f"{self.path}: expected an array of shape (n, {n_voxels}), got {volumes.shape}")
        if self.n_written + volumes.shape[0] > self.shape[3]:
            raise ValueError(f"{self.path}: more than {self.shape[3]} volumes written")
        self._stream.write(memoryview(volumes).cast("B"))
        self.n_written += volumes.shape[0]

    def close(self):
        self._stream.close()
        if self.n_written != self.shape[3]:
            os.remove(self.path)  # an incomplete image must not look like a finished one
            raise ValueError(
                f"{self.path}: {self.n_written} volumes written, the header says {self.shape[3]}"
            )

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
            return False
        try:
            self._stream.close()
        finally:
            if os.path.exists(self.path):
                os.remove(self.path)
        return False


def write_nifti(path, data, affine, *, dtype=None, t_r=None, compresslevel=1):
    """Write an array held in memory as ``.nii.gz``, with the same header and gzip
    conventions as :class:`StreamingNiftiWriter` (3D or 4D)."""
    data = np.asarray(data)
    dtype = np.dtype(dtype if dtype is not None else data.dtype)
    header = nifti_header(data.shape, affine, dtype, t_r=t_r)
    with igzip_threaded.open(os.fspath(path), "wb", compresslevel=compresslevel, threads=1) as stream:
        stream.write(header.binaryblock)
        stream.write(b"\x00" * (_VOX_OFFSET - len(header.binaryblock)))
        stream.write(data.astype(dtype, copy=False).tobytes(order="F"))
