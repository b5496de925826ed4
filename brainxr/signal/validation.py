"""Checks of :func:`brainxr.signal.clean`'s parameters.

Each check either returns the parameter in the one form the rest of the code
uses, or raises an error that names the parameter and says what was expected.
"""

from __future__ import annotations

import csv
import numbers
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

FILTERS = ("butterworth", "cosine", False)
STANDARDIZE = ("zscore_sample", "psc", None)
BUTTERWORTH_OPTIONS = ("order", "padtype", "padlen", "copy")


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


_NUMBER = (float, np.floating, int, np.integer)
_OPTIONAL_NUMBER = (*_NUMBER, type(None))

#: nilearn 0.14.1's types of the cleaning and masker parameters (``TYPE_MAPS`` of its ``check_params``)
PARAMETER_TYPES = {
    "detrend": (bool,),
    "standardize_confounds": (bool,),
    "keep_masked_labels": (bool,),
    "keep_masked_maps": (bool,),
    "high_pass": _OPTIONAL_NUMBER,
    "low_pass": _OPTIONAL_NUMBER,
    "t_r": _OPTIONAL_NUMBER,
    "smoothing_fwhm": _OPTIONAL_NUMBER,
    "memory_level": (int, np.integer),
    "n_jobs": (int, np.integer),
    "verbose": (bool, int, np.integer),
    "target_affine": (np.ndarray, list, tuple, type(None)),
    "target_shape": (tuple, list, np.ndarray, type(None)),
    "memory": (str, Path, type(None)),
}
#: nilearn 0.14.1's allowed values of ``standardize``
STANDARDIZE_VALUES = ("zscore_sample", "psc", True, False, None)


def check_params(params: dict) -> None:
    """Raise nilearn's TypeError / ValueError for a parameter of the wrong type or value.

    Checks the names of :data:`PARAMETER_TYPES` and ``standardize`` found in
    ``params`` (a function's ``locals()`` or an estimator's parameters), as
    nilearn's ``check_params`` does: booleans are refused where bool is not
    an allowed type; ``memory`` may also be a ``joblib.Memory``.
    """
    for name, value in params.items():
        if name == "standardize":
            if not any(value is allowed or (isinstance(value, str) and value == allowed) for allowed in STANDARDIZE_VALUES):
                raise ValueError(f"'standardize' must be one of {list(STANDARDIZE_VALUES)}.\nGot: {value!r}")
            continue
        allowed = PARAMETER_TYPES.get(name)
        if allowed is None or (name == "memory" and type(value).__name__ == "Memory"):
            continue
        if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
            names = ", ".join(str(t) for t in allowed)
            raise TypeError(f"'{name}' must be of type(s): '{names}'.\nGot: '{type(value).__name__}'")


def check_standardize(standardize):
    """Return ``'zscore_sample'``, ``'psc'`` or None (True/False map as in nilearn)."""
    if standardize is True:
        return "zscore_sample"
    if standardize is False:
        return None
    if standardize not in STANDARDIZE:
        raise ValueError(f"standardize must be one of {STANDARDIZE} (or True/False), got {standardize!r}")
    return standardize


