"""Signal cleaning: nilearn-equal ``clean`` on numpy, xarray and dask signals.

One numpy kernel (:func:`brainxr.signal.kernel.clean_block`) cleans a
``(time, n)`` block given a run's precomputed
:class:`~brainxr.signal.plan.CleaningPlan`; :func:`clean` calls it on whole
numpy arrays or maps it over the voxel chunks of dask arrays.
"""

from brainxr.signal.cleaning import clean
from brainxr.signal.confounds import high_variance_confounds
from brainxr.signal.filters import butterworth
from brainxr.signal.plan import CleaningPlan, make_cleaning_plan

__all__ = ["CleaningPlan", "butterworth", "clean", "high_variance_confounds", "make_cleaning_plan"]
