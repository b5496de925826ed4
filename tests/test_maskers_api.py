"""brainxr.maskers: outputs (numpy, pandas, xarray), brainxr inputs, reports, sklearn API, bad input."""

import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from nilearn import maskers as nilearn_maskers
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

import brainxr
from brainxr import maskers
from brainxr.datasets import load_synthetic_mni152_brain_mask, load_synthetic_labels_atlas, load_synthetic_maps_atlas
from brainxr.nifti import open_nifti, to_nifti


@pytest.fixture(scope="module")
def atlas():
    return load_synthetic_labels_atlas(resolution=4, n_regions=20)


@pytest.fixture(scope="module")
def brain_mask():
    return load_synthetic_mni152_brain_mask(resolution=4)


@pytest.fixture(scope="module")
def bold_path(tmp_path_factory, brain_mask):
    rng = np.random.default_rng(0)
    values = (rng.normal(size=brain_mask.shape + (12,)) + 100 * np.asarray(brain_mask.dataobj)[..., None]).astype(np.float32)
    img = nib.Nifti1Image(values, brain_mask.affine)
    img.header.set_zooms((4.0, 4.0, 4.0, 2.0))
    path = tmp_path_factory.mktemp("bold") / "sub-01_bold.nii.gz"
    nib.save(img, path)
    return path


def test_set_output_xarray_and_pandas(atlas, bold_path):
    masker = maskers.NiftiLabelsMasker(atlas.maps, labels=atlas.labels, standardize="zscore_sample")
    default = masker.fit_transform(bold_path)
    labeled = masker.set_output(transform="xarray").transform(bold_path)
    assert isinstance(labeled, xr.DataArray) and labeled.dims == ("time", "region")
    np.testing.assert_array_equal(labeled.values, default)
    assert list(labeled["region"].values) == atlas.labels[1:]
    np.testing.assert_allclose(labeled["x"].values, atlas.lut["x"].values)
    np.testing.assert_allclose(labeled["time"].values, 2.0 * np.arange(12))
    kept = labeled.isel(time=slice(2, None))
    np.testing.assert_allclose(masker.transform(bold_path, sample_mask=np.arange(2, 12)).values, kept.values, atol=5)
    frame = masker.set_output(transform="pandas").transform(bold_path)
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == atlas.labels[1:]
    with pytest.raises(ValueError, match="set_output"):
        masker.set_output(transform="polars-ish")

    voxels = maskers.NiftiMasker(mask_img=load_synthetic_mni152_brain_mask(resolution=4)).set_output(transform="xarray").fit_transform(bold_path)
    assert voxels.dims == ("time", "voxel")
    volume = brainxr.unmask(voxels)
    np.testing.assert_allclose(volume.isel(time=0).values, np.asarray(nib.load(bold_path).dataobj)[..., 0] * np.asarray(load_synthetic_mni152_brain_mask(resolution=4).dataobj))


def test_brainxr_inputs_give_the_same_signals(atlas, bold_path, brain_mask):
    masker = maskers.NiftiLabelsMasker(atlas.maps)
    expected = masker.fit_transform(bold_path)
    lazy_volume = open_nifti(bold_path, chunks=4)
    np.testing.assert_allclose(masker.transform(lazy_volume), expected, rtol=1e-6)
    np.testing.assert_allclose(masker.transform(nib.load(bold_path)), expected, rtol=1e-6)
    # (time, voxel) signals and cohort runs: 0 outside their voxels, as an image masked with the same mask
    masked = brainxr.apply_mask(lazy_volume, brain_mask, voxel_chunks=2000)
    run = xr.Dataset({"bold": masked, "valid": ("voxel", np.ones(masked.sizes["voxel"], bool))}, attrs={"t_r": 2.0})
    masked_img = nib.Nifti1Image(np.asarray(nib.load(bold_path).dataobj) * np.asarray(brain_mask.dataobj)[..., None], brain_mask.affine)
    reference = nilearn_maskers.NiftiLabelsMasker(atlas.maps).fit_transform(masked_img)
    np.testing.assert_allclose(masker.transform(masked), reference, rtol=1e-6)
    np.testing.assert_allclose(masker.transform(run), reference, rtol=1e-6)


