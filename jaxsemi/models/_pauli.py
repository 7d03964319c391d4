"""Pauli matrices and the 2×2 d-vector form d₀·1 + d·σ."""

import functools

import numpy as np

from .._model import D_FORMS

S0 = np.eye(2, dtype=complex)
SX = np.array([[0, 1], [1, 0]], dtype=complex)
SY = np.array([[0, -1j], [1j, 0]], dtype=complex)
SZ = np.array([[1, 0], [0, -1]], dtype=complex)
#: (1, σx, σy, σz) (4, 2, 2)
PAULI = np.stack([S0, SX, SY, SZ])


def from_d(d0, dx, dy, dz):
    """d₀·1 + dx σx + dy σy + dz σz as a (2, 2) complex matrix."""
    return d0 * S0 + dx * SX + dy * SY + dz * SZ


def pauli_form(d_fn):
    """Decorator: the Hamiltonian function ``from_d(*d_fn(k, x, params, **options))`` of a d-vector
    function, registered (``_model.D_FORMS``) so that band energies (``_geometry.band_energies``)
    come from d in real arithmetic instead of from the complex 𝓗."""
    @functools.wraps(d_fn)
    def hamiltonian(k, x, params, **options):
        return from_d(*d_fn(k, x, params, **options))

    D_FORMS[hamiltonian] = d_fn
    return hamiltonian
