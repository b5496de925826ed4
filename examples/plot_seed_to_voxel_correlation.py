"""
Producing single subject maps of seed-to-voxel correlation
==========================================================

nilearn's example (seed workflow 003) in brainxr: the mean signal of a sphere
in the posterior cingulate cortex (PCC) and the whole-brain voxel signals
(6 mm smoothing), both detrended, band-passed and standardized with the run's
confounds; their correlation map drawn over the anatomy with a marker on the
seed, saved as PDF; its Fisher z transform saved as NIfTI. The
development-fMRI data cannot be downloaded here: a synthetic subject stands
in.

The last section is the xarray-native counterpart at cohort scale: the same
maps for every run of a Zarr store, lazily over voxel chunks, never holding a
whole run in memory.

Run: ``python examples/plot_seed_to_voxel_correlation.py [--output DIR] [--quick]``
"""

# %%
# Options
# -------
# ``--output DIR`` is where the example writes its data, figures and maps
# (default: a new temporary folder); ``--quick`` runs a smaller version, as
# the tests and the documentation do.
import argparse
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import brainxr
from brainxr import datasets, plotting
from brainxr.connectome import seed_to_voxel_correlation
from brainxr.interfaces.fmriprep import load_confounds_strategy
from brainxr.maskers import NiftiMasker, NiftiSpheresMasker
from brainxr.regions import Spheres

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--output", type=Path, default=None, help="output folder (default: a new temporary folder)")
parser.add_argument("--quick", action="store_true", help="fewer volumes")
arguments = parser.parse_args()
output = arguments.output or Path(tempfile.mkdtemp(prefix="brainxr-seed-"))
quick = arguments.quick
output.mkdir(parents=True, exist_ok=True)

CLEAN = dict(detrend=True, standardize="zscore_sample", low_pass=0.1, high_pass=0.01, t_r=2)

# %%
# The data
# --------
# nilearn: ``fetch_development_fmri``.
dataset = datasets.make_synthetic_cohort(output / "data", n_subjects=2, n_volumes=100 if quick else 168,
                                         resolution=4, overwrite=True)
func_filename = dataset.func[0]
confounds, sample_mask = load_confounds_strategy(func_filename, denoise_strategy="simple")

# %%
# The seed: a sphere in the posterior cingulate cortex
# ----------------------------------------------------
pcc_coords = [(0, -52, 18)]
seed_masker = NiftiSpheresMasker(pcc_coords, radius=8, **CLEAN)
seed_time_series = seed_masker.fit_transform(func_filename, confounds=confounds, sample_mask=sample_mask)

# %%
# The brain-wide voxel signals, smoothed with a 6 mm kernel
# ---------------------------------------------------------
brain_masker = NiftiMasker(smoothing_fwhm=6, **CLEAN)
brain_time_series = brain_masker.fit_transform(func_filename, confounds=confounds, sample_mask=sample_mask)
print(f"Seed time series shape: ({seed_time_series.shape})")
print(f"Brain time series shape: ({brain_time_series.shape})")

figure = plt.figure()
plt.plot(seed_time_series)
plt.title("Seed time series (Posterior cingulate cortex)")
plt.xlabel("Scan number")
plt.ylabel("Normalized signal")
figure.savefig(output / "seed_time_series.png")

# %%
# The correlation map
# -------------------
# The signals are standardized, so the correlation is a dot product over the
# samples.
seed_to_voxel_correlations = np.dot(brain_time_series.T, seed_time_series) / seed_time_series.shape[0]
print(f"Seed-to-voxel correlation shape: {seed_to_voxel_correlations.shape}")
print(f"Seed-to-voxel correlation: min = {seed_to_voxel_correlations.min():.3f}; "
      f"max = {seed_to_voxel_correlations.max():.3f}")

seed_to_voxel_correlations_img = brain_masker.inverse_transform(seed_to_voxel_correlations.T)
display = plotting.plot_stat_map(seed_to_voxel_correlations_img, threshold=0.5, vmax=1,
                                 cut_coords=pcc_coords[0], title="Seed-to-voxel correlation (PCC seed)")
display.add_markers(marker_coords=pcc_coords, marker_color="g", marker_size=300)
display.savefig(output / "pcc_seed_correlation.pdf")

# %%
# Fisher z, saved as NIfTI
# ------------------------
seed_to_voxel_correlations_fisher_z = np.arctanh(seed_to_voxel_correlations)
print("Seed-to-voxel correlation Fisher-z transformed: "
      f"min = {seed_to_voxel_correlations_fisher_z.min():.3f}; "
      f"max = {seed_to_voxel_correlations_fisher_z.max():.3f}")
img = brain_masker.inverse_transform(seed_to_voxel_correlations_fisher_z.T)
img.to_filename(output / "pcc_seed_correlation_z.nii.gz")

# %%
# At cohort scale
# ---------------
# Every run's Fisher z map, lazily over voxel chunks, each written to NIfTI
# chunk by chunk.
brainxr.ingest(dataset.root, output / "cohort.zarr", progress=False)
cohort = brainxr.open_cohort(output / "cohort.zarr")
clean = {key: value for key, value in CLEAN.items() if key != "t_r"}
seeds = cohort.extract(Spheres(pcc_coords, radius=8), confounds_strategy="simple", clean=clean)
cleaned = cohort.clean(strategy="simple", **clean)["bold"]  # lazy (run, time, voxel), kept volumes first
for run in cleaned["run"].values:
    seed = seeds.sel(run=run).dropna("time", how="all").isel(region=0)
    voxels = cleaned.sel(run=run).isel(time=slice(0, seed.sizes["time"]))
    fisher_z = seed_to_voxel_correlation(seed.values, voxels, fisher_z=True, as_volume=True)
    brainxr.to_nifti(fisher_z, output / f"{run}_desc-pcc_fisherz.nii.gz")
print(f"figures and maps written to {output}")
