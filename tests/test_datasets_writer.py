"""The streaming .nii.gz writer of the synthetic cohort."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from brainxr.datasets._nifti_writer import nifti_header, write_nifti
from brainxr.nifti import StreamingNiftiWriter
from brainxr.datasets.template import mni152_grid


@pytest.fixture()
def grid():
    return mni152_grid(12)


def test_blocks_stream_into_a_file_nibabel_reads_back(tmp_path, grid):
    shape, affine = grid
    rng = np.random.default_rng(0)
    data = rng.standard_normal((*shape, 7)).astype(np.float32)
    path = tmp_path / "bold.nii.gz"
    with StreamingNiftiWriter(path, nifti_header((*shape, 7), affine, np.float32, t_r=0.8)) as writer:
        writer.write(data[..., :3])
        # the same bytes, given in file order: (volume, x * y * z) with x fastest
        writer.write_file_ordered(data[..., 3:].reshape(-1, 4, order="F").T)
    img = nib.load(path)
    np.testing.assert_array_equal(img.get_fdata(dtype=np.float32), data)
    np.testing.assert_array_equal(img.affine, affine)
    assert img.header.get_zooms()[3] == np.float32(0.8)
    assert int(img.header["sform_code"]) == int(img.header["qform_code"]) == 4


def test_scaled_int16_header(tmp_path, grid):
    shape, affine = grid
    values = np.arange(np.prod(shape) * 2, dtype=np.int16).reshape((*shape, 2), order="F") % 1000
    path = tmp_path / "scaled.nii.gz"
    with StreamingNiftiWriter(path, nifti_header((*shape, 2), affine, np.int16, t_r=2, scl_slope=0.5)) as writer:
        writer.write(values)
    np.testing.assert_allclose(nib.load(path).get_fdata(), values * 0.5)


def test_small_images_and_identical_bytes(tmp_path, grid):
    shape, affine = grid
    mask = (np.indices(shape).sum(0) % 3 == 0).astype(np.uint8)
    write_nifti(tmp_path / "a.nii.gz", mask, affine)
    write_nifti(tmp_path / "b.nii.gz", mask, affine)
    assert (tmp_path / "a.nii.gz").read_bytes() == (tmp_path / "b.nii.gz").read_bytes()
    img = nib.load(tmp_path / "a.nii.gz")
    assert img.get_data_dtype() == np.uint8 and np.array_equal(np.asarray(img.dataobj), mask)


def test_wrong_blocks_are_errors_naming_the_file(tmp_path, grid):
    shape, affine = grid
    path = tmp_path / "bad.nii.gz"
    header = nifti_header((*shape, 2), affine, np.float32, t_r=2)
    with pytest.raises(ValueError, match="bad.nii.gz: expected blocks of shape"):
        with StreamingNiftiWriter(path, header) as writer:
            writer.write(np.zeros((*shape, 1), dtype=np.float64))
    assert not path.exists()  # a failed write leaves no partial file
    with pytest.raises(ValueError, match="more than the 2 volumes"):
        with StreamingNiftiWriter(path, header) as writer:
            writer.write(np.zeros((*shape, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="1 volumes written, the header says 2"):
        with StreamingNiftiWriter(path, header) as writer:
            writer.write(np.zeros((*shape, 1), dtype=np.float32))
    assert not path.exists()
