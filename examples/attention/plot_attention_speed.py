"""
Speed and memory: chunked torch path, naive formula, FlashSigmoid
=================================================================

The naive formula ``sigmoid(Q K^T s + b) V`` materialises an (N, N) matrix per head, so its
memory grows quadratically. The toolbox's torch backend processes keys in chunks and
recomputes probabilities in the backward pass (memory O(N d)); on a GPU the FlashSigmoid
Triton kernels tile both queries and keys and never leave on-chip memory (Ramapuram et al.,
2024, Sec. 5). This example times the CPU paths at small sizes and prints the tables of the
committed benchmark results (``benchmarks/bench_attention.py``), including the GPU table when
it has been measured.
"""

# %%
# Live CPU timing at small sizes
# ------------------------------

import json
import math
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from sciml_toolbox.nn.attention import sigmoid_attention
from sciml_toolbox.utils import set_threads

set_threads(1)  # small problems: one thread for BLAS and torch


def best_time(fn, *args, repeat=3, **kwargs):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t0)
    return best


def naive(q, k, v):
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) - math.log(k.shape[2])
    return torch.sigmoid(s).tril() @ v


torch.manual_seed(0)
rows = []
for n in (256, 512, 1024, 2048):
    q, k, v = (torch.randn(1, 2, n, 64) for _ in range(3))
    t_naive = best_time(naive, q, k, v)
    t_chunk = best_time(sigmoid_attention, q, k, v, is_causal=True, backend="torch")
    err = float((sigmoid_attention(q, k, v, is_causal=True) - naive(q, k, v)).abs().max())
    # bytes of the largest intermediate: the (N, N) scores vs one (N, 512) block
    rows.append((n, t_naive * 1e3, t_chunk * 1e3, 4 * 2 * n * n, 4 * 2 * n * min(n, 512), err))

print(f"{'N':>6} {'naive ms':>9} {'chunked ms':>10} {'naive scores':>13} {'chunk block':>12}"
      f" {'max |diff|':>10}")
for n, tn, tc, bn, bc, err in rows:
    print(f"{n:6d} {tn:9.2f} {tc:10.2f} {bn / 2**20:11.1f}Mi {bc / 2**20:10.1f}Mi {err:10.2e}")

fig, ax = plt.subplots(figsize=(5, 3.6))
ns = [r[0] for r in rows]
ax.loglog(ns, [r[3] / 2**20 for r in rows], "o-", label="naive: (N, N) scores")
ax.loglog(ns, [r[4] / 2**20 for r in rows], "s-", label="chunked: (N, 512) block")
ax.set_xlabel("sequence length N")
ax.set_ylabel("largest intermediate (MiB)")
ax.legend()
fig.tight_layout()

# %%
# Committed benchmark results
# ---------------------------
# ``python benchmarks/bench_attention.py`` writes the CPU table
# (peak resident memory measured in a fresh process per run); ``--device cuda`` the GPU one.


def find_results():
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        cand = folder / "benchmarks" / "results"
        if cand.is_dir():
            return cand
    return None


results = find_results()
cpu_file = results / "attention.json" if results else None
if cpu_file is not None and cpu_file.exists():
    doc = json.loads(cpu_file.read_text())
    print("machine:", doc["machine"].get("cpu"), "| torch", doc["machine"].get("torch"))
    print(f"{'N':>6} {'mode':>7} {'chunked s':>10} {'chunked MiB':>12} {'naive s':>8} "
          f"{'naive MiB':>10}")
    for row in doc["results"]["cpu"]:
        c, nv = row["chunked"], row["naive"]

        def cell(m, key, scale=1.0, width=8):
            return f"{m[key] / scale:{width}.2f}" if key in m else f"{'-':>{width}}"

        print(f"{row['n']:6d} {row['mode']:>7} {cell(c, 'time_s', width=10)} "
              f"{cell(c, 'peak_extra_bytes', 2**20, 12)} {cell(nv, 'time_s')} "
              f"{cell(nv, 'peak_extra_bytes', 2**20, 10)}")
else:
    print("no committed CPU results found")

gpu_files = sorted(results.glob("attention_gpu*.json")) if results else []
if gpu_files:
    doc = json.loads(gpu_files[-1].read_text())
    print("GPU:", doc["machine"].get("gpu"))
    for r in doc["results"]["cuda"]:
        if r["method"] == "flashsigmoid" and "fwd_ms" in r:
            print(r["batch"], r["n"], r["d"], r["causal"], r["dtype"],
                  f"fwd {r['fwd_tflops']:.0f} TFLOP/s",
                  f"x{r.get('fwd_speedup_vs_sdpa_flash_softmax', float('nan')):.2f} vs SDPA")
else:
    print("GPU results: pending (no GPU measurement committed yet)")
plt.show()
