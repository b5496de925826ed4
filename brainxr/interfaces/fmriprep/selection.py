"""Selecting confounds from an fMRIPrep confounds table by denoising strategy.

:func:`select_confounds` is the in-memory core of
:func:`~brainxr.interfaces.fmriprep.load_confounds`: it works on the table
(a DataFrame as read from the TSV, n/a as NaN) and the JSON metadata, so the
same strategies apply to confounds kept in a cohort store. Its output equals
nilearn 0.14's ``load_confounds``: the selected regressors (columns sorted by
name, first-row n/a filled with the second row, demeaned over the kept
volumes) and the sample mask.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, fields, replace

import numpy as np
import pandas as pd

from brainxr.interfaces.fmriprep.presets import PRESETS, preset_parameters
from brainxr.interfaces.fmriprep.scrubbing import is_outlier_column, motion_outliers

STRATEGIES = ("motion", "high_pass", "wm_csf", "global_signal", "compcor", "ica_aroma", "tedana", "scrub", "non_steady_state")
EXPANSIONS = ("basic", "power2", "derivatives", "full")
COMPCOR_TYPES = ("anat_combined", "anat_separated", "temporal", "temporal_anat_combined", "temporal_anat_separated")
ICA_AROMA_TYPES = ("full", "basic")
TEDANA_TYPES = ("aggressive", "non-aggressive")

MOTION_PARAMETERS = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
SUFFIXES = {
    "basic": (),
    "derivatives": ("derivative1",),
    "power2": ("power2",),
    "full": ("derivative1", "power2", "derivative1_power2"),
}
# CompCor column prefixes and anatomical masks (fMRIPrep >= 21 names WM/CSF
# components w_comp_cor/c_comp_cor; earlier versions a_comp_cor with a Mask)
COMPCOR_PREFIXES = {
    "temporal_anat_combined": ("t", "a"),
    "temporal_anat_separated": ("t", "a", "w", "c"),
    "temporal": ("t",),
    "anat_combined": ("a",),
    "anat_separated": ("a", "w", "c"),
}
COMPCOR_MASKS = {"combined": ("combined",), "separated": ("WM", "CSF")}


def expand(parameters, model: str) -> list[str]:
    """Column names of parameters with their ``model`` expansions (nilearn's order)."""
    columns = list(parameters)
    for parameter in parameters:
        columns.extend(f"{parameter}_{suffix}" for suffix in SUFFIXES[model])
    return columns


def _check_choice(value, allowed, name: str) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def check_strategy(strategy, **options) -> None:
    """Validate a strategy and the options of its components (as nilearn, plus n_compcor)."""
    if not isinstance(strategy, (tuple, list)):
        raise ValueError(
            f"strategy needs to be a tuple or list of strings. A {strategy.__class__.__name__} was provided instead."
        )
    if len(strategy) == 0:
        warnings.warn("strategy is empty, confounds will return None.", stacklevel=3)
    for component in strategy:
        if component == "non_steady_state":
            warnings.warn(
                "Non-steady state volumes are always detected. It doesn't need to be supplied as part of the "
                "strategy. Supplying non_steady_state in strategy will not have additional effect.",
                stacklevel=3,
            )
        _check_choice(component, STRATEGIES, "strategy")
    if "compcor" in strategy and "high_pass" not in strategy:
        raise ValueError(
            "When using compcor, `high_pass` must be included in strategy: fMRIPrep computes CompCor on "
            f"high-pass filtered data, so its cosine regressors must be removed too. Current strategy: '{strategy}'"
        )
    for component in ("motion", "wm_csf", "global_signal"):
        if component in strategy:
            _check_choice(options[component], EXPANSIONS, component)
    if "compcor" in strategy:
        _check_choice(options["compcor"], COMPCOR_TYPES, "compcor")
        n_compcor = options["n_compcor"]
        if n_compcor != "all" and (isinstance(n_compcor, bool) or not isinstance(n_compcor, (int, np.integer)) or n_compcor < 1):
            raise ValueError(f"n_compcor must be 'all' or a positive integer, got {n_compcor!r}")
    if "ica_aroma" in strategy:
        _check_choice(options["ica_aroma"], ICA_AROMA_TYPES, "ica_aroma")
    if "tedana" in strategy:
        _check_choice(options["tedana"], TEDANA_TYPES, "tedana")
    if "scrub" in strategy:
        scrub = options["scrub"]
        if isinstance(scrub, bool) or not isinstance(scrub, (int, np.integer)) or scrub < 0:
            raise ValueError(f"scrub must be a non-negative integer (minimal segment length), got {scrub!r}")


@dataclass(frozen=True)
class ConfoundsStrategy:
    """A denoising strategy: its noise components and their options, checked once.

    The parameters of nilearn's ``load_confounds`` (0.14), with its defaults.
    :func:`load_confounds`, :func:`select_confounds`, :func:`clean_run` and the
    cohort all build one of these (:meth:`from_options` for a preset name) and
    read their options from it; :meth:`as_dict` is its JSON-able record (for
    provenance).

    Parameters
    ----------
    strategy : tuple or list of str, default=("motion", "high_pass", "wm_csf")
        Noise components: "motion", "high_pass", "wm_csf", "global_signal",
        "compcor", "ica_aroma", "scrub" and "tedana". Non-steady-state volumes
        are always censored.
    motion, wm_csf, global_signal : {"basic", "power2", "derivatives", "full"}
        Expansions: the parameters, with their squares, derivatives, or all.
        Defaults "full", "basic", "basic".
    scrub : int, default=5
        Also censor kept segments shorter than this many volumes.
    fd_threshold : float, default=0.5
        Framewise displacement (mm) above which a volume is a motion outlier.
    std_dvars_threshold : float, default=1.5
        Standardized DVARS above which a volume is a motion outlier.
    compcor : str, default="anat_combined"
        "anat_combined", "anat_separated", "temporal",
        "temporal_anat_combined" or "temporal_anat_separated".
    n_compcor : "all" or int, default="all"
        Components kept per mask.
    ica_aroma : {"full", "basic"}, default="full"
        "full": the image was denoised by ICA-AROMA, no regressor;
        "basic": the ``aroma_motion_XX`` noise components.
    tedana : {"aggressive", "non-aggressive"}, default="aggressive"
        With "tedana": tedana's rejected (or rejected and accepted) components.
    demean : bool, default=True
        Remove the mean of each regressor (over the kept volumes).

    Raises
    ------
    ValueError
        An unknown component or option value (named), or compcor without
        high_pass.
    """

    strategy: tuple = ("motion", "high_pass", "wm_csf")
    motion: str = "full"
    scrub: int = 5
    fd_threshold: float = 0.5
    std_dvars_threshold: float = 1.5
    wm_csf: str = "basic"
    global_signal: str = "basic"
    compcor: str = "anat_combined"
    n_compcor: int | str = "all"
    ica_aroma: str = "full"
    tedana: str = "aggressive"
    demean: bool = True

    def __post_init__(self):
        check_strategy(self.strategy, **self.options())
        object.__setattr__(self, "strategy", tuple(self.strategy))

    @classmethod
    def option_names(cls) -> tuple:
        """The names of the options (every parameter but ``strategy``)."""
        return tuple(f.name for f in fields(cls) if f.name != "strategy")

    @classmethod
    def from_options(cls, strategy="simple", **options) -> ConfoundsStrategy:
        """A strategy from a preset name or a list of components.

        Options left to None take the preset's value (preset name, as
        ``load_confounds_strategy``) or ``load_confounds``' default (list of
        components).

        Parameters
        ----------
        strategy : str, sequence of str or ConfoundsStrategy
            A preset name (``"simple"``, ``"scrubbing"``...), a list of
            components (``["motion", "wm_csf"]``), or a strategy to update.
        **options
            ``load_confounds`` options (``motion="full"``, ``fd_threshold=0.5``...).
        """
        if isinstance(strategy, ConfoundsStrategy):
            return replace(strategy, **{key: value for key, value in options.items() if value is not None})
        if isinstance(strategy, str):
            if strategy not in PRESETS:
                raise ValueError(
                    f"strategy must be a preset name {tuple(PRESETS)} or a list of noise components, got {strategy!r}"
                )
            return cls(**preset_parameters(strategy, **options))
        unknown = sorted(set(options) - set(cls.option_names()))
        if unknown:
            raise TypeError(f"unknown confounds strategy option(s) {unknown}; accepted: {sorted(cls.option_names())}")
        return cls(strategy, **{key: value for key, value in options.items() if value is not None})

    def options(self) -> dict:
        """The options, by name."""
        return {name: getattr(self, name) for name in self.option_names()}

    def as_dict(self) -> dict:
        """``strategy`` (a list) and the options: JSON-able, and ``ConfoundsStrategy(**d)`` gives it back."""
        return {"strategy": list(self.strategy), **self.options()}


def compcor_columns(metadata: dict, compcor: str, n_compcor) -> list[str]:
    """CompCor columns to use, from the confounds JSON (``Mask``, ``Retained``)."""
    mask_type = compcor.split("_")[-1] if "_" in compcor else None
    columns = []
    for prefix in COMPCOR_PREFIXES[compcor]:
        n_components = sum(f"{prefix}_comp_cor" in name for name in metadata)
        names = [f"{prefix}_comp_cor_{i:02d}" for i in range(n_components)]
        names = [name for name in names if metadata.get(name, {}).get("Retained", True) is not False]
        groups = [names]
        if prefix == "a":
            masks = COMPCOR_MASKS[mask_type]
            groups = [[name for name in names if metadata.get(name, {}).get("Mask") == mask] for mask in masks]
        for group in groups:
            columns.extend(group if n_compcor == "all" or n_compcor >= len(group) else group[:n_compcor])
    return columns


def _tedana_columns(mixing: pd.DataFrame, metrics: pd.DataFrame, tedana: str) -> pd.DataFrame:
    """tedana's rejected (or all classified) components, named ``<class>_<ICA_xx>``."""
    classes = ["rejected"] if tedana == "aggressive" else ["accepted", "rejected"]

    def normalised(name):  # tedana < 24.0.2 writes ICA_04 in one table and ICA_4 in the other
        return re.sub(r"ICA_0*(\d+)$", lambda m: f"ICA_{int(m.group(1))}", name)

    original = {normalised(column): column for column in mixing.columns}
    mixing = mixing.set_axis(list(original), axis=1)
    selected = metrics[metrics["classification"].isin(classes)]
    classification = {normalised(row["Component"]): row["classification"] for _, row in selected.iterrows()}
    matched = sorted(name for name in classification if name in mixing.columns)
    return mixing[matched].rename(columns={name: f"{classification[name]}_{original[name]}" for name in matched})


def _component(table, component: str, metadata, options: dict) -> tuple[list[str], list[str]]:
    """The column names of one strategy component (but "scrub") and the names the table lacks."""
    columns = table.columns
    if component in ("motion", "wm_csf", "global_signal"):
        base = {"motion": MOTION_PARAMETERS, "wm_csf": ("csf", "white_matter"), "global_signal": ("global_signal",)}
        wanted = expand(base[component], options[component])
    elif component == "high_pass":
        wanted = [c for c in columns if "cosine" in c]
    elif component == "compcor":
        if metadata is None:
            raise ValueError(
                "strategy 'compcor' needs the confounds JSON metadata (fMRIPrep >= 1.4.0), which is missing"
            )
        wanted = compcor_columns(metadata, options["compcor"], options["n_compcor"])
        if not wanted:
            return [], [f"compcor (compcor={options['compcor']!r}: no matching component in the JSON)"]
        if not any("cosine" in c for c in columns):
            raise ValueError(
                "strategy 'compcor' needs fMRIPrep's cosine_XX high-pass regressors (CompCor is computed on "
                "high-pass filtered data), and the confounds table has none"
            )
    elif component == "ica_aroma":
        if options["ica_aroma"] == "full":
            return [], []
        wanted = [c for c in columns if "aroma" in c]
        if not wanted:
            return [], ["ica_aroma (no aroma_motion_XX column)"]
    elif component == "non_steady_state":
        wanted = [c for c in columns if "non_steady_state" in c]
    else:
        raise ValueError(f"strategy component {component!r} cannot be selected from an fMRIPrep confounds table")
    missing = [c for c in wanted if c not in columns]
    if missing:
        return [], [f"{component}: {', '.join(missing)}"]
    return wanted, []


def _column_means(values: np.ndarray) -> np.ndarray:
    """Means of the columns over their non-NaN values (NaN for a column of NaN), as pandas' ``mean``.

    Summed along contiguous columns, so that numpy sums pairwise as pandas
    does (to the last bit: nilearn's regressors are compared at 1e-12).
    """
    values = np.asfortranarray(values)
    counts = np.count_nonzero(~np.isnan(values), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(values, axis=0) / counts


def prepare_output(selected: pd.DataFrame, demean: bool) -> tuple[np.ndarray | None, pd.DataFrame]:
    """Split outlier columns into a sample mask; fill first-row n/a; demean.

    Works on the numbers of ``selected`` at once (pandas indexing column
    group by column group was most of a cohort run's confound selection).
    """
    names = [str(c) for c in selected.columns]
    values = selected.to_numpy(dtype=np.float64)
    is_outlier = np.array([is_outlier_column(c) for c in names], dtype=bool)
    # nilearn drops duplicate outlier columns first; a volume is kept when no column flags it either way
    sample_mask = None
    if is_outlier.any() and len(selected):
        sample_mask = np.flatnonzero(np.nansum(values[:, is_outlier], axis=1) == 0)
        if sample_mask.size == 0:
            warnings.warn(
                "All volumes were marked as motion outliers. This would lead to all volumes in the time series "
                "to be scrubbed.",
                RuntimeWarning,
                stacklevel=3,
            )
    order = sorted(range(len(names)), key=names.__getitem__)
    regressors = [i for i in order if not is_outlier[i]]
    work = values[:, regressors]
    if work.size != 0:
        # fMRIPrep's derivatives have n/a in the first row: use the second row
        first_row_nan = np.isnan(work[0])
        work[0, first_row_nan] = work[1, first_row_nan]
        if demean:
            work -= _column_means(work if sample_mask is None else work[sample_mask])
    return sample_mask, pd.DataFrame(work, columns=[names[i] for i in regressors], index=selected.index)


def select_confounds(
    table: pd.DataFrame,
    metadata: dict | None = None,
    strategy=("motion", "high_pass", "wm_csf"),
    *,
    min_volumes: int = 1,
    tedana_tables: dict | None = None,
    **options,
) -> tuple[pd.DataFrame | None, np.ndarray | None]:
    """Select the confounds of one run by denoising strategy.

    Parameters
    ----------
    table : pandas.DataFrame
        fMRIPrep confounds of one run, one column per regressor (n/a as
        NaN), as read from ``*_desc-confounds_timeseries.tsv``.
    metadata : dict, optional
        The confounds JSON sidecar (needed for ``compcor``).
    strategy : tuple or list of str, or ConfoundsStrategy
        Noise components (default ``("motion", "high_pass", "wm_csf")``;
        "tedana" needs ``tedana_tables``), or a whole strategy.
    min_volumes : int, default=1
        Raise if fewer volumes remain after censoring (nilearn only warns
        when none remains).
    tedana_tables : dict, optional
        ``{"mixing": DataFrame, "metrics": DataFrame}`` for "tedana".
    **options
        The options of :class:`ConfoundsStrategy` (``motion``, ``scrub``,
        ``fd_threshold``, ``std_dvars_threshold``, ``wm_csf``,
        ``global_signal``, ``compcor``, ``n_compcor``, ``ica_aroma``,
        ``tedana``, ``demean``), with its defaults.

    Returns
    -------
    confounds : pandas.DataFrame or None
        None when ``strategy`` is empty.
    sample_mask : numpy.ndarray or None
        Indices of the kept volumes; None when no volume is censored.

    Raises
    ------
    ValueError
        Unknown strategy or option, columns the strategy needs that the
        table lacks (named), compcor without high-pass regressors, or too
        few volumes left.
    """
    spec = strategy if isinstance(strategy, ConfoundsStrategy) else ConfoundsStrategy(strategy, **options)
    strategy, options = spec.strategy, spec.options()
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"table must be a pandas DataFrame of confounds, got {type(table).__name__}")

    if "tedana" in strategy:
        if tedana_tables is None:
            raise ValueError("strategy 'tedana' needs tedana's mixing and metrics tables (tedana_tables)")
        selected = _tedana_columns(tedana_tables["mixing"], tedana_tables["metrics"], spec.tedana)
    else:
        names, missing, scrubbed = [], [], []
        for component in ("non_steady_state", *strategy):
            if component == "scrub":
                scrubbed = [motion_outliers(table, options["scrub"], options["fd_threshold"],
                                            options["std_dvars_threshold"])]
                continue
            columns, lacking = _component(table, component, metadata, options)
            names.extend(columns)
            missing.extend(lacking)
        if missing:
            raise ValueError(
                "The confounds table lacks what this strategy needs: "
                + "; ".join(missing)
                + ". You may want to try a different denoising strategy."
            )
        selected = table[list(dict.fromkeys(names))]  # a component named twice adds its columns once
        if scrubbed:
            selected = pd.concat([selected, *scrubbed], axis=1)

    sample_mask, confounds = prepare_output(selected, spec.demean)
    n_kept = len(table) if sample_mask is None else len(sample_mask)
    if n_kept < min_volumes:
        raise ValueError(
            f"censoring leaves {n_kept} of {len(table)} volumes, fewer than min_volumes={min_volumes} "
            "(non-steady-state volumes and motion outliers); relax fd_threshold/std_dvars_threshold/scrub "
            "or exclude this run"
        )
    if len(strategy) == 0:
        return None, sample_mask
    return confounds, sample_mask
