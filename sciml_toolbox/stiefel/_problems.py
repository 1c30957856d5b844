"""Test problems of the landing paper (Vary et al., ICML 2024, Section 5)."""

from __future__ import annotations

import numpy as np

from .._array_api import asarray
from .._validation import check_int, check_positive

__all__ = ["make_gevp_pencil"]


def make_gevp_pencil(n_features=1000, *, cond_A=100.0, random_state=None, xp=None, device=None):
    r"""The generalized-eigenvalue test pencil (A, B) of Vary et al. (2024), Section 5.1.

    A has an equidistant spectrum from 1 to ``1 / cond_A`` and B the exponentially decaying
    spectrum :math:`\lambda_k = n^{-(k-1)/n}`, :math:`k = 1..n` (condition number about n), each
    in a random orthonormal basis, and both are scaled to unit Frobenius norm.

    Parameters
    ----------
    n_features : int, default=1000
        Size n.
    cond_A : float, default=100.0
        Condition number of A.
    random_state : int, numpy Generator or None
        Seed of the two random bases.
    xp : module, optional
        Namespace of the returned arrays (NumPy by default).
    device : object, optional
        Device of the returned arrays.

    Returns
    -------
    A : array, shape (n, n)
        Symmetric positive definite.
    B : array, shape (n, n)
        Symmetric positive definite.
    """
    n = check_int(n_features, "n_features", min_value=1)
    cond_A = check_positive(cond_A, "cond_A")
    rng = np.random.default_rng(random_state)

    def rotate(evals):
        Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
        M = (Q * evals) @ Q.T
        M = 0.5 * (M + M.T)
        return M / np.linalg.norm(M)

    A = rotate(np.linspace(1.0, 1.0 / cond_A, n))
    B = rotate(np.exp(np.log(1.0 / n) * (np.arange(n) / n)))
    if xp is None:
        return A, B
    return asarray(A, xp, device=device), asarray(B, xp, device=device)
