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
from .kgrid import AbstractGrid

#: Default number of k-points evaluated at once (memory ∝ chunk_size, not grid size).
DEFAULT_CHUNK = 4096


def default_chunk(n_bands: int) -> int:
    """Points per chunk for an n-band model: ~16 MB per (chunk, n, n) complex array,
    between 256 and 16384 points (larger chunks amortise the loop on small models)."""
    return int(min(16384, max(256, 2**20 // n_bands**2)))


def _weighted(f, points, weights):
    vals = jax.vmap(f)(points)
    return jax.tree_util.tree_map(lambda v: jnp.tensordot(weights.astype(v.dtype), v, axes=1), vals)


def grid_sum(f: Callable, grid: AbstractGrid, chunk_size: Optional[int], mesh: jax.sharding.Mesh):
    """Σ_i w_i f(k_i) for a per-point function ``f(k) -> PyTree`` over any grid, split over the
    devices of ``mesh`` (from ``_sharding.get_mesh``; a static argument of the calling jit)."""
    n_dev = mesh.size
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

    # shard_map also on one device: the program then runs on that device, not the default one
    P = jax.sharding.PartitionSpec
    sharded = jax.shard_map(
        lambda fs: jax.tree_util.tree_map(lambda v: jax.lax.psum(v, _sharding.AXIS), device_sum(fs)),
        mesh=mesh, in_specs=P(_sharding.AXIS), out_specs=P(), check_vma=False,
    )
    return sharded(jnp.arange(n_dev) * (n_chunks * chunk))


def integrate(f: Callable, grid: AbstractGrid, chunk_size: Optional[int] = None, *, mesh=None):
    """∫ dᵈk/(2π)ᵈ f(k) ≈ Σ_i w_i f(k_i) over ``grid``; ``f(k)`` takes one point (d,).

    Runs in chunks of ``chunk_size`` points (default 4096) split over the devices of ``mesh``
    (a one-axis ``jax.sharding.Mesh`` named ``"k"`` or a sequence of devices; default: those of
    ``js.set_devices``, else all of ``jax.devices()``), so memory stays bounded for any grid
    size. Call it inside ``jax.jit`` for speed; there the device set is read when the function
    is traced, so pass ``mesh`` through your function as a static argument to switch devices.
    """
    if not callable(f):
        raise TypeError(f"f must be a function f(k) of one point k (d,), got {type(f).__name__}")
    return grid_sum(f, _checks.check_grid(grid), chunk_size, _sharding.get_mesh(mesh))