def check_filter(filter, low_pass, high_pass, t_r):
    """Validate the filtering parameters; return the filter that will really run.

    Returns
    -------
    str or False
        ``"butterworth"``, ``"cosine"`` or False (no filtering, e.g. Butterworth
        with both cutoffs None).
    """
    if not (filter is False or (isinstance(filter, str) and filter in FILTERS)):
        raise ValueError(f"filter must be one of {FILTERS}, got {filter!r}")
    for name, value in (("low_pass", low_pass), ("high_pass", high_pass)):
        if value is not None and not _is_real(value):
            raise ValueError(f"{name} must be None or a frequency in Hz (a number), got {value!r}")
    if t_r is not None and (not _is_real(t_r) or not t_r > 0):
        raise ValueError(f"t_r must be None or a positive repetition time in seconds, got {t_r!r}")

    if filter is False:
        if low_pass is not None or high_pass is not None:
            warnings.warn(
                "No filter type selected but cutoff frequency provided.Will not perform filtering.",
                stacklevel=3,
            )
        return False
    if filter == "cosine":
        if t_r is None or high_pass is None:
            raise ValueError(
                "Repetition time (t_r) and low cutoff frequency (high_pass) must be specified "
                f"for cosine filtering. Got: 't_r={t_r}' and 'high_pass={high_pass}'"
            )
        return "cosine"
    if low_pass is None and high_pass is None:
        return False
    if t_r is None:
        raise ValueError("Repetition time (t_r) must be specified for butterworth filtering. Got: 't_r=None'")
    if low_pass is not None and high_pass is not None and high_pass >= low_pass:
        raise ValueError(
            f"high_pass ({high_pass}) must be lower than low_pass ({low_pass}): "
            "a band-pass filter keeps the frequencies between them"
        )
    return "butterworth"


#: the parameters of brainxr.signal.clean (and nilearn.signal.clean), for error messages
CLEAN_PARAMETERS = ("runs", "detrend", "standardize", "sample_mask", "confounds", "standardize_confounds", "filter",
                    "low_pass", "high_pass", "t_r", "ensure_finite", "extrapolate")


def unknown_parameter_message(name: str, accepted) -> str:
    """``unexpected keyword argument 'x' (accepted: ...); did you mean 'y'?``"""
    import difflib

    accepted = list(accepted)
    message = f"unexpected keyword argument {name!r} (accepted: {', '.join(accepted)})"
    closest = difflib.get_close_matches(name, accepted, n=1, cutoff=0.6)
    return message + (f"; did you mean {closest[0]!r}?" if closest else "")


def split_butterworth_kwargs(kwargs: dict) -> dict:
    """Return the ``butterworth__*`` options without their prefix; reject others.

    An unknown name is a TypeError listing :func:`~brainxr.signal.clean`'s
    parameters and suggesting the closest (``standardise`` ->
    ``standardize``).
    """
    options = {}
    for key, value in kwargs.items():
        name = key.removeprefix("butterworth__")
        if not key.startswith("butterworth__") or name not in BUTTERWORTH_OPTIONS:
            accepted = CLEAN_PARAMETERS + tuple(f"butterworth__{option}" for option in BUTTERWORTH_OPTIONS)
            raise TypeError(f"clean() got an {unknown_parameter_message(key, accepted)}")
        options[name] = value
    # filtering never modifies the caller's array here, so ``copy`` has no effect
    options.pop("copy", None)
    return options


def check_runs(runs, n_time: int) -> np.ndarray | None:
    """Return ``runs`` as a 1-D array of ``n_time`` labels, or None."""
    if runs is None:
        return None
    runs = np.asarray(runs)
    if runs.ndim != 1 or len(runs) != n_time:
        raise ValueError(
            f"runs must hold one run label per time point: the length of the run vector "
            f"({runs.shape[0] if runs.ndim else 'scalar'}) does not match the length of the "
            f"signals ({n_time})"
        )
    return runs


def _sniffed_separator(path: Path) -> str | None:
    """The separator of a table as pandas' ``sep=None`` finds it (csv.Sniffer on the first line), when it is
    a comma, tab or semicolon; None otherwise (pandas' python engine then reads, or refuses, the file)."""
    with path.open(newline="") as file:
        first_line = file.readline()
    try:
        separator = csv.Sniffer().sniff(first_line).delimiter
    except csv.Error:
        return None
    return separator if separator in ",\t;" else None


def _read_table(path: Path, separator: str | None, header) -> pd.DataFrame:
    """``pd.read_csv(path, sep=None, engine="python")``; by pandas' C parser when the separator is known
    (the same table, ~40x faster: a run's confounds file is read at every transform)."""
    if separator is None:
        return pd.read_csv(path, sep=None, engine="python", header=header)
    return pd.read_csv(path, sep=separator, header=header)


