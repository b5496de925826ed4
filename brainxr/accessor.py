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
    def affine(self) -> np.ndarray:
        """The 4x4 voxel-to-world affine."""
        if "affine" not in self._da.attrs:
            raise AttributeError("this DataArray has no 'affine' attribute")
        return np.asarray(self._da.attrs["affine"])

    @property
    def t_r(self) -> float | None:
        """The repetition time in seconds, if known."""
        return self._da.attrs.get("t_r")

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
        return sorted(set(_FUNCTIONS) | {"affine", "t_r"})

    __repr__ = view("accessor_text")
    _repr_html_ = view("accessor_html")
