"""MultiNifti maskers: the single-run maskers applied to a list of runs."""

from __future__ import annotations

import inspect
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from brainxr import masking
from brainxr.geometry import get_grid
from brainxr.maskers._inputs import load_run
from brainxr.maskers.nifti_labels_masker import NiftiLabelsMasker
from brainxr.maskers.nifti_maps_masker import NiftiMapsMasker
from brainxr.maskers.nifti_masker import NiftiMasker, supported_mask_args


def _is_single_image(imgs) -> bool:
    return not isinstance(imgs, (list, tuple))


def n_threads(n_jobs) -> int:
    """Threads for ``n_jobs``, joblib's convention: -1 all cores, -2 all but one, ...; None, 0 and 1 one."""
    if n_jobs is None or n_jobs in (0, 1):
        return 1
    if n_jobs > 0:
        return int(n_jobs)
    return max(1, (os.cpu_count() or 1) + 1 + int(n_jobs))


def map_in_threads(function, items, n_jobs) -> list:
    """``[function(item) for item in items]``, ``n_jobs`` items at a time in threads (in order).

    The runs' work (inflating a file, a masker's reduction) mostly releases the GIL.
    """
    items = list(items)
    threads = min(n_threads(n_jobs), len(items))
    if threads <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(function, items))


def _mean_volumes(runs, n_jobs) -> list:
    """The mean image of each run, ``n_jobs`` runs at a time (a file's is one streaming read, inflated in its own thread)."""
    return map_in_threads(lambda run: run.mean_volume(), runs, n_jobs)


def _per_image(values, name: str, n_images: int) -> list:
    if values is None:
        return [None] * n_images
    if len(values) != n_images:
        raise ValueError(f"number of {name} ({len(values)}) unequal to number of images ({n_images}).")
    return list(values)


class _MultiMixin:
    """Transform a list of runs into a list of signal arrays (one per run)."""

    def fit_transform(self, imgs, y=None, confounds=None, sample_mask=None):
        """Fit to ``imgs``, then transform them (a list of arrays for a list of runs)."""
        del y
        return self.fit(imgs).transform(imgs, confounds=confounds, sample_mask=sample_mask)

    def transform(self, imgs, confounds=None, sample_mask=None):
        """Signals of one run, or of each run of a list.

        Parameters
        ----------
        imgs : image or list of images (runs)
        confounds : list, optional
            One confounds entry per run.
        sample_mask : list, optional
            One volume mask per run.

        Returns
        -------
        array (one run) or list of arrays (a list of runs)
        """
        self._check_fitted()
        if not (confounds is None or isinstance(confounds, list)):
            raise TypeError(f"'confounds' must be a None or a list. Got {type(confounds).__name__}.")
        if not (sample_mask is None or isinstance(sample_mask, list)):
            raise TypeError(f"'sample_mask' must be a None or a list. Got {type(sample_mask).__name__}.")
        if _is_single_image(imgs):
            return super().transform(
                imgs,
                confounds=confounds[0] if isinstance(confounds, list) else confounds,
                sample_mask=sample_mask[0] if isinstance(sample_mask, list) else sample_mask,
            )
        return self.transform_imgs(imgs, confounds=confounds, sample_mask=sample_mask, n_jobs=self.n_jobs)

    def transform_imgs(self, imgs_list, confounds=None, n_jobs=1, sample_mask=None):
        """Signals of each run of ``imgs_list`` (runs processed ``n_jobs`` at a time).

        Returns
        -------
        list of arrays
        """
        self._check_fitted()
        confounds = _per_image(confounds, "confounds", len(imgs_list))
        sample_mask = _per_image(sample_mask, "sample_mask", len(imgs_list))

        def one(position):
            run = load_run(imgs_list[position], name=f"imgs[{position}]")
            return self._transform_run(run, confounds[position], sample_mask[position])

        return map_in_threads(one, range(len(imgs_list)), n_jobs)

    def _first_run(self, imgs):
        if imgs is None:
            return None
        return imgs if _is_single_image(imgs) else imgs[0]


def compute_multi_background_mask(imgs, border_size=2, connected=True, opening=2, threshold=0.5, n_jobs=1):
    """Background masks of each run, then the voxels in more than ``threshold`` of them.

    The runs' mean images are computed ``n_jobs`` runs at a time.
    """
    masks = [
        masking.compute_background_mask(mean, border_size=border_size, connected=connected, opening=opening)
        for mean in _mean_volumes(imgs, n_jobs)
    ]
    return masking.intersect_masks(masks, threshold=threshold, connected=connected)


