"""ConnectivityMeasure equals nilearn 0.14's for every kind and option."""

import itertools
import warnings

import numpy as np
import pytest
import xarray as xr
from nilearn.connectome import ConnectivityMeasure as NilearnConnectivityMeasure
from sklearn.covariance import EmpiricalCovariance, LedoitWolf

from brainxr.connectome import ConnectivityMeasure, NotPositiveDefiniteError

TOL = 1e-6
KINDS = ["covariance", "correlation", "partial correlation", "tangent", "precision"]


def _subjects(n_subjects=12, n_regions=6, seed=0):
    """Signals drawn from a known precision, with unequal scales and lengths."""
    rng = np.random.default_rng(seed)
    factor = rng.standard_normal((n_regions, n_regions))
    precision = factor @ factor.T + n_regions * np.eye(n_regions)
    covariance = np.linalg.inv(precision)
    scales = rng.uniform(0.5, 3.0, n_regions)
    return [
        rng.multivariate_normal(np.zeros(n_regions), covariance, size=40 + 3 * index) * scales + 10.0
        for index in range(n_subjects)
    ]


def _fit_both(X, fit_on=None, **params):
    ours = ConnectivityMeasure(**params)
    theirs = NilearnConnectivityMeasure(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        if fit_on is None:
            return ours, theirs, ours.fit_transform(X), theirs.fit_transform(X)
        ours.fit(fit_on)
        theirs.fit(fit_on)
        return ours, theirs, ours.transform(X), theirs.transform(X)


OPTIONS = list(
    itertools.product(KINDS, [False, True], [False, True], [True, False], ["ledoit_wolf", "empirical"])
)


@pytest.mark.parametrize(
    "kind, vectorize, discard_diagonal, standardize, estimator", OPTIONS
)
def test_equals_nilearn(kind, vectorize, discard_diagonal, standardize, estimator):
    X = _subjects()
    cov_estimator = EmpiricalCovariance() if estimator == "empirical" else None
    ours, theirs, ours_out, theirs_out = _fit_both(
        X,
        kind=kind,
        vectorize=vectorize,
        discard_diagonal=discard_diagonal,
        standardize=standardize,
        cov_estimator=cov_estimator,
    )
    assert ours_out.shape == theirs_out.shape
    np.testing.assert_allclose(ours_out, theirs_out, rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.mean_, theirs.mean_, rtol=0, atol=TOL)
    if kind == "tangent":
        np.testing.assert_allclose(ours.whitening_, theirs.whitening_, rtol=0, atol=TOL)
    else:
        assert ours.whitening_ is None
    assert ours.n_features_in_ == theirs.n_features_in_ == 6
    if vectorize and discard_diagonal and kind not in ("correlation", "partial correlation"):
        with pytest.raises(ValueError, match="diagonal values has been discarded"):
            ours.inverse_transform(ours_out)
    else:
        np.testing.assert_allclose(
            ours.inverse_transform(ours_out), theirs.inverse_transform(theirs_out), rtol=0, atol=TOL
        )


@pytest.mark.parametrize("kind", KINDS)
def test_transform_new_subjects_with_fitted_mean(kind):
    X = _subjects()
    ours, theirs, ours_out, theirs_out = _fit_both(X[6:], fit_on=X[:6], kind=kind)
    np.testing.assert_allclose(ours_out, theirs_out, rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.mean_, theirs.mean_, rtol=0, atol=TOL)


@pytest.mark.parametrize("kind", ["correlation", "tangent", "covariance"])
def test_second_level_confounds_equal_nilearn(kind):
    X = _subjects()
    confounds = np.random.default_rng(1).standard_normal((len(X), 2))
    ours = ConnectivityMeasure(kind=kind, vectorize=True).fit_transform(X, confounds=confounds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        theirs = NilearnConnectivityMeasure(kind=kind, vectorize=True).fit_transform(
            X, confounds=confounds
        )
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOL)


def test_custom_estimator_and_shortcuts():
    X = _subjects(n_subjects=3)
    shrunk = LedoitWolf(store_precision=False)
    reference = ConnectivityMeasure(kind="partial correlation", cov_estimator=shrunk).fit_transform(X)
    shortcut = ConnectivityMeasure(kind="partial correlation", cov_estimator="ledoit_wolf").fit_transform(X)
    np.testing.assert_array_equal(reference, shortcut)
    measure = ConnectivityMeasure(cov_estimator=shrunk).fit(X)
    assert measure.cov_estimator_ is not shrunk  # cloned, as nilearn


def test_zscore_sample_string_standardizes_like_true():
    X = _subjects(n_subjects=3)
    with_true = ConnectivityMeasure(kind="correlation", standardize=True).fit_transform(X)
    with_string = ConnectivityMeasure(kind="correlation", standardize="zscore_sample").fit_transform(X)
    without = ConnectivityMeasure(kind="correlation", standardize=False).fit_transform(X)
    np.testing.assert_array_equal(with_true, with_string)
    assert np.abs(with_true - without).max() > 1e-3


def test_accepts_dataarrays_and_a_single_array():
    X = _subjects(n_subjects=2)
    labeled = [
        xr.DataArray(x.T, dims=("region", "time")) for x in X
    ]  # transposed on purpose: dims, not axis order, decide
    np.testing.assert_allclose(
        ConnectivityMeasure(kind="correlation").fit_transform(labeled),
        ConnectivityMeasure(kind="correlation").fit_transform(X),
    )
    assert ConnectivityMeasure().fit_transform(X[0]).shape == (1, 6, 6)


def test_tangent_needs_a_group():
    X = _subjects(n_subjects=3)
    with pytest.raises(ValueError, match="group of subjects"):
        ConnectivityMeasure(kind="tangent").fit_transform(X[:1])
    measure = ConnectivityMeasure(kind="tangent").fit(X[:1])  # fitting a reference is allowed
    with pytest.raises(ValueError, match="group of subjects"):
        measure.transform(X[:1])


def test_bad_input_gives_clear_errors():
    X = _subjects(n_subjects=3)
    with pytest.raises(ValueError, match="kind='spam'"):
        ConnectivityMeasure(kind="spam").fit(X)
    with pytest.raises(ValueError, match="standardize='psc'"):
        ConnectivityMeasure(kind="correlation", standardize="psc").fit(X)
    with pytest.raises(ValueError, match="'cov_estimator' must be an estimator"):
        ConnectivityMeasure(cov_estimator=object()).fit(X)
    with pytest.raises(ValueError, match="subject 1 is ndarray of shape \\(43,\\)"):
        ConnectivityMeasure().fit([X[0], X[1][:, 0]])
    with pytest.raises(ValueError, match="same number of features"):
        ConnectivityMeasure().fit([X[0], X[1][:, :4]])
    with pytest.raises(TypeError, match="iterable"):
        ConnectivityMeasure().fit(3)
    nan_subject = X[1].copy()
    nan_subject[3, 2] = np.nan
    with pytest.raises(ValueError, match="Subject 1 has NaN"):
        ConnectivityMeasure().fit([X[0], nan_subject])
    measure = ConnectivityMeasure().fit(X)
    with pytest.raises(ValueError, match="fitted with 6 features"):
        measure.transform([x[:, :5] for x in X])
    with pytest.raises(ValueError, match="vectorize=False"):
        ConnectivityMeasure().fit_transform(X, confounds=np.ones((3, 1)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        ConnectivityMeasure().fit([X[0], X[1][:1]])


def test_singular_covariance_error_names_the_subject():
    rng = np.random.default_rng(0)
    short = [rng.standard_normal((50, 8)), rng.standard_normal((5, 8))]
    with pytest.raises(NotPositiveDefiniteError, match="subject 1.*fewer samples \\(5\\) than regions \\(8\\)"):
        ConnectivityMeasure(kind="partial correlation", cov_estimator=EmpiricalCovariance()).fit(short)
    # the default shrunk estimator handles fewer samples than regions
    assert np.isfinite(ConnectivityMeasure(kind="precision").fit_transform(short)).all()


def test_verbose_reports_the_fit(capsys):
    ConnectivityMeasure(verbose=1).fit(_subjects(n_subjects=2))
    assert "Finished fit" in capsys.readouterr().out
    ConnectivityMeasure().fit(_subjects(n_subjects=2))
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("kind", KINDS)
def test_brainxr_graphical_lasso_as_estimator_equals_nilearn_with_scikit_learn(kind):
    from sklearn.covariance import GraphicalLasso as ScikitLearnGraphicalLasso

    from brainxr.connectome import GraphicalLasso

    X = _subjects(n_subjects=4)
    tight = dict(alpha=0.05, tol=1e-12, enet_tol=1e-12, max_iter=2000)
    ours = ConnectivityMeasure(kind=kind, cov_estimator=GraphicalLasso(**tight)).fit_transform(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = NilearnConnectivityMeasure(
            kind=kind, cov_estimator=ScikitLearnGraphicalLasso(**tight)
        ).fit_transform(X)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOL)
