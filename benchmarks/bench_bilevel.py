"""Hypergradient error against inner error, and per-feature tuning against RidgeCV.

Part 1 (Ye, Peyre, Cremers & Ablin 2024, Figs. 2-3): along gradient-descent iterates of the
inner problem, the error of every hypergradient estimator against ||z - z*||, in the paper's
ridge setting (mpg-shaped data: n=392, p=7, quadratic outer, x ~ U(3, 6)) and logistic setting
(liver-shaped data: n=145, p=5, held-out n=200, x ~ U(-1, 1)), with synthetic data of the same
shapes; log-log slopes over 10^-3.5 < ||z - z*|| < 10^-0.5, mean and std over seeds.

Part 2: BilevelRidgeCV (per-feature penalties) against RidgeCV with a 100-value grid (efficient
leave-one-out) and GridSearchCV(Ridge) on the same held-out split, n=10k, p=500 in full mode:
wall time to reach RidgeCV's validation loss and GridSearchCV's (the best scalar penalty on the
validation split): fits with max_iter = 2, 4, 8, ... until the exactly evaluated validation loss
is below the target; final validation and test losses.
All BLAS calls are limited to one thread (recorded) so that the shared machine's load does not
distort ratios.

Run: ``python benchmarks/bench_bilevel.py [--full] [--device cuda]``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from _common import parse_args, write_result
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.model_selection import GridSearchCV, PredefinedSplit

from sciml_toolbox.array_api import to_numpy
from sciml_toolbox.bilevel import (
    BilevelRidgeCV,
    LogisticProblem,
    RidgeProblem,
    hypergradient,
    hypergradient_error_curve,
    loglog_slope,
    solve_inner,
    unrolled_hypergradient,
)

METHODS = ("ift", "newton", "jacobi", "reparam_exp", "reparam_diag")


def _to_device(arrays, device):
    if device == "cpu":
        return arrays
    import torch

    return [torch.as_tensor(a, dtype=torch.float64, device=device) for a in arrays]


def study(kind, seed, device="cpu", n_points=40):
    """One seed of the error-vs-inner-error study; returns slopes and errors."""
    rng = np.random.default_rng(seed)
    if kind == "ridge":
        n, p = 392, 7
        A = rng.uniform(-1, 1, (n, p))
        b = A @ rng.standard_normal(p) + 0.3 * rng.standard_normal(n)
        Aout, bout = rng.standard_normal((p, p)), rng.standard_normal(p)
        x = rng.uniform(3, 6, p)
        data = _to_device([A, b, Aout, bout, x], device)
        prob = RidgeProblem(*data[:4])
    else:
        n, p, n_val = 145, 5, 200
        w = rng.standard_normal(p)
        A = rng.uniform(-1, 1, (n, p))
        Av = rng.uniform(-1, 1, (n_val, p))
        y = np.where(rng.random(n) < 1 / (1 + np.exp(-2 * A @ w)), 1.0, -1.0)
        yv = np.where(rng.random(n_val) < 1 / (1 + np.exp(-2 * Av @ w)), 1.0, -1.0)
        x = rng.uniform(-1, 1, p)
        data = _to_device([A, y, Av, yv, x], device)
        prob = LogisticProblem(*data[:4])
    x = data[4]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        z_star = solve_inner(prob, x, method="newton", tol=1e-14, max_iter=100).z
        zs = to_numpy(z_star)
        z0_np = zs + 10**1.5 * rng.standard_normal(p) / np.sqrt(p)
        z0 = _to_device([z0_np], device)[0]
        L = prob.inner_lipschitz(x)
        step = (1.8 if kind == "ridge" else 1.0) / L
        res = solve_inner(prob, x, z0, method="gd", step=step, tol=1e-12, max_iter=200000,
                          return_path=True)
    d = np.array([np.linalg.norm(to_numpy(z) - zs) for z in res.path])
    targets = np.logspace(1.5, -3.5, n_points)
    idx = sorted({int(np.argmax(d <= t)) for t in targets if np.any(d <= t)})
    t0 = time.perf_counter()
    curve = hypergradient_error_curve(prob, x, [res.path[i] for i in idx], z_star=z_star,
                                      methods=METHODS)
    h_star = to_numpy(hypergradient(prob, z_star, x))
    # unrolled differentiation through the same gradient steps (a subset: cost O(t) each)
    unr_idx = idx[:: max(1, len(idx) // 12)]
    unr = []
    for i in unr_idx:
        g, _ = unrolled_hypergradient(prob, x, z0, n_iter=i, step=step)
        unr.append(np.linalg.norm(to_numpy(g) - h_star))
    elapsed = time.perf_counter() - t0
    inner = curve["inner_error"]
    out = {"inner_error": inner.tolist(), "n_gd_steps": int(res.n_iter), "time_s": elapsed}
    lo, hi = 10**-3.5, 10**-0.5
    for m in METHODS:
        e = curve["errors"][m]
        out[m] = {"errors": e.tolist(), "slope": _safe_slope(inner, e, lo, hi),
                  "err_at_1e-2": float(np.interp(-2, np.log10(inner[::-1]), e[::-1]))}
    unr_d = d[unr_idx]
    out["unrolled"] = {"inner_error": unr_d.tolist(), "errors": unr,
                       "slope": _safe_slope(unr_d, np.array(unr), lo, hi),
                       "err_at_1e-2": float(np.interp(-2, np.log10(unr_d[::-1]),
                                                      np.array(unr)[::-1]))}
    return out


def _safe_slope(d, e, lo, hi):
    e = np.asarray(e)
    if np.all(e[(d > lo) & (d < hi)] < 1e-12):
        return float("nan")  # exact up to rounding (Newton on ridge)
    try:
        return loglog_slope(d, np.maximum(e, 1e-300), lo=lo, hi=hi)
    except ValueError:
        return float("nan")


def ridge_data(n, p, seed=0):
    """Regression with heterogeneous feature scales and relevance (ARD-friendly)."""
    rng = np.random.default_rng(seed)
    scales = np.exp(rng.uniform(-1, 1, p))
    w = np.zeros(p)
    k = max(p // 10, 1)
    w[:k] = rng.standard_normal(k)
    w[k:3 * k] = 0.1 * rng.standard_normal(2 * k)

    def draw(m):
        X = rng.standard_normal((m, p)) * scales
        return X, X @ w + 3.0 * rng.standard_normal(m)

    return draw(n), draw(n // 4), draw(n // 4)


def tuner_bench(n, p, seed=0):
    (Xtr, ytr), (Xva, yva), (Xte, yte) = ridge_data(n, p, seed)
    alphas = np.logspace(-3, 6, 100)

    def mse(m, X, y):
        return float(np.mean((m.predict(X) - y) ** 2))

    rows = {}
    t = time.perf_counter()
    rc = RidgeCV(alphas=alphas).fit(Xtr, ytr)
    rows["RidgeCV (LOO, 100 alphas)"] = {
        "time_s": time.perf_counter() - t, "val_mse": mse(rc, Xva, yva),
        "test_mse": mse(rc, Xte, yte), "alpha": float(rc.alpha_)}
    Xall = np.vstack([Xtr, Xva])
    yall = np.concatenate([ytr, yva])
    fold = np.concatenate([-np.ones(len(ytr)), np.zeros(len(yva))])
    t = time.perf_counter()
    gs = GridSearchCV(Ridge(), {"alpha": alphas}, cv=PredefinedSplit(fold),
                      scoring="neg_mean_squared_error", refit=False).fit(Xall, yall)
    t_gs = time.perf_counter() - t
    a_gs = float(gs.best_params_["alpha"])
    r_gs = Ridge(alpha=a_gs).fit(Xtr, ytr)
    rows["GridSearchCV(Ridge, 100 alphas, held-out)"] = {
        "time_s": t_gs, "val_mse": -float(gs.best_score_), "test_mse": mse(r_gs, Xte, yte),
        "alpha": a_gs}
    targets = {"reach_ridgecv_val": rows["RidgeCV (LOO, 100 alphas)"]["val_mse"],
               "reach_gridsearch_val": -float(gs.best_score_) * (1 + 1e-9)}
    for hg in ("newton", "ift"):
        for per_feature in (True, False):
            name = f"BilevelRidgeCV({hg}, per_feature={per_feature})"
            reached = dict.fromkeys(targets)
            k = 2
            while k <= 256 and any(v is None for v in reached.values()):
                t = time.perf_counter()
                est = BilevelRidgeCV(hypergradient=hg, per_feature=per_feature, max_iter=k,
                                     tol=0.0).fit(Xtr, ytr, Xva, yva)
                dt = time.perf_counter() - t
                for key, target in targets.items():
                    if reached[key] is None and -est.best_score_ <= target:
                        reached[key] = {"max_iter": k, "time_s": dt,
                                        "val_mse": -est.best_score_}
                k *= 2
            t = time.perf_counter()
            est = BilevelRidgeCV(hypergradient=hg, per_feature=per_feature,
                                 max_iter=200).fit(Xtr, ytr, Xva, yva)
            rows[name] = {"time_s": time.perf_counter() - t, "val_mse": -est.best_score_,
                          "test_mse": mse(est, Xte, yte), "n_iter": est.n_iter_,
                          "inner_iter_total": int(sum(est.history_["inner_iter"])),
                          **reached}
    t_rc = rows["RidgeCV (LOO, 100 alphas)"]["time_s"]
    for row in rows.values():
        r = row.get("reach_ridgecv_val")
        if r:
            row["speedup_vs_RidgeCV_to_its_val_loss"] = t_rc / r["time_s"]
        r = row.get("reach_gridsearch_val")
        if r:
            row["speedup_vs_GridSearchCV_to_its_val_loss"] = t_gs / r["time_s"]
    return {"n": n, "p": p, "rows": rows}


def _flags(p):
    """This script's own flags (``--full``, ``--out`` and ``--threads`` are common)."""
    p.add_argument("--device", default="cpu", help="device of the study's arrays (torch)")
    p.add_argument("--note", default="", help="free text stored in the result file")


