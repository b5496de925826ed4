"""The fetchers' return type: scikit-learn's ``Bunch`` (as nilearn's), without importing scikit-learn.

Importing scikit-learn takes most of a second (``sklearn.base`` imports
``scipy.stats``): more than a seed workflow spends on its atlas and
coordinates. :class:`Bunch` is a dict whose keys are also attributes, with
``sklearn.utils.Bunch``'s behaviour (a test compares them), but not its
class: ``isinstance(bunch, sklearn.utils.Bunch)`` is False.
"""


class Bunch(dict):
    """A dict whose keys are also attributes (``bunch["maps"]`` is ``bunch.maps``).

    Parameters
    ----------
    **fields
        The keys and values.
    """

    def __init__(self, **fields):
        super().__init__(fields)

    def __setattr__(self, key, value):
        self[key] = value

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __dir__(self):
        return self.keys()

    def __setstate__(self, state):
        # a pickled __dict__ is ignored, as scikit-learn's: the fields live in the dict
        pass
