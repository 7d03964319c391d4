"""Which devices k-grid sums run on; JAX's own sharding carries one or many hosts.

By default every device JAX sees is used (``jax.devices()``: all local devices, and in a
multi-host run started with ``jaxsemi.distributed.initialize`` every device of every process).
"""

from __future__ import annotations

from typing import Optional, Sequence

import jax
import numpy as np

_DEVICES: Optional[tuple] = None


def set_devices(devices: Optional[Sequence] = None) -> None:
    """Restrict k-grid sums to ``devices`` (``None``: all of ``jax.devices()``)."""
    global _DEVICES
    _DEVICES = None if devices is None else tuple(devices)


def devices() -> tuple:
    """The devices k-grid sums are sharded over."""
    return _DEVICES if _DEVICES is not None else tuple(jax.devices())


def mesh() -> jax.sharding.Mesh:
    """A one-axis mesh named ``"k"`` over :func:`devices`."""
    return jax.sharding.Mesh(np.array(devices()), ("k",))


def shard_batch(tree, size: int):
    """Split the leading (batch) axis of every array in ``tree`` over :func:`devices`.

    Inside ``jit``: pads the axis of length ``size`` with copies of its first element to a
    multiple of the device count and constrains it to be sharded, so XLA runs each device's
    share of a vmapped computation there. Returns ``(tree, padded_size)``; slice results back
    to ``size``. With one device the tree is returned unchanged.
    """
    n = len(devices())
    if n == 1:
        return tree, size
    padded = -(-size // n) * n
    sharding = jax.sharding.NamedSharding(mesh(), jax.sharding.PartitionSpec("k"))

    def place(a):
        if padded > size:
            a = jax.numpy.concatenate([a, jax.numpy.broadcast_to(a[:1], (padded - size,) + a.shape[1:])])
        return jax.lax.with_sharding_constraint(a, sharding)

    return jax.tree_util.tree_map(place, tree), padded
