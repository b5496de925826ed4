"""A synthetic fMRIPrep-derivatives cohort with known ground truth.

:func:`make_synthetic_cohort` writes, for every subject, session and run, the
files fMRIPrep would write (preprocessed BOLD in MNI space with its JSON
sidecar, brain mask, confounds TSV and JSON), plus the atlases of the
synthetic template and the ground truth the data were generated from.

Signal model
------------
For each voxel ``v`` of a run's brain mask and each volume ``t``::

    bold[t, v] = baseline[v] * (1 + dummy[t]) * (1 + f[t, v]) + noise[t, v]

- ``baseline``: tissue-dependent EPI intensity (CSF > gray > white matter,
  about 600 to 1200), times a smooth subject-specific coil-sensitivity field
  and a fixed per-voxel texture;
- ``dummy``: the first ``n_dummy_scans`` volumes are brighter (T1 saturation
  not reached: +50%, +20%, ...);
- ``f``, the fractional change, sums
  - the neural signal: ``signal_level`` % x a voxel loading (its gray-matter
    fraction x 0.7-1.0) x the time series of the voxel's parcel, drawn from
    the sparse ground-truth precision and band-limited by the haemodynamic
    response (same filter for all regions, so the truth's covariance holds);
  - a global signal (``global_signal_level`` %, mostly gray matter);
  - physiological noise: aliased respiratory and cardiac oscillations,
    strongest in CSF (``physio_level`` %);
  - slow drifts: per-voxel linear and quadratic trends plus a global one
    (``drift_level`` %);
  - motion artefacts: voxel weights on the 6 motion parameters and their
    derivatives (rotations as mm at 50 mm), decaying with depth from the brain
    edge, and intensity drops at high-motion frames (FD > 0.5 mm);
- ``noise``: thermal noise, spatially smoothed by a [1, 2, 1] kernel along
  each axis, with standard deviation ``noise_level`` % of the mean gray-matter
  baseline.

Head motion is a slow random walk with frame-to-frame jitter and sudden
jerks (some transient), scaled by ``motion_level`` and by a per-subject
factor, so some subjects move more than others. Each run's brain mask is the
template mask minus susceptibility dropout (orbitofrontal, inferior
temporal) of run-specific extent (``mask_variability``); voxels outside it are
0 in the BOLD image.
"""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage, sparse
from threadpoolctl import threadpool_limits

from brainxr._views import view
import brainxr
from brainxr.datasets import _fmriprep_confounds as fc
from brainxr.datasets import _ground_truth, atlas as _atlas, template as _template
from brainxr.datasets._nifti_writer import StreamingNiftiWriter, nifti_header, write_nifti

SPACE = "MNI152NLin2009cAsym"
AROMA_SPACE = "MNI152NLin6Asym"

# mean EPI intensity of each tissue class
_EPI_BASELINE = {"csf": 1150.0, "gm": 800.0, "wm": 640.0}
# fractional brightening of the first non-steady-state volume, and its decay per volume
_DUMMY_BRIGHTENING = 0.5
_DUMMY_DECAY = 0.4
# motion artefact: % signal change per mm of displacement at the brain edge
_MOTION_COUPLING = 2.0
# depth (mm) over which motion artefacts fade from the brain edge
_EDGE_DEPTH = 8.0
# volumes generated at once (bounded by memory of full-volume noise blocks)
_BLOCK_BYTES = 64 * 2**20
# voxel signals generated at once (the temporaries are a few times this)
_GENERATION_BLOCK_BYTES = 16 * 2**20
_SUPPORTED_DTYPES = ("float32", "int16")
# ICA-AROMA outputs: number of ICs the noise ones are numbered among, smoothing
_N_AROMA_COMPONENTS = 40
_AROMA_FWHM = 6.0


@dataclass
class SyntheticRun:
    """One run of the synthetic cohort: its files and its ground truth.

    Attributes
    ----------
    subject, session, task, run : str or None
        BIDS entity labels (``session``/``run`` None when not in the names).
    bold, bold_json, mask, confounds, confounds_json, true_timeseries : Path
        Preprocessed BOLD and sidecar, brain mask, confounds TSV and JSON,
        ground-truth region time series (TSV).
    aroma_bold : Path or None
        ``desc-smoothAROMAnonaggr_bold`` image when ``aroma=True``.
    region_signals : ndarray (time, region)
        The true region time series (unit-variance scale).
    motion : ndarray (time, 6)
        Head-motion parameters (also in the confounds file).
    n_dummy_scans : int
    """

    subject: str
    session: str | None
    task: str
    run: str | None
    bold: Path
    bold_json: Path
    mask: Path
    confounds: Path
    confounds_json: Path
    true_timeseries: Path
    region_signals: np.ndarray = field(repr=False)
    motion: np.ndarray = field(repr=False)
    n_dummy_scans: int = 0
    aroma_bold: Path | None = None

    @property
    def entities(self):
        """BIDS entities of the run, in BIDS order, without the missing ones."""
        pairs = (("sub", self.subject), ("ses", self.session), ("task", self.task), ("run", self.run))
        return {key: value for key, value in pairs if value is not None}

    @property
    def name(self):
        """``sub-01_ses-1_task-rest_run-1``-style identifier."""
        return "_".join(f"{key}-{value}" for key, value in self.entities.items())

    __repr__ = view("synthetic_run_text")
    _repr_html_ = view("synthetic_run_html")


