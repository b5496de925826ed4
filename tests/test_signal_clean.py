"""brainxr.signal.clean against nilearn.signal.clean (float64, 1e-6)."""

import warnings

import numpy as np
import pytest
from nilearn import signal as nilearn_signal
from scipy.interpolate import CubicSpline
from scipy.signal import butter, sosfiltfilt

from brainxr.signal import butterworth, clean

ATOL = 1e-6
T_R = 2.0
N_TIME, N_FEATURES = 120, 24


@pytest.fixture
def nilearn_clean(fixed_nilearn_interpolation):
    """nilearn.signal.clean with its interpolation bug fixed (one line).

    The test confounds have one exactly dependent column; it is left out for
    nilearn (same span), whose absolute QR threshold may keep a rounding-noise
    direction for it.
    """
    def run(signals, **kwargs):
        confounds = kwargs.get("confounds")
        if isinstance(confounds, np.ndarray) and confounds.shape[1] == 5:
            kwargs["confounds"] = np.delete(confounds, DEPENDENT_COLUMN, axis=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return nilearn_signal.clean(signals.copy(), **kwargs)

    return run


def _quiet_clean(signals, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return clean(signals, **kwargs)


def _signals(seed=0, n_time=N_TIME, n_features=N_FEATURES):
    rng = np.random.default_rng(seed)
    times = np.arange(n_time) * T_R
    slow = np.sin(2 * np.pi * 0.005 * times)[:, None] * rng.uniform(1, 5, n_features)
    fast = np.sin(2 * np.pi * 0.2 * times)[:, None] * rng.uniform(0, 2, n_features)
    drift = np.linspace(0, 1, n_time)[:, None] * rng.uniform(-10, 10, n_features)
    return 100 + rng.uniform(0, 50, n_features) + slow + fast + drift + rng.standard_normal((n_time, n_features))


DEPENDENT_COLUMN = 3


def _confounds(seed=1, n_time=N_TIME):
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((n_time, 5)).cumsum(axis=0)
    values[:, DEPENDENT_COLUMN] = 2 * values[:, 0] - values[:, 1]  # rank deficient
    return values


MASKS = {
    "none": None,
    "middle": np.r_[0:40, 44:70, 73:N_TIME],
    "edges": np.r_[3:50, 53:N_TIME - 4],
    "head_boolean": np.r_[[False] * 5, [True] * (N_TIME - 5)],
}

FILTERS = {
    "band": dict(filter="butterworth", low_pass=0.1, high_pass=0.01),
    "low": dict(filter="butterworth", low_pass=0.08),
    "high": dict(filter="butterworth", high_pass=0.02),
    "cosine": dict(filter="cosine", high_pass=0.01),
    "none": dict(filter=False),
}


@pytest.mark.parametrize("mask", list(MASKS))
@pytest.mark.parametrize("with_confounds", [False, True])
@pytest.mark.parametrize("standardize", ["zscore_sample", "psc", None])
@pytest.mark.parametrize("filter_name", list(FILTERS))
def test_equals_nilearn(nilearn_clean, filter_name, standardize, with_confounds, mask):
    signals = _signals()
    kwargs = dict(
        FILTERS[filter_name],
        t_r=T_R,
        standardize=standardize,
        confounds=_confounds() if with_confounds else None,
        sample_mask=MASKS[mask],
    )
    expected = nilearn_clean(signals, **kwargs)
    result = _quiet_clean(signals, **kwargs)
    assert result.shape == expected.shape
    np.testing.assert_allclose(result, expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("standardize_confounds", [True, False])
@pytest.mark.parametrize("standardize", ["zscore_sample", "psc", None])
@pytest.mark.parametrize("detrend", [True, False])
def test_detrend_and_confound_options_equal_nilearn(nilearn_clean, detrend, standardize, standardize_confounds):
    signals = _signals(2)
    kwargs = dict(
        detrend=detrend,
        standardize=standardize,
        standardize_confounds=standardize_confounds,
        confounds=_confounds(3),
        low_pass=0.1,
        high_pass=0.01,
        t_r=T_R,
    )
    np.testing.assert_allclose(_quiet_clean(signals, **kwargs), nilearn_clean(signals, **kwargs), atol=ATOL)


@pytest.mark.parametrize("mask", ["middle", "edges", "head_boolean"])
@pytest.mark.parametrize("filter_name", ["band", "low"])
def test_extrapolate_equals_nilearn(nilearn_clean, filter_name, mask):
    signals = _signals(4)
    kwargs = dict(FILTERS[filter_name], t_r=T_R, sample_mask=MASKS[mask], extrapolate=True, confounds=_confounds())
    expected = nilearn_clean(signals, **kwargs)
    assert expected.shape[0] == len(np.arange(N_TIME)[MASKS[mask]])
    np.testing.assert_allclose(_quiet_clean(signals, **kwargs), expected, atol=ATOL)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(butterworth__order=3, low_pass=0.1, high_pass=0.01),
        dict(butterworth__padtype="even", low_pass=0.1),
        dict(butterworth__padtype="constant", high_pass=0.02),
        dict(butterworth__padtype=None, low_pass=0.1),
        dict(butterworth__padlen=10, low_pass=0.1, high_pass=0.01),
    ],
    ids=["order", "even", "constant", "nopad", "padlen"],
)
def test_butterworth_options_equal_nilearn(nilearn_clean, kwargs):
    signals = _signals(5)
    kwargs = dict(kwargs, t_r=T_R, confounds=_confounds(), sample_mask=MASKS["middle"])
    np.testing.assert_allclose(_quiet_clean(signals, **kwargs), nilearn_clean(signals, **kwargs), atol=ATOL)


@pytest.mark.parametrize("standardize_confounds", [True, False])
def test_dependent_confounds_are_dropped(standardize_confounds):
    signals, confounds = _signals(19), _confounds(19)
    kwargs = dict(low_pass=0.1, t_r=T_R, sample_mask=MASKS["middle"], standardize_confounds=standardize_confounds)
    independent = np.delete(confounds, DEPENDENT_COLUMN, axis=1)
    duplicated = np.hstack([confounds, confounds[:, :1] * 3.0])
    expected = clean(signals, confounds=independent, **kwargs)
    np.testing.assert_allclose(clean(signals, confounds=confounds, **kwargs), expected, atol=1e-9)
    np.testing.assert_allclose(clean(signals, confounds=duplicated, **kwargs), expected, atol=1e-9)


def test_unpatched_nilearn_where_its_interpolation_is_right():
    # censored volumes whose mirror images (n - 1 - i) are kept: nilearn's
    # integer-index complement happens to select them, so no fix is needed
    signals, confounds = _signals(6), np.delete(_confounds(6), DEPENDENT_COLUMN, axis=1)
    mask = np.r_[0:30, 33:N_TIME]
    kwargs = dict(low_pass=0.1, high_pass=0.01, t_r=T_R, confounds=confounds, sample_mask=mask)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = nilearn_signal.clean(signals.copy(), **kwargs)
    np.testing.assert_allclose(clean(signals, **kwargs), expected, atol=ATOL)


def test_censored_volumes_are_interpolated_then_dropped():
    # the definition, independent of nilearn: spline through kept volumes on
    # their span, filter, keep the kept volumes
    signals = _signals(7)
    mask = np.r_[2:40, 45:N_TIME - 3]
    signals[40:45] += 1000.0  # high-motion spikes must not leak into the output
    result = clean(signals, sample_mask=mask, low_pass=0.1, t_r=T_R, detrend=False, standardize=None)

    times = np.arange(N_TIME) * T_R
    span = signals[2 : N_TIME - 3].copy()
    span[38:43] = CubicSpline(times[mask], signals[mask])(times[40:45])
    sos = butter(5, 0.1, btype="low", output="sos", fs=1 / T_R)
    expected = sosfiltfilt(sos, span, axis=0)[mask - 2]
    np.testing.assert_allclose(result, expected, atol=1e-9)
    assert np.abs(result).max() < 500


@pytest.mark.parametrize("with_mask", [False, True])
def test_runs_equal_nilearn_per_run(nilearn_clean, with_mask):
    signals = _signals(8, n_time=150)
    confounds = _confounds(8, n_time=150)
    runs = np.repeat([0, 1, 2], 50)
    masks = [np.r_[0:20, 23:50], np.r_[2:50], np.r_[0:47]] if with_mask else None
    kwargs = dict(low_pass=0.1, high_pass=0.01, t_r=T_R)
    result = clean(signals, runs=runs, confounds=confounds, sample_mask=masks, **kwargs)
    expected = np.vstack(
        [
            nilearn_clean(
                signals[runs == r], confounds=confounds[runs == r], sample_mask=None if masks is None else masks[r], **kwargs
            )
            for r in range(3)
        ]
    )
    np.testing.assert_allclose(result, expected, atol=ATOL)
    # nilearn's own runs= path (which passes only the default options on)
    np.testing.assert_allclose(result, nilearn_clean(signals, runs=runs, confounds=confounds, sample_mask=masks, **kwargs), atol=ATOL)


def test_interleaved_runs_come_back_in_label_order(nilearn_clean):
    signals = _signals(9, n_time=80)
    runs = np.tile(np.repeat([1, 0], 10), 4)
    result = clean(signals, runs=runs, detrend=True, t_r=T_R)
    np.testing.assert_allclose(result, nilearn_clean(signals, runs=runs, detrend=True, t_r=T_R), atol=ATOL)
    np.testing.assert_allclose(result[:40], clean(signals[runs == 0], t_r=T_R), atol=1e-12)


def test_runs_pass_options_nilearn_drops():
    signals, confounds = _signals(10, n_time=100), _confounds(10, n_time=100)
    runs = np.repeat([0, 1], 50)
    kwargs = dict(confounds=confounds, standardize_confounds=False, low_pass=0.1, t_r=T_R, butterworth__order=3)
    together = clean(signals, runs=runs, **kwargs)
    apart = np.vstack([clean(signals[runs == r], **dict(kwargs, confounds=confounds[runs == r])) for r in (0, 1)])
    np.testing.assert_allclose(together, apart, atol=1e-12)


def test_float32_stays_float32_and_close_to_float64():
    signals = _signals(11).astype(np.float32)
    kwargs = dict(confounds=np.delete(_confounds(), DEPENDENT_COLUMN, axis=1), low_pass=0.1, high_pass=0.01, t_r=T_R, sample_mask=MASKS["middle"])
    result = clean(signals, **kwargs)
    assert result.dtype == np.float32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nilearn_result = nilearn_signal.clean(signals.copy(), **kwargs)
    assert nilearn_result.dtype == np.float32
    np.testing.assert_allclose(result, clean(signals.astype(np.float64), **kwargs), atol=1e-4)
    np.testing.assert_allclose(result, nilearn_result, atol=1e-3)


def test_integer_signals_become_float():
    signals = np.round(_signals(12)).astype(np.int32)
    result = clean(signals, t_r=T_R)
    assert result.dtype == np.float32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_allclose(result, nilearn_signal.clean(signals, t_r=T_R), atol=1e-5)


def test_ensure_finite_equals_nilearn():
    signals = _signals(13)
    signals[5, 3] = np.nan
    signals[9, 0] = np.inf
    result = clean(signals, ensure_finite=True, low_pass=0.1, t_r=T_R)
    assert np.isfinite(result).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = nilearn_signal.clean(signals.copy(), ensure_finite=True, low_pass=0.1, t_r=T_R)
    np.testing.assert_allclose(result, expected, atol=ATOL)


def test_confounds_as_dataframe_file_and_list(tmp_path):
    import pandas as pd

    signals, confounds = _signals(14), _confounds(14)
    expected = clean(signals, confounds=confounds, t_r=T_R)
    frame = pd.DataFrame(confounds, columns=[f"c{i}" for i in range(5)])
    np.testing.assert_allclose(clean(signals, confounds=frame, t_r=T_R), expected, atol=1e-12)
    path = tmp_path / "confounds.tsv"
    frame.to_csv(path, sep="\t", index=False)
    np.testing.assert_allclose(clean(signals, confounds=path, t_r=T_R), expected, atol=1e-9)
    headless = tmp_path / "confounds.csv"
    np.savetxt(headless, confounds, delimiter=",")
    np.testing.assert_allclose(clean(signals, confounds=str(headless), t_r=T_R), expected, atol=1e-9)
    np.testing.assert_allclose(clean(signals, confounds=[confounds[:, :2], frame.iloc[:, 2:]], t_r=T_R), expected, atol=1e-12)


@pytest.mark.parametrize("separator", [",", "\t", ";", "  "])
@pytest.mark.parametrize("header", [True, False])
def test_confounds_files_read_as_pandas_sniffing_python_engine_reads_them(tmp_path, separator, header):
    """Comma, tab and semicolon tables go through pandas' C parser (a run's confounds file is read at every
    transform): the values and names are those of ``read_csv(sep=None, engine="python")``; other separators
    (spaces) are read by the python engine itself."""
    import pandas as pd

    from brainxr.signal.validation import _read_confounds_file

    confounds = _confounds(14)
    names = [f"c{i}" for i in range(5)]
    lines = ([separator.join(names)] if header else []) + [separator.join(repr(float(x)) for x in row) for row in confounds]
    path = tmp_path / "confounds.txt"
    path.write_text("\n".join(lines) + "\n")
    values, found_names = _read_confounds_file(path)
    expected = pd.read_csv(path, sep=None, engine="python", header="infer" if header else None)
    np.testing.assert_array_equal(values, expected.to_numpy(dtype=np.float64))
    assert found_names == ([str(column) for column in expected.columns] if header else None)
    if separator.strip():
        np.testing.assert_array_equal(values, confounds)
        assert found_names in (names, None)


def test_psc_warns_and_zeroes_zero_mean_features():
    signals = _signals(15)
    signals[:, 0] = np.tile([1.0, -1.0], N_TIME // 2)  # mean exactly 0
    with pytest.warns(UserWarning, match="psc standardization"):
        result = clean(signals, standardize="psc", detrend=False, t_r=T_R)
    assert np.all(result[:, 0] == 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(standardize="psc"),
        dict(standardize="psc", detrend=False),
        dict(detrend=False),
        dict(low_pass=0.1, high_pass=0.01),
        dict(filter="cosine", high_pass=0.01),
        dict(sample_mask=MASKS["edges"], low_pass=0.1),
    ],
    ids=["default", "psc", "psc-nodetrend", "zscore-nodetrend", "band", "cosine", "mask"],
)
@pytest.mark.parametrize("value", [0.0, 1000.1, 0.3, -123.456789])
def test_constant_signals_give_zeros(kwargs, value):
    signals = _signals(16)
    signals[:, 2] = value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = clean(signals, confounds=_confounds(16), t_r=T_R, **kwargs)
    assert np.isfinite(result).all()
    assert np.all(result[:, 2] == 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(detrend=False),
        dict(low_pass=0.1, high_pass=0.01),
        dict(detrend=False, standardize=None),
        dict(ensure_finite=True),
    ],
    ids=["default", "zscore-nodetrend", "band", "none", "ensure_finite"],
)
def test_infinite_columns_equal_nilearn(nilearn_clean, kwargs):
    """All-Inf, all -Inf and partly Inf columns give nilearn's NaN (not 0).

    (nilearn's spline interpolation refuses them, and its percent signal
    change over a run with NaN means is meaningless on both sides.)
    """
    signals = _signals(21)
    signals[:, 1] = np.inf
    signals[:, 4] = -np.inf
    signals[7, 6] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = clean(signals.copy(), t_r=T_R, **kwargs)
    expected = nilearn_clean(signals, t_r=T_R, **kwargs)
    np.testing.assert_array_equal(np.isnan(result), np.isnan(expected))
    if not kwargs.get("ensure_finite"):
        assert np.isnan(result[:, 1]).all() or np.isinf(result[:, 1]).all()
    np.testing.assert_allclose(result, expected, atol=ATOL)


