"""NiftiMapsMasker: nilearn's maps masker over brainxr's least-squares reduction."""

from __future__ import annotations

import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import xarray as xr

from brainxr._docs import fill_doc
from brainxr.dims import SPATIAL_DIMS
from brainxr.geometry import Grid, with_grid
from brainxr.image import resample_img, same_grid
from brainxr.maskers._base import BaseMasker, check_same_fov, load_mask_img, resample_mask
from brainxr.maskers._inputs import Run, load_run, load_whole, masked_values_of
from brainxr.regions.maps import project_maps

RESAMPLING_TARGETS = ("mask", "maps", "data", None)


def _resample_maps(maps: np.ndarray, affine, shape, target_affine) -> np.ndarray:
    source = with_grid(xr.DataArray(maps, dims=SPATIAL_DIMS + ("map",)), Grid(maps.shape[:3], affine))
    resampled = np.asarray(resample_img(source, target_affine, shape, interpolation="linear", name="maps_img").values)
    if np.all(resampled == 0):
        raise ValueError("No map left after resampling maps_img.")
    return resampled


@fill_doc
class NiftiMapsMasker(BaseMasker):
    """Extract the signals of (possibly overlapping) probabilistic maps.

    Same parameters, defaults, fitted attributes and results as
    ``nilearn.maskers.NiftiMapsMasker`` (0.14): the signals are the
    unregularized least-squares fit of the maps to each volume, within the
    mask. The Gram matrix of the maps is formed once; the data pass is one
    product per block of volumes.

    Parameters
    ----------
    maps_img : path, nibabel image or DataArray
        4D image, one map per volume.
    mask_img : mask image, optional
    allow_overlap : bool, default=True
        If False, maps that overlap raise a ValueError.
    %(smoothing_fwhm)s
    %(standardize_maskers)s
    %(standardize_confounds)s
    %(high_variance_confounds)s
    %(detrend_maskers)s
    %(low_pass_high_pass)s
    %(t_r_maskers)s
    %(dtype)s
    resampling_target : {"data", "mask", "maps", None}, default="data"
        The grid of the extraction; the maps are resampled linearly, the
        images with cubic interpolation, the mask with nearest neighbour.
    keep_masked_maps : bool, default=False
        Deprecated in nilearn: keep (as zeros) the maps outside the mask.
    %(memory)s
    %(verbose)s
    %(reports)s
    %(cmap)s
    %(clean_args)s

    Attributes
    ----------
    maps_img_ : nibabel.Nifti1Image
    mask_img_ : nibabel.Nifti1Image or None
    n_elements_ : int
        Number of maps.
    """

    _fitted_attribute = "maps_img_"

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
        verbose=0,
        reports=True,
        cmap="CMRmap_r",
        clean_args=None,
    ):
        self.maps_img = maps_img
        self.mask_img = mask_img
        self.allow_overlap = allow_overlap
        self.smoothing_fwhm = smoothing_fwhm
        self.standardize = standardize
        self.standardize_confounds = standardize_confounds
        self.high_variance_confounds = high_variance_confounds
        self.detrend = detrend
        self.low_pass = low_pass
        self.high_pass = high_pass
        self.t_r = t_r
        self.dtype = dtype
        self.resampling_target = resampling_target
        self.keep_masked_maps = keep_masked_maps
        self.memory = memory
        self.memory_level = memory_level
        self.verbose = verbose
        self.reports = reports
        self.cmap = cmap
        self.clean_args = clean_args

    def fit(self, imgs=None, y=None):
        """Load the maps (and mask), resampled to the target grid.

        Parameters
        ----------
        imgs : image, optional
            Data whose grid is the target (``resampling_target="data"``).
        y : None
            Ignored.
        """
        del y
        self._start_fit()
        if self.resampling_target not in RESAMPLING_TARGETS:
            raise ValueError(f"resampling_target must be one of {RESAMPLING_TARGETS}, got {self.resampling_target!r}")
        if self.mask_img is None and self.resampling_target == "mask":
            raise ValueError(
                "resampling_target has been set to 'mask' but no mask has been provided.\n"
                "Set resampling_target to something else or provide a mask."
            )
        if self.maps_img is None:
            raise ValueError("maps_img: a 4D maps image is required")
        mask = load_mask_img(self.mask_img)
        maps, grid = load_whole(self.maps_img, "maps_img")
        if maps.ndim == 3:
            maps = maps[..., None]
        if maps.ndim != 4:
            raise ValueError(f"maps_img: expected a 4D image (one map per volume), got shape {maps.shape}")
        if maps.dtype.kind != "f":
            maps = maps.astype(np.float64)
        maps = np.where(np.isfinite(maps), maps, 0).astype(maps.dtype, copy=False)
        affine = grid.affine

        run = load_run(imgs) if imgs is not None else None
        if self.resampling_target is None:
            grids = {"maps": (maps.shape, affine)}
            if mask is not None:
                grids["mask"] = (mask[0].shape, mask[1])
            if run is not None:
                grids["data"] = (run.shape, run.affine)
            check_same_fov(raise_error=True, **grids)
        reference = None
        if self.resampling_target == "data" and run is not None:
            reference = (run.shape, run.affine)
        elif self.resampling_target == "mask":
            reference = (mask[0].shape, mask[1])
        elif self.resampling_target == "maps":
            reference = (maps.shape[:3], affine)
        if reference is not None:
            if self.resampling_target != "maps" and not same_grid(reference[0], reference[1], maps.shape, affine):
                maps = _resample_maps(maps, affine, reference[0], reference[1])
                affine = reference[1]
            if mask is not None and not same_grid(reference[0], reference[1], mask[0].shape, mask[1]):
                mask = (resample_mask(mask[0], mask[1], reference[0], reference[1]), reference[1])
        if np.all(maps == 0):
            raise ValueError("maps_img contains no map.")
        if mask is not None and reference is not None and np.all(maps[mask[0]] == 0):
            raise ValueError("No map left after applying mask to the maps image.")

        self._maps = maps
        self.maps_img_ = nib.Nifti1Image(maps, affine)
        self._mask = mask
        self.mask_img_ = None if mask is None else nib.Nifti1Image(mask[0].astype(np.int8), mask[1])
        self.n_elements_ = maps.shape[3]
        self._keep_report_data(run)
        if run is None and self.reports:
            self._report_warnings.append(
                f"No image provided to fit in {type(self).__name__}. Plotting only spatial maps for reporting."
            )
        return self

    def _extract(self, run: Run):
        volume = None  # the run itself (streamed), unless resampled
        maps, affine, mask = self._maps, np.asarray(self.maps_img_.affine), self._mask
        if self.resampling_target is None:
            grids = {"maps": (maps.shape, affine), "data": (run.shape, run.affine)}
            if mask is not None:
                grids["mask"] = (mask[0].shape, mask[1])
            check_same_fov(raise_error=True, **grids)
        elif self.resampling_target == "data":
            if not same_grid(run.shape, run.affine, maps.shape, affine):
                warnings.warn(
                    "Resampling maps at transform time...\nTo avoid this warning, make sure to pass the images "
                    "you want to transform to fit() first, or directly use fit_transform().",
                    UserWarning,
                    stacklevel=3,
                )
                maps = _resample_maps(maps, affine, run.shape, run.affine)
                affine = run.affine
            if mask is not None and not same_grid(run.shape, run.affine, mask[0].shape, mask[1]):
                warnings.warn(
                    "Resampling mask at transform time...\nTo avoid this warning, make sure to pass the images "
                    "you want to transform to fit() first, or directly use fit_transform().",
                    UserWarning,
                    stacklevel=3,
                )
                mask = (resample_mask(mask[0], mask[1], run.shape, run.affine), run.affine)
        elif not same_grid(maps.shape, affine, run.shape, run.affine):
            if self.resampling_target == "maps":
                warnings.warn(
                    "Resampling images at transform time...\nTo avoid this warning, make sure to resample the "
                    "images you want to transform to the shape of the maps or set resampling_target to 'data'.",
                    UserWarning,
                    stacklevel=3,
                )
        if not self.allow_overlap:
            positive = np.where(maps < np.finfo(maps.dtype).eps, 0.0, maps) if maps.dtype.kind == "f" else maps
            if np.any(np.sum(positive > 0.0, axis=3) > 1):
                raise ValueError(
                    "Overlap detected in the maps. The overlap may be due to the atlas itself or possibly "
                    "introduced by resampling."
                )
        if self.resampling_target != "data" and not same_grid(maps.shape, affine, run.shape, run.affine):
            volume = resample_img(run.volume, affine, maps.shape[:3], interpolation="continuous", clip=True, name="imgs")
        kept = np.arange(maps.shape[3])
        support = np.ones(maps.shape[:3], dtype=bool)
        if mask is not None:
            in_mask = np.abs(maps[mask[0]]).sum(axis=0)
            if not self.keep_masked_maps:
                kept = np.flatnonzero(in_mask > 0)
                if len(kept) == 0:
                    raise ValueError("No map left after applying mask to the maps image.")
                if len(kept) < maps.shape[3]:
                    removed = set(np.setdiff1d(np.arange(maps.shape[3]), kept).tolist())
                    warnings.warn(
                        f"After applying mask to the maps image, maps with the following indices were removed: "
                        f"{removed}. Out of {maps.shape[3]} maps, the masked map image only contains "
                        f"{len(kept)} maps.",
                        UserWarning,
                        stacklevel=3,
                    )
            support = mask[0]
        support = support & np.any(maps[..., kept] != 0, axis=3)
        data = masked_values_of(run, volume, support, self.smoothing_fwhm)
        from scipy import sparse

        weights = sparse.csr_matrix(maps[support][:, kept].astype(np.float64))
        signals, _ = project_maps(data, weights, ensure_finite=True)
        out_dtype = np.result_type(maps.dtype, data.dtype if data.dtype.kind == "f" else np.float64)
        signals = np.asarray(signals).astype(out_dtype)
        features = pd.DataFrame({"region": [str(index) for index in kept], "label": kept})
        return signals, features

    def inverse_transform(self, region_signals):
        """Voxel signals from map signals (nilearn's ``signals_to_img_maps``).

        Parameters
        ----------
        region_signals : array-like or xarray.DataArray
            ``(n_maps,)`` or ``(time, n_maps)`` signals, as ``transform`` gives.

        Returns
        -------
        nibabel.Nifti1Image
            On the grid of ``maps_img_``, 0 outside the mask.
        """
        self._check_fitted()
        signals = self._check_signals(region_signals)
        maps = self._maps
        if self._mask is not None:
            maps = maps * self._mask[0][..., None]
        data = np.tensordot(maps, np.atleast_2d(signals), axes=([3], [1]))
        if signals.ndim == 1:
            data = data[..., 0]
        dtype = self._inverse_dtype(signals)
        image = nib.Nifti1Image(data.astype(dtype), self.maps_img_.affine)
        image.set_data_dtype(dtype)
        return image

    def _report_parts(self, displayed_maps=10, **kwargs) -> dict:
        from brainxr.plotting import plot_stat_map

        n_maps = self._maps.shape[3]
        displayed, warnings_list = _displayed(displayed_maps, n_maps, "map")
        background = self._report_background()
        options = {} if background is None else {"bg_img": background}
        figures = []
        for index in displayed:
            single = nib.Nifti1Image(self._maps[..., index], self.maps_img_.affine)
            figures.append(plot_stat_map(single, title=f"map {index}", colorbar=False, **options))
        summary = {"number of maps": n_maps, "displayed maps": ", ".join(map(str, displayed))}
        return {"figures": figures, "warnings": warnings_list, "summary": summary}


