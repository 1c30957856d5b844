"""Landing on the generalized Stiefel manifold against retractions, exact eigh and sklearn CCA.

1. GEVP (Vary et al. 2024, Section 5.1): the pencil of :func:`make_gevp_pencil`, n = 1000 and
   p = 500 in ``--full`` (n = 300, p = 100 in quick mode). Landing, Riemannian gradient descent
   with the Cholesky retraction (B^{-1} formed once), PLAM, and ``scipy.linalg.eigh`` (the
   exact anchor). Reports f - f* and N(X) against time, the per-iteration time of each
   iterative method, the ratio landing / retraction from a clean timing without history
   records (target <= 0.5), and the multiply-add count of both iterations.
2. Streaming CCA: sklearn digits halves (p = 5) and a synthetic problem (``--full``: 100k
   samples, 2 x 500 features, p = 10; quick: 20k, 2 x 50) fed to
   ``LandingCCA.partial_fit`` minibatch by minibatch (step x0.3 at 40, 55, 70 and 85 % of the
   epoch budget: epochs 8, 11, 14, 17 of 20).
   Reports the time to a 1e-3 relative gap of the best feasible objective in the current
   subspaces (1 - sum of correlations / the closed form's), against the fit time (and gap)
   of sklearn ``CCA`` (NIPALS, full batch) and the closed form (d x d inverse square roots +
   SVD), and the full-data constraint violation of the landing iterate.
   ``--sklearn-from RESULT.json`` reuses sklearn's time and gap from a stored result of the
   same data sets (sklearn takes about 14 min at the full size); the output records the
   source.
   Fast streaming CCA (issue #21, ``landing_fast``): ``LandingCCA.fit`` with the low-rank
   preconditioner and variance reduction, with the random init + warm-up and with
   ``init='subset'`` (``CCA_FAST_CONFIGS``), on the same synthetic data and on a second,
   larger set (``--full``: 1M samples, 2 x 200 features; quick: 100k, 2 x 20) generated block
   by block into memory (generation time recorded, excluded from both clocks). The clock of
   each fit includes everything ``fit`` does (validation, means, preconditioner, init, warm-up,
   anchor passes); the iterates are copied at checkpoints (off the clock) and their gap and
   full-data violation evaluated after the fit. The anchor is a chunked closed form (one pass
   of X^T X, Y^T Y, X^T Y over row blocks, corrected by the means, then the same eigh and
   SVD; faster than the in-memory one above), timed just before each landing fit; closed
   form and configs are interleaved ``CCA_FAST_REPEATS`` times and the ratio (landing time
   to a 1e-3 gap over the closed form) is reported per repeat, with its median and range.

3. ``--only split`` (not part of ``all``; the same in quick and ``--full`` mode): the
   ``split_batch`` option of ``LandingCCA`` and ``LandingICA`` (per-half estimates of the
   gradient and of B_zeta W) on the settings their docstrings quote: r = 200 (ICA also
   r = 100), step x0.3 every 2 epochs from epoch 4, 16 epochs of ``fit``; CCA on the synthetic
   20k x (20 + 20), p = 3 problem of ``tests/stiefel``, ICA on 20k x 5 Laplace sources with a
   Gaussian mixing matrix, p = 5; data seeds 0 and 1 x batch orders (``random_state``) 0-4,
   with and without the split. Per run: full-data violation of the landing iterate
   (||W^T C W - I||_F, summed over both views for CCA, with C + reg I), fit time, the Amari
   distance to the true mixing (ICA) or the relative gap and the largest error of the
   canonical correlations against the closed form (CCA).

``--device cuda`` runs the GEVP part with torch CUDA tensors (CCA stays on the CPU); BLAS
and torch are limited to ``--threads`` threads (default 1: reproducible on a shared machine).
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


def _flags(p):
    """This script's own flags (``--full``, ``--out`` and ``--threads`` are common)."""
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--budget", type=float, default=None, help="seconds per GEVP solver")
    p.add_argument("--only", default="all", choices=["all", "gevp", "cca", "split", "products"],
                   help="run only one part ('split': the split_batch study, 'products': the "
                        "tall-skinny product forms of LandingCCA; neither is in 'all')")
    p.add_argument("--note", default=None, help="free text stored in the result (run conditions)")
    p.add_argument("--sklearn-from", default=None, metavar="JSON",
                   help="reuse sklearn CCA's time and gap from this stored result (same data "
                        "set and sizes) instead of refitting it (14 min at the full size); "
                        "the result records where the number came from")


def parse_args(argv=None):
    return _common.parse_args(__doc__.splitlines()[0], argv, extra=_flags)


def _subsample(t, y, k=60):
    idx = np.unique(np.linspace(0, len(t) - 1, min(k, len(t))).astype(int))
    return [float(t[i]) for i in idx], [float(y[i]) for i in idx]


