"""The Landau–Zener sweep shared by the wavepacket benchmarks (and their peers).

A massive Dirac cone 𝓗 = v(k_x σ_x + k_y σ_y) + Δσ_z, v = 1 eV·Å, Δ = 0.3 eV, in E = 0.2 V/Å
along x: each wavepacket starts in the lower band at k = (+K, k_y) and is swept to (−K, k_y)
in t1 = 2ħK/E (e = 1); one trajectory per k_y ∈ [0, 0.6] 1/Å. The upper-band population at t1
is compared with P = exp(−π(Δ² + v²k_y²)/(vE)) (finite-K corrections are ≲ 1e-6 for K ≥ 20).
"""

from __future__ import annotations

import numpy as np

V, DELTA, E = 1.0, 0.3, 0.2  # eV·Å, eV, V/Å
RTOL, ATOL = 1e-8, 1e-9
KY_MAX = 0.6


def sweep(K: float, n: int = 200) -> dict:
    """The sweep's inputs: k_y (n,), k0 (n, 2) in 1/Å, t1 (fs), field (2,) V/Å, and the constants."""
    from ..units import HBAR

    ky = np.linspace(0.0, KY_MAX, n)
    return {"ky": ky, "k0": np.stack([np.full(n, float(K)), ky], -1), "t1": 2.0 * HBAR * K / E,
            "field": np.array([E, 0.0]), "v": V, "delta": DELTA, "rtol": RTOL, "atol": ATOL}


def formula(ky) -> np.ndarray:
    """Landau–Zener upper-band population exp(−π(Δ² + v²k_y²)/(vE))."""
    return np.exp(-np.pi * (DELTA**2 + V**2 * np.asarray(ky) ** 2) / (V * E))


def run_jaxsemi(K: float, n: int = 200, ensemble: str = "vmap", **solver_kwargs):
    """One jaxsemi sweep (method="full", default solver unless given): (P_upper (n,), steps (n,),
    max |⟨χ|χ⟩ − 1| along the saved path), blocking until ready."""
    import jax.numpy as jnp

    import jaxsemi as js

    s = sweep(K, n)
    tr = js.wavepacket.evolve(js.models.massive_dirac(V, DELTA), jnp.zeros(2), jnp.asarray(s["k0"]), s["t1"],
                              jnp.asarray(s["field"]), band=0, saveat=2, ensemble=ensemble,
                              stepsize_controller=js.wavepacket.default_controller(RTOL, ATOL), **solver_kwargs)
    p = np.asarray(tr.populations[:, -1, 1])
    return p, np.asarray(tr.stats["num_steps"]), float(np.max(np.abs(np.asarray(tr.norm) - 1.0)))
