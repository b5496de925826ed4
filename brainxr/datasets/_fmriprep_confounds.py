"""fMRIPrep's confounds, computed the way fMRIPrep (>= 23) computes them.

Each function mirrors the fMRIPrep / nipype / niworkflows code that produces
a column of ``desc-confounds_timeseries.tsv``, on data held as a ``(time,
voxel)`` array of the voxels of the run's brain mask:

- tissue mean signals (niworkflows ``SignalExtraction``);
- DVARS and standardized DVARS (nipype ``compute_dvars``, Nichols' AR(1)
  standardization, intensity normalized to a median of 1000);
- framewise displacement (Power, 50 mm radius) and RMS deviation (Jenkinson,
  80 mm radius) from the head-motion parameters;
- tCompCor (top 2% temporal-std voxels after quadratic detrending), aCompCor in
  the CSF, WM and combined masks, crown (edge) components, each after the
  128 s DCT high-pass, components kept up to 50% of variance (24 for the crown);
- the DCT basis (``cosine00``...) and one ``non_steady_state_outlier00`` column
  per dummy volume, both computed on the steady-state volumes only;
- derivative and quadratic expansions (backward differences, ``n/a`` first row)
  and ``motion_outlier00``... spike columns (FD > 0.5 mm or std DVARS > 1.5).

Column names follow fMRIPrep's files exactly (``cosine00``,
``non_steady_state_outlier00``, ``motion_outlier00``: no underscore before the
number; ``a_comp_cor_00``: with one), as does the JSON metadata.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial.transform import Rotation

MOTION_COLUMNS = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
HIGH_PASS_PERIOD = 128.0
FD_RADIUS = 50.0
RMSD_RADIUS = 80.0
VARIANCE_THRESHOLD = 0.5
TCOMPCOR_PERCENTILE = 0.02
N_EDGE_COMPONENTS = 24

# voxel columns handled at once when a computation needs float64 copies
_VOXEL_BLOCK = 16384

MOTION_METADATA = {
    "trans_x": {"Description": "Translation along left-right axis.", "Units": "mm"},
    "trans_y": {"Description": "Translation along anterior-posterior axis.", "Units": "mm"},
    "trans_z": {"Description": "Translation along superior-inferior axis.", "Units": "mm"},
    "rot_x": {"Description": 'Rotation about left-right axis. Also known as "pitch".', "Units": "rad"},
    "rot_y": {"Description": 'Rotation about anterior-posterior axis. Also known as "roll".', "Units": "rad"},
    "rot_z": {"Description": 'Rotation about superior-inferior axis. Also known as "yaw".', "Units": "rad"},
    "framewise_displacement": {"Units": "mm"},
}


def _voxel_blocks(n_voxels):
    for start in range(0, n_voxels, _VOXEL_BLOCK):
        yield slice(start, min(start + _VOXEL_BLOCK, n_voxels))


def mean_signal(bold, voxels):
    """Mean over the selected voxels at each time point (float64)."""
    if not np.any(voxels):
        return np.full(bold.shape[0], np.nan)
    return bold[:, voxels].mean(axis=1, dtype=np.float64)


def blocked_median(values):
    """Exact median of a large 2D array without sorting a copy of it.

    The quantiles of a strided sample bracket the middle ranks; one pass
    over blocks of columns counts the values below and inside the bracket,
    and only those inside are sorted. The bracket widens until it holds the
    middle ranks (at worst it is the whole range).
    """
    n_values = values.size
    ranks = ((n_values - 1) // 2, n_values // 2)  # the two middle ranks (equal when odd)
    sample = np.asarray(values[::7, ::13], dtype=np.float64).ravel()
    for width in (0.01, 0.05, 0.2, None):
        if width is None:
            low, high = float(values.min()), float(values.max())
        else:
            low, high = np.quantile(sample, [0.5 - width, 0.5 + width])
        n_below, inside = 0, []
        for block in _voxel_blocks(values.shape[1]):
            chunk = values[:, block]
            n_below += int(np.count_nonzero(chunk < low))
            inside.append(chunk[(chunk >= low) & (chunk <= high)])
        inside = np.concatenate(inside)
        if n_below <= ranks[0] and ranks[1] < n_below + len(inside):
            middle = np.partition(inside.astype(np.float64), (ranks[0] - n_below, ranks[1] - n_below))
            return 0.5 * (middle[ranks[0] - n_below] + middle[ranks[1] - n_below])
    raise AssertionError("unreachable: the full range holds every rank")


def dvars(bold, intensity_normalization=1000.0, variance_tol=1e-7):
    """Standardized and plain DVARS as nipype's ``compute_dvars`` (n/a first row).

    Parameters
    ----------
    bold : ndarray (time, voxel)
        Run data within the brain mask.

    Returns
    -------
    std_dvars, dvars : ndarray (time,)
    """
    n_times = bold.shape[0]
    scale = intensity_normalization / blocked_median(bold) if intensity_normalization else 1.0
    # FSL's "lower" percentiles are order statistics: one partition finds both
    lower_q1 = int(np.floor((n_times - 1) * 0.25))
    lower_q3 = int(np.floor((n_times - 1) * 0.75))
    sum_sq_diff = np.zeros(n_times - 1)
    diff_sd_hat = []
    n_kept = 0
    for block in _voxel_blocks(bold.shape[1]):
        raw = bold[:, block]
        ordered = np.partition(raw.T, (lower_q1, lower_q3), axis=1)  # contiguous rows: faster
        robust_sd = (ordered[:, lower_q3].astype(np.float64) - ordered[:, lower_q1]) * scale / 1.349
        keep = robust_sd > variance_tol
        data = raw[:, keep].astype(np.float64) * scale
        robust_sd = robust_sd[keep]
        centred = data - data.mean(axis=0)
        # lag-1 autocorrelation by Yule-Walker (nitime's AR_est_YW, order 1)
        ar1 = np.einsum("ij,ij->j", centred[1:], centred[:-1]) / np.einsum("ij,ij->j", centred, centred)
        diff_sd_hat.append(np.sqrt((1.0 - ar1) * 2.0) * robust_sd)
        difference = np.diff(data, axis=0)
        sum_sq_diff += np.einsum("ij,ij->i", difference, difference)
        n_kept += data.shape[1]
    plain = np.sqrt(sum_sq_diff / n_kept)
    standardized = plain / np.concatenate(diff_sd_hat).mean()
    pad = np.array([np.nan])
    return np.concatenate([pad, standardized]), np.concatenate([pad, plain])


def framewise_displacement(motion, radius=FD_RADIUS):
    """Power's framewise displacement: sum of absolute backward differences, rotations x radius."""
    diff = np.diff(np.asarray(motion, dtype=np.float64), axis=0)
    diff[:, 3:] *= radius
    return np.concatenate([[np.nan], np.abs(diff).sum(axis=1)])


