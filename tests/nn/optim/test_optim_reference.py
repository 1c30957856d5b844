"""Independent checks of AdEMAMix and Simplified AdEMAMix.

The reference updates below are written from the published formulas (Pagliardini, Ablin &
Grangier 2024, Algorithm 1 and section 3.1 for the schedulers; Morwani et al. 2025 for the
simplified variant), step by step and per element, without calling anything from the package
except the optimizer under test.
"""

import io
import math

import pytest
import torch

from sciml_toolbox.nn.optim import (
    AdEMAMix,
    SimplifiedAdEMAMix,
    ademamix_alpha_scheduler,
    ademamix_beta3_scheduler,
)

PATHS = ["single", "foreach", "fused"]


def _path_kwargs(path):
    return {
        "single": {"foreach": False, "fused": False},
        "foreach": {"foreach": True, "fused": False},
        "fused": {"foreach": False, "fused": True},
    }[path]


# --------------------------------------------------------------------------------------------
# the published schedulers, written as "linear in half-life" (paper, section 3.1)
def _half_life(beta):
    # number of steps for a weight beta**k to drop to 1/2; beta = 0 forgets at once
    return 0.0 if beta == 0.0 else math.log(0.5) / math.log(beta)


def _ref_beta(t, beta_end, beta_start, T):
    if T is None or t >= T:
        return beta_end
    a = t / T
    h = (1 - a) * _half_life(beta_start) + a * _half_life(beta_end)
    return 0.5 ** (1.0 / h)


def _ref_alpha(t, alpha, T):
    if T is None:
        return alpha
    return alpha * min(t / T, 1.0)


# --------------------------------------------------------------------------------------------
# reference optimizers, one flat tensor per parameter, as in Algorithm 1
def _ref_ademamix(params0, grads, lrs, *, betas, alpha, T_alpha, T_beta3, eps, wd, maximize=False):
    b1, b2, b3 = betas
    theta = [p.clone() for p in params0]
    m1 = [torch.zeros_like(p) for p in theta]
    m2 = [torch.zeros_like(p) for p in theta]
    nu = [torch.zeros_like(p) for p in theta]
    for k, gs in enumerate(grads):
        t = k + 1
        a_t = _ref_alpha(t, alpha, T_alpha)
        b3_t = _ref_beta(t, b3, b1, T_beta3)
        for i, g in enumerate(gs):
            g = -g if maximize else g
            m1[i] = b1 * m1[i] + (1 - b1) * g
            m2[i] = b3_t * m2[i] + (1 - b3_t) * g
            nu[i] = b2 * nu[i] + (1 - b2) * g * g
            m1_hat = m1[i] / (1 - b1**t)
            nu_hat = nu[i] / (1 - b2**t)
            theta[i] = theta[i] - lrs[k] * (
                (m1_hat + a_t * m2[i]) / (torch.sqrt(nu_hat) + eps) + wd * theta[i]
            )
    return theta


def _ref_simplified(params0, grads, lrs, *, betas, alpha, T_beta1, min_beta1, eps, wd,
                    bias_correction1=False):
    b1, b2 = betas
    theta = [p.clone() for p in params0]
    m = [torch.zeros_like(p) for p in theta]
    nu = [torch.zeros_like(p) for p in theta]
    norm = 0.0
    for k, gs in enumerate(grads):
        t = k + 1
        b1_t = _ref_beta(t, b1, min_beta1, T_beta1)
        norm = b1_t * norm + 1.0  # sum of the momentum weights
        for i, g in enumerate(gs):
            m[i] = b1_t * m[i] + g  # "theory style": no (1 - beta1)
            nu[i] = b2 * nu[i] + (1 - b2) * g * g
            num = alpha * g + m[i]
            if bias_correction1:
                num = num / norm
            u = num / (torch.sqrt(nu[i] / (1 - b2**t)) + eps)
            theta[i] = theta[i] - lrs[k] * (u + wd * theta[i])
    return theta


# --------------------------------------------------------------------------------------------
def _problem(seed, dtype=torch.float32, n_steps=100, shapes=((7, 5), (13,), (3, 4, 2))):
    gen = torch.Generator().manual_seed(seed)
    params0 = [0.5 * torch.randn(s, generator=gen, dtype=dtype) for s in shapes]
    # gradients of varied scale so that nu spans several decades (eps matters for some)
    grads = [
        [torch.randn(s, generator=gen, dtype=dtype) * 10.0 ** torch.randint(-4, 1, (1,),
                                                                          generator=gen).item()
         for s in shapes]
        for _ in range(n_steps)
    ]
    return params0, grads


