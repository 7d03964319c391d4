"""The k-space package: one chunked, sharded reduce (sum / min / max / stack) and no import circle."""

import ast
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsemi as js

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Runs alone in a subprocess on 1 and on 4 fake CPU devices: prints the largest deviation
# of every reduction from NumPy, for chunks that do not divide the grid and for no chunking.
REDUCE = """
import json, jax, jax.numpy as jnp, numpy as np, jaxsemi as js

def f(k):
    return {"s": jnp.cos(k[0]) * k[1] ** 2, "v": jnp.stack([jnp.sin(k[0]), k[0] * k[1]]), "i": jnp.int32(3)}

grid = js.kgrid.brillouin_zone(np.array([[1.0, 0.2], [0.0, 0.8]]), (5, 7), shift=0.5)   # 35 points
p, w = np.asarray(grid.points), np.asarray(grid.weights)
ref = {"s": np.cos(p[:, 0]) * p[:, 1] ** 2, "v": np.stack([np.sin(p[:, 0]), p[:, 0] * p[:, 1]], -1)}
err = {}
for chunk in (None, 1, 4, 6):
    s = js.kspace.reduce(f, grid, {"s": "sum", "v": "sum", "i": "sum"}, chunk_size=chunk)
    lo = js.kspace.reduce(f, grid, "min", chunk_size=chunk)
    hi = jax.jit(lambda g: js.kspace.reduce(f, g, "max", chunk_size=chunk))(grid)
    st = js.kspace.reduce(f, grid, {"s": "stack", "v": "stack", "i": "max"}, chunk_size=chunk)
    err[str(chunk)] = max(
        abs(float(s["s"]) - w @ ref["s"]), float(np.max(np.abs(s["v"] - w @ ref["v"]))),
        abs(float(s["i"]) - 3 * w.sum()),
        abs(float(lo["s"]) - ref["s"].min()), float(np.max(np.abs(lo["v"] - ref["v"].min(0)))),
        abs(float(hi["s"]) - ref["s"].max()), float(np.max(np.abs(hi["v"] - ref["v"].max(0)))),
        float(np.max(np.abs(st["s"] - ref["s"]))), float(np.max(np.abs(st["v"] - ref["v"]))),
        abs(int(lo["i"]) - 3) + abs(int(st["i"]) - 3) + (st["s"].shape != (35,)) + (st["v"].shape != (35, 2)))
qwz = js.models.qwz(1.0)  # C = -1; FHS rows and eigh points split over the devices in small chunks
pts = np.random.default_rng(1).uniform(-3, 3, (11, 2))
err["fhs"] = abs(float(js.chern_number(qwz, 0, 13, chunk_size=30)) + 1)
err["eigh"] = float(np.max(np.abs(js.eigh(qwz, pts, chunk_size=3)[0] - np.linalg.eigvalsh(np.asarray(qwz(pts))))))
from jaxsemi import _sharding
from jaxsemi.kspace._reduce import grid_reduce, grid_reduce_params
mesh = _sharding.get_mesh(None)
g = lambda a, k: jnp.cos(a * k[0]) * k[1]
grads = [jax.grad(f)(0.7) for f in (lambda a: grid_reduce(lambda k: g(a, k), grid, "sum", 6, mesh),
                                     lambda a: grid_reduce_params(g, a, grid, "sum", 6, mesh))]  # per-point tangents
exact = w @ (-np.sin(0.7 * p[:, 0]) * p[:, 0] * p[:, 1])
# a k-sum whose per-point function calls js.eigh (itself a sharded map over points) runs it on the outer map's device
nested = js.kspace.reduce(lambda k: jnp.sum(js.eigh(qwz, k[None])[0] ** 2), grid, chunk_size=4)
direct = js.kspace.reduce(lambda k: jnp.sum(jnp.linalg.eigvalsh(qwz.hamiltonian(k, jnp.zeros(2), qwz.params)) ** 2),
                          grid, chunk_size=4)
err["nested"] = abs(float(nested - direct)) + (abs(float(direct)) < 1)
err["params"] = abs(float(grads[0] - grads[1])) + abs(float(grads[0]) - exact)
print(json.dumps({"devices": len(jax.devices()), "err": err}))
"""


