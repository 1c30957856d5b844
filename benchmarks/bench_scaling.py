"""Scaling-law fit speed: the multistart Huber/L-BFGS fits against a loop of SciPy.

Every law is fitted from its full grid of starts on synthetic points, by the toolbox's
estimator (L-BFGS batched over the starts, then a SciPy polish of the best end points) and by
the anchor a user would otherwise write: a loop of ``scipy.optimize.minimize(method='L-BFGS-B')``
over the same starts, with SciPy's default tolerances, on the same objective and gradient
(the law's own Huber objective), keeping the best start. Both run in the same process; the
SciPy loop always with one BLAS thread (more only slow it down), the toolbox with ``--threads``
(default 1).

- ``chinchilla``: ``ChinchillaLaw`` on 245 points generated with the Epoch AI replication
  parameters (Besiroglu et al., 2024) and 0.1% noise, the 4,500-start grid of Hoffmann et al.
- ``forgetting_power`` / ``forgetting_given``: ``ForgettingLaw`` on an 80-point grid of
  (N, D, p) with 0.1% noise, its default grid (2,592 / 144 starts).
- ``finetuning_additive_p``: ``FinetuningLaw('additive_p')``, 96 points, 2,025 starts.
- ``custom_chinchilla``: the Chinchilla law written as a ``CustomLaw`` (finite-difference
  Jacobian: eleven law evaluations per step), 243 starts (3 values per parameter); the
  4,500-start grid with ``--full``.
- ``bootstrap``: ``ChinchillaLaw(n_bootstrap=200)`` (fit plus 200 refits of resampled points)
  against a loop of 200 SciPy refits from the fitted parameters.
- ``sweep``: ``ChinchillaLaw`` fit time for 1,125 / 2,250 / 4,500 starts (random subsets of
  the grid) and for the 245 points repeated 2 and 4 times.

Each law case also fits with the multistart pruning switched off (every start to its own
stopping test) where the estimator has it, to check that pruning loses nothing.

Quick mode times each fitter once per law, the anchor over every start (about a minute in all
on one core); ``--repeat`` keeps the best of several runs of the toolbox's fit.

Run: ``python benchmarks/bench_scaling.py [--full] [--repeat 3] [--threads 1]
[--only chinchilla ...]``.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
from _common import write_result  # noqa: E402

NAME = "scaling"
EPOCH = {"E": 1.817, "A": 477.8, "B": 2143.9, "alpha": 0.347, "beta": 0.367}
CASES = ("chinchilla", "forgetting_power", "forgetting_given", "finetuning_additive_p",
         "custom_chinchilla", "bootstrap", "sweep")


def _flags(p):
    """This script's own flags (``--full``, ``--out`` and ``--threads`` are common)."""
    p.add_argument("--repeat", type=int, default=1, help="runs of each toolbox fit (best kept)")
    p.add_argument("--only", nargs="*", choices=CASES, default=None, help="cases to run")
    p.add_argument("--note", default=None, help="free-text note stored in the result")
    p.add_argument("--skip-unpruned", action="store_true",
                   help="do not refit with the multistart pruning switched off")


def parse_args(argv=None):
    return _common.parse_args(__doc__.splitlines()[0], argv, extra=_flags)


def chinchilla_data():
    rng = np.random.default_rng(0)
    N = np.exp(rng.uniform(np.log(7e7), np.log(1.6e10), 245))
    D = np.exp(rng.uniform(np.log(5e9), np.log(5e11), 245))
    y = EPOCH["E"] + EPOCH["A"] / N ** EPOCH["alpha"] + EPOCH["B"] / D ** EPOCH["beta"]
    return np.c_[N, D], y * np.exp(rng.normal(0, 1e-3, 245))


FORGET = {"A": 30.0, "B": 900.0, "alpha": 0.4, "beta": 0.2}


def forgetting_data(base):
    rng = np.random.default_rng(2)
    grid = np.meshgrid([4e7, 1e8, 3e8, 1e9], [1e6, 3e6, 1e7, 3e7, 1e8],
                       [0.0, 0.001, 0.01, 0.05], indexing="ij")
    N, D, p = (g.ravel() for g in grid)
    L0 = 1.8 + 400.0 / N ** 0.33
    y = L0 + FORGET["A"] * D ** FORGET["beta"] / ((1 + FORGET["B"] * p) * N) ** FORGET["alpha"]
    y = y * np.exp(rng.normal(0, 1e-3, N.size))
    return (np.c_[N, D, p] if base == "power" else np.c_[N, D, p, L0]), y


