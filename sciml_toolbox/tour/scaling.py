"""Demo: robust 4,500-start fit of the Chinchilla law and of the forgetting law."""

from __future__ import annotations

import time

import numpy as np

from ._registry import register_demo


@register_demo("scaling", "Scaling laws: 4,500-start Huber/L-BFGS fits (Chinchilla, forgetting)")
def demo(out_dir, device="cpu"):
    """Fit the Chinchilla law to points generated with the Epoch AI replication parameters
    on a 49 x 5 grid of (N, D) with 0.1% noise, and the forgetting law to synthetic injection
    data; save the fits.

    Returns
    -------
    dict
        Fitted parameters, their relative errors and the fit times.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sciml_toolbox.scaling import ChinchillaLaw, ForgettingLaw, plot_law_fit

    true = {"E": 1.817, "A": 477.8, "B": 2143.9, "alpha": 0.347, "beta": 0.367}
    rng = np.random.default_rng(0)
    N, D = (g.ravel() for g in np.meshgrid(np.geomspace(7e7, 1.6e10, 49),
                                           np.geomspace(5e9, 5e11, 5), indexing="ij"))
    X = np.c_[N, D]
    y = (true["E"] + true["A"] / N ** true["alpha"] + true["B"] / D ** true["beta"]) * np.exp(
        rng.normal(0, 1e-3, N.size))
    t0 = time.perf_counter()
    law = ChinchillaLaw().fit(X, y)
    t_chin = time.perf_counter() - t0

    ft = {"A": 30.0, "B": 900.0, "alpha": 0.4, "beta": 0.2}
    Ns, Ds, ps = np.array([4e7, 1e8, 3e8, 1e9]), np.geomspace(1e6, 1e8, 5), [0, 1e-3, 1e-2,
                                                                             5e-2]
    Nf, Df, Pf = (g.ravel() for g in np.meshgrid(Ns, Ds, ps, indexing="ij"))
    L0 = 1.8 + 400.0 / Nf ** 0.33
    yf = (L0 + ft["A"] * Df ** ft["beta"] / ((1 + ft["B"] * Pf) * Nf) ** ft["alpha"]) * np.exp(
        rng.normal(0, 1e-3, Nf.size))
    t0 = time.perf_counter()
    flaw = ForgettingLaw("given").fit(np.c_[Nf, Df, Pf, L0], yf)
    t_forget = time.perf_counter() - t0

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    plot_law_fit(law, X, y, x_column=0, group_column=1, ax=axes[0], xlabel="parameters N")
    axes[0].set_title("Chinchilla law, 4,500 starts")
    sel = Nf == 1e8
    plot_law_fit(flaw, np.c_[Nf, Df, Pf, L0][sel], yf[sel], x_column=1, group_column=2,
                 ax=axes[1], xlabel="finetuning tokens D")
    axes[1].set_title("forgetting law (N = 1e8), series = injected p")
    fig.tight_layout()
    fig.savefig(out_dir / "scaling.png", dpi=110)
    plt.close(fig)
    out = {f"chinchilla_{k}": float(v) for k, v in law.params_.items()}
    out.update({f"chinchilla_{k}_rel_err": abs(law.params_[k] / v - 1) for k, v in true.items()})
    out.update({f"forgetting_{k}": float(v) for k, v in flaw.params_.items()})
    out.update(chinchilla_fit_seconds=t_chin, forgetting_fit_seconds=t_forget)
    return out
