"""Demo: DGA's domain weights against importance sampling on synthetic domains."""

from __future__ import annotations

import numpy as np

from ._registry import register_demo


@register_demo("dga", "Dynamic Gradient Alignment: online domain weights (synthetic domains)")
def demo(out_dir, device="cpu"):
    """Train a tiny LM with uniform, importance-sampling and DGA mixtures when generic data is
    scarce; plot DGA's weights and the specific-set loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from sciml_toolbox.nn.lm import TinyLM, TinyLMConfig, specific_mixture_corpus, train
    from sciml_toolbox.nn.mixing import DGA, ImportanceSampling, UniformMixture

    k, steps, batch = 4, 1000, 16
    target = np.array([0.7, 0.3, 0.0, 0.0])
    cfg = TinyLMConfig(d_model=64, n_layers=2, n_heads=2, max_seq_len=32)

    def corpus():  # 2,000 unique tokens per generic domain: generic data is scarce
        return specific_mixture_corpus(target, generic_tokens=2_000, specific_tokens=10_000)

    methods = {
        "uniform": UniformMixture(k, generic_domains=list(range(k))),
        "importance": ImportanceSampling(target, specific="specific"),
        "DGA": DGA(k, specific="specific", update_every=10, step_size=30.0),
    }
    results = {}
    for name, m in methods.items():
        torch.manual_seed(0)
        extra = m.train_kwargs(batch_size=batch) if isinstance(m, DGA) else {
            "batch_size": batch}
        hist = train(TinyLM(cfg), corpus(), m, steps, lr=3e-3, eval_every=200,
                     eval_windows=32, eval_domains=["specific"], device=device, **extra)
        results[name] = hist

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for name, hist in results.items():
        axes[0].plot(hist.eval_step, hist.val_loss["specific"], marker="o", label=name)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("specific-set validation loss")
    axes[0].legend()
    w = np.asarray(results["DGA"].mixture)[:, :k]
    for i in range(k):
        axes[1].plot(w[:, i], label=f"domain {i} (target {target[i]:.1f})")
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("DGA weight")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "dga.png", dpi=100)
    plt.close(fig)
    out = {f"specific_loss[{n}]": h.val_loss["specific"][-1] for n, h in results.items()}
    out["dga_final_weights"] = " ".join(f"{v:.2f}" for v in methods["DGA"].weights_)
    return out
