"""Bad-input probes of sciml_toolbox.nn.soup: every public name, each case a clear error (or,
for results, checked against an independent computation)."""

import numpy as np
import pytest
import torch

from sciml_toolbox.nn.lm import DomainCorpus, TinyLM, TinyLMConfig
from sciml_toolbox.nn.soup import (
    DomainClassifier,
    DomainHistogramSampler,
    SoupOfExperts,
    estimate_histogram,
    load_model,
    save_model,
    soup_loss,
    specialist_losses,
    specialize,
    train_soup,
)

PROBED = {"sciml_toolbox.nn.soup": {"SoupOfExperts", "DomainHistogramSampler", "train_soup",
                                    "soup_loss", "DomainClassifier", "estimate_histogram",
                                    "specialize", "save_model", "load_model",
                                    "specialist_losses"}}

NAN = float("nan")
CFG = TinyLMConfig(d_model=8, n_layers=1, n_heads=2, max_seq_len=8)


@pytest.fixture(scope="module")
def corpus():
    return DomainCorpus.synthetic(n_domains=3, n_tokens=3000, seq_len=8)


@pytest.fixture(scope="module")
def soup():
    return SoupOfExperts(CFG, 2, 3)


@pytest.fixture(scope="module")
def classifier(corpus):
    return DomainClassifier(windows_per_domain=5, n_hash=16).fit(corpus)


