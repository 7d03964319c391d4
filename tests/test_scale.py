"""Scale: sharding over (fake) devices, bounded memory, no recompilation across sweeps."""

import json
import os
import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsemi as js


SHARDED = """
import json, warnings, jax, numpy as np, jaxsemi as js
warnings.simplefilter("always")
caught = warnings.catch_warnings(record=True).__enter__()
devs = jax.devices()
m = js.models.haldane(1.0, 0.1, 1.2, 0.2)
bz = js.kgrid.brillouin_zone(m, 37)                       # 1369 points: padding on 4 devices
dirac = js.models.massive_dirac(1.0, 0.1, tilt=0.2)
disk = js.kgrid.disk(5.0, 50, 7, scale=0.1)               # 350 points
def run(every=True, mesh=None):
    out = [js.hall_conductivity(m, 0.0, bz, kT=0.01, chunk_size=64, mesh=mesh)]
    if every:
        out += [js.chern_number(m, 0, 37, method="kubo", chunk_size=100),
                js.transport.current(dirac, [0.01, 0.002], 0.3, 20.0, disk, kT=0.01, chunk_size=16, check=False),
                js.integrate(lambda k: jax.numpy.cos(k[0]) * k[1] ** 2, disk, chunk_size=16),
                js.berry_curvature(m, np.linspace(-3.0, 3.0, 46).reshape(23, 2), chunk_size=8)]
    placed = [sorted(d.id for d in a.sharding.device_set) for a in out]
    values = [float(v) for a in out for v in np.ravel(a)]
    return placed, values
res = {"n": len(devs), "all": run()}
shared = lambda: [str(w.message) for w in caught if issubclass(w.category, js.SharedCoresWarning)]  # noqa: E731
res["warned_first"] = shared()
js.set_devices(devs[:1])
res["one"] = run()
res["explicit"] = run(False, devs[2:3])                   # overrides the default
res["mesh"] = run(False, jax.sharding.Mesh(np.array(devs[1:3]), ("k",)))
js.set_devices(None)
res["reset"] = run(False)
res["warned"] = shared()
print(json.dumps(res))
"""


@pytest.mark.timeout(300)
def test_device_set_is_part_of_the_compiled_program(run_on_cpu_devices):
    res = run_on_cpu_devices(SHARDED, 4)
    assert res["n"] == 4
    # every sum runs where it is told, also after its first compilation
    assert res["all"][0] == [[0, 1, 2, 3]] * 5 and res["one"][0] == [[0]] * 5
    assert [res[key][0] for key in ("explicit", "mesh", "reset")] == [[[2]], [[1, 2]], [[0, 1, 2, 3]]]
    # values independent of the split
    np.testing.assert_allclose(res["one"][1], res["all"][1], rtol=1e-12, atol=1e-14)
    for key in ("explicit", "mesh", "reset"):
        np.testing.assert_allclose(res[key][1], res["all"][1][:1], rtol=1e-12)
    # and the same numbers as this (single-device) process
    m = js.models.haldane(1.0, 0.1, 1.2, 0.2)
    ref = float(js.hall_conductivity(m, 0.0, js.kgrid.brillouin_zone(m, 37), kT=0.01))
    np.testing.assert_allclose(res["all"][1][0], ref, rtol=1e-12)
    # several CPU devices of one process: warned once, at the first sum split over them
    assert len(res["warned_first"]) == 1 and res["warned"] == res["warned_first"]
    assert "deadlock" in res["warned"][0] and "jax.devices()[:1]" in res["warned"][0]


def test_one_cpu_device_does_not_warn_of_shared_cores(monkeypatch):
    from jaxsemi import _sharding
    monkeypatch.setattr(_sharding, "_WARNED", False)  # not yet warned, so the test can fail
    with warnings.catch_warnings():
        warnings.simplefilter("error", js.SharedCoresWarning)
        mesh = _sharding.get_mesh(jax.devices()[:1])
        _sharding.get_mesh()
    assert mesh.size == 1


