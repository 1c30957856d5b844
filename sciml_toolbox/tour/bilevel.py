"""Demo: hypergradient error against inner error, and per-feature ridge tuning."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sciml_toolbox.array_api import to_numpy
from sciml_toolbox.bilevel import (
    BilevelRidgeCV,
    LogisticProblem,
    hypergradient_error_curve,
    loglog_slope,
    solve_inner,
)

from ._registry import register_demo

_LABELS = {"ift": "IFT", "newton": "Newton-preconditioned", "jacobi": "Jacobi-preconditioned",
           "reparam_exp": "reparam. exp", "reparam_diag": "reparam. diagonal"}


def _logistic_study(device, seed=0):
    rng = np.random.default_rng(seed)
    n, p = 300, 10
    w = rng.standard_normal(p)
    A, Av = rng.standard_normal((n, p)), rng.standard_normal((200, p))
    y = np.where(A @ w + 0.5 * rng.standard_normal(n) > 0, 1.0, -1.0)
    yv = np.where(Av @ w + 0.5 * rng.standard_normal(200) > 0, 1.0, -1.0)
    x = rng.uniform(-1, 1, p)
    arrays = [A, y, Av, yv, x]
    if device != "cpu":
        import torch

        arrays = [torch.as_tensor(a, dtype=torch.float64, device=device) for a in arrays]
    prob = LogisticProblem(*arrays[:4])
    x = arrays[4]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        z_star = solve_inner(prob, x, method="newton", tol=1e-14).z
        res = solve_inner(prob, x, z_star + 3.0, method="gd", tol=1e-9, max_iter=20000,
                          return_path=True)
    d = np.array([np.linalg.norm(to_numpy(z - z_star)) for z in res.path])
    idx = sorted({int(np.argmax(d <= t)) for t in np.logspace(1, -3.5, 30) if np.any(d <= t)})
    return hypergradient_error_curve(prob, x, [res.path[i] for i in idx], z_star=z_star)


@register_demo("bilevel", "Hypergradients: Newton preconditioning squares the error; "
                          "per-feature ridge tuning")
def demo(out_dir, device="cpu"):
    """Error-vs-inner-error slopes on logistic regression; BilevelRidgeCV against RidgeCV.

    Parameters
    ----------
    out_dir : str or Path
        Folder for ``bilevel.png``.
    device : str, default='cpu'
        Device of the study's arrays (torch for anything but 'cpu').

    Returns
    -------
    numbers : dict
        Log-log slopes per estimator, validation MSE of RidgeCV and BilevelRidgeCV, times.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.linear_model import RidgeCV

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    curve = _logistic_study(device)
    d = curve["inner_error"]
    slopes = {m: loglog_slope(d, e, lo=10**-3.5, hi=10**-0.5) for m, e in curve["errors"].items()}

    rng = np.random.default_rng(1)
    n, p = 2000, 100
    scales = np.exp(rng.uniform(-1, 1, p))
    w = np.zeros(p)
    w[:10] = rng.standard_normal(10)
    Xtr, Xva = rng.standard_normal((n, p)) * scales, rng.standard_normal((n // 2, p)) * scales
    ytr = Xtr @ w + 3 * rng.standard_normal(n)
    yva = Xva @ w + 3 * rng.standard_normal(n // 2)
    # one BLAS thread for both: small matrices, and fair timings on a shared machine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t = time.perf_counter()
        rc = RidgeCV(alphas=np.logspace(-3, 6, 100)).fit(Xtr, ytr)
        t_rc = time.perf_counter() - t
        t = time.perf_counter()
        est = BilevelRidgeCV(max_iter=100).fit(Xtr, ytr, Xva, yva)
        t_b = time.perf_counter() - t
    mse_rc = float(np.mean((rc.predict(Xva) - yva) ** 2))

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for m, e in curve["errors"].items():
        ax1.loglog(d, e, marker=".", label=f"{_LABELS[m]} (slope {slopes[m]:.2f})")
    ax1.set_xlabel("inner error ||z - z*||")
    ax1.set_ylabel("hypergradient error")
    ax1.set_title("Logistic regression: error of each estimator")
    ax1.legend(fontsize=8)
    ax2.plot(est.history_["time"], 2 * np.asarray(est.history_["val_loss"]),
             label="BilevelRidgeCV (per-feature, Newton)")
    ax2.axhline(mse_rc, color="k", ls="--", label=f"RidgeCV, 100 alphas ({t_rc:.2f} s)")
    ax2.set_xlabel("time (s, one BLAS thread)")
    ax2.set_ylabel("validation MSE")
    ax2.set_title(f"Ridge n={n}, p={p}: per-feature penalties")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "bilevel.png", dpi=110)
    plt.close(fig)
    out = {f"slope_{m}": float(s) for m, s in slopes.items()}
    out.update({"ridgecv_val_mse": mse_rc, "bilevel_val_mse": -float(est.best_score_),
                "ridgecv_time_s": t_rc, "bilevel_time_s": t_b})
    return out
