"""brainxr's graphical lasso estimators import scikit-learn on first use of its protocol only.

Constructing, fitting (on a numpy array, with parameters scikit-learn
accepts, ``cv`` None or an int) and reading the attributes import no
scikit-learn; what replaces scikit-learn there (the parameter checks, the
``KFold`` folds, the unpenalized score of ``cv_results_``) is checked
against scikit-learn here, and each use of scikit-learn's protocol, made
first in a fresh interpreter, gives what it gives with scikit-learn in place.
"""

from __future__ import annotations

import json
import subprocess
import warnings
import sys

import numpy as np
import pytest
import sklearn.covariance as skcov
from sklearn.base import clone
from sklearn.model_selection import KFold, ShuffleSplit, cross_val_score
from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints

from brainxr._estimator import Estimator
from brainxr.connectome._cross_validation import KFold as _KFold
from brainxr.connectome._cross_validation import check_cv as _check_cv
from brainxr.connectome.group_sparse_inverse_covariance import GroupSparseCovariance, GroupSparseCovarianceCV
from brainxr.connectome.sparse_inverse_covariance import GraphicalLasso, GraphicalLassoCV, _empirical_scores


def _signals(n_samples=60, n_features=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features))
    X[:, 1] += X[:, 0]
    X[:, 3] -= 0.5 * X[:, 2]
    return X


#: run in a fresh interpreter and here; ``X`` is :func:`_signals`, ``out`` is printed as JSON
FIT = """
cv = GraphicalLassoCV().fit(X)
cv3 = GraphicalLassoCV(cv=3, alphas=5, n_refinements=3, early_stopping=False).fit(X)
lasso = GraphicalLasso(alpha=0.1).fit(X)
subjects = [X[:30], X[30:] * 2.0]
group = GroupSparseCovariance(alpha=0.05).fit(subjects)
group_cv = GroupSparseCovarianceCV(cv=3, alphas=3, n_refinements=2).fit(subjects)
out = {
    "group": [group.precisions_.tolist(), group_cv.precisions_.tolist(), group_cv.alpha_],
    "alpha": [cv.alpha_, cv3.alpha_],
    "precision": [cv.precision_.tolist(), cv3.precision_.tolist(), lasso.precision_.tolist()],
    "covariance": [cv.covariance_.tolist(), lasso.covariance_.tolist()],
    "cv_results": [{key: value.tolist() for key, value in model.cv_results_.items()} for model in (cv, cv3)],
    "n_features_in": [cv.n_features_in_, lasso.n_features_in_],
}
"""

FIRST_USES = {
    "repr": "out = repr(GraphicalLassoCV(cv=3, tol=1e-3))",
    "get_params": "out = repr(sorted(GraphicalLassoCV(cv=3).get_params().items()))",
    "clone": "from sklearn.base import clone; out = repr(clone(GraphicalLasso(alpha=0.3)))",
    "score": "out = GraphicalLassoCV().fit(X).score(X[:20] + 0.1)",
    "mahalanobis": "out = GraphicalLasso(alpha=0.1).fit(X).mahalanobis(X[:5]).tolist()",
    "error_norm": "m = GraphicalLassoCV().fit(X); out = [m.error_norm(np.eye(8)), m.error_norm(np.eye(8), norm='spectral', squared=False)]",
    "get_precision": "out = GraphicalLasso(alpha=0.1, covariance='precomputed').fit(np.cov(X.T)).get_precision().tolist()",
    "bad_parameter": (
        "try:\n    GraphicalLassoCV(tol=-1.0).fit(X)\nexcept Exception as error:\n"
        "    out = [type(error).__module__, type(error).__name__, str(error)]"
    ),
}

PREAMBLE = """
import json, sys
import numpy as np
from brainxr.connectome import GraphicalLasso, GraphicalLassoCV, GroupSparseCovariance, GroupSparseCovarianceCV
rng = np.random.default_rng(0)
X = rng.normal(size=(60, 8)); X[:, 1] += X[:, 0]; X[:, 3] -= 0.5 * X[:, 2]
"""


def _fresh(code: str) -> dict:
    script = PREAMBLE + code + (
        "\nimported = 'sklearn' in sys.modules\n"
        "from sklearn.covariance import EmpiricalCovariance\n"
        "objects = [value for value in globals().values() if isinstance(value, (GraphicalLasso, GraphicalLassoCV))]\n"
        "print(json.dumps({'imported': imported, 'empirical': [isinstance(o, EmpiricalCovariance) for o in objects],"
        " 'out': out}))"
    )
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    return json.loads(found.stdout.strip().splitlines()[-1])


