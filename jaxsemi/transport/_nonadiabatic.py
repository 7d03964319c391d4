"""Non-adiabatic multiple-band transport (MSCT), Eqs. 54–63, at one k-point.

For the active manifold a = [start, stop) and each field E (V/Å), e = 1:

* Eq. 55 (docs/conventions.md §7): V_nm = eE·[R_k]_nm for n ≠ m in a, V_nn = 0 — the off-diagonal Berry
  connection only (degenerate pairs carry no V);
* Eq. 61: the hybridised bands 𝓔_i, η^(i) are the eigenpairs of H̄_a = diag(ε_a) + V (all
  orders in E inside the manifold);
* Eqs. 62–63: ṽ_i = ⟨η|∂𝓗_a/∂ħk|η⟩ + (e/ħ)⟨𝓕^{kk}⟩^(i) E and F̃_i = −⟨η|∂𝓗_a/∂x|η⟩ −
  e⟨𝓕^{xk}⟩^(i) E, with the remote-band non-Abelian curvatures of Eq. 40 (signs as Eq. 42,
  docs/conventions.md §13 on δu_i);
* Eq. 57: g_i = g⁰(𝓔_i) − τ[∂g⁰/∂x·ṽ_i + ∂g⁰/∂ħk·(−eE + F̃_i)], where ∂g⁰/∂k and ∂g⁰/∂x
  come from the slopes of the hybridised energies 𝓔_i(k, x), ⟨η_i|∂H̄_a|η_i⟩ with ∂H̄_a written
  out by perturbation theory (``_hbar_slope``; no autodiff through the eigen-solvers);
* ``relaxation="exact"`` (uniform systems): g_i = ∫(ds/τ)e^{−s/τ} g⁰(𝓔_i(k + eEs/ħ; E)), the exact
  relaxation-time steady state of the field-dressed bands (ħk̇ = −eE; its first order in τ is Eq. 57);
* Eq. 60: the current integrand −e Σ_i g_i ṽ_i, or −e Σ_i D_i g_i ṽ_i with the phase-space
  density of ``_phase_space`` (``density=True``, textures only).

A two-band model whose manifold is both bands skips the eigen-solvers: Eqs. 61–63 in closed form
from 𝓗's d-vector and its k, x derivatives (``_two_band_bands``, docs/conventions.md §7).
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
from jax.ad_checkpoint import checkpoint_name

from .._eigh import _safe_sqrt, cross, eigh, eigvalsh, inverse_gaps, split_levels
from .._geometry import (berry_connection_offdiag, component_cross, einsum, matmul, nonabelian_curvature_block,
                         point_geometry_second, rotate, two_band_components, two_band_d)
from ..units import HBAR
from ._phase_space import manifold_density
from ._relaxation import chambers_average, lattice_chambers, lattice_pauli, shift_table
from ._ssct import occupation_and_slope

#: ``checkpoint_name`` of the closed form's slopes of 𝓗's d-vector (``_bloch_derivatives``), which the textured
#: current's rematerialisation keeps where they are the same at every k (``save_shared_slopes``)
SLOPES = "nonadiabatic_d_slopes"


def _sandwich(eta, op):
    """⟨η_i|op|η_i⟩ for eta (B, m, m) (columns) and op (..., m, m) with leading axes kept."""
    lead, m = op.shape[:-2], op.shape[-1]
    out = jnp.real(einsum("Bmi,Pmn,Bni->BiP", jnp.conj(eta), op.reshape((-1, m, m)), eta))
    return out.reshape(out.shape[:2] + lead)


def _hbar_slope(geo, second, fields, start: int, stop: int):
    """∂H̄_a/∂λ_β (B, L, m, m), λ = k or (k, x), in the eigenbasis gauge with no diagonal
    connection, from the point geometry and ∂²𝓗/∂k_α∂λ_β (d, L, n, n) (not rotated).

    Perturbation theory: ∂U/∂λ_β = U C_β, C_β,lm = ⟨l|∂_β𝓗|m⟩/(ε_m − ε_l) (zero on degenerate
    pairs, as the masked eigh derivative), so ∂_β(U†∂_α𝓗 U) = U†∂_α∂_β𝓗 U + [U†∂_α𝓗 U, C_β] and
    ∂_β ε_n = ⟨n|∂_β𝓗|n⟩; with V = eE·R of Eq. 55 the field is contracted first. The slopes
    ∂𝓔_i/∂λ_β = ⟨η_i|∂_β H̄_a|η_i⟩ (Hellmann–Feynman) do not depend on the diagonal gauge term,
    which only adds a commutator with H̄_a. Written out, this replaces forward-mode autodiff
    through the eigen-solvers, which a reverse-mode gradient would then have to transpose.
    """
    w, sl = geo.energies, slice(start, stop)
    lam_d = geo.dk if geo.dx is None else jnp.concatenate([geo.dk, geo.dx])  # U†∂𝓗/∂λ U (L, n, n)
    inv, _ = inverse_gaps(w)  # 1/(ε_n − ε_m)
    c = -lam_d * inv  # C_β (L, n, n)
    v_e = einsum("Bd,dnm->Bnm", fields, geo.dk)[:, None]  # E·U†∂_k𝓗 U (B, 1, n, n)
    dv = (rotate(geo.states, einsum("Bd,dLnm->BLnm", fields, second))[..., sl, sl]
          + matmul(v_e[..., sl, :], c[None, :, :, sl]) - matmul(c[None, :, sl, :], v_e[..., sl]))
    slope = jnp.real(jnp.diagonal(lam_d, axis1=1, axis2=2))  # ∂_β ε_n (L, n)
    dinv = (-(slope[:, :, None] - slope[:, None, :]) * inv**2)[:, sl, sl]  # ∂_β 1/(ε_n − ε_m)
    d_conn = -1j * (dv * inv[sl, sl] + v_e[..., sl, sl] * dinv[None])  # ∂_β E·[R_k]_nm (B, L, m, m)
    return jax.vmap(jnp.diag)(slope[:, sl]).astype(d_conn.dtype) + d_conn


def _manifold_hamiltonian(w, field_dk, start, stop):
    """Eq. 61's H̄_a = diag(ε_a) + eE·R_k (..., m, m) in eV from the energies w (n,) and
    U†(eE·∂𝓗/∂k)U (..., n, n) in eV (E in V/Å)."""
    conn = berry_connection_offdiag(w, field_dk)[..., start:stop, start:stop]  # eE·R_k
    return jnp.diag(w[start:stop]).astype(conn.dtype) + conn


def _dressed_bloch_vector(d0, d, e):
    """Eq. 61's H̄ = d₀ + b·σ of a two-band manifold (both bands) in the lab basis, from 𝓗 = d₀ + d·σ and
    eE·∂𝓗/∂k = e₀ + e·σ (eV; e (..., 3) broadcasts): V = eE·R_k is the σ-vector v ⟂ d with
    [𝓗, V] = −i(eE·∂𝓗/∂k) off the diagonal, so d × v = −e_⟂/2 and v = d × e/(2|d|²); zero where the
    levels are not split (``split_levels``, as ``berry_connection_offdiag``). Returns b (..., 3), d × e and
    1/(2|d|²) (1/eV²)."""
    _, inv2 = _half_inverse_square(d0, d)
    cross_de = cross(d, e)
    return d + cross_de * inv2, cross_de, inv2


def _half_inverse_square(d0, d):
    """|d|² and 1/(2|d|²) (1/eV²) of 𝓗 = d₀ + d·σ, the latter 0 where the levels are not split (``split_levels``)."""
    square = jnp.sum(d * d, -1)
    return square, _half_inverse(square, split_levels(d0, d)[1])


def _half_inverse(square, split):
    """1/(2|d|²) (1/eV²) from |d|² (eV²), 0 where the levels are not ``split``."""
    return jnp.where(split, 0.5 / jnp.where(split, square, 1.0), 0.0)


def _two_band_dressed(d0, d, e):
    """(𝓔_−, 𝓔_+) = d₀ ∓ |b| eV of a two-band manifold (both bands) from 𝓗 = d₀ + d·σ and the σ-part e (3,) of
    eE·∂𝓗/∂k, with the dressed Bloch vector b = d + (d × e)/(2|d|²) of ``_dressed_bloch_vector``. Its parts are
    orthogonal: |b|² = |d|² + |d × e|²/(4|d|⁴), |d × e|² = |d|²|e|² − (d·e)². No cross product, whose tangent
    (``cross``'s skew matrices) dominated the derivatives in E (tilted cone, 200×64 disk, exact non-adiabatic σ at
    a field: 5.8–6.4 vs 8.4 ms)."""
    square, inv2 = _half_inverse_square(d0, d)
    perp = square * jnp.sum(e * e, -1) - jnp.sum(d * e, -1) ** 2  # |d × e|² (no clamp: its E-derivatives at E = 0)
    half = _safe_sqrt(square + perp * inv2**2)
    return d0 - half, d0 + half


def _two_band_dressed_by_vector(d0, d, e):
    """``_two_band_dressed`` through b itself, for ``lattice_chambers``: there each of the dot products above is a
    reduce that reads the shifted d-vector table again (Haldane 120², exact J at 8 fields: 31 vs 34 ms)."""
    b, _, _ = _dressed_bloch_vector(d0, d, e)
    half = _safe_sqrt(jnp.sum(b * b))
    return d0 - half, d0 + half


def dressed_energies(h, dh, start: int, stop: int):
    """Eq. 61's 𝓔_i (m,) in eV from 𝓗 (n, n) and eE·∂𝓗/∂k (n, n) at one point (E in V/Å), by ``eigh`` of H̄_a."""
    w, u = eigh(h)
    return eigvalsh(_manifold_hamiltonian(w, rotate(u, dh), start, stop))