def test_bad_device_sets_fail_clearly():
    import jax

    m = js.models.qwz(1.0)
    grid = js.kgrid.brillouin_zone(m, 4)
    with pytest.raises(ValueError, match="no devices given"):
        js.set_devices([])
    with pytest.raises(TypeError, match="sequence of jax devices"):
        js.set_devices("cpu")
    with pytest.raises(TypeError, match="sequence of jax devices"):
        js.set_devices(jax.devices()[0])
    with pytest.raises(TypeError, match="must be jax devices"):
        js.set_devices([0])
    with pytest.raises(ValueError, match="repeated"):
        js.set_devices(jax.devices() * 2)
    with pytest.raises(ValueError, match="one axis named 'k'"):
        js.hall_conductivity(m, 0.0, grid, mesh=jax.sharding.Mesh(np.array(jax.devices()), ("x",)))
    ref = float(js.hall_conductivity(m, 0.0, grid))
    try:
        js.set_devices(jax.sharding.Mesh(np.array(jax.devices()), ("k",)))
        assert float(js.hall_conductivity(m, 0.0, grid)) == ref
    finally:
        js.set_devices(None)


def test_lattice_grid_is_lazy_and_matches_explicit():
    m = js.models.qwz(1.0)
    grid = js.kgrid.brillouin_zone(m, (5, 7), shift=0.5)
    explicit = js.KGrid(grid.points, grid.weights)
    f = lambda k: jnp.cos(k[0]) + jnp.sin(2 * k[1]) ** 2  # noqa: E731
    np.testing.assert_allclose(js.integrate(f, grid, chunk_size=4), js.integrate(f, explicit), rtol=1e-13)
    big = js.kgrid.brillouin_zone(m, 10_000)  # 10⁸ points, nothing allocated
    assert big.size == 10**8 and float(big.weight * big.size) == pytest.approx(1 / (2 * np.pi) ** 2 * (2 * np.pi) ** 2)


def test_no_recompilation_across_sweeps(monkeypatch):
    import jaxsemi._hall as hall
    from jaxsemi import _bloch

    traces = []
    original = hall.hamiltonian_and_derivatives

    def counting(*args, **kwargs):
        traces.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(hall, "hamiltonian_and_derivatives", counting)
    grid = js.kgrid.disk(2.0, 12, 4, scale=0.1)
    for v, delta, mu, kT in [(1.0, 0.1, 0.0, 0.0), (1.2, 0.05, 0.2, 0.01), (0.8, -0.1, -0.3, 0.02)]:
        js.hall_conductivity(js.models.massive_dirac(v, delta, tilt=0.1), mu, grid, kT)
    assert len(traces) == 1
    m = js.models.haldane(1.0, 0.1, 1.2, 0.2)  # a lattice model on its BZ grid: the grid-structured path
    g = js.kgrid.brillouin_zone(m, 8)
    before = _bloch.TRACES["count"]
    js.hall_conductivity(m, 0.0, g)
    js.hall_conductivity(m.with_params({**m.params, "mass": jnp.asarray(0.4)}), 0.1, g, 0.01)
    assert _bloch.TRACES["count"] == before + 1


