"""Massive (gapped) Dirac cone of one valley, optionally with a moiré-like mass texture."""

from __future__ import annotations

import jax.numpy as jnp

from .._model import Model, bind
from ._pauli import pauli_form


@pauli_form
def _dirac(k, x, p, valley):
    delta = p["delta"]
    if "G" in p:
        delta = delta * jnp.cos(jnp.dot(p["G"], x))
    return p["tilt"] * k[0], valley * p["v"] * k[0], p["v"] * k[1], delta


def massive_dirac(v, delta, valley: int = +1, tilt=0.0, *, texture_G=None) -> Model:
    """𝓗 = v(τ k_x σ_x + k_y σ_y) + Δ(x) σ_z + tilt·k_x·1 around one valley (continuum, 2D).

    Args:
        v: Dirac velocity ħv in eV·Å.
        delta: half-gap Δ in eV (the gap is 2|Δ|).
        valley: τ = +1 or −1. The time-reversed partner of (τ, tilt) is (−τ, −tilt).
        tilt: tilt of the cone, eV·Å.
        texture_G: optional wavevector G (2,) in 1/Å of a moiré-like mass
            Δ(x) = Δ cos(G·x) that changes sign in space.

    Lower-band curvature: Ω = τ v²Δ / (2 (v²k² + Δ²)^{3/2}) (Å²), the upper band the opposite.
    Parameters (differentiable): ``v``, ``delta``, ``tilt`` and, with a texture, ``G``.
    """
    if valley not in (1, -1):
        raise ValueError(f"valley must be +1 or -1, got {valley!r}")
    params = {"v": v, "delta": delta, "tilt": tilt}
    if texture_G is not None:
        G = jnp.asarray(texture_G, dtype=float)
        if G.shape != (2,):
            raise ValueError(f"texture_G must have shape (2,), got {G.shape}")
        params["G"] = G
    name = f"massive_dirac(valley={valley:+d}{', textured' if texture_G is not None else ''})"
    return Model(bind(_dirac, valley=int(valley)), params, 2, None, name=name)