def _run(opt_cls, params0, grads, lrs=None, scheduler=None, **kw):
    params = [torch.nn.Parameter(p.clone()) for p in params0]
    opt = opt_cls(params, **kw)
    for k, gs in enumerate(grads):
        if lrs is not None:
            for group in opt.param_groups:
                group["lr"] = lrs[k]
        for p, g in zip(params, gs, strict=True):
            p.grad = g.clone()
        opt.step()
    return [p.detach() for p in params], opt


CONFIGS = {
    "plain": dict(betas=(0.9, 0.999, 0.9999), alpha=5.0, T_alpha=None, T_beta3=None, wd=0.0),
    "warmups+wd": dict(betas=(0.9, 0.999, 0.9999), alpha=8.0, T_alpha=60, T_beta3=80, wd=0.1),
    "beta1=0": dict(betas=(0.0, 0.99, 0.999), alpha=3.0, T_alpha=100, T_beta3=100, wd=0.05),
    "short-beta3": dict(betas=(0.8, 0.95, 0.999), alpha=2.0, T_alpha=None, T_beta3=30, wd=0.0),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_ademamix_matches_reference_fp32(path, config):
    c = CONFIGS[config]
    params0, grads = _problem(1)
    lrs = [1e-2] * len(grads)
    ref = _ref_ademamix(params0, grads, lrs, betas=c["betas"], alpha=c["alpha"],
                        T_alpha=c["T_alpha"], T_beta3=c["T_beta3"], eps=1e-8, wd=c["wd"])
    out, _ = _run(AdEMAMix, params0, grads, lr=1e-2, betas=c["betas"], alpha=c["alpha"],
                  T_alpha=c["T_alpha"], T_beta3=c["T_beta3"], eps=1e-8,
                  weight_decay=c["wd"], **_path_kwargs(path))
    err = max((a - b).abs().max().item() for a, b in zip(out, ref, strict=True))
    assert err < 1e-6, err
    # the run moved the parameters well beyond the tolerance
    moved = max((a - b).abs().max().item() for a, b in zip(out, params0, strict=True))
    assert moved > 1e-2


@pytest.mark.parametrize("path", ["single", "foreach"])
def test_ademamix_matches_reference_fp64_tightly(path):
    c = CONFIGS["warmups+wd"]
    params0, grads = _problem(2, dtype=torch.float64)
    lrs = [3e-3 * (1 + math.cos(math.pi * k / 100)) for k in range(100)]  # a varying lr
    ref = _ref_ademamix(params0, grads, lrs, betas=c["betas"], alpha=c["alpha"],
                        T_alpha=c["T_alpha"], T_beta3=c["T_beta3"], eps=1e-8, wd=c["wd"])
    out, _ = _run(AdEMAMix, params0, grads, lrs=lrs, betas=c["betas"], alpha=c["alpha"],
                  T_alpha=c["T_alpha"], T_beta3=c["T_beta3"], eps=1e-8,
                  weight_decay=c["wd"], **_path_kwargs(path))
    err = max((a - b).abs().max().item() for a, b in zip(out, ref, strict=True))
    assert err < 1e-12, err


@pytest.mark.parametrize("path", PATHS)
def test_ademamix_maximize_matches_reference(path):
    params0, grads = _problem(3, n_steps=30)
    lrs = [1e-2] * 30
    ref = _ref_ademamix(params0, grads, lrs, betas=(0.9, 0.999, 0.999), alpha=5.0, T_alpha=10,
                        T_beta3=10, eps=1e-8, wd=0.0, maximize=True)
    out, _ = _run(AdEMAMix, params0, grads, lr=1e-2, betas=(0.9, 0.999, 0.999), alpha=5.0,
                  T_alpha=10, T_beta3=10, maximize=True, **_path_kwargs(path))
    err = max((a - b).abs().max().item() for a, b in zip(out, ref, strict=True))
    assert err < 1e-6, err


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "kw",
    [
        dict(betas=(0.99, 0.95), alpha=0.0, T_beta1=None, min_beta1=0.9, wd=0.0),
        dict(betas=(0.999, 0.95), alpha=10.0, T_beta1=100, min_beta1=0.9, wd=0.1),
        dict(betas=(0.99, 0.999), alpha=2.0, T_beta1=50, min_beta1=0.8, wd=0.0, bc1=True),
    ],
    ids=["no-warmup", "warmup+wd", "bias-correction"],
)
def test_simplified_matches_reference_fp32(path, kw):
    params0, grads = _problem(4)
    lrs = [1e-3] * len(grads)
    bc1 = kw.get("bc1", False)
    ref = _ref_simplified(params0, grads, lrs, betas=kw["betas"], alpha=kw["alpha"],
                          T_beta1=kw["T_beta1"], min_beta1=kw["min_beta1"], eps=1e-8,
                          wd=kw["wd"], bias_correction1=bc1)
    out, _ = _run(SimplifiedAdEMAMix, params0, grads, lr=1e-3, betas=kw["betas"],
                  alpha=kw["alpha"], T_beta1=kw["T_beta1"], min_beta1=kw["min_beta1"],
                  weight_decay=kw["wd"], bias_correction1=bc1, **_path_kwargs(path))
    err = max((a - b).abs().max().item() for a, b in zip(out, ref, strict=True))
    assert err < 1e-6, err


# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("T", [1, 7, 100, 4000])
def test_alpha_scheduler_closed_form(T):
    alpha = 8.0
    for t in [1, 2, T // 2 + 1, T - 1, T, T + 1, 10 * T]:
        if t < 1:
            continue
        expected = alpha * t / T if t < T else alpha
        assert ademamix_alpha_scheduler(t, alpha, T) == pytest.approx(expected, rel=1e-14)
    assert ademamix_alpha_scheduler(3, alpha, None) == alpha


@pytest.mark.parametrize("beta_start,beta_end", [(0.9, 0.9999), (0.9, 0.999), (0.0, 0.999),
                                                 (0.5, 0.99999)])
def test_beta3_scheduler_half_life_is_linear(beta_start, beta_end):
    T = 1000
    h0, h1 = _half_life(beta_start), _half_life(beta_end)
    for t in [1, 10, 250, 500, 999]:
        b = ademamix_beta3_scheduler(t, beta_end, beta_start, T)
        # the defining property: the half-life ln(1/2)/ln(beta) moves linearly in t
        h = math.log(0.5) / math.log(b)
        assert h == pytest.approx(h0 + t / T * (h1 - h0), rel=1e-9)
        assert beta_start <= b <= beta_end
    # the paper's closed form (section 3.1) at the midpoint, written out directly
    if beta_start > 0:
        lb, le = math.log(beta_start), math.log(beta_end)
        closed = math.exp(lb * le / (0.5 * le + 0.5 * lb))
        assert ademamix_beta3_scheduler(T // 2, beta_end, beta_start, T) == pytest.approx(
            closed, rel=1e-12)
    assert ademamix_beta3_scheduler(T, beta_end, beta_start, T) == beta_end
    assert ademamix_beta3_scheduler(5 * T, beta_end, beta_start, T) == beta_end
    assert ademamix_beta3_scheduler(3, beta_end, beta_start, None) == beta_end


def test_beta3_scheduler_is_monotone():
    vals = [ademamix_beta3_scheduler(t, 0.9999, 0.9, 500) for t in range(1, 600)]
    assert all(b <= c for b, c in zip(vals, vals[1:], strict=False))


# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("opt_name", ["ademamix", "simplified"])
@pytest.mark.parametrize("path", ["single", "foreach"])
def test_three_paths_agree_on_a_model(opt_name, path):
    """Autograd gradients of a small MLP: each path against the fused (Triton) path."""

    def train(p):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(),
                                    torch.nn.Linear(16, 1))
        if opt_name == "ademamix":
            opt = AdEMAMix(model.parameters(), lr=1e-2, T_alpha=20, T_beta3=20,
                           weight_decay=0.01, **_path_kwargs(p))
        else:
            opt = SimplifiedAdEMAMix(model.parameters(), lr=1e-3, alpha=2.0, T_beta1=20,
                                     **_path_kwargs(p))
        gen = torch.Generator().manual_seed(1)
        for _ in range(25):
            x = torch.randn(32, 6, generator=gen)
            y = torch.sin(x.sum(1, keepdim=True))
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            opt.step()
        return [q.detach().clone() for q in model.parameters()]

    a, b = train(path), train("fused")
    err = max((u - v).abs().max().item() for u, v in zip(a, b, strict=True))
    assert err < 1e-5, err


