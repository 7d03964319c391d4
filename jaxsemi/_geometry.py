"""Band geometry by autodiff and gauge-invariant sums over states.

Per point (k, x) the Hamiltonian and its derivatives ∂𝓗/∂k, ∂𝓗/∂x come from forward-mode
autodiff; they are rotated into the eigenbasis, and every geometric quantity is a sum over
states of gauge-invariant products (docs/conventions.md §3):

    Ω_n^{αβ} = i Σ_{m≠n} [⟨n|∂_α𝓗|m⟩⟨m|∂_β𝓗|n⟩ − (α↔β)] / (ε_n − ε_m)²,
    [R_α]_nm = i⟨n|∂_α𝓗|m⟩ / (ε_m − ε_n)   (n ≠ m),
    𝓕_nm^{αβ} = i Σ_{l∉a} [⟨n|∂_α𝓗|l⟩⟨l|∂_β𝓗|m⟩ − (α↔β)] / ((ε_n − ε_l)(ε_m − ε_l))  (n, m ∈ a),

the last being Eq. 40 with "+c.c." read as −(α↔β). Derivatives are with respect to k (1/Å)
and x (Å), so Ω^{kk} is in Å², Ω^{kx} dimensionless, Ω^{xx} in 1/Å². Degenerate pairs
(|ε_n − ε_m| ≤ ``degeneracy_tol``: 1e-9 eV, more in float32) are left out of the sums and
per-band values are averaged over each degenerate group (a per-band curvature is undefined
there; the group sum is the trace of the group's non-Abelian curvature).
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import _checks, _sharding
from ._eigh import (SMALL_N, _safe_sqrt, d_components, d_vector, degeneracy_tol, eigh as _eigh_matrix, eigvalsh,
                    inverse_gaps, manifold_gap, matmul, split_levels)
from ._model import D_FORMS, Model, registered
from .kspace import default_chunk
from .kspace._reduce import reduce_blocks
from .units import HBAR

_KINDS = ("kk", "kx", "xk", "xx")


class PointGeometry(NamedTuple):
    """Eigen-data at one phase-space point.

    energies (n,) eV; states (n, n) columns are eigenvectors; dk, dx (d, n, n) are ∂𝓗/∂k
    (eV·Å) and ∂𝓗/∂x (eV/Å) in the eigenbasis (dx is None when not requested).
    """

    energies: jax.Array
    states: jax.Array
    dk: jax.Array
    dx: Optional[jax.Array]


def hamiltonian_and_derivatives(model: Model, k, x, wrt_x: bool = True):
    """𝓗 (n, n), ∂𝓗/∂k (d, n, n) and, if ``wrt_x``, ∂𝓗/∂x (d, n, n) at one point."""
    p = model.params
    if wrt_x:
        def f(kx):
            h = model.hamiltonian(kx[0], kx[1], p)
            return h, h
        jac, h = jax.jacfwd(f, has_aux=True)((k, x))
        dk, dx = jac
        return h, jnp.moveaxis(dk, -1, 0), jnp.moveaxis(dx, -1, 0)

    def g(kk):
        h = model.hamiltonian(kk, x, p)
        return h, h

    dk, h = jax.jacfwd(g, has_aux=True)(k)
    return h, jnp.moveaxis(dk, -1, 0), None


def _d_form(model: Model, k, x):
    """(d₀, d_x, d_y, d_z) eV at one point from the model's registered d-vector
    (``models._pauli.pauli_form``: Dirac, QWZ, Haldane), or None where it has none."""
    found = registered(D_FORMS, model)
    return None if found is None else jnp.broadcast_arrays(*found[0](k, x, model.params, **found[1]))


def two_band_d(model: Model, k, x):
    """d₀ (eV) and d (3,) eV of a two-band model 𝓗 = d₀ + d·σ at one point k (d,) 1/Å, x (d,) Å: from
    its registered d-vector in real arithmetic where it has one, else from 𝓗."""
    d = _d_form(model, k, x)
    return d_vector(model.hamiltonian(k, x, model.params)) if d is None else (d[0], jnp.stack(d[1:]))


def two_band_components(model: Model, k, x):
    """``two_band_d`` as four scalars (d₀, d_x, d_y, d_z) eV: a registered d-vector's own, with no stack of the
    components for reverse mode to transpose (else split from 𝓗's)."""
    d = _d_form(model, k, x)
    return d_components(model.hamiltonian(k, x, model.params)) if d is None else tuple(d)


class TwoBandJet(NamedTuple):
    """𝓗 = d₀ + d·σ of a two-band model at one point and its first derivatives in λ = (k, x) (L = 2d) or k
    (L = d): d0 () eV, d (3,) eV, g0 = ∂d₀/∂λ (L,) and g = ∂d/∂λ (3, L) (eV·Å for k, eV/Å for x)."""

    d0: jax.Array
    d: jax.Array
    g0: jax.Array
    g: jax.Array


def two_band_jet(model: Model, k, x, textured: bool) -> TwoBandJet:
    """``TwoBandJet`` at k (d,) 1/Å, x (d,) Å, in λ = (k, x) if ``textured`` else k (forward mode, real)."""
    # x apart from k (not in λ = (k, x)): at one x for every k, a texture's x-only terms (cos G·x) are computed once
    argnums = (0, 1) if textured else 0
    jac, (d0, dv) = jax.jacfwd(lambda a, b: (two_band_d(model, a, b),) * 2, argnums, has_aux=True)(k, x)
    g0, g = (jnp.concatenate(pair, -1) for pair in jac) if textured else jac
    # materialised: fused into the (L, L) curvatures, a texture's sine and cosine (inside d and ∂d) were recomputed
    # for every element (the exact steady state's characteristics, SSCT J at one field: 234 → 162 ms)
    g, dv = jax.lax.optimization_barrier((g, dv))
    return TwoBandJet(d0, dv, g0, g)


def two_band_geometry(jet: TwoBandJet, sign):
    """Bands of a two-band model in closed form (no eigen-solver) from its ``TwoBandJet``: for each sign (m,)
    (−1: the lower band, +1: the upper) the energy d₀ + sign·|d| (m,) eV, its slope ∂ε/∂λ = ∂d₀ + sign·d̂·∂d (m, L)
    (eV·Å for k, eV/Å for x) and Berry curvature Ω^{λ_a λ_b} = −sign·d·(∂_a d × ∂_b d)/(2|d|³) (m, L, L) (Å² kk,
    1 kx, 1/Å² xx), zero where the gap 2|d| is degenerate (as ``curvature_xy``). Sums over the 3 components, not
    3-vector products: under vmap those were batched dots of (L², 3) by 3 per point and transposing copies."""
    d0, dv, g0, g = jet
    dn, ok = split_levels(d0, dv)
    safe = jnp.where(ok, dn, 1.0)
    # components by one split each, not dv[c] and g[c]: reverse mode transposes a split into one concatenate, but
    # each slice into a pad of its own (21 pad kernels writing (N, 3) arrays in the gradient of SSCT's J)
    dc, gc = ([part[0] for part in jnp.split(a, 3)] for a in (dv, g))
    slopes = g0 + sign[:, None] * (sum(dc[c] * gc[c] for c in range(3)) / safe)
    m = component_cross(dc, gc)  # d × ∂_a d (3 × (L,))
    triple = sum(m[c][:, None] * gc[c][None, :] for c in range(3))  # (d × ∂_a d)·∂_b d = d·(∂_a d × ∂_b d)
    omega = jnp.where(ok, -sign[:, None, None] * triple / (2.0 * safe**3), 0.0)
    return d0 + sign * dn, slopes, omega


def component_cross(a, b):
    """a × b of two 3-vectors given as lists of their components (broadcastable arrays): elementwise products,
    no (…, 3) axis for reverse mode to slice, pad or concatenate."""
    return [a[c - 2] * b[c - 1] - a[c - 1] * b[c - 2] for c in range(3)]


def band_energies(model: Model, k, x):
    """Ascending energies in eV at one point k (d,) 1/Å, x (d,) Å, no eigenvectors, as a tuple of parts in
    band order (``jnp.hstack`` gives the (n,) array): (d₀ − |d|, d₀ + |d|) (scalars) from a registered
    d-vector in real arithmetic — the exact steady state's shifted energies ~2× faster than through the
    complex 𝓗 — else (``eigvalsh`` of 𝓗,). Kept apart, each closed-form band fuses with what consumes it;
    stacked, XLA writes the stack to memory first (``_relaxation.chambers_average``: 2× slower)."""
    d = _d_form(model, k, x)
    if d is None:
        return (eigvalsh(model.hamiltonian(k, x, model.params)),)
    d0, dx, dy, dz = d
    dn = _safe_sqrt(dx * dx + dy * dy + dz * dz)
    return d0 - dn, d0 + dn


def einsum(spec: str, *operands):
    """``jnp.einsum(spec, *operands)``, as one broadcast product and sum when all its indices
    together span at most SMALL_N³ elements (no "..." and no repeated index in one operand):
    a fused elementwise loop, also in its reverse-mode transpose, instead of tiny batched dots."""
    inputs, out = spec.replace(" ", "").split("->")
    inputs = inputs.split(",")
    sizes = {c: n for term, op in zip(inputs, operands) for c, n in zip(term, op.shape)}
    if "." in spec or any(len(set(t)) < len(t) for t in inputs) or np.prod(list(sizes.values())) > SMALL_N**3:
        return jnp.einsum(spec, *operands)
    order = out + "".join(sorted(set(sizes) - set(out)))  # output indices first, then the summed ones
    product = 1
    for term, op in zip(inputs, operands):
        op = jnp.transpose(op, [term.index(c) for c in order if c in term])
        product = product * op.reshape([sizes[c] if c in term else 1 for c in order])
    return jnp.sum(product, axis=tuple(range(len(out), len(order))))


def point_geometry(model: Model, k, x, wrt_x: bool = True) -> PointGeometry:
    """Eigen-decomposition and eigenbasis derivative matrices at one point."""
    return eigen_geometry(*hamiltonian_and_derivatives(model, k, x, wrt_x))


def eigen_geometry(h, dk, dx=None) -> PointGeometry:
    """``PointGeometry`` from 𝓗 (n, n) and its derivatives dk, dx (d, n, n) (dx may be None)."""
    w, u = _eigh_matrix(h)
    return PointGeometry(w, u, rotate(u, dk), None if dx is None else rotate(u, dx))


def rotate(u, m):
    """U† m U over the last two axes of m (leading axes broadcast)."""
    return matmul(matmul(jnp.conj(u.T), m), u)


def point_geometry_second(model: Model, k, x, wrt_x: bool = True):
    """``point_geometry`` and the second derivatives ∂²𝓗/∂k_α∂λ_β (d, L, n, n) (eV·Å², or eV for
    λ = x; not rotated), λ = k (L = d) or (k, x) (L = 2d, ``wrt_x``): forward mode through 𝓗 only."""
    d = k.shape[0]

    def first(kk):
        lam = jnp.concatenate([kk, x]) if wrt_x else kk
        h_of = lambda l: model.hamiltonian(l[:d], l[d:] if wrt_x else x, model.params)  # noqa: E731
        jac, h = jax.jacfwd(lambda l: (h_of(l), h_of(l)), has_aux=True)(lam)  # (n, n, L)
        return jac, (jac, h)

    hess, (jac, h) = jax.jacfwd(first, has_aux=True)(k)  # (n, n, L, d)
    w, u = _eigh_matrix(h)
    dlam = rotate(u, jnp.moveaxis(jac, -1, 0))
    return PointGeometry(w, u, dlam[:d], dlam[d:] if wrt_x else None), jnp.moveaxis(hess, (-1, -2), (0, 1))


def group_average(values, w):
    """Average a per-band array (n, ...) over groups of degenerate bands."""
    degenerate = (jnp.abs(w[:, None] - w[None, :]) <= degeneracy_tol(w)).astype(values.dtype)
    weights = degenerate / degenerate.sum(1, keepdims=True)
    if w.shape[0] <= SMALL_N:
        return jnp.sum(weights.reshape(weights.shape + (1,) * (values.ndim - 1)) * values[None], axis=1)
    return jnp.tensordot(weights, values, axes=1)


def abelian_curvature(w, a, b):
    """Ω_n^{αβ} (n, dα, dβ) from eigenbasis derivative matrices a (dα, n, n), b (dβ, n, n)."""
    g, _ = inverse_gaps(w, 2)
    if w.shape[0] <= SMALL_N:
        prod = a[:, None] * jnp.swapaxes(b, -1, -2)[None] * g  # (dα, dβ, n, m): a_nm b_mn g_nm
        omega = jnp.moveaxis(-2.0 * jnp.imag(jnp.sum(prod, axis=-1)), -1, 0)
    else:
        omega = -2.0 * jnp.imag(einsum("anm,bmn,nm->nab", a, b, g))
    return group_average(omega, w)


def curvature_xy(h, dk):
    """Energies (n,) eV and Ω_n^{k_x k_y} (n,) Å² from 𝓗 (n, n) and ∂𝓗/∂k (≥ 2, n, n).

    For n = 2 in closed form from the d-vector (𝓗 = d₀ + d·σ): Ω_∓ = ±d·(∂_x d × ∂_y d)/(2|d|³),
    zero where the gap 2|d| is degenerate (≤ ``degeneracy_tol``); no eigenvectors. Otherwise from
    one rotation instead of two: with C = U†(∂_x𝓗 + i∂_y𝓗)U and a, b the rotated ∂_x𝓗, ∂_y𝓗
    (Hermitian), |C_nm|² − |C_mn|² = 4 Im(a_nm b_mn), so Ω_n = −½ Σ_m (|C_nm|² − |C_mn|²)/(ε_n − ε_m)².
    """
    if h.shape[-1] != 2:
        w, u = _eigh_matrix(h)
        c = rotate(u, dk[0] + 1j * dk[1])
        c2 = jnp.real(c) ** 2 + jnp.imag(c) ** 2  # |C|², smooth at C = 0 (unlike |C|)
        g, _ = inverse_gaps(w, 2)
        return w, group_average(-0.5 * jnp.sum((c2 - c2.T) * g, axis=-1), w)

    return two_band_curvature_xy(*d_vectors_xy(h, dk))


def d_vectors_xy(h, dk):
    """d₀ and d (3,) of 𝓗 = d₀ + d·σ (2, 2) and d's slopes ∂_x d, ∂_y d (3,) from ∂𝓗/∂k (≥ 2, 2, 2)."""
    (d0, d), (_, dx), (_, dy) = d_vector(h), d_vector(dk[0]), d_vector(dk[1])
    return d0, d, dx, dy


def two_band_curvature_xy(d0, d, dx, dy):
    """``curvature_xy`` of 𝓗 = d₀ + d·σ from d₀ (eV), d eV and its slopes ∂_x d, ∂_y d eV·Å (3-vectors: (3,)
    arrays or tuples of components)."""
    dn, lower = two_band_lower_curvature(d0, d, dx, dy)
    return jnp.stack([d0 - dn, d0 + dn]), jnp.stack([lower, -lower])


def two_band_lower_curvature(d0, d, dx, dy):
    """|d| (eV) and the lower band's Ω^{k_x k_y} = d·(∂_x d × ∂_y d)/2|d|³ (Å²; 0 where the levels are not split)
    of ``two_band_curvature_xy``. 3-vectors given as tuples of components (a batch of points stacked last, the
    grid-structured path: ``jnp.cross`` moved the points first, (points, 3) arrays whose loops XLA:CPU does not
    vectorise) take the triple product by components; (3,) arrays (one point, vmapped) by ``jnp.cross``, whose
    reverse mode is the faster there (a tilted cone's σ_xy on a disk, gradient 0.50 vs 0.63 ms)."""
    if isinstance(d, tuple):
        dn, ok = split_levels(d0, jnp.stack(d))
        triple = sum(a * b for a, b in zip(d, component_cross(dx, dy)))
    else:
        dn, ok = split_levels(d0, d)
        triple = jnp.dot(d, jnp.cross(dx, dy))
    return dn, jnp.where(ok, 0.5 * triple / jnp.where(ok, dn, 1.0) ** 3, 0.0)


def berry_connection_offdiag(w, a):
    """[R_α]_nm = i a_nm / (ε_m − ε_n) for n ≠ m, zero on the diagonal and degenerate pairs;
    a (..., n, n) = U†∂_α𝓗U (or any contraction of it), w (n,) the energies."""
    inv, _ = inverse_gaps(w, 1)  # 1/(ε_n − ε_m)
    return -1j * a * inv


def nonabelian_curvature_block(w, a, b, start: int, stop: int):
    """𝓕_nm^{αβ} (m, m, dα, dβ) of the manifold [start, stop), remote bands only in the sums."""
    n = w.shape[0]
    if stop - start == n:  # no remote bands: the sums are empty
        return jnp.zeros((stop - start, stop - start, a.shape[0], b.shape[0]), a.dtype)
    inside = jnp.arange(n)
    remote = (inside < start) | (inside >= stop)
    wa = w[start:stop]
    gap = wa[:, None] - w[None, :]  # (m, n): ε_n − ε_l
    inv = jnp.where(remote[None, :], 1.0 / jnp.where(remote[None, :], gap, 1.0), 0.0)
    pa = a[:, start:stop, :] * inv[None]  # (dα, m, n)
    pb = b[:, start:stop, :] * inv[None]
    f = 1j * (einsum("anl,bml->nmab", pa, jnp.conj(pb)) - einsum("bnl,aml->nmab", pb, jnp.conj(pa)))
    return f


def _pick(geo: PointGeometry, which: str):
    return geo.dk if which == "k" else geo.dx


def parse_kind(kind: str) -> tuple[str, str]:
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    return kind[0], kind[1]


def map_points(fn: Callable, k, x, chunk_size: Optional[int], n_bands: int, mesh):
    """Apply ``fn(k_i, x_i)`` over broadcast leading axes of k and x (..., d): a "stack" reduce,
    ``chunk_size`` points at a time (default ``default_chunk(n_bands)``), split over the
    devices of ``mesh`` (a static argument of the calling jitted function)."""
    k, x = jnp.broadcast_arrays(k, x)
    lead, d = k.shape[:-1], k.shape[-1]
    flat = (k.reshape(-1, d), x.reshape(-1, d))
    size = flat[0].shape[0]

    def block(idx):
        safe = jnp.minimum(idx, size - 1)
        return jax.vmap(fn)(flat[0][safe], flat[1][safe]), None

    out = reduce_blocks(block, size, "stack", chunk=chunk_size or default_chunk(n_bands),
                        mesh=mesh)
    return jax.tree_util.tree_map(lambda o: o.reshape(lead + o.shape[1:]), out)


def _prepare(model: Model, k, x):
    """Checked model, k and x; with concrete inputs, Hermiticity at up to 16 of the points too."""
    model = _checks.check_model(model)
    k = _checks.as_points(k, model.dim, "k")
    x = jnp.zeros_like(k) if x is None else _checks.as_points(x, model.dim, "x")
    if _checks.is_concrete(model, k, x):
        kf, xf = (a.reshape(-1, model.dim) for a in np.broadcast_arrays(np.asarray(k), np.asarray(x)))
        idx = _checks.spread(kf.shape[0])
        _checks.check_hermitian_at(model, kf[idx], xf[idx])
    return model, k, x


# ----------------------------------------------------------------------------- public API
# Every function below maps over the points k (..., d) (and x, broadcast) in chunks of
# ``chunk_size`` split over the devices of ``mesh`` (a ``jax.sharding.Mesh`` with one axis "k"
# or a sequence of devices; default ``js.set_devices``'s, else all devices). The mesh is part
# of the compiled program, so a new device set takes effect at the next call.


def eigh(model: Model, k, x=None, *, chunk_size: Optional[int] = None, mesh=None):
    """Band energies (..., n) in eV and eigenvectors (..., n, n) (columns) at points k (..., d)."""
    model, k, x = _prepare(model, k, x)
    return _eigh_jit(model, k, x, chunk_size, _sharding.get_mesh(mesh))


@eqx.filter_jit
def _eigh_jit(model, k, x, chunk_size, mesh):
    return map_points(lambda kk, xx: _eigh_matrix(model.hamiltonian(kk, xx, model.params)), k, x, chunk_size,
                      model.n_bands, mesh)


def velocity_matrix(model: Model, k, x=None, *, chunk_size: Optional[int] = None, mesh=None):
    """Velocity operator ∂𝓗/∂ħk in the eigenbasis: (..., d, n, n) in Å/fs.

    Its diagonal is the band velocity ∂ε_n/∂ħk; the off-diagonal is the interband velocity.
    """
    model, k, x = _prepare(model, k, x)
    return _velocity_jit(model, k, x, chunk_size, _sharding.get_mesh(mesh))


@eqx.filter_jit
def _velocity_jit(model, k, x, chunk_size, mesh):
    return map_points(lambda kk, xx: point_geometry(model, kk, xx, False).dk / HBAR, k, x, chunk_size,
                      model.n_bands, mesh)


def force_matrix(model: Model, k, x=None, *, chunk_size: Optional[int] = None, mesh=None):
    """Force operator −∂𝓗/∂x in the eigenbasis: (..., d, n, n) in eV/Å."""
    model, k, x = _prepare(model, k, x)
    return _force_jit(model, k, x, chunk_size, _sharding.get_mesh(mesh))


@eqx.filter_jit
def _force_jit(model, k, x, chunk_size, mesh):
    return map_points(lambda kk, xx: -point_geometry(model, kk, xx, True).dx, k, x, chunk_size, model.n_bands, mesh)


def berry_connection(model: Model, k, x=None, *, kind: str = "k", chunk_size: Optional[int] = None, mesh=None):
    """Off-diagonal Berry connection [R_λ]_nm, (..., d, n, n): Å for λ = k, 1/Å for λ = x.

    The diagonal is gauge-dependent and returned as zero.
    """
    if kind not in ("k", "x"):
        raise ValueError(f"kind must be 'k' or 'x', got {kind!r}")
    model, k, x = _prepare(model, k, x)
    return _connection_jit(model, k, x, kind, chunk_size, _sharding.get_mesh(mesh))


@eqx.filter_jit
def _connection_jit(model, k, x, kind, chunk_size, mesh):
    def one(kk, xx):
        geo = point_geometry(model, kk, xx, kind == "x")
        return berry_connection_offdiag(geo.energies, _pick(geo, kind))

    return map_points(one, k, x, chunk_size, model.n_bands, mesh)


def berry_curvature(model: Model, k, x=None, *, kind: str = "kk", chunk_size: Optional[int] = None, mesh=None):
    """Abelian Berry curvature Ω_n^{λ_a μ_b} (Eq. 44) of every band: (..., n, d, d).

    ``kind`` ∈ {"kk", "kx", "xk", "xx"}; ``[..., n, a, b]`` is Ω_n^{λ_a μ_b} with λ, μ the two
    letters of ``kind``. Units: kk Å², kx and xk dimensionless, xx 1/Å².
    """
    first, second = parse_kind(kind)
    model, k, x = _prepare(model, k, x)
    return _curvature_jit(model, k, x, first, second, chunk_size, _sharding.get_mesh(mesh))


@eqx.filter_jit
def _curvature_jit(model, k, x, first, second, chunk_size, mesh):
    wrt_x = "x" in (first, second)

    def one(kk, xx):
        geo = point_geometry(model, kk, xx, wrt_x)
        return abelian_curvature(geo.energies, _pick(geo, first), _pick(geo, second))

    return map_points(one, k, x, chunk_size, model.n_bands, mesh)


def nonabelian_curvature(model: Model, k, bands, x=None, *, kind: str = "kk",
                         chunk_size: Optional[int] = None, mesh=None):
    """Non-Abelian Berry curvature 𝓕^{λ_a μ_b} of a band manifold (Eqs. 40–41): (..., m, m, d, d).

    ``bands`` is a band index or a contiguous sequence; only the gaps to the remote bands
    enter, so the result is finite at degeneracies inside the manifold. Its trace is
    gauge-invariant; the matrix itself is gauge-covariant (eigenbasis of the manifold).
    """
    first, second = parse_kind(kind)
    model, k, x = _prepare(model, k, x)
    start, stop = _checks.band_slice(bands, model.n_bands)
    if _checks.is_concrete(model, k, x):
        w, _ = eigh(model, k, x, chunk_size=chunk_size, mesh=mesh)
        points = jnp.broadcast_to(k, w.shape[:-1] + (model.dim,)).reshape(-1, model.dim)
        _checks.check_gap_open(None, manifold_gap(w, start, stop).reshape(-1), points, start, stop)
    return _nonabelian_jit(model, k, x, first, second, start, stop, chunk_size, _sharding.get_mesh(mesh))


@eqx.filter_jit
def _nonabelian_jit(model, k, x, first, second, start, stop, chunk_size, mesh):
    wrt_x = "x" in (first, second)

    def one(kk, xx):
        geo = point_geometry(model, kk, xx, wrt_x)
        return nonabelian_curvature_block(geo.energies, _pick(geo, first), _pick(geo, second), start, stop)

    return map_points(one, k, x, chunk_size, model.n_bands, mesh)
