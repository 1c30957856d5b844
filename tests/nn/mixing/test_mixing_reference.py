"""DGA against independent computations: the mirror-descent step by hand, basis gradients and
alignments by plain autograd, and the known-mixture behaviour on synthetic domains."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sciml_toolbox.nn.lm import DomainCorpus, TinyLM, TinyLMConfig, TrainState, sample_mixture
from sciml_toolbox.nn.mixing import DGA, exponentiated_gradient_step

CFG = TinyLMConfig(d_model=16, n_layers=1, n_heads=2, max_seq_len=16)


def test_exponentiated_gradient_step_hand_computed():
    # w_i exp(eta s_i) / sum: 0.5 e^0.5 = 0.8243606, 0.3, 0.2 e^-0.5 = 0.1213061; sum 1.2456667
    out = exponentiated_gradient_step([0.5, 0.3, 0.2], [1.0, 0.0, -1.0], 0.5)
    np.testing.assert_allclose(out, [0.8243606 / 1.2456667, 0.3 / 1.2456667,
                                     0.1213061 / 1.2456667], rtol=1e-6)
    # zero step: unchanged; zero weights stay zero; huge scores do not overflow
    np.testing.assert_allclose(exponentiated_gradient_step([0.2, 0.8], [5, -3], 0.0), [0.2, 0.8])
    out = exponentiated_gradient_step([0.0, 0.5, 0.5], [10.0, 1e4, 0.0], 1.0)
    assert out[0] == 0 and np.isclose(out.sum(), 1) and np.all(np.isfinite(out))


def _ce_per_seq(model, x, y):
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                           reduction="none").view(y.shape).mean(1)


# (rtol, atol as a fraction of the largest score); the one-sided finite difference has an
# O(fd_step) truncation error of about the same size for every score, so it is bounded
# relative to the scale of all scores
ALIGNMENT_TOL = {"backward": (1e-3, 1e-5), "forward_ad": (1e-3, 1e-5),
                 "finite_difference": (1e-2, 1e-2)}


@pytest.mark.parametrize("alignment", sorted(ALIGNMENT_TOL))
def test_update_step_gradients_and_alignments_by_autograd(alignment):
    torch.manual_seed(0)
    corpus = DomainCorpus.synthetic(n_domains=4, similarity=0.3, n_tokens=20_000, seq_len=16)
    model = TinyLM(CFG)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    dga = DGA(3, specific="markov3", update_every=1, step_size=2.0, ema=0.25,
              init=[0.5, 0.3, 0.2], alignment=alignment)
    kw = dga.train_kwargs(batch_size=6)
    dga.bind(corpus)
    state = TrainState(step=0, steps=1, model=model, forward_model=model, optimizer=opt,
                       corpus=corpus, mixture=dga(0), batch=None, loss=None,
                       per_sequence_loss=None, history=None, rank=0, world_size=1,
                       device=torch.device("cpu"), mode="train", eval_domain=None,
                       loss_fn=kw["loss_fn"])
    x, y, d = kw["batch_fn"](state)
    assert x.shape == (6, 16)
    # stratified: two sequences from each generic domain, none from the specific one
    assert sorted(d.tolist()) == [0, 0, 1, 1, 2, 2]
    seen = []
    real_gradient = state.gradient

    def spy(xs, ys, **k):  # records the specific batch, computes through the real method
        seen.append((xs.clone(), ys.clone()))
        return real_gradient(xs, ys, **k)

    state.gradient = spy
    loss = kw["loss_fn"](model, x, y, state)
    opt.zero_grad()
    loss.backward()
    got = [p.grad.clone() for p in model.parameters()]

    params = list(model.parameters())
    per_seq = _ce_per_seq(model, x, y)
    w = np.array([0.5, 0.3, 0.2])
    g = []
    for j in range(3):
        gj = torch.autograd.grad(per_seq[d == j].mean(), params, retain_graph=True)
        g.append(torch.cat([t.reshape(-1) for t in gj]))
    expected = sum(w[j] * g[j] for j in range(3))
    torch.testing.assert_close(torch.cat([t.reshape(-1) for t in got]), expected.float(),
                               rtol=1e-4, atol=1e-6)
    # the reported loss is the mixture loss
    mix = sum(w[j] * per_seq[d == j].mean() for j in range(3))
    assert abs(float(loss.detach()) - float(mix.detach())) < 1e-5

    (xs, ys), = seen
    gs = torch.autograd.grad(_ce_per_seq(model, xs, ys).mean(), params)
    gs = torch.cat([t.reshape(-1) for t in gs])
    scores = np.array([float(gj @ gs) for gj in g])
    rtol, atol = ALIGNMENT_TOL[alignment]
    np.testing.assert_allclose(dga.alignment_history_[-1], scores, rtol=rtol,
                               atol=1e-7 + atol * np.abs(scores).max())
    raw = w * np.exp(2.0 * scores)
    raw /= raw.sum()
    np.testing.assert_allclose(dga.raw_weights_, raw, rtol=rtol)
    np.testing.assert_allclose(dga.basis_weights_, 0.25 * w + 0.75 * raw, rtol=rtol)
    np.testing.assert_allclose(dga(1)[:3], dga.basis_weights_, rtol=1e-12)
    assert dga(1)[3] == 0.0


def test_weights_move_towards_the_known_mixture():
    """The specific set is 80% domain 0 + 20% domain 1: DGA must favour them over domain 2."""
    torch.manual_seed(0)
    corpus = DomainCorpus.synthetic(n_domains=3, similarity=0.0, n_tokens=30_000, seq_len=16,
                                    n_states=24)
    specific = sample_mixture(corpus.sources, [0.8, 0.2, 0.0], 20_000, chunk_len=64,
                              random_state=1)
    dga = DGA(3, specific=specific, update_every=2, step_size=20.0, ema=0.0)
    from sciml_toolbox.nn.lm import train

    train(TinyLM(CFG), corpus, dga, 60, lr=5e-3, eval_windows=4,
          **dga.train_kwargs(batch_size=12))
    w = dga.weights_
    target = np.array([0.8, 0.2, 0.0])
    assert np.isclose(w.sum(), 1) and np.all(w >= 0)
    assert w[2] < w[1] and w[2] < w[0]
    assert np.abs(w - target).sum() < np.abs(np.full(3, 1 / 3) - target).sum()
    hist = np.asarray(dga.history_["weights"])
    assert hist.shape == (60, 3)
    np.testing.assert_allclose(hist.sum(1), 1.0)
    assert np.all(hist >= 0)


@pytest.mark.parametrize("scores", [np.zeros(4), np.array([1e3, -1e3, 0.0, 5.0])])
def test_weights_stay_on_simplex(scores):
    dga = DGA(4, specific="s", step_size=3.0, ema=0.9)
    for _ in range(20):
        dga._update(scores, None)
        assert np.isclose(dga.weights_.sum(), 1.0) and np.all(dga.weights_ >= 0)


def test_stratum_gradients_vectorised_and_loop_paths_agree(monkeypatch):
    """The per-stratum backward falls back to a loop where vmap has no batching rule."""
    torch.manual_seed(0)
    model = TinyLM(CFG)
    params = list(model.parameters())
    x = torch.randint(0, 256, (6, 16))
    per_seq = _ce_per_seq(model, x, x)
    onehot = (torch.arange(6)[None] % 3 == torch.arange(3)[:, None]).float()
    fast = DGA._stratum_gradient_sums(per_seq, onehot, params)
    ref = torch.stack([torch.cat([g.reshape(-1) for g in torch.autograd.grad(
        per_seq @ onehot[j], params, retain_graph=True)]) for j in range(3)])
    torch.testing.assert_close(fast, ref)
    real = torch.autograd.grad

    def no_batching(*args, **kwargs):
        if kwargs.get("is_grads_batched"):
            raise RuntimeError("no batching rule")
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", no_batching)
    torch.testing.assert_close(DGA._stratum_gradient_sums(per_seq, onehot, params), ref)


def test_smoothing_keeps_a_floor_and_matches_hand_computation():
    dga = DGA(3, specific="s", step_size=1.0, ema=0.0, smoothing=0.3, init=[0.5, 0.3, 0.2])
    dga._update(np.array([1.0, 0.0, -1.0]), None)
    # mirror step by hand (see test_exponentiated_gradient_step_hand_computed), then mixed
    md = np.array([0.5 * np.e, 0.3, 0.2 / np.e])
    md /= md.sum()
    np.testing.assert_allclose(dga.raw_weights_, 0.7 * md + 0.1, rtol=1e-12)
    for _ in range(50):  # a basis pushed out keeps at least smoothing / p
        dga._update(np.array([1e3, -1e3, -1e3]), None)
    assert dga.weights_.min() >= 0.1 - 1e-12 and np.isclose(dga.weights_.sum(), 1.0)
    with pytest.raises(ValueError, match="smoothing"):
        DGA(3, specific="s", smoothing=1.0)


def test_standardised_alignments_match_hand_computation_and_are_scale_free():
    scores = np.array([3.0, 1.0, -1.0])  # mean 1, population std sqrt(8/3)
    z = (scores - 1.0) / np.sqrt(8.0 / 3.0)
    dga = DGA(3, specific="s", step_size=0.7, ema=0.0, normalize="std")
    dga._update(scores, None)
    expected = np.exp(0.7 * z) / np.exp(0.7 * z).sum()  # uniform start: softmax of 0.7 z
    np.testing.assert_allclose(dga.raw_weights_, expected, rtol=1e-12)
    np.testing.assert_allclose(dga.alignment_history_[-1], z)  # the scores of the step
    scaled = DGA(3, specific="s", step_size=0.7, ema=0.0, normalize="std")
    scaled._update(1e4 * scores - 5.0, None)  # any positive scale and shift: the same step
    np.testing.assert_allclose(scaled.raw_weights_, expected, rtol=1e-9)
    flat = DGA(3, specific="s", step_size=0.7, ema=0.0, normalize="std")
    flat._update(np.full(3, 2.5), None)  # equal alignments: no move, no division by zero
    np.testing.assert_allclose(flat.raw_weights_, np.full(3, 1 / 3), rtol=1e-12)
    with pytest.raises(ValueError, match="normalize must be one of"):
        DGA(3, specific="s", normalize="l2")