@pytest.mark.parametrize("args, kw, match", [
    (("x", 2, 3), {}, "base"), ((None, 2, 3), {}, "base"), ((CFG, 0, 3), {}, "n_experts"),
    ((CFG, 2, 0), {}, "n_domains"), ((CFG, 2, 3), dict(coefficients="x"), "coefficients"),
    ((CFG, 2, 3), dict(top_k=5), "top_k"), ((CFG, 2, 3), dict(expert_init_std=NAN),
                                            "expert_init_std"),
    ((CFG, 2, 3), dict(rank=0), "rank"), ((CFG, 2, 3), dict(router_hidden=0), "router_hidden"),
])
def test_soup_bad_construction(args, kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        SoupOfExperts(*args, **kw)


def test_soup_from_a_module_instance_is_refused():
    with pytest.raises(TypeError, match="base"):
        SoupOfExperts(TinyLM(CFG), 2, 3)


@pytest.mark.parametrize("h", [[0.5, 0.6, 0.0], [NAN, 0.5, 0.5], [0.5, 0.5], [2.0, -1.0, 0.0],
                               torch.tensor([[0.5, 0.5, 0.0]])])
def test_soup_bad_histogram(soup, h):
    with pytest.raises(ValueError, match="h"):
        soup.coefficients(h)
    with pytest.raises(ValueError, match="h"):
        soup.instantiate(h)


def test_soup_bad_forward(soup):
    with pytest.raises(TypeError, match="idx"):
        soup(torch.zeros(1, 3), torch.tensor([0.5, 0.5, 0.0]))
    with pytest.raises(ValueError, match="idx"):
        soup(torch.full((1, 3), 300), torch.tensor([0.5, 0.5, 0.0]))
    with pytest.raises(ValueError, match="h"):
        soup(torch.zeros(1, 3, dtype=torch.long), torch.tensor([0.5, 0.6, 0.0]))


def test_soup_one_domain_histogram_instantiates_a_model_matching_the_soup(soup):
    h = torch.tensor([0.0, 1.0, 0.0])
    x = torch.randint(0, 256, (1, 3))
    model = soup.instantiate(h)
    torch.testing.assert_close(model(x), soup(x, h))


def test_histogram_sampler_bad_input():
    for kw, match in [(dict(n_domains=0), "n_domains"), (dict(n_domains=3, support_size=5),
                                                          "support_size"),
                      (dict(n_domains=3, concentration=NAN), "concentration")]:
        with pytest.raises(ValueError, match=match):
            DomainHistogramSampler(**kw)
    with pytest.raises(ValueError, match="n"):
        DomainHistogramSampler(3).sample_batch(0)
    h = DomainHistogramSampler(1).sample()  # one domain: the only histogram is [1]
    np.testing.assert_allclose(h, [1.0])


def test_train_soup_and_soup_loss_bad_input(corpus, soup):
    with pytest.raises(TypeError, match="soup"):
        train_soup("x", corpus, 1)
    with pytest.raises(TypeError, match="corpus"):
        train_soup(soup, "c", 1)
    with pytest.raises(TypeError, match="sampler"):
        train_soup(soup, corpus, 1, sampler=3)
    with pytest.raises(ValueError, match="n_domains"):
        train_soup(SoupOfExperts(CFG, 2, 5), corpus, 1, batch_size=2)
    with pytest.raises(TypeError, match="loss_fn"):
        train_soup(soup, corpus, 1, loss_fn=lambda *a: 0)
    x = torch.zeros(1, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="state"):
        soup_loss(soup, x, x)


def test_classifier_and_histogram_bad_input(corpus, classifier):
    with pytest.raises(ValueError, match="windows_per_domain"):
        DomainClassifier(windows_per_domain=0)
    with pytest.raises(ValueError, match="C"):
        DomainClassifier(C=-1)
    with pytest.raises(TypeError, match="corpus"):
        DomainClassifier().fit("x")
    with pytest.raises(RuntimeError, match="fit"):
        DomainClassifier().predict_proba(np.zeros((2, 8), dtype=int))
    with pytest.raises(ValueError, match="windows"):
        classifier.predict_proba(np.zeros(8, dtype=int))
    for tokens, kw, match, exc in [
            (np.array([1.5, 2.5] * 40), {}, "tokens", TypeError),
            (np.arange(20), dict(window=0), "window", ValueError),
            (np.arange(3), {}, "tokens", ValueError), (np.arange(300), {}, "tokens", ValueError),
            (np.array([], dtype=int), {}, "tokens", ValueError)]:
        with pytest.raises(exc, match=match):
            estimate_histogram(classifier, tokens, **kw)
    with pytest.raises(TypeError, match="classifier"):
        estimate_histogram("clf", np.arange(80))


def test_histogram_of_one_window_is_its_prediction(corpus, classifier):
    x, _, _ = corpus.domain_batch(1, 1)
    h = estimate_histogram(classifier, x)
    np.testing.assert_allclose(h, classifier.predict_proba(x)[0])
    assert np.isclose(h.sum(), 1.0)


def test_specialize_bad_input(soup):
    with pytest.raises(ValueError, match="h"):
        specialize(soup, [0.5, 0.6, 0.0])
    with pytest.raises(ValueError, match="finetune_steps"):
        specialize(soup, [0.5, 0.5, 0.0], finetune_steps=-1)
    with pytest.raises(ValueError, match="corpus"):
        specialize(soup, [0.5, 0.5, 0.0], finetune_steps=1)


def test_save_and_load_model_bad_input(tmp_path):
    with pytest.raises(TypeError, match="model"):
        save_model("x", tmp_path / "a.pt")
    junk = tmp_path / "junk.pt"
    for content in (b"", b"junk"):
        junk.write_bytes(content)
        with pytest.raises(ValueError, match="junk.pt"):
            load_model(junk)
        with pytest.raises(ValueError, match="junk.pt"):
            SoupOfExperts.load(junk)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_model(tmp_path / "missing.pt")
    torch.save({"format": "other"}, junk)
    with pytest.raises(ValueError, match="junk.pt"):
        load_model(junk)
    m = TinyLM(CFG)
    save_model(m, tmp_path / "m.pt")
    m2 = load_model(tmp_path / "m.pt")
    x = torch.randint(0, 256, (1, 4))
    torch.testing.assert_close(m2(x), m(x))


@pytest.mark.parametrize("mixtures, match", [
    (np.ones((2, 2)) / 2, "mixtures"),              # two weights for three domains
    (np.ones(3) / 3, "mixtures"),                   # one mixture must still be 2-D
    (np.array([[0.5, 0.5, 0.5]]), "mixtures"),      # off the simplex
    (np.array([[NAN, 0.5, 0.5]]), "mixtures"),
    (np.array([[1.5, -0.5, 0.0]]), "mixtures"),
])
def test_specialist_losses_bad_mixtures(corpus, soup, mixtures, match):
    with pytest.raises(ValueError, match=match):
        specialist_losses(soup, corpus, mixtures)


def test_specialist_losses_bad_model(corpus):
    with pytest.raises(TypeError, match="model"):
        specialist_losses("not a model", corpus, np.ones((1, 3)) / 3)


def test_specialist_losses_of_a_generic_model_are_the_weighted_domain_losses(corpus):
    from sciml_toolbox.nn.lm import evaluate

    torch.manual_seed(0)
    model = TinyLM(TinyLMConfig(vocab_size=corpus.vocab_size, d_model=8, n_layers=1,
                                n_heads=2, max_seq_len=8))
    H = np.array([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
    per_domain = np.array(list(evaluate(model, corpus, max_windows=4).values()))
    got = specialist_losses(model, corpus, H, max_windows=4)
    np.testing.assert_allclose(got, H @ per_domain, rtol=1e-12)
