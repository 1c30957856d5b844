"""Demo: a small Soup-of-Experts against a generic model of the same deployed size."""

from __future__ import annotations

import time

import numpy as np

from ._registry import register_demo


@register_demo("soup", "Soup-of-Experts: instant specialists vs a generic model (synthetic)")
def demo(out_dir, device="cpu"):
    """Train a generic TinyLM and a soup for the same steps on 4 synthetic domains, then
    compare specialist losses on held-out mixtures; plot them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from sciml_toolbox.nn.lm import DomainCorpus, TinyLM, TinyLMConfig, train
    from sciml_toolbox.nn.soup import (
        DomainHistogramSampler,
        SoupOfExperts,
        specialist_losses,
        train_soup,
    )

    k, steps = 4, 120
    cfg = TinyLMConfig(d_model=48, n_layers=1, n_heads=2, max_seq_len=32)
    kw = dict(batch_size=16, lr=5e-3, eval_windows=8, warmup_steps=10, device=device)

    def corpus():
        return DomainCorpus.synthetic(n_domains=k, similarity=0.1, n_tokens=40_000, seq_len=32)

    torch.manual_seed(0)
    generic = TinyLM(cfg)
    train(generic, corpus(), np.full(k, 1 / k), steps, **kw)
    soup = SoupOfExperts(cfg, n_experts=4, n_domains=k, random_state=0)
    train_soup(soup, corpus(), steps, sampler=DomainHistogramSampler(k, support_size=1), **kw)

    c = corpus()
    entropy = np.array([s.entropy_rate() for s in c.sources])
    hs = np.concatenate([np.eye(k), np.random.default_rng(0).dirichlet(np.ones(k), 6)])
    soup_l = specialist_losses(soup, c, hs)
    gen_l = specialist_losses(generic, c, hs)
    floor = hs @ entropy
    t_inst = []
    for h in hs:
        t0 = time.perf_counter()
        soup.instantiate(h)
        t_inst.append(1e3 * (time.perf_counter() - t0))

    fig, ax = plt.subplots(figsize=(6, 3.5))
    x = np.arange(len(hs))
    ax.bar(x - 0.2, gen_l - floor, 0.4, label="generic model")
    ax.bar(x + 0.2, soup_l - floor, 0.4, label="soup, instantiated at h")
    ax.set_xticks(x, [f"dom {i}" for i in range(k)] + [f"mix {i}" for i in range(len(hs) - k)],
                  rotation=45)
    ax.set_ylabel("specialist loss - entropy floor")
    ax.set_title(f"Same deployed size ({generic.num_parameters():,} parameters)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "soup.png", dpi=100)
    plt.close(fig)
    return {
        "generic_specialist_loss": float(gen_l.mean()),
        "soup_specialist_loss": float(soup_l.mean()),
        "entropy_floor": float(floor.mean()),
        "soup_better_share": float(np.mean(soup_l < gen_l)),
        "instantiate_ms": float(np.median(t_inst)),
    }
