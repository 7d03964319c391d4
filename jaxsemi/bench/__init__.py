"""Run every benchmark and write one JSON report: ``python -m benchmarks [--quick] [--out FILE]``."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from pathlib import Path

#: Benchmark modules in this folder, each exposing ``run(quick: bool) -> dict``.
MODULES = ["berry_throughput", "eigh_overhead", "transport", "wavepacket_ensemble", "fit", "scale"]


def run_all(quick: bool = False, out: str | None = None, only=None) -> dict:
    """Run the benchmarks (all, or those named in ``only``) and write the report to ``out``."""
    from benchmarks._common import environment

    report = {"environment": environment(), "quick": quick, "benchmarks": {}}
    for name in MODULES:
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        try:
            result = importlib.import_module(f"benchmarks.{name}").run(quick)
            status = "ok"
        except Exception:  # one failing benchmark must not lose the others' figures
            result, status = {"error": traceback.format_exc(limit=5)}, "error"
        report["benchmarks"][name] = {"status": status, "seconds": time.perf_counter() - t0, **result}
        print(f"[bench] {name}: {status} in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(report, indent=1))
        print(f"[bench] report written to {out}", file=sys.stderr)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run, < a few minutes)")
    parser.add_argument("--out", default=None, help="JSON report path (default: print to stdout)")
    parser.add_argument("--only", nargs="*", help="run only these benchmarks")
    args = parser.parse_args(argv)
    report = run_all(args.quick, args.out, args.only)
    if not args.out:
        print(json.dumps(report, indent=1))
    return int(any(b["status"] != "ok" for b in report["benchmarks"].values()))


if __name__ == "__main__":
    sys.exit(main())
