"""Hermitian eigen-solvers with derivatives that are safe at degeneracies.

* n = 2: closed form from the d-vector (H = d₀ + d·σ); no LAPACK call, ~100× cheaper than
  batched ``eigh`` on a CPU and free of the batched-LAPACK scheduling issues of jaxlib.
* n > 2: ``jnp.linalg.eigh``.

Both have a custom JVP, first-order perturbation theory that drops the eigenvector derivative
between (near-)degenerate pairs. JAX's own rule divides by the eigenvalue gap and returns NaN at
an exact degeneracy; the masked rule is exact for every quantity invariant under rotations
inside a degenerate subspace (projectors, manifold traces, populations), which are the only
ones jaxsemi differentiates. For n = 2 it also replaces autodiff through the closed form's
square root and branches, which reverse mode over forward mode (a gradient of a conductivity)
would otherwise transpose.

Eigenvalues are ascending; eigenvectors are the columns of ``U``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

#: Eigenvalue spacing (eV) below which two levels are treated as degenerate.
DEGENERACY_TOL = 1e-9
#: ... or this many machine epsilons of the largest |ε_n| at the point, if larger: the round-off
#: of the eigenvalues themselves, which only matters in float32 (``JAXSEMI_X64=0``).
DEGENERACY_EPS = 8


def degeneracy_tol(w):
    """Degeneracy tolerance (eV) at one point with energies w (n,): max(DEGENERACY_TOL,
    DEGENERACY_EPS·ε_machine·max|ε_n|). In float64 this is 1e-9 eV for any |ε| < 5·10⁵ eV; in
    float32, levels split only by round-off (~1e-7·|ε|) stay out of the 1/(ε_n − ε_m) sums."""
    return jnp.maximum(DEGENERACY_TOL, DEGENERACY_EPS * jnp.finfo(w.dtype).eps * jnp.max(jnp.abs(w)))


#: Up to this many bands, small matrix products are written as fused broadcasts: XLA's
#: batched dot of 2×2–8×8 complex matrices under vmap is several times slower on CPUs.
SMALL_N = 8


def matmul(a, b):
    """a @ b over the last two axes (broadcast-and-sum for small matrices)."""
    if a.shape[-1] <= SMALL_N:
        return jnp.sum(a[..., :, :, None] * b[..., None, :, :], axis=-2)
    return a @ b


@jax.custom_jvp
def cross(a, b):
    """a × b over the last axis (3), broadcast (``jnp.cross``), whose tangent da × b + a × db is written as the
    products −[b]ₓ da + [a]ₓ db with the skew matrices of the primal vectors: ``jnp.cross`` slices its operands,
    and reverse mode transposed every slice into a pad of its own (15 pad kernels in the gradient of the
    two-band non-adiabatic current); a matrix product transposes into broadcasts and sums."""
    return jnp.cross(a, b)


def _skew(v):
    """[v]ₓ (..., 3, 3) with [v]ₓ w = v × w."""
    zero = jnp.zeros_like(v[..., 0])
    return jnp.stack([jnp.stack([zero, -v[..., 2], v[..., 1]], -1), jnp.stack([v[..., 2], zero, -v[..., 0]], -1),
                      jnp.stack([-v[..., 1], v[..., 0], zero], -1)], -2)


@cross.defjvp
def _cross_jvp(primals, tangents):
    (a, b), (da, db) = primals, tangents
    return jnp.cross(a, b), jnp.sum(_skew(a) * db[..., None, :] - _skew(b) * da[..., None, :], -1)


def _safe_sqrt(x):
    pos = x > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1.0)), 0.0)


@jax.custom_jvp
def eigh_2x2(h: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Closed-form eigen-decomposition of one 2×2 Hermitian matrix (masked derivative)."""
    a = jnp.real(h[0, 0])
    b = jnp.real(h[1, 1])
    c = h[1, 0]  # = dx + i dy
    d0 = 0.5 * (a + b)
    dz = 0.5 * (a - b)
    dx, dy = jnp.real(c), jnp.imag(c)
    dn = _safe_sqrt(dx * dx + dy * dy + dz * dz)
    w = jnp.stack([d0 - dn, d0 + dn])
    # Upper eigenvector, in the gauge that is regular for the sign of dz.
    up_pos = jnp.stack([dn + dz, c])  # regular unless d ∥ -z
    up_neg = jnp.stack([jnp.conj(c), dn - dz])  # regular unless d ∥ +z
    use_pos = dz >= 0
    up = jnp.where(use_pos, up_pos, up_neg)
    norm2 = jnp.where(use_pos, 2 * dn * (dn + dz), 2 * dn * (dn - dz))
    ok = norm2 > 0
    up = jnp.where(ok, up / _safe_sqrt(jnp.where(ok, norm2, 1.0)), jnp.array([0.0, 1.0], h.dtype))
    lo = jnp.stack([-jnp.conj(up[1]), jnp.conj(up[0])])
    u = jnp.stack([lo, up], axis=1).astype(h.dtype)
    return w, u


