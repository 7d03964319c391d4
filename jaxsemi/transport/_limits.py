"""Validity limits of the semiclassical theories, checked on the grid (warnings, not errors).

Each limit is a dimensionless number, its largest value over the grid and the field batch is
compared with a threshold, and a ``ValidityWarning`` says which assumption fails:

* ``field``: Eq. 37 with ħk̇ = −eE, ϵ_E = |eE·[R_k]_nl| / |ε_n − ε_l| for pairs that are not
  both inside the active manifold (every pair for SSCT), weighted by |f⁰_n − f⁰_l| (pairs that
  are both full or both empty carry no current change). Must be ≪ 1 (threshold 0.1). Within
  a manifold the non-adiabatic theory keeps E to all orders, so intra-manifold pairs are exempt.
* ``texture``: Eq. 37 with the texture-driven motion (ẋ = v_l, ħk̇ = F_l),
  ϵ_x = |ħ[R_x]_nl·v_l + [R_k]_nl·F_l| / |ε_n − ε_l| — the texture length against ħv/gap.
  Threshold 0.1.
* ``occupation``: the relaxation-time correction max|δf| (or max|δg|) must stay ≪ 1 (threshold
  0.5): beyond it the linearised kinetics of Eq. 46c / A5 leaves [0, 1].
* ``characteristic``: ``relaxation="exact"`` with a texture integrates each backward characteristic by RK4
  (``_relaxation.characteristic_occupation``); the embedded third-order solution of the same stages gives an
  estimate of the error of f, max over bands (threshold 1e-6). It is ~10× the true error where the step
  resolves the characteristics and does not fall with the step where they come close to a gap closing.
* ``inverse_intra_gap``: Eq. 55 divides by intra-manifold gaps; a non-degenerate pair closer
  than 1e-6 eV on the grid makes V numerically singular (non-adiabatic theory).
* ``spread`` / ``unfilled``: Eq. 53 assumes an exactly degenerate, fully occupied manifold
  (spread ≤ 1e-6 eV, 1 − occupation ≤ 1e-3) (non-Abelian theory).

Each theory (``_theory``) returns the numbers that apply to it; all are maximised over the grid.

Hard errors (``ValueError`` before tracing; for traced values an ``eqx.error_if`` raised when
the program runs) are reserved for inputs that make the result meaningless: shapes, an unknown
theory, NaN/inf, τ < 0, kT < 0, kT = 0 with Fermi-surface terms (docs/conventions.md §8).
The wavepacket-size criterion (texture length ≫ 1/k_F) has no model-independent k_F and is
left to the user.
"""

from __future__ import annotations

import warnings

import jax.numpy as jnp

from .._eigh import cross, inverse_gaps, split_levels
from .._geometry import PointGeometry, TwoBandJet, berry_connection_offdiag, two_band_geometry
from .._statistics import fermi
from ..units import HBAR

INTRA_GAP_MIN = 1e-6  # eV
SPREAD_MAX = 1e-6  # eV
FILLED_MIN = 1.0 - 1e-3
CHARACTERISTIC_ERROR_MAX = 1e-6


class ValidityWarning(UserWarning):
    """A semiclassical transport result is used outside the limits its theory assumes."""


def transition_limits(geo: PointGeometry | TwoBandJet, fields, mu, kT, start: int, stop: int) -> dict:
    """The Eq. 37 numbers at one k (scalars): ``"field"`` and, with a texture (``geo.dx``),
    ``"texture"``, over the band pairs not both inside the manifold [start, stop) (every pair for
    start = stop). ``fields`` (B, d) V/Å; ``mu``, ``kT`` (B,) eV. ``geo`` is the point geometry, or
    for every pair (start = stop) of a two-band model its ``TwoBandJet`` (``_two_band_limits``)."""
    if isinstance(geo, TwoBandJet):
        assert start == stop, "a two-band jet carries the numbers of every pair only"
        return _two_band_limits(geo, fields, mu, kT)
    w, dk, dx = geo.energies, geo.dk, geo.dx
    idx = jnp.arange(w.shape[0])
    inside = (idx >= start) & (idx < stop)
    inv2 = inverse_gaps(w, 2)[0]  # 1/eV², 0 on degenerate pairs
    pair = ~(inside[:, None] & inside[None, :])
    f0 = fermi(w[None], mu[:, None], kT[:, None])  # (B, n)
    weight2 = (f0[:, :, None] - f0[:, None, :]) ** 2 * (pair * inv2)  # (B, n, n) 1/eV²
    conn_k = berry_connection_offdiag(w, dk)  # (d, n, n)

    def largest(z):  # max|z|·√weight2: squares throughout, one square root per k
        return jnp.sqrt(jnp.max(weight2 * (jnp.real(z) ** 2 + jnp.imag(z) ** 2)))

    out = {"field": largest(jnp.einsum("Bd,dnl->Bnl", fields, conn_k))}
    if dx is not None:
        conn_x = berry_connection_offdiag(w, dx)
        vb = jnp.real(jnp.diagonal(dk, axis1=1, axis2=2)) / HBAR  # (d, n)
        fb = -jnp.real(jnp.diagonal(dx, axis1=1, axis2=2))
        out["texture"] = largest((HBAR * jnp.einsum("dnl,dl->nl", conn_x, vb) + jnp.einsum("dnl,dl->nl", conn_k, fb))[None])
    return out


