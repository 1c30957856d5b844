"""Demo of sciml_toolbox.nn.optim: AdEMAMix against AdamW on a small byte-level LM."""

from __future__ import annotations

from pathlib import Path

from ._registry import register_demo


@register_demo("ademamix", "AdEMAMix vs AdamW on a tiny LM: loss curves and forgetting")
def demo(out_dir, device="cpu"):
    """Train a 0.1M-parameter TinyLM with AdamW and AdEMAMix on the same batches.

    Saves ``ademamix.png`` (validation loss; what is left of a batch seen once) and returns the
    headline numbers. About 30 s on a laptop CPU (the model is small; ``device`` is ignored).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sciml_toolbox.nn.lm import compare_optimizers

    res = compare_optimizers(n_steps=120, size="0.1M", seq_len=48, batch_size=12, lr=3e-3,
                             alpha=5.0, beta3=0.999, eval_every=10, n_val_batches=2)
    steps = res["steps"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for name in ("AdamW", "AdEMAMix"):
        axes[0].plot(steps, res[name]["val_loss"], label=name)
        axes[1].plot(steps, res[name]["gap"], label=name)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("validation loss (nats/byte)")
    axes[0].set_ylim(top=min(4.0, max(res["AdamW"]["val_loss"])))
    axes[0].legend()
    axes[1].axvline(res["probe_step"], color="gray", ls=":", label="probe batch seen")
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("loss gain on the probe batch")
    axes[1].set_title("forgetting of a batch seen once", fontsize=10)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    out = Path(out_dir) / "ademamix.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    summary = {"figure": str(out)}
    for name in ("AdamW", "AdEMAMix"):
        r = res[name]
        summary[f"final_val_loss[{name}]"] = r["final_val_loss"]
        summary[f"probe_gap_late[{name}]"] = r["gap_late"]
    steps_needed = res["AdEMAMix"]["steps_to_adamw_final"]
    summary["AdEMAMix_steps_to_AdamW_final_loss"] = (
        float(steps_needed) if steps_needed is not None else float("nan"))
    summary["n_steps"] = float(res["steps"][-1])
    return summary
