"""make_synthetic_cohort: layout, headers, determinism, ground truth, signal model."""

from __future__ import annotations

import gzip
import hashlib
import json
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainxr.datasets import make_synthetic_cohort

MOTION_24 = [
    f"{name}{suffix}"
    for name in ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
    for suffix in ("", "_derivative1", "_power2", "_derivative1_power2")
]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return make_synthetic_cohort(tmp_path_factory.mktemp("cohort"), n_subjects=2, n_volumes=60, resolution=4)


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    """Sessions and runs, int16, ICA-AROMA outputs, on a coarse grid."""
    return make_synthetic_cohort(
        tmp_path_factory.mktemp("multi"), n_subjects=1, n_sessions=2, n_runs=2, n_volumes=30,
        resolution=8, n_regions=20, n_maps=6, dtype="int16", aroma=True, task="movie", t_r=1.5,
    )


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_fmriprep_layout_and_names(cohort):
    root = cohort.root
    files = _tree(root)
    stem = "sub-01/func/sub-01_task-rest"
    for name in (
        f"{stem}_space-MNI152NLin2009cAsym_res-4_desc-preproc_bold.nii.gz",
        f"{stem}_space-MNI152NLin2009cAsym_res-4_desc-preproc_bold.json",
        f"{stem}_space-MNI152NLin2009cAsym_res-4_desc-brain_mask.nii.gz",
        f"{stem}_desc-confounds_timeseries.tsv",
        f"{stem}_desc-confounds_timeseries.json",
        "atlas/tpl-MNI152NLin2009cAsym_res-4_atlas-Synth_dseg.nii.gz",
        "atlas/tpl-MNI152NLin2009cAsym_res-4_atlas-Synth_dseg.tsv",
        "atlas/tpl-MNI152NLin2009cAsym_res-4_atlas-SynthProb_probseg.nii.gz",
        "atlas/tpl-MNI152NLin2009cAsym_res-4_atlas-SynthProb_probseg.tsv",
        "atlas/tpl-MNI152NLin2009cAsym_res-4_atlas-Synth_desc-seeds_coordinates.tsv",
        "template/tpl-MNI152NLin2009cAsym_res-4_desc-brain_mask.nii.gz",
        "template/tpl-MNI152NLin2009cAsym_res-4_T1w.nii.gz",
        "ground_truth/precision.tsv",
        "ground_truth/covariance.tsv",
        "ground_truth/parameters.json",
        "ground_truth/sub-02_task-rest_desc-truth_timeseries.tsv",
        "dataset_description.json",
    ):
        assert name in files, name
    description = json.loads((root / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative" and description["BIDSVersion"]
    sidecar = json.loads(cohort.runs[0].bold_json.read_text())
    assert sidecar["RepetitionTime"] == 2.0 and sidecar["TaskName"] == "rest" and "SkullStripped" in sidecar
    assert cohort.func == [str(run.bold) for run in cohort.runs] and len(cohort.confounds) == 2
    assert [run.name for run in cohort.runs] == ["sub-01_task-rest", "sub-02_task-rest"]


def test_sessions_runs_and_aroma_names(multi):
    names = [run.name for run in multi.runs]
    assert names == [
        "sub-01_ses-01_task-movie_run-1", "sub-01_ses-01_task-movie_run-2",
        "sub-01_ses-02_task-movie_run-1", "sub-01_ses-02_task-movie_run-2",
    ]
    run = multi.runs[3]
    assert run.bold.relative_to(multi.root).as_posix() == (
        "sub-01/ses-02/func/sub-01_ses-02_task-movie_run-2_space-MNI152NLin2009cAsym_res-8_desc-preproc_bold.nii.gz"
    )
    assert run.aroma_bold.name == "sub-01_ses-02_task-movie_run-2_space-MNI152NLin6Asym_res-8_desc-smoothAROMAnonaggr_bold.nii.gz"
    assert run.entities == {"sub": "01", "ses": "02", "task": "movie", "run": "2"}


def test_bold_headers_and_values(cohort):
    run = cohort.runs[0]
    img = nib.load(run.bold)
    header = img.header
    assert img.shape == (46, 55, 46, 60) and img.get_data_dtype() == np.float32
    assert int(header["sform_code"]) == 4 and int(header["qform_code"]) == 4
    assert header.get_xyzt_units() == ("mm", "sec")
    np.testing.assert_allclose(header.get_zooms(), (4, 4, 4, 2))
    np.testing.assert_array_equal(img.affine, header.get_qform())
    data = img.get_fdata(dtype=np.float32)
    mask = np.asarray(nib.load(run.mask).dataobj).astype(bool)
    assert np.all(data[~mask] == 0) and np.all(data[mask] > 100)
    brain = data[mask]
    assert 500 < brain[:, 5:].mean() < 1300  # BOLD-like intensities
    # non-steady-state volumes are brighter, then steady
    volume_means = brain.mean(axis=0)
    assert volume_means[0] > 1.35 * volume_means[5] and volume_means[1] > 1.1 * volume_means[5]
    assert abs(volume_means[2] / volume_means[10:].mean() - 1) < 0.1
    # temporal SNR of gray matter in a realistic range
    tsnr = brain[:, 5:].mean(1) / brain[:, 5:].std(1)
    assert 20 < np.median(tsnr) < 150


def test_gzip_stream_is_plain_and_stamp_free(cohort):
    raw = cohort.runs[0].bold.read_bytes()
    assert raw[:2] == b"\x1f\x8b" and raw[4:8] == b"\x00\x00\x00\x00"  # no modification time
    with gzip.open(cohort.runs[0].bold) as stream:
        header = nib.Nifti1Header.from_fileobj(stream)
    assert float(header["vox_offset"]) == 352


def test_run_masks_differ_by_dropout_and_match_the_data(cohort, tmp_path):
    masks = [np.asarray(nib.load(run.mask).dataobj).astype(bool) for run in cohort.runs]
    template = np.asarray(nib.load(cohort.template_mask).dataobj).astype(bool)
    assert all((mask & ~template).sum() == 0 for mask in masks)
    assert (masks[0] != masks[1]).any() and all(mask.sum() > 0.97 * template.sum() for mask in masks)
    still = make_synthetic_cohort(tmp_path / "still", n_subjects=2, n_volumes=20, resolution=8,
                                  n_regions=20, n_maps=4, mask_variability=0)
    for run in still.runs:
        np.testing.assert_array_equal(nib.load(run.mask).get_fdata(), nib.load(still.template_mask).get_fdata())


def test_same_arguments_give_the_same_bytes(tmp_path):
    def digest(root):
        return {name: hashlib.sha256((root / name).read_bytes()).hexdigest() for name in _tree(root)}

    kwargs = dict(n_subjects=2, n_volumes=20, resolution=8, n_regions=20, n_maps=4, seed=3)
    first = make_synthetic_cohort(tmp_path / "a", **kwargs)
    second = make_synthetic_cohort(tmp_path / "b", **kwargs)
    assert digest(first.root) == digest(second.root)
    other = make_synthetic_cohort(tmp_path / "c", **{**kwargs, "seed": 4})
    assert digest(other.root)["ground_truth/precision.tsv"] != digest(first.root)["ground_truth/precision.tsv"]
    # adding subjects leaves the existing ones unchanged
    more = make_synthetic_cohort(tmp_path / "d", **{**kwargs, "n_subjects": 3})
    assert first.runs[1].bold.read_bytes() == more.runs[1].bold.read_bytes()


def test_ground_truth_is_sparse_positive_definite_and_saved(cohort):
    precision, covariance = cohort.precision, cohort.covariance
    assert precision.shape == covariance.shape == (100, 100)
    np.testing.assert_array_equal(precision, precision.T)
    np.testing.assert_allclose(np.diag(covariance), 1.0)
    np.testing.assert_allclose(precision @ covariance, np.eye(100), atol=1e-8)
    eigenvalues = np.linalg.eigvalsh(precision)
    assert eigenvalues.min() > 0 and eigenvalues.max() / eigenvalues.min() < 50
    off_diagonal = precision[~np.eye(100, dtype=bool)]
    density = np.mean(off_diagonal != 0)
    assert 0.01 < density < 0.1
    # homotopic pairs are linked, positively (negative precision entries)
    assert all(precision[i, i + 50] < 0 for i in range(50))
    assert (off_diagonal > 0).any()  # a few anticorrelations too
    saved = pd.read_csv(cohort.precision_tsv, sep="\t", index_col=0)
    assert list(saved.index) == list(saved.columns) == cohort.region_names
    np.testing.assert_allclose(saved.to_numpy(), precision, rtol=1e-10, atol=1e-12)
    truth = pd.read_csv(cohort.runs[0].true_timeseries, sep="\t")
    assert list(truth.columns) == cohort.region_names
    np.testing.assert_allclose(truth.to_numpy(), cohort.runs[0].region_signals, rtol=1e-8)


def _parcel_means(cohort, run):
    labels = np.asarray(nib.load(cohort.atlas_labels_img).dataobj).ravel()
    mask = np.asarray(nib.load(run.mask).dataobj).ravel() > 0
    data = nib.load(run.bold).get_fdata(dtype=np.float32).reshape(-1, cohort.n_volumes)
    labels = np.where(mask, labels, 0)
    return np.stack([data[labels == k].mean(0) for k in range(1, len(cohort.region_names) + 1)], 1)


def test_parcel_signals_follow_the_ground_truth(cohort):
    for run in cohort.runs:
        means = _parcel_means(cohort, run)
        confounds = pd.read_csv(run.confounds, sep="\t")
        steady = slice(run.n_dummy_scans, None)
        n = cohort.n_volumes - run.n_dummy_scans
        trend = np.linspace(-1, 1, n)
        design = np.column_stack([np.ones(n), trend, trend**2, confounds[MOTION_24].fillna(0).to_numpy()[steady]])

        def clean(signals):
            return signals - design @ np.linalg.lstsq(design, signals, rcond=None)[0]

        measured, true = clean(means[steady]), clean(run.region_signals[steady])
        correlations = np.array([np.corrcoef(measured[:, k], true[:, k])[0, 1] for k in range(100)])
        assert np.median(correlations) > 0.85 and correlations.min() > 0.6
        # the connectome of the data is as close to the truth as the true signals' own sample
        upper = np.triu_indices(100, 1)
        recovered = np.corrcoef(np.corrcoef(measured.T)[upper], cohort.covariance[upper])[0, 1]
        sampled = np.corrcoef(np.corrcoef(true.T)[upper], cohort.covariance[upper])[0, 1]
        assert recovered > 0.8 * sampled > 0.15


def test_motion_shows_in_the_data_at_the_brain_edge(cohort):
    run = cohort.runs[0]
    data = nib.load(run.bold).get_fdata(dtype=np.float32)
    mask = np.asarray(nib.load(run.mask).dataobj).astype(bool)
    from scipy import ndimage

    edge = mask & ~ndimage.binary_erosion(mask)
    deep = ndimage.binary_erosion(mask, iterations=3)
    confounds = pd.read_csv(run.confounds, sep="\t")
    motion = confounds[MOTION_24[::4]].to_numpy()[2:]

    def motion_r2(voxels):
        series = data[voxels][:, 2:].T
        series = series - series.mean(0)
        design = np.column_stack([np.ones(len(motion)), motion - motion.mean(0)])
        fitted = design @ np.linalg.lstsq(design, series, rcond=None)[0]
        return np.median(1 - ((series - fitted) ** 2).sum(0) / (series**2).sum(0))

    assert motion_r2(edge) > motion_r2(deep) + 0.05


def test_int16_scaling_round_trip(multi, tmp_path):
    run = multi.runs[0]
    img = nib.load(run.bold)
    assert img.get_data_dtype() == np.int16
    slope = img.dataobj.slope
    assert slope > 0 and img.dataobj.inter == 0
    as_float = make_synthetic_cohort(
        tmp_path / "float", n_subjects=1, n_sessions=2, n_runs=2, n_volumes=30, resolution=8,
        n_regions=20, n_maps=6, dtype="float32", aroma=True, task="movie", t_r=1.5,
    )
    exact = nib.load(as_float.runs[0].bold).get_fdata()
    scaled = img.get_fdata()
    assert np.abs(scaled - exact).max() <= slope / 2 + 1e-3
    assert np.abs(scaled).max() <= 32767 * slope
    np.testing.assert_allclose(img.header.get_zooms()[3], 1.5)


def test_nilearn_reads_the_cohort(cohort):
    maskers = pytest.importorskip("nilearn.maskers")
    run = cohort.runs[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        masker = maskers.NiftiLabelsMasker(str(cohort.atlas_labels_img), mask_img=str(run.mask))
        signals = masker.fit_transform(str(run.bold))
    np.testing.assert_allclose(signals, _parcel_means(cohort, run), rtol=1e-4)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n_regions": 99}, ValueError, "n_regions must be even"),
        ({"dtype": "float64"}, ValueError, "dtype must be one of"),
        ({"n_volumes": 5}, ValueError, "n_volumes must be an integer >= 12"),
        ({"n_subjects": 0}, ValueError, "n_subjects must be an integer >= 1"),
        ({"t_r": 0}, ValueError, "t_r must be a positive"),
        ({"task": "rest-state"}, ValueError, "task must be an alphanumeric"),
        ({"noise_level": -1}, ValueError, "noise_level must be a non-negative"),
        ({"resolution": -4}, ValueError, "resolution must be a positive"),
    ],
)
def test_bad_arguments_are_named(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        make_synthetic_cohort(tmp_path / "bad", **{"n_volumes": 20, "resolution": 8, **kwargs})


def test_non_empty_folder_needs_overwrite(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file.txt").write_text("x")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        make_synthetic_cohort(tmp_path / "taken", n_subjects=1, n_volumes=20, resolution=8, n_regions=20, n_maps=4)
    cohort = make_synthetic_cohort(
        tmp_path / "taken", n_subjects=1, n_volumes=20, resolution=8, n_regions=20, n_maps=4, overwrite=True
    )
    assert not (cohort.root / "file.txt").exists()
