"""Grid-structured Bloch sums: 𝓗(k) and ∂𝓗/∂k of a lattice model on a whole uniform grid.

A lattice model is 𝓗_ij(k) = Σ_R e^{ik·(R + τ_j − τ_i)} H_ij(R) with H(R) (nR, n, n) computed
differentiably from the parameters, R lattice vectors and τ orbital positions. On a uniform
Brillouin-zone grid k = Σ_j (i_j + s_j)/n_j b_j the phase is e^{2πi Σ_j f_j R_j} in reduced
coordinates f_j, R_j, so the sum separates axis by axis (a row-column discrete Fourier
transform). The grid is read in lines along its last (fastest) axis:

1. per line (its slow reduced coordinates fixed), one GEMM over the distinct slow parts of R:
   F_c[line, u] = Σ_{R: R_last = u} e^{2πi f_slow·R_slow} (1, R_1, …, R_{d−1})_c H(R);
2. per point, one GEMM over the distinct last components u with the line-independent table
   e^{2πi f_last u} (and u e^{…} for ∂/∂k_last), shared by every line.

A point then costs (number of distinct R_last) · n² · (1 + d) complex multiply-adds instead of
nR exponentials and nR · n² · (1 + d) multiply-adds (per-point exp and forward-mode autodiff);
beyond ``SMALL_N`` bands both stages run over the upper triangle i ≤ j only, n(n + 1)/2 entries
(𝓗 and ∂𝓗/∂k are Hermitian; a model's H(R) are, H(−R) = H(R)†, to its Hermiticity check).
∂𝓗/∂k_α = i Σ_j a_{jα} Σ_R R_j e^{…} H(R) in cartesian 1/Å; the orbital positions enter as
the diagonal gauge 𝓗 = D† 𝓗_lat D, D = diag(e^{ik·τ}).

Models opt in by registering, for their Hamiltonian function, a function giving H(R)
(``register``); ``structure(model, grid)`` says whether a sum takes this path.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from . import _checks
from ._geometry import SMALL_N
from ._model import registered
from .kspace import LatticeGrid
from .kspace._reduce import reduce_blocks

#: Hamiltonian function → ``form(params, **options) -> (r_cart (nR, d) numpy Å, H(R) (nR, n, n),
#: tau_cart (n, d) numpy Å)`` with 𝓗_ij(k) = Σ_R e^{ik·(R + τ_j − τ_i)} H_ij(R) for every x.
_FORMS: dict[Callable, Callable] = {}

#: Times a grid-structured sum was traced (an observable hook for tests: which path ran).
TRACES = {"count": 0}


def register(hamiltonian: Callable):
    """Decorator: ``form`` gives the lattice (real-space) form of the x-independent
    ``hamiltonian`` (a plain function, or one used through ``bind`` with its options)."""
    def deco(form: Callable) -> Callable:
        _FORMS[hamiltonian] = form
        return form
    return deco


def is_lattice(model) -> bool:
    """Whether the model's Hamiltonian function has a registered lattice form (``lattice_form``)."""
    return registered(_FORMS, model) is not None


def lattice_form(model):
    """``(r_cart (nR, d) Å, H(R) (nR, n, n) eV, tau_cart (n, d) Å)`` of a registered lattice
    model (R unique), else None. H(R) is computed from ``model.params`` (differentiable)."""
    found = registered(_FORMS, model)
    return None if found is None else found[0](model.params, **found[1])


#: ``patterns``: while ``_static_form`` traces a form in this thread, the (H(R), entry pattern) of each
#: ``assemble`` call it makes.
_RECORDING = threading.local()


