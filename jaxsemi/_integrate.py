"""Chunked sums Σ_i w_i f(k_i) over k-grids with bounded memory."""

from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp

from .kgrid import KGrid

#: Default number of k-points evaluated at once (memory ∝ chunk_size, not grid size).
DEFAULT_CHUNK = 4096


def chunked_sum(f: Callable, points: jax.Array, weights: jax.Array, chunk_size: Optional[int] = None):
    """Σ_i w_i f(k_i) for a per-point function ``f(k) -> PyTree``, ``chunk_size`` points at a time.

    The grid is padded with zero-weight copies of its first point to a whole number of chunks
    and reduced with a scan, so peak memory is set by ``chunk_size`` alone.
    """
    n = points.shape[0]
    chunk = min(n, chunk_size or DEFAULT_CHUNK)
    n_chunks = -(-n // chunk)
    pad = n_chunks * chunk - n
    if pad:
        points = jnp.concatenate([points, jnp.broadcast_to(points[:1], (pad,) + points.shape[1:])])
        weights = jnp.concatenate([weights, jnp.zeros((pad,), weights.dtype)])
    pts = points.reshape((n_chunks, chunk) + points.shape[1:])
    wts = weights.reshape(n_chunks, chunk)

    def block(p, w):
        vals = jax.vmap(f)(p)
        return jax.tree_util.tree_map(lambda v: jnp.tensordot(w.astype(v.dtype), v, axes=1), vals)

    if n_chunks == 1:
        return block(pts[0], wts[0])
    init = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(block, pts[0], wts[0]))

    def step(acc, pw):
        return jax.tree_util.tree_map(jnp.add, acc, block(*pw)), None

    total, _ = jax.lax.scan(step, init, (pts, wts))
    return total


def integrate(f: Callable, grid: KGrid, chunk_size: Optional[int] = None):
    """∫ dᵈk/(2π)ᵈ f(k) ≈ Σ_i w_i f(k_i) over ``grid``; ``f(k)`` takes one point (d,)."""
    return chunked_sum(f, grid.points, grid.weights, chunk_size)
