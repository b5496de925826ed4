"""Rendered figures compared with stored PNG baselines (tests/baseline/).

Inputs are fixed (nilearn's packaged MNI152 maps, seeded random graphs), the
figures small and saved at a fixed DPI; ``compare_images`` computes the RMS
difference of the pixels (0-255) and a figure passes under ``TOLERANCE``.
Regenerate after an intended change of look with
``BRAINXR_UPDATE_BASELINES=1 pytest tests/test_plotting_baselines.py``.
"""

import os
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
import pytest
from matplotlib.testing.compare import compare_images
from test_plotting_data import blob_map, brain_mask, random_connectome, t1  # noqa: F401 (fixtures)

from brainxr import plotting

BASELINE_DIR = Path(__file__).parent / "baseline"
TOLERANCE = 3.0  # RMS, on 0-255 pixel values
DPI = 50


def _figures(brain_mask, t1):  # noqa: F811
    weights, coords = random_connectome(20, seed=7)
    stat_map = blob_map(t1, centres=[(0, -52, 18), (-46, -68, 32)], widths=[8.0, 6.0], signs=[1.0, -0.7])
    maps = nib.Nifti1Image(
        np.stack([np.asarray(blob_map(t1, [c], widths=[12.0]).dataobj) for c in [(-30, -20, 10), (30, -20, 10), (0, 40, 0)]], -1),
        t1.affine,
    )
    return {
        "connectome_ortho": lambda: plotting.plot_connectome(weights, coords, edge_threshold="90%", title="connectome",
                                                             brain_mask=brain_mask),
        "connectome_lzry": lambda: plotting.plot_connectome(weights, coords, edge_threshold="95%", display_mode="lzry",
                                                            brain_mask=brain_mask, colorbar=False),
        "markers": lambda: plotting.plot_markers(np.abs(weights).sum(axis=0), coords, brain_mask=brain_mask),
        "matrix": lambda: plotting.plot_matrix(weights, labels=[f"r{i}" for i in range(20)], vmin=-1, vmax=1,
                                               title="matrix"),
        "matrix_networks": lambda: plotting.plot_matrix(
            _block_correlations(), networks=[f"net{n % 4}" for n in range(60)], reorder="network",
            title="networks"),
        "stat_map": lambda: plotting.plot_stat_map(stat_map, bg_img=t1, threshold=0.2, cut_coords=(0, -52, 18),
                                                   title="seed"),
        "glass_brain": lambda: plotting.plot_glass_brain(stat_map, threshold=0.2, plot_abs=False, brain_mask=brain_mask),
        "prob_atlas": lambda: plotting.plot_prob_atlas(maps, bg_img=t1, view_type="filled_contours",
                                                       cut_coords=(0, -20, 10)),
    }


def _block_correlations(n_regions=60, seed=3):
    """Correlations of 60 regions in 4 interleaved networks (rows of a network are not adjacent)."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=(200, 4))
    signals = rng.normal(size=(200, n_regions)) + 1.2 * shared[:, np.arange(n_regions) % 4]
    return np.corrcoef(signals.T)


def _save(result, path: Path) -> None:
    figure = getattr(result, "figure", None) or getattr(result, "frame_axes").figure
    figure.savefig(path, dpi=DPI, facecolor=figure.get_facecolor())
    plt.close(figure)


@pytest.mark.parametrize("name", ["connectome_ortho", "connectome_lzry", "markers", "matrix", "matrix_networks", "stat_map",
                                  "glass_brain", "prob_atlas"])
def test_figure_matches_baseline(name, brain_mask, t1, tmp_path):  # noqa: F811
    with matplotlib.rc_context({"font.family": "DejaVu Sans", "svg.hashsalt": "brainxr"}):
        result = _figures(brain_mask, t1)[name]()
        baseline = BASELINE_DIR / f"{name}.png"
        if os.environ.get("BRAINXR_UPDATE_BASELINES"):
            _save(result, baseline)
            pytest.skip(f"baseline {baseline.name} written")
        actual = tmp_path / f"{name}.png"
        _save(result, actual)
    assert baseline.exists(), f"missing baseline {baseline}; run with BRAINXR_UPDATE_BASELINES=1"
    difference = compare_images(str(baseline), str(actual), tol=TOLERANCE)
    assert difference is None, difference


def test_a_changed_figure_fails_the_comparison(brain_mask, t1, tmp_path):  # noqa: F811
    weights, coords = random_connectome(20, seed=7)
    display = plotting.plot_connectome(weights, coords, edge_threshold="50%", title="connectome", brain_mask=brain_mask)
    actual = tmp_path / "changed.png"
    _save(display, actual)
    assert compare_images(str(BASELINE_DIR / "connectome_ortho.png"), str(actual), tol=TOLERANCE) is not None
