"""Chunked pure-torch sigmoid attention: the CPU backend and the reference path.

Keys and values are processed in chunks of ``chunk_size`` rows, so the forward and the
backward pass hold at most an (N_q, chunk_size) block of scores per head: memory O(N d + N C)
instead of the O(N^2) of the naive formula. The backward pass recomputes each block of
probabilities from Q and K (as FlashSigmoid does) and, like it, needs neither the output nor a
row statistic: sigmoid attention has no normaliser (Ramapuram et al., 2024, arXiv:2409.04431).
"""

from __future__ import annotations

import torch

__all__ = ["chunked_sigmoid_attention"]


def _compute_dtype(dtype):
    # half-precision inputs are upcast per block: scores of order 1e4 must not overflow fp16
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _row_range(j0, j1, n_q, offset, left, right, masked):
    """Query rows [i0, i1) that see at least one key of [j0, j1)."""
    if not masked:
        return 0, n_q
    # key j is visible from position p = i + offset iff p - left <= j <= p + right
    i0 = max(0, j0 - right - offset)
    i1 = min(n_q, j1 - 1 + left - offset + 1)
    return i0, max(i0, i1)


def _probabilities(qs, kc, i0, i1, j0, j1, offset, slopes, left, right, masked):
    """Block of P = sigmoid(S) for query rows [i0, i1) and keys [j0, j1), masked entries 0.

    qs : (B, Hkv, G, i1 - i0, d + 1), the scaled queries with the bias as an extra column;
    kc : (B, Hkv, j1 - j0, d + 1), the keys with an extra column of ones (so the product
    carries ``+ b`` at no extra pass); slopes : (B|1, Hkv, G, 1, 1).
    """
    s = torch.matmul(qs, kc.unsqueeze(2).transpose(-1, -2))
    if slopes is not None:
        dist = (torch.arange(i0, i1, device=qs.device)[:, None] + offset
                - torch.arange(j0, j1, device=qs.device)[None, :])  # i' - j
        s.sub_(slopes * dist.abs().to(s.dtype))
    p = s.sigmoid_()
    if masked:
        # in block coordinates (a, c) = (i - i0, j - j0), key j is visible iff
        # lo <= c - a <= hi (the window, aligned bottom-right)
        hi = i0 + offset + right - j0
        lo = i0 + offset - left - j0
        if (j1 - j0 - 1) > hi:
            p.tril_(hi)
        if -(i1 - i0 - 1) < lo:
            p.triu_(lo)
    return p


def _augment(q, k, scale, bias, cdt):
    """Scaled queries with a bias column and keys with a ones column (see _probabilities)."""
    q_aug = torch.cat([q.to(cdt) * scale, torch.full_like(q[..., :1], bias, dtype=cdt)], -1)
    k_aug = torch.cat([k.to(cdt), torch.ones_like(k[..., :1], dtype=cdt)], -1)
    return q_aug, k_aug


