"""NiftiLabelsMasker: nilearn's labels masker over brainxr's chunked labels reduction."""

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
from brainxr.regions.atlas import _centres_of_mass, _label_values, look_up_table, unique_region_names
from brainxr.regions.labels import check_strategy, reduce_labels

RESAMPLING_TARGETS = ("data", "labels", None)


@fill_doc
class NiftiLabelsMasker(BaseMasker):
    """Extract the signals of the non-overlapping regions of a labels image.

    Same parameters, defaults, fitted attributes and results as
    ``nilearn.maskers.NiftiLabelsMasker`` (0.14). The signals are a chunked
    reduction over the regions' voxels (a sparse region matrix for
    ``"mean"``/``"sum"``, flox for the other strategies), read a block of
    volumes at a time.

    Parameters
    ----------
    labels_img : path, nibabel image or DataArray
        3D image of region labels.
    labels : list of str, optional
        Region names in the order of the sorted label values (``"Background"``
        may come first). Exclusive with ``lut``.
    lut : DataFrame or path to a TSV, optional
        Look-up table with ``index`` and ``name`` columns.
    background_label : number, default=0
    mask_img : mask image, optional
        Voxels outside are background.
    %(smoothing_fwhm)s
    %(standardize_maskers)s
    %(standardize_confounds)s
    %(high_variance_confounds)s
    %(detrend_maskers)s
    %(low_pass_high_pass)s
    %(t_r_maskers)s
    %(dtype)s
    resampling_target : {"data", "labels", None}, default="data"
        Which grid the extraction happens on: the data's (the labels are
        resampled with nearest neighbour), the labels' (the images are
        resampled with cubic interpolation), or none (grids must match).
    %(memory)s
    %(verbose)s
    strategy : {"mean", "sum", "median", "minimum", "maximum", "variance", "standard_deviation"}
    keep_masked_labels : bool, default=False
        Deprecated in nilearn: keep (as zeros) the regions that the mask removes.
    %(reports)s
    %(cmap)s
    %(clean_args)s

    Attributes
    ----------
    labels_img_ : nibabel.Nifti1Image
        The labels image (resampled to the data at fit when needed).
    mask_img_ : nibabel.Nifti1Image or None
    lut_ : pandas.DataFrame
        Look-up table (``index``, ``name``), background first.
    region_names_, region_ids_, labels_, n_elements_
        As nilearn's.
    region_atlas_ : nibabel.Nifti1Image
        The labels after masking, as used by the last ``transform``.
    """

    _fitted_attribute = "labels_img_"

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
        verbose=0,
        strategy="mean",
        keep_masked_labels=False,
        reports=True,
        cmap=None,
        clean_args=None,
    ):
        self.labels_img = labels_img
        self.labels = labels
        self.lut = lut
        self.background_label = background_label
        self.mask_img = mask_img
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
        self.memory = memory
        self.memory_level = memory_level
        self.verbose = verbose
        self.strategy = strategy
        self.keep_masked_labels = keep_masked_labels
        self.reports = reports
        self.cmap = cmap
        self.clean_args = clean_args

    # -- fit -------------------------------------------------------------
    def fit(self, imgs=None, y=None):
        """Load the labels (and mask), resampled to ``imgs`` when given and needed.

        Parameters
        ----------
        imgs : image or list of 3D images, optional
            Data whose grid the labels are resampled to (``resampling_target="data"``).
        y : None
            Ignored.
        """
        del y
        self._start_fit()
        check_strategy(self.strategy)
        if self.resampling_target not in RESAMPLING_TARGETS:
            raise ValueError(f"resampling_target must be one of {RESAMPLING_TARGETS}, got {self.resampling_target!r}")
        if self.labels_img is None:
            raise ValueError("labels_img: a labels image is required")
        labels = self._checked_labels()
        mask = load_mask_img(self.mask_img)

        values, grid = load_whole(self.labels_img, "labels_img")
        if values.ndim == 4 and values.shape[3] == 1:
            values = values[..., 0]
        if values.ndim != 3:
            raise ValueError(f"labels_img: expected a 3D labels image, got shape {tuple(values.shape)}")
        if values.dtype.kind == "f":
            values = np.where(np.isfinite(values), values, 0)
        if np.all(values == self.background_label):
            raise ValueError("labels_img: the image has no label (every voxel is the background)")
        affine = grid.affine
        self.lut_ = look_up_table(values, self.background_label, labels=labels, lut=self.lut)

        run = load_run(imgs) if imgs is not None else None
        if self.resampling_target is None:
            grids = {"labels": (values.shape, affine)}
            if mask is not None:
                grids["mask"] = (mask[0].shape, mask[1])
            if run is not None:
                grids["data"] = (run.shape, run.affine)
            check_same_fov(raise_error=True, **grids)
        if self.resampling_target == "data" and run is not None and not same_grid(run.shape, run.affine, values.shape, affine):
            values = self._resample_labels(values, affine, run.shape, run.affine)
            affine = run.affine
        reference = None
        if self.resampling_target == "data" and run is not None:
            reference = (run.shape, run.affine)
        elif self.resampling_target == "labels":
            reference = (values.shape, affine)
        if mask is not None and reference is not None and not same_grid(mask[0].shape, mask[1], *reference):
            mask = (resample_mask(mask[0], mask[1], reference[0], reference[1]), reference[1])
        if mask is not None and reference is not None and np.all(values[mask[0]] == 0):
            raise ValueError("No label left after applying mask to the labels image.")

        self._labels_values = values
        self.labels_img_ = nib.Nifti1Image(values, affine)
        self._mask = mask
        self.mask_img_ = None if mask is None else nib.Nifti1Image(mask[0].astype(np.int8), mask[1])
        self._centres = self._label_centres(values, affine)
        self._keep_report_data(run)
        if run is None and self.reports:
            self._report_warnings.append(
                f"No image provided to fit in {type(self).__name__}. Plotting ROIs of label image on the "
                "MNI152Template for reporting."
            )
        return self

    def _checked_labels(self):
        labels = self.labels
        if not labels:
            return None
        if self.lut is not None:
            raise ValueError("Pass either labels or a lookup table (lut) to the masker, but not both.")
        if not isinstance(labels, list):
            raise TypeError(f"'labels' must be a list. Got: {type(labels).__name__}")
        if not all(isinstance(name, str) for name in labels):
            raise TypeError(f"All elements of 'labels' must be a string.\nGot a list of {({type(n).__name__ for n in labels})}")
        return ["Background" if name == "background" else name for name in labels]

    def _resample_labels(self, values, affine, shape, target_affine) -> np.ndarray:
        """Nearest-neighbour labels on the data grid, warning about vanished labels (nilearn's)."""
        before = set(_label_values(values).tolist())
        source = with_grid(xr.DataArray(values, dims=SPATIAL_DIMS), Grid(values.shape, affine))
        resampled = np.asarray(resample_img(source, target_affine, shape, interpolation="nearest", name="labels_img").values)
        after = set(_label_values(resampled).tolist())
        if len(after) <= 1:
            raise ValueError("No label left after resampling the labels image.")
        if lost := before - after:
            warnings.warn(
                "After resampling the label image to the data image, the following labels were removed: "
                f"{lost}. Label image only contains {len(after)} labels (including background).",
                UserWarning,
                stacklevel=3,
            )
        return resampled

    def _label_centres(self, values, affine) -> dict:
        labels = np.asarray([v for v in _label_values(values) if v != self.background_label])
        index = np.full(values.shape, -1, dtype=np.int64)
        for position, label in enumerate(labels):
            index[values == label] = position
        centres = _centres_of_mass(index, len(labels), affine)
        return {label.item(): centre for label, centre in zip(labels, centres)}

    # -- attributes --------------------------------------------------------
    @property
    def _current_lut(self) -> pd.DataFrame:
        return getattr(self, "_lut_", self.lut_)

    @property
    def n_elements_(self) -> int:
        """Number of regions (label values other than the background)."""
        self._check_fitted()
        lut = self._current_lut
        return int((lut["index"] != self.background_label).sum())

    @property
    def labels_(self) -> list:
        """Label values of the regions, the background first when present."""
        self._check_fitted()
        return self._current_lut["index"].to_list()

    @property
    def region_names_(self) -> dict:
        """Column index -> region name of the signals ``transform`` returns."""
        self._check_fitted()
        valid = [value for value in self.labels_ if value != self.background_label]
        names = self.lut_[self.lut_["index"].isin(valid)]["name"]
        return names.reset_index(drop=True).to_dict()

    @property
    def region_ids_(self) -> dict:
        """Column index -> label value (and ``"background"`` -> the background label)."""
        self._check_fitted()
        index = self.labels_
        ids = {}
        if self.background_label in index:
            index.pop(index.index(self.background_label))
            ids["background"] = self.background_label
        for position, value in enumerate(index):
            ids[position] = value
        return ids

    def get_feature_names_out(self, input_features=None):
        """Region names, one per output column.

        Parameters
        ----------
        input_features : None
            Ignored (scikit-learn's signature).
        """
        del input_features
        return np.asarray(list(self.region_names_.values()), dtype=object)

    # -- transform ---------------------------------------------------------
    def _extract(self, run: Run):
        volume = None  # the run itself (streamed), unless resampled
        values, affine = self._labels_values, np.asarray(self.labels_img_.affine)
        mask = self._mask
        if self.resampling_target is None:
            grids = {"labels": (values.shape, affine), "data": (run.shape, run.affine)}
            if mask is not None:
                grids["mask"] = (mask[0].shape, mask[1])
            check_same_fov(raise_error=True, **grids)
        if self.resampling_target == "data":
            if not same_grid(run.shape, run.affine, values.shape, affine):
                warnings.warn(
                    "Resampling labels at transform time...\nTo avoid this warning, make sure to pass the images "
                    "you want to transform to fit() first, or directly use fit_transform().",
                    UserWarning,
                    stacklevel=3,
                )
                values = self._resample_labels(values, affine, run.shape, run.affine)
                affine = run.affine
            if mask is not None and not same_grid(run.shape, run.affine, mask[0].shape, mask[1]):
                warnings.warn(
                    "Resampling mask at transform time...\nTo avoid this warning, make sure to pass the images "
                    "you want to transform to fit() first, or directly use fit_transform().",
                    UserWarning,
                    stacklevel=3,
                )
                mask = (resample_mask(mask[0], mask[1], run.shape, run.affine), run.affine)
                if np.all(values[mask[0]] == 0):
                    raise ValueError("No label left after applying mask to the labels image.")
        elif self.resampling_target == "labels":
            if not same_grid(values.shape, affine, run.shape, run.affine):
                warnings.warn(
                    "Resampling images at transform time...\nTo avoid this warning, make sure to resample the "
                    "images you want to transform to the shape of the maps or set resampling_target to 'data'.",
                    UserWarning,
                    stacklevel=3,
                )
                volume = resample_img(run.volume, affine, values.shape, interpolation="continuous", clip=True, name="imgs")
        labels_data, ids = self._masked_labels(values, mask)
        support = labels_data != self.background_label
        data = masked_values_of(run, volume, support, self.smoothing_fwhm)
        assignment = np.searchsorted(ids, labels_data[support])
        signals, _ = reduce_labels(data, assignment, len(ids), self.strategy, ensure_finite=True)
        signals = np.nan_to_num(np.asarray(signals), nan=0.0).astype(np.float32 if data.dtype == np.float32 else np.float64)

        self._update_lut(ids)
        self.region_atlas_ = nib.Nifti1Image(labels_data.astype(np.int32), affine)
        features = self._features(ids)
        return signals, features

    def _transform_support(self, run: Run):
        """The labelled voxels ``transform`` reads when it extracts from ``run`` on the fitted grid."""
        values, affine = self._labels_values, np.asarray(self.labels_img_.affine)
        if self.resampling_target == "labels" or not same_grid(run.shape, run.affine, values.shape, affine):
            return None
        mask = self._mask
        if mask is not None and not same_grid(run.shape, run.affine, mask[0].shape, mask[1]):
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # transform gives the warnings about removed labels
            labels_data, _ = self._masked_labels(values, mask)
        return labels_data != self.background_label

    def _masked_labels(self, values, mask):
        """nilearn's ``_get_labels_data``: labels outside the mask become background."""
        labels_data = values
        all_labels = _label_values(values)
        if mask is not None:
            labels_data = values.copy()
            before = {int(v) for v in all_labels}
            labels_data[~mask[0]] = self.background_label
            after = {int(v) for v in _label_values(labels_data)}
            removed = before - after
            if removed and not self.keep_masked_labels:
                if len(after) == 1:
                    raise ValueError("No label left after applying mask to the labels image.")
                warnings.warn(
                    f"After applying mask to the labels image, the following labels were removed: {removed}. "
                    f"Out of {len(before)} labels, the masked labels image only contains {len(after)} labels "
                    "(including background).",
                    UserWarning,
                    stacklevel=4,
                )
        present = all_labels if self.keep_masked_labels else _label_values(labels_data)
        ids = np.asarray([value for value in present if value != self.background_label])
        return labels_data, ids

    def _update_lut(self, ids):
        present = set(_label_values(self._labels_values).tolist())
        order = ([self.background_label] if self.background_label in present else []) + list(np.asarray(ids).tolist())
        lut = self.lut_[self.lut_["index"].isin(order)]
        missing = [value for value in order if value not in set(lut["index"].tolist())]
        if missing:
            lut = pd.concat([lut, pd.DataFrame({"index": missing, "name": ["unknown"] * len(missing)})], ignore_index=True)
        self._lut_ = lut.set_index("index").loc[order].reset_index()

    def _features(self, ids) -> pd.DataFrame:
        names = list(self.region_names_.values())
        centres = np.asarray([self._centres.get(value, (np.nan, np.nan, np.nan)) for value in np.asarray(ids).tolist()])
        centres = centres.reshape(-1, 3)
        return pd.DataFrame(
            {
                "region": unique_region_names(names, ids),
                "label": np.asarray(ids),
                "name": names,
                "x": centres[:, 0],
                "y": centres[:, 1],
                "z": centres[:, 2],
            }
        )

    # -- inverse -----------------------------------------------------------
    def inverse_transform(self, signals):
        """Paint region signals back on the labels image (nilearn's ``signals_to_img_labels``).

        Parameters
        ----------
        signals : ``(n_regions,)`` or ``(time, n_regions)`` array, DataFrame or DataArray

        Returns
        -------
        nibabel.Nifti1Image
            3D for 1D signals, 4D otherwise, on the grid of ``labels_img_``.
        """
        self._check_fitted()
        signals = self._check_signals(signals)
        values = self._labels_values
        if self._mask is not None:
            values = values.copy()
            values[~self._mask[0]] = self.background_label
        ids = [value for value in _label_values(values) if value != self.background_label]
        shape = values.shape + ((signals.shape[0],) if signals.ndim == 2 else ())
        data = np.zeros(shape, dtype=signals.dtype, order="F")
        for position, label in enumerate(ids):
            data[values == label] = signals[:, position] if signals.ndim == 2 else signals[position]
        image = nib.Nifti1Image(data.astype(self._inverse_dtype(signals)), self.labels_img_.affine)
        image.set_data_dtype(self._inverse_dtype(signals))
        return image

    # -- report --------------------------------------------------------------
    def _report_parts(self, **kwargs) -> dict:
        from brainxr.reporting.masker_report import regions_figure, regions_summary_table

        # every region of the look-up table, as nilearn lists them (absent ones with size 0)
        lut = self._current_lut
        names = {int(index): name for index, name in zip(lut["index"].tolist(), lut["name"].tolist())}
        table = regions_summary_table(self.labels_img_, label_names=names, background_label=self.background_label)
        figure = regions_figure(self.labels_img_, img=self._report_background(), cmap=self.cmap)
        if self.mask_img_ is not None:
            figure.add_contours(self.mask_img_, levels=[0.5], colors="g", linewidths=3)
        return {"regions_table": table, "figure": figure, "n_regions": self.n_elements_}
