"""The one estimator contract of the toolbox (private).

Every scikit-learn style estimator of the toolbox derives from :class:`Estimator` and follows
the contract written once in the user guide ("Estimator conventions"):

Parameters
    Declared once per class in ``_parameter_constraints`` (the table scikit-learn uses) and
    checked at the start of ``fit`` by one call, ``self._validate_params()``. Only checks that
    need the data (``n_components`` against the rank, ``n_concat`` against the number of
    samples) stay in ``fit``, with the project's messages.
Data
    2-D input goes through :meth:`Estimator._validate_X`: sparse, complex and object input is
    rejected (or converted) with the messages scikit-learn users know, then the project's
    :func:`~sciml_toolbox._validation.check_array` checks it in its own array namespace (NumPy,
    torch, CuPy, array_api_strict; lists and pandas become NumPy), and finally scikit-learn's
    public :func:`sklearn.utils.validation.validate_data` with ``skip_check_array=True``
    records or compares ``n_features_in_`` and ``feature_names_in_``. Results come back in the
    namespace of the input (:meth:`Estimator._to_input_namespace`).
Fitted state
    :meth:`Estimator._check_fitted` (scikit-learn's ``check_is_fitted``) before any method that
    needs the fit; ``n_iter_`` always set; iterative estimators keep ``history_``, a dict of
    equal-length lists with at least :data:`HISTORY_KEYS`.
Checks that cannot apply
    Properties of the input (3-D arrays, positive-only ``X``, a required ``y``) are declared in
    ``__sklearn_tags__``; scikit-learn >= 1.6 has no tag for individual expected failures, so the
    checks that still cannot pass by design are listed, with the reason, in the class attribute
    ``_expected_failed_checks`` and handed to ``check_estimator(expected_failed_checks=...)``
    (see :func:`expected_failed_checks`), which then reports them as expected failures.

Why scikit-learn's ``_param_validation``: it is private, but ``check_estimator`` (its
``check_param_validation``) tests exactly that table against the estimator's behaviour, so a
constraint that is declared and not enforced, or enforced and not declared, fails a test; its
messages name the parameter, the class, what was expected and what was given ("The 'noise'
parameter of MVICA must be a float in the range (0.0, inf). Got -1 instead."). A second,
home-made validator would need its own tests and would drift from what ``check_estimator``
expects. The private import is made here and nowhere else, so a change of that module in a
future scikit-learn touches this file only; the public ``validate_data`` (scikit-learn >= 1.6)
is used for the feature bookkeeping.
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import (  # the one private import, see the docstring
    Interval,
    StrOptions,
)
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ._array_api import from_numpy, get_namespace, namespace_name, to_numpy
from ._validation import check_array, check_consistent_length, check_finite

__all__ = [
    "Estimator",
    "HISTORY_KEYS",
    "Interval",
    "StrOptions",
    "expected_failed_checks",
    "reject_unsupported",
]

#: Keys present in the ``history_`` of every iterative estimator (one entry per record):
#: ``iteration`` (iterations or steps done at the record), ``loss`` (the objective being
#: minimised), ``constraint_violation`` (0.0 for estimators without a constraint) and ``time``
#: (seconds since the start of ``fit``).
HISTORY_KEYS = ("iteration", "loss", "constraint_violation", "time")


def reject_unsupported(X, name="X", owner="this estimator", *, allow_1d=False):
    """Pre-checks with scikit-learn's wording (``check_estimator`` matches these messages).

    Sparse, complex, 1-D and zero-feature input are rejected; NumPy object arrays of numbers
    become float64 (a ``TypeError`` names the bad entry otherwise); other array-likes are
    returned unchanged for :func:`~sciml_toolbox._validation.check_array`.

    Parameters
    ----------
    X : array_like
    name : str, default='X'
        Argument name used in the messages.
    owner : str
        Estimator name used in the sparse message.
    allow_1d : bool, default=False
        Accept 1-D input (a target ``y``).

    Returns
    -------
    X : array_like
    """
    if hasattr(X, "iloc"):  # pandas DataFrame or Series
        X = X.to_numpy()
    if sp.issparse(X):
        raise TypeError(f"{name} must be dense: sparse data is not supported by {owner}")
    if "complex" in str(getattr(X, "dtype", "")):
        raise ValueError(f"{name} must be real: Complex data not supported (dtype {X.dtype})")
    if not hasattr(X, "shape"):
        if isinstance(X, (str, bytes, dict, set)) or X is None:
            return X  # check_array names the type
        try:
            X = np.asarray(X)  # lists and other array-likes
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be array-like, got {type(X).__name__}") from exc
        if "complex" in str(X.dtype):
            raise ValueError(f"{name} must be real: Complex data not supported")
    if isinstance(X, np.ndarray) and X.dtype == object:
        X = np.asarray(X, dtype=np.float64)
    shape = tuple(X.shape)
    if len(shape) == 1 and not allow_1d:
        raise ValueError(
            f"{name} must be a 2-D array, got shape {shape}. Reshape your data either using "
            f"{name}.reshape(-1, 1) if it has a single feature or {name}.reshape(1, -1) if it "
            "contains a single sample."
        )
    if len(shape) == 2 and shape[1] == 0:
        raise ValueError(
            f"{name} has 0 feature(s) (shape={shape}) while a minimum of 1 is required."
        )
    return X


def expected_failed_checks(estimator):
    """The ``check_estimator`` checks that ``estimator`` cannot pass by design.

    Parameters
    ----------
    estimator : Estimator

    Returns
    -------
    checks : dict of str to str
        Check name to the reason, as ``check_estimator(expected_failed_checks=...)`` takes it.
    """
    return dict(getattr(estimator, "_expected_failed_checks", {}))


class Estimator(BaseEstimator):
    """Base class of the toolbox's estimators: the shared contract (see the module docstring).

    Subclasses declare ``_parameter_constraints`` and call ``self._validate_params()`` first in
    ``fit``; 2-D estimators validate data with :meth:`_validate_X`.
    """

    _parameter_constraints: dict = {}
    #: checks of ``check_estimator`` that cannot pass by design: name -> reason
    _expected_failed_checks: dict = {}

    # ------------------------------------------------------------------ data
    def _validate_X(self, X, *, reset, name="X", min_samples=1, finite=True):
        """Validate a 2-D ``X`` and record (``reset``) or compare its features.

        Parameters
        ----------
        X : array_like, shape (n_samples, n_features)
            NumPy, torch, CuPy or array_api_strict array, list, or pandas DataFrame.
        reset : bool or None
            ``True`` in ``fit`` (sets ``n_features_in_`` and, for a DataFrame with string
            column names, ``feature_names_in_``); ``False`` afterwards (compares them);
            ``None`` neither (inputs of ``inverse_transform``, which live in the output
            space).
        name : str, default='X'
        min_samples : int, default=1
        finite : bool, default=True

        Returns
        -------
        X : array, shape (n_samples, n_features)
            In its own namespace and on its device (lists and DataFrames become NumPy),
            floating dtype.
        """
        X_in = X
        X = reject_unsupported(X, name, type(self).__name__)
        X = check_array(X, name, ndim=2, finite=finite)  # None, strings, ... : TypeError
        if X.shape[0] < min_samples:
            raise ValueError(
                f"{name} needs at least {min_samples} samples, got n_samples = {X.shape[0]}"
            )
        if reset is not None:
            validate_data(self, X_in if hasattr(X_in, "columns") else X,
                          skip_check_array=True, reset=reset)
        return X

    def _validate_y(self, y, X, *, numeric=True, name="y"):
        """Validate a 1-D target against the validated ``X``; returns a NumPy array.

        Parameters
        ----------
        y : array_like, shape (n_samples,) or (n_samples, 1)
            Any namespace, list or pandas Series. A column vector is flattened with scikit-
            learn's ``DataConversionWarning``.
        X : array, shape (n_samples, n_features)
            Validated ``X`` (for the number of samples).
        numeric : bool, default=True
            Cast to float64 (regression); ``False`` keeps the labels (classification).
        name : str, default='y'

        Returns
        -------
        y : ndarray, shape (n_samples,)
        """
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        if numeric:
            y = check_array(reject_unsupported(y, name, type(self).__name__, allow_1d=True),
                            name, ndim=(1, 2))
        else:
            if hasattr(y, "iloc"):
                y = y.to_numpy()
            if sp.issparse(y):
                raise TypeError(f"{name} must be dense: sparse data is not supported")
        y = np.asarray(to_numpy(y)) if not isinstance(y, (list, tuple)) else np.asarray(y)
        if y.ndim not in (1, 2) or (y.ndim == 2 and y.shape[1] != 1):
            raise ValueError(
                f"{name} must be a 1-D array of n_samples targets, got shape {y.shape}"
            )
        y = column_or_1d(y, warn=True)
        if numeric:
            y = y.astype(np.float64, copy=False)
        if y.dtype.kind == "f":
            check_finite(y, name)
        check_consistent_length(X, y, names=("X", name))
        return y

    @staticmethod
    def _to_input_namespace(out, like):
        """``out`` (NumPy) in the namespace and on the device of the validated input ``like``.

        NumPy input (including lists and DataFrames, which validation turns into NumPy) gives
        NumPy output; torch gives torch on the same device, and so on.
        """
        if namespace_name(get_namespace(like)) == "numpy":
            return out
        return from_numpy(np.asarray(out), like)

    # ------------------------------------------------------------------ fitted state
    def _check_fitted(self, attributes=None):
        """Raise :class:`sklearn.exceptions.NotFittedError` unless ``fit`` has run."""
        check_is_fitted(self, attributes)

    @staticmethod
    def _new_history(*extra):
        """An empty ``history_``: the keys of :data:`HISTORY_KEYS` then ``extra``."""
        return {k: [] for k in (*HISTORY_KEYS, *extra)}

    def _record_history(self, **values):
        """Append one record to ``history_``; every key of ``history_`` must be given."""
        missing = set(self.history_) - set(values)
        unknown = set(values) - set(self.history_)
        if missing or unknown:  # a programming error, not a user error
            raise KeyError(f"history record: missing {sorted(missing)}, unknown {sorted(unknown)}")
        for k, v in values.items():
            if isinstance(v, numbers.Integral):
                v = int(v)
            elif isinstance(v, numbers.Real):
                v = float(v)
            self.history_[k].append(v)
