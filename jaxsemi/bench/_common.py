"""Shared benchmark helpers: timing and the environment record."""

from __future__ import annotations

import datetime
import os
import platform
import time

import numpy as np


def best_time(fn, repeats: int = 3):
    """Minimum wall time (s) of ``fn()`` over ``repeats`` calls, and its last output.

    ``fn`` must block until its result is ready (``jax.block_until_ready``).
    """
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def environment() -> dict:
    """Device, versions and machine of this run."""
    import jax

    import jaxsemi
    from jaxsemi._threads import blas_threads

    dev = jax.devices()[0]
    return {
        "device": dev.device_kind,
        "platform": dev.platform,
        "n_devices": len(jax.devices()),
        "jax": jax.__version__,
        "jaxsemi": jaxsemi.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "blas_threads": blas_threads(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
