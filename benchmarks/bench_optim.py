"""AdEMAMix step time and optimizer-state memory against torch.optim.AdamW.

CPU (default): time per optimizer step of ``AdEMAMix(foreach=True)`` (and the single-tensor path,
and ``SimplifiedAdEMAMix``) against ``torch.optim.AdamW(foreach=True)`` on the same parameters and
gradients, at 10M and 100M parameters laid out like a GPT block stack (matrices d x 3d, d x d,
d x 4d, 4d x d and two norm vectors per layer). Target: foreach AdEMAMix <= 1.35x AdamW foreach.

CUDA (``--device cuda``): the fused Triton kernel against ``AdamW(fused=True)`` (target <= 1.3x,
the ratio of bytes moved: 36 against 28 per fp32 parameter), with achieved bandwidth, and the
fused result checked against the foreach path on the same inputs.

Memory: optimizer-state bytes per parameter and the number of parameter-sized state buffers.

Run: ``python benchmarks/bench_optim.py [--full]``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
from _common import write_result  # noqa: E402

NAME = "optim"


def _flags(p):
    """This script's own flags (``--full``, ``--out`` and ``--threads`` are common)."""
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--sizes", default="10e6,100e6", help="comma-separated parameter counts")
    p.add_argument("--study", action="store_true",
                   help="the reproduction study on a small LM instead of the step timings")


def parse_args(argv=None):
    return _common.parse_args(__doc__.splitlines()[0], argv, extra=_flags)


def gpt_like_shapes(n_params, n_layers=12):
    """Tensor shapes of a GPT-like stack with about ``n_params`` parameters."""
    # per layer: 3d^2 + d^2 + 4d^2 + 4d^2 = 12 d^2 (+ 2d for the norms)
    d = max(8, int(round((n_params / (12 * n_layers)) ** 0.5 / 8)) * 8)
    shapes = []
    for _ in range(n_layers):
        shapes += [(d, 3 * d), (d, d), (d, 4 * d), (4 * d, d), (d,), (d,)]
    return shapes


def make_problem(n_params, device, dtype):
    import torch

    gen = torch.Generator(device="cpu").manual_seed(0)
    params, grads = [], []
    for s in gpt_like_shapes(n_params):
        params.append(torch.nn.Parameter((0.02 * torch.randn(s, generator=gen)).to(device, dtype)))
        grads.append((1e-3 * torch.randn(s, generator=gen)).to(device, dtype))
    return params, grads


def optimizers(params, device):
    import torch

    from sciml_toolbox.nn.optim import AdEMAMix, SimplifiedAdEMAMix

    kw = dict(lr=1e-4, weight_decay=0.1)
    ade = dict(T_alpha=10_000, T_beta3=10_000, alpha=8.0)
    if device == "cpu":
        return {
            "AdamW(foreach)": lambda: torch.optim.AdamW(params, foreach=True, **kw),
            "AdEMAMix(foreach)": lambda: AdEMAMix(params, foreach=True, **ade, **kw),
            "AdEMAMix(foreach, beta1=0)": lambda: AdEMAMix(
                params, foreach=True, betas=(0.0, 0.999, 0.9999), **ade, **kw),
            "SimplifiedAdEMAMix(foreach)": lambda: SimplifiedAdEMAMix(
                params, foreach=True, alpha=2.0, T_beta1=10_000, **kw),
            "AdEMAMix(single-tensor)": lambda: AdEMAMix(params, foreach=False, **ade, **kw),
        }
    return {
        "AdamW(fused)": lambda: torch.optim.AdamW(params, fused=True, **kw),
        "AdamW(foreach)": lambda: torch.optim.AdamW(params, foreach=True, **kw),
        "AdEMAMix(fused)": lambda: AdEMAMix(params, fused=True, **ade, **kw),
        "AdEMAMix(foreach)": lambda: AdEMAMix(params, foreach=True, **ade, **kw),
        "AdEMAMix(fused, beta1=0)": lambda: AdEMAMix(
            params, fused=True, betas=(0.0, 0.999, 0.9999), **ade, **kw),
        "SimplifiedAdEMAMix(fused)": lambda: SimplifiedAdEMAMix(
            params, fused=True, alpha=2.0, T_beta1=10_000, **kw),
    }


def state_memory(opt, params):
    import torch

    n = sum(p.numel() for p in params)
    nbytes, nbuf = 0, 0
    for p in params:
        for v in opt.state[p].values():
            if isinstance(v, torch.Tensor):
                nbytes += v.numel() * v.element_size()
                nbuf += v.shape == p.shape
    return nbytes / n, nbuf / len(params)


def time_interleaved(opts, params, grads, *, repeat, device):
    """Seconds per step of each optimizer, measured in interleaved rounds.

    Each round times one step of every optimizer in turn, so that a machine shared with other
    jobs slows all of them alike; returns per optimizer the median time and the median over
    rounds of its ratio to the first optimizer (the anchor).
    """
    import torch

    for p, g in zip(params, grads, strict=True):
        p.grad = g
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for opt in opts.values():  # warm-up: state allocation, kernel compilation
        for _ in range(2):
            opt.step()
    sync()
    times = {name: [] for name in opts}
    for _ in range(repeat):
        for name, opt in opts.items():
            if device == "cuda":
                start = torch.cuda.Event(enable_timing=True)
                end = torch.cuda.Event(enable_timing=True)
                start.record()
                opt.step()
                end.record()
                end.synchronize()
                times[name].append(start.elapsed_time(end) / 1e3)
            else:
                t0 = time.perf_counter()
                opt.step()
                times[name].append(time.perf_counter() - t0)
    anchor = next(iter(opts))
    out = {}
    for name, ts in times.items():
        ratios = [t / a for t, a in zip(ts, times[anchor], strict=True)]
        out[name] = dict(seconds=statistics.median(ts), best=min(ts), worst=max(ts),
                         ratio_to_anchor=statistics.median(ratios))
    return out