@jax.custom_jvp
def eigh_general(h: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``jnp.linalg.eigh`` of one matrix with a degeneracy-masked derivative."""
    w, u = jnp.linalg.eigh(h)
    return w, u


def _masked_jvp(solver, primals, tangents):
    (h,), (dh,) = primals, tangents
    w, u = solver(h)
    dh = 0.5 * (dh + jnp.conj(dh.T))
    vdv = matmul(matmul(jnp.conj(u.T), dh), u)
    dw = jnp.real(jnp.diagonal(vdv))
    gap = w[None, :] - w[:, None]
    mask = jnp.abs(gap) > degeneracy_tol(w)
    f = jnp.where(mask, 1.0 / jnp.where(mask, gap, 1.0), 0.0)
    du = matmul(u, f * vdv)
    return (w, u), (dw, du)


eigh_2x2.defjvp(lambda primals, tangents: _masked_jvp(eigh_2x2, primals, tangents))
eigh_general.defjvp(lambda primals, tangents: _masked_jvp(eigh_general, primals, tangents))


def eigh(h: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Eigen-decomposition of one Hermitian matrix (n, n) → (w (n,), U (n, n))."""
    if h.shape[-1] == 2:
        return eigh_2x2(h)
    return eigh_general(h)


def d_components(h: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """d₀, d_x, d_y, d_z (each (...)) of 2×2 Hermitian matrices h = d₀ + d·σ (..., 2, 2).

    The entries come from splits of the rows, then the columns: reverse mode transposes them into concatenates,
    where each ``h[..., i, j]`` became a pad of the whole matrix fused with its own copy of the backward pass (a
    user's two-band model, written as a 2×2 matrix: four such pads took half the kernel time of the textured
    non-adiabatic current's gradient)."""
    (h00, _), (h10, h11) = ([e[..., 0, 0] for e in jnp.split(row, 2, -1)] for row in jnp.split(h, 2, -2))
    return 0.5 * jnp.real(h00 + h11), jnp.real(h10), jnp.imag(h10), 0.5 * jnp.real(h00 - h11)


def d_vector(h: jax.Array) -> tuple[jax.Array, jax.Array]:
    """d₀ (...) and d = (d_x, d_y, d_z) (..., 3) of 2×2 Hermitian matrices h = d₀ + d·σ (..., 2, 2)."""
    d0, *d = d_components(h)
    return d0, jnp.stack(d, -1)


def split_levels(d0, d):
    """|d| and whether the levels d₀ ∓ |d| of 𝓗 = d₀ + d·σ (one point) are split: 2|d| > ``degeneracy_tol``
    (where they are not, the two-band closed forms leave out every 1/|d| term, as ``inverse_gaps``)."""
    dn = _safe_sqrt(jnp.sum(d * d))
    return dn, 2.0 * dn > degeneracy_tol(jnp.stack([d0 - dn, d0 + dn]))


def eigvalsh(h: jax.Array) -> jax.Array:
    """Ascending eigenvalues (n,) of one Hermitian matrix; closed form (no eigenvectors) for n = 2."""
    if h.shape[-1] == 2:
        d0, d = d_vector(h)
        dn = _safe_sqrt(jnp.sum(d * d))
        return jnp.stack([d0 - dn, d0 + dn])
    return eigh_general(h)[0]


def manifold_gap(energies, start, stop):
    """Smallest |ε_l − ε_m| (eV) between bands m ∈ [start, stop) and the others l, from energies
    (..., n) → (...); inf when the manifold holds every band. ``start``/``stop`` may be traced."""
    i = jnp.arange(energies.shape[-1])
    active = (i >= start) & (i < stop)
    pair = active[:, None] & ~active[None, :]
    gaps = jnp.abs(energies[..., :, None] - energies[..., None, :])
    return jnp.min(jnp.where(pair, gaps, jnp.inf), axis=(-2, -1))


def inverse_gaps(w, power: int = 1):
    """1/(ε_n − ε_m)^power (n, n) from energies w (n,) with degenerate pairs
    (|ε_n − ε_m| ≤ ``degeneracy_tol``, the diagonal included) set to zero; and that degenerate mask."""
    gap = w[:, None] - w[None, :]
    mask = jnp.abs(gap) > degeneracy_tol(w)
    safe = jnp.where(mask, gap, 1.0)
    return jnp.where(mask, 1.0 / safe**power, 0.0), ~mask
