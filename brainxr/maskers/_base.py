"""What the nilearn-compatible maskers share: cleaning, confounds, output, reports.

The maskers follow nilearn 0.14's order of operations: (resample) ->
smooth -> extract -> :func:`brainxr.signal.clean` (detrend, filter,
confounds, standardize, ``sample_mask``) with the masker's parameters, the
high-variance confounds (computed on the whole image) placed before the
user's confounds.

Differences from nilearn: images are read lazily a block of volumes at a
time and reduced as they are read, so a run is never held in memory whole
(except for ``high_variance_confounds``, which needs every voxel's full time
series, as in nilearn); ``memory`` and ``memory_level`` are accepted for
compatibility but nothing is cached (extraction is cheaper than caching).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from brainxr._estimator import Estimator, constructor_parameters
from brainxr.dims import TIME_DIM
from brainxr.signal.confounds import high_variance_confounds
from brainxr.signal.validation import check_params
from brainxr.maskers._inputs import Run, load_run, load_whole

OUTPUT_KINDS = ("default", "pandas", "xarray")


def _target_dtype(source_dtype, dtype):
    """nilearn's output dtype rule (``get_target_dtype`` and its use in the maskers)."""
    if dtype is None:
        return None
    source_dtype = np.dtype(source_dtype)
    target = (np.int32 if source_dtype.kind == "i" else np.float32) if dtype == "auto" else np.dtype(dtype)
    return source_dtype if target == source_dtype else target


def load_mask_img(mask_img, name: str = "mask_img") -> tuple[np.ndarray, np.ndarray] | None:
    """A binary mask as nilearn's maskers read ``mask_img``: ``(I, J, K)`` bool and affine.

    A 4D mask keeps the voxels set in every volume. Raises a ValueError
    naming ``mask_img`` for an empty mask or one with more than two values.
    """
    if mask_img is None:
        return None
    values, grid = load_whole(mask_img, name)
    values = np.where(np.isfinite(values), values, 0) if values.dtype.kind == "f" else values
    if values.ndim == 4:
        values = values.astype(bool).all(axis=3)
    if values.ndim != 3:
        raise ValueError(f"{name}: expected a 3D mask, got shape {values.shape}")
    unique = np.unique(values)
    if len(unique) > 2 or (len(unique) == 2 and 0 not in unique):
        raise ValueError(f"{name}: a mask must hold 0 and one other value, got the values {unique[:10]}")
    mask = values.astype(bool)
    if not mask.any():
        raise ValueError(f"{name}: the mask is empty (it masks all data)")
    return mask, grid.affine


@functools.cache
def _masker_input_tags_class() -> type:
    """scikit-learn's input tags plus nilearn's (made on first use: scikit-learn is imported then)."""
    from sklearn.utils import InputTags

    @dataclass
    class MaskerInputTags(InputTags):
        """scikit-learn's input tags plus nilearn's: the maskers take NIfTI images (``niimg_like``), not surfaces.

        nilearn's estimator checks read these names to generate their image checks.
        """

        niimg_like: bool = True
        surf_img: bool = False

    MaskerInputTags.__qualname__ = "MaskerInputTags"  # found as this module's attribute (``__getattr__``)
    return MaskerInputTags


