"""
Forgetting during finetuning, and pretraining-data injection
============================================================

Finetuning a pretrained language model on a narrow target domain raises its loss on the
pretraining distribution: it *forgets*. Bethune et al. (2025) showed that mixing a small
fraction ``p`` of pretraining data into the finetuning batches limits forgetting (about 1% was
enough for their models, 41M to 1.27B parameters), and that the pretraining loss after
finetuning follows

.. math:: L_{pt}(N, D, p) = L^0_{pt}(N) + \\frac{A D^\\beta}{((1 + B p) N)^\\alpha}.

This example plots the committed result of ``python benchmarks/bench_forgetting.py --study``:
:class:`~sciml_toolbox.nn.lm.TinyLM` models of 20k, 68k and 206k parameters pretrained on
CPython's standard-library source (at least 20 bytes per parameter), finetuned on
``pydoc_data.topics`` prose with three target budgets ``D``, ``p`` in {0, 0.1%, 1%, 5%} injected
as an exact number of source-code sequences per batch of 128, two seeds. The protocol is in the
benchmark's docstring and the verdict in ``benchmarks/forgetting.md``. Where the stored result
cannot be found (an installed package without the repository), a short version runs instead
(two small models, 40 pretraining steps, two budgets, one seed): it shows the curves, not the
study's numbers.
"""

# %%
# The stored study, or a short run
# --------------------------------
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from sciml_toolbox.nn.lm import TinyLMConfig, forgetting_study, runs_to_arrays
from sciml_toolbox.scaling import ForgettingLaw
from sciml_toolbox.utils import set_threads

set_threads(1)  # small problems: one thread for BLAS and torch


def find_study():
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        cand = folder / "benchmarks" / "results" / "forgetting_study.json"
        if cand.is_file():
            return cand
    return None


def short_run():
    configs = [TinyLMConfig(d_model=24, n_layers=2, n_heads=2, max_seq_len=64),
               TinyLMConfig(d_model=48, n_layers=2, n_heads=4, max_seq_len=64)]
    res = forgetting_study(configs, budgets=[16_384, 49_152], fractions=[0.0, 0.01, 0.05],
                           pretrain_steps=40, epochs=2.0, seq_len=64, batch_size=128,
                           pretrain_lr=3e-3, finetune_lr=3e-3, code_bytes=600_000,
                           eval_windows=32, injection="exact", curve_points=4)
    return ([dict(m, seed=0) for m in res["models"]], [dict(r, seed=0) for r in res["runs"]])


path = find_study()
if path is not None:
    doc = json.loads(path.read_text())["results"]
    models, runs = doc["models"], doc["runs"]
    print(f"stored study: {path.name}, {len(runs)} finetuning runs")
    print("verdict:", json.dumps(doc["summary"]["verdict"], indent=1))
else:
    print("no stored study found: a short run (2 sizes, 40 pretraining steps, 1 seed)")
    models, runs = short_run()

sizes = sorted({r["N"] for r in runs})
budgets = sorted({r["D"] for r in runs})
fractions = sorted({r["p"] for r in runs})
seeds = sorted({r["seed"] for r in runs})


def pick(**where):
    return [r for r in runs if all(r[k] == v for k, v in where.items())]


def rise(r):
    return r["pretrain_loss"] - r["L0"]


# %%
# Forgetting against the injected fraction
# ----------------------------------------
# Left: the rise of the pretraining (code) validation loss as a fraction of the pretraining
# progress ``L_init - L0``, mean over seeds and budgets (thin lines: each budget). Right: the
# fraction of the forgetting at ``p = 0`` that injection removes, ``1 - rise(p) / rise(0)``
# for the same size, budget and seed, averaged. The x axis is linear below 0.1% so that
# ``p = 0`` shows.
fig, ax = plt.subplots(1, 2, figsize=(10, 4))
colors = plt.cm.viridis(np.linspace(0.0, 0.8, len(sizes)))
for n, c in zip(sizes, colors, strict=True):
    per_d = np.array([[np.mean([r["forgetting"] for r in pick(N=n, D=D, p=p)])
                       for p in fractions] for D in budgets])
    for row in per_d:
        ax[0].plot(fractions, row, color=c, lw=0.6, alpha=0.6)
    ax[0].plot(fractions, per_d.mean(axis=0), "o-", color=c, label=f"N = {n / 1e3:.0f}k")
    removed = [np.mean([1 - rise(pick(N=n, D=D, p=p, seed=s)[0])
                        / rise(pick(N=n, D=D, p=0.0, seed=s)[0])
                        for D in budgets for s in seeds]) for p in fractions[1:]]
    ax[1].plot(fractions[1:], removed, "o-", color=c, label=f"N = {n / 1e3:.0f}k")
for a in ax:
    a.set_xscale("symlog", linthresh=1e-3)
    a.set_xlabel("injected fraction p of pretraining data")
ax[0].set_ylabel("loss rise / pretraining progress")
ax[1].axhline(1.0, color="k", lw=0.6, ls=":")
ax[1].set_ylabel("fraction of the forgetting removed")
ax[0].legend(fontsize=8)
fig.tight_layout()

# %%
# The pretraining loss along finetuning
# -------------------------------------
# The code validation loss during finetuning on the largest budget, for the largest model and
# the first seed, one curve per ``p``.
fig, ax = plt.subplots(figsize=(6, 3.8))
for p, c in zip(fractions, plt.cm.plasma(np.linspace(0.0, 0.8, len(fractions))), strict=True):
    r = pick(N=sizes[-1], D=budgets[-1], p=p, seed=seeds[0])[0]
    ax.plot(r["curve"]["step"], r["curve"]["generic"], "o-", ms=3, color=c, label=f"p = {p:g}")
ax.set_xlabel("finetuning step")
ax.set_ylabel("pretraining (code) validation loss")
ax.set_title(f"N = {sizes[-1] / 1e3:.0f}k, D = {budgets[-1]:,} bytes")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# The forgetting law
# ------------------
# :class:`~sciml_toolbox.scaling.ForgettingLaw` fitted on every run (columns ``N, D, p, L0``,
# the measured ``L0`` of each pretrained model given), predicted against measured rise.
Xf, yf, _, _ = runs_to_arrays({"runs": runs})
law = ForgettingLaw("given").fit(Xf, yf)
print("forgetting law:", {k: round(float(v), 4) for k, v in law.params_.items()})
fig, ax = plt.subplots(figsize=(5, 4.2))
pred = law.predict(Xf) - Xf[:, 3]
for p, mk in zip(fractions, "osD^v", strict=False):
    sel = Xf[:, 2] == p
    ax.scatter(yf[sel] - Xf[sel, 3], pred[sel], marker=mk, s=18, label=f"p = {p:g}")
lim = [min(pred.min(), (yf - Xf[:, 3]).min()), max(pred.max(), (yf - Xf[:, 3]).max())]
ax.plot(lim, lim, "k:", lw=0.8)
ax.set_xlabel("measured rise L_after - L0")
ax.set_ylabel("law's rise")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
