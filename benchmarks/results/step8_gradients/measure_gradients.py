"""Gradient / forward time (wall and process CPU time) of the sums in README.md of this folder.

Run with the tree to measure first on ``PYTHONPATH``; prints one JSON line. Optional arguments
select cases: hall_haldane hall_dirac cond_ssct cond_na cur_ssct cur_na.
"""

import json
import sys
import time

import jax
import jax.numpy as jnp

import jaxsemi as js
from jaxsemi.bench._common import best_time

V, DELTA, TILT, MU, KT, TAU = 1.0, 0.1, 0.3, 0.2, 0.01, 10.0


def cpu_time(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def ratios(f, args, argnums, repeats=7):
    fwd, grad = jax.jit(f), jax.jit(jax.grad(f, argnums=argnums))
    run_fwd, run_grad = (lambda: jax.block_until_ready(fwd(*args))), (lambda: jax.block_until_ready(grad(*args)))
    run_fwd(), run_grad()  # compile
    tf, tg = best_time(run_fwd, repeats)[0], best_time(run_grad, repeats)[0]
    return {"t_forward_s": tf, "t_grad_s": tg, "grad_ratio": tg / tf,
            "grad_ratio_cpu_time": cpu_time(run_grad, repeats) / cpu_time(run_fwd, repeats)}


def main(which):
    out = {}
    if "hall_haldane" in which:
        m = js.models.haldane(1.0, 0.1, 1.2, 0.2)
        grid = js.kgrid.brillouin_zone(m.lattice, 300)
        out["hall_haldane"] = ratios(lambda p, mu, kT: js.hall_conductivity(m.with_params(p), mu, grid, kT=kT),
                                     (dict(m.params), jnp.asarray(0.1), jnp.asarray(0.02)), (0, 1, 2))
    md = js.models.massive_dirac(V, DELTA, tilt=TILT)
    k_f = (MU**2 - DELTA**2) ** 0.5 / V
    disk = js.kgrid.disk(2.0, 200, 64, scale=DELTA / V, breaks=[0.8 * k_f, 1.3 * k_f])
    args = (dict(md.params), jnp.asarray(MU), jnp.asarray(TAU), jnp.asarray(KT))
    if "hall_dirac" in which:
        out["hall_dirac"] = ratios(lambda p, mu, tau, kT: js.hall_conductivity(md.with_params(p), mu, disk, kT=kT),
                                   args, (0, 1, 3))
    field = jnp.array([0.0, 0.5 * DELTA**2 / V])
    for theory, tag in (("ssct", "ssct"), ("nonadiabatic", "na")):
        def sigma(p, mu, tau, kT, theory=theory):
            return js.transport.conductivity(md.with_params(p), jnp.zeros(2), mu, tau, disk, kT=kT,
                                             theory=theory)[0, 1]

        def current(p, mu, tau, kT, theory=theory):
            return js.transport.current(md.with_params(p), field, mu, tau, disk, kT=kT, theory=theory)[0]

        for name, fn in (("cond_" + tag, sigma), ("cur_" + tag, current)):
            if name in which:
                out[name] = ratios(fn, args, (0, 1, 2, 3))
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:] or ["hall_haldane", "hall_dirac", "cond_ssct", "cond_na", "cur_na", "cur_ssct"])
