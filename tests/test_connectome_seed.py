"""Voxel-wise connectivity: seed-to-voxel maps and blocked global connectivity."""

import warnings

import dask.array as da
import nibabel as nib
import numpy as np
import pytest
import xarray as xr
from nilearn.maskers import NiftiMasker

from brainxr.connectome import global_connectivity, seed_to_voxel_correlation
from brainxr.masking import apply_mask
from brainxr.nifti import to_nifti
from brainxr.testing import assert_lazy_equals_eager, raise_if_dask_computes


@pytest.fixture(scope="module")
def image_and_mask():
    """A small 4 mm image whose voxels share a few latent time courses."""
    rng = np.random.default_rng(0)
    shape, n_volumes = (8, 9, 7), 48
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = [-16, -20, -12]
    latent = rng.standard_normal((n_volumes, 3))
    weights = rng.standard_normal(shape + (3,))
    data = weights @ latent.T + rng.standard_normal(shape + (n_volumes,)) + 100.0
    mask = np.zeros(shape, dtype=np.uint8)
    mask[1:7, 1:8, 1:6] = 1
    return (
        nib.Nifti1Image(data.astype(np.float32), affine),
        nib.Nifti1Image(mask, affine),
    )


def _voxels(brain_signals, image, mask):
    """nilearn's masked signals labeled with brainxr's voxel coordinates (same order)."""
    template = apply_mask(image, mask)
    return template.copy(data=brain_signals)


def test_seed_workflow_of_nilearn(image_and_mask, tmp_path):
    """The seed-to-voxel example (seed workflow 003) on nilearn-standardized signals."""
    image, mask = image_and_mask
    masker = NiftiMasker(mask_img=mask, detrend=True, standardize="zscore_sample")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        brain = masker.fit_transform(image)
    seed = brain[:, 100:110].mean(axis=1, keepdims=True)
    seed = (seed - seed.mean()) / seed.std(ddof=1)
    voxels = _voxels(brain, image, mask)

    # the example's literal computation divides by the number of samples
    # (in float32, as nilearn's signals; brainxr computes in float64)
    example = np.dot(brain.T, seed) / seed.shape[0]
    ours = seed_to_voxel_correlation(seed, voxels, method="dot", ddof=0)
    assert ours.dims == ("seed", "voxel")
    np.testing.assert_allclose(ours.values.T, example, rtol=0, atol=1e-6)

    # on zscore_sample signals, ddof=1 is the exact Pearson correlation
    pearson = np.array([np.corrcoef(seed[:, 0], column)[0, 1] for column in brain.T])
    np.testing.assert_allclose(
        seed_to_voxel_correlation(seed[:, 0], voxels, method="dot").values, pearson, atol=1e-6
    )
    np.testing.assert_allclose(
        seed_to_voxel_correlation(seed[:, 0], voxels).values, pearson, atol=1e-12
    )

    # Fisher z map as a volume, written to NIfTI, equals nilearn's inverse_transform
    z_map = seed_to_voxel_correlation(seed[:, 0], voxels, fisher_z=True, as_volume=True)
    assert z_map.dims == ("i", "j", "k")
    expected = masker.inverse_transform(np.arctanh(pearson)[None]).get_fdata()[..., 0]
    np.testing.assert_allclose(z_map.values, expected, atol=1e-5)
    written = nib.load(to_nifti(z_map.astype(np.float32), tmp_path / "pcc_seed_correlation_z.nii.gz"))
    np.testing.assert_allclose(written.get_fdata(), expected, atol=1e-5)
    np.testing.assert_allclose(written.affine, image.affine)


def _three_seeds(voxels):
    """The time series of voxels 5, 50 and 150 as seeds ``a``, ``b``, ``c`` with an ``x`` coordinate."""
    return xr.DataArray(
        voxels.values[:, [5, 50, 150]],
        dims=("time", "region"),
        coords={"region": ["a", "b", "c"], "x": ("region", [1.0, 2.0, 3.0])},
    )


def test_lazy_over_voxel_chunks_without_rechunk(image_and_mask):
    image, mask = image_and_mask
    voxels = apply_mask(image, mask).astype(np.float64)
    region_signals = _three_seeds(voxels)
    eager = seed_to_voxel_correlation(region_signals, voxels, fisher_z=True)
    # dask data with in-memory voxel coords, as apply_mask makes them
    chunked = voxels.copy(data=da.from_array(voxels.values, chunks=(-1, 37)))
    with raise_if_dask_computes():
        lazy = seed_to_voxel_correlation(region_signals, chunked, fisher_z=True)
        volume = seed_to_voxel_correlation(region_signals, chunked, as_volume=True)
    assert lazy.dims == ("region", "voxel")
    assert lazy.data.chunks[1] == chunked.data.chunks[1]
    assert not any("rechunk" in name for name in lazy.data.dask.layers)
    assert list(lazy["region"].values) == ["a", "b", "c"]
    np.testing.assert_array_equal(lazy["i"].values, voxels["i"].values)
    np.testing.assert_allclose(lazy.values, eager.values, rtol=1e-12)
    # the seed voxel itself: r = 1 maps to a finite z
    assert np.isfinite(lazy.values[0, 5]) and lazy.values[0, 5] > 18
    assert volume.dims == ("i", "j", "k", "region")
    assert "nifti" not in volume.attrs and "t_r" not in volume.attrs