class _ChunkedSigmoidAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, scale, bias, slopes, left, right, masked, chunk_size):
        batch, hq, n_q, d = q.shape
        hkv, n_k, dv = k.shape[1], k.shape[2], v.shape[-1]
        group = hq // hkv
        cdt = _compute_dtype(q.dtype)
        q_aug, k_ = _augment(q, k, scale, bias, cdt)
        q5 = q_aug.reshape(batch, hkv, group, n_q, d + 1)
        v_ = v.to(cdt)
        sl = None if slopes is None else slopes.to(cdt).reshape(-1, hkv, group, 1, 1)
        offset = n_k - n_q
        out = torch.zeros(batch, hkv, group, n_q, dv, dtype=cdt, device=q.device)
        for j0 in range(0, n_k, chunk_size):
            j1 = min(n_k, j0 + chunk_size)
            i0, i1 = _row_range(j0, j1, n_q, offset, left, right, masked)
            if i0 >= i1:
                continue
            p = _probabilities(q5[..., i0:i1, :], k_[:, :, j0:j1], i0, i1, j0, j1, offset,
                               sl, left, right, masked)
            out[..., i0:i1, :] += torch.matmul(p, v_[:, :, j0:j1].unsqueeze(2))
        ctx.save_for_backward(q, k, v, slopes)
        ctx.args = (scale, bias, left, right, masked, chunk_size)
        return out.reshape(batch, hq, n_q, dv).to(q.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, slopes = ctx.saved_tensors
        scale, bias, left, right, masked, chunk_size = ctx.args
        batch, hq, n_q, d = q.shape
        hkv, n_k, dv = k.shape[1], k.shape[2], v.shape[-1]
        group = hq // hkv
        cdt = _compute_dtype(q.dtype)
        q_aug, k_ = _augment(q, k, scale, bias, cdt)
        q5 = q_aug.reshape(batch, hkv, group, n_q, d + 1)
        do5 = grad_out.reshape(batch, hkv, group, n_q, dv).to(cdt)
        v_ = v.to(cdt)
        sl = None if slopes is None else slopes.to(cdt).reshape(-1, hkv, group, 1, 1)
        offset = n_k - n_q
        dq = torch.zeros_like(q5)
        dk = torch.zeros(batch, hkv, n_k, d + 1, dtype=cdt, device=q.device)
        dvv = torch.zeros(batch, hkv, n_k, dv, dtype=cdt, device=q.device)
        for j0 in range(0, n_k, chunk_size):
            j1 = min(n_k, j0 + chunk_size)
            i0, i1 = _row_range(j0, j1, n_q, offset, left, right, masked)
            if i0 >= i1:
                continue
            qs, dos = q5[..., i0:i1, :], do5[..., i0:i1, :]
            kc, vc = k_[:, :, j0:j1], v_[:, :, j0:j1]
            p = _probabilities(qs, kc, i0, i1, j0, j1, offset, sl, left, right, masked)
            # dV = P^T dO; dP = dO V^T; dS = P (1 - P) dP; dQ = scale dS K; dK = scale dS^T Q
            # (qs already carries the scale, so dK = dS^T qs; its last column is dropped)
            dvv[:, :, j0:j1] = torch.matmul(p.transpose(-1, -2), dos).sum(2)
            ds = torch.matmul(dos, vc.unsqueeze(2).transpose(-1, -2)).mul_(p)
            ds.mul_(p.neg_().add_(1))
            dq[..., i0:i1, :] += torch.matmul(ds, kc.unsqueeze(2))
            dk[:, :, j0:j1] = torch.matmul(ds.transpose(-1, -2), qs).sum(2)
        # drop the bias / ones columns
        dq = (dq[..., :d] * scale).reshape(batch, hq, n_q, d).to(q.dtype)
        dk = dk[..., :d]
        return dq, dk.to(k.dtype), dvv.to(v.dtype), None, None, None, None, None, None, None


def chunked_sigmoid_attention(q, k, v, *, scale, bias, slopes=None, left, right, masked,
                              chunk_size=512):
    """Sigmoid attention in key chunks (no input checks: see :func:`sigmoid_attention`).

    Parameters
    ----------
    q : Tensor, shape (B, H_q, N_q, d)
    k : Tensor, shape (B, H_kv, N_k, d)
    v : Tensor, shape (B, H_kv, N_k, d_v)
    scale, bias : float
    slopes : Tensor of shape (H_q,) or (B, H_q), optional
        ALiBi slopes (bias ``-slope * |i + N_k - N_q - j|``).
    left, right : int
        Window: key ``j`` is visible from query ``i`` iff
        ``i' - left <= j <= i' + right`` with ``i' = i + N_k - N_q``; used when ``masked``.
    masked : bool
    chunk_size : int

    Returns
    -------
    out : Tensor, shape (B, H_q, N_q, d_v)
    """
    return _ChunkedSigmoidAttention.apply(q, k, v, scale, bias, slopes, left, right, masked,
                                          chunk_size)
