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

Study (``--study``): does sigmoid attention train as well as softmax attention (Ramapuram et
al., 2024), and do its bias ``b = -log n`` and its stabilisation both matter? The protocol was
fixed before the first run, and every run is reported (``results/attention_study.json``):

- Data: :meth:`DomainCorpus.from_stdlib` with the domains ``'code'`` (1 MB of standard-library
  source) and ``'prose'`` (``pydoc_data.topics``), bytes, windows of 64 tokens, the last 10% of
  each domain held out; training on the fixed mixture (0.5, 0.5).
- Model: :class:`TinyLM`, d_model 64, 2 layers, 4 heads (head dim 16), d_ff 256, RoPE, tied
  embeddings (about 115k parameters).
- Variants (all with QK-norm, one factor changed at a time): ``softmax`` (softmax attention,
  QK-norm and Hybrid-Norm: the same architecture as the full sigmoid model, only the attention
  nonlinearity differs); ``sigmoid`` (b = -log n, QK-norm, Hybrid-Norm: the paper's recipe; of
  the two stabilisations the reference note names, Hybrid-Norm or LayerScale, we fix
  Hybrid-Norm, which has no initial value to choose); ``sigmoid_no_bias`` (b = 0, QK-norm,
  Hybrid-Norm); ``sigmoid_no_stab`` (b = -log n, QK-norm, no Hybrid-Norm).
- Training: :func:`sciml_toolbox.nn.lm.train`, AdamW (betas 0.9, 0.95, weight decay 0.1 on
  matrices), gradient clipping at 1.0, 600 steps of 16 windows, 30 warmup steps then cosine decay
  to 10%; peak learning rates {1e-3, 3e-3, 1e-2} for every variant (the first grid, extended
  by the amendment below); seeds {0, 1, 2} (the seed
  sets the initialisation and the batch order: for a given seed every variant sees the same
  batches). A run whose training loss becomes non-finite is reported as diverged (final loss
  +inf).
- Measures: validation loss per domain every 100 steps on 64 fixed windows per domain (the same
  for every run); the attention norms, averaged over the layers, at each of the first 100 steps
  and every 10 steps after: the RMS of the attention output ``O = att(Q, K) V`` (all heads,
  before the output projection) and the RMS of what the attention branch adds to the residual
  stream (after Hybrid-Norm when there is one).
- Selection and verdict: per variant, the learning rate with the lowest final validation loss
  averaged over seeds and the two domains. Sigmoid matches softmax if the difference of their
  seed means at their best learning rates is within two standard errors,
  ``2 sqrt((s_1^2 + s_2^2) / 3)`` (``s`` the seed standard deviations); an ablation matters if
  it is worse than the full sigmoid variant by more than the same margin.
- Amendment, added after the first run (2026-12-06) and before any further run: the first grid
  {1e-3, 3e-3, 1e-2} did not bracket the optimum (every variant's best learning rate was 1e-2,
  the largest of the grid), so a verdict "at the best learning rate" would have been taken at
  the grid's edge. Rule: the grid is extended upwards by factors of about 3 (3e-2, then 1e-1 if
  3e-2 is still the best for some variant, and so on), every new rate for every variant and
  seed, until each variant's best learning rate is interior to the grid, that is until the next
  larger rate diverges or gives a worse seed mean for every variant (downwards the same way,
  should a best rate be the smallest). The runs already made are kept, not rerun (``--reuse``);
  the selection and the verdict rules above are unchanged and apply to the extended grid.

Run: ``python benchmarks/bench_attention.py [--study]``. ``--study --reuse [--lrs 3e-2,...]``
keeps the runs stored in the result file (same protocol) and trains only the missing
(variant, learning rate, seed) triples, then writes the summary of the union.
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
    p.add_argument("--study", action="store_true",
                   help="the training study (sigmoid vs softmax attention on TinyLM) instead of "
                        "the kernel timings")
    p.add_argument("--lrs", default=None,
                   help="study: peak learning rates to train, e.g. 3e-2,1e-1 (default: the "
                        "protocol's grid)")
    p.add_argument("--reuse", action="store_true",
                   help="study: keep the runs stored in the result file (same protocol) and "
                        "train only the missing (variant, lr, seed); summarise the union")
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


