"""Shared docstring entries (``brainxr._docs``): filled where they go, at the right depth, none left over."""

from __future__ import annotations

import inspect
import re

import pytest

from brainxr import maskers
from brainxr._docs import docdict, fill_doc
from brainxr.signal import clean

DOCUMENTED = [
    maskers.NiftiMasker, maskers.NiftiLabelsMasker, maskers.NiftiMapsMasker, maskers.NiftiSpheresMasker,
    maskers.MultiNiftiMasker, maskers.MultiNiftiLabelsMasker, maskers.MultiNiftiMapsMasker, clean,
]


def _documented_names(documented) -> set:
    """The parameter names of a numpydoc ``Parameters`` section (``a, b : type`` lines count each name)."""
    text = inspect.getdoc(documented)
    section = text.split("Parameters\n----------\n", 1)[1].split("\n\n", 1)[0]
    names = set()
    for line in section.splitlines():
        if line and not line.startswith(" "):
            names.update(name.strip().lstrip("*") for name in line.split(" : ")[0].split(","))
    return names


def test_fill_doc_indents_each_entry_as_its_docstring():
    class Estimator:
        def fit(self, detrend=False):
            """Fit.

            Parameters
            ----------
            %(detrend_maskers)s
            """

    fill_doc(Estimator.fit)
    expected = "\n".join("            " + line if number else line
                         for number, line in enumerate(docdict["detrend_maskers"].splitlines()))
    assert expected in Estimator.fit.__doc__
    assert _documented_names(Estimator.fit) == {"detrend"}


def test_fill_doc_names_the_object_and_the_entries_for_an_unknown_placeholder():
    def function():
        """Do.

        Parameters
        ----------
        %(no_such_entry)s
        """

    with pytest.raises(KeyError, match=r"function.*no_such_entry.*known entries: clean_args"):
        fill_doc(function)


@pytest.mark.parametrize("documented", DOCUMENTED, ids=lambda documented: documented.__name__)
def test_filled_docstrings_document_every_parameter_and_keep_no_placeholder(documented):
    assert not re.search(r"%\(\w+\)s", documented.__doc__)
    init = documented.__init__ if inspect.isclass(documented) else documented
    parameters = {name for name, parameter in inspect.signature(init).parameters.items()
                  if name != "self" and parameter.kind is not inspect.Parameter.VAR_KEYWORD}
    assert parameters <= _documented_names(documented)
