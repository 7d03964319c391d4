"""Chern numbers of a band or a band manifold: Fukui–Hatsugai–Suzuki and Kubo.

Sign convention (docs/conventions.md §3): C = (1/2π) ∫_BZ d²k Ω with Ω = ∂_kx R_ky − ∂_ky R_kx and
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

from . import _checks, _sharding
from ._eigh import eigh as _eigh_matrix
from ._geometry import abelian_curvature, point_geometry
from ._integrate import DEFAULT_CHUNK, grid_sum
from ._model import Model
from .kgrid import brillouin_zone, reciprocal


def chern_number(model: Model, bands, n_k, method: str = "fhs", x=None,
                 chunk_size: Optional[int] = None, *, mesh=None) -> jax.Array:
    """Chern number of a band or of a contiguous band manifold of a 2D lattice model.

    Args:
        model: 2D ``Model`` with a lattice.
        bands: a band index or a contiguous sequence of indices (a manifold).
        n_k: k-points per reciprocal axis (int or two ints, each ≥ 2).
        method: "fhs" (lattice link variables, an integer up to round-off once the grid
            resolves the curvature) or "kubo" (∫ Σ_n Ω_n, converging as the grid is refined).
        x: position (2,) in Å for textured models (default 0).
        mesh: devices the Kubo sum is split over (a ``jax.sharding.Mesh`` with one axis "k" or
            a sequence of devices; default ``js.set_devices``'s, else all devices). The FHS sum
            runs on JAX's default device.

    Raises ValueError if the manifold's gap to the other bands closes on the grid.
    """
    if model.dim != 2:
        raise ValueError(f"chern_number needs a 2D model, got dim = {model.dim}")
    if method not in ("fhs", "kubo"):
        raise ValueError(f"method must be 'fhs' or 'kubo', got {method!r}")
    start, stop = _checks.band_slice(bands, model.n_bands)
    mesh = _sharding.get_mesh(mesh)
    b = reciprocal(model.lattice)
    n1, n2 = _checks.check_int_sequence(n_k, 2, "n_k")
    x = jnp.zeros(2) if x is None else _checks.as_points(x, 2, "x")
    rows = max(1, min(n1, (chunk_size or DEFAULT_CHUNK) // (n2 + 1)))
    angle_sum, gap, where = _fhs_blocks(model, x, jnp.asarray(b), n1, n2, start, stop, rows)
    if _checks.is_concrete(gap):
        i = int(np.argmin(np.asarray(gap)))
        _checks.check_gap_open(float(gap[i]), np.asarray(where)[i], start, stop)
    if method == "fhs":
        orientation = float(np.sign(np.linalg.det(b)))
        return -orientation * angle_sum / (2 * np.pi)
    grid = brillouin_zone(model.lattice, (n1, n2))
    return 2 * jnp.pi * _kubo(model, grid, x, start, stop, chunk_size, mesh)


def _link(a, b):
    """U = det(a† b)/|det(a† b)| for (..., n, m) state blocks."""
    s = jnp.einsum("...ni,...nj->...ij", jnp.conj(a), b)
    d = s[..., 0, 0] if s.shape[-1] == 1 else jnp.linalg.det(s)
    return d / jnp.abs(d)


def plaquette_angles(v):
    """Berry-flux angles arg(U₁U₂U₁*U₂*) of the plaquettes of a state grid v (n1+1, n2+1, n, m)."""
    u1 = _link(v[:-1, :], v[1:, :])  # (n1, n2+1) along b1
    u2 = _link(v[:, :-1], v[:, 1:])  # (n1+1, n2) along b2
    return jnp.angle(u1[:, :-1] * u2[1:, :] * jnp.conj(u1[:, 1:]) * jnp.conj(u2[:-1, :]))


@eqx.filter_jit
def _fhs_blocks(model, x, b, n1, n2, start, stop, rows):
    """Σ plaquette angles over the n1×n2 grid, read in blocks of ``rows`` rows (bounded memory),
    and per block the smallest gap between the manifold [start, stop) and the other bands."""
    n = model.n_bands
    cols = jnp.arange(n2 + 1) / n2

    def block(ib):
        i = ib * rows + jnp.arange(rows + 1)
        frac = jnp.stack(jnp.broadcast_arrays((i / n1)[:, None], cols[None, :]), -1)
        k = frac @ b
        w, u = jax.vmap(jax.vmap(lambda kk: _eigh_matrix(model.hamiltonian(kk, x, model.params))))(k)
        angles = plaquette_angles(u[..., start:stop])
        angle_sum = jnp.sum(jnp.where((i[:-1] < n1)[:, None], angles, 0.0))
        gaps = []
        if start > 0:
            gaps.append(w[..., start] - w[..., start - 1])
        if stop < n:
            gaps.append(w[..., stop] - w[..., stop - 1])
        gap = jnp.min(jnp.stack(gaps), 0) if gaps else jnp.full(w.shape[:2], jnp.inf)
        gap = jnp.where((i <= n1)[:, None], gap, jnp.inf).reshape(-1)
        j = jnp.argmin(gap)
        return angle_sum, gap[j], k.reshape(-1, 2)[j]

    sums, gaps, where = jax.lax.map(block, jnp.arange(-(-n1 // rows)))
    return jnp.sum(sums), gaps, where


@eqx.filter_jit
def _kubo(model, grid, x, start, stop, chunk_size, mesh):
    def per_k(k):
        geo = point_geometry(model, k, x, wrt_x=False)
        return jnp.sum(abelian_curvature(geo.energies, geo.dk, geo.dk)[start:stop, 0, 1])

    return grid_sum(per_k, grid, chunk_size, mesh)
