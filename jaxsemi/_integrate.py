"""Chunked, device-sharded sums Σ_i w_i f(k_i) over k-grids with bounded memory.

The flat point index is split evenly over the devices (padded with zero-weight indices to
a multiple of devices × chunk); each device scans over its chunks, reading ``chunk_size``
points at a time from the grid, and the partial sums are combined with a ``psum``. Peak
memory is set by ``chunk_size`` alone, not by the grid size.
"""

from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp

from . import _checks, _sharding
from .kgrid import AbstractGrid, KGrid

#: Default number of k-points evaluated at once (memory ∝ chunk_size, not grid size).
DEFAULT_CHUNK = 4096


def default_chunk(n_bands: int) -> int:
    """Points per chunk for an n-band model: ~16 MB per (chunk, n, n) complex array,
    between 256 and 16384 points (larger chunks amortise the loop on small models)."""
    return int(min(16384, max(256, 2**20 // n_bands**2)))


def _weighted(f, points, weights):
    vals = jax.vmap(f)(points)
    return jax.tree_util.tree_map(lambda v: jnp.tensordot(weights.astype(v.dtype), v, axes=1), vals)


def grid_sum(f: Callable, grid: AbstractGrid, chunk_size: Optional[int] = None):
    """Σ_i w_i f(k_i) for a per-point function ``f(k) -> PyTree`` over any grid."""
    n_dev = len(_sharding.devices())
    per_dev = -(-grid.size // n_dev)
    chunk = max(1, min(per_dev, chunk_size or DEFAULT_CHUNK))
    n_chunks = -(-per_dev // chunk)

    def device_sum(first):
        """Sum over this device's chunks; ``first`` is its first flat index (shape (1,))."""
        def block(c):
            idx = first[0] + c * chunk + jnp.arange(chunk)
            return _weighted(f, *grid.take(idx))

        if n_chunks == 1:
            return block(0)
        init = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(block, 0))
        total, _ = jax.lax.scan(lambda acc, c: (jax.tree_util.tree_map(jnp.add, acc, block(c)), None),
                                init, jnp.arange(n_chunks))
        return total

    firsts = jnp.arange(n_dev) * (n_chunks * chunk)
    if n_dev == 1:
        return device_sum(firsts)
    P = jax.sharding.PartitionSpec
    sharded = jax.shard_map(
        lambda fs: jax.tree_util.tree_map(lambda v: jax.lax.psum(v, "k"), device_sum(fs)),
        mesh=_sharding.mesh(), in_specs=P("k"), out_specs=P(), check_vma=False,
    )
    return sharded(firsts)


def chunked_sum(f: Callable, points: jax.Array, weights: jax.Array, chunk_size: Optional[int] = None):
    """Σ_i w_i f(k_i) over explicit ``points`` (N, d) and ``weights`` (N,) (see ``grid_sum``)."""
    return grid_sum(f, KGrid(points, weights), chunk_size)


def integrate(f: Callable, grid: AbstractGrid, chunk_size: Optional[int] = None):
    """∫ dᵈk/(2π)ᵈ f(k) ≈ Σ_i w_i f(k_i) over ``grid``; ``f(k)`` takes one point (d,).

    Runs in chunks of ``chunk_size`` points (default 4096) sharded over all devices, so memory
    stays bounded for any grid size. Call it inside ``jax.jit`` for speed.
    """
    if not callable(f):
        raise TypeError(f"f must be a function f(k) of one point k (d,), got {type(f).__name__}")
    return grid_sum(f, _checks.check_grid(grid), chunk_size)
