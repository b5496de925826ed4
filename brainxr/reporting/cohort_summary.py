"""The cohort summary report: runs, motion, scrubbing, region coverage, group connectome.

``Cohort.report()`` and ``brainxr report STORE`` gather plain inputs (tables
and a DataArray) and call :func:`cohort_report`; nothing here reads a store.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr

from brainxr.reporting.html_report import HTMLReport

#: columns of the runs table: name -> meaning
RUN_COLUMNS = {
    "run": "run name (BIDS entities)",
    "t_r": "repetition time (s)",
    "n_volumes": "volumes in the run",
    "n_volumes_kept": "volumes kept after scrubbing",
    "mean_fd": "mean framewise displacement (mm)",
}


def _check_runs(runs) -> pd.DataFrame:
    if not isinstance(runs, pd.DataFrame):
        raise TypeError(f"runs: expected a pandas DataFrame with one row per run, got {type(runs).__name__}")
    missing = [column for column in RUN_COLUMNS if column not in runs.columns]
    if missing:
        raise ValueError(
            f"runs: missing columns {missing}; expected {list(RUN_COLUMNS)} (plus any BIDS entity columns "
            "such as sub, ses, task)"
        )
    return runs


def runs_summary(runs: pd.DataFrame) -> dict:
    """Key figures of a cohort: counts, TRs, volumes kept, motion.

    Parameters
    ----------
    runs : pandas.DataFrame
        One row per run with the columns of ``RUN_COLUMNS`` (``run``,
        ``t_r``, ``n_volumes``, ``n_volumes_kept``, ``mean_fd``) and any BIDS
        entity columns.
    """
    runs = _check_runs(runs)
    kept = runs["n_volumes_kept"].sum()
    total = runs["n_volumes"].sum()
    summary = {"runs": len(runs)}
    if "sub" in runs.columns:
        summary["subjects"] = runs["sub"].nunique()
    summary["TR (s)"] = ", ".join(f"{t:g}" for t in sorted(runs["t_r"].dropna().unique()))
    summary["volumes kept"] = f"{kept} / {total} ({100 * kept / total:.1f}%)" if total else "0 / 0"
    summary["mean FD (mm)"] = f"{runs['mean_fd'].mean():.3f}" if runs["mean_fd"].notna().any() else "n/a"
    return summary


def runs_figure(runs: pd.DataFrame, fd_threshold: float | None = 0.5):
    """Per-run mean framewise displacement and fraction of volumes kept, as two bar charts."""
    runs = _check_runs(runs)
    height = max(2.5, 0.22 * len(runs) + 1.2)
    figure, (fd_axes, kept_axes) = plt.subplots(1, 2, figsize=(10, height), sharey=True, layout="constrained")
    positions = np.arange(len(runs))
    fd_axes.barh(positions, runs["mean_fd"].to_numpy(dtype=float), color="#4a6fa5")
    if fd_threshold is not None:
        fd_axes.axvline(fd_threshold, color="#c0392b", linestyle="--", linewidth=1, label=f"{fd_threshold} mm")
        fd_axes.legend(loc="lower right", fontsize="small")
    fd_axes.set_xlabel("mean framewise displacement (mm)")
    fd_axes.set_yticks(positions)
    fd_axes.set_yticklabels(runs["run"].astype(str), fontsize="x-small")
    fd_axes.invert_yaxis()
    fraction = runs["n_volumes_kept"].to_numpy(dtype=float) / np.maximum(runs["n_volumes"].to_numpy(dtype=float), 1)
    kept_axes.barh(positions, 100 * fraction, color="#5a9e6f")
    kept_axes.set_xlim(0, 100)
    kept_axes.set_xlabel("volumes kept after scrubbing (%)")
    return figure


def coverage_figure(coverage: pd.DataFrame):
    """Region coverage (fraction of each region's voxels with signal), regions x runs heat map."""
    values = coverage.to_numpy(dtype=float)
    width = min(14, 3 + 0.08 * values.shape[0])
    figure, axes = plt.subplots(figsize=(width, 2.5 + 0.12 * min(values.shape[1], 40)), layout="constrained")
    image = axes.imshow(values.T, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=1)
    axes.set_xlabel(f"region ({values.shape[0]})")
    axes.set_ylabel(f"run ({values.shape[1]})")
    if values.shape[1] <= 40:
        axes.set_yticks(np.arange(values.shape[1]))
        axes.set_yticklabels([str(c) for c in coverage.columns], fontsize="x-small")
    figure.colorbar(image, ax=axes, label="coverage")
    return figure


def cohort_report(runs: pd.DataFrame, coverage: pd.DataFrame | None = None,
                  group_connectome: xr.DataArray | None = None, title: str = "brainxr cohort report",
                  description: str | None = None, min_coverage: float = 0.5, edge_threshold="95%",
                  brain_mask=None) -> HTMLReport:
    """Build the cohort summary report, one HTML file that opens offline.

    Parameters
    ----------
    runs : pandas.DataFrame
        One row per run with columns ``run``, ``t_r``, ``n_volumes``,
        ``n_volumes_kept``, ``mean_fd`` (and optionally BIDS entities such as
        ``sub``, ``ses``, ``task``).
    coverage : pandas.DataFrame, optional
        Region coverage in [0, 1]: one row per region (index = region names),
        one column per run.
    group_connectome : xarray.DataArray, optional
        The group connectivity matrix ``(region, region_)``; with region
        coordinates ``x, y, z`` it is also drawn on a glass brain.
    title, description : str
    min_coverage : float
        Regions whose coverage falls below it in some run are listed.
    edge_threshold : float or str
        Edges shown on the glass brain.
    brain_mask : 3D image, optional
        Glass-brain outlines (default the template mask).

    Returns
    -------
    HTMLReport
    """
    from brainxr.plotting import plot_connectome, plot_matrix

    runs = _check_runs(runs)
    report = HTMLReport(title, description)
    report.add_summary("Summary", runs_summary(runs))
    report.add_table("Runs", runs)
    if len(runs):
        report.add_figure("Motion and scrubbing", runs_figure(runs))
    if coverage is not None:
        if not isinstance(coverage, pd.DataFrame):
            raise TypeError(f"coverage: expected a DataFrame (regions x runs), got {type(coverage).__name__}")
        low = coverage.min(axis=1)
        low = low[low < min_coverage].sort_values()
        report.add_figure("Region coverage", coverage_figure(coverage),
                          caption="Fraction of each region's voxels with signal, in each run.")
        if len(low):
            table = pd.DataFrame({"region": low.index.astype(str), "lowest coverage": low.to_numpy()})
            report.add_table(f"Regions below {min_coverage:.0%} coverage in some run", table)
        else:
            report.add_text(None, f"Every region has at least {min_coverage:.0%} coverage in every run.")
    if group_connectome is not None:
        if not isinstance(group_connectome, xr.DataArray) or group_connectome.ndim != 2:
            raise ValueError("group_connectome: expected a (region, region_) DataArray")
        figure = plt.figure(figsize=(8, 6.5))
        plot_matrix(group_connectome, figure=figure, vmin=-1, vmax=1, title="Group connectome",
                    labels=None if group_connectome.shape[0] <= 60 else False)
        report.add_figure("Group connectome", figure)
        if all(c in group_connectome.coords for c in ("x", "y", "z")):
            display = plot_connectome(group_connectome, edge_threshold=edge_threshold, node_size=20,
                                      brain_mask=brain_mask, title=f"Edges above {edge_threshold}")
            report.add_figure(None, display)
    return report
