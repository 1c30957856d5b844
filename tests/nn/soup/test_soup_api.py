"""Soup-of-Experts API: training through the workbench, specialisation, persistence, errors."""

import numpy as np
import pytest
import torch
from torch import nn

from sciml_toolbox.nn.lm import DomainCorpus, TinyLMConfig
from sciml_toolbox.nn.soup import (
    DomainClassifier,
    DomainHistogramSampler,
    SoupOfExperts,
    estimate_histogram,
    load_model,
    save_model,
    specialize,
    train_soup,
)

CFG = TinyLMConfig(d_model=32, n_layers=1, n_heads=2, max_seq_len=32)


@pytest.fixture(scope="module")
def corpus():
    return DomainCorpus.synthetic(n_domains=3, similarity=0.2, n_tokens=30_000, seq_len=32)


def test_sampler_histograms():
    s = DomainHistogramSampler(6, support_size=3, concentration=0.5, random_state=0)
    hs = s.sample_batch(200)
    assert hs.shape == (200, 6)
    np.testing.assert_allclose(hs.sum(1), 1.0)
    assert np.all(hs >= 0) and np.all((hs > 0).sum(1) == 3)
    # every domain appears in supports (uniform choice)
    assert np.all((hs > 0).mean(0) > 0.3)
    state = s.state_dict()
    a = s.sample()
    s.load_state_dict(state)
    np.testing.assert_array_equal(a, s.sample())


def test_training_lowers_specialist_losses_and_resumes(corpus, tmp_path):
    soup = SoupOfExperts(CFG, n_experts=4, n_domains=3, random_state=0)
    hist = train_soup(soup, corpus, 40, batch_size=8, lr=3e-3, eval_every=40, eval_windows=8)
    first = {k: v[0] for k, v in hist.val_loss.items()}
    last = hist.final_val_loss()
    assert all(last[k] < first[k] - 0.3 for k in first)
    assert len(hist.mixture) == 40 and all(abs(sum(m) - 1) < 1e-9 for m in hist.mixture)
    # checkpoint + resume equals an uninterrupted run
    ck = tmp_path / "soup.pt"

    def run(steps, resume):
        c = DomainCorpus.synthetic(n_domains=3, similarity=0.2, n_tokens=30_000, seq_len=32)
        s = SoupOfExperts(CFG, n_experts=2, n_domains=3, random_state=0)
        if resume:
            train_soup(s, c, 6, batch_size=4, checkpoint_path=ck, lr_schedule="constant",
                       sampler=DomainHistogramSampler(3, random_state=5))
        h = train_soup(s, c, steps, batch_size=4, checkpoint_path=ck if resume else None,
                       resume=resume, lr_schedule="constant",
                       sampler=DomainHistogramSampler(3, random_state=5))
        return s, h

    full, h_full = run(10, resume=False)
    ck.unlink(missing_ok=True)
    resumed, h_res = run(10, resume=True)
    assert h_full.mixture == h_res.mixture
    for (n, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items(),
                                  strict=True):
        torch.testing.assert_close(a, b, msg=n)


def test_estimate_histogram_recovers_known_mixture(corpus):
    clf = DomainClassifier(windows_per_domain=150, random_state=0).fit(corpus)
    target = np.array([0.6, 0.4, 0.0])
    windows = []
    for i, w in enumerate(target):
        x, _, _ = corpus.domain_batch(i, int(round(200 * w)), split="val") if w else (None,) * 3
        if x is not None:
            windows.append(x.numpy())
    h = estimate_histogram(clf, np.concatenate(windows), hard=True)
    assert np.abs(h - target).max() < 0.1
    soft = estimate_histogram(clf, np.concatenate(windows).reshape(-1), window=32)
    assert np.abs(soft - target).max() < 0.15


def test_specialize_and_finetune(corpus):
    soup = SoupOfExperts(CFG, n_experts=2, n_domains=3)
    model, hist = specialize(soup, [0, 1, 0])
    assert hist is None and isinstance(model, nn.Module)
    model, hist = specialize(soup, [0, 1, 0], corpus=corpus, specialist="markov1",
                             finetune_steps=5, batch_size=4, eval_windows=4)
    assert len(hist.train_loss) == 5
    with pytest.raises(ValueError, match="corpus= and specialist="):
        specialize(soup, [0, 1, 0], finetune_steps=3)