def test_butterworth_equals_nilearn_and_filters_in_place():
    signals = _signals(17)
    expected = nilearn_signal.butterworth(signals.copy(), sampling_rate=0.5, low_pass=0.1, high_pass=0.01)
    copy = butterworth(signals, sampling_rate=0.5, low_pass=0.1, high_pass=0.01, copy=True)
    np.testing.assert_allclose(copy, expected, atol=1e-10)
    in_place = signals.copy()
    returned = butterworth(in_place, sampling_rate=0.5, low_pass=0.1, high_pass=0.01)
    assert returned is in_place
    np.testing.assert_allclose(in_place, expected, atol=1e-10)
    one_d = butterworth(signals[:, 0].copy(), sampling_rate=0.5, high_pass=0.01, copy=True)
    np.testing.assert_allclose(
        one_d, nilearn_signal.butterworth(signals[:, 0].copy(), sampling_rate=0.5, high_pass=0.01), atol=1e-10
    )


def test_butterworth_cutoffs_above_nyquist_warn_like_nilearn():
    signals = _signals(18)
    with pytest.warns(UserWarning, match="Nyquist"):
        result = butterworth(signals, sampling_rate=0.5, low_pass=0.4, copy=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = nilearn_signal.butterworth(signals.copy(), sampling_rate=0.5, low_pass=0.4)
    np.testing.assert_allclose(result, expected, atol=1e-10)


@pytest.mark.parametrize("standardize", ["zscore_sample", "psc", None])
@pytest.mark.parametrize("mask", ["none", "middle"])
def test_threaded_tasks_equal_one_call(monkeypatch, nilearn_clean, standardize, mask):
    """A run cleaned in several thread tasks (columns split) equals nilearn, psc's run-wide mean included."""
    from brainxr.signal import cleaning

    signals = _signals(n_features=203)
    kwargs = dict(standardize=standardize, confounds=_confounds(), sample_mask=MASKS[mask], t_r=T_R, **FILTERS["band"])
    whole = _quiet_clean(signals, **kwargs)
    monkeypatch.setattr(cleaning, "_TASK_VALUES", N_TIME * 17)  # 12 tasks of 17 columns
    split = _quiet_clean(signals, **kwargs)
    np.testing.assert_allclose(split, whole, rtol=0, atol=1e-12)  # BLAS rounding depends on the batch width
    np.testing.assert_allclose(split, nilearn_clean(signals, **kwargs), atol=ATOL)


@pytest.mark.parametrize("mask", ["none", "middle"])
def test_copy_false_cleans_in_place(monkeypatch, mask):
    """copy=False writes the cleaned run over the signals' first rows, values as with a copy."""
    from brainxr.signal import cleaning

    monkeypatch.setattr(cleaning, "_TASK_VALUES", N_TIME * 5)
    signals = _signals(n_features=31).astype(np.float32)
    kwargs = dict(confounds=_confounds(), sample_mask=MASKS[mask], t_r=T_R, **FILTERS["band"])
    expected = _quiet_clean(signals.copy(), **kwargs)
    result = _quiet_clean(signals, copy=False, **kwargs)
    assert np.shares_memory(result, signals) and result.flags.c_contiguous
    np.testing.assert_array_equal(result, expected)
    # not in place where it cannot be: psc, several runs, another dtype or order
    for options, data in [
        (dict(standardize="psc"), signals.copy()),
        (dict(runs=np.repeat([0, 1], N_TIME // 2), sample_mask=None), signals.copy()),
        ({}, np.asfortranarray(signals)),
        ({}, signals.astype(np.int32)),
    ]:
        result = _quiet_clean(data, copy=False, **{**kwargs, **options})
        assert not np.shares_memory(result, data)
    with pytest.raises(ValueError, match="copy must be True or False"):
        clean(signals, copy="no")


def test_a_filter_designed_once_still_warns_on_every_call_and_is_shared():
    from brainxr.signal.filters import design_butterworth

    for _ in range(2):  # the second design comes from the cache: nilearn's warning all the same
        with pytest.warns(UserWarning, match="Nyquist"):
            nudged = design_butterworth(0.5, low_pass=0.4)
    again = design_butterworth(0.5, low_pass=0.249999)
    assert design_butterworth(0.5, high_pass=0.01, low_pass=0.1) is design_butterworth(0.5, high_pass=0.01, low_pass=0.1)
    assert again is not nudged and not np.array_equal(again.sos, nudged.sos)
