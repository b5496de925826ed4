"""nilearn-compatible ``ConnectivityMeasure``.

The same class, parameters, attributes and results as
``nilearn.connectome.ConnectivityMeasure`` (0.14), computed with brainxr's
kernels: the per-run estimation of :mod:`brainxr.connectome.estimation` and
the geometric mean of :mod:`brainxr.connectome.tangent`. Input is a list of
``(n_samples, n_features)`` arrays (numpy, or DataArrays whose values are
taken); output is numpy, as in nilearn. For lazy cohorts use
:func:`brainxr.connectome.connectivity` and the group reductions.
"""

from __future__ import annotations

from math import sqrt

import numpy as np
import xarray as xr

from brainxr._estimator import TransformerEstimator
from brainxr.connectome.estimation import (
    KINDS,
    check_kind,
    check_standardize,
    resolve_estimator,
    run_connectivity,
)
from brainxr.connectome.tangent import _fletcher_geometric_mean, _tangent_blocks
from brainxr.connectome.matrices import (
    map_eigenvalues,
    sym_matrix_to_vec,
    vec_to_sym_matrix,
)

__all__ = ["ConnectivityMeasure"]


class ConnectivityMeasure(TransformerEstimator):
    """Functional connectivity matrices of subjects' time series.

    Parameters
    ----------
    cov_estimator : estimator, default=LedoitWolf(store_precision=False)
        Covariance estimator with ``fit(X)`` and ``covariance_`` (also
        accepts the shortcuts ``"ledoit_wolf"`` and ``"empirical"``).
    kind : {"covariance", "correlation", "partial correlation", "tangent", \
            "precision"}, default="covariance"
        The matrix kind.
    vectorize : bool, default=False
        Return the flattened lower triangles (diagonal divided by sqrt(2)).
    discard_diagonal : bool, default=False
        With ``vectorize``, leave the diagonal out.
    standardize : bool or "zscore_sample", default=True
        Z-score each subject's signals (ddof=1) before estimating
        correlations (``kind="correlation"`` only). nilearn 0.14 skips the
        z-scoring when given the string ``"zscore_sample"``, against its own
        documentation; brainxr z-scores for both True and ``"zscore_sample"``.
    verbose : int, default=0
        If positive, report when fitting is done (as nilearn).

    Attributes
    ----------
    cov_estimator_ : estimator
        Clone of ``cov_estimator``.
    mean_ : numpy.ndarray, shape (n_features, n_features)
        Mean connectivity over subjects: the geometric mean of the
        covariances for ``tangent``, the arithmetic mean (symmetrized)
        otherwise.
    whitening_ : numpy.ndarray or None
        ``mean_^-1/2`` for ``tangent``, else None.
    n_features_in_ : int
        Number of regions seen during fit.
    """

    def __init__(
        self,
        cov_estimator=None,
        kind="covariance",
        vectorize=False,
        discard_diagonal=False,
        standardize=True,
        verbose=0,
    ):
        self.cov_estimator = cov_estimator
        self.kind = kind
        self.vectorize = vectorize
        self.discard_diagonal = discard_diagonal
        self.standardize = standardize
        self.verbose = verbose

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "cov_estimator_")

    def _check_subjects(self, X) -> list[np.ndarray]:
        if isinstance(X, (np.ndarray, xr.DataArray)) and X.ndim == 2:
            X = [X]
        if not hasattr(X, "__iter__") or isinstance(X, (str, bytes)):
            raise TypeError(
                "X must be an iterable of (n_samples, n_features) arrays, one "
                f"per subject; got {type(X).__name__}."
            )
        subjects = []
        for index, subject in enumerate(X):
            if isinstance(subject, xr.DataArray):
                if {"time", "region"} <= set(subject.dims):
                    subject = subject.transpose("time", "region")
                subject = subject.values
            if not isinstance(subject, np.ndarray) or subject.ndim != 2:
                raise ValueError(
                    f"Each subject must be a 2D numpy.ndarray (n_samples, "
                    f"n_features); subject {index} is "
                    f"{type(subject).__name__}"
                    + (f" of shape {subject.shape}." if hasattr(subject, "shape") else ".")
                )
            if not np.all(np.isfinite(subject)):
                raise ValueError(
                    f"Subject {index} has NaN or infinite values; clean the "
                    "signals or drop the regions without coverage first."
                )
            subjects.append(subject)
        if not subjects:
            raise ValueError("X is empty; expected at least one subject.")
        n_features = {subject.shape[1] for subject in subjects}
        if len(n_features) > 1:
            raise ValueError(
                "All subjects must have the same number of features; got "
                f"{[subject.shape[1] for subject in subjects]}."
            )
        if self.__sklearn_is_fitted__() and n_features != {self.n_features_in_}:
            raise ValueError(
                f"X has {n_features.pop()} features, but ConnectivityMeasure "
                f"was fitted with {self.n_features_in_} features."
            )
        return subjects

    def _connectivities(self, subjects) -> list[np.ndarray]:
        standardize = check_standardize(self.standardize)
        return [
            run_connectivity(
                subject,
                self.kind,
                self.cov_estimator_,
                standardize,
                run_name=f"subject {index}",
            )
            for index, subject in enumerate(subjects)
        ]

    def _fit_transform(self, X, do_fit=False, do_transform=False, confounds=None):
        subjects = self._check_subjects(X)
        if confounds is not None:
            if not hasattr(confounds, "__iter__"):
                raise TypeError(
                    "'confounds' input argument must be an iterable. "
                    f"You provided {confounds.__class__}"
                )
            if not self.vectorize:
                raise ValueError(
                    "'confounds' are provided but vectorize=False. Confounds "
                    "are only cleaned on vectorized matrices as second level "
                    "connectome regression but not on symmetric matrices."
                )
        if do_fit:
            check_kind(self.kind, KINDS)
            check_standardize(self.standardize)
            self.cov_estimator_ = resolve_estimator(self.cov_estimator)
            self.n_features_in_ = subjects[0].shape[1]
        if do_transform and self.kind == "tangent" and len(subjects) <= 1:
            raise ValueError(
                "Tangent space parametrization can only be applied to a group "
                "of subjects, as it returns deviations to the mean; got "
                f"{len(subjects)} subject."
            )
        connectivities = self._connectivities(subjects)

        if do_fit:
            if self.kind == "tangent":
                stack = np.stack(connectivities)
                names = np.array([f"subject {i}" for i in range(len(stack))], dtype=object)
                self.mean_ = _fletcher_geometric_mean(stack, names, None, 30, 1e-7, None)
                self.whitening_ = map_eigenvalues(lambda x: 1.0 / np.sqrt(x), self.mean_)
            else:
                mean = np.mean(connectivities, axis=0)
                self.mean_ = (mean + mean.T) * 0.5
                self.whitening_ = None
            if self.verbose:
                print("[ConnectivityMeasure.fit] Finished fit", flush=True)

        if not do_transform:
            return None
        connectivities = np.array(connectivities)
        if self.kind == "tangent":
            connectivities = _tangent_blocks(connectivities, whitening=self.whitening_)
        if self.vectorize:
            connectivities = sym_matrix_to_vec(
                connectivities, discard_diagonal=self.discard_diagonal
            )
            if confounds is not None:
                from brainxr.signal import clean

                # second-level regression, as nilearn: signal.clean's defaults
                connectivities = clean(connectivities, confounds=confounds)
        return connectivities

    def fit(self, X, y=None):
        """Fit the covariance estimator to each subject's time series.

        Parameters
        ----------
        X : list of numpy.ndarray, each (n_samples, n_features)
            One array per subject; the number of samples may differ.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        del y
        self._fit_transform(X, do_fit=True)
        return self

    def fit_transform(self, X, y=None, confounds=None):
        """Fit, then return each subject's connectivity.

        Parameters
        ----------
        X : list of numpy.ndarray, each (n_samples, n_features)
        y : None
            Ignored.
        confounds : array-like, shape (n_subjects,) or (n_subjects, \
                n_confounds), optional
            Second-level confounds regressed out of the vectorized
            connectivities (only with ``vectorize=True``), as nilearn does
            with ``signal.clean``.

        Returns
        -------
        numpy.ndarray, shape (n_subjects, n_features, n_features) or \
                (n_subjects, n_edges)
        """
        del y
        return self._fit_transform(X, do_fit=True, do_transform=True, confounds=confounds)

    def transform(self, X, confounds=None):
        """Connectivity of each subject, with the fitted estimator and mean.

        Parameters
        ----------
        X : list of numpy.ndarray, each (n_samples, n_features)
        confounds : array-like, optional
            See :meth:`fit_transform`.

        Returns
        -------
        numpy.ndarray
        """
        self._check_fitted()
        return self._fit_transform(X, do_transform=True, confounds=confounds)

    def inverse_transform(self, connectivities, diagonal=None):
        """Connectivity matrices back from (vectorized) connectivities.

        For ``tangent``, the covariance matrices are reconstructed.

        Parameters
        ----------
        connectivities : array-like, shape (n_subjects, n_features, \
                n_features) or (n_subjects, n_edges)
        diagonal : numpy.ndarray, shape (n_subjects, n_features), optional
            The diagonals, if they were discarded.

        Returns
        -------
        numpy.ndarray, shape (n_subjects, n_features, n_features)
        """
        self._check_fitted()
        connectivities = np.array(connectivities)
        if self.vectorize:
            if self.discard_diagonal and diagonal is None:
                if self.kind in ("correlation", "partial correlation"):
                    diagonal = np.ones(
                        (connectivities.shape[0], self.mean_.shape[0])
                    ) / sqrt(2.0)
                else:
                    raise ValueError(
                        "diagonal values has been discarded and are unknown "
                        f"for {self.kind} kind, cannot reconstruct "
                        "connectivity matrices."
                    )
            connectivities = vec_to_sym_matrix(connectivities, diagonal=diagonal)
        if self.kind == "tangent":
            mean_sqrt = map_eigenvalues(np.sqrt, self.mean_)
            connectivities = np.array(
                [
                    mean_sqrt @ map_eigenvalues(np.exp, displacement) @ mean_sqrt
                    for displacement in connectivities
                ]
            )
        return connectivities
