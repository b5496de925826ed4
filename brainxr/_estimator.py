"""The base of brainxr's estimators: scikit-learn estimators that import scikit-learn on first use.

``import sklearn.base`` costs ~0.8 s (``sklearn.utils`` imports
``scipy.stats``), more than a labels masker's whole fit and transform on
small data, and a script that only extracts signals never uses what
``BaseEstimator`` provides. So :class:`Estimator` (and
:class:`TransformerEstimator`) start on a placeholder base; the first use of
scikit-learn's estimator protocol (``get_params``, ``set_params``,
``clone``, ``repr``, tags, the HTML repr, ``dir``, parameter validation,
metadata routing, the transformer's ``fit_transform``) imports scikit-learn
and puts ``sklearn.base.BaseEstimator`` (and ``TransformerMixin``) in the
placeholders' place, then runs scikit-learn's own method. From then on the
classes are exactly what ``class Estimator(BaseEstimator)`` would have made:
scikit-learn's class-creation hooks (``set_{method}_request``, the
``set_output`` wrappers) are replayed on every subclass, and
``isinstance(estimator, BaseEstimator)`` holds. Nothing of scikit-learn's is
re-implemented. If scikit-learn is already imported when this module is,
the base is put in place at once.

An estimator that scikit-learn derives from another of its classes (the
graphical lasso from ``EmpiricalCovariance``) starts on a placeholder
subclass of :class:`Estimator` that forwards that class's methods; the first
use puts scikit-learn's class in the placeholder's place
(:func:`replace_base_on_first_use`). Its ``_parameter_constraints`` are
scikit-learn's, read on first access (:class:`ScikitLearnConstraints`), and
:func:`validate_params` checks parameters at fit without importing
scikit-learn when every value is one its constraints accept.

Forwarding functions alone cannot do this: scikit-learn's ``repr`` (its
pretty printer) and its estimator checks recognise an estimator by
``issubclass(type(estimator), BaseEstimator)``, and ``BaseEstimator.__repr__``
called on another class recurses forever. The one difference left: before
that first use, ``isinstance(estimator, BaseEstimator)`` is False.
"""

from __future__ import annotations

import importlib
import inspect
import math
import sys
import threading
from numbers import Integral, Real

import numpy as np

_lock = threading.Lock()
_in_place = False  # scikit-learn's bases replaced the placeholders
#: (class, module, name): the class's placeholder base becomes scikit-learn's ``module.name`` on first use
_deferred_bases: list[tuple[type, str, str]] = []


class _BaseEstimatorPlaceholder:
    """Holds ``sklearn.base.BaseEstimator``'s place in :class:`Estimator`'s bases until first use.

    Each method puts scikit-learn's base in place, then calls the method
    that follows :class:`Estimator` in the new method resolution order
    (scikit-learn's, or an override of a subclass already on the call
    stack), so no override runs twice.
    """

    @classmethod
    def _get_param_names(cls):
        use_scikit_learn()
        return super(Estimator, cls)._get_param_names()

    def get_params(self, deep=True):
        use_scikit_learn()
        return super(Estimator, self).get_params(deep=deep)

    def set_params(self, **params):
        use_scikit_learn()
        return super(Estimator, self).set_params(**params)

    def __sklearn_clone__(self):
        use_scikit_learn()
        return super(Estimator, self).__sklearn_clone__()

    def __sklearn_tags__(self):
        use_scikit_learn()
        return super(Estimator, self).__sklearn_tags__()

    def __repr__(self, N_CHAR_MAX=700):
        use_scikit_learn()
        return super(Estimator, self).__repr__(N_CHAR_MAX)

    def __dir__(self):
        use_scikit_learn()
        return super(Estimator, self).__dir__()

    @property
    def _repr_html_(self):
        use_scikit_learn()
        return super(Estimator, self)._repr_html_

    def _repr_mimebundle_(self, **kwargs):
        use_scikit_learn()
        return super(Estimator, self)._repr_mimebundle_(**kwargs)

    def _validate_params(self):
        use_scikit_learn()
        return super(Estimator, self)._validate_params()

    def get_metadata_routing(self):
        use_scikit_learn()
        return super(Estimator, self).get_metadata_routing()

    def __getattr__(self, name):
        # scikit-learn makes the ``set_{method}_request`` methods when it creates the class
        if name.startswith("set_") and name.endswith("_request"):
            use_scikit_learn()
            return getattr(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


class _TransformerMixinPlaceholder:
    """Holds ``sklearn.base.TransformerMixin``'s place in :class:`TransformerEstimator`'s bases."""

    def fit_transform(self, X, y=None, **fit_params):
        use_scikit_learn()
        return super(TransformerEstimator, self).fit_transform(X, y, **fit_params)

    def __sklearn_tags__(self):
        use_scikit_learn()
        return super(TransformerEstimator, self).__sklearn_tags__()


class Estimator(_BaseEstimatorPlaceholder):
    """Base of brainxr's estimators: ``sklearn.base.BaseEstimator`` once scikit-learn is used (see the module)."""

    def _check_fitted(self) -> None:
        """Raise scikit-learn's ``NotFittedError`` (``check_is_fitted``'s message) unless ``__sklearn_is_fitted__()``."""
        if not self.__sklearn_is_fitted__():
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments "
                "before using this estimator."
            )


