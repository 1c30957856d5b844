"""
Gaussian ODE versus particles
=============================

If the tokens are drawn from N(alpha, Sigma), softmax attention keeps them Gaussian in the
mean-field limit, with d alpha/dt = V(alpha + Sigma A alpha) and
dSigma/dt = V Sigma A Sigma + Sigma A^T Sigma V^T, A = K^T Q (Castin et al., 2025).
A finite set of n tokens follows this ODE up to Monte-Carlo fluctuations of order
n^{-1/2}. We check the rate with a fitted slope, and compare with L2 attention, whose
Gaussian ODE has the extra factor (I + 2 Sigma K^T K)^{-1}.
"""

# %%
# Error of the empirical moments against the ODE
# ----------------------------------------------
import matplotlib.pyplot as plt
import numpy as np

from sciml_toolbox.dynamics import empirical_moments, gaussian_ode, simulate_particles
from sciml_toolbox.utils import set_threads

set_threads(1)  # small problems: one thread for BLAS and torch

alpha = np.array([0.5, -0.2])
S0 = np.array([[0.5, 0.15], [0.15, 0.3]])
Q = np.array([[0.6, 0.1], [0.2, -0.4]])
K = np.array([[0.7, 0.2], [-0.3, 0.5]])
V = np.array([[0.9, 0.2], [-0.1, 0.7]])
T = 1.0
ns = [100, 250, 600, 1500]
fig, ax = plt.subplots(figsize=(5.5, 4))
for kind in ["softmax", "l2"]:
    means, covs = gaussian_ode(alpha, S0, Q, K, V, [0.0, T], kind=kind)
    errs = []
    for n in ns:
        e = []
        for seed in range(4):
            X0 = np.random.default_rng(seed).multivariate_normal(alpha, S0, size=n)
            XT = simulate_particles(X0, Q, K, V, [0.0, T], kind=kind, dt=0.25)[-1]
            m, C = empirical_moments(XT)
            e.append(np.linalg.norm(m - means[-1]) + np.linalg.norm(C - covs[-1]))
        errs.append(np.mean(e))
    slope = np.polyfit(np.log(ns), np.log(errs), 1)[0]
    print(f"{kind}: fitted slope {slope:.2f} (theory -0.5)")
    ax.loglog(ns, errs, "o-", label=f"{kind} (slope {slope:.2f})")
ax.loglog(ns, errs[0] * (np.array(ns) / ns[0]) ** -0.5, "k--", label=r"$n^{-1/2}$")
ax.set_xlabel("number of tokens n")
ax.set_ylabel("moment error at T = 1")
ax.legend()
fig.tight_layout()
plt.show()
