"""Particle steps per second of the attention particle system: blocked vs naive dense.

One RK4 step (four softmax-attention velocity evaluations) of ``simulate_particles`` for
n tokens in d = 16, with NumPy and torch (CPU, and CUDA with ``--device cuda``), against the
anchor a user would write: the dense n x n softmax matrix, computed in the same process on the
same data. Peak memory is measured with ``tracemalloc`` for NumPy (which reports its
allocations to it) and with ``torch.cuda.max_memory_allocated`` on CUDA; torch-CPU memory is
not traced and is given as the size of the dense score matrix instead. torch-CPU runs with one
intra-op thread for both paths (see ``bench_torch``).

A second table compares :func:`gaussian_ode` on the closed form
Sigma(T) = (Sigma_0^-1 - 2TA)^-1 with the authors' explicit Euler + PSD projection
(``--reference DIR`` pointing at a local copy of their ``utils.py``; it is imported, never
copied).

Quick mode: n in {1e3, 1e4} (dense included). ``--full``: n in {1e3, 1e4, 1e5}; the dense
anchor is skipped at n = 1e5 where its 80 GB score matrix does not fit this machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
from _common import peak_host_memory, timeit, write_result  # noqa: E402

from sciml_toolbox.dynamics import gaussian_ode, simulate_particles  # noqa: E402

D = 16


def _flags(p):
    """This script's own flags (``--full``, ``--out`` and ``--threads`` are common)."""
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                   help="also time torch on this device (cuda when available)")
    p.add_argument("--reference", default=None,
                   help="folder holding utils.py of vcastin/2025-transformers-PDEs: compare "
                        "gaussian_ode with its explicit Euler + PSD projection")


def _args(argv=None):
    return _common.parse_args(__doc__.splitlines()[0], argv, extra=_flags)


def _problem(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, D))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Q = rng.standard_normal((D, D)) / np.sqrt(D)
    K = rng.standard_normal((D, D)) / np.sqrt(D)
    V = np.eye(D) + 0.1 * rng.standard_normal((D, D))
    return X, Q, K, V


def _dense_velocity_np(X, Q, K, V):
    S = (X @ Q.T) @ (X @ K.T).T
    S -= S.max(axis=1, keepdims=True)
    np.exp(S, out=S)
    S /= S.sum(axis=1, keepdims=True)
    return S @ (X @ V.T)


def _rk4_np(vel, X, h):
    k1 = vel(X)
    k2 = vel(X + 0.5 * h * k1)
    k3 = vel(X + 0.5 * h * k2)
    k4 = vel(X + h * k3)
    return X + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)


def _torch_dense_velocity(torch):
    def vel(X, Q, K, V):
        S = (X @ Q.T) @ (X @ K.T).T
        return torch.softmax(S, dim=1) @ (X @ V.T)

    return vel


def bench_numpy(n, h, repeat, with_dense):
    X, Q, K, V = _problem(n)
    rows = []
    blocked = lambda: simulate_particles(X, Q, K, V, [0.0, h], dt=h)  # noqa: E731
    if repeat > 1:
        t_b = timeit(blocked, repeat=repeat)
        _, mem_b = peak_host_memory(blocked)
    else:  # large n: one traced run gives both numbers
        t_b, mem_b = peak_host_memory(lambda: timeit(blocked, repeat=1))
    row = {"backend": "numpy", "device": "cpu", "n": n, "d": D,
           "blocked_s_per_step": t_b, "blocked_steps_per_s": 1.0 / t_b,
           "blocked_peak_mb": mem_b / 2**20}
    if with_dense:
        dense = lambda: _rk4_np(lambda Y: _dense_velocity_np(Y, Q, K, V), X, h)  # noqa: E731
        ref = dense()
        got = blocked()[-1]
        t_d = timeit(dense, repeat=repeat)
        _, mem_d = peak_host_memory(dense)
        row.update({"dense_s_per_step": t_d, "dense_steps_per_s": 1.0 / t_d,
                    "dense_peak_mb": mem_d / 2**20,
                    "speedup_blocked_vs_dense": t_d / t_b,
                    "memory_ratio_dense_over_blocked": mem_d / mem_b,
                    "max_abs_diff": float(np.max(np.abs(got - ref)))})
    else:
        row["dense_skipped"] = f"dense scores need {n * n * 8 / 2**30:.0f} GiB"
    rows.append(row)
    return rows


