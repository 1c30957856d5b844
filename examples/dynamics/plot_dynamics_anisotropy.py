"""
Anisotropic collapse: the rank-one limit
========================================

When the queries and keys point in opposite directions, K = -Q, the matrix A = K^T Q is
negative semi-definite and attention *contracts* the token cloud along the range of A. For
Gaussian tokens the covariance solves dSigma/dt = 2 Sigma A Sigma (V = I), whose solution
Sigma(t) = (Sigma_0^{-1} - 2 t A)^{-1} collapses onto ker A (Castin, Ablin, Carrillo and
Peyré, "A unified perspective on the dynamics of deep Transformers", 2025). In d = 2 with
Q = q a single row, the tokens end up on a line orthogonal to q.
"""

# %%
# Particles and the Gaussian prediction
# -------------------------------------
import matplotlib.pyplot as plt
import numpy as np

from sciml_toolbox.dynamics import anisotropy, gaussian_ode, simulate_particles
from sciml_toolbox.utils import set_threads

set_threads(1)  # small problems: one thread for BLAS and torch

rng = np.random.default_rng(1)
q = np.array([[1.0, 0.6]])
Q, K, V = q, -q, np.eye(2)
mean0, cov0 = np.zeros(2), np.array([[1.0, 0.3], [0.3, 0.8]])
t_eval = np.array([0.0, 0.5, 2.0, 10.0])
X0 = rng.multivariate_normal(mean0, cov0, size=600)
traj = simulate_particles(X0, Q, K, V, t_eval, dt=0.1)
means, covs = gaussian_ode(mean0, cov0, Q, K, V, t_eval)


def ellipse(m, c, k=2.0):
    w, U = np.linalg.eigh(c)
    th = np.linspace(0, 2 * np.pi, 200)
    return m[:, None] + k * (U * np.sqrt(np.clip(w, 0, None))) @ np.stack([np.cos(th), np.sin(th)])


fig, axes = plt.subplots(1, len(t_eval), figsize=(13, 3.4), sharex=True, sharey=True)
for ax, t, X, m, c in zip(axes, t_eval, traj, means, covs, strict=True):
    ax.scatter(X[:, 0], X[:, 1], s=2, alpha=0.4)
    e = ellipse(m, c)
    ax.plot(e[0], e[1], color="C3", lw=2)
    ax.arrow(0, 0, *(q[0] / np.linalg.norm(q)), color="k", width=0.02)
    ax.set_title(f"t = {t:g}, anisotropy {anisotropy(c):.3f}")
    ax.set_aspect("equal")
axes[0].set_ylabel("black arrow: q")
fig.tight_layout()
plt.show()

# %%
# Anisotropy over time
# --------------------
# The share of the variance on the main axis tends to one: the limit covariance has rank one,
# and its eigenvector is orthogonal to q.
tt = np.concatenate([[0.0], np.geomspace(1e-2, 1e3, 80)])
res = gaussian_ode(mean0, cov0, Q, K, V, tt, rank_tol=1e-2)
w, U = np.linalg.eigh(res.covs[-1])
print(f"limit rank {res.limit_rank}, |<main axis, q>| = {abs(U[:, -1] @ q[0]):.2e}")
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.semilogx(tt[1:], anisotropy(res.covs[1:]))
ax.set_xlabel("time")
ax.set_ylabel(r"$\lambda_{\max}(\Sigma) / \mathrm{tr}\,\Sigma$")
fig.tight_layout()
plt.show()
