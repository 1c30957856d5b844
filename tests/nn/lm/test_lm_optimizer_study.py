"""The AdEMAMix-vs-AdamW study on a tiny LM (a few steps)."""

import math

import pytest

pytest.importorskip("sciml_toolbox.nn.lm")

from sciml_toolbox.nn.lm import compare_optimizers  # noqa: E402


def test_compare_optimizers_structure_and_twin_runs():
    res = compare_optimizers(n_steps=6, size="0.1M", seq_len=16, batch_size=2, eval_every=2,
                             n_val_batches=1, probe_step=3)
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


def test_compare_optimizers_rejects_unknown_optimizer():
    with pytest.raises(ValueError, match="optimizer"):
        compare_optimizers(n_steps=2, seq_len=16, batch_size=2, optimizers=("SGD",))
