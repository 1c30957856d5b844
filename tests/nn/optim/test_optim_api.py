"""Public API of sciml_toolbox.nn.optim: validation, state, dtypes, integrations."""

import io
import math

import pytest
import torch

from sciml_toolbox.nn.optim import AdEMAMix, SimplifiedAdEMAMix

PATHS = {"single": dict(foreach=False, fused=False), "foreach": dict(foreach=True, fused=False),
         "fused": dict(foreach=False, fused=True)}


def _params(seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=gen).to(dtype)) for s in
            [(6, 4), (9,), (2, 3, 5)]]


def _set_grads(params, seed):
    gen = torch.Generator().manual_seed(seed)
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen).to(p.dtype)


# --------------------------------------------------------------------------------------------
# hyperparameter validation: one test per case
@pytest.mark.parametrize("betas", [(1.0, 0.999, 0.9999), (0.9, -0.1, 0.9999),
                                   (0.9, 0.999, 1.0), (0.9, 0.999, float("nan"))])
def test_bad_betas(betas):
    with pytest.raises(ValueError, match="betas"):
        AdEMAMix(_params(), betas=betas)


def test_betas_wrong_length():
    with pytest.raises(ValueError, match="betas"):
        AdEMAMix(_params(), betas=(0.9, 0.999))
    with pytest.raises(ValueError, match="betas"):
        SimplifiedAdEMAMix(_params(), betas=(0.9, 0.999, 0.9999))