def test_constant_voxels_give_nan_and_bad_input_errors(image_and_mask):
    image, mask = image_and_mask
    voxels = apply_mask(image, mask).astype(np.float64)
    values = voxels.values.copy()
    values[:, 3] = 7.0
    seed = values[:, 0]
    result = seed_to_voxel_correlation(seed, voxels.copy(data=values))
    assert np.isnan(result.values[3]) and np.isfinite(np.delete(result.values, 3)).all()
    with pytest.raises(ValueError, match="seeds have 47 time points but voxels have 48"):
        seed_to_voxel_correlation(seed[:-1], voxels)
    with pytest.raises(ValueError, match="seed\\(s\\) \\[0\\] have a constant signal"):
        seed_to_voxel_correlation(np.ones(48), voxels)
    with pytest.raises(ValueError, match="method='spearman'"):
        seed_to_voxel_correlation(seed, voxels, method="spearman")
    with pytest.raises(ValueError, match="voxels must be a \\(time, voxel\\) DataArray"):
        seed_to_voxel_correlation(seed, voxels.values)
    with pytest.raises(ValueError, match="seeds have NaN"):
        seed_to_voxel_correlation(np.full(48, np.nan), voxels)


def _brute_force(values, measure, absolute, threshold=None):
    """The voxel x voxel matrix, formed in full."""
    finite = np.isfinite(values).all(axis=0) & (values.std(axis=0) > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        correlations = np.corrcoef(values[:, finite].T)
    np.fill_diagonal(correlations, np.nan)
    if absolute:
        correlations = np.abs(correlations)
    result = np.full(values.shape[1], np.nan)
    if measure == "mean":
        result[finite] = np.nanmean(correlations, axis=1)
    else:
        result[finite] = np.nansum(correlations > threshold, axis=1)
    return result


@pytest.mark.parametrize(
    "measure, absolute, threshold",
    [("mean", True, None), ("mean", False, None), ("degree", True, 0.3), ("degree", False, 0.2)],
)
def test_global_connectivity_equals_the_full_matrix(image_and_mask, measure, absolute, threshold):
    image, mask = image_and_mask
    voxels = apply_mask(image, mask).astype(np.float64)
    values = voxels.values.copy()
    values[:, 7] = 3.0  # constant: no correlation defined
    values[4, 9] = np.nan  # non-finite: left out
    voxels = voxels.copy(data=values)
    expected = _brute_force(values, measure, absolute, threshold)
    options = dict(measure=measure, absolute=absolute, threshold=threshold)
    eager = global_connectivity(voxels, tile=33, **options)
    np.testing.assert_allclose(eager.values, expected, rtol=1e-10, atol=1e-12)
    chunked = voxels.chunk(voxel=50)
    with raise_if_dask_computes():
        lazy = global_connectivity(chunked, tile=20, split_every=2, **options)
    assert lazy.data.chunks == chunked.data.chunks[1:]
    np.testing.assert_allclose(lazy.values, expected, rtol=1e-10, atol=1e-12)
    assert np.isnan(lazy.values[[7, 9]]).all()
    assert lazy.brain.grid_shape == voxels.brain.grid_shape


def test_global_connectivity_float32_and_errors(image_and_mask):
    image, mask = image_and_mask
    voxels = apply_mask(image, mask)
    reference = global_connectivity(voxels)
    single = global_connectivity(voxels.chunk(voxel=64), dtype=np.float32)
    np.testing.assert_allclose(single.values, reference.values, atol=1e-5)
    with pytest.raises(ValueError, match="needs a threshold in \\[0, 1\\)"):
        global_connectivity(voxels, measure="degree")
    with pytest.raises(ValueError, match="threshold is only used"):
        global_connectivity(voxels, threshold=0.5)
    with pytest.raises(ValueError, match="measure='median'"):
        global_connectivity(voxels, measure="median")
    with pytest.raises(ValueError, match="voxels must be a \\(time, voxel\\) DataArray"):
        global_connectivity(voxels.isel(time=0))
    with pytest.raises(ValueError, match="at least 2"):
        global_connectivity(voxels.isel(time=[0]))


def test_seed_and_voxel_time_points_must_match(image_and_mask):
    image, mask = image_and_mask
    voxels = apply_mask(image, mask)
    seed = voxels.isel(voxel=0)
    assert seed_to_voxel_correlation(seed, voxels).dims == ("voxel",)
    shifted = seed.assign_coords(time=seed["time"].values + 100.0)
    with pytest.raises(ValueError, match="different time coordinates"):
        seed_to_voxel_correlation(shifted, voxels)


@pytest.mark.parametrize("chunks", [-1, 37, 100, {"time": 7, "voxel": 50}])
@pytest.mark.parametrize("fisher_z", [False, True])
@pytest.mark.parametrize("one_seed", [True, False])
def test_lazy_equals_eager_with_coordinates(image_and_mask, chunks, fisher_z, one_seed):
    """One kernel for numpy and dask data: identical labeled maps for any chunking (time chunks are joined)."""
    image, mask = image_and_mask
    voxels = apply_mask(image, mask).astype(np.float64)
    seeds = _three_seeds(voxels)
    if one_seed:
        seeds = seeds.isel(region=1, drop=True)
    eager = seed_to_voxel_correlation(seeds, voxels, fisher_z=fisher_z)
    with raise_if_dask_computes():
        lazy = seed_to_voxel_correlation(seeds, voxels.chunk(chunks if isinstance(chunks, dict) else {"voxel": chunks}),
                                         fisher_z=fisher_z)
    assert isinstance(lazy.data, da.Array)
    # BLAS products over blocks of other widths may differ in the last bits
    assert_lazy_equals_eager(lazy, eager, atol=1e-12)
    assert eager.dims == (("voxel",) if one_seed else ("region", "voxel"))
