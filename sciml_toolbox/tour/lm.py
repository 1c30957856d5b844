"""Demo: a TinyLM trained on a mixture of Python source and English documentation."""

from __future__ import annotations

import time

from ._registry import register_demo


@register_demo("lm", "Small-LM workbench: TinyLM on stdlib code + pydoc prose, per-domain losses")
def demo(out_dir, device="cpu"):
    """Train a 0.1M-parameter TinyLM for 300 steps on code and prose; plot validation losses.

    Returns
    -------
    dict
        Parameter count, initial and final validation loss per domain (nats per byte),
        training throughput.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from sciml_toolbox.nn.lm import DomainCorpus, TinyLM, TinyLMConfig, train

    corpus = DomainCorpus.from_stdlib(code_bytes=400_000, seq_len=64, random_state=0)
    torch.manual_seed(0)
    model = TinyLM(TinyLMConfig.from_size("0.1M", max_seq_len=64))
    t0 = time.perf_counter()
    hist = train(model, corpus, [0.5, 0.5], 300, lr=3e-3, batch_size=16, warmup_steps=20,
                 eval_every=50, eval_windows=32, device=device)
    seconds = time.perf_counter() - t0
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.plot(hist.step, hist.train_loss, color="0.7", lw=0.8, label="train (mixture)")
    for name, vals in hist.val_loss.items():
        ax.plot(hist.eval_step, vals, marker="o", label=f"validation: {name}")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats / byte)")
    ax.set_title(f"TinyLM {model.num_parameters() / 1e3:.0f}k params, mixture 50/50")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "lm.png", dpi=110)
    plt.close(fig)
    out = {"n_params": float(model.num_parameters()), "seconds": seconds,
           "tokens_per_second": 300 * 16 * 64 / seconds}
    for name, vals in hist.val_loss.items():
        out[f"val_{name}_initial"] = vals[0]
        out[f"val_{name}_final"] = vals[-1]
    return out
