"""Input checks shared by every estimator and function of the toolbox.

Every check raises :class:`ValueError` or :class:`TypeError` with a message that names the
argument and says what was expected, so users never meet a silent NaN deep inside a solver.
Checks work on any array-API namespace (NumPy, CuPy, torch, array_api_strict) and never modify
or copy their input unless a conversion is requested.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils import check_random_state as _sk_check_random_state

from ._array_api import get_namespace, namespace_name, to_numpy

__all__ = [
    "check_array",
    "check_finite",
    "check_ndim",
    "check_consistent_length",
    "check_views",
    "check_n_components",
    "check_simplex",
    "check_scalar",
    "check_positive",
    "check_in_range",
    "check_int",
    "check_option",
    "check_psd",
    "check_random_state",
]


def _is_array(x):
    return hasattr(x, "__array_namespace__") or isinstance(x, np.ndarray) or (
        hasattr(x, "shape") and hasattr(x, "dtype")
    )


def check_finite(x, name):
    """Raise ``ValueError`` if array ``x`` holds NaN or infinite values.

    Parameters
    ----------
    x : array
        Array of any shape and namespace.
    name : str
        Argument name used in the message.

    Returns
    -------
    x : array
        The input, unchanged.
    """
    xp = get_namespace(x)
    if xp.isdtype(x.dtype, ("real floating", "complex floating")):
        finite = xp.all(xp.isfinite(x))
        if not bool(finite):
            n_bad = int(xp.sum(xp.astype(~xp.isfinite(x), xp.int64)))
            raise ValueError(
                f"{name} must contain only finite values, got {n_bad} NaN or infinite "
                f"entr{'y' if n_bad == 1 else 'ies'}"
            )
    return x


def check_ndim(x, name, ndim):
    """Raise ``ValueError`` unless ``x.ndim`` is ``ndim`` (an int or a tuple of accepted ints)."""
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if x.ndim not in allowed:
        want = " or ".join(f"{d}-D" for d in allowed)
        raise ValueError(f"{name} must be a {want} array, got shape {tuple(x.shape)}")
    return x


def check_array(
    x,
    name="X",
    *,
    ndim=2,
    min_samples=1,
    min_features=1,
    finite=True,
    dtype="float",
    xp=None,
    device=None,
):
    """Validate an array-like and return it as an array of its own (or the given) namespace.

    Lists and tuples become NumPy arrays; arrays keep their namespace and device. Integer and
    boolean arrays are cast to the namespace's default floating dtype when ``dtype='float'``,
    and float16 arrays to float32 except for torch (NumPy, SciPy and CuPy have no
    half-precision linear algebra; torch keeps half precision for its GPU kernels).

    Parameters
    ----------
    x : array_like
        Input to check.
    name : str, default='X'
        Argument name used in error messages.
    ndim : int or tuple of int or None, default=2
        Accepted numbers of dimensions (``None`` accepts any).
    min_samples : int, default=1
        Minimum size of the first axis.
    min_features : int, default=1
        Minimum size of the last axis (for arrays of 2 or more dimensions).
    finite : bool, default=True
        Reject NaN and infinite values.
    dtype : {'float', None}, default='float'
        ``'float'`` casts non-floating input to a floating dtype; ``None`` keeps the dtype.
    xp : module, optional
        Namespace to convert to (``x`` is taken as host data then).
    device : object, optional
        Device to put the result on, with ``xp``.

    Returns
    -------
    x : array
        The validated array (not copied unless a conversion was needed).

    Raises
    ------
    TypeError
        If ``x`` is not array-like or has a non-numeric dtype.
    ValueError
        On a wrong number of dimensions, too few samples or features, or non-finite values.
    """
    if x is None:
        raise TypeError(f"{name} must be an array, got None")
    if isinstance(x, (str, bytes, dict, set)):
        raise TypeError(f"{name} must be an array, got {type(x).__name__}")
    if not _is_array(x):
        try:
            x = np.asarray(x)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be array-like, got {type(x).__name__}") from exc
        if x.dtype == object:
            raise TypeError(f"{name} must be a numeric array (ragged or object input given)")
    if xp is not None and namespace_name(get_namespace(x)) != namespace_name(xp):
        x = xp.asarray(to_numpy(x), device=device)
    own = get_namespace(x)
    if dtype == "float":
        if own.isdtype(x.dtype, "bool") or own.isdtype(x.dtype, "integral"):
            from ._array_api import float_dtype

            x = own.astype(x, float_dtype(own, getattr(x, "device", None)))
        elif not own.isdtype(x.dtype, "real floating"):
            raise TypeError(f"{name} must have a real numeric dtype, got {x.dtype}")
        elif x.dtype == getattr(own, "float16", None) and namespace_name(own) != "torch":
            # NumPy, SciPy and CuPy have no half-precision linear algebra: compute in float32
            x = own.astype(x, own.float32)
    if ndim is not None:
        check_ndim(x, name, ndim)
    if x.ndim >= 1 and x.shape[0] < min_samples:
        raise ValueError(
            f"{name} needs at least {min_samples} sample(s) along axis 0, got shape "
            f"{tuple(x.shape)}"
        )
    if x.ndim >= 2 and x.shape[-1] < min_features:
        raise ValueError(
            f"{name} needs at least {min_features} feature(s) along the last axis, got shape "
            f"{tuple(x.shape)}"
        )
    if finite:
        check_finite(x, name)
    return x


def check_consistent_length(*arrays, names, axis=0):
    """Raise ``ValueError`` unless all arrays have the same size along ``axis``.

    Parameters
    ----------
    *arrays : array
        Arrays to compare (``None`` entries are skipped).
    names : sequence of str
        Argument names, one per array.
    axis : int, default=0
        Axis to compare.
    """
    pairs = [(a, n) for a, n in zip(arrays, names, strict=True) if a is not None]
    sizes = {n: a.shape[axis] for a, n in pairs}
    if len(set(sizes.values())) > 1:
        detail = ", ".join(f"{n}: {s}" for n, s in sizes.items())
        raise ValueError(f"inconsistent numbers of samples along axis {axis} ({detail})")


def check_views(views, name="X", *, min_views=2, sample_axis=-1, finite=True):
    """Validate a multi-view input: a 3-D array or a list of 2-D arrays sharing one axis.

    Parameters
    ----------
    views : array of shape (n_views, n_features, n_samples) or list of 2-D arrays
        The views. Feature counts may differ between views in list form.
    name : str, default='X'
        Argument name used in messages.
    min_views : int, default=2
        Minimum number of views.
    sample_axis : int, default=-1
        Axis of each view that must have the same length across views.
    finite : bool, default=True
        Reject NaN and infinite values.

    Returns
    -------
    views : list of 2-D arrays
        One array per view, all in the same namespace.
    """
    if _is_array(views):
        views = check_array(views, name, ndim=3, finite=finite)
        views = [views[i, ...] for i in range(views.shape[0])]
    elif isinstance(views, (list, tuple)):
        views = [check_array(v, f"{name}[{i}]", ndim=2, finite=finite) for i, v in enumerate(views)]
    else:
        raise TypeError(
            f"{name} must be a 3-D array or a list of 2-D arrays, got {type(views).__name__}"
        )
    if len(views) < min_views:
        raise ValueError(f"{name} must hold at least {min_views} views, got {len(views)}")
    names = {namespace_name(get_namespace(v)) for v in views}
    if len(names) > 1:
        raise TypeError(f"all views of {name} must come from one array library, got {names}")
    lengths = [v.shape[sample_axis] for v in views]
    if len(set(lengths)) > 1:
        raise ValueError(
            f"all views of {name} must have the same number of samples along axis "
            f"{sample_axis}, got {lengths}"
        )
    return views


def check_int(value, name, *, min_value=None, max_value=None, allow_none=False):
    """Check that ``value`` is an integer (not a bool) within [min_value, max_value]."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if min_value is not None and value < min_value:
        raise ValueError(f"{name} must be >= {min_value}, got {value}")
    if max_value is not None and value > max_value:
        raise ValueError(f"{name} must be <= {max_value}, got {value}")
    return int(value)