def test_sklearn_api(atlas, bold_path):
    masker = maskers.NiftiLabelsMasker(atlas.maps, strategy="median", t_r=2.0)
    assert masker.get_params()["strategy"] == "median"
    assert set(nilearn_maskers.NiftiLabelsMasker().get_params()) == set(masker.get_params())
    for ours, theirs in [
        (maskers.NiftiMasker(), nilearn_maskers.NiftiMasker()),
        (maskers.NiftiMapsMasker(), nilearn_maskers.NiftiMapsMasker()),
        (maskers.NiftiSpheresMasker(), nilearn_maskers.NiftiSpheresMasker()),
        (maskers.MultiNiftiMasker(), nilearn_maskers.MultiNiftiMasker()),
        (maskers.MultiNiftiLabelsMasker(), nilearn_maskers.MultiNiftiLabelsMasker()),
        (maskers.MultiNiftiMapsMasker(), nilearn_maskers.MultiNiftiMapsMasker()),
    ]:
        assert ours.get_params().keys() == theirs.get_params().keys(), type(ours).__name__
        defaults = {k: v for k, v in theirs.get_params().items() if not hasattr(v, "__len__") or isinstance(v, str)}
        assert {k: ours.get_params()[k] for k in defaults} == defaults, type(ours).__name__
    copy = clone(masker)
    params = {k: v for k, v in copy.get_params().items() if k != "labels_img"}
    assert params == {k: v for k, v in masker.get_params().items() if k != "labels_img"}
    with pytest.raises(NotFittedError):
        copy.transform(bold_path)
    assert list(maskers.NiftiSpheresMasker([(0, 0, 0), (10, 10, 10)]).fit().get_feature_names_out()) == [
        "niftispheresmasker0",
        "niftispheresmasker1",
    ]


def test_reports(atlas, bold_path, tmp_path):
    masker = maskers.NiftiLabelsMasker(atlas.maps, labels=atlas.labels)
    unfitted = masker.generate_report()
    assert "not fitted" in unfitted.get_standalone()
    report = masker.fit().generate_report()
    html = report.get_standalone()
    assert "No image provided to fit" in html
    assert "Regions summary" in html and atlas.labels[5] in html and "size (in mm^3)" in html
    masker.fit(bold_path)
    report = masker.generate_report()
    html = report.get_standalone()
    assert "No image provided to fit" not in html and "<img" in html
    path = report.save_as_html(tmp_path / "report.html")
    assert path.read_text().startswith("<!DOCTYPE html>") or "<html" in path.read_text()
    assert "Regions summary" in report._repr_html_() or "iframe" in report._repr_html_()
    # the table equals nilearn's
    reference = nilearn_maskers.NiftiLabelsMasker(atlas.maps, labels=atlas.labels).fit()
    reference.generate_report()
    expected = reference._report_content["summary"]
    for value, size in zip(expected["label value"].head(3), expected["size (in mm^3)"].head(3)):
        assert f">{size}<" in html and f">{value}<" in html

    maps_report = maskers.NiftiMapsMasker(load_synthetic_maps_atlas(resolution=4, n_maps=4).maps).fit(bold_path).generate_report(displayed_maps=[0, 9])
    assert "cannot display the following map [9]" in maps_report.get_standalone()
    spheres_report = maskers.NiftiSpheresMasker([(0, -52, 18), (-46, -68, 32)], radius=8).fit().generate_report()
    assert "seed number" in spheres_report.get_standalone()
    masker_report = maskers.NiftiMasker().fit(bold_path).generate_report()
    assert "voxels in the mask" in masker_report.get_standalone()


