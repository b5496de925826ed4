"""Multi-subject decompositions into spatial maps: dictionary learning, CanICA, group PCA.

nilearn-compatible estimators (``nilearn.decomposition``, 0.14): same
parameters, defaults, fitted attributes and algorithm steps. At cohort
scale, each run is masked, cleaned and reduced in time as one task of a
lazy dask graph (memory: one run per worker; runs in parallel on dask's
threads or a ``distributed.Client``), then the small global step runs
eagerly on the stacked reductions.
"""

from brainxr.decomposition.canica import CanICA
from brainxr.decomposition.dict_learning import DictLearning
from brainxr.decomposition.multi_pca import MultiPCA
from brainxr.decomposition.reduction import fast_svd, reduce_runs, reduce_signals
from brainxr.decomposition.scoring import explained_variance

__all__ = ["CanICA", "DictLearning", "MultiPCA", "explained_variance", "fast_svd", "reduce_runs", "reduce_signals"]
