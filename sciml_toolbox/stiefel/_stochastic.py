"""Shared pieces of the stochastic landing estimators (minibatches, step sizes, p x p algebra)."""

from __future__ import annotations

from .._array_api import cholesky, get_namespace, inv
from .._numerics import power_iteration
from .._validation import check_int


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


def _xw(X, W):
    """``X @ W`` for a tall ``X`` (r, d), evaluated as ``(W^T X^T)^T``: the same product,
    faster with OpenBLAS (``bench_stiefel.py --only products``, ``benchmarks/stiefel.md``)."""
    return (W.T @ X.T).T


def _xtv(X, V):
    """``X^T @ V`` for a tall ``X`` (r, d) and V (r, c), evaluated as ``(V^T X)^T``: the same
    product, faster with OpenBLAS than the transposed-left one (``bench_stiefel.py --only
    products``)."""
    return (V.T @ X).T


def split_products(Xb, cols, split):
    """``(P1, P2, two)``: ``Xb.T @ cols / r`` on the two halves of the batch when ``split``
    (``two=True``; an odd last row is dropped), else the full-batch product twice.

    ``Xb`` has shape (r, d) and ``cols`` (r, c); ``P1`` and ``P2`` have shape (d, c).
    """
    r = Xb.shape[0]
    if not split or r < 4:
        P = _xtv(Xb, cols) / r
        return P, P, False
    h = r // 2
    P1 = _xtv(Xb[:h, ...], cols[:h, ...]) / h
    P2 = _xtv(Xb[h : 2 * h, ...], cols[h : 2 * h, ...]) / h
    return P1, P2, True


def _check_decay_epochs(epochs):
    """Entries of ``lr_decay_epochs`` (the constraint table checks its type): ints >= 1."""
    if epochs is None or isinstance(epochs, str):
        return
    for e in epochs:
        check_int(e, "lr_decay_epochs", min_value=1)


def _decay_epochs(est, no_auto=False):
    """The resolved decay epochs: 'auto' is ``max_epochs // 2`` in minibatch ``fit`` (the
    protocol of Vary et al. 2024: x0.1 at epoch 4 of 8) and no decay when ``no_auto``
    (``partial_fit``, full-batch ``fit``)."""
    e = est.lr_decay_epochs
    if isinstance(e, str):
        return () if no_auto or est.max_epochs < 2 else (est.max_epochs // 2,)
    return () if e is None else tuple(e)


def _lr_factor(est, epoch, no_auto=False):
    """Learning-rate factor of ``epoch`` for an estimator with ``lr_decay`` and
    ``lr_decay_epochs``: ``lr_decay ** (number of decay epochs reached)``."""
    return est.lr_decay ** sum(1 for e in _decay_epochs(est, no_auto) if epoch >= e)
