"""Diagnostics of token dynamics: clusters, ranks, anisotropy, Wasserstein distances."""

from __future__ import annotations

import numpy as np
import scipy.optimize

from .._array_api import from_numpy, get_namespace, make_generator, sqrtm_psd, to_numpy
from .._validation import (
    check_array,
    check_in_range,
    check_option,
    check_positive,
    check_psd,
)

__all__ = [
    "cluster_count",
    "limit_rank",
    "anisotropy",
    "empirical_moments",
    "gaussian_w2",
    "w2_to_gaussian",
]


def _check_square(a, name):
    a = check_array(a, name, ndim=None)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{name} must be a (d, d) matrix or a batch (..., d, d), got shape "
                         f"{tuple(a.shape)}")
    return a


def _check_symmetric(a, name, tol=1e-6):
    """A square (batch of) symmetric matrices, up to a relative round-off ``tol``."""
    a = _check_square(a, name)
    xp = get_namespace(a)
    if a.shape[-1]:
        scale = float(xp.max(xp.abs(a)))
        asym = float(xp.max(xp.abs(a - xp.matrix_transpose(a))))
        if asym > tol * scale:
            raise ValueError(f"{name} must be symmetric, got max |a - a.T| = {asym:.3g}")
    return a


def _check_cov(a, name):
    """A square (batch of) symmetric positive semi-definite matrices, up to round-off."""
    a = _check_square(a, name)
    return check_psd(a, name, tol=1e-6)


def _scalar_or_array(xp, values, like):
    """A Python number for 0-d results, an array of ``like``'s namespace otherwise."""
    if values.ndim == 0:
        return values.item()
    return from_numpy(values, like) if values.dtype.kind == "f" else xp.asarray(
        values, device=getattr(like, "device", None))


def cluster_count(X, threshold=0.9999):
    r"""Number of clusters of tokens, as the rank of the thresholded Gram matrix.

    Rows are normalised, the cosine Gram matrix :math:`G_{ij} = \langle x_i, x_j\rangle` is
    thresholded, :math:`B_{ij} = 1[G_{ij} > \tau]`, and the count is the rank of B: for
    well-separated clusters B is block-diagonal with all-ones blocks (Geshkovski et al., 2023,
    who use :math:`\tau = 0.9999`).

    Parameters
    ----------
    X : array, shape (n, d)
        Tokens (non-zero rows).
    threshold : float, default=0.9999
        Cosine similarity above which two tokens are in the same cluster, in (-1, 1).

    Returns
    -------
    count : int

    Notes
    -----
    The n x n Gram matrix is formed: use a subsample for very large n.
    """
    X = check_array(X, "X", ndim=2)
    threshold = check_in_range(threshold, "threshold", -1.0, 1.0, closed="neither")
    xp = get_namespace(X)
    nrm = xp.sqrt(xp.sum(X * X, axis=-1, keepdims=True))
    if not bool(xp.all(nrm > 0)):
        raise ValueError("X must have non-zero rows to define cosine similarities")
    Xn = X / nrm
    B = xp.astype((Xn @ xp.matrix_transpose(Xn)) > threshold, X.dtype)
    return int(xp.linalg.matrix_rank(B))


def limit_rank(cov, tol=0.1):
    """Number of eigenvalues of a covariance above ``tol`` (the limit rank after a collapse).

    Parameters
    ----------
    cov : array, shape (d, d) or (..., d, d)
        Symmetric matrices (up to a relative round-off of 1e-6).
    tol : float, default=0.1
        Absolute eigenvalue threshold (0.1 as in Castin et al., 2025).

    Returns
    -------
    rank : int or int array of shape (...)
    """
    cov = _check_symmetric(cov, "cov")
    tol = check_positive(tol, "tol", strict=False)
    xp = get_namespace(cov)
    w = xp.linalg.eigvalsh(0.5 * (cov + xp.matrix_transpose(cov)))
    r = xp.sum(xp.astype(w > tol, xp.int64), axis=-1)
    return int(r) if r.ndim == 0 else r


def anisotropy(cov):
    r"""Share of the variance along the main axis, :math:`\lambda_{\max}(\Sigma)/\mathrm{tr}\Sigma`.

    Equals 1/d for an isotropic covariance and 1 for a rank-one (fully anisotropic) one.

    Parameters
    ----------
    cov : array, shape (d, d) or (..., d, d)
        Symmetric positive semi-definite (up to a relative round-off of 1e-6), non-zero.

    Returns
    -------
    ratio : float or array of shape (...)
    """
    cov = _check_cov(cov, "cov")
    xp = get_namespace(cov)
    w = xp.linalg.eigvalsh(0.5 * (cov + xp.matrix_transpose(cov)))
    tr = xp.sum(w, axis=-1)
    if not bool(xp.all(tr > 0)):
        raise ValueError("cov must have a positive trace")
    r = w[..., -1] / tr
    return float(r) if r.ndim == 0 else r


def empirical_moments(X):
    """Empirical mean and (biased, 1/n) covariance of particles.

    Parameters
    ----------
    X : array, shape (..., n, d)

    Returns
    -------
    mean : array, shape (..., d)
    cov : array, shape (..., d, d)
    """
    X = check_array(X, "X", ndim=None)
    if X.ndim < 2:
        raise ValueError(f"X must have shape (..., n, d), got {tuple(X.shape)}")
    xp = get_namespace(X)
    m = xp.mean(X, axis=-2)
    Xc = X - m[..., None, :]
    C = xp.matrix_transpose(Xc) @ Xc / X.shape[-2]
    return m, 0.5 * (C + xp.matrix_transpose(C))


