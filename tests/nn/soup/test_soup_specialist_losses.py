"""specialist_losses: sum_i h_i L_i per mixture, the soup instantiated at each h."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sciml_toolbox.nn.lm import DomainCorpus, TinyLM, TinyLMConfig, evaluate  # noqa: E402
from sciml_toolbox.nn.soup import SoupOfExperts, specialist_losses  # noqa: E402

CFG = TinyLMConfig(d_model=16, n_layers=1, n_heads=2, max_seq_len=16)


@pytest.fixture(scope="module")
def corpus():
    return DomainCorpus.synthetic(n_domains=3, similarity=0.2, n_tokens=6_000, seq_len=16)


def test_plain_model_is_linear_in_h(corpus):
    torch.manual_seed(0)
    model = TinyLM(CFG)
    per_domain = evaluate(model, corpus, max_windows=8)
    H = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.2, 0.3, 0.5]])
    out = specialist_losses(model, corpus, H, max_windows=8)
    assert out.shape == (3,)
    assert out[0] == pytest.approx(per_domain[corpus.names[0]], rel=1e-12)
    assert out[1] == pytest.approx(per_domain[corpus.names[2]], rel=1e-12)
    assert out[2] == pytest.approx(0.2 * out[0] + 0.3 * per_domain[corpus.names[1]]
                                   + 0.5 * out[1], rel=1e-12)


def test_soup_is_instantiated_at_each_mixture(corpus):
    soup = SoupOfExperts(CFG, n_experts=3, n_domains=3, random_state=0)
    with torch.no_grad():  # experts that differ, so that specialists differ
        for p in soup.parameters():
            p.add_(0.3 * torch.randn_like(p))
    H = np.array([[1.0, 0.0, 0.0], [0.1, 0.6, 0.3]])
    out = specialist_losses(soup, corpus, H, max_windows=8)
    for h, value in zip(H, out, strict=True):
        losses = evaluate(soup.instantiate(h), corpus, max_windows=8)
        assert value == pytest.approx(sum(w * losses[n] for w, n in zip(h, corpus.names,
                                                                           strict=True)),
                                      rel=1e-12)
    # a soup is not one model: its specialists differ, so the loss is not linear in h
    pure = specialist_losses(soup, corpus, np.eye(3), max_windows=8)
    assert abs(out[1] - H[1] @ pure) > 1e-6


def test_bad_input(corpus):
    model = TinyLM(CFG)
    with pytest.raises(ValueError, match="mixtures"):
        specialist_losses(model, corpus, np.ones(3) / 3)
    with pytest.raises(ValueError, match="mixtures"):
        specialist_losses(model, corpus, np.ones((2, 4)) / 4)
    with pytest.raises(ValueError, match=r"mixtures\[1\]"):
        specialist_losses(model, corpus, [[1.0, 0.0, 0.0], [0.5, 0.6, 0.0]])
    with pytest.raises(TypeError, match="model"):
        specialist_losses("not a model", corpus, np.eye(3))
