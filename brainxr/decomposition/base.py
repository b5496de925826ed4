"""What the multi-subject decompositions share: masking, reduction, transforms, score.

nilearn's ``_BaseDecomposition`` (0.14) over brainxr's maskers. ``fit``:

1. builds the embedded masker ``masker_`` (a
   :class:`brainxr.maskers.MultiNiftiMasker` with the estimator's mask,
   smoothing and cleaning parameters, or a copy of the masker given as
   ``mask``) and fits it (computing the mask from the runs when needed);
2. reduces every run in time (:func:`brainxr.decomposition.reduce_runs`): a
   lazy graph with one task per run, computed by dask's scheduler (threads,
   or the workers of an active ``distributed.Client``), memory one run per
   worker;
3. runs the estimator's global step (``_raw_fit``) eagerly on the stacked
   reduced runs, a ``(n_runs x n_components, voxel)`` matrix;
4. puts the components on the grid (``components_img_``) and fits a
   :class:`brainxr.maskers.NiftiMapsMasker` on them (``maps_masker_``) for
   ``transform`` / ``inverse_transform``.

Differences from nilearn: ``memory`` and ``memory_level`` are accepted but
nothing is cached; ``n_jobs`` defaults to None (dask's scheduler decides,
all cores by default) since the result does not depend on it; inputs may also
be brainxr DataArrays, cohort run Datasets or a :class:`brainxr.Cohort`;
``set_output(transform="xarray")`` makes ``transform`` return labeled
``(time, region)`` DataArrays (nilearn raises NotImplementedError); ``score``
sums its terms run by run instead of stacking every volume of every run.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import warnings

import dask
import dask.threaded
import numpy as np
from threadpoolctl import threadpool_limits

from brainxr._estimator import TransformerEstimator
from brainxr.decomposition.reduction import OpaqueArgument, as_run_list, reduce_runs, reduce_signals, run_signals
from brainxr.decomposition.scoring import combine_variance_terms, normalized_components, variance_terms
from brainxr.progress import active_client

# estimator parameters handed to the embedded MultiNiftiMasker
_MASKER_PARAMETERS = (
    "smoothing_fwhm",
    "standardize",
    "standardize_confounds",
    "detrend",
    "low_pass",
    "high_pass",
    "t_r",
    "target_affine",
    "target_shape",
    "mask_strategy",
    "mask_args",
    "dtype",
)

OUTPUT_KINDS = ("default", "pandas", "xarray")


def _per_run_confounds(confounds, runs) -> list:
    """One confounds entry per run (None for each when no confounds are given)."""
    if confounds is None:
        return [None] * len(runs)
    if len(confounds) != len(runs):
        raise ValueError(f"Number of confounds ({len(confounds)=}) must match number of images ({len(runs)=}).")
    return list(confounds)


def _is_masker(value) -> bool:
    return hasattr(value, "get_params") and hasattr(value, "mask_img") and hasattr(value, "transform")


def _scheduler_options(n_jobs) -> dict:
    """``dask.compute`` options for ``n_jobs``: None leaves dask's configuration alone.

    The threads are given as dask's scheduler function, not by name: a name, or no scheduler at all, makes
    dask import distributed (~0.4 s) to look for a client, which cannot exist before distributed is imported
    (:func:`brainxr.progress.active_client`). With None and neither a configured scheduler nor an active
    client, that is dask's own default.
    """
    if n_jobs is None:
        if dask.config.get("scheduler", None) is None and active_client() is None:
            return {"scheduler": dask.threaded.get}
        return {}
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
        raise ValueError(f"n_jobs must be None or a non-zero integer, got {n_jobs!r}")
    if active_client() is not None:
        return {}  # an active distributed client runs the tasks on its workers
    workers = n_jobs if n_jobs > 0 else max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return {"scheduler": dask.threaded.get, "num_workers": workers}


@contextlib.contextmanager
def _parallel_runs(n_jobs):
    """Runs in parallel on dask's scheduler, each with a single-threaded BLAS.

    The runs are the unit of parallelism: BLAS threads on top of them would
    compete for the same cores, and multi-threaded BLAS is slower than one
    thread on a run's tall, thin ``(voxel, time)`` matrices anyway.
    (Workers of a distributed cluster have one BLAS thread by default.)
    """
    with dask.config.set(**_scheduler_options(n_jobs)), threadpool_limits(limits=1, user_api="blas"):
        yield


class BaseDecomposition(TransformerEstimator):
    """Base class of the multi-subject decompositions (not for direct use).

    Subclasses implement ``_raw_fit(data)``, the global step on the stacked
    reduced runs, which sets ``components_`` (and ``components_img_`` when
    ``masker_`` exists).
    """

    def __init__(
        self,
        n_components=20,
        random_state=None,
        mask=None,
        smoothing_fwhm=None,
        standardize=True,
        standardize_confounds=True,
        detrend=True,
        low_pass=None,
        high_pass=None,
        t_r=None,
        dtype=None,
        target_affine=None,
        target_shape=None,
        mask_strategy="epi",
        mask_args=None,
        memory=None,
        memory_level=0,
        n_jobs=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.random_state = random_state
        self.mask = mask
        self.smoothing_fwhm = smoothing_fwhm
        self.standardize = standardize
        self.standardize_confounds = standardize_confounds
        self.detrend = detrend
        self.low_pass = low_pass
        self.high_pass = high_pass
        self.t_r = t_r
        self.dtype = dtype
        self.target_affine = target_affine
        self.target_shape = target_shape
        self.mask_strategy = mask_strategy
        self.mask_args = mask_args
        self.memory = memory
        self.memory_level = memory_level
        self.n_jobs = n_jobs
        self.verbose = verbose

    # -- checks -------------------------------------------------------------
    def _check_parameters(self) -> None:
        if isinstance(self.n_components, bool) or not isinstance(self.n_components, numbers.Integral) or self.n_components < 1:
            raise ValueError(f"n_components must be a positive integer, got {self.n_components!r}")
        if self.mask is not None and not _is_masker(self.mask):
            from brainxr.maskers._base import load_mask_img

            load_mask_img(self.mask, "mask")

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "components_")

    # -- the embedded masker ------------------------------------------------
    def _make_masker(self):
        """The MultiNiftiMasker of ``fit`` (nilearn's ``check_embedded_masker``)."""
        from brainxr.maskers import MultiNiftiMasker

        own = {name: getattr(self, name) for name in _MASKER_PARAMETERS}
        if own["dtype"] is not None and own["dtype"] != "auto" and np.dtype(own["dtype"]).kind != "f":
            # an integer dtype would collapse the signals before the SVD (nilearn does the same)
            own["dtype"] = None
        accepted = MultiNiftiMasker._get_param_names()
        if _is_masker(self.mask):
            params = {name: value for name, value in self.mask.get_params().items() if name in accepted}
            conflicts = [
                name for name in sorted(own)
                if name in params and name != "dtype" and not _same_value(params[name], own[name])
            ]
            if conflicts:
                details = "".join(
                    f"Parameter {name} :\n    Masker parameter {params[name]} - overriding estimator parameter {own[name]}\n"
                    for name in conflicts
                )
                warnings.warn(
                    f"Overriding provided-default estimator parameters with provided masker parameters :\n{details}",
                    UserWarning,
                    stacklevel=3,
                )
            if getattr(self.mask, "mask_img_", None) is not None:
                params["mask_img"] = self.mask.mask_img_
        else:
            params = dict(own, mask_img=self.mask)
        params.update(memory=self.memory, memory_level=max(0, self.memory_level - 1), verbose=max(0, self.verbose - 1))
        # nilearn forwards n_jobs; None (dask decides for the runs' reduction) reads the runs' means on every core
        params["n_jobs"] = -1 if self.n_jobs is None else self.n_jobs
        return MultiNiftiMasker(**params)

    # -- fit ----------------------------------------------------------------
    def fit(self, imgs, y=None, confounds=None):
        """Compute the mask and the components across runs.

        Parameters
        ----------
        imgs : run or list of runs
            4D NIfTI paths (glob patterns expanded), nibabel images, brainxr
            DataArrays (volumes or ``(time, voxel)``), cohort run Datasets, or
            a :class:`brainxr.Cohort`. The runs must share a grid.
        y : None
            Ignored.
        confounds : list, optional
            One confounds entry per run (array, DataFrame, TSV path, or a
            list of those), regressed out of the run's signals.

        Returns
        -------
        self
        """
        del y
        self._check_parameters()
        runs, _ = as_run_list(imgs)
        confounds = _per_run_confounds(confounds, runs)
        self.masker_ = self._make_masker()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*Generation of a mask has been requested.*")
            if self.masker_.mask_img is None:
                self.masker_.fit(runs)
            else:
                self.masker_.fit()
        self.mask_img_ = self.masker_.mask_img_

        reduced = reduce_runs(
            self.masker_, runs, confounds=confounds, n_components=self.n_components,
            reduction_ratio=self._reduction_ratio(), random_state=self.random_state,
        )
        self._raw_fit(_stacked(reduced, self.n_jobs))
        self._fit_maps_masker()
        return self

    def _reduction_ratio(self):
        return "auto"

    def _fit_maps_masker(self) -> None:
        from brainxr.maskers import NiftiMapsMasker

        self.maps_masker_ = NiftiMapsMasker(
            self.components_img_, self.masker_.mask_img_, resampling_target="maps", standardize=False,
            dtype=self.dtype, memory=self.memory, memory_level=self.memory_level,
        )
        if self.output_kind != "default":
            self.maps_masker_.set_output(transform=self.output_kind)
        try:
            self.maps_masker_.fit()
        except ValueError as error:
            if "maps_img contains no map" in str(error):
                raise ValueError("No component found in data.") from error
            raise

    @property
    def n_elements_(self) -> int:
        """Number of components."""
        return self.maps_masker_.n_elements_

    # -- output --------------------------------------------------------------
    def set_output(self, *, transform=None):
        """Choose what :meth:`transform` returns for each run.

        Parameters
        ----------
        transform : {"default", "pandas", "xarray"} or None
            ``"default"``: numpy arrays (as nilearn); ``"pandas"``:
            DataFrames; ``"xarray"``: ``(time, region)`` DataArrays, one region
            per component. None keeps the current choice.
        """
        if transform is not None:
            if transform not in OUTPUT_KINDS:
                raise ValueError(f"set_output: transform must be one of {OUTPUT_KINDS}, got {transform!r}")
            self._output_kind = transform
            if hasattr(self, "maps_masker_"):
                self.maps_masker_.set_output(transform=transform)
        return self

    @property
    def output_kind(self) -> str:
        return getattr(self, "_output_kind", "default")

    # -- transforms ------------------------------------------------------------
    def transform(self, imgs, confounds=None):
        """Project runs on the components: each run's ``(time, component)`` loadings.

        The least-squares fit of the component maps to each volume (the maps
        masker, without cleaning), as nilearn.

        Parameters
        ----------
        imgs : run or list of runs
        confounds : list, optional
            One confounds entry per run.

        Returns
        -------
        list
            One ``(time, component)`` array (or DataFrame / DataArray, see
            :meth:`set_output`) per run.
        """
        self._check_fitted()
        runs, _ = as_run_list(imgs)
        confounds = _per_run_confounds(confounds, runs)
        return [self.maps_masker_.transform(run, confounds=confound) for run, confound in zip(runs, confounds)]

    def inverse_transform(self, loadings):
        """Voxel signals from component loadings: ``loadings @ components`` on the grid.

        Parameters
        ----------
        loadings : list of ``(time, component)`` arrays

        Returns
        -------
        list of nibabel.Nifti1Image
            One 4D image per entry.
        """
        self._check_fitted()
        if not isinstance(loadings, list):
            raise TypeError(f"'loadings' must be a list of numpy arrays. Got: {loadings.__class__.__name__}")
        return [self.maps_masker_.inverse_transform(loading) for loading in loadings]

    # -- scores ----------------------------------------------------------------
    def score(self, imgs, y=None, confounds=None, per_component=False):
        """Explained variance of the components on ``imgs``.

        Each run is masked and cleaned as in ``fit``, rotated by its full SVD
        in time (nilearn reduces with a ratio of 1), and contributes partial
        sums; the runs are never stacked.

        Parameters
        ----------
        imgs : run or list of runs
        y : None
            Ignored.
        confounds : list, optional
            One confounds entry per run.
        per_component : bool, default=False
            One score per component instead of one for the whole set.

        Returns
        -------
        float, or ``(component,)`` numpy.ndarray with ``per_component``
        """
        del y
        self._check_fitted()
        runs, _ = as_run_list(imgs)
        confounds = _per_run_confounds(confounds, runs)
        unit = normalized_components(self.components_)
        masker = dask.delayed(self.masker_, traverse=False)
        tasks = [
            dask.delayed(_run_score_terms, pure=False)(masker, OpaqueArgument(run), OpaqueArgument(confound), self.random_state, unit,
                                                       per_component)
            for run, confound in zip(runs, confounds)
        ]
        with _parallel_runs(self.n_jobs):
            terms = dask.compute(*tasks)
        return combine_variance_terms(list(terms), per_component)

    def _raw_fit(self, data: np.ndarray):
        raise NotImplementedError


def _stacked(reduced, n_jobs) -> np.ndarray:
    """Compute the reduced runs and stack them in one Fortran-ordered array, as nilearn does.

    The runs come back as separate blocks, each copied into place then
    released, so the peak is about one stacked array (plus one block).
    """
    blocks = reduced.data.to_delayed().ravel().tolist()
    with _parallel_runs(n_jobs):
        computed = list(dask.compute(*blocks))
    data = np.empty(reduced.shape, dtype=reduced.dtype, order="F")
    position = 0
    for index, block in enumerate(computed):
        data[position:position + len(block)] = block
        position += len(block)
        computed[index] = None
    return data


def _run_score_terms(masker, img, confounds, random_state, components, per_component):
    signals = run_signals(masker, img.value, confounds.value)
    rotated = reduce_signals(signals, signals.shape[0], random_state=random_state)
    return variance_terms(rotated, components, per_component)


def _same_value(first, second) -> bool:
    try:
        return bool(np.all(np.asarray(first == second)))
    except (TypeError, ValueError):
        return first is second
