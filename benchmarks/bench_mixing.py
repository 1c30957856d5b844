"""Data-mixing study: DGA against uniform, importance sampling and DoGE-style reweighting.

Synthetic Markov domains of the workbench (``similarity`` 0.5, so every generic domain helps a
little) and a specific set drawn from a known mixture of two of them. Two regimes, after the
paper (Fan, Grangier, Ablin, 2024):

(i) little generic data per domain: importance sampling repeats the two domains the specific
    set looks like, many epochs over a small budget, and overfits; DGA may spread its weight;
(ii) very little specific data: the importance-sampling histogram is estimated from a handful
    of specific windows by a classifier, and DGA's specific gradients come from the same few.

Reported: the specific set's validation loss at the end of training for every method (mean
over seeds, and per seed), DGA's weight trajectory, and DGA's wall-clock overhead over plain
training with updates every 10 steps at two model sizes.
Run: ``python benchmarks/bench_mixing.py [--full] [--dga-grid] [--regime-ii-variants]``
(``--dga-grid``: DGA alone with the settings of ``DGA_GRID``, written to
``results/mixing_dga_grid.json``; ``--regime-ii-variants``: three other versions of regime (ii),
see :func:`regime_ii_variants`, written to ``results/mixing_regime_ii.json``).
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
    Callback,
    DomainCorpus,
    MarkovSource,
    TinyLM,
    TinyLMConfig,
    markov_domains,
    pydoc_topics_text,
    python_source_text,
    sample_mixture,
    train,
)
from sciml_toolbox.nn.mixing import DGA, DoGE, ImportanceSampling, UniformMixture  # noqa: E402
from sciml_toolbox.nn.soup import DomainClassifier, estimate_histogram  # noqa: E402

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


# DGA's settings in the study: step size and EMA as fixed before the study was first run;
# alignments by one finite-difference forward (the default) and a specific batch of half the
# training batch, the setting whose overhead is reported. ``--dga-grid`` reruns DGA alone with
# other settings (see the README).
DGA_KWARGS = dict(update_every=10, step_size=30.0, ema=0.5)
DGA_GRID = [dict(step_size=30.0, ema=0.5), dict(step_size=10.0, ema=0.9),
            dict(step_size=30.0, ema=0.5, smoothing=0.05),
            # standardised alignments (added after the study; step 1 fixed before running)
            dict(step_size=1.0, ema=0.5, normalize="std"),
            dict(step_size=1.0, ema=0.5, normalize="std", preconditioning="adam")]


class StepTimer(Callback):
    """Wall time of every training step (batch drawing, forward, backward, optimizer step)."""

    def __init__(self):
        self.times = []

    def on_step_begin(self, state):
        self._t0 = time.perf_counter()

    def on_step_end(self, state):
        self.times.append(time.perf_counter() - self._t0)


def _train_kwargs(steps):
    """Trainer settings shared by every run of the study."""
    return dict(lr=3e-3, warmup_steps=10, eval_windows=32, eval_every=max(steps // 5, 1),
                eval_domains=["specific"])


def _fit_classifier(corpus, generic, seed):
    """The importance-sampling baseline's domain classifier, fitted on the generic domains."""
    return DomainClassifier(windows_per_domain=150, random_state=seed).fit(
        DomainCorpus({n: corpus._train[n].numpy() for n in generic}, seq_len=corpus.seq_len))


