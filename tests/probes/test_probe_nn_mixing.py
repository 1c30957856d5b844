"""Bad-input probes of sciml_toolbox.nn.mixing: every public name, each case a clear error (or,
for results, checked against an independent computation)."""

import numpy as np
import pytest
import torch

from sciml_toolbox.nn.lm import DomainCorpus, TinyLM, TinyLMConfig, train
from sciml_toolbox.nn.mixing import (
    DGA,
    DoGE,
    ImportanceSampling,
    MixingMethod,
    UniformMixture,
    exponentiated_gradient_step,
)

PROBED = {"sciml_toolbox.nn.mixing": {"DGA", "DoGE", "ImportanceSampling", "UniformMixture",
                                      "MixingMethod", "exponentiated_gradient_step"}}

NAN = float("nan")
CFG = TinyLMConfig(d_model=8, n_layers=1, n_heads=2, max_seq_len=8)


@pytest.fixture(scope="module")
def corpus():
    return DomainCorpus.synthetic(n_domains=3, n_tokens=3000, seq_len=8)


# -------------------------------------------------------------------------- mirror step
@pytest.mark.parametrize("w, s, step, match", [
    ([NAN, 1.0], [0, 0], 1.0, "weights"), ([-0.5, 1.5], [0, 0], 1.0, "weights"),
    ([0.2, 0.2], [1, 0], 1.0, "weights"), ([[0.5, 0.5]], [[1, 0]], 1.0, "weights"),
    ([], [], 1.0, "weights"), ([0.5, 0.5], [0, 0, 1], 1.0, "scores"),
    ([0.5, 0.5], [NAN, 0], 1.0, "scores"), ([0.5, 0.5], [np.inf, 0], 1.0, "scores"),
    ([0.5, 0.5], [1, 0], -1.0, "step_size"), ([0.5, 0.5], [1, 0], NAN, "step_size"),
])
def test_exponentiated_gradient_step_bad_input(w, s, step, match):
    with pytest.raises(ValueError, match=match):
        exponentiated_gradient_step(w, s, step)


def test_exponentiated_gradient_step_closed_form_and_zero_weights():
    w, s = np.array([0.2, 0.3, 0.5, 0.0]), np.array([1.0, -2.0, 0.5, 3.0])
    w_in = w.copy()
    out = exponentiated_gradient_step(w, s, 0.7)
    e = np.array([0.2 * np.exp(0.7), 0.3 * np.exp(-1.4), 0.5 * np.exp(0.35), 0.0])
    np.testing.assert_allclose(out, e / e.sum(), rtol=1e-12)
    assert np.array_equal(w, w_in)  # not modified in place
    np.testing.assert_allclose(exponentiated_gradient_step([1.0], [5.0], 1.0), [1.0])


# -------------------------------------------------------------------------- constructors
@pytest.mark.parametrize("make, match", [
    (lambda: MixingMethod(0), "n_domains"), (lambda: UniformMixture(2.5), "n_domains"),
    (lambda: ImportanceSampling([0.5, 0.6]), "histogram"),
    (lambda: ImportanceSampling([NAN, 1.0]), "histogram"),
    (lambda: ImportanceSampling([[0.5, 0.5]]), "histogram"),
    (lambda: DGA(0, specific="a"), "n_domains"), (lambda: DGA(2, specific=None), "specific"),
    (lambda: DGA(2, specific=[]), "specific"), (lambda: DGA(2, specific=[1.5, 2.5]), "specific"),
    (lambda: DGA(2, specific=[[1, 2]]), "specific"), (lambda: DGA(2, specific=[-1, 2]),
                                                      "specific"),
    (lambda: DGA(2, specific="a", ema=1.0), "ema"),
    (lambda: DGA(2, specific="a", step_size=NAN), "step_size"),
    (lambda: DGA(2, specific="a", bases=[[0.5, 0.6]]), r"bases\[0\]"),
    (lambda: DGA(2, specific="a", bases=[[1.0, 0, 0]]), "bases"),
    (lambda: DGA(2, specific="a", init=[0.2, 0.2]), "init"),
    (lambda: DGA(2, specific="a", alignment="x"), "alignment"),
    (lambda: DGA(2, specific="a", preconditioning="x"), "preconditioning"),
    (lambda: DGA(2, specific="a", update_every=0), "update_every"),
    (lambda: DGA(2, specific="a", fd_step=0.0), "fd_step"),
    (lambda: DGA(2, specific="a", smoothing=1.0), "smoothing"),
    (lambda: DGA(2, specific="a", normalize="x"), "normalize"),
    (lambda: DGA(2, specific="a").train_kwargs(0), "batch_size"),
    (lambda: DoGE(2, specific="a", alignment="forward_ad"), "alignment"),
    (lambda: DoGE(2, specific="a", mu=0), "mu"), (lambda: DoGE(2, specific="a", clip=-1), "clip"),
    (lambda: DoGE(2, specific="a", normalize="std"), "normalize"),
])
def test_constructors_bad_input(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_unbound_method_and_bad_state():
    with pytest.raises(RuntimeError, match="train"):
        UniformMixture(2)(0)
    with pytest.raises(ValueError, match="weights"):
        ImportanceSampling([0.5, 0.5]).load_state_dict({"weights": [1.0, 0.0, 0.0],
                                                        "history": {}})


# -------------------------------------------------------------------------- binding to a corpus
@pytest.mark.parametrize("make, match", [
    (lambda: DGA(2, specific="zz"), "domain"),
    (lambda: DGA(3, specific="markov2"), "n_domains"),
    (lambda: UniformMixture(2, generic_domains=["a", "b"]), "domain"),
    (lambda: ImportanceSampling([0.5, 0.5], generic_domains=["markov0", "markov1"],
                                specific="markov1"), "specific"),
    (lambda: DGA(3, specific=np.arange(300)), "specific"),  # token 299 outside the bytes
    (lambda: DGA(3, specific=np.arange(5)), "specific"),  # shorter than one window
])
def test_binding_bad_input(corpus, make, match):
    with pytest.raises(ValueError, match=match):
        train(TinyLM(CFG), corpus, make(), 1, batch_size=2, eval_windows=1)


def test_dga_plain_call_updates_and_foreign_loss_is_refused(corpus):
    dga = DGA(2, specific="markov2", update_every=1)
    train(TinyLM(CFG), corpus, dga, 2, batch_size=2, eval_windows=1)
    assert dga.n_updates_ == 2 and len(dga.history_["weights"]) == 2
    np.testing.assert_allclose(dga.weights_.sum(), 1.0)

    def loss(model, x, y, state):
        return model(x, y)

    with pytest.raises(ValueError, match="loss_fn"):
        train(TinyLM(CFG), corpus, DGA(2, specific="markov2"), 1, batch_size=2,
              eval_windows=1, loss_fn=loss)


def test_uniform_one_domain_gives_its_mixture(corpus):
    hist = train(TinyLM(CFG), corpus, UniformMixture(1, generic_domains=["markov1"]), 1,
                 batch_size=1, eval_windows=1)
    assert hist.mixture == [[0.0, 1.0, 0.0]]
    assert torch.isfinite(torch.tensor(hist.train_loss)).all()