def _read_confounds_file(path) -> tuple[np.ndarray, list[str] | None]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"confounds: no such file {str(path)!r}")
    separator = _sniffed_separator(path)
    table = _read_table(path, separator, header=None)
    first_row = pd.to_numeric(table.iloc[0], errors="coerce")
    names = None
    if first_row.isna().all():  # a header line (names only)
        table = _read_table(path, separator, header="infer")
        names = [str(c) for c in table.columns]
    for position, (column, values) in enumerate(table.items()):
        numbers = pd.to_numeric(values, errors="coerce")
        text = values[numbers.isna() & values.notna()]
        if len(text):
            name = f"column {column!r}" if names is not None else f"column {position}"
            raise ValueError(
                f"confounds file {str(path)!r}: {name} is not numeric (row "
                f"{text.index[0]} holds {text.iloc[0]!r}); confounds must be numbers"
            )
    return table.to_numpy(dtype=np.float64), names


def _one_confound_set(item, n_time: int, position: str) -> tuple[np.ndarray, list[str]]:
    names = None
    if isinstance(item, (str, Path)):
        values, names = _read_confounds_file(item)
        where = f"confounds file {str(item)!r}"
    elif isinstance(item, pd.DataFrame):
        non_numeric = [str(c) for c, dtype in item.dtypes.items() if dtype.kind not in "biuf"]
        if non_numeric:
            raise ValueError(f"confounds{position} must hold numbers; non-numeric column(s): {non_numeric}")
        values, names = item.to_numpy(dtype=np.float64), [str(c) for c in item.columns]
        where = "confounds"
    elif isinstance(item, pd.Series):
        values, names = item.to_numpy(dtype=np.float64)[:, None], [str(item.name)]
        where = "confounds"
    elif isinstance(item, xr.DataArray):
        if item.ndim == 2 and "time" in item.dims:
            item = item.transpose("time", ...)
            other = item.dims[1]
            if other in item.coords:
                names = [str(v) for v in item[other].values]
        values = np.asarray(item.values)
        where = "confounds"
    elif isinstance(item, np.ndarray) or (hasattr(item, "__array__") and not isinstance(item, (list, tuple))):
        values = np.asarray(item)
        where = "confounds"
    else:
        raise ValueError(
            f"confounds{position} must be an array, a DataFrame, a DataArray, a CSV/TSV path or a "
            f"list of those, got {type(item).__name__}"
        )
    if values.dtype.kind not in "biuf":
        raise ValueError(f"{where}{position} must hold numbers, got dtype {values.dtype}")
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ValueError(f"{where}{position}: confound array has an incorrect number of dimensions: {values.ndim}")
    if values.shape[0] != n_time:
        raise ValueError(
            f"{where}{position} has an incorrect length: the signals have {n_time} time points, "
            f"the confounds {values.shape[0]}"
        )
    if names is None:
        names = [f"column {i}" for i in range(values.shape[1])]
    return values.astype(np.float64, copy=False), names


def check_confounds(confounds, n_time: int) -> tuple[np.ndarray | None, list[str]]:
    """Stack the confounds into one finite float64 ``(n_time, k)`` array.

    Returns
    -------
    values : numpy.ndarray or None
    names : list of str
        Column names (or positions) for error messages.
    """
    if confounds is None:
        return None, []
    items = confounds if isinstance(confounds, (list, tuple)) else [confounds]
    if len(items) == 0:
        return None, []
    arrays, names = [], []
    for i, item in enumerate(items):
        position = f"[{i}]" if isinstance(confounds, (list, tuple)) else ""
        values, item_names = _one_confound_set(item, n_time, position)
        arrays.append(values)
        names.extend(item_names)
    values = np.hstack(arrays)
    finite = np.isfinite(values)
    if not finite.all():
        bad_columns = [names[j] for j in np.flatnonzero(~finite.all(axis=0))]
        bad_rows = np.flatnonzero(~finite.all(axis=1))
        shown = ", ".join(map(str, bad_rows[:5])) + (", ..." if len(bad_rows) > 5 else "")
        raise ValueError(
            f"confounds contain NaN or infinite values in {', '.join(map(repr, bad_columns))} "
            f"(rows {shown}). fMRIPrep writes n/a in the first row of its derivative columns: "
            "brainxr.interfaces.fmriprep.load_confounds fills those as nilearn does; otherwise "
            "fill or drop them before cleaning"
        )
    return values, names


