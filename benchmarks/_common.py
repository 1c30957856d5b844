"""Helpers shared by the benchmark scripts: argument parsing, timing, result files."""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

from sciml_toolbox._backends import machine_description
from sciml_toolbox.utils import set_threads

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(description, argv=None, *, extra=None):
    """Parse a benchmark's flags and set its thread use; every ``bench_*.py`` goes through here.

    Common flags: ``--full`` (documented sizes), ``--out`` (result path) and ``--threads``
    (default 1: one thread for BLAS, OpenMP and torch, so that timings are reproducible on a
    shared machine and the anchor and the method get the same resources). The thread count is
    applied here, with :func:`sciml_toolbox.utils.set_threads`, before the script does any work.

    Parameters
    ----------
    description : str
        Shown by ``--help`` (usually the first line of the script's docstring).
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).
    extra : callable, optional
        ``extra(parser)`` adds the script's own flags.

    Returns
    -------
    args : argparse.Namespace
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--full", action="store_true", help="documented sizes (slow)")
    p.add_argument("--out", default=None, help="result JSON path (default: results/<name>.json)")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for BLAS, OpenMP and torch (default: 1)")
    if extra is not None:
        extra(p)
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error(f"--threads must be at least 1, got {args.threads}")
    set_threads(args.threads)
    return args


def timeit(fn, *, repeat=3, number=1, sync=None):
    """Best wall time in seconds of ``fn()`` over ``repeat`` runs of ``number`` calls.

    ``sync`` is called after each run (for example ``torch.cuda.synchronize``).
    """
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        if sync is not None:
            sync()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def peak_host_memory(fn):
    """(result, peak bytes allocated through Python/NumPy's tracked allocators) of ``fn()``."""
    tracemalloc.start()
    try:
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return out, peak


def write_result(name, payload, *, mode, out=None):
    """Write ``payload`` with the machine description to ``results/<name>.json``.

    Parameters
    ----------
    name : str
        Benchmark name (``bench_<name>.py``).
    payload : dict
        JSON-serialisable results (rows, ratios, settings).
    mode : {'quick', 'full'}
    out : str or Path, optional
        Explicit output path.

    Returns
    -------
    path : Path
    """
    path = Path(out) if out else RESULTS / f"{name}.json"
    if out is None and mode == "full":
        path = RESULTS / f"{name}_full.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": name,
        "mode": mode,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_description(),
        "results": payload,
    }
    path.write_text(json.dumps(doc, indent=2, default=float) + "\n")
    print(f"wrote {path}")
    return path
