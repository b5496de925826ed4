"""Geometry rides in coordinates: it survives xarray operations and Zarr, and is never guessed."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import xarray as xr

import brainxr
from brainxr.errors import GeometryError
from brainxr.geometry import Grid, get_grid, get_t_r, with_grid, with_t_r

AFFINE = np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
SHAPE = (5, 6, 4)


@pytest.fixture
def bold(tmp_path):
    values = np.random.default_rng(0).standard_normal(SHAPE + (7,)).astype(np.float32)
    img = nib.Nifti1Image(values, AFFINE)
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_zooms((2, 2, 2, 1.5))
    path = tmp_path / "bold.nii.gz"
    nib.save(img, str(path))
    return brainxr.open_nifti(path, chunks=3)


def test_open_nifti_writes_the_grid_coordinate_and_t_r(bold):
    assert bold.coords["grid"].attrs["shape"].tolist() == list(SHAPE)
    np.testing.assert_array_equal(bold.coords["grid"].attrs["affine"], AFFINE)
    assert bold["time"].attrs["t_r"] == 1.5
    assert "affine" not in bold.attrs and "t_r" not in bold.attrs
    assert bold.brain.grid_shape == SHAPE and bold.brain.t_r == 1.5
    np.testing.assert_array_equal(bold.brain.affine, AFFINE)


@pytest.mark.parametrize(
    "operation",
    [
        lambda da: da.mean("time"),
        lambda da: da * 2,
        lambda da: da + da,
        lambda da: da.isel(time=slice(1, 4)),
        lambda da: da.isel(time=0),
        lambda da: np.sqrt(abs(da)),
        lambda da: da.where(da > 0),
        lambda da: da.astype(np.float64),
        lambda da: xr.concat([da, da], "time"),
    ],
    ids=["mean", "mul", "add", "isel", "isel0", "ufunc", "where", "astype", "concat"],
)
def test_geometry_survives_operations(bold, operation):
    result = operation(bold)
    assert get_grid(result, "result").same_as(Grid(SHAPE, AFFINE))
    if "time" in result.dims:
        assert get_t_r(result) == 1.5


@pytest.mark.parametrize("operation", [lambda da: da.mean("time"), lambda da: da * 2], ids=["mean", "mul"])
def test_to_nifti_of_a_derived_image_keeps_the_affine(bold, tmp_path, operation):
    with xr.set_options(keep_attrs=False):
        derived = operation(bold)
    out = brainxr.to_nifti(derived, tmp_path / "derived.nii.gz")
    img = nib.load(str(out))
    np.testing.assert_allclose(img.affine, AFFINE)
    np.testing.assert_allclose(img.get_fdata(), derived.values, rtol=1e-6)
    if "time" in derived.dims:
        assert img.header.get_zooms()[3] == pytest.approx(1.5)


def test_masked_tables_round_trip_through_zarr(bold, tmp_path):
    masked = brainxr.apply_mask(bold).compute()
    masked.to_dataset(name="bold").to_zarr(tmp_path / "masked.zarr", zarr_format=3, consolidated=False)
    back = xr.open_zarr(tmp_path / "masked.zarr", consolidated=False, zarr_format=3)["bold"].load()
    xr.testing.assert_identical(back, masked)
    assert back.brain.grid_shape == SHAPE and back.brain.t_r == 1.5
    xr.testing.assert_identical(brainxr.unmask(back), brainxr.unmask(masked))


def test_missing_geometry_is_an_error_never_an_identity_affine(bold, tmp_path):
    bare = xr.DataArray(np.ones(SHAPE, np.float32), dims=("i", "j", "k"))
    with pytest.raises(GeometryError, match="no grid"):
        brainxr.to_nifti(bare, tmp_path / "bare.nii")
    with pytest.raises(GeometryError, match="no grid"):
        bare.brain.affine
    masked = brainxr.apply_mask(bold).drop_vars("grid")
    with pytest.raises(GeometryError, match="masked: no grid"):
        brainxr.unmask(masked)
    with pytest.raises(GeometryError, match="repetition time"):
        bold.drop_vars("time").brain.t_r
    cropped = bold.isel(i=slice(0, 2)).drop_vars("x")
    with pytest.raises(GeometryError, match="no longer match its grid"):
        brainxr.to_nifti(cropped, tmp_path / "cropped.nii")


def test_a_cropped_volume_gets_its_grid_from_its_world_coordinates(bold, tmp_path):
    cropped = bold.isel(i=slice(1, 5, 2), k=slice(2, None))
    expected = AFFINE.copy()
    expected[:3, 3] = AFFINE[:3, :3] @ [1, 0, 2] + AFFINE[:3, 3]
    expected[0, 0] *= 2
    assert cropped.brain.grid_shape == (2, 6, 2)
    np.testing.assert_allclose(cropped.brain.affine, expected)
    img = nib.load(str(brainxr.to_nifti(cropped, tmp_path / "cropped.nii.gz")))
    np.testing.assert_allclose(img.affine, expected)
    np.testing.assert_allclose(img.get_fdata(), cropped.values)


def test_a_4d_image_without_repetition_time_has_none(tmp_path):
    img = nib.Nifti1Image(np.ones(SHAPE + (3,), np.float32), AFFINE)
    img.header.set_zooms((2, 2, 2, 0))
    nib.save(img, str(tmp_path / "no_tr.nii"))
    da = brainxr.open_nifti(tmp_path / "no_tr.nii")
    with pytest.raises(GeometryError, match="t_r"):
        da.brain.t_r
    # written back without one either (pixdim[4] = 0: unknown)
    out = nib.load(str(brainxr.to_nifti(da, tmp_path / "back.nii")))
    assert out.header.get_zooms()[3] == 0


def test_older_attrs_geometry_is_still_read():
    legacy = xr.DataArray(
        np.ones((2, 3), np.float32),
        dims=("time", "voxel"),
        coords={"i": ("voxel", [0, 1, 2]), "j": ("voxel", [0, 0, 0]), "k": ("voxel", [0, 0, 1])},
        attrs={"affine": AFFINE, "grid_shape": SHAPE, "t_r": 2.0},
    )
    assert legacy.brain.grid_shape == SHAPE and legacy.brain.t_r == 2.0
    volume = brainxr.unmask(legacy)
    assert "affine" not in volume.attrs
    np.testing.assert_array_equal(volume.brain.affine, AFFINE)


def test_writers_give_new_objects():
    da = xr.DataArray(np.zeros(SHAPE + (4,)), dims=("i", "j", "k", "time"))
    placed = with_t_r(with_grid(da, Grid(SHAPE, AFFINE)), 0.8)
    assert "grid" not in da.coords and "time" not in da.coords
    np.testing.assert_allclose(placed["time"].values, 0.8 * np.arange(4))
    assert placed.brain.t_r == 0.8
    with pytest.raises(GeometryError, match="positive"):
        with_t_r(da, 0)
    with pytest.raises(GeometryError, match="4x4"):
        Grid(SHAPE, np.eye(3))