def bench_torch(n, h, repeat, with_dense, device):
    try:
        import torch
    except ImportError:
        return []
    if device == "cuda" and not torch.cuda.is_available():
        return []
    # threads: --threads (default 1, set by _common.parse_args) for both paths; on a shared
    # 2-core machine torch's thread barriers around every op dominate (the blocked path
    # measured 4x slower with 2 threads)
    X, Q, K, V = (torch.tensor(a, device=device) for a in _problem(n))
    sync = torch.cuda.synchronize if device == "cuda" else None
    blocked = lambda: simulate_particles(X, Q, K, V, [0.0, h], dt=h)  # noqa: E731
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t_b = timeit(blocked, repeat=repeat, sync=sync)
    row = {"backend": "torch", "device": device, "n": n, "d": D,
           "blocked_s_per_step": t_b, "blocked_steps_per_s": 1.0 / t_b}
    if device == "cuda":
        row["blocked_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    if with_dense:
        dvel = _torch_dense_velocity(torch)

        def dense():
            Y = X
            k1 = dvel(Y, Q, K, V)
            k2 = dvel(Y + 0.5 * h * k1, Q, K, V)
            k3 = dvel(Y + 0.5 * h * k2, Q, K, V)
            k4 = dvel(Y + h * k3, Q, K, V)
            return Y + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)

        ref = dense()
        got = blocked()[-1]
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t_d = timeit(dense, repeat=repeat, sync=sync)
        row.update({"dense_s_per_step": t_d, "dense_steps_per_s": 1.0 / t_d,
                    "speedup_blocked_vs_dense": t_d / t_b,
                    "max_abs_diff": float((got - ref).abs().max())})
        if device == "cuda":
            row["dense_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        else:
            row["dense_scores_mb"] = n * n * 8 / 2**20
    return [row]


def bench_gaussian(reference_dir):
    """gaussian_ode vs the authors' Euler + projection scheme, against the closed form."""
    rng = np.random.default_rng(0)
    d, T = 4, 20.0
    Q = rng.standard_normal((d // 2, d))
    K, V = -Q, np.eye(d)
    G = rng.standard_normal((d, d))
    S0 = G @ G.T / d + 0.1 * np.eye(d)
    A = K.T @ Q
    exact = np.linalg.inv(np.linalg.inv(S0) - 2 * T * A)
    rows = []
    res = {}
    t_ours = timeit(lambda: res.setdefault("r", gaussian_ode(np.zeros(d), S0, Q, K, V,
                                                             [0.0, T])), repeat=3)
    cov = res["r"].covs[-1]
    rows.append({"method": "gaussian_ode (Dormand-Prince on L, rtol 1e-9)", "seconds": t_ours,
                 "rel_error": float(np.linalg.norm(cov - exact) / np.linalg.norm(exact)),
                 "steps": res["r"].n_steps})
    if reference_dir is None:
        return rows
    sys.path.insert(0, str(Path(reference_dir).resolve()))
    import utils as ref  # the authors' module, kept outside the repository

    for step in (0.01, 0.001):
        n_iter = int(round(T / step))
        out = {}
        # their A is K^T Q / sqrt(d): pass Q * sqrt(d) to integrate the same ODE
        t_ref = timeit(lambda step=step, n_iter=n_iter, out=out: out.setdefault(step, ref.evolution(
            S0.copy(), Q * np.sqrt(d), K, V, d=d, H=1, rhs=ref.rhs_trad, max_iter=n_iter + 1,
            step_size=step, tol_low=0.0, tol_high=1e12, print_status=False)), repeat=1)
        cov_ref = out[step][0][-1]
        rows.append({"method": f"reference Euler + PSD projection, step {step}",
                     "seconds": t_ref,
                     "rel_error": float(np.linalg.norm(cov_ref - exact)
                                        / np.linalg.norm(exact)),
                     "steps": n_iter})
    for r in rows[1:]:
        r["time_ratio_vs_ours"] = r["seconds"] / rows[0]["seconds"]
    return rows


def main(argv=None):
    args = _args(argv)
    sizes = [1_000, 10_000, 100_000] if args.full else [1_000, 10_000]
    h = 0.05
    rows = []
    for n in sizes:
        repeat = 3 if n <= 10_000 else 1
        with_dense = n <= 10_000
        for row in bench_numpy(n, h, repeat, with_dense):
            print(row)
            rows.append(row)
        devices = ["cpu"] + (["cuda"] if args.device == "cuda" else [])
        for dev in devices:
            for row in bench_torch(n, h, repeat, with_dense, dev):
                print(row)
                rows.append(row)
    gauss = bench_gaussian(args.reference)
    for row in gauss:
        print(row)
    write_result("dynamics", {"rows": rows, "step": "one RK4 step (4 velocity evaluations)",
                              "anchor": "naive dense softmax (n x n matrix)",
                              "gaussian_ode": gauss,
                              "gaussian_setting": "d=4, Q 2x4 Gaussian, K=-Q, V=I, T=20, "
                                                  "error vs (S0^-1 - 2TA)^-1"},
                 mode="full" if args.full else "quick", out=args.out)


if __name__ == "__main__":
    main()
