"""Shared pieces of the stochastic landing estimators (minibatches, step sizes, p x p algebra)."""

from __future__ import annotations

from .._array_api import cholesky, get_namespace, inv, make_generator


def power_lambda_max(X, n_iter=30, seed=0):
    """Largest eigenvalue of the (uncentered) covariance ``X.T @ X / n`` by power iteration."""
    xp = get_namespace(X)
    n, d = X.shape
    v = make_generator(seed, xp, X.device).normal((d, 1), dtype=X.dtype)
    v = v / xp.linalg.vector_norm(v)
    lam = 0.0
    for _ in range(n_iter):
        w = X.T @ (X @ v) / n
        lam = float(xp.linalg.vector_norm(w))
        if lam == 0.0:
            return 0.0
        v = w / lam
    return lam


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
