"""The nilearn seed workflows, as brainxr examples, run end to end (quick mode).

Each example makes its own synthetic fMRIPrep-like data, runs the nilearn
workflow with brainxr, then the cohort-scale (Zarr, lazy) counterpart. The
test runs it in a fresh interpreter, as a user would, and checks that it
finished and wrote every figure, page and image it announces.
"""

import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

OUTPUTS = {
    "plot_sphere_based_connectome.py": [
        "dmn_time_series.png",
        "dmn_connectome.png",
        "dmn_connectome_hemispheres.png",
        "dmn_connectome.html",
        "power_matrix.png",
        "power_graph.png",
        "cohort.zarr",
    ],
    "plot_inverse_covariance_connectome.py": [
        "precision_connectome.html",
        "cohort.zarr",
    ],
    "plot_seed_to_voxel_correlation.py": [
        "seed_time_series.png",
        "pcc_seed_correlation.pdf",
        "pcc_seed_correlation_z.nii.gz",
        "cohort.zarr",
    ],
    "plot_nifti_labels_simple.py": [
        "report_atlas.html",
        "report_fitted.html",
        "signals.png",
        "cohort.zarr",
    ],
    "plot_extract_regions_dictlearning_maps.py": [
        "dictionary_learning_maps.png",
        "extracted_regions.png",
        "mean_correlation_matrix.png",
        "mean_connectome.png",
        "one_network.png",
        "one_network_regions.png",
        "cohort.zarr",
    ],
}


def test_every_example_is_tested():
    assert sorted(path.name for path in EXAMPLES.glob("plot_*.py")) == sorted(OUTPUTS)


@pytest.mark.parametrize("example", sorted(OUTPUTS))
def test_example_runs(example, tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / example), "--output", str(tmp_path), "--quick"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for name in OUTPUTS[example]:
        path = tmp_path / name
        assert path.exists(), f"{example} did not write {name}"
        if path.is_file():
            assert path.stat().st_size > 0, f"{example} wrote an empty {name}"
    # no image written holds infinities; NaN only marks the few voxels of the
    # cohort mask where a run has no signal (correlation undefined)
    for path in tmp_path.glob("*.nii.gz"):
        data = np.asarray(nib.load(path).dataobj)
        assert not np.isinf(data).any(), path.name
        assert np.isnan(data).sum() <= 0.01 * np.count_nonzero(data), path.name
