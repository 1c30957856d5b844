"""Regularised CCA in closed form: the exact solution the landing estimators approach."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.linalg as sl

from .._validation import (
    check_array,
    check_consistent_length,
    check_n_components,
    check_positive,
)

__all__ = ["CCAClosedForm", "cca_closed_form", "cca_subspace_correlation"]


class CCAClosedForm(NamedTuple):
    """Result of :func:`cca_closed_form`.

    Attributes
    ----------
    correlations : ndarray, shape (n_components,)
        Canonical correlations, in decreasing order.
    weights_x : ndarray, shape (n_features_x, n_components)
    weights_y : ndarray, shape (n_features_y, n_components)
        Canonical weights: ``weights_x.T @ Sxx @ weights_x = I``, same for y, and
        ``weights_x.T @ Sxy @ weights_y = diag(correlations)``.
    covariances : tuple of ndarray
        ``(Sxx, Syy, Sxy)``: the regularised covariances ``Sxx + reg I`` (n_features_x,
        n_features_x), ``Syy + reg I`` (n_features_y, n_features_y) and the cross-covariance
        (n_features_x, n_features_y), all divided by n_samples.
    """

    correlations: np.ndarray
    weights_x: np.ndarray
    weights_y: np.ndarray
    covariances: tuple


def _inv_sqrt(S, name="a view"):
    w, V = sl.eigh(S)
    if w[0] <= w[-1] * S.shape[0] * np.finfo(float).eps:
        raise ValueError(f"the covariance of {name} is singular ({name} has dependent or "
                         "constant features): pass reg > 0")
    return (V / np.sqrt(w)) @ V.T


def cca_closed_form(X, Y, n_components=None, *, reg=0.0):
    r"""Regularised canonical correlation analysis in closed form (NumPy / SciPy).

    With the centred covariances :math:`S_{xx} + \lambda I`, :math:`S_{yy} + \lambda I` and
    :math:`S_{xy}`, the canonical correlations are the singular values of
    :math:`K = (S_{xx} + \lambda I)^{-1/2} S_{xy} (S_{yy} + \lambda I)^{-1/2}` and the weights
    are the inverse square roots applied to its singular vectors (Hotelling, 1936). This is the
    reference the streaming estimators (:class:`LandingCCA`) are measured against: it needs
    the d x d covariances in memory and two eigendecompositions, so it suits moderate
    dimensions; :class:`LandingCCA` works from minibatches. Use the same ``reg`` as the
    estimator you compare with.

    Parameters
    ----------
    X : array-like, shape (n_samples, n_features_x)
    Y : array-like, shape (n_samples, n_features_y)
    n_components : int, optional
        Number of canonical pairs (default: ``min(n_features_x, n_features_y)``).
    reg : float, default=0.0
        Ridge added to both view covariances (needed when a view is rank-deficient).

    Returns
    -------
    result : CCAClosedForm
        ``correlations`` (n_components,), ``weights_x`` (n_features_x, n_components),
        ``weights_y`` (n_features_y, n_components) and ``covariances`` ``(Sxx, Syy, Sxy)``.

    See Also
    --------
    cca_subspace_correlation : how close given weights are to this solution.
    """
    X = np.asarray(check_array(X, "X", min_samples=2), dtype=float)
    Y = np.asarray(check_array(Y, "Y", min_samples=2), dtype=float)
    check_consistent_length(X, Y, names=("X", "Y"))
    k = check_n_components(n_components, min(X.shape[1], Y.shape[1]))
    reg = check_positive(reg, "reg", strict=False)
    n = X.shape[0]
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    Sxx = Xc.T @ Xc / n + reg * np.eye(X.shape[1])
    Syy = Yc.T @ Yc / n + reg * np.eye(Y.shape[1])
    Sxy = Xc.T @ Yc / n
    Kx, Ky = _inv_sqrt(Sxx, "X"), _inv_sqrt(Syy, "Y")
    U, s, Vt = np.linalg.svd(Kx @ Sxy @ Ky)
    return CCAClosedForm(s[:k], Kx @ U[:, :k], Ky @ Vt[:k].T, (Sxx, Syy, Sxy))


def cca_subspace_correlation(Wx, Wy, covariances):
    r"""Largest sum of canonical correlations reachable within span(Wx) x span(Wy).

    The weights need not be feasible: with :math:`L_x L_x^\top = W_x^\top S_{xx} W_x` (and
    the same for y), the best feasible weights in the two subspaces reach the nuclear norm of
    :math:`L_x^{-1} W_x^\top S_{xy} W_y L_y^{-\top}`. Compared with the sum of
    ``cca_closed_form(...).correlations``, it gives a relative gap that measures the subspaces
    alone, not the distance of an iterate to the constraint.

    Parameters
    ----------
    Wx : array-like, shape (n_features_x, p)
    Wy : array-like, shape (n_features_y, p)
    covariances : tuple of arrays
        ``(Sxx, Syy, Sxy)`` as returned in :attr:`CCAClosedForm.covariances`.

    Returns
    -------
    total : float
    """
    if not isinstance(covariances, (tuple, list)) or len(covariances) != 3:
        raise ValueError("covariances must be the tuple (Sxx, Syy, Sxy) of "
                         "CCAClosedForm.covariances")
    Sxx, Syy, Sxy = (np.asarray(check_array(S, f"covariances[{i}]"), dtype=float)
                     for i, S in enumerate(covariances))
    if Sxx.shape[0] != Sxx.shape[1] or Syy.shape[0] != Syy.shape[1] or (
            Sxy.shape != (Sxx.shape[0], Syy.shape[0])):
        raise ValueError(f"covariances must have shapes (dx, dx), (dy, dy), (dx, dy), got "
                         f"{Sxx.shape}, {Syy.shape}, {Sxy.shape}")
    Wx = np.asarray(check_array(Wx, "Wx"), dtype=float)
    Wy = np.asarray(check_array(Wy, "Wy"), dtype=float)
    if Wx.shape[0] != Sxx.shape[0] or Wy.shape[0] != Syy.shape[0]:
        raise ValueError(f"Wx and Wy must have {Sxx.shape[0]} and {Syy.shape[0]} rows (the "
                         f"covariances), got {Wx.shape[0]} and {Wy.shape[0]}")
    try:
        Lx = np.linalg.cholesky(Wx.T @ Sxx @ Wx)
        Ly = np.linalg.cholesky(Wy.T @ Syy @ Wy)
    except np.linalg.LinAlgError as exc:
        raise ValueError("Wx and Wy must have full column rank in the metrics Sxx and Syy "
                         "(Wx.T @ Sxx @ Wx and Wy.T @ Syy @ Wy positive definite)") from exc
    M = np.linalg.solve(Lx, np.linalg.solve(Ly, (Wx.T @ Sxy @ Wy).T).T)
    return float(np.sum(np.linalg.svd(M, compute_uv=False)))
