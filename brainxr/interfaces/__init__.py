"""Interfaces to the outputs of other neuroimaging tools (fMRIPrep)."""

from brainxr.interfaces import fmriprep

__all__ = ["fmriprep"]