def _dressed_bands(model, x, start: int, stop: int):
    """(k (d,) 1/Å, eE (d,) V/Å) ↦ Eq. 61's 𝓔_i of the manifold [start, stop) in eV, as a tuple of parts in band
    order (``_relaxation.chambers_average``); Eq. 61 needs 𝓗's derivative along E only: one jvp. Two bands, both
    in the manifold: from the real d-vector in closed form, (𝓔_−, 𝓔_+) = d₀ ∓ |b| (``_two_band_dressed``: the
    tilted cone's exact σ at a field 5.8–6.4 ms, 12.7 through the complex 𝓗 and a cross product); otherwise
    (``dressed_energies``,)."""
    if model.n_bands == 2 and stop - start == 2:
        def dressed(kk, e):
            (d0, d), (_, de) = jax.jvp(lambda q: two_band_d(model, q, x), (kk,), (e,))
            return _two_band_dressed(d0, d, de)
    else:
        def dressed(kk, e):
            h, dh = jax.jvp(lambda q: model.hamiltonian(q, x, model.params), (kk,), (e,))
            return (dressed_energies(h, dh, start, stop),)
    return dressed


def _manifold_bands(model, k, x, fields, start: int, stop: int, textured: bool, density: bool):
    """Eqs. 61–63 for the manifold [start, stop) of any model: 𝓔 (B, m) eV and η from ``eigh`` of H̄_a,
    ṽ (B, m, d) Å/fs, the slopes ∂𝓔/∂λ (B, m, L) from ``_hbar_slope``, F̃ (B, m, d) eV/Å (None
    untextured), the density weights D_i (B, m) (None unless textured with ``density``) and the point geometry."""
    geo, second = point_geometry_second(model, k, x, textured)
    energies, eta = jax.vmap(eigh)(_manifold_hamiltonian(geo.energies, einsum("Bd,dnm->Bnm", fields, geo.dk),
                                                          start, stop))
    slope = _hbar_slope(geo, second, fields, start, stop)
    jac = jnp.real(einsum("Bmi,BLmn,Bni->BiL", jnp.conj(eta), slope, eta))  # ∂𝓔_i/∂λ (B, m, L)
    w, dk, dx = geo.energies, geo.dk, geo.dx
    sl = slice(start, stop)
    fkk = jnp.moveaxis(nonabelian_curvature_block(w, dk, dk, start, stop), (0, 1), (-2, -1))  # (d, d, m, m)
    vel = _sandwich(eta, dk[:, sl, sl]) / HBAR + einsum("Biab,Bb->Bia", _sandwich(eta, fkk), fields) / HBAR
    force = weight = None
    if textured:
        fxk = jnp.moveaxis(nonabelian_curvature_block(w, dx, dk, start, stop), (0, 1), (-2, -1))
        force = -_sandwich(eta, dx[:, sl, sl]) - einsum("Biab,Bb->Bia", _sandwich(eta, fxk), fields)
        if density:
            weight = manifold_density(eta, nonabelian_curvature_block(w, dk, dx, start, stop))
    return energies, vel, jac, force, weight, geo


