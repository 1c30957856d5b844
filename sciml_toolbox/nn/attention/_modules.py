"""SigmoidMultiheadAttention (QK-norm, Hybrid-Norm or LayerScale, RoPE or ALiBi) and helpers."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..._validation import check_int, check_option, check_positive, check_scalar
from ._functional import _check_window, sigmoid_attention

__all__ = ["SigmoidMultiheadAttention", "alibi_slopes", "apply_rope"]


def alibi_slopes(n_heads, *, device=None, dtype=torch.float32):
    """ALiBi head slopes of Press et al. (2022), "Train Short, Test Long", ICLR.

    For ``n`` a power of two the slopes are the geometric sequence ``2^(-8 k / n)``,
    ``k = 1..n``; otherwise the ``m`` slopes of the nearest smaller power of two followed by
    every other slope of ``2 m`` heads (the authors' recipe).

    Parameters
    ----------
    n_heads : int
    device : torch.device, optional
    dtype : torch.dtype, default=torch.float32

    Returns
    -------
    slopes : Tensor, shape (n_heads,)
    """
    n_heads = check_int(n_heads, "n_heads", min_value=1)
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch dtype, got {dtype!r}")

    def power_of_two(n):
        start = 2.0 ** (-8.0 / n)
        return [start ** (k + 1) for k in range(n)]

    m = 2 ** int(math.floor(math.log2(n_heads)))
    slopes = power_of_two(m)
    if m < n_heads:
        slopes += power_of_two(2 * m)[0::2][: n_heads - m]
    return torch.tensor(slopes, device=device, dtype=dtype)


def apply_rope(x, *, base=10000.0, positions=None):
    """Rotary position embedding (Su et al., 2021, RoFormer, arXiv:2104.09864).

    Rotates the pairs ``(x[..., i], x[..., i + d/2])`` by the angle ``pos * base^(-2i/d)``
    ("rotate half" layout).

    Parameters
    ----------
    x : Tensor, shape (B, H, N, d)
        ``d`` even.
    base : float, default=10000.0
    positions : Tensor of shape (N,), optional
        Default ``arange(N)``.

    Returns
    -------
    out : Tensor, shape (B, H, N, d)
        Same dtype as ``x``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating tensor, got {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"x must have shape (..., N, d), got {tuple(x.shape)}")
    base = check_positive(base, "base")
    d = x.shape[-1]
    if d % 2:
        raise ValueError(f"RoPE needs an even head dim, got {d}")
    n = x.shape[-2]
    if positions is None:
        positions = torch.arange(n, device=x.device)
    else:
        if not isinstance(positions, torch.Tensor) or positions.shape != (n,):
            raise ValueError(f"positions must be a tensor of shape ({n},), got "
                             f"{tuple(getattr(positions, 'shape', ()))}")
        if positions.is_complex() or (positions.is_floating_point()
                                      and not torch.isfinite(positions).all()):
            raise ValueError("positions must hold finite real values")
    cdt = torch.float64 if x.dtype == torch.float64 else torch.float32
    inv_freq = base ** (-torch.arange(0, d // 2, device=x.device, dtype=cdt) * 2 / d)
    angles = positions.to(cdt)[:, None] * inv_freq[None, :]
    cos, sin = angles.cos(), angles.sin()
    x1, x2 = x[..., : d // 2].to(cdt), x[..., d // 2:].to(cdt)
    out = torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return out.to(x.dtype)


def _rotate(x, cos, sin):
    """Rotate-half RoPE with precomputed (N, d/2) tables."""
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def _norm(kind, dim, eps, device, dtype):
    if kind == "layernorm":
        return nn.LayerNorm(dim, eps=eps, device=device, dtype=dtype)
    return nn.RMSNorm(dim, eps=eps, device=device, dtype=dtype)


class SigmoidMultiheadAttention(nn.Module):
    r"""Multi-head self-attention with sigmoid (or softmax) attention, after Ramapuram et al.

    ``forward(x[, cos, sin])`` maps ``(B, N, d_model)`` to ``(B, N, d_model)``: projections to
    ``n_heads`` query heads and ``n_kv_heads`` key/value heads (GQA), optional QK-norm, RoPE or
    ALiBi,
    :func:`sigmoid_attention` with ``b = -log N`` by default, the output projection, then the
    stabiliser the paper recommends for sigmoid attention (Ramapuram et al., 2024,
    arXiv:2409.04431, Sec. 4): Hybrid-Norm (a normalisation of the attention output, so that a
    pre-norm block computes ``x + Norm(Attn(Norm(x)))``) or LayerScale (``x + gamma * Attn``
    with a small learnable ``gamma``; Touvron et al., 2021). The residual connection and the
    pre-norm belong to the enclosing block.

    Parameters
    ----------
    d_model : int
        Model width.
    n_heads : int
        Query heads; must divide ``d_model``.
    n_kv_heads : int, optional
        Key/value heads (default ``n_heads``); must divide ``n_heads``.
    attn_bias : float, optional
        The sigmoid bias ``b``; default ``-log(N)`` for a sequence of length ``N``.
    qk_norm : bool, default=True
        Normalise queries and keys per head before the dot product (Dehghani et al., 2023).
    output_norm : {'hybrid', 'layerscale', None}, default='hybrid'
        Stabiliser applied to the attention output (see above).
    layerscale_init : float, default=1e-4
        Initial value of the LayerScale gains.
    position : {'rope', 'alibi', None}, default='rope'
        Rotary embedding of q and k, or ALiBi distance biases (:func:`alibi_slopes`).
    rope_base : float, default=10000.0
    is_causal : bool, default=True
    window : int or (int, int), optional
        Sliding window, as in :func:`sigmoid_attention`.
    kind : {'sigmoid', 'softmax'}, default='sigmoid'
        'softmax' runs :func:`torch.nn.functional.scaled_dot_product_attention` with the same
        projections, norms and positions, for ablations.
    norm_type : {'rmsnorm', 'layernorm'}, default='rmsnorm'
        Normalisation used by QK-norm and Hybrid-Norm.
    norm_eps : float, default=1e-6
    proj_bias : bool, default=False
        Biases in the four linear projections.
    backend : {'auto', 'triton', 'torch'}, default='auto'
    chunk_size : int, default=512
        Key chunk of the torch backend.
    device, dtype : optional
        Factory arguments of the parameters.

    Attributes
    ----------
    q_proj, k_proj, v_proj, out_proj : nn.Linear
    q_norm, k_norm : nn.Module or None
        QK-norm layers over the head dim.
    out_norm : nn.Module or None
        Hybrid-Norm layer over ``d_model``.
    gamma : nn.Parameter of shape (d_model,) or None
        LayerScale gains.
    slopes : Tensor of shape (n_heads,) or None
        ALiBi slopes (a buffer).

    Examples
    --------
    >>> import torch
    >>> attn = SigmoidMultiheadAttention(64, 4, n_kv_heads=2)
    >>> attn(torch.randn(2, 10, 64)).shape
    torch.Size([2, 10, 64])
    """

    def __init__(self, d_model, n_heads, n_kv_heads=None, *, attn_bias=None, qk_norm=True,
                 output_norm="hybrid", layerscale_init=1e-4, position="rope", rope_base=10000.0,
                 is_causal=True, window=None, kind="sigmoid", norm_type="rmsnorm",
                 norm_eps=1e-6, proj_bias=False, backend="auto", chunk_size=512, device=None,
                 dtype=None):
        super().__init__()
        d_model = check_int(d_model, "d_model", min_value=1)
        n_heads = check_int(n_heads, "n_heads", min_value=1)
        n_kv_heads = check_int(n_kv_heads, "n_kv_heads", min_value=1, allow_none=True)
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        if d_model % n_heads:
            raise ValueError(f"n_heads ({n_heads}) must divide d_model ({d_model})")
        if n_heads % n_kv_heads:
            raise ValueError(f"n_kv_heads ({n_kv_heads}) must divide n_heads ({n_heads})")
        self.d_model, self.n_heads, self.n_kv_heads = d_model, n_heads, n_kv_heads
        self.head_dim = d_model // n_heads
        self.attn_bias = check_scalar(attn_bias, "attn_bias", allow_none=True)
        self.output_norm = check_option(output_norm, "output_norm", ("hybrid", "layerscale", None))
        self.position = check_option(position, "position", ("rope", "alibi", None))
        self.kind = check_option(kind, "kind", ("sigmoid", "softmax"))
        norm_type = check_option(norm_type, "norm_type", ("rmsnorm", "layernorm"))
        norm_eps = check_positive(norm_eps, "norm_eps")
        self.rope_base = check_positive(rope_base, "rope_base")
        if self.position == "rope" and self.head_dim % 2:
            raise ValueError(f"position='rope' needs an even head dim, got d_model / n_heads = "
                             f"{self.head_dim}")
        if not isinstance(is_causal, bool):
            raise TypeError(f"is_causal must be a bool, got {is_causal!r}")
        if not isinstance(qk_norm, bool):
            raise TypeError(f"qk_norm must be a bool, got {qk_norm!r}")
        _check_window(window, is_causal, 1, 1)  # its type and range, before any forward
        self.is_causal, self.window = is_causal, window
        self.backend = check_option(backend, "backend", ("auto", "triton", "torch"))
        self.chunk_size = check_int(chunk_size, "chunk_size", min_value=1)
        if self.kind == "softmax" and window is not None:
            raise ValueError("window is only supported with kind='sigmoid'")

        fk = {"device": device, "dtype": dtype}
        kv_dim = n_kv_heads * self.head_dim
        self.q_proj = nn.Linear(d_model, d_model, bias=proj_bias, **fk)
        self.k_proj = nn.Linear(d_model, kv_dim, bias=proj_bias, **fk)
        self.v_proj = nn.Linear(d_model, kv_dim, bias=proj_bias, **fk)
        self.out_proj = nn.Linear(d_model, d_model, bias=proj_bias, **fk)
        self.q_norm = _norm(norm_type, self.head_dim, norm_eps, device, dtype) if qk_norm else None
        self.k_norm = _norm(norm_type, self.head_dim, norm_eps, device, dtype) if qk_norm else None
        self.out_norm = (_norm(norm_type, d_model, norm_eps, device, dtype)
                         if self.output_norm == "hybrid" else None)
        if self.output_norm == "layerscale":
            init = check_positive(layerscale_init, "layerscale_init")
            self.gamma = nn.Parameter(torch.full((d_model,), init, **fk))
        else:
            self.gamma = None
        if self.position == "alibi":
            self.register_buffer("slopes", alibi_slopes(n_heads, device=device), persistent=False)
        else:
            self.slopes = None

    def _attend(self, q, k, v):
        n = k.shape[2]
        if self.kind == "sigmoid":
            return sigmoid_attention(q, k, v, self.attn_bias, is_causal=self.is_causal,
                                     alibi_slopes=self.slopes, window=self.window,
                                     backend=self.backend, chunk_size=self.chunk_size)
        group = self.n_heads // self.n_kv_heads
        if group > 1:
            k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        if self.slopes is None:
            return F.scaled_dot_product_attention(q, k, v, is_causal=self.is_causal)
        i = torch.arange(q.shape[2], device=q.device)[:, None] + (n - q.shape[2])
        j = torch.arange(n, device=q.device)[None, :]
        mask = -self.slopes[:, None, None] * (i - j).abs()
        if self.is_causal:
            mask = mask.masked_fill(j > i, float("-inf"))
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(q.dtype))

    def forward(self, x, cos=None, sin=None):
        """Self-attention of a batch of sequences.

        Parameters
        ----------
        x : Tensor, shape (B, N, d_model)
        cos, sin : Tensor of shape (>= N, head_dim // 2), optional
            Precomputed RoPE tables ``cos(pos * base^(-2i/d))`` and ``sin(...)`` (rows are
            positions; the first N are used), as a model that shares one table across layers
            passes them; by default they are computed from ``rope_base``. Ignored unless
            ``position='rope'``.

        Returns
        -------
        out : Tensor, shape (B, N, d_model)
            The attention output after the output projection and Hybrid-Norm / LayerScale
            (without the residual).
        """
        if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[-1] != self.d_model:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be a tensor of shape (B, N, d_model={self.d_model}), got "
                             f"{shape}")
        if not x.is_floating_point() or (x.dtype != self.q_proj.weight.dtype
                                         and not torch.is_autocast_enabled(x.device.type)):
            raise TypeError(f"x must have the module's dtype {self.q_proj.weight.dtype}, got "
                            f"{x.dtype} (convert one with .to(dtype))")
        batch, n, _ = x.shape
        q = self.q_proj(x).view(batch, n, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(batch, n, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(batch, n, self.n_kv_heads, self.head_dim).transpose(1, 2)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        if self.position == "rope" and cos is not None:
            if sin is None or cos.shape[0] < n or cos.shape[-1] != self.head_dim // 2:
                raise ValueError(f"cos and sin must both have shape (>= {n}, "
                                 f"{self.head_dim // 2}), got {tuple(cos.shape)} and "
                                 f"{None if sin is None else tuple(sin.shape)}")
            q, k = _rotate(q, cos[:n], sin[:n]), _rotate(k, cos[:n], sin[:n])
        elif self.position == "rope":
            q, k = apply_rope(q, base=self.rope_base), apply_rope(k, base=self.rope_base)
        o = self._attend(q, k, v)
        o = self.out_proj(o.transpose(1, 2).reshape(batch, n, self.d_model))
        if self.out_norm is not None:
            o = self.out_norm(o)
        if self.gamma is not None:
            o = o * self.gamma
        return o

    def extra_repr(self):
        return (f"d_model={self.d_model}, n_heads={self.n_heads}, n_kv_heads={self.n_kv_heads}, "
                f"kind={self.kind!r}, position={self.position!r}, "
                f"output_norm={self.output_norm!r}, is_causal={self.is_causal}")