def _two_band_limits(jet: TwoBandJet, fields, mu, kT) -> dict:
    """``transition_limits`` of the pair of a two-band model 𝓗 = d₀ + d·σ in closed form (no eigenvectors):
    |⟨∓|e·σ|±⟩|² = |d̂ × e|² for a real 3-vector e, so ϵ_E = |Δf⁰| |d̂ × e|/(2|d|)² with e = eE·∂_k d, and ϵ_x
    likewise with e_l = Σ_α (∂_{x_α}d ∂_{k_α}ε_l − ∂_{k_α}d ∂_{x_α}ε_l) (ħR_x·v_l + R_k·F_l of band l), the
    larger over l. Zero where the levels are not split (``split_levels``, as ``inverse_gaps``)."""
    d = fields.shape[-1]
    dn, ok = split_levels(jet.d0, jet.d)
    safe = jnp.where(ok, dn, 1.0)
    energies, slopes, _ = two_band_geometry(jet, jnp.array([-1.0, 1.0]))
    f0 = fermi(energies[None], mu[:, None], kT[:, None])  # (B, 2)
    weight2 = jnp.where(ok, (f0[:, 1] - f0[:, 0]) ** 2, 0.0) / (2.0 * safe) ** 4  # (B,) 1/eV⁴

    def perp2(e):  # |d̂ × e|² (...) for e (..., 3)
        c = cross(jnp.broadcast_to(jet.d / safe, e.shape), e)
        return jnp.sum(c * c, -1)

    gk = jet.g[:, :d]  # (3, d)
    out = {"field": jnp.sqrt(jnp.max(weight2 * perp2(jnp.sum(fields[:, None, :] * gk, -1))))}
    if slopes.shape[-1] == 2 * d:
        gx, sk, sx = jet.g[:, d:], slopes[:, None, :d], slopes[:, None, d:]
        e = jnp.sum(sk * gx - sx * gk, -1)  # e_l (2, 3)
        out["texture"] = jnp.sqrt(jnp.max(weight2) * jnp.max(perp2(e)))
    return out


def manifold_limits(energies, mu, kT, start: int, stop: int) -> dict:
    """The manifold numbers at one k from the energies (n,) eV: ``"inverse_intra_gap"`` (1/eV, largest
    inverse gap of a non-degenerate pair inside [start, stop)), ``"spread"`` (eV) and ``"unfilled"``
    (largest 1 − f⁰ inside the manifold)."""
    w = energies[start:stop]
    f0 = fermi(w[None], mu[:, None], kT[:, None])  # (B, m)
    return {"inverse_intra_gap": jnp.max(jnp.abs(inverse_gaps(w)[0])),
            "spread": w[-1] - w[0], "unfilled": jnp.max(1.0 - f0)}


#: every validity number a theory may return: its threshold and the warning for a grid maximum above it
LIMITS = {
    "field": (0.1, lambda v: "the field energy is not small compared with the gap to bands outside the active "
                             f"manifold (Eq. 37): max field parameter {v:.3g} > 0.1"),
    "texture": (0.1, lambda v: "the texture varies on a length not much larger than ħv/gap (Eq. 37 with the "
                               f"texture-driven motion): max texture parameter {v:.3g} > 0.1"),
    "occupation": (0.5, lambda v: "the relaxation-time correction is not small compared with the equilibrium "
                                  f"occupation (Eq. 46c/57c): max occupation parameter {v:.3g} > 0.5"),
    "characteristic": (CHARACTERISTIC_ERROR_MAX, lambda v: "the backward characteristics of relaxation='exact' are "
                       f"not resolved: the occupations' estimated error {v:.2g} > {CHARACTERISTIC_ERROR_MAX:g} (pass "
                       "relaxation=js.transport.Exact(characteristic_step=...) with a smaller step; an error that "
                       "does not fall with the step means the characteristics pass close to a gap closing, where the "
                       "single-band flow fails)"),
    "inverse_intra_gap": (1.0 / INTRA_GAP_MIN, lambda v: f"a non-degenerate pair inside the manifold is {1 / v:.2e} "
                                                         "eV apart on the grid: Eq. 55 divides by that gap"),
    "spread": (SPREAD_MAX, lambda v: f"the manifold is not degenerate (spread {v:.2e} eV): Eq. 53 assumes exact "
                                     "degeneracy; use theory='nonadiabatic'"),
    "unfilled": (1.0 - FILLED_MIN, lambda v: f"the manifold is not fully occupied (min occupation {1 - v:.3g}): "
                                             "Eq. 53 assumes full occupation; use theory='nonadiabatic'"),
}


def warn_limits(values: dict, name: str) -> None:
    """Issue a ``ValidityWarning`` for every validity number whose grid maximum breaks its limit."""
    for key, value in values.items():
        if key not in LIMITS:
            raise ValueError(f"theory {name!r} returned an unknown validity number {key!r}; known: {tuple(LIMITS)}")
        threshold, message = LIMITS[key]
        if value > threshold:
            warnings.warn(f"transport.current(theory={name!r}): {message(value)}", ValidityWarning, stacklevel=4)
