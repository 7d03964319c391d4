"""Semiclassical equations of motion of the centre of mass, Eqs. 42–43, as one linear system.

Shared by the wavepacket integrators (one state per step) and the SSCT kinetic theory (every
band and field at each k): ẋ and k̇ appear on both sides, so they are solved together.
"""

from __future__ import annotations

import jax.numpy as jnp

from .units import HBAR


def solve_small(a, b):
    """Solve a tiny dense system a y = b (N ≤ 6) by Gauss–Jordan with partial pivoting.

    Written out so the per-step solve is a handful of fused arithmetic ops rather than a
    batched LAPACK call (which costs ~100× the arithmetic on a CPU); the row swaps are selects
    with one-hot masks, not gathers and scatters (which XLA:CPU runs as separate, slow kernels
    under vmap).
    """
    n = a.shape[0]
    m = jnp.concatenate([a, b[:, None]], axis=1)
    rows = jnp.arange(n)[:, None]
    for i in range(n):
        pick = rows == i + jnp.argmax(jnp.abs(m[i:, i]))  # the pivot row p, one-hot (n, 1)
        pivot = jnp.sum(jnp.where(pick, m, 0.0), 0)  # m[p]
        m = jnp.where(pick, m[i], m)  # row i to where the pivot was
        pivot = pivot / pivot[i]
        m = jnp.where(rows == i, pivot, m - jnp.where(rows == i, 0.0, m[:, i:i + 1]) * pivot)
    return m[:, n]


def centre_of_mass_rates(v, dhdx, f_kk, f_kx, f_xk, f_xx, e_field):
    """(ẋ, k̇) from Eqs. 42/43, solved as one 2d×2d linear system.

        ẋ_α + Σ_β (F^{k_α x_β} ẋ_β + F^{k_α k_β} k̇_β) = v_α,
        ħk̇_α − ħ Σ_β (F^{x_α x_β} ẋ_β + F^{x_α k_β} k̇_β) = −E_α − ⟨∂𝓗/∂x_α⟩    (e = 1).

    v (d,) Å/fs is ⟨∂𝓗/∂ħk⟩, dhdx (d,) eV/Å is ⟨∂𝓗/∂x⟩, the curvatures (d, d) are
    [α, β] expectation values (kk Å², kx and xk dimensionless, xx 1/Å²); E (d,) V/Å.
    Returns ẋ (d,) Å/fs and k̇ (d,) 1/(Å·fs).
    """
    d = v.shape[0]
    eye = jnp.eye(d)
    a = jnp.block([[eye + f_kx, f_kk], [-HBAR * f_xx, HBAR * (eye - f_xk)]])
    y = solve_small(a, jnp.concatenate([v, -e_field - dhdx]))
    return y[:d], y[d:]
