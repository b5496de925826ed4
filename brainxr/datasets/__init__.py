"""Data for brainxr: the MNI152 templates (TemplateFlow's, processed as nilearn's:
:mod:`brainxr.datasets.mni152`), a synthetic MNI152-like template and atlases, a synthetic
fMRIPrep-like cohort with known ground truth, downloaders for the public
data sets of nilearn's example workflows, and TemplateFlow's templates and
atlases (:mod:`brainxr.datasets.templateflow`).

Each name is imported from its module on first use, so that the plots that
only need the template do not import the cohort generator or the downloaders.
"""

from importlib import import_module

_MODULES = {
    "DownloadError": "_download",
    "get_data_dir": "_download",
    "load_synthetic_labels_atlas": "atlas",
    "load_synthetic_maps_atlas": "atlas",
    "fetch_adhd": "fetchers",
    "fetch_atlas_aal": "fetchers",
    "fetch_atlas_basc_multiscale_2015": "fetchers",
    "fetch_atlas_difumo": "fetchers",
    "fetch_atlas_harvard_oxford": "fetchers",
    "fetch_atlas_schaefer_2018": "fetchers",
    "fetch_atlas_yeo_2011": "fetchers",
    "fetch_atlas_msdl": "fetchers",
    "fetch_coords_dosenbach_2010": "fetchers",
    "fetch_coords_power_2011": "fetchers",
    "fetch_development_fmri": "fetchers",
    "SyntheticCohort": "synthetic",
    "SyntheticRun": "synthetic",
    "make_synthetic_cohort": "synthetic",
    "TemplateFlowError": "templateflow",
    "fetch_templateflow_atlas": "templateflow",
    "get_template": "templateflow",
    "load_templateflow_atlas": "templateflow",
    "TemplateFallbackWarning": "mni152",
    "load_mni152_brain_mask": "mni152",
    "load_mni152_gm_mask": "mni152",
    "load_mni152_gm_template": "mni152",
    "load_mni152_template": "mni152",
    "load_mni152_wm_mask": "mni152",
    "load_mni152_wm_template": "mni152",
    "load_synthetic_mni152_brain_mask": "template",
    "load_synthetic_mni152_template": "template",
    "load_synthetic_mni152_tissue_maps": "template",
    "mni152_grid": "template",
}

__all__ = sorted(_MODULES)


_RENAMED = {"fetch_templateflow_atlas": "fetch_atlas", "load_templateflow_atlas": "load_atlas"}


def __getattr__(name):
    if name in _MODULES:
        return getattr(import_module(f"brainxr.datasets.{_MODULES[name]}"), _RENAMED.get(name, name))
    raise AttributeError(f"module 'brainxr.datasets' has no attribute {name!r}")


def __dir__():
    return __all__