@pytest.mark.parametrize("n_devices", [1, 4])
def test_reduce_matches_numpy(n_devices, run_on_cpu_devices):
    res = run_on_cpu_devices(REDUCE, n_devices)
    assert res["devices"] == n_devices
    assert set(res["err"]) == {"None", "1", "4", "6", "fhs", "eigh", "params", "nested"}
    assert max(res["err"].values()) < 1e-12, res["err"]


@pytest.mark.parametrize("size, chunk, multiple, per_call", [(48, 21, 1, 16), (48, 48, 1, 48), (35, 10, 1, 9),
                                                              (7, 100, 1, 7), (600, 27, 2, 26), (35, 10, 2, 10),
                                                              (7, 100, 2, 8), (5, 1, 2, 2)])
def test_chunks_are_even_and_bounded(size, chunk, multiple, per_call):
    """``reduce_blocks`` keeps the number of chunks of ``chunk`` indices but splits the indices evenly
    (48 in chunks of 21 would evaluate 63, 31 % padding: three of 16 instead), never above ``chunk``; with
    ``multiple``, chunks of a multiple of it (600 lines in chunks of ≤ 27: 24 of 26, not 23 of 27)."""
    from jaxsemi import _sharding
    from jaxsemi.kspace._reduce import reduce_blocks

    seen = []

    def block(idx):
        seen.append(idx.shape[0])  # at trace time
        return idx.astype(float), (idx < size).astype(float)  # padding weighs 0

    total = reduce_blocks(block, size, "sum", chunk=chunk, mesh=_sharding.get_mesh(None), multiple=multiple)
    assert set(seen) == {per_call} and per_call <= max(chunk, multiple) and per_call % multiple == 0
    assert float(total) == size * (size - 1) / 2


