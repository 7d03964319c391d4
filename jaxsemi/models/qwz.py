"""Qi–Wu–Zhang (QWZ) Chern insulator on the square lattice."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .. import _bloch
from .._model import Model
from ._pauli import pauli_form


@pauli_form
def _qwz(k, x, p):
    t = p["t"]
    return 0.0, t * jnp.sin(k[0]), t * jnp.sin(k[1]), p["m"] + t * (jnp.cos(k[0]) + jnp.cos(k[1]))


@_bloch.register(_qwz)
def _qwz_form(p):
    """sin k σ = Σ_± ∓(i/2) e^{±ik} σ, cos k = Σ_± e^{±ik}/2, lattice constant 1 Å."""
    t, m = p["t"], p["m"]
    half = 0.5 * t * jnp.asarray([[1, 0], [0, -1]], complex)  # cos parts on σz
    sx, sy = 0.5 * t * jnp.asarray([[0, 1], [1, 0]], complex), 0.5 * t * jnp.asarray([[0, -1j], [1j, 0]])
    hr = jnp.stack([m * jnp.asarray([[1, 0], [0, -1]], complex)] +
                   [half + s * (-1j) * sgn for s in (sx, sy) for sgn in (1, -1)])
    r = np.array([[0.0, 0.0], [1, 0], [-1, 0], [0, 1], [0, -1]])
    return r, hr, np.zeros((2, 2))


def qwz(m, t=1.0) -> Model:
    """𝓗 = t sin k_x σ_x + t sin k_y σ_y + (m + t cos k_x + t cos k_y) σ_z, lattice constant 1 Å.

    Lower-band Chern number (docs/conventions.md §3): −1 for 0 < m/t < 2, +1 for −2 < m/t < 0,
    0 for |m/t| > 2. Energies m, t in eV.
    """
    return Model(_qwz, {"m": m, "t": t}, 2, np.eye(2), name="qwz")
