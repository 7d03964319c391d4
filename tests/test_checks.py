"""Bad input fails early with a message that says what is wrong; units are exact."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsemi as js
from jaxsemi.models._pauli import from_d


def test_non_hermitian_reports_distance():
    with pytest.raises(ValueError, match=r"not Hermitian.*1\.000e-01"):
        js.Model(lambda k, x, p: jnp.array([[0.0, p], [0.0, 1.0]], dtype=complex), 0.1, 2)


def test_shape_errors():
    with pytest.raises(ValueError, match="square"):
        js.Model(lambda k, x, p: jnp.zeros((2, 3)), 0.0, 2)
    with pytest.raises(ValueError, match="dim must be"):
        js.Model(lambda k, x, p: jnp.eye(2), 0.0, 4)
    with pytest.raises(ValueError, match="lattice must have shape"):
        js.Model(lambda k, x, p: jnp.eye(2), 0.0, 2, lattice=np.eye(3))
    model = js.models.qwz(1.0)
    with pytest.raises(ValueError, match=r"k must have shape \(\.\.\., 2\)"):
        js.berry_curvature(model, jnp.zeros((4, 3)))
    with pytest.raises(ValueError, match="kind must be one of"):
        js.berry_curvature(model, jnp.zeros(2), kind="kq")


def test_non_finite_parameters_and_points():
    with pytest.raises(ValueError, match="params.*NaN or inf"):
        js.models.qwz(np.nan)
    with pytest.raises(ValueError, match="k contains NaN"):
        js.eigh(js.models.qwz(1.0), jnp.array([np.inf, 0.0]))


def test_bad_temperature_and_grid():
    model = js.models.massive_dirac(1.0, 0.1)
    grid = js.kgrid.disk(1.0, 8, 4)
    with pytest.raises(ValueError, match="kT must be >= 0"):
        js.hall_conductivity(model, 0.0, grid, kT=-0.01)
    with pytest.raises(ValueError, match="at least 2 points"):
        js.kgrid.brillouin_zone(np.eye(2), 1)
    with pytest.raises(ValueError, match="at least 2 points"):
        js.kgrid.disk(1.0, 1, 8)
    with pytest.raises(ValueError, match="continuum model"):
        js.kgrid.brillouin_zone(model, 8)


def test_host_and_jax_inputs_give_the_same_result():
    """Python numbers and NumPy arrays are checked and broadcast in NumPy (``_checks.as_array``), JAX arrays in
    JAX: the results agree, and a NaN, a negative kT or a complex value is refused either way."""
    model = js.models.massive_dirac(1.0, 0.1, tilt=0.2)
    grid = js.kgrid.disk(1.0, 8, 4, scale=0.1)
    host = dict(field=[[0.01, 0.0], [0.0, 0.02]], mu=0.2, tau=20.0, kT=0.01)
    on_device = {key: jnp.asarray(value) for key, value in host.items()}
    for fn in (js.transport.current, js.transport.conductivity):
        a, b = (fn(model, d["field"], d["mu"], d["tau"], grid, kT=d["kT"], check=False) for d in (host, on_device))
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    mus = np.array([-0.2, 0.0, 0.3])
    np.testing.assert_array_equal(np.asarray(js.hall_conductivity(model, mus, grid, kT=0.01)),
                                  np.asarray(js.hall_conductivity(model, jnp.asarray(mus), grid, kT=jnp.asarray(0.01))))
    for mu in (np.nan, jnp.asarray(np.nan)):
        with pytest.raises(ValueError, match="mu contains NaN"):
            js.hall_conductivity(model, mu, grid)
    for kT in (-0.01, jnp.asarray(-0.01)):
        with pytest.raises(ValueError, match="kT must be >= 0"):
            js.transport.current(model, [0.01, 0.0], 0.2, 20.0, grid, kT=kT)
    for mu in (0.2 + 0.1j, jnp.asarray(0.2 + 0.1j)):
        with pytest.raises(TypeError, match="expected real values, got complex"):
            js.transport.current(model, [0.01, 0.0], mu, 20.0, grid, kT=0.01)
        with pytest.raises(TypeError, match="expected real values, got complex"):  # at trace time
            jax.jit(lambda m: js.hall_conductivity(model, m, grid, kT=0.01))(mu)
    with pytest.raises(ValueError, match="field must be real"):
        js.transport.current(model, [0.01j, 0.0], 0.2, 20.0, grid, kT=0.01)


def test_manifold_indices():
    model = js.models.haldane(1.0, 0.1, 1.0, 0.0)
    with pytest.raises(ValueError, match="out of range"):
        js.nonabelian_curvature(model, jnp.zeros(2), [1, 2])
    with pytest.raises(ValueError, match="contiguous"):
        js.chern_number(
            js.Model(lambda k, x, p: jnp.diag(jnp.arange(4.0) * p).astype(complex), 1.0, 2, np.eye(2)), [0, 2], 4
        )


def test_manifold_gap_closing_says_where():
    model = js.models.qwz(2.0)  # gap closes at k = (π, π)
    with pytest.raises(ValueError, match=r"bands \[0, 1\) and the remaining bands closes on the grid.*k = \[3\.14"):
        js.chern_number(model, 0, 8)
    dirac = js.Model(lambda k, x, p: from_d(0.0, k[0], k[1], p), 0.0, 2)
    with pytest.raises(ValueError, match=r"closes on the grid"):
        js.nonabelian_curvature(dirac, jnp.array([[0.1, 0.0], [0.0, 0.0]]), 0)


def test_units_exact():
    assert js.units.E2_OVER_H_SI == pytest.approx(3.8740458649e-5, rel=1e-10)
    assert js.units.e2h_to_siemens(1.0) == pytest.approx(3.8740458649e-5, rel=1e-10)
    # e²/h in e/(V·fs) times e/fs→A gives S
    assert js.units.E2_OVER_H_INTERNAL * js.units.E_PER_FS_TO_A == pytest.approx(3.8740458649e-5, rel=1e-10)
    assert js.units.current_2d_to_A_per_m(1.0) == pytest.approx(1.602176634e6)
    assert js.units.kelvin_to_ev(300.0) == pytest.approx(0.025852, rel=1e-4)
    assert js.units.v_per_m_to_v_per_angstrom(1e8) == pytest.approx(0.01)
    assert js.units.to_e2_over_h(js.units.from_e2_over_h(0.37)) == pytest.approx(0.37)


def test_suite_approx_refuses_jax_arrays():
    """tests/conftest.py makes pytest.approx refuse JAX arrays on either side (pytest 9.2 breaks
    on them with rel=/abs=), so a test that forgets float()/np.asarray fails on every pytest."""
    for compare in (lambda: 1.0 == pytest.approx(jnp.asarray(1.0), rel=1e-6),
                    lambda: jnp.asarray([1.0]) == pytest.approx([1.0]),
                    lambda: {"a": jnp.asarray(1.0)} == pytest.approx({"a": 1.0})):
        with pytest.raises(TypeError, match="float"):
            compare()
    assert float(jnp.asarray(1.0)) == pytest.approx(1.0) and np.asarray(jnp.ones(2)) == pytest.approx([1.0, 1.0])
    assert 1.1 != pytest.approx(1.0)


# --------------------------------------------------------------- checks that survive jax.jit

DISK = js.kgrid.disk(1.0, 8, 4)


def _hall(mu=0.0, kT=0.0, x=None, model=None):
    return js.hall_conductivity(model or js.models.massive_dirac(1.0, 0.1), mu, DISK, kT=kT, x=x)


@pytest.mark.parametrize("kw,match", [
    ({"kT": -0.01}, "kT must be >= 0 eV"),
    ({"kT": np.nan}, "kT contains NaN or inf"),
    ({"mu": np.inf}, "mu contains NaN or inf"),
    ({"x": np.array([np.nan, 0.0])}, "x contains NaN or inf"),
])
def test_hall_value_checks_eager_jit_vmap_grad(kw, match):
    name, bad = next(iter(kw.items()))
    good = {"kT": 0.01, "mu": 0.0, "x": np.zeros(2)}[name]
    f = lambda v: _hall(**{name: v})  # noqa: E731
    with pytest.raises(ValueError, match=match):
        f(bad)
    with pytest.raises(Exception, match=match):
        jax.block_until_ready(jax.jit(f)(bad))
    batch = np.stack([good, bad]) if name == "x" else np.array([good, bad])
    with pytest.raises(Exception, match=match):
        jax.block_until_ready(jax.jit(jax.vmap(f))(batch))
    if name != "x":
        with pytest.raises(Exception, match=match):
            jax.block_until_ready(jax.jit(jax.grad(f))(bad))
    np.testing.assert_allclose(float(jax.jit(f)(good)), float(f(good)), rtol=1e-12)  # good input passes


def test_non_finite_model_parameters_under_jit_and_grad():
    sigma = lambda d: _hall(model=js.models.massive_dirac(1.0, d))  # noqa: E731  (model built inside)
    with pytest.raises(ValueError, match=r"params\['delta'\] contains NaN"):
        jax.grad(sigma)(np.nan)
    with pytest.raises(Exception, match=r"params\['delta'\] contains NaN"):
        jax.block_until_ready(jax.jit(sigma)(np.nan))
    model = js.models.massive_dirac(1.0, 0.1)  # a model passed in with bad parameters
    bad = model.with_params({**model.params, "v": jnp.asarray(np.inf)})
    with pytest.raises(ValueError, match=r"model\.params\['v'\] contains NaN or inf"):
        _hall(model=bad)
    with pytest.raises(Exception, match=r"model\.params\['v'\] contains NaN or inf"):
        jax.block_until_ready(jax.jit(lambda m: _hall(model=m))(bad))
    with pytest.raises(Exception, match=r"k contains NaN"):
        jax.block_until_ready(jax.jit(lambda k: js.berry_curvature(model, k))(jnp.array([[0.1, np.nan]])))


def test_gap_closing_chern_under_jit_and_vmap():
    with pytest.raises(Exception, match=r"bands \[0, 1\) and the remaining bands closes on the grid"):
        jax.block_until_ready(jax.jit(lambda m: js.chern_number(js.models.qwz(m), 0, 8))(2.0))
    with pytest.raises(Exception, match="closes on the grid"):
        jax.block_until_ready(jax.vmap(lambda m: js.chern_number(js.models.qwz(m), 0, 8))(
            jnp.array([1.0, 2.0])))
    phases = jax.vmap(lambda m: js.chern_number(js.models.qwz(m), 0, 12))(jnp.array([-3.0, -1.0, 1.0, 3.0]))
    np.testing.assert_allclose(phases, [0.0, 1.0, -1.0, 0.0], atol=1e-9)


# ------------------------------------------------------------------ Chern numbers that lie

def test_chern_nan_raises_and_unresolved_gap_warns():
    """t1 = 0: the gap closes on lines between the grid points (d ∥ z everywhere else)."""
    model = js.models.haldane(0.0, 0.1, 1.2, 0.2)
    for n in (24, 31):
        with pytest.raises(ValueError, match="FHS Chern number of bands \\[0, 1\\) is NaN"):
            js.chern_number(model, 0, n)
        with pytest.warns(js.ChernWarning, match="gap to the other bands is not resolved"):
            assert float(js.chern_number(model, 0, n, method="kubo")) == 0.0  # the silent wrong answer
    with pytest.raises(Exception, match="Chern number of bands .* is NaN"):
        jax.block_until_ready(jax.jit(lambda t1: js.chern_number(js.models.haldane(t1, 0.1, 1.2, 0.2), 0, 24))(0.0))


def test_chern_coarse_grid_warns_resolved_does_not():
    qwz = js.models.qwz(1.0)  # C = -1
    with pytest.warns(js.ChernWarning, match="fewer than 4 points per axis"):
        assert abs(float(js.chern_number(qwz, 0, 2))) < 1e-12  # 0: wrong, and now flagged
    with pytest.warns(js.ChernWarning, match="Kubo value is farther than 0.01 from an integer"):
        js.chern_number(qwz, 0, 5, method="kubo")  # −0.87
    near = js.models.qwz(-1.8)  # gap 0.4 eV at Γ, v = 1 eV·Å: needs dk ≲ 0.1 1/Å
    with pytest.warns(js.ChernWarning, match="not resolved"):
        js.chern_number(near, 0, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(js.chern_number(qwz, 0, 12)) == pytest.approx(-1.0, abs=1e-9)
        assert float(js.chern_number(near, 0, 60)) == pytest.approx(1.0, abs=1e-9)
        assert float(js.chern_number(qwz, 0, 40, method="kubo")) == pytest.approx(-1.0, abs=1e-3)


# ------------------------------------------------------------------------- Hermiticity

def _leaky(center, width=0.05, lattice=None):
    """QWZ-like d·σ plus an anti-Hermitian i·0.5·exp(−|k − center|²/width²) σ_z."""
    def h(k, x, p):
        g = 0.5 * jnp.exp(-jnp.sum((k - jnp.asarray(center)) ** 2) / width**2)
        return from_d(0.0, jnp.sin(k[0]), jnp.sin(k[1]), p + jnp.cos(k[0]) + jnp.cos(k[1])) \
            + 1j * g * jnp.diag(jnp.array([1.0, -1.0]))
    return h


def test_non_hermitian_near_gamma_is_caught():
    for lattice in (None, np.eye(2)):  # continuum (k = 0 checked) and lattice (Γ and zone boundary)
        with pytest.raises(ValueError, match=r"not Hermitian at k = \[0\. 0\.\]"):
            js.Model(_leaky((0.0, 0.0)), 1.0, 2, lattice)
    with pytest.raises(Exception, match="not Hermitian"):  # built inside jit: checked when it runs
        jax.block_until_ready(jax.jit(lambda m: js.Model(_leaky((0.0, 0.0)), m, 2).params)(1.0))
    with pytest.raises(ValueError, match=r"not Hermitian at k = \[3\.14"):  # zone corner (π, π)
        js.Model(_leaky((np.pi, np.pi)), 1.0, 2, np.eye(2))


def test_non_hermitian_on_the_grid_is_caught():
    k0 = np.array([0.37, -0.21])  # far from the probe points of Model
    model = js.Model(_leaky(k0, width=0.02), 1.0, 2)
    with pytest.raises(ValueError, match=r"not Hermitian at k = \[ 0\.37 -0\.21\]"):
        js.berry_curvature(model, np.array([[0.1, 0.1], k0]))
    grid = js.KGrid(jnp.asarray(np.array([k0, [0.5, 0.5]])), jnp.ones(2))
    with pytest.raises(ValueError, match="not Hermitian"):
        js.hall_conductivity(model, 0.0, grid)
    with pytest.raises(Exception, match="not Hermitian"):
        jax.block_until_ready(jax.jit(lambda g: js.hall_conductivity(model, 0.0, g))(grid))


# ------------------------------------------------------------------ clear input errors

def test_bad_grids_name_the_argument():
    with pytest.raises(ValueError, match=r"KGrid points contains NaN"):
        js.KGrid(jnp.array([[0.0, np.nan]]), jnp.ones(1))
    with pytest.raises(ValueError, match=r"KGrid weights contains NaN"):
        js.KGrid(jnp.zeros((1, 2)), jnp.array([np.nan]))
    with pytest.raises(ValueError, match="KGrid needs at least one point"):
        js.KGrid(jnp.zeros((0, 2)), jnp.zeros(0))
    with pytest.raises(ValueError, match="shift must be finite"):
        js.kgrid.brillouin_zone(np.eye(2), 8, shift=np.nan)
    with pytest.raises(ValueError, match=r"n must be an int or a sequence of 2 ints, got 10\.5"):
        js.kgrid.brillouin_zone(js.models.qwz(1.0), 10.5)
    model = js.models.qwz(1.0)
    bad = js.KGrid(jnp.zeros((2, 2)), jnp.ones(2))
    bad = eqx.tree_at(lambda g: g.weights, bad, jnp.array([1.0, np.inf]))  # past the constructor
    with pytest.raises(ValueError, match=r"grid\.weights contains NaN or inf"):
        js.hall_conductivity(model, 0.0, bad)
    with pytest.raises(Exception, match=r"grid\.weights contains NaN or inf"):
        jax.block_until_ready(jax.jit(lambda g: js.hall_conductivity(model, 0.0, g))(bad))
    with pytest.raises(Exception, match=r"grid\.weights contains NaN or inf"):
        jax.block_until_ready(jax.jit(lambda g: js.integrate(lambda k: k[0], g))(bad))


def test_wrong_types_name_the_argument():
    model = js.models.qwz(1.0)
    grid = js.kgrid.brillouin_zone(model, 4)
    for call in (lambda: js.hall_conductivity("qwz", 0.0, grid), lambda: js.chern_number("qwz", 0, 8),
                 lambda: js.berry_curvature("qwz", jnp.zeros(2))):
        with pytest.raises(TypeError, match="model must be a jaxsemi.Model, got str"):
            call()
    for call in (lambda: js.hall_conductivity(model, 0.0, grid.points), lambda: js.integrate(jnp.sin, grid.points)):
        with pytest.raises(TypeError, match=r"grid must be a k-grid .* got ArrayImpl of shape \(16, 2\)"):
            call()


def test_x_dependence_is_read_once_per_model_structure():
    """``depends_on_x`` (which picks the textured transport and wavepacket paths) is right for uniform and
    textured models, also inside jit, and traced once per (Hamiltonian, parameter shapes): new parameter values
    reuse the answer, a new structure does not."""
    from jaxsemi._model import _cached_x_dependence, depends_on_x

    uniform, textured = js.models.massive_dirac(1.0, 0.1), js.models.massive_dirac(1.0, 0.1, texture_G=(0.1, 0.0))
    assert not depends_on_x(uniform) and depends_on_x(textured)
    before = _cached_x_dependence.cache_info()
    assert not depends_on_x(uniform.with_params({**uniform.params, "delta": jnp.asarray(0.3)}))
    assert jax.jit(lambda m: jnp.asarray(depends_on_x(m)))(textured)
    after = _cached_x_dependence.cache_info()
    assert (after.hits - before.hits, after.misses - before.misses) == (2, 0)

    def h(k, x, p):  # x enters only through a product with a parameter
        return from_d(p["m"], p["a"] * x[0], k[0], 0.0)

    model = js.Model(h, {"m": 0.1, "a": 0.0}, dim=2)  # a = 0: x still enters the expression
    assert depends_on_x(model)
    assert not depends_on_x(js.Model(lambda k, x, p: from_d(p["m"], k[1], k[0], 0.0), {"m": 0.1}, dim=2))
