r"""Retractions onto the generalized Stiefel manifold (the baselines landing avoids).

Both retractions map a point ``Y`` near :math:`\mathrm{St}_B(p, n)` to a B-orthonormal
point spanning the same column space; they need a :math:`p\times p` Cholesky factorisation or
eigendecomposition per step, and the exact product ``B @ Y`` (a random :math:`B_\zeta` would
make the result only :math:`B_\zeta`-orthonormal).

References
----------
H. Sato, K. Aihara, "Cholesky QR-based retraction on the generalized Stiefel manifold",
Comput. Optim. Appl. 72 (2019) 293-308.
"""

from __future__ import annotations

from .._array_api import cholesky, get_namespace, solve_triangular, sqrtm_psd
from .._validation import check_array

__all__ = ["cholesky_retraction", "polar_retraction"]


def _check_pair(Y, BY):
    """Finite real (n, p) arrays ``Y`` and ``BY`` of one shape, with ``p <= n``."""
    Y = check_array(Y, "Y", ndim=2)
    BY = check_array(BY, "BY", ndim=2)
    if tuple(BY.shape) != tuple(Y.shape):
        raise ValueError(f"BY must have the shape {tuple(Y.shape)} of Y, got {tuple(BY.shape)}")
    if Y.shape[1] > Y.shape[0]:
        raise ValueError(f"Y must have at most as many columns as rows (p <= n), got shape "
                         f"{tuple(Y.shape)}")
    return Y, BY


def _check_gram(G, xp):
    """Raise if ``Y^T B Y`` is not positive definite (a rank-deficient ``Y`` or an indefinite
    ``B``), which would make the retraction fail inside a factorisation or return NaN."""
    w = xp.linalg.eigvalsh(G)
    if not float(w[0]) > 1e-12 * max(float(w[-1]), 0.0):
        raise ValueError(
            "Y must have full column rank with Y.T @ BY positive definite (B positive "
            f"definite), got eigenvalues of Y.T @ BY in [{float(w[0]):.3g}, {float(w[-1]):.3g}]"
        )


def _gram(Y, BY, xp):
    M = Y.T @ BY
    return 0.5 * (M + M.T)


def cholesky_retraction(Y, BY, *, check_input=True):
    r"""Generalized-QR retraction :math:`Y R^{-1}`, with :math:`R^\top R = Y^\top B Y`.

    Parameters
    ----------
    Y : array, shape (n, p)
        Point to retract (full column rank).
    BY : array, shape (n, p)
        ``B @ Y``.
    check_input : bool, default=True
        Validate ``Y`` and ``BY`` (finite, matching shapes) and that ``Y.T @ BY`` is positive
        definite (an extra p x p eigendecomposition); ``False`` skips this inside solver loops.

    Returns
    -------
    X : array, shape (n, p)
        B-orthonormal: ``X.T @ B @ X = I``.
    BX : array, shape (n, p)
        ``B @ X``, obtained from ``BY`` without a new product with B.
    """
    if check_input:
        Y, BY = _check_pair(Y, BY)
    xp = get_namespace(Y, BY)
    gram = _gram(Y, BY, xp)
    if check_input:
        _check_gram(gram, xp)
    L = cholesky(gram)  # Y^T B Y = L L^T, R = L^T
    # X = Y L^{-T}  <=>  L X^T = Y^T; one triangular solve for Y and BY together
    n = Y.shape[0]
    Z = solve_triangular(L, xp.concat([Y, BY], axis=0).T)
    return Z[:, :n].T, Z[:, n:].T


def polar_retraction(Y, BY, *, check_input=True):
    r"""Polar retraction :math:`Y (Y^\top B Y)^{-1/2}`.

    Parameters
    ----------
    Y : array, shape (n, p)
        Point to retract (full column rank).
    BY : array, shape (n, p)
        ``B @ Y``.

    check_input : bool, default=True
        See :func:`cholesky_retraction`.

    Returns
    -------
    X : array, shape (n, p)
        B-orthonormal.
    BX : array, shape (n, p)
        ``B @ X``.
    """
    if check_input:
        Y, BY = _check_pair(Y, BY)
    xp = get_namespace(Y, BY)
    gram = _gram(Y, BY, xp)
    if check_input:
        _check_gram(gram, xp)
    W = sqrtm_psd(gram, inverse=True, check=check_input)  # Y^T B Y: PSD by construction
    return Y @ W, BY @ W
