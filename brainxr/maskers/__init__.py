"""nilearn-compatible maskers over brainxr's chunked extraction.

Same class names, parameters, defaults, fitted attributes and results as
``nilearn.maskers`` (0.14): switching is a change of import. Images are read
lazily (a block of volumes at a time) and reduced as they are read; inputs
may also be brainxr DataArrays or cohort runs; ``set_output(transform="xarray")``
returns labeled DataArrays.
"""

from brainxr.maskers.multi import MultiNiftiLabelsMasker, MultiNiftiMapsMasker, MultiNiftiMasker
from brainxr.maskers.nifti_labels_masker import NiftiLabelsMasker
from brainxr.maskers.nifti_maps_masker import NiftiMapsMasker
from brainxr.maskers.nifti_masker import NiftiMasker
from brainxr.maskers.nifti_spheres_masker import NiftiSpheresMasker

__all__ = [
    "MultiNiftiLabelsMasker",
    "MultiNiftiMapsMasker",
    "MultiNiftiMasker",
    "NiftiLabelsMasker",
    "NiftiMapsMasker",
    "NiftiMasker",
    "NiftiSpheresMasker",
]
