"""MVICA / MVICAD / MVICAD2 here against the authors' MVICAD2 code, on the paper's protocol.

Each fit runs in a fresh subprocess (so that peak resident memory, ``ru_maxrss``, is measured the
same way for both codes); the data come from :func:`sciml_toolbox.datasets.make_multiview_sources`
and are handed to both sides through a temporary ``.npz`` file. Wall time is measured inside the
subprocess around the fit only (imports and data loading excluded; the authors' JAX compilation
is part of their fit and counted); with ``--independent`` the process CPU time of the fit
(``cpu_s``, all threads) is recorded too, which shows how much of the wall time was spent
waiting for a shared CPU.

The authors' code (``mvica_ds`` from github.com/AmbroiseHeurtebise/internship_m2, no licence:
read and run only) is never copied into this repository: point ``--ref-dir`` at a local checkout
holding ``multiviewica_delay/`` and ``--ref-python`` at an interpreter with jax, python-picard,
multiviewica and fastsrm (default: the folder named by the ``SCIML_MVICAD_REF`` environment
variable, and its ``venv``; without it the authors' code is skipped). Their settings are
those of their noise sweep (W_scale 20, onset 200, 10 x 10 grid, smoothing and envelope terms,
``noise_model=1``). Without the reference copy only this package is measured.

Independent data (``--independent SETTING``, issue 19): the data come instead from
``benchmarks/_independent_meg.py``, written from the model alone (Gabor and sech-envelope
bursts, EVERY subject warped with a dilation log-uniform in ``[1/max_dilation, max_dilation]``
and a delay uniform within ``max_shift`` of the epoch, no reference subject, mixing condition
number <= 4, source noise 0.01). MVICAD2 is run through the public API with its defaults, as a
new user would: ``MVICAD2(n_components=k, max_dilation, max_shift, onset, n_concat=5,
random_state=seed)``; the authors' ``mvica_ds`` with their noise-sweep settings and the
setting's ranges. Settings: ``paper`` (m=5, k=3, 5 x 600 samples, onset 200, dilation 1.15,
delay 5%), ``paper10`` (m=10, k=5, same warps), ``hard`` (m=20, k=10, 5 x 1000 samples,
onset 300, dilation 1.25, delay 10%), ``scaling`` (the hard warps at k=10 for the subject
counts of ``--subjects``). Errors (see ``_independent_meg.py``): Amari distance of the
sensor-space unmixing ``W_i`` against the true mixing (mean over subjects); sources matched
to the truth by the Hungarian assignment on the subject-averaged normalised ``|W_i A_i|``;
dilation and delay errors (delays in fractions of the epoch) are mean absolute errors after
removing, per source, the common warp that best aligns the estimates to the truth (warps are
identifiable only up to one common warp per source, and no subject is unwarped in the truth).

Usage::

    python benchmarks/bench_multiview.py [--full]
        [--device cpu|cuda] [--ref-dir DIR] [--ref-python PY] [--smoothing L] [--skip-ref]
    python benchmarks/bench_multiview.py --independent paper|paper10|hard|scaling
        [--seeds 0,1,2] [--subjects 10,20,50,100,200] [--skip-ref] [--ref-timeout S]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
from _common import write_result  # noqa: E402

from sciml_toolbox.datasets import make_multiview_sources  # noqa: E402
from sciml_toolbox.multiview import amari_distance, match_sources, warp_errors  # noqa: E402

MAX_DILATION, MAX_SHIFT, ONSET, N_CONCAT, N_TIMES, NOISE = 1.15, 0.05, 200, 5, 600, 0.01

OURS = r'''
import json, resource, sys, time
import numpy as np
from sciml_toolbox.multiview import MVICA, MVICAD, MVICAD2
path, method, seed, device = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
smoothing = int(sys.argv[5])
X = np.load(path)["X"]
if device != "numpy":
    import torch
    X = torch.asarray(X, device=device)
kw = dict(noise=0.1, random_state=seed)
warp = dict(n_concat=5, onset=200, max_shift=0.05)
est = {"MVICAD2": lambda: MVICAD2(max_dilation=1.15, smoothing=smoothing, **warp, **kw),
       "MVICAD": lambda: MVICAD(**warp, **kw),
       "MVICA": lambda: MVICA(noise=1.0, random_state=seed),
       "GroupICA": lambda: MVICA(init="groupica", max_iter=0, random_state=seed)}[method]()
if device.startswith("cuda"):
    est.fit(X[:, :, :600 * 5]); torch.cuda.synchronize()   # warm-up (CUDA context)
t0 = time.perf_counter()
est.fit(X)
if device.startswith("cuda"):
    torch.cuda.synchronize()
wall = time.perf_counter() - t0
np_ = lambda a: a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)
out = dict(time=wall, n_iter=int(est.n_iter_), maxrss_mb=resource.getrusage(
    resource.RUSAGE_SELF).ru_maxrss / 1024, W=np_(est.components_).tolist(),
    dilations=np_(est.dilations_).tolist(), shifts=np_(est.shifts_).tolist())
print("RESULT" + json.dumps(out))
'''

AUTHORS = r'''
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
path, method, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
X = np.load(path)["X"]
m, p, total = X.shape
n = total // 5
t0 = time.perf_counter()
if method == "MVICAD2":
    from multiviewica_delay import mvica_ds
    W, rho, tau, _ = mvica_ds(
        X, n_concat=5, max_dilation=1.15, max_shift=0.05, W_scale=20,
        dilation_scale_per_source=True, verbose=False, random_state=seed, noise_model=1,
        number_of_filters_envelop=1, filter_length_envelop=5,
        number_of_filters_squarenorm_f=1, filter_length_squarenorm_f=2,
        use_envelop_term=True, penalization_scale=1, return_all_iterations=False,
        nb_points_grid_init=10, onset=200, max_iter=3000)
    W, rho, tau = np.asarray(W), np.asarray(rho), np.asarray(tau)
    dil, shi = 1.0 / rho, -tau / rho
elif method == "MVICAD":
    from multiviewica_delay import mvica_s
    _, W, _, _, _, _ = mvica_s(X, shared_delays=False, max_delay=int(0.05 * n),
                               random_state=seed, max_iter=3000, continuous_delays=False)
    dil, shi = np.ones((m, p)), np.zeros((m, p))
else:
    from multiviewica import multiviewica
    _, W, _ = multiviewica(X, max_iter=3000, random_state=seed, tol=1e-3)
    dil, shi = np.ones((m, p)), np.zeros((m, p))
wall = time.perf_counter() - t0
out = dict(time=wall, maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           W=np.asarray(W).tolist(), dilations=dil.tolist(), shifts=shi.tolist())
print("RESULT" + json.dumps(out))
'''


OURS_IND = r'''
import json, resource, sys, time, warnings
import numpy as np
from sciml_toolbox.multiview import MVICAD2
path, seed = sys.argv[1], int(sys.argv[2])
max_dilation, max_shift, onset = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
X = np.load(path)["X"]
est = MVICAD2(n_components=X.shape[1], max_dilation=max_dilation, max_shift=max_shift,
              onset=onset, n_concat=5, random_state=seed)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    t0, c0 = time.perf_counter(), time.process_time()
    est.fit(X)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
conv = [str(w.message) for w in caught if "converge" in str(w.message)]
out = dict(time=wall, cpu=cpu, n_iter=int(est.n_iter_), maxrss_mb=resource.getrusage(
    resource.RUSAGE_SELF).ru_maxrss / 1024, W=np.asarray(est.components_).tolist(),
    dilations=np.asarray(est.dilations_).tolist(), shifts=np.asarray(est.shifts_).tolist(),
    convergence_warning=bool(conv))
print("RESULT" + json.dumps(out))
'''

AUTHORS_IND = r'''
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
path, seed = sys.argv[1], int(sys.argv[2])
max_dilation, max_shift, onset = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
X = np.load(path)["X"]
from multiviewica_delay import mvica_ds
t0, c0 = time.perf_counter(), time.process_time()
W, rho, tau, _ = mvica_ds(
    X, n_concat=5, max_dilation=max_dilation, max_shift=max_shift, W_scale=20,
    dilation_scale_per_source=True, verbose=False, random_state=seed, noise_model=1,
    number_of_filters_envelop=1, filter_length_envelop=5,
    number_of_filters_squarenorm_f=1, filter_length_squarenorm_f=2,
    use_envelop_term=True, penalization_scale=1, return_all_iterations=False,
    nb_points_grid_init=10, onset=onset, max_iter=3000)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
W, rho, tau = np.asarray(W), np.asarray(rho), np.asarray(tau)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
out = dict(time=wall, cpu=cpu, n_iter=-1, maxrss_mb=rss, W=W.tolist(),
           dilations=(1.0 / rho).tolist(), shifts=(-tau / rho).tolist(),
           convergence_warning=None)
print("RESULT" + json.dumps(out))
'''

# (m, k, n_times, onset, max_dilation, max_shift) of the independent settings
INDEPENDENT = {
    "paper": (5, 3, 600, 200, 1.15, 0.05),
    "paper10": (10, 5, 600, 200, 1.15, 0.05),
    "hard": (20, 10, 1000, 300, 1.25, 0.1),
    "scaling": (None, 10, 1000, 300, 1.25, 0.1),
}


def _score_independent(res, A, rho, tau):
    from _independent_meg import match_to_truth
    from _independent_meg import warp_errors as ind_warp_errors

    W = np.asarray(res["W"])
    perm = match_to_truth(W, A)
    ed, es = ind_warp_errors(np.asarray(res["dilations"]), np.asarray(res["shifts"]), rho, tau,
                             perm)
    return dict(amari=amari_distance(W, A), dilation_error=ed, shift_error=es,
                time_s=res["time"], cpu_s=res["cpu"], n_iter=res["n_iter"],
                maxrss_mb=res["maxrss_mb"],
                convergence_warning=res["convergence_warning"])


def run_independent(args, have_ref, ref_python, env):
    """Fits on the independent generator (issue 19); one JSON per setting."""
    from _independent_meg import make_independent_meg

    m0, k, n_times, onset, max_dilation, max_shift = INDEPENDENT[args.independent]
    subjects = [int(v) for v in args.subjects.split(",")] if m0 is None else [m0]
    seeds = [int(v) for v in args.seeds.split(",")]
    ref_max_m = {"paper": 5, "paper10": 10, "hard": 20, "scaling": 10}[args.independent]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for m in subjects:
            for seed in seeds:
                X, A, _, rho, tau = make_independent_meg(
                    m, k, n_times=n_times, n_concat=N_CONCAT, onset=onset,
                    max_dilation=max_dilation, max_shift=max_shift, noise=NOISE,
                    random_state=seed)
                path = os.path.join(tmp, f"ind_{m}_{k}_{seed}.npz")
                np.savez(path, X=X)
                argv = [path, seed, max_dilation, max_shift, onset]
                codes = [("sciml_toolbox", sys.executable, OURS_IND, None)]
                if have_ref and m <= ref_max_m and (seed == seeds[0] or m <= 10):
                    codes.append(("authors", ref_python, AUTHORS_IND, env))
                for code, python, script, cenv in codes:
                    try:
                        res = _run(python, script, argv, env=cenv, timeout=args.ref_timeout
                                   if code == "authors" else 3600)
                    except subprocess.TimeoutExpired:
                        rows.append(dict(code=code, m=m, k=k, seed=seed, timed_out=True))
                        print(json.dumps(rows[-1]))
                        continue
                    row = dict(code=code, setting=args.independent, m=m, k=k, seed=seed,
                               **_score_independent(res, A, rho, tau))
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    write_result(f"multiview_independent_{args.independent}",
                 {"rows": rows, "reference_available": have_ref,
                  "settings": dict(n_times=n_times, n_concat=N_CONCAT, noise=NOISE, k=k,
                                   max_dilation=max_dilation, max_shift=max_shift, onset=onset,
                                   subjects=subjects, seeds=seeds,
                                   generator="benchmarks/_independent_meg.py")},
                 mode="full", out=args.out)


def _run(python, code, args, env=None, timeout=3600):
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(code)
        script = fh.name
    try:
        proc = subprocess.run([python, script, *map(str, args)], capture_output=True, text=True,
                              env=env, timeout=timeout)
    finally:
        os.unlink(script)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT"):
            return json.loads(line[len("RESULT"):])
    raise RuntimeError(f"subprocess failed:\n{proc.stderr[-3000:]}")


def _score(res, data):
    W = np.asarray(res["W"])
    amari = amari_distance(W, data.mixings)
    order = match_sources(W[0], data.mixings[0])
    ed, es = warp_errors(np.asarray(res["dilations"]), np.asarray(res["shifts"]),
                         data.dilations, data.shifts, max_dilation=MAX_DILATION,
                         max_shift=MAX_SHIFT, order=order)
    return dict(amari=amari, dilation_error=ed, shift_error=es, time_s=res["time"],
                maxrss_mb=res["maxrss_mb"])


def _flags(p):
    """This script's own flags (``--full``, ``--out`` and ``--threads`` are common)."""
    p.add_argument("--device", default="cpu", help="cpu (NumPy) or a torch device, e.g. cuda")
    p.add_argument("--ref-dir", default=os.environ.get("SCIML_MVICAD_REF", ""))
    p.add_argument("--ref-python", default=None)
    p.add_argument("--smoothing", type=int, default=1, help="MVICAD2(smoothing=...) here")
    p.add_argument("--skip-ref", action="store_true", help="do not run the authors' code")
    p.add_argument("--independent", default=None, choices=sorted(INDEPENDENT),
                   help="fit MVICAD2 on benchmarks/_independent_meg.py data (issue 19)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (--independent)")
    p.add_argument("--subjects", default="10,20,50,100,200",
                   help="subject counts of --independent scaling")
    p.add_argument("--ref-timeout", type=float, default=900,
                   help="seconds before an authors' fit is abandoned (--independent)")