def test_bad_input_is_named(atlas, bold_path, brain_mask, tmp_path):
    confounds = tmp_path / "sub-01_desc-confounds_timeseries.tsv"
    pd.DataFrame({"csf": np.arange(12.0), "note": ["ok"] * 12}).to_csv(confounds, sep="\t", index=False)
    for masker in (maskers.NiftiMasker(), maskers.NiftiLabelsMasker(atlas.maps)):
        with pytest.raises(ValueError, match=f"confounds file '{confounds}': column 'note' is not numeric"):
            masker.fit_transform(bold_path, confounds=confounds)
    with pytest.warns(UserWarning, match="Resampling labels at transform time"):
        maskers.NiftiLabelsMasker(atlas.maps).fit().transform(
            nib.Nifti1Image(np.ones((30, 30, 30, 3), np.float32), np.diag([5.0, 5.0, 5.0, 1.0]))
        )
    tiny = np.zeros((40, 40, 40), np.int16)
    tiny[10:30, 10:30, 10:30] = 1
    tiny[20, 20, 21] = 7
    affine = np.eye(4)
    affine[:3, 3] = -20
    data = nib.Nifti1Image(np.ones((10, 10, 10, 2), np.float32), np.diag([4.0, 4.0, 4.0, 1.0]) + np.array([[0, 0, 0, -18]] * 3 + [[0, 0, 0, 0]]))
    with pytest.warns(UserWarning, match=r"labels were removed: \{7"):
        maskers.NiftiLabelsMasker(nib.Nifti1Image(tiny, affine)).fit(data)
    with pytest.raises(ValueError, match=r"seed #1 at \[0.0, 0.0, 300.0\]"):
        maskers.NiftiSpheresMasker([(0, -52, 18), (0, 0, 300)], radius=8, mask_img=brain_mask).fit_transform(bold_path)
    with pytest.raises(ValueError, match="overlap detected between the spheres of seeds \\[0, 1\\]"):
        maskers.NiftiSpheresMasker([(0, -52, 18), (2, -52, 18)], radius=8).fit_transform(bold_path)
    with pytest.raises(ValueError, match="Seed #1 is of length 2"):
        maskers.NiftiSpheresMasker([(0, -52, 18), (2, -52)]).fit()
    with pytest.raises(ValueError, match="Overlap detected in the maps"):
        maskers.NiftiMapsMasker(load_synthetic_maps_atlas(resolution=4, n_maps=16).maps, allow_overlap=False).fit_transform(bold_path)
    with pytest.raises(ValueError, match="resampling_target"):
        maskers.NiftiLabelsMasker(atlas.maps, resampling_target="mask").fit()
    with pytest.raises(ValueError, match="strategy"):
        maskers.NiftiLabelsMasker(atlas.maps, strategy="mode").fit()
    with pytest.raises(ValueError, match="Pass either labels or a lookup table"):
        maskers.NiftiLabelsMasker(atlas.maps, labels=atlas.labels, lut=atlas.lut).fit()
    with pytest.raises(ValueError, match="Following field of view errors were detected:\n- labels and data do not have the same shape"):
        maskers.NiftiLabelsMasker(atlas.maps, resampling_target=None).fit(
            nib.Nifti1Image(np.ones((30, 30, 30, 3), np.float32), np.diag([5.0, 5.0, 5.0, 1.0]))
        )
    with pytest.raises(ValueError, match="mask_img: a mask must hold 0 and one other value"):
        maskers.NiftiMasker(mask_img=nib.Nifti1Image(np.arange(27).reshape(3, 3, 3).astype(np.int16), np.eye(4))).fit()
    with pytest.raises(ValueError, match="Parameter 'imgs' must be provided"):
        maskers.NiftiMasker().fit()
    with pytest.raises(ValueError, match="Unknown value of mask_strategy 'skull'"):
        maskers.NiftiMasker(mask_strategy="skull").fit(bold_path)
    with pytest.warns(UserWarning, match=r"not supported by the masking strategy 'epi': \['border_size'\]"):
        maskers.NiftiMasker(mask_strategy="epi", mask_args={"border_size": 3}).fit(bold_path)
    other = tmp_path / "other.nii.gz"
    to_nifti(open_nifti(bold_path).isel(i=slice(0, 20)), other)
    with pytest.raises(ValueError, match=r"imgs\[1\]: shape \(20, 55, 46\)"):
        maskers.MultiNiftiMasker(mask_strategy="epi").fit([bold_path, other])
    with pytest.raises(ValueError, match="Input to 'inverse_transform' has wrong shape"):
        maskers.NiftiLabelsMasker(atlas.maps).fit().inverse_transform(np.zeros((3, 4)))
    with pytest.raises(TypeError, match="expected a NIfTI path"):
        maskers.NiftiLabelsMasker(atlas.maps).fit().transform(42)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        maskers.NiftiLabelsMasker(atlas.maps).fit(bold_path).transform(bold_path)  # same grid: no warning


