"""Run the demos of the tour, write ``index.html`` and print the summary table."""

from __future__ import annotations

import html
import time
import traceback
from pathlib import Path

__all__ = ["run_tour"]


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


def _print_summary(records, out_dir):
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


def run_tour(demos, out_dir, device="cpu"):
    """Run ``demos`` one after the other, write ``out_dir/index.html``, print a summary.

    A failing demo is recorded (with its traceback) and the tour goes on.

    Parameters
    ----------
    demos : list of Demo
        From :func:`get_demos`, possibly filtered.
    out_dir : path-like
        Existing, writable folder for the figures and ``index.html``.
    device : {'cpu', 'cuda'}, default='cpu'
        Passed to every demo; the caller checks that it is available.

    Returns
    -------
    records : list of dict
        One per demo: ``name``, ``title``, ``status`` ('ok' or 'FAILED'), ``seconds``,
        ``numbers`` (the demo's headline numbers), ``figures`` (PNG names) and ``error``.
    """
    import matplotlib

    matplotlib.use("Agg")
    out_dir = Path(out_dir)
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
                numbers = d.func(out_dir, device) or {}
                rec.update(status="ok", numbers=dict(numbers))
            except Exception:  # noqa: BLE001 - one failing demo must not stop the tour
                rec.update(status="FAILED", error=traceback.format_exc())
        rec["seconds"] = time.perf_counter() - t0
        rec["figures"] = sorted(p.name for p in set(out_dir.glob("*.png")) - before)
        records.append(rec)
    _write_index(out_dir, records)
    _print_summary(records, out_dir)
    return records
