"""Semiclassical equations of motion of the centre of mass, Eqs. 42–43, as one linear system.

Shared by the wavepacket integrators (one state per step) and the SSCT kinetic theory (every
band and field at each k): ẋ and k̇ appear on both sides, so they are solved together.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from .units import HBAR


def solve_small(a, b):
    """Solve a tiny dense system a y = b (N ≤ 6) by Gauss–Jordan with partial pivoting; N = 4 (the
    phase space of two dimensions) by its adjugate, ``_solve4`` (2× faster on the textured transport paths), and
    N = 6 (three dimensions) by Cramer's rule with Laplace expansions, ``_solve6`` (3.5× faster; with the bands
    unrolled, ``transport._ssct.UNROLLED_BANDS``, a 3D textured two-band SSCT current on 24³ k: forward 27–39 →
    5.9–6.7 ms, gradient 65–68 → 30–31 ms; 14–16 ms once its curvatures were split, not sliced, per band).

    Written out so the per-step solve is a handful of fused arithmetic ops rather than a
    batched LAPACK call (which costs ~100× the arithmetic on a CPU); the row swaps are selects
    with one-hot masks, not gathers and scatters (which XLA:CPU runs as separate, slow kernels
    under vmap). Its tangent is a linear solve (``jax.lax.custom_linear_solve``, as in ``jnp.linalg.solve``),
    ẏ = a⁻¹(ḃ − ȧy), which reverse mode transposes into a solve with aᵀ instead of transposing the elimination's
    row slices (pads of the whole matrix): with Gauss–Jordan for N = 6, the gradient of a sum over 12 800 vmapped
    6×6 solves 43–46 → 9.1–9.8 ms (forward 4.7–5.0), of a 3D textured SSCT current on 24³ k 176 → 57 ms (forward 28).
    """
    if a.shape[0] == 4:
        return _solve4(a, b)
    return _solve6(a, b) if a.shape[0] == 6 else _gauss_jordan(a, b)


def _solve_tangent(solve, a, b, da, db):
    """(y, ẏ) of a y = b: ẏ = a⁻¹(ḃ − ȧy) as a ``custom_linear_solve`` by ``solve`` (with aᵀ for its transpose)."""
    y = solve(a, b)
    tangent = jax.lax.custom_linear_solve(lambda v: a @ v, db - da @ y, lambda _, r: solve(a, r),
                                          lambda _, r: solve(a.T, r))
    return y, tangent


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


_gauss_jordan.defjvp(lambda primals, tangents: _solve_tangent(_gauss_jordan, *primals, *tangents))


def _laplace_terms():
    """(S, S^c, sign) for the Laplace expansion of a 6×6 determinant along rows 0–2: det M = Σ_S sign ·
    det M[0:3, S] · det M[3:6, S^c] over the 20 column triples S, sign the parity of the permutation (S, S^c)."""
    terms = []
    for first in itertools.combinations(range(6), 3):
        rest = tuple(c for c in range(6) if c not in first)
        order, sign = list(first + rest), 1
        for i in range(6):  # parity by cycle sort
            while order[i] != i:
                j = order[i]
                order[i], order[j], sign = order[j], order[i], -sign
        terms.append((first, rest, sign))
    return tuple(terms)


_LAPLACE = _laplace_terms()


def _det3(e, rows, cols):
    (r0, r1, r2), (c0, c1, c2) = rows, cols
    return (e[r0][c0] * (e[r1][c1] * e[r2][c2] - e[r1][c2] * e[r2][c1])
            - e[r0][c1] * (e[r1][c0] * e[r2][c2] - e[r1][c2] * e[r2][c0])
            + e[r0][c2] * (e[r1][c0] * e[r2][c1] - e[r1][c1] * e[r2][c0]))


def _det6(e):
    """det of a 6×6 matrix given as rows of entries, by its Laplace expansion (``_LAPLACE``)."""
    return sum(sign * _det3(e, (0, 1, 2), first) * _det3(e, (3, 4, 5), rest) for first, rest, sign in _LAPLACE)


def _cramer6(a, b):
    """a y = b for a (6, 6): y_j = det(a with column j replaced by b)/det a (Cramer), each determinant by its
    Laplace expansion into 3×3 minors of the top and bottom rows (the minors the seven share are one HLO
    instruction each after XLA's CSE). Elementwise arithmetic only, no pivot search, no sub-block to invert:
    it fails only where a is singular. Against exact rational elimination, on Eq. 43 systems with |Ω^{kk}| up
    to w = 10 / 1e3 / 1e5 Å² and mixed curvatures ~0.3√w, errors of 5e-13 / 9e-14 / 1.4e-11 of max|y|
    (Gauss–Jordan 6e-15 / 2e-14 / 5e-13); with 1 + F^{kx} singular to 1e-4 / 1e-8 (cond(a) 1e5 / 4e10)
    7e-11 / 3e-7 (Gauss–Jordan 5e-10 / 1e-5) — where a Schur complement on the 3×3 blocks gave 3e-4 / 40.
    13 824 vmapped Eq. 43 systems: 1.4 ms against 5.0 by Gauss–Jordan."""
    e = [[part[0, 0] for part in jnp.split(row, 6, 1)] for row in jnp.split(a, 6, 0)]  # splits, not a[i, j]
    v = [part[0] for part in jnp.split(b, 6)]
    replaced = [[[v[i] if c == j else e[i][c] for c in range(6)] for i in range(6)] for j in range(6)]
    return jnp.stack([_det6(m) for m in replaced]) / _det6(e)


@jax.custom_jvp
def _solve6(a, b):
    """a y = b for a (6, 6) by ``_cramer6``; its tangent is the solve's own (``_solve_tangent``)."""
    return _cramer6(a, b)


_solve6.defjvp(lambda primals, tangents: _solve_tangent(_solve6, *primals, *tangents))


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
