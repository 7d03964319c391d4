"""Chern numbers of a band or a band manifold: Fukui–Hatsugai–Suzuki and Kubo.

Sign convention (docs/conventions.md §3): C = (1/2π) ∫_BZ d²k Ω with Ω = ∂_kx R_ky − ∂_ky R_kx and
R = i⟨u|∂u⟩. Fukui, Hatsugai and Suzuki [J. Phys. Soc. Jpn. 74, 1674 (2005)] use the
connection A = ⟨u|∂u⟩ = −iR and C_FHS = (1/2πi) Σ F, so C = −C_FHS: the lattice sum below
carries the extra minus sign (and the orientation sign of the reciprocal basis).
"""

from __future__ import annotations

import warnings
from typing import Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import _bloch, _checks, _sharding
from ._checks import ConvergenceWarning
from ._eigh import eigh as _eigh_matrix, manifold_gap
from ._geometry import curvature_xy, hamiltonian_and_derivatives, two_band_curvature_xy
from ._model import Model
from .kspace import LatticeGrid, default_chunk
from .kspace._reduce import grid_reduce, reduce_blocks


class ChernWarning(ConvergenceWarning):
    """A Chern number may be unconverged: the grid does not resolve the manifold's gap."""


#: A link whose smaller gap is below RESOLUTION × the gap change along it counts as unresolved:
#: at that slope the gap would close within half a grid step of a grid point, where no grid
#: point sees it.
RESOLUTION = 0.5
#: A Kubo value farther than this from the nearest integer is reported as unconverged.
KUBO_INTEGER_TOL = 1e-2
#: Fewer k-points per axis than this cannot resolve any curvature (n_k = 2 gives C = 0 for a
#: QWZ Chern band whose gap looks resolved on the 4 points).
MIN_N_K = 4


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
        mesh: devices the k-sums are split over (a ``jax.sharding.Mesh`` with one axis "k" or
            a sequence of devices; default ``js.set_devices``'s, else all devices).

    Raises ValueError (under jit: an error when the program runs) if the manifold's gap to the
    other bands closes on the grid or the result is NaN (a link overlap vanished: the states
    jump between neighbouring points). Warns with a ``ChernWarning`` (eager calls only) when
    the result may be unconverged: n_k < 4, the gap changes by more than twice its smaller
    value between neighbouring grid points (it may close between them), or a Kubo value is
    not an integer.
    """
    checks = _checks.Deferred()
    model = _checks.check_model(model, defer=checks)
    if model.dim != 2:
        raise ValueError(f"chern_number needs a 2D model, got dim = {model.dim}")
    if method not in ("fhs", "kubo"):
        raise ValueError(f"method must be 'fhs' or 'kubo', got {method!r}")
    start, stop = _checks.band_slice(bands, model.n_bands)
    mesh = _sharding.get_mesh(mesh)
    b = model.reciprocal_lattice  # jnp: works with a traced lattice (a model built inside jit)
    n1, n2 = _checks.check_int_sequence(n_k, 2, "n_k")
    x = jnp.zeros(2) if x is None else _checks.as_points(x, 2, "x", checks)
    grid = LatticeGrid(b, jnp.zeros(2), (n1, n2))
    _checks.check_hermitian_at(model, grid, x, defer=checks)
    params, x = checks.apply((model.params, x))
    model = model.with_params(params)
    chunk = chunk_size or default_chunk(model.n_bands)
    rows = max(1, min(n1, chunk // (n2 + 1)))
    angle_sum, gap, where, ratio = _fhs_blocks(model, x, b, n1, n2, start, stop, rows, mesh)
    angle_sum = _checks.check_gap_open(angle_sum, gap, where, start, stop)
    if method == "fhs":
        value = -jnp.sign(jnp.linalg.det(b)) * angle_sum / (2 * np.pi)
    else:
        value = 2 * jnp.pi * _kubo(model, grid, x, start, stop, chunk, mesh, _bloch.structure(model, grid))
    label = "FHS" if method == "fhs" else "Kubo"
    value = _checks.fail_if(value, jnp.isnan(value), (
        f"the {label} Chern number of bands [{start}, {stop}) is NaN: the states jump between "
        "neighbouring grid points (the gap closes between them, or the grid is far too coarse); "
        "increase n_k or move away from the gap closing"))
    if _checks.is_concrete(value, ratio):
        _warn_unconverged(float(value), method, (n1, n2), float(jnp.min(ratio)))
    return value


def _warn_unconverged(value: float, method: str, n_k, ratio: float) -> None:
    """ChernWarning when the grid does not resolve the gap or a Kubo value is not an integer
    (stable texts, so a scan over parameters warns once per call site)."""
    problems = [f"fewer than {MIN_N_K} points per axis"] if min(n_k) < MIN_N_K else []
    if ratio < RESOLUTION:
        problems.append("the gap to the other bands is not resolved: between neighbouring grid "
                        "points it changes by more than twice its smaller value, so it may close "
                        "between them")
    if method == "kubo" and abs(value - round(value)) > KUBO_INTEGER_TOL:
        problems.append(f"the Kubo value is farther than {KUBO_INTEGER_TOL:g} from an integer")
    if problems:
        warnings.warn(f"Chern number on a {n_k[0]}×{n_k[1]} grid may be unconverged: "
                      + "; ".join(problems) + "; increase n_k", ChernWarning, stacklevel=3)


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
def _fhs_blocks(model, x, b, n1, n2, start, stop, rows, mesh):
    """Σ plaquette angles over the n1×n2 grid, a reduce over grid rows read ``rows`` at a time
    (bounded memory, split over the devices of ``mesh``); per row the smallest gap (eV) between
    the manifold [start, stop) and the other bands and the k (1/Å) where it is found (n1,),
    (n1, 2); and the smallest link ``_resolution`` of that gap."""
    cols = jnp.arange(n2 + 1) / n2

    def block(idx):  # idx: contiguous row indices; the next row closes the last plaquettes
        i = jnp.concatenate([idx, idx[-1:] + 1])
        frac = jnp.stack(jnp.broadcast_arrays((i / n1)[:, None], cols[None, :]), -1)
        k = frac @ b
        w, u = jax.vmap(jax.vmap(lambda kk: _eigh_matrix(model.hamiltonian(kk, x, model.params))))(k)
        angles = jnp.sum(plaquette_angles(u[..., start:stop]), 1)
        gap = manifold_gap(w, start, stop)
        ratio = jnp.minimum(_resolution(gap[:-1], gap[1:])[:, :-1], _resolution(gap[:, :-1], gap[:, 1:])[:-1])
        j = jnp.argmin(gap[:-1, :-1], 1)
        rows_ = jnp.arange(idx.shape[0])
        valid = idx < n1
        ratio = jax.lax.stop_gradient(jnp.min(ratio, 1))  # a convergence diagnostic (pmin has no derivative)
        return (jnp.where(valid, angles, 0.0), gap[rows_, j], k[rows_, j], ratio), valid

    return reduce_blocks(block, n1, ("sum", "stack", "stack", "min"), chunk=rows, mesh=mesh)


def _resolution(a, b):
    """min(a, b)/|a − b| for the gaps a, b at two neighbouring points (inf where undefined)."""
    d = jnp.abs(a - b)
    ok = jnp.isfinite(d) & (d > 0)
    return jnp.where(ok, jnp.minimum(a, b) / jnp.where(ok, d, 1.0), jnp.inf)


@eqx.filter_jit
def _kubo(model, grid, x, start, stop, chunk, mesh, structure=None):
    def manifold(h, dk):
        return jnp.sum(curvature_xy(h, dk)[1][start:stop])

    def two_band_manifold(d0, d, dx, dy, *_):  # ``bloch_reduce``'s two_band: d-vectors of 𝓗, ∂_x𝓗, ∂_y𝓗 (, ∂_z𝓗)
        return jnp.sum(two_band_curvature_xy(d0, d, dx, dy)[1][start:stop])

    if structure is not None:
        return _bloch.bloch_reduce(manifold, model, structure, grid, "sum", chunk, mesh, two_band=two_band_manifold)
    return grid_reduce(lambda k: manifold(*hamiltonian_and_derivatives(model, k, x, wrt_x=False)[:2]), grid, "sum",
                       chunk, mesh)