def _is_mask_list(sample_mask) -> bool:
    """True if ``sample_mask`` is a list/tuple of masks rather than one mask."""
    return isinstance(sample_mask, (list, tuple)) and any(np.ndim(item) > 0 for item in sample_mask)


def check_sample_mask(sample_mask, n_time: int, name: str = "sample_mask") -> np.ndarray:
    """Return the kept volumes of one run as sorted unique int64 indices.

    Parameters
    ----------
    sample_mask : array-like
        Boolean mask of length ``n_time`` (True keeps the volume) or integer
        indices of the volumes kept.
    n_time : int
        Number of volumes in the run.
    name : str
        Name used in error messages.
    """
    if isinstance(sample_mask, (pd.Series, pd.Index, xr.DataArray)):
        sample_mask = np.asarray(sample_mask)
    if not isinstance(sample_mask, (np.ndarray, list, tuple)):
        raise ValueError(
            f"{name} must be a boolean mask or an array of integer indices, got {type(sample_mask).__name__}"
        )
    mask = np.asarray(sample_mask)
    if mask.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {mask.shape}")
    if mask.size == 0:
        raise ValueError(f"{name} is empty: all volumes would be removed (the run has {n_time})")
    if mask.dtype == bool:
        if mask.size != n_time:
            raise ValueError(f"{name}: a boolean mask must have one value per volume ({n_time}), got {mask.size}")
        indices = np.flatnonzero(mask)
        if indices.size == 0:
            raise ValueError(f"{name} removes all {n_time} volumes")
        return indices.astype(np.int64)
    if mask.dtype.kind not in "iu":
        raise ValueError(f"{name} must be a boolean mask or integer indices of the volumes kept, got dtype {mask.dtype}")
    indices = mask.astype(np.int64)
    out_of_range = indices[(indices < 0) | (indices >= n_time)]
    if out_of_range.size:
        raise ValueError(
            f"{name} contains invalid indices {out_of_range[:10].tolist()}: the signal has {n_time} "
            f"time points (valid indices are 0 to {n_time - 1})"
        )
    if np.any(np.diff(indices) <= 0):
        raise ValueError(f"{name} indices must be unique and increasing")
    return indices


def check_run_sample_masks(sample_mask, run_lengths: list[int]) -> list[np.ndarray | None]:
    """Split ``sample_mask`` into one checked index array per run (None: keep all).

    With several runs, ``sample_mask`` is a list of one mask per run; an item
    may be None for a run that keeps all its volumes.
    """
    n_runs = len(run_lengths)
    if sample_mask is None:
        return [None] * n_runs
    if n_runs == 1 and not _is_mask_list(sample_mask):
        masks = [sample_mask]
    elif _is_mask_list(sample_mask) or (isinstance(sample_mask, (list, tuple)) and len(sample_mask) == 0):
        masks = list(sample_mask)
    else:
        raise ValueError(
            f"sample_mask: with {n_runs} runs, give a list of {n_runs} masks (one per run, "
            "indices relative to the run)"
        )
    if len(masks) != n_runs:
        raise ValueError(f"Number of sample_mask ({len(masks)}) not matching number of runs ({n_runs}).")
    label = "sample_mask" if n_runs == 1 else "sample_mask[{}]"
    return [
        None if mask is None else check_sample_mask(mask, length, label.format(i))
        for i, (mask, length) in enumerate(zip(masks, run_lengths))
    ]