def compute_multi_epi_mask(
    imgs, lower_cutoff=0.2, upper_cutoff=0.85, connected=True, opening=2, threshold=0.5, exclude_zeros=False, n_jobs=1
):
    """EPI masks of each run, then the voxels in more than ``threshold`` of them.

    Each run's mask needs its mean image only: one streaming pass, kept for the transforms that follow
    (as :class:`NiftiMasker` does for its run); ``n_jobs`` runs are read at a time.
    """
    masks = [
        masking.compute_epi_mask(
            mean, lower_cutoff=lower_cutoff, upper_cutoff=upper_cutoff, connected=connected, opening=opening,
            exclude_zeros=exclude_zeros,
        )
        for mean in _mean_volumes(imgs, n_jobs)
    ]
    return masking.intersect_masks(masks, threshold=threshold, connected=connected)


def _multi_brain_mask(mask_type):
    def compute(imgs, threshold=0.5, connected=True, opening=2):
        return masking.compute_brain_mask(imgs[0].volume, threshold=threshold, connected=connected, opening=opening, mask_type=mask_type)

    return compute


_MULTI_STRATEGIES = {
    "background": compute_multi_background_mask,
    "epi": compute_multi_epi_mask,
    "whole-brain-template": _multi_brain_mask("whole-brain"),
    "gm-template": _multi_brain_mask("gm"),
    "wm-template": _multi_brain_mask("wm"),
}


class MultiNiftiMasker(_MultiMixin, NiftiMasker):
    """NiftiMasker for several runs: one mask for all, one signals array per run.

    As ``nilearn.maskers.MultiNiftiMasker`` (0.14): without ``mask_img`` the
    mask is the intersection (``threshold`` 0.5 of the runs) of per-run
    masks (``"background"``, ``"epi"``) or the template mask on the first
    run's grid; ``transform`` of a list returns a list.

    Parameters
    ----------
    n_jobs : int, default=1
        Runs transformed at the same time.
    mask_img, runs, smoothing_fwhm, standardize, standardize_confounds, detrend
        As for :class:`~brainxr.maskers.NiftiMasker`.
    high_variance_confounds, low_pass, high_pass, t_r, target_affine, target_shape
        As for :class:`~brainxr.maskers.NiftiMasker`.
    mask_strategy, mask_args, dtype, memory, memory_level, verbose, reports, cmap
        As for :class:`~brainxr.maskers.NiftiMasker`.
    clean_args
        As for :class:`~brainxr.maskers.NiftiMasker`.
    """

    _multi = True

    def __init__(
        self,
        mask_img=None,
        runs=None,
        smoothing_fwhm=None,
        standardize=False,
        standardize_confounds=True,
        detrend=False,
        high_variance_confounds=False,
        low_pass=None,
        high_pass=None,
        t_r=None,
        target_affine=None,
        target_shape=None,
        mask_strategy="background",
        mask_args=None,
        dtype=None,
        memory=None,
        memory_level=0,
        n_jobs=1,
        verbose=0,
        reports=True,
        cmap="gray",
        clean_args=None,
    ):
        super().__init__(
            mask_img=mask_img, runs=runs, smoothing_fwhm=smoothing_fwhm, standardize=standardize,
            standardize_confounds=standardize_confounds, detrend=detrend,
            high_variance_confounds=high_variance_confounds, low_pass=low_pass, high_pass=high_pass, t_r=t_r,
            target_affine=target_affine, target_shape=target_shape, mask_strategy=mask_strategy,
            mask_args=mask_args, dtype=dtype, memory=memory, memory_level=memory_level, verbose=verbose,
            reports=reports, cmap=cmap, clean_args=clean_args,
        )
        self.n_jobs = n_jobs

    def _fit_runs(self, imgs) -> list:
        if _is_single_image(imgs):
            return [load_run(imgs)]
        return [load_run(img, name=f"imgs[{position}]") for position, img in enumerate(imgs)]

    def _compute_mask(self, runs):
        if self.mask_strategy not in _MULTI_STRATEGIES:
            raise ValueError(
                f"Unknown value of mask_strategy '{self.mask_strategy}'. Acceptable values are 'background', "
                "'epi', 'whole-brain-template', 'gm-template', and 'wm-template'."
            )
        first = runs[0]
        for position, run in enumerate(runs[1:], start=1):
            if run.shape != first.shape or not np.allclose(run.affine, first.affine):
                raise ValueError(
                    f"imgs[{position}]: shape {run.shape} or affine differs from imgs[0] (shape {first.shape}); "
                    "the runs must share a grid to compute a common mask (pass mask_img, or resample them)"
                )
        function = _MULTI_STRATEGIES[self.mask_strategy]
        arguments = supported_mask_args(function, self.mask_args, self.mask_strategy)
        if "n_jobs" in inspect.signature(function).parameters:
            arguments["n_jobs"] = self.n_jobs  # as nilearn: the runs' masks computed n_jobs at a time
        mask = function(runs, **arguments)
        return np.asarray(mask.values), get_grid(mask, "mask").affine


