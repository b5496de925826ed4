"""Region signals of many runs at once: lazy ``(run, time, region)`` results.

:func:`extract_cohort` applies one extraction (labels, maps or spheres) to
every run, optionally followed by :func:`brainxr.signal.clean`, and stacks
the results along a ``run`` dim. The atlas is resampled once per grid (runs
of a cohort share one), every step stays lazy, and the graph is made of
module-level functions and plain arrays, so it runs unchanged on the threaded
scheduler or on a ``distributed.Client`` with worker processes.

Runs of different lengths (or censored by different ``sample_mask``) are
padded with NaN at the end; the ``n_volumes`` coordinate gives each run's
length and ``onset`` (``run, time``) the time of each kept volume.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import xarray as xr
from scipy import sparse

from brainxr.dims import REGION_DIM, RUN_DIM, TIME_DIM
from brainxr.regions._reductions import ProjectionWeights
from brainxr.regions.atlas import LabelsAtlas, MapsAtlas, assignment_matrix, load_labels_atlas
from brainxr.regions.labels import _divide, check_strategy, extract_labels, reduce_labels
from brainxr.regions.maps import _solve_least_squares, extract_maps
from brainxr.regions.spheres import Spheres, extract_spheres, sphere_adjacency


def extract(signals, regions, strategy: str = "mean", mask=None, min_coverage=None, ensure_finite: bool = False) -> xr.DataArray:
    """Region signals of one run for any kind of regions.

    Parameters
    ----------
    signals : DataArray, Dataset or volume image
        ``(time, voxel)`` signals, a cohort run (a Dataset with ``bold`` and
        optionally ``valid``), or a 4D image.
    regions : LabelsAtlas, MapsAtlas, Spheres, or a labels image
    strategy : str
        For labels atlases (see :func:`brainxr.regions.extract_labels`).
    mask, min_coverage, ensure_finite
        As in the extraction functions.
    """
    if isinstance(regions, Spheres):
        return extract_spheres(signals, regions, mask=mask, ensure_finite=ensure_finite, min_coverage=min_coverage)
    if isinstance(regions, MapsAtlas):
        return extract_maps(signals, regions, mask=mask, min_coverage=min_coverage, ensure_finite=ensure_finite)
    if not isinstance(regions, LabelsAtlas):
        regions = load_labels_atlas(regions)
    return extract_labels(signals, regions, strategy=strategy, mask=mask, min_coverage=min_coverage, ensure_finite=ensure_finite)


def _per_run(value, name: str, run_names):
    """A per-run option: a mapping run -> value, or None."""
    if value is None:
        return dict.fromkeys(run_names)
    if not isinstance(value, Mapping):
        raise TypeError(f"{name}: expected a mapping from run name to value, got {type(value).__name__}")
    unknown = sorted(set(value) - set(run_names))
    if unknown:
        raise ValueError(f"{name}: no run named {unknown}; runs are {list(run_names)[:5]}...")
    return {run: value.get(run) for run in run_names}


def extract_cohort(
    runs: Mapping,
    regions,
    strategy: str = "mean",
    mask=None,
    min_coverage: float | None = None,
    ensure_finite: bool = False,
    clean: bool | dict | None = None,
    confounds: Mapping | None = None,
    sample_mask: Mapping | None = None,
) -> xr.DataArray:
    """Region signals of every run of a cohort, lazily, as one ``(run, time, region)`` array.

    Parameters
    ----------
    runs : mapping of run name -> signals
        ``(time, voxel)`` DataArrays (dask-backed stays lazy), cohort run
        Datasets (``bold`` and ``valid``) or 4D images.
    regions : LabelsAtlas, MapsAtlas, Spheres, or a labels image
        Loaded and resampled once for all runs on a grid.
    strategy, mask, min_coverage, ensure_finite
        As in :func:`brainxr.regions.extract_labels`.
    clean : bool or dict, optional
        Clean each run's region signals with :func:`brainxr.signal.clean`:
        True for its defaults, a dict for its keyword arguments (``detrend``,
        ``standardize``, ``low_pass``, ``high_pass``, ``t_r``...; ``t_r``
        defaults to each run's own). Implied by ``confounds`` or
        ``sample_mask``.
    confounds, sample_mask : mapping of run name -> value, optional
        Per-run confounds (arrays, DataFrames, TSV paths) and volume masks,
        passed to the cleaning.

    Returns
    -------
    xarray.DataArray
        ``(run, time, region)``, NaN-padded at the end of shorter runs, with
        coords ``run``, ``n_volumes (run)``, ``onset (run, time)`` (seconds,
        NaN in the padding), ``coverage (run, region)`` and the region coords.
    """
    if not isinstance(runs, Mapping) or not runs:
        raise ValueError("runs: expected a non-empty mapping from run name to signals")
    run_names = list(runs)
    confounds = _per_run(confounds, "confounds", run_names)
    sample_mask = _per_run(sample_mask, "sample_mask", run_names)
    if clean is None and (any(v is not None for v in confounds.values()) or any(v is not None for v in sample_mask.values())):
        clean = True
    if not isinstance(regions, (LabelsAtlas, MapsAtlas, Spheres)):
        regions = load_labels_atlas(regions)
    clean_kwargs = {} if clean in (None, False, True) else dict(clean)

    results = []
    for name in run_names:
        signals = extract(runs[name], regions, strategy=strategy, mask=mask, min_coverage=min_coverage, ensure_finite=ensure_finite)
        if clean:
            from brainxr.signal import clean as clean_signals

            signals = clean_signals(signals, confounds=confounds[name], sample_mask=sample_mask[name], **clean_kwargs)
        results.append(signals)
    n_volumes = [result.sizes[TIME_DIM] for result in results]
    longest = max(n_volumes)
    # per-run coords (coverage, onset) carry the run dim; region coords are shared
    for position, result in enumerate(results):
        result = _positional(result, longest)
        per_run = {key: result[key].expand_dims({RUN_DIM: [run_names[position]]}) for key in ("coverage", "onset") if key in result.coords}
        results[position] = result.expand_dims({RUN_DIM: [run_names[position]]}).assign_coords(per_run)
    stacked = xr.concat(
        results, dim=RUN_DIM, join="outer", fill_value=np.nan, coords="minimal", compat="override", combine_attrs="drop_conflicts"
    )
    stacked = stacked.assign_coords({"n_volumes": (RUN_DIM, np.asarray(n_volumes))})
    return stacked.transpose(RUN_DIM, TIME_DIM, REGION_DIM)


def _positional(signals: xr.DataArray, length: int) -> xr.DataArray:
    """NaN-pad to ``length`` volumes, index time by position, keep the times as ``onset``."""
    n_time = signals.sizes[TIME_DIM]
    onset = signals[TIME_DIM].values if TIME_DIM in signals.coords else np.arange(n_time, dtype=float)
    onset = np.concatenate([np.asarray(onset, dtype=float), np.full(length - n_time, np.nan)])
    signals = signals.drop_vars([name for name, coord in signals.coords.items() if coord.dims == (TIME_DIM,)])
    if length > n_time:
        signals = signals.pad({TIME_DIM: (0, length - n_time)}, constant_values=np.nan)
    return signals.assign_coords({TIME_DIM: np.arange(length), "onset": (TIME_DIM, onset)})


@dataclass(frozen=True, eq=False)
class RegionWeights:
    """The voxel -> region weights of an extraction on a cohort grid, built once.

    Every run of a cohort shares its grid and stored voxels, so an atlas is
    resampled and turned into weights once; the per-run work is then the
    chunked reduction of :func:`~brainxr.regions._reductions.project_columns`
    and :meth:`finish` (or :meth:`reduce_run` for the label statistics other
    than the mean and the sum).

    Attributes
    ----------
    kind : {"labels", "maps", "spheres"}
    statistic : str
        ``"mean"`` or ``"sum"`` (labels, spheres), ``"least_squares"``
        (maps), or a statistic of :func:`brainxr.regions.extract_labels`
        computed by :meth:`reduce_run`.
    weights : scipy.sparse.csr_matrix
        ``(voxel, region)`` over the stored voxels of the grid.
    reference : numpy.ndarray
        ``(region,)`` voxels (labels, spheres) or summed absolute weight
        (maps) of each region on the grid: the denominator of ``coverage``.
    regions : pandas.DataFrame
        Region names, labels and centres (``region``, ``label``, ``x``...).
    gram : numpy.ndarray or None
        ``weights.T @ weights`` (maps).
    assignment : numpy.ndarray or None
        Region index of each stored voxel, -1 for none (labels).
    """

    kind: str
    statistic: str
    weights: sparse.csr_matrix
    reference: np.ndarray
    regions: pd.DataFrame
    gram: np.ndarray | None = None
    assignment: np.ndarray | None = None
    _prepared_chunks: dict = field(default_factory=dict, init=False, repr=False)

    @property
    def n_regions(self) -> int:
        return self.weights.shape[1]

    @property
    def with_gram(self) -> bool:
        """Whether the reduction also needs the Gram matrix of the invalid voxels' weights."""
        return self.kind == "maps"

    @property
    def projected(self) -> bool:
        """Whether the statistic comes from the weighted sums (else :meth:`reduce_run`)."""
        return self.statistic in ("mean", "sum", "least_squares")

    def for_tasks(self) -> RegionWeights:
        """These weights without the ``(voxel, region)`` matrix: what the tasks finishing a run need.

        The tasks reducing a voxel chunk get that chunk's rows of the matrix
        (:meth:`chunk_weights`) instead.
        """
        return replace(self, weights=sparse.csr_matrix((0, self.n_regions)))

    def chunk_weights(self, voxel_slices) -> list:
        """The weights of each voxel chunk, prepared for :func:`~brainxr.regions._reductions.project_columns`.

        Prepared once per chunk layout and kept: every run of a cohort (the
        engine's tasks, ingest's in-memory reduction) shares them.
        """
        layout = tuple((chunk.start, chunk.stop) for chunk in voxel_slices)
        if layout not in self._prepared_chunks:
            self._prepared_chunks[layout] = [ProjectionWeights.of(self.weights[chunk]) for chunk in voxel_slices]
        return self._prepared_chunks[layout]

    def coverage(self, counts: np.ndarray) -> np.ndarray:
        """Fraction of each region's voxels (or weight) with valid signal."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return counts / np.where(self.reference > 0, self.reference, np.nan)

    def finish(self, sums: np.ndarray, counts: np.ndarray, invalid_gram=None, min_coverage=None) -> np.ndarray:
        """``(time, region)`` float64 signals of one run from its summed partials.

        Regions without valid voxels (or below ``min_coverage``) are NaN, as
        in :func:`~brainxr.regions.extract_labels`, ``extract_maps`` and
        ``extract_spheres``.
        """
        if self.kind == "maps":
            values = _solve_least_squares(sums, invalid_gram, self.gram, np.dtype(np.float64))
            coverage = self.coverage(counts)
            keep = coverage > 0 if min_coverage is None else coverage >= min_coverage
            return np.where(keep[None, :], values, np.nan)
        values = _divide(sums, counts) if self.statistic == "mean" else np.where(counts > 0, sums, np.nan)
        return self.masked_by_coverage(values, counts, min_coverage)

    def masked_by_coverage(self, values: np.ndarray, counts: np.ndarray, min_coverage=None) -> np.ndarray:
        if min_coverage is None:
            return values
        return np.where(self.coverage(counts)[None, :] >= min_coverage, values, np.nan)

    def reduce_run(self, bold: np.ndarray, valid: np.ndarray | None, ensure_finite: bool = False):
        """A label statistic other than the mean or sum on one run's ``(time, voxel)`` signals.

        Returns
        -------
        values : ``(time, region)`` float64
        counts : ``(region,)`` valid voxels of each region
        """
        return reduce_labels(bold, self.assignment, self.n_regions, self.statistic, ensure_finite, valid=valid)


def region_weights(regions, grid_shape, affine, voxel_index: np.ndarray, strategy: str = "mean") -> RegionWeights:
    """The weights of an extraction on a cohort grid (see :class:`RegionWeights`).

    The same voxels, weights and coverage as :func:`extract_labels`,
    :func:`extract_maps` and :func:`extract_spheres` on a run of the cohort.

    Parameters
    ----------
    regions : LabelsAtlas, MapsAtlas, Spheres, or a labels image
        Resampled to the grid when on another one (labels: nearest
        neighbour; maps: linear).
    grid_shape, affine
        The cohort grid.
    voxel_index : ``(voxel, 3)`` int
        Grid indices of the stored voxels.
    strategy : str
        For labels atlases (see :func:`brainxr.regions.extract_labels`).
    """
    i, j, k = (np.asarray(column, dtype=np.intp) for column in np.asarray(voxel_index).T)
    if isinstance(regions, Spheres):
        candidates = np.column_stack([i, j, k])
        adjacency = sphere_adjacency(regions.seeds, regions.radius, candidates, affine, regions.allow_overlap, "the cohort")
        weights = adjacency.T.astype(np.float64).tocsr()
        reference = np.asarray(adjacency.sum(axis=1), dtype=np.float64).ravel()
        return RegionWeights("spheres", "mean", weights, reference, regions.regions)
    if isinstance(regions, MapsAtlas):
        atlas = regions.on_grid(tuple(grid_shape), affine)
        weights = atlas.matrix(i, j, k)
        support = atlas.support()
        reference = np.abs(atlas.image.values[support]).sum(axis=0) if support.any() else np.zeros(atlas.n_regions)
        gram = np.asarray((weights.T @ weights).todense())
        return RegionWeights("maps", "least_squares", weights, reference, atlas.regions, gram=gram)
    check_strategy(strategy)
    atlas = load_labels_atlas(regions).on_grid(tuple(grid_shape), affine)
    assignment = atlas.assignment(i, j, k)
    weights = assignment_matrix(assignment, atlas.n_regions)
    reference = atlas.sizes().astype(np.float64)
    return RegionWeights("labels", strategy, weights, reference, atlas.regions, assignment=assignment)


__all__ = ["RUN_DIM", "RegionWeights", "extract", "extract_cohort", "region_weights"]
