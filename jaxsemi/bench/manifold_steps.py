"""``method="manifold"`` on a long Landau–Zener sweep: the opt-in ``js.wavepacket.Magnus4`` against the
default lab-frame ``diffrax.Tsit5`` in one run.

A Dirac manifold (v = 1 eV·Å, Δ = 0.3 eV) coupled (g = 0.3 eV·Å, k-linear) to two levels ∓60 eV away,
swept k_x: K → −K at E = 0.2 V/Å (k_y = 0.1 1/Å), K = 5 and 20 1/Å, one trajectory, default tolerances
(rtol 1e-8). Per solver: steps, seconds (best of 3 after the compile), max |⟨χ|χ⟩ − 1|, and the max
error of x and of the populations against a Tsit5 run at rtol 1e-11.

    python -m jaxsemi.bench --only manifold_steps
"""

from __future__ import annotations

import numpy as np

from ._common import best_time

KS = (5.0, 20.0)
V, DELTA, G, W, E, KY = 1.0, 0.3, 0.3, 60.0, 0.2, 0.1


def _model():
    import jax.numpy as jnp

    import jaxsemi as js

    def hamiltonian(k, x, p):  # orbitals: level −W, Dirac pair, level +W
        kx, ky, g, w = k[0], k[1], p["g"], p["W"]
        z = 0.0 * kx
        return jnp.array([[-w + z, g * kx, 1j * g * ky, z],
                          [g * kx, p["delta"] + z, p["v"] * (kx - 1j * ky), g * ky],
                          [-1j * g * ky, p["v"] * (kx + 1j * ky), -p["delta"] + z, g * kx],
                          [z, g * ky, g * kx, w + z]])

    return js.Model(hamiltonian, dict(v=V, delta=DELTA, g=G, W=W), 2, name="dirac+levels")


def run(quick: bool = False) -> dict:
    import diffrax
    import jax
    import jax.numpy as jnp

    import jaxsemi as js

    model, out = _model(), {}
    solvers = {"tsit5": {}, "magnus4": {"solver": js.wavepacket.Magnus4()},
               "reference_tsit5_rtol1e-11": {"stepsize_controller": diffrax.PIDController(rtol=1e-11, atol=1e-12)}}
    for K in KS[:1] if quick else KS:
        runs = {}
        for name, kw in solvers.items():
            def solve():
                tr = js.wavepacket.evolve(model, jnp.zeros(2), jnp.array([K, KY]), 2 * js.units.HBAR * K / E,
                                          jnp.array([E, 0.0]), band=1, method="manifold", bands=[1, 2], saveat=5,
                                          max_steps=1 << 18, **kw)
                return jax.block_until_ready(tr)

            solve()
            seconds, tr = best_time(solve, 1 if name.startswith("reference") else 3)
            runs[name] = tr
            out[f"K{K:g}_{name}"] = {"steps": int(tr.stats["num_steps"]), "seconds": seconds,
                                     "max_norm_deviation": float(jnp.max(jnp.abs(tr.norm - 1.0)))}
        ref = runs.pop("reference_tsit5_rtol1e-11")
        for name, tr in runs.items():
            out[f"K{K:g}_{name}"].update(
                max_error_x=float(np.max(np.abs(np.asarray(tr.x - ref.x)))),
                max_error_populations=float(np.max(np.abs(np.asarray(tr.populations - ref.populations)))))
        out[f"K{K:g}_magnus4_over_tsit5_time_ratio"] = (out[f"K{K:g}_magnus4"]["seconds"]
                                                        / out[f"K{K:g}_tsit5"]["seconds"])
    return out
