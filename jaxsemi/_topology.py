"""Chern numbers of a band or a band manifold: Fukui–Hatsugai–Suzuki and Kubo.

Sign convention (DESIGN §1): C = (1/2π) ∫_BZ d²k Ω with Ω = ∂_kx R_ky − ∂_ky R_kx and
R = i⟨u|∂u⟩. Fukui, Hatsugai and Suzuki [J. Phys. Soc. Jpn. 74, 1674 (2005)] use the
connection A = ⟨u|∂u⟩ = −iR and C_FHS = (1/2πi) Σ F, so C = −C_FHS: the lattice sum below
carries the extra minus sign (and the orientation sign of the reciprocal basis).
"""

from __future__ import annotations

from typing import Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import _checks
from ._eigh import eigh as _eigh_matrix
from ._geometry import abelian_curvature, point_geometry
from ._integrate import grid_sum
from ._model import Model
from .kgrid import brillouin_zone, reciprocal


def chern_number(model: Model, bands, n_k, method: str = "fhs", x=None,
                 chunk_size: Optional[int] = None) -> jax.Array:
    """Chern number of a band or of a contiguous band manifold of a 2D lattice model.

    Args:
        model: 2D ``Model`` with a lattice.
        bands: a band index or a contiguous sequence of indices (a manifold).
        n_k: k-points per reciprocal axis (int or two ints, each ≥ 2).
        method: "fhs" (lattice link variables, an integer up to round-off once the grid
            resolves the curvature) or "kubo" (∫ Σ_n Ω_n, converging as the grid is refined).
        x: position (2,) in Å for textured models (default 0).

    Raises ValueError if the manifold's gap to the other bands closes on the grid.
    """
    if model.dim != 2:
        raise ValueError(f"chern_number needs a 2D model, got dim = {model.dim}")
    if method not in ("fhs", "kubo"):
        raise ValueError(f"method must be 'fhs' or 'kubo', got {method!r}")
    start, stop = _checks.band_slice(bands, model.n_bands)
    b = reciprocal(model.lattice)
    n1, n2 = _checks.check_int_sequence(n_k, 2, "n_k")
    x = jnp.zeros(2) if x is None else _checks.as_points(x, 2, "x")
    frac = np.stack(np.meshgrid(np.arange(n1 + 1) / n1, np.arange(n2 + 1) / n2, indexing="ij"), -1)
    points = jnp.asarray(frac @ b)  # (n1+1, n2+1, 2), both edges included
    energies, states = _states(model, points.reshape(-1, 2), x)
    if _checks.is_concrete(energies):
        _checks.check_manifold_gap(energies, start, stop, np.asarray(points).reshape(-1, 2))
    if method == "fhs":
        orientation = float(np.sign(np.linalg.det(b)))
        v = states.reshape(n1 + 1, n2 + 1, model.n_bands, model.n_bands)[..., start:stop]
        return -orientation * _fhs(v) / (2 * np.pi)
    grid = brillouin_zone(model.lattice, (n1, n2))
    return 2 * jnp.pi * _kubo(model, grid, x, start, stop, chunk_size)


@eqx.filter_jit
def _states(model, points, x):
    return jax.vmap(lambda k: _eigh_matrix(model.hamiltonian(k, x, model.params)))(points)


def _link(a, b):
    """U = det(a† b)/|det(a† b)| for (..., n, m) state blocks."""
    s = jnp.einsum("...ni,...nj->...ij", jnp.conj(a), b)
    d = s[..., 0, 0] if s.shape[-1] == 1 else jnp.linalg.det(s)
    return d / jnp.abs(d)


@jax.jit
def _fhs(v):
    u1 = _link(v[:-1, :], v[1:, :])  # (n1, n2+1) along b1
    u2 = _link(v[:, :-1], v[:, 1:])  # (n1+1, n2) along b2
    plaquette = u1[:, :-1] * u2[1:, :] * jnp.conj(u1[:, 1:]) * jnp.conj(u2[:-1, :])
    return jnp.sum(jnp.angle(plaquette))


@eqx.filter_jit
def _kubo(model, grid, x, start, stop, chunk_size):
    def per_k(k):
        geo = point_geometry(model, k, x, wrt_x=False)
        return jnp.sum(abelian_curvature(geo.energies, geo.dk, geo.dk)[start:stop, 0, 1])

    return grid_sum(per_k, grid, chunk_size)
