"""Demo of the Transformer PDE: clustering on the sphere, Gaussian ODE vs particles, collapse."""

from __future__ import annotations

import time

import numpy as np

from sciml_toolbox.dynamics import (
    anisotropy,
    cluster_count,
    empirical_moments,
    gaussian_ode,
    simulate_particles,
    w2_to_gaussian,
)

from ._registry import register_demo


def _ellipse(mean, cov, k=2.0, num=100):
    w, U = np.linalg.eigh(cov)
    th = np.linspace(0, 2 * np.pi, num)
    circle = np.stack([np.cos(th), np.sin(th)])
    return (mean[:, None] + k * (U * np.sqrt(np.clip(w, 0, None))) @ circle).T


@register_demo("dynamics", "Transformer PDE: token clustering and the Gaussian-measure ODE")
def demo(out_dir, device="cpu"):
    """Three panels: clusters on the sphere, Gaussian ODE vs particles, rank-one collapse.

    The computations use NumPy arrays (the module is array-API generic; ``device`` is recorded
    but the demo sizes are small enough for the CPU).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t_start = time.perf_counter()
    out = {"device_used": "cpu"}
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))

    # 1. clustering on the sphere (Geshkovski et al., 2023): n = 64, d = 3, Q = K = V = I
    rng = np.random.default_rng(0)
    n, d = 64, 3
    X0 = rng.standard_normal((n, d))
    X0 /= np.linalg.norm(X0, axis=1, keepdims=True)
    eye = np.eye(d)
    times = np.linspace(0, 15, 31)
    traj = simulate_particles(X0, eye, eye, eye, times, dt=0.1, sphere=True)
    counts = [cluster_count(x) for x in traj]
    axes[0].plot(times, counts, "o-", ms=3)
    axes[0].set_xlabel("time (depth)")
    axes[0].set_ylabel("clusters (Gram rank, 0.9999)")
    axes[0].set_title("Tokens on the sphere cluster")
    out["clusters_at_T15"] = int(counts[-1])

    # 2. Gaussian ODE vs particles (Castin et al., 2025)
    alpha = np.array([0.3, -0.2])
    S0 = np.array([[0.6, 0.25], [0.25, 0.4]])
    Q = np.array([[0.48, 0.18], [-0.12, 0.36]])
    K = np.array([[0.42, -0.06], [0.12, 0.3]])
    V = np.array([[1.0, 0.4], [-0.3, 0.9]])
    t = np.array([0.0, 0.5, 1.0])
    Xp = rng.multivariate_normal(alpha, S0, size=2000)
    ptraj = simulate_particles(Xp, Q, K, V, t, dt=0.1)
    means, covs = gaussian_ode(alpha, S0, Q, K, V, t)
    colors = ["C0", "C1", "C2"]
    for k in range(len(t)):
        axes[1].scatter(ptraj[k, :400, 0], ptraj[k, :400, 1], s=2, color=colors[k], alpha=0.4)
        e = _ellipse(means[k], covs[k])
        axes[1].plot(e[:, 0], e[:, 1], color=colors[k], lw=2, label=f"t = {t[k]:g}")
    axes[1].set_title("Particles vs Gaussian ODE (2-sigma)")
    axes[1].legend(fontsize=8)
    m_emp, c_emp = empirical_moments(ptraj[-1])
    out["gaussian_ode_rel_cov_error"] = float(np.linalg.norm(c_emp - covs[-1])
                                              / np.linalg.norm(covs[-1]))
    out["w2_particles_vs_gaussian"] = w2_to_gaussian(ptraj[-1], means[-1], covs[-1])

    # 3. anisotropy: Q = q, K = -q, V = I gives a rank-one limit on the orthogonal of q
    q = np.array([[1.0, 0.5]])
    tt = np.geomspace(1e-2, 1e3, 60)
    res = gaussian_ode(np.zeros(2), np.eye(2), q, -q, np.eye(2), np.concatenate([[0], tt]),
                       rank_tol=1e-2)
    an = anisotropy(res.covs[1:])
    axes[2].semilogx(tt, an)
    axes[2].set_xlabel("time")
    axes[2].set_ylabel(r"$\lambda_{max}/\mathrm{tr}\,\Sigma$")
    axes[2].set_title("Collapse to rank one (K = -Q)")
    out["anisotropy_at_T1000"] = float(an[-1])
    out["limit_rank"] = int(res.limit_rank)
    w, U = np.linalg.eigh(res.covs[-1])
    out["angle_to_q_orth_deg"] = float(np.degrees(np.arccos(abs(U[:, -1] @ q[0])
                                                           / np.linalg.norm(q))))

    fig.tight_layout()
    fig.savefig(out_dir / "dynamics.png", dpi=100)
    plt.close(fig)
    out["seconds"] = time.perf_counter() - t_start
    return out
