"""Pauli matrices and the 2×2 d-vector form d₀·1 + d·σ."""

import numpy as np

S0 = np.eye(2, dtype=complex)
SX = np.array([[0, 1], [1, 0]], dtype=complex)
SY = np.array([[0, -1j], [1j, 0]], dtype=complex)
SZ = np.array([[1, 0], [0, -1]], dtype=complex)


def from_d(d0, dx, dy, dz):
    """d₀·1 + dx σx + dy σy + dz σz as a (2, 2) complex matrix."""
    return d0 * S0 + dx * SX + dy * SY + dz * SZ