# --------------------------------------------------------------------------------------- study
STUDY = dict(seq_len=64, d_model=64, n_layers=2, n_heads=4, d_ff=256, batch_size=16, steps=600,
             warmup_steps=30, min_lr_ratio=0.1, weight_decay=0.1, betas=(0.9, 0.95),
             grad_clip=1.0, lrs=(1e-3, 3e-3, 1e-2, 3e-2), seeds=(0, 1, 2), mixture=(0.5, 0.5),
             eval_every=100, eval_windows=64, norm_every_step_until=100, norm_every=10)
VARIANTS = {
    "softmax": dict(attention="softmax", qk_norm=True, attn_norm="hybrid"),
    "sigmoid": dict(attention="sigmoid", sigmoid_bias="auto", qk_norm=True, attn_norm="hybrid"),
    "sigmoid_no_bias": dict(attention="sigmoid", sigmoid_bias=0.0, qk_norm=True,
                            attn_norm="hybrid"),
    "sigmoid_no_stab": dict(attention="sigmoid", sigmoid_bias="auto", qk_norm=True,
                            attn_norm=None),
}


def _norm_recorder(model, cfg):
    """Forward hooks on every block; a Callback storing the layer-mean norms of each step."""
    from sciml_toolbox.nn.lm import Callback

    cur = {"attn_out": [], "branch": []}

    def pre_out(_mod, args):  # input of the output projection: O, heads concatenated
        cur["attn_out"].append(float(args[0].detach().pow(2).mean().sqrt()))

    def branch(_mod, _args, out):  # what is added to the residual stream
        cur["branch"].append(float(out.detach().pow(2).mean().sqrt()))

    for blk in model.blocks:
        blk.attn.out.register_forward_pre_hook(pre_out)
        blk.attn_norm.register_forward_hook(branch)

    class Recorder(Callback):
        def __init__(self):
            self.rec = {"step": [], "attn_out_rms": [], "branch_rms": []}

        def on_step_begin(self, state):
            cur["attn_out"].clear()
            cur["branch"].clear()

        def on_step_end(self, state):
            s = state.step + 1
            if s <= cfg["norm_every_step_until"] or s % cfg["norm_every"] == 0:
                n = len(model.blocks)  # the training forward's values (the first n)
                self.rec["step"].append(s)
                self.rec["attn_out_rms"].append(sum(cur["attn_out"][:n]) / n)
                self.rec["branch_rms"].append(sum(cur["branch"][:n]) / n)

    return Recorder()


def _study_run(variant, lr, seed, cfg):
    import torch

    from sciml_toolbox.nn.lm import DomainCorpus, TinyLM, TinyLMConfig, train

    corpus = DomainCorpus.from_stdlib(("code", "prose"), seq_len=cfg["seq_len"],
                                      random_state=seed)
    torch.manual_seed(seed)
    model = TinyLM(TinyLMConfig(d_model=cfg["d_model"], n_layers=cfg["n_layers"],
                                n_heads=cfg["n_heads"], d_ff=cfg["d_ff"],
                                max_seq_len=cfg["seq_len"], **VARIANTS[variant]))
    rec = _norm_recorder(model, cfg)
    t0 = time.perf_counter()
    row = {"variant": variant, "lr": lr, "seed": seed, "n_params": model.num_parameters(),
           "diverged_at_step": None}
    try:
        hist = train(model, corpus, list(cfg["mixture"]), cfg["steps"], lr=lr,
                     weight_decay=cfg["weight_decay"], betas=cfg["betas"],
                     warmup_steps=cfg["warmup_steps"], min_lr_ratio=cfg["min_lr_ratio"],
                     batch_size=cfg["batch_size"], grad_clip=cfg["grad_clip"],
                     eval_every=cfg["eval_every"], eval_windows=cfg["eval_windows"],
                     callbacks=[rec], seed=seed)
        final = {k: float(v) for k, v in hist.final_val_loss().items()}
        final["mean"] = sum(final.values()) / len(final)
        row.update(final_val_loss=final, eval_step=hist.eval_step, val_loss=hist.val_loss,
                   train_loss_every_10=hist.train_loss[9::10])
    except FloatingPointError as exc:
        row["diverged_at_step"] = int(str(exc).rsplit(" ", 1)[-1])
        row["final_val_loss"] = {"code": None, "prose": None, "mean": None}
    row["norms"] = rec.rec
    row["seconds"] = time.perf_counter() - t0
    return row


