"""The five nilearn seed workflows, as the examples write them, in nilearn and in brainxr.

Usage::

    python benchmarks/seeds.py [--data DIR] [--only NAME ...] [--quick]

Each workflow is the nilearn part of its example in ``examples/`` (the seed
of ``/work/shared/seeds``): the same code on both sides with only the
imports changed (``nilearn`` -> ``brainxr``); the GraphicalLassoCV of the
sphere and maps workflows is scikit-learn's on the nilearn side (as the
examples of nilearn write it) and brainxr's on the brainxr side. The data is
the synthetic fMRIPrep cohort (the development-fMRI and ADHD downloads
cannot be reached here), made once into ``--data``:

=================  ==============================================================
spheres (000)      1 run, 4 mm x 168 volumes: DMN spheres + partial correlation +
                   plots + view; Power-264 and Dosenbach-160 spheres (6 mm
                   smoothing) + GraphicalLassoCV + matrix, graph, node strength
maps (001)         1 run, 4 mm x 168 volumes, 32 maps: NiftiMapsMasker +
                   GraphicalLassoCV + matrices, graphs, view
regions (002)      20 runs, 4 mm x 100 volumes: DictLearning (5 components,
                   6 mm, random_state=0) + plot_prob_atlas + RegionExtractor +
                   per-run correlations + mean connectome + cut coords + plots
seed-to-voxel (003) 1 run, 2 mm x 300 volumes: PCC sphere + NiftiMasker (6 mm) +
                   correlation + inverse_transform + plot_stat_map (PDF) + Fisher
                   z NIfTI
labels (004)       1 run, 4 mm x 168 volumes, 100 regions: NiftiLabelsMasker +
                   report (atlas only, then fitted) + transform + signal plot
=================  ==============================================================

Every side runs in a fresh process (``_harness.measure``): imports and
compilation are inside the timed body, as a user's script pays them;
brainxr's bytecode is written first, as ``pip install`` writes it
(``_harness.compile_bytecode``). Each side starts in an empty working folder,
as a user's first run (the regions example's ``memory="nilearn_cache"``
would otherwise hand nilearn its masking and PCA from the previous run;
brainxr accepts ``memory`` and keeps no cache). Printed per workflow: wall time, peak
resident memory (``VmHWM``), the ratios, and the largest absolute
difference of every output between the two sides.

Beside them, each workflow's *floor*: what the example spends outside
brainxr, which no drop-in can make faster. It is the brainxr side's code
(``FLOORS``) with every call into brainxr removed, and with it every method
of an object such a call returned unless that object is a numpy array (a
display's ``savefig``, a report's ``save_as_html``, an image's
``to_filename``); where the example goes on with a result (plots a signal,
multiplies two arrays), the result is the nilearn run's output, read from
disk. What is left is the example's own work with numpy, pandas and
matplotlib on objects it made itself: its imports (Python's start-up and
the harness's few standard-library imports are outside the clock, as for
both sides), its tables read with pandas, its own figures and their
``savefig``, its numpy arithmetic; run as the two sides are (fresh process,
same harness, clock around the body). The time spent reading the saved
outputs is measured and taken off. The floor is a lower bound of the
brainxr side's time: everything in it is also in the brainxr run, on the
same arrays, and the figures brainxr draws into the example's own figures
(``plot_matrix(figure=...)``) are left out, so those are saved empty. The
GraphicalLassoCV of the spheres and maps workflows is brainxr's on the
brainxr side, so its fit is not in the floor (nilearn's example fits
scikit-learn's). ``nilearn s / floor s`` is printed as the best possible
speed-up: a brainxr taking no time at all would reach it, no further.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import compile_bytecode, load_average, measure, print_table  # noqa: E402

CLEAN = 'detrend=True, standardize="zscore_sample", low_pass=0.1, high_pass=0.01, t_r=2'

#: workflow name -> (data spec, body template). ``{lib}`` is "nilearn" or "brainxr"; ``{glasso}`` the
#: GraphicalLassoCV import; ``D`` (the data paths) and ``OUT`` (output folder) are given.
WORKFLOWS = {
    "spheres": ("4mm-1x168", '''
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from {lib} import datasets, plotting
from {lib}.connectome import ConnectivityMeasure
from {lib}.interfaces.fmriprep import load_confounds_strategy
from {lib}.maskers import NiftiSpheresMasker
{glasso}

func_filename = D["func"][0]
confounds, sample_mask = load_confounds_strategy(func_filename, denoise_strategy="simple")
dmn_coords = [(0, -52, 18), (-46, -68, 32), (46, -68, 32), (1, 50, -5)]
masker = NiftiSpheresMasker(dmn_coords, radius=8, {clean})
time_series = masker.fit_transform(func_filename, confounds=confounds, sample_mask=sample_mask)
figure = plt.figure()
for time_serie in time_series.T:
    plt.plot(time_serie)
figure.savefig(OUT / "dmn_time_series.png")
plt.close(figure)
connectivity_measure = ConnectivityMeasure(kind="partial correlation")
partial_correlation_matrix = connectivity_measure.fit_transform([time_series])[0]
plotting.plot_connectome(partial_correlation_matrix, dmn_coords, title="DMN").savefig(OUT / "dmn.png")
plotting.plot_connectome(partial_correlation_matrix, dmn_coords, display_mode="lyrz").savefig(OUT / "dmn_lyrz.png")
plotting.view_connectome(partial_correlation_matrix, dmn_coords).save_as_html(OUT / "dmn.html")
OUTPUTS["dmn_time_series"] = time_series
OUTPUTS["partial_correlation"] = partial_correlation_matrix
power = datasets.fetch_coords_power_2011()
dosenbach = datasets.fetch_coords_dosenbach_2010()
for name, atlas, radius, threshold in [("power", power, 5.0, "99.8%"), ("dosenbach", dosenbach, 4.5, "99.7%")]:
    coords = np.vstack((atlas.rois["x"], atlas.rois["y"], atlas.rois["z"])).T
    spheres_masker = NiftiSpheresMasker(seeds=coords, smoothing_fwhm=6, radius=radius, {clean})
    timeseries = spheres_masker.fit_transform(func_filename, confounds=confounds, sample_mask=sample_mask)
    covariance_estimator = GraphicalLassoCV(cv=3) if name == "power" else GraphicalLassoCV()
    covariance_estimator.fit(timeseries)
    matrix = covariance_estimator.covariance_
    figure = plt.figure()
    plotting.plot_matrix(matrix, vmin=-1.0, vmax=1.0, colorbar=True, figure=figure)
    figure.savefig(OUT / f"{{name}}_matrix.png")
    plt.close(figure)
    plotting.plot_connectome(matrix, coords, edge_threshold=threshold, node_size=20, colorbar=True).savefig(OUT / f"{{name}}_graph.png")
    for part, edges in [("abs", matrix), ("pos", np.clip(matrix, 0, matrix.max())), ("neg", np.clip(matrix, matrix.min(), 0))]:
        node_strength = np.sum(np.abs(edges), axis=0)
        node_strength /= np.max(node_strength)
        plotting.plot_markers(node_strength, coords).savefig(OUT / f"{{name}}_{{part}}.png")
    plt.close("all")
    OUTPUTS[f"{{name}}_time_series"] = timeseries
    OUTPUTS[f"{{name}}_covariance"] = matrix
    OUTPUTS[f"{{name}}_alpha"] = np.array([covariance_estimator.alpha_])
'''),
    "maps": ("4mm-1x168", '''
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from {lib} import plotting
from {lib}.interfaces.fmriprep import load_confounds_strategy
from {lib}.maskers import NiftiMapsMasker
{glasso}

atlas_filename = D["maps"]
labels = list(pd.read_csv(D["maps_tsv"], sep="\\t")["name"])
masker = NiftiMapsMasker(maps_img=atlas_filename, standardize="zscore_sample", memory_level=1, verbose=0)
confounds, sample_mask = load_confounds_strategy(D["func"][0], denoise_strategy="simple")
time_series = masker.fit_transform(D["func"][0], confounds=confounds, sample_mask=sample_mask)
estimator = GraphicalLassoCV()
estimator.fit(time_series)
coords = plotting.find_probabilistic_atlas_cut_coords(atlas_filename)
for name, matrix in [("covariance", estimator.covariance_), ("precision", -estimator.precision_)]:
    figure = plt.figure(figsize=(9, 7))
    matrix = matrix.copy()
    np.fill_diagonal(matrix, 0)
    plotting.plot_matrix(matrix, labels=labels, figure=figure, vmax=np.abs(matrix).max(), vmin=-np.abs(matrix).max())
    figure.savefig(OUT / f"{{name}}_matrix.png")
    plt.close(figure)
    plotting.plot_connectome(matrix, coords).savefig(OUT / f"{{name}}_connectome.png")
plotting.view_connectome(-estimator.precision_, coords).save_as_html(OUT / "precision.html")
plt.close("all")
OUTPUTS["time_series"] = time_series
OUTPUTS["covariance"] = estimator.covariance_
OUTPUTS["precision"] = estimator.precision_
OUTPUTS["alpha"] = np.array([estimator.alpha_])
OUTPUTS["coords"] = np.asarray(coords)
'''),
    "regions": ("4mm-20x100", '''
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from {lib} import image, plotting
from {lib}.connectome import ConnectivityMeasure
from {lib}.decomposition import DictLearning
from {lib}.regions import RegionExtractor

func_filenames, confounds = D["func"], D["confounds_csv"]
dict_learn = DictLearning(n_components=5, smoothing_fwhm=6.0, memory="nilearn_cache", memory_level=2,
                          random_state=0, standardize="zscore_sample")
dict_learn.fit(func_filenames)
components_img = dict_learn.masker_.inverse_transform(dict_learn.components_)
plotting.plot_prob_atlas(components_img, view_type="filled_contours", title="Dictionary Learning maps").savefig(OUT / "maps.png")
extractor = RegionExtractor(components_img, threshold=0.5, thresholding_strategy="ratio_n_voxels",
                            extractor="local_regions", standardize="zscore_sample", min_region_size=1350)
extractor.fit()
regions_extracted_img = extractor.regions_img_
regions_index = extractor.index_
n_regions_extracted = regions_extracted_img.shape[-1]
plotting.plot_prob_atlas(regions_extracted_img, view_type="filled_contours").savefig(OUT / "regions.png")
correlations = []
connectome_measure = ConnectivityMeasure(kind="correlation")
for filename, confound in zip(func_filenames, confounds):
    timeseries_each_subject = extractor.transform(filename, confounds=confound)
    correlation = connectome_measure.fit_transform([timeseries_each_subject])
    correlations.append(correlation)
mean_correlations = np.mean(correlations, axis=0).reshape(n_regions_extracted, n_regions_extracted)
regions_imgs = image.iter_img(regions_extracted_img)
coords_connectome = [plotting.find_xyz_cut_coords(img) for img in regions_imgs]
figure = plt.figure()
plt.imshow(mean_correlations, interpolation="nearest", vmax=1, vmin=-1, cmap=plt.cm.bwr)
figure.savefig(OUT / "mean_matrix.png")
plotting.plot_connectome(mean_correlations, coords_connectome, edge_threshold="90%").savefig(OUT / "connectome.png")
img = image.index_img(components_img, 4)
coords = plotting.find_xyz_cut_coords(img)
plotting.plot_stat_map(img, cut_coords=coords, colorbar=False).savefig(OUT / "network.png")
plt.close("all")
OUTPUTS["components"] = np.asarray(dict_learn.components_)
OUTPUTS["n_regions"] = np.array([n_regions_extracted])
OUTPUTS["mean_correlations"] = mean_correlations
'''),
    "seed-to-voxel": ("2mm-1x300", '''
import matplotlib
matplotlib.use("Agg")
import numpy as np
from {lib} import plotting
from {lib}.interfaces.fmriprep import load_confounds_strategy
from {lib}.maskers import NiftiMasker, NiftiSpheresMasker

func_filename = D["func"][0]
confounds, sample_mask = load_confounds_strategy(func_filename, denoise_strategy="simple")
pcc_coords = [(0, -52, 18)]
seed_masker = NiftiSpheresMasker(pcc_coords, radius=8, {clean})
seed_time_series = seed_masker.fit_transform(func_filename, confounds=confounds, sample_mask=sample_mask)
brain_masker = NiftiMasker(smoothing_fwhm=6, {clean})
brain_time_series = brain_masker.fit_transform(func_filename, confounds=confounds, sample_mask=sample_mask)
seed_to_voxel_correlations = np.dot(brain_time_series.T, seed_time_series) / seed_time_series.shape[0]
seed_to_voxel_correlations_img = brain_masker.inverse_transform(seed_to_voxel_correlations.T)
display = plotting.plot_stat_map(seed_to_voxel_correlations_img, threshold=0.5, vmax=1, cut_coords=pcc_coords[0],
                                 title="Seed-to-voxel correlation (PCC seed)")
display.add_markers(marker_coords=pcc_coords, marker_color="g", marker_size=300)
display.savefig(OUT / "pcc_seed_correlation.pdf")
display.close()
seed_to_voxel_correlations_fisher_z = np.arctanh(seed_to_voxel_correlations)
img = brain_masker.inverse_transform(seed_to_voxel_correlations_fisher_z.T)
img.to_filename(OUT / "pcc_seed_correlation_z.nii.gz")
OUTPUTS["seed_time_series"] = seed_time_series
OUTPUTS["brain_time_series"] = brain_time_series
OUTPUTS["correlations"] = seed_to_voxel_correlations
OUTPUTS["fisher_z_img"] = OUT / "pcc_seed_correlation_z.nii.gz"
'''),
    "labels": ("4mm-1x168", '''
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from {lib}.maskers import NiftiLabelsMasker

func_filename = D["func"][0]
lut = pd.read_csv(D["labels_tsv"], sep="\\t")
atlas_labels = ["Background"] + list(lut["name"])
masker = NiftiLabelsMasker(D["labels"], labels=atlas_labels, standardize="zscore_sample")
masker.fit()
masker.generate_report().save_as_html(OUT / "report_atlas.html")
masker.fit(func_filename)
masker.generate_report().save_as_html(OUT / "report_fitted.html")
signals = masker.transform(func_filename)
fig = plt.figure(figsize=(15, 5))
ax = fig.add_subplot(111)
for label_idx in range(3):
    ax.plot(signals[:, label_idx], linewidth=2, label=atlas_labels[label_idx + 1])
ax.legend(loc=2)
fig.savefig(OUT / "signals.png")
plt.close("all")
OUTPUTS["signals"] = signals
'''),
}

#: workflow name -> the floor's body (see the module docstring): the brainxr side's body without brainxr;
#: a comment names what was removed where it stood. ``precomputed()`` reads the nilearn run's outputs.
FLOORS = {
    "spheres": """
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
P = precomputed()
func_filename = D["func"][0]
dmn_coords = [(0, -52, 18), (-46, -68, 32), (46, -68, 32), (1, 50, -5)]
time_series = P["dmn_time_series"]  # load_confounds_strategy, NiftiSpheresMasker.fit_transform
figure = plt.figure()
for time_serie in time_series.T:
    plt.plot(time_serie)
