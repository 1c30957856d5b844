"""
Limit ranks of the covariance
=============================

With K = -Q and Q in R^{floor(d/2) x d}, A = K^T Q is negative semi-definite with a kernel of
dimension ceil(d/2), and with V = I the Gaussian covariance
Sigma(t) = (Sigma_0^{-1} - 2 t A)^{-1} collapses onto that kernel. Castin et al. (2025) show
histograms of the limit rank, counted as the eigenvalues above 0.1, over 100 random draws of Q
and Sigma_0 = G G^T for d = 3, 4, 5. Each histogram here is one batched call of
:func:`~sciml_toolbox.dynamics.gaussian_ode` (100 covariances integrated at once).

The top row uses the 0.1 threshold: some runs count fewer than ceil(d/2) directions because the
limit covariance has small (but non-zero) eigenvalues when Sigma_0 is badly conditioned. The
bottom row integrates much longer and counts eigenvalues above 1e-6: the rank is ceil(d/2).
"""

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

from sciml_toolbox.dynamics import gaussian_ode
from sciml_toolbox.utils import set_threads

set_threads(1)  # small problems: one thread for BLAS and torch

runs = 100
settings = [("eig > 0.1, T = 1e4", 1e4, 0.1), ("eig > 1e-6, T = 1e9", 1e9, 1e-6)]
fig, axes = plt.subplots(2, 3, figsize=(10, 5.5), sharey=True)
for col, d in enumerate([3, 4, 5]):
    rng = np.random.default_rng(40 + d)
    Qs = rng.standard_normal((runs, d // 2, d))
    G = rng.standard_normal((runs, d, d))
    S0 = G @ np.swapaxes(G, -1, -2)
    for row, (name, T, tol) in enumerate(settings):
        res = gaussian_ode(np.zeros((runs, d)), S0, Qs, -Qs, np.eye(d), [0.0, T],
                           rank_tol=tol, rtol=1e-7)
        ranks = np.asarray(res.limit_rank)
        ax = axes[row, col]
        ax.hist(ranks, bins=np.arange(d + 2) - 0.5, rwidth=0.85)
        ax.axvline(math.ceil(d / 2), color="C3", ls="--")
        ax.set_xticks(range(d + 1))
        if row == 0:
            ax.set_title(f"d = {d}")
        else:
            ax.set_xlabel("limit rank")
        if col == 0:
            ax.set_ylabel(name)
        print(f"d={d}, {name}: ranks {np.bincount(ranks, minlength=d + 1).tolist()}")
fig.suptitle("V = I, K = -Q; dashed: dim ker A = ceil(d/2)")
fig.tight_layout()
plt.show()
