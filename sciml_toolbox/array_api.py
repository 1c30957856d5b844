"""Array-API helpers: write array code once, run it on NumPy, CuPy and torch (CPU or CUDA).

Every array function of the toolbox goes through these helpers, so that it runs on NumPy, CuPy,
torch and ``array_api_strict`` arrays alike and returns results in the caller's namespace and on
its device. They are public for users who extend the toolbox or write their own array-API code
in the same style:

>>> import numpy as np
>>> from sciml_toolbox.array_api import get_namespace, make_generator, svd
>>> xp = get_namespace(np.zeros(1))
>>> X = make_generator(0, xp).normal((50, 4))
>>> U, S, Vh = svd(X)              # NumPy in, NumPy out; torch in, torch out
>>> U.shape, S.shape, Vh.shape
((50, 4), (4,), (4, 4))

What the standard does not define (random numbers, a few linear-algebra routines on old
backends, FFTs, conversion to NumPy for SciPy drivers) is implemented once here and tested on
every namespace.
"""

from ._array_api import (  # noqa: F401
    Generator,
    __all__,
    asarray,
    cholesky,
    device,
    eigh,
    fft,
    float_dtype,
    from_numpy,
    get_namespace,
    ifft,
    inv,
    irfft,
    make_generator,
    namespace_name,
    qr,
    rfft,
    size,
    slogdet,
    solve,
    solve_triangular,
    sqrtm_psd,
    supports_float64,
    svd,
    to_numpy,
)