figure.savefig(OUT / "dmn_time_series.png")
plt.close(figure)
partial_correlation_matrix = P["partial_correlation"]  # ConnectivityMeasure; plot_connectome, view_connectome
for name in ("power", "dosenbach"):  # fetch_coords_*, NiftiSpheresMasker, GraphicalLassoCV
    matrix = P[f"{name}_covariance"]
    figure = plt.figure()  # plot_matrix draws into it
    figure.savefig(OUT / f"{name}_matrix.png")
    plt.close(figure)
    for part, edges in [("abs", matrix), ("pos", np.clip(matrix, 0, matrix.max())), ("neg", np.clip(matrix, matrix.min(), 0))]:
        node_strength = np.sum(np.abs(edges), axis=0)
        node_strength /= np.max(node_strength)  # plot_markers
    plt.close("all")
""",
    "maps": """
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
P = precomputed()
atlas_filename = D["maps"]
labels = list(pd.read_csv(D["maps_tsv"], sep="\\t")["name"])
time_series = P["time_series"]  # load_confounds_strategy, NiftiMapsMasker.fit_transform
covariance, precision = P["covariance"], P["precision"]  # GraphicalLassoCV
coords = P["coords"]  # find_probabilistic_atlas_cut_coords
for name, matrix in [("covariance", covariance), ("precision", -precision)]:
    figure = plt.figure(figsize=(9, 7))
    matrix = matrix.copy()
    np.fill_diagonal(matrix, 0)
    figure.savefig(OUT / f"{name}_matrix.png")  # plot_matrix draws into it
    plt.close(figure)  # plot_connectome
