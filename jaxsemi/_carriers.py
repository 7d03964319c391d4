"""Carrier density of the bands, n(μ), and its inverse μ(n) (differentiable to any order)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optimistix as optx

from . import _checks
from ._geometry import eigh
from ._model import Model
from ._statistics import fermi
from .kspace import KGrid


def _filled(model: Model, filled_bands) -> int:
    nf = model.n_bands // 2 if filled_bands is None else int(filled_bands)
    if not 0 <= nf <= model.n_bands:
        raise ValueError(f"filled_bands must be in [0, {model.n_bands}], got {filled_bands}")
    return nf


def _density_from_energies(energies, weights, mu, kT, nf):
    """Σ_i w_i (Σ_n f(ε_n(k_i) − μ) − nf) for each μ (...,), as electrons in the bands above
    neutrality minus holes, 1 − f(ε − μ) = f(μ − ε), in the nf below: exact to rounding
    relative to the carriers present (not to the filled bands), so μ is well determined
    deep in a gap. One (N·n, n_mu) occupation matrix summed by a mat-vec: XLA on CPU then
    keeps the tanh in a vectorised loop (2–5× faster than a band sum fused with it)."""
    sign = jnp.where(jnp.arange(energies.shape[-1]) < nf, -1.0, 1.0)
    s = jnp.broadcast_to(sign, energies.shape).reshape(-1, 1)
    occ = fermi(s * energies.reshape(-1, 1), s * mu.reshape(1, -1), kT)  # (N·n, n_mu)
    return ((jnp.repeat(weights, energies.shape[-1]) * s[:, 0]) @ occ).reshape(mu.shape)


def carrier_density(model: Model, mu, grid: KGrid, kT=0.0, x=None, *, filled_bands=None) -> jax.Array:
    """Carrier density relative to charge neutrality, n(μ) = ∫dk Σ_n f⁰(ε_n − μ) − N_filled ∫dk 1.

    Args:
        model, grid: the model and its k-grid (a disk for continuum models; weights include
            1/(2π)^d, so n is per unit cell area in Å⁻² in 2D). No spin or valley degeneracy
            is added: sum models (or multiply) for that.
        mu: chemical potential(s) in eV, any shape; kT ≥ 0 in eV.
        filled_bands: bands filled at neutrality (default n_bands // 2).

    Positive n = electrons, negative = holes. Multiply a 2D result by 1e4 for 10¹² cm⁻².
    For a massive Dirac cone at kT = 0: n = (μ² − Δ²)/(4π v²) sgn μ outside the gap.
    """
    nf = _filled(model, filled_bands)
    mu = jnp.asarray(mu, dtype=float)
    _checks.check_kT(kT)
    x = None if x is None else _checks.as_points(x, model.dim, "x")
    energies = eigh(model, grid.points, x)[0]
    return _density_from_energies(energies, grid.weights, mu, jnp.asarray(kT, dtype=float), nf)


def density_to_mu(model: Model, n, grid: KGrid, kT, x=None, *, filled_bands=None,
                  max_iterations: int = 200) -> jax.Array:
    """Chemical potential μ (eV) at which :func:`carrier_density` equals ``n`` (Å⁻², any shape).

    Solved on the band energies of the grid with ``optimistix.root_find``: bisection of
    [min ε − 40kT, max ε + 40kT] down to a kT/8 bracket, then Newton inside it to 1e-13 eV
    (float64; at most ``max_iterations`` steps each), and differentiated by the implicit-function
    theorem (``optimistix.ImplicitAdjoint``): derivatives of every order (``jax.hessian`` of a
    fit loss) with respect to the model parameters, ``n`` and kT are exact. Needs kT > 0
    (∂n/∂μ is the thermally smeared density of states); ``n`` must lie strictly between the
    densities of the empty and the full grid. Both raise ValueError for concrete values; under
    jit they give NaN, as a NaN input does (with a zero derivative). Where the smeared DOS
    underflows to zero (μ deep inside a gap at low kT) μ is any point of the gap and its
    derivative is zero.
    """
    _checks.check_kT(kT, positive=True, why="μ(n) is differentiated through the smeared DOS")
    nf = _filled(model, filled_bands)
    n = jnp.asarray(n, dtype=float)
    _checks.check_finite(n, "n")
    if _checks.is_concrete(n, grid):
        total = float(np.sum(np.asarray(grid.weights)))
        lo, hi = -nf * total, (model.n_bands - nf) * total
        if np.any(np.asarray(n) <= lo) or np.any(np.asarray(n) >= hi):
            raise ValueError(f"carrier density n must lie in ({lo:.4g}, {hi:.4g}) Å^-2 for this grid "
                             f"(empty to full), got range [{np.min(n):.4g}, {np.max(n):.4g}]")
    x = None if x is None else _checks.as_points(x, model.dim, "x")
    energies = eigh(model, grid.points, x)[0]
    return _solve_mu(energies, grid.weights, n, jnp.asarray(kT, dtype=float), nf, int(max_iterations))


def _mismatch(mu, args):
    """(n(μ) − n)/L with L = Σw·n_bands/4kT ≥ ∂n/∂μ: increasing and 1-Lipschitz in μ, so a
    bracket narrower than the tolerance also bounds the residual (bisection's second test)."""
    energies, weights, n, kT, nf, lipschitz = args
    return (_density_from_energies(energies, weights, mu, kT, nf) - n) / lipschitz


#: Bisection narrows μ to a bracket of COARSE·kT, then Newton finishes inside it: over a kT/8
#: bracket ∂n/∂μ changes by at most e^{1/8} (|∂ ln f(1−f)/∂μ| ≤ 1/kT for every state), so
#: Newton converges from anywhere in the bracket, in 4–5 steps to 1e-13 eV.
COARSE = 0.125


@eqx.filter_jit
def _solve_mu(energies, weights, n, kT, nf, max_iterations):
    sg = jax.lax.stop_gradient
    lo, hi = sg(jnp.min(energies) - 40 * kT), sg(jnp.max(energies) + 40 * kT)
    lipschitz = sg(jnp.sum(weights) * energies.shape[-1] / (4 * kT))
    tol = max(1e-13, 8 * float(jnp.finfo(energies.dtype).eps))  # reachable in float32 too
    # rtol = 0: an absolute tolerance in eV wherever μ is. The 1×1 Jacobian ∂n/∂μ is
    # pseudo-inverted (a zero step and derivative where the smeared DOS underflows).
    bisection = optx.Bisection(rtol=0.0, atol=COARSE * sg(kT), flip=False)
    newton = optx.Newton(rtol=0.0, atol=tol, linear_solver=lx.Diagonal())
    adjoint = optx.ImplicitAdjoint(linear_solver=lx.Diagonal())

    def one(n_i):
        args = (energies, weights, n_i, kT, nf, lipschitz)
        coarse = optx.root_find(_mismatch, bisection, 0.5 * (lo + hi), sg(args), {"lower": lo, "upper": hi},
                                max_steps=max_iterations, throw=False)
        fine = optx.root_find(_mismatch, newton, coarse.value, args,
                              {"lower": coarse.state.lower, "upper": coarse.state.upper},
                              max_steps=max_iterations, adjoint=adjoint, throw=False)
        ok = (coarse.result == optx.RESULTS.successful) & (fine.result == optx.RESULTS.successful)
        return jnp.where(ok, fine.value, jnp.nan)

    return jax.vmap(one)(n.reshape(-1)).reshape(n.shape)