class MultiNiftiLabelsMasker(_MultiMixin, NiftiLabelsMasker):
    """NiftiLabelsMasker for several runs (``transform`` of a list returns a list).

    Parameters
    ----------
    n_jobs : int, default=1
        Runs transformed at the same time.
    labels_img, labels, lut, background_label, mask_img, smoothing_fwhm, standardize
        As for :class:`~brainxr.maskers.NiftiLabelsMasker`.
    standardize_confounds, high_variance_confounds, detrend, low_pass, high_pass, t_r
        As for :class:`~brainxr.maskers.NiftiLabelsMasker`.
    dtype, resampling_target, memory, memory_level, verbose, strategy
        As for :class:`~brainxr.maskers.NiftiLabelsMasker`.
    keep_masked_labels, reports, cmap, clean_args
        As for :class:`~brainxr.maskers.NiftiLabelsMasker`.
    """

    def __init__(
        self,
        labels_img=None,
        labels=None,
        lut=None,
        background_label=0,
        mask_img=None,
        smoothing_fwhm=None,
        standardize=False,
        standardize_confounds=True,
        high_variance_confounds=False,
        detrend=False,
        low_pass=None,
        high_pass=None,
        t_r=None,
        dtype=None,
        resampling_target="data",
        memory=None,
        memory_level=1,
        n_jobs=1,
        verbose=0,
        strategy="mean",
        keep_masked_labels=False,
        reports=True,
        cmap="CMRmap_r",
        clean_args=None,
    ):
        super().__init__(
            labels_img=labels_img, labels=labels, lut=lut, background_label=background_label, mask_img=mask_img,
            smoothing_fwhm=smoothing_fwhm, standardize=standardize, standardize_confounds=standardize_confounds,
            high_variance_confounds=high_variance_confounds, detrend=detrend, low_pass=low_pass,
            high_pass=high_pass, t_r=t_r, dtype=dtype, resampling_target=resampling_target, memory=memory,
            memory_level=memory_level, verbose=verbose, strategy=strategy, keep_masked_labels=keep_masked_labels,
            reports=reports, cmap=cmap, clean_args=clean_args,
        )
        self.n_jobs = n_jobs

    def fit(self, imgs=None, y=None):
        """Load the labels, resampled to the first run's grid when needed.

        Parameters
        ----------
        imgs : image or list of images (runs), optional
            The runs; the first one's grid is the target.
        y : None
            Ignored.
        """
        return super().fit(self._first_run(imgs), y)


class MultiNiftiMapsMasker(_MultiMixin, NiftiMapsMasker):
    """NiftiMapsMasker for several runs (``transform`` of a list returns a list).

    Parameters
    ----------
    n_jobs : int, default=1
        Runs transformed at the same time.
    maps_img, mask_img, allow_overlap, smoothing_fwhm, standardize
        As for :class:`~brainxr.maskers.NiftiMapsMasker`.
    standardize_confounds, high_variance_confounds, detrend, low_pass, high_pass, t_r
        As for :class:`~brainxr.maskers.NiftiMapsMasker`.
    dtype, resampling_target, keep_masked_maps, memory, memory_level, verbose, reports
        As for :class:`~brainxr.maskers.NiftiMapsMasker`.
    cmap, clean_args
        As for :class:`~brainxr.maskers.NiftiMapsMasker`.
    """

    def __init__(
        self,
        maps_img=None,
        mask_img=None,
        allow_overlap=True,
        smoothing_fwhm=None,
        standardize=False,
        standardize_confounds=True,
        high_variance_confounds=False,
        detrend=False,
        low_pass=None,
        high_pass=None,
        t_r=None,
        dtype=None,
        resampling_target="data",
        keep_masked_maps=False,
        memory=None,
        memory_level=0,
        n_jobs=1,
        verbose=0,
        reports=True,
        cmap="CMRmap_r",
        clean_args=None,
    ):
        super().__init__(
            maps_img=maps_img, mask_img=mask_img, allow_overlap=allow_overlap, smoothing_fwhm=smoothing_fwhm,
            standardize=standardize, standardize_confounds=standardize_confounds,
            high_variance_confounds=high_variance_confounds, detrend=detrend, low_pass=low_pass,
            high_pass=high_pass, t_r=t_r, dtype=dtype, resampling_target=resampling_target,
            keep_masked_maps=keep_masked_maps, memory=memory, memory_level=memory_level, verbose=verbose,
            reports=reports, cmap=cmap, clean_args=clean_args,
        )
        self.n_jobs = n_jobs

    def fit(self, imgs=None, y=None):
        """Load the maps, resampled to the first run's grid when needed.

        Parameters
        ----------
        imgs : image or list of images (runs), optional
            The runs; the first one's grid is the target.
        y : None
            Ignored.
        """
        return super().fit(self._first_run(imgs), y)
