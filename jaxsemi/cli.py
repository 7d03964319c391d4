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

from . import bench

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


def demo_nonadiabatic_hall(out: Path) -> dict:
    """Hall conductivity of one Dirac valley vs field: adiabatic (SSCT) vs non-adiabatic (Eq. 60)."""
    import jaxsemi as js

    v, delta, kT, tau = 1.0, 0.1, 0.005, 10.0  # eV·Å, eV, eV, fs
    model = js.models.massive_dirac(v, delta)
    grid = js.kgrid.disk(2.0, 64, 16, scale=delta / v)
    scaled = np.array([0.1, 1.0, 3.0, 10.0])  # eE·ħv/Δ²
    fields = scaled * delta**2 / v  # V/Å
    ad = np.asarray(js.transport.hall_vs_field(model, fields, 0.0, tau, grid, kT=kT, theory="ssct", check=False))
    na = np.asarray(js.transport.hall_vs_field(model, fields, 0.0, tau, grid, kT=kT, theory="nonadiabatic"))
    _section("Non-adiabatic Hall effect of one Dirac valley (μ in the gap)")
    print(f"ħv = {v} eV·Å, Δ = {delta} eV, τ = {tau} fs, kT = {kT} eV; E in units of Δ²/(e ħv) = {delta**2 / v:.4g} V/Å")
    print(f"{'eE·ħv/Δ²':>9} {'E [V/Å]':>9} {'sigma_xy SSCT':>14} {'sigma_xy non-adiabatic':>23}  [e2/h]")
    for s_, f, a, b in zip(scaled, fields, ad, na):
        print(f"{s_:9.1f} {f:9.4f} {a:14.4f} {b:23.4f}")
    return {"field_V_per_A": fields.tolist(), "sigma_ssct": ad.tolist(), "sigma_nonadiabatic": na.tolist()}


def demo_wavepacket(out: Path) -> dict:
    """Landau–Zener transitions of full-band wavepackets swept through a gapped Dirac cone."""
    import jaxsemi as js

    v, delta, field, t1 = 1.0, 0.05, 0.01, 250.0  # eV·Å, eV, V/Å, fs
    model = js.models.massive_dirac(v, delta)
    ky = np.array([0.0, 0.03, 0.06])  # 1/Å: one batched call
    k0 = np.stack([np.full(3, field * t1 / (2 * js.units.HBAR)), ky], -1)  # sweep k_x from +K to −K
    traj = js.wavepacket.evolve(model, [0.0, 0.0], k0, t1, [field, 0.0], band=0, saveat=2)
    upper = np.asarray(traj.populations[:, -1, 1])
    formula = np.exp(-np.pi * (delta**2 + (v * ky) ** 2) / (v * field))  # exp(−πΔ'²/(ħv·eE)), ħ cancels
    _section("Wavepacket: Landau–Zener through a gapped Dirac cone (full-band, Eqs. 19–21)")
    print(f"ħv = {v} eV·Å, Δ = {delta} eV, E = {field} V/Å, t = 0 → {t1} fs")
    for q, p, f in zip(ky, upper, formula):
        print(f"  k_y = {q:.2f} 1/Å: upper-band population {p:.4f}   (Landau–Zener formula {f:.4f})")
    return {"k_y": ky.tolist(), "upper_population": upper.tolist(), "formula": formula.tolist()}


def demo_fit(out: Path) -> dict:
    """Fit a massive-Dirac gap and residual doping to the shipped synthetic σ_xy(n) data."""
    import jaxsemi as js

    data = js.fit.load_example_data()  # synthetic σ_xy(n) of a magnetic TI surface (see its header)
    v, kT = 2.5, js.units.kelvin_to_ev(30.0)  # velocity held fixed (eV·Å); 30 K
    # σ_xy (e²/h) at gate density n (Å⁻²): μ(n + n0) from the model's DOS, then the Hall sum
    predict = js.fit.hall_predictor(lambda p: js.models.massive_dirac(v, p["delta"]),
                                    js.kgrid.disk(0.4, 120, 2, scale=0.01), kT=kT)
    result = js.fit.fit(predict, {"delta": 0.02, "n0": 0.0}, data.x, data.y, data.sigma,
                        transforms={"delta": js.fit.Positive()})
    _section("Fit of a massive Dirac cone to Hall data (synthetic example)")
    print(data)
    print(result)
    return {"delta": float(result.params["delta"]), "delta_stderr": float(result.stderr["delta"]),
            "n0": float(result.params["n0"]), "n0_stderr": float(result.stderr["n0"]),
            "reduced_chi2": float(result.reduced_chi2)}


def cmd_demo(args) -> int:
    from ._threads import limit_blas_threads

    limit_blas_threads(1)  # JAX parallelises the batched LAPACK calls; nested BLAS threads only compete
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    summary = {"valley_hall": demo_valley_hall(out)}
    summary["wavepacket"] = demo_wavepacket(out)
    summary["nonadiabatic_hall"] = demo_nonadiabatic_hall(out)
    summary["fit"] = demo_fit(out)
    print(f"\ndemo finished in {time.perf_counter() - t0:.1f} s")
    if args.json:
        (out / "jaxsemi_demo.json").write_text(json.dumps(summary, indent=1))
    return 0


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
    p_bench = sub.add_parser("bench", help="run the benchmarks, write a JSON report to the current folder")
    bench.add_arguments(p_bench)
    p_bench.set_defaults(func=bench.run_command)
    p_info = sub.add_parser("info", help="versions and devices")
    p_info.set_defaults(func=cmd_info)
    args = parser.parse_args(argv)
    if args.coordinator or args.num_processes:
        from . import distributed

        distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
