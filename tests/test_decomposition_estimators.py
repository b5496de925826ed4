"""brainxr.decomposition against nilearn.decomposition (0.14).

Data: runs with planted networks, bilateral pairs of blobs of the synthetic
maps atlas with their own time courses, plus noise and a confound (6 mm
grid, 3 runs of 60 volumes), and the shared synthetic cohort and its store.

What is equal and at which tolerance:

- the per-run temporal reduction equals nilearn's ``_mask_and_reduce`` up to
  the sign of each reduced volume: within 1e-4 of the largest value for the
  leading (network) components, and singular values within 1e-5; noise
  components of nearly equal singular values rotate among themselves by up
  to 1e-3 (both pipelines run in float32, their cleaned signals differ by
  ~1e-6, which the SVD amplifies by the inverse gap between singular
  values);
- given the same reduced data, the global steps equal nilearn's: CanICA and
  the initial dictionary exactly, the learned maps within 1e-3 (nilearn's
  final Lasso runs in float32, brainxr's in float64);
- whole fits: CanICA's maps match nilearn's (Hungarian matching on spatial
  correlation, |r| > 0.999); dictionary learning is sensitive to the last
  bits of its input (its mini-batch run stops early), so its whole fit is
  checked by recovery: the planted networks are found (r > 0.9) and
  nilearn's maps too (r > 0.95);
- transforms within 1e-4 of nilearn's maps masker; scores within 1e-4.

"""

import os
import warnings

import dask
import dask.array as dsa
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from nilearn import decomposition as nilearn_decomposition
from nilearn.decomposition._base import _explained_variance, _fast_svd, _mask_and_reduce
from nilearn.decomposition._multi_pca import _MultiPCA
from nilearn.maskers import MultiNiftiMasker as NilearnMultiNiftiMasker
from nilearn.maskers import NiftiMapsMasker as NilearnNiftiMapsMasker
from scipy.ndimage import gaussian_filter1d
from scipy.optimize import linear_sum_assignment
from sklearn.exceptions import NotFittedError

import brainxr
from brainxr.datasets import load_synthetic_mni152_brain_mask, load_synthetic_maps_atlas
from brainxr.decomposition import CanICA, DictLearning, MultiPCA, explained_variance, fast_svd, reduce_runs
from brainxr.maskers import MultiNiftiMasker
from brainxr.nifti import open_nifti
from brainxr.testing import raise_if_dask_computes

# scikit-learn's float32 Lasso steps inside dictionary learning (nilearn's and brainxr's alike) stop short of
# their 1e-8 tolerance and say so
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

N_NETWORKS = 4
MASKER_OPTIONS = {"smoothing_fwhm": 6.0, "standardize": "zscore_sample", "detrend": True, "mask_strategy": "epi"}


def write_planted_runs(folder, n_runs=3, n_volumes=60, resolution=6, seed=0):
    """Runs whose signal is N_NETWORKS bilateral networks; returns paths, confounds, truth, affine."""
    atlas = load_synthetic_maps_atlas(resolution=resolution, n_maps=16)
    maps = np.asarray(atlas.maps.dataobj)
    affine = atlas.maps.affine
    brain = np.asarray(load_synthetic_mni152_brain_mask(resolution=resolution).dataobj) > 0
    truth = np.stack([np.maximum(maps[..., 4 * n], maps[..., 4 * n + 1]) for n in range(N_NETWORKS)], axis=-1)
    rng = np.random.default_rng(seed)
    confound_pattern = rng.standard_normal(brain.shape)
    paths, confounds = [], []
    for run in range(n_runs):
        courses = gaussian_filter1d(rng.standard_normal((n_volumes, N_NETWORKS)), 1.5, axis=0)
        courses /= courses.std(axis=0)
        confound = np.cumsum(rng.standard_normal(n_volumes)) / 5
        data = 1000 + 30 * np.tensordot(truth, courses.T, axes=([3], [0]))
        data += 10 * rng.standard_normal(brain.shape + (n_volumes,))
        data += 20 * confound_pattern[..., None] * confound
        data *= brain[..., None]
        image = nib.Nifti1Image(data.astype(np.float32), affine)
        image.header.set_zooms((resolution,) * 3 + (2.0,))
        path = folder / f"run-{run}_bold.nii.gz"
        nib.save(image, path)
        table = folder / f"run-{run}_confounds.tsv"
        pd.DataFrame({"drift": confound, "drift_power2": confound**2}).to_csv(table, sep="\t", index=False)
        paths.append(str(path))
        confounds.append(str(table))
    return paths, confounds, truth, affine


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return write_planted_runs(tmp_path_factory.mktemp("planted"))


