"""Primitive lattices and their reciprocal vectors (one implementation for models, grids and
tight-binding builders)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def check_lattice(lattice, dim: int | None = None) -> np.ndarray:
    """A concrete (d, d) float array of primitive vectors (rows, Å), d ∈ {1, 2, 3} (= ``dim`` if
    given), linearly independent; ValueError otherwise. Also accepts a ``Model`` (its lattice)."""
    lat = getattr(lattice, "lattice", lattice)
    if lat is None:
        raise ValueError("this needs a lattice; the model is a continuum model (use kgrid.disk)")
    lat = np.asarray(lat, dtype=float)
    d = lat.shape[0] if lat.ndim else 0
    if lat.ndim != 2 or lat.shape != (d, d) or d not in ((1, 2, 3) if dim is None else (dim,)):
        if dim is None:
            raise ValueError(f"lattice must be a (d, d) array of primitive vectors (rows), d ≤ 3, got shape {lat.shape}")
        raise ValueError(f"lattice must have shape ({dim}, {dim}) (primitive vectors as rows), got {lat.shape}")
    if abs(np.linalg.det(lat)) < 1e-12:
        raise ValueError("lattice vectors are linearly dependent")
    return lat


def reciprocal(lattice) -> jax.Array:
    """(d, d) reciprocal vectors b_i as rows (1/Å), a_i·b_j = 2π δ_ij, from primitive vectors a_i
    as rows (Å) or a ``Model``; jnp, so a traced lattice works too (a concrete one gives concrete vectors, also
    inside ``jax.jit``: grids built there)."""
    lat = getattr(lattice, "lattice", lattice)
    if lat is None:
        raise ValueError("this needs a lattice; the model is a continuum model (use kgrid.disk)")
    if isinstance(lat, jax.core.Tracer):
        return 2.0 * jnp.pi * jnp.linalg.inv(jnp.asarray(lat, dtype=float)).T
    with jax.ensure_compile_time_eval():
        return 2.0 * jnp.pi * jnp.linalg.inv(jnp.asarray(check_lattice(lat), dtype=float)).T
