"""The one place where the toolbox talks to ``array_api_compat``.

Array code in the toolbox is written once against the Python array API standard and runs on
NumPy, CuPy, torch (CPU or CUDA) and ``array_api_strict`` arrays. Algorithms call
:func:`get_namespace` on their inputs and use only the returned namespace ``xp``; everything that
the standard does not define (random numbers, a few linear-algebra routines on old backends,
conversion to NumPy for SciPy drivers) lives here, tested on every namespace.

The helpers check what costs no pass over the data (that an argument is an array, its number of
dimensions, square matrices, matching shapes, ``n`` and ``axis`` of the FFTs) and raise
``TypeError`` / ``ValueError`` naming the argument. They do not scan values: a NaN reaching
``svd`` or ``cholesky`` fails in the backend (``LinAlgError``); the public methods check their
inputs' values before calling them.

Notes
-----
NumPy arrays are handled through ``array_api_compat.numpy`` so that ``xp.linalg``, ``xp.fft``
and the standard's function names exist on every supported NumPy version. Results are always
returned in the caller's namespace and on the caller's device.
"""

from __future__ import annotations

import numbers

import array_api_compat
import numpy as np

__all__ = [
    "get_namespace",
    "namespace_name",
    "device",
    "to_numpy",
    "asarray",
    "from_numpy",
    "float_dtype",
    "supports_float64",
    "size",
    "Generator",
    "make_generator",
    "svd",
    "eigh",
    "solve",
    "solve_triangular",
    "cholesky",
    "inv",
    "qr",
    "slogdet",
    "rfft",
    "irfft",
    "fft",
    "ifft",
    "sqrtm_psd",
]


# --------------------------------------------------------------------------------------------
# namespaces and devices
# --------------------------------------------------------------------------------------------
def _check_array_arg(x, name, *, min_ndim=0, square=False):
    """Raise a clear error naming ``name`` unless ``x`` is an array (of at least ``min_ndim``
    dimensions, square in its last two if ``square``). Attribute look-ups only: no data pass."""
    if isinstance(x, (numbers.Number, str, bytes, list, tuple)) or not (
            hasattr(x, "shape") and hasattr(x, "dtype") and hasattr(x, "ndim")):
        raise TypeError(f"{name} must be an array (NumPy, CuPy, torch, ...), "
                        f"got {type(x).__name__}")
    if x.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s), "
                         f"got shape {tuple(x.shape)}")
    if square and x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{name} must be square in its last two dimensions, "
                         f"got shape {tuple(x.shape)}")
    return x


def _check_namespace_arg(xp, name="xp"):
    if not (hasattr(xp, "asarray") and hasattr(xp, "zeros")):
        raise TypeError(f"{name} must be an array namespace (for example the result of "
                        f"get_namespace), got {type(xp).__name__}")
    return xp


def get_namespace(*arrays):
    """Return the array-API namespace shared by ``arrays``.

    Python scalars and ``None`` are ignored. Lists and tuples of numbers are treated as NumPy.

    Parameters
    ----------
    *arrays : array_like
        Arrays from one library (NumPy, CuPy, torch, array_api_strict, ...).

    Returns
    -------
    xp : module
        The array-API compatible namespace (``array_api_compat.numpy`` for NumPy input).

    Raises
    ------
    TypeError
        If the arrays come from different libraries or none is an array.
    """
    arrs = [a for a in arrays if a is not None and not isinstance(a, (numbers.Number, str))]
    arrs = [np.asarray(a) if isinstance(a, (list, tuple)) else a for a in arrs]
    if not arrs:
        return array_api_compat.array_namespace(np.empty(0))
    try:
        return array_api_compat.array_namespace(*arrs)
    except TypeError as exc:
        kinds = sorted({type(a).__module__ + "." + type(a).__name__ for a in arrs})
        raise TypeError(
            f"arrays must all come from one array library, got {', '.join(kinds)}"
        ) from exc


def namespace_name(xp):
    """Short name of a namespace: 'numpy', 'torch', 'cupy', 'array_api_strict', ...

    Parameters
    ----------
    xp : module
        An array namespace, for example the result of :func:`get_namespace`.

    Returns
    -------
    name : str
    """
    name = getattr(xp, "__name__", str(xp))
    for known in ("array_api_strict", "torch", "cupy", "numpy", "jax", "dask"):
        if known in name:
            return known
    return name


