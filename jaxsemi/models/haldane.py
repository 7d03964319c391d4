"""Haldane model of the honeycomb lattice."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .. import _bloch
from .._model import Model, bind
from ._pauli import pauli_form


def _vectors(a):
    s3 = np.sqrt(3.0)
    nn = a * np.array([[0.5, s3 / 2], [0.5, -s3 / 2], [-1.0, 0.0]])  # A → B bonds
    nnn = np.array([nn[1] - nn[2], nn[2] - nn[0], nn[0] - nn[1]])  # A → A, counter-clockwise set
    return nn, nnn


def _cos_sin(phi):
    """(cos φ, sin φ) of the parameter φ as a computation of their own (a ``lax.cond`` that is always taken):
    inline, XLA:CPU fused them into the per-k-point loops and recomputed them for every element there — with φ
    traced (any call: the parameters are arguments of the compiled sums) the non-adiabatic current of the
    Haldane model on 120² took 3.4× as long (54.6 vs 14.1 ms; its gradient 123 vs 54 ms)."""
    return jax.lax.cond(phi == phi, lambda f: (jnp.cos(f), jnp.sin(f)), lambda f: (f, f), phi)  # NaN stays NaN


@pauli_form
def _haldane(k, x, p, a):
    nn, nnn = _vectors(a)
    phase = jnp.asarray(nn) @ k
    nk = jnp.asarray(nnn) @ k
    cos_phi, sin_phi = _cos_sin(p["phi"])
    d0 = 2 * p["t2"] * cos_phi * jnp.sum(jnp.cos(nk))
    dx = p["t1"] * jnp.sum(jnp.cos(phase))
    dy = -p["t1"] * jnp.sum(jnp.sin(phase))
    dz = p["mass"] - 2 * p["t2"] * sin_phi * jnp.sum(jnp.sin(nk))
    return d0, dx, dy, dz


@_bloch.register(_haldane)
def _haldane_form(p, a):
    """A at 0, B at δ₁: H_AB(δⱼ − δ₁) = t₁, H_AA(±bᵢ) = t₂e^{±iφ}, H_BB(±bᵢ) = t₂e^{∓iφ}, ±M at R = 0."""
    nn, nnn = _vectors(a)
    t1, t2 = p["t1"], p["t2"] * jnp.exp(1j * p["phi"])
    bonds = nn - nn[0]
    r = np.concatenate([bonds, -bonds, nnn, -nnn, nnn, -nnn, np.zeros((2, 2))])
    i = np.array([0] * 3 + [1] * 3 + [0] * 6 + [1] * 6 + [0, 1])
    j = np.array([1] * 3 + [0] * 3 + [0] * 6 + [1] * 6 + [0, 1])
    values = jnp.concatenate([jnp.full(3, t1), jnp.full(3, jnp.conj(t1)), jnp.full(3, t2), jnp.full(3, jnp.conj(t2)),
                              jnp.full(3, jnp.conj(t2)), jnp.full(3, t2), jnp.stack([p["mass"], -p["mass"]])])
    r_cart, hr = _bloch.assemble(r, i, j, values.astype(complex), 2)
    return r_cart, hr, np.stack([np.zeros(2), nn[0]])


def haldane(t1, t2, phi, mass, a: float = 1.0) -> Model:
    """Haldane model: 𝓗 = d₀ + d·σ on the honeycomb lattice (orbital positions in the phases).

    d₀ = 2t₂ cos φ Σᵢ cos(k·bᵢ), d_x − i d_y = t₁ Σⱼ e^{ik·δⱼ}, d_z = M − 2t₂ sin φ Σᵢ sin(k·bᵢ),
    with nearest-neighbour bonds δⱼ (length ``a``, Å) and second-neighbour vectors bᵢ.
    Energies t₁, t₂, M in eV; φ in rad. Lattice vectors a(3/2, ±√3/2).
    The lower band is a Chern band (|C| = 1) for |M| < 3√3 |t₂ sin φ|.
    """
    s3 = np.sqrt(3.0)
    lattice = a * np.array([[1.5, s3 / 2], [1.5, -s3 / 2]])
    params = {"t1": t1, "t2": t2, "phi": phi, "mass": mass}
    return Model(bind(_haldane, a=float(a)), params, 2, lattice, name="haldane")