def rigid_matrices(motion):
    """4x4 rigid transforms of the motion parameters (rotations about X, then Y, then Z)."""
    motion = np.asarray(motion, dtype=np.float64)
    matrices = np.tile(np.eye(4), (len(motion), 1, 1))
    matrices[:, :3, :3] = Rotation.from_euler("XYZ", motion[:, 3:]).as_matrix()
    matrices[:, :3, 3] = motion[:, :3]
    return matrices


def rms_deviation(motion, center, radius=RMSD_RADIUS):
    """Jenkinson's RMS deviation between consecutive transforms (fMRIPrep's ``rmsd``)."""
    matrices = rigid_matrices(motion)
    diff = matrices[1:] @ np.linalg.inv(matrices[:-1]) - np.eye(4)
    rot = diff[:, :3, :3]
    trans = diff[:, :3, 3] + rot @ np.asarray(center, dtype=np.float64)
    rmsd = np.sqrt(
        np.einsum("ij,ij->i", trans, trans)
        + np.trace(rot.transpose(0, 2, 1) @ rot, axis1=1, axis2=2) * radius**2 / 5
    )
    return np.concatenate([[np.nan], rmsd])


def cosine_drift(period_cut, frame_times):
    """nipype's ``_cosine_drift``: DCT-II regressors below 1/period_cut Hz, constant last."""
    n_times = len(frame_times)
    dt = frame_times[1] - frame_times[0] if n_times > 1 else 1.0
    order = max(int(np.floor(2 * n_times * (1.0 / period_cut) * dt)), 1)
    drift = np.zeros((n_times, order))
    normalizer = np.sqrt(2.0 / n_times)
    times = np.arange(n_times)
    for k in range(1, order):
        drift[:, k - 1] = normalizer * np.cos((np.pi / n_times) * (times + 0.5) * k)
    drift[:, order - 1] = 1.0
    return drift


def _legendre_design(n_times, degree):
    design = [np.ones(n_times)]
    grid = np.linspace(-1, 1, n_times)
    for order in range(1, degree + 1):
        design.append(np.polynomial.Legendre.basis(order)(grid))
    return np.column_stack(design)


