"""Synthetic atlases: labels tiling the gray matter, probabilistic maps, seeds."""

from __future__ import annotations

import re

import numpy as np
import pytest

from brainxr.datasets import (
    load_synthetic_mni152_brain_mask,
    load_synthetic_mni152_tissue_maps,
    load_synthetic_labels_atlas,
    load_synthetic_maps_atlas,
)
from brainxr.datasets.atlas import NETWORKS


@pytest.fixture(scope="module")
def atlas4():
    return load_synthetic_labels_atlas(resolution=4, n_regions=100)


def _world(img):
    ijk = np.indices(img.shape[:3]).reshape(3, -1).T
    return ijk @ img.affine[:3, :3].T + img.affine[:3, 3]


def test_labels_cover_both_hemispheres_in_order(atlas4):
    data = np.asarray(atlas4.maps.dataobj)
    assert data.dtype == np.int16 and atlas4.maps.shape == (46, 55, 46)
    assert int(atlas4.maps.header["sform_code"]) == 4
    assert set(np.unique(data)) == set(range(101))
    x = _world(atlas4.maps)[:, 0].reshape(data.shape)
    assert np.all(x[(data >= 1) & (data <= 50)] < 0)  # left parcels first
    assert np.all(x[data > 50] >= 0)
    assert atlas4.labels[0] == "Background" and len(atlas4.labels) == 101


def test_parcels_tile_the_gray_matter(atlas4):
    data = np.asarray(atlas4.maps.dataobj)
    tissues = load_synthetic_mni152_tissue_maps(4)
    gm, wm, csf = (np.asarray(tissues[name].dataobj) for name in ("gm", "wm", "csf"))
    gray = (gm > 0) & (gm >= wm) & (gm >= csf)
    np.testing.assert_array_equal(data > 0, gray)
    assert np.all(np.asarray(load_synthetic_mni152_brain_mask(4).dataobj)[data > 0] == 1)
    sizes = np.bincount(data.ravel())[1:]
    assert sizes.min() > 0.3 * sizes.mean()  # no tiny parcels


def test_right_parcels_mirror_the_left_ones():
    data = np.asarray(load_synthetic_labels_atlas(resolution=2, n_regions=100).maps.dataobj)
    left, right = data[:45], data[46:][::-1]  # x < 0 and the mirrored x > 0 of the 2 mm grid
    np.testing.assert_array_equal(np.where(right > 0, right - 50, 0), left)


def test_names_networks_and_table(atlas4):
    lut = atlas4.lut
    assert list(lut.columns) == ["index", "name", "network", "hemisphere", "x", "y", "z"]
    np.testing.assert_array_equal(lut["index"], np.arange(1, 101))
    assert all(re.fullmatch(r"(LH|RH)_(Vis|SomMot|DorsAttn|SalVentAttn|Limbic|Cont|Default)_\d+", n) for n in lut["name"])
    assert lut["name"].is_unique and atlas4.networks == list(NETWORKS)
    assert set(lut["network"]) == set(NETWORKS)
    # homotopic parcels share the network and mirror the centre
    left, right = lut.iloc[:50].reset_index(drop=True), lut.iloc[50:].reset_index(drop=True)
    assert list(left["network"]) == list(right["network"])
    assert list(left["name"].str[3:]) == list(right["name"].str[3:])
    np.testing.assert_allclose(left["x"], -right["x"], atol=1e-6)
    np.testing.assert_allclose(left[["y", "z"]], right[["y", "z"]], atol=1e-6)
    # networks sit where they should: visual at the back, default medial-frontal and posterior
    assert lut.loc[lut["network"] == "Vis", "y"].mean() < -60
    assert lut.loc[lut["network"] == "SomMot", "z"].mean() > 20


def test_seed_coordinates_fall_inside_their_parcels(atlas4):
    data = np.asarray(atlas4.maps.dataobj)
    inverse = np.linalg.inv(atlas4.maps.affine)
    coords = atlas4.coords
    assert list(coords.columns) == ["index", "name", "network", "x", "y", "z"]
    for index, x, y, z in coords[["index", "x", "y", "z"]].itertuples(index=False):
        i, j, k, _ = np.rint(inverse @ [x, y, z, 1]).astype(int)
        assert data[i, j, k] == index


def test_maps_atlas_is_smooth_overlapping_and_in_the_brain():
    maps = load_synthetic_maps_atlas(resolution=4, n_maps=32)
    data = np.asarray(maps.maps.dataobj)
    assert data.shape == (46, 55, 46, 32) and data.dtype == np.float32
    assert data.min() >= 0 and np.allclose(data.max(axis=(0, 1, 2)), 1)
    brain = np.asarray(load_synthetic_mni152_brain_mask(4).dataobj).astype(bool)
    assert np.all(data[~brain] == 0)
    overlap = (data > 0).sum(-1)
    assert (overlap >= 2).sum() > 0.05 * (overlap >= 1).sum()
    assert len(maps.labels) == len(maps.region_coords) == len(maps.networks) == 32
    assert maps.labels[0].startswith("L ") and maps.labels[1].startswith("R ")
    # each map peaks near its centre
    world = _world(maps.maps)
    for index in (0, 7, 31):
        peak = world[np.argmax(data[..., index].ravel())]
        assert np.linalg.norm(peak - maps.region_coords[index]) < 20


@pytest.mark.parametrize("n_regions", [99, 0, 2.5, "100"])
def test_bad_region_counts(n_regions):
    with pytest.raises(ValueError, match="n_regions must be"):
        load_synthetic_labels_atlas(resolution=4, n_regions=n_regions)


def test_other_region_counts():
    small = load_synthetic_labels_atlas(resolution=6, n_regions=20)
    assert set(np.unique(np.asarray(small.maps.dataobj))) == set(range(21))
