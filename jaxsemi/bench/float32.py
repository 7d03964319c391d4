"""float32 (``JAXSEMI_X64=0``) against float64: error and speed of the same k-sums.

Each precision runs in its own subprocess (``JAXSEMI_X64`` is read when jaxsemi is imported):

* ``haldane``: σ_xy of the Haldane model (t₁ = 1, t₂ = 0.1, φ = 1.2, M = 0.2 eV; N×N grid) at
  μ = 0 (in the gap, σ_xy = −1) and μ = 0.5 eV (in the band), kT = 0, and the time per sum;
* ``dirac``: σ_xy of one massive Dirac valley (ħv = 6.58 eV·Å, Δ = 15 meV, disk grid) at μ = 0
  and 30 meV, kT = 1 meV (closed form in the gap: −½);
* ``gap_scan``, for gap/bandwidth from 1e-1 to 1e-6: the lattice Dirac limit (Haldane with
  t₂ = 0, mass M, bandwidth 6t₁): Ω at the valley point K against the closed form
  (3t₁a/2)²/(2M²), and at K + (M/v, 0) float32 against float64; and a continuum Dirac valley (ħv = 1 eV·Å, Δ, disk of radius 1/Å: bandwidth
  2 eV, grid ``scale=Δ/v``): σ_xy at μ = 0 against −½(1 − Δ/√(Δ² + (ħv k_max)²)).

Reported: float32 − float64 differences for the first two, errors against the closed forms in
both precisions for the scan, and ``float64_over_float32`` time ratios (> 1: float32 is faster).
``--quick`` uses small grids.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

RATIOS = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6]  # gap / bandwidth of the gap scan


def run(quick: bool = False) -> dict:
    n = 96 if quick else 300
    res = {bits: _in_subprocess(bits, n, 2 if quick else 5) for bits in ("64", "32")}
    r64, r32 = res["64"], res["32"]
    out = {"grid": [n, n], "dtype_float32": r32["dtype"], "dtype_float64": r64["dtype"]}
    for name in ("haldane", "dirac"):
        out[name] = {"sigma_xy_float64": r64[name]["sigma"], "sigma_xy_float32": r32[name]["sigma"],
                     "max_abs_error_sigma": float(np.max(np.abs(np.subtract(r32[name]["sigma"], r64[name]["sigma"])))),
                     "float64_over_float32": r64[name]["seconds"] / r32[name]["seconds"]}
    out["gap_scan"] = []
    for i, ratio in enumerate(RATIOS):
        mass, delta = 3.0 * ratio, ratio  # as in ``_measure``
        omega = 1.5**2 / (2 * mass**2)  # (3t₁a/2)²/(2M²)
        sigma = -0.5 * (1 - delta / np.hypot(delta, 1.0))  # filled lower band of the disk
        (o64, o64_near), (o32, o32_near) = r64["omega_K"][i], r32["omega_K"][i]
        out["gap_scan"].append({
            "gap_over_bandwidth": ratio,
            "omega_K_rel_error_float32": abs(o32 / omega - 1), "omega_K_rel_error_float64": abs(o64 / omega - 1),
            "omega_near_K_rel_error_float32": abs(o32_near / o64_near - 1),
            "dirac_sigma_abs_error_float32": abs(r32["sigma_dirac"][i] - sigma),
            "dirac_sigma_abs_error_float64": abs(r64["sigma_dirac"][i] - sigma)})
    return out


def _in_subprocess(bits: str, n: int, repeats: int) -> dict:
    env = {**os.environ, "JAXSEMI_X64": "0" if bits == "32" else "1"}
    cmd = [sys.executable, "-W", "ignore", "-m", "jaxsemi.bench.float32", str(n), str(repeats)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measure(n: int, repeats: int) -> dict:
    """The figures of one precision (this process's); see the module notes."""
    import jax.numpy as jnp

    import jaxsemi as js

    from ._common import best_time

    def timed(model, mu, grid, kT=0.0):
        js.hall_conductivity(model, mu, grid, kT=kT).block_until_ready()  # compile
        seconds, sigma = best_time(lambda: js.hall_conductivity(model, mu, grid, kT=kT).block_until_ready(), repeats)
        return {"sigma": np.asarray(sigma, dtype=float).tolist(), "seconds": seconds}

    haldane = js.models.haldane(1.0, 0.1, 1.2, 0.2)
    out = {"dtype": str(jnp.zeros(1).dtype),
           "haldane": timed(haldane, jnp.array([0.0, 0.5]), js.kgrid.brillouin_zone(haldane, n)),
           "dirac": timed(js.models.massive_dirac(6.58, 0.015), jnp.array([0.0, 0.03]),
                          js.kgrid.disk(0.3, n, 8, scale=0.015 / 6.58), kT=1e-3)}
    # K point of js.models.haldane (a = 1): the d_x − i d_y = t₁ Σ e^{ik·δ} zero at (2π/3, 2π/(3√3))
    k_valley = jnp.array([[2 * np.pi / 3, 2 * np.pi / (3 * np.sqrt(3.0))]])
    omega, sigma = [], []
    for ratio in RATIOS:
        mass = 0.5 * ratio * 6.0  # gap 2M over the bandwidth 6t₁ of the t₂ = 0 lattice
        near = k_valley + jnp.array([[mass / 1.5, 0.0]])  # |q| = M/v off the valley: Ω(K)/2^{3/2}
        omega.append(np.abs(np.asarray(js.berry_curvature(js.models.haldane(1.0, 0.0, 0.0, mass),
                                                          jnp.concatenate([k_valley, near]))[:, 0, 0, 1])).tolist())
        delta = 0.5 * ratio * 2.0  # gap 2Δ over the bandwidth 2ħv k_max (ħv = 1 eV·Å, k_max = 1/Å)
        grid = js.kgrid.disk(1.0, n, 8, scale=delta)
        sigma.append(float(js.hall_conductivity(js.models.massive_dirac(1.0, delta), 0.0, grid)))
    return {**out, "omega_K": omega, "sigma_dirac": sigma}


if __name__ == "__main__":
    print(json.dumps(_measure(int(sys.argv[1]), int(sys.argv[2]))))
