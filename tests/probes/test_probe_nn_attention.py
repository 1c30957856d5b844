"""Bad-input probes of sciml_toolbox.nn.attention: every public name, each case a clear error
(or, for results, checked against an independent computation)."""

import math

import pytest
import torch

from sciml_toolbox.nn.attention import (
    SigmoidMultiheadAttention,
    alibi_slopes,
    apply_rope,
    hf_sigmoid_attention_forward,
    register_hf_attention,
    sigmoid_attention,
    triton_available,
)

PROBED = {"sciml_toolbox.nn.attention": {
    "sigmoid_attention", "triton_available", "SigmoidMultiheadAttention", "alibi_slopes",
    "apply_rope", "register_hf_attention", "hf_sigmoid_attention_forward"}}

NAN = float("nan")


def _qkv(b=1, h=2, n=3, d=4, dtype=torch.float32):
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(b, h, n, d, generator=gen, dtype=dtype) for _ in range(3)]


def _naive(q, k, v, bias, scale, causal=False):
    s = q.double() @ k.double().transpose(-1, -2) * scale + bias
    p = torch.sigmoid(s)
    if causal:
        p = p * torch.ones(s.shape[-2:], dtype=torch.bool).tril()
    return (p @ v.double()).to(q.dtype)


# -------------------------------------------------------------------------- sigmoid_attention
@pytest.mark.parametrize("kw, match", [
    (dict(bias=NAN), "bias"), (dict(bias=torch.ones(3)), "bias"), (dict(scale=NAN), "scale"),
    (dict(scale=-1.0), "scale"), (dict(backend="foo"), "backend"),
    (dict(chunk_size=0), "chunk_size"), (dict(is_causal="yes"), "is_causal"),
    (dict(window=-1), "window"), (dict(window="a"), "window"),
    (dict(alibi_slopes=torch.ones(3)), "alibi_slopes"),
    (dict(alibi_slopes=torch.full((2,), NAN)), "alibi_slopes"),
])
def test_sigmoid_attention_bad_options(kw, match):
    q, k, v = _qkv()
    with pytest.raises((ValueError, TypeError), match=match):
        sigmoid_attention(q, k, v, **kw)


@pytest.mark.parametrize("change, match", [
    (lambda q, k, v: (q.long(), k.long(), v.long()), "q"),
    (lambda q, k, v: (q.cfloat(), k.cfloat(), v.cfloat()), "q"),
    (lambda q, k, v: (q[0], k[0], v[0]), "q"),
    (lambda q, k, v: (q, k[..., :2], v), "k"),
    (lambda q, k, v: (q, k, v.double()), "v"),
    (lambda q, k, v: (q, k[:, :1, :2], v[:, :1]), "k and v"),
    (lambda q, k, v: (q[:, :, :0], k, v), "N_q"),
    (lambda q, k, v: (q, k[:, :1].repeat(1, 3, 1, 1), v[:, :1].repeat(1, 3, 1, 1)), "heads"),
    (lambda q, k, v: (q.numpy(), k, v), "q"),
])
def test_sigmoid_attention_bad_tensors(change, match):
    with pytest.raises((ValueError, TypeError), match=match):
        sigmoid_attention(*change(*_qkv()))


def test_sigmoid_attention_one_position_matches_naive():
    q, k, v = _qkv(n=1)
    out = sigmoid_attention(q, k, v, is_causal=True)
    # N_k = 1: the default bias is -log 1 = 0
    torch.testing.assert_close(out, _naive(q, k, v, 0.0, 0.5, causal=True))
    q, k, v = _qkv(b=0)
    assert sigmoid_attention(q, k, v).shape == (0, 2, 3, 4)


def test_sigmoid_attention_triton_on_plain_cpu_is_a_clear_error_or_runs():
    q, k, v = _qkv()
    if triton_available("cpu"):  # TRITON_INTERPRET=1: the kernel runs and matches the formula
        with pytest.raises(ValueError, match="head dim"):
            sigmoid_attention(q, k, v, backend="triton")  # d = 4 < 16
        q, k, v = _qkv(d=16)
        out = sigmoid_attention(q, k, v, backend="triton")
        torch.testing.assert_close(out, _naive(q, k, v, -math.log(3), 0.25), rtol=1e-4,
                                   atol=1e-5)
    else:
        with pytest.raises(ValueError, match="backend"):
            sigmoid_attention(q, k, v, backend="triton")


def test_triton_available_bad_device():
    with pytest.raises(ValueError, match="device"):
        triton_available("foo")
    assert isinstance(triton_available("cpu"), bool)


# -------------------------------------------------------------------------- helpers
def test_alibi_slopes_bad_input_and_closed_form():
    with pytest.raises(ValueError, match="n_heads"):
        alibi_slopes(0)
    with pytest.raises(TypeError, match="dtype"):
        alibi_slopes(4, dtype=torch.int64)
    torch.testing.assert_close(alibi_slopes(1), torch.tensor([2.0 ** -8]))


