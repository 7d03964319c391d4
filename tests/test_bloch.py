"""Grid-structured Bloch sums: the same 𝓗, ∂𝓗/∂k, σ_xy, Chern numbers and gradients as the
per-point path, taken automatically, sharded over devices."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsemi as js
from jaxsemi import _bloch
from jaxsemi.transport import _relaxation
from jaxsemi._eigh import d_vector
from jaxsemi._geometry import hamiltonian_and_derivatives
from jaxsemi.bench.eigh_overhead import random_hr, write_hr

ROOT = pathlib.Path(__file__).resolve().parents[1]
S3 = np.sqrt(3.0)


def haldane_tb(t1=1.0, t2=0.1, phi=1.2, mass=0.2):
    """``js.models.haldane`` written as a generic tight-binding model (A at (1/3, 0), B at (0, 2/3))."""
    hops = [(t1, 0, 1, (0, 0)), (t1, 0, 1, (1, -1)), (t1, 0, 1, (0, -1))]
    for r in [(1, 0), (0, -1), (-1, 1)]:
        hops += [(t2 * np.exp(1j * phi), 0, 0, r), (t2 * np.exp(-1j * phi), 1, 1, r)]
    return js.models.tight_binding([[1.5, -S3 / 2], [1.5, S3 / 2]], [[1 / 3, 0.0], [0.0, 2 / 3]], hops,
                                   [mass, -mass])


def random_tb(dim, n_orb, seed, reach=1):
    """Random tight-binding model: skewed lattice, orbitals off the origin, bonds up to ``reach`` cells."""
    rng = np.random.default_rng(seed)
    lattice = np.eye(dim) + 0.3 * np.tri(dim, k=-1)
    cells = np.stack(np.meshgrid(*[np.arange(-reach, reach + 1)] * dim, indexing="ij"), -1).reshape(-1, dim)
    hops = [(complex(rng.normal(), rng.normal()) * 0.5, i, j, tuple(int(v) for v in r))
            for r in cells for i in range(n_orb) for j in range(n_orb)
            if (tuple(r) > (0,) * dim) or (not any(r) and i < j)]
    return js.models.tight_binding(lattice, rng.uniform(0, 1, (n_orb, dim)), hops, rng.normal(size=n_orb))


def random_wannier(tmp_path, n_bands=4, seed=3):
    """The benchmark's random Wannier model (401 R vectors) on a skewed lattice, via hr.dat."""
    path = tmp_path / "random_hr.dat"
    write_hr(path, *random_hr(n_bands, seed))
    return js.models.from_wannier90(path, [[1.0, 0.0, 0.0], [0.3, 1.1, 0.0], [0.0, 0.0, 1.0]], dim=2)


def per_point(grid):
    """The same points and weights as an explicit grid: the per-point path."""
    return js.KGrid(grid.points, grid.weights)


