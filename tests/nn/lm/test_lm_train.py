"""Trainer: hooks, checkpoint/resume identity, DDP equivalence, parameter instantiation."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from sciml_toolbox.nn.lm import Callback, DomainCorpus, TinyLM, TinyLMConfig, evaluate, train


def _small(seed=0):
    torch.manual_seed(seed)
    return TinyLM(TinyLMConfig(d_model=16, n_layers=1, n_heads=2, max_seq_len=16))


def _corpus(**kw):
    return DomainCorpus.synthetic(2, n_tokens=8000, seq_len=16, random_state=1, **kw)


class _StopAt(Callback):
    def __init__(self, step):
        self.stop = step

    def on_step_end(self, state):
        if state.step + 1 == self.stop:
            raise KeyboardInterrupt


def test_checkpoint_resume_is_identical(tmp_path):
    kw = dict(batch_size=8, lr=1e-2, eval_every=2, eval_windows=8, warmup_steps=2)
    ref_model = _small()
    ref = train(ref_model, _corpus(), [0.3, 0.7], 10, **kw)

    path = tmp_path / "ck.pt"
    m1 = _small()
    with pytest.raises(KeyboardInterrupt):
        train(m1, _corpus(), [0.3, 0.7], 10, checkpoint_path=path, checkpoint_every=2,
              callbacks=[_StopAt(6)], **kw)
    m2 = _small(seed=123)  # different init: everything must come from the checkpoint
    res = train(m2, _corpus(), [0.3, 0.7], 10, checkpoint_path=path, resume=True, **kw)
    for (n, a), b in zip(ref_model.state_dict().items(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b), n
    assert res.train_loss == ref.train_loss
    assert res.val_loss == ref.val_loss
    assert res.eval_step == ref.eval_step == [0, 2, 4, 6, 8, 10]
    assert res.tokens_seen == ref.tokens_seen


def test_history_records_and_tokens_seen():
    corpus = _corpus()
    hist = train(_small(), corpus, [0.5, 0.5], 4, batch_size=8, eval_windows=4)
    assert hist.step == [1, 2, 3, 4]
    assert len(hist.train_loss) == len(hist.lr) == len(hist.mixture) == 4
    assert sum(hist.tokens_seen.values()) == 4 * 8 * 16
    assert hist.eval_step == [4]
    assert set(hist.val_loss) == {"markov0", "markov1"}


def test_mixture_schedule_and_callback_order():
    calls = []

    class Sched(Callback):
        """A mixture that changes during training, with its own hooks."""

        def __call__(self, step):
            return [1.0, 0.0] if step < 2 else [0.0, 1.0]

        def on_step_begin(self, state):
            calls.append(("begin", state.step))

        def on_after_backward(self, state):
            assert all(p.grad is not None for p in state.parameters())
            calls.append(("backward", state.step))

        def on_step_end(self, state):
            calls.append(("end", state.step))

    hist = train(_small(), _corpus(), Sched(), 4, batch_size=8, eval_windows=4)
    assert hist.mixture == [[1.0, 0.0]] * 2 + [[0.0, 1.0]] * 2
    assert calls[:3] == [("begin", 0), ("backward", 0), ("end", 0)]
    assert hist.tokens_seen == {"markov0": 2 * 8 * 16, "markov1": 2 * 8 * 16}


def test_state_gradient_matches_autograd_and_leaves_grad_untouched():
    out = {}

    class Grab(Callback):
        def on_step_end(self, state):
            if state.step == 1:
                x, y, _ = state.corpus.domain_batch(0, 4)
                before = [p.grad.clone() for p in state.parameters()]
                g = state.gradient(x, y)
                out["g"], out["x"], out["y"] = g, x, y
                out["same"] = all(torch.equal(a, p.grad)
                                  for a, p in zip(before, state.parameters(), strict=True))
                out["params"] = [p.detach().clone() for p in state.parameters()]

    model = _small()
    train(model, _corpus(), [0.5, 0.5], 2, batch_size=8, callbacks=[Grab()], eval_windows=4)
    assert out["same"]
    clone = _small()
    with torch.no_grad():
        for p, v in zip(clone.parameters(), out["params"], strict=True):
            p.copy_(v)
    loss = clone(out["x"], out["y"])
    ref = torch.autograd.grad(loss, list(clone.parameters()))
    torch.testing.assert_close(out["g"], torch.cat([r.reshape(-1) for r in ref]))


class _TinySoup(nn.Module):
    """Shared + two expert parameter sets, instantiated per step with functional_call."""

    def __init__(self):
        super().__init__()
        self.base = _small()
        names = [n for n, _ in self.base.named_parameters()]
        self.names = names
        self.shared = nn.ParameterList([nn.Parameter(p.detach().clone())
                                        for p in self.base.parameters()])
        self.experts = nn.ParameterList([nn.Parameter(0.01 * torch.randn(2, *p.shape))
                                         for p in self.base.parameters()])
        for p in self.base.parameters():
            p.requires_grad_(False)

    def forward(self, x, h):
        params = {n: s + torch.tensordot(h, e, dims=1)
                  for n, s, e in zip(self.names, self.shared, self.experts, strict=True)}
        return functional_call(self.base, params, (x,))


def test_per_step_parameter_instantiation_reaches_all_parameters():
    soup = _TinySoup()
    seen = {}

    def loss_fn(model, x, y, state):
        h = torch.as_tensor(state.mixture, dtype=torch.float32)
        logits = model(x, h)
        return nn.functional.cross_entropy(logits.reshape(-1, 256), y.reshape(-1))

    class Check(Callback):
        def on_after_backward(self, state):
            m = state.model
            seen["shared"] = all(p.grad is not None and p.grad.abs().sum() > 0
                                 for p in m.shared)
            seen["experts"] = all(p.grad is not None and p.grad.abs().sum() > 0
                                  for p in m.experts)

    e0 = [p.detach().clone() for p in soup.experts]
    rng = np.random.default_rng(0)
    hist = train(soup, _corpus(), lambda step: rng.dirichlet([1.0, 1.0]), 3, batch_size=8,
                 loss_fn=loss_fn, callbacks=[Check()], eval_windows=4)
    assert seen == {"shared": True, "experts": True}
    assert all(not torch.equal(a, b) for a, b in zip(e0, soup.experts, strict=True))
    assert np.isfinite(list(hist.final_val_loss().values())).all()


def test_evaluate_matches_manual_cross_entropy():
    model, corpus = _small(), _corpus()
    got = evaluate(model, corpus, max_windows=5)
    x, y = corpus.validation_windows("markov1", 5)
    with torch.no_grad():
        ref = float(model(x, y))
    assert got["markov1"] == pytest.approx(ref, rel=1e-5)


def test_factory_optimizer_and_instance():
    seen = []

    def factory(groups):
        seen.append(len(groups))
        return torch.optim.SGD(groups, lr=0.1)

    train(_small(), _corpus(), [0.5, 0.5], 1, optimizer=factory, batch_size=4, eval_windows=2)
    assert seen == [2]
    m = _small()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    hist = train(m, _corpus(), [0.5, 0.5], 2, optimizer=opt, batch_size=4, eval_windows=2,
                 lr_schedule="constant")
    assert hist.lr == [1e-3, 1e-3]


def test_torchrun_two_gloo_processes_match_single_process(tmp_path):
    here = Path(__file__).resolve().parent
    out = tmp_path / "ddp.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(here)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", str(here / "_ddp_worker.py"), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = torch.load(out, weights_only=False)
    assert ddp["world"] == 2
    sys.path.insert(0, str(here))
    try:
        from _ddp_worker import run
    finally:
        sys.path.remove(str(here))
    model, hist = run()
    for (n, a), b in zip(model.state_dict().items(), ddp["state"].values(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4, msg=n)
    np.testing.assert_allclose(hist.train_loss, ddp["history"]["train_loss"], rtol=1e-5)
    for k in hist.val_loss:
        np.testing.assert_allclose(hist.val_loss[k], ddp["history"]["val_loss"][k], rtol=1e-5)


def test_forgetting_study_runs_and_injection_bookkeeping():
    from sciml_toolbox.nn.lm import forgetting_study, runs_to_arrays

    cfg = TinyLMConfig(d_model=16, n_layers=1, n_heads=2, max_seq_len=16)
    res = forgetting_study([cfg], [640], [0.0, 0.5], pretrain_steps=3, epochs=1.0, seq_len=16,
                           batch_size=4, code_bytes=20_000, eval_windows=4)
    runs = res["runs"]
    assert [r["p"] for r in runs] == [0.0, 0.5]
    # epochs * D / (batch tokens * (1 - p)) steps: the target budget is seen once either way
    assert [r["steps"] for r in runs] == [10, 20]
    m = res["models"][0]
    for r in runs:
        f = (r["pretrain_loss"] - r["L0"]) / (m["init_pretrain_loss"] - m["pretrain_loss"])
        assert r["forgetting"] == pytest.approx(f)
    Xf, yf, Xt, yt = runs_to_arrays(res)
    assert Xf.shape == (2, 4) and Xt.shape == (2, 3)


def test_forgetting_study_bad_fraction():
    from sciml_toolbox.nn.lm import forgetting_study

    with pytest.raises(ValueError, match="fractions"):
        forgetting_study([TinyLMConfig()], [1000], [1.0])


# -------------------------------------------------------------------------- lr schedulers
class _RecordLR(Callback):
    def __init__(self):
        self.lr = []

    def on_step_end(self, state):
        self.lr.append(state.optimizer.param_groups[0]["lr"])


def test_lambda_lr_scheduler_reproduces_the_builtin_schedule():
    from torch.optim.lr_scheduler import LambdaLR

    from sciml_toolbox.nn.lm import lr_multiplier

    kw = dict(batch_size=8, lr=1e-2, eval_every=3, eval_windows=8)

    def f(step):
        return lr_multiplier(step, 6, "cosine", 2, 0.1)

    ref = train(_small(), _corpus(), [0.3, 0.7], 6, warmup_steps=2, **kw)
    rec = _RecordLR()
    got = train(_small(), _corpus(), [0.3, 0.7], 6, scheduler=lambda opt: LambdaLR(opt, f),
                callbacks=[rec], **kw)
    expected = [1e-2 * f(s) for s in range(6)]  # LambdaLR: base lr times f(step)
    assert got.lr == rec.lr == expected
    assert ref.lr == expected
    assert got.train_loss == ref.train_loss
    assert got.val_loss == ref.val_loss


def test_scheduler_instance_sets_the_lr_and_is_stepped_once_per_step():
    from torch.optim.lr_scheduler import LambdaLR

    m = _small()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    sched = LambdaLR(opt, lambda s: 1.0 / (1 + s))
    hist = train(m, _corpus(), [0.5, 0.5], 4, optimizer=opt, scheduler=sched, batch_size=4,
                 eval_windows=2)
    assert hist.lr == [0.1 * (1.0 / (1 + s)) for s in range(4)]
    assert sched.last_epoch == 4


def test_checkpoint_resume_with_scheduler_is_identical(tmp_path):
    from torch.optim.lr_scheduler import StepLR

    def sched(opt):
        return StepLR(opt, step_size=3, gamma=0.5)

    kw = dict(batch_size=8, lr=1e-2, eval_every=2, eval_windows=8, scheduler=sched)
    ref_model = _small()
    ref = train(ref_model, _corpus(), [0.3, 0.7], 10, **kw)
    assert ref.lr == [1e-2 * 0.5 ** (s // 3) for s in range(10)]

    path = tmp_path / "ck.pt"
    with pytest.raises(KeyboardInterrupt):
        train(_small(), _corpus(), [0.3, 0.7], 10, checkpoint_path=path, checkpoint_every=2,
              callbacks=[_StopAt(6)], **kw)
    with pytest.raises(ValueError, match="ck.pt"):  # written with a scheduler, resumed without
        train(_small(), _corpus(), [0.3, 0.7], 10, checkpoint_path=path, resume=True,
              **dict(kw, scheduler=None))
    m2 = _small(seed=123)
    res = train(m2, _corpus(), [0.3, 0.7], 10, checkpoint_path=path, resume=True, **kw)
    for (n, a), b in zip(ref_model.state_dict().items(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b), n
    assert res.lr == ref.lr
    assert res.train_loss == ref.train_loss
    assert res.val_loss == ref.val_loss
    assert res.eval_step == ref.eval_step


def test_scheduler_bad_input():
    from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

    def run(**kw):
        return train(_small(), _corpus(), [0.5, 0.5], 1, batch_size=4, eval_windows=2, **kw)

    def factory(opt):
        return LambdaLR(opt, lambda s: 1.0)

    with pytest.raises(TypeError, match="scheduler"):
        run(scheduler=3)
    with pytest.raises(TypeError, match="scheduler"):
        run(scheduler=lambda opt: "not a scheduler")
    with pytest.raises(TypeError, match="ReduceLROnPlateau"):
        run(scheduler=ReduceLROnPlateau)
    for conflict in (dict(warmup_steps=2), dict(lr_schedule="linear"), dict(min_lr_ratio=0.0),
                     dict(lr_schedule=lambda s: 1.0)):
        with pytest.raises(ValueError, match="scheduler"):
            run(scheduler=factory, **conflict)
    other = torch.optim.SGD(_small().parameters(), lr=0.1)
    with pytest.raises(ValueError, match="scheduler"):  # built on another optimizer
        run(scheduler=LambdaLR(other, lambda s: 1.0))