plt.close("all")  # view_connectome
""",
    "regions": """
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
P = precomputed()
func_filenames, confounds = D["func"], D["confounds_csv"]
# DictLearning, plot_prob_atlas, RegionExtractor, per-run transform and ConnectivityMeasure
n_regions_extracted = int(P["n_regions"][0])
mean_correlations = P["mean_correlations"]  # the mean of the runs' matrices, a few microseconds of numpy
figure = plt.figure()  # find_xyz_cut_coords above, plot_connectome and plot_stat_map below
plt.imshow(mean_correlations, interpolation="nearest", vmax=1, vmin=-1, cmap=plt.cm.bwr)
figure.savefig(OUT / "mean_matrix.png")
plt.close("all")
""",
    "seed-to-voxel": """
import matplotlib
matplotlib.use("Agg")
import numpy as np
P = precomputed()
func_filename = D["func"][0]
pcc_coords = [(0, -52, 18)]
seed_time_series = P["seed_time_series"]  # load_confounds_strategy, NiftiSpheresMasker.fit_transform
brain_time_series = P["brain_time_series"]  # NiftiMasker.fit_transform
seed_to_voxel_correlations = np.dot(brain_time_series.T, seed_time_series) / seed_time_series.shape[0]
# inverse_transform, plot_stat_map and its PDF
seed_to_voxel_correlations_fisher_z = np.arctanh(seed_to_voxel_correlations)
# inverse_transform, the image's to_filename
""",
    "labels": """
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
P = precomputed()
func_filename = D["func"][0]
lut = pd.read_csv(D["labels_tsv"], sep="\\t")
atlas_labels = ["Background"] + list(lut["name"])
# NiftiLabelsMasker: fit, the two reports, transform
signals = P["signals"]
fig = plt.figure(figsize=(15, 5))
ax = fig.add_subplot(111)
for label_idx in range(3):
    ax.plot(signals[:, label_idx], linewidth=2, label=atlas_labels[label_idx + 1])
