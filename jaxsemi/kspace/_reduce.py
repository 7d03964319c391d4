"""One chunked, device-sharded map-reduce over k-grids (and index ranges), with bounded memory.

The flat index 0..size−1 is split evenly over the devices of a one-axis mesh (padded to a
multiple of devices × chunk; padding indices ≥ size weigh 0 and are left out of min/max/stack);
each device scans over its chunks, evaluating ``chunk`` indices at a time, and the partial
results are combined over the devices (psum / pmin / pmax, or gathered in index order for
"stack"). Peak memory is set by the chunk size alone, not by the grid size.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from .. import _checks, _sharding
from .grids import AbstractGrid

_HOWS = ("sum", "min", "max", "stack")


def default_chunk(n_bands: int) -> int:
    """Points per chunk for an n-band model: ~16 MB per (chunk, n, n) complex array,
    between 256 and 16384 points (larger chunks amortise the loop on small models)."""
    return int(min(16384, max(256, 2**20 // n_bands**2)))


def _fill(how: str, dtype):
    """Identity of a min/max reduction for ``dtype``."""
    if jnp.issubdtype(dtype, jnp.floating):
        return jnp.inf if how == "min" else -jnp.inf
    if dtype == jnp.bool_:
        return how == "min"
    info = jnp.iinfo(dtype)
    return info.max if how == "min" else info.min


def _in_chunk(how: str, v, w, valid):
    """Reduce one chunk's per-index values v (m, ...) with weights w (m,) over its valid indices."""
    if how == "sum":  # in v's precision; integer and boolean values are summed as weights
        dtype = v.dtype if jnp.issubdtype(v.dtype, jnp.inexact) else w.dtype
        return jnp.tensordot(w.astype(dtype), v.astype(dtype), axes=1)
    if how == "stack":
        return v
    v = jnp.where(valid.reshape(valid.shape + (1,) * (v.ndim - 1)), v, _fill(how, v.dtype))
    return jnp.min(v, 0) if how == "min" else jnp.max(v, 0)


_COMBINE = {"sum": jnp.add, "min": jnp.minimum, "max": jnp.maximum}
_ACROSS = {"sum": jax.lax.psum, "min": jax.lax.pmin, "max": jax.lax.pmax}


def _hows(how, values) -> list:
    """``how`` (a string or a PyTree prefix of them) per leaf of ``values``."""
    return jax.tree_util.tree_leaves(jax.tree_util.tree_map(
        lambda h, v: jax.tree_util.tree_map(lambda _: h, v), how, values, is_leaf=lambda h: isinstance(h, str)))