def tcompcor_mask(bold, percentile_threshold=TCOMPCOR_PERCENTILE):
    """nipype's TCompCor mask: voxels in the top ``percentile_threshold`` of temporal std
    after removing a quadratic trend."""
    design = _legendre_design(bold.shape[0], 2)
    projector = np.linalg.pinv(design)
    tstd = np.empty(bold.shape[1])
    for block in _voxel_blocks(bold.shape[1]):
        data = bold[:, block].astype(np.float64)
        residual = data - design @ (projector @ data)
        std = residual.std(axis=0)
        std[(std == 0) | np.isnan(std)] = 0.0
        tstd[block] = std
    threshold = np.percentile(tstd, np.round(100.0 * (1.0 - percentile_threshold)).astype(int))
    return tstd >= threshold


def noise_components(timeseries, t_r, criterion, period_cut=HIGH_PASS_PERIOD, columns=None):
    """nipype's ``compute_noise_components`` for one mask, cosine pre-filter.

    Each voxel's time series is high-passed (DCT, ``period_cut`` s), divided
    by its standard deviation, and the principal components of the result are
    returned. They are computed from the ``time x time`` Gram matrix,
    accumulated over blocks of voxels: the same components and singular
    values as nipype's SVD (up to signs), without a copy of the data.

    Parameters
    ----------
    timeseries : ndarray (time, voxel)
    t_r : float
    criterion : float or int
        A fraction of variance in (0, 1), or a number of components.
    columns : ndarray of int, optional
        The voxels (columns of ``timeseries``) of the mask; all when omitted.

    Returns
    -------
    components : ndarray (time, n_retained)
    singular_values, variance_explained, cumulative : ndarray (n_components,)
    """
    n_times = timeseries.shape[0]
    columns = np.arange(timeseries.shape[1]) if columns is None else np.asarray(columns)
    design = cosine_drift(period_cut, t_r * np.arange(n_times))
    projector = np.linalg.pinv(design)
    gram = np.zeros((n_times, n_times))
    for start in range(0, len(columns), _VOXEL_BLOCK):
        data = timeseries[:, columns[start : start + _VOXEL_BLOCK]].astype(np.float64)
        data[:, np.isnan(data.sum(axis=0))] = 0.0
        data -= design @ (projector @ data)
        std = data.std(axis=0)
        std[(std == 0) | np.isnan(std)] = 1.0
        data /= std
        gram += data @ data.T
    eigenvalues, eigenvectors = np.linalg.eigh(gram)
    order = np.argsort(eigenvalues)[::-1][: min(n_times, len(columns))]
    u = eigenvectors[:, order]
    s = np.sqrt(np.clip(eigenvalues[order], 0.0, None))
    variance = s**2 / np.sum(s**2)
    cumulative = np.cumsum(variance)
    if 0 < criterion < 1:
        n_keep = int(np.searchsorted(cumulative, criterion) + 1)
    else:
        n_keep = int(criterion)
    n_keep = min(n_keep, len(s))
    return u[:, :n_keep], s, variance, cumulative


def _expand(frame, names):
    """Derivative and quadratic expansions, placed after each original column."""
    columns = {}
    for name in names:
        values = frame[name].to_numpy(dtype=np.float64)
        derivative = np.concatenate([[np.nan], np.diff(values)])
        columns[name] = values
        columns[f"{name}_derivative1"] = derivative
        columns[f"{name}_power2"] = values**2
        columns[f"{name}_derivative1_power2"] = derivative**2
    return columns


def _component_metadata(prefix, s, variance, cumulative, n_keep, method, mask=None, keep_dropped=False):
    metadata = {}
    n_dropped = 0
    for index in range(len(s)):
        retained = index < n_keep
        if not retained and not keep_dropped:
            continue
        name = f"{prefix}{index:02d}" if retained else f"dropped{n_dropped}"
        n_dropped += not retained
        entry = {
            "CumulativeVarianceExplained": round(float(cumulative[index]), 10),
            "Method": method,
            "Retained": bool(retained),
            "SingularValue": round(float(s[index]), 10),
            "VarianceExplained": round(float(variance[index]), 10),
        }
        if mask is not None:
            entry["Mask"] = mask
        metadata[name] = dict(sorted(entry.items()))
    return metadata