def assemble(r_cart, i, j, values, n: int):
    """Unique R (nR, d) and H(R) (nR, n, n) from entries H_ij(R) += value (entries (m,) with
    static R (m, d) Å and orbital indices i, j; values traced). The entries it sets are the form's
    static pattern (``entry_pattern``): all others are 0 for every parameter value."""
    r_cart = np.asarray(r_cart, dtype=float) + 0.0  # −0.0 → 0.0, so equal rows compare equal
    r_unique, inv = np.unique(r_cart, axis=0, return_inverse=True)
    index = (np.ravel(inv), np.asarray(i), np.asarray(j))
    hr = jnp.zeros((len(r_unique), n, n), complex).at[index].add(values)
    patterns = getattr(_RECORDING, "patterns", None)
    if patterns is not None:
        pattern = np.zeros(hr.shape, bool)
        pattern[index] = True
        patterns.append((hr, pattern))
    return r_unique, hr


@dataclasses.dataclass(frozen=True)
class Structure:
    """Static layout of a grid-structured sum (hashable: a static argument of jitted sums).

    r_red: (nR, d) integer reduced lattice vectors, in the order of H(R); tau_red: (n, d)
    reduced orbital positions, or None when all are 0 (no gauge to apply).
    """

    r_red: tuple
    tau_red: Optional[tuple]


@functools.lru_cache(maxsize=64)
def _static_form(hamiltonian, treedef, avals) -> dict:
    """R, τ (static numpy arrays) and the entry pattern (``entry_pattern``) of a registered Hamiltonian
    for parameters of these shapes; H(R) is only traced (cached: structure() runs at every call)."""
    static, patterns = {}, []

    def capture(leaves):
        model = _Params(hamiltonian, jax.tree_util.tree_unflatten(treedef, leaves))
        static["r"], hr, static["tau"] = lattice_form(model)
        # H(R) as ``assemble`` returned it: its pattern; otherwise (a parameter, or changed after) every entry
        static["pattern"] = next((p for h, p in patterns if h is hr), np.ones(hr.shape, bool))
        return hr

    _RECORDING.patterns = patterns
    try:
        jax.eval_shape(capture, list(avals))
    finally:
        _RECORDING.patterns = None
    return static


def _static(model) -> dict:
    """``_static_form`` of a registered lattice model, keyed by its Hamiltonian and parameter shapes."""
    leaves, treedef = jax.tree_util.tree_flatten(model.params)
    return _static_form(model.hamiltonian, treedef, tuple(jax.ShapeDtypeStruct(jnp.shape(v), jnp.result_type(v))
                                                          for v in leaves))


def entry_pattern(model) -> np.ndarray:
    """(nR, n, n) bool: the entries H_ij(R) of a registered lattice model (its ``lattice_form``'s order of R)
    that can be nonzero for some parameter values — those its form sets through ``assemble``; all entries
    where it builds H(R) otherwise (a Wannier90 model's H(R) is its parameter)."""
    return _static(model)["pattern"]


class _Params(NamedTuple):
    """The two fields of a ``Model`` that ``lattice_form`` reads."""

    hamiltonian: Callable
    params: Any


def structure(model, grid) -> Optional[Structure]:
    """The layout of the grid-structured path when it applies, else None.

    It applies to registered lattice models (tight-binding, Wannier90, PythTB imports, the
    built-in lattice models) in 2D or 3D on a ``LatticeGrid`` of the model's own reciprocal
    basis, with a concrete lattice and grid basis; the per-point path serves everything else
    (non-uniform grids, continuum and textured models, models built inside ``jax.jit``).
    """
    if (not is_lattice(model) or model.lattice is None or model.dim < 2
            or not isinstance(grid, LatticeGrid) or not _checks.is_concrete(model.lattice, grid.basis)):
        return None
    lat, basis = np.asarray(model.lattice), np.asarray(grid.basis)
    tol = max(1e-12, 64 * np.finfo(np.result_type(lat, basis)).eps)  # float32 (JAXSEMI_X64=0): its own precision
    if not np.allclose(basis, 2 * np.pi * np.linalg.inv(lat).T, rtol=tol, atol=0):
        return None
    static = _static(model)
    r_red = static["r"] @ np.linalg.inv(lat)
    if not np.allclose(r_red, np.round(r_red), atol=max(1e-8, tol * (1 + np.max(np.abs(r_red), initial=0)))):
        return None
    tau_red = np.asarray(static["tau"]) @ np.linalg.inv(lat)
    return Structure(tuple(map(tuple, np.round(r_red).astype(int).tolist())),
                     tuple(map(tuple, tau_red.tolist())) if np.any(tau_red) else None)


