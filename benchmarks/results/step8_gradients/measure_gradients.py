import sys, time
import jax, jax.numpy as jnp, numpy as np
import jaxsemi as js
from jaxsemi.bench._common import best_time

def ratio(f, args, argnums, repeats=7):
    fwd = jax.jit(f); grad = jax.jit(jax.grad(f, argnums=argnums))
    jax.block_until_ready(fwd(*args)); jax.block_until_ready(grad(*args))
    tf, v = best_time(lambda: jax.block_until_ready(fwd(*args)), repeats)
    tg, g = best_time(lambda: jax.block_until_ready(grad(*args)), repeats)
    import time
    def cpu(fn):
        b = 1e9
        for _ in range(repeats):
            t = time.process_time(); fn(); b = min(b, time.process_time() - t)
        return b
    cf, cg = cpu(lambda: jax.block_until_ready(fwd(*args))), cpu(lambda: jax.block_until_ready(grad(*args)))
    return tf, tg, tg / tf, cg / cf

which = sys.argv[1:] or ["hall_haldane", "hall_dirac", "cond_ssct", "cond_na", "cur_na", "cur_ssct"]
out = {}
if "hall_haldane" in which:
    m = js.models.haldane(1.0, 0.1, 1.2, 0.2)
    grid = js.kgrid.brillouin_zone(m.lattice, 300)
    f = lambda p, mu, kT: js.hall_conductivity(m.with_params(p), mu, grid, kT=kT)
    out["hall_haldane"] = ratio(f, (dict(m.params), jnp.asarray(0.1), jnp.asarray(0.02)), (0, 1, 2))
V, DELTA, TILT, MU, KT, TAU = 1.0, 0.1, 0.3, 0.2, 0.01, 10.0
md = js.models.massive_dirac(V, DELTA, tilt=TILT)
k_f = (MU**2 - DELTA**2) ** 0.5 / V
dgrid = js.kgrid.disk(2.0, 200, 64, scale=DELTA / V, breaks=[0.8 * k_f, 1.3 * k_f])
args = (dict(md.params), jnp.asarray(MU), jnp.asarray(TAU), jnp.asarray(KT))
if "hall_dirac" in which:
    f = lambda p, mu, tau, kT: js.hall_conductivity(md.with_params(p), mu, dgrid, kT=kT)
    out["hall_dirac"] = ratio(f, args, (0, 1, 3))
field = jnp.array([0.0, 0.5 * DELTA**2 / V])
for th, tag in (("ssct", "ssct"), ("nonadiabatic", "na")):
    if "cond_" + tag in which:
        f = lambda p, mu, tau, kT, th=th: js.transport.conductivity(md.with_params(p), jnp.zeros(2), mu, tau, dgrid, kT=kT, theory=th)[0, 1]
        out["cond_" + tag] = ratio(f, args, (0, 1, 2, 3))
    if "cur_" + tag in which:
        f = lambda p, mu, tau, kT, th=th: js.transport.current(md.with_params(p), field, mu, tau, dgrid, kT=kT, theory=th)[0]
        out["cur_" + tag] = ratio(f, args, (0, 1, 2, 3))
import json
print(json.dumps({k: dict(t_forward_s=v[0], t_grad_s=v[1], grad_ratio=v[2], grad_ratio_cpu_time=v[3]) for k, v in out.items()}))