@pytest.fixture(scope="module")
def maskers(planted):
    """brainxr's and nilearn's MultiNiftiMasker with the decomposition defaults, fitted on the runs."""
    paths = planted[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = MultiNiftiMasker(**MASKER_OPTIONS).fit(paths)
        theirs = NilearnMultiNiftiMasker(**MASKER_OPTIONS).fit(paths)
    np.testing.assert_array_equal(ours.mask_img_.get_fdata(), theirs.mask_img_.get_fdata())
    return ours, theirs


@pytest.fixture(scope="module")
def nilearn_reduced(planted, maskers):
    paths, confounds = planted[:2]
    return _mask_and_reduce(maskers[1], paths, confounds=confounds, n_components=N_NETWORKS, random_state=0)


@pytest.fixture(scope="module")
def dict_learning(planted):
    paths, confounds = planted[:2]
    return DictLearning(n_components=N_NETWORKS, alpha=3, smoothing_fwhm=6.0, random_state=0).fit(paths, confounds=confounds)


@pytest.mark.parametrize("strategy", ["epi", "background"])
def test_multi_run_mask_in_threads_equals_nilearn(planted, strategy, monkeypatch):
    """With n_jobs, the runs' means are read in threads (nilearn runs its masks in joblib workers): the same mask."""
    import brainxr.maskers._inputs as inputs

    monkeypatch.setattr(inputs, "_FILE_MEANS_KEPT", 0)  # no mean kept from another test: every run is read
    paths = planted[0]
    options = dict(MASKER_OPTIONS, mask_strategy=strategy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        threaded = MultiNiftiMasker(**options, n_jobs=2).fit(paths)
        serial = MultiNiftiMasker(**options, n_jobs=1).fit(paths)
        theirs = NilearnMultiNiftiMasker(**options, n_jobs=2).fit(paths)
    np.testing.assert_array_equal(threaded.mask_img_.get_fdata(), serial.mask_img_.get_fdata())
    np.testing.assert_array_equal(threaded.mask_img_.get_fdata(), theirs.mask_img_.get_fdata())


def test_decomposition_forwards_n_jobs_to_its_masker():
    """As nilearn's check_embedded_masker; None (dask decides the runs' reduction) reads the runs' means on every core."""
    assert DictLearning(n_jobs=2)._make_masker().n_jobs == 2
    assert DictLearning()._make_masker().n_jobs == -1
    assert CanICA(n_jobs=1, mask=MultiNiftiMasker(n_jobs=3))._make_masker().n_jobs == 1


def matched_correlations(first, second):
    """Spatial correlations of Hungarian-matched components (rows), by |r|."""
    k = len(first)
    correlation = np.nan_to_num(np.corrcoef(first, second)[:k, k:])
    rows, columns = linear_sum_assignment(-np.abs(correlation))
    return correlation[rows, columns]


def sign_aligned(reference, other):
    signs = np.sign(np.sum(reference * other, axis=1))
    return other * signs[:, None]


def assert_same_reduction(ours, theirs, n_runs):
    """Equal up to the sign of each reduced volume (and the rotation of degenerate noise components)."""
    aligned, scale = sign_aligned(theirs, ours), np.abs(theirs).max()
    # the planted networks lead each run's reduction: equal up to sign
    leading = (np.arange(len(theirs)) % (len(theirs) // n_runs)) < N_NETWORKS
    np.testing.assert_allclose(aligned[leading], theirs[leading], rtol=0, atol=1e-4 * scale)
    # the noise components after them have nearly equal singular values, so float32 differences of ~1e-6
    # in the cleaned signals rotate them a little among themselves; their singular values still agree
    np.testing.assert_allclose(aligned, theirs, rtol=0, atol=1e-3 * scale)
    norms = np.linalg.norm(theirs, axis=1)
    # (with every volume kept, the last singular values are 0 up to rounding: detrending and confounds)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), norms, rtol=1e-5, atol=1e-5 * norms.max())


# ---------------------------------------------------------------------------
# Per-run reduction
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape, n_components", [((300, 40), 5), ((2000, 60), 10), ((2000, 60), 55)])
def test_fast_svd_equals_nilearn(shape, n_components):
    matrix = np.random.default_rng(1).standard_normal(shape)
    for ours, theirs in zip(fast_svd(matrix, n_components, 0), _fast_svd(matrix, n_components, 0)):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)


@pytest.mark.parametrize("reduction_ratio", ["auto", 0.5, 1.0])
def test_reduction_equals_nilearn_up_to_sign(planted, maskers, reduction_ratio):
    paths, confounds = planted[:2]
    ours = reduce_runs(maskers[0], paths, confounds=confounds, n_components=N_NETWORKS,
                       reduction_ratio=reduction_ratio, random_state=0).values
    theirs = _mask_and_reduce(maskers[1], paths, confounds=confounds, n_components=N_NETWORKS,
                              reduction_ratio=reduction_ratio, random_state=0)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype == np.float32
    assert_same_reduction(ours, theirs, n_runs=3)


def test_reduction_is_lazy_and_labeled(planted, maskers):
    paths, confounds = planted[:2]
    with raise_if_dask_computes():
        reduced = reduce_runs(maskers[0], paths, confounds=confounds, n_components=N_NETWORKS, random_state=0)
    assert isinstance(reduced.data, dsa.Array)
    assert reduced.dims == ("sample", "voxel")
    assert reduced.shape == (3 * N_NETWORKS, int(maskers[0].mask_img_.get_fdata().sum()))
    assert list(reduced["run"].values) == [name for name in ("run-0_bold", "run-1_bold", "run-2_bold") for _ in range(N_NETWORKS)]
    # one task per run, which reads, cleans and reduces it: nothing else in the graph touches the data
    reduce_tasks = [key for key in reduced.data.__dask_graph__() if str(key).startswith("('_reduce_run") or
                    str(key).startswith("_reduce_run")]
    assert len(reduce_tasks) == 3
    assert {"i", "j", "k", "x", "y", "z"} <= set(reduced.coords)


def test_reduction_of_numpy_and_dask_backed_runs(planted, maskers):
    paths, confounds = planted[0][:2], planted[1][:2]
    lazy = [open_nifti(path) for path in paths]
    loaded = [run.compute() for run in lazy]
    assert isinstance(lazy[0].data, dsa.Array) and isinstance(loaded[0].data, np.ndarray)
    from_files = reduce_runs(maskers[0], paths, confounds=confounds, n_components=N_NETWORKS, random_state=0).values
    for runs in (lazy, loaded):
        reduced = reduce_runs(maskers[0], runs, confounds=confounds, n_components=N_NETWORKS, random_state=0)
        # a lazy run is read inside its reduction task, not by tasks of its own
        assert len(reduced.data.__dask_graph__()) == len(
            reduce_runs(maskers[0], paths, confounds=confounds, n_components=N_NETWORKS).data.__dask_graph__()
        )
        np.testing.assert_allclose(reduced.values, from_files, rtol=0, atol=1e-5 * np.abs(from_files).max())


@pytest.mark.distributed
@pytest.mark.slow
def test_reduction_on_a_distributed_cluster(planted, maskers):
    distributed = pytest.importorskip("distributed")
    paths, confounds = planted[:2]
    expected = reduce_runs(maskers[0], paths, confounds=confounds, n_components=N_NETWORKS, random_state=0).values
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as client:
        reduced = reduce_runs(maskers[0], paths, confounds=confounds, n_components=N_NETWORKS, random_state=0)
        computed = client.compute(reduced.data, sync=True)
        # the runs were reduced on the cluster, in another process
        assert len(client.scheduler_info()["workers"]) == 1
        assert set(client.run(os.getpid).values()) != {os.getpid()}
    # the same computation, in other processes (float32 rounding may differ in the last bits)
    assert_same_reduction(computed, expected, n_runs=3)


def test_reduction_bad_input(planted, maskers):
    paths, confounds = planted[:2]
    with pytest.raises(ValueError, match="confounds: expected a list of one entry per run"):
        reduce_runs(maskers[0], paths, confounds=confounds[:2], n_components=3)
    with pytest.raises(ValueError, match="Reduction ratio should be between 0.0 and 1.0"):
        reduce_runs(maskers[0], paths, n_components=3, reduction_ratio=1.5)
    with pytest.raises(ValueError, match="reduction_ratio must be 'auto'"):
        reduce_runs(maskers[0], paths, n_components=3, reduction_ratio="half")
    with pytest.raises(ValueError, match="imgs: need one or more images"):
        reduce_runs(maskers[0], [], n_components=3)
    with pytest.raises(ValueError, match="masker: a fitted masker is required"):
        reduce_runs(MultiNiftiMasker(), paths, n_components=3)
    with pytest.raises(ValueError, match="no file matches the pattern"):
        reduce_runs(maskers[0], str(planted[0][0]).replace("run-0", "nothing-*"), n_components=3)


# ---------------------------------------------------------------------------
# Global steps on the same reduced data
# ---------------------------------------------------------------------------


def test_global_steps_equal_nilearn_on_the_same_reduced_data(planted, maskers, nilearn_reduced):
    theirs = nilearn_decomposition.DictLearning(n_components=N_NETWORKS, alpha=3, random_state=0)
    theirs.masker_ = maskers[1]
    theirs._raw_fit(np.asfortranarray(nilearn_reduced.copy()))
    ours = DictLearning(n_components=N_NETWORKS, alpha=3, random_state=0)
    ours._raw_fit(np.asfortranarray(nilearn_reduced.copy()))
    np.testing.assert_array_equal(ours.components_init_, theirs.components_init_)
    np.testing.assert_array_equal(ours.loadings_init_, theirs.loadings_init_)
    np.testing.assert_allclose(ours.components_, theirs.components_, rtol=0, atol=1e-3)

    # least-angle regression coding: scikit-learn's, as in nilearn
    theirs = nilearn_decomposition.DictLearning(n_components=N_NETWORKS, alpha=3, method="lars", random_state=0)
    theirs.masker_ = maskers[1]
    theirs._raw_fit(np.asfortranarray(nilearn_reduced.copy()))
    ours = DictLearning(n_components=N_NETWORKS, alpha=3, method="lars", random_state=0)
    ours._raw_fit(np.asfortranarray(nilearn_reduced.copy()))
    np.testing.assert_array_equal(ours.components_, theirs.components_)

    # initial maps given as an image: masked (and cleaned, as nilearn does) by the embedded masker
    truth_img = nib.Nifti1Image(planted[2], planted[3])
    theirs = nilearn_decomposition.DictLearning(n_components=N_NETWORKS, dict_init=truth_img, random_state=0)
    theirs.masker_ = maskers[1]
    theirs._raw_fit(np.asfortranarray(nilearn_reduced.copy()))
    ours = DictLearning(n_components=N_NETWORKS, dict_init=truth_img, random_state=0)
    ours.masker_ = maskers[0]
    ours._raw_fit(np.asfortranarray(nilearn_reduced.copy()))
    np.testing.assert_allclose(ours.components_init_, theirs.components_init_, rtol=0,
                               atol=1e-5 * np.abs(theirs.components_init_).max())

    theirs = nilearn_decomposition.CanICA(n_components=N_NETWORKS, random_state=0, n_init=3)
    theirs._raw_fit(np.asfortranarray(nilearn_reduced.copy()))
    ours = CanICA(n_components=N_NETWORKS, random_state=0, n_init=3)
    ours._raw_fit(np.asfortranarray(nilearn_reduced.copy()))
    np.testing.assert_array_equal(ours.components_, theirs.components_)

    theirs = _MultiPCA(n_components=N_NETWORKS, random_state=0)
    theirs._raw_fit(np.asfortranarray(nilearn_reduced.copy()))
    ours = MultiPCA(n_components=N_NETWORKS, random_state=0)
    ours._raw_fit(np.asfortranarray(nilearn_reduced.copy()))
    np.testing.assert_array_equal(ours.components_, theirs.components_)
    np.testing.assert_array_equal(ours.variance_, theirs.variance_)


# ---------------------------------------------------------------------------
# Whole fits
# ---------------------------------------------------------------------------


def test_canica_equals_nilearn(planted):
    paths, confounds = planted[:2]
    ours = CanICA(n_components=N_NETWORKS, random_state=0, n_init=2).fit(paths, confounds=confounds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = nilearn_decomposition.CanICA(n_components=N_NETWORKS, random_state=0, n_init=2).fit(
            paths, confounds=confounds
        )
    assert np.all(np.abs(matched_correlations(ours.components_, theirs.components_)) > 0.999)
    assert ours.components_img_.shape == theirs.components_img_.shape
    assert np.allclose(ours.components_img_.affine, theirs.components_img_.affine)


def test_dict_learning_recovers_planted_networks_and_nilearn_maps(planted, dict_learning):
    paths, confounds, truth, affine = planted
    true_maps = truth[dict_learning.mask_img_.get_fdata() > 0].T
    assert np.all(matched_correlations(dict_learning.components_, true_maps) > 0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = nilearn_decomposition.DictLearning(n_components=N_NETWORKS, alpha=3, smoothing_fwhm=6.0,
                                                    random_state=0).fit(paths, confounds=confounds)
    assert np.all(np.abs(matched_correlations(dict_learning.components_, theirs.components_)) > 0.95)
    # nilearn's conventions: unit-norm maps, mostly positive
    np.testing.assert_allclose(np.linalg.norm(dict_learning.components_, axis=1), 1, rtol=1e-5)
    assert np.all((dict_learning.components_ > 0).sum(axis=1) >= (dict_learning.components_ < 0).sum(axis=1))
    image = dict_learning.components_img_
    assert image.shape == truth.shape[:3] + (N_NETWORKS,)
    np.testing.assert_allclose(image.affine, affine)
    assert dict_learning.n_elements_ == N_NETWORKS


def test_transform_and_inverse_transform_equal_nilearn_maps_masker(planted, dict_learning):
    paths, confounds = planted[:2]
    nilearn_masker = NilearnNiftiMapsMasker(
        dict_learning.components_img_, dict_learning.mask_img_, resampling_target="maps", standardize=None
    ).fit()
    loadings = dict_learning.transform(paths, confounds=confounds)
    assert len(loadings) == len(paths)
    for path, confound, ours in zip(paths, confounds, loadings):
        theirs = nilearn_masker.transform(path, confounds=confound)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4 * np.abs(theirs).max())
    images = dict_learning.inverse_transform(loadings[:1])
    expected = nilearn_masker.inverse_transform(loadings[0])
    np.testing.assert_allclose(images[0].get_fdata(), expected.get_fdata(), rtol=0, atol=1e-5)


@pytest.mark.parametrize("per_component", [True, False])
def test_score_equals_nilearn(planted, maskers, dict_learning, per_component):
    paths, confounds = planted[:2]
    ours = dict_learning.score(paths, confounds=confounds, per_component=per_component)
    full = _mask_and_reduce(maskers[1], paths, confounds, reduction_ratio=1.0, random_state=0)
    theirs = _explained_variance(full, dict_learning.components_, per_component=per_component)
    # the same terms on the same data: equal to nilearn's (computed in float64)
    same_data = explained_variance(full, dict_learning.components_, per_component=per_component)
    np.testing.assert_allclose(
        same_data, _explained_variance(full.astype(np.float64), dict_learning.components_, per_component), rtol=0,
        atol=1e-7,
    )
    # per component, nilearn's variance includes the mean of the rotated data, which depends on the signs
    # of near-degenerate noise components of each run's SVD: scores then agree to 1e-4 (of scores ~0.01)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 if per_component else 1e-6)
    assert np.all((np.asarray(ours) > 0) & (np.asarray(ours) < 1))


@pytest.mark.parametrize("per_component", [True, False])
def test_explained_variance_equals_nilearn(per_component):
    rng = np.random.default_rng(2)
    data = rng.standard_normal((30, 500)) + 0.3
    components = rng.standard_normal((4, 500)) * (rng.random((4, 500)) < 0.3)
    components[2] = 0  # an empty component is left as it is
    np.testing.assert_allclose(
        explained_variance(data, components, per_component),
        _explained_variance(data, components, per_component), rtol=1e-10,
    )


def test_set_output(planted, dict_learning):
    path = planted[0][0]
    try:
        signals = dict_learning.set_output(transform="xarray").transform(path)[0]
        assert isinstance(signals, xr.DataArray)
        assert signals.dims == ("time", "region") and signals.shape == (60, N_NETWORKS)
        table = dict_learning.set_output(transform="pandas").transform(path)[0]
        assert isinstance(table, pd.DataFrame) and table.shape == (60, N_NETWORKS)
        np.testing.assert_allclose(table.to_numpy(), signals.values)
    finally:
        dict_learning.set_output(transform="default")
    assert isinstance(dict_learning.transform(path)[0], np.ndarray)
    with pytest.raises(ValueError, match="set_output: transform must be one of"):
        dict_learning.set_output(transform="polars")


def test_reduction_ratio_is_honoured(planted):
    paths = planted[0][:2]
    model = DictLearning(n_components=3, reduction_ratio=0.25, smoothing_fwhm=None, random_state=0).fit(paths)
    # ceil(60 * 0.25) = 15 reduced volumes per run: the dictionary has one column per reduced volume
    assert model.loadings_init_.shape == (3, 2 * 15)


def test_fit_on_a_cohort_store_equals_fit_on_files(small_synthetic):
    synthetic, store = small_synthetic
    cohort = brainxr.open_cohort(store)
    mask = nib.Nifti1Image(cohort.grid.mask.astype(np.int8), cohort.grid.affine)
    options = {"n_components": 5, "random_state": 0, "n_init": 1, "mask": mask}
    from_store = CanICA(**options).fit(cohort)
    from_files = CanICA(**options).fit(synthetic.func)
    assert np.all(np.abs(matched_correlations(from_store.components_, from_files.components_)) > 0.999)
    # cohort runs transform as files do
    np.testing.assert_allclose(
        from_store.transform(cohort[next(iter(cohort))])[0], from_store.transform(synthetic.func[0])[0], rtol=0,
        atol=1e-4,
    )


def test_mask_given_as_a_masker(planted, maskers):
    paths = planted[0][:2]
    given = MultiNiftiMasker(mask_img=maskers[0].mask_img_, smoothing_fwhm=4.0, standardize="zscore_sample", detrend=True)
    with pytest.warns(UserWarning, match="Parameter smoothing_fwhm"):
        model = CanICA(n_components=3, mask=given, smoothing_fwhm=6.0, random_state=0, n_init=1).fit(paths)
    assert model.masker_.smoothing_fwhm == 4.0
    np.testing.assert_array_equal(model.mask_img_.get_fdata(), maskers[0].mask_img_.get_fdata())


def test_fit_runs_on_the_configured_scheduler(planted):
    """n_jobs=1 runs the runs one at a time on threads: same maps as the default scheduler."""
    paths = planted[0][:2]
    default = MultiPCA(n_components=3, random_state=0).fit(paths)
    one_job = MultiPCA(n_components=3, random_state=0, n_jobs=1).fit(paths)
    with dask.config.set(scheduler="synchronous"):
        synchronous = MultiPCA(n_components=3, random_state=0).fit(paths)
    np.testing.assert_array_equal(default.components_, one_job.components_)
    np.testing.assert_array_equal(default.components_, synchronous.components_)


def test_bad_input(planted, dict_learning):
    paths, confounds = planted[:2]
    with pytest.raises(ValueError, match="n_components must be a positive integer"):
        DictLearning(n_components=0).fit(paths)
    with pytest.raises(ValueError, match="method must be one of"):
        DictLearning(method="omp").fit(paths)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        DictLearning(batch_size=0).fit(paths)
    with pytest.raises(ValueError, match="Threshold must not be higher than number of maps"):
        CanICA(n_components=3, threshold=5.0).fit(paths)
    with pytest.raises(ValueError, match="Threshold must be None, 'auto' or float"):
        CanICA(n_components=3, threshold="half").fit(paths)
    with pytest.raises(ValueError, match=r"Number of confounds \(len\(confounds\)=2\)"):
        DictLearning(n_components=3).fit(paths, confounds=confounds[:2])
    with pytest.raises(ValueError, match="n_jobs must be None or a non-zero integer"):
        MultiPCA(n_components=3, n_jobs=0).fit(paths)
    with pytest.raises(NotFittedError, match="DictLearning instance is not fitted yet"):
        DictLearning().transform(paths)
    with pytest.raises(TypeError, match="'loadings' must be a list of numpy arrays"):
        dict_learning.inverse_transform(np.zeros((3, N_NETWORKS)))
    with pytest.raises(ValueError, match=r"Number of confounds \(len\(confounds\)=1\)"):
        dict_learning.transform(paths, confounds=confounds[:1])
    with pytest.raises(ValueError, match="mask: the mask is empty"):
        DictLearning(mask=nib.Nifti1Image(np.zeros((4, 4, 4), np.int8), np.eye(4))).fit(paths)


@pytest.mark.integration  # a fresh interpreter
def test_a_decomposition_script_on_files_pays_no_import_it_does_not_use(planted):
    """Start-up: DictLearning on files, then a connectome on the template, import neither the cohort layer
    (zarr), distributed (no client can be active without it) nor the downloader (pooch, requests: the
    template is in the cache)."""
    import subprocess
    import sys

    paths = planted[0]
    script = f"""
import sys
import matplotlib
matplotlib.use("Agg")
import numpy as np
from brainxr import plotting
from brainxr.decomposition import DictLearning
model = DictLearning(n_components=3, smoothing_fwhm=6.0, random_state=0).fit({[str(p) for p in paths]!r})
assert model.components_.shape[0] == 3
plotting.plot_connectome(np.eye(3) * 0.5 + 0.1, [(-40, 0, 0), (40, 0, 0), (0, 30, 20)]).close()
print(sorted(name for name in ("distributed", "zarr", "brainxr.cohort", "pooch", "requests") if name in sys.modules))
"""
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert found.strip().splitlines()[-1] == "[]"
