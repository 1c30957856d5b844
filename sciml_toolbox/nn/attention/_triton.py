"""FlashSigmoid: Triton kernels for sigmoid attention (forward, dK/dV, dQ).

Structure after the Triton fused-attention tutorial (kernels named by role, an autograd
Function), with the simplifications sigmoid attention allows (Ramapuram et al., 2024,
arXiv:2409.04431, Sec. 5): per tile ``S = Q K^T scale + b``, ``P = sigmoid(S)``, ``O += P V``,
with no running row maximum, no rescaling, no normaliser and no log-sum-exp. The backward pass
recomputes ``P`` and uses ``dS = P (1 - P) dP``; neither the output nor the FlashAttention
``Delta = rowsum(dO * O)`` preprocessing is needed.

Masking. Query ``i`` sits at position ``i' = i + N_k - N_q`` (bottom-right alignment, as in
FlashAttention-2) and sees key ``j`` iff ``i' - left <= j <= i' + right`` (causal: right = 0).
Each program splits its loop over tiles into three ranges: tiles partly visible at the left
edge (masked), fully visible tiles (no mask arithmetic) and tiles partly visible at the right
edge (masked); invisible tiles are skipped. Out-of-range rows and keys are loaded as zeros,
which makes their contributions vanish without a mask (``P V`` with ``V = 0``,
``dS = P (1 - P) dO V^T`` with ``V = 0`` or ``dO = 0``).

Under ``TRITON_INTERPRET=1`` (set before this module is imported) the same kernels run on CPU
tensors through NumPy, with one fixed small tile configuration; on a GPU the tile sizes are
autotuned. A fast sigmoid ``0.5 + 0.5 tanh(x / 2)`` with the ``tanh.approx.f32`` instruction
is used on CUDA for half-precision inputs; elsewhere ``tl.sigmoid``.
"""

from __future__ import annotations

import contextlib
import os

import torch
import triton
import triton.language as tl

from ..._backends import triton_interpret

__all__ = ["triton_sigmoid_attention", "INTERPRET"]

#: Whether the kernels were defined in interpreter mode (CPU tensors, NumPy execution).
INTERPRET = triton_interpret()


_SHAPES = {  # (BLOCK_M, BLOCK_N, num_warps, num_stages); the first that fits is the default
    "fwd": ((128, 64, 4, 3), (128, 128, 8, 3), (128, 64, 8, 4), (64, 64, 4, 3), (128, 32, 4, 4),
            (64, 128, 4, 3), (64, 64, 4, 2), (64, 32, 4, 2)),
    "bwd": ((64, 64, 4, 2), (32, 128, 4, 2), (64, 128, 8, 2), (128, 64, 8, 2), (32, 64, 4, 3),
            (128, 128, 8, 2), (32, 32, 4, 2)),
}
#: Set SCIML_ATTENTION_AUTOTUNE=0 to skip autotuning (one default tile per head dim).
AUTOTUNE_ENV = "SCIML_ATTENTION_AUTOTUNE"

# Largest tile area BLOCK_M * BLOCK_N and pipeline depth that fit the 227 KiB of shared memory
# of an sm_90 multiprocessor, by (kernel, bytes per element, BLOCK_D). Read off the compiler's
# shared-memory report for sm_90 (Triton 3.9): e.g. the fp32 forward at BLOCK_D = 128 needs
# 256 KiB with (128, 64, 3 stages) and 160 KiB with (64, 64, 2 stages).
_LIMITS = {
    ("fwd", 2, 256): (64 * 64, 4), ("bwd", 2, 256): (32 * 64, 4),
    ("fwd", 4, 128): (64 * 64, 2), ("bwd", 4, 128): (64 * 64, 2),
    ("fwd", 4, 256): (64 * 32, 2), ("bwd", 4, 256): (32 * 32, 2),
}


def _configs(kind):
    """Tile shapes tried by the autotuner on a GPU (a short list: each one is compiled)."""
    if INTERPRET:
        return [triton.Config({"BLOCK_M": 16, "BLOCK_N": 16}, num_warps=4, num_stages=1)]
    return [triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=st)
            for bm, bn, w, st in _SHAPES[kind]]


