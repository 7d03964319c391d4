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
