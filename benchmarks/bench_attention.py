"""Sigmoid attention: FlashSigmoid (Triton) and the chunked torch path against their anchors.

CPU (default): the chunked torch path against the naive formula ``sigmoid(Q K^T s + b) V`` that
materialises the (N, N) score matrix, forward and forward+backward, at N up to 16384. Each
measurement runs in a fresh subprocess so that its peak resident memory (``ru_maxrss``) can be
read; we report the peak minus the resident size after the inputs were built.

CUDA (``--device cuda``): forward and forward+backward time, TFLOP/s and peak memory of the
Triton FlashSigmoid kernels against torch SDPA with the flash backend (softmax), FlexAttention
computing sigmoid attention through the log-sum-exp workaround (``score_mod = log sigmoid(s + b)``,
then ``out * exp(lse)``), and flash-attn (softmax) when it is installed. (batch, seqlen) from
(32, 512) to (1, 16384) at model dim 2048, head dim 64 and 128, causal or not, fp16 and bf16
(``--full``); a small subset by default. FLOPs: forward ``4 B H N^2 d`` (halved when causal),
backward 2.5 times the forward (the FlashAttention-2 convention).

Run: ``python benchmarks/bench_attention.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
from _common import timeit, write_result  # noqa: E402

NAME = "attention"


def _flags(p):
    """This script's own flags (``--full``, ``--out`` and ``--threads`` are common)."""
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--dims", default=None, help="CUDA: head dims, e.g. 64,128")
    p.add_argument("--dtypes", default=None, help="CUDA: e.g. float16,bfloat16")
    p.add_argument("--seqlens", default=None, help="CUDA: subset of 512,...,16384")
    p.add_argument("--no-flex", action="store_true", help="CUDA: skip FlexAttention (compiles)")
    p.add_argument("--worker", nargs=5, default=None, metavar=("METHOD", "N", "MODE", "H", "D"),
                   help=argparse.SUPPRESS)


def parse_args(argv=None):
    return _common.parse_args(__doc__.splitlines()[0], argv, extra=_flags)


# ----------------------------------------------------------------------------------------- CPU
def _naive(q, k, v, b, causal):
    import torch

    s = q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5 + b
    p = torch.sigmoid(s)
    if causal:
        p = p.tril()
    return p @ v


def _rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _current_rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _worker(method, n, mode, heads, d):
    """One measurement in this (fresh) process; prints a JSON line."""
    import torch

    from sciml_toolbox.nn.attention import sigmoid_attention

    torch.manual_seed(0)
    n, heads, d = int(n), int(heads), int(d)
    q, k, v = (torch.randn(1, heads, n, d) for _ in range(3))
    grad = mode == "fwdbwd"
    for t in (q, k, v):
        t.requires_grad_(grad)
    do = torch.randn(1, heads, n, d)
    b = -math.log(n)

    def run():
        if method == "naive":
            out = _naive(q, k, v, b, causal=True)
        else:
            out = sigmoid_attention(q, k, v, b, is_causal=True, backend="torch", chunk_size=512)
        if grad:
            out.backward(do)
        return out

    base = _current_rss_bytes()
    t0 = time.perf_counter()
    out = run()
    elapsed = time.perf_counter() - t0
    peak = _rss_bytes() - base
    if n <= 4096:  # small sizes: best of three more runs
        for t in (q, k, v):
            t.grad = None
        elapsed = min(elapsed, timeit(run, repeat=3))
    check = float(out.detach()[0, 0, -1, :4].sum())
    print(json.dumps({"time_s": elapsed, "peak_extra_bytes": peak, "check": check}))


def _spawn(method, n, mode, heads, d):
    cmd = [sys.executable, __file__, "--worker", method, str(n), mode, str(heads), str(d)]
    # one thread: on a shared machine a second thread mostly adds barrier waits
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr else "failed"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def bench_cpu(full):
    heads, d = 1, 64
    sizes = [1024, 4096, 16384] if not full else [1024, 2048, 4096, 8192, 16384]
    rows = []
    for n in sizes:
        for mode in ("fwd", "fwdbwd"):
            row = {"n": n, "mode": mode, "heads": heads, "d": d, "causal": True}
            for method in ("chunked", "naive"):
                if method == "naive" and mode == "fwdbwd" and n > 8192:
                    row[method] = {"skipped": "naive backward at N=16k needs ~5 GiB"}
                    continue
                row[method] = _spawn(method, n, mode, heads, d)
            c, nv = row["chunked"], row["naive"]
            if "time_s" in c and "time_s" in nv:
                row["memory_ratio_naive_over_chunked"] = nv["peak_extra_bytes"] / max(
                    c["peak_extra_bytes"], 1)
                row["time_ratio_naive_over_chunked"] = nv["time_s"] / c["time_s"]
                row["max_abs_diff_check"] = abs(nv["check"] - c["check"])
            rows.append(row)
            print(_cpu_line(row), flush=True)
    return {"cpu": rows}