def __getattr__(name: str):
    if name == "MaskerInputTags":
        return _masker_input_tags_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class BaseMasker(Estimator):
    """Base class of brainxr's nilearn-compatible maskers (not for direct use)."""

    def __sklearn_tags__(self):
        from sklearn.utils import TransformerTags

        tags = super().__sklearn_tags__()
        tags.estimator_type = "masker"  # nilearn's estimator type of maskers
        tags.input_tags = _masker_input_tags_class()()
        tags.target_tags.required = False
        tags.transformer_tags = TransformerTags()
        return tags

    #: name of the output dim and prefix of feature names
    _feature_dim = "region"
    _fitted_attribute = "mask_img_"

    # -- sklearn plumbing -------------------------------------------------
    def set_output(self, *, transform=None):
        """Choose what ``transform`` returns.

        Parameters
        ----------
        transform : {"default", "pandas", "xarray"} or None
            ``"default"``: numpy arrays (as nilearn); ``"pandas"``: DataFrames
            with the feature names as columns; ``"xarray"``: labeled
            DataArrays (``(time, region)`` with names, labels and centres, or
            ``(time, voxel)`` with grid coordinates for NiftiMasker). None
            keeps the current choice.
        """
        if transform is not None:
            if transform not in OUTPUT_KINDS:
                raise ValueError(f"set_output: transform must be one of {OUTPUT_KINDS}, got {transform!r}")
            self._output_kind = transform
        return self

    @property
    def output_kind(self) -> str:
        return getattr(self, "_output_kind", "default")

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, self._fitted_attribute)

    def _check_dtype(self):
        if self.dtype is bool or self.dtype == "bool":
            raise TypeError("dtype: 'dtype' cannot be bool")

    def _start_fit(self):
        check_params(constructor_parameters(self))
        self._check_dtype()
        self.clean_args_ = {} if self.clean_args is None else dict(self.clean_args)
        self.memory_ = self.memory
        self._report_warnings = []

    # -- transform ----------------------------------------------------------
    def fit_transform(self, imgs, y=None, confounds=None, sample_mask=None):
        """Fit to ``imgs``, then transform them (see :meth:`transform`)."""
        del y
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*Generation of a mask.*")
            self.fit(imgs)
        return self.transform(imgs, confounds=confounds, sample_mask=sample_mask)

    def transform(self, imgs, confounds=None, sample_mask=None):
        """Extract the signals of ``imgs``, then clean them.

        Parameters
        ----------
        imgs : 3D/4D image (path, nibabel image, brainxr DataArray or cohort run Dataset), or a list of 3D images
        confounds : array, DataFrame, path, or a list of those, optional
            ``(time, k)`` confounds regressed out of the signals.
        sample_mask : array of bool or int, optional
            Volumes to keep.

        Returns
        -------
        numpy.ndarray, pandas.DataFrame or xarray.DataArray
            ``(time, n_features)`` signals (1D for a 3D image with the default
            output), see :meth:`set_output`.
        """
        self._check_fitted()
        run = load_run(imgs)
        return self._transform_run(run, confounds, sample_mask)

    def _transform_run(self, run: Run, confounds, sample_mask):
        confounds = self._confounds_with_high_variance(run, confounds)
        signals, features = self._extract(run)
        signals = self._clean(signals, confounds, sample_mask)
        target = _target_dtype(run.source_dtype, self.dtype)
        if target is not None:
            signals = signals.astype(target)
        return self._format(signals, features, run, sample_mask)

    def _confounds_with_high_variance(self, run: Run, confounds):
        if not self.high_variance_confounds:
            return confounds
        everything = np.ones(run.shape, dtype=bool)
        confound_list = [high_variance_confounds(run.masked_values(everything))]
        if confounds is not None:
            confound_list += list(confounds) if isinstance(confounds, list) else [confounds]
        return confound_list

    def _clean(self, signals: np.ndarray, confounds, sample_mask, runs=None, copy=True) -> np.ndarray:
        from brainxr.signal import clean

        return clean(
            signals,
            runs=runs,
            copy=copy,
            detrend=self.detrend,
            standardize=self.standardize,
            standardize_confounds=self.standardize_confounds,
            t_r=self.t_r,
            low_pass=self.low_pass,
            high_pass=self.high_pass,
            confounds=confounds,
            sample_mask=sample_mask,
            **self.clean_args_,
        )

    def _format(self, signals: np.ndarray, features: pd.DataFrame, run: Run, sample_mask):
        kind = self.output_kind
        if kind == "default":
            return signals.squeeze() if run.was_3d else signals
        names = self.get_feature_names_out()
        if kind == "pandas":
            return pd.DataFrame(signals, columns=names)
        times = run.volume[TIME_DIM].values if TIME_DIM in run.volume.coords else np.arange(run.n_volumes, dtype=float)
        if sample_mask is not None:
            keep = np.asarray(sample_mask)
            times = times[keep] if keep.dtype != bool else times[keep.astype(bool)]
        if len(times) != signals.shape[0]:
            times = np.arange(signals.shape[0], dtype=float)
        return self._as_dataarray(signals, features, times, run)

    def _as_dataarray(self, signals, features: pd.DataFrame, times, run: Run) -> xr.DataArray:
        coords = {self._feature_dim: (self._feature_dim, features["region"].to_numpy().astype(str))}
        for column in features.columns:
            if column != "region":
                coords[column] = (self._feature_dim, features[column].to_numpy())
        coords[TIME_DIM] = (TIME_DIM, times, {} if self.t_r is None else {"t_r": float(self.t_r)})
        attrs = {"masker": type(self).__name__}
        return xr.DataArray(signals, dims=(TIME_DIM, self._feature_dim), coords=coords, attrs=attrs)

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns: ``<classname><index>`` (region names for labels maskers)."""
        del input_features
        self._check_fitted()
        prefix = type(self).__name__.lower()
        return np.asarray([f"{prefix}{index}" for index in range(self.n_elements_)], dtype=object)

    # -- inverse transform helpers -------------------------------------
    def _check_signals(self, signals) -> np.ndarray:
        """nilearn's checks of ``inverse_transform`` input: 1D or 2D, right width."""
        if isinstance(signals, xr.DataArray):
            signals = signals.transpose(..., self._feature_dim).values
        elif hasattr(signals, "to_numpy"):
            signals = signals.to_numpy().squeeze()
        signals = np.atleast_1d(np.asarray(signals))
        if signals.ndim > 2:
            raise ValueError(f"signals: expected a 1D or 2D array, got shape {signals.shape}")
        expected = (self.n_elements_,) if signals.ndim == 1 else (signals.shape[0], self.n_elements_)
        if signals.shape != expected:
            raise ValueError(f"Input to 'inverse_transform' has wrong shape.\nExpected {expected}.\nGot {signals.shape}.")
        if signals.dtype == bool:
            target = self.dtype if self.dtype is not None else np.int32
            warnings.warn(f"Casting boolean input to {target}", stacklevel=3)
            signals = signals.astype(target)
        return signals

    def _inverse_dtype(self, signals: np.ndarray):
        target = _target_dtype(signals.dtype, self.dtype)
        return signals.dtype if target is None else target

    # -- reports --------------------------------------------------------
    def _keep_report_data(self, run: Run | None, **extra):
        self._reporting_data = {"run": run, **extra} if self.reports else None

    def _report_background(self):
        """The mean image of the fitted run (computed now, a nibabel image), or None.

        When the run is a file whose mean is not known yet and the masker
        knows which voxels its ``transform`` will read, the one pass over the
        file also gathers them and hands them over to the next ``transform``
        (fit, report, transform: one read).
        """
        data = getattr(self, "_reporting_data", None) or {}
        run = data.get("run")
        if run is None:
            return None
        if run.path is not None and not run._cached_file_mean():
            support = self._transform_support(run)
            if support is not None:
                run.masked_values(support, self.smoothing_fwhm, hand_over=True)
        return run.mean_image()

    def _transform_support(self, run: Run):
        """The voxels ``transform`` reads from ``run`` itself (not resampled), or None if not known."""
        del run
        return None

    def generate_report(self, title: str | None = None, **kwargs):
        """An HTML report of the masker (nilearn's layout).

        Shows the masker's regions (table and figure over the mean image of
        the fitted images, or the template when fit saw no image) and its
        parameters. The report displays in Jupyter and has ``save_as_html``
        and ``open_in_browser``.

        Parameters
        ----------
        title : str, optional
            Default: the class name.
        **kwargs
            ``displayed_maps`` (NiftiMapsMasker) or ``displayed_spheres``
            (NiftiSpheresMasker): how many (int, "all") or which (list).

        Returns
        -------
        brainxr.reporting.HTMLReport
        """
        import matplotlib.pyplot as plt

        from brainxr.reporting.html_report import HTMLReport
        from brainxr.reporting.masker_report import build_masker_report

        title = title or type(self).__name__
        description = (type(self).__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        if not self.__sklearn_is_fitted__() or not getattr(self, "_reporting_data", None):
            report = HTMLReport(title, description)
            reason = "not fitted" if not self.__sklearn_is_fitted__() else "fitted with reports=False"
            report.add_warnings([f"This report was not generated: the masker is {reason}."])
            report.add_table("Parameters", self._report_parameters())
            return report
        with plt.rc_context({"figure.max_open_warning": 0}):
            parts = self._report_parts(**kwargs)
        report = build_masker_report(
            title,
            description,
            regions_table=parts.get("regions_table"),
            parameters=self._report_parameters(),
            figure=parts.get("figure"),
            warnings=[*self._report_warnings, *parts.get("warnings", [])],
            summary=parts.get("summary"),
            n_regions=parts.get("n_regions"),
        )
        for heading, table in parts.get("tables", []):
            report.add_table(heading, table)
        for figure in parts.get("figures", []):
            report.add_figure(None, figure, image_format="png")
        plt.close("all")
        return report

    def _report_parameters(self) -> dict:
        params = {}
        for name, value in constructor_parameters(self).items():
            if hasattr(value, "shape") and hasattr(value, "affine"):
                value = f"{type(value).__name__} of shape {value.shape}"
            elif isinstance(value, xr.DataArray):
                value = f"DataArray {value.dims} {value.shape}"
            params[name] = value
        return params

    def _report_parts(self, **kwargs) -> dict:
        raise NotImplementedError


def check_same_fov(raise_error: bool = False, **grids) -> bool:
    """Whether named ``(shape, affine)`` grids are all the same (nilearn's ``check_same_fov``).

    With ``raise_error``, a ValueError lists each pair of inputs that differ
    and in what (shape or affine).
    """
    from itertools import combinations

    errors = []
    for (name_a, (shape_a, affine_a)), (name_b, (shape_b, affine_b)) in combinations(grids.items(), 2):
        if tuple(shape_a[:3]) != tuple(shape_b[:3]):
            errors.append(f"- {name_a} and {name_b} do not have the same shape ({tuple(shape_a[:3])} vs {tuple(shape_b[:3])})")
        if not np.allclose(affine_a, affine_b):
            errors.append(f"- {name_a} and {name_b} do not have the same affine")
    if errors and raise_error:
        raise ValueError("Following field of view errors were detected:\n" + "\n".join(errors))
    return not errors


def resample_mask(mask: np.ndarray, affine, shape, target_affine) -> np.ndarray:
    """A boolean mask resampled with nearest neighbour onto another grid."""
    from brainxr.image import resample_img
    from brainxr.masking import mask_to_dataarray

    return np.asarray(
        resample_img(mask_to_dataarray(mask, affine), target_affine, shape, interpolation="nearest", name="mask_img").values,
        dtype=bool,
    )
