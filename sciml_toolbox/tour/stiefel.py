"""Demo: landing vs retraction on the GEVP, and streaming CCA on the digits halves."""

from __future__ import annotations

import time
import warnings

import numpy as np

from ._registry import register_demo


@register_demo("stiefel", "Landing on the generalized Stiefel manifold: GEVP and streaming CCA")
def demo(out_dir, device="cpu"):
    """GEVP convergence (landing, Riemannian + Cholesky retraction, PLAM) and streaming CCA.

    Parameters
    ----------
    out_dir : pathlib.Path
        Folder for ``stiefel.png``.
    device : str
        Unused (the demo runs with NumPy on the CPU).

    Returns
    -------
    numbers : dict
        Final relative gaps, constraint violations and per-iteration times.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import scipy.linalg as sl
    from sklearn.datasets import load_digits

    from sciml_toolbox.stiefel import (
        LandingCCA,
        cca_closed_form,
        generalized_eigh,
        make_gevp_pencil,
    )

    out = {}
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        n, p = 400, 50
        A, B = make_gevp_pencil(n, random_state=0)
        t0 = time.perf_counter()
        w_ref = sl.eigh(A, B, subset_by_index=[n - p, n - 1], eigvals_only=True)
        out["gevp_exact_eigh_s"] = time.perf_counter() - t0
        f_star = -0.5 * w_ref.sum()
        for method, style in (("landing", "C0"), ("riemannian", "C1"), ("plam", "C2")):
            _, _, h = generalized_eigh(A, B, p, method=method, max_iter=100000, max_time=5.0,
                                       return_history=True, random_state=0, record_every=5)
            gap = (np.array(h["objective"]) - f_star) / abs(f_star)
            axes[0].semilogy(h["time"], np.maximum(gap, 1e-16), style, label=method)
            axes[1].semilogy(h["time"], np.maximum(h["violation"], 1e-32), style, label=method)
            out[f"gevp_rel_gap_{method}"] = float(gap[-1])
            out[f"gevp_violation_{method}"] = float(h["violation"][-1])
            out[f"gevp_s_per_iter_{method}"] = h["time"][-1] / h["n_iter"]
        out["gevp_per_iter_ratio_landing_over_riemannian"] = (
            out["gevp_s_per_iter_landing"] / out["gevp_s_per_iter_riemannian"]
        )
        axes[0].set(xlabel="time (s)", ylabel="(f - f*) / |f*|", title=f"GEVP n={n}, p={p}")
        axes[1].set(xlabel="time (s)", ylabel="N(X) = ||X^T B X - I||^2 / 4",
                    title="distance to the manifold")
        axes[0].legend()

        X = load_digits().data / 16.0
        Xl, Xr = X[:, :32], X[:, 32:]
        k, reg = 5, 1e-3
        s_ref = cca_closed_form(Xl, Xr, k, reg=reg).correlations
        cca = LandingCCA(n_components=k, batch_size=64, max_epochs=40, reg=reg,
                         lr_decay_epochs=(25,), random_state=0).fit(Xl, Xr)
        gap = (np.array(cca.history_["objective"]) + s_ref.sum()) / s_ref.sum()
        axes[2].semilogy(cca.history_["epoch"], np.abs(gap), "C0",
                         label="|relative gap| of the iterate")
        axes[2].semilogy(cca.history_["epoch"], cca.history_["constraint_violation"], "C3",
                         label="constraint violation")
        axes[2].set(xlabel="epoch", title="streaming CCA, digits halves (batch 64)")
        axes[2].legend()
        # the fitted weights are exactly feasible on the data: their gap is >= 0
        out["cca_rel_gap"] = float(1.0 - cca.canonical_correlations_.sum() / s_ref.sum())
        out["cca_violation"] = float(cca.constraint_violation_)
        out["cca_max_corr_error"] = float(np.max(np.abs(cca.canonical_correlations_ - s_ref)))
    fig.tight_layout()
    fig.savefig(out_dir / "stiefel.png", dpi=100)
    plt.close(fig)
    return out
