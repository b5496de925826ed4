"""Sphinx configuration of brainxr's documentation.

Build (warnings are errors, as in CI)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The gallery runs the scripts of ``examples/`` in quick mode on the synthetic
fMRIPrep cohort (set ``BRAINXR_DOCS_GALLERY=0`` to skip running them).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import brainxr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

project = "brainxr"
author = "brainxr developers"
copyright = "brainxr developers"
version = release = brainxr.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip"]
master_doc = "index"
html_theme = "alabaster"
html_title = "brainxr"
myst_heading_anchors = 3

autosummary_generate = True
autodoc_default_options = {"members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# cross-references in numpydoc "Parameters" types are not checked: they name
# numpy, xarray and nibabel types as prose ("path, nibabel image or DataArray")
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()


_run_gallery = os.environ.get("BRAINXR_DOCS_GALLERY", "1") != "0"
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "plot_gallery": _run_gallery,
    # the examples are scripts with a main(): run each in quick mode, its files in a scratch folder
    "reset_argv": lambda gallery_conf, script_vars: ["--quick", "--output", tempfile.mkdtemp(prefix="brainxr-docs-")],
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
}

nitpicky = False
suppress_warnings = ["config.cache"]
