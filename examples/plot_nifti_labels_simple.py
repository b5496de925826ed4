"""
Extracting signals from brain regions using the NiftiLabelsMasker
=================================================================

nilearn's example (seed workflow 004) in brainxr: a labels atlas, a masker
report with the regions summary table (before and after fitting on data), the
region signals, and a plot of three of them. The Harvard-Oxford atlas and the
development-fMRI data cannot be downloaded here: the synthetic cohort's
labels atlas and subject stand in
(``brainxr.datasets.fetch_atlas_harvard_oxford`` is the real downloader).

The last section is the xarray-native counterpart at cohort scale.

Run: ``python examples/plot_nifti_labels_simple.py [--output DIR] [--quick]``
"""

# %%
# Options
# -------
# ``--output DIR`` is where the example writes its data, figures and reports
# (default: a new temporary folder); ``--quick`` runs a smaller version, as
# the tests and the documentation do.
import argparse
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

import brainxr
from brainxr import datasets
from brainxr.maskers import NiftiLabelsMasker
from brainxr.regions import load_labels_atlas

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--output", type=Path, default=None, help="output folder (default: a new temporary folder)")
parser.add_argument("--quick", action="store_true", help="fewer volumes and regions")
arguments = parser.parse_args()
output = arguments.output or Path(tempfile.mkdtemp(prefix="brainxr-labels-"))
quick = arguments.quick
output.mkdir(parents=True, exist_ok=True)

# %%
# The data and the atlas
# ----------------------
# nilearn: ``fetch_development_fmri`` and ``fetch_atlas_harvard_oxford``.
dataset = datasets.make_synthetic_cohort(output / "data", n_subjects=2, n_volumes=80 if quick else 168,
                                         resolution=4, n_regions=48 if quick else 100, overwrite=True)
func_filename = dataset.func[0]
print(f"First functional nifti image (4D) is at: {func_filename}")
lut = pd.read_csv(dataset.atlas_labels_tsv, sep="\t")
atlas_labels = ["Background"] + list(lut["name"])
print(f"The atlas contains {len(atlas_labels) - 1} non-overlapping regions")

# %%
# The masker, and its report before it has seen data
# --------------------------------------------------
masker = NiftiLabelsMasker(str(dataset.atlas_labels_img), labels=atlas_labels, standardize="zscore_sample")
masker.fit()
report = masker.generate_report()
report.save_as_html(output / "report_atlas.html")
report

# %%
# Fitted on the functional image
# ------------------------------
# The report shows the regions over the mean image of the run.
masker.fit(func_filename)
report = masker.generate_report()
report.save_as_html(output / "report_fitted.html")
report

# %%
# The region signals
# ------------------
# ``(n_time_points, n_regions)``, as nilearn's.
signals = masker.transform(func_filename)
print(signals.shape)

figure = plt.figure(figsize=(15, 5))
axes = figure.add_subplot(111)
for label_index in range(3):
    axes.plot(signals[:, label_index], linewidth=2, label=atlas_labels[label_index + 1])  # 0 is background
axes.legend(loc=2)
axes.set_title("Signals for first 3 regions")
figure.savefig(output / "signals.png")

# %%
# Labeled DataArrays
# ------------------
# The same masker can return ``(time, region)`` DataArrays, labeled with the
# region names, label values and centres.
masker.set_output(transform="xarray")
labeled = masker.transform(func_filename)
print(labeled.sel(region=atlas_labels[1:4]).dims)

# %%
# At cohort scale
# ---------------
# Every run of a Zarr store, lazily, as ``(run, time, region)``.
brainxr.ingest(dataset.root, output / "cohort.zarr", progress=False)
cohort = brainxr.open_cohort(output / "cohort.zarr")
atlas = load_labels_atlas(dataset.atlas_labels_img, lut=dataset.atlas_labels_tsv)
cohort_signals = cohort.extract(atlas, clean={"standardize": "zscore_sample", "detrend": False})
print(cohort_signals.compute().sizes)
print(f"figures and reports written to {output}")
