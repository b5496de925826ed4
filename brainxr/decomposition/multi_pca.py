"""Multi-subject PCA: the group step of CanICA (nilearn's ``_MultiPCA``)."""

from __future__ import annotations

import numpy as np
from sklearn.utils.extmath import randomized_svd

from brainxr.decomposition.base import BaseDecomposition


class MultiPCA(BaseDecomposition):
    """Principal components of many runs: per-run reduction, then a group PCA.

    Each run is reduced to its ``n_components`` leading temporal components
    (see :class:`BaseDecomposition`); the stacked reductions are (with
    ``do_cca``) scaled to unit norm per row, a canonical correlation analysis
    across runs, and their ``n_components`` leading right singular vectors
    (randomized SVD, 3 power iterations) are the spatial components. As
    ``nilearn.decomposition._MultiPCA`` (0.14), the initialization of CanICA.

    Parameters
    ----------
    n_components : int, default=20
    mask : mask image or masker, optional
    smoothing_fwhm : float, optional
        Gaussian smoothing in mm before masking.
    do_cca : bool, default=True
        Normalize each reduced volume before the group SVD.
    random_state : int, RandomState or None
    standardize : bool or str, default=False
    standardize_confounds : bool, default=True
    detrend : bool, default=False
    low_pass, high_pass, t_r : float, optional
        Band-pass filtering (Hz) and repetition time (s), see
        :func:`brainxr.signal.clean`.
    dtype, target_affine, target_shape, mask_strategy, mask_args
        As for :class:`brainxr.maskers.MultiNiftiMasker` (``mask_strategy``
        defaults to ``"epi"``).
    memory, memory_level
        Accepted for compatibility; nothing is cached.
    n_jobs : int or None, default=None
        Runs reduced at once (None: dask's scheduler decides).
    verbose : int, default=0

    Attributes
    ----------
    components_ : ``(n_components, n_voxels)`` numpy.ndarray
    components_img_ : nibabel.Nifti1Image
        The components as a 4D image.
    variance_ : ``(n_components,)`` numpy.ndarray
        Singular values of the group SVD.
    masker_ : brainxr.maskers.MultiNiftiMasker
    mask_img_ : nibabel.Nifti1Image
    maps_masker_ : brainxr.maskers.NiftiMapsMasker
    n_elements_ : int
    """

    def __init__(
        self,
        n_components=20,
        mask=None,
        smoothing_fwhm=None,
        do_cca=True,
        random_state=None,
        standardize=False,
        standardize_confounds=True,
        detrend=False,
        low_pass=None,
        high_pass=None,
        t_r=None,
        dtype=None,
        target_affine=None,
        target_shape=None,
        mask_strategy="epi",
        mask_args=None,
        memory=None,
        memory_level=0,
        n_jobs=None,
        verbose=0,
    ):
        super().__init__(
            n_components=n_components, random_state=random_state, mask=mask, smoothing_fwhm=smoothing_fwhm,
            standardize=standardize, standardize_confounds=standardize_confounds, detrend=detrend,
            low_pass=low_pass, high_pass=high_pass, t_r=t_r, dtype=dtype, target_affine=target_affine,
            target_shape=target_shape, mask_strategy=mask_strategy, mask_args=mask_args, memory=memory,
            memory_level=memory_level, n_jobs=n_jobs, verbose=verbose,
        )
        self.do_cca = do_cca

    def _raw_fit(self, data: np.ndarray) -> np.ndarray:
        """Group PCA of the stacked reduced runs ``data`` (``(sample, voxel)``).

        ``data`` is scaled in place and scaled back (as nilearn, so the
        caller's array ends with nilearn's rounding). Returns the components
        as ``(voxel, component)``.
        """
        if self.do_cca:
            norms = np.sqrt(np.sum(data**2, axis=1))
            norms[norms == 0] = 1
            data /= norms[:, np.newaxis]
        components, self.variance_, _ = randomized_svd(
            data.T, n_components=self.n_components, transpose=True, random_state=self.random_state, n_iter=3
        )
        if self.do_cca:
            data *= norms[:, np.newaxis]
        self.components_ = components.T
        if hasattr(self, "masker_"):
            self.components_img_ = self.masker_.inverse_transform(components.T)
        return components
