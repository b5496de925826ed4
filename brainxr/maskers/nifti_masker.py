"""NiftiMasker: nilearn's whole-brain masker over brainxr's lazy masking."""

from __future__ import annotations

import inspect
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import xarray as xr

from brainxr._docs import fill_doc
from brainxr import masking
from brainxr.dims import TIME_DIM
from brainxr.geometry import get_grid, masked_dataarray
from brainxr.image import resample_img, same_grid
from brainxr.maskers._base import BaseMasker, load_mask_img, resample_mask
from brainxr.maskers._inputs import Run, load_run, masked_values_of

MASK_STRATEGIES = ("background", "epi", "whole-brain-template", "gm-template", "wm-template")


def _brain_mask_function(mask_type: str):
    def compute(img, threshold=0.5, connected=True, opening=2):
        return masking.compute_brain_mask(img, threshold=threshold, connected=connected, opening=opening, mask_type=mask_type)

    return compute


def mask_strategy_function(strategy: str) -> tuple:
    """The mask computation of a NiftiMasker ``mask_strategy``: ``(function, mean_kernel)``.

    ``function`` takes the image (its signature says which ``mask_args`` are
    supported); ``mean_kernel``, for the strategies that need only the mean
    image, is its numpy kernel, given the run's mean (one streaming pass, no
    DataArray of the run), else None.
    """
    functions = {
        "background": (masking.compute_background_mask, masking.background_mask_of_mean),
        "epi": (masking.compute_epi_mask, masking.epi_mask_of_mean),
        "whole-brain-template": (_brain_mask_function("whole-brain"), None),
        "gm-template": (_brain_mask_function("gm"), None),
        "wm-template": (_brain_mask_function("wm"), None),
    }
    if strategy not in functions:
        raise ValueError(
            f"Unknown value of mask_strategy '{strategy}'. Acceptable values are 'background', 'epi', "
            "'whole-brain-template', 'gm-template', and 'wm-template'."
        )
    return functions[strategy]


def supported_mask_args(function, mask_args, strategy: str) -> dict:
    """The ``mask_args`` the mask function takes; a warning lists the others."""
    if not mask_args:
        return {}
    accepted = inspect.signature(function).parameters
    kept = {name: value for name, value in mask_args.items() if name in accepted}
    skipped = [name for name in mask_args if name not in accepted]
    if skipped:
        warnings.warn(f"The following arguments are not supported by the masking strategy '{strategy}': {skipped}", UserWarning, stacklevel=4)
    return kept


