"""Volumes on cuts and projections, matrices, carpets and cut finding, checked against nilearn."""

import dask.array as da
import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from test_plotting_data import blob_map, brain_mask, nilearn_t1, t1  # noqa: F401 (fixtures)

from brainxr.plotting import (
    find_parcellation_cut_coords,
    find_probabilistic_atlas_cut_coords,
    find_xyz_cut_coords,
    plot_anat,
    plot_carpet,
    plot_glass_brain,
    plot_matrix,
    plot_prob_atlas,
    plot_stat_map,
)
from brainxr.plotting._inputs import Volume, as_volume, axis_aligned
from brainxr.plotting.images import colorbar_and_data_ranges
from brainxr.testing import raise_if_dask_computes


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def stat_map(t1):  # noqa: F811
    return blob_map(t1, centres=[(0, -52, 18), (-46, -68, 32)], widths=[8.0, 6.0], signs=[1.0, -0.7])


def _volume_dataarray(img, chunks=None):
    data = np.asarray(img.dataobj)
    values = da.from_array(data, chunks=chunks) if chunks else data
    return xr.DataArray(values, dims=("i", "j", "k"), attrs={"affine": img.affine})


# ---------------------------------------------------------------- cut coordinates


@pytest.mark.parametrize("percentile", [0, 50, 80, 91.5, 99.99])
def test_fast_abs_percentile_equals_nilearn(percentile):
    """The same value as nilearn's partial sort, zeros counted rather than partitioned (maps are mostly
    zeros), with NaNs last, on sparse maps, dense signed data and all-zero data."""
    from nilearn._utils.extmath import fast_abs_percentile as nilearn_fast_abs_percentile

    from brainxr.plotting.find_cuts import fast_abs_percentile

    rng = np.random.default_rng(0)
    sparse_map = np.where(rng.random((30, 36, 30)) < 0.05, rng.normal(size=(30, 36, 30)), 0).astype(np.float32)
    with_nan = rng.normal(size=(40, 50))
    with_nan[rng.random((40, 50)) < 0.01] = np.nan
    with_nan[:10] = 0.0
    for data in (sparse_map, -sparse_map, rng.normal(size=1000), with_nan, np.zeros(50), np.array([-0.0, 0.0, 2.0])):
        ours = fast_abs_percentile(data, percentile)
        theirs = nilearn_fast_abs_percentile(data, percentile)
        assert ours == theirs or (np.isnan(ours) and np.isnan(theirs)), (data.shape, percentile)


def test_find_xyz_cut_coords_matches_nilearn(stat_map):
    from nilearn import plotting as nilearn_plotting

    np.testing.assert_allclose(find_xyz_cut_coords(stat_map), nilearn_plotting.find_xyz_cut_coords(stat_map), atol=1e-4)
    np.testing.assert_allclose(
        find_xyz_cut_coords(stat_map, activation_threshold=0.3),
        nilearn_plotting.find_xyz_cut_coords(stat_map, activation_threshold=0.3), atol=1e-4,
    )


def test_find_xyz_cut_coords_of_an_empty_image_warns(t1):  # noqa: F811
    empty = nib.Nifti1Image(np.zeros(t1.shape, np.float32), t1.affine)
    with pytest.warns(UserWarning, match="empty"):
        coords = find_xyz_cut_coords(empty)
    np.testing.assert_allclose(coords, t1.affine[:3, 3])


def _labels_atlas(t1):  # noqa: F811
    rng = np.random.default_rng(0)
    seeds = rng.uniform([-60, -90, -30], [60, 50, 60], (12, 3))
    ijk = np.indices(t1.shape).reshape(3, -1)
    world = (t1.affine[:3, :3] @ ijk + t1.affine[:3, 3:4]).T
    distance = ((world[:, None, :] - seeds[None]) ** 2).sum(axis=2)
    labels = distance.argmin(axis=1) + 1
    labels[distance.min(axis=1) > 30**2] = 0
    labels[labels == 5] = 0  # a gap in the label values
    return nib.Nifti1Image(labels.reshape(t1.shape).astype(np.int16), t1.affine)