def _make_prune(kind):
    def prune(configs, named_args, **kwargs):
        """Drop tiles too large for shared memory; keep one tile when not tuning."""
        if INTERPRET:
            return configs
        block_d = kwargs.get("BLOCK_D", named_args.get("BLOCK_D", 64))
        q = named_args.get("Q")
        esize = q.element_size() if hasattr(q, "element_size") else 2
        area, stages = _LIMITS.get((kind, esize, block_d), (128 * 128, 4))
        kept = [c for c in configs
                if c.kwargs["BLOCK_M"] * c.kwargs["BLOCK_N"] <= area and c.num_stages <= stages]
        kept = kept or configs[-1:]
        if os.environ.get(AUTOTUNE_ENV, "1") == "0":
            return kept[:1]
        return kept

    return prune


# tensor dtypes are part of the key automatically; lengths are not (one tuning per head dim)
_KEY = ["HEAD_DIM", "BLOCK_D", "MASKED", "ALIBI", "FAST", "PRECISION"]
_PRUNE_FWD = {"early_config_prune": _make_prune("fwd")}
_PRUNE_BWD = {"early_config_prune": _make_prune("bwd")}


@triton.jit
def _sigmoid(x, FAST: tl.constexpr):
    if FAST:
        # 0.5 + 0.5 tanh(x / 2): one MUFU.TANH instead of an exponential and a division
        t = tl.inline_asm_elementwise("tanh.approx.f32 $0, $1;", "=f,f", [x * 0.5],
                                      dtype=tl.float32, is_pure=True, pack=1)
        return 0.5 + 0.5 * t
    else:
        return tl.sigmoid(x)


@triton.jit
def _ceil_to(x, BLOCK: tl.constexpr):
    return (x + BLOCK - 1) // BLOCK * BLOCK


@triton.jit
def _fwd_inner(acc, q, k_base, v_base, stride_kn, stride_vn, pos_m, offs_d, start, end,
               N_K, HEAD_DIM: tl.constexpr, qk_scale, bias, slope, win_left, win_right,
               BLOCK_N: tl.constexpr, MASK: tl.constexpr, ALIBI: tl.constexpr,
               FAST: tl.constexpr, PRECISION: tl.constexpr):
    offs_n = tl.arange(0, BLOCK_N)
    for start_n in range(start, end, BLOCK_N):
        cols = start_n + offs_n
        kv_mask = (cols[:, None] < N_K) & (offs_d[None, :] < HEAD_DIM)
        k = tl.load(k_base + cols[:, None] * stride_kn + offs_d[None, :], mask=kv_mask, other=0.0)
        v = tl.load(v_base + cols[:, None] * stride_vn + offs_d[None, :], mask=kv_mask, other=0.0)
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * qk_scale + bias
        if ALIBI:
            s -= slope * tl.abs(pos_m[:, None] - cols[None, :]).to(tl.float32)
        p = _sigmoid(s, FAST)
        if MASK:
            vis = (cols[None, :] >= pos_m[:, None] - win_left) & (
                cols[None, :] <= pos_m[:, None] + win_right)
            p = tl.where(vis, p, 0.0)
        acc += tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
    return acc


