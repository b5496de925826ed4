"""NiftiSpheresMasker: nilearn's seed masker over brainxr's sphere reduction."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd

from brainxr._docs import fill_doc
from brainxr.image import same_grid
from brainxr.maskers._base import BaseMasker, load_mask_img, resample_mask
from brainxr.maskers._inputs import Run, load_run
from brainxr.regions._reductions import project_onto_regions
from brainxr.regions.labels import _divide
from brainxr.regions.spheres import sphere_adjacency, spheres_to_volume, voxels_near_seeds

_SEEDS_ERROR = "Seeds must be a list of triplets of coordinates in native space.\n"


@fill_doc
class NiftiSpheresMasker(BaseMasker):
    """Extract the mean signal of spheres around seeds.

    Same parameters, defaults, fitted attributes and results as
    ``nilearn.maskers.NiftiSpheresMasker`` (0.14), including its choice of
    voxels (within ``radius`` mm of the seed, plus the voxel holding it).

    Parameters
    ----------
    seeds : list of (x, y, z)
        Seed coordinates in mm, in the images' space.
    radius : float, optional
        Sphere radius in mm (None: the seed's voxel).
    mask_img : mask image, optional
        Only voxels in the mask count.
    allow_overlap : bool, default=False
        Otherwise overlapping spheres raise a ValueError naming the seeds.
    %(smoothing_fwhm)s
    %(standardize_maskers)s
    %(standardize_confounds)s
    %(high_variance_confounds)s
    %(detrend_maskers)s
    %(low_pass_high_pass)s
    %(t_r_maskers)s
    %(dtype)s
    %(memory)s
    %(verbose)s
    %(reports)s
    %(clean_args)s

    Attributes
    ----------
    seeds_ : list of lists
    mask_img_ : nibabel.Nifti1Image or None
    n_elements_ : int
        Number of seeds.
    """

    _fitted_attribute = "seeds_"

    def __init__(
        self,
        seeds=None,
        radius=None,
        mask_img=None,
        allow_overlap=False,
        smoothing_fwhm=None,
        standardize=False,
        standardize_confounds=True,
        high_variance_confounds=False,
        detrend=False,
        low_pass=None,
        high_pass=None,
        t_r=None,
        dtype=None,
        memory=None,
        memory_level=1,
        verbose=0,
        reports=True,
        clean_args=None,
    ):
        self.seeds = seeds
        self.radius = radius
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
        self.memory = memory
        self.memory_level = memory_level
        self.verbose = verbose
        self.reports = reports
        self.clean_args = clean_args

    def fit(self, imgs=None, y=None):
        """Check the seeds (and load the mask).

        Parameters
        ----------
        imgs : image, optional
            Only kept for the report.
        y : None
            Ignored.
        """
        del y
        self._start_fit()
        if self.seeds is None or not hasattr(self.seeds, "__iter__") or isinstance(self.seeds, str):
            raise ValueError(f"{_SEEDS_ERROR}Given seed list is of type: {type(self.seeds)}")
        seeds = []
        for position, seed in enumerate(self.seeds):
            if not hasattr(seed, "__len__"):
                raise ValueError(
                    f"{_SEEDS_ERROR}Seed #{position} is not a valid triplet of coordinates. "
                    f"It is of type {type(seed).__name__}."
                )
            seed = seed.tolist() if isinstance(seed, np.ndarray) else list(seed)
            if len(seed) != 3:
                raise ValueError(f"{_SEEDS_ERROR}Seed #{position} is of length {len(seed)} instead of 3.")
            seeds.append(seed)
        if self.radius is not None and (not np.isscalar(self.radius) or not self.radius >= 0):
            raise ValueError(f"radius must be a non-negative number of mm or None, got {self.radius!r}")
        mask = load_mask_img(self.mask_img)
        self._mask = mask
        self.mask_img_ = None if mask is None else nib.Nifti1Image(mask[0].astype(np.int8), mask[1])
        self.seeds_ = seeds
        self.n_elements_ = len(seeds)
        self._keep_report_data(load_run(imgs) if imgs is not None else None)
        if imgs is None and self.reports:
            self._report_warnings.append(
                "No image provided to fit in NiftiSpheresMasker. Spheres are plotted on top of the MNI152 template."
            )
        return self

    def _extract(self, run: Run):
        if self._mask is not None:
            mask, mask_affine = self._mask
            if not same_grid(mask.shape, mask_affine, run.shape, run.affine):
                mask = resample_mask(mask, mask_affine, run.shape, run.affine)
            candidate_ijk = np.column_stack(np.nonzero(mask))
            where = "the mask"
        else:
            candidate_ijk = voxels_near_seeds(self.seeds_, self.radius, run.shape, run.affine)
            where = "the image"
        adjacency = sphere_adjacency(np.asarray(self.seeds_, dtype=np.float64), self.radius, candidate_ijk, run.affine, self.allow_overlap, where)
        used = np.flatnonzero(np.asarray(adjacency.sum(axis=0)).ravel())
        support = np.zeros(run.shape, dtype=bool)
        support[tuple(candidate_ijk[used].T)] = True
        data = run.masked_values(support, self.smoothing_fwhm)
        column_of = np.full(run.shape, -1, dtype=np.int64)
        column_of[tuple(candidate_ijk[used].T)] = used
        weights = adjacency[:, column_of[support]].T.astype(np.float64).tocsr()
        sums, counts, _ = project_onto_regions(data, weights, ensure_finite=True)
        # nilearn fills an array of the image's dtype (integer images give truncated means)
        signals = np.asarray(_divide(sums, counts)).astype(data.dtype)
        seeds = np.asarray(self.seeds_, dtype=np.float64)
        features = pd.DataFrame(
            {"region": [f"sphere_{index}" for index in range(len(seeds))], "label": np.arange(len(seeds)),
             "x": seeds[:, 0], "y": seeds[:, 1], "z": seeds[:, 2]}
        )
        return signals, features

    def inverse_transform(self, region_signals):
        """Voxel signals from sphere signals, on the mask's grid.

        Each voxel gets the mean of the signals of the spheres holding it.
        Needs ``mask_img``.

        Parameters
        ----------
        region_signals : array-like or xarray.DataArray
            ``(n_spheres,)`` or ``(time, n_spheres)`` signals, as ``transform`` gives.

        Returns
        -------
        nibabel.Nifti1Image
        """
        self._check_fitted()
        signals = self._check_signals(region_signals)
        if self._mask is None:
            raise ValueError("Please provide mask_img at initialization to provide a reference for the inverse_transform.")
        mask_img = nib.Nifti1Image(self._mask[0].astype(np.int8), self._mask[1])
        volume = spheres_to_volume(signals, self.seeds_, mask_img, radius=self.radius, allow_overlap=self.allow_overlap)
        dtype = self._inverse_dtype(signals)
        image = nib.Nifti1Image(np.asarray(volume.values).astype(dtype), self._mask[1])
        image.set_data_dtype(dtype)
        return image

    def _report_parts(self, displayed_spheres=10, **kwargs) -> dict:
        from brainxr.maskers.nifti_maps_masker import _displayed
        from brainxr.plotting import plot_anat, plot_markers

        seeds = np.asarray(self.seeds_, dtype=np.float64)
        displayed, messages = _displayed(displayed_spheres, len(seeds), "sphere")
        background = self._report_background()
        radius = 1.0 if self.radius is None else float(self.radius)
        table = pd.DataFrame(
            {
                "seed number": np.arange(len(seeds)),
                "coordinates": [str(list(seed)) for seed in self.seeds_],
                "radius": radius,
                "size (in mm^3)": round(4.0 / 3.0 * np.pi * radius**3, 2),
            }
        )
        figures = [plot_markers(np.ones(len(seeds)), seeds, node_size=20 * radius, colorbar=False)]
        for index in displayed:
            options = {} if background is None else {"anat_img": background}
            display = plot_anat(cut_coords=seeds[index], title=f"seed {index}", **options)
            display.add_markers([seeds[index]], marker_color="g", marker_size=20 * radius)
            figures.append(display)
        return {"tables": [("Regions summary", table)], "figures": figures, "warnings": messages,
                "summary": {"number of spheres": len(seeds)}}