#: Up to this many distinct last components of R, small matrices are summed by an unrolled
#: sum of products (XLA fuses it with what consumes it); beyond, by a matrix product.
SMALL_U = 4


def _contract(table, f):
    """Σ_u table[c, i, u] f[c, m, u, …] → (c, m, i, …)."""
    if f.shape[2] <= SMALL_U and (f.ndim == 3 or f.shape[-1] <= SMALL_N):
        return _unrolled_contract(table, f)
    return jnp.einsum("ciu,cmu...->cmi...", table, f)


@jax.custom_jvp
def _unrolled_contract(table, f):
    """``_contract`` as an unrolled sum of products (fused with its consumer). Its derivative is the same
    contraction as a matrix product, so reverse mode transposes a matrix product: autodiff of the unrolled
    form transposed into broadcast products and windowed sums over the grid line (σ_xy of the Haldane model,
    300², gradient 3.1 → 2.8× its forward time)."""
    table = table.reshape(table.shape[:1] + (1,) + table.shape[1:] + (1,) * (f.ndim - 3))
    return sum(table[:, :, :, u] * f[:, :, None, u] for u in range(f.shape[2]))


def _unrolled_contract_jvp(primals, tangents):
    (table, f), (dtable, df) = primals, tangents
    out = _unrolled_contract(table, f)
    slope = jnp.zeros_like(out)
    if not isinstance(df, SymbolicZero):
        slope = slope + jnp.einsum("ciu,cmu...->cmi...", table, df)
    if not isinstance(dtable, SymbolicZero):
        slope = slope + jnp.einsum("ciu,cmu...->cmi...", dtable, f)
    return out, slope


_unrolled_contract.defjvp(_unrolled_contract_jvp, symbolic_zeros=True)


def _split(st: Structure):
    """Distinct slow parts (S, d−1) and last components (U,) of the R vectors, and the index of
    each R in them."""
    r = np.asarray(st.r_red)
    slow, s_idx = np.unique(r[:, :-1], axis=0, return_inverse=True)
    last, u_idx = np.unique(r[:, -1], return_inverse=True)
    return slow, last, np.ravel(s_idx), np.ravel(u_idx)


def _dense(hr, st: Structure):
    """H(R) (nR, n, n) laid out as (S, U, n, n) by slow part and last component of R (zeros
    where no R), built once per call, outside the loop over chunks. Beyond ``SMALL_N`` bands only
    the upper triangle i ≤ j is kept, (S, U, n(n+1)/2): 𝓗(k) and ∂𝓗/∂k are Hermitian, so the sums
    need half the entries (``_mirror`` restores the rest)."""
    slow, last, s_idx, u_idx = _split(st)
    dense = jnp.zeros((len(slow), len(last)) + hr.shape[1:], hr.dtype).at[s_idx, u_idx].set(hr)
    n = hr.shape[-1]
    return dense if n <= SMALL_N else dense[..., np.triu_indices(n)[0], np.triu_indices(n)[1]]


def _mirror(up, n: int):
    """Hermitian matrices (..., n, n) from their upper triangles (..., n(n+1)/2) (row-major i ≤ j)."""
    i, j = np.triu_indices(n)
    index = np.zeros((n, n), int)
    index[i, j] = index[j, i] = np.arange(len(i))
    full = up[..., index.ravel()].reshape(up.shape[:-1] + (n, n))
    return jnp.where(np.tril(np.ones((n, n), bool), -1), jnp.conj(full), full)