def test_bad_alpha():
    with pytest.raises(ValueError, match="alpha"):
        AdEMAMix(_params(), alpha=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        AdEMAMix(_params(), alpha=float("inf"))


@pytest.mark.parametrize("name", ["T_alpha", "T_beta3"])
def test_bad_warmup_length(name):
    with pytest.raises(ValueError, match=name):
        AdEMAMix(_params(), **{name: 0})
    with pytest.raises(TypeError, match=name):
        AdEMAMix(_params(), **{name: 10.5})


def test_bad_T_beta1():
    with pytest.raises(ValueError, match="T_beta1"):
        SimplifiedAdEMAMix(_params(), T_beta1=-3)


def test_bad_min_beta1():
    with pytest.raises(ValueError, match="min_beta1"):
        SimplifiedAdEMAMix(_params(), min_beta1=1.0)


def test_bad_lr():
    with pytest.raises(ValueError, match="lr"):
        AdEMAMix(_params(), lr=-1e-3)
    with pytest.raises(TypeError, match="lr"):
        AdEMAMix(_params(), lr="0.1")


def test_bad_eps():
    with pytest.raises(ValueError, match="eps"):
        AdEMAMix(_params(), eps=0.0)


def test_bad_weight_decay():
    with pytest.raises(ValueError, match="weight_decay"):
        AdEMAMix(_params(), weight_decay=-0.1)


def test_foreach_and_fused_exclusive():
    with pytest.raises(ValueError, match="foreach and fused"):
        AdEMAMix(_params(), foreach=True, fused=True)


def test_fused_rejects_float64():
    with pytest.raises(ValueError, match="fused"):
        AdEMAMix(_params(dtype=torch.float64), fused=True)


def test_param_group_override_is_validated():
    p1, p2 = _params()[:2]
    with pytest.raises(ValueError, match="betas"):
        AdEMAMix([{"params": [p1]}, {"params": [p2], "betas": (0.9, 0.999, 1.5)}])


def test_sparse_gradient_is_a_clear_error():
    emb = torch.nn.Embedding(10, 3, sparse=True)
    dense = torch.nn.Linear(3, 2)
    opt = AdEMAMix([*dense.parameters(), *emb.parameters()])
    dense(emb(torch.tensor([1, 2]))).sum().backward()
    before = dense.weight.detach().clone()
    with pytest.raises(TypeError, match="sparse gradients"):
        opt.step()
    # nothing was updated before the error
    assert torch.equal(dense.weight, before) and len(opt.state) == 0


# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("beta1,expected", [(0.9, 3), (0.0, 2)])
def test_number_of_state_buffers(path, beta1, expected):
    params = _params()
    opt = AdEMAMix(params, betas=(beta1, 0.999, 0.9999), **PATHS[path])
    _set_grads(params, 1)
    opt.step()
    for p in params:
        bufs = [v for v in opt.state[p].values() if isinstance(v, torch.Tensor)
                and v.shape == p.shape]
        assert len(bufs) == expected
        assert opt.state[p]["step"].item() == 1


def test_simplified_has_two_buffers():
    params = _params()
    opt = SimplifiedAdEMAMix(params)
    _set_grads(params, 1)
    opt.step()
    for p in params:
        assert sum(v.shape == p.shape for v in opt.state[p].values()) == 2


def test_params_without_grad_are_untouched():
    params = _params()
    before = params[1].detach().clone()
    opt = AdEMAMix(params)
    _set_grads(params, 1)
    params[1].grad = None
    opt.step()
    assert torch.equal(params[1].detach(), before)
    assert params[1] not in opt.state


def test_param_groups_use_their_own_hyperparameters():
    """A group's own lr and alpha are used: compare with two separate optimizers."""
    a, b = _params(), _params()
    opt = AdEMAMix([{"params": a[:2], "lr": 1e-2, "alpha": 2.0},
                    {"params": a[2:], "T_alpha": 5}], lr=1e-3)
    o1 = AdEMAMix(b[:2], lr=1e-2, alpha=2.0)
    o2 = AdEMAMix(b[2:], lr=1e-3, T_alpha=5)
    for s in range(4):
        _set_grads(a, s)
        _set_grads(b, s)
        opt.step()
        o1.step()
        o2.step()
    for p, q in zip(a, b, strict=True):
        assert torch.equal(p, q)


def test_closure_returns_loss():
    params = _params()
    opt = AdEMAMix(params)

    def closure():
        opt.zero_grad()
        loss = sum((p**2).sum() for p in params)
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert math.isfinite(loss.item())
    assert all(p.grad is not None for p in params)


def test_input_gradients_not_modified():
    params = _params()
    _set_grads(params, 3)
    grads = [p.grad.clone() for p in params]
    opt = AdEMAMix(params, maximize=True, weight_decay=0.1)
    opt.step()
    for p, g in zip(params, grads, strict=True):
        assert torch.equal(p.grad, g)


def test_minimizes_a_quadratic():
    torch.manual_seed(0)
    A = torch.randn(20, 10)
    x_star = torch.randn(10)
    b = A @ x_star
    x = torch.nn.Parameter(torch.zeros(10))
    opt = AdEMAMix([x], lr=0.05, betas=(0.9, 0.999, 0.999), alpha=2.0, T_alpha=200,
                   T_beta3=200)
    for _ in range(1500):
        opt.zero_grad()
        ((A @ x - b) ** 2).mean().backward()
        opt.step()
    assert torch.allclose(x.detach(), x_star, atol=1e-2)


# --------------------------------------------------------------------------------------------
# low precision
@pytest.mark.parametrize("path", ["single", "foreach"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_16bit_parameters_track_float32(path, dtype):
    """16-bit parameters with float32 moments: each step is the float32 step rounded to the
    parameter dtype (a bf16 EMA with beta3 = 0.9999 would not be: its increments round away)."""
    p32 = _params()
    p16 = [torch.nn.Parameter(p.detach().to(dtype)) for p in p32]
    ref = [torch.nn.Parameter(p.detach().to(dtype).float()) for p in p32]
    o16 = AdEMAMix(p16, lr=1e-2, T_alpha=20, T_beta3=20, **PATHS[path])
    o32 = AdEMAMix(ref, lr=1e-2, T_alpha=20, T_beta3=20, **PATHS[path])
    for s in range(20):
        _set_grads(ref, s)
        for p, q in zip(p16, ref, strict=True):
            p.grad = q.grad.to(dtype)
            q.grad = p.grad.float()
        o16.step()
        o32.step()
        with torch.no_grad():  # the float32 run sees the same rounded parameters
            for q in ref:
                q.copy_(q.to(dtype).float())
    for p in p16:
        st = o16.state[p]
        assert p.dtype == dtype
        assert st["exp_avg_slow"].dtype == torch.float32
    ulp = 2.0**-7 if dtype == torch.bfloat16 else 2.0**-10
    for p, q in zip(p16, ref, strict=True):
        rel = ((p.float() - q) / q.abs().clamp_min(1e-2)).abs().max().item()
        assert rel <= ulp, rel


def test_state_dict_keeps_float32_moments_of_bf16_params():
    params = _params(dtype=torch.bfloat16)
    opt = AdEMAMix(params)
    _set_grads(params, 0)
    opt.step()
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    opt2 = AdEMAMix(params)
    opt2.load_state_dict(torch.load(buf))
    for p in params:
        for k in ("exp_avg", "exp_avg_slow", "exp_avg_sq"):
            assert opt2.state[p][k].dtype == torch.float32
            assert torch.equal(opt2.state[p][k], opt.state[p][k])


def test_grad_scaler_fp16_autocast():
    """GradScaler (fp16 autocast on CPU) unscales before our step: same result as no scaling,
    and a step with an inf gradient is skipped."""
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 4)
    clone = torch.nn.Linear(8, 4)
    clone.load_state_dict(model.state_dict())
    opt = AdEMAMix(model.parameters(), lr=1e-2)
    opt_ref = AdEMAMix(clone.parameters(), lr=1e-2)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    x = torch.randn(16, 8)
    for _ in range(3):
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.float16):
            out = model(x)
        scaler.scale(out.float().pow(2).mean()).backward()
        scaler.step(opt)
        scaler.update()

        opt_ref.zero_grad()
        with torch.autocast("cpu", dtype=torch.float16):
            out = clone(x)
        out.float().pow(2).mean().backward()
        opt_ref.step()
    for p, q in zip(model.parameters(), clone.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6)
    # an overflowing step is skipped: parameters and step count unchanged
    before = [p.detach().clone() for p in model.parameters()]
    opt.zero_grad()
    scaler.scale(model(x).sum() * float("inf")).backward()
    scaler.step(opt)
    scaler.update()
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before, strict=True))
    assert opt.state[model.weight]["step"].item() == 3


