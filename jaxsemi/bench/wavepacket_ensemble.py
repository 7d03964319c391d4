"""Landau–Zener ensemble: full-band wavepackets per second, jaxsemi in both ensemble modes
(``"vmap"``: one diffrax solve per trajectory, vmapped; ``"shared"``: the batch as one ODE with
one adaptive step sequence) vs a loop of scipy.integrate.solve_ivp on the same equations
(Eqs. 19–21 + 10).

Each wavepacket starts in the lower band of 𝓗 = v(k_x σ_x + k_y σ_y) + Δσ_z at k_x = +K and is
swept to −K by E ∥ x; the upper-band population is compared with P = exp(−π(Δ² + v²k_y²)/(vE)).
Both sides use a 5(4) Runge–Kutta pair at the same rtol/atol (Tsit5, named explicitly; Magnus4, the
two-band default of "full": see ``wavepacket_steps``, / RK45); the SciPy loop is timed on a subset and extrapolated
to the full ensemble (reported as such).

    python -m jaxsemi.bench --only wavepacket_ensemble [--quick]
"""

from __future__ import annotations

import time

import jax.numpy as jnp
import numpy as np

import jaxsemi as js

from ._common import best_time

V, DELTA, E, T1 = 1.0, 0.05, 0.01, 250.0
RTOL, ATOL = 1e-8, 1e-9


def lz_formula(ky):
    return np.exp(-np.pi * (DELTA**2 + V**2 * ky**2) / (V * E))


def _jax_run(model, k0, ensemble):
    import diffrax

    tr = js.wavepacket.evolve(model, jnp.zeros(2), k0, T1, jnp.array([E, 0.0]), band=0, saveat=2,
                              stepsize_controller=js.wavepacket.default_controller(RTOL, ATOL),
                              solver=diffrax.Tsit5(), ensemble=ensemble)
    return tr.populations[:, -1, 1].block_until_ready(), tr.stats["num_steps"]


def _jax_timed(model, k0, ky, ensemble, repeats):
    """Compile + first-run time, best of ``repeats`` runs, mean steps and the max error vs LZ."""
    t = time.perf_counter()
    _jax_run(model, k0, ensemble)
    compile_s = time.perf_counter() - t
    best, (p, steps) = best_time(lambda: _jax_run(model, k0, ensemble), repeats)
    return {"seconds": best, "compile_seconds": compile_s, "trajectories_per_s": len(ky) / best,
            "mean_steps": float(np.mean(np.asarray(steps))),
            "max_error_vs_lz_formula": float(np.max(np.abs(np.asarray(p) - lz_formula(ky))))}, np.asarray(p)


def _scipy_one(k0):
    from scipy.integrate import solve_ivp

    hbar = js.units.HBAR
    sx = np.array([[0, 1], [1, 0]], complex)
    sy = np.array([[0, -1j], [1j, 0]], complex)
    sz = np.array([[1, 0], [0, -1]], complex)

    def rhs(t, y):  # y = x (2), k (2), Re χ (2), Im χ (2); the same full-band equations
        k, chi = y[2:4], y[4:6] + 1j * y[6:8]
        h = V * (k[0] * sx + k[1] * sy) + DELTA * sz
        xdot = [np.real(np.vdot(chi, V * sx @ chi)) / hbar, np.real(np.vdot(chi, V * sy @ chi)) / hbar]
        kdot = [-E / hbar, 0.0]  # no texture: ⟨∂𝓗/∂x⟩ = 0
        cdot = -1j / hbar * (h @ chi)
        return np.concatenate([xdot, kdot, cdot.real, cdot.imag])

    w, u = np.linalg.eigh(V * (k0[0] * sx + k0[1] * sy) + DELTA * sz)
    chi0 = u[:, 0]
    y0 = np.concatenate([[0.0, 0.0], k0, chi0.real, chi0.imag])
    sol = solve_ivp(rhs, (0.0, T1), y0, method="RK45", rtol=RTOL, atol=ATOL, t_eval=[T1])
    k1, chi = sol.y[2:4, -1], sol.y[4:6, -1] + 1j * sol.y[6:8, -1]
    w, u = np.linalg.eigh(V * (k1[0] * sx + k1[1] * sy) + DELTA * sz)
    return abs(np.vdot(u[:, 1], chi)) ** 2, sol.nfev


def run(quick: bool = False) -> dict:
    n = 500 if quick else 10_000
    n_scipy = 4 if quick else 40
    ky = np.linspace(-0.1, 0.1, n)
    k0 = jnp.stack([jnp.full(n, E * T1 / (2 * js.units.HBAR)), jnp.asarray(ky)], -1)
    model = js.models.massive_dirac(V, DELTA)

    jax_runs, p_jax = {}, {}
    for ensemble in ("vmap", "shared"):
        jax_runs[ensemble], p_jax[ensemble] = _jax_timed(model, k0, ky, ensemble, 1 if quick else 2)

    idx = np.linspace(0, n - 1, n_scipy).astype(int)
    t = time.perf_counter()
    res = [_scipy_one(np.asarray(k0[i])) for i in idx]
    scipy_s = (time.perf_counter() - t) / n_scipy * n
    p_scipy = np.array([r[0] for r in res])
    for ensemble, out in jax_runs.items():
        out["speedup_vs_scipy"] = scipy_s / out["seconds"]
        out["max_difference_to_scipy_subset"] = float(np.max(np.abs(p_scipy - p_jax[ensemble][idx])))

    return {
        "benchmark": "wavepacket_ensemble (Landau-Zener, full-band, 2 bands)",
        "trajectories": n,
        "rtol_atol": [RTOL, ATOL],
        "jax_vmap": jax_runs["vmap"],
        "jax_shared": jax_runs["shared"],
        "max_shared_vmap_difference": float(np.max(np.abs(p_jax["shared"] - p_jax["vmap"]))),
        "scipy_subset": n_scipy,
        "scipy_seconds_extrapolated": scipy_s,
        "scipy_trajectories_per_s": n / scipy_s,
        "scipy_mean_rhs_evals": float(np.mean([r[1] for r in res])),
        "max_error_vs_lz_formula_scipy_subset": float(np.max(np.abs(p_scipy - lz_formula(ky[idx])))),
        "note": "SciPy loop timed on an evenly spaced subset of k_y and extrapolated linearly",
    }
