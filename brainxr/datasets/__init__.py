"""Data for brainxr: a synthetic MNI152-like template and atlases, a synthetic
fMRIPrep-like cohort with known ground truth, and downloaders for the public
data sets of nilearn's example workflows.
"""

from brainxr.datasets._download import DownloadError, get_data_dir
from brainxr.datasets.atlas import load_synthetic_labels_atlas, load_synthetic_maps_atlas
from brainxr.datasets.fetchers import (
    fetch_adhd,
    fetch_atlas_harvard_oxford,
    fetch_atlas_msdl,
    fetch_coords_dosenbach_2010,
    fetch_coords_power_2011,
    fetch_development_fmri,
)
from brainxr.datasets.synthetic import SyntheticCohort, SyntheticRun, make_synthetic_cohort
from brainxr.datasets.template import (
    load_mni152_brain_mask,
    load_mni152_template,
    load_mni152_tissue_maps,
    mni152_grid,
)

__all__ = [
    "DownloadError",
    "fetch_adhd",
    "fetch_atlas_harvard_oxford",
    "fetch_atlas_msdl",
    "fetch_coords_dosenbach_2010",
    "fetch_coords_power_2011",
    "fetch_development_fmri",
    "get_data_dir",
    "SyntheticCohort",
    "SyntheticRun",
    "make_synthetic_cohort",
    "load_mni152_brain_mask",
    "load_mni152_template",
    "load_mni152_tissue_maps",
    "load_synthetic_labels_atlas",
    "load_synthetic_maps_atlas",
    "mni152_grid",
]
