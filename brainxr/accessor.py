"""The ``.brain`` accessor: brainxr's operations on labeled DataArrays.

Registered when ``brainxr`` is imported::

    import brainxr
    bold = brainxr.open_nifti("bold.nii.gz")
    bold.brain.affine, bold.brain.t_r
    masked = bold.brain.apply_mask("mask.nii.gz")      # (time, voxel)
    masked.brain.unmask().brain.to_nifti("out.nii.gz")
    conn.brain.plot_connectome(edge_threshold="98%")     # a (region, region_) matrix
    conn.brain.view_connectome().save_as_html("conn.html")

Each method calls the module function of the same name with the DataArray
as its first argument (the DataArray carries the affine, the voxel indices
or the region names and coordinates, so nothing else is needed).
"""

from __future__ import annotations

from importlib import import_module

import numpy as np
import xarray as xr

from brainxr._html import view
from brainxr.dims import SPATIAL_DIMS
from brainxr.geometry import Grid, get_grid, get_t_r, with_grid, with_t_r

# method name -> module that defines the function of that name
_FUNCTIONS = {
    "to_nifti": "brainxr.nifti",
    "to_nibabel": "brainxr.nifti",
    "apply_mask": "brainxr.masking",
    "unmask": "brainxr.masking",
    "plot_connectome": "brainxr.plotting",
    "view_connectome": "brainxr.plotting",
    "plot_matrix": "brainxr.plotting",
    "plot_markers": "brainxr.plotting",
    "view_markers": "brainxr.plotting",
    "plot_stat_map": "brainxr.plotting",
    "plot_glass_brain": "brainxr.plotting",
    "plot_anat": "brainxr.plotting",
    "plot_prob_atlas": "brainxr.plotting",
    "plot_carpet": "brainxr.plotting",
    "find_xyz_cut_coords": "brainxr.plotting",
}


@xr.register_dataarray_accessor("brain")
class BrainAccessor:
    """brainxr methods for volume images, masked tables, region signals and connectomes."""

    def __init__(self, da: xr.DataArray):
        self._da = da

    @property
    def grid(self) -> Grid:
        """The voxel grid (shape and affine) from the ``grid`` coordinate.

        Raises :class:`~brainxr.errors.GeometryError` when it is missing.
        """
        return get_grid(self._da, self._da.name or "DataArray")

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
        return get_t_r(self._da, self._da.name or "DataArray")

    def write_grid(self, affine, shape=None) -> xr.DataArray:
        """A copy carrying the grid ``affine`` (and ``shape``: default the ``i, j, k`` sizes)."""
        if shape is None:
            shape = [self._da.sizes[dim] for dim in SPATIAL_DIMS]
        return with_grid(self._da, Grid(shape, affine))

    def write_t_r(self, t_r: float) -> xr.DataArray:
        """A copy whose ``time`` coordinate carries ``t_r`` (seconds)."""
        return with_t_r(self._da, t_r)

    def __getattr__(self, name):
        if name not in _FUNCTIONS:
            raise AttributeError(f"'.brain' has no method {name!r}; methods: {sorted(_FUNCTIONS)}")
        function = getattr(import_module(_FUNCTIONS[name]), name)

        def method(*args, **kwargs):
            return function(self._da, *args, **kwargs)

        method.__name__ = name
        method.__doc__ = function.__doc__
        return method

    def __dir__(self):
        return sorted(set(_FUNCTIONS) | {"grid", "affine", "grid_shape", "t_r", "write_grid", "write_t_r"})

    __repr__ = view("accessor_text")
    _repr_html_ = view("accessor_html")