def _mean_std(values):
    vals = [math.inf if v is None else v for v in values]
    m = sum(vals) / len(vals)
    if not math.isfinite(m):
        return math.inf, math.nan
    return m, math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))


def study_summary(runs, cfg=STUDY):
    """Per variant and learning rate: seed mean and standard deviation of the final validation
    losses; the best learning rate per variant; the verdicts of the protocol."""
    table = {}
    for variant in VARIANTS:
        table[variant] = {}
        for lr in cfg["lrs"]:
            rs = [r for r in runs if r["variant"] == variant and r["lr"] == lr]
            table[variant][str(lr)] = {
                key: dict(zip(("mean", "std"), _mean_std([r["final_val_loss"][key] for r in rs]),
                              strict=True))
                for key in ("code", "prose", "mean")}
            table[variant][str(lr)]["n_diverged"] = sum(r["diverged_at_step"] is not None
                                                        for r in rs)
    best = {v: min(table[v], key=lambda lr, v=v: table[v][lr]["mean"]["mean"]) for v in table}
    # the amendment's stopping rule: a best rate at either end of the grid is not an optimum
    ends = {str(min(cfg["lrs"])), str(max(cfg["lrs"]))}
    interior = {v: best[v] not in ends for v in best}

    def compare(a, b):
        ma, sa = table[a][best[a]]["mean"]["mean"], table[a][best[a]]["mean"]["std"]
        mb, sb = table[b][best[b]]["mean"]["mean"], table[b][best[b]]["mean"]["std"]
        diff = ma - mb
        margin = 2 * math.sqrt((sa ** 2 + sb ** 2) / len(cfg["seeds"]))
        return {"diff": diff, "two_se": margin}

    verdict = {"sigmoid_vs_softmax": compare("sigmoid", "softmax"),
               "no_bias_vs_sigmoid": compare("sigmoid_no_bias", "sigmoid"),
               "no_stab_vs_sigmoid": compare("sigmoid_no_stab", "sigmoid")}
    v = verdict["sigmoid_vs_softmax"]
    v["matches"] = bool(abs(v["diff"]) <= v["two_se"])
    for key in ("no_bias_vs_sigmoid", "no_stab_vs_sigmoid"):
        verdict[key]["matters"] = bool(verdict[key]["diff"] > verdict[key]["two_se"])
    return {"table": table, "best_lr": best, "best_lr_interior": interior, "verdict": verdict}


def _run_key(run):
    return run["variant"], float(run["lr"]), int(run["seed"])


def _jsonable(obj):
    return json.loads(json.dumps(obj))


def _stored_runs(path, cfg):
    """Runs and sessions of an earlier result at ``path``, checked to follow the same protocol
    as ``cfg`` in everything but the learning-rate grid."""
    doc = json.loads(Path(path).read_text())
    res = doc["results"]
    proto = {k: v for k, v in res["protocol"].items() if k != "lrs"}
    want = _jsonable({**{k: v for k, v in cfg.items() if k != "lrs"}, "variants": VARIANTS})
    if proto != want:
        diff = sorted(k for k in set(proto) | set(want) if proto.get(k) != want.get(k))
        raise SystemExit(f"--reuse: {path} follows another protocol (differs in {diff})")
    sessions = res.get("sessions") or [{  # a result written before sessions were recorded
        "date": doc["date"], "commit": doc["machine"].get("commit"),
        "command": res["settings"]["command"], "threads": res["settings"]["threads"],
        "lrs": res["protocol"]["lrs"], "n_runs": len(res["runs"]),
        "wall_seconds": res["total_seconds"]}]
    return res["runs"], sessions


