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

__all__ = ["cholesky_retraction", "polar_retraction"]


def _gram(Y, BY, xp):
    M = Y.T @ BY
    return 0.5 * (M + M.T)


def cholesky_retraction(Y, BY):
    r"""Generalized-QR retraction :math:`Y R^{-1}`, with :math:`R^\top R = Y^\top B Y`.

    Parameters
    ----------
    Y : array, shape (n, p)
        Point to retract (full column rank).
    BY : array, shape (n, p)
        ``B @ Y``.

    Returns
    -------
    X : array, shape (n, p)
        B-orthonormal: ``X.T @ B @ X = I``.
    BX : array, shape (n, p)
        ``B @ X``, obtained from ``BY`` without a new product with B.
    """
    xp = get_namespace(Y, BY)
    L = cholesky(_gram(Y, BY, xp))  # Y^T B Y = L L^T, R = L^T
    # X = Y L^{-T}  <=>  L X^T = Y^T; one triangular solve for Y and BY together
    n = Y.shape[0]
    Z = solve_triangular(L, xp.concat([Y, BY], axis=0).T)
    return Z[:, :n].T, Z[:, n:].T


def polar_retraction(Y, BY):
    r"""Polar retraction :math:`Y (Y^\top B Y)^{-1/2}`.

    Parameters
    ----------
    Y : array, shape (n, p)
        Point to retract (full column rank).
    BY : array, shape (n, p)
        ``B @ Y``.

    Returns
    -------
    X : array, shape (n, p)
        B-orthonormal.
    BX : array, shape (n, p)
        ``B @ X``.
    """
    xp = get_namespace(Y, BY)
    W = sqrtm_psd(_gram(Y, BY, xp), inverse=True)
    return Y @ W, BY @ W
