"""SPELL on a memorising digits DDPM, and the cost of the nearest-neighbour search.

Three parts, all in one process:

1. quality: a small DDPM trained in-process on a subset of scikit-learn's digits (it memorises
   part of it); its training set is protected. Shield share, Vendi score and k-NN precision /
   recall (on pixels and on the hidden layer of a small MLP classifier fitted in-process), and
   sampling time: plain DDPM, SPELL, SPELL dynamic, and a dense particle-guidance-style RBF
   repulsion (the anchor).
2. overhead: sampling time with SPELL over 1e4 references of dimension 64 vs plain sampling
   (target <= 1.5x).
3. scaling: one SPELL call (batch 256) against 1e5 (quick) or 1e6 (``--full``) references of
   dimension 64: exact chunked search (torch) vs faiss (Flat, IVF).

``python benchmarks/bench_spell.py [--full] [--device cuda]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import timeit, write_result  # noqa: E402

from sciml_toolbox.nn.diffusion import (  # noqa: E402
    DenseRepulsion,
    SparseRepellency,
    ddpm_sample,
    knn_precision_recall,
    load_digits_images,
    shield_share,
    train_ddpm,
    vendi_score,
)

N_IMAGES = 64
RADIUS = 1.5


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--full", action="store_true", help="documented sizes (slow)")
    p.add_argument("--out", default=None, help="result JSON path")
    p.add_argument("--device", default="cpu", help="torch device (cpu or cuda)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    return p.parse_args(argv)


def mlp_features():
    """A tiny in-process feature extractor: the hidden layer of an MLP digit classifier."""
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    data = load_digits()
    clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, random_state=0)
    clf.fit(data.images.reshape(len(data.images), -1) / 8.0 - 1.0, data.target)
    w, b = clf.coefs_[0], clf.intercepts_[0]

    def feats(x):
        x = x.reshape(len(x), -1).cpu().double().numpy()
        return np.maximum(x @ w + b, 0.0)

    return feats, clf


def quality(args, rows):
    dev = torch.device(args.device)
    n_iter = 4000 if args.full else 2500
    n_samples = 1024 if args.full else 256
    t0 = time.perf_counter()
    ddpm = train_ddpm(n_images=N_IMAGES, n_iter=n_iter, random_state=0, device=dev)
    train_s = time.perf_counter() - t0
    real, _ = load_digits_images()
    feats, _ = mlp_features()
    f_real = feats(real)
    shape = (n_samples, 1, 8, 8)
    variants = {
        "ddpm": lambda: None,
        "spell": lambda: SparseRepellency(ddpm.images, radius=RADIUS),
        "spell_dynamic": lambda: SparseRepellency(ddpm.images, radius=RADIUS, dynamic=True),
        "dense_repulsion": lambda: DenseRepulsion(strength=0.05),
    }
    base_time = None
    for name, make in variants.items():
        rep = make()
        t0 = time.perf_counter()
        x = ddpm_sample(ddpm.model, shape, ddpm.schedule, n_steps=100, repellency=rep,
                        generator=torch.Generator().manual_seed(0), device=dev)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        base_time = dt if name == "ddpm" else base_time
        x = x.cpu()
        p_pix, r_pix = knn_precision_recall(real, x, k=3)
        p_f, r_f = knn_precision_recall(f_real, feats(x), k=3)
        row = {
            "variant": name,
            "shield_share": shield_share(x, ddpm.images.cpu(), RADIUS),
            "vendi_pixels": vendi_score(x),
            "vendi_features": vendi_score(feats(x)),
            "precision_pixels": p_pix,
            "recall_pixels": r_pix,
            "precision_features": p_f,
            "recall_features": r_f,
            "sample_s": dt,
            "time_ratio_vs_ddpm": dt / base_time,
        }
        if rep is not None:
            act = rep.activity()
            row["mean_active_fraction"] = float(act["active_fraction"].mean())
        rows.append(row)
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()})
    plain, spell = rows[0], rows[1]
    return {
        "n_images": N_IMAGES,
        "n_iter": n_iter,
        "train_s": train_s,
        "radius": RADIUS,
        "n_samples": n_samples,
        "shield_reduction": plain["shield_share"] / max(spell["shield_share"], 1.0 / n_samples),
        "model": ddpm.model,
        "schedule": ddpm.schedule,
    }


def overhead(args, model, schedule):
    """Sampling time with SPELL over 1e4 references vs plain sampling."""
    dev = torch.device(args.device)
    real, _ = load_digits_images()
    g = torch.Generator().manual_seed(0)
    reps = (10_000 + len(real) - 1) // len(real)
    ref = (real.repeat(reps, 1, 1, 1)[:10_000] + 0.1 * torch.randn(10_000, 1, 8, 8, generator=g))
    ref = ref.to(dev)
    shape = (256, 1, 8, 8)
    sync = torch.cuda.synchronize if dev.type == "cuda" else None

    def run(rep):
        return ddpm_sample(model, shape, schedule, n_steps=50, repellency=rep,
                           generator=torch.Generator().manual_seed(0), device=dev)

    t_plain = timeit(lambda: run(None), repeat=2, sync=sync)
    t_spell = timeit(lambda: run(SparseRepellency(ref, radius=RADIUS, record_stats=False)),
                     repeat=2, sync=sync)
    out = {"n_reference": 10_000, "batch": 256, "n_steps": 50, "plain_s": t_plain,
           "spell_s": t_spell, "ratio": t_spell / t_plain}
    print(out)
    return out


def scaling(args):
    dev = torch.device(args.device)
    n_ref = 1_000_000 if args.full else 100_000
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(n_ref, 64, generator=g)
    q = ref[:256] + 0.3 * torch.randn(256, 64, generator=g)
    radius = 4.0  # each query is inside its own ball, and a few others
    rows = []
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    exact = SparseRepellency(ref.to(dev), radius=radius, chunk_size=65536, record_stats=False)
    qd = q.to(dev)
    exact.correction(qd)  # warm-up: moves the reference, computes norms
    t = timeit(lambda: exact.correction(qd), repeat=3, sync=sync)
    d_exact = exact.correction(qd).cpu()
    rows.append({"index": f"exact-chunked ({dev.type})", "n_reference": n_ref, "step_s": t,
                 "max_abs_diff_vs_exact": 0.0})
    try:
        import faiss  # noqa: F401
    except ImportError:
        print("faiss not installed: skipping the faiss rows")
        return rows
    nlist = 1024 if args.full else 256
    for factory, nprobe in (("Flat", 1), (f"IVF{nlist},Flat", 16)):
        fa = SparseRepellency(ref, radius=radius, index="faiss", faiss_factory=factory,
                              faiss_nprobe=nprobe, record_stats=False)
        t0 = time.perf_counter()
        fa.correction(q)  # builds (and trains) the index
        build = time.perf_counter() - t0
        t = timeit(lambda fa=fa: fa.correction(q), repeat=3)
        d = fa.correction(q)
        missed = float(((d - d_exact).reshape(256, -1).norm(dim=1) > 1e-3).float().mean())
        rows.append({"index": f"faiss {factory}", "n_reference": n_ref, "step_s": t,
                     "build_s": build, "max_abs_diff_vs_exact": float((d - d_exact).abs().max()),
                     "share_queries_differing": missed})
    base = rows[0]["step_s"]
    for r in rows:
        r["ratio_vs_exact"] = r["step_s"] / base
        print(r)
    return rows


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    info = quality(args, rows)
    model, schedule = info.pop("model"), info.pop("schedule")
    over = overhead(args, model, schedule)
    scale = scaling(args)
    payload = {"device": args.device, "torch_threads": torch.get_num_threads(),
               "quality": {"settings": info, "rows": rows},
               "overhead_1e4": over, "scaling": scale}
    name = "spell" if args.device == "cpu" else f"spell_{args.device}"
    write_result(name, payload, mode="full" if args.full else "quick", out=args.out)


if __name__ == "__main__":
    main()