def _along_line(v, grid: LatticeGrid):
    """e^{2πi f_last v} (n_last, *v.shape) at the points f_last = (i + shift)/n_last along a grid line, for static v:
    a constant table times the phase of the shift, so the run time evaluates exponentials over v only (evaluated
    per point, XLA:CPU fused them into every product that uses them: σ_xy of the Haldane model on one chunk of
    120², 4.3 → 0.2 ms)."""
    n, v = grid.shape[-1], np.asarray(v, float)
    return np.exp(2j * np.pi * np.multiply.outer(np.arange(n) / n, v)) * jnp.exp(2j * jnp.pi * grid.shift[-1] / n * v)


def _phases(st: Structure, grid: LatticeGrid, lines):
    """Reduced coordinates of the lines' slow parts f_slow (m, d−1); stage 1's factors e^{2πi f_slow·R_slow}
    (1, R_1, …, R_{d−1}) (d, m, S) and stage 2's tables e^{2πi f_last u} (d + 1, n_last, U) at the points
    f_last along a line, the last one times u (for ∂/∂k along the last axis)."""
    slow, last = _split(st)[:2]
    d = slow.shape[1] + 1
    digits, rest = [], lines  # slow grid indices of each line (last axis fastest in the flat index)
    for size in reversed(grid.shape[:-1]):
        digits.append(rest % size)
        rest = rest // size
    f_slow = (jnp.stack(digits[::-1], -1) + grid.shift[:-1]) / jnp.asarray(grid.shape[:-1])  # (m, d−1)
    phase = jnp.exp(2j * jnp.pi * (f_slow @ slow.T.astype(float)))  # (m, S)
    left = jnp.stack([phase] + [phase * slow[:, j] for j in range(d - 1)])  # (d, m, S)
    table = _along_line(last, grid)  # (n_last, U)
    tables = jnp.stack([table] * d + [table * last.astype(float)])  # (d + 1, n_last, U)
    return f_slow, left, tables


def _orbital_offsets(st: Structure):
    """τ_b − τ_a (n, n, d) in reduced coordinates, or None when all orbitals sit at the origin."""
    if st.tau_red is None:
        return None
    tau = np.asarray(st.tau_red)
    return tau[None, :, :] - tau[:, None, :]


def _line_sources(dense, st: Structure, lattice, grid: LatticeGrid, lines):
    """Two bands: the per-line sums x (3 + 2d, m, U), table (n_last, U) and gauge of ``_d_vectors`` on the grid
    lines ``lines`` (m,), from ``dense = _dense(hr, st)`` (2 × 2 entries).

    Every output of ``_d_vectors`` is the real or imaginary part of one contraction Σ_u e^{2πi f_last u} x[q, m, u]
    with the same table: x, per line, sums over the slow parts of R the entries (H₀₀ ± H₁₁)/2 and H₁₀ (d₀, d_z;
    d_x + i d_y = 𝓗₁₀) and, for the slopes, Σ_j i a_jα (R_j + Δτ_j) times them — ∂/∂k folded into the per-line
    sums. From ``_line_matrices``' 2 × 2 matrices, every point recomputed each product for every entry it fed, and
    reverse mode built each cotangent as pads of whole (…, 2, 2) arrays (σ_xy of the Haldane model, 300²:
    6.4 → 1.1 ms, its gradient 18 → 5.1 ms, with ``_d_vectors`` and the closed form by components).
    """
    f_slow, left, tables = _phases(st, grid, lines)
    d = left.shape[0]
    last = np.asarray(_split(st)[1], float)
    f = jnp.einsum("cms,suab->abcmu", left, dense)  # (2, 2, d, m, U): Σ_{R_slow} e^{…} (1, R_1, …, R_{d−1}) H(R)
    (f00, _), (f10, f11) = f
    dtau = _orbital_offsets(st)
    offset = np.zeros(d) if dtau is None else dtau[1, 0]  # 𝓗₁₀ carries e^{ik·(τ₀ − τ₁)}
    if dtau is not None:  # its slow part, separable like the phases
        f10 = f10 * jnp.exp(2j * jnp.pi * (f_slow @ offset[:-1]))[None, :, None]
    a = 1j * jnp.asarray(lattice)  # ∂/∂k_α = i Σ_j a_jα (R_j + Δτ_j)

    def slopes(g, shift):  # Σ_j a_jα (R_j + shift_j) per line, g = (Σ e^{…} (1, R_1, …, R_{d−1}) H)
        moments = [g[1 + j] for j in range(d - 1)] + [last * g[0]]
        return [sum(a[j, alpha] * (moments[j] + shift[j] * g[0]) for j in range(d)) for alpha in range(d)]

    z, o = 0.5 * (f00 - f11), f10
    x = jnp.stack([0.5 * (f00[0] + f11[0]), z[0]] + slopes(z, np.zeros(d)) + [o[0]] + slopes(o, offset))
    gauge = None
    if dtau is not None:  # 𝓗₁₀'s last part: on its rows (the last 1 + d), e^{2πi f_last Δτ_last}
        gauge = jnp.where(np.arange(3 + 2 * d)[:, None, None] > 1 + d, _along_line(offset[-1], grid), 1.0)
    return x, tables[0], gauge


