"""Shared pieces of the stochastic landing estimators (minibatches, step sizes, p x p algebra)."""

from __future__ import annotations

from .._array_api import cholesky, get_namespace, inv
from .._numerics import power_iteration


def power_lambda_max(X, n_iter=30, seed=0):
    """Largest eigenvalue of the (uncentered) covariance ``X.T @ X / n`` by power iteration."""
    n, d = X.shape
    return power_iteration(lambda v: X.T @ (X @ v) / n, d, X, n_iter=n_iter, seed=seed)


def whiten_init(W, BW):
    """Scale ``W`` so that ``W^T B W = I`` (one p x p Cholesky, used once at initialisation)."""
    M = W.T @ BW
    L = cholesky(0.5 * (M + M.T))
    Linv = inv(L)
    return W @ Linv.T


def epoch_batches(X, Y, batch_size, rng):
    """Yield the minibatches of one shuffled epoch (the last incomplete batch is dropped).

    ``Y`` may be None. With ``batch_size >= n`` the whole (unshuffled) data is one batch.
    """
    xp = get_namespace(X)
    n = X.shape[0]
    if batch_size >= n:
        yield X, Y
        return
    perm = rng.permutation(n)
    Xp = xp.take(X, perm, axis=0)
    Yp = None if Y is None else xp.take(Y, perm, axis=0)
    for s in range(0, n - batch_size + 1, batch_size):
        yield Xp[s : s + batch_size, ...], (None if Yp is None else Yp[s : s + batch_size, ...])
