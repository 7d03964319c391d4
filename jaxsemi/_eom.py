"""Semiclassical equations of motion of the centre of mass, Eqs. 42–43, as one linear system.

Shared by the wavepacket integrators (one state per step) and the SSCT kinetic theory (every
band and field at each k): ẋ and k̇ appear on both sides, so they are solved together.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .units import HBAR


def solve_small(a, b):
    """Solve a tiny dense system a y = b (N ≤ 6) by Gauss–Jordan with partial pivoting; N = 4 (the
    phase space of two dimensions) by its adjugate, ``_solve4`` (2× faster on the textured transport paths).

    Written out so the per-step solve is a handful of fused arithmetic ops rather than a
    batched LAPACK call (which costs ~100× the arithmetic on a CPU); the row swaps are selects
    with one-hot masks, not gathers and scatters (which XLA:CPU runs as separate, slow kernels
    under vmap). Its tangent is a linear solve (``jax.lax.custom_linear_solve``, as in ``jnp.linalg.solve``),
    ẏ = a⁻¹(ḃ − ȧy), which reverse mode transposes into a solve with aᵀ instead of transposing the elimination's
    row slices (pads of the whole matrix): the gradient of a sum over 12 800 vmapped 6×6 solves 43–46 → 9.1–9.8
    ms (forward 4.7–5.0), of a 3D textured SSCT current on 24³ k 176 → 57 ms (forward 28).
    """
    return _solve4(a, b) if a.shape[0] == 4 else _gauss_jordan(a, b)


@jax.custom_jvp
def _gauss_jordan(a, b):
    """a y = b by Gauss–Jordan elimination with partial pivoting (``solve_small``)."""
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


@_gauss_jordan.defjvp
def _gauss_jordan_jvp(primals, tangents):
    a, b = primals
    da, db = tangents
    y = _gauss_jordan(a, b)
    tangent = jax.lax.custom_linear_solve(lambda v: a @ v, db - da @ y, lambda _, r: _gauss_jordan(a, r),
                                          lambda _, r: _gauss_jordan(a.T, r))
    return y, tangent


@jax.custom_jvp
def _solve4(a, b):
    """a y = b for a (4, 4) by the adjugate from 2×2 minors (Cramer's rule): elementwise arithmetic
    only, no pivot search. Its forward error grows as cond(a)²·ε, not cond(a)·ε: for the matrices of
    Eqs. 42–43 (|Ω^{kk}| up to 1e5 Å², mixed curvatures of order one) ≤ 3e-12 relative against 40-digit
    solves (Gauss–Jordan 3e-15), for generic 4×4 systems of condition 1e4 5e-11.

    Its tangent is the solve's own, ẏ = a⁻¹(ḃ − ȧy) with the same adjugate, whose transpose reverse mode
    takes (a⁻ᵀ = adjᵀ/det), not the derivative of the adjugate's polynomial in the 16 entries (the gradient
    of the tilted cone's textured SSCT current on 12 800 k: 6.2 → 3.5 ms; 34 ms with the entries as slices)."""
    adj, det = adjugate4(a)
    return _apply(adj, b) / det


@_solve4.defjvp
def _solve4_jvp(primals, tangents):
    a, b = primals
    da, db = tangents
    adj, det = adjugate4(a)
    y = _apply(adj, b) / det
    return y, _apply(adj, db - jnp.sum(da * y, -1)) / det


def _apply(adj, v):
    """adj v (4,) for the adjugate's rows of entries and v (4,), taken apart by one split."""
    v = [part[0] for part in jnp.split(v, 4)]
    return jnp.stack([sum(r[j] * v[j] for j in range(4)) for r in adj])


def adjugate4(a):
    """The adjugate of a (4, 4) as rows of entries, and its determinant: a⁻¹ = adj/det (2×2 minors).

    The entries come from splits of its rows and columns: reverse mode transposes them into concatenates, where
    each of 16 ``a[i, j]`` was a pad of the whole matrix (the gradient of a textured SSCT current: 16 pad kernels,
    each recomputing its share of the backward pass, 34 → 6 ms; a split of the flattened matrix slowed the exact
    steady state's characteristics 1.2×)."""
    split = np.split if isinstance(a, np.ndarray) else jnp.split  # NumPy stays NumPy (``_magnus``'s import-time table)
    (a00, a01, a02, a03), (a10, a11, a12, a13), (a20, a21, a22, a23), (a30, a31, a32, a33) = (
        [part[0, 0] for part in split(row, 4, 1)] for row in split(a, 4, 0))
    s0, s1, s2 = a00 * a11 - a10 * a01, a00 * a12 - a10 * a02, a00 * a13 - a10 * a03
    s3, s4, s5 = a01 * a12 - a11 * a02, a01 * a13 - a11 * a03, a02 * a13 - a12 * a03
    c5, c4, c3 = a22 * a33 - a32 * a23, a21 * a33 - a31 * a23, a21 * a32 - a31 * a22
    c2, c1, c0 = a20 * a33 - a30 * a23, a20 * a32 - a30 * a22, a20 * a31 - a30 * a21
    det = s0 * c5 - s1 * c4 + s2 * c3 + s3 * c2 - s4 * c1 + s5 * c0
    adj = ((a11 * c5 - a12 * c4 + a13 * c3, -a01 * c5 + a02 * c4 - a03 * c3,
            a31 * s5 - a32 * s4 + a33 * s3, -a21 * s5 + a22 * s4 - a23 * s3),
           (-a10 * c5 + a12 * c2 - a13 * c1, a00 * c5 - a02 * c2 + a03 * c1,
            -a30 * s5 + a32 * s2 - a33 * s1, a20 * s5 - a22 * s2 + a23 * s1),
           (a10 * c4 - a11 * c2 + a13 * c0, -a00 * c4 + a01 * c2 - a03 * c0,
            a30 * s4 - a31 * s2 + a33 * s0, -a20 * s4 + a21 * s2 - a23 * s0),
           (-a10 * c3 + a11 * c1 - a12 * c0, a00 * c3 - a01 * c1 + a02 * c0,
            -a30 * s3 + a31 * s1 - a32 * s0, a20 * s3 - a21 * s1 + a22 * s0))
    return adj, det


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
