"""brainxr.signal.clean on bad input: clear errors naming the parameter."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from brainxr.signal import clean

N_TIME = 60


@pytest.fixture
def signals():
    return np.random.default_rng(0).standard_normal((N_TIME, 5)) + 10


def test_confounds_with_nan_name_the_column(signals):
    confounds = pd.DataFrame({"trans_x": np.arange(N_TIME, dtype=float), "csf_derivative1": np.ones(N_TIME)})
    confounds.loc[0, "csf_derivative1"] = np.nan
    with pytest.raises(ValueError, match=r"confounds contain NaN.*'csf_derivative1'.*rows 0"):
        clean(signals, confounds=confounds)
    with pytest.raises(ValueError, match=r"confounds contain NaN.*column 1"):
        clean(signals, confounds=confounds.to_numpy())


@pytest.mark.parametrize("confounds", [np.ones((N_TIME - 1, 2)), [np.ones((N_TIME, 1)), np.ones(N_TIME + 3)]])
def test_confounds_length_mismatch(signals, confounds):
    with pytest.raises(ValueError, match=r"confounds.*incorrect length.*60 time points"):
        clean(signals, confounds=confounds)


def test_confounds_bad_type_or_shape(signals):
    with pytest.raises(ValueError, match="confounds must be"):
        clean(signals, confounds={"a": 1})
    with pytest.raises(ValueError, match="confounds.*dimensions: 3"):
        clean(signals, confounds=np.ones((N_TIME, 2, 2)))
    with pytest.raises(ValueError, match="confounds.*no such file"):
        clean(signals, confounds="/nonexistent/confounds.tsv")
    with pytest.raises(ValueError, match=r"confounds must hold numbers; non-numeric column\(s\): \['label'\]"):
        clean(signals, confounds=pd.DataFrame({"a": np.ones(N_TIME), "label": ["x"] * N_TIME}))


@pytest.mark.parametrize("high_pass", [0.1, 0.2])
def test_high_pass_not_below_low_pass(signals, high_pass):
    with pytest.raises(ValueError, match=r"high_pass \(.*\) must be lower than low_pass"):
        clean(signals, low_pass=0.1, high_pass=high_pass, t_r=2.0)


def test_filtering_needs_t_r(signals):
    with pytest.raises(ValueError, match=r"t_r.*must be specified for butterworth"):
        clean(signals, low_pass=0.1, t_r=None)
    with pytest.raises(ValueError, match=r"t_r.*high_pass.*cosine"):
        clean(signals, filter="cosine", t_r=None, high_pass=0.01)
    with pytest.raises(ValueError, match=r"t_r must be None or a positive"):
        clean(signals, low_pass=0.1, t_r=0)
    # no filtering: t_r is not needed
    assert clean(signals, t_r=None).shape == signals.shape


def test_bad_filter_and_standardize(signals):
    with pytest.raises(ValueError, match="filter must be one of"):
        clean(signals, filter="gaussian")
    with pytest.raises(ValueError, match="filter must be one of"):
        clean(signals, filter=None)
    with pytest.raises(ValueError, match="standardize must be one of"):
        clean(signals, standardize="zscore")
    with pytest.raises(TypeError, match="'low_pass' must be of type"):  # nilearn 0.14.1's TypeError
        clean(signals, low_pass="0.1", t_r=2)


@pytest.mark.parametrize(
    "sample_mask, match",
    [
        (np.array([0, 5, N_TIME]), r"sample_mask contains invalid indices \[60\].*0 to 59"),
        (np.array([-1, 3]), r"sample_mask contains invalid indices \[-1\]"),
        (np.array([0.0, 1.0, 2.0]), "sample_mask must be a boolean mask or integer indices.*float64"),
        ("0:10", "sample_mask must be a boolean mask or an array of integer indices, got str"),
        (np.ones(N_TIME - 2, dtype=bool), "sample_mask: a boolean mask must have one value per volume"),
        (np.zeros(N_TIME, dtype=bool), "sample_mask removes all 60 volumes"),
        (np.array([], dtype=int), "sample_mask is empty"),
        (np.array([3, 2, 5]), "sample_mask indices must be unique and increasing"),
        (np.ones((N_TIME, 2), dtype=bool), "sample_mask must be one-dimensional"),
    ],
)
def test_bad_sample_mask(signals, sample_mask, match):
    with pytest.raises(ValueError, match=match):
        clean(signals, sample_mask=sample_mask, low_pass=0.1, t_r=2.0)


def test_sample_mask_per_run(signals):
    runs = np.repeat([0, 1], N_TIME // 2)
    with pytest.raises(ValueError, match=r"Number of sample_mask \(1\) not matching number of runs \(2\)"):
        clean(signals, runs=runs, sample_mask=[np.arange(10)])
    with pytest.raises(ValueError, match=r"sample_mask\[1\] contains invalid indices \[30\]"):
        clean(signals, runs=runs, sample_mask=[np.arange(30), np.arange(31)])
    with pytest.raises(ValueError, match="give a list of 2 masks"):
        clean(signals, runs=runs, sample_mask=np.arange(10))
    # None keeps every volume of its run
    np.testing.assert_allclose(
        clean(signals, runs=runs, sample_mask=[None, np.arange(5, 30)]),
        np.vstack([clean(signals[:30]), clean(signals[30:][5:])]),
    )
    # a plain list of indices is one mask for a single run
    np.testing.assert_allclose(clean(signals, sample_mask=list(range(2, 50))), clean(signals, sample_mask=np.arange(2, 50)))


def test_runs_length_mismatch(signals):
    with pytest.raises(ValueError, match=r"runs.*\(59\) does not match the length of the signals \(60\)"):
        clean(signals, runs=np.zeros(N_TIME - 1))
    masked = xr.DataArray(signals, dims=("time", "voxel"))
    with pytest.raises(ValueError, match="runs: 'run' is not a coordinate along 'time'"):
        clean(masked, runs="run")


def test_bad_signals():
    with pytest.raises(ValueError, match=r"signals must be 2D \(time, features\)"):
        clean(np.ones(N_TIME))
    with pytest.raises(ValueError, match="signals must hold numbers"):
        clean(np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(ValueError, match="signals: expected a 2D DataArray with a 'time' dim"):
        clean(xr.DataArray(np.ones((4, 3)), dims=("t", "voxel")))


def test_unknown_keyword_is_an_error(signals):
    with pytest.raises(TypeError, match="unexpected keyword argument 'butterworth__ordre'"):
        clean(signals, butterworth__ordre=3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'lowpass'"):
        clean(signals, lowpass=0.1)
    with pytest.raises(ValueError, match="butterworth__padtype must be one of"):
        clean(signals, low_pass=0.1, t_r=2, butterworth__padtype="mirror")


def test_too_short_run_for_the_filter_padding(signals):
    with pytest.raises(ValueError, match=r"needs more than padlen=33 time points .* the run has 20"):
        clean(signals[:20], low_pass=0.1, high_pass=0.01, t_r=2.0)
    with pytest.raises(ValueError, match=r"the run has 30 to filter"):
        clean(signals, low_pass=0.1, high_pass=0.01, t_r=2.0, sample_mask=np.arange(15, 45))


@pytest.mark.parametrize("header", [True, False])
def test_confounds_file_with_a_text_column_names_file_and_column(signals, tmp_path, header):
    table = pd.DataFrame({"trans_x": np.arange(N_TIME, dtype=float), "quality": ["ok"] * N_TIME})
    path = tmp_path / "confounds.tsv"
    table.to_csv(path, sep="\t", index=False, header=header)
    column = "column 'quality'" if header else "column 1"
    with pytest.raises(ValueError, match=f"confounds file '{path}': {column} is not numeric.*'ok'"):
        clean(signals, confounds=path)
    with pytest.raises(ValueError, match=f"confounds file '{path}': {column}"):
        clean(signals, confounds=[np.ones((N_TIME, 1)), str(path)])
