"""NIfTI <-> xarray: exact round trips, laziness, streaming and bad files."""

import gzip
import tracemalloc

import nibabel as nib
import numpy as np
import pytest

import brainxr
from brainxr.errors import InputFileError
from brainxr.nifti import iter_volume_blocks, to_nibabel
from brainxr.testing import raise_if_dask_computes

AFFINE = np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
OBLIQUE = np.array([[1.9, 0.3, 0, -80], [-0.3, 1.9, 0.1, -110], [0, -0.1, 2.1, -60], [0, 0, 0, 1]])


def _write(path, shape, kind, affine=AFFINE, t_r=1.5, seed=0, time_unit="sec"):
    rng = np.random.default_rng(seed)
    values = rng.normal(scale=100, size=shape)
    if kind == "scaled":
        img = nib.Nifti1Image(values, affine)
        img.set_data_dtype(np.int16)  # nibabel picks scl_slope / scl_inter
    else:
        img = nib.Nifti1Image(values.astype(kind), affine)
    zooms = (2.0, 2.0, 2.0) + ((t_r * (1000 if time_unit == "msec" else 1),) if len(shape) == 4 else ())
    img.header.set_zooms(zooms)
    img.header.set_xyzt_units("mm", time_unit)
    img.header["descrip"] = b"brainxr test"
    img.header["toffset"] = 0.0
    nib.save(img, str(path))
    return path


def _headers_equal(a, b):
    for key in a.keys():
        x, y = a[key], b[key]
        same = np.array_equal(x, y, equal_nan=True) if x.dtype.kind == "f" else np.array_equal(x, y)
        assert same, f"header field {key} differs: {x} vs {y}"


@pytest.mark.parametrize("kind", ["scaled", np.int16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(9, 11, 8), (9, 11, 8, 7)])
@pytest.mark.parametrize("affine", [AFFINE, OBLIQUE], ids=["aligned", "oblique"])
def test_round_trip_is_exact(tmp_path, kind, shape, affine):
    src = _write(tmp_path / "in.nii.gz", shape, kind, affine=affine)
    da = brainxr.open_nifti(src, chunks=3)
    out = brainxr.to_nifti(da, tmp_path / "out.nii.gz")
    a, b = nib.load(str(src)), nib.load(str(out))
    assert b.get_data_dtype() == a.get_data_dtype()
    np.testing.assert_array_equal(np.asanyarray(b.dataobj.get_unscaled()), np.asanyarray(a.dataobj.get_unscaled()))
    assert (b.dataobj.slope, b.dataobj.inter) == (a.dataobj.slope, a.dataobj.inter)
    np.testing.assert_array_equal(b.affine, a.affine)
    _headers_equal(a.header, b.header)


@pytest.mark.parametrize("kind", ["scaled", np.int16, np.float32])
def test_values_match_nibabel(tmp_path, kind):
    src = _write(tmp_path / "in.nii.gz", (6, 7, 5, 9), kind)
    da = brainxr.open_nifti(src, chunks=4)
    expected = nib.load(str(src)).get_fdata()
    assert da.dtype == (np.float32 if kind in ("scaled", np.float32) else np.int16)
    np.testing.assert_array_equal(da.values, expected.astype(da.dtype))
    # any selection of volumes, in any order
    np.testing.assert_array_equal(da.isel(time=[8, 0, 3]).values, expected[..., [8, 0, 3]].astype(da.dtype))
    np.testing.assert_array_equal(da.isel(time=slice(7, 1, -2)).values, expected[..., 7:1:-2].astype(da.dtype))


def test_open_is_lazy_and_labeled(tmp_path):
    src = _write(tmp_path / "in.nii.gz", (6, 7, 5, 10), np.float32, t_r=2.0)
    with raise_if_dask_computes():
        da = brainxr.open_nifti(src, chunks={"time": 4})
    assert da.dims == ("i", "j", "k", "time")
    assert da.chunks == ((6,), (7,), (5,), (4, 4, 2))
    assert da.brain.t_r == 2.0
    np.testing.assert_allclose(da["time"].values, 2.0 * np.arange(10))
    np.testing.assert_allclose(da["x"].values, 90 - 2.0 * np.arange(6))
    np.testing.assert_allclose(da["z"].values, -72 + 2.0 * np.arange(5))
    np.testing.assert_array_equal(da.brain.affine, AFFINE)
    assert da.attrs["sform_code"] == nib.load(str(src)).header["sform_code"]
    assert (da.attrs["space_units"], da.attrs["time_units"]) == ("mm", "sec")


