"""The first demo of the tour: which backends work here, and one array-API computation on each."""

from __future__ import annotations

import time

import numpy as np

from sciml_toolbox._backends import backend_report
from sciml_toolbox.array_api import get_namespace, make_generator, svd, to_numpy

from ._registry import register_demo


def _namespaces(device):
    import array_api_compat.numpy as npx

    out = [("numpy", npx, None)]
    try:
        import array_api_strict

        out.append(("array_api_strict", array_api_strict, None))
    except ImportError:
        pass
    try:
        import array_api_compat.torch as tx
        import torch

        dev = "cuda" if device == "cuda" and torch.cuda.is_available() else "cpu"
        out.append((f"torch-{dev}", tx, dev))
    except ImportError:
        pass
    return out


@register_demo("backends", "Backends available here; one SVD per array namespace")
def demo(out_dir, device="cpu"):
    """Time a 300 x 200 SVD on every namespace and plot the singular values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = {}
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ref = None
    for name, xp, dev in _namespaces(device):
        rng = make_generator(0, xp, dev)
        a = rng.normal((300, 200))
        t0 = time.perf_counter()
        _, s, _ = svd(a)
        s = to_numpy(s)
        results[f"svd_ms[{name}]"] = 1e3 * (time.perf_counter() - t0)
        ref = s if ref is None else ref
        results[f"max_sv_diff[{name}]"] = float(np.max(np.abs(s - ref)))
        ax.plot(s, label=f"{name} ({get_namespace(a).__name__.split('.')[-1]})")
    ax.set_xlabel("index")
    ax.set_ylabel("singular value")
    ax.set_title("Same seed, same SVD on every namespace")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "backends.png", dpi=100)
    plt.close(fig)
    results["backends_ok"] = sum(1 for r in backend_report() if r[2] not in ("missing",
                                                                              "not available"))
    return results
