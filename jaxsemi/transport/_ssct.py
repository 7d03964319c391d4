"""Single-band semiclassical transport (SSCT), Eqs. 43 and 46–47, at one k-point.

Per band n: (ẋ_n, k̇_n) solve the linear system of Eq. 43 (the Berry curvatures of every
phase-space pair, kk, kx, xk and xx, with textures), f_n = f⁰_n + δf_n with Eq. 46c, and the
band's current −e f_n ẋ_n. Units: ẋ in Å/fs, k̇ in 1/(Å·fs), E in V/Å, τ in fs (e = 1).

Eq. 43 conserves ε_n + eE·x exactly, so δf_n = −τ ∂f⁰/∂ε · dε_n/dt = τ e ∂f⁰/∂ε E·ẋ_n: at
E = 0, δf vanishes identically even with a texture (the δf′ of Eq. 69b is zero, docs/conventions.md §14).

Texture at E = 0 — what the code gives (``tests/test_transport.py``, equilibrium-current test).
J = −e Σ_n ∫ f⁰_n ẋ_n with ẋ_n = v_b + δṽ_n + O(∇²), δṽ_n = −Ω^{KX}_n v_b − Ω^{KK}_n F_b/ħ
(Eq. 68c). It is independent of τ (δf ≡ 0) and first order in the texture gradient: for
Δ(x) = Δ cos(G·x) (v = 1 eV·Å, Δ = 0.1 eV, μ = 0.2 eV, kT = 5 meV, G·x = 1) J ⟂ ∇Δ and
J_y/G = 0.02862, 0.02848, 0.02845 e/fs for G = 0.04, 0.02, 0.01 1/Å, matching −eΣ∫f⁰(v_b + δṽ)
to O(G). The paper (Sec. III C 3) ascribes a second-order current to δf′; δf′ vanishes
identically (Ω^{KK}, Ω^{XX} antisymmetric, Ω^{XK} = −(Ω^{KX})ᵀ), so the SSCT–MSCT difference at
E = 0 is this first-order equilibrium term, absent from Eq. 60 (which uses ṽ = ⟨∂𝓗/∂ħk⟩, no δṽ).
It is divergence-free here (J_y depends on x only): a bound, magnetisation-like current, not a
transport current. Weighted by the phase-space density D (``phase_space_density=True``,
``_phase_space``) it is the magnetisation current −(e/ħ)Σ_b ∂_{x_b}Σ_n∫G_n Ω_n^{k_a k_b}; without D
it is not (``tests/test_phase_space_density.py``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._eom import centre_of_mass_rates
from .._geometry import PointGeometry, TwoBandJet, abelian_curvature, einsum, two_band_geometry
from .._statistics import fermi
from ..units import HBAR


def occupation_and_slope(energy, mu, kT):
    """f⁰ and ∂f⁰/∂ε (1/eV) by forward-mode autodiff of the Fermi function (zero slope at kT = 0)."""
    return jax.jvp(lambda e: fermi(e, mu, kT), (energy,), (jnp.ones_like(energy),))


#: With a texture in 3D, Eq. 43's 6×6 systems of up to this many bands are solved band by band (unrolled), not
#: under a vmap over bands: in the vmap the bands were the minor axis of every array, and the solves vectorised
#: over 2 entries (3D textured cone, 24³ k: SSCT current 30–35 → 14–23 ms with Gauss–Jordan; its exact steady
#: state's characteristics, ``_relaxation``, on 12³ k 324 → 232 ms). In 2D the vmap stays (unrolled, the textured
#: cone's forward read 1.04–1.15× by medians of alternating calls, its exact steady state 1.07×).
UNROLLED_BANDS = 4


def band_by_band(n: int, d: int) -> bool:
    """Whether Eq. 43 for n bands in d dimensions is taken band by band (``UNROLLED_BANDS``)."""
    return d == 3 and n <= UNROLLED_BANDS


def _rates(vb, fb, curvatures, fields):
    """Eq. 43 for every band and field, ẋ (B, n, d) Å/fs and k̇ (B, n, d) 1/(Å·fs), from the band velocity v_b
    (n, d) Å/fs, the band force F_b (n, d) eV/Å (None without a texture: k̇ = −eE/ħ) and the curvatures
    (n, d, d): (Ω^{kk},) untextured, else (Ω^{kk}, Ω^{kx}, Ω^{xk}, Ω^{xx}); ``fields`` (B, d) V/Å."""
    n, d = vb.shape
    if fb is None:
        kdot = jnp.broadcast_to(-fields[:, None, :] / HBAR, (fields.shape[0], n, d))
        return vb[None] - einsum("nab,Bnb->Bna", curvatures[0], kdot), kdot
    per_field = jax.vmap(centre_of_mass_rates, in_axes=(None,) * 6 + (0,))
    if not band_by_band(n, d):
        return jax.vmap(per_field, in_axes=(0,) * 6 + (None,), out_axes=1)(vb, -fb, *curvatures, fields)
    # per band by splits, not slices: reverse mode transposes them into one concatenate, not a pad per band
    per_band = zip(*([part[0] for part in jnp.split(a, n)] for a in (vb, -fb, *curvatures)))
    rates = [per_field(*args, fields) for args in per_band]
    return tuple(jnp.stack(parts, 1) for parts in zip(*rates))


def band_motion(geo: PointGeometry, fields):
    """Eq. 43 for every band and field: ẋ (B, n, d) in Å/fs, k̇ (B, n, d) in 1/(Å·fs).

    ``fields`` (B, d) in V/Å. Also returns the band velocity v_b = ∂ε/∂ħk (n, d) and the band
    force F_b = −∂ε/∂x (n, d) (zero without a texture).
    """
    w, dk, dx = geo.energies, geo.dk, geo.dx
    vb = jnp.real(jnp.diagonal(dk, axis1=1, axis2=2)).T / HBAR  # (n, d)
    okk = abelian_curvature(w, dk, dk)  # (n, d, d) Å²
    if dx is None:
        return *_rates(vb, None, (okk,), fields), vb, jnp.zeros_like(vb)
    fb = -jnp.real(jnp.diagonal(dx, axis1=1, axis2=2)).T  # (n, d) eV/Å
    curvatures = (okk, abelian_curvature(w, dk, dx), abelian_curvature(w, dx, dk), abelian_curvature(w, dx, dx))
    return *_rates(vb, fb, curvatures, fields), vb, fb


def two_band_motion(jet: TwoBandJet, fields):
    """``band_motion`` of a two-band model from its d-vector jet in closed form (``two_band_geometry``: real
    arithmetic, no eigenvectors), with the energies (2,) eV first and the curvatures (2, L, L) last:
    (energies, (ẋ, k̇, v_b, F_b), Ω); λ = (k, x) (L = 2d) for a textured jet, else k."""
    d = fields.shape[-1]
    energies, slopes, omega = two_band_geometry(jet, jnp.array([-1.0, 1.0]))
    if slopes.shape[-1] == d:
        vb = slopes / HBAR
        return energies, (*_rates(vb, None, (omega,), fields), vb, jnp.zeros_like(vb)), omega
    vb, fb = jnp.split(slopes, 2, 1)  # a split: the transposed slices were two pads, each recomputing the 4×4
    vb, fb = vb / HBAR, -fb  # solve's cotangent per element (textured cone, SSCT J gradient 0.95×)
    (kk, kx), (xk, xx) = (jnp.split(rows, 2, 2) for rows in jnp.split(omega, 2, 1))  # splits: see ``_rates``
    return energies, (*_rates(vb, fb, (kk, kx, xk, xx), fields), vb, fb), omega


def ssct_current(energies, motion, fields, mu, tau, kT, mask, occupation=None, density=None):
    """Eq. 47 integrand −e Σ_n D_n f_n ẋ_n at one k over the bands in ``mask`` (n,) bool, from the energies
    (n,) eV and the bands' ``motion`` (ẋ, k̇, v_b, F_b) (``band_motion`` or ``two_band_motion``).

    ``fields`` (B, d); ``mu``, ``tau``, ``kT`` (B,). ``occupation`` (B, n) replaces Eq. 46c's
    f⁰ + δf (the exact steady state of ``_relaxation``); ``density`` (n,) is the phase-space
    density D_n (``_phase_space``; None: D = 1, Eq. 47). Returns the current integrand (B, d) in
    e·Å/fs and the largest |δf_n| at this k (B,) for the validity check.
    """
    xdot, kdot, vb, fb = motion
    f0, fp = occupation_and_slope(energies[None, :], mu[:, None], kT[:, None])  # (B, n)
    if occupation is None:
        # Eq. 46c: δf = −τ[∂f⁰/∂x·ẋ + ∂f⁰/∂k·k̇], ∂f⁰/∂x = −f′F_b, ∂f⁰/∂k = f′ħv_b
        rate = einsum("nd,Bnd->Bn", -fb, xdot) + HBAR * einsum("nd,Bnd->Bn", vb, kdot)
        df = -tau[:, None] * fp * rate
    else:
        df = occupation - f0
    occ = jnp.where(mask[None], (f0 + df) * (1.0 if density is None else density[None]), 0.0)
    return -einsum("Bn,Bnd->Bd", occ, xdot), jnp.max(jnp.where(mask[None], jnp.abs(df), 0.0), -1)
