"""AdEMAMix on CUDA: the compiled fused Triton kernel against the foreach path.

Skipped without a CUDA device. The test session sets TRITON_INTERPRET=1 for the CPU tests;
with a GPU we switch it off before the kernel module is first imported, so that the kernel is
compiled (run this file on its own, or with the other tests/gpu files).
"""

import os

import pytest
import torch

if torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "0"

from sciml_toolbox.nn.optim import AdEMAMix, SimplifiedAdEMAMix  # noqa: E402

pytestmark = pytest.mark.gpu

SHAPES = [(1,), (1023,), (1024,), (1025,), (3, 5, 7), (512, 1536), (4096, 1000)]


def _problem(seed, dtype, shapes=SHAPES):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    params = [torch.randn(s, device="cuda", generator=gen).to(dtype) for s in shapes]
    grads = [[torch.randn(s, device="cuda", generator=gen).to(dtype) for s in shapes]
             for _ in range(6)]
    return params, grads


def _train(cls, params0, grads, **kw):
    params = [torch.nn.Parameter(p.clone()) for p in params0]
    opt = cls(params, **kw)
    for gs in grads:
        for p, g in zip(params, gs, strict=True):
            p.grad = g.clone()
        opt.step()
    return [p.detach() for p in params], opt


def test_kernel_is_compiled():
    from sciml_toolbox.nn.optim import _fused_ademamix as F

    assert type(F._ademamix_step_kernel).__name__ == "JITFunction"


@pytest.mark.parametrize("betas", [(0.9, 0.999, 0.9999), (0.0, 0.999, 0.999)])
@pytest.mark.parametrize("maximize", [False, True])
def test_fused_matches_foreach_fp32(betas, maximize):
    params0, grads = _problem(0, torch.float32)
    kw = dict(lr=1e-3, betas=betas, alpha=8.0, T_alpha=4, T_beta3=4, weight_decay=0.1,
              maximize=maximize)
    a, _ = _train(AdEMAMix, params0, grads, fused=True, **kw)
    b, _ = _train(AdEMAMix, params0, grads, foreach=True, **kw)
    b64, _ = _train(AdEMAMix, [p.double() for p in params0],
                    [[g.double() for g in gs] for gs in grads], foreach=True, **kw)
    for x, y, z in zip(a, b, b64, strict=True):
        assert torch.isfinite(x).all()
        assert (x.double() - z).norm() / z.norm() < 1e-6
        assert (x - y).abs().max() < 1e-5


def test_fused_unaligned_views(device="cuda"):
    """Parameters that are views at an odd offset take the unaligned kernel variant."""
    out = []
    for kw in (dict(fused=True), dict(foreach=True)):
        base = torch.randn(10_001, device=device, generator=torch.Generator(device).manual_seed(0))
        params = [torch.nn.Parameter(base[1:4097]), torch.nn.Parameter(base[4097:10_001])]
        assert params[0].data_ptr() % 16 != 0
        opt = AdEMAMix(params, lr=1e-2, weight_decay=0.1, **kw)
        gen = torch.Generator(device).manual_seed(1)
        for _ in range(4):
            for p in params:
                p.grad = torch.randn(p.shape, device=device, generator=gen)
            opt.step()
        out.append([p.detach() for p in params])
    for x, y in zip(*out, strict=True):
        assert (x - y).abs().max() < 1e-5


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_fused_16bit_params_match_foreach(dtype):
    params0, grads = _problem(1, dtype)
    kw = dict(lr=1e-2, T_alpha=4, T_beta3=4, weight_decay=0.1)
    a, opt = _train(AdEMAMix, params0, grads, fused=True, **kw)
    b, _ = _train(AdEMAMix, params0, grads, foreach=True, **kw)
    ulp = 2.0**-7 if dtype == torch.bfloat16 else 2.0**-10
    for x, y, p in zip(a, b, opt.param_groups[0]["params"], strict=True):
        assert x.dtype == dtype
        assert opt.state[p]["exp_avg_slow"].dtype == torch.float32
        rel = ((x.float() - y.float()).abs() / y.float().abs().clamp_min(1e-3)).max()
        assert rel <= 2 * ulp


def test_simplified_fused_matches_foreach():
    params0, grads = _problem(2, torch.float32)
    kw = dict(lr=1e-3, alpha=3.0, T_beta1=4, weight_decay=0.1, bias_correction1=True)
    a, _ = _train(SimplifiedAdEMAMix, params0, grads, fused=True, **kw)
    b, _ = _train(SimplifiedAdEMAMix, params0, grads, foreach=True, **kw)
    for x, y in zip(a, b, strict=True):
        assert (x - y).abs().max() < 1e-5


def test_fused_grad_scaler_amp():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.GELU(),
                                torch.nn.Linear(64, 8)).cuda()
    opt = AdEMAMix(model.parameters(), lr=1e-3, fused=True)
    scaler = torch.amp.GradScaler("cuda")
    x = torch.randn(32, 64, device="cuda")
    losses = []
    for _ in range(30):
        opt.zero_grad()
        with torch.autocast("cuda", dtype=torch.float16):
            loss = model(x).float().pow(2).mean()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_state_buffers_on_cuda():
    params0, grads = _problem(3, torch.float32, shapes=[(100, 100)])
    _, opt = _train(AdEMAMix, params0, grads[:1], fused=True)
    p = opt.param_groups[0]["params"][0]
    bufs = [v for v in opt.state[p].values() if v.shape == p.shape]
    assert len(bufs) == 3 and all(b.is_cuda for b in bufs)
