"""brainxr.regions maps and spheres extraction against nilearn, numpy and dask, bad input."""

import warnings

import dask.array as dsa
import nibabel as nib
import numpy as np
import pytest
import xarray as xr
from nilearn.maskers.nifti_spheres_masker import _ExtractionFunctor as NilearnSpheresExtraction
from nilearn.maskers.nifti_spheres_masker import apply_mask_and_get_affinity
from nilearn.regions import img_to_signals_maps, signals_to_img_maps

import brainxr
from brainxr import regions
from brainxr.datasets import load_synthetic_mni152_brain_mask, load_synthetic_labels_atlas, load_synthetic_maps_atlas
from brainxr.nifti import from_nibabel
from brainxr.testing import raise_if_dask_computes


@pytest.fixture(scope="module")
def maps():
    return load_synthetic_maps_atlas(resolution=4, n_maps=8)


@pytest.fixture(scope="module")
def brain_mask():
    return load_synthetic_mni152_brain_mask(resolution=4)


@pytest.fixture(scope="module")
def seeds():
    return load_synthetic_labels_atlas(resolution=4, n_regions=20).coords[["x", "y", "z"]].to_numpy()[:6]


@pytest.fixture(scope="module")
def bold(brain_mask):
    rng = np.random.default_rng(0)
    values = rng.normal(size=brain_mask.shape + (7,)).astype(np.float32) + 10
    return nib.Nifti1Image(values, brain_mask.affine)


def lazy_masked(img, mask, voxel_chunks=2000):
    return brainxr.apply_mask(from_nibabel(img).chunk({"time": 3}), mask, voxel_chunks=voxel_chunks)


