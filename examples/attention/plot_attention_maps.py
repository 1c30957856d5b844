"""
Softmax vs sigmoid attention, and the role of the bias b
========================================================

Softmax attention normalises each row of weights to sum to one, so keys compete for a query's
attention. Sigmoid attention (Ramapuram et al., 2024, "Theory, Analysis, and Best Practices for
Sigmoid Self-Attention", arXiv:2409.04431) scores each (query, key) pair independently with
``sigmoid(q . k / sqrt(d) + b)``: a query can attend fully to several keys, or to none.

Without a normaliser the total weight a query gives grows with the sequence length ``n``:
with ``b = 0`` and random scores about half the keys get weight above 1/2, so the output norm
grows like ``n``. The paper's fix is a fixed bias ``b = -log n``, which keeps the mass of order
one at initialisation. This example shows both effects.
"""

# %%
# Attention maps on a toy sequence
# --------------------------------
# Queries and keys are projections of a smooth random walk, so nearby tokens look alike.

import math

import matplotlib.pyplot as plt
import torch

from sciml_toolbox.nn.attention import sigmoid_attention
from sciml_toolbox.utils import set_threads

set_threads(1)  # small problems: one thread for BLAS and torch

torch.manual_seed(0)
n, d = 48, 16
x = torch.cumsum(torch.randn(n, d), 0) / math.sqrt(n) * 2.0
q = (x @ (torch.randn(d, d) / math.sqrt(d))) * 1.5
k = x @ (torch.randn(d, d) / math.sqrt(d))
scores = q @ k.T / math.sqrt(d)

maps = {
    "softmax": torch.softmax(scores, -1),
    "sigmoid, b = 0": torch.sigmoid(scores),
    "sigmoid, b = -log n": torch.sigmoid(scores - math.log(n)),
}
fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
for ax, (name, p) in zip(axes, maps.items(), strict=True):
    im = ax.imshow(p, cmap="viridis", vmin=0)
    ax.set_title(f"{name}\nmean row sum {float(p.sum(-1).mean()):.2f}")
    ax.set_xlabel("key j")
    fig.colorbar(im, ax=ax, fraction=0.046)
axes[0].set_ylabel("query i")
fig.tight_layout()

# %%
# The maps are attention weights; the function computes their product with the values. With
# one-hot values the output rows are exactly these maps, which checks the function against
# the picture (the default bias is ``-log n``).
out = sigmoid_attention(q[None, None], k[None, None], torch.eye(n)[None, None], scale=1.0)
print("max |sigmoid_attention - map| =",
      float((out[0, 0] - torch.sigmoid(q @ k.T - math.log(n))).abs().max()))

# %%
# Attention mass as the sequence grows
# ------------------------------------
# The mean row sum of the weights for random unit-variance queries and keys: softmax is 1 by
# construction; sigmoid with ``b = 0`` grows linearly in ``n``; ``b = -log n`` keeps it flat.

lengths = [16, 64, 256, 1024, 4096]
mass = {"b = 0": [], "b = -log n": []}
for m in lengths:
    qq, kk = torch.randn(m, 64), torch.randn(m, 64)
    s = qq @ kk.T / 8.0
    mass["b = 0"].append(float(torch.sigmoid(s).sum(-1).mean()))
    mass["b = -log n"].append(float(torch.sigmoid(s - math.log(m)).sum(-1).mean()))

fig, ax = plt.subplots(figsize=(5, 3.6))
for name, vals in mass.items():
    ax.loglog(lengths, vals, "o-", label=f"sigmoid, {name}")
ax.axhline(1.0, color="k", ls="--", label="softmax")
ax.set_xlabel("sequence length n")
ax.set_ylabel("mean row sum of weights")
ax.legend()
fig.tight_layout()

# %%
# Causal masks and ALiBi
# ----------------------
# With ALiBi (Press et al., 2022) each score gets ``-slope * |i - j|``. Softmax ignores any
# bias that is constant along a row, which lets causal softmax kernels add a column-only bias;
# sigmoid does not, so the true distance must be used. Here a causal head with zero scores
# shows the resulting decay: row ``i`` sums ``sigmoid(b - slope (i - j))`` over ``j <= i``.

n = 32
zeros = torch.zeros(1, 2, n, 16)
ones = torch.ones(1, 2, n, 16)
slopes = torch.tensor([0.5, 0.0625])
out = sigmoid_attention(zeros, zeros, ones, 0.0, is_causal=True, alibi_slopes=slopes)
fig, ax = plt.subplots(figsize=(5, 3.6))
for h in range(2):
    ax.plot(out[0, h, :, 0], label=f"slope {float(slopes[h])}")
ax.set_xlabel("query position i")
ax.set_ylabel("total attention weight")
ax.legend()
fig.tight_layout()
plt.show()
