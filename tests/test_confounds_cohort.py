"""Confound strategies on in-memory tables and lazy runs (the cohort-store path)."""

import json
import warnings

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from nilearn import signal as nilearn_signal
from nilearn.interfaces import fmriprep as nilearn_fmriprep
from nilearn.interfaces.fmriprep.tests._testing import create_tmp_filepath, get_legal_confound

from brainxr.interfaces.fmriprep import clean_run, select_confounds
from brainxr.interfaces.fmriprep.denoise import as_confounds_table
from brainxr.interfaces.fmriprep.presets import preset_parameters
from brainxr.testing import raise_if_dask_computes

T_R = 2.0
PRESETS = ["simple", "scrubbing", "compcor", "ica_aroma"]
# on nilearn's 1.4.x fixture, scrubbing with these thresholds keeps 22 of 30 volumes
PRESET_OPTIONS = {"scrubbing": {"fd_threshold": 0.15, "std_dvars_threshold": 3.0}}


def _store_table(table: pd.DataFrame) -> xr.DataArray:
    """A confounds table as a cohort store keeps it: float64 (time, confound), NaN for n/a."""
    return xr.DataArray(
        table.to_numpy(dtype=np.float64),
        dims=("time", "confound"),
        coords={"confound": np.array(table.columns, dtype=str)},
    )


def _bold(n_time=30, n_voxels=40, chunks=16, seed=0):
    rng = np.random.default_rng(seed)
    values = 800 + rng.uniform(0, 200, n_voxels) + rng.standard_normal((n_time, n_voxels)).cumsum(axis=0)
    return xr.DataArray(
        da.from_array(values, chunks=(n_time, chunks)),
        dims=("time", "voxel"),
        coords={"time": np.arange(n_time) * T_R, "i": ("voxel", np.arange(n_voxels))},
        attrs={"t_r": T_R},
    )


def _long_run(tmp_path, n_repeats=8, aroma=False):
    """nilearn's 1.4.x fixture tiled to a longer run (enough volumes for ~30 regressors).

    Returns the image path (with its TSV and JSON next to it), the table and the metadata.
    """
    table, metadata = get_legal_confound()
    rng = np.random.default_rng(0)
    body = pd.concat([table.iloc[1:]] * n_repeats, ignore_index=True)
    numeric = [c for c in body.columns if "outlier" not in c and "non_steady" not in c and "cosine" not in c]
    body[numeric] = body[numeric] * (1 + 0.05 * rng.standard_normal((len(body), len(numeric))))
    long = pd.concat([table.iloc[:1], body], ignore_index=True)
    n_time = len(long)
    times = np.arange(n_time) * T_R
    cosines = [c for c in long.columns if c.startswith("cosine")]
    for k, name in enumerate(cosines, start=1):
        long[name] = np.sqrt(2.0 / n_time) * np.cos(np.pi / n_time * (np.arange(n_time) + 0.5) * k)
    long.loc[1:, [c for c in long.columns if "non_steady" in c]] = 0
    desc = "smoothAROMAnonaggr" if aroma else "preproc"
    image = tmp_path / f"sub-01_task-rest_space-MNI152NLin2009cAsym_desc-{desc}_bold.nii.gz"
    image.touch()
    long.to_csv(tmp_path / "sub-01_task-rest_desc-confounds_timeseries.tsv", sep="\t", index=False, na_rep="n/a")
    (tmp_path / "sub-01_task-rest_desc-confounds_timeseries.json").write_text(json.dumps(metadata))
    return str(image), long, metadata


@pytest.mark.parametrize("preset", PRESETS)
def test_table_selection_equals_nilearn_files(tmp_path, preset):
    image_type = "ica_aroma" if preset == "ica_aroma" else "regular"
    image, _ = create_tmp_filepath(tmp_path, image_type=image_type, copy_confounds=True, copy_json=True)
    options = PRESET_OPTIONS.get(preset, {})
    expected, expected_mask = nilearn_fmriprep.load_confounds_strategy(image, preset, **options)
    table, metadata = get_legal_confound()
    stored = as_confounds_table(_store_table(table))
    assert stored.dtypes.eq(np.float64).all()
    parameters = preset_parameters(preset, **options)
    confounds, sample_mask = select_confounds(stored, metadata, **parameters)
    assert list(confounds.columns) == list(expected.columns)
    np.testing.assert_allclose(confounds.to_numpy(), expected.to_numpy(dtype=float), atol=1e-12)
    np.testing.assert_array_equal(sample_mask, expected_mask)


@pytest.fixture(autouse=True)
def _fixed_nilearn_interpolation(fixed_nilearn_interpolation):
    """Every comparison here uses nilearn with its interpolation fixed."""


