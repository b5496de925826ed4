"""nilearn's region signal functions: equal to nilearn 0.14.1, labeled and lazy for DataArray images."""

from __future__ import annotations

import dask.array as dsa
import nibabel as nib
import numpy as np
import pytest
import xarray as xr
from nilearn import regions as nilearn_regions

from brainxr import regions
from brainxr.nifti import from_nibabel
from brainxr.testing import raise_if_dask_computes

AFFINE = np.diag([4.0, 4.0, 4.0, 1.0])


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    bold = nib.Nifti1Image(rng.standard_normal((9, 10, 8, 25)).astype(np.float32), AFFINE)
    labels = rng.integers(0, 6, size=(9, 10, 8)).astype(np.int16)
    labels[labels == 3] = 0  # label 3 absent
    mask = np.zeros((9, 10, 8), np.uint8)
    mask[1:8, 1:9, 1:7] = 1
    mask[labels == 5] = 0  # label 5 masked out
    maps = np.clip(rng.standard_normal((9, 10, 8, 4)), 0, None).astype(np.float32)
    maps[..., 2][mask == 1] = 0  # map 2 only outside the mask
    return {"bold": bold, "labels": nib.Nifti1Image(labels, AFFINE), "mask": nib.Nifti1Image(mask, AFFINE),
            "maps": nib.Nifti1Image(maps, AFFINE)}


@pytest.mark.parametrize("strategy", ["mean", "sum", "median", "maximum", "standard_deviation"])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("keep_masked_labels", [False, True])
def test_img_to_signals_labels_equal_nilearn(data, strategy, masked, keep_masked_labels):
    kwargs = {"mask_img": data["mask"] if masked else None, "strategy": strategy,
              "keep_masked_labels": keep_masked_labels}
    ours, our_labels, our_atlas = regions.img_to_signals_labels(data["bold"], data["labels"], **kwargs)
    theirs, their_labels, their_atlas = nilearn_regions.img_to_signals_labels(data["bold"], data["labels"], **kwargs)
    assert our_labels == their_labels
    assert ours.dtype == theirs.dtype and ours.flags.f_contiguous
    np.testing.assert_allclose(ours, theirs, atol=1e-5)  # float32 images: float64 sums in brainxr
    np.testing.assert_array_equal(np.asarray(our_atlas.dataobj), np.asarray(their_atlas.dataobj))
    if not keep_masked_labels:
        back = regions.signals_to_img_labels(ours, data["labels"], mask_img=kwargs["mask_img"])
        np.testing.assert_allclose(np.asarray(back.dataobj),
                                   np.asarray(nilearn_regions.signals_to_img_labels(theirs, data["labels"], mask_img=kwargs["mask_img"]).dataobj),
                                   atol=1e-5)


@pytest.mark.parametrize("masked", [False, True])
def test_img_to_signals_maps_equal_nilearn(data, masked):
    mask = data["mask"] if masked else None
    ours, our_indices = regions.img_to_signals_maps(data["bold"], data["maps"], mask_img=mask)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs, their_indices = nilearn_regions.img_to_signals_maps(data["bold"], data["maps"], mask_img=mask)
    assert our_indices == their_indices == ([0, 1, 3] if masked else [0, 1, 2, 3])
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    signals = np.random.default_rng(0).standard_normal((5, 4))
    np.testing.assert_allclose(np.asarray(regions.signals_to_img_maps(signals, data["maps"], mask_img=mask).dataobj),
                               np.asarray(nilearn_regions.signals_to_img_maps(signals, data["maps"], mask_img=mask).dataobj),
                               atol=1e-5)


@pytest.mark.parametrize("chunks", [1, 10, -1])
def test_dataarray_images_give_lazy_labeled_signals(data, chunks):
    bold = from_nibabel(data["bold"]).chunk({"time": chunks})
    with raise_if_dask_computes():
        signals, labels, _ = regions.img_to_signals_labels(bold, data["labels"], mask_img=data["mask"])
        map_signals, _ = regions.img_to_signals_maps(bold, data["maps"])
    assert isinstance(signals.data, dsa.Array) and isinstance(map_signals.data, dsa.Array)
    theirs, their_labels, _ = nilearn_regions.img_to_signals_labels(data["bold"], data["labels"], mask_img=data["mask"])
    expected = xr.DataArray(theirs, dims=("time", "region"),
                            coords={"region": [str(v) for v in their_labels], "label": ("region", their_labels),
                                    "time": bold["time"]})
    xr.testing.assert_allclose(signals.drop_attrs(), expected, atol=1e-5)


def test_bad_inputs_named(data):
    other_grid = nib.Nifti1Image(np.asarray(data["labels"].dataobj), np.diag([2.0, 2, 2, 1]))
    with pytest.raises(ValueError, match="imgs and labels_img are not on the same grid"):
        regions.img_to_signals_labels(data["bold"], other_grid)
    with pytest.raises(ValueError, match="strategy"):
        regions.img_to_signals_labels(data["bold"], data["labels"], strategy="mode")
    with pytest.raises(ValueError, match="signals: expected 4 regions"):
        regions.signals_to_img_labels(np.zeros((3, 2)), data["labels"])
