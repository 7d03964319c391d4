"""Fermi–Dirac occupation, safe at kT = 0 and differentiable in ε, μ and kT."""

from __future__ import annotations

import jax.numpy as jnp


def fermi(energy, mu, kT):
    """f⁰ = 1/(exp((ε − μ)/kT) + 1), all in eV; a step (½ at ε = μ) when kT = 0.

    Written as ½(1 − tanh((ε − μ)/2kT)) so it neither overflows nor produces NaN gradients.
    """
    hot = kT > 0
    safe_kT = jnp.where(hot, kT, 1.0)
    smooth = 0.5 * (1.0 - jnp.tanh((energy - mu) / (2.0 * safe_kT)))
    step = jnp.where(energy < mu, 1.0, jnp.where(energy > mu, 0.0, 0.5))
    return jnp.where(hot, smooth, step)