class TransformerEstimator(_TransformerMixinPlaceholder, Estimator):
    """Base of brainxr's transformers: ``TransformerMixin, BaseEstimator`` once scikit-learn is used."""


def use_scikit_learn() -> None:
    """Import scikit-learn and make :class:`Estimator` a ``BaseEstimator`` subclass (once; thread-safe)."""
    global _in_place
    if _in_place:
        return
    from sklearn.base import BaseEstimator, TransformerMixin

    with _lock:
        if _in_place:
            return
        Estimator.__bases__ = (BaseEstimator,)
        TransformerEstimator.__bases__ = (TransformerMixin, Estimator)
        for cls, module, name in _deferred_bases:
            _replace_placeholder(cls, module, name)
        _replay_class_creation(Estimator)
        _in_place = True


def replace_base_on_first_use(cls: type, module: str, name: str) -> None:
    """Give ``cls`` scikit-learn's ``module.name`` as first base on first use, in its placeholder's place.

    ``cls``'s only base is a placeholder: a subclass of :class:`Estimator`
    (or of :class:`TransformerEstimator`) whose methods put scikit-learn in
    place, then call ``getattr(super(cls, self), method)``. Its place is
    taken by ``module.name`` followed by the placeholder's own bases, so
    that ``cls`` then derives from scikit-learn's class (and still from
    :class:`Estimator`).
    """
    with _lock:
        _deferred_bases.append((cls, module, name))
        if _in_place:  # scikit-learn was imported first
            _replace_placeholder(cls, module, name)
            _replay_class_creation(cls)


def _replace_placeholder(cls: type, module: str, name: str) -> None:
    (placeholder,) = cls.__bases__
    cls.__bases__ = (getattr(importlib.import_module(module), name), *placeholder.__bases__)


def _replay_class_creation(root: type) -> None:
    """Run what class creation on scikit-learn's bases runs (``type.__new__`` calls the parent's
    ``__init_subclass__``) for ``root`` and its subclasses, parents before children."""
    subclasses, stack = set(), [root]
    while stack:
        for subclass in stack.pop().__subclasses__():
            if subclass not in subclasses:
                subclasses.add(subclass)
                stack.append(subclass)
    for cls in sorted(subclasses | {root}, key=lambda cls: len(cls.__mro__)):
        super(cls, cls).__init_subclass__()


class ScikitLearnConstraints:
    """A class's ``_parameter_constraints``, built from scikit-learn's on first access.

    Parameters
    ----------
    build : callable
        Returns the constraints dict (it imports scikit-learn). On first
        access the dict replaces this descriptor on the class.
    """

    def __init__(self, build):
        self._build = build

    def __set_name__(self, owner, name):
        self._owner, self._name = owner, name

    def __get__(self, instance, owner=None):
        constraints = self._build()
        setattr(self._owner, self._name, constraints)
        return constraints


def validate_params(estimator) -> None:
    """scikit-learn's ``estimator._validate_params()``, skipped when every value is one it accepts.

    Parameters
    ----------
    estimator : Estimator
        Its ``__init__`` parameters are checked against its class's
        ``_accepted_parameters``: parameter name -> predicate true only for
        values that scikit-learn's constraints accept (a narrower test than
        scikit-learn's; a test checks the inclusion). A parameter without
        predicate, or a value it does not accept, runs scikit-learn's
        validation, which raises its own errors.
    """
    accepted = estimator._accepted_parameters
    parameters = constructor_parameters(estimator)
    if not all(name in accepted and accepted[name](value) for name, value in parameters.items()):
        estimator._validate_params()


def is_bool(value) -> bool:
    """``True``, ``False`` or a numpy bool (scikit-learn's ``"boolean"``)."""
    return isinstance(value, (bool, np.bool_))


def is_verbose(value) -> bool:
    """A bool or an int >= 0 (scikit-learn's ``"verbose"``)."""
    return is_bool(value) or is_int_at_least(0)(value)


def is_int(value) -> bool:
    """An integer, not a bool."""
    return isinstance(value, Integral) and not is_bool(value)


def is_int_at_least(low: int):
    """Predicate: an integer (not a bool) >= ``low``."""
    return lambda value: is_int(value) and value >= low


def is_none_or(predicate):
    """Predicate: None, or a value ``predicate`` accepts."""
    return lambda value: value is None or predicate(value)


def is_real_above(low: float, *, inclusive: bool):
    """Predicate: a finite real (not a bool) above ``low`` (or equal, if ``inclusive``)."""

    def accepted(value):
        if not isinstance(value, Real) or is_bool(value) or not math.isfinite(value):
            return False
        return value >= low if inclusive else value > low

    return accepted


def is_one_of(*options):
    """Predicate: one of ``options`` (strings and None, compared by equality and type)."""
    return lambda value: any(value is option or (isinstance(value, str) and value == option) for option in options)


def constructor_parameters(estimator) -> dict:
    """``estimator.get_params(deep=False)`` without importing scikit-learn: each ``__init__`` parameter's value.

    For what runs on every fit or report (the parameter checks, the report's
    table), which must not cost scikit-learn's import; a test checks it
    against ``get_params`` on every brainxr estimator.
    """
    signature = inspect.signature(type(estimator).__init__)
    names = (p.name for p in signature.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD)
    return {name: getattr(estimator, name) for name in sorted(names)}


if "sklearn.base" in sys.modules:
    use_scikit_learn()