def _here(code: str):
    scope = {}
    exec(PREAMBLE + code, scope)
    return json.loads(json.dumps(scope["out"]))


@pytest.mark.integration  # a fresh interpreter
def test_construct_fit_and_attributes_import_no_scikit_learn():
    """The example's path (construct, fit, read the attributes) imports no scikit-learn and gives its numbers."""
    first = _fresh(FIT)
    assert first["imported"] is False
    assert first["out"] == _here(FIT)  # here scikit-learn's bases are in place: the very same numbers
    # the documented difference: importing scikit-learn is no use of its protocol, so not yet in place
    assert first["empirical"] == [False] * 3


@pytest.mark.integration  # fresh interpreters
@pytest.mark.parametrize("use", sorted(FIRST_USES))
def test_the_first_use_of_scikit_learns_protocol_gives_what_scikit_learn_gives(use):
    """repr, get_params, clone, EmpiricalCovariance's methods, a bad parameter: first used in a fresh
    interpreter, each imports scikit-learn and gives what it gives with scikit-learn in place."""
    first = _fresh(FIRST_USES[use])
    assert first["imported"] is True
    assert first["out"] == _here(FIRST_USES[use])
    assert all(first["empirical"])


def test_the_estimators_are_empirical_covariances():
    """Once scikit-learn is in place: ``EmpiricalCovariance`` subclasses with its methods and scikit-learn's
    parameter constraints (plus ``early_stopping``)."""
    for estimator in (GraphicalLasso(), GraphicalLassoCV()):
        assert isinstance(estimator, skcov.EmpiricalCovariance) and isinstance(estimator, Estimator)
        for name in ("score", "mahalanobis", "error_norm", "get_precision", "_set_covariance"):
            assert getattr(type(estimator), name) is getattr(skcov.EmpiricalCovariance, name)
    assert GraphicalLasso._parameter_constraints == skcov.GraphicalLasso._parameter_constraints
    assert GraphicalLassoCV._parameter_constraints == {
        **skcov.GraphicalLassoCV._parameter_constraints, "early_stopping": ["boolean"]
    }
    model = clone(GraphicalLassoCV(cv=3, early_stopping=False))
    assert model.get_params()["early_stopping"] is False and model.store_precision is True


def test_every_empirical_covariance_method_has_a_placeholder():
    """What ``EmpiricalCovariance`` adds to ``BaseEstimator`` (but ``fit``) is forwarded before first use."""
    from sklearn.base import BaseEstimator

    from brainxr.connectome.sparse_inverse_covariance import _EmpiricalCovariancePlaceholder

    added = {name for name, value in vars(skcov.EmpiricalCovariance).items() if callable(value)} - set(vars(BaseEstimator))
    assert added - {"fit", "__init__"} <= set(vars(_EmpiricalCovariancePlaceholder))


#: candidate values of every parameter: valid and invalid, of every type scikit-learn's constraints name
CANDIDATES = [
    None, True, False, np.True_, 0, 1, 2, 3, -1, -1.0, -2, np.int64(4), 0.0, 1e-4, 0.5, -0.1, np.float64(2.5), np.inf, np.nan,
    "cd", "lars", "precomputed", "x", "cache", [0.1, 0.2], np.array([0.1]), KFold(3),
]


@pytest.mark.parametrize("estimator", [GraphicalLasso, GraphicalLassoCV, GroupSparseCovariance, GroupSparseCovarianceCV])
def test_values_accepted_without_scikit_learn_are_accepted_by_scikit_learn(estimator):
    """The fast checks are narrower than scikit-learn's constraints: what they pass, scikit-learn passes."""
    constraints = estimator._parameter_constraints
    accepted = estimator._accepted_parameters
    assert set(accepted) == set(constraints)
    passed = 0
    for name, check in accepted.items():
        for value in CANDIDATES:
            if check(value):
                passed += 1
                validate_parameter_constraints(constraints, {name: value}, estimator.__name__)
    assert passed > len(accepted)  # every parameter has accepted values