def test_tr_in_milliseconds_is_converted(tmp_path):
    src = _write(tmp_path / "in.nii", (4, 4, 4, 3), np.float32, t_r=0.8, time_unit="msec")
    da = brainxr.open_nifti(src)
    assert da.brain.t_r == pytest.approx(0.8)
    out = brainxr.to_nifti(da, tmp_path / "out.nii")
    assert nib.load(str(out)).header.get_zooms()[3] == pytest.approx(800)


def test_to_nifti_computes_a_dask_graph_once(tmp_path):
    src = _write(tmp_path / "in.nii.gz", (6, 7, 5, 12), np.float32)
    da = brainxr.open_nifti(src, chunks=3) * 2
    with raise_if_dask_computes(max_computes=1):
        brainxr.to_nifti(da, tmp_path / "out.nii.gz")
    np.testing.assert_allclose(nib.load(str(tmp_path / "out.nii.gz")).get_fdata(), da.values)


def test_modified_affine_and_new_arrays_are_written(tmp_path):
    src = _write(tmp_path / "in.nii.gz", (6, 7, 5), np.float32)
    da = brainxr.open_nifti(src, chunks=None)
    da = da.brain.write_grid(OBLIQUE)
    out = brainxr.to_nifti(da, tmp_path / "moved.nii.gz")
    np.testing.assert_allclose(nib.load(str(out)).affine, OBLIQUE, atol=1e-5)
    # a plain DataArray with only an affine in attrs (the layout before the grid coordinate)
    import xarray as xr

    plain = xr.DataArray(np.ones((3, 4, 5), np.uint8), dims=("i", "j", "k"), attrs={"affine": AFFINE})
    img = nib.load(str(brainxr.to_nifti(plain, tmp_path / "plain.nii")))
    np.testing.assert_array_equal(img.get_fdata(), 1)
    np.testing.assert_allclose(img.affine, AFFINE)
    np.testing.assert_array_equal(to_nibabel(plain).get_fdata(), 1)


def test_streaming_matches_and_stays_small(tmp_path):
    shape = (30, 36, 30, 40)  # 5.2 MB a float32 run
    src = _write(tmp_path / "in.nii.gz", shape, np.float32)
    expected = nib.load(str(src)).get_fdata(dtype=np.float32)
    volume_bytes = 30 * 36 * 30 * 4
    tracemalloc.start()
    for start, block in iter_volume_blocks(src, block_size=4):
        np.testing.assert_array_equal(block, expected[..., start : start + block.shape[3]])
        del block
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # the test itself holds `expected`; streaming adds only a few blocks of volumes
    assert peak - expected.nbytes < 4 * 4 * volume_bytes


def test_truncated_gzip_names_the_file(tmp_path):
    src = _write(tmp_path / "in.nii.gz", (8, 8, 8, 20), np.float32)
    payload = src.read_bytes()
    bad = tmp_path / "truncated.nii.gz"
    bad.write_bytes(payload[: len(payload) // 2])
    da = brainxr.open_nifti(bad, chunks=5)  # the header is intact
    with pytest.raises(InputFileError, match="truncated.nii.gz"):
        da.values
    with pytest.raises(InputFileError, match="truncated"):
        list(iter_volume_blocks(bad))


def test_bad_files_are_named(tmp_path):
    with pytest.raises(InputFileError, match="missing.nii.gz.*not found"):
        brainxr.open_nifti(tmp_path / "missing.nii.gz")
    junk = tmp_path / "junk.nii.gz"
    with gzip.open(junk, "wb") as f:
        f.write(b"this is not a nifti file" * 40)
    with pytest.raises(InputFileError, match="junk.nii.gz"):
        brainxr.open_nifti(junk)
    five_d = tmp_path / "five.nii"
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2, 2, 2), np.float32), AFFINE), str(five_d))
    with pytest.raises(InputFileError, match="3D or 4D"):
        brainxr.open_nifti(five_d)


def test_to_nifti_rejects_masked_layout(tmp_path):
    import xarray as xr

    table = xr.DataArray(np.zeros((3, 4)), dims=("time", "voxel"))
    with pytest.raises(ValueError, match="unmask"):
        brainxr.to_nifti(table, tmp_path / "x.nii")
    assert not list(tmp_path.iterdir())  # nothing half-written
