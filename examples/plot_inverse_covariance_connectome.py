"""
Computing a connectome with sparse inverse covariance
=====================================================

nilearn's example (seed workflow 001) in brainxr: region signals from a
probabilistic maps atlas with NiftiMapsMasker, a sparse inverse covariance
with GraphicalLassoCV, the covariance and the negated precision (partial
correlations) as matrices, glass-brain graphs and a 3D web view. The MSDL
atlas and the development-fMRI data cannot be downloaded here: the synthetic
cohort's probabilistic atlas and subject stand in
(``brainxr.datasets.fetch_atlas_msdl`` is the real downloader).

The last section is the xarray-native counterpart at cohort scale: maps
signals for every run of a Zarr store and a sparse inverse covariance of the
group.

Run: ``python examples/plot_inverse_covariance_connectome.py [--output DIR] [--quick]``
"""

# %%
# Options
# -------
# ``--output DIR`` is where the example writes its data, figures and views
# (default: a new temporary folder); ``--quick`` runs a smaller version, as
# the tests and the documentation do.
import argparse
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import brainxr
from brainxr import datasets, plotting
from brainxr.connectome import GraphicalLassoCV
from brainxr.interfaces.fmriprep import load_confounds_strategy
from brainxr.maskers import NiftiMapsMasker
from brainxr.regions import load_maps_atlas

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--output", type=Path, default=None, help="output folder (default: a new temporary folder)")
parser.add_argument("--quick", action="store_true", help="fewer volumes and maps")
arguments = parser.parse_args()
output = arguments.output or Path(tempfile.mkdtemp(prefix="brainxr-maps-"))
quick = arguments.quick
output.mkdir(parents=True, exist_ok=True)

# %%
# The atlas and the data
# ----------------------
# nilearn: ``fetch_atlas_msdl`` and ``fetch_development_fmri``.
data = datasets.make_synthetic_cohort(output / "data", n_subjects=2, n_volumes=100 if quick else 168,
                                      resolution=4, n_maps=20 if quick else 32, overwrite=True)
atlas_filename = str(data.atlas_maps_img)
atlas_table = pd.read_csv(data.atlas_maps_tsv, sep="\t")
labels = list(atlas_table["name"])
print(f"First subject functional nifti images (4D) are at: {data.func[0]}")

# %%
# Time series, cleaned with the run's fMRIPrep confounds
# ------------------------------------------------------
masker = NiftiMapsMasker(maps_img=atlas_filename, standardize="zscore_sample", memory_level=1, verbose=0)
confounds, sample_mask = load_confounds_strategy(data.func[0], denoise_strategy="simple")
time_series = masker.fit_transform(data.func[0], confounds=confounds, sample_mask=sample_mask)

# %%
# The sparse inverse covariance
# -----------------------------
estimator = GraphicalLassoCV()
estimator.fit(time_series)
print(f"alpha_ = {estimator.alpha_:.4f}")

# %%
# The connectome: covariance and precision
# ----------------------------------------
# Each as a matrix and a graph; the precision is negated (partial
# correlations), the diagonal blanked so that it does not dominate the colour
# scale.
coords = plotting.find_probabilistic_atlas_cut_coords(atlas_filename)
for name, matrix, title in [
    ("covariance", estimator.covariance_, "Covariance"),
    ("precision", -estimator.precision_, "Sparse inverse covariance"),
]:
    figure = plt.figure(figsize=(9, 7))
    np.fill_diagonal(matrix := matrix.copy(), 0)
    plotting.plot_matrix(matrix, labels=labels, figure=figure, vmax=np.abs(matrix).max(), vmin=-np.abs(matrix).max(),
                         title=title)
    figure.savefig(output / f"{name}_matrix.png")
    display = plotting.plot_connectome(matrix, coords, title=title)
    display.savefig(output / f"{name}_connectome.png")

# %%
# 3D visualization in a web browser
# ---------------------------------
view = plotting.view_connectome(-estimator.precision_, coords)
view.save_as_html(output / "precision_connectome.html")
view

# %%
# At cohort scale
# ---------------
# Maps signals of every run of a Zarr store, lazily, then one sparse inverse
# covariance of the group's stacked signals.
brainxr.ingest(data.root, output / "cohort.zarr", progress=False)
cohort = brainxr.open_cohort(output / "cohort.zarr")
signals = cohort.extract(load_maps_atlas(atlas_filename), confounds_strategy="simple",
                         clean={"standardize": "zscore_sample", "detrend": False}).compute()
stacked = np.concatenate([signals.sel(run=run).dropna("time", how="all").values for run in signals["run"].values])
group = GraphicalLassoCV().fit(stacked)
print(f"group sparse inverse covariance over {len(cohort)} runs: alpha_ = {group.alpha_:.4f}")
print(f"figures and views written to {output}")