def test_non_finite_values_warn_naming_the_file(tmp_path):
    """nilearn's maskers replace NaN/Inf by 0 and warn (labels, maps, spheres):
    brainxr's do the same, naming the file."""
    rng = np.random.default_rng(0)
    shape, affine = (10, 10, 10), np.diag([3.0, 3.0, 3.0, 1.0])
    values = rng.normal(size=shape + (8,)).astype(np.float32) + 100
    values[2, 3, 4] = np.nan
    values[5, 5, 5, 3] = np.inf
    img = nib.Nifti1Image(values, affine)
    img.header.set_zooms((3.0, 3.0, 3.0, 2.0))
    path = tmp_path / "sub-01_bold.nii.gz"
    nib.save(img, path)
    labels = np.zeros(shape, np.int16)
    labels[:5], labels[5:] = 1, 2
    maps = np.stack([labels == 1, labels == 2], axis=-1).astype(np.float32)
    cases = {
        "NiftiLabelsMasker": ((nib.Nifti1Image(labels, affine),), {}),
        "NiftiMapsMasker": ((nib.Nifti1Image(maps, affine),), {}),
        "NiftiSpheresMasker": (([(6, 9, 12), (15, 15, 15)],), {"radius": 4}),
        "NiftiMasker": ((), {"mask_img": nib.Nifti1Image(np.ones(shape, np.int8), affine)}),
    }
    for name, (args, kwargs) in cases.items():
        with pytest.warns(UserWarning, match=f"Non-finite values detected in imgs '{path}'.*replaced with zeros"):
            result = getattr(maskers, name)(*args, **kwargs).fit_transform(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = getattr(nilearn_maskers, name)(*args, **kwargs).fit_transform(path)
        np.testing.assert_allclose(result, expected, rtol=0, atol=1e-4, err_msg=name)


@pytest.fixture
def file_reads(monkeypatch):
    """The paths of the NIfTI files streamed while the test runs, one entry per pass."""
    from brainxr.regions import _streaming

    reads = []
    original = _streaming.iter_volume_blocks

    def counting(path, *args, **kwargs):
        reads.append(str(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(_streaming, "iter_volume_blocks", counting)
    return reads


def test_a_file_is_read_once_per_masker_pass_and_its_mean_reused(file_reads, bold_path, tmp_path):
    """A seed masker's read leaves the file's mean: a background-mask fit after it reads nothing.

    The seed-to-voxel workflow (seed masker, then NiftiMasker fit and
    transform) reads its file twice, not three times; a rewritten file is
    never given the mean of its old contents.
    """
    reads = file_reads
    path = tmp_path / "run_bold.nii.gz"
    nib.save(nib.load(bold_path), path)
    alone = maskers.NiftiMasker(smoothing_fwhm=6, standardize="zscore_sample").fit(path)
    assert len(reads) == 1
    expected_mask, expected = alone.mask_img_.get_fdata(), alone.transform(path)
    reads.clear()
    from brainxr.maskers import _inputs

    _inputs._FILE_MEANS.clear()
    maskers.NiftiSpheresMasker([(0, -52, 18)], radius=8).fit_transform(path)
    brain = maskers.NiftiMasker(smoothing_fwhm=6, standardize="zscore_sample").fit(path)
    assert len(reads) == 1
    np.testing.assert_array_equal(brain.mask_img_.get_fdata(), expected_mask)
    np.testing.assert_array_equal(brain.transform(path), expected)
    assert len(reads) == 2
    # new contents (another size, time, inode): the mean is computed again
    values = np.asarray(nib.load(path).dataobj)
    values[10:20] = 0
    nib.save(nib.Nifti1Image(values, nib.load(path).affine, nib.load(path).header), path)
    reads.clear()
    changed = maskers.NiftiMasker().fit(path)
    assert len(reads) == 1
    assert changed.mask_img_.get_fdata().sum() < expected_mask.sum()


@pytest.mark.parametrize("mask", [False, True])
def test_fit_report_transform_reads_a_labels_file_once(file_reads, atlas, bold_path, brain_mask, tmp_path, mask):
    """The labels example: fit(file), generate_report(), transform(file) reads the file once.

    The report's pass for the mean image gathers the labelled voxels and
    hands them to the next transform; the signals and the report are those
    of a masker that reads twice; a second transform (nothing handed over)
    or a rewritten file reads again.
    """
    from brainxr.maskers import _inputs
    reads = file_reads
    path = tmp_path / "run_bold.nii.gz"
    nib.save(nib.load(bold_path), path)
    kwargs = {"standardize": "zscore_sample", "mask_img": brain_mask if mask else None}
    _inputs._FILE_MEANS.clear()
    reference = maskers.NiftiLabelsMasker(atlas.maps, **kwargs).fit(path)
    expected = reference.transform(path)
    expected_report = reference.generate_report()
    _inputs._FILE_MEANS.clear()
    reads.clear()
    masker = maskers.NiftiLabelsMasker(atlas.maps, **kwargs).fit(path)
    report = masker.generate_report()
    signals = masker.transform(path)
    assert len(reads) == 1
    np.testing.assert_array_equal(signals, expected)
    assert report.get_standalone() == expected_report.get_standalone()
    assert not _inputs._HANDED_OVER
    np.testing.assert_array_equal(masker.transform(path), expected)
    assert len(reads) == 2
    # a rewritten file is read again, never given the values of its old contents
    _inputs._FILE_MEANS.clear()
    masker.fit(path).generate_report()
    values = np.asarray(nib.load(path).dataobj)
    nib.save(nib.Nifti1Image(values * 2, nib.load(path).affine, nib.load(path).header), path)
    reads.clear()
    np.testing.assert_allclose(masker.transform(path), expected, atol=1e-5)  # z-scored: the same signals
    assert len(reads) == 1


@pytest.mark.integration  # fresh interpreters
def test_an_unfiltered_masker_script_imports_neither_distributed_nor_numba(tmp_path, atlas, bold_path, brain_mask):
    """Start-up: a labels, maps or masked-voxels script without filtering pays no import it does not use.

    dask's default-scheduler lookup imports distributed on the first
    compute; the atlas, maps and mask are read with the synchronous
    scheduler passed as a function, which skips it. numba is imported when
    a Butterworth filter first runs. scikit-learn (~0.8 s with the
    ``scipy.stats`` it imports) is imported at the first use of its
    estimator protocol, which fitting, transforming and the labels masker's
    reports do not make (``brainxr._estimator``).
    """
    import subprocess
    import sys

    maps = load_synthetic_maps_atlas(resolution=4, n_maps=5).maps
    paths = {"labels": tmp_path / "labels.nii.gz", "maps": tmp_path / "maps.nii.gz", "mask": tmp_path / "mask.nii.gz"}
    run = nib.load(bold_path)
    bold = tmp_path / "bold.nii.gz"  # long enough for the Butterworth filter
    nib.save(nib.Nifti1Image(np.tile(np.asarray(run.dataobj), 4), run.affine, run.header), bold)
    nib.save(atlas.maps, paths["labels"])
    nib.save(maps, paths["maps"])
    nib.save(brain_mask, paths["mask"])
    script = f"""
import sys
from brainxr.maskers import NiftiLabelsMasker, NiftiMapsMasker, NiftiMasker
bold = {str(bold)!r}
labels_masker = NiftiLabelsMasker({str(paths["labels"])!r}, standardize="zscore_sample")
labels_masker.fit().generate_report()
labels_masker.fit(bold).generate_report()
labels_masker.transform(bold)
NiftiMapsMasker({str(paths["maps"])!r}, standardize="zscore_sample").fit_transform(bold)
NiftiMasker(mask_img={str(paths["mask"])!r}, standardize="zscore_sample", detrend=True).fit_transform(bold)
print(sorted(name for name in ("distributed", "numba", "sklearn", "scipy.stats") if name in sys.modules))
"""
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert found.strip().splitlines()[-1] == "[]"
    filtered = script.replace('detrend=True', 'detrend=True, low_pass=0.1, t_r=2.0')
    found = subprocess.run([sys.executable, "-c", filtered], capture_output=True, text=True, check=True).stdout
    assert found.strip().splitlines()[-1] == "['numba', 'scipy.stats']"  # scipy.signal (the filter's design) imports it


@pytest.mark.integration  # fresh interpreter
def test_the_maskers_on_files_import_no_dask(tmp_path, atlas, bold_path, brain_mask):
    """Start-up on small data: the maskers' fit, reports and transform of files build no dask array.

    The run is streamed and the atlas, maps or mask read whole (or computed
    from the run's mean by the mask kernels), without a DataArray of either: xarray imports ``dask.array`` (~0.3 s, with
    ``scipy.fft``) when it builds its first variable. The signals are those
    of the same maskers in this process (where dask is imported). The
    templates a report draws on are prepared by their first use after
    installation and kept on disk: the second process is the one checked.
    """
    import subprocess
    import sys

    paths = {"labels": tmp_path / "labels.nii.gz", "maps": tmp_path / "maps.nii.gz", "mask": tmp_path / "mask.nii.gz"}
    nib.save(atlas.maps, paths["labels"])
    nib.save(load_synthetic_maps_atlas(resolution=4, n_maps=5).maps, paths["maps"])
    nib.save(brain_mask, paths["mask"])
    out = tmp_path / "signals.npz"
    script = f"""
import sys
import numpy as np
from brainxr.maskers import NiftiLabelsMasker, NiftiMapsMasker, NiftiMasker
bold = {str(bold_path)!r}
masker = NiftiLabelsMasker({str(paths["labels"])!r}, standardize="zscore_sample")
masker.fit().generate_report()
masker.fit(bold).generate_report()
labels = masker.transform(bold)
maps = NiftiMapsMasker({str(paths["maps"])!r}).fit(bold)
maps.generate_report()
voxels = NiftiMasker(mask_img={str(paths["mask"])!r}, detrend=True).fit(bold)
voxels.generate_report()
epi = NiftiMasker(mask_strategy="epi").fit(bold)
np.savez({str(out)!r}, labels=labels, maps=maps.transform(bold), voxels=voxels.transform(bold), epi=epi.transform(bold))
print(sorted(name for name in sys.modules if name == "dask" or name.startswith("dask.")))
"""
    for _ in range(2):
        found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert found.strip().splitlines()[-1] == "[]"
    signals = np.load(out)
    expected = maskers.NiftiLabelsMasker(paths["labels"], standardize="zscore_sample").fit_transform(bold_path)
    np.testing.assert_array_equal(signals["labels"], expected)
    np.testing.assert_array_equal(signals["maps"], maskers.NiftiMapsMasker(paths["maps"]).fit_transform(bold_path))
    np.testing.assert_array_equal(
        signals["voxels"], maskers.NiftiMasker(mask_img=paths["mask"], detrend=True).fit_transform(bold_path)
    )
    np.testing.assert_array_equal(signals["epi"], maskers.NiftiMasker(mask_strategy="epi").fit_transform(bold_path))


@pytest.mark.integration  # fresh interpreters
@pytest.mark.parametrize(
    ("module", "left_out"),
    [
        # the maskers: not scikit-learn (imported at the first use of its estimator protocol), nor what
        # reports, filters or stores need
        # (nor scipy.interpolate / optimize / spatial, imported where censored volumes are interpolated and
        # spheres are drawn; nor scipy.linalg, where confounds, trends or maps need it; nor dask, where a lazy
        # array is built)
        ("brainxr.maskers", ("sklearn", "scipy.stats", "scipy.interpolate", "scipy.optimize", "scipy.spatial",
                             "scipy.linalg", "dask", "matplotlib", "numba", "distributed", "zarr", "flox")),
        # the figures: matplotlib, not scikit-learn (whose import pulls scipy.stats, ~0.9 s) nor numba
        ("brainxr.plotting", ("sklearn", "scipy.stats", "numba", "distributed", "zarr")),
    ],
)
def test_importing_the_drop_in_modules_leaves_out_what_they_do_not_use(module, left_out):
    """Start-up: the nilearn names a script imports first pay only for what they use."""
    import subprocess
    import sys

    script = f"import sys, {module}; print(sorted(name for name in {left_out!r} if name in sys.modules))"
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert found.strip().splitlines()[-1] == "[]"