def _displayed(displayed, n_items: int, kind: str) -> tuple[list, list]:
    """Which items a report shows (nilearn's ``displayed_maps`` rules) and its warnings."""
    messages = []
    if isinstance(displayed, str):
        if displayed != "all":
            raise TypeError(f"displayed_{kind}s: expected 'all', a positive int or a list of ints, got {displayed!r}")
        displayed = n_items
    if isinstance(displayed, (int, np.integer)) and not isinstance(displayed, bool):
        if displayed > n_items:
            messages.append(
                f"`generate_report()` received 'displayed_{kind}s={displayed}' to be displayed. But masker only has "
                f"{n_items} {kind}(s). 'displayed_{kind}s' was set to {n_items}."
            )
            displayed = n_items
        return list(range(int(displayed))), messages
    displayed = np.asarray(displayed).tolist() if isinstance(displayed, np.ndarray) else displayed
    if not isinstance(displayed, list) or not all(isinstance(item, int) for item in displayed):
        raise TypeError(f"displayed_{kind}s: expected 'all', a positive int or a list of ints, got {displayed!r}")
    unavailable = [item for item in displayed if not 0 <= item < n_items]
    if unavailable:
        messages.append(f"Report cannot display the following {kind} {unavailable} because masker only has {n_items} {kind}(s).")
    return [item for item in displayed if 0 <= item < n_items], messages
