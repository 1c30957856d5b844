"""``sigmoid_attention``: input checks and dispatch between the Triton and torch paths."""

from __future__ import annotations

import math
import numbers

import torch

from ..._backends import triton_available as _triton_available
from ..._validation import check_int, check_option, check_positive, check_scalar
from ._chunked import chunked_sigmoid_attention

__all__ = ["sigmoid_attention", "triton_available"]

_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def _triton_module():
    try:
        from . import _triton
    except ImportError:  # triton is an optional dependency
        return None
    return _triton


def triton_available(device="cuda"):
    """Whether the Triton kernels can run on tensors of ``device``.

    Parameters
    ----------
    device : str or torch.device, default='cuda'

    Returns
    -------
    available : bool
        True on a CUDA device when Triton is installed and not in interpreter mode, and on the
        CPU when Triton was imported with ``TRITON_INTERPRET=1``.
    """
    mod = _triton_module()  # the kernels, with the mode they were defined in
    available = _triton_available(device, interpret=None if mod is None else mod.INTERPRET)
    return available and mod is not None


def _check_qkv(q, k, v):
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim != 4:
            raise ValueError(f"{name} must have shape (B, H, N, d) (4 dims), got {tuple(t.shape)}")
        if t.dtype not in _DTYPES:
            raise TypeError(f"{name} must be float16, bfloat16, float32 or float64, got {t.dtype}")
    if k.dtype != q.dtype or v.dtype != q.dtype:
        raise TypeError(f"q, k and v must share one dtype, got q: {q.dtype}, k: {k.dtype}, "
                        f"v: {v.dtype}")
    if k.device != q.device or v.device != q.device:
        raise ValueError(f"q, k and v must be on one device, got q: {q.device}, k: {k.device}, "
                         f"v: {v.device}")
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(f"k head dim ({k.shape[-1]}) must equal the q head dim ({q.shape[-1]})")
    if k.shape[:3] != v.shape[:3]:
        raise ValueError(f"k and v must have the same (B, H_kv, N_k), got {tuple(k.shape[:3])} "
                         f"and {tuple(v.shape[:3])}")
    if k.shape[0] != q.shape[0]:
        raise ValueError(f"k batch size ({k.shape[0]}) must equal the q batch size "
                         f"({q.shape[0]})")
    if q.shape[1] % k.shape[1] != 0:
        raise ValueError(f"the number of query heads ({q.shape[1]}) must be a multiple of the "
                         f"number of k/v heads ({k.shape[1]}) (GQA/MQA)")
    if q.shape[2] < 1 or k.shape[2] < 1:
        raise ValueError(f"q and k need at least one position, got N_q={q.shape[2]}, "
                         f"N_k={k.shape[2]}")
    if q.shape[-1] < 1:
        raise ValueError("q head dim must be >= 1")


def _check_window(window, is_causal, n_q, n_k):
    """(left, right, masked) from ``window`` and ``is_causal``."""
    unbounded = n_q + n_k + 1
    if window is None:
        left = right = None
    elif isinstance(window, numbers.Integral) and not isinstance(window, bool):
        left = right = check_int(window, "window", min_value=0)
    elif isinstance(window, (tuple, list)) and len(window) == 2:
        left = check_int(window[0], "window[0]", min_value=0, allow_none=True)
        right = check_int(window[1], "window[1]", min_value=0, allow_none=True)
    else:
        raise TypeError(f"window must be None, an int or a (left, right) pair, got {window!r}")
    if is_causal:
        right = 0
    masked = left is not None or right is not None
    left = unbounded if left is None else min(left, unbounded)
    right = unbounded if right is None else min(right, unbounded)
    return left, right, masked


def _check_slopes(alibi_slopes, q):
    if alibi_slopes is None:
        return None
    if not isinstance(alibi_slopes, torch.Tensor):
        raise TypeError(f"alibi_slopes must be a torch.Tensor, got {type(alibi_slopes).__name__}")
    batch, hq = q.shape[:2]
    if tuple(alibi_slopes.shape) not in ((hq,), (batch, hq), (1, hq)):
        raise ValueError(f"alibi_slopes must have shape (H_q,) or (B, H_q) = ({hq},) or "
                         f"({batch}, {hq}), got {tuple(alibi_slopes.shape)}")
    if not alibi_slopes.is_floating_point():
        raise TypeError(f"alibi_slopes must be a floating tensor, got {alibi_slopes.dtype}")
    if alibi_slopes.device != q.device:
        raise ValueError(f"alibi_slopes must be on the device of q ({q.device}), got "
                         f"{alibi_slopes.device}")
    if not bool(torch.isfinite(alibi_slopes).all()):
        raise ValueError("alibi_slopes must be finite")
    if alibi_slopes.ndim == 2 and alibi_slopes.shape[0] == 1:
        alibi_slopes = alibi_slopes[0]
    return alibi_slopes.detach()


