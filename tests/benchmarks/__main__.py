"""Run every benchmark module of this package, in name order; print a table and write .bench/results.json.

    python -m tests.benchmarks [--quick] [--json PATH] [NAME ...]

A module is a benchmark when it defines ``run(quick: bool) -> list[dict]``
(rows: figure, ours, peer, ratio, goal, met) or, for scripts, ``main()``
(free-form output; figures it passes to ``tests.benchmarks.record`` go into
the JSON under "records").  A module that wraps another one names it in
``WRAPS`` and the wrapped one is not run on its own.

  --quick       a fast smoke run: fewer repetitions and shorter streams; the
                ``main()`` scripts (e.g. the whole reference mission) are skipped
  --json PATH   where to write the JSON (default .bench/results.json)
  NAME ...      only these modules (e.g. codec pacing)

Figures are ratios against a peer measured in the same run where a peer
exists; absolute rates move with the machine's load (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import pkgutil
import platform
import sys
import time
import traceback
from pathlib import Path

import tests.benchmarks as pkg


def _fmt(v: object, key: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float) and key == "ratio" and abs(v) < 10:
        return f"{v:.4f}" if abs(v) < 2 else f"{v:.2f}"
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        a = abs(v)
        if a >= 1e5:
            return f"{v:,.0f}"
        if a >= 100:
            return f"{v:.0f}"
        if a >= 1:
            return f"{v:.2f}"
        return f"{v:.3g}"
    return str(v)


def table(rows: list[dict]) -> str:
    cols = [("module", "module"), ("figure", "figure"), ("ours", "ours"), ("peer", "peer"), ("ratio", "ratio"),
            ("goal", "goal"), ("met", "met"), ("unit", "unit")]
    cells = [[_fmt(r.get(k), k) for k, _ in cols] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, (_, h) in enumerate(cols)]
    lines = ["  ".join(h.ljust(w) for (_, h), w in zip(cols, widths)),
             "  ".join("-" * w for w in widths)]
    for r, c in zip(rows, cells):
        lines.append("  ".join(x.rjust(w) if k in ("ours", "peer", "ratio") else x.ljust(w)
                               for (k, _), x, w in zip(cols, c, widths)))
        if r.get("note"):
            lines.append(" " * (widths[0] + 2) + "  note: " + r["note"])
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fast smoke run (fewer repetitions, shorter runs)")
    ap.add_argument("--json", default=str(Path(pkg.RESULTS_DIR) / pkg.RESULTS_FILE), metavar="PATH",
                    help="where to write the JSON results (default: .bench/results.json)")
    ap.add_argument("names", nargs="*", metavar="NAME", help="only these benchmark modules")
    args = ap.parse_args(argv)
    names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))
    if args.names:
        unknown = sorted(set(args.names) - set(names))
        if unknown:
            print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(names)}", file=sys.stderr)
            return 2
        names = [n for n in names if n in args.names]
    mods = {}
    for name in names:
        mods[name] = importlib.import_module(f"{pkg.__name__}.{name}")
    wrapped = {w for m in mods.values() for w in getattr(m, "WRAPS", ())}
    rows: list[dict] = []
    timings: dict[str, float] = {}
    failures: dict[str, str] = {}
    t_all = time.perf_counter()
    for name, mod in mods.items():
        run = getattr(mod, "run", None)
        legacy = getattr(mod, "main", None)
        if run is None and (legacy is None or name in wrapped or args.quick):
            continue
        print(f"== {name}", flush=True)
        t = time.perf_counter()
        try:
            if run is not None:
                got = run(args.quick)
                for r in got:
                    r["module"] = name
                    print("   " + "  ".join(f"{k}={_fmt(r.get(k), k)}" for k in ("figure", "ours", "peer", "ratio",
                                                                           "goal", "met")), flush=True)
                rows += got
            else:
                legacy()
        except Exception:  # one broken benchmark must not hide the others' figures
            failures[name] = traceback.format_exc()
            print(failures[name], file=sys.stderr, flush=True)
            rows.append({"module": name, "figure": "(benchmark raised)", "ours": None, "peer": None, "ratio": None,
                         "goal": None, "met": False, "unit": "", "note": failures[name].strip().splitlines()[-1]})
        timings[name] = round(time.perf_counter() - t, 2)
        print(f"   ({name}: {timings[name]:.1f} s)", flush=True)
    print()
    print(table(rows))
    goals = [r for r in rows if r.get("met") is not None]
    missed = [r for r in goals if not r["met"]]
    print(f"\n{len(goals) - len(missed)} of {len(goals)} goals met; {len(rows)} figures in "
          f"{time.perf_counter() - t_all:.0f} s{' (--quick)' if args.quick else ''}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"quick": args.quick, "python": platform.python_version(), "cpus": os.cpu_count(),
           "load_before_end": os.getloadavg() if hasattr(os, "getloadavg") else None,
           "seconds": timings, "rows": rows, "records": dict(pkg.RECORDS), "failures": failures}
    out.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
