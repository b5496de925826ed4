"""Reports of ``brainxr run``: one per participant and one for the group, each a self-contained HTML file.

They take plain inputs (arrays, tables, DataArrays) gathered by the command;
nothing here reads a store or the outputs.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr

from brainxr.plotting.carpet import detrend_standardize
from brainxr.reporting.html_report import HTMLReport

_COLOURS = plt.get_cmap("tab10").colors


def carpet_figure(signals: np.ndarray, t_r: float, censored=(), title: str = "Carpet plot"):
    """Voxel signals (detrended, z-scored) as an image over time, censored volumes marked."""
    values = detrend_standardize(np.asarray(signals, dtype=float))
    figure, axes = plt.subplots(figsize=(10, 3.2), layout="constrained")
    extent = (0, len(values) * t_r, values.shape[1], 0)
    axes.imshow(values.T, aspect="auto", cmap="gray", vmin=-2, vmax=2, interpolation="nearest", extent=extent)
    for volume in censored:
        axes.axvspan(volume * t_r, (volume + 1) * t_r, color="#c0392b", alpha=0.25, linewidth=0)
    axes.set_xlabel("time (s)")
    axes.set_ylabel(f"voxels ({values.shape[1]} shown)")
    axes.set_title(title, fontsize="medium")
    return figure


def fd_figure(fd: np.ndarray, t_r: float, censored: dict, threshold: float | None = 0.5):
    """Framewise displacement over time, with the volumes each strategy censors."""
    fd = np.asarray(fd, dtype=float)
    times = np.arange(len(fd)) * t_r
    rows = max(1, len(censored))
    figure, axes = plt.subplots(figsize=(10, 2.2 + 0.35 * rows), layout="constrained")
    axes.plot(times, fd, color="#2c4a75", linewidth=1, label="framewise displacement")
    if threshold is not None:
        axes.axhline(threshold, color="#c0392b", linestyle="--", linewidth=1, label=f"{threshold} mm")
    top = np.nanmax(fd) if np.isfinite(fd).any() else 1.0
    for position, (label, volumes) in enumerate(censored.items()):
        level = top * (1.08 + 0.08 * position)
        axes.scatter(np.asarray(volumes) * t_r, np.full(len(volumes), level), marker="|", s=60,
                     color=_COLOURS[position % 10], label=f"censored by {label} ({len(volumes)})")
    axes.set_xlabel("time (s)")
    axes.set_ylabel("FD (mm)")
    axes.legend(fontsize="x-small", loc="upper left", ncols=2)
    return figure


def coverage_figure(coverage: dict):
    """Distribution of region coverage for each atlas."""
    figure, axes = plt.subplots(figsize=(8, 2.8), layout="constrained")
    for position, (label, values) in enumerate(coverage.items()):
        axes.hist(np.asarray(values, dtype=float), bins=np.linspace(0, 1, 21), alpha=0.6, label=label,
                  color=_COLOURS[position % 10])
    axes.set_xlabel("fraction of the region's voxels with signal")
    axes.set_ylabel("regions")
    axes.legend(fontsize="x-small")
    return figure


def matrix_figure(matrix: xr.DataArray | np.ndarray, title: str, names=None):
    from brainxr.plotting import plot_matrix

    figure = plt.figure(figsize=(7, 6))
    values = matrix.values if isinstance(matrix, xr.DataArray) else np.asarray(matrix)
    labels = False if values.shape[0] > 60 or names is None else list(names)
    plot_matrix(values, figure=figure, vmin=-1, vmax=1, title=title, labels=labels)
    return figure


def participant_report(participant: str, runs: list, description: str | None = None) -> HTMLReport:
    """A participant's report.

    Parameters
    ----------
    participant : str
        ``sub-<label>``.
    runs : list of dict
        One per run: ``name``, ``t_r``, ``fd`` (array or None), ``censored``
        (strategy -> censored volume indices), ``carpet`` (``(time, voxel)``
        array, a sample of the run's voxels), ``coverage`` (atlas -> region
        coverage), ``connectome`` (a ``(region, region_)`` DataArray),
        ``connectome_title``, ``summary`` (name -> value).
    """
    report = HTMLReport(f"brainxr: {participant}", description)
    report.add_summary("Summary", {"runs": len(runs)})
    for run in runs:
        report.add_summary(run["name"], run.get("summary", {}))
        censored = run.get("censored", {})
        any_censored = sorted(set().union(*censored.values())) if censored else []
        if run.get("carpet") is not None:
            report.add_figure(None, carpet_figure(run["carpet"], run["t_r"], any_censored,
                                                  "Carpet plot (red: volumes censored by some strategy)"), image_format="png")
        if run.get("fd") is not None:
            report.add_figure(None, fd_figure(run["fd"], run["t_r"], censored),
                              caption="Framewise displacement and the volumes each denoising strategy censors.")
        if run.get("coverage"):
            report.add_figure(None, coverage_figure(run["coverage"]), caption="Region coverage of each atlas.")
        if run.get("connectome") is not None:
            report.add_figure(None, matrix_figure(run["connectome"], run.get("connectome_title", "Connectome"),
                                                  run["connectome"]["region"].values))
    return report


def _strategy_bars(table: pd.DataFrame, atlas: str):
    rows = table[table["atlas"] == atlas]
    metrics = [("percent_significant_qcfc", "% edges with significant QC-FC"),
               ("median_abs_qcfc", "median |QC-FC|"),
               ("qcfc_distance_dependence", "QC-FC distance dependence (rho)"),
               ("mean_tdof_loss", "mean tDOF lost (volumes)")]
    figure, axes = plt.subplots(1, len(metrics), figsize=(12, 2.8), layout="constrained")
    for axis, (column, label) in zip(axes, metrics):
        axis.bar(rows["strategy"], rows[column], color=[_COLOURS[i % 10] for i in range(len(rows))])
        axis.set_title(label, fontsize="small")
        axis.tick_params(axis="x", labelrotation=45, labelsize="x-small")
    return figure


def _qcfc_distributions(qc: dict, atlas: str):
    entries = [(strategy, summary) for (name, strategy), summary in qc.items() if name == atlas]
    figure, (hist_axes, distance_axes) = plt.subplots(1, 2, figsize=(11, 3.4), layout="constrained")
    for position, (strategy, summary) in enumerate(entries):
        values = summary["qcfc"][np.isfinite(summary["qcfc"])]
        colour = _COLOURS[position % 10]
        hist_axes.hist(values, bins=40, range=(-1, 1), histtype="step", color=colour, linewidth=1.5, label=strategy)
        if summary.get("distances") is not None:
            distances = summary["distances"]
            keep = np.isfinite(summary["qcfc"])
            order = np.argsort(distances[keep])
            smoothed = pd.Series(summary["qcfc"][keep][order]).rolling(max(5, keep.sum() // 20), center=True).mean()
            distance_axes.scatter(distances[keep], summary["qcfc"][keep], s=2, alpha=0.15, color=colour, rasterized=True)
            distance_axes.plot(distances[keep][order], smoothed, color=colour, linewidth=1.5,
                               label=f"{strategy} (rho={summary['distance_dependence']:.2f})")
    hist_axes.set_xlabel("QC-FC (r across runs of mean FD and edge FC)")
    hist_axes.set_ylabel("edges")
    hist_axes.legend(fontsize="x-small")
    distance_axes.axhline(0, color="k", linewidth=0.5)
    distance_axes.set_xlabel("distance between regions (mm)")
    distance_axes.set_ylabel("QC-FC")
    distance_axes.legend(fontsize="x-small")
    return figure


def motion_figure(runs: pd.DataFrame, strategies: list):
    height = max(2.5, 0.2 * len(runs) + 1.2)
    figure, (fd_axes, kept_axes) = plt.subplots(1, 2, figsize=(11, height), sharey=True, layout="constrained")
    positions = np.arange(len(runs))
    fd_axes.barh(positions, runs["mean_fd"].to_numpy(dtype=float), color="#4a6fa5")
    fd_axes.set_yticks(positions)
    fd_axes.set_yticklabels(runs["run"].astype(str), fontsize="x-small")
    fd_axes.invert_yaxis()
    fd_axes.set_xlabel("mean framewise displacement (mm)")
    width = 0.8 / max(1, len(strategies))
    for index, strategy in enumerate(strategies):
        column = f"n_volumes_kept_{strategy}"
        if column in runs:
            kept = 100 * runs[column].to_numpy(dtype=float) / runs["n_volumes"].to_numpy(dtype=float)
            kept_axes.barh(positions - 0.4 + (index + 0.5) * width, kept, height=width, label=strategy,
                           color=_COLOURS[index % 10])
    kept_axes.set_xlim(0, 100)
    kept_axes.set_xlabel("volumes kept (%)")
    kept_axes.legend(fontsize="x-small", loc="lower right")
    return figure


def group_report(runs: pd.DataFrame, qcfc_table: pd.DataFrame, qc: dict, failures: pd.DataFrame | None = None,
                 description: str | None = None) -> HTMLReport:
    """The group report: runs, motion, volumes kept, coverage, group connectomes and denoising QC side by side.

    Parameters
    ----------
    runs : DataFrame
        One row per run (``run``, ``participant_id``, ``mean_fd``,
        ``n_volumes``, ``n_volumes_kept_<strategy>``, ``tdof_loss_<strategy>``,
        ``mean_coverage_<atlas>``, ...).
    qcfc_table : DataFrame
        One row per atlas and strategy (see :mod:`brainxr.bids_app.group`).
    qc : dict
        ``(atlas, strategy)`` -> :func:`brainxr.reporting.qc.qcfc_summary`
        output plus ``distances``, ``tdof_loss``, ``group_correlation``.
    failures : DataFrame, optional
        Runs that failed (``run``, ``stage``, ``error``).
    """
    atlases = list(dict.fromkeys(qcfc_table["atlas"]))
    strategies = list(dict.fromkeys(qcfc_table["strategy"]))
    report = HTMLReport("brainxr: group report", description)
    report.add_summary("Summary", {
        "runs": len(runs), "participants": runs["participant_id"].nunique() if len(runs) else 0,
        "atlases": ", ".join(atlases), "strategies": ", ".join(strategies),
        "mean FD (mm)": f"{runs['mean_fd'].mean():.3f}" if runs["mean_fd"].notna().any() else "n/a"})
    if failures is not None and len(failures):
        report.add_table("Failed runs", failures)
    report.add_figure("Motion and volumes kept", motion_figure(runs, strategies))
    report.add_table("Runs", runs)
    coverage_columns = [c for c in runs.columns if c.startswith("mean_coverage_")]
    if coverage_columns:
        report.add_figure("Region coverage", coverage_figure({c.removeprefix("mean_coverage_"): runs[c] for c in coverage_columns}),
                          caption="Mean region coverage of each run, per atlas.")
    report.add_table("Denoising quality (Ciric et al. 2017; Parkes et al. 2018)", qcfc_table,
                     caption="QC-FC: correlation across runs between mean framewise displacement and each edge's "
                             "correlation; significant at p < 0.05 (uncorrected, and Benjamini-Hochberg FDR); distance "
                             "dependence: Spearman's rho between inter-region distance and QC-FC; tDOF loss: "
                             "regressors + censored volumes + filtered-out band.")
    for atlas in atlases:
        report.add_figure(f"Strategies side by side: {atlas}", _strategy_bars(qcfc_table, atlas))
        report.add_figure(None, _qcfc_distributions(qc, atlas), image_format="png",  # one point per edge: PNG
                          caption="Left: distribution of QC-FC over edges (narrow and centred on 0 is best). "
                                  "Right: QC-FC against the distance between regions.")
        for strategy in strategies:
            summary = qc.get((atlas, strategy))
            if summary is not None and summary.get("group_correlation") is not None:
                report.add_figure(f"Group connectome: {atlas}, {strategy}",
                                  matrix_figure(summary["group_correlation"], "Mean correlation (Fisher z)"),
                                  image_format="png")
    return report
