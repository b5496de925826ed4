"""Data for brainxr: a synthetic MNI152-like template and atlases, a synthetic
fMRIPrep-like cohort with known ground truth, and downloaders for the public
data sets of nilearn's example workflows.
"""

from brainxr.datasets.atlas import load_synthetic_labels_atlas, load_synthetic_maps_atlas
from brainxr.datasets.synthetic import SyntheticCohort, SyntheticRun, make_synthetic_cohort
from brainxr.datasets.template import (
    load_mni152_brain_mask,
    load_mni152_template,
    load_mni152_tissue_maps,
    mni152_grid,
)

__all__ = [
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
