"""Data-mixing study: DGA against uniform, importance sampling and DoGE-style reweighting.

Synthetic Markov domains of the workbench (``similarity`` 0.5, so every generic domain helps a
little) and a specific set drawn from a known mixture of two of them. Two regimes, after the
paper (Fan, Grangier, Ablin, 2024):

(i) little generic data per domain: importance sampling repeats the two domains the specific
    set looks like, many epochs over a small budget, and overfits; DGA may spread its weight;
(ii) very little specific data: the importance-sampling histogram is estimated from a handful
    of specific windows by a classifier, and DGA's specific gradients come from the same few.

Reported: the specific set's validation loss at the end of training for every method, DGA's
weight trajectory, and DGA's wall-clock overhead over plain training with updates every 10
steps. Run: ``python benchmarks/bench_mixing.py [--full]``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_args, write_result  # noqa: E402

from sciml_toolbox.nn.lm import (  # noqa: E402
    DomainCorpus,
    TinyLM,
    TinyLMConfig,
    markov_domains,
    sample_mixture,
    train,
)
from sciml_toolbox.nn.mixing import DGA, DoGE, ImportanceSampling, UniformMixture  # noqa: E402
from sciml_toolbox.nn.soup import DomainClassifier  # noqa: E402

K = 6
TARGET = np.array([0.6, 0.4, 0.0, 0.0, 0.0, 0.0])


def make_corpus(generic_tokens, specific_tokens, seq_len):
    """Generic domains and the specific set, with unique-token budgets ``generic_tokens`` per
    generic domain and ``specific_tokens`` for the specific set; 20% of every stream (at least
    10k tokens) is held out for validation."""
    sources = markov_domains(K, similarity=0.5, n_states=32, random_state=0)
    n = max(generic_tokens, specific_tokens, 40_000) * 5 // 4
    data = {s.name: s.sample(n, random_state=10 + i) for i, s in enumerate(sources)}
    data["specific"] = sample_mixture(sources, TARGET, n, chunk_len=64, random_state=99)
    budgets = {s.name: generic_tokens for s in sources}
    budgets["specific"] = specific_tokens
    corpus = DomainCorpus(data, seq_len=seq_len, val_fraction=0.2, max_train_tokens=budgets)
    corpus.sources = sources
    return corpus


def run_method(name, corpus_args, steps, batch, cfg, seed=0):
    corpus = make_corpus(*corpus_args)
    generic = corpus.names[:K]
    torch.manual_seed(seed)
    model = TinyLM(cfg)
    kw = dict(lr=3e-3, warmup_steps=10, eval_windows=32, eval_every=max(steps // 5, 1),
              eval_domains=["specific"])
    if name == "uniform":
        method = UniformMixture(K, generic_domains=generic)
        extra = {"batch_size": batch}
    elif name == "importance":
        clf = DomainClassifier(windows_per_domain=150, random_state=seed).fit(
            DomainCorpus({n: corpus._train[n].numpy() for n in generic},
                         seq_len=corpus.seq_len))
        spec = corpus._train["specific"].numpy()
        method = ImportanceSampling.from_classifier(clf, spec[: len(spec) - len(spec) % 32],
                                                    specific="specific")
        extra = {"batch_size": batch}
    elif name == "doge":
        method = DoGE(K, specific="specific", update_every=5, mu=0.01)
        extra = method.train_kwargs(batch_size=batch)
    else:
        method = DGA(K, specific="specific", update_every=10, step_size=30.0, ema=0.5)
        extra = method.train_kwargs(batch_size=batch)
    t0 = time.perf_counter()
    hist = train(model, corpus, method, steps, **kw, **extra)
    wall = time.perf_counter() - t0
    return {
        "specific_val_loss": hist.val_loss["specific"][-1],
        "specific_val_curve": hist.val_loss["specific"],
        "eval_step": hist.eval_step,
        "final_weights": [float(v) for v in method.weights_],
        "weights_trajectory": [list(map(float, m[:K])) for m in hist.mixture[:: max(1, steps
                                                                                   // 20)]],
        "epochs_seen": {k: float(v) for k, v in corpus.epochs_seen().items()},
        "wall_s": wall,
    }


def main(argv=None):
    args = parse_args(__doc__.splitlines()[0], argv)
    quick = not args.full
    steps = 1500 if quick else 5000
    batch = 16
    seq_len = 32
    cfg = TinyLMConfig(d_model=64, n_layers=2, n_heads=2 if quick else 4, max_seq_len=seq_len)
    entropy = float(np.dot(TARGET, [s.entropy_rate() for s in markov_domains(
        K, similarity=0.5, n_states=32, random_state=0)]))
    regimes = {
        "little_generic_data": (2_000 if quick else 10_000, 20_000 if quick else 100_000),
        "little_specific_data": (60_000 if quick else 500_000, 1_000 if quick else 4_000),
    }
    res = {"steps": steps, "batch_size": batch, "seq_len": seq_len, "target_mixture":
           TARGET.tolist(), "model_params": TinyLM(cfg).num_parameters(), "regimes": {}}
    for regime, corpus_args in regimes.items():
        out = {}
        for name in ("uniform", "importance", "doge", "dga"):
            out[name] = run_method(name, (*corpus_args, seq_len), steps, batch, cfg)
            print(f"{regime:<22} {name:<11} specific val loss "
                  f"{out[name]['specific_val_loss']:.4f}  weights "
                  f"{np.round(out[name]['final_weights'], 2)}  {out[name]['wall_s']:.0f} s",
                  flush=True)
        out["dga_beats_importance"] = bool(out["dga"]["specific_val_loss"]
                                           < out["importance"]["specific_val_loss"])
        res["regimes"][regime] = out
    res["mixture_entropy_floor"] = entropy
    # overhead: DGA (updates every 10 steps) vs the same training with a fixed mixture
    corpus_args = (*regimes["little_specific_data"], seq_len)
    walls = {}
    for name in ("uniform", "dga"):
        walls[name] = min(run_method(name, corpus_args, 300 if quick else 1000, batch,
                                     cfg)["wall_s"] for _ in range(2))
    res["overhead"] = {"uniform_s": walls["uniform"], "dga_s": walls["dga"],
                       "ratio": walls["dga"] / walls["uniform"]}
    print(f"DGA overhead: {100 * (res['overhead']['ratio'] - 1):.1f}% (update every 10 steps)")
    write_result("mixing", res, mode="quick" if quick else "full", out=args.out)


if __name__ == "__main__":
    main()
