"""Multi-host runs through ``jax.distributed``.

Start the same script on every host (or process) with the same coordinator address::

    import jaxsemi as js
    js.distributed.initialize("10.0.0.1:1234", num_processes=4, process_id=RANK)
    sigma = js.hall_conductivity(model, mu, grid)    # k-points split over every device of every host

or from the command line: ``jaxsemi --coordinator 10.0.0.1:1234 --num-processes 4
--process-id RANK demo``. After initialisation ``jax.devices()`` lists the devices of all
processes; jaxsemi's k-grid sums shard their points over that global mesh and combine partial
sums with a collective ``psum``, so every process receives the full result. On CPUs the
collectives go through gloo (set here); on GPUs through NCCL.
"""

from __future__ import annotations

from typing import Optional

import jax


def initialize(coordinator_address: Optional[str] = None, num_processes: Optional[int] = None,
               process_id: Optional[int] = None, *, local_device_ids=None) -> None:
    """Join a multi-process run (wraps ``jax.distributed.initialize``; call before any JAX work).

    With no arguments, JAX auto-detects cluster environments (SLURM, Open MPI, ...).
    """
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address, num_processes, process_id,
                               local_device_ids=local_device_ids)


def shutdown() -> None:
    """Leave the multi-process run."""
    jax.distributed.shutdown()


def process_index() -> int:
    """This process's rank (0 on a single host)."""
    return jax.process_index()