@pytest.mark.parametrize("path", PATHS)
def test_resume_mid_warmup_reproduces_trajectory(path):
    """train 50 + save + load into a fresh optimizer + train 50 == train 100."""
    # 50 + 50 steps (20 + 20 for the interpreted kernel), resumed in the middle of the warmups
    n = 40 if path == "fused" else 100
    params0, grads = _problem(5, n_steps=n)
    kw = dict(lr=1e-2, T_alpha=n, T_beta3=n, weight_decay=0.1, alpha=5.0, **_path_kwargs(path))
    full, _ = _run(AdEMAMix, params0, grads, **kw)

    half, opt = _run(AdEMAMix, params0, grads[: n // 2], **kw)
    buf = io.BytesIO()
    torch.save({"params": half, "opt": opt.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf)
    params = [torch.nn.Parameter(p.clone()) for p in ckpt["params"]]
    opt2 = AdEMAMix(params, **kw)
    opt2.load_state_dict(ckpt["opt"])
    for gs in grads[n // 2:]:
        for p, g in zip(params, gs, strict=True):
            p.grad = g.clone()
        opt2.step()
    err = max((a - b).abs().max().item() for a, b in zip(params, full, strict=True))
    assert err == 0.0, err


@pytest.mark.parametrize("path", PATHS)
def test_lr_scheduler_and_clipping_match_reference(path):
    params0, grads = _problem(6, n_steps=40)
    max_norm = 1.0
    # the clipped gradients and the scheduled learning rates, computed by hand
    clipped = []
    for gs in grads:
        norm = math.sqrt(sum(float((g * g).sum()) for g in gs))
        coef = min(1.0, max_norm / (norm + 1e-6))
        clipped.append([g * coef for g in gs])
    lrs = [1e-2 * 0.95**k for k in range(40)]
    ref = _ref_ademamix(params0, clipped, lrs, betas=(0.9, 0.999, 0.9999), alpha=5.0,
                        T_alpha=40, T_beta3=40, eps=1e-8, wd=0.01)

    params = [torch.nn.Parameter(p.clone()) for p in params0]
    opt = AdEMAMix(params, lr=1e-2, alpha=5.0, T_alpha=40, T_beta3=40, weight_decay=0.01,
                   **_path_kwargs(path))
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.95)
    for gs in grads:
        for p, g in zip(params, gs, strict=True):
            p.grad = g.clone()
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        opt.step()
        sched.step()
    err = max((a - b).abs().max().item() for a, b in zip(params, ref, strict=True))
    assert err < 1e-6, err


@pytest.mark.parametrize("path", PATHS)
def test_large_tensors_match_reference(path):
    """Tensors larger than the CPU slice of the foreach path (65536 elements) and than a tile of
    the fused kernel (full tiles take its unmasked branch), one of them non-contiguous (except
    for the fused path, which needs contiguous tensors), against the reference."""
    # the interpreted kernel runs tile by tile: smaller tensors for it, still several tiles
    shapes = ((70, 100), (2100,), (5,)) if path == "fused" else ((300, 301), (70000,), (5,))
    params0, grads = _problem(7, n_steps=12, shapes=shapes)
    lrs = [1e-2] * 12
    ref = _ref_ademamix(params0, grads, lrs, betas=(0.9, 0.999, 0.9999), alpha=5.0, T_alpha=10,
                        T_beta3=10, eps=1e-8, wd=0.1)
    params = [torch.nn.Parameter(p.clone()) for p in params0]
    if path != "fused":
        params[0] = torch.nn.Parameter(params0[0].t().contiguous().t())  # non-contiguous
    opt = AdEMAMix(params, lr=1e-2, alpha=5.0, T_alpha=10, T_beta3=10, weight_decay=0.1,
                   **_path_kwargs(path))
    for gs in grads:
        for p, g in zip(params, gs, strict=True):
            p.grad = g.clone()
        opt.step()
    err = max((a - b).abs().max().item() for a, b in zip(params, ref, strict=True))
    assert err < 1e-6, err
