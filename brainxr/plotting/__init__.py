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
from brainxr.plotting import cm
from brainxr.plotting.images import (
    MNI152TEMPLATE,
    plot_anat,
    plot_epi,
    plot_glass_brain,
    plot_img,
    plot_prob_atlas,
    plot_roi,
    plot_stat_map,
)
from brainxr.plotting.matrix import plot_matrix
from brainxr.plotting.view import ConnectomeView, reset_notebook_views, view_connectome, view_markers


def show():
    """Show the open figures (``matplotlib.pyplot.show``), as nilearn's ``plotting.show``.

    With a non-interactive backend (Agg, in scripts and tests) it does nothing.
    """
    import matplotlib
    import matplotlib.pyplot as plt

    if matplotlib.get_backend().lower() != "agg":
        plt.show()


__all__ = [
    "MNI152TEMPLATE",
    "BaseDisplay",
    "ConnectomeView",
    "cm",
    "ProjectorDisplay",
    "SlicerDisplay",
    "find_cut_slices",
    "find_parcellation_cut_coords",
    "find_probabilistic_atlas_cut_coords",
    "find_xyz_cut_coords",
    "plot_anat",
    "plot_carpet",
    "plot_connectome",
    "plot_epi",
    "plot_glass_brain",
    "plot_img",
    "plot_markers",
    "plot_matrix",
    "plot_prob_atlas",
    "plot_roi",
    "plot_stat_map",
    "reset_notebook_views",
    "show",
    "view_connectome",
    "view_markers",
]
