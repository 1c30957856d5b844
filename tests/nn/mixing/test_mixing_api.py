"""Mixing methods in the workbench trainer: baselines, bases, DoGE, checkpoints, errors."""

import numpy as np
import pytest
import torch

from sciml_toolbox.nn.lm import DomainCorpus, TinyLM, TinyLMConfig, train
from sciml_toolbox.nn.mixing import DGA, DoGE, ImportanceSampling, UniformMixture

CFG = TinyLMConfig(d_model=16, n_layers=1, n_heads=2, max_seq_len=16)


@pytest.fixture(scope="module")
def corpus():
    return DomainCorpus.synthetic(n_domains=4, similarity=0.3, n_tokens=20_000, seq_len=16)


def test_fixed_baselines_give_their_mixture(corpus):
    uni = UniformMixture(3, generic_domains=["markov0", "markov1", "markov2"])
    hist = train(TinyLM(CFG), corpus, uni, 3, batch_size=4, eval_windows=2)
    np.testing.assert_allclose(hist.mixture, [[1 / 3, 1 / 3, 1 / 3, 0.0]] * 3)
    imp = ImportanceSampling([0.7, 0.0, 0.3], specific="markov3")
    hist = train(TinyLM(CFG), corpus, imp, 2, batch_size=4, eval_windows=2)
    np.testing.assert_allclose(hist.mixture, [[0.7, 0.0, 0.3, 0.0]] * 2)


def test_importance_sampling_from_classifier(corpus):
    from sciml_toolbox.nn.soup import DomainClassifier

    generic = DomainCorpus({n: corpus._train[n].numpy() for n in corpus.names[:3]}, seq_len=16)
    clf = DomainClassifier(windows_per_domain=80).fit(generic)
    x, _, _ = corpus.domain_batch("markov1", 50, split="val")
    imp = ImportanceSampling.from_classifier(clf, x, specific="markov3")
    assert imp.weights_.argmax() == 1 and imp.weights_[1] > 0.8


def test_bases_variant_cost_scales_with_bases(corpus):
    bases = np.array([[0.5, 0.5, 0.0], [0.0, 0.2, 0.8]])
    dga = DGA(3, specific="markov3", bases=bases, update_every=1, step_size=5.0)
    train(TinyLM(CFG), corpus, dga, 3, eval_windows=2, **dga.train_kwargs(batch_size=4))
    assert dga.basis_weights_.shape == (2,) and len(dga.alignment_history_[-1]) == 2
    np.testing.assert_allclose(dga.weights_, dga.basis_weights_ @ bases)


def test_doge_style(corpus):
    doge = DoGE(3, specific="markov3", mu=0.01)
    train(TinyLM(CFG), corpus, doge, 4, eval_windows=2, **doge.train_kwargs(batch_size=6))
    assert doge.n_updates_ == 4
    assert np.isclose(doge.average_weights_.sum(), 1)
    assert all(np.all(np.abs(a) <= 1.0 + 1e-12) for a in doge.alignment_history_)


def test_adam_preconditioning_runs(corpus):
    dga = DGA(3, specific="markov3", update_every=2, preconditioning="adam")
    train(TinyLM(CFG), corpus, dga, 4, eval_windows=2, **dga.train_kwargs(batch_size=6))
    assert dga.n_updates_ == 2 and np.all(np.isfinite(dga.weights_))


def test_checkpoint_resume_reproduces_weights(tmp_path):
    def run(resume):
        c = DomainCorpus.synthetic(n_domains=3, n_tokens=20_000, seq_len=16)
        torch.manual_seed(0)
        m = TinyLM(CFG)
        d = DGA(2, specific="markov2", update_every=2, step_size=5.0)
        ck = tmp_path / f"ck{int(resume)}.pt"
        if resume:
            train(m, c, d, 4, checkpoint_path=ck, eval_windows=2, lr_schedule="constant",
                  **d.train_kwargs(batch_size=4))
            c = DomainCorpus.synthetic(n_domains=3, n_tokens=20_000, seq_len=16)
            torch.manual_seed(0)
            m = TinyLM(CFG)
            d = DGA(2, specific="markov2", update_every=2, step_size=5.0)
        train(m, c, d, 8, checkpoint_path=ck if resume else None, resume=resume,
              eval_windows=2, lr_schedule="constant", **d.train_kwargs(batch_size=4))
        return d

    a, b = run(False), run(True)
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=1e-6)