def _d_vectors(x, table, gauge):
    """d₀ (m, n_last) eV, d eV of 𝓗 = d₀ + d·σ and its slopes ∂d/∂k_α eV·Å, one per α, each 3-vector a tuple of
    its components (m, n_last) (the points last), from ``_line_sources``' per-line sums x (3 + 2d, m, U), table
    e^{2πi f_last u} (n_last, U) and gauge of the rows of 𝓗₁₀ (3 + 2d, 1, n_last) or None."""
    d = (x.shape[0] - 3) // 2
    g = _contract(table[None], x.reshape((1, -1) + x.shape[2:])).reshape(x.shape[:2] + table.shape[:1])
    # g (3 + 2d, m, n_last): 𝓗_s, 𝓗_z, ∂_α 𝓗_z, 𝓗₁₀, ∂_α 𝓗₁₀
    if gauge is not None:
        g = g * gauge
    # rows by a split, not by indexing: reverse mode then concatenates their cotangents instead of padding each
    s_, *rows = (row[0] for row in jnp.split(g, 3 + 2 * d))
    return (jnp.real(s_), *((jnp.real(o), jnp.imag(o), jnp.real(z)) for z, o in zip(rows[:1 + d], rows[1 + d:])))


def _line_matrices(dense, st: Structure, lattice, grid: LatticeGrid, lines):
    """𝓗 (m, n_last, n, n) and ∂𝓗/∂k (m, n_last, d, n, n) on the grid lines ``lines`` (m,),
    from ``dense = _dense(hr, st)``."""
    triangle = dense.ndim == 3  # (S, U, n(n+1)/2): upper triangles (``_dense``)
    n = int(np.sqrt(2 * dense.shape[-1])) if triangle else dense.shape[-1]  # n² ≤ n(n + 1) < (n + 1)²
    f_slow, left, tables = _phases(st, grid, lines)
    d = left.shape[0]
    f = jnp.tensordot(left, dense, axes=1)  # (d, m, U, n, n) or (d, m, U, n(n+1)/2)
    dtau = _orbital_offsets(st)
    if dtau is not None:  # diagonal gauge e^{ik·(τ_b − τ_a)}, separable like the phases
        dtau = dtau[np.triu_indices(n)] if triangle else dtau  # (..., d) per entry
        gauge = jnp.exp(2j * jnp.pi * (f_slow @ dtau[..., :-1].reshape(-1, d - 1).T))
        f = f * gauge.reshape((-1, 1) + dtau.shape[:-1])
    # stage 2, per point: Σ_u e^{2πi f_last u} (…), and Σ_u u e^{…} H for the last axis
    f = jnp.concatenate([f, f[:1]])
    g = _contract(tables, f)  # (d + 1, m, n_last, …)
    h, red = g[0], g[1:]  # 𝓗_lat, Σ_R R_j e^{…} H(R) (reduced j, before the gauge)
    if dtau is not None:
        last_gauge = _along_line(dtau[..., -1], grid)  # (n_last, …)
        h = h * last_gauge
        red = red * last_gauge + jnp.moveaxis(jnp.asarray(dtau), -1, 0)[:, None, None] * h
    a = 1j * jnp.asarray(lattice)  # ∂/∂k_α = i Σ_j a_jα (R_j + Δτ_j), unrolled over j (fuses)
    dk = jnp.stack([sum(a[j, alpha] * red[j] for j in range(d)) for alpha in range(d)], 2)
    return (_mirror(h, n), _mirror(dk, n)) if triangle else (h, dk)