def test_maps_equal_nilearn_numpy_and_dask(bold, maps, brain_mask):
    expected, _ = img_to_signals_maps(bold, maps.maps)
    eager = regions.extract_maps(bold, maps.maps, names=maps.labels)
    np.testing.assert_allclose(eager.values, expected, rtol=1e-5, atol=1e-5)
    assert list(eager["region"].values) == maps.labels
    with raise_if_dask_computes():
        lazy = regions.extract_maps(lazy_masked(bold, brain_mask), maps.maps)
    assert isinstance(lazy.data, dsa.Array)
    np.testing.assert_allclose(lazy.values, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(lazy["label"].values, np.arange(8))


def test_maps_with_mask_and_invalid_voxels(bold, maps, brain_mask):
    mask = np.zeros(bold.shape[:3], np.uint8)
    mask[:23] = 1
    mask_img = nib.Nifti1Image(mask, bold.affine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected, kept = img_to_signals_maps(bold, maps.maps, mask_img=mask_img)
    result = regions.extract_maps(bold, maps.maps, mask=mask_img)
    present = np.flatnonzero(result.coverage.values > 0)
    np.testing.assert_array_equal(present, kept)
    np.testing.assert_allclose(result.isel(region=present).values, expected, rtol=1e-5, atol=1e-5)
    assert np.isnan(result.isel(region=np.setdiff1d(np.arange(8), kept)).values).all()

    # a voxel with a NaN is left out of the fit: same as fitting without it
    values = np.asarray(bold.dataobj).copy()
    support = np.argwhere(np.asarray(maps.maps.dataobj)[..., 0] > 0.5)[:5]
    values[tuple(support.T) + (1,)] = np.nan
    with_nan = nib.Nifti1Image(values, bold.affine)
    without = np.asarray(brain_mask.dataobj).astype(bool)
    without[tuple(support.T)] = False
    expected = regions.extract_maps(lazy_masked(bold, nib.Nifti1Image(without.astype(np.uint8), bold.affine)), maps.maps)
    result = regions.extract_maps(lazy_masked(with_nan, brain_mask), maps.maps)
    np.testing.assert_allclose(result.values, expected.values, rtol=1e-5, atol=1e-5)
    assert result.coverage.values[0] < 1


def test_maps_to_volume_equals_nilearn(maps):
    signals = np.random.default_rng(2).normal(size=(3, 8))
    expected = signals_to_img_maps(signals, maps.maps).get_fdata()
    np.testing.assert_allclose(regions.maps_to_volume(signals, maps.maps).values, expected, rtol=1e-6, atol=1e-9)


def test_maps_bad_input(bold, maps):
    with pytest.raises(ValueError, match="names: 3 names given for 8 maps"):
        regions.extract_maps(bold, maps.maps, names=["a", "b", "c"])
    with pytest.raises(ValueError, match="contains no map"):
        regions.extract_maps(bold, nib.Nifti1Image(np.zeros(bold.shape[:3] + (2,), np.float32), bold.affine))


@pytest.mark.parametrize("radius", [None, 8])
def test_spheres_equal_nilearn(bold, seeds, brain_mask, radius):
    expected, _ = NilearnSpheresExtraction(seeds.tolist(), radius, None, False, None)(bold)
    np.testing.assert_allclose(regions.extract_spheres(bold, seeds, radius=radius).values, expected, rtol=1e-6)
    expected, _ = NilearnSpheresExtraction(seeds.tolist(), radius, brain_mask, False, None)(bold)
    with raise_if_dask_computes():
        lazy = regions.extract_spheres(lazy_masked(bold, brain_mask), seeds, radius=radius)
    np.testing.assert_allclose(lazy.values, expected, rtol=1e-6)
    np.testing.assert_allclose(lazy["x"].values, seeds[:, 0])


def test_sphere_voxels_equal_nilearn_off_grid_seeds():
    rng = np.random.default_rng(5)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = -30
    bold = nib.Nifti1Image(np.zeros((20, 20, 20, 1), np.float32), affine)
    seeds = rng.uniform(-20, 20, size=(12, 3))
    seeds[:3] = np.round(seeds[:3])  # integer seeds exercise nilearn's truncation rule
    seeds[3] = (0.0, 0.0, 0.0)  # on a voxel centre: neighbours at exactly the radius
    for radius in (None, 3.0, 6.0, 9.5):
        _, expected = apply_mask_and_get_affinity(seeds.tolist(), bold, radius, True)
        candidate_ijk = np.column_stack(np.unravel_index(np.arange(np.prod(bold.shape[:3])), bold.shape[:3]))
        adjacency = regions.sphere_adjacency(seeds, radius, candidate_ijk, bold.affine, allow_overlap=True)
        np.testing.assert_array_equal(adjacency.toarray(), expected.toarray().astype(bool))


@pytest.mark.parametrize("oblique", [False, True])
def test_voxels_near_seeds_hold_every_sphere(oblique):
    """The voxels near the seeds give the spheres of the whole grid (nilearn's), in the same order."""
    from brainxr.regions.spheres import voxels_near_seeds

    rng = np.random.default_rng(7)
    affine = np.diag([2.0, 2.5, 3.0, 1.0])
    affine[:3, 3] = (-30, -40, -25)
    if oblique:
        angle = 0.3
        rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
        affine[:3, :3] = rotation @ affine[:3, :3]
    shape = (24, 26, 18)
    bold = nib.Nifti1Image(np.zeros(shape + (1,), np.float32), affine)
    seeds = rng.uniform((2, 2, 2), np.asarray(shape) - 3, size=(10, 3)) @ affine[:3, :3].T + affine[:3, 3]
    seeds[:3] = np.round(seeds[:3])  # integer seeds exercise nilearn's truncation rule
    seeds[3] = affine[:3, :3] @ (5, 6, 7) + affine[:3, 3]  # on a voxel centre
    seeds[4] = affine[:3, :3] @ (0, 0, 0) + affine[:3, 3] - 0.4  # at the corner of the grid
    every = np.argwhere(np.ones(shape, bool))
    for radius in (None, 0.0, 3.0, 7.5):
        near = voxels_near_seeds(seeds, radius, shape, affine)
        assert len(near) < len(every)
        whole = regions.sphere_adjacency(seeds, radius, every, affine, allow_overlap=True)
        restricted = regions.sphere_adjacency(seeds, radius, near, affine, allow_overlap=True)
        flat = np.ravel_multi_index(tuple(near.T), shape)
        assert np.all(np.diff(flat) > 0)  # C order kept
        expanded = np.zeros(whole.shape, bool)
        expanded[:, flat] = restricted.toarray()
        np.testing.assert_array_equal(expanded, whole.toarray())
        _, expected = apply_mask_and_get_affinity(seeds.tolist(), bold, radius, True)
        np.testing.assert_array_equal(whole.toarray(), expected.toarray().astype(bool))


def test_spheres_errors_name_the_seed(bold, brain_mask, seeds):
    outside = [seeds[0].tolist(), [0.0, 0.0, 200.0]]
    with pytest.raises(ValueError, match=r"seed #1 at \[0.0, 0.0, 200.0\].*outside the brain"):
        regions.extract_spheres(lazy_masked(bold, brain_mask), outside, radius=4)
    with pytest.raises(ValueError, match=r"overlap detected between the spheres of seeds \[0, 1\]"):
        regions.extract_spheres(bold, [seeds[0], seeds[0] + 2], radius=6)
    overlapping = regions.extract_spheres(bold, [seeds[0], seeds[0] + 2], radius=6, allow_overlap=True)
    assert overlapping.sizes["region"] == 2
    with pytest.raises(ValueError, match="seed #1 has 2 values"):
        regions.extract_spheres(bold, [(0, 0, 0), (1, 2)])
    with pytest.raises(ValueError, match="radius"):
        regions.extract_spheres(bold, [(0, 0, 0)], radius=-1)


def test_spheres_to_volume_equals_nilearn_inverse(bold, brain_mask, seeds):
    from nilearn.maskers import NiftiSpheresMasker

    signals = np.random.default_rng(4).normal(size=(3, 2))
    two = [seeds[0], seeds[0] + 2]
    masker = NiftiSpheresMasker(two, radius=6, mask_img=brain_mask, allow_overlap=True).fit()
    expected = masker.inverse_transform(signals).get_fdata()
    result = regions.spheres_to_volume(signals, two, brain_mask, radius=6, allow_overlap=True)
    np.testing.assert_allclose(result.values, expected, rtol=1e-6)


def test_every_inverse_checks_one_value_per_region_alike(maps, brain_mask, seeds):
    """labels/maps/spheres to volume and nilearn's signals_to_img_* share one check (regions._signals.values_per_region)."""
    labels = load_synthetic_labels_atlas(resolution=4, n_regions=20)
    n_labels = 20
    wrong = np.zeros((3, 2))
    cases = [
        (lambda: regions.labels_to_volume(wrong, labels.maps), f"region_values: expected {n_labels} regions"),
        (lambda: regions.maps_to_volume(wrong, maps.maps), "region_values: expected 8 maps"),
        (lambda: regions.spheres_to_volume(np.zeros((3, 3)), seeds[:2], brain_mask), "region_values: expected 2 spheres"),
        (lambda: regions.signals_to_img_labels(wrong, labels.maps), f"signals: expected {n_labels} regions"),
        (lambda: regions.signals_to_img_maps(wrong, maps.maps), "region_signals: expected 8 maps"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message + r" \(last axis\), got \d"):
            call()
    # a DataArray's region dim is moved last, whatever its place
    values = np.random.default_rng(0).normal(size=(8,))
    as_dataarray = xr.DataArray(np.tile(values, (2, 1)).T, dims=("region", "time"))
    np.testing.assert_array_equal(regions.maps_to_volume(as_dataarray, maps.maps).values[..., 0],
                                  regions.maps_to_volume(values, maps.maps).values)
