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
* ``intra_gap``: Eq. 55 divides by intra-manifold gaps; a non-degenerate pair closer than
  1e-6 eV on the grid makes V numerically singular (non-adiabatic theory).
* ``degenerate`` / ``filled``: Eq. 53 assumes an exactly degenerate, fully occupied manifold
  (spread ≤ 1e-6 eV, occupations ≥ 1 − 1e-3) (non-Abelian theory).

Hard errors (``ValueError`` before tracing; for traced values an ``eqx.error_if`` raised when
the program runs) are reserved for inputs that make the result meaningless: shapes, an unknown
theory, NaN/inf, τ < 0, kT < 0, kT = 0 with Fermi-surface terms (docs/conventions.md §8).
The wavepacket-size criterion (texture length ≫ 1/k_F) has no model-independent k_F and is
left to the user.
"""

from __future__ import annotations

import warnings

import jax.numpy as jnp

from .._eigh import inverse_gaps
from .._geometry import PointGeometry, berry_connection_offdiag
from .._statistics import fermi
from ..units import HBAR

THRESHOLDS = {"field": 0.1, "texture": 0.1, "occupation": 0.5}
INTRA_GAP_MIN = 1e-6  # eV
SPREAD_MAX = 1e-6  # eV
FILLED_MIN = 1.0 - 1e-3


class ValidityWarning(UserWarning):
    """A semiclassical transport result is used outside the limits its theory assumes."""


def point_limits(geo: PointGeometry, fields, mu, kT, start: int, stop: int, dmax):
    """Per-k values of the limit numbers (each to be maximised over the grid, except gaps)."""
    w, dk, dx = geo.energies, geo.dk, geo.dx
    n = w.shape[0]
    idx = jnp.arange(n)
    inside = (idx >= start) & (idx < stop)
    gap = jnp.abs(w[:, None] - w[None, :])
    inv, degenerate = inverse_gaps(w)
    inv, nondeg = jnp.abs(inv), ~degenerate
    pair = nondeg & ~(inside[:, None] & inside[None, :])
    f0 = fermi(w[None], mu[:, None], kT[:, None])  # (B, n)
    weight = jnp.abs(f0[:, :, None] - f0[:, None, :]) * pair  # (B, n, n)
    conn_k = berry_connection_offdiag(w, dk)  # (d, n, n)
    eps_e = jnp.abs(jnp.einsum("Bd,dnl->Bnl", fields, conn_k)) * inv
    out = {"field": jnp.max(weight * eps_e), "occupation": jnp.max(dmax)}
    if dx is not None:
        conn_x = berry_connection_offdiag(w, dx)
        vb = jnp.real(jnp.diagonal(dk, axis1=1, axis2=2)) / HBAR  # (d, n)
        fb = -jnp.real(jnp.diagonal(dx, axis1=1, axis2=2))
        drive = HBAR * jnp.einsum("dnl,dl->nl", conn_x, vb) + jnp.einsum("dnl,dl->nl", conn_k, fb)
        out["texture"] = jnp.max(weight * (jnp.abs(drive) * inv)[None])
    intra = inside[:, None] & inside[None, :] & nondeg
    out["intra_gap"] = jnp.min(jnp.where(intra, gap, jnp.inf))
    out["spread"] = w[stop - 1] - w[start]
    out["filled"] = jnp.min(jnp.where(inside[None], f0, 1.0))
    return out


def warn_limits(values: dict, theory: str, manifold: bool) -> None:
    """Issue a ``ValidityWarning`` for every limit that the grid maxima break."""
    msgs = []
    for key, what in (("field", "the field energy is not small compared with the gap to bands outside "
                               "the active manifold (Eq. 37)"),
                      ("texture", "the texture varies on a length not much larger than ħv/gap (Eq. 37 "
                                  "with the texture-driven motion)"),
                      ("occupation", "the relaxation-time correction is not small compared with the "
                                     "equilibrium occupation (Eq. 46c/57c)")):
        if key in values and values[key] > THRESHOLDS[key]:
            msgs.append(f"{what}: max {key} parameter {values[key]:.3g} > {THRESHOLDS[key]}")
    if manifold and theory == "nonadiabatic" and values["intra_gap"] < INTRA_GAP_MIN:
        msgs.append(f"a non-degenerate pair inside the manifold is {values['intra_gap']:.2e} eV apart on "
                    "the grid: Eq. 55 divides by that gap")
    if manifold and theory == "nonabelian":
        if values["spread"] > SPREAD_MAX:
            msgs.append(f"the manifold is not degenerate (spread {values['spread']:.2e} eV): Eq. 53 "
                        "assumes exact degeneracy; use theory='nonadiabatic'")
        if values["filled"] < FILLED_MIN:
            msgs.append(f"the manifold is not fully occupied (min occupation {values['filled']:.3g}): "
                        "Eq. 53 assumes full occupation; use theory='nonadiabatic'")
    for m in msgs:
        warnings.warn(f"transport.current(theory={theory!r}): {m}", ValidityWarning, stacklevel=4)
