"""Per-run temporal reduction: each run's ``(time, voxel)`` signals -> a few components.

The first step of the multi-subject decompositions (nilearn's
``_mask_and_reduce``): every run is masked and cleaned, then reduced in time
to its leading singular components, ``S U^T`` of the truncated SVD of the
``(voxel, time)`` matrix (the run's data projected on its top temporal
singular vectors), and the reduced runs are stacked. nilearn's procedure is
followed step for step (``_fast_svd``: a full LAPACK SVD for small matrices,
scikit-learn's randomized SVD with ``n_iter="auto"`` otherwise, the same sign
convention and random state), so that a run's reduction equals nilearn's.

Each run is one task of a lazy dask graph: its signals are loaded, cleaned
and reduced inside the task, so memory is one run per worker, and the runs
are reduced in parallel by dask's threads or a ``distributed.Client``.
"""

from __future__ import annotations

import copy
import glob
import itertools
import sys
from collections.abc import Mapping
from math import ceil
from pathlib import Path

import dask
import dask.array as dsa
import numpy as np
import xarray as xr
from scipy import linalg
from sklearn.utils import check_random_state
from sklearn.utils.extmath import randomized_svd, svd_flip

from brainxr.dims import VOXEL_DIM
from brainxr.geometry import masked_dataarray

SAMPLE_DIM = "sample"

__all__ = ["SAMPLE_DIM", "as_run_list", "fast_svd", "reduce_runs", "reduce_signals", "samples_per_run"]


def fast_svd(matrix: np.ndarray, n_components: int, random_state=None):
    """Truncated SVD, full or randomized by nilearn's (and scikit-learn's) heuristic.

    Parameters
    ----------
    matrix : ``(n_rows, n_columns)`` numpy.ndarray
    n_components : int
        Number of singular triplets kept.
    random_state : int, numpy.random.RandomState or None
        Seeds the randomized SVD.

    Returns
    -------
    U : ``(n_rows, n_components)``
    S : ``(n_components,)``
    V : ``(n_components, n_columns)``
        Signs fixed as scikit-learn's ``svd_flip`` (largest entry of each
        column of ``U`` positive), so the result is deterministic.
    """
    random_state = check_random_state(random_state)
    full = max(matrix.shape) <= 500 or not 1 <= n_components < 0.8 * min(matrix.shape)
    if full:
        U, S, V = linalg.svd(matrix, full_matrices=False)
        U, V = svd_flip(U, V)
        return U[:, :n_components].copy(), S[:n_components], V[:n_components].copy()
    return randomized_svd(matrix, n_components=n_components, n_iter="auto", flip_sign=True, random_state=random_state)


def reduce_signals(signals: np.ndarray, n_samples: int, random_state=None) -> np.ndarray:
    """The kernel of the reduction: ``(time, voxel)`` -> ``(n_samples, voxel)``.

    Parameters
    ----------
    signals : ``(time, voxel)`` numpy.ndarray
        One run's cleaned signals.
    n_samples : int
        Components kept (at most the number of volumes).
    random_state : int, RandomState or None

    Returns
    -------
    numpy.ndarray
        ``S[:, None] * U.T`` where ``signals.T = U S V^T``: the run's data
        projected on its ``n_samples`` leading temporal singular vectors.
    """
    signals = np.atleast_2d(signals)
    U, S, _ = fast_svd(signals.T, n_samples, random_state=random_state)
    return U.T * S[:, np.newaxis]


def samples_per_run(n_volumes: int, n_components: int | None, reduction_ratio="auto") -> int:
    """How many components a run of ``n_volumes`` volumes is reduced to.

    ``"auto"``: ``n_components`` (all volumes when None); a ratio ``r`` in
    [0, 1]: ``ceil(n_volumes * r)``, as nilearn's ``_mask_and_reduce``.
    """
    ratio = check_reduction_ratio(reduction_ratio, n_components)
    if ratio is None:
        return min(int(n_components), int(n_volumes))
    return int(ceil(n_volumes * ratio))


