"""
Dynamic Gradient Alignment against importance sampling
======================================================

To specialise a language model one trains on generic data mixed so that it helps a small
*specific* set. Importance sampling fixes the mixture to the specific set's histogram over the
generic domains; when those domains hold little data, it repeats them for many epochs and
overfits. Dynamic Gradient Alignment (Fan, Grangier, Ablin, 2024) moves the domain weights
online, towards the domains whose gradients align with the specific set's gradient.

This example builds four synthetic Markov domains with a known relation (each is half a shared
chain, half its own), a specific set drawn 70% / 30% from the first two, and only 2,000 unique
tokens per generic domain.
"""

# %%
# Corpus and methods
# ------------------
import matplotlib.pyplot as plt
import numpy as np
import torch

from sciml_toolbox.nn.lm import TinyLM, TinyLMConfig, specific_mixture_corpus, train
from sciml_toolbox.nn.mixing import DGA, ImportanceSampling, UniformMixture
from sciml_toolbox.utils import set_threads

set_threads(1)  # small problems: one thread for BLAS and torch

k, steps, batch = 4, 1000, 16
target = np.array([0.7, 0.3, 0.0, 0.0])
config = TinyLMConfig(d_model=64, n_layers=2, n_heads=2, max_seq_len=32)


def make_corpus():
    """Four Markov domains (seeds fixed), a specific set drawn 70% / 30% from the first two,
    2,000 unique training tokens per generic domain and 10,000 for the specific set."""
    return specific_mixture_corpus(target, generic_tokens=2_000, specific_tokens=10_000)


methods = {
    "uniform": UniformMixture(k, generic_domains=list(range(k))),
    "importance sampling": ImportanceSampling(target, specific="specific"),
    "DGA": DGA(k, specific="specific", update_every=10, step_size=30.0),
}

# %%
# Training
# --------
# DGA plugs into the workbench trainer as the mixture; ``train_kwargs`` adds the stratified
# batches of its update steps, whose per-domain gradients are reused as the training gradient.
histories = {}
for name, method in methods.items():
    torch.manual_seed(0)
    extra = (method.train_kwargs(batch_size=batch) if isinstance(method, DGA)
             else {"batch_size": batch})
    histories[name] = train(TinyLM(config), make_corpus(), method, steps, lr=3e-3,
                            eval_every=200, eval_windows=32, eval_domains=["specific"],
                            **extra)
    print(f"{name:>20}: specific validation loss "
          f"{histories[name].val_loss['specific'][-1]:.3f}")

# %%
# Specific-set loss and DGA's weights
# -----------------------------------
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
for name, hist in histories.items():
    axes[0].plot(hist.eval_step, hist.val_loss["specific"], marker="o", label=name)
axes[0].set_xlabel("step")
axes[0].set_ylabel("specific validation loss")
axes[0].legend()
weights = np.asarray(histories["DGA"].mixture)[:, :k]
for i in range(k):
    axes[1].plot(weights[:, i], label=f"domain {i} (in specific set: {target[i]:.0%})")
axes[1].set_xlabel("step")
axes[1].set_ylabel("DGA domain weight")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()
