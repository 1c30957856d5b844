"""Forgetting study with pretraining-data injection.

Study (Bethune et al., 2025, at small scale): TinyLMs of 3 sizes pretrained on CPython's
standard-library source (the generic domain), finetuned on ``pydoc_data.topics`` prose (the
target) with D unique target tokens and a fraction p in {0, 0.1%, 1%, 5%} of generic data
injected; forgetting = generic validation loss after finetuning. The forgetting law and the
candidate finetuning laws are fitted on the runs (held-out error by 4-fold cross-validation).

The scaling-law fit speed (formerly timed here) is measured by ``bench_scaling.py``.

Study (``--study``, issue #20): the same question in the regime of the paper, scaled down. The
quick study above pretrains for 500 steps of 16 x 64 bytes (3-15 tokens per parameter) and
injects i.i.d. per sequence (1% of 16 sequences is one generic sequence every six steps). The
protocol below was fixed before the study was run; every run is in
``results/forgetting_study.json``.

- Data: generic (pretraining) domain = 5 MB of CPython standard-library source
  (:func:`python_source_text`), target = ``pydoc_data.topics`` prose; bytes (vocabulary 256),
  windows of 64 bytes, the last 10% of each domain held out for validation; validation losses
  on 128 fixed windows per domain, the same for every run.
- Models: :class:`TinyLM` with (d_model, layers, heads) = (24, 2, 2), (48, 2, 4), (72, 3, 4):
  20,088, 67,824 and 205,560 parameters (10.2x).
- Pretraining: 520 steps of 128 x 64 bytes (4.26M bytes, less than one pass over the 4.5 MB
  training part) for every size: 20.7 tokens per parameter for the largest model, 63 and 212 for
  the others (at least compute-optimal, and the smaller models nearer convergence, as the paper's
  models are). AdamW (betas 0.9, 0.95, weight decay 0.1), peak lr 3e-3, 26 warmup steps, cosine
  decay to 10%, gradient clipping 1.0. Flatness check, fixed beforehand: the generic validation
  loss falls by less than 1% of the pretraining progress ``L_init - L0`` over the last 10% of the
  steps (evaluations every 52 steps).
- Finetuning: a fresh AdamW, peak lr 3e-3, warmup ``steps // 20`` (at least 1), cosine decay to
  10%, batches of 128 x 64 bytes, 2 epochs over ``D`` in {32,768, 98,304, 294,912} unique target
  bytes (9x; the prose training part has 418k bytes): ``ceil(2 D / (8192 (1 - p)))`` steps, so
  every run sees the same target tokens. Injection ``p`` in {0, 0.1%, 1%, 5%} of the sequences of
  every batch, exact counts per step (``forgetting_study(injection='exact')``): step ``s`` holds
  ``floor((s + 1) p 128 + 1/2) - floor(s p 128 + 1/2)`` generic sequences, i.e. 1 or 2 at 1%
  (1.28 per step), 6 or 7 at 5%, one every 7-8 steps at 0.1%; whole sequences, not tokens
  inside sequences. Injected sequences are random windows of the generic training part (data the
  model was pretrained on).
- Pilot (p = 0 only, seed 0; ``results/forgetting_pilot.json``), rule fixed before it ran: the
  first (lr, epochs) in the order (1e-3, 2), (1e-3, 4), (3e-3, 2), (3e-3, 4), (1e-2, 2), (1e-2, 4)
  for which every size's rise of the generic loss at p = 0, mean over the three budgets, is at
  least 10% of its pretraining progress. (1e-3, 2) gave 4.8%, 7.3%, 9.0%; (1e-3, 4) 6.1%, 8.6%,
  10.3%; (3e-3, 2) 11.7%, 18.0%, 23.7%: kept.
- Seeds {0, 1}: the seed sets the initialisation, the pretraining batches and the finetuning
  batches, so each seed repeats the whole study, pretraining included.
- Measures: forgetting = rise of the generic validation loss ``L_after - L0``; as a fraction of
  the pretraining progress ``(L_after - L0) / (L_init - L0)``; the fraction of the forgetting
  removed by injection, ``1 - rise(p) / rise(0)`` for the same size, budget and seed, mean and
  range over seeds; the forgetting law ``L0 + A D^beta / ((1 + B p) N)^alpha``
  (:class:`ForgettingLaw`, ``base_loss='given'``) fitted on all 72 runs, 95% intervals from 500
  bootstrap resamples of the runs, held-out log-loss RMSE by 4-fold cross-validation.
- Verdict rule, fixed beforehand: 1% injection "removes essentially all of the forgetting" if,
  for every size, the fraction removed (mean over budgets and seeds) is at least 90%; otherwise
  the claim does not hold at this scale, and the summary gives the fractions.

Run: ``python benchmarks/bench_forgetting.py`` (quick study), ``python
benchmarks/bench_forgetting.py --study`` (about 20 minutes on one thread), ``--refit`` (with or
without ``--study``) redoes only the analysis from the stored runs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
from _common import write_result  # noqa: E402

NAME = "forgetting"


def _flags(p):
    """This script's own flags (``--full``, ``--out`` and ``--threads`` are common)."""
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--note", default=None, help="free-text note stored in the result")
    p.add_argument("--refit", action="store_true",
                   help="reuse the runs of the existing result JSON and only redo the law "
                        "fits")
    p.add_argument("--study", action="store_true",
                   help="the study in the paper's regime (issue #20; protocol in the docstring)")