ax.legend(loc=2)
fig.savefig(OUT / "signals.png")
plt.close("all")
""",
}

#: data sets: name -> make_synthetic_cohort arguments
DATA = {
    "4mm-1x168": {"n_subjects": 1, "n_volumes": 168, "resolution": 4},
    "4mm-20x100": {"n_subjects": 20, "n_volumes": 100, "resolution": 4},
    "2mm-1x300": {"n_subjects": 1, "n_volumes": 300, "resolution": 2},
}
QUICK = {
    "4mm-1x168": {"n_subjects": 1, "n_volumes": 100, "resolution": 4},
    "4mm-20x100": {"n_subjects": 3, "n_volumes": 60, "resolution": 6},
    "2mm-1x300": {"n_subjects": 1, "n_volumes": 80, "resolution": 3},
}


def prepare(data_dir: Path, name: str, quick: bool) -> dict:
    """Make the synthetic cohort once; return the paths a workflow reads."""
    from brainxr.datasets import make_synthetic_cohort

    spec = (QUICK if quick else DATA)[name]
    folder = data_dir / (("quick-" if quick else "") + name)
    marker = folder / ".complete"
    if not marker.exists():
        started = time.perf_counter()
        make_synthetic_cohort(folder, t_r=2.0, overwrite=True, n_regions=100, n_maps=32, **spec)
        marker.write_text("")
        print(f"  generated {folder.name} in {time.perf_counter() - started:.0f} s", flush=True)
    bolds = sorted(folder.glob("sub-*/func/*desc-preproc_bold.nii.gz"))
    confounds = [next(p.parent.glob("*desc-confounds_timeseries.tsv")) for p in bolds]
    csv_folder = folder / "confounds_csv"
    csv_folder.mkdir(exist_ok=True)
    csvs = []
    for bold, tsv in zip(bolds, confounds):
        # the ADHD example's confounds: a plain table of motion and tissue signals, no header tricks
        csv = csv_folder / (bold.name.split("_desc")[0] + ".csv")
        if not csv.exists():
            import pandas as pd

            table = pd.read_csv(tsv, sep="\t")
            columns = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z", "white_matter", "csf"]
            table[columns].to_csv(csv, index=False)
        csvs.append(str(csv))
    return {
        "func": [str(p) for p in bolds],
        "confounds_csv": csvs,
        "labels": str(next((folder / "atlas").glob("*_dseg.nii.gz"))),
        "labels_tsv": str(next((folder / "atlas").glob("*_dseg.tsv"))),
        "maps": str(next((folder / "atlas").glob("*_probseg.nii.gz"))),
        "maps_tsv": str(next((folder / "atlas").glob("*_probseg.tsv"))),
    }


def templateflow_home(data_dir: Path) -> Path:
    """A TemplateFlow cache holding nilearn's MNI152 (ICBM 2009a symmetric) as ``MNI152NLin2009aSym``.

    A brainxr user's TemplateFlow cache holds TemplateFlow's copy of the
    template that nilearn ships; here nilearn's own files are laid out as
    TemplateFlow lays them out (its download cannot be reached), so both
    sides plot and mask with the same template. brainxr's 2 mm template is
    prepared once (as after its first use on a machine).
    """
    import nibabel as nib
    import nilearn.datasets

    root = data_dir / "templateflow"
    template = "MNI152NLin2009aSym"
    folder = root / f"tpl-{template}"
    if not (folder / "template_description.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        source = Path(nilearn.datasets.__file__).parent / "data"
        t1 = nib.load(source / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
        nib.save(t1, folder / f"tpl-{template}_res-1_T1w.nii.gz")
        nib.save(nib.Nifti1Image((np.asanyarray(t1.dataobj) > 0).astype(np.uint8), t1.affine),
                 folder / f"tpl-{template}_res-1_desc-brain_mask.nii.gz")
        for label, name in (("GM", "gm"), ("WM", "wm")):
            nib.save(nib.load(source / f"mni_icbm152_{name}_tal_nlin_sym_09a_converted.nii.gz"),
                     folder / f"tpl-{template}_res-1_label-{label}_probseg.nii.gz")
        (folder / "template_description.json").write_text(json.dumps({"Identifier": template}))
    os.environ["TEMPLATEFLOW_HOME"], os.environ["TEMPLATEFLOW_AUTOUPDATE"] = str(root), "0"
    from brainxr.datasets import load_mni152_brain_mask

    load_mni152_brain_mask(2)
    return root


def body_of(workflow: str, lib: str) -> str:
    glasso = ("from sklearn.covariance import GraphicalLassoCV" if lib == "nilearn"
              else "from brainxr.connectome import GraphicalLassoCV")
    return WORKFLOWS[workflow][1].format(lib=lib, glasso=glasso, clean=CLEAN)


def run(workflow: str, side: str, data: dict, scratch: Path) -> dict:
    """Run one side ("nilearn", "brainxr" or "floor") of ``workflow`` in a fresh process.

    The floor reads the nilearn side's outputs (run it first); its ``wall_s``
    is the body's time less the time it spent reading them.
    """
    out = scratch / f"{workflow}-{side}"
    # an empty folder, as a user's first run: the regions example's joblib cache (memory="nilearn_cache",
    # written in the working folder) would otherwise let nilearn load its masking and PCA from an earlier run
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    setup = f"""
import json, os, warnings
from pathlib import Path
warnings.simplefilter("ignore")
os.chdir({str(out)!r})
D = json.loads({json.dumps(json.dumps(data))})
OUT = Path({str(out)!r})
OUTPUTS = {{}}
_LOAD_S = 0.0

