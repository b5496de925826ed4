"""Canonical ICA: independent spatial components of many runs (nilearn's ``CanICA``)."""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.stats import scoreatpercentile
from sklearn.decomposition import fastica
from sklearn.utils import check_random_state

from brainxr.decomposition.multi_pca import MultiPCA


def _check_threshold(threshold, n_components) -> float | None:
    """The ratio of voxels kept by CanICA's ``threshold`` (None: no thresholding)."""
    if threshold is None:
        return None
    if isinstance(threshold, str):
        if threshold != "auto":
            raise ValueError(f"Threshold must be None, 'auto' or float. You provided {threshold}.")
        return 1.0
    if isinstance(threshold, float):
        if threshold > n_components:
            raise ValueError(
                f"Threshold must not be higher than number of maps. Number of maps is {n_components} "
                f"and you provided threshold={threshold}."
            )
        return threshold
    raise ValueError(f"Threshold must be None, 'auto' or float. You provided {threshold}.")


class CanICA(MultiPCA):
    """Canonical Independent Component Analysis of many runs.

    The group PCA of :class:`MultiPCA` (with CCA) is rotated by FastICA
    (``fun="cube"``, arbitrary-variance whitening, ``n_init`` restarts, the
    sparsest result kept), the maps are thresholded to keep about
    ``threshold`` x n_voxels non-zero voxels in all, and each map's peak is
    made positive. As ``nilearn.decomposition.CanICA`` (0.14); the per-run
    reduction runs as a lazy graph, one task per run.

    Parameters
    ----------
    mask : mask image or masker, optional
    n_components : int, default=20
    smoothing_fwhm : float, default=6
        Gaussian smoothing in mm before masking.
    do_cca : bool, default=True
    threshold : None, "auto" or float, default="auto"
        None: no thresholding; "auto": keep n_voxels non-zero voxels over all
        maps; a float ``r`` in [0, n_components]: keep ``r`` x n_voxels.
    n_init : int, default=10
        FastICA restarts.
    random_state : int, RandomState or None
    standardize : bool or str, default=True
    standardize_confounds : bool, default=True
    detrend : bool, default=True
    low_pass, high_pass, t_r, dtype, target_affine, target_shape
        As for :class:`MultiPCA`.
    mask_strategy, mask_args, memory, memory_level, n_jobs, verbose
        As for :class:`MultiPCA`.

    Attributes
    ----------
    components_ : ``(n_components, n_voxels)`` numpy.ndarray
    components_img_ : nibabel.Nifti1Image
    variance_ : ``(n_components,)`` numpy.ndarray
    masker_, mask_img_, maps_masker_, n_elements_
        As for :class:`MultiPCA`.
    """

    def __init__(
        self,
        mask=None,
        n_components=20,
        smoothing_fwhm=6,
        do_cca=True,
        threshold="auto",
        n_init=10,
        random_state=None,
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
        memory=None,
        memory_level=0,
        n_jobs=None,
        verbose=0,
    ):
        super().__init__(
            n_components=n_components, mask=mask, smoothing_fwhm=smoothing_fwhm, do_cca=do_cca,
            random_state=random_state, standardize=standardize, standardize_confounds=standardize_confounds,
            detrend=detrend, low_pass=low_pass, high_pass=high_pass, t_r=t_r, dtype=dtype,
            target_affine=target_affine, target_shape=target_shape, mask_strategy=mask_strategy,
            mask_args=mask_args, memory=memory, memory_level=memory_level, n_jobs=n_jobs, verbose=verbose,
        )
        self.threshold = threshold
        self.n_init = n_init

    def _check_parameters(self) -> None:
        super()._check_parameters()
        _check_threshold(self.threshold, self.n_components)
        if isinstance(self.n_init, bool) or not isinstance(self.n_init, (int, np.integer)) or self.n_init < 1:
            raise ValueError(f"n_init must be a positive integer, got {self.n_init!r}")

    def _unmix_components(self, components: np.ndarray) -> None:
        """FastICA rotation of the group PCA, thresholding and sign flips."""
        random_state = check_random_state(self.random_state)
        seeds = random_state.randint(np.iinfo(np.int32).max, size=self.n_init)
        # FastICA is unstable in float32: nilearn runs it in float64 too
        components64 = components.astype(np.float64)

        def unmix(seed):
            return fastica(components64, whiten="arbitrary-variance", fun="cube", random_state=seed)[2].T

        workers = 1 if self.n_jobs in (None, 1) else (self.n_jobs if self.n_jobs > 0 else None)
        if workers == 1 or self.n_init == 1:
            results = [unmix(seed) for seed in seeds]
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                results = list(pool.map(unmix, seeds))
        # the sparsest solution: smallest maximal L1 norm over components
        ica_maps = min(results, key=lambda maps: np.sum(np.abs(maps), axis=1).max())

        ratio = _check_threshold(self.threshold, self.n_components)
        if ratio is not None:
            abs_maps = np.abs(ica_maps)
            percentile = 100.0 - (100.0 / len(ica_maps)) * ratio
            if percentile <= 0:
                warnings.warn(
                    f"The decomposition obtained a critical threshold (= {percentile} percentile).\n"
                    "No threshold will be applied. Threshold should be decreased or number of components "
                    "should be adjusted.",
                    UserWarning,
                    stacklevel=4,
                )
            else:
                cutoff = scoreatpercentile(abs_maps, percentile)
                ica_maps[abs_maps < cutoff] = 0.0
        self.components_ = ica_maps.astype(self.components_.dtype)
        for component in self.components_:
            if component.max() < -component.min():
                component *= -1
        if hasattr(self, "masker_"):
            self.components_img_ = self.masker_.inverse_transform(self.components_)

    def _raw_fit(self, data: np.ndarray):
        """Group PCA then ICA of the stacked reduced runs ``data`` (``(sample, voxel)``)."""
        _check_threshold(self.threshold, self.n_components)
        components = MultiPCA._raw_fit(self, data)
        self._unmix_components(components)
        return self