def test_errors(corpus):
    with pytest.raises(ValueError, match="step_size must be >= 0"):
        DGA(3, specific="markov3", step_size=-1.0)
    with pytest.raises(ValueError, match="specific .* is empty"):
        DGA(3, specific=np.zeros(0, dtype=int))
    with pytest.raises(ValueError, match="specific .* must be given"):
        DGA(3, specific=None)
    with pytest.raises(ValueError, match="ema must be in"):
        DGA(3, specific="markov3", ema=1.0)
    with pytest.raises(ValueError, match="normalize must stay 'none'"):
        DoGE(3, specific="markov3", normalize="std")
    with pytest.raises(ValueError, match="preconditioning must be one of"):
        DGA(3, specific="markov3", preconditioning="shampoo")
    with pytest.raises(ValueError, match=r"bases\[1\] must sum to 1"):
        DGA(3, specific="markov3", bases=[[1, 0, 0], [0.5, 0.0, 0.0]])
    with pytest.raises(ValueError, match="histogram must be non-negative"):
        ImportanceSampling([1.2, -0.2, 0.0])
    with pytest.raises(ValueError, match="n_domains=2 but 3 generic domains"):
        DGA(2, specific="markov3").bind(corpus)
    with pytest.raises(ValueError, match="domain must be one of"):
        DGA(3, specific="nope").bind(corpus)
    with pytest.raises(ValueError, match="also listed among generic_domains"):
        DGA(3, specific="markov2", generic_domains=[0, 1, 2]).bind(corpus)
    with pytest.raises(ValueError, match="fewer than one window"):
        DGA(4, specific=np.ones(5, dtype=int)).bind(corpus)
    with pytest.raises(RuntimeError, match="not bound to a corpus"):
        UniformMixture(3)(0)


def test_empty_domain_is_rejected():
    with pytest.raises(ValueError, match="domain 'b' has 0 training tokens"):
        DomainCorpus({"a": "some text " * 100, "b": ""}, seq_len=8)


def test_dga_as_plain_mixture_is_wired_like_train_kwargs(corpus):
    # train(model, corpus, dga, steps) without **dga.train_kwargs(): the trainer wires DGA's
    # batches and loss itself, so the run is the explicit one, step for step
    runs = []
    for explicit in (True, False):
        corpus.reset()
        torch.manual_seed(0)
        dga = DGA(3, specific="markov3", update_every=2, step_size=5.0)
        kw = dga.train_kwargs(batch_size=4) if explicit else dict(batch_size=4)
        hist = train(TinyLM(CFG), corpus, dga, 4, eval_windows=2, **kw)
        runs.append((hist, dga))
    (h1, d1), (h2, d2) = runs
    assert d2.n_updates_ == d1.n_updates_ == 2
    np.testing.assert_array_equal(d2.weights_, d1.weights_)
    assert h2.train_loss == h1.train_loss and h2.mixture == h1.mixture


def test_dga_with_a_foreign_loss_or_batch_size_is_refused(corpus):
    from sciml_toolbox.nn.lm import default_loss

    dga = DGA(3, specific="markov3", update_every=1)
    with pytest.raises(ValueError, match="loss_fn"):
        train(TinyLM(CFG), corpus, dga, 1, batch_size=4, eval_windows=2, loss_fn=default_loss)
    kw = dga.train_kwargs(batch_size=4)
    kw["batch_size"] = 8
    with pytest.raises(ValueError, match="batch_size"):
        train(TinyLM(CFG), corpus, dga, 1, eval_windows=2, **kw)
