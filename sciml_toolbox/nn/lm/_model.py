"""TinyLM: a small decoder-only transformer (pre-norm, RoPE, tied embeddings)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..._validation import (
    check_in_range,
    check_int,
    check_option,
    check_positive,
    check_scalar,
)

__all__ = ["TinyLMConfig", "TinyLM", "apply_rope"]

# (d_model, n_layers, n_heads) presets; counts are for the byte vocabulary and tied weights.
_PRESETS = {
    "0.1M": (48, 3, 3),
    "0.5M": (96, 4, 4),
    "1M": (128, 5, 4),
    "5M": (256, 6, 4),
    "10M": (320, 8, 5),
    "25M": (512, 8, 8),
    "50M": (640, 10, 10),
}


@dataclass
class TinyLMConfig:
    """Configuration of :class:`TinyLM`.

    Parameters
    ----------
    vocab_size : int, default=256
    d_model : int, default=128
    n_layers : int, default=4
    n_heads : int, default=4
        Must divide ``d_model``; the head dimension must be even (RoPE).
    d_ff : int, optional
        Hidden size of the MLP (default ``4 * d_model``).
    max_seq_len : int, default=256
    attention : {'softmax', 'sigmoid'}, default='softmax'
        Softmax attention through ``torch.nn.functional.scaled_dot_product_attention``, or the
        package's sigmoid attention (``sciml_toolbox.nn.attention``; Ramapuram et al., 2024,
        "Theory, analysis, and best practices for sigmoid self-attention").
    rope_base : float, default=10000.0
        Base of the rotary position embedding (Su et al., 2021, "RoFormer").
    tie_weights : bool, default=True
        Share the input embedding and the output projection (Press & Wolf, 2017).
    dropout : float, default=0.0
    norm_eps : float, default=1e-5
    sigmoid_bias : 'auto' or float, default='auto'
        The scalar ``b`` of sigmoid attention, ``sigmoid(q k^T / sqrt(d_head) + b)``: 'auto' is
        ``-log(n)`` with ``n`` the key length of the call (the paper's choice, and what
        ``sigmoid_attention`` uses by default), a float is used as is (``0.0``: no bias).
        Ignored by softmax attention (a constant shift of the scores changes nothing there).
    qk_norm : bool, default=False
        RMSNorm (over the head dimension, one learnable gain of size ``d_head`` shared by the
        heads, separate for queries and keys) of every query and key head, applied *before*
        RoPE: the rotation preserves the norm, and a per-channel gain applied after it would
        break the property that ``q_m . k_n`` depends on the positions through ``m - n`` only.
        The QK-norm of Ramapuram et al. (2024) (Dehghani et al., 2023, "Scaling vision
        transformers to 22 billion parameters").
    attn_norm : {None, 'hybrid', 'layerscale'}, default=None
        Control of the attention branch's output before the residual add, the stabilisation
        Ramapuram et al. (2024) recommend for sigmoid attention against the large attention
        norms early in training (Hybrid-Norm or LayerScale): 'hybrid' adds an RMSNorm (learnable
        gain) of the attention output, ``x + RMSNorm(Attn(RMSNorm(x)))``; 'layerscale' multiplies
        it by a learnable per-channel scale initialised at ``layerscale_init`` (Touvron et al.,
        2021, "Going deeper with image transformers"). None: ``x + Attn(RMSNorm(x))``.
    layerscale_init : float, default=1e-4
        Initial value of the LayerScale scale (used with ``attn_norm='layerscale'``).
    """

    vocab_size: int = 256
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int | None = None
    max_seq_len: int = 256
    attention: str = "softmax"
    rope_base: float = 10000.0
    tie_weights: bool = True
    dropout: float = 0.0
    norm_eps: float = 1e-5
    sigmoid_bias: str | float = "auto"
    qk_norm: bool = False
    attn_norm: str | None = None
    layerscale_init: float = 1e-4

    def __post_init__(self):
        check_int(self.vocab_size, "vocab_size", min_value=2)
        check_int(self.d_model, "d_model", min_value=2)
        check_int(self.n_layers, "n_layers", min_value=1)
        check_int(self.n_heads, "n_heads", min_value=1)
        check_int(self.max_seq_len, "max_seq_len", min_value=1)
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads={self.n_heads} must divide d_model={self.d_model}")
        if (self.d_model // self.n_heads) % 2:
            raise ValueError("d_model / n_heads (the head dimension) must be even for RoPE, "
                             f"got {self.d_model // self.n_heads}")
        if self.d_ff is None:
            self.d_ff = 4 * self.d_model
        check_int(self.d_ff, "d_ff", min_value=1)
        check_option(self.attention, "attention", ("softmax", "sigmoid"))
        check_positive(self.rope_base, "rope_base")
        check_in_range(self.dropout, "dropout", 0.0, 1.0, closed="left")
        check_positive(self.norm_eps, "norm_eps")
        if not isinstance(self.tie_weights, bool):
            raise TypeError(f"tie_weights must be a bool, got {self.tie_weights!r}")
        if isinstance(self.sigmoid_bias, str):
            check_option(self.sigmoid_bias, "sigmoid_bias", ("auto",))
        else:
            try:
                self.sigmoid_bias = check_scalar(self.sigmoid_bias, "sigmoid_bias")
            except TypeError:
                raise TypeError("sigmoid_bias must be 'auto' or a real number, got "
                                f"{self.sigmoid_bias!r}") from None
        if not isinstance(self.qk_norm, bool):
            raise TypeError(f"qk_norm must be a bool, got {self.qk_norm!r}")
        check_option(self.attn_norm, "attn_norm", (None, "hybrid", "layerscale"))
        check_positive(self.layerscale_init, "layerscale_init")

    @classmethod
    def from_size(cls, size, **kwargs):
        """A preset of about ``size`` parameters.

        Parameters
        ----------
        size : {'0.1M', '0.5M', '1M', '5M', '10M', '25M', '50M'}
        **kwargs
            Overrides of any field.
        """
        check_option(size, "size", tuple(_PRESETS))
        d, n_layers, n_heads = _PRESETS[size]
        return cls(**{"d_model": d, "n_layers": n_layers, "n_heads": n_heads, **kwargs})

    def n_params(self):
        """Closed-form parameter count of the model this config builds."""
        d, f, v = self.d_model, self.d_ff, self.vocab_size
        per_layer = 4 * d * d + 2 * d * f + 2 * d  # qkv + out, MLP in/out, two RMSNorm gains
        if self.qk_norm:
            per_layer += 2 * (d // self.n_heads)  # query and key RMSNorm gains
        if self.attn_norm is not None:
            per_layer += d  # Hybrid-Norm gain or LayerScale scale
        head = 0 if self.tie_weights else v * d
        return v * d + self.n_layers * per_layer + d + head

    def to_dict(self):
        """Plain dict of the fields (JSON-serialisable)."""
        return asdict(self)


def _rope_tables(seq_len, head_dim, base, device, dtype):
    inv = 1.0 / (base ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float64)
                          / head_dim))
    ang = torch.arange(seq_len, device=device, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).to(dtype), torch.sin(ang).to(dtype)


def apply_rope(x, cos, sin):
    """Rotary position embedding (Su et al., 2021) in the rotate-half layout.

    Parameters
    ----------
    x : Tensor, shape (..., seq_len, head_dim)
    cos, sin : Tensor, shape (seq_len, head_dim // 2)

    Returns
    -------
    Tensor, shape (..., seq_len, head_dim)
        Pairs ``(x[i], x[i + head_dim/2])`` rotated by angle ``pos * base^(-2i/head_dim)``.
    """
    for name, t in (("x", x), ("cos", cos), ("sin", sin)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating tensor, got {t.dtype}")
    if x.ndim < 2 or x.shape[-1] % 2:
        raise ValueError(f"x must have shape (..., seq_len, head_dim) with an even head_dim, got "
                         f"{tuple(x.shape)}")
    want = (x.shape[-2], x.shape[-1] // 2)
    for name, t in (("cos", cos), ("sin", sin)):
        if tuple(t.shape) != want:
            raise ValueError(f"{name} must have shape (seq_len, head_dim // 2) = {want}, got "
                             f"{tuple(t.shape)}")
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


def _check_tokens(idx, name, vocab_size):
    """Raise unless ``idx`` is a 2-D integer tensor of ids in [0, vocab_size).

    The value range is scanned on CPU tensors only: on an accelerator the scan would cost a
    host synchronisation at every forward, and ``train`` already checks once that the corpus's
    vocabulary fits the model (an id out of range there still stops the kernel with torch's
    device-side assertion).
    """
    if not isinstance(idx, torch.Tensor):
        raise TypeError(f"{name} must be a LongTensor of shape (batch, seq_len), got "
                        f"{type(idx).__name__}")
    if idx.dtype == torch.bool or idx.is_floating_point() or idx.is_complex():
        raise TypeError(f"{name} must hold integer token ids, got dtype {idx.dtype}")
    if idx.ndim != 2:
        raise ValueError(f"{name} must have shape (batch, seq_len), got {tuple(idx.shape)}")
    if idx.numel() and idx.device.type == "cpu":
        lo, hi = (int(v) for v in torch.aminmax(idx))  # one pass
        if lo < 0 or hi >= vocab_size:
            raise ValueError(f"{name} has token ids outside [0, vocab_size={vocab_size}): min "
                             f"{lo}, max {hi}")


def _sigmoid_attention():
    try:
        from ..attention import sigmoid_attention
    except ImportError as exc:
        raise ImportError(
            "attention='sigmoid' needs sciml_toolbox.nn.attention.sigmoid_attention, which "
            f"could not be imported ({exc}); use attention='softmax'") from exc
    return sigmoid_attention


class _Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_heads = cfg.n_heads
        hd = cfg.d_model // cfg.n_heads
        self.q_norm = nn.RMSNorm(hd, eps=cfg.norm_eps) if cfg.qk_norm else None
        self.k_norm = nn.RMSNorm(hd, eps=cfg.norm_eps) if cfg.qk_norm else None
        self.bias = None if cfg.sigmoid_bias == "auto" else float(cfg.sigmoid_bias)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.out = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.attention = cfg.attention
        self.dropout = cfg.dropout
        self._sigmoid = _sigmoid_attention() if cfg.attention == "sigmoid" else None

    def forward(self, x, cos, sin):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.n_heads, d // self.n_heads).permute(
            2, 0, 3, 1, 4)
        if self.q_norm is not None:  # before RoPE (see TinyLMConfig.qk_norm)
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if self._sigmoid is not None:  # bias None: -log(n_k)
            y = self._sigmoid(q, k, v, self.bias, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(
                q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class _LayerScale(nn.Module):
    """``x * gamma`` with a learnable per-channel ``gamma`` initialised at ``init``."""

    def __init__(self, dim, init):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init)))

    def forward(self, x):
        return x * self.gamma


class _Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.norm1 = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.attn = _Attention(cfg)
        if cfg.attn_norm == "hybrid":
            self.attn_norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        elif cfg.attn_norm == "layerscale":
            self.attn_norm = _LayerScale(cfg.d_model, cfg.layerscale_init)
        else:
            self.attn_norm = nn.Identity()
        self.norm2 = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.fc = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.proj = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, cos, sin):
        x = x + self.drop(self.attn_norm(self.attn(self.norm1(x), cos, sin)))
        return x + self.drop(self.proj(F.gelu(self.fc(self.norm2(x)))))


class TinyLM(nn.Module):
    """Decoder-only transformer language model (pre-norm, RoPE, tied embeddings).

    The architecture follows GPT-2 (Radford et al., 2019) with RMSNorm (Zhang & Sennrich,
    2019) and rotary position embeddings (Su et al., 2021) instead of learned positions; there
    are no biases. Residual output projections are initialised with standard deviation
    ``0.02 / sqrt(2 n_layers)``.

    Parameters
    ----------
    config : TinyLMConfig

    Examples
    --------
    >>> model = TinyLM(TinyLMConfig(d_model=32, n_layers=2, n_heads=2))
    >>> logits = model(torch.zeros(1, 8, dtype=torch.long))
    >>> tuple(logits.shape)
    (1, 8, 256)
    """

    def __init__(self, config=None):
        super().__init__()
        if config is None:
            config = TinyLMConfig()
        if not isinstance(config, TinyLMConfig):
            raise TypeError(f"config must be a TinyLMConfig, got {type(config).__name__}")
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.n_layers))
        self.norm = nn.RMSNorm(config.d_model, eps=config.norm_eps)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_weights:
            self.head.weight = self.embed.weight
        hd = config.d_model // config.n_heads
        cos, sin = _rope_tables(config.max_seq_len, hd, config.rope_base, None, torch.float32)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init)
        for blk in self.blocks:
            std = 0.02 / math.sqrt(2 * config.n_layers)
            nn.init.normal_(blk.attn.out.weight, std=std)
            nn.init.normal_(blk.proj.weight, std=std)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def num_parameters(self):
        """Number of distinct trainable parameters (tied weights counted once)."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx, targets=None):
        """Next-token logits, or the mean cross-entropy when ``targets`` is given.

        Parameters
        ----------
        idx : LongTensor, shape (batch, seq_len)
            Token ids, ``seq_len <= config.max_seq_len``.
        targets : LongTensor, shape (batch, seq_len), optional

        Returns
        -------
        logits : Tensor, shape (batch, seq_len, vocab_size)
            When ``targets`` is None.
        loss : Tensor, shape ()
            Mean next-token cross-entropy in nats, when ``targets`` is given.
        """
        _check_tokens(idx, "idx", self.config.vocab_size)
        if targets is not None:
            _check_tokens(targets, "targets", self.config.vocab_size)
            if targets.shape != idx.shape:
                raise ValueError(f"targets must have the shape of idx {tuple(idx.shape)}, got "
                                 f"{tuple(targets.shape)}")
        n = idx.shape[1]
        if n == 0:
            raise ValueError("idx must hold at least one token per sequence, got shape "
                             f"{tuple(idx.shape)}")
        if n > self.config.max_seq_len:
            raise ValueError(f"idx has sequence length {n} > max_seq_len "
                             f"{self.config.max_seq_len}")
        cos, sin = self.rope_cos[:n], self.rope_sin[:n]
        x = self.drop(self.embed(idx))
        for blk in self.blocks:
            x = blk(x, cos.to(x.dtype), sin.to(x.dtype))
        logits = self.head(self.norm(x))
        if targets is None:
            return logits
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, *, temperature=1.0, generator=None):
        """Sample ``max_new_tokens`` tokens autoregressively.

        Parameters
        ----------
        idx : LongTensor, shape (batch, n)
            Prompt, ``n >= 1``.
        max_new_tokens : int
        temperature : float, default=1.0
            Softmax temperature (> 0); smaller is greedier.
        generator : torch.Generator, optional

        Returns
        -------
        LongTensor, shape (batch, n + max_new_tokens)
        """
        temperature = check_positive(temperature, "temperature")
        max_new_tokens = check_int(max_new_tokens, "max_new_tokens", min_value=0)
        _check_tokens(idx, "idx", self.config.vocab_size)
        if idx.shape[1] == 0:
            raise ValueError("idx (the prompt) must hold at least one token per sequence")
        for _ in range(max_new_tokens):
            logits = self(idx[:, -self.config.max_seq_len:])[:, -1] / temperature
            nxt = torch.multinomial(torch.softmax(logits.float(), -1), 1, generator=generator)
            idx = torch.cat([idx, nxt], dim=1)
        return idx