# -------------------------------------------------------------------------------- GEVP
def bench_gevp(n, p, budget, device):
    import scipy.linalg as sl

    from sciml_toolbox._array_api import to_numpy
    from sciml_toolbox.stiefel import generalized_eigh, make_gevp_pencil

    A, B = make_gevp_pencil(n, random_state=123)
    t0 = time.perf_counter()
    w = sl.eigh(A, B, subset_by_index=[n - p, n - 1], eigvals_only=True)
    t_exact = time.perf_counter() - t0
    f_star = -0.5 * float(np.sum(w))
    out = {"n": n, "p": p, "budget_s": budget, "f_star": f_star,
           "exact_scipy_eigh_s": t_exact, "device": device, "methods": {}}
    if device == "cuda":
        import array_api_compat.torch as xp
        import torch

        A, B = xp.asarray(A, device="cuda"), xp.asarray(B, device="cuda")
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        generalized_eigh(A, B, p, method="exact")
        torch.cuda.synchronize()
        out["exact_torch_cuda_s"] = time.perf_counter() - t0
    for method in ("landing", "riemannian", "plam"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                _, V, h = generalized_eigh(
                    A, B, p, method=method, max_iter=20000, max_time=budget, tol=1e-12,
                    return_history=True, random_state=0, record_every=5,
                )
            except FloatingPointError as exc:
                out["methods"][method] = {"error": str(exc)}
                continue
        t = np.array(h["time"])
        gap = (np.array(h["objective"]) - f_star) / abs(f_star)
        tt, gg = _subsample(t, gap)
        _, vv = _subsample(t, np.array(h["violation"]))
        # per-iteration time without the recording (its cost is measured separately below)
        out["methods"][method] = {
            "n_iter": h["n_iter"],
            "s_per_iter": float(t[-1] / h["n_iter"]),
            "final_rel_gap": float(gap[-1]),
            "final_violation_N": float(h["violation"][-1]),
            "learning_rate": h["learning_rate"],
            "omega": h["omega"],
            "curve_time": tt,
            "curve_rel_gap": gg,
            "curve_violation_N": vv,
            "time_to_rel_gap_1e-3": _time_to(t, gap, 1e-3),
            "time_to_rel_gap_1e-6": _time_to(t, gap, 1e-6),
        }
        del V
    m = out["methods"]
    out["flops_per_iter"] = gevp_flops(n, p)
    if "s_per_iter" in m.get("landing", {}) and "s_per_iter" in m.get("riemannian", {}):
        # per-iteration time of the budgeted runs above (they also record the history every 5
        # iterations, an n p^2 product shared by both) and of a clean timing without records
        out["per_iter_ratio_with_records"] = (
            m["landing"]["s_per_iter"] / m["riemannian"]["s_per_iter"]
        )
        runs = {k: dict(method=k, learning_rate=m[k]["learning_rate"], omega=m[k]["omega"])
                for k in ("landing", "riemannian")}
        # the second retraction baseline, with the Cholesky run's step size
        runs["riemannian_polar"] = {**runs["riemannian"], "retraction": "polar"}
        clean = _clean_per_iter(A, B, p, runs)
        out["clean_timing"] = clean
        out["per_iter_ratio_landing_over_retraction"] = (
            clean["landing"]["median_s_per_iter"] / clean["riemannian"]["median_s_per_iter"]
        )
        out["per_iter_ratio_landing_over_polar_retraction"] = (
            clean["landing"]["median_s_per_iter"]
            / clean["riemannian_polar"]["median_s_per_iter"]
        )
    if device == "cpu":
        # the authors' baseline solves with B at every iteration instead of forming B^{-1} once
        t_solve = _per_iter_riemannian_solve(A, B, p, m["riemannian"]["learning_rate"])
        out["riemannian_solve_each_iter_s_per_iter"] = t_solve
        if "clean_timing" in out:
            out["per_iter_ratio_landing_over_retraction_with_solve"] = (
                out["clean_timing"]["landing"]["median_s_per_iter"] / t_solve
            )
    del to_numpy
    return out


def gevp_flops(n, p):
    """Multiply-adds per iteration of the two GEVP iterations as implemented (no history).

    Landing: A X and B D (n^2 p each); M = (BX)^T BX (syrk, n p^2 / 2), K = (AX)^T BX and
    h = X^T BX - I (n p^2 each), D = AX (-M/2) + BX C (2 n p^2), M h (p^3) for the safe step.
    Riemannian (Cholesky retraction, B^{-1} formed once): A X and B^{-1} G (n^2 p each);
    X^T G, X sym(X^T G), BX sym(X^T G) (B Y from B X, no product with B), Y^T B Y (n p^2
    each), one triangular solve for [Y, BY] (n p^2), Cholesky (p^3 / 3). Elementwise O(np)
    work and the refresh of B X / B Y every 100 iterations (n^2 p / 100) are left out.
    """
    landing = 2 * n * n * p + 4.5 * n * p * p + p**3
    riemannian = 2 * n * n * p + 5 * n * p * p + p**3 / 3
    return {"landing": landing, "riemannian": riemannian, "ratio": landing / riemannian,
            "formula_landing": "2 n^2 p + 4.5 n p^2 + p^3",
            "formula_riemannian": "2 n^2 p + 5 n p^2 + p^3 / 3"}


def _clean_per_iter(A, B, p, runs, iters=30, repeats=5):
    """Seconds per iteration without history records (one record at the last iteration),
    the solvers (``generalized_eigh`` keyword arguments in ``runs``) interleaved ``repeats``
    times with the step sizes of the budgeted runs."""
    from sciml_toolbox.stiefel import generalized_eigh

    times = {k: [] for k in runs}
    for _ in range(repeats):
        for name, kw in runs.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, _, h = generalized_eigh(
                    A, B, p, max_iter=iters, tol=0.0, record_every=iters, return_history=True,
                    random_state=0, check_input=False, **kw,
                )
            times[name].append(h["time"][-1] / h["n_iter"])
    return {k: {"s_per_iter": v, "median_s_per_iter": float(np.median(v)), "iters": iters}
            for k, v in times.items()}


def _per_iter_riemannian_solve(A, B, p, lr, iters=10):
    """Seconds per iteration of Riemannian descent that solves B Z = G at every step (as the
    reference implementation does) with the Cholesky retraction."""
    from sciml_toolbox.stiefel import cholesky_retraction, riemannian_gradient

    rng = np.random.default_rng(0)
    X, _ = np.linalg.qr(rng.standard_normal((A.shape[0], p)))
    X, BX = cholesky_retraction(X, B @ X)
    t0 = time.perf_counter()
    for _ in range(iters):
        G = -(A @ X)
        D = riemannian_gradient(X, G, np.linalg.solve(B, G))
        Y = X - lr * D
        X, BX = cholesky_retraction(Y, B @ Y)
    return (time.perf_counter() - t0) / iters


def _time_to(t, gap, level):
    hit = np.nonzero(np.asarray(gap) <= level)[0]
    return float(t[hit[0]]) if hit.size else None


# -------------------------------------------------------------------------------- CCA
def _closed_form(X, Y, p, reg):
    from sciml_toolbox.stiefel import cca_closed_form

    t0 = time.perf_counter()
    res = cca_closed_form(X, Y, p, reg=reg)
    return res.correlations, time.perf_counter() - t0, res.covariances


def _subspace_corr(Wx, Wy, S):
    """Best feasible objective (sum of canonical correlations) within span(Wx) x span(Wy)."""
    from sciml_toolbox.stiefel import cca_subspace_correlation

    return cca_subspace_correlation(Wx, Wy, S)


# step x0.3 at these fractions of the epoch budget (epochs 8, 11, 14, 17 of 20; passed to
# partial_fit in calls): the constant step of the first epochs makes fast progress, the decay
# removes the noise floor of the gap (about 1.3e-3 at the full size with a constant step) and
# drives the constraint violation down
CCA_DECAY_FRACTIONS = (0.4, 0.55, 0.7, 0.85)
CCA_DECAY = 0.3


def _violation(Wx, Wy, S):
    """||Wx^T Sxx Wx - I||_F + ||Wy^T Syy Wy - I||_F on the full data."""
    Sxx, Syy, _ = S
    eye = np.eye(Wx.shape[1])
    return float(np.linalg.norm(Wx.T @ Sxx @ Wx - eye) + np.linalg.norm(Wy.T @ Syy @ Wy - eye))


def _stored_sklearn(path, name, X, Y, p):
    """sklearn's time and gap for the same data set from a stored result, or None."""
    import json

    stored = json.loads(Path(path).read_text())
    for r in stored["results"].values():
        if (isinstance(r, dict) and r.get("dataset") == name
                and r.get("n_samples") == X.shape[0] and r.get("d_x") == X.shape[1]
                and r.get("d_y") == Y.shape[1] and r.get("p") == p and "sklearn_cca_s" in r):
            src = r.get("sklearn_source") or (
                f"measured by the run of {stored.get('date')} (commit "
                f"{stored.get('machine', {}).get('commit')})"
            )
            return r["sklearn_cca_s"], r["sklearn_cca_rel_gap"], (
                f"reused from {Path(path).name}: {src}"
            )
    return None


def bench_cca(name, X, Y, p, reg, batch_size, max_epochs, sklearn_max_iter=500,
              sklearn_from=None):
    from sklearn.cross_decomposition import CCA

    from sciml_toolbox.stiefel import LandingCCA

    s_ref, t_closed, S = _closed_form(X, Y, p, reg)
    target = float(np.sum(s_ref))
    res = {"dataset": name, "n_samples": X.shape[0], "d_x": X.shape[1], "d_y": Y.shape[1],
           "p": p, "reg": reg, "batch_size": batch_size, "closed_form_s": t_closed,
           "closed_form_correlations": [float(v) for v in s_ref]}

    stored = None if sklearn_from is None else _stored_sklearn(sklearn_from, name, X, Y, p)
    if stored is None:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sk = CCA(n_components=p, max_iter=sklearn_max_iter).fit(X, Y)
        res["sklearn_cca_s"] = time.perf_counter() - t0
        res["sklearn_cca_rel_gap"] = (
            1.0 - _subspace_corr(sk.x_weights_, sk.y_weights_, S) / target
        )
        res["sklearn_source"] = "measured in this run"
    else:
        res["sklearn_cca_s"], res["sklearn_cca_rel_gap"], res["sklearn_source"] = stored

    n = X.shape[0]
    n_batches = n // batch_size
    decay_epochs = [round(f * max_epochs) for f in CCA_DECAY_FRACTIONS]
    decay_calls = tuple(e * n_batches for e in decay_epochs)
    res["landing_lr_decay_epochs"] = decay_epochs
    res["landing_lr_decay"] = CCA_DECAY
    cca = LandingCCA(n_components=p, batch_size=batch_size, reg=reg, random_state=0,
                     lr_decay_epochs=decay_calls, lr_decay=CCA_DECAY)
    rng = np.random.default_rng(0)
    elapsed, times, gaps, epochs, viols = 0.0, [], [], [], []
    evals_per_epoch = 8
    every = max(1, n_batches // evals_per_epoch)
    k = 0
    for _epoch in range(max_epochs):
        perm = rng.permutation(n)
        for b in range(n_batches):
            idx = perm[b * batch_size : (b + 1) * batch_size]
            Xb, Yb = X[idx], Y[idx]
            t0 = time.perf_counter()
            cca.partial_fit(Xb, Yb)
            elapsed += time.perf_counter() - t0
            k += 1
            if k % every == 0:
                gap = 1.0 - _subspace_corr(cca.x_weights_, cca.y_weights_, S) / target
                times.append(elapsed)
                gaps.append(gap)
                epochs.append(k / n_batches)
                # the landing iterate (before the final p x p normalisation), full data
                viols.append(_violation(cca._Wx, cca._Wy, S))
    res["landing_time_to_rel_gap_1e-3_s"] = _time_to(np.array(times), np.array(gaps), 1e-3)
    res["landing_time_to_rel_gap_1e-2_s"] = _time_to(np.array(times), np.array(gaps), 1e-2)
    res["landing_time_to_sklearn_gap_s"] = _time_to(
        np.array(times), np.array(gaps), res["sklearn_cca_rel_gap"]
    )
    res["landing_final_rel_gap"] = gaps[-1]
    res["landing_epochs"] = epochs[-1]
    res["landing_total_s"] = elapsed
    res["landing_final_violation_full_data"] = viols[-1]
    res["landing_final_violation_batch_ema"] = cca.constraint_violation_
    res["curve_time"], res["curve_rel_gap"] = _subsample(np.array(times), np.array(gaps))
    _, res["curve_violation_full_data"] = _subsample(np.array(times), np.array(viols))
    t = res["landing_time_to_rel_gap_1e-3_s"]
    res["ratio_landing_1e-3_over_sklearn"] = None if t is None else t / res["sklearn_cca_s"]
    t = res["landing_time_to_sklearn_gap_s"]
    res["ratio_landing_to_sklearn_gap_over_sklearn"] = (
        None if t is None else t / res["sklearn_cca_s"]
    )
    res["landing_s_per_step"] = elapsed / max(cca.n_iter_, 1)
    res["riemannian_sgd"] = riemannian_sgd_cca(X, Y, p, reg, batch_size, min(max_epochs, 5), S,
                                               target)
    return res


def riemannian_sgd_cca(X, Y, p, reg, batch_size, max_epochs, S, target, lr=0.1):
    """The paper's CCA baseline: Riemannian SGD with running covariances (d x d, updated with
    every batch), B^{-1} G by a Cholesky solve and the Cholesky retraction, per step."""
    import scipy.linalg as sl

    n, dx = X.shape
    dy = Y.shape[1]
    rng = np.random.default_rng(0)
    mx, my = X.mean(0), Y.mean(0)
    Cx, Cy = np.zeros((dx, dx)), np.zeros((dy, dy))
    Wx, Wy = rng.standard_normal((dx, p)), rng.standard_normal((dy, p))
    seen, elapsed, times, gaps = 0, 0.0, [], []
    n_batches = n // batch_size
    every = max(1, n_batches // 8)
    k = 0

    def retract(W, C):
        L = np.linalg.cholesky(W.T @ C @ W)
        return sl.solve_triangular(L, W.T, lower=True).T

    for _epoch in range(max_epochs):
        perm = rng.permutation(n)
        for b in range(n_batches):
            idx = perm[b * batch_size : (b + 1) * batch_size]
            t0 = time.perf_counter()
            Xb, Yb = X[idx] - mx, Y[idx] - my
            r = Xb.shape[0]
            Cx = (Cx * seen + Xb.T @ Xb) / (seen + r)
            Cy = (Cy * seen + Yb.T @ Yb) / (seen + r)
            seen += r
            Bx, By = Cx + reg * np.eye(dx), Cy + reg * np.eye(dy)
            if k == 0:
                Wx, Wy = retract(Wx, Bx), retract(Wy, By)
            Gx = -Xb.T @ (Yb @ Wy) / r
            Gy = -Yb.T @ (Xb @ Wx) / r
            Rx = sl.cho_solve(sl.cho_factor(Bx), Gx) - Wx @ (0.5 * (Wx.T @ Gx + Gx.T @ Wx))
            Ry = sl.cho_solve(sl.cho_factor(By), Gy) - Wy @ (0.5 * (Wy.T @ Gy + Gy.T @ Wy))
            Wx, Wy = retract(Wx - lr * Rx, Bx), retract(Wy - lr * Ry, By)
            elapsed += time.perf_counter() - t0
            k += 1
            if k % every == 0:
                times.append(elapsed)
                gaps.append(1.0 - _subspace_corr(Wx, Wy, S) / target)
        if gaps and gaps[-1] <= 1e-3:
            break
    return {
        "time_to_rel_gap_1e-3_s": _time_to(np.array(times), np.array(gaps), 1e-3),
        "time_to_rel_gap_1e-2_s": _time_to(np.array(times), np.array(gaps), 1e-2),
        "final_rel_gap": gaps[-1],
        "total_s": elapsed,
        "s_per_step": elapsed / k,
        "learning_rate": lr,
    }


# -------------------------------------------------------------------------------- fast CCA
# the options of issue #21 (part 2), fitted with LandingCCA.fit on the in-memory data; the
# iterates are stored at checkpoints (after every anchor pass and four times per inner loop)
# and the gap is evaluated after the fit, off the clock
CCA_FAST_REPEATS = 3
CCA_FAST_CONFIGS = {
    "precond_vr": dict(preconditioner="low-rank", variance_reduction=True),
    "precond_vr_subset_init": dict(preconditioner="low-rank", variance_reduction=True,
                                   init="subset"),
}


def _closed_form_chunked(X, Y, p, reg, chunk=65536):
    """The closed form from one pass over row blocks: uncentred X^T X, Y^T Y, X^T Y and the
    column sums (N (d_x^2 + d_y^2 + d_x d_y) multiply-adds, no centred copy of the data),
    corrected by the means; then the same two eigh and SVD as :func:`_closed_form`."""
    import scipy.linalg as sl

    t0 = time.perf_counter()
    n, dx = X.shape
    dy = Y.shape[1]
    XX, YY, XY = np.zeros((dx, dx)), np.zeros((dy, dy)), np.zeros((dx, dy))
    sx, sy = np.zeros(dx), np.zeros(dy)
    for s in range(0, n, chunk):
        Xb, Yb = X[s : s + chunk], Y[s : s + chunk]
        XX += Xb.T @ Xb
        YY += Yb.T @ Yb
        XY += Xb.T @ Yb
        sx += Xb.sum(0)
        sy += Yb.sum(0)
    mx, my = sx / n, sy / n
    Sxx = XX / n - np.outer(mx, mx) + reg * np.eye(dx)
    Syy = YY / n - np.outer(my, my) + reg * np.eye(dy)
    Sxy = XY / n - np.outer(mx, my)
    wx, Vx = sl.eigh(Sxx)
    wy, Vy = sl.eigh(Syy)
    Wx = (Vx / np.sqrt(wx)) @ Vx.T
    Wy = (Vy / np.sqrt(wy)) @ Vy.T
    sv = np.linalg.svd(Wx @ Sxy @ Wy, compute_uv=False)[:p]
    return sv, time.perf_counter() - t0, (Sxx, Syy, Sxy)


def landing_fast_cca(X, Y, p, reg, S, target, config, max_epochs, batch_size=512):
    """``LandingCCA(**config).fit(X, Y)`` with the iterate stored at every checkpoint.

    The clock runs from the call of ``fit`` (validation, means, preconditioner, init and
    every pass included) and stops only while a checkpoint copies the two (d, p) iterates;
    the relative gap and the full-data violation of each stored iterate are computed after
    the fit."""
    from sciml_toolbox.stiefel import LandingCCA

    class _Checkpointed(LandingCCA):
        def _on_checkpoint(self):
            t = time.perf_counter()
            self._ck.append((t - self._t_start - self._t_excl, self._Wx.copy(),
                             self._Wy.copy(), self.n_iter_))
            self._t_excl += time.perf_counter() - t

    est = _Checkpointed(n_components=p, reg=reg, batch_size=batch_size, max_epochs=max_epochs,
                        tol=0.0, random_state=0, **config)
    est._ck, est._t_excl = [], 0.0
    est._t_start = time.perf_counter()
    est.fit(X, Y)
    total = time.perf_counter() - est._t_start - est._t_excl
    times = np.array([c[0] for c in est._ck])
    gaps = np.array([1.0 - _subspace_corr(c[1], c[2], S) / target for c in est._ck])
    viols = np.array([_violation(c[1], c[2], S) for c in est._ck])
    return {
        "config": {**config, "batch_size": batch_size, "max_epochs": max_epochs},
        "learning_rate": [float(v) for v in est._lr],
        "time_to_rel_gap_1e-3_s": _time_to(times, gaps, 1e-3),
        "time_to_rel_gap_1e-2_s": _time_to(times, gaps, 1e-2),
        "final_rel_gap": float(gaps[-1]),
        "final_violation_full_data": float(viols[-1]),
        "violation_at_1e-3": (None if _time_to(times, gaps, 1e-3) is None
                              else float(viols[np.nonzero(gaps <= 1e-3)[0][0]])),
        "fit_total_s": total,
        "n_iter": int(est.n_iter_),
        "anchor_passes": len(est.history_["objective"]),
        "curve_time": [float(t) for t in times],
        "curve_rel_gap": [float(g) for g in gaps],
        "curve_violation_full_data": [float(v) for v in viols],
    }


def _run_fast_configs(res, X, Y, p, reg, S, target, max_epochs, repeats=CCA_FAST_REPEATS):
    """The chunked closed form and every config of :data:`CCA_FAST_CONFIGS` on (X, Y),
    interleaved ``repeats`` times; each repeat's ratio (landing time to a 1e-3 gap over the
    closed form timed just before it) and the median and range over the repeats."""
    res["landing_fast"] = {name: {"repeats": []} for name in CCA_FAST_CONFIGS}
    res["closed_form_chunked_repeats_s"] = []
    for _ in range(repeats):
        _, t_cf, _ = _closed_form_chunked(X, Y, p, reg)
        res["closed_form_chunked_repeats_s"].append(t_cf)
        for name, config in CCA_FAST_CONFIGS.items():
            r = landing_fast_cca(X, Y, p, reg, S, target, config, max_epochs)
            t = r["time_to_rel_gap_1e-3_s"]
            r["closed_form_chunked_s"] = t_cf
            r["ratio_1e-3_over_closed_form"] = None if t is None else t / t_cf
            res["landing_fast"][name]["repeats"].append(r)
    for out in res["landing_fast"].values():
        reps = out["repeats"]
        ratios = [r["ratio_1e-3_over_closed_form"] for r in reps]
        times = [r["time_to_rel_gap_1e-3_s"] for r in reps]
        out["ratio_1e-3_over_closed_form_median"] = (
            None if None in ratios else float(np.median(ratios)))
        out["ratio_1e-3_over_closed_form_range"] = _range(ratios)
        out["time_to_rel_gap_1e-3_s_median"] = None if None in times else float(np.median(times))
        # the curves, violations and final gaps do not depend on the timing: keep the first
        # repeat's, and only its timings from the others
        for key in ("config", "learning_rate", "final_rel_gap", "final_violation_full_data",
                    "violation_at_1e-3", "n_iter", "anchor_passes", "curve_rel_gap",
                    "curve_violation_full_data"):
            out[key] = reps[0][key]
        out["curve_time_by_repeat"] = [r["curve_time"] for r in reps]
        out["fit_total_s_by_repeat"] = [r["fit_total_s"] for r in reps]
        del out["repeats"]
    res["closed_form_chunked_s_median"] = float(np.median(res["closed_form_chunked_repeats_s"]))


# (rows, features, columns) of the tall-skinny products of LandingCCA: minibatch steps (512),
# variance-reduced steps (4000 at d = 500, 3200 at d = 200) and anchor blocks (16384)
PRODUCT_SHAPES = ((512, 500, 10), (4096, 500, 10), (4096, 500, 20), (16384, 500, 10),
                  (16384, 500, 20), (3200, 200, 10), (3200, 200, 20))


def bench_products(repeats=20):
    """Median seconds of ``X @ W`` against ``(W^T X^T)^T`` and of ``X^T @ V`` against
    ``(V^T X)^T`` (the forms ``_xw`` / ``_xtv`` of ``LandingCCA``; same arithmetic) for a
    C-ordered float64 X of each shape in :data:`PRODUCT_SHAPES`."""
    rng = np.random.default_rng(0)
    out = []

    def med(f, a, b):
        f(a, b)
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            f(a, b)
            ts.append(time.perf_counter() - t0)
        return float(np.median(ts))

    for r, d, c in PRODUCT_SHAPES:
        X = rng.standard_normal((r, d))
        W = rng.standard_normal((d, c))
        V = rng.standard_normal((r, c))
        row = {"rows": r, "features": d, "columns": c,
               "XW_s": med(lambda x, w: x @ w, X, W),
               "WtXt_T_s": med(lambda x, w: (w.T @ x.T).T, X, W),
               "XtV_s": med(lambda x, v: x.T @ v, X, V),
               "VtX_T_s": med(lambda x, v: (v.T @ x).T, X, V)}
        row["forward_speedup"] = row["XW_s"] / row["WtXt_T_s"]
        row["backward_speedup"] = row["XtV_s"] / row["VtX_T_s"]
        out.append(row)
    return {"repeats": repeats, "dtype": "float64", "shapes": out}


def synthetic_cca_chunked(n, d, chunk=100_000, p_latent=10, seed=0):
    """The model of :func:`synthetic_cca`, generated block by block into preallocated arrays:
    loadings from ``seed``, the rows of block i from ``default_rng([seed, i])`` (never more
    than one block of temporaries)."""
    rng = np.random.default_rng(seed)
    corr = np.linspace(0.9, 0.5, p_latent)
    Ax = rng.standard_normal((p_latent, d)) / np.sqrt(p_latent)
    Ay = rng.standard_normal((p_latent, d)) / np.sqrt(p_latent)
    X, Y = np.empty((n, d)), np.empty((n, d))
    for i, s in enumerate(range(0, n, chunk)):
        r = np.random.default_rng([seed, i])
        m = min(chunk, n - s)
        Z = r.standard_normal((m, p_latent))
        Zy = Z * corr + r.standard_normal((m, p_latent)) * np.sqrt(1 - corr**2)
        X[s : s + m] = Z @ Ax + r.standard_normal((m, d))
        Y[s : s + m] = Zy @ Ay + r.standard_normal((m, d))
    return X, Y


def bench_cca_large(n, d, p=10, reg=1e-3, max_epochs=3):
    """The closed form (one chunked covariance pass) against the fast landing configs on
    n x (d + d) data generated in blocks (generation time recorded, excluded from both)."""
    t0 = time.perf_counter()
    X, Y = synthetic_cca_chunked(n, d)
    t_gen = time.perf_counter() - t0
    s_ref, t_closed, S = _closed_form_chunked(X, Y, p, reg)
    target = float(np.sum(s_ref))
    res = {"dataset": "synthetic (block-generated)", "n_samples": n, "d_x": d, "d_y": d,
           "p": p, "reg": reg, "generation_s_excluded": t_gen,
           "closed_form_chunked_s": t_closed,
           "closed_form_flops": 2.0 * n * (2 * d) ** 2,
           "closed_form_correlations": [float(v) for v in s_ref]}
    _run_fast_configs(res, X, Y, p, reg, S, target, max_epochs)
    return res


def synthetic_cca(n, d, p_latent=10, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, p_latent))
    corr = np.linspace(0.9, 0.5, p_latent)
    Zy = Z * corr + rng.standard_normal((n, p_latent)) * np.sqrt(1 - corr**2)
    Ax = rng.standard_normal((p_latent, d)) / np.sqrt(p_latent)
    Ay = rng.standard_normal((p_latent, d)) / np.sqrt(p_latent)
    X = Z @ Ax + rng.standard_normal((n, d))
    Y = Zy @ Ay + rng.standard_normal((n, d))
    return X, Y


# -------------------------------------------------------------------------------- split_batch
# the schedule of the split_batch measurements quoted in the LandingCCA / LandingICA docstrings
# and of their tests: r = 200, step x0.3 every 2 epochs from epoch 4, 16 epochs of fit
SPLIT_FIT = dict(max_epochs=16, lr_decay=0.3, lr_decay_epochs=(4, 6, 8, 10, 12, 14))
SPLIT_DATA_SEEDS = (0, 1)
SPLIT_BATCH_ORDERS = (0, 1, 2, 3, 4)


def laplace_mixture(n, d, seed):
    """Laplace sources mixed by a Gaussian d x d matrix, as ``_laplace_mixture`` in
    ``tests/stiefel/test_stiefel_reference.py``; returns (X, mixing)."""
    rng = np.random.default_rng(seed)
    S = rng.laplace(size=(n, d))
    A = rng.standard_normal((d, d))
    return S @ A.T, A


def _range(values):
    v = [x for x in values if x is not None]
    return [float(min(v)), float(max(v))] if v else None


def bench_split_cca(n=20_000, d=20, p=3, batch_size=200, reg=1e-3):
    from sciml_toolbox.stiefel import LandingCCA, make_cca_data

    runs, closed = [], {}
    for seed in SPLIT_DATA_SEEDS:
        X, Y = make_cca_data(n, d, p, random_state=seed)
        s_ref, _, S = _closed_form(X, Y, p, reg)
        target = float(np.sum(s_ref))
        for order in SPLIT_BATCH_ORDERS:
            for split in (False, True):
                est = LandingCCA(n_components=p, batch_size=batch_size, reg=reg,
                                 split_batch=split, random_state=order, **SPLIT_FIT)
                t0 = time.perf_counter()
                est.fit(X, Y)
                t_fit = time.perf_counter() - t0
                # the landing iterate, before the final p x p normalisation of x_weights_
                viol = _violation(est._Wx, est._Wy, S)
                runs.append({
                    "data_seed": seed, "random_state": order, "split_batch": split,
                    "violation_full_data": viol,
                    "estimator_constraint_violation": float(est.constraint_violation_),
                    "rel_gap": 1.0 - _subspace_corr(est._Wx, est._Wy, S) / target,
                    "max_abs_corr_error": float(np.max(np.abs(
                        np.asarray(est.canonical_correlations_) - s_ref))),
                    "fit_s": t_fit,
                    "n_iter": int(est.n_iter_),
                })
        closed[str(seed)] = [float(v) for v in s_ref]
    return {"n_samples": n, "d_x": d, "d_y": d, "p": p, "batch_size": batch_size, "reg": reg,
            "fit_kwargs": {**SPLIT_FIT, "lr_decay_epochs": list(SPLIT_FIT["lr_decay_epochs"])},
            "data": "sciml_toolbox.stiefel.make_cca_data",
            "closed_form_correlations_by_data_seed": closed, "runs": runs,
            "summary": _split_summary(runs, ("violation_full_data", "rel_gap",
                                             "max_abs_corr_error", "fit_s"))}


def bench_split_ica(n=20_000, d=5, batch_sizes=(200, 100)):
    from sciml_toolbox.multiview import amari_distance
    from sciml_toolbox.stiefel import LandingICA

    runs = []
    for seed in SPLIT_DATA_SEEDS:
        X, A = laplace_mixture(n, d, seed)
        C = np.cov(X, rowvar=False, bias=True)
        for r in batch_sizes:
            for order in SPLIT_BATCH_ORDERS:
                for split in (False, True):
                    est = LandingICA(n_components=d, batch_size=r, split_batch=split,
                                     random_state=order, **SPLIT_FIT)
                    t0 = time.perf_counter()
                    est.fit(X)
                    t_fit = time.perf_counter() - t0
                    W = np.asarray(est.components_).T
                    runs.append({
                        "data_seed": seed, "batch_size": r, "random_state": order,
                        "split_batch": split,
                        "violation_full_data": float(np.linalg.norm(W.T @ C @ W - np.eye(d))),
                        "estimator_constraint_violation": float(est.constraint_violation_),
                        "amari": float(amari_distance(est.components_, A)),
                        "fit_s": t_fit,
                        "n_iter": int(est.n_iter_),
                    })
    summary = {}
    for r in batch_sizes:
        sub = [x for x in runs if x["batch_size"] == r]
        summary[f"r={r}"] = _split_summary(sub, ("violation_full_data", "amari", "fit_s"))
    return {"n_samples": n, "d": d, "p": d, "batch_sizes": list(batch_sizes),
            "fit_kwargs": {**SPLIT_FIT, "lr_decay_epochs": list(SPLIT_FIT["lr_decay_epochs"])},
            "data": "laplace_mixture (tests/stiefel _laplace_mixture)", "runs": runs,
            "summary": summary}


def _split_summary(runs, keys):
    """Min-max ranges without / with the split: over all runs and per data seed, and the
    per-batch-order ratio split / no split of every key."""
    out = {}
    for scope in ("all", *SPLIT_DATA_SEEDS):
        sub = runs if scope == "all" else [r for r in runs if r["data_seed"] == scope]
        name = "all" if scope == "all" else f"data_seed={scope}"
        out[name] = {}
        for split in (False, True):
            rs = [r for r in sub if r["split_batch"] is split]
            out[name]["split" if split else "no_split"] = {k: _range(r[k] for r in rs)
                                                           for k in keys}
        pairs = {}
        for r in sub:
            pairs.setdefault((r["data_seed"], r["random_state"]), {})[r["split_batch"]] = r
        out[name]["ratio_split_over_no_split"] = {
            k: _range(q[True][k] / q[False][k] for q in pairs.values() if q[False][k] > 0)
            for k in keys
        }
    return out


def _fmt_range(r, fmt="{:.3g}"):
    return "—" if r is None else f"{fmt.format(r[0])}-{fmt.format(r[1])}"


def _run_split(payload):
    t0 = time.perf_counter()
    payload["split_cca"] = bench_split_cca()
    payload["split_ica"] = bench_split_ica()
    payload["split_total_s"] = time.perf_counter() - t0
    c = payload["split_cca"]
    print(f"split_batch, LandingCCA {c['n_samples']} x ({c['d_x']} + {c['d_y']}), p={c['p']}, "
          f"r={c['batch_size']}, data seeds {SPLIT_DATA_SEEDS} x batch orders "
          f"{SPLIT_BATCH_ORDERS}:")
    for scope, s in c["summary"].items():
        for key in ("no_split", "split"):
            v = s[key]
            print(f"  {scope:12s} {key:8s} violation {_fmt_range(v['violation_full_data'])}, "
                  f"rel. gap {_fmt_range(v['rel_gap'])}, corr. error "
                  f"{_fmt_range(v['max_abs_corr_error'])}, "
                  f"fit {_fmt_range(v['fit_s'], '{:.2f}')} s")
    i = payload["split_ica"]
    print(f"split_batch, LandingICA Laplace {i['n_samples']} x {i['d']}, p={i['p']}:")
    for rkey, summ in i["summary"].items():
        for scope, s in summ.items():
            for key in ("no_split", "split"):
                v = s[key]
                print(f"  {rkey} {scope:12s} {key:8s} violation "
                      f"{_fmt_range(v['violation_full_data'])}, Amari {_fmt_range(v['amari'])}, "
                      f"fit {_fmt_range(v['fit_s'], '{:.2f}')} s")
            print(f"  {rkey} {scope:12s} ratio split/no split per batch order: Amari "
                  f"{_fmt_range(s['ratio_split_over_no_split']['amari'])}")
    print(f"split study: {payload['split_total_s']:.1f} s")


def main(argv=None):
    args = parse_args(argv)
    from threadpoolctl import threadpool_limits

    full = args.full
    n, p = (1000, 500) if full else (300, 100)
    budget = args.budget or (20.0 if full else 3.0)
    payload = {"threads": args.threads, "note": args.note}
    with threadpool_limits(limits=args.threads):
        if args.only in ("all", "gevp"):
            _run_gevp(payload, n, p, budget, args.device)
        if args.only in ("all", "cca"):
            _run_cca(payload, full, args.sklearn_from)
        if args.only == "split":
            _run_split(payload)
        if args.only == "products":
            payload["products"] = bench_products()
            for row in payload["products"]["shapes"]:
                print(f"{row['rows']} x {row['features']}, {row['columns']} columns: X @ W / "
                      f"(W^T X^T)^T = {row['forward_speedup']:.2f}, X^T @ V / (V^T X)^T = "
                      f"{row['backward_speedup']:.2f}")
    write_result("stiefel", payload, mode="full" if full else "quick", out=args.out)


def _run_gevp(payload, n, p, budget, device):
    payload["gevp"] = bench_gevp(n, p, budget, device)
    g = payload["gevp"]
    print(f"GEVP n={n} p={p}: exact {g['exact_scipy_eigh_s']:.3f}s; ratio landing/retraction "
          f"per iteration {g.get('per_iter_ratio_landing_over_retraction')} (flop ratio "
          f"{g['flops_per_iter']['ratio']:.3f}; with records "
          f"{g.get('per_iter_ratio_with_records')}; vs the polar retraction: "
          f"{g.get('per_iter_ratio_landing_over_polar_retraction')}; vs solving with B each step: "
          f"{g.get('per_iter_ratio_landing_over_retraction_with_solve')})")
    for m, r in g["methods"].items():
        print(f"  {m}: {r.get('n_iter')} it, {r.get('s_per_iter', float('nan')):.4g} s/it, "
              f"gap {r.get('final_rel_gap')}, N {r.get('final_violation_N')}")


def _run_cca(payload, full, sklearn_from=None):
    from sklearn.datasets import load_digits

    D = load_digits().data / 16.0
    payload["cca_digits"] = bench_cca("digits halves", D[:, :32], D[:, 32:], 5, 1e-3,
                                      batch_size=64, max_epochs=60 if full else 30,
                                      sklearn_from=sklearn_from)
    ns, ds = (100_000, 500) if full else (20_000, 50)
    X, Y = synthetic_cca(ns, ds)
    payload["cca_synthetic"] = bench_cca("synthetic", X, Y, 10, 1e-3, batch_size=512,
                                         max_epochs=20, sklearn_from=sklearn_from)
    # the fast configs on the same data, against the faster of the two closed forms
    r = payload["cca_synthetic"]
    s_ref, t_chunked, S = _closed_form_chunked(X, Y, 10, 1e-3)
    r["closed_form_chunked_s"] = t_chunked
    _run_fast_configs(r, X, Y, 10, 1e-3, S, float(np.sum(s_ref)), max_epochs=4)
    del X, Y
    nl, dl = (1_000_000, 200) if full else (100_000, 20)
    payload["cca_large"] = bench_cca_large(nl, dl)
    for key in ("cca_digits", "cca_synthetic"):
        r = payload[key]
        print(f"{r['dataset']} ({r['n_samples']} x {r['d_x']}+{r['d_y']}, p={r['p']}): "
              f"landing 1e-3 gap at {r['landing_time_to_rel_gap_1e-3_s']} s "
              f"(final gap {r['landing_final_rel_gap']:.2e} after {r['landing_epochs']:.2f} "
              f"epochs; sklearn's gap at {r['landing_time_to_sklearn_gap_s']} s; violation "
              f"{r['landing_final_violation_full_data']:.3g}), "
              f"sklearn CCA {r['sklearn_cca_s']:.2f} s (gap "
              f"{r['sklearn_cca_rel_gap']:.2e}), closed form {r['closed_form_s']:.2f} s; "
              f"Riemannian SGD: {r['riemannian_sgd']}")
    for key in ("cca_synthetic", "cca_large"):
        r = payload[key]
        print(f"{r['dataset']} ({r['n_samples']} x {r['d_x']}+{r['d_y']}, p={r['p']}): "
              f"chunked closed form {r['closed_form_chunked_repeats_s']} s")
        for name, f in r["landing_fast"].items():
            print(f"  {name}: 1e-3 gap at {f['time_to_rel_gap_1e-3_s_median']} s (median; "
                  f"ratio to the closed form, median {f['ratio_1e-3_over_closed_form_median']}, "
                  f"range {f['ratio_1e-3_over_closed_form_range']}; violation there "
                  f"{f['violation_at_1e-3']}), final gap {f['final_rel_gap']:.2e}, violation "
                  f"{f['final_violation_full_data']:.2e}, fit {f['fit_total_s_by_repeat']} s")


if __name__ == "__main__":
    main()
