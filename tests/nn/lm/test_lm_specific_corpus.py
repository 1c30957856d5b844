"""specific_mixture_corpus: the generic domains and a specific set of known mixture."""

import numpy as np
import pytest

pytest.importorskip("torch")

from sciml_toolbox.nn.lm import (  # noqa: E402
    DomainCorpus,
    markov_domains,
    sample_mixture,
    specific_mixture_corpus,
)


def test_streams_are_the_documented_samples_and_budgets_hold():
    target = [0.7, 0.3, 0.0]
    corpus = specific_mixture_corpus(target, n_tokens=5_000, generic_tokens=1_000,
                                     specific_tokens=1_500, seq_len=16, random_state=3)
    sources = markov_domains(3, similarity=0.5, n_states=24, random_state=3)
    data = {s.name: s.sample(5_000, random_state=3 + i) for i, s in enumerate(sources)}
    data["specific"] = sample_mixture(sources, target, 5_000, chunk_len=64, random_state=12)
    ref = DomainCorpus(data, seq_len=16, val_fraction=0.2,
                       max_train_tokens={**dict.fromkeys(data, 1_000), "specific": 1_500})
    assert corpus.names == ref.names == [s.name for s in sources] + ["specific"]
    for name in corpus.names:
        assert np.array_equal(corpus._train[name].numpy(), ref._train[name].numpy())
        assert np.array_equal(corpus._val[name].numpy(), ref._val[name].numpy())
    assert corpus.unique_tokens["specific"] == 1_500
    assert all(corpus.unique_tokens[s.name] == 1_000 for s in sources)
    assert len(corpus.sources) == 3


def test_bad_target():
    with pytest.raises(ValueError, match="target"):
        specific_mixture_corpus(np.ones((2, 2)) / 4)
    with pytest.raises(ValueError, match="target"):
        specific_mixture_corpus([0.5, 0.6])
    with pytest.raises(ValueError, match="generic_tokens"):
        specific_mixture_corpus([0.5, 0.5], n_tokens=2_000, generic_tokens=0)
