"""Cross-validation folds as scikit-learn's ``check_cv`` gives them, importing scikit-learn only when needed.

``cv=None`` or an int (the default of the sparse covariance estimators)
splits as scikit-learn's ``KFold`` without shuffling, here without importing
scikit-learn (~0.7 s, more than a small cross-validated fit); any other
``cv`` (a splitter, an iterable of folds) goes through scikit-learn's
``check_cv``. A test checks the folds against scikit-learn's.
"""

from __future__ import annotations

import numpy as np

from brainxr._estimator import is_int_at_least, is_none_or

__all__ = ["KFold", "check_cv", "splits_as_kfold"]

#: the ``cv`` values that split as :class:`KFold` (None: 5 folds, an int >= 2: that many)
splits_as_kfold = is_none_or(is_int_at_least(2))


class KFold:
    """scikit-learn's ``KFold(n_splits)`` (no shuffling), ``check_cv``'s splitter for an int or None.

    Without importing scikit-learn (a test checks the folds against
    ``KFold``'s); more splits than samples raise ``KFold``'s error.
    """

    def __init__(self, n_splits):
        self.n_splits = n_splits

    def get_n_splits(self, X=None, y=None, groups=None):
        return self.n_splits

    def split(self, X, y=None, groups=None):
        n_samples = len(X)
        if self.n_splits > n_samples:
            from sklearn.model_selection import KFold as SklearnKFold

            yield from SklearnKFold(self.n_splits).split(X)
            return
        indices = np.arange(n_samples)
        fold_sizes = np.full(self.n_splits, n_samples // self.n_splits, dtype=int)
        fold_sizes[: n_samples % self.n_splits] += 1
        stops = np.cumsum(fold_sizes)
        for start, stop in zip(stops - fold_sizes, stops):
            test = np.zeros(n_samples, dtype=bool)
            test[start:stop] = True
            yield indices[~test], indices[test]


def check_cv(cv, y=None):
    """scikit-learn's ``check_cv(cv, y, classifier=False)``: :class:`KFold` for None (5) or an int."""
    if splits_as_kfold(cv):
        return KFold(5 if cv is None else int(cv))
    from sklearn.model_selection import check_cv as sklearn_check_cv

    return sklearn_check_cv(cv, y, classifier=False)