def assert_matrices_agree(model, grid):
    st = _bloch.structure(model, grid)
    assert st is not None
    _, hr, _ = _bloch.lattice_form(model)
    dense, lines = _bloch._dense(hr, st), jnp.arange(grid.size // grid.shape[-1])
    h, dk = _bloch._line_matrices(dense, st, model.lattice, grid, lines)
    h_ref, dk_ref, _ = jax.vmap(lambda k: hamiltonian_and_derivatives(model, k, k * 0, False))(grid.points)
    scale = max(1.0, float(jnp.max(jnp.abs(dk_ref))))
    assert float(jnp.max(jnp.abs(h.reshape(h_ref.shape) - h_ref))) < 1e-12 * scale
    assert float(jnp.max(jnp.abs(dk.reshape(dk_ref.shape) - dk_ref))) < 1e-12 * scale
    if model.n_bands == 2:  # the two-band path: d-vectors of 𝓗 and of each ∂𝓗/∂k_α
        d0, *vectors = _bloch._d_vectors(*_bloch._line_sources(dense, st, model.lattice, grid, lines))
        ref = [d_vector(m) for m in [h_ref] + [dk_ref[:, alpha] for alpha in range(model.dim)]]
        np.testing.assert_allclose(np.ravel(d0), np.asarray(ref[0][0]), rtol=0, atol=1e-12 * scale)
        assert len(vectors) == 1 + model.dim
        for v, (_, v_ref) in zip(vectors, ref):  # components, the points last in grid order
            np.testing.assert_allclose(np.stack([np.ravel(c) for c in v], -1), np.asarray(v_ref), rtol=0,
                                       atol=1e-12 * scale)


CASES = {
    "haldane": lambda tmp: js.models.haldane(1.0, 0.1, 1.2, 0.2),
    "haldane_tb": lambda tmp: haldane_tb(),
    "qwz": lambda tmp: js.models.qwz(1.0),
    "three_orbital": lambda tmp: random_tb(2, 3, 1, reach=2),
    "wannier": random_wannier,
    "three_d": lambda tmp: random_tb(3, 2, 2),
    # beyond SMALL_N bands the sums run over upper triangles (with and without orbital positions)
    "wannier_12": lambda tmp: random_wannier(tmp, n_bands=12),
    "ten_orbital": lambda tmp: random_tb(2, 10, 4),
}


@pytest.mark.parametrize("name", CASES)
def test_grid_path_matches_per_point_path(name, tmp_path):
    model = CASES[name](tmp_path)
    shape = (5, 4, 3) if model.dim == 3 else (9, 7)
    grid = js.kgrid.brillouin_zone(model, shape, shift=0.25)
    assert_matrices_agree(model, grid)
    mu = jnp.array([-0.7, 0.0, 0.4])
    kT = jnp.array([0.0, 0.05, 0.0])
    fast = js.hall_conductivity(model, mu, grid, kT)
    slow = js.hall_conductivity(model, mu, per_point(grid), kT)
    np.testing.assert_allclose(np.asarray(fast), np.asarray(slow), rtol=0, atol=1e-12)


def test_hall_and_chern_of_imported_haldane_unchanged():
    builtin, tb = js.models.haldane(1.0, 0.1, 1.2, 0.2), haldane_tb()
    grid = js.kgrid.brillouin_zone(tb, 48)
    mu = jnp.array([-1.0, 0.0, 0.5])
    np.testing.assert_allclose(np.asarray(js.hall_conductivity(tb, mu, grid)),
                               np.asarray(js.hall_conductivity(builtin, mu, js.kgrid.brillouin_zone(builtin, 48))),
                               atol=1e-12)
    assert float(js.hall_conductivity(tb, 0.0, grid)) == pytest.approx(-1.0, abs=1e-5)  # C = +1 in the gap
    assert float(js.chern_number(tb, 0, 24, method="kubo")) == pytest.approx(1.0, abs=1e-3)
    assert float(js.chern_number(js.models.qwz(1.0), 0, 24, method="kubo")) == pytest.approx(-1.0, abs=1e-3)


def test_fast_path_is_taken_only_where_it_applies(tmp_path):
    tb = random_tb(2, 3, 1)
    grid = js.kgrid.brillouin_zone(tb, (6, 5))
    before = _bloch.TRACES["count"]
    js.hall_conductivity(tb, 0.0, grid)
    js.chern_number(tb, 0, (7, 5), method="kubo")
    assert _bloch.TRACES["count"] == before + 2
    js.hall_conductivity(tb, 0.0, per_point(grid))
    assert _bloch.TRACES["count"] == before + 2
    # under jax.jit too, with μ or the parameters traced (their checks ride on them, the grid stays concrete;
    # grids of new shapes, so that each call traces the sum anew)
    mu = jnp.array([-0.3, 0.0, 0.2])
    grids = [js.kgrid.brillouin_zone(tb, shape) for shape in ((5, 4), (4, 6))]
    by_mu = jax.jit(lambda m: js.hall_conductivity(tb, m, grids[0]))(mu)
    by_params = jax.jit(lambda p: js.hall_conductivity(tb.with_params(p), mu, grids[1]))(tb.params)
    assert _bloch.TRACES["count"] == before + 4
    for value, g in zip((by_mu, by_params), grids):
        np.testing.assert_allclose(np.asarray(value), np.asarray(js.hall_conductivity(tb, mu, per_point(g))),
                                   rtol=0, atol=1e-13)
    assert _bloch.structure(tb, grid) is not None
    assert _bloch.structure(random_wannier(tmp_path), js.kgrid.brillouin_zone(random_wannier(tmp_path), 4))
    # other grids and other models go point by point
    assert _bloch.structure(tb, per_point(grid)) is None
    assert _bloch.structure(tb, js.kgrid.brillouin_zone(2 * np.asarray(tb.lattice), 6)) is None
    dirac = js.models.massive_dirac(1.0, 0.1, texture_G=[0.1, 0.0])
    assert _bloch.structure(dirac, js.kgrid.disk(1.0, 4, 4)) is None
    custom = js.Model(lambda k, x, p: p["m"] * jnp.diag(jnp.cos(k)), {"m": 1.0}, 2, np.eye(2))
    assert _bloch.structure(custom, js.kgrid.brillouin_zone(custom, 4)) is None


def test_gradients_flow_into_hoppings(tmp_path):
    """Forward and reverse derivatives of σ_xy in the hoppings and H(R): equal on both paths
    and to central finite differences (float64)."""
    kT = 0.05
    for model in (random_tb(2, 3, 4), random_tb(2, 2, 6), random_wannier(tmp_path, n_bands=3, seed=5)):
        grid = js.kgrid.brillouin_zone(model, (8, 6))

        def sigma(p, g):
            return js.hall_conductivity(model.with_params(p), 0.1, g, kT)

        fast = jax.grad(sigma)(model.params, grid)
        slow = jax.grad(sigma)(model.params, per_point(grid))
        for a, b in zip(jax.tree_util.tree_leaves(fast), jax.tree_util.tree_leaves(slow)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-11)
        rng = np.random.default_rng(0)
        direction = jax.tree_util.tree_map(  # relative changes: H(R) keeps its decay
            lambda p: p * jnp.asarray(rng.normal(size=p.shape) + (1j * rng.normal(size=p.shape) if jnp.iscomplexobj(p) else 0)),
            model.params)
        if "hr" in direction:  # keep H(R) Hermitian: H(−R) = H(R)† pairs move together
            r = np.asarray(_bloch.structure(model, grid).r_red)
            partner = np.array([np.flatnonzero(np.all(r == -v, 1))[0] for v in r])
            direction = {"hr": direction["hr"] + jnp.conj(jnp.swapaxes(direction["hr"][partner], 1, 2))}
        _, jvp = jax.jvp(lambda p: sigma(p, grid), (model.params,), (direction,))
        eps = 1e-6
        shifted = [sigma(jax.tree_util.tree_map(lambda p, d: p + s * eps * d, model.params, direction), grid)
                   for s in (1, -1)]
        fd = (float(shifted[0]) - float(shifted[1])) / (2 * eps)
        assert float(jvp) == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_gradient_of_builtin_haldane_vs_finite_differences():
    grid = js.kgrid.brillouin_zone(js.models.haldane(1.0, 0.1, 1.2, 0.2), 16)

    def sigma(t2, phi, mass):
        return js.hall_conductivity(js.models.haldane(1.0, t2, phi, mass), 0.3, grid, kT=0.05)

    grads = jax.grad(sigma, argnums=(0, 1, 2))(0.1, 1.2, 0.2)
    x0, eps = np.array([0.1, 1.2, 0.2]), 1e-5
    for i, g in enumerate(grads):
        e = np.eye(3)[i] * eps
        fd = (float(sigma(*(x0 + e))) - float(sigma(*(x0 - e)))) / (2 * eps)
        assert float(g) == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_two_band_path_in_chunks_and_its_gradient():
    """The two-band path (d-vectors by per-line sums, ``_d_vectors``) over several chunks, the last padded, and
    its reverse-mode gradient in the hoppings: equal to the per-point path's."""
    tb = haldane_tb()
    grid = js.kgrid.brillouin_zone(tb, (11, 7), shift=0.25)
    mu = jnp.array([-0.2, 0.3])

    def sigma(p, g, chunk=None):
        return jnp.sum(js.hall_conductivity(tb.with_params(p), mu, g, 0.05, chunk_size=chunk) * jnp.array([1.0, 0.7]))

    fast = jax.value_and_grad(lambda p: sigma(p, grid, 21))(tb.params)  # ≤ 3 lines, even: 6 chunks of 2
    slow = jax.value_and_grad(lambda p: sigma(p, per_point(grid)))(tb.params)
    for a, b in zip(jax.tree_util.tree_leaves(fast), jax.tree_util.tree_leaves(slow)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-12)


SHARDED = """
import json, jax, jax.numpy as jnp, numpy as np, jaxsemi as js
from jaxsemi import _bloch
from jaxsemi.transport import _relaxation
rng = np.random.default_rng(1)
hops = [(complex(*rng.normal(size=2)), i, j, r) for r in [(1, 0), (0, 1), (1, -1), (2, 1)]
        for i in range(3) for j in range(3)]
tb = js.models.tight_binding([[1.0, 0.0], [0.4, 1.2]], rng.uniform(0, 1, (3, 2)), hops, rng.normal(size=3))
grid = js.kgrid.brillouin_zone(tb, (11, 6), shift=0.5)   # 11 lines: padding on 4 devices
mu = jnp.array([-0.5, 0.3])
before = _bloch.TRACES["count"]
fast = js.hall_conductivity(tb, mu, grid, 0.02, chunk_size=12)
one = js.hall_conductivity(tb, mu, grid, 0.02, chunk_size=12, mesh=jax.devices()[:1])
slow = np.asarray(js.hall_conductivity(tb, mu, js.KGrid(grid.points, grid.weights), 0.02))
print(json.dumps({"devices": sorted(d.id for d in fast.sharding.device_set), "traces": _bloch.TRACES["count"] - before,
                  "err": [float(np.max(np.abs(np.asarray(v) - slow))) for v in (fast, one)]}))
"""


@pytest.mark.timeout(300)
def test_grid_path_is_sharded_over_devices(run_on_cpu_devices):
    res = run_on_cpu_devices(SHARDED, 4)
    assert res["devices"] == [0, 1, 2, 3] and res["traces"] == 2
    assert max(res["err"]) < 1e-12, res["err"]


def test_entry_pattern_marks_exactly_the_entries_a_form_can_set(tmp_path):
    """``entry_pattern``: the entries H_ij(R) a form sets through ``assemble`` (the rest are 0 for every
    parameter value, so ``lattice_pauli`` leaves out their ρ); every entry where H(R) is a parameter or is
    changed after ``assemble``."""
    haldane = js.models.haldane(1.0, 0.15, np.pi / 2, 0.2)
    r, hr, _ = _bloch.lattice_form(haldane)
    pattern = _bloch.entry_pattern(haldane)
    assert pattern.shape == hr.shape and pattern.sum() == 20  # 6 bonds, 12 second neighbours, 2 onsite
    # zero parameters zero every entry, and other values set only marked ones
    for p in ({"t1": 0.0, "t2": 0.0, "phi": 0.0, "mass": 0.0}, {"t1": 0.7, "t2": -0.3, "phi": 0.4, "mass": 1.1}):
        nonzero = np.abs(np.asarray(_bloch.lattice_form(haldane.with_params(p))[1])) > 0
        assert not np.any(nonzero & ~pattern)
    assert np.all(np.abs(np.asarray(hr))[pattern] > 0)
    # a Haldane ρ = R + τ_j − τ_i is 0, one of 3 bonds or one of 3 second neighbours (of ±ρ one)
    assert len(_relaxation.lattice_pauli(haldane, positions=True)[0]) == 7
    assert _bloch.entry_pattern(random_wannier(tmp_path)).all()  # H(R) the parameter

    @_bloch.register(_changed_after_assemble)
    def _form(p):
        r_cart, hr = _bloch.assemble(np.array([[0.0, 0.0], [1.0, 0.0]]), [0, 0], [1, 0], p["t"] * jnp.ones(2), 2)
        return r_cart, hr + p["s"] * jnp.eye(2), np.zeros((2, 2))

    changed = js.Model(_changed_after_assemble, {"t": 1.0, "s": 0.5}, 2, np.eye(2))
    assert _bloch.entry_pattern(changed).all()


def _changed_after_assemble(k, x, p):
    """A Hamiltonian function for the registered form above; only the form is read (its pattern)."""
    return (p["t"] * jnp.array([[jnp.cos(k[0]), 0.5], [0.5, 0.0]]) + p["s"] * jnp.eye(2)).astype(complex)