def check_reduction_ratio(reduction_ratio, n_components) -> float | None:
    """``None`` for nilearn's ``"auto"`` (keep ``n_components``), else a ratio in [0, 1]."""
    if isinstance(reduction_ratio, str):
        if reduction_ratio != "auto":
            raise ValueError(f"reduction_ratio must be 'auto' or a number between 0 and 1, got {reduction_ratio!r}")
        return None if n_components is not None else 1.0
    ratio = 1.0 if reduction_ratio is None else float(reduction_ratio)
    if not 0 <= ratio <= 1:
        raise ValueError(f"Reduction ratio should be between 0.0 and 1.0, got {ratio:.2f}")
    return ratio


def as_run_list(imgs, name: str = "imgs") -> tuple[list, list]:
    """The runs of ``imgs`` and a name for each.

    Accepts one run or a list of runs: NIfTI paths (glob patterns are
    expanded, sorted), nibabel images, volume or ``(time, voxel)``
    DataArrays, cohort run Datasets, or a :class:`brainxr.Cohort` (its runs,
    by name).
    """
    # a Cohort exists only once brainxr.cohort is imported: no import (zarr, the engine) for files and arrays
    cohort = sys.modules.get("brainxr.cohort")
    if (cohort is not None and isinstance(imgs, cohort.Cohort)) or (isinstance(imgs, Mapping) and not isinstance(imgs, (xr.Dataset, xr.DataArray))):
        return [imgs[key] for key in imgs], [str(key) for key in imgs]
    if isinstance(imgs, str) and glob.has_magic(imgs):
        matches = sorted(glob.glob(imgs))
        if not matches:
            raise ValueError(f"{name}: no file matches the pattern {imgs!r}")
        imgs = matches
    if isinstance(imgs, (str, Path, xr.Dataset, xr.DataArray)) or not hasattr(imgs, "__iter__"):
        imgs = [imgs]
    runs = list(imgs)
    if len(runs) == 0:
        raise ValueError(f"{name}: need one or more images (runs), an empty list was given")
    names = []
    for position, run in enumerate(runs):
        if isinstance(run, (str, Path)):
            names.append(Path(run).name.split(".nii")[0])
        else:
            names.append(f"{name}[{position}]")
    return runs, names


def _masked_dtype(volume_dtype) -> np.dtype:
    """The dtype of a run's cleaned signals: float64 stays, anything else is float32."""
    return np.dtype(np.float64) if np.dtype(volume_dtype) == np.float64 else np.dtype(np.float32)


def run_signals(masker, img, confounds=None) -> np.ndarray:
    """One run's masked, smoothed, cleaned ``(time, voxel)`` signals (numpy), computed here.

    Computed with dask's synchronous scheduler: this runs inside a task of
    the per-run graph, where the run is the unit of parallelism.
    """
    from brainxr.maskers import NiftiMasker

    if confounds is not None and not isinstance(confounds, list):
        confounds = [confounds]
    if masker.output_kind != "default":
        masker = copy.copy(masker).set_output(transform="default")
    with dask.config.set(scheduler="synchronous"):
        signals = NiftiMasker.transform(masker, img, confounds=confounds)
    return np.atleast_2d(np.asarray(signals))


class OpaqueArgument:
    """Hides a lazy run (a dask-backed DataArray or Dataset) from dask's argument traversal.

    dask would otherwise turn the run's own graph into dependencies of the
    reduction task, computed by the outer scheduler ahead of it; hidden, the
    run is read inside its task, so a worker holds one run at a time.
    """

    def __init__(self, value):
        self.value = value


def _reduce_run(masker, img, confounds, n_samples, random_state, dtype):
    signals = run_signals(masker, img.value, confounds.value)
    reduced = reduce_signals(signals, n_samples, random_state=random_state)
    return np.asarray(reduced, dtype=dtype)