@fill_doc
class NiftiMasker(BaseMasker):
    """Apply a brain mask to 4D images: ``(time, voxel)`` signals, cleaned.

    Same parameters, defaults, fitted attributes and results as
    ``nilearn.maskers.NiftiMasker`` (0.14). The mask is given or computed
    (``mask_strategy``: ``"background"``, ``"epi"``, or a template mask).
    Images are smoothed a block of volumes at a time before masking, masked
    as they are read, and cleaned per chunk of voxels.

    Parameters
    ----------
    mask_img : mask image, optional
    runs : array, optional
        Run label of each volume (each run cleaned on its own).
    %(smoothing_fwhm)s
    %(standardize_maskers)s
    %(standardize_confounds)s
    %(detrend_maskers)s
    %(high_variance_confounds)s
    %(low_pass_high_pass)s
    %(t_r_maskers)s
    target_affine, target_shape : optional
        Resample the mask (nearest) and the images (cubic) to this grid.
    mask_strategy : {"background", "epi", "whole-brain-template", "gm-template", "wm-template"}
    mask_args : dict, optional
        Parameters of the mask computation.
    %(dtype)s
    %(memory)s
    %(verbose)s
    %(reports)s
    %(cmap)s
    %(clean_args)s

    Attributes
    ----------
    mask_img_ : nibabel.Nifti1Image
    affine_ : numpy.ndarray
    n_elements_ : int
        Number of voxels in the mask.
    """

    _fitted_attribute = "mask_img_"
    _feature_dim = "voxel"
    _multi = False

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
        memory_level=1,
        verbose=0,
        reports=True,
        cmap="gray",
        clean_args=None,
    ):
        self.mask_img = mask_img
        self.runs = runs
        self.smoothing_fwhm = smoothing_fwhm
        self.standardize = standardize
        self.standardize_confounds = standardize_confounds
        self.detrend = detrend
        self.high_variance_confounds = high_variance_confounds
        self.low_pass = low_pass
        self.high_pass = high_pass
        self.t_r = t_r
        self.target_affine = target_affine
        self.target_shape = target_shape
        self.mask_strategy = mask_strategy
        self.mask_args = mask_args
        self.dtype = dtype
        self.memory = memory
        self.memory_level = memory_level
        self.verbose = verbose
        self.reports = reports
        self.cmap = cmap
        self.clean_args = clean_args

    # -- fit -------------------------------------------------------------
    def fit(self, imgs=None, y=None):
        """Load the mask, or compute it from ``imgs`` with ``mask_strategy``.

        Parameters
        ----------
        imgs : image (or list of runs for MultiNiftiMasker), optional
            Required when no ``mask_img`` is given.
        y : None
            Ignored.
        """
        del y
        self._start_fit()
        mask = load_mask_img(self.mask_img)
        runs = None
        if imgs is not None:
            runs = self._fit_runs(imgs)
        if mask is None:
            if imgs is None:
                raise ValueError(
                    f"Parameter 'imgs' must be provided to {type(self).__name__}.fit() if no mask is passed to mask_img."
                )
            mask = self._compute_mask(runs)
        elif imgs is not None:
            warnings.warn(
                f"[{type(self).__name__}.fit] Generation of a mask has been requested (imgs != None) while a mask "
                "was given at masker creation. Given mask will be used.",
                RuntimeWarning,
                stacklevel=2,
            )
        values, affine = mask
        if self.target_affine is not None or self.target_shape is not None:
            target_affine = np.asarray(self.target_affine if self.target_affine is not None else affine, dtype=np.float64)
            if target_affine.shape != (4, 4) or self.target_shape is None:
                raise ValueError("target_affine and target_shape: brainxr needs both, with a 4x4 target_affine")
            if not same_grid(values.shape, affine, self.target_shape, target_affine):
                values = resample_mask(values, affine, tuple(self.target_shape), target_affine)
                affine = target_affine
        if not values.any():
            raise ValueError("mask_img: the mask is empty (it masks all data)")
        self._mask = (values, affine)
        self.mask_img_ = nib.Nifti1Image(values.astype(np.int8), affine)
        self.affine_ = np.asarray(self.target_affine, dtype=np.float64) if self.target_affine is not None else affine
        self.n_elements_ = int(values.sum())
        self._keep_report_data(runs[0] if runs else None)
        if not runs and self.reports:
            self._report_warnings.append(f"No image provided to fit in {type(self).__name__}. Setting image to mask for reporting.")
        return self

    def _fit_runs(self, imgs) -> list:
        return [load_run(imgs)]

    def _compute_mask(self, runs) -> tuple[np.ndarray, np.ndarray]:
        function, mean_kernel = mask_strategy_function(self.mask_strategy)
        kwargs = supported_mask_args(function, self.mask_args, self.mask_strategy)
        if mean_kernel is not None:
            return mean_kernel(runs[0].mean_values(), **kwargs), runs[0].affine
        mask = function(runs[0].volume, **kwargs)  # template masks: the run's grid only
        return np.asarray(mask.values), get_grid(mask, "mask").affine

    # -- transform ---------------------------------------------------------
    def _transform_run(self, run: Run, confounds, sample_mask):
        from brainxr.maskers._base import _target_dtype

        confounds = self._confounds_with_high_variance(run, confounds)
        mask, mask_affine = self._mask
        volume = None  # the run itself (streamed), unless resampled
        if not same_grid(run.shape, run.affine, mask.shape, mask_affine):
            warnings.warn(
                "imgs are being resampled to the mask_img resolution. This process is memory intensive. You "
                "might want to provide a target_affine that is equal to the affine of the imgs or resample the "
                "mask beforehand to save memory and computation time.",
                UserWarning,
                stacklevel=3,
            )
            volume = resample_img(run.volume, mask_affine, mask.shape, interpolation="continuous", clip=True, name="imgs")
        values = masked_values_of(run, volume, mask, self.smoothing_fwhm)
        # cleaned in place (the masked values are this call's own array): one (time, voxel) array in memory
        signals = self._clean(values, confounds, sample_mask, runs=self.runs, copy=False)
        target = _target_dtype(run.source_dtype, self.dtype)
        if target is not None:
            signals = signals.astype(target)
        return self._format(signals, None, run, sample_mask)

    def _as_dataarray(self, signals, features, times, run: Run) -> xr.DataArray:
        mask, affine = self._mask
        time = {TIME_DIM: (TIME_DIM, times, {} if self.t_r is None else {"t_r": float(self.t_r)})}
        return masked_dataarray(signals, mask, affine, coords=time, attrs={"masker": type(self).__name__})

    def _format(self, signals, features, run, sample_mask):
        if self.output_kind == "pandas":
            return pd.DataFrame(signals, columns=self.get_feature_names_out())
        return super()._format(signals, features, run, sample_mask)

    # -- inverse -----------------------------------------------------------
    def inverse_transform(self, X):
        """Put ``(n_voxels,)`` or ``(time, n_voxels)`` data back in the mask's volume.

        Parameters
        ----------
        X : array-like or xarray.DataArray
            ``(n_voxels,)`` or ``(time, n_voxels)`` values, as ``transform`` gives.

        Returns
        -------
        nibabel.Nifti1Image
            3D or 4D, 0 outside the mask.
        """
        self._check_fitted()
        signals = self._check_signals(X)
        mask, affine = self._mask
        shape = mask.shape + ((signals.shape[0],) if signals.ndim == 2 else ())
        data = np.zeros(shape, dtype=signals.dtype)
        data[mask] = signals.T
        dtype = self._inverse_dtype(signals)
        image = nib.Nifti1Image(data.astype(dtype), affine)
        image.set_data_dtype(dtype)
        return image

    # -- report --------------------------------------------------------------
    def _report_parts(self, **kwargs) -> dict:
        from brainxr.plotting import plot_anat
        from brainxr.plotting.find_cuts import find_xyz_cut_coords

        background = self._report_background()
        cut_coords = find_xyz_cut_coords(self.mask_img_)
        options = {"anat_img": background} if background is not None else {"anat_img": self.mask_img_}
        display = plot_anat(cut_coords=cut_coords, cmap=self.cmap, black_bg=False, **options)
        display.add_contours(self.mask_img_, levels=[0.5], colors="g", linewidths=2.5)
        mask = self._mask[0]
        summary = {"voxels in the mask": self.n_elements_, "coverage of the field of view (%)": round(100 * mask.mean(), 1)}
        return {"figure": display, "summary": summary}
