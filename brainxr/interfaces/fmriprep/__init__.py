"""fMRIPrep confounds: nilearn-equal strategies on files, tables and cohort runs.

- :func:`load_confounds`, :func:`load_confounds_strategy`: from the files
  next to fMRIPrep images, as nilearn 0.14;
- :class:`ConfoundsStrategy`: a strategy and its options, checked once;
- :func:`select_confounds`: the same selection on an in-memory table and its
  JSON metadata (the core of the two above);
- :func:`clean_run`: select a run's confounds and clean it, lazily.
"""

from brainxr.interfaces.fmriprep.denoise import clean_run
from brainxr.interfaces.fmriprep.loading import load_confounds, load_confounds_strategy
from brainxr.interfaces.fmriprep.presets import PRESETS
from brainxr.interfaces.fmriprep.selection import ConfoundsStrategy, select_confounds

__all__ = ["PRESETS", "ConfoundsStrategy", "clean_run", "load_confounds", "load_confounds_strategy", "select_confounds"]
