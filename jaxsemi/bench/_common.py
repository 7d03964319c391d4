"""Shared benchmark helpers: timing and the environment record."""

from __future__ import annotations

import datetime
import os
import platform
import time

import numpy as np


def best_time(fn, repeats: int = 3, min_seconds: float = 0.0):
    """Minimum wall time (s) of ``fn()`` over ``repeats`` calls — more, up to 50, until the calls
    took ``min_seconds`` in all (ms-scale calls then get enough samples to miss a load spike) —
    and its last output.

    ``fn`` must block until its result is ready (``jax.block_until_ready``).
    """
    best, out, total, calls = np.inf, None, 0.0, 0
    while calls < repeats or (total < min_seconds and calls < 50):
        t0 = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - t0
        best, total, calls = min(best, seconds), total + seconds, calls + 1
    return best, out


def alternating_times(fns, rounds: int) -> list:
    """Wall times (s) of each ``fn()`` in ``fns`` over ``rounds`` rounds that call them in turn, as
    NumPy arrays: ms-scale calls drift together with the machine's load, so the ratio of two medians
    taken this way is steadier than that of two best times measured one after the other."""
    times = [[] for _ in fns]
    for _ in range(rounds):
        for fn, out in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return [np.array(t) for t in times]


def compare_times(fns, rounds: int):
    """Best times (s) of the calls ``fns`` (compiled, blocking) and the ratios of each to the first — of
    the medians and of the minima — over at most ``rounds`` alternating rounds (fewer where one round
    takes over ~1 s / ``rounds``, at least 3)."""
    once = [alternating_times([fn], 1)[0][0] for fn in fns]
    t = alternating_times(fns, int(np.clip(1.0 / sum(once), 3, rounds)))
    return ([float(a.min()) for a in t], [float(np.median(a) / np.median(t[0])) for a in t],
            [float(a.min() / t[0].min()) for a in t])


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