def main(argv=None):
    args = parse_args(__doc__.splitlines()[0], argv, extra=_flags)
    n_seeds = 10 if args.full else 3
    n, p = (10_000, 500) if args.full else (2_000, 200)
    warnings.simplefilter("ignore", ConvergenceWarning)
    payload = {"blas_threads": args.threads, "device": args.device, "note": args.note, "study": {},
               "slopes": {}}
    for kind in ("ridge", "logistic"):
        runs = [study(kind, s, args.device) for s in range(n_seeds)]
        payload["study"][kind] = runs
        summary = {}
        for m in (*METHODS, "unrolled"):
            sl = np.array([r[m]["slope"] for r in runs])
            e2 = np.array([r[m]["err_at_1e-2"] for r in runs])
            summary[m] = {"slope_mean": float(np.nanmean(sl)) if np.any(np.isfinite(sl))
                          else float("nan"),
                          "slope_std": float(np.nanstd(sl)) if np.any(np.isfinite(sl))
                          else float("nan"),
                          "err_at_inner_1e-2_median": float(np.median(e2))}
        payload["slopes"][kind] = summary
        print(kind)
        for m, s in summary.items():
            print(f"  {m:13s} slope {s['slope_mean']:.3f} +/- {s['slope_std']:.3f}   "
                  f"err@1e-2 {s['err_at_inner_1e-2_median']:.3g}")
    payload["tuner"] = tuner_bench(n, p)
    for name, row in payload["tuner"]["rows"].items():
        extra = ""
        if row.get("reach_ridgecv_val"):
            extra = (f" reach RidgeCV val in {row['reach_ridgecv_val']['time_s']:.2f}s "
                     f"(x{row['speedup_vs_RidgeCV_to_its_val_loss']:.1f} vs RidgeCV)")
        if row.get("reach_gridsearch_val"):
            extra += (f", GridSearchCV val in {row['reach_gridsearch_val']['time_s']:.2f}s "
                      f"(x{row['speedup_vs_GridSearchCV_to_its_val_loss']:.1f})")
        print(f"{name:45s} {row['time_s']:7.2f}s val {row['val_mse']:.4f} "
              f"test {row['test_mse']:.4f}{extra}")
    write_result("bilevel", payload, mode="full" if args.full else "quick", out=args.out)


if __name__ == "__main__":
    main()