def device(x):
    """Device of array ``x`` (``'cpu'`` for NumPy arrays)."""
    return array_api_compat.device(_check_array_arg(x, "x"))


def size(x):
    """Number of elements of ``x`` (works where ``x.size`` is a method or ``None``)."""
    return array_api_compat.size(_check_array_arg(x, "x"))


def to_numpy(x):
    """Copy (or view) an array from any supported namespace as a NumPy ndarray.

    Parameters
    ----------
    x : array
        NumPy, CuPy, torch or array_api_strict array (any shape), or a Python scalar / list.

    Returns
    -------
    out : numpy.ndarray
        Same shape and values; torch tensors are detached and moved to the CPU first.
    """
    if isinstance(x, np.ndarray):
        return x
    if array_api_compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    if array_api_compat.is_cupy_array(x):
        return x.get()
    if hasattr(x, "__array_namespace__") and not hasattr(x, "__array__"):
        # array_api_strict forbids implicit conversion: go through DLPack.
        return np.from_dlpack(x)
    return np.asarray(x)


def asarray(obj, xp, *, device=None, dtype=None, copy=None):
    """Create an array in namespace ``xp`` on ``device`` from any array-like.

    Parameters
    ----------
    obj : array_like
        Data: NumPy array, nested lists, scalar, or an array of ``xp`` itself.
    xp : module
        Target namespace.
    device : object, optional
        Target device (defaults to the namespace's default, the CPU for NumPy).
    dtype : dtype, optional
        Target dtype of ``xp``.
    copy : bool, optional
        Passed to ``xp.asarray``.

    Returns
    -------
    out : array of ``xp``
    """
    _check_namespace_arg(xp)
    if isinstance(obj, np.ndarray) and namespace_name(xp) == "array_api_strict":
        obj = obj.tolist() if obj.ndim == 0 else obj
    kwargs = {}
    if device is not None:
        kwargs["device"] = device
    if dtype is not None:
        kwargs["dtype"] = dtype
    if copy is not None:
        kwargs["copy"] = copy
    return xp.asarray(obj, **kwargs)


def from_numpy(arr, like):
    """Move a NumPy array into the namespace and onto the device of the array ``like``.

    Parameters
    ----------
    arr : numpy.ndarray
        Host data.
    like : array
        An array whose namespace and device the result should share. Its floating dtype is
        used when ``arr`` is floating.

    Returns
    -------
    out : array
        ``arr`` in ``like``'s namespace, on ``like``'s device.
    """
    xp = get_namespace(_check_array_arg(like, "like"))
    arr = np.asarray(arr)
    dtype = None
    if np.issubdtype(arr.dtype, np.floating) and xp.isdtype(like.dtype, "real floating"):
        dtype = like.dtype
    return asarray(np.ascontiguousarray(arr), xp, device=device(like), dtype=dtype)


def supports_float64(xp, device=None):
    """Whether ``xp`` can hold float64 arrays on ``device`` (False on Apple MPS)."""
    _check_namespace_arg(xp)
    try:
        xp.zeros(1, dtype=xp.float64, device=device)
    except (TypeError, RuntimeError, ValueError):
        return False
    return True


def float_dtype(xp, device=None, *arrays):
    """The floating dtype to compute in.

    The result type of the floating inputs, float64 for integer inputs (float32 where the
    device has no float64).

    Parameters
    ----------
    xp : module
        Namespace.
    device : object, optional
        Device on which the computation happens.
    *arrays : array
        Inputs whose floating dtypes are promoted together.

    Returns
    -------
    dtype : dtype of ``xp``
    """
    _check_namespace_arg(xp)
    floats = [a.dtype for a in arrays if xp.isdtype(a.dtype, "real floating")]
    if floats:
        return xp.result_type(*floats)
    return xp.float64 if supports_float64(xp, device) else xp.float32


