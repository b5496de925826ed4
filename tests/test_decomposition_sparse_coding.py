"""brainxr.decomposition.sparse_coding.lasso_code against scikit-learn's sparse_encode(algorithm="lasso_cd").

The compiled solver runs scikit-learn's coordinate descent step for step in
float64: on float64 data the codes equal scikit-learn's to rounding (1e-10);
on float32 data scikit-learn works in float32 and stops at its float32
precision, so codes agree within 1e-3 of their largest magnitude.
"""

import numpy as np
import pytest
from sklearn.decomposition import sparse_encode
from sklearn.exceptions import ConvergenceWarning

from brainxr.decomposition.sparse_coding import lasso_code


def _problem(n_components, n_features, n_samples, dtype, seed=0):
    rng = np.random.default_rng(seed)
    dictionary = rng.standard_normal((n_components, n_features))
    dictionary /= np.linalg.norm(dictionary, axis=1, keepdims=True)
    codes = rng.standard_normal((n_samples, n_components)) * (rng.random((n_samples, n_components)) < 0.3) * 5
    data = codes @ dictionary + rng.standard_normal((n_samples, n_features))
    return data.astype(dtype), dictionary.astype(dtype)


@pytest.mark.parametrize("n_components, n_features, alpha", [(5, 30, 10.0), (12, 80, 1.0), (20, 40, 0.1)])
@pytest.mark.parametrize("positive", [False, True])
def test_equals_scikit_learn_in_float64(n_components, n_features, alpha, positive):
    data, dictionary = _problem(n_components, n_features, 3000, np.float64)
    expected = sparse_encode(data, dictionary, algorithm="lasso_cd", alpha=alpha, max_iter=1000, positive=positive)
    code = lasso_code(data, dictionary, alpha, positive=positive)
    assert code.dtype == np.float64 and code.shape == expected.shape
    np.testing.assert_allclose(code, expected, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(code == 0, expected == 0)
    if positive:
        assert code.min() >= 0


def test_close_to_scikit_learn_in_float32():
    data, dictionary = _problem(8, 40, 3000, np.float32)
    with pytest.warns(ConvergenceWarning):  # scikit-learn's float32 solver cannot reach tol=1e-8
        expected = sparse_encode(data, dictionary, algorithm="lasso_cd", alpha=1.0, max_iter=1000)
    code = lasso_code(data, dictionary, 1.0)
    assert code.dtype == np.float32
    np.testing.assert_allclose(code, expected, rtol=0, atol=1e-3 * np.abs(expected).max())
    # the float64 solution scikit-learn would reach with exact arithmetic
    reference = sparse_encode(data.astype(np.float64), dictionary.astype(np.float64), algorithm="lasso_cd", alpha=1.0)
    np.testing.assert_allclose(code, reference, rtol=0, atol=1e-6 * np.abs(reference).max())


def test_non_convergence_is_reported():
    data, dictionary = _problem(10, 30, 200, np.float64)
    with pytest.warns(ConvergenceWarning, match="did not converge for"):
        lasso_code(data, dictionary, 0.01, max_iter=1)


def test_bad_input():
    data, dictionary = _problem(4, 10, 20, np.float64)
    with pytest.raises(ValueError, match="same number of features"):
        lasso_code(data, dictionary[:, :5], 1.0)
    with pytest.raises(ValueError, match="alpha must be positive"):
        lasso_code(data, dictionary, 0.0)
