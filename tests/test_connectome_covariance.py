"""brainxr's default covariance kernels equal scikit-learn's estimators, and nilearn's connectomes."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
from nilearn.connectome import ConnectivityMeasure as NilearnConnectivityMeasure
from sklearn.exceptions import NotFittedError
from sklearn.covariance import EmpiricalCovariance, LedoitWolf, ledoit_wolf_shrinkage
from sklearn.covariance import empirical_covariance as sklearn_empirical_covariance

from brainxr.connectome import ConnectivityMeasure
from brainxr.connectome.covariance import KernelCovariance, empirical_covariance, ledoit_wolf

TOL = 1e-12  # the same operations in the same order: equal in practice, a BLAS may round differently

SHAPES = {
    "more samples than features": (200, 100),
    "fewer samples than features": (20, 50),
    "one feature": (50, 1),
    "two samples": (2, 5),
    "several blocks of 1000 features": (12, 2300),
}


def _signals(shape, constant_columns=(), seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal(shape) * rng.uniform(0.1, 10.0, shape[1]) + 3.0
    for column in constant_columns:
        X[:, column] = 4.0
    return X


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("assume_centered", [False, True])
def test_ledoit_wolf_equals_scikit_learn(shape, assume_centered):
    X = _signals(shape)
    reference = LedoitWolf(assume_centered=assume_centered).fit(X)
    covariance, shrinkage = ledoit_wolf(X, assume_centered=assume_centered)
    np.testing.assert_allclose(covariance, reference.covariance_, rtol=0, atol=TOL * np.abs(reference.covariance_).max())
    assert shrinkage == pytest.approx(reference.shrinkage_, rel=0, abs=TOL)
    if shape[1] > 1:
        centered = X if assume_centered else X - X.mean(axis=0)
        assert shrinkage == pytest.approx(ledoit_wolf_shrinkage(centered, assume_centered=True), rel=0, abs=TOL)
    else:
        assert shrinkage == 0.0


@pytest.mark.parametrize("block_size", [1, 7, 50, 1000])
def test_ledoit_wolf_blocks_change_nothing(block_size):
    """The shrinkage's sums over blocks of features (a last, partial block included) equal scikit-learn's."""
    X = _signals((30, 50), constant_columns=[3])
    reference = LedoitWolf(block_size=block_size).fit(X)
    covariance, shrinkage = ledoit_wolf(X, block_size=block_size)
    np.testing.assert_allclose(covariance, reference.covariance_, rtol=0, atol=TOL * np.abs(reference.covariance_).max())
    assert shrinkage == pytest.approx(reference.shrinkage_, rel=0, abs=TOL)
    assert 0.0 < shrinkage < 1.0


def test_constant_columns():
    """Constant columns have zero (co)variance before shrinkage; all-constant signals are not shrunk."""
    X = _signals((40, 6), constant_columns=[0, 4])
    reference = LedoitWolf().fit(X)
    covariance, shrinkage = ledoit_wolf(X)
    np.testing.assert_allclose(covariance, reference.covariance_, rtol=0, atol=TOL * np.abs(reference.covariance_).max())
    np.testing.assert_array_equal(covariance[0, 1:], 0.0)
    constant = np.full((10, 3), 2.5)
    covariance, shrinkage = ledoit_wolf(constant)
    np.testing.assert_array_equal(covariance, LedoitWolf().fit(constant).covariance_)
    assert shrinkage == 0.0


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_empirical_covariance_equals_scikit_learn(shape):
    X = _signals(shape, constant_columns=[0])
    reference = sklearn_empirical_covariance(X)
    np.testing.assert_allclose(empirical_covariance(X), reference, rtol=0, atol=TOL * np.abs(reference).max())
    np.testing.assert_allclose(
        empirical_covariance(X), EmpiricalCovariance().fit(X).covariance_, rtol=0, atol=TOL * np.abs(reference).max()
    )


def test_kernel_estimator_fits_like_scikit_learn():
    X = _signals((60, 8))
    ours, theirs = KernelCovariance("ledoit_wolf").fit(X), LedoitWolf(store_precision=False).fit(X)
    for name in ("covariance_", "location_", "shrinkage_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=0, atol=TOL * 100)
    assert repr(ours) == repr(theirs) == "LedoitWolf(store_precision=False)"
    empirical = KernelCovariance("empirical").fit(X)
    np.testing.assert_allclose(empirical.covariance_, EmpiricalCovariance().fit(X).covariance_, rtol=0, atol=TOL * 100)
    assert repr(empirical) == repr(EmpiricalCovariance(store_precision=False))
    with pytest.raises(ValueError, match="name='oas'; expected one of"):
        KernelCovariance("oas")


def _subjects(n_subjects=6, n_regions=12, seed=0):
    rng = np.random.default_rng(seed)
    factor = rng.standard_normal((n_regions, n_regions))
    covariance = np.linalg.inv(factor @ factor.T + n_regions * np.eye(n_regions))
    return [
        rng.multivariate_normal(np.zeros(n_regions), covariance, size=length) * rng.uniform(0.5, 3.0, n_regions) + 10
        for length in (8, 15, 40, 100, 200, 33)[:n_subjects]
    ]


@pytest.mark.parametrize("kind", ["covariance", "correlation", "partial correlation", "precision", "tangent"])
def test_default_connectivity_measure_equals_nilearn(kind):
    """ConnectivityMeasure() (brainxr's Ledoit-Wolf) gives nilearn's ConnectivityMeasure() (scikit-learn's), some runs
    with fewer samples than regions. The tangent's geometric mean is iterative (nilearn's tolerance 1e-7)."""
    X = _subjects()
    ours = ConnectivityMeasure(kind=kind).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        theirs = NilearnConnectivityMeasure(kind=kind).fit(X)
    tolerance = 1e-6 if kind == "tangent" else 1e-10
    ours_out, theirs_out = ours.transform(X), theirs.transform(X)
    scale = np.abs(theirs_out).max()
    np.testing.assert_allclose(ours_out, theirs_out, rtol=0, atol=tolerance * scale)
    np.testing.assert_allclose(ours.mean_, theirs.mean_, rtol=0, atol=tolerance * np.abs(theirs.mean_).max())
    assert repr(ours.cov_estimator_) == repr(theirs.cov_estimator_)


def test_a_scikit_learn_estimator_is_used_as_given():
    """An estimator passed by the user is cloned and fitted: scikit-learn's own LedoitWolf gives the same matrices."""
    X = _subjects()
    given = LedoitWolf(store_precision=False)
    measure = ConnectivityMeasure(kind="partial correlation", cov_estimator=given).fit(X)
    assert type(measure.cov_estimator_) is LedoitWolf and measure.cov_estimator_ is not given
    np.testing.assert_allclose(
        measure.transform(X), ConnectivityMeasure(kind="partial correlation").fit_transform(X), rtol=0, atol=1e-10
    )



def test_unfitted_measure_raises_scikit_learns_error():
    X = _subjects(n_subjects=2)
    with pytest.raises(NotFittedError, match="This ConnectivityMeasure instance is not fitted yet"):
        ConnectivityMeasure().transform(X)
    with pytest.raises(NotFittedError, match="This ConnectivityMeasure instance is not fitted yet"):
        ConnectivityMeasure().inverse_transform(np.eye(3)[None])


def test_default_connectivity_does_not_import_scikit_learn():
    """connectivity() and ConnectivityMeasure with the default and the empirical estimators, in a fresh process,
    never import scikit-learn (~0.8 s: its estimators import scipy.stats)."""
    code = """
import sys
import numpy as np, xarray as xr
from brainxr.connectome import ConnectivityMeasure, connectivity
signals = xr.DataArray(np.random.default_rng(0).standard_normal((3, 50, 4)), dims=("run", "time", "region"))
for estimator in (None, "ledoit_wolf", "empirical"):
    for kind in ("correlation", "partial correlation", "tangent"):
        connectivity(signals, kind, cov_estimator=estimator)
        ConnectivityMeasure(cov_estimator=estimator, kind=kind).fit_transform(list(signals.values))
print("imported:", sorted(name for name in ("sklearn", "scipy.stats") if name in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "imported: []" in done.stdout, done.stdout