def _cpu_line(row):
    def fmt(m):
        if "time_s" not in m:
            return f"{'-':>9} {'-':>10}"
        return f"{m['time_s']:9.3f} {m['peak_extra_bytes'] / 2**20:9.1f}M"

    return (f"N={row['n']:6d} {row['mode']:7s} chunked {fmt(row['chunked'])}   "
            f"naive {fmt(row['naive'])}")


# ---------------------------------------------------------------------------------------- CUDA
def _flops(batch, heads, n, d, causal):
    f = 4.0 * batch * heads * n * n * d
    return f / 2 if causal else f


def _gpu_methods(torch, causal):
    """name -> callable(q, k, v) for the methods available on this machine."""
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from sciml_toolbox.nn.attention import sigmoid_attention

    methods = {}

    def flashsigmoid(q, k, v):
        return sigmoid_attention(q, k, v, is_causal=causal, backend="triton")

    methods["flashsigmoid"] = flashsigmoid

    def sdpa_flash(q, k, v):
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

    methods["sdpa_flash_softmax"] = sdpa_flash

    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention

        flex = torch.compile(flex_attention, dynamic=False)
        masks = {}

        def flex_sigmoid(q, k, v):
            n = k.shape[2]
            bias = -math.log(n)

            def score_mod(score, b, h, qi, kv):
                # softmax of log sigmoid(s + b) is sigmoid(s + b) / sum; exp(lse) undoes the sum
                return -torch.nn.functional.softplus(-(score + bias))

            block_mask = None
            if causal:
                key = (q.shape[2], n)
                if key not in masks:
                    masks[key] = create_block_mask(
                        lambda b, h, qi, kv: qi >= kv, None, None, q.shape[2], n,
                        device=q.device)
                block_mask = masks[key]
            out, lse = flex(q, k, v, score_mod=score_mod, block_mask=block_mask,
                            return_lse=True)
            return out * torch.exp(lse).unsqueeze(-1).to(out.dtype)

        methods["flex_sigmoid_lse"] = flex_sigmoid
    except Exception as exc:  # noqa: BLE001 - reported
        print(f"FlexAttention unavailable: {exc}")
    try:
        from flash_attn import flash_attn_func

        def fa2(q, k, v):
            out = flash_attn_func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                  causal=causal)
            return out.transpose(1, 2)

        methods["flash_attn_softmax"] = fa2
    except Exception:  # noqa: BLE001 - optional
        pass
    return methods


def bench_cuda(args, save):
    import torch
    import triton.testing

    # one compiled FlexAttention graph per shape: allow all of them
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 256)
    dev = torch.device("cuda")
    shapes = [(32, 512), (16, 1024), (8, 2048), (4, 4096), (2, 8192), (1, 16384)]
    if args.full:
        dims, causals, dtypes = (64, 128), (False, True), ("float16", "bfloat16")
    else:
        # a subset that fits gpu_check.sh's 150 s: no autotuning, two lengths, fp16
        os.environ.setdefault("SCIML_ATTENTION_AUTOTUNE", "0")
        shapes = [(4, 4096), (1, 16384)]
        dims, causals, dtypes = (64, 128), (False, True), ("float16",)
    if args.dims:
        dims = tuple(int(x) for x in args.dims.split(","))
    if args.dtypes:
        dtypes = tuple(args.dtypes.split(","))
    if args.seqlens:
        keep = {int(x) for x in args.seqlens.split(",")}
        shapes = [s for s in shapes if s[1] in keep]
    rows = []
    print(f"{'B':>3} {'N':>6} {'d':>4} {'causal':>6} {'dtype':>9} {'method':>20} "
          f"{'fwd ms':>8} {'fwd TF/s':>8} {'f+b ms':>8} {'f+b TF/s':>8} {'peak MiB':>9}")
    for dtype_name in dtypes:
        dtype = getattr(torch, dtype_name)
        for d in dims:
            heads = 2048 // d  # model dim 2048, as in the paper's benchmark
            for causal in causals:
                methods = _gpu_methods(torch, causal)
                if args.no_flex or (not args.full and (d, causal) != (64, False)):
                    methods.pop("flex_sigmoid_lse", None)  # its compiles dominate quick mode
                for batch, n in shapes:
                    g = torch.Generator(device=dev).manual_seed(0)
                    q, k, v, do = (torch.randn(batch, heads, n, d, device=dev, dtype=dtype,
                                               generator=g) for _ in range(4))
                    flops = _flops(batch, heads, n, d, causal)
                    for name, fn in methods.items():
                        row = {"batch": batch, "n": n, "d": d, "heads": heads, "causal": causal,
                               "dtype": dtype_name, "method": name}
                        _time_cuda(torch, triton.testing, fn, q, k, v, do, flops, row)
                        if name in ("flashsigmoid", "flex_sigmoid_lse") and "fwd_ms" in row:
                            _accuracy(torch, fn, q, k, v, causal, row)
                        rows.append(row)
                        print(_gpu_line(row), flush=True)
                    _add_ratios(rows, batch, n, d, causal, dtype_name)
                    del q, k, v, do
                    torch.cuda.empty_cache()
                    save({"cuda": rows})  # partial results survive a timeout
    return {"cuda": rows}