def test_reduce_params_derivatives_equal_autodiff_of_the_plain_reduce():
    """``grid_reduce_params`` (tangents of small leaves broadcast to every point, a large leaf's shared, a closed-over
    value hoisted) has the derivatives of ``grid_reduce`` of the same function: gradient, forward Jacobian and
    Hessian, for sums and stacks over uneven chunks, with the chunks recomputed in reverse mode (``remat``) or
    not; min / max held constant in both."""
    from jaxsemi import _sharding
    from jaxsemi.kspace._reduce import PER_POINT_TANGENT_SIZE, grid_reduce, grid_reduce_params

    mesh = _sharding.get_mesh(None)
    grid = js.kgrid.brillouin_zone(np.array([[1.0, 0.2], [0.0, 0.8]]), (5, 7), shift=0.5)
    big = jnp.linspace(0.1, 1.0, PER_POINT_TANGENT_SIZE + 1)  # a leaf whose tangent is shared by the points
    how = {"s": "sum", "m": "max", "st": "stack"}

    def f(p, z, k):
        s = jnp.cos(p["a"] * k[0]) * p["b"][1] + jnp.sum(jnp.sin(p["c"] * k[1])) * z * p["b"][0] ** 2
        return {"s": s, "m": p["a"] * k[0] ** 2, "st": jnp.stack([s * k[1], p["a"] * z])}

    def total(x, params):
        p, z = {"a": x[0], "b": x[1:3], "c": big * x[3]}, x[4]
        if params:  # z closed over, not a parameter; the chunks recomputed in reverse mode or not
            out = grid_reduce_params(lambda p, k: f(p, z, k), p, grid, how, 6, mesh, remat=params == "remat")
        else:
            out = grid_reduce(lambda k: {**f(p, z, k), "m": jax.lax.stop_gradient(f(p, z, k)["m"])}, grid, how, 6,
                              mesh)
        return jnp.concatenate([out["s"][None], out["m"][None], out["st"][::5].ravel()])

    x = jnp.array([0.7, 1.3, -0.4, 0.9, 0.6])
    for derivative in (jax.jacrev, jax.jacfwd, jax.hessian):
        plain, params, remat = (np.asarray(jax.jit(derivative(total), static_argnums=1)(x, via))
                                for via in (False, True, "remat"))
        assert np.abs(plain).max() > 0.1 and np.abs(plain[1]).max() == 0  # m: no derivative
        np.testing.assert_allclose(params, plain, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(remat, plain, rtol=1e-12, atol=1e-12)
    scaled = lambda s: jax.tree_util.tree_map(lambda a: a * s if jnp.issubdtype(a.dtype, jnp.floating) else a,  # noqa
                                              grid)
    with pytest.raises(ValueError, match="grid's points or weights"):  # not a silent zero
        jax.grad(lambda s: grid_reduce_params(lambda p, k: p * jnp.cos(k[0]), 1.0, scaled(s), "sum", 6, mesh))(1.0)


def test_reduce_rejects_unknown_reduction():
    grid = js.kgrid.brillouin_zone(np.eye(2), 4)
    with pytest.raises(ValueError, match="how must be one of"):
        js.kspace.reduce(lambda k: k[0], grid, "mean")
    with pytest.raises(TypeError, match="f must be a function"):
        js.kspace.reduce(3.0, grid)


def test_old_spellings_are_the_kspace_objects():
    assert js.kgrid.brillouin_zone is js.kspace.brillouin_zone and js.kgrid.disk is js.kspace.disk
    assert js.kgrid.bz_domain is js.kspace.bz_domain and js.kgrid.disk_domain is js.kspace.disk_domain
    assert js.KGrid is js.kspace.KGrid and js.LatticeGrid is js.kspace.LatticeGrid
    assert js.integrate is js.kspace.integrate and js.integrate_adaptive is js.kspace.integrate_adaptive


def _imports(path: pathlib.Path) -> set:
    """Module-level relative imports of a file, as dotted names inside jaxsemi."""
    pkg = path.relative_to(ROOT).with_suffix("").parts[:-1]
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level:
            base = pkg[:len(pkg) - node.level + 1]
            if node.module:
                names.add(".".join(base + tuple(node.module.split("."))))
            else:
                names.update(".".join(base + (a.name,)) for a in node.names)
    return names


def test_no_import_circle():
    # the k-space package builds only on the leaf modules, which never import it at module level
    leaves = {"jaxsemi._checks", "jaxsemi._lattice", "jaxsemi._sharding"}
    for path in (ROOT / "jaxsemi" / "kspace").glob("*.py"):
        outside = {m for m in _imports(path) if not m.startswith("jaxsemi.kspace")}
        assert outside <= leaves, (path.name, outside)
    for leaf in leaves:
        assert not any(m.startswith(("jaxsemi.kspace", "jaxsemi.kgrid"))
                       for m in _imports(ROOT / (leaf.replace(".", "/") + ".py"))), leaf
    for module in ("jaxsemi.kspace", "jaxsemi.kspace.grids", "jaxsemi.kspace._adaptive", "jaxsemi.kspace._reduce",
                   "jaxsemi.kgrid"):
        out = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True,
                             timeout=120, cwd=ROOT)
        assert out.returncode == 0, (module, out.stderr[-2000:])


