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
  come from forward-mode autodiff of the hybridised energies 𝓔_i(k, x) (degeneracy-safe eigh);
* ``relaxation="exact"`` (uniform systems): g_i = ∫(ds/τ)e^{−s/τ} g⁰(𝓔_i(k + eEs/ħ; E)), the exact
  relaxation-time steady state of the field-dressed bands (ħk̇ = −eE; its first order in τ is Eq. 57);
* Eq. 60: the current integrand −e Σ_i g_i ṽ_i, or −e Σ_i D_i g_i ṽ_i with the phase-space
  density of ``_phase_space`` (``density=True``, textures only).
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from .._eigh import eigh, eigvalsh
from .._geometry import berry_connection_offdiag, nonabelian_curvature_block, point_geometry
from ..units import HBAR
from ._phase_space import manifold_density
from ._relaxation import chambers_average
from ._ssct import occupation_and_slope


def _sandwich(eta, op):
    """⟨η_i|op|η_i⟩ for eta (B, m, m) (columns) and op (..., m, m) with leading axes kept."""
    return jnp.real(jnp.einsum("Bmi,...mn,Bni->Bi...", jnp.conj(eta), op, eta))


def _manifold_hamiltonian(geo, fields, start, stop):
    """Eq. 61's H̄_a = diag(ε_a) + eE·R_k (B, m, m) in eV for fields (B, d) V/Å."""
    conn = berry_connection_offdiag(geo.energies, geo.dk)[:, start:stop, start:stop]  # (d, m, m) Å
    return jnp.diag(geo.energies[start:stop]).astype(conn.dtype) + jnp.einsum("Bd,dnm->Bnm", fields, conn)


def nonadiabatic_current(model, k, x, fields, mu, tau, kT, start: int, stop: int, textured: bool,
                         density: bool = False, exact_nodes: Optional[int] = None):
    """Eq. 60 integrand at one k for the manifold [start, stop); with ``exact_nodes`` (uniform
    systems) the occupations g_i are the exact steady state (``_relaxation.chambers_average``)
    of the field-dressed bands 𝓔_i(k; E) instead of Eq. 57.

    Returns the current integrand (B, d) in e·Å/fs, the largest |δg_i| (B,) and the point
    geometry (for the single-band currents of the bands outside the manifold).
    """
    d = model.dim

    def hybridised(lam):
        kk, xx = (lam[:d], lam[d:]) if textured else (lam, x)
        geo = point_geometry(model, kk, xx, textured)
        energies, eta = jax.vmap(eigh)(_manifold_hamiltonian(geo, fields, start, stop))
        return energies, (geo, energies, eta)

    lam = jnp.concatenate([k, x]) if textured else k
    jac, (geo, energies, eta) = jax.jacfwd(hybridised, has_aux=True)(lam)  # jac (B, m, d or 2d)
    w, dk, dx = geo.energies, geo.dk, geo.dx
    sl = slice(start, stop)

    fkk = jnp.moveaxis(nonabelian_curvature_block(w, dk, dk, start, stop), (0, 1), (-2, -1))  # (d, d, m, m)
    vel = _sandwich(eta, dk[:, sl, sl]) / HBAR + jnp.einsum("Biab,Bb->Bia", _sandwich(eta, fkk), fields) / HBAR
    de_dk = jac[..., :d] / HBAR  # ∂𝓔/∂ħk (B, m, d) Å/fs
    drive = -fields[:, None, :]  # −eE (B, 1, d)
    rate = jnp.einsum("Bid,Bid->Bi", de_dk, jnp.broadcast_to(drive, de_dk.shape))
    if textured:
        fxk = jnp.moveaxis(nonabelian_curvature_block(w, dx, dk, start, stop), (0, 1), (-2, -1))
        force = -_sandwich(eta, dx[:, sl, sl]) - jnp.einsum("Biab,Bb->Bia", _sandwich(eta, fxk), fields)
        rate = rate + jnp.einsum("Bid,Bid->Bi", de_dk, force) + jnp.einsum("Bid,Bid->Bi", jac[..., d:], vel)
    g0, gp = occupation_and_slope(energies, mu[:, None], kT[:, None])  # (B, m)
    if exact_nodes is None:
        dg = -tau[:, None] * gp * rate
    else:  # the exact g stays in [0, 1]: no linearisation limit (max|δg| reported as 0)
        def dressed(kk, e):
            return eigvalsh(_manifold_hamiltonian(point_geometry(model, kk, x, False), e[None], start, stop)[0])

        dg = chambers_average(dressed, k, fields, mu, tau, kT, exact_nodes) - g0
    g = g0 + dg
    if textured and density:
        g = g * manifold_density(eta, nonabelian_curvature_block(w, dk, dx, start, stop))
    return -jnp.einsum("Bi,Bid->Bd", g, vel), jnp.max(jnp.abs(dg), -1) if exact_nodes is None else jnp.zeros_like(mu), geo
