"""Bad-input probes of sciml_toolbox.nn.optim: every public name, each case a clear error."""

import math

import pytest
import torch

from sciml_toolbox.nn.optim import (
    AdEMAMix,
    LandingGeneralizedStiefel,
    SimplifiedAdEMAMix,
    ademamix_alpha_scheduler,
    ademamix_beta3_scheduler,
)

from ._probe_utils import expect_error

PROBED = {"sciml_toolbox.nn.optim": {"AdEMAMix", "SimplifiedAdEMAMix",
                                     "ademamix_alpha_scheduler", "ademamix_beta3_scheduler",
                                     "LandingGeneralizedStiefel"}}

NAN, INF = float("nan"), float("inf")


def _p(*shape, dtype=torch.float32):
    return torch.nn.Parameter(torch.ones(*shape, dtype=dtype))


# -------------------------------------------------------------------------- AdEMAMix (+ simplified)
@pytest.mark.parametrize("cls", [AdEMAMix, SimplifiedAdEMAMix])
@pytest.mark.parametrize("kw, match", [
    (dict(lr=NAN), "lr"), (dict(lr=-1.0), "lr"), (dict(lr="1"), "lr"),
    (dict(lr=torch.ones(2)), "lr"), (dict(eps=0.0), "eps"), (dict(eps=NAN), "eps"),
    (dict(weight_decay=-0.1), "weight_decay"), (dict(alpha=INF), "alpha"),
    (dict(alpha=-1.0), "alpha"), (dict(betas=(0.9,)), "betas"),
    (dict(foreach="yes"), "foreach"), (dict(foreach=True, fused=True), "foreach"),
])
def test_ademamix_bad_hyperparameters(cls, kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        cls([_p(3)], **kw)


@pytest.mark.parametrize("kw, match", [(dict(T_alpha=0), "T_alpha"), (dict(T_beta3=2.5),
                                                                        "T_beta3"),
                                       (dict(betas=(0.9, 0.999, NAN)), r"betas\[2\]")])
def test_ademamix_bad_warmups(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        AdEMAMix([_p(3)], **kw)


def test_simplified_bad_min_beta1():
    with pytest.raises(ValueError, match="min_beta1"):
        SimplifiedAdEMAMix([_p(3)], min_beta1=1.0)


def test_ademamix_per_group_override_is_validated():
    with pytest.raises(ValueError, match="lr"):
        AdEMAMix([{"params": [_p(3)], "lr": -1.0}])


@pytest.mark.parametrize("cls", [AdEMAMix, SimplifiedAdEMAMix])
def test_ademamix_fused_on_cpu_without_interpreter_or_float64(cls):
    with pytest.raises(ValueError, match="fused"):
        cls([_p(3, dtype=torch.float64)], fused=True)


@pytest.mark.parametrize("cls", [AdEMAMix, SimplifiedAdEMAMix])
def test_ademamix_empty_and_one_element_parameters(cls):
    # an empty parameter is a no-op; a one-element one takes the closed-form first Adam-like
    # step: m1_hat = g, v_hat = g^2, so theta moves by -lr * (g + c) / (|g| + eps) for AdEMAMix
    e, one = _p(0), _p(1)
    opt = cls([e, one], lr=0.1)
    e.grad, one.grad = torch.zeros(0), torch.full((1,), 2.0)
    opt.step()
    assert e.shape == (0,)
    if cls is AdEMAMix:  # alpha = 5: m2 = (1 - b3) g after one step
        expected = 1.0 - 0.1 * (2.0 + 5.0 * (1 - 0.9999) * 2.0) / (2.0 + 1e-8)
    else:  # m = g (summed momentum), alpha = 0
        expected = 1.0 - 0.1 * 2.0 / (2.0 + 1e-8)
    assert float(one.detach()) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("cls", [AdEMAMix, SimplifiedAdEMAMix])
def test_ademamix_sparse_grad(cls):
    p = _p(3)
    opt = cls([p])
    p.grad = torch.ones(3).to_sparse()
    with pytest.raises(TypeError, match="sparse"):
        opt.step()


# -------------------------------------------------------------------------- schedulers
@pytest.mark.parametrize("args, match", [
    ((0, 0.999, 0.0, 10), "step"), ((-1, 0.999, 0.9, 10), "step"), ((1.5, 0.999, 0.9, 10),
                                                                     "step"),
    ((1, 1.0, 0.9, 10), "beta_end"), ((1, NAN, 0.9, 10), "beta_end"),
    ((1, 0.999, -0.1, 10), "beta_start"), ((1, 0.999, 1.0, 10), "beta_start"),
    ((1, 0.999, 0.9, 0), "T"), ((1, 0.999, 0.9, 2.0), "T"),
])
def test_beta3_scheduler_bad_input(args, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ademamix_beta3_scheduler(*args)


def test_beta3_scheduler_from_zero_at_first_step():
    # beta_start = 0 (half-life 0): at t = 1 the half-life is h_end / T
    T, b = 10, 0.99
    h = math.log(0.5) / math.log(b) / T
    assert ademamix_beta3_scheduler(1, b, 0.0, T) == pytest.approx(0.5 ** (1 / h), rel=1e-12)


@pytest.mark.parametrize("args, match", [
    ((0, 5.0, 10), "step"), ((1, NAN, 10), "alpha"), ((1, -1.0, 10), "alpha"),
    ((1, 5.0, 0), "T_alpha"), ((1, 5.0, 1.5), "T_alpha"),
])
def test_alpha_scheduler_bad_input(args, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ademamix_alpha_scheduler(*args)


# -------------------------------------------------------------------------- landing
@pytest.mark.parametrize("kw, match", [(dict(lr=-1.0), "lr"), (dict(lr=0.1, omega=-1.0),
                                                                "omega"),
                                       (dict(lr=0.1, momentum=1.0), "momentum"),
                                       (dict(lr=0.1, epsilon=0.0), "epsilon"),
                                       (dict(lr=0.1, fused=True), "fused")])
def test_landing_bad_hyperparameters(kw, match):
    with pytest.raises(ValueError, match=match):
        LandingGeneralizedStiefel([_p(4, 2)], **kw)


@pytest.mark.parametrize("cls", [AdEMAMix, SimplifiedAdEMAMix])
def test_ademamix_fused_refuses_complex128(cls):
    with pytest.raises(ValueError, match="fused"):
        cls([_p(3, dtype=torch.complex128)], fused=True)


def test_ademamix_empty_parameter_list_and_non_tensor():
    with pytest.raises(ValueError, match="empty"):
        AdEMAMix([])
    with pytest.raises(TypeError, match="params"):
        AdEMAMix([1.0])


# -------------------------------------------------------------------------- landing: step inputs
def _landing(momentum=0.0, groups=1):
    """An optimizer over ``groups`` (4, 2) float64 parameters with gradients set."""
    g = torch.Generator().manual_seed(0)
    ps = [torch.nn.Parameter(0.5 * torch.randn(4, 2, generator=g, dtype=torch.float64))
          for _ in range(groups)]
    for p in ps:
        p.grad = torch.randn(4, 2, generator=g, dtype=torch.float64)
    opt = LandingGeneralizedStiefel([{"params": [p]} for p in ps], lr=0.1, momentum=momentum)
    return opt, ps


_EYE = torch.eye(4, dtype=torch.float64)


@pytest.mark.parametrize("kw, error, match", [
    (dict(B=torch.eye(3, dtype=torch.float64)), ValueError, "B"),
    (dict(B=torch.ones(4, 2, dtype=torch.float64)), ValueError, "B"),
    (dict(B=torch.eye(4)), TypeError, "B"),  # float32 for a float64 parameter
    (dict(B=_EYE.numpy()), TypeError, "B"),
    (dict(B=_EYE.to(torch.complex128)), TypeError, "B"),
    (dict(B=lambda V: V[:3]), ValueError, "B"),  # a callable B returning the wrong shape
    (dict(BX=torch.ones(4, 2)), TypeError, "BX"),
    (dict(BX=torch.ones(4, 2, dtype=torch.float64).tolist()), TypeError, "BX"),
    (dict(B=torch.eye(5, dtype=torch.float64), BX=torch.ones(4, 2, dtype=torch.float64)),
     ValueError, "B"),
])
def test_landing_step_bad_B_shape_type(kw, error, match):
    opt, (p,) = _landing()
    before = p.detach().clone()
    expect_error(lambda: opt.step(**kw), match, error)
    assert torch.equal(p.detach(), before)


def _nan_at(t, value=NAN):
    t = t.clone()
    t.view(-1)[1] = value
    return t


@pytest.mark.parametrize("value", [NAN, INF])
@pytest.mark.parametrize("where, match", [
    ("B", "B"), ("B_with_BX", "B"), ("BX", "BX"), ("grad", "grad"), ("param", "params"),
    ("BX2", "BX2"), ("grad2", "grad2"),
])
def test_landing_step_nonfinite_input_raises_and_changes_nothing(where, match, value):
    # the update is computed before anything is written: parameter and momentum buffer after
    # the failed step equal the ones before it (a good step first fills the buffer)
    opt, (p,) = _landing(momentum=0.9)
    opt.step(B=_EYE)
    buf = opt.state[p]["momentum_buffer"].clone()
    BX = (_EYE @ p).detach()
    kw = dict(B=_EYE)
    if where == "B":
        kw = dict(B=_nan_at(_EYE, value))
    elif where == "B_with_BX":  # B only serves the safe step's curvature
        kw = dict(B=_nan_at(_EYE, value), BX=BX)
    elif where == "BX":
        kw = dict(BX=_nan_at(BX, value))
    elif where == "grad":
        p.grad = _nan_at(p.grad, value)
    elif where == "param":
        with torch.no_grad():
            p.view(-1)[1] = value
    elif where == "BX2":
        kw = dict(BX=BX, BX2=_nan_at(BX, value))
    elif where == "grad2":
        kw = dict(BX=BX, BX2=BX, grad2=[_nan_at(p.grad, value)])
    before = p.detach().clone()
    expect_error(lambda: opt.step(**kw), match, ValueError)
    assert torch.equal(p.detach(), before) or where == "param" and bool(
        ((p.detach() == before) | (p.detach().isnan() & before.isnan())).all())
    assert torch.equal(opt.state[p]["momentum_buffer"], buf)


def test_landing_nonfinite_in_second_group_leaves_first_group_unchanged():
    opt, (p1, p2) = _landing(groups=2)
    p2.grad = _nan_at(p2.grad)
    b1 = p1.detach().clone()
    err = expect_error(lambda: opt.step(B=_EYE), "grad", ValueError)
    assert "params[1]" in str(err)
    assert torch.equal(p1.detach(), b1)
    # with a finite gradient the same step moves both parameters
    p2.grad = torch.ones_like(p2)
    opt.step(B=_EYE)
    assert not torch.equal(p1.detach(), b1)


def test_landing_callable_B_nan_on_the_direction_only():
    # the callable gives a finite B X but NaN for the curvature product B D: the update is not
    # finite although every tensor input is, and the message says so
    opt, (p,) = _landing()
    calls = []

    def B(V):
        calls.append(V)
        return V if len(calls) == 1 else V * NAN

    expect_error(lambda: opt.step(B=B), "B", ValueError)


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_landing_refuses_complex_parameters(dtype):
    expect_error(lambda: LandingGeneralizedStiefel([_p(4, 2, dtype=dtype)], lr=0.1), "params",
                 TypeError)
    opt = LandingGeneralizedStiefel([_p(4, 2, dtype=torch.float64)], lr=0.1)
    expect_error(lambda: opt.add_param_group({"params": [_p(4, 2, dtype=dtype)]}), "params",
                 TypeError)
    assert len(opt.param_groups) == 1


def test_landing_add_param_group_checks_shape_and_takes_generators():
    opt = LandingGeneralizedStiefel([_p(4, 2)], lr=0.1)
    expect_error(lambda: opt.add_param_group({"params": [_p(2, 4)]}), "params", ValueError)
    opt.add_param_group({"params": (q for q in [_p(5, 3)])})  # a generator, consumed once
    assert [tuple(q.shape) for q in opt.param_groups[1]["params"]] == [(5, 3)]
