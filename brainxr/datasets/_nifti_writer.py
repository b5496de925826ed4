"""NIfTI headers of the synthetic cohort (MNI grid, sform/qform code 4, mm and
seconds), written through :class:`brainxr.nifti.StreamingNiftiWriter`: a 2 mm run
of 300 volumes is over a gigabyte of float32, so it is streamed a block of
volumes at a time.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np

from brainxr.datasets.template import MNI_XFORM_CODE
from brainxr.nifti import _VOX_OFFSET, StreamingNiftiWriter


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


def write_nifti(path, data, affine, *, dtype=None, t_r=None, compresslevel=1):
    """Write an array held in memory as ``.nii.gz`` with the synthetic cohort's
    header conventions (3D or 4D)."""
    data = np.asarray(data)
    dtype = np.dtype(dtype if dtype is not None else data.dtype)
    with StreamingNiftiWriter(path, nifti_header(data.shape, affine, dtype, t_r=t_r), compresslevel=compresslevel) as writer:
        writer.write(data.astype(dtype, copy=False))
