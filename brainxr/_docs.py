"""Shared numpydoc parameter entries: ``docdict`` and the ``fill_doc`` decorator.

The maskers and signal cleaning take the same parameters; each is described
once here and put into a docstring as ``%(name)s`` on a line of its own, as
nilearn (``nilearn._utils.docs``, after MNE-Python) does::

    @fill_doc
    class NiftiLabelsMasker(BaseMasker):
        '''...

        Parameters
        ----------
        %(smoothing_fwhm)s
        '''

An entry's first line is the numpydoc parameter line, its description
indented four spaces below it; ``fill_doc`` indents the entry as deep as the
docstring it goes into. A literal ``%`` in a filled docstring is written
``%%``. This module imports nothing from brainxr.
"""

from __future__ import annotations

__all__ = ["docdict", "fill_doc"]

#: numpydoc parameter entries shared by several docstrings, by name
docdict: dict[str, str] = {}

docdict["clean_args"] = """clean_args : dict, optional
    More parameters of :func:`brainxr.signal.clean` (``filter``,
    ``ensure_finite``, ``extrapolate``, ``butterworth__order``, ...)."""

docdict["detrend"] = """detrend : bool, default=True
    Remove the linear trend (and the mean) of the signals and confounds."""

docdict["detrend_maskers"] = """detrend : bool, default=False
    Remove the linear trend (and the mean) of the signals and confounds."""

docdict["dtype"] = """dtype : dtype or "auto", optional
    Data type of the signals: ``"auto"`` gives float32 (int32 for integer
    images), as nilearn; None keeps the type cleaning gives."""

docdict["high_variance_confounds"] = """high_variance_confounds : bool, default=False
    Add the high-variance confounds of the images (the top principal
    components of their most variable voxels, over the whole field of view:
    :func:`brainxr.signal.high_variance_confounds`) to the confounds."""

docdict["low_pass_high_pass"] = """low_pass, high_pass : float, optional
    Cutoff frequencies in Hz of the low- and high-pass filters."""

docdict["memory"] = """memory, memory_level : optional
    Accepted for compatibility with nilearn; nothing is cached."""

docdict["reports"] = """reports : bool, default=True
    Keep at fit what ``generate_report`` draws."""

docdict["cmap"] = """cmap : str or matplotlib colormap, optional
    Colormap of the report's figure."""

docdict["smoothing_fwhm"] = """smoothing_fwhm : float, optional
    Full width at half maximum, in mm, of the Gaussian smoothing of the
    images before extraction (None: no smoothing)."""

docdict["standardize_confounds"] = """standardize_confounds : bool, default=True
    z-score the confounds before they are projected out (else only rescale
    them)."""

docdict["standardize_maskers"] = """standardize : {"zscore_sample", "psc", True, False, None}, default=False
    Standardization of the cleaned signals (see :func:`brainxr.signal.clean`):
    ``"zscore_sample"`` (or True) unit sample variance, ``"psc"`` percent
    signal change; False or None: none."""

docdict["t_r_maskers"] = """t_r : float, optional
    Repetition time of the images in seconds, for the filters; it also
    labels the ``time`` coordinate of xarray output."""

docdict["verbose"] = """verbose : int, default=0
    Verbosity level (0: no messages)."""


def _indentation(docstring: str) -> int:
    """Indentation of a docstring's body (its lines after the first that hold text)."""
    body = [line for line in docstring.splitlines()[1:] if line.strip()]
    return min((len(line) - len(line.lstrip()) for line in body), default=0)


def fill_doc(documented):
    """Put the :data:`docdict` entries into a function's or class's docstring.

    Parameters
    ----------
    documented : function or class
        Its docstring holds ``%(name)s`` placeholders, each on a line of its
        own where the entry goes.

    Returns
    -------
    function or class
        ``documented`` itself, its ``__doc__`` filled.

    Raises
    ------
    KeyError
        A placeholder names no entry (the message names the object).
    """
    docstring = documented.__doc__
    if not docstring:
        return documented
    indent = " " * _indentation(docstring)
    entries = {name: entry.replace("\n", "\n" + indent) for name, entry in docdict.items()}
    try:
        documented.__doc__ = docstring % entries
    except (KeyError, TypeError, ValueError) as error:
        raise KeyError(
            f"the docstring of {documented.__qualname__} has a placeholder that docdict does not fill "
            f"({error!r}); known entries: {', '.join(sorted(docdict))}"
        ) from error
    return documented
