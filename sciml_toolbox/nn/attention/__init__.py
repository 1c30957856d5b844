"""Sigmoid attention: chunked torch reference, Triton FlashSigmoid kernels, attention modules.

Sigmoid attention replaces the row-wise softmax of attention by an elementwise sigmoid with a
scalar bias, ``sigmoid(Q K^T / sqrt(d) + b) V`` (Ramapuram et al., 2024, "Theory, Analysis, and
Best Practices for Sigmoid Self-Attention", arXiv:2409.04431).
"""

from ._functional import sigmoid_attention, triton_available
from ._hf import hf_sigmoid_attention_forward, register_hf_attention
from ._modules import SigmoidMultiheadAttention, alibi_slopes, apply_rope

__all__ = [
    "sigmoid_attention",
    "triton_available",
    "SigmoidMultiheadAttention",
    "alibi_slopes",
    "apply_rope",
    "register_hf_attention",
    "hf_sigmoid_attention_forward",
]