@pytest.mark.parametrize("kw, match", [
    (dict(base=0), "base"), (dict(base=-2.0), "base"), (dict(base=NAN), "base"),
    (dict(positions=torch.arange(2)), "positions"),
    (dict(positions=torch.tensor([0.0, NAN, 1.0])), "positions"),
])
def test_apply_rope_bad_options(kw, match):
    q, _, _ = _qkv()
    with pytest.raises(ValueError, match=match):
        apply_rope(q, **kw)


def test_apply_rope_bad_x_and_rotation():
    with pytest.raises(TypeError, match="x"):
        apply_rope(torch.ones(1, 1, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="head dim"):
        apply_rope(torch.ones(1, 1, 3, 5))
    with pytest.raises(TypeError, match="x"):
        apply_rope([[1.0, 2.0]])
    # d = 2, base b: position p rotates (x0, x1) by the angle p
    x = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]], dtype=torch.float64)
    out = apply_rope(x, base=3.0)
    torch.testing.assert_close(out[0, 0, 1], torch.tensor([math.cos(1.0), math.sin(1.0)],
                                                          dtype=torch.float64))


# -------------------------------------------------------------------------- module
@pytest.mark.parametrize("args, kw, match", [
    ((6, 4), {}, "n_heads"), ((8, 2), dict(attn_bias=NAN), "attn_bias"),
    ((8, 2), dict(window=-1), "window"), ((8, 2), dict(is_causal="x"), "is_causal"),
    ((6, 2), {}, "head dim"), ((8, 2), dict(n_kv_heads=3), "n_kv_heads"),
    ((8, 2), dict(output_norm="foo"), "output_norm"), ((8, 2), dict(position="x"), "position"),
    ((8, 2), dict(kind="x"), "kind"), ((8, 2), dict(rope_base=0.0), "rope_base"),
    ((8, 2), dict(output_norm="layerscale", layerscale_init=NAN), "layerscale_init"),
    ((0, 2), {}, "d_model"), ((8, 2), dict(kind="softmax", window=2), "window"),
])
def test_module_bad_construction(args, kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        SigmoidMultiheadAttention(*args, **kw)


def test_module_bad_forward():
    m = SigmoidMultiheadAttention(8, 2)
    with pytest.raises(ValueError, match="x"):
        m(torch.randn(2, 3, 7))
    with pytest.raises(TypeError, match="x"):
        m(torch.ones(2, 3, 8, dtype=torch.long))
    with pytest.raises(TypeError, match="x"):
        m(torch.ones(2, 3, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="cos"):
        m(torch.ones(2, 3, 8), torch.ones(3, 2))


def test_module_one_token_matches_formula():
    # one position, no QK-norm, no position: the output is out_proj(sigmoid(s + b) v) with
    # b = -log 1 = 0 and s = q.k / sqrt(d)
    torch.manual_seed(0)
    m = SigmoidMultiheadAttention(4, 1, qk_norm=False, output_norm=None, position=None)
    x = torch.randn(1, 1, 4)
    q, k, v = m.q_proj(x), m.k_proj(x), m.v_proj(x)
    s = (q * k).sum(-1, keepdim=True) / 2.0
    expected = m.out_proj(torch.sigmoid(s) * v)
    torch.testing.assert_close(m(x), expected)


# -------------------------------------------------------------------------- transformers glue
class _Attn(torch.nn.Module):
    is_causal = False


@pytest.mark.parametrize("mask, match", [
    (torch.ones(1, 1, 3, 3, dtype=torch.long), "attention_mask"),
    (torch.ones(1, 1, 3, 2, dtype=torch.bool), "attention_mask"),
    (torch.ones(3, 3, dtype=torch.bool), "attention_mask"),
    (torch.full((1, 1, 3, 3), NAN), "attention_mask"),
    ([[True]], "attention_mask"),
])
def test_hf_forward_bad_mask(mask, match):
    q, k, v = _qkv()
    with pytest.raises((ValueError, TypeError), match=match):
        hf_sigmoid_attention_forward(_Attn(), q, k, v, mask)


def test_hf_forward_bad_tensors_and_options():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="query"):
        hf_sigmoid_attention_forward(_Attn(), q[0], k[0], v[0], None)
    with pytest.raises(TypeError, match="scaling"):
        hf_sigmoid_attention_forward(_Attn(), q, k, v, None, scaling="a")
    with pytest.raises(ValueError, match="dropout"):
        hf_sigmoid_attention_forward(_Attn().train(), q, k, v, None, dropout=0.1)


def test_hf_forward_bool_and_additive_masks_match_naive():
    q, k, v = _qkv()
    keep = torch.tensor([[1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=torch.bool)[None, None]
    add = torch.zeros(keep.shape).masked_fill(~keep, torch.finfo(torch.float32).min)
    b, s = -math.log(3), 0.5
    ref = (torch.sigmoid(q.double() @ k.double().transpose(-1, -2) * s + b) * keep) @ v.double()
    for mask in (keep, add):
        out, w = hf_sigmoid_attention_forward(_Attn(), q, k, v, mask)
        assert w is None
        torch.testing.assert_close(out, ref.float().transpose(1, 2))


def test_register_hf_attention_bad_name():
    with pytest.raises(TypeError, match="name"):
        register_hf_attention("")