def _time_cuda(torch, testing, fn, q, k, v, do, flops, row):
    """Fill ``row`` with forward and forward+backward timings (errors recorded per phase)."""
    try:
        with torch.no_grad():
            fn(q, k, v)  # warm-up / autotune / compile
        fwd_ms = testing.do_bench(lambda: fn(q, k, v), warmup=25, rep=100,
                                  return_mode="median")
        row.update(fwd_ms=fwd_ms, fwd_tflops=flops / fwd_ms * 1e-9)
    except Exception as exc:  # noqa: BLE001 - recorded, the sweep goes on
        row["error"] = f"fwd: {type(exc).__name__}: {str(exc)[:200]}"
        return
    try:
        qg, kg, vg = (t.detach().clone().requires_grad_() for t in (q, k, v))

        def fwd_bwd():
            out = fn(qg, kg, vg)
            out.backward(do)

        fwd_bwd()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fwd_bwd()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
        fb_ms = testing.do_bench(fwd_bwd, warmup=25, rep=100, grad_to_none=[qg, kg, vg],
                                 return_mode="median")
        row.update(fwdbwd_ms=fb_ms, fwdbwd_tflops=3.5 * flops / fb_ms * 1e-9,
                   bwd_ms=fb_ms - fwd_ms, peak_fwdbwd_bytes=peak)
    except Exception as exc:  # noqa: BLE001
        row["error"] = f"fwd+bwd: {type(exc).__name__}: {str(exc)[:200]}"


def _accuracy(torch, fn, q, k, v, causal, row):
    """Relative error of a sigmoid method against the float64 chunked torch path."""
    from sciml_toolbox.nn.attention import sigmoid_attention

    with torch.no_grad():  # same shapes as timed: no new compilation
        out = fn(q, k, v).double()
        ref = sigmoid_attention(q.double(), k.double(), v.double(), is_causal=causal,
                                backend="torch")
    row["relerr_vs_fp64"] = float((out - ref).norm() / ref.norm())


def _add_ratios(rows, batch, n, d, causal, dtype):
    sel = {r["method"]: r for r in rows if (r["batch"], r["n"], r["d"], r["causal"], r["dtype"])
           == (batch, n, d, causal, dtype) and "fwd_ms" in r}
    ours = sel.get("flashsigmoid")
    if ours is None:
        return
    for name, r in sel.items():
        if name == "flashsigmoid":
            continue
        ours[f"fwd_speedup_vs_{name}"] = r["fwd_ms"] / ours["fwd_ms"]
        if "bwd_ms" in r and "bwd_ms" in ours:
            ours[f"bwd_speedup_vs_{name}"] = r["bwd_ms"] / ours["bwd_ms"]


def _gpu_line(r):
    head = (f"{r['batch']:3d} {r['n']:6d} {r['d']:4d} {str(r['causal']):>6} {r['dtype']:>9} "
            f"{r['method']:>20}")
    if "fwd_ms" not in r:
        return head + "  error: " + r["error"][:60]
    line = head + f" {r['fwd_ms']:8.3f} {r['fwd_tflops']:8.1f}"
    if "fwdbwd_ms" in r:
        line += (f" {r['fwdbwd_ms']:8.3f} {r['fwdbwd_tflops']:8.1f} "
                 f"{r['peak_fwdbwd_bytes'] / 2**20:9.1f}")
    if "error" in r:
        line += "  error: " + r["error"][:60]
    if "fwd_speedup_vs_sdpa_flash_softmax" in r:
        line += f"  fwd x{r['fwd_speedup_vs_sdpa_flash_softmax']:.2f} vs SDPA"
    return line


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        _worker(*args.worker)
        return None
    mode = "full" if args.full else "quick"
    settings = {"device": args.device, "full": args.full,
                "cpu_threads_per_measurement": 1 if args.device == "cpu" else None}
    if args.device == "cuda":
        name = NAME + "_gpu"

        def save(payload):
            write_result(name, {**payload, "settings": settings}, mode=mode, out=args.out)

        payload = bench_cuda(args, save)
    else:
        name = NAME
        payload = bench_cpu(args.full)
    return write_result(name, {**payload, "settings": settings}, mode=mode, out=args.out)


if __name__ == "__main__":
    main()
