"""nilearn's other plotting names in brainxr: ``cm``, ``show``, ``plot_img``, ``plot_epi``, ``plot_roi``."""

import matplotlib
import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
import pytest
from nilearn import plotting as nilearn_plotting
from nilearn.plotting import cm as nilearn_cm

from brainxr import plotting
from brainxr.nifti import from_nibabel


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def roi():
    data = np.zeros((30, 36, 30), np.int16)
    data[5:14, 8:20, 6:15] = 1
    data[16:25, 14:28, 12:22] = 2
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = [-45, -60, -40]
    return nib.Nifti1Image(data, affine)


def test_colormaps_equal_nilearn():
    values = np.linspace(0, 1, 101)
    assert set(nilearn_cm._cmap_d) <= set(plotting.cm._cmap_d)
    for name, theirs in nilearn_cm._cmap_d.items():
        np.testing.assert_allclose(getattr(plotting.cm, name)(values), theirs(values), err_msg=name)
    np.testing.assert_allclose(plotting.cm.alpha_cmap("r", alpha_min=0.2)(values),
                               nilearn_cm.alpha_cmap("r", alpha_min=0.2)(values))
    np.testing.assert_allclose(plotting.cm.dim_cmap(plotting.cm.cold_hot)(values),
                               nilearn_cm.dim_cmap(nilearn_cm.cold_hot)(values))


def test_show_is_a_no_op_without_a_display(monkeypatch):
    assert matplotlib.get_backend().lower() == "agg"
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(True))
    plotting.show()
    assert shown == []


def _shown_values(display):
    images = [np.ma.compressed(array).ravel() for array in _drawn_images(display) if np.ndim(array) == 2]
    return np.sort(np.concatenate(images).astype(float))


def _drawn_images(display):
    return [image.get_array() for ax in display.frame_axes.figure.axes for image in ax.get_images()]


@pytest.mark.parametrize("as_dataarray", [False, True])
def test_plot_img_epi_roi_draw_what_nilearn_draws(roi, as_dataarray):
    image = from_nibabel(roi) if as_dataarray else roi
    cuts = (-6.0, 0.0, 3.0)
    epi = nib.Nifti1Image(np.stack([np.asarray(roi.dataobj, float)] * 3, axis=-1), roi.affine)
    for ours, theirs in (
        (plotting.plot_img(image, cut_coords=cuts), nilearn_plotting.plot_img(roi, cut_coords=cuts)),
        (plotting.plot_roi(image, bg_img=None, cut_coords=cuts), nilearn_plotting.plot_roi(roi, bg_img=None, cut_coords=cuts)),
        (plotting.plot_epi(epi, cut_coords=cuts), nilearn_plotting.plot_epi(_nilearn_mean(epi), cut_coords=cuts)),
    ):
        # the three cuts show the same voxel values (figures' layouts differ in their details)
        np.testing.assert_allclose(_shown_values(ours), _shown_values(theirs))
    assert plotting.plot_epi(epi).black_bg


def _nilearn_mean(img):
    from nilearn import image as nilearn_image

    return nilearn_image.mean_img(img, copy_header=True)


def test_plot_roi_shows_every_region_and_contours(roi, tmp_path):
    display = plotting.plot_roi(roi, bg_img=None, threshold=0.5, cut_coords=(0, 0, 0))
    shown = np.unique(np.concatenate([np.ma.compressed(array).ravel() for array in _drawn_images(display)]))
    assert {1.0, 2.0} <= set(shown.tolist())
    contours = plotting.plot_roi(roi, bg_img=None, view_type="contours", cut_coords=(0, 0, 0))
    assert sum(len(ax.collections) for ax in contours.frame_axes.figure.axes) > 0
    plotting.plot_roi(roi, output_file=tmp_path / "roi.png")
    assert (tmp_path / "roi.png").stat().st_size > 0
    with pytest.raises(ValueError, match="view_type"):
        plotting.plot_roi(roi, view_type="filled")
    with pytest.raises(ValueError, match="threshold"):
        plotting.plot_roi(roi, threshold=-1)
