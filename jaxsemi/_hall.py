"""Intrinsic (Berry-curvature) anomalous Hall conductivity, linear in E."""

from __future__ import annotations

from typing import Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import _bloch, _checks, _sharding
from ._geometry import (curvature_xy, d_vectors_xy, hamiltonian_and_derivatives, two_band_curvature_xy,
                        two_band_lower_curvature)
from ._model import Model
from ._statistics import fermi
from .kspace import AbstractGrid, AdaptiveResult, bz_domain, default_chunk, integrate_adaptive
from .kspace._reduce import grid_reduce

#: Up to this many k-points a lattice model's grid-structured σ_xy keeps, for its gradient, the values of every chunk
#: (two bands: the d-vectors, 80 B per point, ~0.34 GB here); beyond, reverse mode recomputes each chunk, so the
#: gradient's memory stays bounded by the chunk (the Haldane model on 300² / 600²: gradient 5.5 → 15.5 / 30 → 108 ms,
#: 2026-12-08)
STORED_GRADIENT_POINTS = 2**22


def hall_conductivity(model: Model, mu, grid: AbstractGrid, kT=0.0, x=None, *,
                      chunk_size: Optional[int] = None, mesh=None) -> jax.Array:
    """σ_xy = −(e²/ħ) Σ_n ∫dk f⁰_n Ω_n^{k_x k_y}, in e²/h (2D) or (e²/h)/Å (3D).

    Args:
        model: a 2D or 3D ``Model``.
        mu: chemical potential(s) in eV, any shape; the result has the same shape.
        grid: a ``KGrid`` (Brillouin zone, or a disk for continuum models).
        kT: temperature in eV (≥ 0; broadcast against ``mu``). Derivatives with respect to μ
            and kT need kT > 0 (at kT = 0 the occupation is a step).
        x: position (d,) in Å for textured models (default 0).
        chunk_size: k-points evaluated at once (memory bound); default ~16 MB per n×n array.
        mesh: devices the k-points are split over (a ``jax.sharding.Mesh`` with one axis "k"
            or a sequence of devices); default ``js.set_devices``'s, else all devices.

    A Chern insulator with μ in the gap gives σ_xy = −C_occ (docs/conventions.md §4). Differentiable in the
    model parameters, μ and kT; one compiled program serves every μ, kT and parameter value. Reverse mode
    recomputes each chunk, so a gradient's memory is bounded by the chunk — on the grid-structured path below only
    beyond ``STORED_GRADIENT_POINTS`` (2²²) k-points: up to there it keeps every chunk's values (~84 B per point for
    two bands: the d-vectors of 𝓗 and ∂𝓗/∂k).
    Lattice models (tight-binding, Wannier90, PythTB, built-in lattice models) on a
    ``brillouin_zone`` grid of their own lattice take the grid-structured Bloch sum (H(k) and
    ∂H/∂k of whole grid lines by phase tables and matrix products); other inputs go point by point.
    """
    checks = _checks.Deferred()  # traced checks: one compiled check on the inputs
    model = _checks.check_model(model, defer=checks)
    if model.dim not in (2, 3):
        raise ValueError(f"hall_conductivity needs a 2D or 3D model, got dim = {model.dim}")
    grid = _checks.check_grid(grid, model.dim, defer=checks)
    mu = _checks.check_finite(_checks.as_array(mu, float), "mu", checks)
    kT = _checks.check_kT(_checks.as_array(kT, float), defer=checks)
    x = np.zeros(model.dim, jnp.result_type(float)) if x is None else _checks.as_points(x, model.dim, "x", checks)
    if x.shape != (model.dim,):
        raise ValueError(f"x must be one position of shape ({model.dim},), got {x.shape}")
    _checks.check_hermitian_at(model, grid, x, defer=checks)
    params, mu, kT, grid, x = checks.apply((model.params, mu, kT, grid, x))
    model = model.with_params(params)
    mu_b, kT_b = (np if _checks.is_host(mu, kT) else jnp).broadcast_arrays(mu, kT)
    return _hall(model, mu_b, kT_b, grid, x, chunk_size or default_chunk(model.n_bands), _sharding.get_mesh(mesh),
                 _bloch.structure(model, grid))


def _occupied_curvature(k, args):
    """Σ_n f⁰_n Ω_n^{k_x k_y} (Å²) at one k; args = (model, mu, kT, x)."""
    model, mu, kT, x = args
    h, dk = hamiltonian_and_derivatives(model, k, x, wrt_x=False)[:2]
    return _occupied_from(h, dk, mu[None], kT[None])[0]


def _occupied_from(h, dk, mu, kT):
    """Σ_n f⁰_n Ω_n^{k_x k_y} (Å²) (B,) from 𝓗 (n, n) and ∂𝓗/∂k (d, n, n) at one point, for mu, kT (B,) eV.

    Two bands from the d-vectors of 𝓗, ∂_x𝓗 and ∂_y𝓗 (linear in them), the closed form after them behind
    ``jax.checkpoint``: reverse mode keeps those 10 numbers per point and recomputes the rest (it kept 27; a tilted
    cone on a 200×64 disk, 0.58 → 0.48 ms). The grid-structured path hands ``_occupied_two_band`` its d-vectors
    directly (``bloch_reduce``'s ``two_band``).
    """
    if h.shape[-1] == 2:
        return jax.checkpoint(_occupied_two_band)(*d_vectors_xy(h, dk), mu, kT)
    return _occupied_bands(*curvature_xy(h, dk), mu, kT)


