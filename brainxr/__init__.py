"""brainxr: functional connectivity of the brain at cohort scale.

fMRI images become labeled :class:`xarray.DataArray` objects with ``time``,
``voxel`` and ``region`` dimensions; cohorts live in one Zarr store; masking,
cleaning, extraction and connectivity run as lazy, chunked Dask computations.

The top-level names below are shortcuts to the modules that define them. They
are imported on first use so that ``import brainxr`` stays fast.
"""

from importlib import import_module

__version__ = "0.1.0"

# public name -> module that defines it
_SHORTCUTS = {
    "open_nifti": "brainxr.nifti",
    "to_nifti": "brainxr.nifti",
    "apply_mask": "brainxr.masking",
    "unmask": "brainxr.masking",
    "ingest": "brainxr.ingestion",
    "verify": "brainxr.ingestion",
    "Location": "brainxr._storage",
    "open_cohort": "brainxr.cohort",
    "Cohort": "brainxr.cohort",
    "extract_labels": "brainxr.regions",
    "extract_maps": "brainxr.regions",
    "extract_spheres": "brainxr.regions",
    "extract_cohort": "brainxr.regions",
    "whole_brain_signals": "brainxr.regions",
    "resample_to_img": "brainxr.image",
    "smooth_img": "brainxr.image",
    "mean_img": "brainxr.image",
    "compute_epi_mask": "brainxr.masking",
    "compute_background_mask": "brainxr.masking",
    "compute_brain_mask": "brainxr.masking",
    "clean": "brainxr.signal",
    "connectivity": "brainxr.connectome",
    "ConnectivityMeasure": "brainxr.connectome",
    "mean_connectome": "brainxr.connectome",
    "seed_to_voxel_correlation": "brainxr.connectome",
    "GraphicalLassoCV": "brainxr.connectome",
    "GroupSparseCovarianceCV": "brainxr.connectome",
    "make_synthetic_cohort": "brainxr.datasets",
    "compute": "brainxr.progress",
}

_SUBMODULES = {
    "connectome",
    "datasets",
    "interfaces",
    "maskers",
    "plotting",
    "regions",
    "reporting",
    "signal",
    "image",
    "masking",
    "nifti",
    "regions",
    "ingestion",
    "cohort",
    "decomposition",
    "progress",
}

__all__ = sorted(_SHORTCUTS) + sorted(_SUBMODULES)


# registers the ``.brain`` DataArray accessor
from brainxr import accessor as _accessor  # noqa: E402,F401


def __getattr__(name):
    if name in _SHORTCUTS:
        return getattr(import_module(_SHORTCUTS[name]), name)
    if name in _SUBMODULES:
        return import_module(f"brainxr.{name}")
    raise AttributeError(f"module 'brainxr' has no attribute {name!r}")


def __dir__():
    return __all__
