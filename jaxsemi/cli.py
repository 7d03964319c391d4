"""Command line: ``jaxsemi demo`` (embedded defaults), ``jaxsemi bench``, ``jaxsemi info``.

Multi-host: ``jaxsemi --coordinator HOST:PORT --num-processes N --process-id I <command>``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

# Gapped graphene, illustrative: ħv_F = 6.58 eV·Å (v_F = 10⁶ m/s), half-gap Δ = 15 meV.
GRAPHENE_V = 6.582119569509066
GRAPHENE_DELTA = 0.015


def _section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 66 - len(title)))


def demo_valley_hall(out: Path) -> dict:
    """Valley Hall conductivity of gapped graphene vs μ (per spin), table + figure."""
    import jaxsemi as js

    v, delta = GRAPHENE_V, GRAPHENE_DELTA
    k_max = 2.0 / v  # Dirac cones cut off at 2 eV
    mus = np.linspace(-0.06, 0.06, 25)
    kT = js.units.kelvin_to_ev(10.0)
    grid = js.kgrid.disk(k_max, 160, 8, scale=delta / v)
    sig_k = np.asarray(js.hall_conductivity(js.models.massive_dirac(v, delta, valley=+1), mus, grid, kT))
    sig_kp = np.asarray(js.hall_conductivity(js.models.massive_dirac(v, delta, valley=-1), mus, grid, kT))
    _section("Valley Hall conductivity of gapped graphene (per spin, T = 10 K)")
    print(f"ħv = {v:.3f} eV·Å, Δ = {1e3 * delta:.1f} meV (gap {2e3 * delta:.0f} meV), cutoff {k_max:.3f} 1/Å")
    print(f"{'mu [meV]':>9} {'sigma_K [e2/h]':>15} {'sigma_Kp [e2/h]':>16} {'valley Hall [e2/h]':>19}")
    for mu, a, b in zip(mus[::3], sig_k[::3], sig_kp[::3]):
        print(f"{1e3 * mu:9.1f} {a:15.5f} {b:16.5f} {a - b:19.5f}")
    fig_path = out / "jaxsemi_demo_valley_hall.png"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(1e3 * mus, sig_k, label="valley K")
    ax.plot(1e3 * mus, sig_kp, label="valley K'")
    ax.plot(1e3 * mus, sig_k - sig_kp, "k--", label="valley Hall (K − K')")
    ax.axvspan(-1e3 * delta, 1e3 * delta, color="0.9", label="gap")
    ax.set_xlabel("μ (meV)")
    ax.set_ylabel("σ_xy (e²/h, per spin)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(fig_path, dpi=120)
    plt.close(fig)
    print(f"figure written to {fig_path}")
    return {"mu_eV": mus.tolist(), "sigma_K": sig_k.tolist(), "sigma_Kp": sig_kp.tolist(), "figure": str(fig_path)}


def cmd_demo(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    summary = {"valley_hall": demo_valley_hall(out)}
    print(f"\ndemo finished in {time.perf_counter() - t0:.1f} s")
    if args.json:
        (out / "jaxsemi_demo.json").write_text(json.dumps(summary, indent=1))
    return 0


def cmd_bench(args) -> int:
    """Run ``benchmarks/`` (needs the source checkout) and write a JSON report."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "benchmarks" / "__main__.py").exists():
        print("jaxsemi bench needs the source checkout (benchmarks/ next to jaxsemi/)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(root))
    from benchmarks.__main__ import run_all

    import jax

    out = args.out or str(root / "benchmarks" / "results" / f"bench_{jax.devices()[0].platform}.json")
    report = run_all(args.quick, out, args.only)
    return int(any(b["status"] != "ok" for b in report["benchmarks"].values()))


def cmd_info(args) -> int:
    import jax

    import jaxsemi as js

    print(json.dumps({
        "jaxsemi": js.__version__,
        "jax": jax.__version__,
        "x64": bool(jax.config.jax_enable_x64),
        "devices": [f"{d.platform}:{d.device_kind}" for d in jax.devices()],
    }, indent=1))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="jaxsemi", description=__doc__)
    parser.add_argument("--coordinator", help="multi-host run: coordinator address host:port")
    parser.add_argument("--num-processes", type=int, help="multi-host run: number of processes")
    parser.add_argument("--process-id", type=int, help="multi-host run: rank of this process")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="run the embedded demonstration (tables and figures)")
    p_demo.add_argument("--out", default=".", help="folder for figures (default: current folder)")
    p_demo.add_argument("--json", action="store_true", help="also write the numbers as JSON")
    p_demo.set_defaults(func=cmd_demo)
    p_bench = sub.add_parser("bench", help="run every benchmark, write a JSON report")
    p_bench.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    p_bench.add_argument("--out", help="report path (default benchmarks/results/bench_<platform>.json)")
    p_bench.add_argument("--only", nargs="*", help="run only these benchmarks")
    p_bench.set_defaults(func=cmd_bench)
    p_info = sub.add_parser("info", help="versions and devices")
    p_info.set_defaults(func=cmd_info)
    args = parser.parse_args(argv)
    if args.coordinator or args.num_processes:
        from . import distributed

        distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