def main(argv=None):
    args = _common.parse_args(__doc__.splitlines()[0], argv, extra=_flags)
    ref_dir = Path(args.ref_dir)
    ref_python = args.ref_python or str(ref_dir / "venv" / "bin" / "python")
    have_ref = (bool(args.ref_dir) and (ref_dir / "multiviewica_delay").is_dir()
                and Path(ref_python).exists())
    have_ref = have_ref and not args.skip_ref
    device = "numpy" if args.device == "cpu" else args.device
    env = dict(os.environ, PYTHONPATH=str(ref_dir), JAX_PLATFORMS="cpu")
    if args.independent:
        return run_independent(args, have_ref, ref_python, env)
    if args.full:
        settings = [(5, 3, [0, 1, 2]), (10, 10, [0]), (20, 3, [0])]
    else:
        settings = [(5, 3, [0])]
    env = dict(os.environ, PYTHONPATH=str(ref_dir), JAX_PLATFORMS="cpu")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for m, k, seeds in settings:
            for seed in seeds:
                data = make_multiview_sources(m, k, N_TIMES, n_concat=N_CONCAT, noise=NOISE,
                                              max_dilation=MAX_DILATION, max_shift=MAX_SHIFT,
                                              onset=ONSET, random_state=seed)
                path = os.path.join(tmp, f"data_{m}_{k}_{seed}.npz")
                np.savez(path, X=data.X)
                for method in ("MVICAD2", "MVICAD", "MVICA", "GroupICA"):
                    res = _run(sys.executable, OURS, [path, method, seed, device, args.smoothing])
                    row = dict(code="sciml_toolbox", device=args.device, method=method, m=m,
                               k=k, seed=seed, **_score(res, data))
                    rows.append(row)
                    print(json.dumps(row))
                if have_ref:
                    for method in ("MVICAD2", "MVICAD", "MVICA"):
                        res = _run(ref_python, AUTHORS, [path, method, seed], env=env)
                        row = dict(code="authors", device="cpu", method=method, m=m, k=k,
                                   seed=seed, **_score(res, data))
                        rows.append(row)
                        print(json.dumps(row))
    summary = []
    for m, k, _ in settings:
        def med(code, method, key, m=m, k=k):
            vals = [r[key] for r in rows if r["code"] == code and r["method"] == method
                    and r["m"] == m and r["k"] == k]
            return float(np.median(vals)) if vals else None
        entry = dict(m=m, k=k)
        for method in ("MVICAD2", "MVICAD", "MVICA", "GroupICA"):
            for key in ("amari", "time_s", "maxrss_mb"):
                entry[f"ours_{method}_{key}"] = med("sciml_toolbox", method, key)
                entry[f"authors_{method}_{key}"] = med("authors", method, key)
        for key in ("dilation_error", "shift_error"):
            entry[f"ours_MVICAD2_{key}"] = med("sciml_toolbox", "MVICAD2", key)
            entry[f"authors_MVICAD2_{key}"] = med("authors", "MVICAD2", key)
        if entry["authors_MVICAD2_time_s"]:
            entry["speedup_MVICAD2"] = entry["authors_MVICAD2_time_s"] / entry[
                "ours_MVICAD2_time_s"]
        summary.append(entry)
        print(json.dumps(entry))
    name = "multiview" if args.device == "cpu" else f"multiview_{args.device.split(':')[0]}"
    if args.smoothing > 1:
        name += f"_smoothing{args.smoothing}"
    write_result(name, {"rows": rows, "summary": summary, "reference_available": have_ref,
                        "mvicad2_smoothing": args.smoothing,
                        "settings": dict(n_times=N_TIMES, n_concat=N_CONCAT, noise=NOISE,
                                         max_dilation=MAX_DILATION, max_shift=MAX_SHIFT,
                                         onset=ONSET)},
                 mode="full" if args.full else "quick", out=args.out)


if __name__ == "__main__":
    main()