@dataclass
class SyntheticCohort:
    """Everything :func:`make_synthetic_cohort` wrote, and the ground truth.

    Attributes
    ----------
    root : Path
        The derivatives folder.
    runs : list of SyntheticRun
    t_r : float
    n_volumes : int
    resolution : float
    atlas_labels_img, atlas_labels_tsv : Path
        Labels atlas (``dseg``) and its look-up table.
    atlas_maps_img, atlas_maps_tsv : Path
        Probabilistic maps atlas (``probseg``) and its table.
    atlas_coords_tsv : Path
        One seed per parcel (``index, name, network, x, y, z``).
    template_mask, template_t1w : Path
        Template brain mask and T1w image at the data resolution.
    region_names : list of str
    region_networks : list of str
    region_coords : ndarray (region, 3)
        Centre of mass of each parcel (mm).
    precision, covariance : ndarray (region, region)
        Ground truth (covariance has a unit diagonal).
    precision_tsv, covariance_tsv : Path
    parameters : dict
        The generator's arguments, also in ``ground_truth/parameters.json``.
    """

    root: Path
    runs: list
    t_r: float
    n_volumes: int
    resolution: float
    atlas_labels_img: Path
    atlas_labels_tsv: Path
    atlas_maps_img: Path
    atlas_maps_tsv: Path
    atlas_coords_tsv: Path
    template_mask: Path
    template_t1w: Path
    region_names: list
    region_networks: list
    region_coords: np.ndarray = field(repr=False)
    precision: np.ndarray = field(repr=False)
    covariance: np.ndarray = field(repr=False)
    precision_tsv: Path = None
    covariance_tsv: Path = None
    parameters: dict = field(default_factory=dict, repr=False)

    @property
    def func(self):
        """Paths of the preprocessed BOLD images, one per run (nilearn's ``func``)."""
        return [str(run.bold) for run in self.runs]

    @property
    def confounds(self):
        """Paths of the confounds TSVs, one per run (nilearn's ``confounds``)."""
        return [str(run.confounds) for run in self.runs]

    @property
    def masks(self):
        """Paths of the run brain masks."""
        return [str(run.mask) for run in self.runs]

    @property
    def partial_correlation(self):
        """Ground-truth partial correlations (ones on the diagonal)."""
        scale = np.sqrt(np.diag(self.precision))
        partial = -self.precision / np.outer(scale, scale)
        np.fill_diagonal(partial, 1.0)
        return partial

    __repr__ = view("synthetic_cohort_text")
    _repr_html_ = view("synthetic_cohort_html")


def _check_positive_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_non_negative(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
        np.isfinite(value) and value >= 0
    ):
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


def _check_label(value, name):
    if not isinstance(value, str) or not value.isalnum():
        raise ValueError(f"{name} must be an alphanumeric BIDS label, got {value!r}")
    return value


def _labels(count):
    width = max(2, len(str(count)))
    return [f"{index:0{width}d}" for index in range(1, count + 1)]


def _json_dump(payload, path):
    with open(path, "w") as stream:
        json.dump(payload, stream, indent=2, sort_keys=True)
        stream.write("\n")


def _write_nifti(img, path):
    """Write an in-memory image, deterministically (gzip without name or time stamp)."""
    write_nifti(path, np.asarray(img.dataobj), img.affine, dtype=img.get_data_dtype())


# ---------------------------------------------------------------- run signals