def _occupied_two_band(d0, d, dx, dy, mu, kT):
    """``_occupied_from`` of 𝓗 = d₀ + d·σ from d₀, d and its slopes ∂_x d, ∂_y d (``two_band_curvature_xy``).

    3-vectors as tuples of components (the grid-structured path, points last) give (f⁰(d₀ − |d|) − f⁰(d₀ + |d|)) Ω₋
    with no band axis (Haldane 300²: 1.5 → 1.1 ms); (3,) arrays (one point, vmapped) the band sum of
    ``_occupied_bands``, whose reverse mode is the faster there (a tilted cone on a disk: gradient 0.50 vs 0.63 ms).
    """
    if isinstance(d, tuple):
        dn, lower = two_band_lower_curvature(d0, d, dx, dy)
        return jax.vmap(lambda m, t: (fermi(d0 - dn, m, t) - fermi(d0 + dn, m, t)) * lower)(mu, kT)
    return _occupied_bands(*two_band_curvature_xy(d0, d, dx, dy), mu, kT)


def _occupied_bands(energies, omega, mu, kT):
    """Σ_n f⁰_n Ω_n (B,) from the energies (n,) eV and curvatures (n,) Å² for mu, kT (B,) eV."""
    return jax.vmap(lambda m, t: fermi(energies, m, t) @ omega)(mu, kT)


def hall_conductivity_adaptive(model: Model, mu, domain=None, kT=0.0, x=None, *, rtol: float = 1e-6,
                               atol: float = 0.0, max_points: int = 5_000_000) -> AdaptiveResult:
    """σ_xy in e²/h (2D) by adaptive cubature that refines Berry-curvature hot spots.

    Args:
        model: a 2D model; mu, kT: scalars in eV.
        domain: ``js.kgrid.bz_domain(model)`` (default for lattice models) or
            ``js.kgrid.disk_domain(radius, center)`` for continuum models.
        rtol, atol: target relative (> 0) / absolute (≥ 0) error of σ_xy (e²/h);
            max_points: budget (≥ one refinement round, 4050 points).

    Returns an ``AdaptiveResult`` (value, error estimate, number of k-points, cells,
    ``converged``); an unmet tolerance also warns (``ConvergenceWarning``).
    Differentiable (``jax.grad``) in the model parameters, μ and kT outside jit: the cells
    come from a concrete run, the value is a differentiable sum over them. Under ``jax.jit``
    or ``vmap`` it raises a TypeError: use ``hall_conductivity`` on a fixed grid there.
    """
    model = _checks.check_model(model)
    if model.dim != 2:
        raise ValueError(f"hall_conductivity_adaptive needs a 2D model, got dim = {model.dim}")
    if domain is None:
        domain = bz_domain(model)
    mu, kT = jnp.asarray(mu, dtype=float), jnp.asarray(kT, dtype=float)
    if mu.shape or kT.shape:
        raise ValueError("hall_conductivity_adaptive takes scalar mu and kT")
    mu = _checks.check_finite(mu, "mu")
    kT = _checks.check_kT(kT)
    x = jnp.zeros(2) if x is None else _checks.as_points(x, 2, "x")
    return integrate_adaptive(_sigma_density, (model, mu, kT, x), domain, rtol=rtol, atol=atol,
                              max_points=max_points)


def _sigma_density(k, args):
    """−2π Σ_n f⁰_n Ω_n^{k_x k_y} (Å²): ∫ d²k/(2π)² of it is σ_xy in e²/h."""
    return -2 * jnp.pi * _occupied_curvature(k, args)


@eqx.filter_jit
def _hall(model, mu, kT, grid, x, chunk_size, mesh, structure=None):
    mus, kTs = mu.reshape(-1), kT.reshape(-1)
    if structure is not None:
        integral = _bloch.bloch_reduce(
            lambda h, dk: _occupied_from(h, dk, mus, kTs), model, structure, grid, "sum", chunk_size, mesh,
            remat=grid.size > STORED_GRADIENT_POINTS,
            two_band=lambda d0, d, dx, dy, *_: _occupied_two_band(d0, d, dx, dy, mus, kTs))
    else:
        integral = grid_reduce(
            lambda k: _occupied_from(*hamiltonian_and_derivatives(model, k, x, wrt_x=False)[:2], mus, kTs),
            grid, "sum", chunk_size, mesh, remat=True)  # recomputed in reverse mode: no slower, memory flat
    # σ/(e²/h) = −(2πħ/e²)(e²/ħ) ∫ f Ω = −2π ∫ dk f Ω
    return (-2.0 * jnp.pi * integral).reshape(mu.shape)
