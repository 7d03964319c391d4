"""Benchmarks: ``jaxsemi bench`` or ``python -m jaxsemi.bench [--quick] [--only NAME ...] [--out FILE]``.

Each module here exposes ``run(quick: bool) -> dict``. The JSON report (device, versions,
figures) is written to ``./jaxsemi_bench_<platform>.json`` in the current folder unless ``--out``
names another file, and a summary table goes to stdout. A ``--quick`` run never overwrites a full
report. Benchmarks or comparisons whose optional packages are missing are reported as
``skipped: needs pip install 'jaxsemi[<extra>]'``. The command runs with one BLAS thread
(``js.limit_blas_threads``; peers in the same process too), recorded as ``blas_threads``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from pathlib import Path

#: Benchmark modules, each exposing ``run(quick: bool) -> dict``.
MODULES = ["berry_throughput", "eigh_overhead", "transport", "wavepacket_ensemble", "wavepacket_steps", "manifold_steps", "lz_sweep",
           "fit", "scale", "float32"]
#: Optional packages and the jaxsemi extra that installs them.
EXTRAS = {"pythtb": "interop", "wannierberri": "interop", "numba": "interop", "dynamiqs": "peers", "qutip": "peers"}
#: Key fragments of the figures the summary table shows.
FIGURES = ("per_s", "speedup", "overhead", "ratio", "_over_", "peak_rss", "status", "error")


def skipped(package: str) -> str:
    """Status of a benchmark or comparison that needs the missing ``package``."""
    package = package.split(".")[0]
    extra = f"'jaxsemi[{EXTRAS[package]}]'" if package in EXTRAS else package
    return f"skipped: needs pip install {extra}"


def run_all(quick: bool = False, out: str | Path | None = None, only=None) -> dict:
    """Run the benchmarks (all, or those named in ``only``); write the JSON report to ``out`` if given."""
    from ._common import environment

    report = {"environment": environment(), "quick": quick, "benchmarks": {}}
    for name in MODULES:
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        try:
            result, status = importlib.import_module(f"{__name__}.{name}").run(quick), "ok"
        except ModuleNotFoundError as e:
            if (e.name or __name__).startswith("jaxsemi"):
                raise
            result, status = {}, skipped(e.name)
        except Exception:  # one failing benchmark must not lose the others' figures
            result, status = {"error": traceback.format_exc(limit=5)}, "error"
        report["benchmarks"][name] = {"status": status, "seconds": time.perf_counter() - t0, **result}
        print(f"[bench] {name}: {status} in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(report, indent=1))
    return report


def _figures(tree, path: str = "") -> list:
    """(dotted key, value) of the leaves whose key contains one of ``FIGURES``."""
    if isinstance(tree, dict) or (isinstance(tree, list) and any(isinstance(v, dict) for v in tree)):
        items = tree.items() if isinstance(tree, dict) else enumerate(tree)
        return [f for k, v in items for f in _figures(v, f"{path}.{k}" if path else str(k))]
    return [(path, tree)] if any(f in path.rsplit(".", 1)[-1] for f in FIGURES) else []


def summary(report: dict) -> str:
    """The report as a readable table: status and time per benchmark, then its headline figures."""
    lines = [f"{'benchmark':<22} {'seconds':>8}  status / figures"]
    for name, res in report["benchmarks"].items():
        lines.append(f"{name:<22} {res['seconds']:8.1f}  {res['status']}")
        if "error" in res:
            lines.append(f"{'':33}{res['error'].strip().splitlines()[-1]}")
        body = {k: v for k, v in res.items() if k not in ("status", "seconds", "error")}
        for key, value in _figures(body):
            lines.append(f"{'':33}{key:<44} {value:.4g}" if isinstance(value, float) else f"{'':33}{key:<44} {value}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``jaxsemi bench`` and ``python -m jaxsemi.bench``."""
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run, a few minutes)")
    parser.add_argument("--out", help="JSON report path (default: ./jaxsemi_bench_<platform>.json)")
    parser.add_argument("--only", nargs="+", choices=MODULES, metavar="NAME",
                        help=f"run only these benchmarks ({', '.join(MODULES)})")


def run_command(args: argparse.Namespace) -> int:
    """Run, write the report, print the summary; exit status 1 if a benchmark failed (skips are fine)."""
    import jax

    from .._threads import limit_blas_threads

    limit_blas_threads(1)  # JAX parallelises the batched LAPACK calls; nested BLAS threads only compete
    out = Path(args.out or f"jaxsemi_bench_{jax.devices()[0].platform}.json")
    if args.quick and out.is_file() and '"quick": false' in out.read_text():
        print(f"{out} holds a full benchmark report; a --quick run does not overwrite it (choose --out)",
              file=sys.stderr)
        return 2
    report = run_all(args.quick, out, args.only)
    print(summary(report))
    print(f"report written to {out.resolve()}")
    return int(any(b["status"] == "error" for b in report["benchmarks"].values()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxsemi.bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run_command(parser.parse_args(argv))