class _CohortSpace:
    """What all runs share: the grid, tissue maps, parcels and voxel geometry."""

    def __init__(self, resolution, n_regions):
        self.resolution = resolution
        self.shape, self.affine = _template.mni152_grid(resolution)
        self.mask, tissues = _template._tissue_fractions(resolution)
        self.voxels = np.flatnonzero(self.mask.ravel())  # C-order flat indices
        flat = {name: tissues[name].ravel()[self.voxels] for name in ("gm", "wm", "csf")}
        self.gm, self.wm, self.csf = flat["gm"], flat["wm"], flat["csf"]
        atlas = _atlas.load_synthetic_labels_atlas(resolution, n_regions)
        self.atlas = atlas
        self.parcel = np.asarray(atlas.maps.dataobj).ravel()[self.voxels].astype(np.intp)
        ijk = np.column_stack(np.unravel_index(self.voxels, self.shape))
        self.xyz = ijk @ self.affine[:3, :3].T + self.affine[:3, 3]
        depth = ndimage.distance_transform_edt(np.pad(self.mask, 1)) [1:-1, 1:-1, 1:-1]
        self.depth_mm = depth.ravel()[self.voxels] * resolution
        self.edge = np.exp(-(self.depth_mm - resolution / 2) / _EDGE_DEPTH).clip(0, 1)
        self.center = 0.5 * (np.asarray(self.shape) - 1) * resolution
        self.smoothing = _smoothing_operator(self.mask)
        self.acompcor = self._acompcor_masks(tissues)
        outer = self.mask & ~ndimage.binary_erosion(self.mask)
        self.crown = outer.ravel()[self.voxels]

    def _acompcor_masks(self, tissues):
        """CSF, WM and combined aCompCor masks (fMRIPrep: thresholded, away from gray matter)."""
        gm = tissues["gm"]
        masks = {}
        for name, probability in (("CSF", tissues["csf"]), ("WM", tissues["wm"])):
            chosen = None
            # relax the criteria on coarse grids where few voxels are pure
            for threshold, dilation in ((0.99, 1), (0.9, 1), (0.9, 0), (0.5, 0)):
                near_gm = gm > 0.05
                if dilation:
                    near_gm = ndimage.binary_dilation(near_gm, iterations=dilation)
                candidate = (probability >= threshold) & ~near_gm & self.mask
                if candidate.sum() >= 10:
                    chosen = candidate
                    break
            if chosen is None:
                chosen = (probability >= np.max(probability[self.mask]) * 0.5) & self.mask
            masks[name] = chosen.ravel()[self.voxels]
        masks["combined"] = masks["CSF"] | masks["WM"]
        return masks

    def run_mask(self, rng, variability):
        """Template mask minus susceptibility dropout of run-specific extent (voxel selection)."""
        keep = np.ones(len(self.voxels), dtype=bool)
        if variability <= 0:
            return keep
        for centre in ((-22.0, 34.0, -22.0), (22.0, 34.0, -22.0), (-44.0, 2.0, -38.0), (44.0, 2.0, -38.0)):
            radius = variability * rng.uniform(6.0, 14.0)
            near = np.linalg.norm(self.xyz - np.asarray(centre), axis=1) < radius
            keep &= ~(near & (self.depth_mm < 12.0))
        return keep


def _motion_parameters(n_volumes, t_r, level, rng):
    """Head motion: slow random walk + jitter + jerks (some transient), (time, 6)."""
    scale = np.array([1.0, 1.0, 1.0, 0.01, 0.01, 0.01]) * level
    walk = np.cumsum(rng.normal(0.0, 0.012, (n_volumes, 6)), axis=0)
    jitter = rng.normal(0.0, 0.018, (n_volumes, 6))
    motion = walk + jitter
    n_jerks = rng.poisson(max(n_volumes * 0.012 * level, 0.0))
    frames = np.sort(rng.integers(1, max(n_volumes, 2), n_jerks))
    for frame in frames:
        jump = rng.normal(0.0, 0.35, 6)
        if rng.uniform() < 0.5:
            motion[frame] += jump  # transient: back at the next frame
        else:
            motion[frame:] += jump
    motion *= scale
    motion -= motion[0]
    return motion


def _motion_regressors(motion):
    """Displacements in mm (rotations at 50 mm) and their backward differences, (time, 12)."""
    displacement = motion.copy()
    displacement[:, 3:] *= fc.FD_RADIUS
    displacement -= displacement.mean(axis=0)
    derivative = np.vstack([np.zeros((1, 6)), np.diff(displacement, axis=0)])
    return np.hstack([displacement, derivative])


def _smoothing_operator(mask):
    """Sparse (voxel, voxel) averaging over each voxel and its in-mask face neighbours.

    Weights: 1/2 for the voxel, 1/12 for each neighbour, rows scaled so that
    smoothing unit white noise keeps a unit variance.
    """
    index = np.full(mask.shape, -1, dtype=np.int64)
    index[mask] = np.arange(int(mask.sum()))
    padded = np.pad(index, 1, constant_values=-1)
    rows, cols, weights = [np.arange(int(mask.sum()))], [np.arange(int(mask.sum()))], [np.full(int(mask.sum()), 0.5)]
    centre = tuple(slice(1, -1) for _ in range(3))
    for axis in range(3):
        for step in (-1, 1):
            shifted = list(centre)
            shifted[axis] = slice(1 + step, padded.shape[axis] - 1 + step)
            neighbour = padded[tuple(shifted)][mask]
            inside = neighbour >= 0
            rows.append(np.flatnonzero(inside))
            cols.append(neighbour[inside])
            weights.append(np.full(int(inside.sum()), 1.0 / 12.0))
    operator = sparse.csr_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
        shape=(int(mask.sum()),) * 2,
    )
    norm = np.sqrt(np.asarray(operator.multiply(operator).sum(axis=1)).ravel())
    return sparse.csr_matrix(sparse.diags(1.0 / norm) @ operator, dtype=np.float32)