def _missing(runs, cfg):
    """The (variant, lr, seed) triples of ``cfg``'s grid that ``runs`` lack, in run order."""
    have = {_run_key(r) for r in runs}
    return [(v, lr, seed) for seed in cfg["seeds"] for lr in cfg["lrs"] for v in VARIANTS
            if (v, float(lr), seed) not in have]


def _ordered(runs, cfg):
    """``runs`` in the order a full run of ``cfg`` makes them (seed, lr, variant)."""
    rank = {key: i for i, key in enumerate(_missing([], cfg))}
    return sorted(runs, key=lambda r: rank[_run_key(r)])


def run_study(args):
    """Train every (variant, learning rate, seed) of :data:`STUDY` (with ``--reuse``, only those
    the result file lacks; ``--lrs`` sets the rates to train); write and print the result."""
    cfg = dict(STUDY)
    if args.lrs:
        cfg["lrs"] = tuple(float(x) for x in args.lrs.split(","))
    out = Path(args.out) if args.out else _common.RESULTS / f"{NAME}_study.json"
    stored, sessions = [], []
    if args.reuse and out.is_file():
        stored, sessions = _stored_runs(out, cfg)
        cfg["lrs"] = tuple(sorted({float(r["lr"]) for r in stored} | set(cfg["lrs"])))
    todo = _missing(stored, cfg)
    print(f"grid {cfg['lrs']}: {len(stored)} stored runs kept, {len(todo)} to train", flush=True)
    runs = list(stored)
    t0 = time.perf_counter()
    for variant, lr, seed in todo:
        r = _study_run(variant, lr, seed, cfg)
        runs.append(r)
        f = r["final_val_loss"]
        print(f"{variant:<16} lr {lr:<6g} seed {seed}: "
              + ("diverged at step " + str(r["diverged_at_step"])
                 if r["diverged_at_step"] is not None else
                 f"val code {f['code']:.4f} prose {f['prose']:.4f} mean {f['mean']:.4f}")
              + f" ({r['seconds']:.0f} s, total {time.perf_counter() - t0:.0f} s)",
              flush=True)
    wall = time.perf_counter() - t0
    command = ("nice -n 10 python benchmarks/bench_attention.py --study"
               + (" --reuse" if args.reuse else "") + (f" --lrs {args.lrs}" if args.lrs else ""))
    if todo:
        sessions.append({"date": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                         "commit": _common.machine_description().get("commit"),
                         "command": command, "threads": args.threads,
                         "lrs": sorted({lr for _, lr, _ in todo}), "n_runs": len(todo),
                         "wall_seconds": wall})
    runs = _ordered(runs, cfg)
    summary = study_summary(runs, cfg)
    # total_seconds: the wall time of all the runs in the file, the cost of one full --study
    payload = {"protocol": {**cfg, "variants": VARIANTS}, "summary": summary, "runs": runs,
               "total_seconds": sum(s["wall_seconds"] for s in sessions),
               "sessions": sessions, "settings": {"threads": args.threads, "command": command}}
    write_result(f"{NAME}_study", payload, mode="full", out=out)
    for variant, lr in summary["best_lr"].items():
        row = summary["table"][variant][lr]
        edge = "" if summary["best_lr_interior"][variant] else "  (edge of the grid)"
        print(f"best {variant:<16} lr {lr:<6}: " + "  ".join(
            f"{k} {row[k]['mean']:.4f} +- {row[k]['std']:.4f}" for k in ("code", "prose", "mean"))
            + edge)
    print(json.dumps(summary["verdict"], indent=1))
    return payload


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        _worker(*args.worker)
        return None
    if args.study:
        return run_study(args)
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