def parse_args(argv=None):
    return _common.parse_args(__doc__.splitlines()[0], argv, extra=_flags)


def study(full, device):
    from sciml_toolbox.nn.lm import TinyLMConfig, forgetting_study

    if full:
        sizes = [(128, 4, 4), (256, 6, 4), (384, 8, 6), (512, 8, 8)]
        kw = dict(pretrain_steps=4000, epochs=4.0, seq_len=256, batch_size=32,
                  code_bytes=8_000_000)
        budgets = [65_536, 262_144, 1_048_576]
    else:
        sizes = [(32, 2, 2), (48, 2, 2), (64, 3, 4)]
        kw = dict(pretrain_steps=500, epochs=3.0, seq_len=64, batch_size=16,
                  code_bytes=600_000)
        budgets = [8_192, 32_768, 131_072]
    fractions = [0.0, 0.001, 0.01, 0.05]
    cfgs = [TinyLMConfig(d_model=d, n_layers=L, n_heads=h, max_seq_len=kw["seq_len"])
            for d, L, h in sizes]
    t0 = time.perf_counter()
    res = forgetting_study(cfgs, budgets, fractions, device=device, verbose=True, **kw)
    seconds = time.perf_counter() - t0
    out = {"settings": {"sizes": sizes, "budgets": budgets, "fractions": fractions, **kw},
           "seconds": seconds, "models": res["models"], "runs": res["runs"]}
    out.update(analyse(res))
    return out


def analyse(res):
    """Forgetting by injected fraction, and the law fits, from the runs of a study."""
    from sciml_toolbox.nn.lm import runs_to_arrays
    from sciml_toolbox.scaling import FinetuningLaw, ForgettingLaw, compare_laws

    runs = res["runs"]
    fractions = sorted({r["p"] for r in runs})
    Xf, yf, Xt, yt = runs_to_arrays(res)
    law = ForgettingLaw("given", n_bootstrap=50).fit(Xf, yf)
    forms = ("additive", "additive_p", "multiplicative", "multiplicative_p")
    ft = compare_laws({f: FinetuningLaw(f) for f in forms}, Xt, yt, n_splits=4)
    fg = compare_laws({"forgetting": ForgettingLaw("given")}, Xf, yf, n_splits=4)
    # the simplest form whose held-out error is within 2% of the best one
    best = min(v["rmse_log"] for v in ft.values())
    choice = next(f for f in forms if ft[f]["rmse_log"] <= 1.02 * best)
    ftlaw = FinetuningLaw(choice).fit(Xt, yt)

    def mean_by(key, p, **where):
        sel = [r for r in runs if r["p"] == p and all(r[k] == v for k, v in where.items())]
        return float(np.mean([key(r) for r in sel]))

    def frac(r):
        return r["forgetting"]

    def rise(r):
        return r["pretrain_loss"] - r["L0"]

    per_size = {}
    for n in sorted({r["N"] for r in runs}):
        per_size[str(n)] = {str(p): mean_by(rise, p, N=n) for p in fractions}
    return {
        "forgetting_fraction_by_p": {str(p): mean_by(frac, p) for p in fractions},
        "pretrain_loss_rise_by_p": {str(p): mean_by(rise, p) for p in fractions},
        "pretrain_loss_rise_by_size_and_p": per_size,
        "rise_reduction_vs_p0": {str(p): 1 - mean_by(rise, p) / mean_by(rise, 0.0)
                                 for p in fractions},
        "forgetting_law": {"params": law.params_, "ci95": law.params_ci_,
                           "cv": fg["forgetting"]},
        "finetuning_laws_cv": ft, "finetuning_law_choice": choice,
        "finetuning_law_params": ftlaw.params_,
    }


