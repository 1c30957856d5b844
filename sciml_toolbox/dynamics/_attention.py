"""Attention velocity fields of Transformer particle systems, computed in O(n d) memory.

The n x n interaction is never stored for large n: query blocks stream over key blocks with an
online (running) log-sum-exp, as in memory-efficient / flash attention (Rabe & Staats, 2021;
Dao et al., 2022), so the working set is ``block_q * block_k`` scores plus O(n d).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from .._array_api import get_namespace, to_numpy
from .._validation import check_array, check_int, check_positive, check_scalar
from ._checks import check_block_size, check_heads, check_kind

__all__ = ["attention_velocity"]

#: number of scores held at once by the automatic block choice (2M entries: 16 MB in float64,
#: below glibc's largest mmap threshold so the block buffers are recycled, not re-faulted)
_SCORE_BUDGET = 1 << 21
#: key-block length of the automatic choice when the dense matrix exceeds the budget
_AUTO_BLOCK_K = 2048


def _blocks(n_q, n_k, batch, block_size):
    """Query and key block lengths for a (batch, n_q, n_k) score tensor."""
    if block_size is not None:
        return block_size, block_size
    if batch * n_q * n_k <= _SCORE_BUDGET:
        return n_q, n_k
    bk = min(n_k, _AUTO_BLOCK_K)
    bq = max(1, min(n_q, _SCORE_BUDGET // (bk * batch)))
    return bq, bk


_BLAS = None


def _single_thread_blas(arr, n_blocks):
    """Limit NumPy's BLAS to one thread inside a loop over several blocks.

    The block products are skinny (inner dimension k, typically d), so the start-up of BLAS
    threads for each of them costs more than it saves (timings with and without threads in
    ``benchmarks/dynamics.md``).
    """
    global _BLAS
    if n_blocks <= 1 or not isinstance(arr, np.ndarray):
        return contextlib.nullcontext()
    try:
        if _BLAS is None:
            from threadpoolctl import ThreadpoolController

            _BLAS = ThreadpoolController()
        return _BLAS.limit(limits=1, user_api="blas")
    except Exception:  # noqa: BLE001 - a missing or failing threadpoolctl only costs speed
        return contextlib.nullcontext()


def _mask_block(xp, mask, i0, i1, j0, j1, dev):
    """Boolean (bq, bk) block of the mask (True = may attend), or None when all True."""
    if mask is None:
        return None
    if isinstance(mask, str):  # causal: key index <= query index
        if j1 - 1 <= i0:
            return None
        qi = xp.arange(i0, i1, device=dev)[:, None]
        kj = xp.arange(j0, j1, device=dev)[None, :]
        return kj <= qi
    return mask[..., i0:i1, j0:j1]


def _exp_shifted(xp, s, shift):
    """``exp(s - shift[..., None])``, overwriting the temporary ``s`` (in place for the
    subtraction on every namespace, and for the exponential on NumPy)."""
    s -= shift[..., None]  # in place: s is a fresh temporary
    if isinstance(s, np.ndarray):
        return np.exp(s, out=s)
    return xp.exp(s)


def _softmax_attend(q, k, v, *, col_bias=None, mask=None, block_size=None, need_lse=False):
    """Blocked row-softmax attention (see :func:`_softmax_attend_blocks`)."""
    batch = math.prod(q.shape[:-2]) if q.ndim > 2 else 1
    bq, bk = _blocks(q.shape[-2], k.shape[-2], batch, block_size)
    with _single_thread_blas(q, math.ceil(q.shape[-2] / bq) * math.ceil(k.shape[-2] / bk)):
        return _softmax_attend_blocks(q, k, v, bq, bk, col_bias=col_bias, mask=mask,
                                      need_lse=need_lse)


def _softmax_attend_blocks(q, k, v, bq, bk, *, col_bias=None, mask=None, need_lse=False):
    """Row-softmax attention ``softmax_j(q_i . k_j + c_j) v_j`` by streaming key blocks.

    Parameters
    ----------
    q : array, shape (..., n_q, m)
    k : array, shape (..., n_k, m)
    v : array, shape (..., n_k, p)
    col_bias : array, shape (..., n_k), optional
        Added to every score of key j.
    mask : None, 'causal' or bool array (..., n_q, n_k)
        True where query i may attend to key j. Rows with no allowed key get output 0 and
        log-sum-exp ``-inf``.
    bq, bk : int
        Query and key block lengths.
    need_lse : bool
        Also return the row log-sum-exp of the (biased) scores.

    Returns
    -------
    out : array, shape (..., n_q, p)
    lse : array, shape (..., n_q)
        Only with ``need_lse``.
    """
    xp = get_namespace(q, k, v)
    dev = getattr(q, "device", None)
    n_q, n_k = q.shape[-2], k.shape[-2]
    outs, lses = [], []
    neg_inf = -math.inf
    for i0 in range(0, n_q, bq):
        i1 = min(n_q, i0 + bq)
        qb = q[..., i0:i1, :]
        m_run = None
        for j0 in range(0, n_k, bk):
            j1 = min(n_k, j0 + bk)
            if isinstance(mask, str) and j0 > i1 - 1:
                break  # causal: later key blocks are fully masked
            s = qb @ xp.matrix_transpose(k[..., j0:j1, :])
            if col_bias is not None:
                s = s + col_bias[..., None, j0:j1]
            mb = _mask_block(xp, mask, i0, i1, j0, j1, dev)
            if mb is not None:
                s = xp.where(mb, s, xp.asarray(neg_inf, dtype=s.dtype, device=dev))
            m_blk = xp.max(s, axis=-1)
            if m_run is None:
                m_new = m_blk
            else:
                m_new = xp.maximum(m_run, m_blk)
            # rows that saw only masked keys so far keep a finite shift of 0
            shift = m_new if mb is None else xp.where(xp.isfinite(m_new), m_new,
                                                      xp.zeros_like(m_new))
            p = _exp_shifted(xp, s, shift)
            pv = p @ v[..., j0:j1, :]
            psum = xp.sum(p, axis=-1)
            if m_run is None:
                l_run, acc = psum, pv
            else:
                alpha = xp.exp(m_run - shift)
                l_run = l_run * alpha + psum
                acc = acc * alpha[..., None] + pv
            m_run = m_new
        if m_run is None:  # causal rows before any key (cannot happen for square masks)
            shape = (*qb.shape[:-1], v.shape[-1])
            acc = xp.zeros(shape, dtype=q.dtype, device=dev)
            l_run = xp.zeros(qb.shape[:-1], dtype=q.dtype, device=dev)
            m_run = xp.full(qb.shape[:-1], neg_inf, dtype=q.dtype, device=dev)
        empty = l_run == 0
        denom = xp.where(empty, xp.ones_like(l_run), l_run)
        outs.append(acc / denom[..., None])
        if need_lse:
            shift = xp.where(xp.isfinite(m_run), m_run, xp.zeros_like(m_run))
            lse = xp.where(empty, xp.full_like(l_run, neg_inf), shift + xp.log(denom))
            lses.append(lse)
    out = outs[0] if len(outs) == 1 else xp.concat(outs, axis=-2)
    if not need_lse:
        return out
    lse = lses[0] if len(lses) == 1 else xp.concat(lses, axis=-1)
    return out, lse


def _sigmoid(xp, z):
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_attend(q, k, v, *, bias, mask=None, block_size=None):
    """``sum_j sigmoid(q_i . k_j + bias) v_j`` (masked entries contribute 0), by blocks."""
    batch = math.prod(q.shape[:-2]) if q.ndim > 2 else 1
    bq, bk = _blocks(q.shape[-2], k.shape[-2], batch, block_size)
    with _single_thread_blas(q, math.ceil(q.shape[-2] / bq) * math.ceil(k.shape[-2] / bk)):
        return _sigmoid_attend_blocks(q, k, v, bq, bk, bias=bias, mask=mask)


def _sigmoid_attend_blocks(q, k, v, bq, bk, *, bias, mask=None):
    xp = get_namespace(q, k, v)
    dev = getattr(q, "device", None)
    n_q, n_k = q.shape[-2], k.shape[-2]
    outs = []
    for i0 in range(0, n_q, bq):
        i1 = min(n_q, i0 + bq)
        qb = q[..., i0:i1, :]
        acc = None
        for j0 in range(0, n_k, bk):
            j1 = min(n_k, j0 + bk)
            if isinstance(mask, str) and j0 > i1 - 1:
                break
            w = _sigmoid(xp, qb @ xp.matrix_transpose(k[..., j0:j1, :]) + bias)
            mb = _mask_block(xp, mask, i0, i1, j0, j1, dev)
            if mb is not None:
                w = xp.where(mb, w, xp.zeros_like(w))
            pv = w @ v[..., j0:j1, :]
            acc = pv if acc is None else acc + pv
        outs.append(acc)
    return outs[0] if len(outs) == 1 else xp.concat(outs, axis=-2)


def _sinkhorn_attend(q, k, v, *, n_iter, block_size=None):
    """Sinkhorn attention: ``n_iter`` alternating row / column normalisations of exp(q k^T).

    Normalisation 1 is over rows (so ``n_iter=1`` is softmax), 2 over columns, and so on, in
    the log domain: f_i = -LSE_j(s_ij + g_j), g_j = -LSE_i(s_ij + f_i). Each normalisation is a
    streamed log-sum-exp, so memory stays O(n d).
    """
    xp = get_namespace(q, k, v)
    n_k = k.shape[-2]
    g = xp.zeros((*k.shape[:-2], n_k), dtype=q.dtype, device=getattr(q, "device", None))
    f = None
    dummy_k = xp.zeros((*k.shape[:-1], 1), dtype=q.dtype, device=getattr(q, "device", None))
    dummy_q = xp.zeros((*q.shape[:-1], 1), dtype=q.dtype, device=getattr(q, "device", None))
    for it in range(n_iter - 1):
        if it % 2 == 0:  # row normalisation
            _, lse = _softmax_attend(q, k, dummy_k, col_bias=g, block_size=block_size,
                                     need_lse=True)
            f = -lse
        else:  # column normalisation: rows of the transposed problem
            _, lse = _softmax_attend(k, q, dummy_q, col_bias=f, block_size=block_size,
                                     need_lse=True)
            g = -lse
    if n_iter % 2 == 1:  # last normalisation over rows: a softmax with key bias g
        return _softmax_attend(q, k, v, col_bias=g, block_size=block_size)
    # last normalisation over columns: P_ij = exp(s_ij + f_i + g_j) with g from columns
    _, lse = _softmax_attend(k, q, dummy_q, col_bias=f, block_size=block_size, need_lse=True)
    g = -lse
    out, row_lse = _softmax_attend(q, k, v, col_bias=g, block_size=block_size, need_lse=True)
    return out * xp.exp(row_lse + f)[..., None]


def _check_mask(mask, kind, n, like):
    if kind == "masked" and mask is None:
        mask = "causal"
    if mask is None:
        return None
    if kind == "sinkhorn":
        raise ValueError("mask is not supported with kind='sinkhorn' (the doubly-stochastic "
                         "normalisation is defined on the full matrix)")
    if isinstance(mask, str):
        if mask != "causal":
            raise ValueError(f"mask must be 'causal' or a boolean array, got {mask!r}")
        return mask
    xp = get_namespace(like)
    m = check_array(mask, "mask", ndim=None, dtype=None)
    mxp = get_namespace(m)
    if not mxp.isdtype(m.dtype, "bool"):
        raise TypeError(f"mask must be a boolean array (True = may attend), got dtype {m.dtype}")
    if m.ndim < 2 or tuple(m.shape[-2:]) != (n, n):
        raise ValueError(f"mask must have shape ({n}, {n}), got {tuple(m.shape)}")
    if mxp is not xp:
        m = xp.asarray(np.asarray(to_numpy(m)), device=getattr(like, "device", None))
    return m


def _velocity_parts(kind, *, epsilon, n_iter, bias, normalize):
    kind = check_kind(kind)
    epsilon = check_positive(epsilon, "epsilon")
    n_iter = check_int(n_iter, "n_iter", min_value=1)
    bias = check_scalar(bias, "bias")
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be a bool, got {normalize!r}")
    return kind, epsilon, n_iter, bias


def _head_velocity(X, q_mat, k_mat, v_mat, kind, *, mask, epsilon, n_iter, bias, normalize,
                   block_size):
    xp = get_namespace(X)
    qx = X @ xp.matrix_transpose(q_mat)
    kx = X @ xp.matrix_transpose(k_mat)
    vx = X @ xp.matrix_transpose(v_mat)
    if kind in ("softmax", "masked"):
        return _softmax_attend(qx, kx, vx, mask=mask, block_size=block_size)
    if kind == "l2":
        # -|q_i - k_j|^2 = 2 q_i.k_j - |k_j|^2 - |q_i|^2; the last term cancels in the softmax
        return _softmax_attend(2.0 * qx, kx, vx, col_bias=-xp.sum(kx * kx, axis=-1), mask=mask,
                               block_size=block_size)
    if kind == "sinkhorn":
        return _sinkhorn_attend(qx / epsilon, kx, vx, n_iter=n_iter, block_size=block_size)
    out = _sigmoid_attend(qx, kx, vx, bias=bias, mask=mask, block_size=block_size)
    if normalize:
        out = out / X.shape[-2]
    return out


def _velocity(X, heads, kind, *, mask, epsilon, n_iter, bias, normalize, sphere, block_size):
    """Velocity with validated inputs (heads: list of (Q_h, K_h, V_h, W_h))."""
    xp = get_namespace(X)
    total = None
    for q_mat, k_mat, v_mat, w_mat in heads:
        out = _head_velocity(X, q_mat, k_mat, v_mat, kind, mask=mask, epsilon=epsilon,
                             n_iter=n_iter, bias=bias, normalize=normalize,
                             block_size=block_size)
        if w_mat is not None:
            out = out @ w_mat
        total = out if total is None else total + out
    if sphere:
        sq = xp.sum(X * X, axis=-1, keepdims=True)
        sq = xp.where(sq > 0, sq, xp.ones_like(sq))
        total = total - (xp.sum(total * X, axis=-1, keepdims=True) / sq) * X
    return total


def attention_velocity(X, Q, K, V, kind="softmax", *, W=None, mask=None, epsilon=1.0,
                       n_iter=21, bias=0.0, normalize=True, sphere=False, block_size=None):
    r"""Velocity of the tokens under one self-attention layer seen as a vector field.

    For softmax attention (Sander et al., 2022; Geshkovski et al., 2023)

    .. math:: \dot x_i = \sum_j \mathrm{softmax}_j(\langle Q x_i, K x_j\rangle)\, V x_j ,

    with any temperature or :math:`1/\sqrt{d}` folded into ``Q``.

    Parameters
    ----------
    X : array, shape (n, d) or (B, n, d)
        Tokens (one sequence, or a batch of B sequences).
    Q, K : array, shape (k, d), or list of H such arrays
        Query and key matrices (one per head for a list).
    V : array, shape (d, d), or (p_h, d) per head with ``W``, or list
        Value matrices.
    kind : {'softmax', 'l2', 'sinkhorn', 'sigmoid', 'masked'}, default='softmax'
        Score normalisation:

        - ``'softmax'``: row softmax of :math:`\langle Q x_i, K x_j\rangle`;
        - ``'l2'``: row softmax of :math:`-\|Q x_i - K x_j\|^2` (L2 attention, Kim et al., 2021);
        - ``'sinkhorn'``: ``n_iter`` alternating row/column normalisations of
          :math:`\exp(\langle Q x_i, K x_j\rangle/\varepsilon)`, starting with rows, so that
          ``n_iter=1`` is softmax and the limit is doubly stochastic (Sinkformers, Sander et
          al., 2022); use an odd ``n_iter`` to end on a row normalisation;
        - ``'sigmoid'``: :math:`\sigma(\langle Q x_i, K x_j\rangle + b)` without normalisation,
          divided by n when ``normalize`` (the mean-field scaling; Ramapuram et al., 2024);
        - ``'masked'``: softmax restricted by ``mask`` (causal by default).
    W : list of H arrays of shape (p_h, d), optional
        Output maps of the heads: the velocity is :math:`\sum_h W_h^\top \mathrm{head}_h`.
        Without it, every ``V_h`` must be (d, d) and the heads are summed.
    mask : None, 'causal' or bool array of shape (n, n), optional
        True where token i may attend to token j. Accepted by 'softmax', 'l2', 'sigmoid' and
        'masked'. A row without any allowed key gets velocity 0.
    epsilon : float, default=1.0
        Entropic temperature of Sinkhorn attention (scores are divided by it).
    n_iter : int, default=21
        Number of Sinkhorn normalisations.
    bias : float, default=0.0
        Sigmoid attention bias b (Ramapuram et al. recommend b = -log n without ``normalize``).
    normalize : bool, default=True
        Divide sigmoid attention by n.
    sphere : bool, default=False
        Project each velocity on the tangent space of the sphere at :math:`x_i`,
        :math:`v_i - \langle v_i, x_i\rangle x_i / \|x_i\|^2` (Geshkovski et al., 2023).
    block_size : int, optional
        Length of the query and key blocks. By default the dense matrix is used when it holds
        at most 2M entries (per batch), otherwise blocks of 2048 keys and as many queries as fit
        in 2M scores. Memory is O(n d + block^2) in every case. With NumPy, BLAS runs on one
        thread inside the block loop (the products are skinny; thread start-up dominates).

    Returns
    -------
    velocity : array, shape like X
        In the namespace, device and dtype of ``X``.

    References
    ----------
    Geshkovski, Letrouit, Polyanskiy, Rigollet. A mathematical perspective on Transformers.
    arXiv:2312.10794, 2023.
    Sander, Ablin, Blondel, Peyré. Sinkformers: Transformers with doubly stochastic attention.
    AISTATS 2022.
    Castin, Ablin, Carrillo, Peyré. A unified perspective on the dynamics of deep Transformers.
    arXiv:2501.18322, 2025.
    """
    X = check_array(X, "X", ndim=(2, 3), min_features=1)
    kind, epsilon, n_iter, bias = _velocity_parts(kind, epsilon=epsilon, n_iter=n_iter,
                                                  bias=bias, normalize=normalize)
    heads = check_heads(Q, K, V, W, X.shape[-1], X)
    mask = _check_mask(mask, kind, X.shape[-2], X)
    block_size = check_block_size(block_size)
    if not isinstance(sphere, bool):
        raise TypeError(f"sphere must be a bool, got {sphere!r}")
    return _velocity(X, heads, kind, mask=mask, epsilon=epsilon, n_iter=n_iter, bias=bias,
                     normalize=normalize, sphere=sphere, block_size=block_size)