MEMORY = """
import json, resource, jax, jaxsemi as js
m = js.models.haldane(1.0, 0.1, 1.2, 0.2)
out = {}
for n in (1000, 4000):                                    # 10⁶ and 1.6×10⁷ points
    s = float(js.hall_conductivity(m, 0.0, js.kgrid.brillouin_zone(m, n), chunk_size=8192))
    out[str(n)] = [s, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]
print(json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_memory_does_not_grow_with_grid(run_on_cpu_devices):
    res = run_on_cpu_devices(MEMORY)
    (s1, rss1), (s2, rss2) = res["1000"], res["4000"]
    np.testing.assert_allclose([s1, s2], -1.0, atol=1e-9)
    # 16× more points: explicit arrays alone would add > 750 MB (points + weights + curvatures)
    assert rss2 - rss1 < 100, (rss1, rss2)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("theory, relaxation, textured", [("nonadiabatic", "first_order", False),
                                                          ("ssct", "exact", False), ("ssct", "first_order", True)])
def test_current_gradient_memory_does_not_grow_with_grid(theory, relaxation, textured):
    """Reverse mode through the chunked k-sum of ``current`` recomputes each chunk (``reduce_blocks(remat=...)``)
    instead of storing every chunk's per-point values: the compiled gradient's scratch memory is the same for 4×
    more points in chunks of 64 (before: 0.19 → 0.71 MB, 0.62 → 2.2 MB, 62 → 80 kB for these three)."""
    model = js.models.massive_dirac(1.0, 0.1, tilt=0.3, **(dict(texture_G=[0.02, 0.01]) if textured else {}))
    temp = []
    for n_r in (16, 64):
        grid = js.kgrid.disk(2.0, n_r, 16)

        def jx(p):
            return js.transport.current(model.with_params(p), [0.0, 0.001], 0.2, 20.0, grid, kT=0.01, theory=theory,
                                        relaxation=relaxation, chunk_size=64, check=False,
                                        **(dict(x=[1.0, 0.0]) if textured else {}))[0]

        temp.append(jax.jit(jax.grad(jx)).lower(dict(model.params)).compile().memory_analysis().temp_size_in_bytes)
    assert temp[1] - temp[0] < 1024, temp


@pytest.mark.timeout(300)
def test_hall_gradient_memory_is_bounded(monkeypatch):
    """``hall_conductivity``'s gradient recomputes each chunk in reverse mode — point by point always, a lattice model's
    grid-structured sum beyond ``STORED_GRADIENT_POINTS`` (lowered here): its scratch memory is then the same for 4×
    more points (before: 0.94 → 3.15 MB for the Haldane model, ~210 B per point), and its value that of one chunk."""
    from jaxsemi import _hall

    monkeypatch.setattr(_hall, "STORED_GRADIENT_POINTS", 1000)
    haldane, dirac = js.models.haldane(1.0, 0.1, 1.2, 0.2), js.models.massive_dirac(1.0, 0.1, tilt=0.3)
    cases = [(haldane, [js.kgrid.brillouin_zone(haldane.lattice, n) for n in (44, 88)], 0.1, 256),
             (dirac, [js.kgrid.disk(2.0, n, 16, scale=0.1) for n in (18, 72)], 0.2, 64)]
    for model, grids, mu, chunk in cases:
        temp = []
        for grid in grids:
            def sigma(p, grid=grid, size=chunk):
                return js.hall_conductivity(model.with_params(p), mu, grid, kT=0.02, chunk_size=size)

            compiled = jax.jit(jax.grad(sigma)).lower(dict(model.params)).compile()
            temp.append(compiled.memory_analysis().temp_size_in_bytes)
        assert temp[1] - temp[0] < 1024, (model.name, temp)
        chunked, whole = (jax.grad(lambda p, size=size: js.hall_conductivity(model.with_params(p), mu, grids[1],
                                                                             kT=0.02, chunk_size=size))(
            dict(model.params)) for size in (chunk, grids[1].size))
        assert max(float(jnp.max(jnp.abs(v))) for v in jax.tree_util.tree_leaves(whole)) > 1e-3
        for a, b in zip(jax.tree_util.tree_leaves(chunked), jax.tree_util.tree_leaves(whole)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.timeout(300)
def test_stored_hall_gradient_keeps_ten_numbers_per_point():
    """Below ``STORED_GRADIENT_POINTS`` a lattice model's σ_xy gradient keeps each chunk's values for reverse mode: for
    two bands only d₀, d, ∂_x d, ∂_y d (10 float64 per point, the closed form after them recomputed) — its scratch
    memory grows by < 100 B per point (84 B; the code that kept the closed form's intermediates: 206 B)."""
    haldane = js.models.haldane(1.0, 0.1, 1.2, 0.2)
    temp = []
    for n in (40, 80):  # not the grids of ``test_hall_gradient_memory_is_bounded``, whose programs are cached
        grid = js.kgrid.brillouin_zone(haldane.lattice, n)

        def sigma(p, grid=grid):
            return js.hall_conductivity(haldane.with_params(p), 0.1, grid, kT=0.02, chunk_size=256)

        compiled = jax.jit(jax.grad(sigma)).lower(dict(haldane.params)).compile()
        temp.append(compiled.memory_analysis().temp_size_in_bytes)
    assert 0 < (temp[1] - temp[0]) / (80**2 - 40**2) < 100, temp


MULTIHOST = """
import json, sys
import jaxsemi as js
js.distributed.initialize("127.0.0.1:{port}", num_processes=2, process_id=int(sys.argv[1]))
import jax
m = js.models.haldane(1.0, 0.1, 1.2, 0.2)
s = js.hall_conductivity(m, 0.0, js.kgrid.brillouin_zone(m, 37), kT=0.01, chunk_size=64)
print(json.dumps({{"devices": len(jax.devices()), "local": len(jax.local_devices()), "sigma": float(s)}}))
js.distributed.shutdown()
"""


@pytest.mark.timeout(300)
def test_import_starts_no_backend():
    """jax.distributed.initialize must come before any backend start, so importing jaxsemi may
    not create a JAX array (a module-level jnp constant once broke every multi-host run)."""
    code = "import jax._src.xla_bridge as xb, jaxsemi, jaxsemi.bench; print(bool(xb._backends))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


@pytest.mark.timeout(300)
def test_two_process_run_matches_one_process():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = MULTIHOST.format(port=port)  # run with -c from the checkout: imports this checkout's jaxsemi
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}  # one CPU device per process, also on a GPU machine
    procs = [subprocess.Popen([sys.executable, "-c", code, str(r)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for r in (0, 1)]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    res = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    m = js.models.haldane(1.0, 0.1, 1.2, 0.2)
    ref = float(js.hall_conductivity(m, 0.0, js.kgrid.brillouin_zone(m, 37), kT=0.01))
    for r in res:
        assert r["devices"] == 2 and r["local"] == 1
        np.testing.assert_allclose(r["sigma"], ref, rtol=1e-12)


WAVEPACKETS = """
import json, jax, numpy as np, jaxsemi as js
from jaxsemi._sharding import get_mesh, shard_batch
devs = jax.devices()
model = js.models.massive_dirac(1.0, 0.05)
ky = np.linspace(0.0, 0.06, 6)                                  # 6 trajectories: padded to 8 on 4 devices
k0 = np.stack([np.full(6, 1.9), ky], -1)
def pops(mesh=None):
    tr = js.wavepacket.evolve(model, [0.0, 0.0], k0, 250.0, [0.01, 0.0], band=0, saveat=3, mesh=mesh)
    return ([sorted(d.id for d in tr.populations.sharding.device_set)]
            + [np.asarray(tr.populations[:, -1, 1]).tolist(), np.asarray(tr.x[:, -1]).ravel().tolist()])
res = {"n": len(devs), "many": pops()}
placed = jax.jit(lambda a: shard_batch(a, 6, get_mesh())[0])(np.zeros((6, 2)))
res["spread"] = [len(placed.sharding.device_set), placed.shape[0]]
res["one"] = pops(devs[3:4])
print(json.dumps(res))
"""


@pytest.mark.timeout(300)
def test_wavepacket_ensemble_sharded_matches_one_device(run_on_cpu_devices):
    res = run_on_cpu_devices(WAVEPACKETS, 4)
    assert res["n"] == 4 and res["spread"] == [4, 8]  # padded to 8 and split over the 4 devices
    assert res["many"][0] == [0, 1, 2, 3] and res["one"][0] == [3]
    np.testing.assert_allclose(res["one"][1], res["many"][1], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(res["one"][2], res["many"][2], rtol=1e-12, atol=1e-12)
    ky = np.linspace(0.0, 0.06, 6)
    np.testing.assert_allclose(res["many"][1], np.exp(-np.pi * (0.05**2 + ky**2) / 0.01), atol=2e-3)