@triton.autotune(configs=_configs("fwd"), key=_KEY, prune_configs_by=_PRUNE_FWD)
@triton.jit
def _fwd(Q, K, V, O, Slopes,
         stride_qz, stride_qh, stride_qm, stride_kz, stride_kh, stride_kn,
         stride_vz, stride_vh, stride_vn, stride_oz, stride_oh, stride_om,
         stride_sz, stride_sh,
         H_Q, GROUP, N_Q, N_K, HEAD_DIM: tl.constexpr, qk_scale, bias, win_left, win_right,
         BLOCK_D: tl.constexpr, MASKED: tl.constexpr, ALIBI: tl.constexpr, FAST: tl.constexpr,
         PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    pid_m = tl.program_id(0)
    if MASKED:  # causal: the last query tiles do the most work, so launch them first
        pid_m = tl.num_programs(0) - 1 - pid_m
    pid_bh = tl.program_id(1)
    z = (pid_bh // H_Q).to(tl.int64)
    h = (pid_bh % H_Q).to(tl.int64)
    hk = h // GROUP
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    q_mask = (offs_m[:, None] < N_Q) & (offs_d[None, :] < HEAD_DIM)
    q = tl.load(Q + z * stride_qz + h * stride_qh + offs_m[:, None] * stride_qm + offs_d[None, :],
                mask=q_mask, other=0.0)
    k_base = K + z * stride_kz + hk * stride_kh
    v_base = V + z * stride_vz + hk * stride_vh
    offset = N_K - N_Q
    pos_m = offs_m + offset
    slope = 0.0
    if ALIBI:
        slope = tl.load(Slopes + z * stride_sz + h * stride_sh).to(tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    if MASKED:
        first = pid_m * BLOCK_M + offset
        last = first + BLOCK_M - 1
        lo = tl.maximum(first - win_left, 0) // BLOCK_N * BLOCK_N
        hi = _ceil_to(tl.minimum(tl.maximum(last + win_right + 1, 0), N_K), BLOCK_N)
        lo = tl.minimum(lo, hi)
        full_lo = tl.minimum(tl.maximum(_ceil_to(tl.maximum(last - win_left, 0), BLOCK_N), lo), hi)
        full_hi = tl.maximum(first + win_right + 1, 0) // BLOCK_N * BLOCK_N
        full_hi = tl.minimum(tl.maximum(full_hi, full_lo), hi)
        acc = _fwd_inner(acc, q, k_base, v_base, stride_kn, stride_vn, pos_m, offs_d, lo, full_lo,
                         N_K, HEAD_DIM, qk_scale, bias, slope, win_left, win_right,
                         BLOCK_N, True, ALIBI, FAST, PRECISION)
        acc = _fwd_inner(acc, q, k_base, v_base, stride_kn, stride_vn, pos_m, offs_d, full_lo,
                         full_hi, N_K, HEAD_DIM, qk_scale, bias, slope, win_left, win_right,
                         BLOCK_N, False, ALIBI, FAST, PRECISION)
        acc = _fwd_inner(acc, q, k_base, v_base, stride_kn, stride_vn, pos_m, offs_d, full_hi, hi,
                         N_K, HEAD_DIM, qk_scale, bias, slope, win_left, win_right,
                         BLOCK_N, True, ALIBI, FAST, PRECISION)
    else:
        acc = _fwd_inner(acc, q, k_base, v_base, stride_kn, stride_vn, pos_m, offs_d, 0, N_K,
                         N_K, HEAD_DIM, qk_scale, bias, slope, win_left, win_right,
                         BLOCK_N, False, ALIBI, FAST, PRECISION)
    tl.store(O + z * stride_oz + h * stride_oh + offs_m[:, None] * stride_om + offs_d[None, :],
             acc.to(O.dtype.element_ty), mask=q_mask)


@triton.jit
def _dkdv_inner(dk, dv, k, v, q_base, do_base, stride_qm, stride_dom, cols, offs_d, start, end,
                N_Q, HEAD_DIM: tl.constexpr, offset, qk_scale, bias, slope, win_left, win_right,
                BLOCK_M: tl.constexpr, MASK: tl.constexpr, ALIBI: tl.constexpr,
                FAST: tl.constexpr, PRECISION: tl.constexpr):
    offs_m = tl.arange(0, BLOCK_M)
    for start_m in range(start, end, BLOCK_M):
        rows = start_m + offs_m
        r_mask = (rows[:, None] < N_Q) & (offs_d[None, :] < HEAD_DIM)
        q = tl.load(q_base + rows[:, None] * stride_qm + offs_d[None, :], mask=r_mask, other=0.0)
        do = tl.load(do_base + rows[:, None] * stride_dom + offs_d[None, :], mask=r_mask,
                     other=0.0)
        pos = rows + offset
        # transposed tile: keys along rows, queries along columns
        st = tl.dot(k, tl.trans(q), input_precision=PRECISION) * qk_scale + bias
        if ALIBI:
            st -= slope * tl.abs(pos[None, :] - cols[:, None]).to(tl.float32)
        pt = _sigmoid(st, FAST)
        if MASK:
            vis = (cols[:, None] >= pos[None, :] - win_left) & (
                cols[:, None] <= pos[None, :] + win_right)
            pt = tl.where(vis, pt, 0.0)
        dv += tl.dot(pt.to(do.dtype), do, input_precision=PRECISION)
        dpt = tl.dot(v, tl.trans(do), input_precision=PRECISION)
        dst = pt * (1.0 - pt) * dpt
        dk += tl.dot(dst.to(q.dtype), q, input_precision=PRECISION)
    return dk, dv


@triton.autotune(configs=_configs("bwd"), key=_KEY, prune_configs_by=_PRUNE_BWD)
@triton.jit
def _bwd_dkdv(Q, K, V, DO, DK, DV, Slopes,
              stride_qz, stride_qh, stride_qm, stride_kz, stride_kh, stride_kn,
              stride_vz, stride_vh, stride_vn, stride_doz, stride_doh, stride_dom,
              stride_dkz, stride_dkh, stride_dkn, stride_dvz, stride_dvh, stride_dvn,
              stride_sz, stride_sh,
              H_KV, GROUP, N_Q, N_K, HEAD_DIM: tl.constexpr, qk_scale, bias, win_left,
              win_right,
              BLOCK_D: tl.constexpr, MASKED: tl.constexpr, ALIBI: tl.constexpr,
              FAST: tl.constexpr, PRECISION: tl.constexpr,
              BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    pid_n = tl.program_id(0)
    pid_bh = tl.program_id(1)
    z = (pid_bh // H_KV).to(tl.int64)
    hk = (pid_bh % H_KV).to(tl.int64)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    kv_mask = (cols[:, None] < N_K) & (offs_d[None, :] < HEAD_DIM)
    k = tl.load(K + z * stride_kz + hk * stride_kh + cols[:, None] * stride_kn + offs_d[None, :],
                mask=kv_mask, other=0.0)
    v = tl.load(V + z * stride_vz + hk * stride_vh + cols[:, None] * stride_vn + offs_d[None, :],
                mask=kv_mask, other=0.0)
    dk = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    offset = N_K - N_Q
    # query rows whose window meets this key tile, and those that see all of it
    n0 = pid_n * BLOCK_N
    n1 = n0 + BLOCK_N - 1
    lo = 0
    full_lo = 0
    full_hi = N_Q
    hi = N_Q
    if MASKED:
        lo = tl.maximum(n0 - win_right - offset, 0) // BLOCK_M * BLOCK_M
        hi = _ceil_to(tl.minimum(tl.maximum(n1 + win_left - offset + 1, 0), N_Q), BLOCK_M)
        lo = tl.minimum(lo, hi)
        full_lo = tl.minimum(tl.maximum(_ceil_to(tl.maximum(n1 - win_right - offset, 0), BLOCK_M),
                                        lo), hi)
        full_hi = tl.maximum(n0 + win_left - offset + 1, 0) // BLOCK_M * BLOCK_M
        full_hi = tl.minimum(tl.maximum(full_hi, full_lo), hi)
    for g in range(0, GROUP):
        h = hk * GROUP + g
        q_base = Q + z * stride_qz + h * stride_qh
        do_base = DO + z * stride_doz + h * stride_doh
        slope = 0.0
        if ALIBI:
            slope = tl.load(Slopes + z * stride_sz + h * stride_sh).to(tl.float32)
        if MASKED:
            dk, dv = _dkdv_inner(dk, dv, k, v, q_base, do_base, stride_qm, stride_dom, cols,
                                 offs_d, lo, full_lo, N_Q, HEAD_DIM, offset, qk_scale, bias,
                                 slope, win_left, win_right, BLOCK_M, True, ALIBI, FAST,
                                 PRECISION)
            dk, dv = _dkdv_inner(dk, dv, k, v, q_base, do_base, stride_qm, stride_dom, cols,
                                 offs_d, full_lo, full_hi, N_Q, HEAD_DIM, offset, qk_scale, bias,
                                 slope, win_left, win_right, BLOCK_M, False, ALIBI, FAST,
                                 PRECISION)
            dk, dv = _dkdv_inner(dk, dv, k, v, q_base, do_base, stride_qm, stride_dom, cols,
                                 offs_d, full_hi, hi, N_Q, HEAD_DIM, offset, qk_scale, bias,
                                 slope, win_left, win_right, BLOCK_M, True, ALIBI, FAST,
                                 PRECISION)
        else:
            dk, dv = _dkdv_inner(dk, dv, k, v, q_base, do_base, stride_qm, stride_dom, cols,
                                 offs_d, 0, N_Q, N_Q, HEAD_DIM, offset, qk_scale, bias,
                                 slope, win_left, win_right, BLOCK_M, False, ALIBI, FAST,
                                 PRECISION)
    tl.store(DK + z * stride_dkz + hk * stride_dkh + cols[:, None] * stride_dkn + offs_d[None, :],
             (dk * qk_scale).to(DK.dtype.element_ty), mask=kv_mask)
    tl.store(DV + z * stride_dvz + hk * stride_dvh + cols[:, None] * stride_dvn + offs_d[None, :],
             dv.to(DV.dtype.element_ty), mask=kv_mask)


@triton.jit
def _dq_inner(dq, q, do, k_base, v_base, stride_kn, stride_vn, pos_m, offs_d, start, end,
              N_K, HEAD_DIM: tl.constexpr, qk_scale, bias, slope, win_left, win_right,
              BLOCK_N: tl.constexpr, MASK: tl.constexpr, ALIBI: tl.constexpr,
              FAST: tl.constexpr, PRECISION: tl.constexpr):
    offs_n = tl.arange(0, BLOCK_N)
    for start_n in range(start, end, BLOCK_N):
        cols = start_n + offs_n
        kv_mask = (cols[:, None] < N_K) & (offs_d[None, :] < HEAD_DIM)
        k = tl.load(k_base + cols[:, None] * stride_kn + offs_d[None, :], mask=kv_mask, other=0.0)
        v = tl.load(v_base + cols[:, None] * stride_vn + offs_d[None, :], mask=kv_mask, other=0.0)
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * qk_scale + bias
        if ALIBI:
            s -= slope * tl.abs(pos_m[:, None] - cols[None, :]).to(tl.float32)
        p = _sigmoid(s, FAST)
        if MASK:
            vis = (cols[None, :] >= pos_m[:, None] - win_left) & (
                cols[None, :] <= pos_m[:, None] + win_right)
            p = tl.where(vis, p, 0.0)
        dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
        ds = p * (1.0 - p) * dp
        dq += tl.dot(ds.to(k.dtype), k, input_precision=PRECISION)
    return dq


@triton.autotune(configs=_configs("bwd"), key=_KEY, prune_configs_by=_PRUNE_BWD)
@triton.jit
def _bwd_dq(Q, K, V, DO, DQ, Slopes,
            stride_qz, stride_qh, stride_qm, stride_kz, stride_kh, stride_kn,
            stride_vz, stride_vh, stride_vn, stride_doz, stride_doh, stride_dom,
            stride_dqz, stride_dqh, stride_dqm, stride_sz, stride_sh,
            H_Q, GROUP, N_Q, N_K, HEAD_DIM: tl.constexpr, qk_scale, bias, win_left,
            win_right, BLOCK_D: tl.constexpr, MASKED: tl.constexpr, ALIBI: tl.constexpr,
            FAST: tl.constexpr, PRECISION: tl.constexpr,
            BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    pid_m = tl.program_id(0)
    if MASKED:  # causal: the last query tiles do the most work, so launch them first
        pid_m = tl.num_programs(0) - 1 - pid_m
    pid_bh = tl.program_id(1)
    z = (pid_bh // H_Q).to(tl.int64)
    h = (pid_bh % H_Q).to(tl.int64)
    hk = h // GROUP
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    r_mask = (offs_m[:, None] < N_Q) & (offs_d[None, :] < HEAD_DIM)
    q = tl.load(Q + z * stride_qz + h * stride_qh + offs_m[:, None] * stride_qm + offs_d[None, :],
                mask=r_mask, other=0.0)
    do = tl.load(DO + z * stride_doz + h * stride_doh + offs_m[:, None] * stride_dom
                 + offs_d[None, :], mask=r_mask, other=0.0)
    k_base = K + z * stride_kz + hk * stride_kh
    v_base = V + z * stride_vz + hk * stride_vh
    offset = N_K - N_Q
    pos_m = offs_m + offset
    slope = 0.0
    if ALIBI:
        slope = tl.load(Slopes + z * stride_sz + h * stride_sh).to(tl.float32)
    dq = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    if MASKED:
        first = pid_m * BLOCK_M + offset
        last = first + BLOCK_M - 1
        lo = tl.maximum(first - win_left, 0) // BLOCK_N * BLOCK_N
        hi = _ceil_to(tl.minimum(tl.maximum(last + win_right + 1, 0), N_K), BLOCK_N)
        lo = tl.minimum(lo, hi)
        full_lo = tl.minimum(tl.maximum(_ceil_to(tl.maximum(last - win_left, 0), BLOCK_N), lo), hi)
        full_hi = tl.maximum(first + win_right + 1, 0) // BLOCK_N * BLOCK_N
        full_hi = tl.minimum(tl.maximum(full_hi, full_lo), hi)
        dq = _dq_inner(dq, q, do, k_base, v_base, stride_kn, stride_vn, pos_m, offs_d, lo,
                       full_lo, N_K, HEAD_DIM, qk_scale, bias, slope, win_left, win_right,
                       BLOCK_N, True, ALIBI, FAST, PRECISION)
        dq = _dq_inner(dq, q, do, k_base, v_base, stride_kn, stride_vn, pos_m, offs_d, full_lo,
                       full_hi, N_K, HEAD_DIM, qk_scale, bias, slope, win_left, win_right,
                       BLOCK_N, False, ALIBI, FAST, PRECISION)
        dq = _dq_inner(dq, q, do, k_base, v_base, stride_kn, stride_vn, pos_m, offs_d, full_hi,
                       hi, N_K, HEAD_DIM, qk_scale, bias, slope, win_left, win_right,
                       BLOCK_N, True, ALIBI, FAST, PRECISION)
    else:
        dq = _dq_inner(dq, q, do, k_base, v_base, stride_kn, stride_vn, pos_m, offs_d, 0, N_K,
                       N_K, HEAD_DIM, qk_scale, bias, slope, win_left, win_right,
                       BLOCK_N, False, ALIBI, FAST, PRECISION)
    tl.store(DQ + z * stride_dqz + h * stride_dqh + offs_m[:, None] * stride_dqm
             + offs_d[None, :], (dq * qk_scale).to(DQ.dtype.element_ty), mask=r_mask)


def _slopes_arg(slopes, batch, hq, device):
    if slopes is None:
        return torch.empty(1, device=device, dtype=torch.float32), 0, 0
    s = slopes.to(device=device, dtype=torch.float32)
    if s.ndim == 1:
        return s, 0, s.stride(0)
    return s, s.stride(0), s.stride(1)


def _device_of(t):
    """Make ``t``'s GPU the current one while launching (Triton launches on the current one)."""
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


def _last_dim_contiguous(t):
    return t if t.stride(-1) == 1 else t.contiguous()


#: Set SCIML_ATTENTION_FAST_SIGMOID=0 to use tl.sigmoid on the GPU too (for A/B timing).
FAST_SIGMOID_ENV = "SCIML_ATTENTION_FAST_SIGMOID"


def _launch_params(q, fast):
    fast = (bool(fast) and os.environ.get(FAST_SIGMOID_ENV, "1") != "0" and not INTERPRET
            and q.is_cuda and q.dtype in (torch.float16, torch.bfloat16))
    # fp32 products follow torch's TF32 switch; for fp16/bf16 the setting is moot and "tf32" is
    # Triton's default (kept so the tensor-core path is chosen exactly as without the argument)
    ieee = q.dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32
    return fast, "ieee" if ieee else "tf32"


class _FlashSigmoid(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, scale, bias, slopes, left, right, masked, fast):
        q, k, v = (_last_dim_contiguous(t) for t in (q, k, v))
        batch, hq, n_q, d = q.shape
        hkv, n_k = k.shape[1], k.shape[2]
        group = hq // hkv
        block_d = max(16, triton.next_power_of_2(d))
        fast, precision = _launch_params(q, fast)
        o = torch.empty_like(q, memory_format=torch.contiguous_format)
        sl, ssz, ssh = _slopes_arg(slopes, batch, hq, q.device)

        def grid(meta):
            return (triton.cdiv(n_q, meta["BLOCK_M"]), batch * hq)

        with _device_of(q):
            _fwd[grid](q, k, v, o, sl, *q.stride()[:3], *k.stride()[:3], *v.stride()[:3],
                       *o.stride()[:3], ssz, ssh, hq, group, n_q, n_k, d, float(scale),
                       float(bias), int(left), int(right), BLOCK_D=block_d, MASKED=bool(masked),
                       ALIBI=slopes is not None, FAST=fast, PRECISION=precision)
        ctx.save_for_backward(q, k, v, sl)
        ctx.args = (scale, bias, left, right, masked, fast, ssz, ssh, slopes is not None)
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, sl = ctx.saved_tensors
        scale, bias, left, right, masked, fast, ssz, ssh, alibi = ctx.args
        do = _last_dim_contiguous(do)
        batch, hq, n_q, d = q.shape
        hkv, n_k = k.shape[1], k.shape[2]
        group = hq // hkv
        block_d = max(16, triton.next_power_of_2(d))
        _, precision = _launch_params(q, fast)
        dq = torch.empty_like(q, memory_format=torch.contiguous_format)
        dk = torch.empty_like(k, memory_format=torch.contiguous_format)
        dv = torch.empty_like(v, memory_format=torch.contiguous_format)
        common = dict(BLOCK_D=block_d, MASKED=bool(masked), ALIBI=alibi, FAST=fast,
                      PRECISION=precision)
        scalars = (n_q, n_k, d, float(scale), float(bias), int(left), int(right))

        def grid_kv(meta):
            return (triton.cdiv(n_k, meta["BLOCK_N"]), batch * hkv)

        def grid_q(meta):
            return (triton.cdiv(n_q, meta["BLOCK_M"]), batch * hq)

        with _device_of(q):
            _bwd_dkdv[grid_kv](q, k, v, do, dk, dv, sl, *q.stride()[:3], *k.stride()[:3],
                               *v.stride()[:3], *do.stride()[:3], *dk.stride()[:3],
                               *dv.stride()[:3], ssz, ssh, hkv, group, *scalars, **common)
            _bwd_dq[grid_q](q, k, v, do, dq, sl, *q.stride()[:3], *k.stride()[:3],
                            *v.stride()[:3], *do.stride()[:3], *dq.stride()[:3], ssz, ssh, hq,
                            group, *scalars, **common)
        return dq, dk, dv, None, None, None, None, None, None, None


def triton_sigmoid_attention(q, k, v, *, scale, bias, slopes=None, left, right, masked,
                             fast=True):
    """FlashSigmoid forward and backward through Triton (no input checks).

    Parameters
    ----------
    q : Tensor, shape (B, H_q, N_q, d)
    k, v : Tensor, shape (B, H_kv, N_k, d)
    scale, bias : float
    slopes : Tensor of shape (H_q,) or (B, H_q), optional
    left, right : int
        Window bounds (see :func:`sigmoid_attention`); used when ``masked``.
    masked : bool
    fast : bool, default=True
        Use the ``tanh.approx`` sigmoid on CUDA for fp16/bf16 inputs.

    Returns
    -------
    out : Tensor, shape (B, H_q, N_q, d)
    """
    return _FlashSigmoid.apply(q, k, v, scale, bias, slopes, left, right, masked, fast)