# --------------------------------------------------------------------------------------- study
STUDY = dict(sizes=[(24, 2, 2), (48, 2, 4), (72, 3, 4)], seq_len=64, batch_size=128,
             pretrain_steps=520, pretrain_lr=3e-3, code_bytes=5_000_000,
             budgets=[32_768, 98_304, 294_912], fractions=[0.0, 0.001, 0.01, 0.05],
             epochs=2.0, finetune_lr=3e-3, injection="exact", eval_windows=128,
             curve_points=10, seeds=[0, 1], n_bootstrap=500, flat_tolerance=0.01,
             rise_floor=0.10, removed_threshold=0.90)


def _spread(values):
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max()),
            "values": [float(x) for x in v]}


def study_summary(models, runs, cfg=STUDY):
    """Pretraining checks, forgetting at p = 0, the fraction removed by each p, the law fit
    and the verdict, from the models and runs of :func:`run_study` (every seed)."""
    from sciml_toolbox.nn.lm import runs_to_arrays
    from sciml_toolbox.scaling import ForgettingLaw, compare_laws

    tokens = cfg["pretrain_steps"] * cfg["batch_size"] * cfg["seq_len"]
    sizes = sorted({m["n_params"] for m in models})
    pre = {}
    for n in sizes:
        ms = [m for m in models if m["n_params"] == n]
        drops = [(m["pretrain_curve"]["generic"][-2] - m["pretrain_curve"]["generic"][-1])
                 for m in ms]
        progress = [m["init_pretrain_loss"] - m["pretrain_loss"] for m in ms]
        rel = [d / g for d, g in zip(drops, progress, strict=True)]
        pre[str(n)] = {"tokens_per_param": tokens / n,
                       "L_init": _spread([m["init_pretrain_loss"] for m in ms]),
                       "L0": _spread([m["pretrain_loss"] for m in ms]),
                       "last10_drop": _spread(drops), "last10_drop_over_progress": _spread(rel),
                       "flat": bool(max(rel) < cfg["flat_tolerance"])}

    def run(n, D, p, seed):
        return next(r for r in runs if r["N"] == n and r["D"] == D and r["p"] == p
                    and r["seed"] == seed)

    rise0, removed = {}, {}
    for n in sizes:
        rise0[str(n)], removed[str(n)] = {}, {}
        for D in cfg["budgets"]:
            base = [run(n, D, 0.0, s) for s in cfg["seeds"]]
            rise0[str(n)][str(D)] = {
                "rise": _spread([r["pretrain_loss"] - r["L0"] for r in base]),
                "fraction_of_progress": _spread([r["forgetting"] for r in base])}
            removed[str(n)][str(D)] = {
                str(p): _spread([1 - (run(n, D, p, s)["pretrain_loss"] - run(n, D, p, s)["L0"])
                                 / (b["pretrain_loss"] - b["L0"])
                                 for s, b in zip(cfg["seeds"], base, strict=True)])
                for p in cfg["fractions"] if p > 0}
        rise0[str(n)]["mean_over_budgets"] = float(np.mean(
            [rise0[str(n)][str(D)]["fraction_of_progress"]["mean"] for D in cfg["budgets"]]))
        removed[str(n)]["mean_over_budgets"] = {
            str(p): float(np.mean([removed[str(n)][str(D)][str(p)]["mean"]
                                   for D in cfg["budgets"]]))
            for p in cfg["fractions"] if p > 0}
    overall = {str(p): float(np.mean([removed[str(n)]["mean_over_budgets"][str(p)]
                                      for n in sizes])) for p in cfg["fractions"] if p > 0}

    Xf, yf, _, _ = runs_to_arrays({"runs": runs})
    law = ForgettingLaw("given", n_bootstrap=cfg["n_bootstrap"]).fit(Xf, yf)
    cv = compare_laws({"forgetting": ForgettingLaw("given")}, Xf, yf, n_splits=4)["forgetting"]
    one = [removed[str(n)]["mean_over_budgets"]["0.01"] for n in sizes]
    verdict = {
        "removed_by_1pct_per_size": dict(zip(map(str, sizes), one, strict=True)),
        "holds": bool(min(one) >= cfg["removed_threshold"]),
        "rise_at_p0_at_least_10pct_every_size": bool(all(
            rise0[str(n)]["mean_over_budgets"] >= cfg["rise_floor"] for n in sizes)),
        "pretraining_flat_every_size": bool(all(pre[str(n)]["flat"] for n in sizes))}
    return {"pretraining": pre, "rise_at_p0": rise0, "fraction_removed": removed,
            "fraction_removed_overall": overall,
            "forgetting_law": {"params": law.params_, "ci95": law.params_ci_, "cv": cv},
            "verdict": verdict}