def bloch_reduce(f: Callable, model, st: Structure, grid: LatticeGrid, how: str, chunk: int, mesh,
                 remat: bool = False, two_band: Optional[Callable] = None) -> Any:
    """Reduce ``f(h (n, n), dk (d, n, n)) -> PyTree`` over every point of ``grid``; for a two-band model,
    ``two_band(d₀, d, ∂_1 d, …, ∂_d d)`` of 𝓗 = d₀ + d·σ instead when given, each 3-vector a tuple of components
    (``_d_vectors``; reverse mode keeps these 1 + 3(d + 1) numbers per point and recomputes ``two_band``).

    ``how``: "sum" (Σ_i w_i f_i), "min", "max" or "stack" (values (N, ...) in grid order), as
    ``kspace.reduce``. Grid lines along the last axis are read ``chunk // n_last`` (≥ 1) at a
    time and split over the devices of ``mesh``; memory is bounded by the chunk. With ``remat`` (and more than one
    chunk) reverse mode recomputes each chunk (``reduce_blocks``), so a gradient's memory is bounded by the chunk
    too.
    """
    TRACES["count"] += 1
    dense = _dense(lattice_form(model)[1], st)
    n_last = grid.shape[-1]
    n_lines = grid.size // n_last

    def at_points(fn, *values):  # fn over the last axis of each value: the points, in vectorised loops
        return jax.vmap(fn, in_axes=-1)(*jax.tree_util.tree_map(lambda v: v.reshape(v.shape[:-2] + (-1,)), values))

    def block(lines):
        m = lines.shape[0]
        if two_band is not None and dense.shape[-1] == 2 and dense.ndim == 4:
            vectors = _d_vectors(*_line_sources(dense, st, model.lattice, grid, lines))
            vals = jax.checkpoint(at_points, static_argnums=0)(two_band, *vectors)
        else:
            h, dk = _line_matrices(dense, st, model.lattice, grid, lines)
            if h.shape[-1] > 2:  # materialise: fused into the eigenbasis rotations it would be recomputed
                h, dk = jax.lax.optimization_barrier((h, dk))
            vals = jax.vmap(f)(h.reshape((-1,) + h.shape[2:]), dk.reshape((-1,) + dk.shape[2:]))
        vals = jax.tree_util.tree_map(lambda v: v.reshape((m, n_last) + v.shape[1:]), vals)
        if how == "sum":
            vals = jax.tree_util.tree_map(lambda v: grid.weight.astype(v.dtype) * jnp.sum(v, 1), vals)
        elif how in ("min", "max"):
            vals = jax.tree_util.tree_map(lambda v: getattr(jnp, how)(v, 1), vals)
        return vals, (lines < n_lines).astype(float)

    # an even number of lines per chunk: with an odd one XLA:CPU's loops over the (lines, n_last) arrays ran at half
    # speed (Haldane σ_xy on 600², 27 lines: 7.3 ms, 28: 3.2 ms; on 300², 75 lines: 2.0 ms, 54 or 150: 1.0 ms)
    out = reduce_blocks(block, n_lines, how, chunk=max(1, chunk // n_last), mesh=mesh, remat=remat, multiple=2)
    if how == "stack":
        out = jax.tree_util.tree_map(lambda v: v.reshape((grid.size,) + v.shape[2:]), out)
    return out