def _n_volumes(img, name: str) -> tuple[int, np.dtype]:
    from brainxr.maskers._inputs import load_run

    run = load_run(img, name=name)
    return run.n_volumes, _masked_dtype(run.volume.dtype)


def reduce_runs(
    masker,
    imgs,
    confounds=None,
    n_components: int | None = None,
    reduction_ratio="auto",
    random_state=None,
) -> xr.DataArray:
    """Mask, clean and reduce each run; stack the reduced runs (lazy).

    nilearn's ``_mask_and_reduce`` as a lazy graph with one task per run.

    Parameters
    ----------
    masker : brainxr.maskers.NiftiMasker or MultiNiftiMasker
        A fitted masker: its mask, smoothing and cleaning are applied to each
        run.
    imgs : run or list of runs
        NIfTI paths, nibabel images, DataArrays, cohort run Datasets or a
        :class:`brainxr.Cohort`.
    confounds : list, optional
        One confounds entry (array, DataFrame, path or list of those) per run.
    n_components : int, optional
        Components kept per run with ``reduction_ratio="auto"``.
    reduction_ratio : "auto" or float in [0, 1]
        ``"auto"``: ``n_components`` per run; a ratio: that fraction of each
        run's volumes (rounded up); 1 keeps every volume (the data are then
        rotated in time, not reduced).
    random_state : int, numpy.random.RandomState or None
        Seed of the randomized SVD. An int seeds every run the same way, as
        nilearn does. A RandomState draws one seed per run (in run order)
        so that parallel runs stay reproducible.

    Returns
    -------
    xarray.DataArray
        Dask-backed ``(sample, voxel)``: the reduced runs one after the other,
        with voxel coords ``i, j, k, x, y, z`` and a ``run`` coord (run name)
        along ``sample``. The dtype is the first run's (float32 unless the
        cleaned signals are float64), as nilearn's stacking.
    """
    if not hasattr(masker, "mask_img_"):
        raise ValueError("masker: a fitted masker is required (call masker.fit first)")
    runs, names = as_run_list(imgs)
    if confounds is None:
        confounds = list(itertools.repeat(None, len(runs)))
    elif not isinstance(confounds, (list, tuple)) or len(confounds) != len(runs):
        count = len(confounds) if isinstance(confounds, (list, tuple)) else "not a list"
        raise ValueError(f"confounds: expected a list of one entry per run ({len(runs)} runs), got {count}")
    check_reduction_ratio(reduction_ratio, n_components)
    if isinstance(random_state, np.random.RandomState):
        seeds = random_state.randint(np.iinfo(np.int32).max, size=len(runs))
        run_states = [int(seed) for seed in seeds]
    else:
        run_states = [random_state] * len(runs)

    mask = np.asarray(masker.mask_img_.dataobj).astype(bool)
    affine = np.asarray(masker.mask_img_.affine, dtype=np.float64)
    n_voxels = int(mask.sum())
    shared_masker = dask.delayed(masker, traverse=False)
    blocks, run_names = [], []
    dtype = None
    for position, (img, confound, name, state) in enumerate(zip(runs, confounds, names, run_states)):
        n_volumes, run_dtype = _n_volumes(img, f"imgs[{position}]")
        dtype = dtype or (np.dtype(np.float64) if run_dtype == np.float64 else np.dtype(np.float32))
        n_samples = samples_per_run(n_volumes, n_components, reduction_ratio)
        task = dask.delayed(_reduce_run, pure=False)(shared_masker, OpaqueArgument(img), OpaqueArgument(confound), n_samples, state, dtype)
        blocks.append(dsa.from_delayed(task, shape=(n_samples, n_voxels), dtype=dtype))
        run_names.extend([name] * n_samples)
    data = dsa.concatenate(blocks, axis=0)
    runs = {"run": (SAMPLE_DIM, np.asarray(run_names, dtype=object))}
    return masked_dataarray(data, mask, affine, (SAMPLE_DIM, VOXEL_DIM), coords=runs, name="reduced")
