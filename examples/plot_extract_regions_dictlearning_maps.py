"""
Regions extraction using dictionary learning and functional connectomes
=======================================================================

nilearn's example (seed workflow 002) in brainxr: resting-state networks from
many runs by dictionary learning (DictLearning), each network split into
separate regions (RegionExtractor), the regions' signals of every run and
their correlation connectomes (ConnectivityMeasure), the mean connectome as a
matrix and on a glass brain, and one network beside its extracted regions.
The ADHD data cannot be downloaded here: the synthetic cohort's runs (4 mm)
and their fMRIPrep confounds stand in (``brainxr.datasets.fetch_adhd`` is
the real downloader).

The last section is the cohort-scale counterpart: the same decomposition on
the runs of a Zarr cohort store (each run reduced by one lazy task) and the
regions' signals of every run as one lazy ``(run, time, region)`` array.

Run: ``python examples/plot_extract_regions_dictlearning_maps.py [--output DIR] [--quick]``
"""

# %%
# Options
# -------
# ``--output DIR`` is where the example writes its data and figures
# (default: a new temporary folder); ``--quick`` runs a smaller version, as
# the tests and the documentation do.
import argparse
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import brainxr
from brainxr import datasets, image, plotting
from brainxr.connectome import ConnectivityMeasure
from brainxr.decomposition import DictLearning
from brainxr.interfaces.fmriprep import load_confounds_strategy
from brainxr.plotting.cm import alpha_cmap
from brainxr.regions import load_maps_atlas
from brainxr.regions.region_extractor import RegionExtractor

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--output", type=Path, default=None, help="output folder (default: a new temporary folder)")
parser.add_argument("--quick", action="store_true", help="fewer subjects and volumes")
arguments = parser.parse_args()
output = arguments.output or Path(tempfile.mkdtemp(prefix="brainxr-regions-"))
quick = arguments.quick
output.mkdir(parents=True, exist_ok=True)

# %%
# The data
# --------
# nilearn: ``datasets.fetch_adhd(n_subjects=20)``.
data = datasets.make_synthetic_cohort(output / "data", n_subjects=3 if quick else 6, n_volumes=60 if quick else 100,
                                      resolution=4, overwrite=True)
func_filenames = data.func
confounds = [load_confounds_strategy(path, denoise_strategy="simple") for path in func_filenames]

# %%
# Resting-state networks with dictionary learning
# -----------------------------------------------
dict_learn = DictLearning(n_components=5, smoothing_fwhm=6.0, memory="nilearn_cache", memory_level=2,
                          random_state=0)
dict_learn.fit(func_filenames)
components_img = dict_learn.masker_.inverse_transform(dict_learn.components_)
display = plotting.plot_prob_atlas(components_img, view_type="filled_contours", title="Dictionary Learning maps")
display.savefig(output / "dictionary_learning_maps.png")

# %%
# Regions extracted from the networks
# -----------------------------------
extractor = RegionExtractor(components_img, threshold=0.5, standardize="zscore_sample", min_region_size=1350)
extractor.fit()
regions_extracted_img = extractor.regions_img_
regions_index = extractor.index_
n_regions_extracted = regions_extracted_img.shape[-1]
title = (f"{n_regions_extracted} regions are extracted from 5 components.\n"
         "Each separate color of region indicates extracted region")
display = plotting.plot_prob_atlas(regions_extracted_img, view_type="filled_contours", title=title)
display.savefig(output / "extracted_regions.png")

# %%
# Correlation connectome of each subject, and their mean
# ------------------------------------------------------
correlations = []
connectome_measure = ConnectivityMeasure(kind="correlation")
for filename, (confound, sample_mask) in zip(func_filenames, confounds):
    timeseries_each_subject = extractor.transform(filename, confounds=confound, sample_mask=sample_mask)
    correlation = connectome_measure.fit_transform([timeseries_each_subject])
    correlations.append(correlation)
mean_correlations = np.mean(correlations, axis=0).reshape(n_regions_extracted, n_regions_extracted)

# %%
# The mean connectome: matrix and glass brain
# -------------------------------------------
regions_imgs = image.iter_img(regions_extracted_img)
coords_connectome = [plotting.find_xyz_cut_coords(img) for img in regions_imgs]
title = f"Correlation interactions between {n_regions_extracted} regions"
figure = plt.figure()
plt.imshow(mean_correlations, interpolation="nearest", vmax=1, vmin=-1, cmap=plt.cm.bwr)
plt.colorbar()
plt.title(title)
figure.savefig(output / "mean_correlation_matrix.png")
display = plotting.plot_connectome(mean_correlations, coords_connectome, edge_threshold="90%", title=title)
display.savefig(output / "mean_connectome.png")

# %%
# One network and its extracted regions
# -------------------------------------
img = image.index_img(components_img, 4)
coords = plotting.find_xyz_cut_coords(img)
display = plotting.plot_stat_map(img, cut_coords=coords, colorbar=False, title="Showing one specific network")
display.savefig(output / "one_network.png")
regions_indices_of_map3 = np.where(np.array(regions_index) == 4)
display = plotting.plot_anat(cut_coords=coords, title="Extracted regions in one specific network")
color_list = [[0.0, 1.0, 0.29, 1.0], [0.0, 1.0, 0.54, 1.0], [0.0, 1.0, 0.78, 1.0], [0.0, 0.96, 1.0, 1.0],
              [0.0, 0.73, 1.0, 1.0], [0.0, 0.47, 1.0, 1.0], [0.0, 0.22, 1.0, 1.0], [0.01, 0.0, 1.0, 1.0],
              [0.26, 0.0, 1.0, 1.0]]
for each_index_of_map3, color in zip(regions_indices_of_map3[0], color_list):
    display.add_overlay(image.index_img(regions_extracted_img, int(each_index_of_map3)),
                        cmap=alpha_cmap(color))
display.savefig(output / "one_network_regions.png")

# %%
# At cohort scale
# ---------------
# The runs of a Zarr store, each reduced by one lazy task; then the regions'
# signals of all runs in one pass over the store.
brainxr.ingest(data.root, output / "cohort.zarr", progress=False)
cohort = brainxr.open_cohort(output / "cohort.zarr")
cohort_dict_learn = DictLearning(n_components=5, smoothing_fwhm=6.0, random_state=0).fit(cohort)
cohort_regions = RegionExtractor(cohort_dict_learn.components_img_, threshold=0.5, min_region_size=1350).fit()
signals = cohort.extract(load_maps_atlas(cohort_regions.regions_img_), confounds_strategy="simple",
                         clean={"standardize": "zscore_sample", "detrend": False})
signals = signals.compute()
runs_correlations = [
    ConnectivityMeasure(kind="correlation").fit_transform([signals.sel(run=run).dropna("time", how="all").values])[0]
    for run in signals["run"].values
]
print(f"cohort: {len(cohort)} runs, {len(cohort_regions.index_)} regions from 5 components, "
      f"mean correlation matrix {np.mean(runs_correlations, axis=0).shape}")
print(f"figures written to {output}")
