"""Command-line interface: ``sciml-toolbox info | demo | bench``."""

from __future__ import annotations

import argparse
import html
import os
import runpy
import sys
import time
import traceback
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


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _write_index(out_dir, records):
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>sciml-toolbox demo</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
        "img{max-width:100%;border:1px solid #eee}.err{color:#b00}</style></head><body>",
        "<h1>sciml-toolbox demo</h1>",
    ]
    for rec in records:
        parts.append(f"<h2>{html.escape(rec['name'])}: {html.escape(rec['title'])}</h2>")
        parts.append(f"<p>status: <b>{rec['status']}</b>, {rec['seconds']:.1f} s</p>")
        if rec.get("error"):
            parts.append(f"<pre class='err'>{html.escape(rec['error'])}</pre>")
        if rec.get("numbers"):
            parts.append("<table>")
            for k, v in rec["numbers"].items():
                parts.append(f"<tr><td>{html.escape(k)}</td><td>{html.escape(_fmt(v))}</td></tr>")
            parts.append("</table>")
        for png in rec.get("figures", []):
            parts.append(f"<p><img src='{html.escape(png)}' alt='{html.escape(png)}'></p>")
    parts.append("</body></html>")
    (out_dir / "index.html").write_text("\n".join(parts))


def _cmd_demo(args):
    import matplotlib

    matplotlib.use("Agg")
    from ._demos import get_demos

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    demos = get_demos()
    if args.only:
        known = {d.name for d in demos}
        unknown = [n for n in args.only if n not in known]
        if unknown:
            print(f"error: unknown demo(s) {unknown}; available: {sorted(known)}", file=sys.stderr)
            return 2
        demos = [d for d in demos if d.name in args.only]
    records = []
    for d in demos:
        rec = {"name": d.name, "title": d.title, "numbers": {}, "figures": []}
        before = set(out_dir.glob("*.png"))
        t0 = time.perf_counter()
        if d.import_error:
            rec.update(status="FAILED", error=d.import_error)
        else:
            print(f"[demo] {d.name}: {d.title} ...", flush=True)
            try:
                numbers = d.func(out_dir, args.device) or {}
                rec.update(status="ok", numbers=dict(numbers))
            except Exception:  # noqa: BLE001 - one failing demo must not stop the tour
                rec.update(status="FAILED", error=traceback.format_exc())
        rec["seconds"] = time.perf_counter() - t0
        rec["figures"] = sorted(p.name for p in set(out_dir.glob("*.png")) - before)
        records.append(rec)
    _write_index(out_dir, records)
    print()
    print(f"{'demo':<14} {'status':<7} {'time':>7}  headline numbers")
    print("-" * 100)
    for rec in records:
        nums = ", ".join(f"{k}={_fmt(v)}" for k, v in rec["numbers"].items())
        if rec.get("error"):
            nums = rec["error"].strip().splitlines()[-1][:80]
        print(f"{rec['name']:<14} {rec['status']:<7} {rec['seconds']:>6.1f}s  {nums}")
    n_fail = sum(r["status"] != "ok" for r in records)
    print("-" * 100)
    print(f"{len(records) - n_fail} ok, {n_fail} failed; figures and index.html in {out_dir}")
    return 1 if n_fail else 0


def _find_benchmarks():
    here = Path.cwd() / "benchmarks"
    if not here.is_dir():
        here = Path(__file__).resolve().parent.parent / "benchmarks"
    return here


def _cmd_bench(args):
    bench_dir = _find_benchmarks()
    scripts = sorted(bench_dir.glob("bench_*.py")) if bench_dir.is_dir() else []
    if args.name:
        scripts = [s for s in scripts if s.stem == f"bench_{args.name}"]
        if not scripts:
            print(f"error: no benchmarks/bench_{args.name}.py under {bench_dir}", file=sys.stderr)
            return 2
    if not scripts:
        print(f"no benchmarks found under {bench_dir}", file=sys.stderr)
        return 2
    status = 0
    for script in scripts:
        print(f"[bench] {script.name} ({'full' if args.full else 'quick'} mode)", flush=True)
        argv = sys.argv
        sys.argv = [str(script)] + (["--full"] if args.full else [])
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as exc:
            if exc.code not in (None, 0):
                status = 1
        except Exception:  # noqa: BLE001 - report and continue with the next benchmark
            traceback.print_exc()
            status = 1
        finally:
            sys.argv = argv
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
    p = sub.add_parser("bench", help="run benchmarks/bench_NAME.py")
    p.add_argument("name", nargs="?", help="benchmark name (all when omitted)")
    p.add_argument("--full", action="store_true", help="documented sizes instead of quick mode")
    return parser


def main(argv=None):
    """Entry point of the ``sciml-toolbox`` console script."""
    args = build_parser().parse_args(argv)
    handler = {"info": _cmd_info, "demo": _cmd_demo, "bench": _cmd_bench}[args.command]
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
