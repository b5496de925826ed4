"""The fetchers' return type, scikit-learn's ``Bunch`` (as nilearn's), imported on first use.

Importing scikit-learn takes most of a second; plotting and the other users of
the bundled template should not pay it.
"""


def Bunch(**fields):  # noqa: N802 - stands for the class it builds
    """A :class:`sklearn.utils.Bunch` (a dict whose keys are also attributes)."""
    from sklearn.utils import Bunch as _Bunch

    return _Bunch(**fields)
