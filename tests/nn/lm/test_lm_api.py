"""Public API of the workbench: determinism, options, and one test per bad input."""

import importlib

import numpy as np
import pytest
import torch

from sciml_toolbox.nn.lm import (
    ByteTokenizer,
    DomainCorpus,
    TinyLM,
    TinyLMConfig,
    markov_domains,
    pydoc_topics_text,
    python_source_text,
    sample_mixture,
    train,
)


def _corpus():
    return DomainCorpus.synthetic(2, n_tokens=4000, seq_len=16)


def _model():
    return TinyLM(TinyLMConfig(d_model=16, n_layers=1, n_heads=2, max_seq_len=16))


def test_corpus_is_deterministic_and_state_roundtrips():
    a, b = _corpus(), _corpus()
    xa, _, da = a.sample([0.5, 0.5], 8)
    xb, _, db = b.sample([0.5, 0.5], 8)
    assert torch.equal(xa, xb) and torch.equal(da, db)
    st = a.state_dict()
    x1 = a.sample([0.5, 0.5], 8)[0]
    a.load_state_dict(st)
    assert torch.equal(a.sample([0.5, 0.5], 8)[0], x1)
    c = DomainCorpus.synthetic(2, n_tokens=4000, seq_len=16, random_state=7)
    assert not torch.equal(c.sample([0.5, 0.5], 8)[0], xa)


def test_stdlib_corpus_code_and_prose():
    corpus = DomainCorpus.from_stdlib(code_bytes=20_000, prose_bytes=20_000, seq_len=32)
    assert corpus.names == ["code", "prose"]
    x, _, _ = corpus.domain_batch("code", 2)
    assert x.max() < 256
    assert "def " in python_source_text(5000)
    assert len(pydoc_topics_text().encode()) > 300_000
    email = DomainCorpus.from_stdlib(("email",), code_bytes=10_000, seq_len=32)
    assert email.unique_tokens["email"] == 9000