def sigmoid_attention(q, k, v, bias=None, *, scale=None, is_causal=False, alibi_slopes=None,
                      window=None, backend="auto", chunk_size=512):
    r"""Sigmoid attention ``O = sigmoid(Q K^T scale + b) V`` (Ramapuram et al., 2024).

    The drop-in replacement of softmax attention studied by Ramapuram et al. (2024), "Theory,
    Analysis, and Best Practices for Sigmoid Self-Attention", arXiv:2409.04431: each score goes
    through an elementwise sigmoid, with a scalar bias ``b`` (``-log N_k`` by default, the
    paper's recommendation), instead of a row-wise softmax. Masked entries contribute 0.
    Shapes and conventions follow :func:`torch.nn.functional.scaled_dot_product_attention`.

    Parameters
    ----------
    q : Tensor, shape (B, H_q, N_q, d)
        Queries. float16, bfloat16, float32 (Triton or torch) or float64 (torch only).
    k : Tensor, shape (B, H_kv, N_k, d)
        Keys. ``H_q`` must be a multiple of ``H_kv`` (grouped-query / multi-query attention:
        query head ``h`` uses key head ``h // (H_q / H_kv)``).
    v : Tensor, shape (B, H_kv, N_k, d_v)
        Values; ``d_v = d`` for the Triton backend.
    bias : float, optional
        The scalar ``b`` added to every score; default ``-log(N_k)``. Not differentiable.
    scale : float, optional
        Multiplies ``Q K^T``; default ``1 / sqrt(d)``.
    is_causal : bool, default=False
        Causal mask aligned bottom-right as in FlashAttention-2: query ``i`` sits at position
        ``i' = i + N_k - N_q`` and sees keys ``j <= i'``. Queries with ``i' < 0`` (possible
        when ``N_q > N_k``) see nothing and return zeros.
    alibi_slopes : Tensor of shape (H_q,) or (B, H_q), optional
        ALiBi (Press et al., 2022): adds the true distance bias ``-slope * |i' - j|`` to each
        score (sigmoid is not shift invariant, so the column-only softmax shortcut would be
        wrong). See :func:`alibi_slopes`. Not differentiable.
    window : int or (int or None, int or None), optional
        Sliding window ``(left, right)``: key ``j`` is visible from query ``i`` iff
        ``i' - left <= j <= i' + right`` (None = unbounded); an int ``w`` means ``(w, w)``.
        With ``is_causal``, ``right`` is 0.
    backend : {'auto', 'triton', 'torch'}, default='auto'
        'triton': the FlashSigmoid kernels (CUDA tensors, or CPU tensors when Triton was
        imported with ``TRITON_INTERPRET=1``; float16 / float32 there, no bfloat16).
        'torch': the chunked pure-torch path. 'auto': Triton on CUDA when available, else torch.
    chunk_size : int, default=512
        Keys per block of the torch path (memory O(N_q * chunk_size) per head).

    Returns
    -------
    out : Tensor, shape (B, H_q, N_q, d_v)
        Same dtype and device as ``q``. Differentiable in ``q``, ``k`` and ``v``.

    Notes
    -----
    Without a normaliser, ``sum_j sigmoid(s_ij)`` grows with ``N_k`` unless ``b`` compensates:
    ``b = -log N_k`` keeps the initial attention norm of order one (Ramapuram et al., 2024,
    Sec. 3). The Triton backward pass recomputes ``P`` from ``Q`` and ``K`` and needs neither
    the output nor a log-sum-exp.

    NaN or infinite entries of ``q``, ``k`` or ``v`` are not checked (as in
    :func:`torch.nn.functional.scaled_dot_product_attention`: a check would synchronise the
    device at every call); they propagate to the rows of the output they touch.

    Examples
    --------
    >>> import torch
    >>> q = k = v = torch.randn(2, 4, 16, 8)
    >>> sigmoid_attention(q, k, v, is_causal=True).shape
    torch.Size([2, 4, 16, 8])
    """
    _check_qkv(q, k, v)
    n_q, n_k, d = q.shape[2], k.shape[2], q.shape[-1]
    check_option(backend, "backend", ("auto", "triton", "torch"))
    if not isinstance(is_causal, bool):
        raise TypeError(f"is_causal must be a bool, got {is_causal!r}")
    scale = 1.0 / math.sqrt(d) if scale is None else check_positive(scale, "scale")
    bias = -math.log(n_k) if bias is None else check_scalar(bias, "bias")
    left, right, masked = _check_window(window, is_causal, n_q, n_k)
    slopes = _check_slopes(alibi_slopes, q)
    chunk_size = check_int(chunk_size, "chunk_size", min_value=1)

    if backend == "auto":
        use_triton = (q.device.type == "cuda" and q.dtype in _TRITON_DTYPES and 16 <= d <= 256
                      and v.shape[-1] == d and triton_available(q.device))
    else:
        use_triton = backend == "triton"
    if use_triton:
        mod = _triton_module()
        if mod is None:
            raise ValueError("backend='triton' needs the triton package (pip install triton)")
        if not triton_available(q.device):
            raise ValueError(
                f"backend='triton' cannot run on {q.device} tensors here: it needs CUDA tensors "
                "(Triton not in interpreter mode) or CPU tensors with TRITON_INTERPRET=1 set "
                "before sciml_toolbox.nn.attention is imported")
        if q.dtype not in _TRITON_DTYPES:
            raise TypeError(f"backend='triton' supports float16, bfloat16 and float32 q, got "
                            f"{q.dtype}; use backend='torch'")
        if mod.INTERPRET and q.dtype == torch.bfloat16:
            raise TypeError("backend='triton' under TRITON_INTERPRET=1 does not support bfloat16 "
                            "(the interpreter's dot product is wrong for it); use float16, "
                            "float32 or backend='torch'")
        if not 16 <= d <= 256:
            raise ValueError(f"backend='triton' supports head dims 16 to 256, got q head dim {d}")
        if v.shape[-1] != d:
            raise ValueError(f"backend='triton' needs the v head dim ({v.shape[-1]}) to equal "
                             f"the q head dim ({d}); backend='torch' allows them to differ")
        return mod.triton_sigmoid_attention(q, k, v, scale=scale, bias=bias, slopes=slopes,
                                            left=left, right=right, masked=masked)
    return chunked_sigmoid_attention(q, k, v, scale=scale, bias=bias, slopes=slopes, left=left,
                                     right=right, masked=masked, chunk_size=chunk_size)