def gaussian_w2(mean1, cov1, mean2, cov2):
    r"""2-Wasserstein distance between two Gaussians (the Bures-Wasserstein formula).

    .. math:: W_2^2 = \|m_1 - m_2\|^2 + \mathrm{tr}\,\Sigma_1 + \mathrm{tr}\,\Sigma_2
              - 2\,\mathrm{tr}(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2})^{1/2}

    (Dowson & Landau, 1982; Givens & Shortt, 1984).

    Parameters
    ----------
    mean1, mean2 : array, shape (..., d)
    cov1, cov2 : array, shape (..., d, d)
        Symmetric positive semi-definite (up to a relative round-off of 1e-6).

    Returns
    -------
    w2 : float or array of shape (...)

    Raises
    ------
    ValueError
        If a covariance is not square, symmetric and positive semi-definite, or the means do
        not have the covariances' dimension.
    """
    cov1 = _check_cov(cov1, "cov1")
    cov2 = _check_cov(cov2, "cov2")
    mean1 = check_array(mean1, "mean1", ndim=None)
    mean2 = check_array(mean2, "mean2", ndim=None)
    d = cov1.shape[-1]
    for name, a in (("mean1", mean1), ("mean2", mean2)):
        if a.ndim < 1 or a.shape[-1] != d:
            raise ValueError(f"{name} must have shape (..., {d}), got {tuple(a.shape)}")
    if cov2.shape[-1] != d:
        raise ValueError(f"cov2 must have shape (..., {d}, {d}) like cov1, got "
                         f"{tuple(cov2.shape)}")
    xp = get_namespace(cov1, cov2, mean1, mean2)
    r1 = sqrtm_psd(0.5 * (cov1 + xp.matrix_transpose(cov1)))
    cross = r1 @ cov2 @ r1
    w = xp.linalg.eigvalsh(0.5 * (cross + xp.matrix_transpose(cross)))
    tr_cross = xp.sum(xp.sqrt(xp.clip(w, 0.0, None)), axis=-1)
    tr1 = xp.linalg.trace(cov1)
    tr2 = xp.linalg.trace(cov2)
    dm = mean1 - mean2
    sq = xp.sum(dm * dm, axis=-1) + tr1 + tr2 - 2.0 * tr_cross
    out = xp.sqrt(xp.clip(sq, 0.0, None))
    return float(out) if out.ndim == 0 else out


def w2_to_gaussian(X, mean, cov, *, method="bures", random_state=None, return_sample=False):
    r"""Empirical 2-Wasserstein distance between particles and a Gaussian prediction.

    Parameters
    ----------
    X : array, shape (n, d)
        Particles.
    mean : array, shape (d,)
    cov : array, shape (d, d)
        The Gaussian prediction (for example from :func:`gaussian_ode`).
    method : {'bures', 'assignment'}, default='bures'
        ``'bures'``: :func:`gaussian_w2` between N(empirical mean, empirical covariance) and
        the prediction, a lower bound of the distance of the empirical measure (Gelbrich, 1990).
        ``'assignment'``: exact W2 between the particles and n samples of the prediction, by
        solving the assignment problem on the host (``scipy.optimize.linear_sum_assignment``,
        O(n^3): keep n below a few thousand). It includes the sampling noise of both clouds.
    random_state : int, Generator or None
        Seed of the Gaussian sample (``'assignment'`` only).
    return_sample : bool, default=False
        Also return the Gaussian sample (``'assignment'`` only).

    Returns
    -------
    w2 : float
    sample : array, shape (n, d)
        Only with ``return_sample`` and ``method='assignment'``.
    """
    X = check_array(X, "X", ndim=2)
    method = check_option(method, "method", ("bures", "assignment"))
    cov = _check_cov(cov, "cov")
    mean = check_array(mean, "mean", ndim=1)
    d = X.shape[1]
    if mean.shape[0] != d or cov.shape[-1] != d or cov.ndim != 2:
        raise ValueError(f"mean and cov must have shapes ({d},) and ({d}, {d}) to match X, "
                         f"got {tuple(mean.shape)} and {tuple(cov.shape)}")
    xp = get_namespace(X)
    if method == "bures":
        m, C = empirical_moments(X)
        mean_x = from_numpy(to_numpy(mean), X)
        cov_x = from_numpy(to_numpy(cov), X)
        return gaussian_w2(m, C, mean_x, cov_x)
    n = X.shape[0]
    rng = make_generator(random_state, xp, getattr(X, "device", None))
    Z = rng.normal((n, d), dtype=X.dtype)
    root = sqrtm_psd(from_numpy(to_numpy(cov), X))
    Y = from_numpy(to_numpy(mean), X)[None, :] + Z @ root
    Xn, Yn = to_numpy(X).astype(float), to_numpy(Y).astype(float)
    cost = (np.sum(Xn**2, 1)[:, None] + np.sum(Yn**2, 1)[None, :] - 2 * Xn @ Yn.T)
    rows, cols = scipy.optimize.linear_sum_assignment(cost)
    w2 = float(np.sqrt(max(np.mean(np.sum((Xn[rows] - Yn[cols]) ** 2, axis=1)), 0.0)))
    return (w2, Y) if return_sample else w2