def _bytes_per_param(name):
    """Fewest bytes an fp32 step must move per parameter (each array read / written once)."""
    # p r+w, g r, and r+w per moment buffer: 4 * (3 + 2 * n_buffers)
    n_buffers = 3 if name.startswith("AdEMAMix") and "beta1=0" not in name else 2
    return 4 * (3 + 2 * n_buffers)


def check_fused_against_foreach(n_params):
    """Relative error of the fused (CUDA) step against the foreach path after 5 steps."""
    import torch

    from sciml_toolbox.nn.optim import AdEMAMix

    out = {}
    for name, kw in (("fused", dict(fused=True)), ("foreach", dict(foreach=True))):
        params, grads = make_problem(n_params, "cuda", torch.float32)
        opt = AdEMAMix(params, lr=1e-3, T_alpha=10, T_beta3=10, weight_decay=0.1, **kw)
        gen = torch.Generator(device="cuda").manual_seed(1)
        for _ in range(5):
            for p in params:
                p.grad = torch.randn(p.shape, device="cuda", generator=gen)
            opt.step()
        out[name] = torch.cat([p.detach().flatten() for p in params])
    ref = out["foreach"].double()
    return float((out["fused"].double() - ref).norm() / ref.norm())


def run_study(args):
    """AdEMAMix vs AdamW on TinyLM at equal steps: loss curves, steps to AdamW's final loss,
    forgetting of a batch seen once. Quick: about 5 CPU minutes."""

    from sciml_toolbox.nn.lm import compare_optimizers

    if args.full:
        cfg = dict(n_steps=3000, size="1M", seq_len=128, batch_size=32, eval_every=50,
                   n_val_batches=8)
    else:
        cfg = dict(n_steps=800, size="0.1M", seq_len=64, batch_size=16, eval_every=20,
                   n_val_batches=4)
    cfg.update(lr=3e-3, alpha=5.0, beta3=0.999, weight_decay=0.1)
    res = compare_optimizers(**cfg, verbose=True)
    summary = {}
    for name in ("AdamW", "AdEMAMix"):
        r = res[name]
        summary[name] = {k: r[k] for k in ("final_val_loss", "steps_to_adamw_final",
                                           "gap_after_probe", "gap_final", "gap_late",
                                           "seconds")}
    payload = dict(config=cfg, summary=summary, curves=res)
    write_result(f"{NAME}_study", payload, mode="full" if args.full else "quick", out=args.out)
    print(f"\n{'optimizer':<10} {'final val':>9} {'steps to AdamW final':>21} "
          f"{'gap after probe':>15} {'gap late':>9} {'gap final':>9}")
    for name, r in summary.items():
        print(f"{name:<10} {r['final_val_loss']:>9.4f} {str(r['steps_to_adamw_final']):>21} "
              f"{r['gap_after_probe']:>15.4f} {r['gap_late']:>9.4f} {r['gap_final']:>9.4f}")
    return payload


def main(argv=None):
    args = parse_args(argv)
    import torch

    if args.study:
        return run_study(args)

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to do (GPU numbers pending)")
        return None
    device = args.device
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    repeat = 20 if args.full else (7 if device == "cpu" else 20)
    rows = []
    for n in sizes:
        params, grads = make_problem(n, device, torch.float32)
        n_actual = sum(p.numel() for p in params)
        makers = optimizers(params, device)
        if not args.full and n > 20e6:
            makers = {k: v for k, v in makers.items() if "single" not in k}
        opts = {name: make() for name, make in makers.items()}
        results = time_interleaved(opts, params, grads, repeat=repeat, device=device)
        anchor = next(iter(opts))
        for name, r in results.items():
            mem, nbuf = state_memory(opts[name], params)
            r.update(ns_per_param=1e9 * r["seconds"] / n_actual, state_bytes_per_param=mem,
                     state_buffers_per_param=nbuf)
            if device == "cuda":
                r["GB_per_s"] = _bytes_per_param(name) * n_actual / r["seconds"] / 1e9
        del opts
        rows.append(dict(n_params=n_actual, n_tensors=len(params), anchor=anchor,
                         results=results))
        del params, grads
    payload = dict(device=device, dtype="float32", rows=rows, repeat=repeat,
                   threads=torch.get_num_threads())
    if device == "cuda":
        payload["fused_vs_foreach_rel_err"] = check_fused_against_foreach(min(sizes))
    write_result(NAME, payload, mode="full" if args.full else "quick", out=args.out)

    print(f"\n{'params':>10} {'optimizer':<30} {'ms/step':>9} {'ns/param':>9} "
          f"{'x anchor':>8} {'state B/p':>9} {'buffers':>7}")
    for row in rows:
        for name, r in row["results"].items():
            print(f"{row['n_params']:>10.3g} {name:<30} {1e3 * r['seconds']:>9.2f} "
                  f"{r['ns_per_param']:>9.3f} {r['ratio_to_anchor']:>8.3f} "
                  f"{r['state_bytes_per_param']:>9.1f} {r['state_buffers_per_param']:>7.1f}")
    if device == "cuda":
        print("fused vs foreach relative error:", payload["fused_vs_foreach_rel_err"])
    return payload


if __name__ == "__main__":
    main()
