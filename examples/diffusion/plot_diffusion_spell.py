"""
Shielding a memorising diffusion model with SPELL
=================================================

A diffusion model trained long enough on a small data set reproduces its training images.
SPELL (Kirchhof et al., ICML 2025) protects a set of balls of radius ``r`` around reference
images: at every sampling step, the model's estimate of the final image is pushed to the border
of any ball it is in, and left untouched otherwise. Trajectories that never head into the shield
are exactly those of the plain sampler.

Here a small DDPM is trained for a few CPU seconds on 64 of scikit-learn's 8x8 digits, so that it
memorises them, and its training set is protected.
"""

# %%
# A DDPM that memorises
# ---------------------
# The radius is chosen against the data: held-out digits are rarely within ``r`` of a training
# image, while the DDPM's samples mostly are.
import matplotlib.pyplot as plt
import numpy as np
import torch

from sciml_toolbox.nn.diffusion import (
    SparseRepellency,
    ddpm_sample,
    load_digits_images,
    nearest_distance,
    shield_share,
    train_ddpm,
)
from sciml_toolbox.utils import set_threads

set_threads(1)  # small problems: one thread for BLAS and torch

ddpm = train_ddpm(n_images=64, n_iter=2500, random_state=0)
radius = 1.5
all_digits, _ = load_digits_images()
d_real = nearest_distance(all_digits, ddpm.images)[0]
d_real = d_real[d_real > 0]  # held-out digits only

plain = ddpm_sample(ddpm.model, (256, 1, 8, 8), ddpm.schedule, n_steps=100,
                    generator=torch.Generator().manual_seed(1))
spell = SparseRepellency(ddpm.images, radius=radius)
shielded, info = ddpm_sample(ddpm.model, (256, 1, 8, 8), ddpm.schedule, n_steps=100,
                             repellency=spell, return_info=True,
                             generator=torch.Generator().manual_seed(1))
share_real = float((d_real < radius).float().mean())
print(f"held-out digits within r of a training image: {share_real:.1%}")
print(f"DDPM samples within r:  {shield_share(plain, ddpm.images, radius):.1%}")
print(f"SPELL samples within r: {shield_share(shielded, ddpm.images, radius):.1%}")

# %%
# Memorised and shielded samples
# ------------------------------
# Each column: the training image nearest to a plain sample, that sample, and the sample drawn
# from the same noise with SPELL.
d_plain, nearest = nearest_distance(plain, ddpm.images)
cols = np.argsort(d_plain.numpy())[:10]
fig, axes = plt.subplots(3, 10, figsize=(9, 3))
for j, i in enumerate(cols):
    for row, img in enumerate((ddpm.images[nearest[i]], plain[i], shielded[i])):
        axes[row, j].imshow(img[0].clamp(-1, 1), cmap="gray_r", vmin=-1, vmax=1)
        axes[row, j].axis("off")
for row, label in enumerate(("training", "DDPM", "SPELL")):
    axes[row, 0].set_title(label, loc="left", fontsize=9)
fig.tight_layout()

# %%
# Distance to the training set
# ----------------------------
d_spell = nearest_distance(shielded, ddpm.images)[0]
fig, ax = plt.subplots(figsize=(6, 3.5))
bins = np.linspace(0, 5, 41)
ax.hist(d_real.numpy(), bins=bins, alpha=0.5, density=True, label="held-out digits")
ax.hist(d_plain.numpy(), bins=bins, alpha=0.5, density=True, label="DDPM")
ax.hist(d_spell.numpy(), bins=bins, alpha=0.5, density=True, label="DDPM + SPELL")
ax.axvline(radius, color="k", ls="--", label="radius r")
ax.set_xlabel("L2 distance to the nearest training image")
ax.legend()
fig.tight_layout()

# %%
# When the repellency acts
# ------------------------
# The share of trajectories corrected at each step, and the size of the correction relative to
# the score. Early on the x0 estimates are blurry averages far from every training image;
# SPELL acts in the second half of sampling, on a minority of trajectories at a time.
t = info["t"].numpy()
active = info["active"].float().mean(1).numpy()
ever = info["active"].any(0).float().mean().item()
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(t, active, label="share of samples corrected at this step")
ax.set_xlabel("diffusion time t")
ax.invert_xaxis()
ax.set_ylabel("share corrected")
ax.set_title(f"{ever:.0%} of the trajectories are ever corrected")
ax.legend()
fig.tight_layout()
plt.show()
