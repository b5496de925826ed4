"""Denoising quality metrics of the literature (Ciric et al. 2017; Parkes et al. 2018).

- QC-FC: across runs, the correlation between each run's mean framewise
  displacement and each edge's functional connectivity; its share of
  significant edges (p < 0.05, uncorrected and after Benjamini-Hochberg FDR)
  and its median absolute value;
- the distance dependence of QC-FC: Spearman's correlation, across edges,
  between the distance of two regions and their QC-FC;
- the loss of temporal degrees of freedom (regressors, censored volumes,
  filtered-out band) per run.

p-values come from ``scipy.special.stdtr`` (what ``scipy.stats.t.sf``
computes) and Spearman's correlation from pandas' average ranks: importing
``scipy.stats`` costs ~0.5 s in every ``brainxr run`` group level.
"""

from __future__ import annotations

import numpy as np
from scipy import special

__all__ = ["QcfcSums", "fdr_significant", "qcfc", "qcfc_summary"]


def fdr_significant(p_values: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Benjamini-Hochberg: which of ``p_values`` are significant at false discovery rate ``alpha``."""
    p_values = np.asarray(p_values, dtype=float)
    finite = np.isfinite(p_values)
    significant = np.zeros(p_values.shape, dtype=bool)
    p = p_values[finite]
    if p.size == 0:
        return significant
    order = np.argsort(p)
    thresholds = alpha * np.arange(1, p.size + 1) / p.size
    passed = np.flatnonzero(p[order] <= thresholds)
    if passed.size:
        keep = np.zeros(p.size, dtype=bool)
        keep[order[: passed[-1] + 1]] = True
        significant[np.flatnonzero(finite)] = keep
    return significant


def _with_p_values(r: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson's r (clipped to [-1, 1]; NaN with fewer than 3 runs) and its two-sided p-value.

    The p-value of the t statistic with ``n - 2`` degrees of freedom (at least 1).
    """
    r = np.where(n >= 3, np.clip(r, -1.0, 1.0), np.nan)
    t = r * np.sqrt((n - 2) / np.maximum(1e-300, 1 - r**2))
    p = 2 * special.stdtr(np.maximum(n - 2, 1), -np.abs(t))
    return r, np.where(np.isfinite(r), p, np.nan)


def qcfc(connectivity: np.ndarray, mean_fd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """QC-FC of each edge: Pearson's r across runs between mean FD and the edge's connectivity.

    Parameters
    ----------
    connectivity : ``(run, edge)`` array
        One value per run and edge (e.g. the lower triangle of each run's
        correlation matrix); NaN where a run lacks the edge.
    mean_fd : ``(run,)`` array

    Returns
    -------
    r, p : ``(edge,)`` arrays
        NaN for edges with fewer than 3 runs or no variance.
    """
    connectivity = np.asarray(connectivity, dtype=float)
    mean_fd = np.asarray(mean_fd, dtype=float)
    if connectivity.ndim != 2 or connectivity.shape[0] != mean_fd.shape[0]:
        raise ValueError(f"connectivity: expected (run, edge) with {mean_fd.shape[0]} runs, got shape {connectivity.shape}")
    valid = np.isfinite(connectivity) & np.isfinite(mean_fd)[:, None]
    n = valid.sum(axis=0).astype(float)
    fd = np.where(valid, mean_fd[:, None], 0.0)
    values = np.where(valid, connectivity, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        fd_centred = np.where(valid, fd - fd.sum(axis=0) / n, 0.0)
        value_centred = np.where(valid, values - values.sum(axis=0) / n, 0.0)
        r = (fd_centred * value_centred).sum(axis=0) / np.sqrt((fd_centred**2).sum(axis=0) * (value_centred**2).sum(axis=0))
        return _with_p_values(r, n)


class QcfcSums:
    """QC-FC accumulated run by run: memory of a few vectors of edges, whatever the number of runs.

    ``add`` one run's edges and mean FD at a time; :meth:`summary` gives the
    same values as :func:`qcfc_summary` on the stacked runs.

    Parameters
    ----------
    n_edges : int
    """

    def __init__(self, n_edges: int):
        self.n_runs = 0
        self._sums = {name: np.zeros(n_edges) for name in ("n", "fd", "fd2", "x", "x2", "fdx")}

    def add(self, edges: np.ndarray, mean_fd) -> None:
        """One run: its connectivity per edge (NaN where missing) and its mean framewise displacement."""
        self.n_runs += 1
        if mean_fd is None or not np.isfinite(mean_fd):
            return
        edges = np.asarray(edges, dtype=float)
        valid = np.isfinite(edges)
        values = np.where(valid, edges, 0.0)
        sums = self._sums
        sums["n"] += valid
        sums["fd"] += valid * mean_fd
        sums["fd2"] += valid * mean_fd**2
        sums["x"] += values
        sums["x2"] += values**2
        sums["fdx"] += values * mean_fd

    def qcfc(self) -> tuple[np.ndarray, np.ndarray]:
        """Pearson's r per edge and its two-sided p-value (NaN with fewer than 3 runs)."""
        s = self._sums
        n = s["n"]
        with np.errstate(invalid="ignore", divide="ignore"):
            covariance = s["fdx"] - s["fd"] * s["x"] / n
            variance_fd = s["fd2"] - s["fd"] ** 2 / n
            variance_x = s["x2"] - s["x"] ** 2 / n
            return _with_p_values(covariance / np.sqrt(variance_fd * variance_x), n)

    def summary(self, distances: np.ndarray | None = None, alpha: float = 0.05) -> dict:
        """As :func:`qcfc_summary`."""
        r, p = self.qcfc()
        return _summarise(r, p, self.n_runs, distances, alpha)


def _summarise(r, p, n_runs, distances, alpha) -> dict:
    finite = np.isfinite(r)
    summary = {
        "qcfc": r,
        "p": p,
        "n_runs": int(n_runs),
        "n_edges": int(finite.sum()),
        "percent_significant": float(100 * np.mean(p[finite] < alpha)) if finite.any() else float("nan"),
        "percent_significant_fdr": float(100 * np.mean(fdr_significant(p[finite], alpha))) if finite.any() else float("nan"),
        "median_abs_qcfc": float(np.median(np.abs(r[finite]))) if finite.any() else float("nan"),
        "distance_dependence": float("nan"),
    }
    if distances is not None:
        distances = np.asarray(distances, dtype=float)
        both = finite & np.isfinite(distances)
        if both.sum() >= 3:
            import pandas as pd

            # Spearman's: Pearson's on average ranks (Series.corr(method="spearman") would import scipy.stats)
            ranks = pd.DataFrame({"distance": distances[both], "qcfc": r[both]}).rank()
            summary["distance_dependence"] = float(np.corrcoef(ranks["distance"], ranks["qcfc"])[0, 1])
    return summary


def qcfc_summary(connectivity: np.ndarray, mean_fd: np.ndarray, distances: np.ndarray | None = None,
                 alpha: float = 0.05) -> dict:
    """QC-FC and its summaries.

    Parameters
    ----------
    connectivity : ``(run, edge)`` array
    mean_fd : ``(run,)`` array
    distances : ``(edge,)`` array, optional
        Distance between the two regions of each edge (mm).
    alpha : float

    Returns
    -------
    dict
        ``qcfc`` and ``p`` per edge; ``percent_significant`` (uncorrected),
        ``percent_significant_fdr``, ``median_abs_qcfc``, and
        ``distance_dependence`` (Spearman's rho, NaN without distances).
    """
    r, p = qcfc(connectivity, mean_fd)
    return _summarise(r, p, np.asarray(mean_fd).size, distances, alpha)
