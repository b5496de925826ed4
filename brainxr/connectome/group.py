"""Group reductions of connectomes over runs.

Each reduction is a map over blocks of runs followed by a tree reduction
(``split_every`` blocks at a time), so a cohort's matrices are never gathered
on one machine: the arithmetic mean (of covariances, or of Fisher-z
correlations) here, the geometric mean of covariances and the tangent space
in :mod:`brainxr.connectome.tangent`. The same code runs on numpy stacks, on
the threaded scheduler and on a ``distributed.Client``.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from brainxr.connectome.estimation import connectivity
from brainxr.connectome.matrices import _is_dask, fisher_z as _fisher_z, inverse_fisher_z
from brainxr.connectome.tangent import _run_dim, _square_coords, geometric_mean, tangent_space
from brainxr.provenance import carried

__all__ = ["geometric_mean", "group_sparse_inputs", "mean_connectome", "tangent_space"]


_CORRELATION_KINDS = ("correlation", "partial correlation")


def mean_connectome(
    connectomes: xr.DataArray,
    *,
    fisher_z: bool | None = None,
    back_transform: bool | None = None,
    split_every: int | None = None,
) -> xr.DataArray:
    """Mean connectome over runs, as a tree reduction.

    Correlations are averaged as Fisher z and the mean is transformed back
    to a correlation (the usual group correlation); covariances, precisions
    and tangent vectors are averaged as they are.

    Parameters
    ----------
    connectomes : xarray.DataArray
        ``(run, region, region_)`` connectomes (any name for the run dim),
        numpy- or dask-backed. NaN entries (regions excluded from a run) are
        skipped: each entry is averaged over the runs where it is defined.
    fisher_z : bool, optional
        Average Fisher-z transformed values (:func:`fisher_z`; the diagonal,
        ``r = 1``, maps to about 18.7). Default: True when
        ``attrs["kind"]`` is ``correlation`` or ``partial correlation``,
        False otherwise. ``fisher_z=False`` on correlations gives the plain
        mean, nilearn's ``ConnectivityMeasure.mean_``.
    back_transform : bool, optional
        With ``fisher_z``, return ``tanh`` of the mean z (a correlation
        matrix, exactly 1 on the diagonal) rather than the mean z. Default:
        the value of ``fisher_z``.
    split_every : int, optional
        Fan-in of the tree reduction over run chunks (dask's default if None).

    Returns
    -------
    xarray.DataArray
        ``(region, region_)``, lazy for dask input. Attrs of the input plus
        ``reduction`` (what was averaged) and ``n_runs``.
    """
    run_dim = _run_dim(connectomes, "connectomes")
    if fisher_z is None:
        fisher_z = connectomes.attrs.get("kind") in _CORRELATION_KINDS
    if back_transform is None:
        back_transform = fisher_z
    if back_transform and not fisher_z:
        raise ValueError("back_transform=True needs fisher_z=True.")
    connectomes = connectomes.transpose(run_dim, "region", "region_")
    data = connectomes.data
    if fisher_z:
        data = _fisher_z(data)
    if _is_dask(data):
        import dask.array as da

        mean = da.nanmean(data, axis=0, split_every=split_every)
    else:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
            mean = np.nanmean(np.asarray(data, dtype=np.float64), axis=0)
    if back_transform:
        mean = inverse_fisher_z(mean)
        statistic = "tanh of the mean fisher z"
    else:
        statistic = "fisher z" if fisher_z else "value"
    attrs = dict(connectomes.attrs)
    attrs.update(reduction=f"mean over {run_dim} of the {statistic}", n_runs=connectomes.sizes[run_dim])
    return xr.DataArray(
        mean,
        dims=("region", "region_"),
        coords=_square_coords(connectomes, run_dim),
        attrs=attrs,
        name=f"mean_{connectomes.name}" if connectomes.name else "mean",
    )

def group_sparse_inputs(signals: xr.DataArray) -> xr.Dataset:
    """What group-sparse covariance estimation needs from a cohort, lazily: a map over chunks of runs.

    Parameters
    ----------
    signals : xarray.DataArray
        ``(run, time, region)`` signals (as :meth:`brainxr.Cohort.extract`
        makes them: padding after each run's last volume is NaN).

    Returns
    -------
    xarray.Dataset
        ``covariance (run, region, region_)``: each run's empirical
        (maximum-likelihood) covariance, symmetrised, as nilearn's
        ``empirical_covariances``; ``n_samples (run)``: its time points. The
        inputs of :func:`brainxr.connectome.group_sparse_covariance` (stack
        ``covariance`` as ``(region, region_, run)``), computed one task per
        chunk of runs, never gathered unless computed.
    """
    others = [dim for dim in signals.dims if dim not in ("time", "region")]
    if set(signals.dims) != {"time", "region", *others} or len(others) != 1:
        raise ValueError(f"signals must be a (run, time, region) DataArray; got dims {signals.dims}.")
    (run_dim,) = others
    covariance = connectivity(signals, kind="covariance", cov_estimator="empirical")
    mirrored = covariance.data.transpose(0, 2, 1)
    covariance = covariance.copy(data=(covariance.data + mirrored) / 2).rename("covariance")
    n_samples = np.isfinite(signals).any("region").sum("time").rename("n_samples")
    covariance = covariance.transpose(run_dim, "region", "region_")
    return xr.Dataset({"covariance": covariance, "n_samples": n_samples.reset_coords(drop=True)},
                      attrs=carried(signals.attrs))