# --------------------------------------------------------------------------------------------
# random numbers
# --------------------------------------------------------------------------------------------
class Generator:
    """Seeded random numbers created directly in a namespace, on a device.

    By default numbers are drawn on the host with :class:`numpy.random.Generator` and moved to
    the device: the same seed then gives the same numbers on every namespace, which is what
    tests and cross-backend comparisons need. With ``native=True`` torch and CuPy arrays are
    drawn on the device with their own generators (faster for large GPU arrays, but the
    numbers differ from NumPy's).

    Parameters
    ----------
    seed : None, int, numpy.random.Generator or numpy.random.RandomState
        Seed as accepted by scikit-learn's ``random_state``.
    xp : module
        Namespace of the arrays to create.
    device : object, optional
        Device of the arrays to create.
    native : bool, default=False
        Draw on the device with the namespace's own generator (torch, CuPy only).
    """

    def __init__(self, seed, xp, device=None, *, native=False):
        _check_namespace_arg(xp)
        if not (seed is None or isinstance(seed, (numbers.Integral, np.random.Generator,
                                                  np.random.RandomState, np.random.SeedSequence,
                                                  np.random.BitGenerator))) or (
                isinstance(seed, numbers.Integral) and (isinstance(seed, bool) or seed < 0)):
            raise TypeError("random_state must be None, a non-negative int, a "
                            f"numpy.random.Generator or RandomState, got {seed!r}")
        if isinstance(seed, np.random.RandomState):
            seed = seed.randint(np.iinfo(np.int32).max)
        self._host = np.random.default_rng(seed)
        self.xp = xp
        self.device = device
        self._native = None
        name = namespace_name(xp)
        if native and name == "torch":
            import torch

            self._native = torch.Generator(device=device or "cpu")
            self._native.manual_seed(int(self._host.integers(2**62)))
        elif native and name == "cupy":
            import cupy

            self._native = cupy.random.default_rng(int(self._host.integers(2**62)))

    def _dtype(self, dtype):
        return float_dtype(self.xp, self.device) if dtype is None else dtype

    @staticmethod
    def _shape(shape):
        shape = (shape,) if isinstance(shape, numbers.Integral) else tuple(shape)
        if any(isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 0
               for d in shape):
            raise ValueError(f"shape must be a tuple of non-negative ints, got {shape!r}")
        return shape

    def _move(self, arr, dtype):
        return asarray(arr, self.xp, device=self.device, dtype=dtype)

    def normal(self, shape, *, loc=0.0, scale=1.0, dtype=None):
        """Gaussian samples of the given shape (tuple of ints)."""
        shape, dtype = self._shape(shape), self._dtype(dtype)
        if self._native is not None and namespace_name(self.xp) == "torch":
            import torch

            out = torch.randn(shape, generator=self._native, device=self.device, dtype=dtype)
            return out * scale + loc
        if self._native is not None:
            return (self._native.standard_normal(shape) * scale + loc).astype(dtype)
        return self._move(self._host.normal(loc, scale, size=shape), dtype)

    def uniform(self, shape, *, low=0.0, high=1.0, dtype=None):
        """Uniform samples on [low, high) of the given shape."""
        shape, dtype = self._shape(shape), self._dtype(dtype)
        if self._native is not None and namespace_name(self.xp) == "torch":
            import torch

            out = torch.rand(shape, generator=self._native, device=self.device, dtype=dtype)
            return out * (high - low) + low
        if self._native is not None:
            return (self._native.random(shape) * (high - low) + low).astype(dtype)
        return self._move(self._host.uniform(low, high, size=shape), dtype)

    def laplace(self, shape, *, loc=0.0, scale=1.0, dtype=None):
        """Laplace samples of the given shape (drawn on the host)."""
        return self._move(self._host.laplace(loc, scale, size=self._shape(shape)),
                          self._dtype(dtype))

    def integers(self, low, high, shape):
        """Integers in [low, high) of the given shape (int64)."""
        return self._move(self._host.integers(low, high, size=self._shape(shape)),
                          self.xp.int64)

    def permutation(self, n):
        """A random permutation of ``range(n)`` (int64)."""
        return self._move(self._host.permutation(n), self.xp.int64)

    def spawn_seed(self):
        """An integer seed derived from this generator (for child generators)."""
        return int(self._host.integers(2**31 - 1))