@pytest.mark.parametrize("hemisphere", ["left", "right"])
def test_find_parcellation_cut_coords_matches_nilearn(t1, hemisphere):  # noqa: F811
    from nilearn import plotting as nilearn_plotting

    atlas = _labels_atlas(t1)
    ours, our_labels = find_parcellation_cut_coords(atlas, return_label_names=True, label_hemisphere=hemisphere)
    theirs, their_labels = nilearn_plotting.find_parcellation_cut_coords(
        atlas, return_label_names=True, label_hemisphere=hemisphere
    )
    assert our_labels == [int(v) for v in their_labels]
    # nilearn returns a meaningless point for a region absent from the requested
    # hemisphere; brainxr uses the whole region there. Compare the others.
    data = np.asarray(atlas.dataobj)
    midline = int(np.linalg.solve(atlas.affine, [0, 0, 0, 1])[0])
    side = data[:midline] if hemisphere == "left" else data[midline:]
    present = np.isin(our_labels, np.unique(side))
    assert present.sum() >= 4
    np.testing.assert_allclose(ours[present], np.asarray(theirs)[present], atol=1e-6)
    absent = ~present
    regions = [np.argwhere(data == value) for value in np.asarray(our_labels)[absent]]
    for coords, voxels in zip(ours[absent], regions):
        centre = atlas.affine[:3, :3] @ voxels.mean(axis=0) + atlas.affine[:3, 3]
        assert np.linalg.norm(coords - centre) < 30  # inside its own region, not at the background's centre


def test_find_probabilistic_atlas_cut_coords_matches_nilearn(t1):  # noqa: F811
    from nilearn import plotting as nilearn_plotting

    maps = [blob_map(t1, centres=[c]) for c in [(-30, -20, 10), (30, -20, 10), (0, 40, 0)]]
    stacked = nib.Nifti1Image(np.stack([np.asarray(m.dataobj) for m in maps], axis=-1), t1.affine)
    np.testing.assert_allclose(
        find_probabilistic_atlas_cut_coords(stacked), nilearn_plotting.find_probabilistic_atlas_cut_coords(stacked),
        atol=1e-4,
    )


# ---------------------------------------------------------------- inputs and grids


