"""Dictionary learning of sparse spatial maps over many runs (nilearn's ``DictLearning``)."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.decomposition import MiniBatchDictionaryLearning
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge

from brainxr.decomposition.base import BaseDecomposition
from brainxr.decomposition.canica import CanICA
from brainxr.decomposition.reduction import check_reduction_ratio
from brainxr.decomposition.sparse_coding import lasso_code

METHODS = ("cd", "lars")


def initial_loadings(components: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Time courses of ``components`` in ``data``: ridge fit, then unit-norm columns.

    Parameters
    ----------
    components : ``(component, voxel)``
    data : ``(sample, voxel)``

    Returns
    -------
    ``(sample, component)`` numpy.ndarray, each column of unit L2 norm.
    """
    ridge = Ridge(fit_intercept=False, alpha=1e-8)
    ridge.fit(components.T, np.asarray(data.T))
    loadings = ridge.coef_.T
    norms = np.sqrt(np.sum(loadings**2, axis=0))
    norms[norms == 0] = 1
    loadings /= norms[np.newaxis, :]
    return loadings


class DictLearning(BaseDecomposition):
    """Sparse spatial maps of many runs by online dictionary learning.

    Each run is reduced in time (a lazy graph, one task per run); on the
    stacked reductions, CanICA (one FastICA run, no thresholding) gives the
    initial maps, a ridge fit their time courses, and scikit-learn's online
    dictionary learning learns a dense temporal dictionary with sparse
    spatial codes (the L1 penalty ``alpha`` on the maps). The maps are scaled
    to unit norm and signed so that most of their voxels are positive. As
    ``nilearn.decomposition.DictLearning`` (0.14), step for step; the final
    coding of every voxel on the learned dictionary (``method="cd"``) runs
    scikit-learn's coordinate descent in one compiled parallel loop instead
    of one ``Lasso`` fit per voxel (:func:`~brainxr.decomposition.sparse_coding.lasso_code`).

    Parameters
    ----------
    n_components : int, default=20
    n_epochs : float, default=1
        Epochs over the voxels (sets the number of mini-batches).
    alpha : float, default=10
        Sparsity of the maps.
    reduction_ratio : "auto" or float in [0, 1], default="auto"
        Temporal reduction of each run: "auto" keeps ``n_components``
        components per run, a ratio keeps that fraction of its volumes.
        (nilearn 0.14 accepts this parameter but always uses "auto".)
    dict_init : image, optional
        Initial maps (4D, on the mask's grid); CanICA's when None.
    random_state : int, RandomState or None
    batch_size : int, default=20
        Voxels per mini-batch.
    method : {"cd", "lars"}, default="cd"
        Lasso solver: coordinate descent or least-angle regression.
    mask : mask image or masker, optional
    smoothing_fwhm : float, default=4
        Gaussian smoothing in mm before masking.
    standardize : bool or str, default=True
    standardize_confounds : bool, default=True
    detrend : bool, default=True
    low_pass, high_pass, t_r : float, optional
    dtype, target_affine, target_shape, mask_strategy, mask_args
        As for :class:`brainxr.maskers.MultiNiftiMasker` (``mask_strategy``
        defaults to ``"epi"``).
    n_jobs : int or None, default=None
        Runs reduced at once (None: dask's scheduler decides).
    verbose : int, default=0
    memory, memory_level
        Accepted for compatibility; nothing is cached.

    Attributes
    ----------
    components_ : ``(n_components, n_voxels)`` numpy.ndarray
        Unit-norm sparse maps.
    components_img_ : nibabel.Nifti1Image
        The maps as a 4D image.
    components_init_ : ``(n_components, n_voxels)`` numpy.ndarray
        Initial maps.
    loadings_init_ : ``(n_components, n_samples)`` numpy.ndarray
        Initial dictionary (time courses of the initial maps).
    masker_ : brainxr.maskers.MultiNiftiMasker
    mask_img_ : nibabel.Nifti1Image
    maps_masker_ : brainxr.maskers.NiftiMapsMasker
    n_elements_ : int

    Examples
    --------
    >>> from brainxr.decomposition import DictLearning
    >>> dict_learn = DictLearning(n_components=5, smoothing_fwhm=6.0, random_state=0)
    >>> dict_learn.fit(func_filenames)  # doctest: +SKIP
    >>> components_img = dict_learn.components_img_  # doctest: +SKIP
    """

    def __init__(
        self,
        n_components=20,
        n_epochs=1,
        alpha=10,
        reduction_ratio="auto",
        dict_init=None,
        random_state=None,
        batch_size=20,
        method="cd",
        mask=None,
        smoothing_fwhm=4,
        standardize=True,
        standardize_confounds=True,
        detrend=True,
        low_pass=None,
        high_pass=None,
        t_r=None,
        dtype=None,
        target_affine=None,
        target_shape=None,
        mask_strategy="epi",
        mask_args=None,
        n_jobs=None,
        verbose=0,
        memory=None,
        memory_level=0,
    ):
        super().__init__(
            n_components=n_components, random_state=random_state, mask=mask, smoothing_fwhm=smoothing_fwhm,
            standardize=standardize, standardize_confounds=standardize_confounds, detrend=detrend,
            low_pass=low_pass, high_pass=high_pass, t_r=t_r, dtype=dtype, target_affine=target_affine,
            target_shape=target_shape, mask_strategy=mask_strategy, mask_args=mask_args, memory=memory,
            memory_level=memory_level, n_jobs=n_jobs, verbose=verbose,
        )
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.method = method
        self.alpha = alpha
        self.reduction_ratio = reduction_ratio
        self.dict_init = dict_init

    def _check_parameters(self) -> None:
        super()._check_parameters()
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, numbers.Integral) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if not isinstance(self.n_epochs, numbers.Real) or self.n_epochs <= 0:
            raise ValueError(f"n_epochs must be a positive number, got {self.n_epochs!r}")
        if not isinstance(self.alpha, numbers.Real) or self.alpha < 0:
            raise ValueError(f"alpha must be a non-negative number, got {self.alpha!r}")
        check_reduction_ratio(self.reduction_ratio, self.n_components)

    def _reduction_ratio(self):
        return self.reduction_ratio

    def _init_dict(self, data: np.ndarray) -> None:
        if self.dict_init is not None:
            components = np.asarray(self.masker_.transform(self.dict_init), dtype=data.dtype)
            components = np.atleast_2d(components)
            if components.shape[0] != self.n_components:
                raise ValueError(
                    f"dict_init: expected {self.n_components} maps (n_components), got {components.shape[0]}"
                )
        else:
            canica = CanICA(
                n_components=self.n_components, do_cca=True, threshold=float(self.n_components), n_init=1,
                random_state=self.random_state, n_jobs=self.n_jobs, verbose=self.verbose,
            )
            with warnings.catch_warnings():
                # the threshold keeps every voxel, which CanICA reports as a critical threshold
                warnings.simplefilter("ignore", UserWarning)
                canica._raw_fit(data)
            components = canica.components_
        # nilearn divides by the squared norm (not the norm): kept for equal results
        squared_norms = (components**2).sum(axis=1)
        squared_norms[squared_norms == 0] = 1
        components /= squared_norms[:, np.newaxis]
        self.components_init_ = components

    def _raw_fit(self, data: np.ndarray):
        """Dictionary learning on the stacked reduced runs ``data`` (``(sample, voxel)``)."""
        self._init_dict(data)
        n_voxels = data.shape[1]
        self.loadings_init_ = initial_loadings(self.components_init_, data)
        # nilearn's count of mini-batches over voxels, passed as scikit-learn's max_iter
        max_iter = ((n_voxels - 1) // self.batch_size + 1) * self.n_epochs
        learner = MiniBatchDictionaryLearning(
            n_components=self.n_components, alpha=self.alpha, max_iter=max_iter, n_jobs=1,
            fit_algorithm=self.method, batch_size=self.batch_size, shuffle=True, dict_init=self.loadings_init_,
            random_state=self.random_state, transform_algorithm="lasso_" + self.method, transform_alpha=self.alpha,
            transform_max_iter=1000, verbose=max(0, self.verbose - 1),
        )
        with warnings.catch_warnings():
            # the mini-batch Lasso steps run in float32 and often stop short of scikit-learn's 1e-8 tolerance,
            # one warning per voxel of each batch; the final coding below reports its own convergence
            warnings.simplefilter("ignore", ConvergenceWarning)
            learner.fit(data.T)
        if self.method == "cd":
            # scikit-learn's coordinate-descent coding of every voxel, in one compiled parallel loop
            code = lasso_code(data.T, learner.components_, alpha=self.alpha, max_iter=1000)
        else:
            code = learner.transform(data.T)
        self.components_ = code.T
        norms = np.sqrt(np.sum(self.components_**2, axis=1))
        norms[norms == 0] = 1
        self.components_ /= norms[:, np.newaxis]
        # most voxels positive: looks more like a network map than a positive peak does
        for component in self.components_:
            if np.sum(component > 0) < np.sum(component < 0):
                component *= -1
        if hasattr(self, "masker_"):
            self.components_img_ = self.masker_.inverse_transform(self.components_)
        return self
