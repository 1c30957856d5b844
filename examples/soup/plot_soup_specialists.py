"""
Specialist loss of a Soup-of-Experts against a generic model
============================================================

A generic language model is trained once on a fixed mixture of domains; a specialist for a new
mixture usually needs its own training run. A Soup-of-Experts (Ablin et al., ICML 2025) is
trained once, on randomly sampled domain histograms ``h``, and then gives a specialist for any
``h`` without training: its parameters are the shared ones plus a weighted sum of expert
parameters, ``theta(h) = S + sum_j phi(h)_j E_j``. The deployed model has exactly the base
model's size.

Here both are trained for the same number of steps on four synthetic Markov domains of the
workbench, whose entropy rates give the best achievable loss, and compared on held-out domain
mixtures.
"""

# %%
# Data and models
# ---------------
import matplotlib.pyplot as plt
import numpy as np
import torch

from sciml_toolbox.nn.lm import DomainCorpus, TinyLM, TinyLMConfig, train
from sciml_toolbox.nn.soup import (
    DomainHistogramSampler,
    SoupOfExperts,
    specialist_losses,
    train_soup,
)
from sciml_toolbox.utils import set_threads

set_threads(1)  # small problems: one thread for BLAS and torch

k, steps = 4, 120
config = TinyLMConfig(d_model=48, n_layers=1, n_heads=2, max_seq_len=32)
train_kwargs = dict(batch_size=16, lr=5e-3, eval_windows=8, warmup_steps=10)


def make_corpus():
    return DomainCorpus.synthetic(n_domains=k, similarity=0.1, n_tokens=40_000, seq_len=32)


torch.manual_seed(0)
generic = TinyLM(config)
train(generic, make_corpus(), np.full(k, 1 / k), steps, **train_kwargs)

soup = SoupOfExperts(config, n_experts=4, n_domains=k, random_state=0)
history = train_soup(soup, make_corpus(), steps,
                     sampler=DomainHistogramSampler(k, support_size=1), **train_kwargs)
print(f"deployed size: {soup.base_num_parameters():,} parameters; "
      f"whole soup: {soup.num_parameters():,}")

# %%
# Specialist losses on held-out mixtures
# --------------------------------------
# For a mixture ``h`` the specialist loss is ``sum_i h_i L_i``:
# :func:`~sciml_toolbox.nn.soup.specialist_losses` instantiates the soup at each ``h``; the
# generic model is the same for every ``h``. The entropy rates of the domains give the floor.
corpus = make_corpus()
floor = np.array([s.entropy_rate() for s in corpus.sources])
mixtures = np.concatenate([np.eye(k), np.random.default_rng(0).dirichlet(np.ones(k), 4)])
soup_loss = specialist_losses(soup, corpus, mixtures) - mixtures @ floor
generic_loss = specialist_losses(generic, corpus, mixtures) - mixtures @ floor

fig, ax = plt.subplots(figsize=(6, 3.5))
x = np.arange(len(mixtures))
ax.bar(x - 0.2, generic_loss, 0.4, label="generic model")
ax.bar(x + 0.2, soup_loss, 0.4, label="soup instantiated at h")
ax.set_xticks(x, [f"domain {i}" for i in range(k)] + [f"mix {i}" for i in range(4)],
              rotation=45)
ax.set_ylabel("excess specialist loss (nats)")
ax.legend()
fig.tight_layout()
plt.show()

# %%
# Instantiation is a weighted sum
# -------------------------------
# The specialist is a plain :class:`~sciml_toolbox.nn.lm.TinyLM` that can be saved, fine-tuned
# with :func:`~sciml_toolbox.nn.soup.specialize`, or deployed on its own.
specialist = soup.instantiate(mixtures[-1])
print(type(specialist).__name__, sum(p.numel() for p in specialist.parameters()))