def run_study(args):
    """Every seed of :data:`STUDY` through ``forgetting_study``; write and print the result."""
    import json

    from sciml_toolbox.nn.lm import TinyLMConfig, forgetting_study

    cfg = dict(STUDY)
    out = Path(args.out) if args.out else _common.RESULTS / f"{NAME}_study.json"
    if args.refit:
        payload = json.loads(out.read_text())["results"]
        payload["summary"] = study_summary(payload["models"], payload["runs"], cfg)
    else:
        cfgs = [TinyLMConfig(d_model=d, n_layers=L, n_heads=h, max_seq_len=cfg["seq_len"])
                for d, L, h in cfg["sizes"]]
        keys = ("pretrain_steps", "epochs", "seq_len", "batch_size", "pretrain_lr",
                "finetune_lr", "code_bytes", "eval_windows", "injection", "curve_points")
        models, runs = [], []
        t0 = time.perf_counter()
        for seed in cfg["seeds"]:
            res = forgetting_study(cfgs, cfg["budgets"], cfg["fractions"], seed=seed,
                                   device=args.device, verbose=True,
                                   **{k: cfg[k] for k in keys})
            models += [dict(m, seed=seed) for m in res["models"]]
            runs += [dict(r, seed=seed) for r in res["runs"]]
            print(f"seed {seed} done, total {time.perf_counter() - t0:.0f} s", flush=True)
        payload = {"protocol": cfg, "models": models, "runs": runs,
                   "study_seconds": time.perf_counter() - t0,
                   "settings": {"threads": args.threads, "device": args.device, "command":
                                "flock /tmp/sciml-study1.lock env OMP_NUM_THREADS=1 "
                                "python benchmarks/bench_forgetting.py --study"}}
        payload["summary"] = study_summary(models, runs, cfg)
        payload["total_seconds"] = time.perf_counter() - t0
    if args.note:
        payload["note"] = args.note
    write_result(f"{NAME}_study", payload, mode="full", out=out)
    print(json.dumps(payload["summary"]["verdict"], indent=1))
    print("fraction removed (mean over sizes):", payload["summary"]["fraction_removed_overall"])
    print("forgetting law:", payload["summary"]["forgetting_law"]["params"])
    return payload


def main(argv=None):
    args = parse_args(argv)
    import json

    from _common import RESULTS

    if args.study:
        return run_study(args)

    path = Path(args.out) if args.out else RESULTS / (
        f"{NAME}_full.json" if args.full else f"{NAME}.json")
    if args.refit:
        payload = json.loads(path.read_text())["results"]
        payload["study"].update(analyse(payload["study"]))
    else:
        payload = {"device": args.device}
    if args.note:
        payload["note"] = args.note
    if not args.refit:
        payload["study"] = study(args.full, args.device)
    if "study" in payload:
        s = payload["study"]
        print("forgetting fraction by p:", s["forgetting_fraction_by_p"])
        print("loss-rise reduction vs p=0:", s["rise_reduction_vs_p0"])
        print("forgetting law:", s["forgetting_law"]["params"])
        print("finetuning law CV:", {k: v["rmse_log"] for k, v in s["finetuning_laws_cv"].items()})
    write_result(NAME, payload, mode="full" if args.full else "quick", out=args.out)


if __name__ == "__main__":
    main()
