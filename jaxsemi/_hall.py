"""Intrinsic (Berry-curvature) anomalous Hall conductivity, linear in E."""

from __future__ import annotations

from typing import Optional

import equinox as eqx
import jax
import jax.numpy as jnp

from . import _checks
from ._geometry import abelian_curvature, point_geometry
from ._integrate import grid_sum
from ._model import Model
from ._statistics import fermi
from .kgrid import AbstractGrid


def hall_conductivity(model: Model, mu, grid: AbstractGrid, kT=0.0, x=None, *,
                      chunk_size: Optional[int] = None) -> jax.Array:
    """σ_xy = −(e²/ħ) Σ_n ∫dk f⁰_n Ω_n^{k_x k_y}, in e²/h (2D) or (e²/h)/Å (3D).

    Args:
        model: a 2D or 3D ``Model``.
        mu: chemical potential(s) in eV, any shape; the result has the same shape.
        grid: a ``KGrid`` (Brillouin zone, or a disk for continuum models).
        kT: temperature in eV (≥ 0; broadcast against ``mu``). Derivatives with respect to μ
            and kT need kT > 0 (at kT = 0 the occupation is a step).
        x: position (d,) in Å for textured models (default 0).

    A Chern insulator with μ in the gap gives σ_xy = −C_occ (DESIGN §1). Differentiable in the
    model parameters, μ and kT; one compiled program serves every μ, kT and parameter value.
    """
    if model.dim not in (2, 3):
        raise ValueError(f"hall_conductivity needs a 2D or 3D model, got dim = {model.dim}")
    if grid.dim != model.dim:
        raise ValueError(f"grid points are {grid.dim}D but the model is {model.dim}D")
    mu = jnp.asarray(mu, dtype=float)
    kT = jnp.asarray(kT, dtype=float)
    _checks.check_finite(mu, "mu")
    _checks.check_kT(kT)
    x = jnp.zeros(model.dim) if x is None else _checks.as_points(x, model.dim, "x")
    if x.shape != (model.dim,):
        raise ValueError(f"x must be one position of shape ({model.dim},), got {x.shape}")
    mu_b, kT_b = jnp.broadcast_arrays(mu, kT)
    return _hall(model, mu_b, kT_b, grid, x, chunk_size)


@eqx.filter_jit
def _hall(model, mu, kT, grid, x, chunk_size):
    mus, kTs = mu.reshape(-1), kT.reshape(-1)

    def per_k(k):
        geo = point_geometry(model, k, x, wrt_x=False)
        omega = abelian_curvature(geo.energies, geo.dk, geo.dk)[:, 0, 1]  # (n,) Å^2
        occ = fermi(geo.energies[None, :], mus[:, None], kTs[:, None])  # (n_mu, n)
        return occ @ omega

    integral = grid_sum(per_k, grid, chunk_size)
    # σ/(e²/h) = −(2πħ/e²)(e²/ħ) ∫ f Ω = −2π ∫ dk f Ω
    return (-2.0 * jnp.pi * integral).reshape(mu.shape)
