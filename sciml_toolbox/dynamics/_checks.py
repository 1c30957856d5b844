"""Input checks shared by the dynamics functions (shapes of Q, K, V, W, masks, times)."""

from __future__ import annotations

import numbers

import numpy as np

from .._array_api import from_numpy, get_namespace, namespace_name, to_numpy
from .._validation import check_array, check_option

KINDS = ("softmax", "l2", "sinkhorn", "sigmoid", "masked")


def as_like(a, name, like, *, ndim=None):
    """Validate ``a`` and move it into the namespace, device and dtype of ``like``."""
    a = check_array(a, name, ndim=ndim)
    xp = get_namespace(like)
    if namespace_name(get_namespace(a)) != namespace_name(xp):
        return from_numpy(np.asarray(to_numpy(a), dtype=float), like)
    if a.dtype != like.dtype or getattr(a, "device", None) != getattr(like, "device", None):
        a = xp.asarray(xp.astype(a, like.dtype), device=getattr(like, "device", None))
    return a


def is_list(obj):
    return isinstance(obj, (list, tuple))


def check_heads(Q, K, V, W, d, like, *, batch_ok=False):
    """Validate single-head matrices or per-head lists; return lists of (Q_h, K_h, V_h, W_h).

    Each Q_h, K_h has shape (..., k_h, d), V_h (..., p_h, d), W_h (..., p_h, d) or None (then
    p_h must equal d). A single matrix is one head.
    """
    multi = is_list(Q) or is_list(K) or is_list(V) or is_list(W)
    if multi:
        for name, obj in (("Q", Q), ("K", K), ("V", V)):
            if not is_list(obj):
                raise TypeError(
                    f"{name} must be a list of per-head matrices when any of Q, K, V, W is a "
                    f"list, got {type(obj).__name__}"
                )
        H = len(Q)
        if H == 0:
            raise ValueError("Q must hold at least one head, got an empty list")
        for name, obj in (("K", K), ("V", V)) + ((("W", W),) if W is not None else ()):
            if not is_list(obj) or len(obj) != H:
                got = len(obj) if is_list(obj) else type(obj).__name__
                raise ValueError(f"{name} must be a list of {H} per-head matrices, got {got}")
        Ws = list(W) if W is not None else [None] * H
        heads = list(zip(Q, K, V, Ws, strict=True))
        names = [(f"Q[{h}]", f"K[{h}]", f"V[{h}]", f"W[{h}]") for h in range(H)]
    else:
        heads = [(Q, K, V, W)]
        names = [("Q", "K", "V", "W")]
    ndim = (2, 3, 4) if batch_ok else 2
    out = []
    for (q, k, v, w), (nq, nk, nv, nw) in zip(heads, names, strict=True):
        q = as_like(q, nq, like, ndim=ndim)
        k = as_like(k, nk, like, ndim=ndim)
        v = as_like(v, nv, like, ndim=ndim)
        if q.shape[-1] != d:
            raise ValueError(f"{nq} must have shape (k, {d}) to act on {d}-dim tokens, "
                             f"got {tuple(q.shape)}")
        if k.shape[-1] != d or k.shape[-2] != q.shape[-2]:
            raise ValueError(f"{nk} must have shape ({q.shape[-2]}, {d}) like Q, "
                             f"got {tuple(k.shape)}")
        if v.shape[-1] != d:
            raise ValueError(f"{nv} must have shape (p, {d}), got {tuple(v.shape)}")
        if w is not None:
            w = as_like(w, nw, like, ndim=ndim)
            if w.shape[-2] != v.shape[-2] or w.shape[-1] != d:
                raise ValueError(f"{nw} must have shape ({v.shape[-2]}, {d}) to map the head "
                                 f"output back to R^{d}, got {tuple(w.shape)}")
        elif v.shape[-2] != d:
            raise ValueError(f"{nv} must be square ({d}, {d}) when no output map W is given, "
                             f"got {tuple(v.shape)}")
        out.append((q, k, v, w))
    return out


def check_kind(kind, allowed=KINDS):
    return check_option(kind, "kind", allowed)


def check_block_size(block_size):
    if block_size is None:
        return None
    if isinstance(block_size, bool) or not isinstance(block_size, numbers.Integral):
        raise TypeError(f"block_size must be a positive int or None, got {block_size!r}")
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    return int(block_size)


def check_t_eval(t_eval):
    """1-D strictly increasing finite times as a NumPy float64 array."""
    t = check_array(t_eval, "t_eval", ndim=None, min_samples=0, finite=False)
    t = np.asarray(to_numpy(t), dtype=float)
    if t.ndim != 1 or t.shape[0] < 1:
        raise ValueError(f"t_eval must be a non-empty 1-D array of times, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError("t_eval must contain only finite times")
    if t.shape[0] > 1 and not np.all(np.diff(t) > 0):
        raise ValueError("t_eval must be strictly increasing")
    return t
