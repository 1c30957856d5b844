"""Hugging Face transformers integration: sigmoid attention as an ``attn_implementation``."""

from __future__ import annotations

import math

import torch

from ..._optional import import_optional
from ..._validation import check_scalar
from ._functional import _check_qkv, sigmoid_attention

__all__ = ["register_hf_attention", "hf_sigmoid_attention_forward"]


def _explicit_mask_attention(q, k, v, keep, scale, bias):
    """sigmoid(q k^T scale + b) * keep @ v for an arbitrary boolean mask (O(N_q N_k) memory)."""
    group = q.shape[1] // k.shape[1]
    if group > 1:
        k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    cdt = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype
    s = torch.matmul(q.to(cdt), k.to(cdt).transpose(-1, -2)) * scale + bias
    p = torch.sigmoid(s) * keep.to(cdt)
    return torch.matmul(p, v.to(cdt)).to(q.dtype)


def _check_mask(mask, query, key):
    """Raise unless ``mask`` is a bool or float tensor broadcastable to (B, H_q, N_q, N_k)."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"attention_mask must be a torch.Tensor or None, got "
                        f"{type(mask).__name__}")
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise TypeError("attention_mask must be boolean (True = attend) or an additive float "
                        f"mask, got dtype {mask.dtype}")
    (b, h, n_q, _), n_k = query.shape, key.shape[2]
    shape = tuple(mask.shape)
    if len(shape) != 4 or shape[0] not in (1, b) or shape[1] not in (1, h) \
            or shape[2:] != (n_q, n_k):
        raise ValueError(f"attention_mask must have shape (B, 1, N_q, N_k) = ({b}, 1, {n_q}, "
                         f"{n_k}) (or broadcast to (B, H_q, N_q, N_k)), got {shape}")
    if mask.is_floating_point() and torch.isnan(mask).any():
        raise ValueError("attention_mask holds NaN")


def hf_sigmoid_attention_forward(module, query, key, value, attention_mask, dropout=0.0,
                                 scaling=None, is_causal=None, **kwargs):
    """Attention function with the signature transformers expects of an attention interface.

    Parameters
    ----------
    module : nn.Module
        The model's attention module (``module.is_causal`` and ``module.config`` are read).
    query : Tensor, shape (B, H_q, N_q, d)
    key, value : Tensor, shape (B, H_kv, N_k, d)
    attention_mask : Tensor of shape (B, 1, N_q, N_k) or None
        Boolean (True = attend) or additive float mask built by transformers' ``sdpa`` mask
        function; None for a plain causal or bidirectional pass.
    dropout : float, default=0.0
        Must be 0 (dropout on sigmoid weights is not supported).
    scaling : float, optional
        Score scale (default ``1 / sqrt(d)``).
    is_causal : bool, optional
        Default ``module.is_causal``.
    **kwargs
        ``sigmoid_bias`` (float) overrides the bias; otherwise ``config.sigmoid_attn_bias`` when
        the model config has it, else ``-log(N_k)``.

    Returns
    -------
    out : Tensor, shape (B, N_q, H_q, d)
    weights : None
    """
    if dropout and module.training:
        raise ValueError(f"dropout must be 0 for sigmoid attention, got {dropout}")
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, torch.Tensor) or t.ndim != 4:
            raise ValueError(f"{name} must be a tensor of shape (B, H, N, d), got "
                             f"{tuple(t.shape) if isinstance(t, torch.Tensor) else type(t)}")
    _check_qkv(query, key, value)
    if scaling is not None:
        scaling = check_scalar(scaling, "scaling")
    scale = 1.0 / math.sqrt(query.shape[-1]) if scaling is None else scaling
    if attention_mask is not None:
        _check_mask(attention_mask, query, key)
    bias = kwargs.get("sigmoid_bias")
    if bias is None:
        bias = getattr(getattr(module, "config", None), "sigmoid_attn_bias", None)
    if is_causal is None:
        is_causal = bool(getattr(module, "is_causal", True))
    q_len, kv_len = query.shape[2], key.shape[2]
    if attention_mask is None:
        # as transformers' sdpa path: an empty static cache gives kv_len > q_len at prefill
        if is_causal and q_len > 1 and kv_len > q_len:
            key, value = key[:, :, :q_len], value[:, :, :q_len]
        out = sigmoid_attention(query, key, value, bias, scale=scale,
                                is_causal=is_causal and q_len > 1)
    else:
        keep = attention_mask
        if keep.dtype != torch.bool:
            keep = keep > torch.finfo(keep.dtype).min / 2
        b = -math.log(kv_len) if bias is None else float(bias)
        out = _explicit_mask_attention(query, key, value, keep, scale, b)
    return out.transpose(1, 2).contiguous(), None


def register_hf_attention(name="sigmoid"):
    """Register sigmoid attention with transformers as ``attn_implementation=name``.

    After registration, ``AutoModel.from_config(config, attn_implementation="sigmoid")`` (or
    ``model.set_attn_implementation("sigmoid")``) runs every attention layer of a model that
    supports the attention interface through :func:`hf_sigmoid_attention_forward`: causal or
    full passes without padding go through :func:`sigmoid_attention` (Triton on CUDA); passes
    with a padding mask use an explicit-mask formula with O(N^2) memory. Set
    ``config.sigmoid_attn_bias`` to a fixed bias (for example ``-log(training length)``) so that
    cached generation uses the training bias; otherwise ``b = -log(N_k)`` of each call.

    Parameters
    ----------
    name : str, default='sigmoid'

    Returns
    -------
    name : str

    Raises
    ------
    ImportError
        (``ModuleNotFoundError``) When transformers is not installed (``pip install
        'sciml-toolbox[hf]'``).
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    # transformers.masking_utils (4.53+) also imports transformers and its AttentionInterface
    need = dict(feature="register_hf_attention", package="transformers")
    masking = import_optional("transformers.masking_utils", "hf", **need)
    import_optional("transformers", "hf", **need).AttentionInterface.register(
        name, hf_sigmoid_attention_forward)
    # boolean masks in the sdpa layout (None when a plain causal pass suffices)
    masking.AttentionMaskInterface.register(name, masking.sdpa_mask)
    return name
