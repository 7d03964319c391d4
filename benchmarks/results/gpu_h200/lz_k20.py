"""GPU run of the K = 20 Landau–Zener sweep (jaxsemi.bench.lz_sweep's configurations on the peers' task):
jaxsemi Magnus4 (frozen and adiabatic phase, vmap and shared, controller norm over χ), dynamiqs (Tsit5,
Dopri8, Expm) on the GPU, QuTiP (vern9, adams) on the host CPU; n = 200 (the issue's batch) and 4000.
Writes the report after each configuration.  python lz_k20.py OUT.json [n ...]"""
import json
import sys
import time

import jaxsemi as js
from jaxsemi.bench import lz_sweep as L
from jaxsemi.bench._common import environment

path, sizes = sys.argv[1], [int(a) for a in sys.argv[2:]] or [200, 4000]
model = js.models.massive_dirac(L.V, L.DELTA)
K = 20.0
out = {"environment": environment(), "K": K, "rtol_atol": [L.RTOL, L.ATOL], "started": time.strftime("%H:%M:%S")}


def dump():
    out["written"] = time.strftime("%H:%M:%S")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)


for n in sizes:
    _, ky, _ = L.sweep(K, n)
    end = L._hamiltonians(model, K, ky)[3]
    t = time.perf_counter()
    ref = L.tight_populations(model, K, n, end, ky)
    res = out[f"n={n}"] = {"tight_reference_seconds": time.perf_counter() - t}
    dump()
    for name, solver in (("magnus4_adiabatic", L.ADIABATIC), ("magnus4", js.wavepacket.Magnus4())):
        for mode in ("shared", "vmap"):
            res[f"jaxsemi_{name}_chi_norm_{mode}"] = L._jaxsemi(model, K, n, mode, end, ky, 3, ref, solver,
                                                               L.band_state_norm)[0]
            print(n, name, mode, res[f"jaxsemi_{name}_chi_norm_{mode}"]["trajectories_per_s"], flush=True)
            dump()
    res["dynamiqs"] = L._dynamiqs(model, K, n, 3, ref)
    print(n, "dynamiqs", {k: v.get("trajectories_per_s") for k, v in res["dynamiqs"].items() if isinstance(v, dict)}, flush=True)
    dump()
    if n <= 200:
        res["qutip"] = L._qutip(model, K, n, 1, ref)
        print(n, "qutip", {k: v.get("trajectories_per_s") for k, v in res["qutip"].items() if isinstance(v, dict)}, flush=True)
        dump()
out["finished"] = time.strftime("%H:%M:%S")
dump()
