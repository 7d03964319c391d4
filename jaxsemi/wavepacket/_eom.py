"""Pieces shared by the three methods: field evaluation, ε (Eq. 37); the Eq. 42/43 linear system
is ``jaxsemi._eom.centre_of_mass_rates`` (shared with transport)."""

from __future__ import annotations

import jax.numpy as jnp

from .._geometry import berry_connection_offdiag
from ..units import HBAR


def field_at(field, x, t):
    """E (d,) in V/Å at (x, t): ``field`` is a constant (d,) array or a callable E(x, t)."""
    return field(x, t) if callable(field) else field


def adiabaticity(w, dk, dx, xdot, kdot, active):
    """ε of Eq. 37: max over l ∉ a, m ∈ a of |ħ[R_x·ẋ + R_k·k̇]_lm / (ε_l − ε_m)|.

    w (n,) eV; dk, dx (d, n, n) eigenbasis ∂𝓗/∂k, ∂𝓗/∂x; ẋ, k̇ (d,). Dimensionless.
    """
    kmat = (jnp.einsum("a,anm->nm", xdot, berry_connection_offdiag(w, dx))
            + jnp.einsum("a,anm->nm", kdot, berry_connection_offdiag(w, dk)))
    pair = ~active[:, None] & active[None, :]
    gap = jnp.where(pair, w[:, None] - w[None, :], 1.0)
    return jnp.max(jnp.where(pair, HBAR * jnp.abs(kmat) / jnp.abs(gap), 0.0))
