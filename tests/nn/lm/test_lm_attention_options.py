"""TinyLM's sigmoid-attention options (bias, QK-norm, Hybrid-Norm / LayerScale) against a
hand-written forward pass, and the default configuration against the forward it had before."""

import math

import pytest
import torch
import torch.nn.functional as F

from sciml_toolbox.nn.lm import TinyLM, TinyLMConfig

pytest.importorskip("sciml_toolbox.nn.attention")


def _rms(x, g, eps):
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps) * g


def _rope_complex(x, base):
    """RoPE written with complex numbers: pair (i, i + h) is the number x_i + 1j x_{i+h},
    multiplied by exp(1j * pos * base^(-2i/d))."""
    n, d = x.shape[-2], x.shape[-1]
    h = d // 2
    z = torch.complex(x[..., :h].double(), x[..., h:].double())
    ang = torch.arange(n, dtype=torch.float64)[:, None] * base ** (
        -torch.arange(0, d, 2, dtype=torch.float64) / d)
    z = z * torch.polar(torch.ones_like(ang), ang)
    return torch.cat((z.real, z.imag), -1)


def _manual_logits(model, idx):
    """One-layer TinyLM forward in float64 from the formulas, reading only the weights."""
    cfg = model.config
    blk = model.blocks[0]
    eps, H = cfg.norm_eps, cfg.n_heads
    W = {k: v.detach().double() for k, v in model.state_dict().items()}
    x = W["embed.weight"][idx]
    b, n, d = x.shape
    hd = d // H
    a = _rms(x, W["blocks.0.norm1.weight"], eps)
    q, k, v = (a @ W["blocks.0.attn.qkv.weight"].T).split(d, -1)
    q, k, v = (t.reshape(b, n, H, hd).transpose(1, 2) for t in (q, k, v))
    if cfg.qk_norm:
        q = _rms(q, W["blocks.0.attn.q_norm.weight"], eps)
        k = _rms(k, W["blocks.0.attn.k_norm.weight"], eps)
    q, k = _rope_complex(q, cfg.rope_base), _rope_complex(k, cfg.rope_base)
    s = q @ k.transpose(-1, -2) / math.sqrt(hd)
    mask = torch.ones(n, n, dtype=torch.bool).tril()
    if cfg.attention == "sigmoid":
        bias = -math.log(n) if cfg.sigmoid_bias == "auto" else cfg.sigmoid_bias
        p = torch.sigmoid(s + bias) * mask
    else:
        p = torch.softmax(s.masked_fill(~mask, -math.inf), -1)
    y = (p @ v).transpose(1, 2).reshape(b, n, d) @ W["blocks.0.attn.out.weight"].T
    if cfg.attn_norm == "hybrid":
        y = _rms(y, W["blocks.0.attn_norm.weight"], eps)
    elif cfg.attn_norm == "layerscale":
        y = y * W["blocks.0.attn_norm.gamma"]
    x = x + y
    x = x + F.gelu(_rms(x, W["blocks.0.norm2.weight"], eps) @ W["blocks.0.fc.weight"].T) @ W[
        "blocks.0.proj.weight"].T
    assert blk is model.blocks[-1]
    return _rms(x, W["norm.weight"], eps) @ W["embed.weight"].T


