"""Command-line interface: ``sciml-toolbox info | demo | bench``."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["main"]


def _cmd_info(args):
    from ._backends import backend_report

    rows = backend_report()
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    print(f"{'backend':<{w0}}  {'version':<{w1}}  status")
    for name, ver, status in rows:
        print(f"{name:<{w0}}  {ver:<{w1}}  {status}")
    return 0


def _check_threads(threads):
    """None when ``threads`` is a valid thread count, else the reason."""
    return None if threads >= 1 else f"--threads must be at least 1, got {threads}"


def _check_device(device):
    """None when ``device`` can be used here, else the reason it cannot."""
    if device != "cuda":
        return None
    try:
        import torch
    except ImportError:
        return "--device cuda needs torch, which is not installed"
    if not torch.cuda.is_available():
        return "--device cuda: torch sees no CUDA device here (torch.cuda.is_available() is False)"
    return None


def _prepare_out(path):
    """Create ``path`` (and parents) and check that a file can be written there.

    Returns None on success, else the reason.
    """
    import tempfile

    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        return f"cannot write to --out {str(path)!r}: {exc.strerror or exc}"
    return None


def _cmd_demo(args):
    from .tour import get_demos, run_tour
    from .utils import set_threads

    demos = get_demos()
    if args.only:
        known = {d.name for d in demos}
        unknown = [n for n in args.only if n not in known]
        if unknown:
            print(f"error: unknown demo(s) {unknown}; available: {sorted(known)}", file=sys.stderr)
            return 2
        demos = [d for d in demos if d.name in args.only]
    problem = _check_threads(args.threads) or _check_device(args.device)
    if problem is None:
        out_dir = Path(args.out)
        problem = _prepare_out(out_dir)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    set_threads(args.threads)
    records = run_tour(demos, out_dir, args.device)
    return 1 if any(r["status"] != "ok" for r in records) else 0


_NO_CHECKOUT = (
    "the benchmarks are scripts of the source repository (benchmarks/bench_*.py), not part of "
    "the installed package: run `sciml-toolbox bench` from the root of a source checkout "
    "(git clone, then pip install -e .), or `python benchmarks/bench_NAME.py` there"
)


def _find_benchmarks():
    """The ``benchmarks`` folder of a source checkout: under the current directory, else next
    to the package (editable install); None when neither exists."""
    for here in (Path.cwd() / "benchmarks", Path(__file__).resolve().parent.parent / "benchmarks"):
        if (here / "_common.py").is_file():
            return here
    return None


def _cmd_bench(args):
    problem = _check_threads(args.threads)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    bench_dir = _find_benchmarks()
    if bench_dir is None:
        print(f"error: no benchmarks found: {_NO_CHECKOUT}", file=sys.stderr)
        return 2
    scripts = sorted(bench_dir.glob("bench_*.py"))
    if args.name:
        scripts = [s for s in scripts if s.stem == f"bench_{args.name}"]
        if not scripts:
            available = sorted(s.stem[len("bench_"):] for s in bench_dir.glob("bench_*.py"))
            print(f"error: no benchmarks/bench_{args.name}.py under {bench_dir}; available: "
                  f"{available}", file=sys.stderr)
            return 2
    status = 0
    for script in scripts:
        print(f"[bench] {script.name} ({'full' if args.full else 'quick'} mode)", flush=True)
        # a fresh interpreter per script, started in the benchmarks folder's parent: the
        # scripts import their helpers (``_common``) from their own folder, like
        # ``python benchmarks/bench_NAME.py``
        cmd = [sys.executable, str(script)] + (["--full"] if args.full else [])
        cmd += ["--threads", str(args.threads)]
        if subprocess.run(cmd, cwd=bench_dir.parent, check=False).returncode != 0:
            status = 1
    return status


def build_parser():
    """The argument parser of ``sciml-toolbox`` (exposed for the docs and tests)."""
    parser = argparse.ArgumentParser(
        prog="sciml-toolbox", description="sciml-toolbox command-line interface"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions and which backends work here")
    p = sub.add_parser("demo", help="run the tour of every implemented method")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these demos")
    p.add_argument("--out", default=os.environ.get("SCIML_DEMO_OUT", "demo_output"),
                   help="output folder for figures and index.html (default: demo_output)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="device for the demos that can use a GPU")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for BLAS, OpenMP and torch (default: 1; see "
                        "sciml_toolbox.utils.set_threads)")
    p = sub.add_parser("bench", help="run benchmarks/bench_NAME.py (needs a source checkout)")
    p.add_argument("name", nargs="?", help="benchmark name (all when omitted)")
    p.add_argument("--full", action="store_true", help="documented sizes instead of quick mode")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for BLAS, OpenMP and torch (default: 1)")
    return parser


def main(argv=None):
    """Entry point of the ``sciml-toolbox`` console script."""
    args = build_parser().parse_args(argv)
    handler = {"info": _cmd_info, "demo": _cmd_demo, "bench": _cmd_bench}[args.command]
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