def _run_bold(space, keep, region_signals, motion, t_r, n_dummy, params, subject_rng, run_rng, keep_artefact):
    """The run's masked data (time, voxel) float32, and its motion artefacts when asked (else None)."""
    n_volumes = len(motion)
    gm, csf = space.gm[keep], space.csf[keep]
    edge = space.edge[keep]
    n_voxels = int(keep.sum())

    # subject-level anatomy of the signal: coil sensitivity, texture, loadings
    coil = 1.0 + 0.1 * (space.xyz @ subject_rng.normal(0, 1, 3)) / 100.0
    texture = 1.0 + 0.02 * subject_rng.standard_normal(len(space.voxels))
    loading = np.sqrt(space.gm) * subject_rng.uniform(0.8, 1.0, len(space.voxels))
    baseline = (
        _EPI_BASELINE["csf"] * space.csf + _EPI_BASELINE["gm"] * space.gm + _EPI_BASELINE["wm"] * space.wm
    ) * coil * texture
    baseline, loading = baseline[keep], loading[keep]
    parcel = space.parcel[keep]

    # time courses and voxel weights of every component of the fractional change
    signals_ext = np.hstack([np.zeros((n_volumes, 1)), region_signals]).astype(np.float32)
    signal_weight = (loading * params["signal_level"] / 100.0).astype(np.float32)

    global_signal = _ground_truth.band_limited_noise(n_volumes, 1, t_r, run_rng)[:, 0]
    global_weight = gm + 0.3 * (1.0 - gm)
    times = t_r * np.arange(n_volumes)
    physio = np.column_stack(
        [
            np.sin(2 * np.pi * run_rng.uniform(0.25, 0.33) * times + run_rng.uniform(0, 2 * np.pi)),
            np.sin(2 * np.pi * run_rng.uniform(1.0, 1.3) * times + run_rng.uniform(0, 2 * np.pi)),
        ]
    )
    physio_weight = (csf + 0.15 * gm)[None, :] * run_rng.uniform(0.5, 1.5, (2, n_voxels))
    grid = np.linspace(-1.0, 1.0, n_volumes)
    trends = np.column_stack([grid, 1.5 * grid**2 - 0.5])
    trend_weight = run_rng.normal(0.0, 0.7, (2, n_voxels))
    global_drift = run_rng.normal(0.0, 0.5) * grid
    slow = np.column_stack([global_signal, physio, trends, global_drift]).astype(np.float32)
    slow_weight = (
        np.vstack(
            [
                global_weight * params["global_signal_level"],
                physio_weight * params["physio_level"],
                trend_weight * params["drift_level"],
                np.full(n_voxels, params["drift_level"]),
            ]
        )
        / 100.0
    ).astype(np.float32)

    regressors = _motion_regressors(motion).astype(np.float32)
    motion_weight = (run_rng.standard_normal((12, n_voxels)) * (edge * _MOTION_COUPLING / 100.0)).astype(np.float32)
    # intensity drops at high-motion frames (and a weaker one at the next frame)
    fd = np.nan_to_num(fc.framewise_displacement(motion))
    drop = np.zeros(n_volumes)
    for frame in np.flatnonzero(fd > 0.5):
        drop[frame] -= 0.02 * min(fd[frame], 3.0)
        if frame + 1 < n_volumes:
            drop[frame + 1] -= 0.4 * 0.02 * min(fd[frame], 3.0)
    drop_weight = (0.3 + edge).astype(np.float32)

    dummy = np.zeros(n_volumes, dtype=np.float32)
    dummy[:n_dummy] = _DUMMY_BRIGHTENING * _DUMMY_DECAY ** np.arange(n_dummy)
    baseline = baseline.astype(np.float32)
    noise_sd = np.float32(params["noise_level"] / 100.0 * _EPI_BASELINE["gm"])

    # one block of volumes at a time: only the output is ever (time, voxel) sized
    bold = np.empty((n_volumes, n_voxels), dtype=np.float32)
    artefact = np.empty((n_volumes, n_voxels), dtype=np.float32) if keep_artefact else None
    block = max(1, int(_GENERATION_BLOCK_BYTES // (4 * len(space.voxels))))
    for start in range(0, n_volumes, block):
        rows = slice(start, min(start + block, n_volumes))
        change = signals_ext[rows][:, parcel]
        change *= signal_weight
        change += slow[rows] @ slow_weight
        motion_part = regressors[rows] @ motion_weight
        motion_part += drop[rows, None].astype(np.float32) * drop_weight
        change += motion_part
        change += 1.0
        scale = (1.0 + dummy[rows])[:, None] * baseline
        change *= scale
        if artefact is not None:
            artefact[rows] = motion_part * scale
        # thermal noise, smoothed over face neighbours
        white = run_rng.standard_normal((len(space.voxels), rows.stop - rows.start), dtype=np.float32)
        change += (space.smoothing @ white)[keep].T * noise_sd
        bold[rows] = change
    return bold, artefact


def _quantize(bold, dtype):
    """Scaling of the on-disk values: None for float32; for int16 a ``scl_slope``
    (inter 0), and ``bold`` is rounded in place to the values a reader gets back."""
    if dtype == "float32":
        return bold, None
    slope = float(np.float32(float(np.abs(bold).max()) / 32000.0 or 1.0))
    step = np.float32(slope)
    for start in range(0, len(bold), 16):
        rows = bold[start : start + 16]
        np.rint(rows / step, out=rows)
        rows *= step
    return bold, slope


def _write_bold(path, space, keep, bold, t_r, dtype, slope, compresslevel):
    """Stream the masked data into a 4D image, zeros outside the run mask."""
    shape4d = (*space.shape, bold.shape[0])
    header = nifti_header(
        shape4d, space.affine, np.dtype(dtype), t_r=t_r, scl_slope=slope, descrip="brainxr synthetic BOLD"
    )
    # a C-ordered (volume, k, j, i) buffer holds the file's (Fortran-ordered) bytes
    i, j, k = np.unravel_index(space.voxels[keep], space.shape)
    file_order = (k * space.shape[1] + j) * space.shape[0] + i
    n_per_block = max(1, int(_BLOCK_BYTES // (np.prod(space.shape) * np.dtype(dtype).itemsize)))
    with StreamingNiftiWriter(path, header, compresslevel=compresslevel) as writer:
        for start in range(0, bold.shape[0], n_per_block):
            stop = min(start + n_per_block, bold.shape[0])
            volumes = np.zeros((stop - start, int(np.prod(space.shape))), dtype=dtype)
            values = bold[start:stop]
            if slope is not None:
                values = np.rint(values / np.float32(slope))
            volumes[:, file_order] = values
            writer.write_file_ordered(volumes)


class _BackgroundCall:
    """Run ``function(*args)`` in a thread; :meth:`result` joins it and re-raises its error."""

    def __init__(self, function, *args):
        self._error = None

        def target():
            try:
                function(*args)
            except BaseException as error:  # handed to the caller in result()
                self._error = error

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error


# ------------------------------------------------------------------ the cohort


def make_synthetic_cohort(
    path,
    n_subjects=4,
    n_volumes=100,
    resolution=4,
    t_r=2.0,
    n_sessions=1,
    n_runs=1,
    task="rest",
    dtype="float32",
    n_regions=100,
    seed=0,
    *,
    n_maps=32,
    n_dummy_scans=2,
    signal_level=2.0,
    noise_level=1.5,
    motion_level=1.0,
    global_signal_level=0.3,
    physio_level=1.0,
    drift_level=1.0,
    mask_variability=1.0,
    aroma=False,
    compresslevel=1,
    overwrite=False,
):
    """Write a synthetic fMRIPrep-derivatives cohort with known ground truth.

    Parameters
    ----------
    path : str or os.PathLike
        Output folder (created; must be empty or absent unless ``overwrite``).
    n_subjects, n_sessions, n_runs : int
        Cohort layout. With one session (run) the ``ses`` (``run``) entity is
        left out of the file names, as in BIDS.
    n_volumes : int, default=100
        Volumes per run (including the non-steady-state ones).
    resolution : float, default=4
        Voxel size in mm of the MNI152 grid (2 gives the (91, 109, 91) grid).
    t_r : float, default=2.0
        Repetition time in seconds.
    task : str, default="rest"
    dtype : {"float32", "int16"}
        On-disk type of the BOLD images; int16 is scaled with ``scl_slope``.
    n_regions : int, default=100
        Parcels of the labels atlas (even), i.e. size of the ground truth.
    seed : int, default=0
        Everything is a function of the arguments: the same arguments give
        the same bytes.
    n_maps : int, default=32
        Maps of the probabilistic atlas.
    n_dummy_scans : int, default=2
        Initial non-steady-state (brighter) volumes.
    signal_level, noise_level, global_signal_level, physio_level, drift_level : float
        Amplitudes in % of the baseline intensity (noise: of the gray-matter
        baseline) of the neural signal, thermal noise, global signal,
        physiological noise and slow drifts.
    motion_level : float, default=1.0
        Scales head motion (0 for none).
    mask_variability : float, default=1.0
        Scales the run-specific susceptibility dropout of the brain masks
        (0: every run has the template mask).
    aroma : bool, default=False
        Also write ICA-AROMA outputs as fMRIPrep < 24 did: ``aroma_motion_XX``
        columns in the confounds and a ``desc-smoothAROMAnonaggr_bold`` image
        (the data without the motion artefacts, smoothed 6 mm FWHM).
    compresslevel : int, default=1
        ISA-L gzip level of the images.
    overwrite : bool, default=False
        Replace an existing non-empty ``path``.

    Returns
    -------
    SyntheticCohort
    """
    root = Path(path)
    n_subjects = _check_positive_int(n_subjects, "n_subjects")
    n_sessions = _check_positive_int(n_sessions, "n_sessions")
    n_runs = _check_positive_int(n_runs, "n_runs")
    n_dummy_scans = _check_positive_int(n_dummy_scans, "n_dummy_scans", minimum=0)
    n_volumes = _check_positive_int(n_volumes, "n_volumes", minimum=n_dummy_scans + 10)
    resolution = _template.check_resolution(resolution)
    t_r = _check_non_negative(t_r, "t_r")
    if t_r <= 0:
        raise ValueError(f"t_r must be a positive number of seconds, got {t_r!r}")
    task = _check_label(task, "task")
    if dtype not in _SUPPORTED_DTYPES:
        raise ValueError(f"dtype must be one of {_SUPPORTED_DTYPES}, got {dtype!r}")
    seed = _check_positive_int(seed, "seed", minimum=0)
    params = {
        name: _check_non_negative(value, name)
        for name, value in (
            ("signal_level", signal_level),
            ("noise_level", noise_level),
            ("motion_level", motion_level),
            ("global_signal_level", global_signal_level),
            ("physio_level", physio_level),
            ("drift_level", drift_level),
            ("mask_variability", mask_variability),
        )
    }
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{root}: folder is not empty (pass overwrite=True to replace it)")
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)

    # one BLAS thread: the matrices are thin, and the other core compresses the images
    with threadpool_limits(limits=1, user_api="blas"):
        return _make_cohort(
            root, n_subjects=n_subjects, n_sessions=n_sessions, n_runs=n_runs, n_volumes=n_volumes,
            resolution=resolution, t_r=t_r, task=task, dtype=dtype, n_regions=n_regions, seed=seed,
            n_maps=n_maps, n_dummy_scans=n_dummy_scans, params=params, aroma=aroma,
            compresslevel=compresslevel,
        )


def _make_cohort(
    root, *, n_subjects, n_sessions, n_runs, n_volumes, resolution, t_r, task, dtype, n_regions, seed,
    n_maps, n_dummy_scans, params, aroma, compresslevel,
):
    space = _CohortSpace(resolution, n_regions)
    res = _template.resolution_label(resolution)
    parameters = {
        "n_subjects": n_subjects,
        "n_sessions": n_sessions,
        "n_runs": n_runs,
        "n_volumes": n_volumes,
        "resolution": resolution,
        "t_r": t_r,
        "task": task,
        "dtype": dtype,
        "n_regions": n_regions,
        "n_maps": n_maps,
        "n_dummy_scans": n_dummy_scans,
        "seed": seed,
        "aroma": bool(aroma),
        **params,
    }
    _json_dump(
        {
            "Name": "brainxr synthetic fMRIPrep cohort",
            "BIDSVersion": "1.9.0",
            "DatasetType": "derivative",
            "GeneratedBy": [
                {
                    "Name": "brainxr.datasets.make_synthetic_cohort",
                    "Version": brainxr.__version__,
                    "Description": "Synthetic data laid out and named as fMRIPrep >= 23 outputs.",
                }
            ],
            "License": "CC0",
        },
        root / "dataset_description.json",
    )

    atlas_files = _write_atlases(root, space, res, n_maps)
    truth = _ground_truth.make_ground_truth(
        space.atlas.lut, np.random.default_rng(np.random.SeedSequence([seed, 1])),
    )
    truth_dir = root / "ground_truth"
    truth_dir.mkdir(exist_ok=True)
    names = list(truth.region_names)
    precision_tsv, covariance_tsv = truth_dir / "precision.tsv", truth_dir / "covariance.tsv"
    pd.DataFrame(truth.precision, index=pd.Index(names, name="region"), columns=names).to_csv(
        precision_tsv, sep="\t", float_format="%.12g"
    )
    pd.DataFrame(truth.covariance, index=pd.Index(names, name="region"), columns=names).to_csv(
        covariance_tsv, sep="\t", float_format="%.12g"
    )
    _json_dump(parameters, truth_dir / "parameters.json")

    runs = []
    sessions = _labels(n_sessions) if n_sessions > 1 else [None]
    run_labels = [str(i) for i in range(1, n_runs + 1)] if n_runs > 1 else [None]
    for subject_index, subject in enumerate(_labels(n_subjects)):
        subject_rng_seed = np.random.SeedSequence([seed, 2, subject_index])
        subject_factor = float(np.exp(np.random.default_rng(subject_rng_seed).normal(0.0, 0.4)))
        for session_index, session in enumerate(sessions):
            for run_index, run in enumerate(run_labels):
                # a fresh generator per subject-level draw keeps runs independent of each other
                subject_rng = np.random.default_rng(np.random.SeedSequence([seed, 3, subject_index]))
                run_rng = np.random.default_rng(
                    np.random.SeedSequence([seed, 4, subject_index, session_index, run_index])
                )
                runs.append(
                    _make_run(
                        root, space, truth, res,
                        subject=subject, session=session, task=task, run=run,
                        n_volumes=n_volumes, t_r=t_r, n_dummy=n_dummy_scans, dtype=dtype,
                        params=params, motion_scale=params["motion_level"] * subject_factor,
                        subject_rng=subject_rng, run_rng=run_rng,
                        aroma=aroma, compresslevel=compresslevel,
                    )
                )

    return SyntheticCohort(
        root=root,
        runs=runs,
        t_r=t_r,
        n_volumes=n_volumes,
        resolution=resolution,
        region_names=names,
        region_networks=list(space.atlas.lut["network"]),
        region_coords=space.atlas.lut[["x", "y", "z"]].to_numpy(float),
        precision=truth.precision,
        covariance=truth.covariance,
        precision_tsv=precision_tsv,
        covariance_tsv=covariance_tsv,
        parameters=parameters,
        **atlas_files,
    )


def _write_atlases(root, space, res, n_maps):
    """Template and atlas files at the data resolution, under ``template/`` and ``atlas/``."""
    tpl = f"tpl-{SPACE}_res-{res}"
    template_dir, atlas_dir = root / "template", root / "atlas"
    template_dir.mkdir(exist_ok=True)
    atlas_dir.mkdir(exist_ok=True)
    files = {
        "template_mask": template_dir / f"{tpl}_desc-brain_mask.nii.gz",
        "template_t1w": template_dir / f"{tpl}_T1w.nii.gz",
        "atlas_labels_img": atlas_dir / f"{tpl}_atlas-Synth_dseg.nii.gz",
        "atlas_labels_tsv": atlas_dir / f"{tpl}_atlas-Synth_dseg.tsv",
        "atlas_maps_img": atlas_dir / f"{tpl}_atlas-SynthProb_probseg.nii.gz",
        "atlas_maps_tsv": atlas_dir / f"{tpl}_atlas-SynthProb_probseg.tsv",
        "atlas_coords_tsv": atlas_dir / f"{tpl}_atlas-Synth_desc-seeds_coordinates.tsv",
    }
    _write_nifti(_template.load_synthetic_mni152_brain_mask(space.resolution), files["template_mask"])
    _write_nifti(_template.load_synthetic_mni152_template(space.resolution), files["template_t1w"])
    _write_nifti(space.atlas.maps, files["atlas_labels_img"])
    space.atlas.lut.to_csv(files["atlas_labels_tsv"], sep="\t", index=False, float_format="%.6g")
    maps = _atlas.load_synthetic_maps_atlas(space.resolution, n_maps)
    _write_nifti(maps.maps, files["atlas_maps_img"])
    maps.lut.to_csv(files["atlas_maps_tsv"], sep="\t", index=False, float_format="%.6g")
    space.atlas.coords.to_csv(files["atlas_coords_tsv"], sep="\t", index=False, float_format="%.6g")
    return files


def _make_run(
    root, space, truth, res, *, subject, session, task, run, n_volumes, t_r, n_dummy, dtype,
    params, motion_scale, subject_rng, run_rng, aroma, compresslevel,
):
    entities = [f"sub-{subject}"]
    if session is not None:
        entities.append(f"ses-{session}")
    entities.append(f"task-{task}")
    if run is not None:
        entities.append(f"run-{run}")
    stem = "_".join(entities)
    func_dir = root / f"sub-{subject}" / (f"ses-{session}" if session else "") / "func"
    func_dir.mkdir(parents=True, exist_ok=True)
    bold_path = func_dir / f"{stem}_space-{SPACE}_res-{res}_desc-preproc_bold.nii.gz"
    mask_path = func_dir / f"{stem}_space-{SPACE}_res-{res}_desc-brain_mask.nii.gz"
    confounds_path = func_dir / f"{stem}_desc-confounds_timeseries.tsv"
    truth_path = root / "ground_truth" / f"{stem}_desc-truth_timeseries.tsv"

    keep = space.run_mask(run_rng, params["mask_variability"])
    region_signals = _ground_truth.band_limited_noise(
        n_volumes, len(truth.region_names), t_r, run_rng, truth.covariance
    )
    motion = _motion_parameters(n_volumes, t_r, motion_scale, run_rng)
    bold, artefact = _run_bold(
        space, keep, region_signals, motion, t_r, n_dummy, params, subject_rng, run_rng, aroma
    )
    bold, slope = _quantize(bold, dtype)
    # compress the image in the background while the confounds are computed
    writer = _BackgroundCall(_write_bold, bold_path, space, keep, bold, t_r, dtype, slope, compresslevel)
    try:
        raw_dir = f"sub-{subject}/" + (f"ses-{session}/" if session else "") + "func"
        _json_dump(
            {
                "RepetitionTime": t_r,
                "TaskName": task,
                "SkullStripped": True,
                "SliceTimingCorrected": False,
                "StartTime": 0.0,
                "Sources": [f"bids:raw:{raw_dir}/{stem}_bold.nii.gz"],
            },
            func_dir / f"{stem}_space-{SPACE}_res-{res}_desc-preproc_bold.json",
        )
        run_mask = np.zeros(space.shape, dtype=np.uint8)
        run_mask.ravel()[space.voxels[keep]] = 1
        _write_nifti(_template.make_nifti(run_mask, space.affine), mask_path)
        _json_dump(
            {"Type": "Brain", "RawSources": [f"bids:raw:{raw_dir}/{stem}_bold.nii.gz"]},
            mask_path.with_name(mask_path.name.replace(".nii.gz", ".json")),
        )
        confounds, metadata = fc.fmriprep_confounds(
            bold,
            t_r=t_r,
            motion=motion,
            n_dummy=n_dummy,
            acompcor_masks={name: selection[keep] for name, selection in space.acompcor.items()},
            crown_mask=space.crown[keep],
            center=space.center,
        )
        aroma_path = None
        if aroma:
            aroma_path = func_dir / f"{stem}_space-{AROMA_SPACE}_res-{res}_desc-smoothAROMAnonaggr_bold.nii.gz"
            confounds, metadata = _add_aroma(
                confounds, metadata, artefact, bold, space, keep, t_r, dtype,
                aroma_path, compresslevel, run_rng,
            )
    finally:
        writer.result()
    fc.write_confounds(confounds, metadata, confounds_path, confounds_path.with_suffix(".json"))

    pd.DataFrame(region_signals, columns=list(truth.region_names)).to_csv(
        truth_path, sep="\t", index=False, float_format="%.10g"
    )
    return SyntheticRun(
        subject=subject,
        session=session,
        task=task,
        run=run,
        bold=bold_path,
        bold_json=bold_path.with_name(bold_path.name.replace(".nii.gz", ".json")),
        mask=mask_path,
        confounds=confounds_path,
        confounds_json=confounds_path.with_suffix(".json"),
        true_timeseries=truth_path,
        region_signals=region_signals,
        motion=motion,
        n_dummy_scans=n_dummy,
        aroma_bold=aroma_path,
    )


def _add_aroma(confounds, metadata, artefact, bold, space, keep, t_r, dtype, path, compresslevel, rng):
    """ICA-AROMA outputs as fMRIPrep < 24 wrote them.

    The noise components are the principal time courses of the motion
    artefacts (what AROMA's classifier would flag), numbered among a set of
    ``_N_AROMA_COMPONENTS`` ICs as ``aroma_motion_XX``; the non-aggressively
    denoised image is the data without the artefacts, smoothed with a 6 mm
    FWHM Gaussian inside the brain mask (AROMA runs on SUSAN-smoothed data).
    """
    u, s, _ = np.linalg.svd(artefact - artefact.mean(axis=0), full_matrices=False)
    explained = np.cumsum(s**2) / np.sum(s**2)
    n_noise = int(min(np.searchsorted(explained, 0.99) + 1, _N_AROMA_COMPONENTS // 2))
    indices = np.sort(rng.choice(_N_AROMA_COMPONENTS, n_noise, replace=False)) + 1
    columns = {
        f"aroma_motion_{index:02d}": component / component.std()
        for index, component in zip(indices, u[:, :n_noise].T)
    }
    confounds = pd.concat([confounds, pd.DataFrame(columns)], axis=1)

    denoised = bold - artefact
    sigma = _AROMA_FWHM / np.sqrt(8 * np.log(2)) / space.resolution
    mask = np.zeros(space.shape, dtype=np.float32)
    mask.ravel()[space.voxels[keep]] = 1.0
    weight = ndimage.gaussian_filter(mask, sigma)
    voxels = space.voxels[keep]
    smoothed = np.empty_like(denoised)
    for frame in range(denoised.shape[0]):
        volume = np.zeros(space.shape, dtype=np.float32)
        volume.ravel()[voxels] = denoised[frame]
        smoothed[frame] = ndimage.gaussian_filter(volume, sigma).ravel()[voxels] / weight.ravel()[voxels]
    smoothed, aroma_slope = _quantize(smoothed, dtype)
    _write_bold(path, space, keep, smoothed, t_r, dtype, aroma_slope, compresslevel)
    return confounds, metadata