FINETUNE = {"E": 1.5, "A": 30.0, "B": 40.0, "alpha": 0.3, "beta": 0.3, "C": 2.0}


def finetuning_data():
    rng = np.random.default_rng(3)
    n = 96
    X = np.c_[np.exp(rng.uniform(13, 17, n)), np.exp(rng.uniform(10, 14, n)),
              rng.choice([0.0, 0.01, 0.05], n)]
    t = FINETUNE
    y = (t["E"] + t["A"] / X[:, 0] ** t["alpha"] + t["B"] / X[:, 1] ** t["beta"]) \
        * (1 + t["C"] * X[:, 2])
    return X, y * np.exp(rng.normal(0, 1e-3, n))


def _custom_chinchilla(full):
    from sciml_toolbox.scaling import ChinchillaLaw, CustomLaw, make_grid

    def logf(th, X):
        lN, lD = np.log(X[None, :, 0]), np.log(X[None, :, 1])
        return np.logaddexp(np.logaddexp(th[:, :1] - th[:, 3:4] * lN,
                                         th[:, 1:2] - th[:, 4:5] * lD), th[:, 2:3])

    grid = (ChinchillaLaw()._default_grid() if full else
            make_grid([0, 10, 20], [0, 10, 20], [-1, 0, 1], [0.2, 0.6, 1.0], [0.2, 0.6, 1.0]))
    return CustomLaw(logf, ["a", "b", "e", "alpha", "beta"], grid, positive_columns=(0, 1))


def scipy_loop(law, X, y, starts, weights=None):
    """Best of ``minimize(L-BFGS-B)`` (default tolerances) from each start; time, f, x."""
    from scipy.optimize import minimize
    from threadpoolctl import threadpool_limits

    F = law._features(np.asarray(X, dtype=float))
    fg = law._objective(F, np.log(y), weights=weights)
    fs, xs = [], []
    with threadpool_limits(limits=1, user_api="blas"):
        t0 = time.perf_counter()
        for i, x0 in enumerate(starts):
            row = np.array([i if weights is not None else 0])

            def one(th, row=row):
                f, g = fg(th[None, :], row)
                return f[0], g[0]

            r = minimize(one, x0, jac=True, method="L-BFGS-B")
            fs.append(r.fun)
            xs.append(r.x)
        seconds = time.perf_counter() - t0
    return seconds, np.array(fs), np.array(xs)


def _fit(make, X, y, repeat):
    from sklearn.exceptions import ConvergenceWarning

    best, law = np.inf, None
    for _ in range(repeat):
        law = make()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t0 = time.perf_counter()
            law.fit(X, y)
            best = min(best, time.perf_counter() - t0)
    return best, law


def _floats(d):
    return {k: float(v) for k, v in d.items()}


def _unpruned(make):
    law = make()
    law._warm_iter = None  # every start runs to its own stopping test
    return law


def law_case(make, X, y, truth, repeat, unpruned=True):
    t_fit, law = _fit(make, X, y, repeat)
    grid = law._default_grid() if law.grid is None else np.asarray(law.grid, float)
    t_loop, fs, xs = scipy_loop(law, X, y, grid)
    ok = np.isfinite(fs)
    best = int(np.flatnonzero(ok)[np.argmin(fs[ok])])
    extra = {}
    # the staged multistart against every start run in full
    if unpruned and hasattr(law, "_warm_iter"):
        t_full, full = _fit(lambda: _unpruned(make), X, y, 1)
        extra = {"unpruned_seconds": t_full, "unpruned_objective": float(full.loss_),
                 "unpruned_params": _floats(full.params_)}
    return {
        "n_points": int(len(y)), "n_starts": int(len(grid)), "n_params": int(grid.shape[1]),
        "toolbox_seconds": t_fit, "scipy_loop_seconds": t_loop, "speedup": t_loop / t_fit,
        "toolbox_objective": float(law.loss_), "scipy_best_objective": float(fs[best]),
        "objective_ratio_scipy_over_toolbox": float(fs[best] / law.loss_),
        "toolbox_params": _floats(law.params_), "scipy_params": _floats(law._natural(xs[best])),
        "true_params": truth, **extra,
    }


