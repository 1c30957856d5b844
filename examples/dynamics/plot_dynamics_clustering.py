"""
Tokens on the sphere form clusters
==================================

With layer normalisation the tokens live on the unit sphere, and with Q = K = V = I the
attention flow makes them merge into a few clusters as depth grows (Geshkovski, Letrouit,
Polyanskiy and Rigollet, "The emergence of clusters in self-attention dynamics", NeurIPS 2023).
We rerun their setting: n = 64 tokens in d = 3, beta = 1, horizon T = 15, step 0.1, and count
clusters as the rank of the Gram matrix thresholded at 0.9999.
"""

# %%
# Simulate the particles
# ----------------------
import matplotlib.pyplot as plt
import numpy as np

from sciml_toolbox.dynamics import cluster_count, simulate_particles
from sciml_toolbox.utils import set_threads

set_threads(1)  # small problems: one thread for BLAS and torch

rng = np.random.default_rng(0)
n, d = 64, 3
X0 = rng.standard_normal((n, d))
X0 /= np.linalg.norm(X0, axis=1, keepdims=True)
eye = np.eye(d)
times = np.linspace(0.0, 15.0, 61)
traj = simulate_particles(X0, eye, eye, eye, times, dt=0.1, sphere=True)
counts = [cluster_count(x, threshold=0.9999) for x in traj]
print(f"clusters at t = 0: {counts[0]}, at t = 15: {counts[-1]}")

# %%
# Trajectories on the sphere and the number of clusters
# -----------------------------------------------------
fig = plt.figure(figsize=(10, 4.5))
ax = fig.add_subplot(1, 2, 1, projection="3d")
for i in range(n):
    ax.plot(traj[:, i, 0], traj[:, i, 1], traj[:, i, 2], color="0.6", lw=0.6)
ax.scatter(*X0.T, s=8, color="C0", label="t = 0")
ax.scatter(*traj[-1].T, s=40, color="C3", label="t = 15")
ax.set_box_aspect((1, 1, 1))
ax.legend(loc="upper left", fontsize=8)
ax.set_title("tokens on the sphere")
ax2 = fig.add_subplot(1, 2, 2)
ax2.step(times, counts, where="post")
ax2.set_xlabel("time (depth)")
ax2.set_ylabel("number of clusters")
ax2.set_title("Gram rank at threshold 0.9999")
fig.tight_layout()
plt.show()
