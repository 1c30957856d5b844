"""SPELL on a memorising digits DDPM, and the cost of the nearest-neighbour search.

Three parts, all in one process:

1. quality: a small DDPM trained in-process on a subset of scikit-learn's digits (it memorises
   part of it); its training set is protected. Shield share, Vendi score and k-NN precision /
   recall (on pixels and on the hidden layer of a small MLP classifier fitted in-process), and
   sampling time: plain DDPM, SPELL, SPELL dynamic, and a dense particle-guidance-style RBF
   repulsion (the anchor).
2. overhead: sampling time with SPELL over 1e4 references of dimension 64 vs plain sampling
   (target <= 1.5x): median of interleaved repeats after a warm-up, same threads.
3. scaling: one SPELL call (batch 256) against 1e5 (quick) or 1e6 (``--full``) references of
   dimension 64: exact chunked search (torch, with and without cells) vs faiss (Flat, IVF;
   skipped when the optional ``faiss-cpu`` is not installed).

``python benchmarks/bench_spell.py [--full] [--device cuda] [--threads N] [--parts ...]``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
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


def _flags(p):
    """This script's own flags (``--full``, ``--out`` and ``--threads`` are common)."""
    p.add_argument("--device", default="cpu", help="torch device (cpu or cuda)")
    p.add_argument("--parts", nargs="+", default=["quality", "overhead", "scaling"],
                   choices=["quality", "overhead", "scaling"],
                   help="parts to run (overhead needs quality's model)")


def parse_args(argv=None):
    return _common.parse_args(__doc__.splitlines()[0], argv, extra=_flags)


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


def _median_times(fns, repeat, sync=None):
    """Median wall and CPU seconds of each callable, run interleaved ``repeat`` times.

    Every callable runs once first (warm-up), then the repeats alternate between them, so slow
    phases of a shared machine hit all of them alike.
    """
    for fn in fns:
        fn()
    wall = [[] for _ in fns]
    cpu = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            if sync is not None:
                sync()
            wall[i].append(time.perf_counter() - t0)
            cpu[i].append(time.process_time() - c0)
    return [float(np.median(w)) for w in wall], [float(np.median(c)) for c in cpu]


def overhead(args, model, schedule):
    """Sampling time with SPELL over 1e4 references vs plain sampling.

    One ``SparseRepellency`` object is built (its cells timed as ``build_s``) and reused, as a
    user sampling several batches would; plain and SPELL sampling then run the same number of
    steps with the same threads, interleaved, ``repeat`` times after one warm-up each, and the
    medians are compared (wall clock, and process CPU time, which a loaded machine disturbs
    less). ``ratio_with_build`` charges the whole build to a single batch.
    """
    dev = torch.device(args.device)
    real, _ = load_digits_images()
    g = torch.Generator().manual_seed(0)
    reps = (10_000 + len(real) - 1) // len(real)
    ref = (real.repeat(reps, 1, 1, 1)[:10_000] + 0.1 * torch.randn(10_000, 1, 8, 8, generator=g))
    ref = ref.to(dev)
    shape = (256, 1, 8, 8)
    n_steps = 50
    sync = torch.cuda.synchronize if dev.type == "cuda" else None

    def run(rep):
        return ddpm_sample(model, shape, schedule, n_steps=n_steps, repellency=rep,
                           generator=torch.Generator().manual_seed(0), device=dev)

    spells = {}
    build = {}
    for label, n_cells in (("cells", "auto"), ("no_cells", None)):
        spell = SparseRepellency(ref, radius=RADIUS, n_cells=n_cells, record_stats=False)
        t0 = time.perf_counter()
        spell.correction(ref[:1])  # moves the reference, squared norms, cells
        if sync is not None:
            sync()
        build[label] = time.perf_counter() - t0
        spells[label] = spell
    repeat = 9 if args.full else 7
    wall, cpu = _median_times([lambda: run(None), lambda: run(spells["cells"]),
                               lambda: run(spells["no_cells"])], repeat, sync=sync)
    out = {"n_reference": 10_000, "batch": shape[0], "n_steps": n_steps, "repeat": repeat,
           "n_cells": spells["cells"]._working_reference(ref[:1])[2].centres.shape[0],
           "plain_s": wall[0], "spell_s": wall[1], "ratio": wall[1] / wall[0],
           "build_s": build["cells"], "ratio_with_build": (wall[1] + build["cells"]) / wall[0],
           "spell_no_cells_s": wall[2], "ratio_no_cells": wall[2] / wall[0],
           "plain_cpu_s": cpu[0], "spell_cpu_s": cpu[1], "ratio_cpu": cpu[1] / cpu[0],
           "ratio_no_cells_cpu": cpu[2] / cpu[0]}
    print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()})
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
    qd = q.to(dev)
    d_exact = None
    for label, n_cells in (("exact-chunked", None), ("exact-chunked + cells", "auto")):
        exact = SparseRepellency(ref.to(dev), radius=radius, n_cells=n_cells,
                                 record_stats=False)
        t0 = time.perf_counter()
        exact.correction(qd)  # moves the reference, squared norms (and cells)
        if sync is not None:
            sync()
        build = time.perf_counter() - t0
        t = timeit(lambda exact=exact: exact.correction(qd), repeat=3, sync=sync)
        d = exact.correction(qd).cpu()
        d_exact = d if d_exact is None else d_exact
        rows.append({"index": f"{label} ({dev.type})", "n_reference": n_ref, "step_s": t,
                     "build_s": build, "max_abs_diff_vs_exact": float((d - d_exact).abs().max())})
        del exact
    try:
        import faiss  # noqa: F401
    except ImportError:
        print("faiss not installed (optional extra sciml-toolbox[faiss]): skipping the faiss rows")
        faiss = None
    nlist = 1024 if args.full else 256
    for factory, nprobe in (("Flat", 1), (f"IVF{nlist},Flat", 16)):
        if faiss is None:
            break
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
        del fa
    base = rows[0]["step_s"]
    for r in rows:
        r["ratio_vs_exact"] = r["step_s"] / base
        print(r)
    return rows


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(0)
    payload = {"device": args.device, "torch_threads": torch.get_num_threads(),
               "parts": args.parts}
    if "quality" in args.parts or "overhead" in args.parts:
        rows = []
        info = quality(args, rows)
        model, schedule = info.pop("model"), info.pop("schedule")
        payload["quality"] = {"settings": info, "rows": rows}
        if "overhead" in args.parts:
            payload["overhead_1e4"] = overhead(args, model, schedule)
    if "scaling" in args.parts:
        payload["scaling"] = scaling(args)
    name = "spell" if args.device == "cpu" else f"spell_{args.device}"
    write_result(name, payload, mode="full" if args.full else "quick", out=args.out)


if __name__ == "__main__":
    main()