def make_generator(random_state, xp, device=None, *, native=False):
    """Build a :class:`Generator` from a scikit-learn style ``random_state``.

    Parameters
    ----------
    random_state : None, int, numpy.random.Generator, numpy.random.RandomState or Generator
        Seed. A :class:`Generator` is returned unchanged.
    xp : module
        Namespace of the arrays to create.
    device : object, optional
        Device of the arrays to create.
    native : bool, default=False
        See :class:`Generator`.

    Returns
    -------
    rng : Generator
    """
    if isinstance(random_state, Generator):
        return random_state
    return Generator(random_state, xp, device, native=native)


# --------------------------------------------------------------------------------------------
# linear algebra and FFT outside (or at the edge of) the standard
# --------------------------------------------------------------------------------------------
def _linalg(xp):
    lin = getattr(xp, "linalg", None)
    if lin is None:
        raise TypeError(f"namespace {namespace_name(xp)} has no linalg extension")
    return lin


def svd(x, full_matrices=False):
    """Singular value decomposition ``x = U diag(S) Vh``.

    Parameters
    ----------
    x : array, shape (..., m, n)
    full_matrices : bool, default=False

    Returns
    -------
    U : array, shape (..., m, k)
    S : array, shape (..., k)
        Singular values in decreasing order, k = min(m, n).
    Vh : array, shape (..., k, n)
    """
    xp = get_namespace(_check_array_arg(x, "x", min_ndim=2))
    return tuple(_linalg(xp).svd(x, full_matrices=full_matrices))


def eigh(x):
    """Eigen-decomposition of symmetric matrices, eigenvalues in increasing order.

    Parameters
    ----------
    x : array, shape (..., n, n)
        Symmetric (only the lower triangle is guaranteed to be read).

    Returns
    -------
    w : array, shape (..., n)
    V : array, shape (..., n, n)
        Orthonormal eigenvectors in columns.
    """
    xp = get_namespace(_check_array_arg(x, "x", min_ndim=2, square=True))
    return tuple(_linalg(xp).eigh(x))


def _check_square_system(a, b):
    _check_array_arg(a, "a", min_ndim=2, square=True)
    _check_array_arg(b, "b", min_ndim=1)
    rows = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if rows != a.shape[-1]:
        raise ValueError(f"b must have {a.shape[-1]} rows to match a of shape "
                         f"{tuple(a.shape)}, got shape {tuple(b.shape)}")


def solve(a, b):
    """Solve ``a @ x = b`` for square ``a`` of shape (..., n, n); ``b`` is (..., n, k) or (n,)."""
    _check_square_system(a, b)
    xp = get_namespace(a, b)
    lin = _linalg(xp)
    if b.ndim == 1:
        return lin.solve(a, b[:, None])[:, 0]
    return lin.solve(a, b)


def solve_triangular(a, b, *, lower=True):
    """Solve ``a @ x = b`` for a triangular ``a`` (n, n) and ``b`` (n, k).

    A triangular solve (``trsm``, :math:`n^2 k` flops) on NumPy, torch and CuPy; a general
    solve elsewhere (only the triangle of ``a`` on the chosen side may be non-zero then).
    """
    _check_square_system(a, b)
    xp = get_namespace(a, b)
    name = namespace_name(xp)
    if name == "numpy":
        from scipy.linalg import solve_triangular as _st

        return _st(a, b, lower=lower, check_finite=False)
    if name == "torch":
        import torch

        return torch.linalg.solve_triangular(a, b, upper=not lower)
    if name == "cupy":
        from cupyx.scipy.linalg import solve_triangular as _st

        return _st(a, b, lower=lower)
    return solve(a, b)


def cholesky(a, upper=False):
    """Cholesky factor of a symmetric positive-definite matrix (..., n, n).

    Raises
    ------
    numpy.linalg.LinAlgError or RuntimeError
        From the backend, when ``a`` is not positive definite.
    """
    xp = get_namespace(_check_array_arg(a, "a", min_ndim=2, square=True))
    return _linalg(xp).cholesky(a, upper=upper)


