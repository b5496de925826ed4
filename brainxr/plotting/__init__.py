"""Static figures and interactive views of brains and connectomes.

nilearn's plotting names and main parameters, on brainxr's inputs: nibabel
images, paths, numpy arrays or labeled DataArrays (a connectivity DataArray
brings its region names and coordinates). Glass-brain outlines are drawn
from a brain mask (the MNI152 template mask of :mod:`brainxr.datasets` by
default), never downloaded.
"""

from brainxr.plotting.carpet import plot_carpet
from brainxr.plotting.connectome import plot_connectome, plot_markers
from brainxr.plotting.displays import BaseDisplay, ProjectorDisplay, SlicerDisplay
from brainxr.plotting.find_cuts import (
    find_cut_slices,
    find_parcellation_cut_coords,
    find_probabilistic_atlas_cut_coords,
    find_xyz_cut_coords,
)
from brainxr.plotting.images import MNI152TEMPLATE, plot_anat, plot_glass_brain, plot_prob_atlas, plot_stat_map
from brainxr.plotting.matrix import plot_matrix
from brainxr.plotting.view import ConnectomeView, reset_notebook_views, view_connectome, view_markers

__all__ = [
    "MNI152TEMPLATE",
    "BaseDisplay",
    "ConnectomeView",
    "ProjectorDisplay",
    "SlicerDisplay",
    "find_cut_slices",
    "find_parcellation_cut_coords",
    "find_probabilistic_atlas_cut_coords",
    "find_xyz_cut_coords",
    "plot_anat",
    "plot_carpet",
    "plot_connectome",
    "plot_glass_brain",
    "plot_markers",
    "plot_matrix",
    "plot_prob_atlas",
    "plot_stat_map",
    "reset_notebook_views",
    "view_connectome",
    "view_markers",
]