def test_zero_alpha_and_wd_only_group():
    """alpha = 0 and beta1 = 0 leave only the gradient term: AdEMAMix reduces to RMSprop-like
    Adam with beta1 = 0 (compare with torch.optim.AdamW)."""
    a, b = _params(), _params()
    opt = AdEMAMix(a, lr=1e-2, betas=(0.0, 0.99, 0.999), alpha=0.0, weight_decay=0.1)
    ref = torch.optim.AdamW(b, lr=1e-2, betas=(0.0, 0.99), weight_decay=0.1)
    for s in range(10):
        _set_grads(a, s)
        _set_grads(b, s)
        opt.step()
        ref.step()
    for p, q in zip(a, b, strict=True):
        assert torch.allclose(p, q, atol=1e-6)


@pytest.mark.parametrize("path", list(PATHS))
def test_alpha_zero_matches_adamw(path):
    """With alpha = 0 the slow EMA is unused and AdEMAMix is AdamW exactly ([1], section 3)."""
    a, b = _params(), _params()
    opt = AdEMAMix(a, lr=1e-2, alpha=0.0, weight_decay=0.05, **PATHS[path])
    ref = torch.optim.AdamW(b, lr=1e-2, weight_decay=0.05, foreach=False)
    for s in range(30):
        _set_grads(a, s)
        _set_grads(b, s)
        opt.step()
        ref.step()
    for p, q in zip(a, b, strict=True):
        assert torch.allclose(p, q, atol=2e-6)


def test_fused_rejects_non_contiguous_parameters():
    p = torch.nn.Parameter(torch.randn(4, 6).t())
    opt = AdEMAMix([p], fused=True)
    p.grad = torch.randn(6, 4)
    with pytest.raises(ValueError, match="contiguous"):
        opt.step()


# --------------------------------------------------------------------------------------------
# complex parameters: optimized as torch.view_as_real of themselves, as torch.optim.Adam does
@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("cls, kw", [(AdEMAMix, dict(alpha=2.0, T_alpha=3, T_beta3=3)),
                                     (AdEMAMix, dict(betas=(0.0, 0.99, 0.999))),
                                     (SimplifiedAdEMAMix, dict(alpha=1.0, T_beta1=3,
                                                               bias_correction1=True))])
def test_complex_params_match_view_as_real_run(cls, kw, path):
    gen = torch.Generator().manual_seed(0)
    z = [torch.randn(s, dtype=torch.complex64, generator=gen) for s in [(3, 4), (5,)]]
    pc = [torch.nn.Parameter(t.clone()) for t in z]
    pr = [torch.nn.Parameter(torch.view_as_real(t).clone()) for t in z]
    oc = cls(pc, lr=0.1, weight_decay=0.1, **kw, **PATHS[path])
    orr = cls(pr, lr=0.1, weight_decay=0.1, **kw, **PATHS[path])
    for _ in range(5):
        for a, b in zip(pc, pr, strict=True):
            g = torch.randn(a.shape, dtype=torch.complex64, generator=gen)
            a.grad, b.grad = g, torch.view_as_real(g).clone()
        oc.step()
        orr.step()
    for a, b in zip(pc, pr, strict=True):
        assert a.dtype == torch.complex64
        torch.testing.assert_close(torch.view_as_real(a.detach()), b.detach(),
                                   rtol=1e-6, atol=1e-6)
    assert not torch.equal(pc[0].detach(), z[0])  # the parameters did move
