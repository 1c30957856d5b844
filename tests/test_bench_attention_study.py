"""The attention training study's bookkeeping (benchmarks/bench_attention.py --study): the
summary and verdict, the best-rate-at-the-edge flag, and the reuse of stored runs (no training:
the runs are synthetic)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("bench_attention_study_under_test",
                                                      BENCH / "bench_attention.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(BENCH))
    return mod


def _run(variant, lr, seed, loss):
    return {"variant": variant, "lr": lr, "seed": seed, "diverged_at_step": None,
            "final_val_loss": {"code": loss + 0.01, "prose": loss - 0.01, "mean": loss},
            "seconds": 1.0}


def _loss(variant, lr, seed):
    # each variant's best rate is 1e-2 (a parabola in log lr); offsets per variant, seed noise
    import math

    offset = {"softmax": 0.0, "sigmoid": 0.01, "sigmoid_no_bias": 0.3, "sigmoid_no_stab": 0.0}
    return 2.0 + offset[variant] + 0.1 * math.log10(lr / 1e-2) ** 2 + 0.01 * (seed - 1)


def _runs(bench, cfg):
    return [_run(v, lr, s, _loss(v, lr, s)) for v, lr, s in bench._missing([], cfg)]


def test_summary_flags_a_best_rate_at_the_edge(bench):
    cfg = {**bench.STUDY, "lrs": (1e-3, 3e-3, 1e-2)}
    summary = bench.study_summary(_runs(bench, cfg), cfg)
    assert set(summary["best_lr"].values()) == {"0.01"}
    assert not any(summary["best_lr_interior"].values())
    cfg = {**bench.STUDY, "lrs": (1e-3, 3e-3, 1e-2, 3e-2)}
    summary = bench.study_summary(_runs(bench, cfg), cfg)
    assert set(summary["best_lr"].values()) == {"0.01"}
    assert all(summary["best_lr_interior"].values())
    verdict = summary["verdict"]
    assert verdict["sigmoid_vs_softmax"]["matches"]
    assert verdict["no_bias_vs_sigmoid"]["matters"]
    assert not verdict["no_stab_vs_sigmoid"]["matters"]
    assert verdict["sigmoid_vs_softmax"]["diff"] == pytest.approx(0.01)


def test_diverged_runs_lose_the_selection(bench):
    cfg = {**bench.STUDY, "lrs": (1e-3, 3e-3, 1e-2, 3e-2)}
    runs = _runs(bench, cfg)
    for r in runs:
        if r["variant"] == "sigmoid" and r["lr"] == 1e-2 and r["seed"] == 0:
            r["diverged_at_step"] = 321
            r["final_val_loss"] = {"code": None, "prose": None, "mean": None}
    summary = bench.study_summary(runs, cfg)
    assert summary["table"]["sigmoid"]["0.01"]["n_diverged"] == 1
    assert summary["best_lr"]["sigmoid"] != "0.01"


def test_reuse_trains_only_the_missing_runs(bench, tmp_path, monkeypatch):
    out = tmp_path / "study.json"
    calls = []

    def fake_run(variant, lr, seed, cfg):
        calls.append((variant, lr, seed))
        return _run(variant, lr, seed, _loss(variant, lr, seed))

    monkeypatch.setattr(bench, "_study_run", fake_run)
    bench.main(["--study", "--lrs", "1e-3,3e-3,1e-2", "--out", str(out)])
    assert len(calls) == 4 * 3 * 3
    first = json.loads(out.read_text())["results"]
    assert not any(first["summary"]["best_lr_interior"].values())

    calls.clear()
    bench.main(["--study", "--reuse", "--lrs", "3e-2", "--out", str(out)])
    assert sorted({lr for _, lr, _ in calls}) == [3e-2] and len(calls) == 4 * 3
    res = json.loads(out.read_text())["results"]
    assert res["protocol"]["lrs"] == [1e-3, 3e-3, 1e-2, 3e-2]
    assert len(res["runs"]) == 48 and len(res["sessions"]) == 2
    assert [bench._run_key(r) for r in res["runs"]] == bench._missing([], {
        **bench.STUDY, "lrs": (1e-3, 3e-3, 1e-2, 3e-2)})
    assert all(res["summary"]["best_lr_interior"].values())
    assert res["summary"]["table"]["softmax"]["0.001"] == first["summary"]["table"]["softmax"][
        "0.001"]

    calls.clear()  # nothing missing: nothing trained, the result is unchanged
    bench.main(["--study", "--reuse", "--out", str(out)])
    assert calls == []
    assert json.loads(out.read_text())["results"]["runs"] == res["runs"]


def test_reuse_refuses_another_protocol(bench, tmp_path, monkeypatch):
    out = tmp_path / "study.json"
    monkeypatch.setattr(bench, "_study_run",
                        lambda v, lr, s, cfg: _run(v, lr, s, _loss(v, lr, s)))
    bench.main(["--study", "--lrs", "1e-2", "--out", str(out)])
    doc = json.loads(out.read_text())
    doc["results"]["protocol"]["steps"] = 300
    out.write_text(json.dumps(doc))
    with pytest.raises(SystemExit, match="steps"):
        bench.main(["--study", "--reuse", "--lrs", "3e-2", "--out", str(out)])
