"""Forgetting study with pretraining-data injection.

Study (Bethune et al., 2025, at small scale): TinyLMs of 3 sizes pretrained on CPython's
standard-library source (the generic domain), finetuned on ``pydoc_data.topics`` prose (the
target) with D unique target tokens and a fraction p in {0, 0.1%, 1%, 5%} of generic data
injected; forgetting = generic validation loss after finetuning. The forgetting law and the
candidate finetuning laws are fitted on the runs (held-out error by 4-fold cross-validation).

The scaling-law fit speed (formerly timed here) is measured by ``bench_scaling.py``.

Run: ``python benchmarks/bench_forgetting.py``.
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


def main(argv=None):
    args = parse_args(argv)
    import json

    from _common import RESULTS

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
