"""forgetting_study: exact per-step injection counts and the recorded curves."""

import math

import pytest

from sciml_toolbox.nn.lm import TinyLMConfig, forgetting_study

CFG = TinyLMConfig(d_model=16, n_layers=1, n_heads=2, max_seq_len=16)
SMALL = dict(pretrain_steps=3, epochs=1.0, seq_len=16, code_bytes=20_000, eval_windows=4)


def test_exact_injection_counts_per_step():
    # p B = 1.25 and 0.25: totals round(k p B); at least one generic sequence per step when
    # p B >= 1, and with p B < 1 one every 1 / (p B) steps rather than a random number
    res = forgetting_study([CFG], [2560], [0.0, 0.0625, 0.3125], batch_size=4,
                           injection="exact", **SMALL)
    for r in res["runs"]:
        served = r["generic_per_step"]
        assert len(served) == r["steps"]
        assert sum(served) == r["generic_sequences"] == round(r["p"] * 4 * r["steps"])
        if r["p"] * 4 >= 1:
            assert min(served) >= 1 and max(served) <= math.ceil(r["p"] * 4)
    zero, quarter, _ = res["runs"]
    assert sum(zero["generic_per_step"]) == 0
    assert quarter["generic_per_step"][:8] == [0, 1, 0, 0, 0, 1, 0, 0]


def test_sampled_injection_varies_and_records_totals():
    res = forgetting_study([CFG], [2560], [0.3125], batch_size=4, **SMALL)
    r = res["runs"][0]
    assert "generic_per_step" not in r
    assert 0 <= r["generic_sequences"] <= 4 * r["steps"]


def test_curve_points_record_pretraining_and_finetuning_curves():
    res = forgetting_study([CFG], [1280], [0.0], batch_size=4, curve_points=2,
                           **dict(SMALL, pretrain_steps=4))
    curve = res["models"][0]["pretrain_curve"]
    assert curve["step"] == [0, 2, 4] and len(curve["generic"]) == 3
    assert curve["generic"][-1] == pytest.approx(res["models"][0]["pretrain_loss"])
    run = res["runs"][0]
    assert run["curve"]["step"][0] == 0 and run["curve"]["step"][-1] == run["steps"]
    assert run["curve"]["generic"][0] == pytest.approx(run["L0"])
    assert run["curve"]["generic"][-1] == pytest.approx(run["pretrain_loss"])


@pytest.mark.parametrize("kw, exc, match", [
    (dict(injection="binomial"), ValueError, "injection"),
    (dict(curve_points=-1), ValueError, "curve_points"),
    (dict(curve_points=1.5), TypeError, "curve_points"),
    (dict(batch_size=0), ValueError, "batch_size"),
])
def test_bad_options_name_the_argument(kw, exc, match):
    with pytest.raises(exc, match=match):
        forgetting_study([CFG], [1280], [0.0], **dict(SMALL, **kw))