def _randomise(model, seed):
    """Random non-trivial values for every parameter (gains and scales included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g) + (1.0 if p.ndim == 1 else 0.0))


@pytest.mark.parametrize("opts", [
    dict(attention="sigmoid"),
    dict(attention="sigmoid", sigmoid_bias=0.0),
    dict(attention="sigmoid", sigmoid_bias=-1.5, qk_norm=True),
    dict(attention="sigmoid", qk_norm=True, attn_norm="hybrid"),
    dict(attention="sigmoid", sigmoid_bias=0.0, attn_norm="layerscale"),
    dict(attention="softmax", qk_norm=True, attn_norm="hybrid"),
    dict(attention="softmax", attn_norm="layerscale"),
])
def test_forward_matches_hand_written_layer(opts):
    torch.manual_seed(0)
    model = TinyLM(TinyLMConfig(d_model=24, n_layers=1, n_heads=3, d_ff=40, max_seq_len=16,
                                **opts)).double()
    _randomise(model, 1)
    idx = torch.randint(0, 256, (2, 11))
    with torch.no_grad():
        got = model(idx)
    # the RoPE tables are float32 buffers: agreement to float32 rounding
    torch.testing.assert_close(got, _manual_logits(model, idx), rtol=1e-5, atol=1e-6)


def _old_forward(model, idx):
    """TinyLM's forward as written before the options existed (same torch calls, same order)."""
    from sciml_toolbox.nn.attention import sigmoid_attention
    from sciml_toolbox.nn.lm import apply_rope

    n = idx.shape[1]
    cos, sin = model.rope_cos[:n], model.rope_sin[:n]
    x = model.embed(idx)
    for blk in model.blocks:
        at = blk.attn
        h = blk.norm1(x)
        b, _, d = h.shape
        q, k, v = at.qkv(h).view(b, n, 3, at.n_heads, d // at.n_heads).permute(2, 0, 3, 1, 4)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if model.config.attention == "sigmoid":
            y = sigmoid_attention(q, k, v, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=0.0)
        x = x + at.out(y.transpose(1, 2).reshape(b, n, d))
        x = x + blk.proj(F.gelu(blk.fc(blk.norm2(x))))
    return model.head(model.norm(x))


@pytest.mark.parametrize("attention", ["softmax", "sigmoid"])
def test_default_config_is_unchanged(attention):
    cfg = TinyLMConfig(d_model=32, n_layers=2, n_heads=2, attention=attention)
    torch.manual_seed(3)
    model = TinyLM(cfg)
    keys = {f"blocks.{i}.{s}" for i in range(2) for s in (
        "norm1.weight", "attn.qkv.weight", "attn.out.weight", "norm2.weight", "fc.weight",
        "proj.weight")} | {"embed.weight", "norm.weight", "head.weight"}
    assert set(model.state_dict()) == keys  # old checkpoints load with strict=True
    idx = torch.randint(0, 256, (2, 20))
    with torch.no_grad():
        assert torch.equal(model(idx), _old_forward(model, idx))
    # an old config dict (without the new fields) builds the same model
    old = {k: v for k, v in cfg.to_dict().items()
           if k not in ("sigmoid_bias", "qk_norm", "attn_norm", "layerscale_init")}
    assert TinyLMConfig(**old) == cfg


@pytest.mark.parametrize("opts", [dict(qk_norm=True), dict(attn_norm="hybrid"),
                                  dict(attn_norm="layerscale", qk_norm=True)])
def test_parameter_count_with_options(opts):
    cfg = TinyLMConfig(d_model=48, n_layers=3, n_heads=4, d_ff=100, **opts)
    d, f, v, L, hd = 48, 100, 256, 3, 12
    per = 4 * d * d + 2 * d * f + 2 * d + (2 * hd if cfg.qk_norm else 0) + (
        d if cfg.attn_norm else 0)
    assert TinyLM(cfg).num_parameters() == v * d + L * per + d == cfg.n_params()


def test_layerscale_initial_value_and_bias_auto_is_minus_log_n():
    cfg = TinyLMConfig(d_model=16, n_layers=1, n_heads=2, attention="sigmoid",
                       attn_norm="layerscale", layerscale_init=1e-3)
    model = TinyLM(cfg)
    assert torch.equal(model.blocks[0].attn_norm.gamma, torch.full((16,), 1e-3))
    idx = torch.randint(0, 256, (1, 9))
    explicit = TinyLM(TinyLMConfig(**{**cfg.to_dict(), "sigmoid_bias": -math.log(9)}))
    explicit.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(model(idx), explicit(idx))


@pytest.mark.parametrize("kw, err, match", [
    (dict(sigmoid_bias="log"), ValueError, "sigmoid_bias"),
    (dict(sigmoid_bias=None), TypeError, "sigmoid_bias"),
    (dict(sigmoid_bias=float("nan")), ValueError, "sigmoid_bias"),
    (dict(qk_norm=1), TypeError, "qk_norm"),
    (dict(attn_norm="layernorm"), ValueError, "attn_norm"),
    (dict(layerscale_init=0.0), ValueError, "layerscale_init"),
])
def test_option_validation(kw, err, match):
    with pytest.raises(err, match=match):
        TinyLMConfig(**kw)