def inv(a):
    """Inverse of square matrices (..., n, n)."""
    xp = get_namespace(_check_array_arg(a, "a", min_ndim=2, square=True))
    return _linalg(xp).inv(a)


def qr(a):
    """Reduced QR decomposition of (..., m, n) matrices: ``Q`` (..., m, k), ``R`` (..., k, n)."""
    xp = get_namespace(_check_array_arg(a, "a", min_ndim=2))
    return tuple(_linalg(xp).qr(a))


def slogdet(a):
    """Sign and log absolute determinant of square matrices (..., n, n)."""
    xp = get_namespace(_check_array_arg(a, "a", min_ndim=2, square=True))
    return tuple(_linalg(xp).slogdet(a))


def sqrtm_psd(a, *, inverse=False, eps=0.0, check=True):
    """Symmetric square root (or inverse square root) of PSD matrices by ``eigh``.

    Parameters
    ----------
    a : array, shape (..., n, n)
        Symmetric positive semi-definite.
    inverse : bool, default=False
        Return ``a^{-1/2}`` instead of ``a^{1/2}``.
    eps : float, default=0.0
        Eigenvalues are clipped below at ``eps`` before the power is taken.
    check : bool, default=True
        Raise when ``a`` is not PSD beyond round-off (below). Solvers that call this on a
        matrix PSD by construction (a Gram matrix in a loop) pass False: on a GPU the check
        costs a host synchronisation.

    Returns
    -------
    out : array, shape (..., n, n)

    Raises
    ------
    ValueError
        If an eigenvalue of ``a`` is below ``-1e-6`` times its largest absolute eigenvalue
        (``a`` is not PSD up to round-off); smaller negative eigenvalues are clipped.
    """
    xp = get_namespace(_check_array_arg(a, "a", min_ndim=2, square=True))
    w, v = eigh(a)
    if check and w.shape[-1] and bool(xp.any(w[..., 0] < -1e-6 * xp.max(xp.abs(w), axis=-1))):
        raise ValueError("a must be positive semi-definite: its smallest eigenvalue is "
                         f"{float(xp.min(w[..., 0])):.3g}")
    w = xp.clip(w, eps, None) if eps > 0 else xp.clip(w, 0.0, None)
    p = w ** (-0.5) if inverse else xp.sqrt(w)
    return (v * p[..., None, :]) @ xp.matrix_transpose(v)


def _fft(xp):
    mod = getattr(xp, "fft", None)
    if mod is None:
        raise TypeError(f"namespace {namespace_name(xp)} has no fft extension")
    return mod


def _check_fft_args(x, n, axis):
    _check_array_arg(x, "x", min_ndim=1)
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) or not (
            -x.ndim <= axis < x.ndim):
        raise ValueError(f"axis must be an int in [-{x.ndim}, {x.ndim}), got {axis!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1):
        raise ValueError(f"n must be None or a positive int, got {n!r}")


def rfft(x, n=None, axis=-1):
    """Real FFT along ``axis`` (output length n // 2 + 1)."""
    _check_fft_args(x, n, axis)
    xp = get_namespace(x)
    return _fft(xp).rfft(x, n=n, axis=axis)


def irfft(x, n=None, axis=-1):
    """Inverse of :func:`rfft`; ``n`` is the length of the real output."""
    _check_fft_args(x, n, axis)
    xp = get_namespace(x)
    return _fft(xp).irfft(x, n=n, axis=axis)


def _as_complex(x, xp):
    if xp.isdtype(x.dtype, "real floating"):
        return xp.astype(x, xp.complex64 if x.dtype == xp.float32 else xp.complex128)
    return x


def fft(x, n=None, axis=-1):
    """Complex FFT along ``axis`` (real input is promoted to complex first)."""
    _check_fft_args(x, n, axis)
    xp = get_namespace(x)
    return _fft(xp).fft(_as_complex(x, xp), n=n, axis=axis)


def ifft(x, n=None, axis=-1):
    """Inverse complex FFT along ``axis`` (real input is promoted to complex first)."""
    _check_fft_args(x, n, axis)
    xp = get_namespace(x)
    return _fft(xp).ifft(_as_complex(x, xp), n=n, axis=axis)