def _bloch_derivatives(model, k, x, textured: bool):
    """d₀, d_x, d_y, d_z of 𝓗 = d₀ + d·σ (2×2) at (k, x), each with its derivatives in λ = k or (k, x) (L) and
    ∂²/∂k_α∂λ_β (d, L): four tuples ((), (L,), (d, L)). Forward mode through 𝓗's d-vector (real, no
    eigen-solver; a registered d-vector function directly, not through the complex 𝓗, whose slices transposed to
    pads in reverse mode: the current's gradient 1.3× faster), component by component (``two_band_components``):
    a (3,) vector's stack and split transposed into a concatenate that took a quarter of the gradient's kernel time."""
    def first(kk):
        # x apart from k (not in λ = (k, x)): the same at every k, so a texture's x-only terms (cos G·x) are computed
        # once, not per k (as λ, the tilted cone's textured current ran 1.6× slower in this component form)
        argnums = (0, 1) if textured else 0
        jac, val = jax.jacfwd(lambda a, b: (two_band_components(model, a, b),) * 2, argnums, has_aux=True)(kk, x)
        if textured:  # the x-part behind a barrier: XLA had fused a texture's sin, cos into per-k reductions
            # (textured cone, J at one field: forward 0.82 → 0.42 ms, gradient 2.48 → 2.13 ms)
            jac = tuple(checkpoint_name(jnp.concatenate((dk, jax.lax.optimization_barrier(dx))), SLOPES)
                        for dk, dx in jac)  # 4 × (L,)
        return jac, (jac, val)

    hess, (jac, val) = jax.jacfwd(first, has_aux=True)(k)  # 4 × (L, d)
    return [(v, j, h.T) for v, j, h in zip(val, jac, hess)]


