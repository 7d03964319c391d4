"""Which devices k-grid sums and wavepacket ensembles run on: a one-axis ``jax.sharding.Mesh``.

The mesh is resolved at call time, outside ``jit``, and passed to the compiled functions as a
static argument, so another device set compiles another program. By default every device JAX
sees is used (``jax.devices()``: all local devices, and in a multi-host run started with
``jaxsemi.distributed.initialize`` every device of every process).

Several CPU devices in one process (``--xla_force_host_platform_device_count``, a way to test
sharding) share that process's cores and thread pool: σ_xy of the Haldane model on 1000² runs 1.07×
faster on 2 such devices than on one, which already uses both cores. With jax/jaxlib 0.10.2 a batched
LAPACK call split over them can deadlock: the ``eigh`` of a 16-band model's 2304 k-points (``vmap``,
sharded over 2 host devices) never returned on the project's 2-core CPU (2026-12-06), where one device
took 60 ms. Such a mesh therefore warns once (``SharedCoresWarning``).
"""

from __future__ import annotations

import warnings
from typing import Optional

import jax
import numpy as np

#: Name of the mesh axis the k-points (or trajectories) are split over.
AXIS = "k"

_MESH: Optional[jax.sharding.Mesh] = None
_WARNED = False


class SharedCoresWarning(RuntimeWarning):
    """A mesh holds several CPU devices of one process (see the module notes): no speed-up, and
    batched LAPACK calls (the ``eigh`` of models with more than two bands) may deadlock."""


def as_mesh(devices) -> jax.sharding.Mesh:
    """A one-axis mesh named ``"k"`` from a ``Mesh`` (returned as is) or a sequence of devices."""
    if isinstance(devices, jax.sharding.Mesh):
        if devices.axis_names != (AXIS,):
            raise ValueError(f"the mesh must have one axis named {AXIS!r}, got axes {devices.axis_names}: "
                             f"use jax.sharding.Mesh(devices, ({AXIS!r},)) or pass the devices")
        return devices
    if isinstance(devices, (str, bytes)) or not hasattr(devices, "__iter__"):
        raise TypeError(f"devices must be a sequence of jax devices or a jax.sharding.Mesh, got {devices!r}")
    devices = tuple(devices)
    if not devices:
        raise ValueError("no devices given: pass at least one (e.g. jax.devices()[:1]), or None for all")
    bad = [d for d in devices if not isinstance(d, jax.Device)]
    if bad:
        raise TypeError(f"devices must be jax devices (from jax.devices()), got {bad[0]!r}")
    if len(set(devices)) != len(devices):
        raise ValueError(f"devices are repeated: {list(devices)}")
    return jax.sharding.Mesh(np.array(devices, dtype=object), (AXIS,))


def set_devices(devices=None) -> None:
    """Run k-grid sums and wavepacket ensembles on ``devices`` by default.

    ``devices``: a sequence of jax devices, a one-axis ``jax.sharding.Mesh`` named ``"k"``, or
    ``None`` (all of ``jax.devices()``). Takes effect at the next call, also for functions
    already compiled; an explicit ``mesh=`` argument overrides it. Inside your own ``jax.jit``
    the device set is read when the function is traced: pass ``mesh=`` through it as a static
    argument to switch devices there.
    """
    global _MESH
    _MESH = None if devices is None else as_mesh(devices)


def get_mesh(mesh=None) -> jax.sharding.Mesh:
    """``mesh`` (a mesh or devices) if given, else the ``set_devices`` default, else all devices."""
    mesh = as_mesh(mesh) if mesh is not None else _MESH if _MESH is not None else as_mesh(jax.devices())
    _warn_shared_cores(mesh)
    return mesh


def _warn_shared_cores(mesh: jax.sharding.Mesh) -> None:
    """Warn once per process where ``mesh`` splits work over several CPU devices of this process."""
    global _WARNED
    if _WARNED:
        return
    local = [d for d in mesh.devices.flat if d.process_index == jax.process_index() and d.platform == "cpu"]
    if len(local) < 2:
        return
    _WARNED = True
    warnings.warn(f"k-sums and ensembles are split over {len(local)} CPU devices of one process. They share its "
                  f"cores (no speed-up over one device, which uses them all), and with jaxlib 0.10.2 a batched "
                  f"LAPACK eigh (models with more than two bands) split over them can deadlock. Use one: "
                  f"js.set_devices(jax.devices()[:1]) or mesh=jax.devices()[:1].", SharedCoresWarning, stacklevel=3)


def shard_batch(tree, size: int, mesh: jax.sharding.Mesh):
    """Split the leading (batch) axis of every array in ``tree`` over the devices of ``mesh``.

    Inside ``jit``: pads the axis of length ``size`` with copies of its first element to a
    multiple of the device count and constrains it to be sharded, so XLA runs each device's
    share of a vmapped computation there. Returns ``(tree, padded_size)``; slice results back
    to ``size``.
    """
    n = mesh.size
    padded = -(-size // n) * n
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(AXIS))

    def place(a):
        if padded > size:
            a = jax.numpy.concatenate([a, jax.numpy.broadcast_to(a[:1], (padded - size,) + a.shape[1:])])
        return jax.lax.with_sharding_constraint(a, sharding)

    return jax.tree_util.tree_map(place, tree), padded