def _nilearn_clean(values, confounds, sample_mask, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nilearn_signal.clean(values.copy(), confounds=confounds, sample_mask=sample_mask, **kwargs)


@pytest.mark.parametrize("preset", PRESETS)
def test_clean_run_is_lazy_and_equals_nilearn(tmp_path, preset):
    image, table, metadata = _long_run(tmp_path, aroma=preset == "ica_aroma")
    options = PRESET_OPTIONS.get(preset, {})
    bold = _bold(n_time=len(table), seed=2)
    kwargs = dict(low_pass=0.1, high_pass=0.01)
    with raise_if_dask_computes():
        cleaned = clean_run(bold, _store_table(table), json.dumps(metadata), preset, **kwargs, **options)
    assert isinstance(cleaned.data, da.Array)
    assert cleaned.chunks[1] == bold.chunks[1]

    confounds, sample_mask = nilearn_fmriprep.load_confounds_strategy(image, preset, **options)
    assert 5 < confounds.shape[1] < len(sample_mask) - 100
    expected = _nilearn_clean(bold.values, confounds, sample_mask, t_r=T_R, **kwargs)
    with raise_if_dask_computes(max_computes=1):
        np.testing.assert_allclose(cleaned.values, expected, atol=1e-6)
    np.testing.assert_array_equal(cleaned["time"].values, bold["time"].values[sample_mask])


def test_clean_run_with_components_and_dask_table(tmp_path):
    _, table, metadata = _long_run(tmp_path)
    stored = _store_table(table).chunk({"time": 50})
    bold = _bold(n_time=len(table), seed=1)
    # the small confounds table is read once to build the graph; the bold stays lazy
    with raise_if_dask_computes(max_computes=1):
        cleaned = clean_run(
            bold,
            stored,
            metadata,
            strategy=("motion", "high_pass", "compcor", "global_signal"),
            motion="basic",
            compcor="temporal",
            n_compcor=2,
            global_signal="derivatives",
            standardize="psc",
            detrend=False,
        )
    confounds, sample_mask = select_confounds(
        table,
        metadata,
        ("motion", "high_pass", "compcor", "global_signal"),
        motion="basic",
        compcor="temporal",
        n_compcor=2,
        global_signal="derivatives",
    )
    assert confounds.shape[1] == 6 + 4 + 2 + 2
    expected = _nilearn_clean(bold.values, confounds, sample_mask, t_r=T_R, standardize="psc", detrend=False)
    np.testing.assert_allclose(cleaned.values, expected, atol=1e-6)


def test_clean_run_errors():
    table, metadata = get_legal_confound()
    bold = _bold()
    with pytest.raises(ValueError, match="sample_mask comes from the confounds strategy"):
        clean_run(bold, table, metadata, sample_mask=np.arange(10))
    with pytest.raises(ValueError, match="confounds_table has 29 rows but bold has 30 volumes"):
        clean_run(bold, table.iloc[1:], metadata)
    with pytest.raises(ValueError, match="strategy must be a preset name"):
        clean_run(bold, table, metadata, strategy="aggressive")
    with pytest.raises(ValueError, match="'tedana' strategy needs tedana's files"):
        clean_run(bold, table, metadata, strategy=("tedana",))
    with pytest.raises(ValueError, match="censoring leaves 22 of 30 volumes, fewer than min_volumes=25"):
        clean_run(bold, table, metadata, "scrubbing", min_volumes=25, high_pass=0.01, **PRESET_OPTIONS["scrubbing"])
    with pytest.raises(ValueError, match="no 'confound' coordinate"):
        clean_run(bold, _store_table(table).drop_vars("confound"), metadata)
    with pytest.warns(UserWarning, match="not needed for the selected strategy 'simple'"):
        clean_run(bold, table, metadata, "simple", scrub=3)


def test_strategy_parameters():
    from brainxr.interfaces.fmriprep import ConfoundsStrategy
    from brainxr.interfaces.fmriprep.denoise import strategy_parameters

    spec = ConfoundsStrategy.from_options(("motion", "ica_aroma"), ica_aroma="basic", motion=None)
    assert spec == ConfoundsStrategy(("motion", "ica_aroma"), ica_aroma="basic")
    assert spec.as_dict() == dict(
        strategy=["motion", "ica_aroma"],
        motion="full",
        scrub=5,
        fd_threshold=0.5,
        std_dvars_threshold=1.5,
        wm_csf="basic",
        global_signal="basic",
        compcor="anat_combined",
        n_compcor="all",
        ica_aroma="basic",
        tedana="aggressive",
        demean=True,
    )
    assert ConfoundsStrategy(**json.loads(json.dumps(spec.as_dict()))) == spec
    assert strategy_parameters(("motion", "ica_aroma"), ica_aroma="basic") == spec.as_dict()
    assert ConfoundsStrategy.from_options("compcor", n_compcor=4).n_compcor == 4
    assert ConfoundsStrategy.from_options("compcor").strategy == ("high_pass", "motion", "compcor")
    with pytest.raises(TypeError, match=r"unknown confounds strategy option\(s\) \['fd'\]"):
        ConfoundsStrategy.from_options(("motion", "scrub"), fd=0.3)
    with pytest.raises(ValueError, match="motion must be one of"):
        ConfoundsStrategy(("motion",), motion="everything")
    with pytest.raises(ValueError, match="high_pass"):
        ConfoundsStrategy(("compcor",))


def test_clean_run_aroma_components(tmp_path):
    _, table, metadata = _long_run(tmp_path)
    bold = _bold(n_time=len(table), seed=3)
    cleaned = clean_run(bold, table, metadata, ("ica_aroma", "high_pass"), ica_aroma="basic", high_pass=0.01)
    confounds, sample_mask = select_confounds(table, metadata, ("ica_aroma", "high_pass"), ica_aroma="basic")
    assert all("aroma" in c or "cosine" in c for c in confounds.columns)
    expected = _nilearn_clean(bold.values, confounds, sample_mask, t_r=T_R, high_pass=0.01)
    np.testing.assert_allclose(cleaned.values, expected, atol=1e-6)