def test_small_solve_matches_lapack():
    from jaxsemi._eom import solve_small

    rng = np.random.default_rng(0)
    for n in (2, 4, 6):
        systems = []
        for _ in range(20):
            q, _ = np.linalg.qr(rng.normal(size=(n, n)))
            a = q @ np.diag(rng.uniform(0.5, 2.0, n)) @ np.linalg.qr(rng.normal(size=(n, n)))[0]  # cond ≤ 4
            a = a[rng.permutation(n)]  # pivoting needed
            b = rng.normal(size=n)
            np.testing.assert_allclose(solve_small(a, b), np.asarray(jnp.linalg.solve(a, b)),
                                       rtol=1e-12, atol=1e-12)
            systems.append((a, b))
        a, b = (np.stack(s) for s in zip(*systems))
        a[0, 0, 0] = 0.0  # a zero in the first pivot position: only a row swap solves it
        # batched (as in the transport and wavepacket hot paths), where each system pivots its own rows
        np.testing.assert_allclose(jax.jit(jax.vmap(solve_small))(a, b), np.linalg.solve(a, b[..., None])[..., 0],
                                   rtol=1e-11, atol=1e-11)
    # Eq. 43's 4×4 systems (solved by the adjugate): large Ω^{kk}, mixed curvatures of order one
    from jaxsemi.units import HBAR
    spin = np.array([[0.0, 1.0], [-1.0, 0.0]])
    for w in (10.0, 1e3, 1e5):
        for _ in range(20):
            f_kx = 0.3 * np.sqrt(w) * rng.normal(size=(2, 2))
            a = np.block([[np.eye(2) + f_kx, w * rng.uniform(-1, 1) * spin],
                          [-0.3 * HBAR * rng.uniform(-1, 1) * spin, HBAR * (np.eye(2) + f_kx.T)]])
            b = rng.normal(size=4)
            y = np.linalg.solve(a, b)
            np.testing.assert_allclose(solve_small(a, b), y, rtol=0, atol=1e-10 * np.max(np.abs(y)))
    # and the 6×6 ones of three dimensions (solved by Cramer's rule), against exact rational elimination: errors
    # 5e-13 / 9e-14 / 1.4e-11 of max|y| at w = 10 / 1e3 / 1e5 (Gauss–Jordan 6e-15 / 2e-14 / 5e-13)
    for w in (10.0, 1e3, 1e5):
        for _ in range(10):
            f_kx = 0.3 * np.sqrt(w) * rng.normal(size=(3, 3))
            f_kk, f_xx = (m - m.T for m in rng.uniform(-1, 1, (2, 3, 3)))
            a = np.block([[np.eye(3) + f_kx, w * f_kk], [-0.3 * HBAR * f_xx, HBAR * (np.eye(3) + f_kx.T)]])
            b = rng.normal(size=6)
            y = _exact_solve(a, b)
            np.testing.assert_allclose(solve_small(a, b), y, rtol=0, atol=1e-10 * np.max(np.abs(y)))


def _exact_solve(a, b):
    """a y = b in exact rational arithmetic (the float entries are rationals), rounded to float at the end."""
    from fractions import Fraction

    n = len(b)
    m = [[Fraction(float(x)) for x in row] + [Fraction(float(v))] for row, v in zip(a, b)]
    for i in range(n):
        pivot = next(r for r in range(i, n) if m[r][i] != 0)
        m[i], m[pivot] = m[pivot], m[i]
        for r in range(n):
            if r != i and m[r][i] != 0:
                factor = m[r][i] / m[i][i]
                m[r] = [x - factor * y for x, y in zip(m[r], m[i])]
    return np.array([float(m[i][n] / m[i][i]) for i in range(n)])