def test_code_domain_excludes_codec_tables_and_the_prose_domain():
    # the whole standard library (about 10 MB): no generated codec table, and no copy of the
    # prose domain (pydoc_data/topics.py), whose text would otherwise leak into "code"
    code = python_source_text(50_000_000)
    assert "gencodec.py" not in code
    prose = pydoc_topics_text()
    probe = prose[len(prose) // 2:len(prose) // 2 + 200]
    assert probe not in code
    assert "import encodings" in code or "def search_function" in code  # encodings' code stays


def test_max_train_tokens_and_epochs():
    corpus = DomainCorpus({"a": np.arange(2000) % 200}, seq_len=10, max_train_tokens=100)
    assert corpus.unique_tokens["a"] == 100
    corpus.domain_batch("a", 20)
    assert corpus.epochs_seen()["a"] == pytest.approx(2.0)


def test_config_presets_and_sizes():
    for size, n in [("0.1M", 1e5), ("1M", 1e6), ("10M", 1e7), ("50M", 5e7)]:
        assert 0.7 * n < TinyLMConfig.from_size(size).n_params() < 1.3 * n
    cfg = TinyLMConfig.from_size("1M", attention="softmax", dropout=0.1)
    assert cfg.dropout == 0.1
    assert TinyLMConfig.from_size("0.1M").to_dict()["d_model"] == 48


def test_generate_shape():
    out = _model().generate(torch.zeros(2, 3, dtype=torch.long), 5)
    assert out.shape == (2, 8)


def test_sigmoid_attention_lazy_import():
    cfg = TinyLMConfig(d_model=16, n_layers=1, n_heads=2, attention="sigmoid")
    try:
        importlib.import_module("sciml_toolbox.nn.attention").sigmoid_attention  # noqa: B018
    except (ImportError, AttributeError):
        with pytest.raises(ImportError, match="sigmoid"):
            TinyLM(cfg)
        return
    torch.manual_seed(0)
    model = TinyLM(cfg)
    a = torch.randint(0, 256, (1, 12))
    b = a.clone()
    b[0, 8:] = (b[0, 8:] + 1) % 256
    with torch.no_grad():
        la, lb = model(a), model(b)
    assert torch.isfinite(la).all()
    torch.testing.assert_close(la[:, :8], lb[:, :8])  # causal
    assert (la[:, 8:] - lb[:, 8:]).abs().max() > 1e-5
    hist = train(model, _corpus(), [0.5, 0.5], 30, lr=1e-2, batch_size=8, eval_every=30,
                 eval_windows=4)
    assert hist.val_loss["markov0"][-1] < hist.val_loss["markov0"][0] - 0.5


# ----------------------------------------------------------------------------- bad input
def test_bad_mixture_sum():
    with pytest.raises(ValueError, match="mixture"):
        _corpus().sample([0.5, 0.6], 4)


def test_bad_mixture_negative():
    with pytest.raises(ValueError, match="mixture"):
        _corpus().sample([1.5, -0.5], 4)


def test_bad_mixture_length():
    with pytest.raises(ValueError, match="mixture"):
        _corpus().sample([1.0], 4)


def test_bad_mixture_in_train():
    with pytest.raises(ValueError, match="mixture"):
        train(_model(), _corpus(), [0.2, 0.2], 1)


def test_bad_domains_empty():
    with pytest.raises(ValueError, match="domains"):
        DomainCorpus({})


def test_bad_domain_too_short():
    with pytest.raises(ValueError, match="seq_len"):
        DomainCorpus({"a": np.arange(50)}, seq_len=64)


def test_bad_domain_tokens_out_of_vocab():
    with pytest.raises(ValueError, match="domains"):
        DomainCorpus({"a": np.arange(1000)}, seq_len=8)


def test_bad_domain_float_tokens():
    with pytest.raises(ValueError, match="domains"):
        DomainCorpus({"a": np.ones(1000)}, seq_len=8)


def test_bad_val_fraction():
    with pytest.raises(ValueError, match="val_fraction"):
        DomainCorpus({"a": np.arange(1000) % 9}, val_fraction=1.0)


def test_bad_seq_len():
    with pytest.raises(ValueError, match="seq_len"):
        DomainCorpus({"a": np.arange(1000) % 9}, seq_len=0)


def test_bad_split():
    with pytest.raises(ValueError, match="split"):
        _corpus().sample([0.5, 0.5], 4, split="test")


def test_bad_domain_name():
    with pytest.raises(ValueError, match="domain"):
        _corpus().domain_batch("nope", 4)


def test_bad_n_heads():
    with pytest.raises(ValueError, match="n_heads"):
        TinyLMConfig(d_model=30, n_heads=4)


def test_bad_head_dim_odd():
    with pytest.raises(ValueError, match="head dimension"):
        TinyLMConfig(d_model=30, n_heads=2)


def test_bad_attention():
    with pytest.raises(ValueError, match="attention"):
        TinyLMConfig(attention="linear")


def test_bad_size():
    with pytest.raises(ValueError, match="size"):
        TinyLMConfig.from_size("3B")


def test_bad_config_type():
    with pytest.raises(TypeError, match="config"):
        TinyLM({"d_model": 16})


def test_bad_sequence_too_long():
    with pytest.raises(ValueError, match="max_seq_len"):
        _model()(torch.zeros(1, 17, dtype=torch.long))


def test_bad_steps():
    with pytest.raises(ValueError, match="steps"):
        train(_model(), _corpus(), [0.5, 0.5], -1)


def test_bad_lr():
    with pytest.raises(ValueError, match="lr"):
        train(_model(), _corpus(), [0.5, 0.5], 1, lr=0.0)


def test_bad_optimizer_name():
    with pytest.raises(ValueError, match="optimizer"):
        train(_model(), _corpus(), [0.5, 0.5], 1, optimizer="lion")


def test_bad_optimizer_type():
    with pytest.raises(TypeError, match="optimizer"):
        train(_model(), _corpus(), [0.5, 0.5], 1, optimizer=3)


def test_bad_lr_schedule():
    with pytest.raises(ValueError, match="lr_schedule"):
        train(_model(), _corpus(), [0.5, 0.5], 1, lr_schedule="step")


def test_bad_resume_without_path():
    with pytest.raises(ValueError, match="checkpoint_path"):
        train(_model(), _corpus(), [0.5, 0.5], 1, resume=True)


def test_bad_model_type():
    with pytest.raises(TypeError, match="model"):
        train(lambda x: x, _corpus(), [0.5, 0.5], 1)


def test_bad_similarity():
    with pytest.raises(ValueError, match="similarity"):
        markov_domains(2, similarity=1.5)


def test_bad_mixture_weights_sample_mixture():
    with pytest.raises(ValueError, match="weights"):
        sample_mixture(markov_domains(2), [0.5, 0.4], 100)


def test_bad_tokenizer_input():
    with pytest.raises(TypeError, match="text"):
        ByteTokenizer().encode(b"bytes")
    with pytest.raises(ValueError, match="tokens"):
        ByteTokenizer().decode([300])


def test_input_not_modified():
    toks = np.arange(1000) % 50
    before = toks.copy()
    w = np.array([1.0])
    corpus = DomainCorpus({"a": toks}, seq_len=8)
    corpus.sample(w, 4)
    np.testing.assert_array_equal(toks, before)
    np.testing.assert_array_equal(w, [1.0])
