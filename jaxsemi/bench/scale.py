"""Scale figures: speed-up on 2 devices, adaptive vs uniform k-points, peak memory of a huge grid.

* ``devices``: σ_xy of the Haldane model on an N×N grid in a fresh process with 1 and with 2
  devices (on a CPU, 2 host-platform devices via ``--xla_force_host_platform_device_count``;
  on a GPU machine, the real devices), and the speed-up.
* ``adaptive``: k-points used by ``hall_conductivity_adaptive`` to reach 1e-6 relative for a
  massive Dirac cone with a 1 meV gap and for the Haldane model 2 meV from its transition,
  against the smallest uniform grid (doubling N) reaching the same accuracy — polar midpoint
  grid for the Dirac disk, N×N Brillouin-zone grid for Haldane — or a lower bound when the
  largest uniform grid tried still misses it.
* ``memory``: peak resident memory of a σ_xy sum over 10⁸ k-points (10⁶ with --quick) in a
  fresh process (``ru_maxrss``), and its time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np

import jaxsemi as js


_DEVICE_RUN = """
import json, time, jax, jaxsemi as js
m = js.models.haldane(1.0, 0.1, 1.2, 0.2)
g = js.kgrid.brillouin_zone(m, {n})
js.hall_conductivity(m, 0.0, g, chunk_size=16384).block_until_ready()
best = min((lambda t0: (js.hall_conductivity(m, 0.0, g, chunk_size=16384).block_until_ready(),
            time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(3))
print(json.dumps({{"devices": len(jax.devices()), "seconds": best, "kpts_per_s": {n}**2 / best}}))
"""

_MEMORY_RUN = """
import json, resource, time, jaxsemi as js
m = js.models.haldane(1.0, 0.1, 1.2, 0.2)
t0 = time.perf_counter()
s = float(js.hall_conductivity(m, 0.0, js.kgrid.brillouin_zone(m, {n}), chunk_size=16384))
print(json.dumps({{"k_points": {n}**2, "sigma_xy": s, "seconds": time.perf_counter() - t0,
                  "peak_rss_MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def _fresh(code: str, n_devices: int | None = None) -> dict:
    env = dict(os.environ)
    if n_devices is not None:  # fake CPU devices; on GPU machines limit the visible GPUs instead
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={n_devices}").strip()
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(n_devices))
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def devices(n: int) -> dict:
    one = _fresh(_DEVICE_RUN.format(n=n), 1)
    two = _fresh(_DEVICE_RUN.format(n=n), 2)
    return {"grid": f"{n}x{n}", "one_device": one, "two_devices": two,
            "speedup": one["seconds"] / two["seconds"]}


def _polar_uniform(k_max, n_r):
    r = (np.arange(n_r) + 0.5) * k_max / n_r
    return js.KGrid(jnp.asarray(np.stack([r, 0 * r], -1)), jnp.asarray(r * (k_max / n_r) / (2 * np.pi)))


def adaptive(max_uniform: int) -> dict:
    out = {}
    v, delta, k_max = 1.0, 0.0005, 1.0
    dirac = js.models.massive_dirac(v, delta)
    exact = -0.5 * (1 - delta / np.hypot(v * k_max, delta))
    res = js.hall_conductivity_adaptive(dirac, 0.0, js.kgrid.disk_domain(k_max), rtol=1e-6)
    for n_r in 256 * 2 ** np.arange(int(np.log2(max_uniform**2 / 256)) + 1):
        err = abs(float(js.hall_conductivity(dirac, 0.0, _polar_uniform(k_max, int(n_r)))) / exact - 1)
        if err < 1e-6:
            break
    out["dirac_1meV"] = {"adaptive_points": res.n_points, "adaptive_rel_error": abs(res.value / exact - 1),
                         "error_estimate": res.error, "uniform_polar_points": int(n_r), "uniform_rel_error": err,
                         "uniform_reached_1e-6": bool(err < 1e-6)}
    a = 3 * np.sqrt(3) * 0.1
    hal = js.models.haldane(1.0, 0.1, np.pi / 2, a - 0.002)
    res = js.hall_conductivity_adaptive(hal, 0.0, rtol=1e-6)
    for n in 128 * 2 ** np.arange(int(np.log2(max_uniform / 128)) + 1):
        err = abs(float(js.hall_conductivity(hal, 0.0, js.kgrid.brillouin_zone(hal, int(n)), chunk_size=16384)) + 1)
        if err < 1e-6:
            break
    out["haldane_near_transition"] = {"adaptive_points": res.n_points, "adaptive_abs_error": abs(res.value + 1),
                                      "error_estimate": res.error, "uniform_points": int(n) ** 2,
                                      "uniform_abs_error": err, "uniform_reached_1e-6": bool(err < 1e-6)}
    return out


def run(quick: bool = False) -> dict:
    return {"benchmark": "scale",
            "devices": devices(300 if quick else 1000),
            "adaptive": adaptive(256 if quick else 4096),
            "memory": _fresh(_MEMORY_RUN.format(n=1000 if quick else 10_000))}