def fmriprep_confounds(
    bold,
    *,
    t_r,
    motion,
    n_dummy,
    acompcor_masks,
    crown_mask,
    center,
    fd_threshold=0.5,
    dvars_threshold=1.5,
):
    """All confounds of one run, as fMRIPrep writes them.

    Parameters
    ----------
    bold : ndarray (time, voxel), float32
        The run's data within its brain mask (as written to disk).
    t_r : float
        Repetition time (s).
    motion : ndarray (time, 6)
        ``trans_x, trans_y, trans_z`` (mm), ``rot_x, rot_y, rot_z`` (rad).
    n_dummy : int
        Number of initial non-steady-state volumes.
    acompcor_masks : dict
        Boolean voxel selections ``{"CSF": ..., "WM": ..., "combined": ...}``.
    crown_mask : ndarray of bool (voxel,)
        Voxels of the brain's edge for the crown components.
    center : sequence of 3 floats
        Rotation centre (mm) for the RMS deviation.

    Returns
    -------
    confounds : pandas.DataFrame
        Columns in fMRIPrep's order; NaN where fMRIPrep writes ``n/a``.
    metadata : dict
        The companion JSON.
    """
    n_times = bold.shape[0]
    steady = slice(n_dummy, n_times)
    metadata = {}

    # tCompCor mask first: its mean signal is one of the tissue signals
    high_variance = tcompcor_mask(bold[steady])
    signals = pd.DataFrame(
        {
            "global_signal": bold.mean(axis=1, dtype=np.float64),
            "csf": mean_signal(bold, acompcor_masks["CSF"]),
            "white_matter": mean_signal(bold, acompcor_masks["WM"]),
            "csf_wm": mean_signal(bold, acompcor_masks["combined"]),
            "tcompcor": mean_signal(bold, high_variance),
        }
    )
    for name in ("global_signal", "csf", "white_matter", "csf_wm", "tcompcor"):
        metadata[name] = {"Method": "Mean"}

    columns = _expand(signals, ["global_signal", "csf", "white_matter"])
    columns["csf_wm"] = signals["csf_wm"].to_numpy()
    columns["tcompcor"] = signals["tcompcor"].to_numpy()
    std_dvars, plain_dvars = dvars(bold)
    columns["std_dvars"] = std_dvars
    columns["dvars"] = plain_dvars
    fd = framewise_displacement(motion)
    columns["framewise_displacement"] = fd
    columns["rmsd"] = rms_deviation(motion, center)

    def padded(components):
        # nipype saves components and the cosine basis with 10 decimals ("%.10f")
        full = np.zeros((n_times, components.shape[1]))
        full[steady] = np.round(components, 10)
        return full

    steady_bold = bold[steady]
    tcc, s, var, cum = noise_components(steady_bold, t_r, VARIANCE_THRESHOLD, columns=np.flatnonzero(high_variance))
    for index, column in enumerate(padded(tcc).T):
        columns[f"t_comp_cor_{index:02d}"] = column
    metadata.update(_component_metadata("t_comp_cor_", s, var, cum, tcc.shape[1], "tCompCor"))

    for mask_name, prefix in (("CSF", "c_comp_cor_"), ("WM", "w_comp_cor_"), ("combined", "a_comp_cor_")):
        acc, s, var, cum = noise_components(
            steady_bold, t_r, VARIANCE_THRESHOLD, columns=np.flatnonzero(acompcor_masks[mask_name])
        )
        for index, column in enumerate(padded(acc).T):
            columns[f"{prefix}{index:02d}"] = column
        metadata.update(
            _component_metadata(prefix, s, var, cum, acc.shape[1], "aCompCor", mask=mask_name)
        )

    edge, s, var, cum = noise_components(steady_bold, t_r, N_EDGE_COMPONENTS, columns=np.flatnonzero(crown_mask))
    for index, column in enumerate(padded(edge).T):
        columns[f"edge_comp_{index:02d}"] = column
    metadata.update(
        _component_metadata(
            "edge_comp_", s, var, cum, edge.shape[1], "EdgeRegressor", mask="Edge", keep_dropped=True
        )
    )

    basis = cosine_drift(HIGH_PASS_PERIOD, t_r * np.arange(n_times - n_dummy))[:, :-1]
    for index, column in enumerate(padded(basis).T):
        columns[f"cosine{index:02d}"] = column
    for index in range(n_dummy):
        spike = np.zeros(n_times)
        spike[index] = 1.0
        columns[f"non_steady_state_outlier{index:02d}"] = spike

    motion_frame = pd.DataFrame(np.asarray(motion, dtype=np.float64), columns=MOTION_COLUMNS)
    columns.update(_expand(motion_frame, MOTION_COLUMNS))
    metadata.update(MOTION_METADATA)

    with np.errstate(invalid="ignore"):
        outliers = np.flatnonzero((fd > fd_threshold) | (std_dvars > dvars_threshold))
    for index, frame in enumerate(outliers):
        spike = np.zeros(n_times)
        spike[frame] = 1.0
        columns[f"motion_outlier{index:02d}"] = spike

    return pd.DataFrame(columns), dict(sorted(metadata.items()))


def write_confounds(confounds, metadata, tsv_path, json_path):
    """Write the TSV (``n/a`` for missing values, shortest exact float repr) and its JSON."""
    import json

    confounds.to_csv(tsv_path, sep="\t", index=False, na_rep="n/a")
    with open(json_path, "w") as stream:
        json.dump(metadata, stream, indent=2, sort_keys=True)
        stream.write("\n")