def save_shared_slopes(prim, *avals, **params) -> bool:
    """``jax.checkpoint`` policy of a per-k current under the package's vmap over k: save the d-vector slopes
    named ``SLOPES`` where the vmap left them unbatched — the same at every k, as a linear cone's (one (L,) vector,
    not (chunk, L)) — and recompute everything else. Recomputed in reverse mode, XLA fused them, with the texture's
    sine and cosine, into every element of the slopes' cotangent (textured cone, non-adiabatic J at one field: its
    gradient 2.2–2.4 → 1.6–1.9 ms; per-k slopes stay recomputed: a 3D model's saved slopes made it 1.18× slower)."""
    return prim.name == "name" and params.get("name") == SLOPES and avals[0].ndim == 1


def _two_band_bands(model, k, x, fields, textured: bool):
    """Eqs. 61–63 for a two-band model whose manifold is both bands, in closed form.

    With H̄ = d₀ + b·σ (``_dressed_bloch_vector``, b = d + d × e/(2|d|²)), 𝓔_∓ = d₀ ∓ |b|, the states
    have Bloch vectors ∓b̂ and ⟨η_∓|∂𝓗|η_∓⟩ = ∂d₀ ∓ b̂·∂d. No remote bands: the ⟨𝓕⟩ terms of
    Eqs. 62–63 vanish and D_i = 1. The slopes ∂𝓔_∓/∂λ = ∂d₀ ∓ b̂·∂b use ∂e = eE·∂²d/∂k∂λ.
    Written per component (lists of (B,) and (B, L) arrays, like ``two_band_geometry``), not as (..., 3) vectors.

    Returns 𝓔 (B, 2) eV, ṽ (B, 2, d) Å/fs, ∂𝓔/∂λ (B, 2, L) and F̃ (B, 2, d) eV/Å (None untextured).
    """
    d = k.shape[0]
    (d0, a0, _), *parts = _bloch_derivatives(model, k, x, textured)  # a0 = ∂d₀/∂λ
    dc, ac, ddc = zip(*parts)  # d, ∂d/∂λ and ∂²d/∂k∂λ: 3 × (), (L,), (d, L)
    # 1/(2|d|²) from the components' squares: the flag alone needs the stacked vector (no gradient flows through it)
    inv2 = _half_inverse(sum(part * part for part in dc), split_levels(d0, jnp.stack(dc))[1])
    e = [einsum("Ba,a->B", fields, part[:d]) for part in ac]  # eE·∂d/∂k (B,)
    de = [einsum("Ba,aL->BL", fields, part) for part in ddc]  # ∂e/∂λ (B, L)
    d_x_e = component_cross(dc, e)
    b = [dc[c] + d_x_e[c] * inv2 for c in range(3)]
    a_dot_d = sum(ac[c] * dc[c] for c in range(3))  # (L,)
    dcross = [p + q for p, q in zip(component_cross([part[None] for part in ac], [part[:, None] for part in e]),
                                    component_cross(dc, de))]  # ∂(d × e)/∂λ (B, L)
    db = [ac[c][None] + dcross[c] * inv2 - (4 * inv2**2) * a_dot_d[None] * d_x_e[c][:, None] for c in range(3)]
    bn = _safe_sqrt(sum(part * part for part in b))
    safe = jnp.where(bn > 0, bn, 1.0)
    bhat = [part / safe for part in b]
    sign = jnp.array([-1.0, 1.0])[None, :, None]
    energies = d0 + sign[..., 0] * bn[:, None]

    def along(m0, m):  # ∂d₀ ∓ b̂·∂d (B, 2, len(m0)) from ∂d₀ and the components of ∂d
        return m0[None, None] + sign * sum(bhat[c][:, None] * m[c][None] for c in range(3))[:, None]

    vel = along(a0[:d], [part[:d] for part in ac]) / HBAR
    jac = a0[None, None] + sign * sum(bhat[c][:, None] * db[c] for c in range(3))[:, None]
    return energies, vel, jac, -along(a0[d:], [part[d:] for part in ac]) if textured else None


