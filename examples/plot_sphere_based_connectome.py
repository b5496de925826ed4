"""
Extract signals on spheres and plot a connectome
================================================

nilearn's sphere-based example (seed workflow 000) in brainxr: signals from
spheres around Default Mode Network coordinates, a partial-correlation
connectome drawn on a glass brain and in a 3D web view; then spheres on the
Power-264 and Dosenbach-160 coordinates with a sparse inverse covariance
(GraphicalLassoCV), the matrix, the graph and node strength. The public
development-fMRI data cannot be downloaded here, so a synthetic
fMRIPrep-like subject stands in.

The last section is the xarray-native counterpart at cohort scale: the same
spheres for every run of a Zarr cohort store, lazily, and a group connectome.

Run: ``python examples/plot_sphere_based_connectome.py [--output DIR] [--quick]``
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

import brainxr
from brainxr import datasets, plotting
from brainxr.connectome import ConnectivityMeasure, GraphicalLassoCV, connectivity, mean_connectome
from brainxr.interfaces.fmriprep import load_confounds_strategy
from brainxr.maskers import NiftiSpheresMasker
from brainxr.regions import Spheres

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--output", type=Path, default=None, help="output folder (default: a new temporary folder)")
parser.add_argument("--quick", action="store_true", help="fewer volumes and only the Power atlas")
arguments = parser.parse_args()
output = arguments.output or Path(tempfile.mkdtemp(prefix="brainxr-spheres-"))
quick = arguments.quick
output.mkdir(parents=True, exist_ok=True)

# %%
# The data
# --------
# One synthetic fMRIPrep subject (nilearn: ``fetch_development_fmri``) and its
# confounds, selected by nilearn's "simple" strategy.
dataset = datasets.make_synthetic_cohort(output / "data", n_subjects=3, n_volumes=100 if quick else 168,
                                         resolution=4, overwrite=True)
func_filename = dataset.func[0]
confounds, sample_mask = load_confounds_strategy(func_filename, denoise_strategy="simple")
print(f"First subject functional nifti image (4D) is at: {func_filename}")

# %%
# Coordinates of the Default Mode Network
# ---------------------------------------
dmn_coords = [(0, -52, 18), (-46, -68, 32), (46, -68, 32), (1, 50, -5)]
labels = ["Posterior Cingulate Cortex", "Left Temporoparietal junction",
          "Right Temporoparietal junction", "Medial prefrontal cortex"]

# %%
# Signals from spheres around the DMN seeds
# -----------------------------------------
# Detrended, band-passed and standardized, with the run's confounds.
masker = NiftiSpheresMasker(dmn_coords, radius=8, detrend=True, standardize="zscore_sample",
                            low_pass=0.1, high_pass=0.01, t_r=2)
time_series = masker.fit_transform(func_filename, confounds=confounds, sample_mask=sample_mask)

figure = plt.figure()
for time_serie, label in zip(time_series.T, labels):
    plt.plot(time_serie, label=label)
plt.title("Default Mode Network Time Series")
plt.xlabel("Scan number")
plt.ylabel("Normalized signal")
plt.legend()
figure.savefig(output / "dmn_time_series.png")

# %%
# Partial correlations
# --------------------
# From a Ledoit-Wolf covariance, nilearn's default.
connectivity_measure = ConnectivityMeasure(kind="partial correlation")
partial_correlation_matrix = connectivity_measure.fit_transform([time_series])[0]

display = plotting.plot_connectome(partial_correlation_matrix, dmn_coords,
                                   title="Default Mode Network Connectivity")
display.savefig(output / "dmn_connectome.png")
display = plotting.plot_connectome(partial_correlation_matrix, dmn_coords,
                                   title="Connectivity projected on hemispheres", display_mode="lyrz")
display.savefig(output / "dmn_connectome_hemispheres.png")

# %%
# 3D visualization in a web browser
# ---------------------------------
# One self-contained HTML file (``view.open_in_browser()`` opens it); in a
# notebook or on this page, the view shows inline.
view = plotting.view_connectome(partial_correlation_matrix, dmn_coords)
view.save_as_html(output / "dmn_connectome.html")
view

# %%
# Spheres on the Power-264 and Dosenbach-160 coordinates
# ------------------------------------------------------
# A sparse inverse covariance of each (``--quick``: Power only), its matrix,
# its graph and the strength of each node.
power = datasets.fetch_coords_power_2011()
dosenbach = datasets.fetch_coords_dosenbach_2010()
atlases = [
    ("Power", np.vstack((power.rois["x"], power.rois["y"], power.rois["z"])).T, 5.0, "99.8%"),
    ("Dosenbach", np.vstack((dosenbach.rois["x"], dosenbach.rois["y"], dosenbach.rois["z"])).T, 4.5, "99.7%"),
]
for name, coords, radius, threshold in atlases[:1] if quick else atlases:
    print(f"Stacked {name} coordinates in array of shape {coords.shape}.")
    spheres_masker = NiftiSpheresMasker(seeds=coords, smoothing_fwhm=6, radius=radius, detrend=True,
                                        standardize="zscore_sample", low_pass=0.1, high_pass=0.01, t_r=2)
    timeseries = spheres_masker.fit_transform(func_filename, confounds=confounds, sample_mask=sample_mask)
    print(f"time series has {timeseries.shape[0]} samples")

    covariance_estimator = GraphicalLassoCV(cv=3, verbose=1)
    covariance_estimator.fit(timeseries)
    matrix = covariance_estimator.covariance_
    print(f"Covariance matrix has shape {matrix.shape}; alpha_ = {covariance_estimator.alpha_:.3f}")

    figure = plt.figure(figsize=(8, 7))
    plotting.plot_matrix(matrix, vmin=-1.0, vmax=1.0, colorbar=True, title=f"{name} correlation matrix",
                         figure=figure)
    figure.savefig(output / f"{name.lower()}_matrix.png")
    display = plotting.plot_connectome(matrix, coords, title=f"{name} correlation graph",
                                       edge_threshold=threshold, node_size=20, colorbar=True)
    display.savefig(output / f"{name.lower()}_graph.png")

    # node strength: all edges, then the positive and the negative ones
    for part, edges in [("absolute", matrix), ("positive", np.clip(matrix, 0, matrix.max())),
                        ("negative", np.clip(matrix, matrix.min(), 0))]:
        node_strength = np.sum(np.abs(edges), axis=0)
        node_strength /= np.max(node_strength)
        display = plotting.plot_markers(node_strength, coords,
                                        title=f"Node strength for the {part} edges for {name} atlas")
        display.savefig(output / f"{name.lower()}_strength_{part}.png")

# %%
# At cohort scale
# ---------------
# The same spheres for every run of a Zarr store, lazily: ``(run, time,
# region)`` signals cleaned with each run's confounds, one partial-correlation
# matrix per run, and their group mean (of Fisher z).
brainxr.ingest(dataset.root, output / "cohort.zarr", progress=False)
cohort = brainxr.open_cohort(output / "cohort.zarr")
signals = cohort.extract(Spheres(dmn_coords, radius=8), confounds_strategy="simple",
                         clean={"detrend": True, "standardize": "zscore_sample", "low_pass": 0.1, "high_pass": 0.01})
group = mean_connectome(connectivity(signals, kind="partial correlation"))
print(f"group partial correlations over {len(cohort)} runs:\n{np.round(group.values, 2)}")
print(f"figures and views written to {output}")