def reduce_blocks(block: Callable, size: int, how: Any = "sum", *, chunk: int, mesh: jax.sharding.Mesh,
                  remat: Union[bool, Callable] = False, multiple: int = 1):
    """Reduce per-index values over the indices 0..size−1.

    ``block(idx)`` takes m contiguous flat indices (m,) (those ≥ size are padding) and returns
    ``(values, weights)``: a PyTree of arrays with leading axis m and weights (m,) (used by
    "sum" only). ``how`` is "sum" (Σ_i w_i v_i), "min", "max" or "stack" (the values (size, ...)
    in index order), or a PyTree prefix of the values with one of these per subtree.
    ``chunk`` indices are evaluated at a time, split over the devices of ``mesh``.

    ``remat`` (True, or a ``jax.checkpoint`` policy naming what to keep): with more than one chunk, reverse mode
    recomputes each chunk's ``block`` in its backward loop instead of storing, for every chunk, what the backward
    pass reads. The gradient's memory is then bounded by the chunk, not the grid, and where ``block`` is cheap and
    leaves many per-point values it is faster (a tilted cone's non-adiabatic current, 51 200 k in 4 chunks: ~60
    arrays over the grid stored inside the loop and copied out of it, 19.4 → 3.8 ms); where ``block`` is dear to
    recompute it is slower (Haldane σ_xy's per-line Bloch sums on 300²: 18.9 → 42.7 ms), so callers choose.
    ``multiple``: every chunk holds a multiple of it indices, at most ``chunk`` (at least ``multiple``).
    """
    # inside an outer map over "k" (a k-sum whose per-point function calls ``js.eigh``, a curvature, …): that map's
    # device evaluates every index here itself, without a nested shard_map or a combination over the devices
    nested = _sharding.AXIS in jax.sharding.get_abstract_mesh().manual_axes
    n_dev = 1 if nested else mesh.size
    per_dev = -(-size // n_dev)
    cap = max(multiple, min(-(-per_dev // multiple), int(chunk) // multiple) * multiple)
    n_chunks = -(-per_dev // cap)
    chunk = -(-per_dev // n_chunks)  # as even as the chunks can be: little padding (≤ n_chunks · multiple − 1)
    chunk = -(-chunk // multiple) * multiple
    structure = {}  # how per leaf and the tree structure, found when ``block`` is traced (once)

    def leaves(vals):
        hows = _hows(how, vals)
        if any(h not in _HOWS for h in hows):
            raise ValueError(f"how must be one of {_HOWS} (or a PyTree of them), got {how!r}")
        structure.update(hows=hows, treedef=jax.tree_util.tree_structure(vals))
        return hows, jax.tree_util.tree_leaves(vals)

    def chunk_out(first, c):
        idx = first + c * chunk + jnp.arange(chunk)
        vals, w = block(idx)
        hows, vs = leaves(vals)
        return [_in_chunk(h, v, w, idx < size) for h, v in zip(hows, vs)]

    def device(first):
        """This device's (reduced, stacked) leaves; ``first`` (1,) is its first flat index."""
        if n_chunks == 1:
            out = chunk_out(first[0], 0)
        else:
            def step(acc, c):
                out = (jax.checkpoint(chunk_out, policy=None if remat is True else remat) if remat else chunk_out)(
                    first[0], c)
                hows = structure["hows"]
                acc = [a if h == "stack" else _COMBINE[h](a, o) for h, a, o in zip(hows, acc, out)]
                return acc, [o for h, o in zip(hows, out) if h == "stack"]

            shapes = jax.eval_shape(chunk_out, first[0], 0)  # also fills ``structure``
            init = [jnp.zeros(s.shape, s.dtype) if h in ("sum", "stack") else jnp.full(s.shape, _fill(h, s.dtype))
                    for h, s in zip(structure["hows"], shapes)]
            acc, ys = jax.lax.scan(step, init, jnp.arange(n_chunks))
            ys = iter(ys)
            out = [next(ys).reshape((-1,) + a.shape[1:]) if h == "stack" else a
                   for h, a in zip(structure["hows"], acc)]
        hows = structure["hows"]
        return ([o if nested else _ACROSS[h](o, _sharding.AXIS) for h, o in zip(hows, out) if h != "stack"],
                [o for h, o in zip(hows, out) if h == "stack"])

    if nested:
        reduced, stacked = device(jnp.zeros(1, int))
    else:  # shard_map also on one device: the program then runs on that device, not the default one
        P = jax.sharding.PartitionSpec
        reduced, stacked = jax.shard_map(device, mesh=mesh, in_specs=P(_sharding.AXIS),
                                         out_specs=(P(), P(_sharding.AXIS)), check_vma=False,
                                         )(jnp.arange(n_dev) * (n_chunks * chunk))
    reduced, stacked = iter(reduced), iter(stacked)
    out = [next(stacked)[:size] if h == "stack" else next(reduced) for h in structure["hows"]]
    return jax.tree_util.tree_unflatten(structure["treedef"], out)


def reduce(f: Callable, grid: AbstractGrid, how: Any = "sum", *, chunk_size: Optional[int] = None,
           mesh=None, n_bands: int = 2):
    """Map ``f(k) -> PyTree`` over the points of ``grid`` and reduce.

    ``how``: "sum" gives Σ_i w_i f(k_i) ≈ ∫ dᵈk/(2π)ᵈ f; "min" / "max" the extrema over the
    points; "stack" the values (N, ...) in grid order; or a PyTree prefix of f's output with
    one of these per subtree. Runs ``chunk_size`` points at a time (default
    ``default_chunk(n_bands)``) split over the devices of ``mesh`` (a one-axis
    ``jax.sharding.Mesh`` named "k" or a sequence of devices; default ``js.set_devices``'s,
    else all devices). Inside ``jax.jit`` pass ``mesh`` as a static argument. ``f`` may call jaxsemi's own
    sharded functions (``js.eigh``, ``js.berry_curvature``, …): they run on the device of the point's chunk.
    """
    if not callable(f):
        raise TypeError(f"f must be a function f(k) of one point k (d,), got {type(f).__name__}")
    return grid_reduce(f, _checks.check_grid(grid), how, chunk_size or default_chunk(n_bands),
                       _sharding.get_mesh(mesh))


def grid_reduce(f: Callable, grid: AbstractGrid, how: Any, chunk: int, mesh: jax.sharding.Mesh,
                remat: Union[bool, Callable] = False):
    """``reduce`` without input checks, for checked grids and a resolved mesh (inside jit); ``remat`` as
    ``reduce_blocks``'s."""
    def block(idx):
        points, weights = grid.take(idx)
        return jax.vmap(f)(points), weights

    return reduce_blocks(block, grid.size, how, chunk=chunk, mesh=mesh, remat=remat)


def integrate(f: Callable, grid: AbstractGrid, chunk_size: Optional[int] = None, *, mesh=None):
    """∫ dᵈk/(2π)ᵈ f(k) ≈ Σ_i w_i f(k_i) over ``grid``; ``f(k)`` takes one point (d,).

    Runs in chunks of ``chunk_size`` points (default 4096) split over the devices of ``mesh``
    (a one-axis ``jax.sharding.Mesh`` named ``"k"`` or a sequence of devices; default: those of
    ``js.set_devices``, else all of ``jax.devices()``), so memory stays bounded for any grid
    size. Call it inside ``jax.jit`` for speed; there the device set is read when the function
    is traced, so pass ``mesh`` through your function as a static argument to switch devices.
    """
    return reduce(f, grid, "sum", chunk_size=chunk_size, mesh=mesh, n_bands=16)


#: Largest parameter (in elements) whose tangent ``grid_reduce_params`` broadcasts to every point.
PER_POINT_TANGENT_SIZE = 64


def _constant_extrema(how, values):
    """``values`` with the leaves that ``how`` reduces by "min" / "max" behind ``stop_gradient``."""
    flat, tree = jax.tree_util.tree_flatten(values)
    return jax.tree_util.tree_unflatten(tree, [v if h in ("sum", "stack") else jax.lax.stop_gradient(v)
                                               for h, v in zip(_hows(how, values), flat)])


def grid_reduce_params(f: Callable, params, grid: AbstractGrid, how: Any, chunk: int, mesh: jax.sharding.Mesh,
                       remat: Union[bool, Callable] = False):
    """``grid_reduce`` of ``f(params, k)`` (``params`` any PyTree), differentiated point by point.

    Differentiated as ``grid_reduce(lambda k: f(params, k), …)``, every use of a parameter inside ``f`` gets the
    parameter's tangent broadcast over the points, and reverse mode sums each use's cotangent over the grid
    separately (a tilted cone's current: ~20 reductions of 12 800 points, 3 kernels each). Here the tangents of
    ``params``' small leaves (≤ ``PER_POINT_TANGENT_SIZE`` elements) are broadcast to every point before ``f``
    runs: each point accumulates its own cotangent, and reverse mode sums over the points once per leaf
    (gradients of a tilted cone's current and σ 0.82–0.95× the time). Larger leaves (hopping arrays) keep one
    tangent for all points, and so do values ``f`` closes over (``jax.closure_convert``): there a caller puts what it
    computes from ``params`` once for all points, whose per-point tangents would repeat that work at every point (a
    lattice model's table of shifted d-vectors from its hoppings, τ and E: Haldane 120², exact J at 8 fields,
    gradient 163 → 46 ms). Values reduced by "min" / "max" are held constant (their tangents are zero); the grid's
    points and weights are not differentiated (a ValueError if asked to). The grid is an input, not a closure,
    because a custom_jvp rule cannot close over the arrays of an enclosing jit. ``remat``: as ``reduce_blocks``'s,
    for the chunks of the point-by-point derivative.
    """
    diff, static = eqx.partition((params, grid), eqx.is_inexact_array)

    def at(d, k):
        return _constant_extrema(how, f(eqx.combine(d, static)[0], k))

    at, consts = jax.closure_convert(at, diff, grid.take(jnp.zeros(1, int))[0][0])

    @jax.custom_jvp
    def run(d, cs):
        return grid_reduce(lambda k: at(d, k, *cs), eqx.combine(d, static)[1], how, chunk, mesh)

    def jvp(primals, tangents):
        flat, tree = jax.tree_util.tree_flatten(primals)
        flat_t = jax.tree_util.tree_leaves(tangents, is_leaf=lambda t: isinstance(t, SymbolicZero))
        live = [i for i, t in enumerate(flat_t) if not isinstance(t, SymbolicZero)]
        first, stop = (len(jax.tree_util.tree_leaves(part)) for part in (primals[0][0], primals[0]))
        if any(first <= i < stop for i in live):
            raise ValueError("k-sums are not differentiated in the grid's points or weights: build the grid from "
                             "values that are not differentiated")
        each = [i < first and flat_t[i].size <= PER_POINT_TANGENT_SIZE for i in live]  # broadcast to every point

        def point(k, tk):
            def fk(values):
                leaves = list(flat)
                for i, v in zip(live, values):
                    leaves[i] = v
                d, cs = jax.tree_util.tree_unflatten(tree, leaves)
                return at(d, k, *cs)
            return jax.jvp(fk, ([flat[i] for i in live],), (tk,))

        grid = eqx.combine(primals[0], static)[1]

        def block(idx):
            points, weights = grid.take(idx)
            tk = [jnp.broadcast_to(flat_t[i], idx.shape + flat_t[i].shape) if e else flat_t[i]
                  for i, e in zip(live, each)]
            return jax.vmap(point, in_axes=(0, [0 if e else None for e in each]))(points, tk), weights

        out, dout = reduce_blocks(block, grid.size, (how, how), chunk=chunk, mesh=mesh, remat=remat)
        dflat, dtree = jax.tree_util.tree_flatten(dout)
        dflat = [t if h in ("sum", "stack") else jnp.zeros_like(t) for h, t in zip(_hows(how, out), dflat)]
        return out, jax.tree_util.tree_unflatten(dtree, dflat)

    run.defjvp(jvp, symbolic_zeros=True)
    return _constant_extrema(how, run(diff, consts))  # outside too: no tangents, not even zero ones