def check_n_components(n_components, upper, name="n_components", *, allow_none=True):
    """Check ``1 <= n_components <= upper``; ``None`` means ``upper``.

    Parameters
    ----------
    n_components : int or None
        Requested number of components.
    upper : int
        Largest admissible value (for example the data rank or the number of features).
    name : str, default='n_components'
    allow_none : bool, default=True

    Returns
    -------
    n_components : int
    """
    if n_components is None and allow_none:
        return int(upper)
    n = check_int(n_components, name, min_value=1)
    if n > upper:
        raise ValueError(f"{name}={n} is too large: at most {upper} for this input")
    return n


def check_scalar(value, name, *, allow_none=False):
    """Check that ``value`` is a finite real number (not a bool) and return it as a float."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def check_positive(value, name, *, strict=True, allow_none=False):
    """Check that ``value`` is a finite number > 0 (``strict``) or >= 0."""
    value = check_scalar(value, name, allow_none=allow_none)
    if value is None:
        return None
    if strict and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if not strict and value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def check_in_range(value, name, low=None, high=None, *, closed="both", allow_none=False):
    """Check that a finite number lies in an interval.

    Parameters
    ----------
    value : float
    name : str
    low, high : float or None
        Bounds (``None`` for unbounded).
    closed : {'both', 'left', 'right', 'neither'}, default='both'
        Which bounds are included.
    allow_none : bool, default=False

    Returns
    -------
    value : float
    """
    value = check_scalar(value, name, allow_none=allow_none)
    if value is None:
        return None
    lo_ok = low is None or (value >= low if closed in ("both", "left") else value > low)
    hi_ok = high is None or (value <= high if closed in ("both", "right") else value < high)
    if not (lo_ok and hi_ok):
        lb = "[" if closed in ("both", "left") else "("
        rb = "]" if closed in ("both", "right") else ")"
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name} must be in {lb}{lo}, {hi}{rb}, got {value}")
    return value


def check_option(value, name, options):
    """Check that ``value`` is one of ``options`` (strings or other hashables)."""
    if value not in options:
        opts = ", ".join(repr(o) for o in options)
        raise ValueError(f"{name} must be one of {opts}, got {value!r}")
    return value


def check_simplex(w, name, *, length=None, atol=1e-6):
    """Check that ``w`` is a probability vector: 1-D, non-negative, finite, summing to 1.

    Parameters
    ----------
    w : array_like, shape (k,)
        Weights.
    name : str
    length : int, optional
        Required length ``k``.
    atol : float, default=1e-6
        Tolerance on the sum.

    Returns
    -------
    w : array, shape (k,)
        The weights in their namespace (lists become NumPy float64 arrays).
    """
    w = check_array(w, name, ndim=1)
    xp = get_namespace(w)
    if length is not None and w.shape[0] != length:
        raise ValueError(f"{name} must have length {length}, got {w.shape[0]}")
    if bool(xp.any(w < 0)):
        raise ValueError(f"{name} must be non-negative, got minimum {float(xp.min(w))}")
    total = float(xp.sum(w))
    if abs(total - 1.0) > atol:
        raise ValueError(f"{name} must sum to 1 (a point on the simplex), got sum {total:.6g}")
    return w


def check_psd(a, name, *, tol=1e-8, strict=False):
    """Check that ``a`` is a symmetric positive semi-definite (or definite) matrix.

    Parameters
    ----------
    a : array, shape (..., n, n)
    name : str
    tol : float, default=1e-8
        Relative tolerance for symmetry and for the smallest eigenvalue.
    strict : bool, default=False
        Require positive definiteness.

    Returns
    -------
    a : array
        The input, unchanged.
    """
    a = check_array(a, name, ndim=None)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{name} must be a square matrix, got shape {tuple(a.shape)}")
    xp = get_namespace(a)
    scale = float(xp.max(xp.abs(a))) if a.shape[-1] else 0.0
    asym = float(xp.max(xp.abs(a - xp.matrix_transpose(a)))) if a.shape[-1] else 0.0
    if asym > tol * max(scale, 1e-300) * 10:
        raise ValueError(f"{name} must be symmetric, got max |a - a.T| = {asym:.3g}")
    w = xp.linalg.eigvalsh(a)
    lam_min = float(xp.min(w))
    if (strict and lam_min <= tol * scale) or lam_min < -tol * max(scale, 1e-300):
        kind = "definite" if strict else "semi-definite"
        raise ValueError(f"{name} must be positive {kind}, got smallest eigenvalue {lam_min:.3g}")
    return a


def check_random_state(seed):
    """Turn ``seed`` into a :class:`numpy.random.RandomState` (scikit-learn convention)."""
    return _sk_check_random_state(seed)