def _dga(k, batch, dga_kwargs=None, **kwargs):
    """DGA with the study's settings (``DGA_KWARGS``, specific batch of half the training
    batch) updated by ``dga_kwargs``, and its trainer keyword arguments."""
    method = DGA(k, specific="specific", **kwargs,
                 **{**DGA_KWARGS, "specific_batch_size": batch // 2, **(dga_kwargs or {})})
    return method, method.train_kwargs(batch_size=batch)


def run_method(name, corpus_args, steps, batch, cfg, seed=0, dga_kwargs=None, timer=None):
    corpus = make_corpus(*corpus_args)
    generic = corpus.names[:K]
    torch.manual_seed(seed)
    model = TinyLM(cfg)
    kw = _train_kwargs(steps)
    if name == "uniform":
        method = UniformMixture(K, generic_domains=generic)
        extra = {"batch_size": batch}
    elif name == "importance":
        clf = _fit_classifier(corpus, generic, seed)
        spec = corpus._train["specific"].numpy()
        method = ImportanceSampling.from_classifier(clf, spec[: len(spec) - len(spec) % 32],
                                                    specific="specific")
        extra = {"batch_size": batch}
    elif name == "doge":
        method = DoGE(K, specific="specific", update_every=5, mu=0.01)
        extra = method.train_kwargs(batch_size=batch)
    else:
        method, extra = _dga(K, batch, dga_kwargs)
    t0 = time.perf_counter()
    hist = train(model, corpus, method, steps, callbacks=[timer] if timer else (), **kw, **extra)
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


def overhead(quick, batch):
    """DGA's cost (updates every 10 steps) over training with a fixed mixture, at the study's
    model size (per-call costs dominate) and at a compute-bound size, with a specific batch of
    the training batch size and of half of it.

    The estimate comes from inside one DGA run: the median extra time of its update steps over
    its other steps, divided by 10 median plain steps. Both kinds of step alternate in the same
    run, so a machine shared with other jobs slows both alike; the whole-run wall-clock ratio
    against a uniform-mixture run is reported beside it.
    """
    sizes = {
        "study_model": (TinyLMConfig(d_model=64, n_layers=2, n_heads=2, max_seq_len=32), 32,
                         300 if quick else 1000),
        "d256_4_layers": (TinyLMConfig(d_model=256, n_layers=4, n_heads=4, max_seq_len=64), 64,
                          100 if quick else 300),
    }
    out = {}
    for size, (cfg, seq_len, steps) in sizes.items():
        corpus_args = (60_000, 4_000, seq_len)
        run_method("uniform", corpus_args, 20, batch, cfg)  # warm-up (imports, caches)
        res = {"params": TinyLM(cfg).num_parameters(), "steps": steps, "seq_len": seq_len,
               "update_every": DGA_KWARGS["update_every"]}
        uni = run_method("uniform", corpus_args, steps, batch, cfg)["wall_s"]
        res["uniform_s"] = uni
        for label, sb in (("full", batch), ("half", batch // 2)):
            timer = StepTimer()
            wall = run_method("dga", corpus_args, steps, batch, cfg,
                              dga_kwargs={"specific_batch_size": sb}, timer=timer)["wall_s"]
            t = np.asarray(timer.times[1:])  # the first step pays one-off costs
            upd = (np.arange(1, len(timer.times)) + 1) % DGA_KWARGS["update_every"] == 0
            plain, update = float(np.median(t[~upd])), float(np.median(t[upd]))
            res[f"specific_batch_{label}"] = {
                "specific_batch_size": sb, "plain_step_ms": 1e3 * plain,
                "update_step_ms": 1e3 * update,
                "overhead": (update - plain) / (DGA_KWARGS["update_every"] * plain),
                "wall_s": wall, "wall_ratio_vs_uniform": wall / uni}
        out[size] = res
        print(f"DGA overhead ({size}, {res['params']:,} parameters, update every "
              f"{res['update_every']} steps): "
              f"{100 * res['specific_batch_full']['overhead']:.1f}% with a specific batch of "
              f"{batch}, {100 * res['specific_batch_half']['overhead']:.1f}% with {batch // 2} "
              f"(whole-run ratios vs uniform "
              f"{res['specific_batch_full']['wall_ratio_vs_uniform']:.2f}, "
              f"{res['specific_batch_half']['wall_ratio_vs_uniform']:.2f})", flush=True)
    return out


def dga_grid(regimes, seq_len, steps, batch, cfg, seeds):
    """DGA alone, for every setting of ``DGA_GRID``, in both regimes and every seed."""
    rows = []
    for kw in DGA_GRID:
        for regime, corpus_args in regimes.items():
            runs = [run_method("dga", (*corpus_args, seq_len), steps, batch, cfg, seed=seed,
                               dga_kwargs=kw) for seed in seeds]
            losses = [r["specific_val_loss"] for r in runs]
            rows.append({"setting": kw, "regime": regime, "specific_val_loss_seeds": losses,
                         "specific_val_loss_mean": float(np.mean(losses)),
                         "final_weights_seeds": [r["final_weights"] for r in runs]})
            print(f"grid {kw} {regime:<22} {np.round(losses, 4)} final weights "
                  f"{[np.round(r['final_weights'], 2).tolist() for r in runs]}", flush=True)
    return rows


# --------------------------------------------------------------------------- regime (ii) variants
# Three other versions of regime (ii), run after the study's regime (ii) ended in a tie, to see
# whether DGA (the study's settings, unchanged) beats importance sampling where the
# importance-sampling histogram is less accurate. Fixed before they were run; all are reported.
FAMILIES, PER_FAMILY = 8, 8


def family_markov_sources(n_families=FAMILIES, per_family=PER_FAMILY, *, shared=0.2, family=0.5,
                          n_states=32, concentration=0.1, random_state=0):
    """Fine-grained Markov domains in families: ``T = shared T_0 + family T_f + rest T_own``.

    A stand-in for many k-means clusters of a real corpus, grouped by topic: sub-domains of one
    family share half of their transition structure. Built from :func:`markov_domains`: each
    family is a set of ``per_family`` domains of similarity ``family / (1 - shared)``, mixed
    with one transition matrix ``T_0`` common to all families."""
    t0 = markov_domains(1, 0.0, n_states=n_states, concentration=concentration,
                        random_state=random_state)[0].transition
    within = family / (1.0 - shared)
    return [MarkovSource(shared * t0 + (1.0 - shared) * src.transition, name=f"f{f}s{j}")
            for f in range(n_families)
            for j, src in enumerate(markov_domains(per_family, within, n_states=n_states,
                                                   concentration=concentration,
                                                   random_state=random_state + 1 + f))]


def _variant_corpus(kind, seq_len):
    """(corpus, generic domain names, bases or None) of a regime (ii) variant."""
    if kind == "markov_256_specific_tokens":  # the study's regime (ii) with 256 specific tokens
        corpus = make_corpus(60_000, 256, seq_len)
        return corpus, corpus.names[:K], None
    if kind == "markov_64_fine_domains":
        sources = family_markov_sources()
        k = len(sources)
        target = np.zeros(k)
        target[:PER_FAMILY] = 0.6 / PER_FAMILY
        target[PER_FAMILY:2 * PER_FAMILY] = 0.4 / PER_FAMILY
        data = {s.name: s.sample(25_000, random_state=10 + i) for i, s in enumerate(sources)}
        data["specific"] = sample_mixture(sources, target, 50_000, chunk_len=64,
                                          random_state=99)
        budgets = {s.name: 20_000 for s in sources}
        budgets["specific"] = 1_000
        corpus = DomainCorpus(data, seq_len=seq_len, val_fraction=0.2, max_train_tokens=budgets)
        bases = np.kron(np.eye(FAMILIES), np.full((1, PER_FAMILY), 1.0 / PER_FAMILY))
        return corpus, corpus.names[:k], bases
    if kind == "stdlib_text":  # 15 code packages + English docs; specific: the email package
        packages = ["asyncio", "xml", "http", "logging", "multiprocessing", "importlib",
                    "unittest", "concurrent", "urllib", "ctypes", "tkinter", "idlelib",
                    "sqlite3", "encodings", "json"]

        def enc(text):
            return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()

        data = {p: enc(python_source_text(400_000, packages=[p])) for p in packages}
        data["prose"] = enc(pydoc_topics_text(400_000))
        data["specific"] = enc(python_source_text(400_000, packages=["email"]))
        budgets = {k: 100_000 for k in data}
        budgets["specific"] = 2_000
        corpus = DomainCorpus(data, seq_len=seq_len, val_fraction=0.2, max_train_tokens=budgets)
        return corpus, [n for n in corpus.names if n != "specific"], None
    raise ValueError(kind)


def run_variant(kind, name, seed, steps=1500, batch=16):
    """Specific-set validation loss of one method on one regime (ii) variant."""
    seq_len = 64 if kind == "stdlib_text" else 32
    corpus, generic, bases = _variant_corpus(kind, seq_len)
    k = len(generic)
    torch.manual_seed(seed)
    model = TinyLM(TinyLMConfig(d_model=64, n_layers=2, n_heads=2, max_seq_len=seq_len))
    extra = {"batch_size": batch}
    if name == "uniform":
        method = UniformMixture(k, generic_domains=generic)
    elif name.startswith("importance"):
        clf = _fit_classifier(corpus, generic, seed)
        spec = corpus._train["specific"].numpy()
        h = estimate_histogram(clf, spec[: len(spec) - len(spec) % seq_len], window=seq_len,
                               hard=True)
        if name == "importance_families":  # the histogram's family masses, spread in-family
            h = bases.T @ h.reshape(FAMILIES, PER_FAMILY).sum(axis=1)
        method = ImportanceSampling(h / h.sum(), generic_domains=generic, specific="specific")
    else:  # 'dga': the study's setting; 'dga_slow': the grid's slow setting (DGA_GRID[1])
        method, extra = _dga(k, batch, DGA_GRID[1] if name == "dga_slow" else None,
                             bases=bases, generic_domains=generic)
    hist = train(model, corpus, method, steps, **_train_kwargs(steps), **extra)
    w = np.asarray(method.weights_, dtype=float)
    top = np.argsort(w)[::-1][:4]
    return {"specific_val_loss": hist.val_loss["specific"][-1],
            "specific_val_curve": hist.val_loss["specific"],
            "support": int((w > 1e-3).sum()),
            "top_weights": {generic[i]: float(w[i]) for i in top}}


VARIANT_METHODS = {
    "markov_256_specific_tokens": ("uniform", "importance", "dga", "dga_slow"),
    "markov_64_fine_domains": ("uniform", "importance", "importance_families", "dga", "dga_slow"),
    "stdlib_text": ("uniform", "importance", "dga", "dga_slow"),
}


def regime_ii_variants(seeds):
    """Every method of :data:`VARIANT_METHODS` on every variant and seed.

    * ``markov_256_specific_tokens``: the study's regime (ii) with 256 specific training tokens
      (4 chunks of the mixture) instead of 1k, so that the histogram is coarse.
    * ``markov_64_fine_domains``: 64 fine-grained domains in 8 families (20k tokens each), a
      specific set spread over the 16 domains of two families (60% / 40%) with 1k training
      tokens: the importance-sampling histogram over 64 domains covers only the few domains its
      windows fall into; DGA reweights the 8 family bases (distribution reweighting).
      ``importance_families`` is importance sampling at the family level (the same histogram's
      family masses, spread uniformly within each family).
    * ``stdlib_text``: real bytes, 16 generic domains (15 standard-library packages and the
      English pydoc topics, 100k bytes each), specific set the ``email`` package with 2k
      training bytes (held out of the generic domains; its optimal mixture is unknown).

    ``dga`` is the study's setting; ``dga_slow`` the slow setting of ``DGA_GRID`` (``step_size=10,
    ema=0.9``), which beat importance sampling in the study's regime (ii) but not in (i).
    """
    out = {}
    for kind, methods in VARIANT_METHODS.items():
        rows = {}
        for name in methods:
            runs = [run_variant(kind, name, seed) for seed in seeds]
            rows[name] = {"specific_val_loss_seeds": [r["specific_val_loss"] for r in runs],
                          "specific_val_loss_mean": float(np.mean(
                              [r["specific_val_loss"] for r in runs])),
                          "runs": runs}
            print(f"{kind:<28} {name:<20} {rows[name]['specific_val_loss_mean']:.4f} "
                  f"(seeds {np.round(rows[name]['specific_val_loss_seeds'], 4)}) top "
                  f"{ {k: round(v, 2) for k, v in runs[0]['top_weights'].items()} }", flush=True)
        for dga in ("dga", "dga_slow"):
            rows[f"{dga}_beats_importance_every_seed"] = bool(all(
                a < b for a, b in zip(rows[dga]["specific_val_loss_seeds"],
                                      rows["importance"]["specific_val_loss_seeds"],
                                      strict=True)))
        out[kind] = rows
    return out


def _flags(p):
    """This script's own flags (``--full``, ``--out`` and ``--threads`` are common)."""
    p.add_argument("--dga-grid", action="store_true", help="other DGA settings, DGA alone")
    p.add_argument("--regime-ii-variants", action="store_true",
                   help="three other versions of regime (ii)")


def main(argv=None):
    # threads: --threads, default 1 (small models: one thread is fastest and least noisy)
    args = parse_args(__doc__.splitlines()[0], argv, extra=_flags)
    grid, variants = args.dga_grid, args.regime_ii_variants
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
    seeds = (0, 1) if quick else (0, 1, 2)
    res["seeds"] = list(seeds)
    if variants:
        res["regime_ii_variants"] = regime_ii_variants(seeds)
        write_result("mixing_regime_ii", res, mode="quick" if quick else "full", out=args.out)
        return
    if grid:
        res["dga_grid"] = dga_grid(regimes, seq_len, steps, batch, cfg, seeds)
        write_result("mixing_dga_grid", res, mode="quick" if quick else "full",
                     out=args.out)
        return
    for regime, corpus_args in regimes.items():
        out = {}
        for name in ("uniform", "importance", "doge", "dga"):
            runs = [run_method(name, (*corpus_args, seq_len), steps, batch, cfg, seed=seed)
                    for seed in seeds]
            out[name] = runs[0]  # trajectories of the first seed
            out[name]["specific_val_loss_seeds"] = [r["specific_val_loss"] for r in runs]
            out[name]["specific_val_loss_mean"] = float(np.mean(
                out[name]["specific_val_loss_seeds"]))
            print(f"{regime:<22} {name:<11} specific val loss "
                  f"{out[name]['specific_val_loss_mean']:.4f} (seeds "
                  f"{np.round(out[name]['specific_val_loss_seeds'], 4)})  weights "
                  f"{np.round(out[name]['final_weights'], 2)}  {out[name]['wall_s']:.0f} s",
                  flush=True)
        dga, imp = out["dga"], out["importance"]
        out["dga_beats_importance"] = bool(dga["specific_val_loss_mean"]
                                           < imp["specific_val_loss_mean"])
        out["dga_beats_importance_every_seed"] = bool(all(
            a < b for a, b in zip(dga["specific_val_loss_seeds"],
                                  imp["specific_val_loss_seeds"], strict=True)))
        res["regimes"][regime] = out
    res["mixture_entropy_floor"] = entropy
    res["overhead"] = overhead(quick, batch)
    write_result("mixing", res, mode="quick" if quick else "full", out=args.out)


if __name__ == "__main__":
    main()
