"""Soup-of-Experts study: specialist loss on held-out mixtures, and instantiation time.

Compared at equal deployed size (one base model's parameters) on synthetic Markov domains of
the workbench:

* generic: one model trained on the uniform mixture of the domains;
* soup: a Soup-of-Experts trained on sampled histograms, instantiated at each held-out h;
* soup (top-2): the same with sparse routing (``top_k=2``: two experts per specialist), the
  variant whose instantiation reads 2 experts instead of the whole bank;
* per-domain experts: one model per domain (k times the training compute); for each held-out h
  the best single expert is deployed (an oracle choice, favourable to this baseline);
* MoE: a token-routed mixture of MLP experts (top-1 routing, as many experts as the soup),
  trained on the uniform mixture; it cannot be shipped at the base size.

Every model gets the same number of optimizer steps and batch size (the experts: each). The
specialist loss of a mixture h is sum_i h_i L_i (validation loss of domain i). Instantiation is
timed for a 10M-parameter TinyLM with 32 experts (full bank, rank-8 experts, dense or top-2
routing), into a fresh model and into an existing one (``instantiate(h, out=model)``), beside
two floors measured in the same run: the dense weighted sum over the bank alone, and the
first touch of a fresh 10M-parameter buffer.

Run: ``python benchmarks/bench_soup.py [--full]``.
"""

from __future__ import annotations

import sys
import time
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_args, write_result  # noqa: E402

from sciml_toolbox.nn.lm import DomainCorpus, TinyLM, TinyLMConfig, evaluate, train  # noqa: E402
from sciml_toolbox.nn.soup import (  # noqa: E402
    DomainHistogramSampler,
    SoupOfExperts,
    train_soup,
)


class _TokenMoE(nn.Module):
    """Top-1 token-routed MLP experts (Switch-style) replacing a block's fc/proj MLP."""

    def __init__(self, d_model, d_ff, n_experts):
        super().__init__()
        self.gate = nn.Linear(d_model, n_experts, bias=False)
        self.fc = nn.Parameter(torch.randn(n_experts, d_model, d_ff) * 0.02)
        self.proj = nn.Parameter(torch.randn(n_experts, d_ff, d_model) * 0.02)

    def forward(self, x):
        b, n, d = x.shape
        flat = x.reshape(-1, d)
        probs = torch.softmax(self.gate(flat), dim=-1)
        top_p, top_i = probs.max(dim=-1)
        out = torch.zeros_like(flat)
        for e in range(self.fc.shape[0]):
            sel = top_i == e
            if sel.any():
                h = F.gelu(flat[sel] @ self.fc[e]) @ self.proj[e]
                out[sel] = h * top_p[sel, None]
        return out.view(b, n, d)


def _moe_model(cfg, n_experts):
    model = TinyLM(cfg)
    for blk in model.blocks:
        blk.moe = _TokenMoE(cfg.d_model, cfg.d_ff or 4 * cfg.d_model, n_experts)
        del blk.fc, blk.proj

        def fwd(self, x, cos, sin):
            x = x + self.drop(self.attn(self.norm1(x), cos, sin))
            return x + self.drop(self.moe(self.norm2(x)))

        blk.forward = types.MethodType(fwd, blk)
    return model


def _specialist(losses_by_domain, h):
    return float(np.dot(h, losses_by_domain))