def test_small_solve_derivatives_match_lapack():
    """The tangent a⁻¹(ḃ − ȧy) that ``solve_small`` defines (``jax.custom_jvp``: the 4×4 adjugate's own, else a
    ``custom_linear_solve`` with the same Gauss–Jordan elimination, n = 2 and 6) and its reverse-mode transpose,
    also nested (second derivatives) and under vmap, equal those of ``jnp.linalg.solve``."""
    from jaxsemi._eom import solve_small

    rng = np.random.default_rng(1)
    for n in (2, 4, 6):
        a, b = rng.normal(size=(n, n)) + 3 * np.eye(n), rng.normal(size=n)
        da, db, ybar = rng.normal(size=(n, n)), rng.normal(size=n), rng.normal(size=n)
        tangents = [jax.jvp(f, (a, b), (da, db))[1] for f in (solve_small, jnp.linalg.solve)]
        np.testing.assert_allclose(*tangents, rtol=1e-12, atol=1e-12)
        for ours, lapack in zip(*(jax.vjp(f, a, b)[1](ybar) for f in (solve_small, jnp.linalg.solve))):
            np.testing.assert_allclose(ours, lapack, rtol=1e-12, atol=1e-12)
        hessians = [jax.hessian(lambda a, f=f: f(a, b) @ ybar)(a) for f in (solve_small, jnp.linalg.solve)]
        np.testing.assert_allclose(*hessians, rtol=1e-10, atol=1e-12)
    for n in (4, 6):
        a, b = rng.normal(size=(5, n, n)) + 3 * np.eye(n), rng.normal(size=(5, n))
        grads = [jax.grad(lambda a, b: jnp.sum(jnp.sin(jax.vmap(solve_small)(a, b))), (0, 1))(a, b),
                 jax.grad(lambda a, b: jnp.sum(jnp.sin(jnp.linalg.solve(a, b[..., None])[..., 0])), (0, 1))(a, b)]
        for ours, lapack in zip(*grads):
            np.testing.assert_allclose(ours, lapack, rtol=1e-12, atol=1e-12)


def test_gap_helpers():
    from jaxsemi._eigh import DEGENERACY_TOL, inverse_gaps, manifold_gap

    w = np.array([[-1.0, -0.2, 0.3, 1.5], [-2.0, 0.0, 0.0, 0.1]])
    np.testing.assert_allclose(manifold_gap(w, 1, 3), [0.8, 0.1])  # min of the gaps at both edges
    np.testing.assert_allclose(manifold_gap(w, 0, 1), [0.8, 2.0])
    assert np.all(np.isinf(np.asarray(manifold_gap(w, 0, 4))))
    inv, degenerate = inverse_gaps(np.array([0.0, 0.5 * DEGENERACY_TOL, 2.0]), 2)
    np.testing.assert_allclose(inv, [[0, 0, 0.25], [0, 0, 1 / (2 - 0.5 * DEGENERACY_TOL) ** 2], [0.25, inv[2, 1], 0]])
    np.testing.assert_array_equal(degenerate, [[1, 1, 0], [1, 1, 0], [0, 0, 1]])


def test_one_reciprocal_lattice_eager_and_traced():
    import jax

    lat = np.array([[1.5, 0.8], [1.5, -0.8]])
    b = np.asarray(js.kgrid.reciprocal(lat))
    np.testing.assert_allclose(lat @ b.T, 2 * np.pi * np.eye(2), atol=1e-13)
    model = js.models.haldane(1.0, 0.1, 1.2, 0.2)
    np.testing.assert_allclose(model.reciprocal_lattice, js.kgrid.reciprocal(model), atol=0)
    np.testing.assert_allclose(jax.jit(js.kgrid.reciprocal)(lat), b, atol=1e-13)
    # a grid built inside jit from a concrete lattice (its reciprocal vectors had been traced: NumPy failed on them)
    mean_cos2 = lambda s: s * js.kspace.integrate(lambda k: jnp.cos(k @ lat[0]) ** 2,  # noqa: E731
                                                  js.kgrid.brillouin_zone(lat, 4))
    np.testing.assert_allclose(jax.jit(mean_cos2)(1.0), mean_cos2(1.0), rtol=1e-14)
    with pytest.raises(ValueError, match="linearly dependent"):
        js.kgrid.brillouin_zone(np.array([[1.0, 0.0], [2.0, 0.0]]), 4)
    with pytest.raises(ValueError, match="continuum model"):
        js.kgrid.reciprocal(js.models.massive_dirac(1.0, 0.1))
