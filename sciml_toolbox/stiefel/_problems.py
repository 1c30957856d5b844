"""Test problems of the landing paper (Vary et al., ICML 2024, Section 5); synthetic CCA."""

from __future__ import annotations

import numpy as np

from .._array_api import asarray
from .._validation import check_in_range, check_int

__all__ = ["make_cca_data", "make_gevp_pencil"]


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
        Condition number of A (>= 1).
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
    cond_A = check_in_range(cond_A, "cond_A", 1.0, None)
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


def make_cca_data(n_samples, n_features, n_components, *, random_state=None):
    r"""Two views sharing ``n_components`` correlated latent factors, plus unit noise.

    Latent factors :math:`Z \in \mathbb{R}^{n \times p}` are standard normal, and
    :math:`Z_y = Z \operatorname{diag}(\rho) + E \operatorname{diag}(\sqrt{1 - \rho^2})` with
    :math:`\rho` equally spaced from 0.9 to 0.5; the views are
    :math:`X = Z L_x / \sqrt{p} + N_x` and :math:`Y = Z_y L_y / \sqrt{p} + N_y` with standard
    normal loadings :math:`L_x, L_y` (p, d) and noise. Only ``n_components`` canonical
    correlations are non-zero in the population, the k-th at most :math:`\rho_k` (the
    noise dilutes them).

    Parameters
    ----------
    n_samples : int
    n_features : int
        Features d of each view.
    n_components : int
        Number of shared factors p (at most ``n_features``).
    random_state : int, numpy Generator or None

    Returns
    -------
    X, Y : ndarray, shape (n_samples, n_features)
    """
    n = check_int(n_samples, "n_samples", min_value=1)
    d = check_int(n_features, "n_features", min_value=1)
    p = check_int(n_components, "n_components", min_value=1, max_value=d)
    rng = np.random.default_rng(random_state)
    Z = rng.standard_normal((n, p))
    corr = np.linspace(0.9, 0.5, p)
    Zy = Z * corr + rng.standard_normal((n, p)) * np.sqrt(1 - corr**2)
    X = Z @ rng.standard_normal((p, d)) / np.sqrt(p) + rng.standard_normal((n, d))
    Y = Zy @ rng.standard_normal((p, d)) / np.sqrt(p) + rng.standard_normal((n, d))
    return X, Y
