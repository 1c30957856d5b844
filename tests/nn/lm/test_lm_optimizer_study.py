"""The AdEMAMix-vs-AdamW study on a tiny LM (a few steps)."""

import math

import numpy as np
import pytest

pytest.importorskip("sciml_toolbox.nn.lm")

from sciml_toolbox.nn.lm import DomainCorpus, compare_optimizers  # noqa: E402

_TINY = dict(size="0.1M", seq_len=16, batch_size=2, n_val_batches=1)


def test_compare_optimizers_structure_and_twin_runs():
    res = compare_optimizers(n_steps=6, eval_every=2, probe_step=3, **_TINY)
    steps = res["steps"]
    assert steps[0] == 0 and steps[-1] == 6 and 3 in steps and 4 in steps
    for name in ("AdamW", "AdEMAMix"):
        r = res[name]
        assert len(r["val_loss"]) == len(steps) == len(r["gap"])
        assert len(r["train_loss"]) == 6
        # the twin runs are identical until the probe step: no gap before it
        for s, g in zip(steps, r["gap"], strict=True):
            if s <= 3:
                assert g == 0.0
        # one step on the probe batch lowers its loss
        assert r["gap_after_probe"] > 0
        assert all(math.isfinite(v) for v in r["val_loss"])
    assert res["AdamW"]["steps_to_adamw_final"] == 6


def test_ademamix_without_slow_ema_is_adamw():
    # alpha = 0 removes the slow EMA: AdEMAMix is then AdamW with the same betas, so on the
    # same initialisation and batches the two curves agree (fails if the optimizers saw
    # different data, initial weights or schedules)
    res = compare_optimizers(n_steps=8, eval_every=4, alpha=0.0, forgetting=False, **_TINY)
    np.testing.assert_allclose(res["AdEMAMix"]["val_loss"], res["AdamW"]["val_loss"],
                               rtol=1e-5)
    np.testing.assert_allclose(res["AdEMAMix"]["train_loss"], res["AdamW"]["train_loss"],
                               rtol=1e-5)
    assert "gap" not in res["AdamW"]


def test_regular_run_does_not_depend_on_the_probe_twin_or_the_lr_form():
    a = compare_optimizers(n_steps=6, eval_every=3, forgetting=True, optimizers="AdamW",
                           lr=2e-3, **_TINY)
    b = compare_optimizers(n_steps=6, eval_every=3, forgetting=False,
                           lr={"AdamW": 2e-3, "AdEMAMix": 1.0}, optimizers="AdamW", **_TINY)
    common = [i for i, s in enumerate(a["steps"]) if s in b["steps"]]
    assert [a["AdamW"]["val_loss"][i] for i in common] == b["AdamW"]["val_loss"]
    assert b["AdamW"]["lr"] == 2e-3


def test_validation_set_and_first_batches_do_not_depend_on_the_horizon():
    # the same seed gives the same initial model, validation windows and first batch for any
    # n_steps: the step-0 validation losses agree, and so does the first training loss (the
    # initial model's loss on the first batch)
    short = compare_optimizers(n_steps=20, eval_every=20, forgetting=False,
                               optimizers="AdamW", **_TINY)
    long = compare_optimizers(n_steps=40, eval_every=20, forgetting=False,
                              optimizers="AdamW", **_TINY)
    assert short["AdamW"]["val_loss"][0] == long["AdamW"]["val_loss"][0]
    assert short["AdamW"]["train_loss"][0] == long["AdamW"]["train_loss"][0]


def test_custom_single_domain_corpus():
    text = "".join(chr(97 + (i * 7) % 26) for i in range(4000))
    corpus = DomainCorpus({"letters": text}, seq_len=16)
    res = compare_optimizers(n_steps=4, eval_every=2, corpus=corpus, forgetting=False,
                             batch_size=2, n_val_batches=1)
    assert all(math.isfinite(v) for v in res["AdEMAMix"]["val_loss"])


def test_compare_optimizers_rejects_unknown_optimizer():
    with pytest.raises(ValueError, match="optimizer"):
        compare_optimizers(n_steps=2, seq_len=16, batch_size=2, optimizers=("SGD",))
