"""Demo: recover shared sources, delays and dilations of 5 simulated subjects with MVICAD2."""

from __future__ import annotations

import time

import numpy as np

from ._registry import register_demo


@register_demo("multiview", "MVICAD2 recovers shared sources, delays and dilations (5 subjects)")
def demo(out_dir, device="cpu"):
    """Fit MVICAD2, MVICAD and MVICA on the paper's synthetic protocol; plot the recovery.

    Parameters
    ----------
    out_dir : pathlib.Path
        Where ``multiview.png`` is written.
    device : str, default='cpu'
        Unused: the demo runs on NumPy arrays (the estimators also take torch/CuPy arrays).

    Returns
    -------
    results : dict
        Amari distances and fit times of the three models, warp errors of MVICAD2.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sciml_toolbox.datasets import make_multiview_sources
    from sciml_toolbox.multiview import (
        MVICA,
        MVICAD,
        MVICAD2,
        amari_distance,
        match_sources,
        warp_errors,
    )

    setting = dict(n_concat=5, onset=200)
    d = make_multiview_sources(5, 3, 600, noise=0.01, max_dilation=1.15, max_shift=0.05,
                               random_state=0, **setting)
    models = {
        "MVICAD2": MVICAD2(noise=0.1, max_dilation=1.15, max_shift=0.05, random_state=0,
                           **setting),
        "MVICAD": MVICAD(noise=0.1, max_shift=0.05, random_state=0, **setting),
        "MVICA": MVICA(noise=1.0, random_state=0),
    }
    results = {}
    for name, est in models.items():
        t0 = time.perf_counter()
        est.fit(d.X)
        results[f"time_s[{name}]"] = time.perf_counter() - t0
        results[f"amari[{name}]"] = amari_distance(est.components_, d.mixings)
    est = models["MVICAD2"]
    order = match_sources(est.components_[0], d.mixings[0])
    ed, es = warp_errors(est.dilations_, est.shifts_, d.dilations, d.shifts, order=order)
    results["dilation_error[MVICAD2]"] = ed
    results["shift_error[MVICAD2]"] = es

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    t = np.arange(600)
    S = est.sources_[:, :600]
    for j in range(3):
        true = d.sources[order[j], :600]
        est_j = S[j] * np.sign(np.dot(S[j], true)) * np.std(true) / np.std(S[j])
        axes[0].plot(t, true + 1.2 * j * np.ptp(d.sources), color="k", lw=2, alpha=0.4)
        axes[0].plot(t, est_j + 1.2 * j * np.ptp(d.sources), color=f"C{j}", lw=1)
    axes[0].axvline(200, color="gray", ls=":")
    axes[0].set(title="shared sources (grey: truth, subject-0 time)",
                xlabel="sample (epoch 1)", yticks=[])

    def centre(a):
        return a - a.mean(axis=0)

    axes[1].scatter(centre(d.dilations[:, order]).ravel(), centre(est.dilations_).ravel())
    axes[1].plot([-0.15, 0.15], [-0.15, 0.15], "k:")
    axes[1].set(title=f"dilations (centred), error {ed:.4f}", xlabel="true", ylabel="estimated")
    axes[2].scatter(centre(d.shifts[:, order]).ravel(), centre(est.shifts_).ravel())
    axes[2].plot([-0.06, 0.06], [-0.06, 0.06], "k:")
    axes[2].set(title=f"delays (centred), error {es:.4f}", xlabel="true (fraction of epoch)",
                ylabel="estimated")
    fig.suptitle("Amari distance: " + ", ".join(
        f"{n} {results[f'amari[{n}]']:.1e}" for n in models))
    fig.tight_layout()
    fig.savefig(out_dir / "multiview.png", dpi=100)
    plt.close(fig)
    results["device"] = "cpu"
    return results