def study(quick):
    k = 4 if quick else 6
    steps = 600 if quick else 2000
    batch = 16
    cfg = (TinyLMConfig(d_model=48, n_layers=1, n_heads=2, max_seq_len=64) if quick
           else TinyLMConfig(d_model=64, n_layers=2, n_heads=4, max_seq_len=64))
    n_experts = 8
    corpus_kw = dict(n_domains=k, similarity=0.2, n_tokens=60_000 if quick else 400_000,
                     seq_len=64, n_states=48)
    train_kw = dict(batch_size=batch, lr=3e-3, eval_windows=16 if quick else 64,
                    warmup_steps=20)
    rng = np.random.default_rng(123)
    heldout = rng.dirichlet(np.ones(k), size=6 if quick else 24)
    heldout = np.concatenate([heldout, np.eye(k)])  # plus every pure domain

    def fresh():
        return DomainCorpus.synthetic(**corpus_kw)

    torch.manual_seed(0)
    out = {"steps": steps, "batch_size": batch, "n_domains": k, "n_experts": n_experts,
           "base_params": TinyLM(cfg).num_parameters()}
    entropy = np.array([s.entropy_rate() for s in fresh().sources])

    t0 = time.perf_counter()
    generic = TinyLM(cfg)
    train(generic, fresh(), np.full(k, 1 / k), steps, **train_kw)
    gen_losses = np.array(list(evaluate(generic, fresh(), max_windows=64).values()))
    out["generic_train_s"] = time.perf_counter() - t0
    print(f"generic trained in {out['generic_train_s']:.0f} s", flush=True)

    t0 = time.perf_counter()
    torch.manual_seed(0)
    soup = SoupOfExperts(cfg, n_experts=n_experts, n_domains=k, random_state=0)
    train_soup(soup, fresh(), steps, sampler=DomainHistogramSampler(k, support_size=2),
               **train_kw)
    out["soup_train_s"] = time.perf_counter() - t0
    print(f"soup trained in {out['soup_train_s']:.0f} s", flush=True)
    c = fresh()
    soup_losses, inst_ms = [], []
    for h in heldout:
        t1 = time.perf_counter()
        m = soup.instantiate(h)
        inst_ms.append(1e3 * (time.perf_counter() - t1))
        soup_losses.append(np.array(list(evaluate(m, c, max_windows=64).values())))

    t0 = time.perf_counter()
    torch.manual_seed(0)
    sparse = SoupOfExperts(cfg, n_experts=n_experts, n_domains=k, top_k=2, random_state=0)
    train_soup(sparse, fresh(), steps, sampler=DomainHistogramSampler(k, support_size=2),
               **train_kw)
    out["soup_top2_train_s"] = time.perf_counter() - t0
    print(f"top-2 soup trained in {out['soup_top2_train_s']:.0f} s", flush=True)
    sparse_losses = [np.array(list(evaluate(sparse.instantiate(h), c, max_windows=64).values()))
                     for h in heldout]

    t0 = time.perf_counter()
    expert_losses = []
    for i in range(k):
        torch.manual_seed(0)
        e = TinyLM(cfg)
        train(e, fresh(), np.eye(k)[i], steps, **train_kw)
        expert_losses.append(np.array(list(evaluate(e, c, max_windows=64).values())))
    out["experts_train_s"] = time.perf_counter() - t0
    print(f"experts trained in {out['experts_train_s']:.0f} s", flush=True)

    t0 = time.perf_counter()
    torch.manual_seed(0)
    moe = _moe_model(cfg, n_experts)
    train(moe, fresh(), np.full(k, 1 / k), steps, **train_kw)
    moe_losses = np.array(list(evaluate(moe, c, max_windows=64).values()))
    out["moe_train_s"] = time.perf_counter() - t0
    out["moe_params"] = sum(p.numel() for p in moe.parameters())
    out["soup_params"] = soup.num_parameters()

    rows = []
    for j, h in enumerate(heldout):
        rows.append({
            "h": [round(float(v), 4) for v in h],
            "entropy_floor": _specialist(entropy, h),
            "generic": _specialist(gen_losses, h),
            "soup": _specialist(soup_losses[j], h),
            "soup_top2": _specialist(sparse_losses[j], h),
            "best_expert": min(_specialist(el, h) for el in expert_losses),
            "moe": _specialist(moe_losses, h),
        })
    out["mixtures"] = rows
    for key in ("generic", "soup", "soup_top2", "best_expert", "moe", "entropy_floor"):
        out[f"mean_{key}"] = float(np.mean([r[key] for r in rows]))
    out["soup_beats_generic_share"] = float(np.mean([r["soup"] < r["generic"] for r in rows]))
    out["soup_top2_beats_generic_share"] = float(np.mean([r["soup_top2"] < r["generic"]
                                                          for r in rows]))
    out["instantiate_ms_small"] = float(np.median(inst_ms))
    return out


def _median_ms(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - t0))
    return float(np.median(times))


def instantiation(quick):
    torch.set_grad_enabled(False)
    cfg = TinyLMConfig.from_size("10M", max_seq_len=64)
    repeats = 5 if quick else 15
    h = np.full(16, 1 / 16)
    res = {}
    for label, rank, top_k in (("full", None, None), ("full_top2", None, 2),
                               ("rank8", 8, None), ("rank8_top2", 8, 2)):
        soup = SoupOfExperts(cfg, n_experts=32, n_domains=16, rank=rank, top_k=top_k)
        model = soup.instantiate(h)
        res[label] = {"base_params": soup.base_num_parameters(),
                      "bank_params": sum(p.numel() for p in soup.bank.parameters()),
                      "instantiate_ms": _median_ms(lambda s=soup: s.instantiate(h), repeats),
                      "instantiate_into_ms": _median_ms(
                          lambda s=soup, m=model: s.instantiate(h, out=m), repeats)}
        del soup, model
    # the floors: the dense (32,) x (32, n_params) weighted sum alone, and writing a fresh
    # n_params buffer for the first time (page faults, paid by every new model)
    n = res["full"]["base_params"]
    bank = torch.randn(32, n)
    phi = torch.randn(32)
    res["weighted_sum_floor_ms"] = _median_ms(lambda b=bank: phi @ b, repeats)
    del bank
    res["fresh_buffer_floor_ms"] = _median_ms(lambda: torch.empty(n).fill_(1.0), repeats)
    torch.set_grad_enabled(True)
    return res


def main(argv=None):
    args = parse_args(__doc__.splitlines()[0], argv)
    quick = not args.full
    res = {"study": study(quick), "instantiation": instantiation(quick)}
    s = res["study"]
    print(f"specialist loss (mean over {len(s['mixtures'])} held-out mixtures, nats/token):")
    for key in ("entropy_floor", "generic", "soup", "soup_top2", "best_expert", "moe"):
        print(f"  {key:<14} {s['mean_' + key]:.4f}")
    print(f"  soup < generic on {100 * s['soup_beats_generic_share']:.0f}% of mixtures, "
          f"top-2 soup on {100 * s['soup_top2_beats_generic_share']:.0f}%")
    for label in ("full", "full_top2", "rank8", "rank8_top2"):
        r = res["instantiation"][label]
        print(f"instantiate 10M x 32 experts ({label}): {r['instantiate_ms']:.1f} ms new model, "
              f"{r['instantiate_into_ms']:.1f} ms into an existing one")
    print(f"floors: dense weighted sum {res['instantiation']['weighted_sum_floor_ms']:.1f} ms, "
          f"fresh 10M buffer {res['instantiation']['fresh_buffer_floor_ms']:.1f} ms")
    write_result("soup", res, mode="quick" if quick else "full", out=args.out)


if __name__ == "__main__":
    main()
