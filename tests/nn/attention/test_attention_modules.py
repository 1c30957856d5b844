"""SigmoidMultiheadAttention, alibi_slopes and apply_rope."""

import math

import pytest

torch = pytest.importorskip("torch")

from sciml_toolbox.nn.attention import (  # noqa: E402
    SigmoidMultiheadAttention,
    alibi_slopes,
    apply_rope,
    triton_available,
)


def _x(batch=2, n=11, d=32, seed=0):
    return torch.randn(batch, n, d, generator=torch.Generator().manual_seed(seed))


def _manual(m, x):
    """The module's forward written out with the O(N^2) formula (sigmoid or softmax)."""
    b, n, _ = x.shape
    h, hk, dh = m.n_heads, m.n_kv_heads, m.head_dim
    q = (x @ m.q_proj.weight.T).view(b, n, h, dh).transpose(1, 2)
    k = (x @ m.k_proj.weight.T).view(b, n, hk, dh).transpose(1, 2)
    v = (x @ m.v_proj.weight.T).view(b, n, hk, dh).transpose(1, 2)
    if m.q_norm is not None:  # RMSNorm with unit weight at init
        q = q / torch.sqrt(q.pow(2).mean(-1, keepdim=True) + 1e-6)
        k = k / torch.sqrt(k.pow(2).mean(-1, keepdim=True) + 1e-6)
    if m.position == "rope":
        q, k = apply_rope(q), apply_rope(k)
    k, v = k.repeat_interleave(h // hk, 1), v.repeat_interleave(h // hk, 1)
    s = q @ k.transpose(-1, -2) / math.sqrt(dh)
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    if m.position == "alibi":
        s = s - alibi_slopes(h)[:, None, None] * (i - j).abs()
    if m.kind == "sigmoid":
        p = torch.sigmoid(s - math.log(n)) * (j <= i)
    else:
        p = torch.softmax(s.masked_fill(j > i, float("-inf")), -1)
    o = (p @ v).transpose(1, 2).reshape(b, n, h * dh) @ m.out_proj.weight.T
    if m.output_norm == "hybrid":
        o = o / torch.sqrt(o.pow(2).mean(-1, keepdim=True) + 1e-6)
    if m.output_norm == "layerscale":
        o = o * m.gamma
    return o


@pytest.mark.parametrize("position", ["rope", "alibi", None])
@pytest.mark.parametrize("output_norm", ["hybrid", "layerscale", None])
@pytest.mark.parametrize("kind", ["sigmoid", "softmax"])
def test_module_matches_manual_formula(position, output_norm, kind):
    torch.manual_seed(0)
    m = SigmoidMultiheadAttention(32, 4, 2, position=position, output_norm=output_norm,
                                  kind=kind, layerscale_init=0.5)
    x = _x()
    torch.testing.assert_close(m(x), _manual(m, x), rtol=1e-4, atol=1e-5)


def test_causal_module_ignores_future_tokens():
    torch.manual_seed(0)
    m = SigmoidMultiheadAttention(32, 4, attn_bias=-1.0)
    x = _x()
    x2 = x.clone()
    x2[:, 7:] += 1.0
    out, out2 = m(x), m(x2)
    torch.testing.assert_close(out[:, :7], out2[:, :7])
    assert not torch.allclose(out[:, 7:], out2[:, 7:])
    m_full = SigmoidMultiheadAttention(32, 4, attn_bias=-1.0, is_causal=False)
    assert not torch.allclose(m_full(x)[:, :7], m_full(x2)[:, :7])


def test_module_backward_and_layerscale_init():
    torch.manual_seed(0)
    m = SigmoidMultiheadAttention(32, 4, output_norm="layerscale", layerscale_init=1e-4)
    x = _x().requires_grad_()
    out = m(x)
    # LayerScale starts the branch near zero: |out| <= 1e-4 * |unscaled|
    assert out.abs().max() < 1e-3
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    for p in m.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


def test_hybrid_norm_output_has_unit_rms():
    torch.manual_seed(0)
    m = SigmoidMultiheadAttention(32, 4, output_norm="hybrid")
    rms = m(_x()).pow(2).mean(-1).sqrt()
    torch.testing.assert_close(rms, torch.ones_like(rms), rtol=1e-3, atol=1e-3)


def test_module_triton_backend_matches_torch():
    pytest.importorskip("triton")
    if not triton_available("cpu"):
        pytest.skip("Triton not in interpreter mode")
    torch.manual_seed(0)
    m = SigmoidMultiheadAttention(64, 4, 2, backend="torch")
    x = _x(n=21, d=64)
    ref = m(x)
    m.backend = "triton"
    torch.testing.assert_close(m(x), ref, rtol=1e-4, atol=1e-5)


def test_alibi_slopes_power_of_two():
    # Press et al. (2022): 8 heads -> 1/2, 1/4, ..., 1/256
    torch.testing.assert_close(alibi_slopes(8), 2.0 ** -torch.arange(1.0, 9.0))


def test_alibi_slopes_non_power_of_two():
    s = alibi_slopes(6)
    torch.testing.assert_close(s[:4], 2.0 ** (-2.0 * torch.arange(1.0, 5.0)))
    torch.testing.assert_close(s[4:], torch.tensor([2.0 ** -1, 2.0 ** -3]))


def test_rope_preserves_norm_and_depends_on_relative_position():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(1, 1, 1, 16, generator=g, dtype=torch.float64)
    k = torch.randn(1, 1, 1, 16, generator=g, dtype=torch.float64)

    def rot(x, pos):
        return apply_rope(x, positions=torch.tensor([pos]))

    torch.testing.assert_close(rot(q, 5).norm(), q.norm())
    dot = (rot(q, 7) * rot(k, 3)).sum()
    torch.testing.assert_close(dot, (rot(q, 104) * rot(k, 100)).sum())
    assert not torch.allclose(dot, (rot(q, 7) * rot(k, 2)).sum())
    torch.testing.assert_close(rot(q, 0), q)


def test_rope_odd_dim():
    with pytest.raises(ValueError, match="even head dim"):
        apply_rope(torch.randn(1, 1, 3, 5))


def test_bad_heads():
    with pytest.raises(ValueError, match="n_heads"):
        SigmoidMultiheadAttention(30, 4)
    with pytest.raises(ValueError, match="n_kv_heads"):
        SigmoidMultiheadAttention(32, 4, 3)


def test_bad_options():
    with pytest.raises(ValueError, match="position"):
        SigmoidMultiheadAttention(32, 4, position="learned")
    with pytest.raises(ValueError, match="output_norm"):
        SigmoidMultiheadAttention(32, 4, output_norm="post")
    with pytest.raises(ValueError, match="kind"):
        SigmoidMultiheadAttention(32, 4, kind="relu")
    with pytest.raises(ValueError, match="layerscale_init"):
        SigmoidMultiheadAttention(32, 4, output_norm="layerscale", layerscale_init=0.0)
    with pytest.raises(ValueError, match="even head dim"):
        SigmoidMultiheadAttention(12, 4, position="rope")
    with pytest.raises(TypeError, match="is_causal"):
        SigmoidMultiheadAttention(32, 4, is_causal="yes")


def test_bad_input_shape():
    m = SigmoidMultiheadAttention(32, 4)
    with pytest.raises(ValueError, match="x must be a tensor of shape"):
        m(torch.randn(2, 5, 16))
    with pytest.raises(ValueError, match="x must be a tensor of shape"):
        m(torch.randn(5, 32))


@pytest.mark.slow
def test_demo_runs(tmp_path):
    from sciml_toolbox.tour.attention import demo

    out = demo(tmp_path, "cpu")
    assert (tmp_path / "attention.png").exists()
    assert out["relerr_chunked_vs_naive"] < 1e-5
    # b = -log n keeps the attention mass of order one; b = 0 lets it grow like n / 2
    assert out["row_mass_blogn_n4096"] < 3.0 < 1000.0 < out["row_mass_b0_n4096"]


def test_precomputed_rope_tables_match_builtin():
    """A model sharing one RoPE table across layers can pass (cos, sin) of shape (N, d/2)."""
    torch.manual_seed(0)
    m = SigmoidMultiheadAttention(32, 4, position="rope", rope_base=500.0)
    x = _x(n=11)
    dh = m.head_dim
    ang = torch.arange(16.0)[:, None] * 500.0 ** (-torch.arange(0, dh, 2) / dh)[None, :]
    torch.testing.assert_close(m(x, ang.cos(), ang.sin()), m(x), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="cos and sin"):
        m(x, ang.cos()[:5], ang.sin()[:5])
