"""float32 mode (``JAXSEMI_X64=0``, read at import, so it runs in a subprocess): the sums stay
in float32 and agree with closed forms to float32 accuracy (docs/conventions.md §1)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, warnings
import numpy as np
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import jax, jax.numpy as jnp
    import jaxsemi as js
dirac = js.models.massive_dirac(1.0, 0.01)
disk = js.kgrid.disk(1.0, 64, 8, scale=0.01)
haldane = js.models.haldane(1.0, 0.1, 1.2, 0.2)
bz = js.kgrid.brillouin_zone(haldane, 48)
q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(4, 4)) + 1j * np.random.default_rng(2).normal(size=(4, 4)))
w = jnp.asarray(q, dtype=jnp.complex64)

def doubled(k, x, p):  # two degenerate copies of the Haldane model, mixed by a unitary w
    h = haldane.hamiltonian(k, x, haldane.params)
    z = jnp.zeros_like(h)
    return w @ jnp.block([[h, z], [z, h]]) @ jnp.conj(w.T)

mixed = js.Model(doubled, {}, 2, haldane.lattice)
sigma = js.hall_conductivity(dirac, jnp.array([0.0]), disk)
current = js.transport.current(dirac, [0.0, 1e-5], 0.0, 10.0, disk, kT=0.01, theory="nonadiabatic", check=False)
print(json.dumps({
    "x64": bool(jax.config.jax_enable_x64), "warned": any("float32" in str(c.message) for c in caught),
    "dtypes": [str(a.dtype) for a in (sigma, current, js.berry_curvature(haldane, [[0.1, 0.2]]))],
    "dirac": float(sigma[0]), "haldane": float(js.hall_conductivity(haldane, 0.0, bz)),
    "grid_path": js._bloch.structure(haldane, bz) is not None,
    "mixed": float(js.hall_conductivity(mixed, 0.0, bz))}))
"""


def test_float32_hall_sums_match_closed_forms():
    env = {**os.environ, "JAXSEMI_X64": "0"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert not res["x64"] and res["warned"]
    assert res["dtypes"] == ["float32"] * 3
    # one valley, lower band filled on a disk of radius 1/Å: −½(1 − Δ/√(Δ² + v²k_max²))
    np.testing.assert_allclose(res["dirac"], -0.5 * (1 - 0.01 / np.hypot(0.01, 1.0)), atol=2e-6)
    np.testing.assert_allclose(res["haldane"], -1.0, atol=1e-5)  # Chern gap: −C
    assert res["grid_path"]  # a float32 grid of the model's own basis takes the grid-structured Bloch sums
    # degenerate bands split by float32 round-off (~1e-7 eV) must not enter 1/gap² (−2.03 before)
    np.testing.assert_allclose(res["mixed"], -2.0, atol=1e-4)