@pytest.mark.parametrize(
    "kwargs", [{"tol": np.inf}, {"alphas": [0.1, 0.01]}, {"cv": KFold(3)}, {"verbose": np.int64(0)}, {"n_jobs": True}]
)
def test_values_only_scikit_learn_accepts_still_fit(kwargs):
    """A valid value the fast checks do not know goes to scikit-learn's validation, which passes it."""
    X = _signals()
    model = GraphicalLassoCV(**kwargs).fit(X)
    assert np.isfinite(model.precision_).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cv": 1}, "'cv' parameter of GraphicalLassoCV must be an int in the range \\[2, inf\\)"),
        ({"cv": True}, "'cv' parameter of GraphicalLassoCV"),
        ({"alphas": -1}, "'alphas' parameter of GraphicalLassoCV"),
        ({"max_iter": 2.5}, "'max_iter' parameter of GraphicalLassoCV"),
        ({"n_jobs": 1.5}, "'n_jobs' parameter of GraphicalLassoCV"),
        ({"verbose": -1}, "'verbose' parameter of GraphicalLassoCV"),
        ({"assume_centered": 1}, "'assume_centered' parameter of GraphicalLassoCV"),
        ({"eps": -1.0}, "'eps' parameter of GraphicalLassoCV"),
    ],
)
def test_bad_parameters_raise_scikit_learns_error_at_fit(kwargs, message):
    model = GraphicalLassoCV(**kwargs)  # no check at construction, as scikit-learn
    with pytest.raises(InvalidParameterError, match=message):
        model.fit(_signals())


@pytest.mark.parametrize("n_samples", [2, 9, 10, 11, 168])
@pytest.mark.parametrize("n_splits", [2, 3, 5])
def test_kfold_gives_scikit_learns_folds(n_samples, n_splits):
    X = np.zeros((n_samples, 2))
    if n_splits > n_samples:
        with pytest.raises(ValueError, match="Cannot have number of splits"):
            list(_KFold(n_splits).split(X))
        return
    ours, theirs = list(_KFold(n_splits).split(X)), list(KFold(n_splits).split(X))
    assert len(ours) == len(theirs) == _KFold(n_splits).get_n_splits()
    for (train, test), (sk_train, sk_test) in zip(ours, theirs):
        np.testing.assert_array_equal(train, sk_train)
        np.testing.assert_array_equal(test, sk_test)


def test_check_cv_is_scikit_learns_choice():
    assert _check_cv(None, None).n_splits == 5 and _check_cv(np.int64(3), None).n_splits == 3
    splitter = ShuffleSplit(4, random_state=0)
    assert _check_cv(splitter, None) is splitter
    folds = _check_cv([(np.arange(5, 10), np.arange(5))], None)
    assert folds.get_n_splits() == 1


@pytest.mark.parametrize("cv", [KFold(5), KFold(3, shuffle=True, random_state=0), ShuffleSplit(4, random_state=0)])
def test_unpenalized_scores_are_cross_val_scores_of_empirical_covariance(cv):
    X = _signals(n_samples=50, seed=1) + 3.0  # off-center: the test folds are centered on the training mean
    np.testing.assert_allclose(
        _empirical_scores(X, cv.split(X)), cross_val_score(skcov.EmpiricalCovariance(), X, cv=cv), rtol=1e-13
    )


def test_dataframes_keep_scikit_learns_feature_names():
    """Inputs other than finite float arrays go through scikit-learn's validate_data."""
    import pandas as pd

    X = _signals()
    frame = pd.DataFrame(X, columns=[f"region {i}" for i in range(X.shape[1])])
    model = GraphicalLasso(alpha=0.1).fit(frame)
    assert list(model.feature_names_in_) == list(frame.columns)
    model.fit(X)  # refitted on an array: the names go, as with scikit-learn
    assert not hasattr(model, "feature_names_in_") and model.n_features_in_ == X.shape[1]
    with pytest.raises(ValueError, match="Input X contains NaN"):
        GraphicalLasso().fit(np.where(X > 2, np.nan, X))
    np.testing.assert_array_equal(GraphicalLasso(alpha=0.1).fit(X.astype(np.float32)).location_,
                                  X.astype(np.float32).mean(0))


@pytest.mark.parametrize("estimator", [GraphicalLasso(), GraphicalLassoCV()], ids=lambda e: type(e).__name__)
def test_scikit_learns_estimator_checks_pass(estimator):
    """scikit-learn's own estimator checks (fit, dtypes, NaN and inf, n_features_in_, pickling, ...)."""
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(estimator, on_fail=None)
    failed = [(result["check_name"], str(result["exception"])) for result in results if result["status"] == "failed"]
    assert len(results) > 30 and failed == []
