"""
Forgetting during finetuning, and pretraining-data injection
============================================================

Finetuning a pretrained language model on a narrow target domain raises its loss on the
pretraining distribution: it *forgets*. Bethune et al. (2025) showed that mixing a small
fraction ``p`` of pretraining data into the finetuning batches limits forgetting, and that
the pretraining loss after finetuning follows

.. math:: L_{pt}(N, D, p) = L^0_{pt}(N) + \\frac{A D^\\beta}{((1 + B p) N)^\\alpha}.

This example runs a miniature version of the study on the workbench: two TinyLMs pretrained
on CPython's standard-library source, finetuned on ``pydoc_data.topics`` prose with two
target budgets ``D`` and three injection fractions. The
benchmark ``benchmarks/bench_forgetting.py`` runs the larger study (3 sizes, 3 budgets,
p in {0, 0.1%, 1%, 5%}).
"""

# %%
# Run the study
# -------------
import matplotlib.pyplot as plt
import numpy as np

from sciml_toolbox.nn.lm import TinyLMConfig, forgetting_study
from sciml_toolbox.utils import set_threads

set_threads(1)  # small problems: one thread for BLAS and torch

configs = [TinyLMConfig(d_model=32, n_layers=2, n_heads=2, max_seq_len=64),
           TinyLMConfig(d_model=64, n_layers=2, n_heads=4, max_seq_len=64)]
result = forgetting_study(configs, budgets=[4096, 16384], fractions=[0.0, 0.05, 0.2],
                          pretrain_steps=200, epochs=3.0, seq_len=64, batch_size=16,
                          code_bytes=300_000, eval_windows=32)
for m in result["models"]:
    print(f"N = {m['n_params']}: pretraining loss {m['pretrain_loss']:.3f} "
          f"(from {m['init_pretrain_loss']:.3f} at initialisation)")

# %%
# Forgetting against the injected fraction
# ----------------------------------------
# The rise of the pretraining (code) validation loss after finetuning, for each model and
# target budget. Injecting code into the finetuning batches reduces it.
runs = result["runs"]
fig, ax = plt.subplots(figsize=(6, 3.8))
for n in sorted({r["N"] for r in runs}):
    for D, ls in zip([4096, 16384], ["-", "--"], strict=True):
        sel = [r for r in runs if r["N"] == n and r["D"] == D]
        ax.plot([r["p"] for r in sel], [r["pretrain_loss"] - r["L0"] for r in sel],
                marker="o", ls=ls, label=f"N={n / 1e3:.0f}k, D={D}")
ax.set_xlabel("injected fraction p of pretraining data")
ax.set_ylabel("pretraining loss rise (nats/byte)")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# Finetuning loss against the target budget
# -----------------------------------------
# The target (prose) validation loss after finetuning falls with the number of unique target
# tokens ``D``; injection costs little target performance at these fractions.
fig, ax = plt.subplots(figsize=(6, 3.8))
for n in sorted({r["N"] for r in runs}):
    for p, mk in zip([0.0, 0.05, 0.2], ["o", "s", "^"], strict=True):
        sel = [r for r in runs if r["N"] == n and r["p"] == p]
        ax.plot([r["D"] for r in sel], [r["finetune_loss"] for r in sel], marker=mk,
                label=f"N={n / 1e3:.0f}k, p={p}")
ax.set_xscale("log")
ax.set_xlabel("unique target tokens D")
ax.set_ylabel("target loss after finetuning")
ax.legend(fontsize=7, ncol=2)
fig.tight_layout()

# %%
# At this scale the absolute loss rise grows with model size (all models are pretrained for
# the same number of steps), the opposite of the regime of Bethune et al., so the fitted
# exponent ``alpha`` of the forgetting law comes out negative here; the numbers of the larger
# quick study are in ``benchmarks/results/forgetting.json`` and the law itself is fitted in
# the scaling-laws gallery example.
print("mean loss rise by p:",
      {p: round(float(np.mean([r["pretrain_loss"] - r["L0"] for r in runs if r["p"] == p])), 4)
       for p in (0.0, 0.05, 0.2)})