def test_axis_aligned_undoes_flips_and_permutations(t1):  # noqa: F811
    data = np.asarray(t1.dataobj)
    flipped_affine = t1.affine @ np.array([[-1, 0, 0, data.shape[0] - 1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    flipped = Volume(data[::-1].transpose(1, 0, 2), flipped_affine[:, [1, 0, 2, 3]])
    restored = axis_aligned(flipped)
    np.testing.assert_allclose(restored.affine, t1.affine)
    np.testing.assert_array_equal(restored.data, data)


def test_axis_aligned_resamples_an_oblique_grid():
    angle = np.deg2rad(20)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = 4 * rotation
    data = np.ones((10, 10, 10), np.float32)
    aligned = axis_aligned(Volume(data, affine))
    assert np.allclose(aligned.affine[:3, :3], 4 * np.eye(3))
    centre = np.linalg.solve(aligned.affine, [*(affine[:3, :3] @ [4.5, 4.5, 4.5]), 1])[:3]
    assert aligned.data[tuple(np.round(centre).astype(int))] == pytest.approx(1.0)


def test_masked_voxel_dataarray_is_unmasked(stat_map):
    data = np.asarray(stat_map.dataobj)
    ijk = np.argwhere(data > 0.1)
    masked = xr.DataArray(
        da.from_array(data[tuple(ijk.T)], chunks=50), dims="voxel",
        coords={"i": ("voxel", ijk[:, 0]), "j": ("voxel", ijk[:, 1]), "k": ("voxel", ijk[:, 2])},
        attrs={"affine": stat_map.affine, "grid_shape": data.shape},
    )
    with raise_if_dask_computes(1):
        volume = as_volume(masked)
    np.testing.assert_allclose(volume.data, np.where(data > 0.1, data, 0))


@pytest.mark.parametrize(
    ("img", "match"),
    [
        (np.zeros((3, 3, 3)), "nibabel image"),
        (xr.DataArray(np.zeros((2, 2)), dims=("a", "b")), r"dims \('i', 'j', 'k'\)"),
        (xr.DataArray(np.zeros((2, 2, 2)), dims=("i", "j", "k")), "affine"),
        (nib.Nifti1Image(np.zeros((2, 2, 2, 3), np.float32), np.eye(4)), "3D"),
        ("/no/such/file.nii.gz", "no such image file"),
    ],
)
def test_bad_images_name_the_parameter(img, match):
    with pytest.raises((TypeError, ValueError, FileNotFoundError), match=f"stat_map_img.*{match}|{match}"):
        plot_stat_map(img, bg_img=None)


# ---------------------------------------------------------------- stat maps, anatomy


def test_stat_map_layout_and_cuts_match_nilearn(stat_map, t1):  # noqa: F811
    from nilearn import plotting as nilearn_plotting

    ours = plot_stat_map(stat_map, bg_img=t1, threshold=0.2)
    theirs = nilearn_plotting.plot_stat_map(stat_map, bg_img=t1, threshold=0.2)
    np.testing.assert_allclose(ours.cut_coords, theirs.cut_coords, atol=1e-4)
    for direction in "xyz":
        np.testing.assert_allclose(ours.axes[direction].get_object_bounds(), theirs.axes[direction].get_object_bounds(), atol=2.5)
    # the thresholded map: same visible voxels in each view
    for direction in "xyz":
        mine = ours.axes[direction].ax.images[-1].get_array()
        reference = theirs.axes[direction].ax.images[-1].get_array()
        np.testing.assert_array_equal(np.ma.getmaskarray(mine), np.flipud(np.ma.getmaskarray(reference)))
        np.testing.assert_allclose(mine.compressed(), np.flipud(reference).compressed(), atol=1e-5)


def test_stat_map_colour_range_matches_nilearn(stat_map):
    from nilearn.plotting._utils import get_colorbar_and_data_ranges

    data = np.asarray(stat_map.dataobj)
    for kwargs in [{}, {"vmax": 0.5}, {"vmin": 0.0, "vmax": 1.0}, {"symmetric_cbar": False}, {"symmetric_cbar": True}]:
        kwargs.setdefault("symmetric_cbar", "auto")
        assert colorbar_and_data_ranges(data, **kwargs) == pytest.approx(get_colorbar_and_data_ranges(data, **kwargs))


def test_stat_map_from_dataarrays_equals_nibabel(stat_map, t1):  # noqa: F811
    reference = plot_stat_map(stat_map, bg_img=t1, threshold=0.2)
    with raise_if_dask_computes(1):
        lazy = _volume_dataarray(stat_map, chunks=(8, 8, 8))
    display = plot_stat_map(lazy, bg_img=_volume_dataarray(t1), threshold=0.2)
    for direction in "xyz":
        np.testing.assert_array_equal(display.axes[direction].ax.images[-1].get_array(),
                                      reference.axes[direction].ax.images[-1].get_array())


def test_single_direction_mode_with_a_number_of_cuts(stat_map, t1):  # noqa: F811
    display = plot_stat_map(stat_map, bg_img=t1, display_mode="z", cut_coords=4, threshold=0.2)
    assert len(display.axes) == 4 and all(ax.direction == "z" for ax in display.axes.values())
    assert sorted(display.cut_coords) == display.cut_coords
    with pytest.raises(ValueError, match="cut_coords"):
        plot_stat_map(stat_map, bg_img=t1, display_mode="ortho", cut_coords=[1, 2])


def test_markers_show_only_near_the_cut(stat_map, t1):  # noqa: F811
    display = plot_stat_map(stat_map, bg_img=t1, cut_coords=(0, -52, 18), threshold=0.5)
    display.add_markers([(0, -52, 18), (40, 40, 40)], marker_color="g", marker_size=300)
    for display_ax in display.axes.values():
        assert len(display_ax.ax.collections[-1].get_offsets()) == 1


def test_display_savefig_formats(tmp_path, stat_map, t1):  # noqa: F811
    display = plot_stat_map(stat_map, bg_img=t1, title="seed")
    for suffix, magic in [(".png", b"\x89PNG"), (".pdf", b"%PDF"), (".svg", b"<?xml")]:
        path = tmp_path / "out" / f"map{suffix}"
        display.savefig(path)
        assert path.read_bytes().startswith(magic)
    display.close()
    assert not plt.get_fignums()


def test_plot_anat_dims_the_template_like_nilearn(t1):  # noqa: F811
    from nilearn import plotting as nilearn_plotting

    ours = plot_anat(t1)
    theirs = nilearn_plotting.plot_anat(t1, colorbar=False)
    mine_image, their_image = ours.axes["x"].ax.images[-1], theirs.axes["x"].ax.images[-1]
    assert mine_image.norm.vmin == pytest.approx(their_image.norm.vmin)
    assert mine_image.norm.vmax == pytest.approx(their_image.norm.vmax)


def test_overlay_and_contours(stat_map, t1):  # noqa: F811
    display = plot_anat(t1, cut_coords=(0, -52, 18))
    display.add_overlay(stat_map, threshold=0.3, cmap="autumn", colorbar=True)
    display.add_contours(stat_map, levels=[0.5], colors="b")
    display.add_contours(stat_map, levels=[0.5], filled=True, colors="g")
    assert display._cbar is not None
    assert len(display.axes["z"].ax.collections) >= 2
    with pytest.raises(ValueError, match="colorbar"):
        display.add_overlay(stat_map, colorbar=True)
    with pytest.raises(ValueError, match="threshold"):
        display.add_overlay(stat_map, threshold=-1)


def test_glass_brain_projects_the_signed_peak(stat_map, brain_mask):  # noqa: F811
    display = plot_glass_brain(stat_map, plot_abs=False, threshold=0.1, brain_mask=brain_mask)
    image = display.axes["x"].ax.images[-1].get_array()
    data = np.asarray(stat_map.dataobj)
    assert image.min() == pytest.approx(data.min()) and image.max() == pytest.approx(data.max())
    assert data.min() < -0.5
    absolute = plot_glass_brain(stat_map, threshold=0.1, brain_mask=brain_mask)
    assert absolute.axes["x"].ax.images[-1].get_array().min() > 0


@pytest.mark.parametrize("view_type", ["contours", "filled_contours", "continuous"])
def test_prob_atlas_draws_each_map(t1, view_type):  # noqa: F811
    centres = [(-30, -20, 10), (30, -20, 10), (0, 40, 0)]
    maps = nib.Nifti1Image(np.stack([np.asarray(blob_map(t1, [c]).dataobj) for c in centres], -1), t1.affine)
    display = plot_prob_atlas(maps, bg_img=t1, view_type=view_type, cut_coords=(0, -20, 10))
    drawn = sum(len(ax.ax.collections) + len(ax.ax.images) - 1 for ax in display.axes.values())
    assert drawn >= len(centres)
    assert [t.get_text() for t in display._cbar.ax.get_yticklabels()] == ["1", "2", "3"]
    with pytest.raises(ValueError, match="view_type"):
        plot_prob_atlas(maps, bg_img=t1, view_type="dots")
    with pytest.raises(ValueError, match="4D"):
        plot_prob_atlas(blob_map(t1), bg_img=t1)


# ---------------------------------------------------------------- matrix and carpet


def test_plot_matrix_reorders_like_nilearn():
    from nilearn import plotting as nilearn_plotting

    rng = np.random.default_rng(0)
    signals = rng.normal(size=(40, 8))
    signals[:, 4:] += signals[:, :1]
    matrix = np.corrcoef(signals.T)
    labels = [f"r{i}" for i in range(8)]
    ours = plot_matrix(matrix, labels=labels, reorder="complete")
    theirs = nilearn_plotting.plot_matrix(matrix, labels=labels, reorder="complete")
    assert [t.get_text() for t in ours.axes.get_xticklabels()] == [t.get_text() for t in theirs.axes.get_xticklabels()]
    np.testing.assert_allclose(ours.get_array(), theirs.get_array())


def test_plot_matrix_takes_names_from_a_dataarray_and_masks_the_triangle():
    names = ["a", "b", "c"]
    conn = xr.DataArray(np.eye(3), dims=("region", "region_"), coords={"region": names, "region_": names})
    image = plot_matrix(conn, tri="lower")
    assert [t.get_text() for t in image.axes.get_yticklabels()] == names
    assert image.get_array().mask.tolist() == (~np.tri(3, k=-1, dtype=bool)).tolist()
    assert not plot_matrix(conn, labels=False).axes.get_xticklabels()[0].get_text()
    with pytest.raises(ValueError, match="tri"):
        plot_matrix(conn, tri="upper")
    with pytest.raises(ValueError, match="labels"):
        plot_matrix(np.eye(3), reorder=True)
    with pytest.raises(ValueError, match="run"):
        plot_matrix(conn.expand_dims(run=2))


def _correlations(n_regions, seed=0, n_networks=4):
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=(150, n_networks))
    signals = rng.normal(size=(150, n_regions)) + shared[:, np.arange(n_regions) % n_networks]
    return np.corrcoef(signals.T)


def test_plot_matrix_diagonal_does_not_set_the_colour_scale():
    matrix = _correlations(30)
    off_diagonal = np.abs(matrix[~np.eye(30, dtype=bool)]).max()
    image = plot_matrix(matrix)
    assert image.norm.vmax == pytest.approx(off_diagonal) and image.norm.vmin == pytest.approx(-off_diagonal)
    assert off_diagonal < 0.9  # the ones of the diagonal would have set vmax to 1
    assert image.get_array()[0, 0] == pytest.approx(1.0) and not np.ma.is_masked(image.get_array()[0, 0])
    image = plot_matrix(matrix, vmin=-1, vmax=1, diagonal=False)
    assert (image.norm.vmin, image.norm.vmax) == (-1, 1)
    assert image.get_array().mask[np.diag_indices(30)].all() and image.get_array().mask.sum() == 30
    positive = plot_matrix(np.abs(matrix))  # one sign: the off-diagonal range
    assert positive.norm.vmin == pytest.approx(np.abs(matrix[~np.eye(30, dtype=bool)]).min())


def test_plot_matrix_thins_labels_of_many_regions():
    labels = [f"region_{n}" for n in range(100)]
    image = plot_matrix(_correlations(100), labels=labels)
    shown = [t.get_text() for t in image.axes.get_xticklabels()]
    assert shown == labels[::3]  # every third row: 34 labels, at most 40
    assert [t.get_text() for t in plot_matrix(_correlations(100), labels=labels,
                                              max_tick_labels=None).axes.get_yticklabels()] == labels
    few = [f"r{n}" for n in range(12)]
    assert [t.get_text() for t in plot_matrix(_correlations(12), labels=few).axes.get_xticklabels()] == few
    with pytest.raises(ValueError, match="max_tick_labels"):
        plot_matrix(_correlations(12), max_tick_labels=0)


def test_plot_matrix_groups_regions_by_network():
    matrix = _correlations(40)
    names = [f"r{n}" for n in range(40)]
    networks = [f"net{n % 4}" for n in range(40)]  # interleaved
    conn = xr.DataArray(matrix, dims=("region", "region_"),
                        coords={"region": names, "region_": names, "network": ("region", networks)})
    image = plot_matrix(conn, reorder="network")
    order = np.concatenate([np.arange(k, 40, 4) for k in range(4)])  # by network, stable inside
    np.testing.assert_array_equal(image.get_array(), matrix[np.ix_(order, order)])
    assert [t.get_text() for t in image.axes.get_yticklabels()] == ["net0", "net1", "net2", "net3"]
    np.testing.assert_allclose(image.axes.get_yticks(), [4.5, 14.5, 24.5, 34.5])
    lines = [line for line in image.axes.get_lines() if line.get_linewidth() == 0.6]
    assert len(lines) == 6  # between the 4 blocks, on both axes
    # a mapping from region name, as atlas.regions.set_index("region")["network"]
    mapping = pd.Series(networks[::-1], index=names[::-1])
    again = plot_matrix(xr.DataArray(matrix, dims=("region", "region_"), coords={"region": names, "region_": names}),
                        networks=mapping, reorder="network", tri="lower")
    np.testing.assert_array_equal(again.get_array().data, matrix[np.ix_(order, order)])
    # networks as they come (no reordering): consecutive rows of a network share one label
    blocks = plot_matrix(matrix, networks=sorted(networks))
    assert [t.get_text() for t in blocks.axes.get_xticklabels()] == ["net0", "net1", "net2", "net3"]
    with pytest.raises(ValueError, match="networks="):
        plot_matrix(matrix, reorder="network")
    with pytest.raises(ValueError, match="3 network names for a matrix of 40"):
        plot_matrix(matrix, networks=["a", "b", "c"])
    with pytest.raises(ValueError, match="no network for the regions"):
        plot_matrix(conn, networks=pd.Series(["a"] * 39, index=names[:39]).to_dict())


def _bold(shape=(6, 7, 5), n_volumes=40, seed=0):
    rng = np.random.default_rng(seed)
    data = (rng.normal(size=(*shape, n_volumes)) + np.linspace(0, 3, n_volumes) + 100).astype(np.float32)
    img = nib.Nifti1Image(data, np.diag([4.0, 4.0, 4.0, 1.0]))
    img.header.set_zooms((4.0, 4.0, 4.0, 2.0))
    return img


def test_carpet_equals_nilearn_detrended_standardized_voxels():
    from nilearn import plotting as nilearn_plotting

    img = _bold()
    mask = nib.Nifti1Image((np.arange(np.prod(img.shape[:3])).reshape(img.shape[:3]) % 3 == 0).astype(np.uint8), img.affine)
    ours = plot_carpet(img, mask_img=mask)
    theirs = nilearn_plotting.plot_carpet(img, mask_img=mask)
    np.testing.assert_allclose(ours.axes[0].images[0].get_array(), theirs.axes[0].images[0].get_array(), atol=1e-4)
    assert [t.get_text() for t in ours.axes[0].get_xticklabels()] == [t.get_text() for t in theirs.axes[0].get_xticklabels()]


def test_carpet_of_a_lazy_masked_dataarray_computes_once():
    img = _bold()
    data = np.asarray(img.dataobj).reshape(-1, img.shape[3]).T
    masked = xr.DataArray(da.from_array(data, chunks=(10, 50)), dims=("time", "voxel"), attrs={"t_r": 2.0})
    with raise_if_dask_computes(1):
        figure = plot_carpet(masked)
    eager = plot_carpet(xr.DataArray(data, dims=("time", "voxel"), attrs={"t_r": 2.0}))
    np.testing.assert_allclose(figure.axes[0].images[0].get_array(), eager.axes[0].images[0].get_array(), atol=1e-5)


def test_carpet_orders_voxels_by_atlas_label():
    img = _bold()
    labels = np.random.default_rng(1).integers(0, 4, img.shape[:3]).astype(np.int16)
    figure = plot_carpet(img, mask_img=nib.Nifti1Image(labels, img.affine), mask_labels={"a": 1, "b": 2, "c": 3})
    strip = figure.axes[0].images[0].get_array().ravel()
    assert np.all(np.diff(strip) >= 0)
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="mask_img"):
        plot_carpet(img, mask_img=nib.Nifti1Image(labels[:-1], img.affine))


def test_nilearn_t1_helper_is_on_a_4mm_grid():
    assert np.allclose(np.diag(nilearn_t1(4).affine)[:3], 4)


def test_carpet_draws_evenly_spaced_voxels_beyond_max_rows(monkeypatch):
    from brainxr.plotting import carpet

    monkeypatch.setattr(carpet, "MAX_ROWS", 50)
    img = _bold()
    data = np.asarray(img.dataobj).reshape(-1, img.shape[3]).T
    masked = xr.DataArray(da.from_array(data, chunks=(10, 40)), dims=("time", "voxel"), attrs={"t_r": 2.0})
    with raise_if_dask_computes(1):
        shown = plot_carpet(masked).axes[0].images[0].get_array()
    rows = np.linspace(0, data.shape[1] - 1, 50).round().astype(int)
    full = plot_carpet(xr.DataArray(data[:, rows], dims=("time", "voxel"))).axes[0].images[0].get_array()
    assert shown.shape == (50, data.shape[0])
    np.testing.assert_allclose(shown, full, atol=1e-5)
