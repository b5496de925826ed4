"""The ``.brain`` accessors: brainxr's operations on labeled DataArrays and run Datasets.

Registered when ``brainxr`` is imported::

    import brainxr
    bold = brainxr.open_nifti("bold.nii.gz")
    bold.brain.affine, bold.brain.grid_shape, bold.brain.t_r
    masked = bold.brain.apply_mask("mask.nii.gz")      # (time, voxel)
    masked.brain.unmask().brain.to_nifti("out.nii.gz")
    conn.brain.plot_connectome(edge_threshold="98%")     # a (region, region_) matrix
    conn.brain.view_connectome().save_as_html("conn.html")

    run = cohort["sub-01_task-rest"]                     # a cohort run Dataset
    run.brain.t_r, run.brain.entities, run.brain.confounds_table()

Geometry properties read the ``grid`` coordinate and the ``t_r`` of the
``time`` coordinate (:mod:`brainxr.geometry`) and raise
:class:`~brainxr.errors.GeometryError` when missing; ``write_grid`` and
``write_t_r`` return copies carrying them (rioxarray's ``rio.crs`` /
``rio.write_crs`` pairing). Every other method calls the module function
of the same name with the object as its first argument.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from brainxr._views import view
from brainxr.dims import SPATIAL_DIMS
from brainxr.geometry import Grid, get_grid, get_t_r, with_grid, with_t_r


class _GeometryMixin:
    """Geometry properties shared by the DataArray and Dataset accessors."""

    _obj: xr.DataArray | xr.Dataset

    def _name(self) -> str:
        return str(getattr(self._obj, "name", None) or type(self._obj).__name__)

    @property
    def grid(self) -> Grid:
        """The voxel grid (shape and affine) from the ``grid`` coordinate."""
        return get_grid(self._obj, self._name())

    @property
    def affine(self) -> np.ndarray:
        """The 4x4 voxel-to-world affine (an error when missing: never guessed)."""
        return self.grid.affine

    @property
    def grid_shape(self) -> tuple:
        """The spatial shape ``(I, J, K)`` of the grid."""
        return self.grid.shape

    @property
    def t_r(self) -> float:
        """The repetition time in seconds (the ``t_r`` attribute of ``time``; an error when missing)."""
        return get_t_r(self._obj, self._name())

    def write_grid(self, affine, shape=None):
        """A copy carrying the grid ``affine`` (and ``shape``: default the ``i, j, k`` sizes)."""
        if shape is None:
            shape = [self._obj.sizes[dim] for dim in SPATIAL_DIMS]
        return with_grid(self._obj, Grid(shape, affine))

    def write_t_r(self, t_r: float):
        """A copy whose ``time`` coordinate carries ``t_r`` (seconds)."""
        return with_t_r(self._obj, t_r)

    __repr__ = view("accessor_text")
    _repr_html_ = view("accessor_html")


@xr.register_dataarray_accessor("brain")
class BrainAccessor(_GeometryMixin):
    """brainxr methods for volume images, masked tables, region signals and connectomes.

    Parameters
    ----------
    da : xarray.DataArray
        The array the accessor belongs to (xarray passes it: ``da.brain``).
    """

    def __init__(self, da: xr.DataArray):
        self._obj = da

    # -- NIfTI and masking -------------------------------------------------
    def to_nifti(self, path, dtype=None, compresslevel: int = 1):
        """Write this ``(i, j, k[, time])`` volume to NIfTI (:func:`brainxr.nifti.to_nifti`).

        Parameters
        ----------
        path : str or os.PathLike
            The file to write (``.nii`` or ``.nii.gz``).
        dtype : numpy dtype, optional
            Data type on disk; default the array's.
        compresslevel : int
            gzip level of a ``.nii.gz`` file.
        """
        from brainxr.nifti import to_nifti

        return to_nifti(self._obj, path, dtype=dtype, compresslevel=compresslevel)

    def to_nibabel(self):
        """This volume as an in-memory nibabel image (:func:`brainxr.nifti.to_nibabel`)."""
        from brainxr.nifti import to_nibabel

        return to_nibabel(self._obj)

    def apply_mask(self, mask=None, voxel_chunks="auto") -> xr.DataArray:
        """This volume masked to ``(time, voxel)`` (:func:`brainxr.masking.apply_mask`).

        Parameters
        ----------
        mask : path, nibabel image or DataArray, optional
            The mask (see :func:`brainxr.masking.apply_mask`).
        voxel_chunks : "auto" or int
            Voxels per dask chunk of the result.
        """
        from brainxr.masking import apply_mask

        return apply_mask(self._obj, mask, voxel_chunks=voxel_chunks)

    def unmask(self, fill_value=0, grid_shape=None, affine=None) -> xr.DataArray:
        """This masked table back on its grid (:func:`brainxr.masking.unmask`).

        Parameters
        ----------
        fill_value : scalar
            Value of the voxels outside the mask.
        grid_shape, affine : optional
            The grid, for a table that does not carry one.
        """
        from brainxr.masking import unmask

        return unmask(self._obj, fill_value=fill_value, grid_shape=grid_shape, affine=affine)

    # -- figures (keyword arguments as the plotting function's) -------------
    def plot_connectome(self, **kwargs):
        """This ``(region, region_)`` matrix on glass brains (:func:`brainxr.plotting.plot_connectome`).

        Parameters
        ----------
        **kwargs
            Keyword arguments of :func:`brainxr.plotting.plot_connectome`.
        """
        from brainxr.plotting import plot_connectome

        return plot_connectome(self._obj, **kwargs)

    def view_connectome(self, **kwargs):
        """This matrix as an interactive 3D view (:func:`brainxr.plotting.view_connectome`).

        Parameters
        ----------
        **kwargs
            Keyword arguments of :func:`brainxr.plotting.view_connectome`.
        """
        from brainxr.plotting import view_connectome

        return view_connectome(self._obj, **kwargs)

    def plot_matrix(self, **kwargs):
        """This matrix as an image, labelled by its regions (:func:`brainxr.plotting.plot_matrix`).

        Parameters
        ----------
        **kwargs
            Keyword arguments of :func:`brainxr.plotting.plot_matrix`.
        """
        from brainxr.plotting import plot_matrix

        return plot_matrix(self._obj, **kwargs)

    def plot_markers(self, **kwargs):
        """These ``(region,)`` values as markers at the regions' centres (:func:`brainxr.plotting.plot_markers`).

        Parameters
        ----------
        **kwargs
            Keyword arguments of :func:`brainxr.plotting.plot_markers`.
        """
        from brainxr.plotting import plot_markers

        return plot_markers(self._obj, **kwargs)

    def view_markers(self, **kwargs):
        """Markers at these coordinates in an interactive view (:func:`brainxr.plotting.view_markers`).

        Parameters
        ----------
        **kwargs
            Keyword arguments of :func:`brainxr.plotting.view_markers`.
        """
        from brainxr.plotting import view_markers

        return view_markers(self._obj, **kwargs)

    def plot_stat_map(self, **kwargs):
        """This map on an anatomical background (:func:`brainxr.plotting.plot_stat_map`).

        Parameters
        ----------
        **kwargs
            Keyword arguments of :func:`brainxr.plotting.plot_stat_map`.
        """
        from brainxr.plotting import plot_stat_map

        return plot_stat_map(self._obj, **kwargs)

    def plot_glass_brain(self, **kwargs):
        """This map on glass-brain projections (:func:`brainxr.plotting.plot_glass_brain`).

        Parameters
        ----------
        **kwargs
            Keyword arguments of :func:`brainxr.plotting.plot_glass_brain`.
        """
        from brainxr.plotting import plot_glass_brain

        return plot_glass_brain(self._obj, **kwargs)

    def plot_anat(self, **kwargs):
        """This anatomical image (:func:`brainxr.plotting.plot_anat`).

        Parameters
        ----------
        **kwargs
            Keyword arguments of :func:`brainxr.plotting.plot_anat`.
        """
        from brainxr.plotting import plot_anat

        return plot_anat(self._obj, **kwargs)

    def plot_prob_atlas(self, **kwargs):
        """These maps as contours or filled regions (:func:`brainxr.plotting.plot_prob_atlas`).

        Parameters
        ----------
        **kwargs
            Keyword arguments of :func:`brainxr.plotting.plot_prob_atlas`.
        """
        from brainxr.plotting import plot_prob_atlas

        return plot_prob_atlas(self._obj, **kwargs)

    def plot_carpet(self, **kwargs):
        """This run as a carpet plot (:func:`brainxr.plotting.plot_carpet`).

        Parameters
        ----------
        **kwargs
            Keyword arguments of :func:`brainxr.plotting.plot_carpet`.
        """
        from brainxr.plotting import plot_carpet

        return plot_carpet(self._obj, **kwargs)

    def find_xyz_cut_coords(self, **kwargs) -> list:
        """Cut coordinates at the centre of the largest cluster (:func:`brainxr.plotting.find_xyz_cut_coords`).

        Parameters
        ----------
        **kwargs
            Keyword arguments of :func:`brainxr.plotting.find_xyz_cut_coords`.
        """
        from brainxr.plotting import find_xyz_cut_coords

        return find_xyz_cut_coords(self._obj, **kwargs)


@xr.register_dataset_accessor("brain")
class BrainDatasetAccessor(_GeometryMixin):
    """brainxr methods for a cohort run Dataset (``bold``, ``confounds``, ``valid``), as ``cohort[key]`` gives.

    Parameters
    ----------
    ds : xarray.Dataset
        The run the accessor belongs to (xarray passes it: ``run.brain``).
    """

    def __init__(self, ds: xr.Dataset):
        self._obj = ds

    @property
    def run(self) -> str | None:
        """The run's key in its store."""
        return self._obj.attrs.get("run")

    @property
    def entities(self) -> dict:
        """The run's BIDS entities."""
        return dict(self._obj.attrs.get("entities", {}))

    def confounds_table(self) -> pd.DataFrame:
        """The run's fMRIPrep confounds as a table (n/a as NaN), one row per volume."""
        confounds = self._obj["confounds"]
        return pd.DataFrame(np.asarray(confounds.values), columns=[str(c) for c in confounds["confound"].values])

    def valid_bold(self) -> xr.DataArray:
        """The run's ``(time, voxel)`` BOLD with the voxels without usable signal as NaN (lazy)."""
        bold = self._obj["bold"]
        return bold.where(self._obj["valid"]) if "valid" in self._obj else bold

    def extract(self, regions, **kwargs) -> xr.DataArray:
        """The run's ``(time, region)`` signals (:func:`brainxr.regions.extract`).

        Parameters
        ----------
        regions : LabelsAtlas, MapsAtlas, Spheres or a labels image
            The regions.
        **kwargs
            Keyword arguments of :func:`brainxr.regions.extract`.
        """
        from brainxr.regions import extract

        return extract(self._obj, regions, **kwargs)