def sweep_case(repeat):
    """ChinchillaLaw fit time against the number of starts and of points."""
    from sciml_toolbox.scaling import ChinchillaLaw

    X, y = chinchilla_data()
    grid = ChinchillaLaw()._default_grid()
    rng = np.random.default_rng(5)
    rows = []
    for n_starts in (1125, 2250, 4500):
        sub = grid[np.sort(rng.choice(len(grid), n_starts, replace=False))]
        t, law = _fit(lambda sub=sub: ChinchillaLaw(grid=sub), X, y, repeat)
        rows.append({"n_starts": n_starts, "n_points": len(y), "seconds": t,
                     "objective": float(law.loss_)})
    for k in (2, 4):  # the 245 points repeated: same minimum, k times the work per start
        Xr, yr = np.tile(X, (k, 1)), np.tile(y, k)
        t, law = _fit(ChinchillaLaw, Xr, yr, repeat)
        rows.append({"n_starts": len(grid), "n_points": len(yr), "seconds": t,
                     "objective": float(law.loss_)})
    return rows


def bootstrap_case(repeat, n_boot=200):
    from sciml_toolbox.scaling import ChinchillaLaw

    X, y = chinchilla_data()
    t_total, blaw = _fit(lambda: ChinchillaLaw(n_bootstrap=n_boot), X, y, 1)
    # the refits alone (the estimator's own bootstrap step, from its fitted parameters)
    F, z = blaw._features(X), np.log(y)
    t_boot = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        blaw._bootstrap(F, z, n_boot)
        t_boot = min(t_boot, time.perf_counter() - t0)
    # the anchor: n_boot SciPy refits of the same resamples, from the same fitted parameters
    rng = np.random.default_rng(blaw.random_state)
    n = len(y)
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot) / n
    t_loop, fs, xs = scipy_loop(blaw, X, y, np.tile(blaw.theta_, (n_boot, 1)), weights=counts)
    nat = [blaw._natural(x) for x in xs]
    lo, hi = (1 - blaw.confidence) / 2, 1 - (1 - blaw.confidence) / 2
    ci_scipy = {k: [float(np.quantile([d[k] for d in nat], lo)),
                    float(np.quantile([d[k] for d in nat], hi))] for k in blaw.params_}
    return {
        "n_bootstrap": n_boot, "fit_with_bootstrap_seconds": t_total,
        "bootstrap_seconds": t_boot, "scipy_refit_loop_seconds": t_loop,
        "speedup_bootstrap": t_loop / t_boot,
        "toolbox_ci95": {k: [float(a), float(b)] for k, (a, b) in blaw.params_ci_.items()},
        "scipy_ci95": ci_scipy,
    }


def main(argv=None):
    args = parse_args(argv)
    from threadpoolctl import threadpool_limits

    from sciml_toolbox.scaling import ChinchillaLaw, FinetuningLaw, ForgettingLaw

    only = set(args.only or CASES)
    unpruned = not args.skip_unpruned
    results = {}
    with threadpool_limits(limits=args.threads):
        if "chinchilla" in only:
            X, y = chinchilla_data()
            results["chinchilla"] = law_case(ChinchillaLaw, X, y, EPOCH, args.repeat, unpruned)
        for base in ("power", "given"):
            if f"forgetting_{base}" in only:
                X, y = forgetting_data(base)
                results[f"forgetting_{base}"] = law_case(lambda b=base: ForgettingLaw(b), X, y,
                                                         FORGET, args.repeat, unpruned)
        if "finetuning_additive_p" in only:
            X, y = finetuning_data()
            results["finetuning_additive_p"] = law_case(lambda: FinetuningLaw("additive_p"),
                                                        X, y, FINETUNE, args.repeat, unpruned)
        if "custom_chinchilla" in only:
            X, y = chinchilla_data()
            results["custom_chinchilla"] = law_case(lambda: _custom_chinchilla(args.full), X, y,
                                                    EPOCH, args.repeat, unpruned)
        if "bootstrap" in only:
            results["bootstrap"] = bootstrap_case(args.repeat)
        if "sweep" in only:
            results["sweep"] = sweep_case(args.repeat)
    for name, r in results.items():
        if isinstance(r, list):
            print(name, r)
            continue
        print(name, {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in r.items()
                     if not isinstance(v, dict)})
    payload = {"threads": args.threads, "repeat": args.repeat, "cases": results}
    if args.note:
        payload["note"] = args.note
    write_result(NAME, payload, mode="full" if args.full else "quick", out=args.out)


if __name__ == "__main__":
    main()