def nonadiabatic_current(model, k, x, fields, mu, tau, kT, start: int, stop: int, textured: bool,
                         density: bool = False, exact_nodes: Optional[int] = None, one_field: bool = False,
                         lattices=None):
    """Eq. 60 integrand at one k for the manifold [start, stop); with ``exact_nodes`` (uniform
    systems) the occupations g_i are the exact steady state (``_relaxation.chambers_average``)
    of the field-dressed bands 𝓔_i(k; E) instead of Eq. 57. A two-band model whose manifold is
    both bands takes the closed form of ``_two_band_bands``. With ``one_field`` (every row of ``fields``
    the same) the dressed bands are computed once and broadcast over the batch: XLA does so by itself
    in the forward pass, not in reverse mode (a tilted cone's current at 8 μ: gradient 11× its forward).
    ``lattices``: a two-band lattice model's ``_relaxation.lattice_tables`` (None: computed here).

    Returns the current integrand (B, d) in e·Å/fs, the largest |δg_i| (B,) and the point
    geometry (for the single-band currents of the bands outside the manifold; None for the closed form).
    """
    d = model.dim
    dressing = fields[:1] if one_field else fields
    if model.n_bands == 2 and stop - start == 2:
        energies, vel, jac, force = _two_band_bands(model, k, x, dressing, textured)
        weight, geo = None, None  # no remote bands, no eigen-decomposition
    else:
        energies, vel, jac, force, weight, geo = _manifold_bands(model, k, x, dressing, start, stop, textured, density)
    if one_field:
        energies, vel, jac, force, weight = jax.tree_util.tree_map(
            lambda a: jnp.broadcast_to(a, fields.shape[:1] + a.shape[1:]), (energies, vel, jac, force, weight))
    de_dk = jac[..., :d] / HBAR  # ∂𝓔/∂ħk (B, m, d) Å/fs
    drive = -fields[:, None, :]  # −eE (B, 1, d)
    rate = einsum("Bid,Bid->Bi", de_dk, jnp.broadcast_to(drive, de_dk.shape))
    if textured:
        rate = rate + einsum("Bid,Bid->Bi", de_dk, force) + einsum("Bid,Bid->Bi", jac[..., d:], vel)
    g0, gp = occupation_and_slope(energies, mu[:, None], kT[:, None])  # (B, m)
    if exact_nodes is None:
        dg = -tau[:, None] * gp * rate
    else:  # the exact g stays in [0, 1]: no linearisation limit (max|δg| reported as 0)
        table = None
        if stop - start == 2 and lattices is not None:
            table = lattices[1]
        elif stop - start == 2:
            lattice = lattice_pauli(model, positions=True)
            table = None if lattice is None else shift_table(lattice, fields, tau, exact_nodes, dressed=True)
        if table is not None:  # a two-band lattice model: its shifted 𝓗 and eE·∂𝓗/∂k from one GEMM per k
            dg = lattice_chambers(table, k, mu, kT, exact_nodes,
                                  lambda dd, e: _two_band_dressed_by_vector(dd[0], dd[1:], e)) - g0
        else:
            dg = chambers_average(_dressed_bands(model, x, start, stop), k, fields, mu, tau, kT, exact_nodes) - g0
    g = g0 + dg
    if weight is not None:
        g = g * weight
    return -einsum("Bi,Bid->Bd", g, vel), jnp.max(jnp.abs(dg), -1) if exact_nodes is None else jnp.zeros_like(mu), geo