def precomputed():
    # the floor's stand-in for brainxr's results: called after the example's own imports (numpy is loaded)
    global _LOAD_S
    import numpy
    started = time.perf_counter()
    with numpy.load({str(scratch / f"{workflow}-nilearn" / "outputs.npz")!r}) as saved:
        arrays = {{name: saved[name] for name in saved.files}}
    _LOAD_S += time.perf_counter() - started
    return arrays
"""
    epilogue = f"""
import numpy as _np
_arrays = {{}}
for _name, _value in OUTPUTS.items():
    if isinstance(_value, Path):
        import nibabel as _nib
        _value = _np.asarray(_nib.load(_value).dataobj)
    elif hasattr(_value, "get_fdata"):
        _value = _np.asarray(_value.dataobj)
    _value = _np.asarray(_value)
    _arrays[_name] = _value if _value.dtype.kind == "f" else _value.astype(_np.float64)  # the floor computes in its dtype
_np.savez({str(out / "outputs.npz")!r}, **_arrays)
"""
    env = dict(os.environ, PYTHONWARNINGS="ignore", MPLBACKEND="Agg")
    body = FLOORS[workflow] if side == "floor" else body_of(workflow, side)
    measured = measure(setup, body + "\nresult = _LOAD_S\n", env=env, epilogue=epilogue)
    measured["wall_s"] -= measured["result"]
    with np.load(out / "outputs.npz") as outputs:
        measured["outputs"] = {name: outputs[name] for name in outputs.files}
    return measured


def differences(ours: dict, theirs: dict) -> str:
    parts = []
    for name, reference in theirs.items():
        value = ours.get(name)
        if value is None or value.shape != reference.shape:
            parts.append(f"{name}: shape {None if value is None else value.shape} vs {reference.shape}")
            continue
        difference = np.abs(value.astype(np.float64) - reference.astype(np.float64))
        parts.append(f"{name} {float(np.nanmax(difference)) if value.size else 0.0:.1e}")
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("BRAINXR_BENCH_DATA", "/tmp/brainxr-bench")) / "seeds")
    parser.add_argument("--only", nargs="*", choices=sorted(WORKFLOWS), help="workflows to run (default all)")
    parser.add_argument("--quick", action="store_true", help="small data (a smoke test, not the targets)")
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    templateflow_home(args.data)
    compile_bytecode("brainxr")  # as installed: nilearn's and scikit-learn's bytecode is there too
    scratch = args.data / "runs"
    print(f"brainxr seed workflows beside nilearn ({load_average()}); data in {args.data}", flush=True)
    rows = []
    for workflow in args.only or list(WORKFLOWS):
        data = prepare(args.data, WORKFLOWS[workflow][0], args.quick)
        print(f"\n{workflow}: {WORKFLOWS[workflow][0]} ({load_average()})", flush=True)
        theirs = run(workflow, "nilearn", data, scratch)
        print(f"  nilearn {theirs['wall_s']:7.1f} s {theirs['peak_mb']:7.0f} MB", flush=True)
        ours = run(workflow, "brainxr", data, scratch)
        print(f"  brainxr {ours['wall_s']:7.1f} s {ours['peak_mb']:7.0f} MB", flush=True)
        floor = run(workflow, "floor", data, scratch)
        print(f"  floor   {floor['wall_s']:7.1f} s (read of nilearn's outputs, {floor['result']:.2f} s, taken off)",
              flush=True)
        diff = differences(ours["outputs"], theirs["outputs"])
        print(f"  max |brainxr - nilearn|: {diff}", flush=True)
        rows.append((workflow, WORKFLOWS[workflow][0], f"{theirs['wall_s']:.1f}", f"{ours['wall_s']:.1f}",
                     f"x{theirs['wall_s'] / ours['wall_s']:.1f}", f"{floor['wall_s']:.2f}",
                     f"x{theirs['wall_s'] / floor['wall_s']:.1f}", f"{theirs['peak_mb']:.0f}", f"{ours['peak_mb']:.0f}",
                     diff))
    print_table(f"Seed workflows, examples' code, fresh processes ({load_average()})", rows,
                ("workflow", "data", "nilearn s", "brainxr s", "speed-up", "floor s", "best possible speed-up",
                 "nilearn MB", "brainxr MB", "max |difference| per output"))


if __name__ == "__main__":
    main()
