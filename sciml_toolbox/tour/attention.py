"""Demo: softmax vs sigmoid attention maps, the role of the bias b, and the kernels' accuracy."""

from __future__ import annotations

import math
import time
from pathlib import Path

from ._registry import register_demo


def _maps(torch, n=48, d=16, seed=0):
    """Attention maps of one head on a toy sequence with local structure."""
    g = torch.Generator().manual_seed(seed)
    # a smooth random walk: nearby tokens have similar queries and keys
    x = torch.cumsum(torch.randn(n, d, generator=g), 0) / math.sqrt(n) * 2.0
    w_q = torch.randn(d, d, generator=g) / math.sqrt(d)
    w_k = torch.randn(d, d, generator=g) / math.sqrt(d)
    s = (x @ w_q) @ (x @ w_k).T * 1.5 / math.sqrt(d)
    return {
        "softmax": torch.softmax(s, -1),
        "sigmoid, b = 0": torch.sigmoid(s),
        "sigmoid, b = -log n": torch.sigmoid(s - math.log(n)),
    }


def _row_mass(torch, lengths, d=64, seed=0):
    """Mean row sum of sigmoid weights for random q, k, for b = 0 and b = -log n."""
    g = torch.Generator().manual_seed(seed)
    out = {"b = 0": [], "b = -log n": []}
    for n in lengths:
        q = torch.randn(n, d, generator=g)
        k = torch.randn(n, d, generator=g)
        s = q @ k.T / math.sqrt(d)
        out["b = 0"].append(float(torch.sigmoid(s).sum(-1).mean()))
        out["b = -log n"].append(float(torch.sigmoid(s - math.log(n)).sum(-1).mean()))
    return out


@register_demo("attention", "Sigmoid attention: maps, the bias b = -log n, FlashSigmoid accuracy")
def demo(out_dir, device="cpu"):
    """Compare softmax and sigmoid attention and check the fast paths against the formula.

    Parameters
    ----------
    out_dir : path-like
        Where ``attention.png`` is written.
    device : str, default='cpu'
        Torch device; on CUDA the Triton kernels are checked too.

    Returns
    -------
    summary : dict
        Row mass of sigmoid attention at n = 4096 for b = 0 and b = -log n (softmax: 1), the
        relative error of the chunked torch path (and of the Triton kernels on CUDA) against the
        naive formula, and their forward times.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from sciml_toolbox.nn.attention import sigmoid_attention, triton_available

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = torch.device(device)

    maps = _maps(torch)
    lengths = [64, 256, 1024, 4096]
    mass = _row_mass(torch, lengths)

    # accuracy of the fast paths against the O(N^2) formula, causal, GQA
    g = torch.Generator().manual_seed(1)
    b, hq, hkv, n, d = 1, 4, 2, 1024, 64
    q = torch.randn(b, hq, n, d, generator=g).to(dev)
    k = torch.randn(b, hkv, n, d, generator=g).to(dev)
    v = torch.randn(b, hkv, n, d, generator=g).to(dev)
    kk, vv = k.repeat_interleave(2, 1).double(), v.repeat_interleave(2, 1).double()
    s = q.double() @ kk.transpose(-1, -2) / math.sqrt(d) - math.log(n)
    causal = torch.ones(n, n, dtype=torch.bool, device=dev).tril()
    ref = (torch.sigmoid(s) * causal) @ vv

    def rel(x):
        return float((x.double() - ref).norm() / ref.norm())

    t0 = time.perf_counter()
    out_t = sigmoid_attention(q, k, v, is_causal=True, backend="torch", chunk_size=256)
    t_torch = time.perf_counter() - t0
    summary = {
        "row_mass_b0_n4096": mass["b = 0"][-1],
        "row_mass_blogn_n4096": mass["b = -log n"][-1],
        "relerr_chunked_vs_naive": rel(out_t),
        "time_chunked_fwd_s": t_torch,
    }
    if dev.type == "cuda" and triton_available(dev):
        out_k = sigmoid_attention(q, k, v, is_causal=True, backend="triton")
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out_k = sigmoid_attention(q, k, v, is_causal=True, backend="triton")
        torch.cuda.synchronize()
        summary["relerr_triton_vs_naive"] = rel(out_k)
        summary["time_triton_fwd_s"] = time.perf_counter() - t0
    else:
        summary["triton"] = "skipped (needs CUDA)"

    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
    for ax, (name, p) in zip(axes[:3], maps.items(), strict=True):
        im = ax.imshow(p.numpy(), cmap="viridis", vmin=0.0)
        ax.set_title(name)
        ax.set_xlabel("key j")
        fig.colorbar(im, ax=ax, fraction=0.046)
    axes[0].set_ylabel("query i")
    ax = axes[3]
    for name, vals in mass.items():
        ax.loglog(lengths, vals, "o-", label=f"sigmoid, {name}")
    ax.axhline(1.0, color="k", ls="--", label="softmax (= 1)")
    ax.set_xlabel("sequence length n")
    ax.set_ylabel("mean row sum of weights")
    ax.legend(fontsize=8)
    ax.set_title("attention mass per query")
    fig.tight_layout()
    fig.savefig(out_dir / "attention.png", dpi=110)
    plt.close(fig)
    return summary