def test_save_load_roundtrip(tmp_path):
    soup = SoupOfExperts(CFG, n_experts=3, n_domains=2, rank=2, random_state=3)
    path = tmp_path / "soup.pt"
    soup.save(path)
    again = SoupOfExperts.load(path)
    h = [0.4, 0.6]
    x = torch.randint(0, 256, (1, 8))
    with torch.no_grad():
        torch.testing.assert_close(soup(x, h), again(x, h))
    model = soup.instantiate(h)
    save_model(model, tmp_path / "m.pt")
    back = load_model(tmp_path / "m.pt")
    with torch.no_grad():
        torch.testing.assert_close(model(x), back(x))
    # factory-built soups need their factory to load
    fsoup = SoupOfExperts(lambda: nn.Linear(3, 2), n_experts=2, n_domains=2)
    fsoup.save(tmp_path / "f.pt")
    with pytest.raises(ValueError, match="pass it as base="):
        SoupOfExperts.load(tmp_path / "f.pt")
    f2 = SoupOfExperts.load(tmp_path / "f.pt", base=lambda: nn.Linear(3, 2))
    torch.testing.assert_close(fsoup.instantiate(h).weight, f2.instantiate(h).weight)
    torch.save({"x": 1}, tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="not a file written by"):
        SoupOfExperts.load(tmp_path / "junk.pt")


def test_factory_base_and_functional_call():
    soup = SoupOfExperts(lambda: nn.Linear(4, 3), n_experts=2, n_domains=2)
    x = torch.randn(5, 4)
    out = soup(x, [0.5, 0.5])
    torch.testing.assert_close(out, soup.instantiate([0.5, 0.5])(x))


@pytest.mark.parametrize("h,match", [
    ([0.5, 0.6, 0.0], "h must sum to 1"),
    ([-0.1, 0.6, 0.5], "h must be non-negative"),
    ([0.5, 0.5], "h must have length 3"),
    ([np.nan, 0.5, 0.5], "h must contain only finite"),
])
def test_bad_h(h, match):
    soup = SoupOfExperts(CFG, n_experts=2, n_domains=3)
    with pytest.raises(ValueError, match=match):
        soup.instantiate(h)
    with pytest.raises(ValueError, match=match.split(" ")[0]):
        soup(torch.zeros(1, 4, dtype=torch.long), torch.tensor(h, dtype=torch.float32))


def test_bad_constructor_arguments(corpus):
    with pytest.raises(ValueError, match="n_experts must be >= 1"):
        SoupOfExperts(CFG, n_experts=0, n_domains=3)
    with pytest.raises(ValueError, match="rank must be >= 1"):
        SoupOfExperts(CFG, n_experts=2, n_domains=3, rank=0)
    with pytest.raises(ValueError, match="coefficients must be one of"):
        SoupOfExperts(CFG, n_experts=2, n_domains=3, coefficients="sigmoid")
    with pytest.raises(TypeError, match="base must be a TinyLMConfig or a callable"):
        SoupOfExperts(42, n_experts=2, n_domains=3)
    with pytest.raises(ValueError, match="corpus has 3 domains but the soup expects"):
        train_soup(SoupOfExperts(CFG, n_experts=2, n_domains=4), corpus, 1)
    with pytest.raises(ValueError, match="support_size must be <= 3"):
        DomainHistogramSampler(3, support_size=4)
    with pytest.raises(ValueError, match="tokens .* is empty"):
        estimate_histogram(DomainClassifier().fit(corpus), np.zeros(0, dtype=int))


def test_top_k_survives_save_load_and_bad_top_k(tmp_path):
    soup = SoupOfExperts(CFG, n_experts=4, n_domains=2, top_k=2, random_state=4)
    soup.save(tmp_path / "soup.pt")
    again = SoupOfExperts.load(tmp_path / "soup.pt")
    assert again.top_k == 2
    phi = again.coefficients([0.3, 0.7])
    assert int(torch.count_nonzero(phi)) == 2
    torch.testing.assert_close(phi, soup.coefficients([0.3, 0.7]))
    with pytest.raises(ValueError, match="top_k"):
        SoupOfExperts(CFG, n_experts=4, n_domains=2, top_k=0)
