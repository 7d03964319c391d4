"""js.fit.hall_predictor: σ_xy(n) of a model at a carrier density, value and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsemi as js

V = 2.5  # eV·Å
RADIUS = 0.4  # 1/Å, disk cut-off
GRID = js.kgrid.disk(RADIUS, 400, 2, scale=0.01)  # isotropic model: 2 angles are exact


def dirac(p):
    return js.models.massive_dirac(V, p["delta"])


@pytest.fixture(scope="module")
def predict():
    return js.fit.hall_predictor(dirac, GRID, kT=js.units.kelvin_to_ev(5.0))


def test_value_against_closed_form(predict):
    """Electron doping of a massive Dirac cone on a disk, kT → 0: n + n₀ = (μ² − Δ²)/(4πv²) and
    σ_xy = −½ Δ (1/μ − 1/E_c) with E_c = √(Δ² + v²k_c²) (filled lower band minus the upper band's
    curvature inside the Fermi circle); n₀ enters in 10¹² cm⁻²."""
    p = {"delta": 0.03, "n0": 0.4}
    n = jnp.array([0.6, 1.0, 2.0]) * js.fit.PER_1E12_CM2
    mu = np.sqrt(p["delta"] ** 2 + 4 * np.pi * V**2 * (np.asarray(n) + p["n0"] * 1e-4))
    e_c = np.hypot(p["delta"], V * RADIUS)
    expected = -0.5 * p["delta"] * (1 / mu - 1 / e_c)
    np.testing.assert_allclose(np.asarray(predict(p, n)), expected, rtol=2e-4)
    # the residual doping is a shift of the density: the same curve without a doping entry
    plain = js.fit.hall_predictor(dirac, GRID, kT=js.units.kelvin_to_ev(5.0), doping=None)
    np.testing.assert_allclose(np.asarray(plain({"delta": 0.03}, n + 0.4e-4)), np.asarray(predict(p, n)),
                               rtol=1e-12)


def test_gradient_against_finite_differences():
    """∂σ_xy/∂(Δ, n₀) through the implicit μ(n) at 30 K, float64 central differences."""
    predict = js.fit.hall_predictor(dirac, js.kgrid.disk(RADIUS, 120, 2, scale=0.01),
                                    kT=js.units.kelvin_to_ev(30.0))
    n = jnp.array([-1.5, 0.2, 1.0]) * js.fit.PER_1E12_CM2
    w = jnp.array([1.0, -0.7, 0.4])
    loss = jax.jit(lambda p: jnp.dot(w, predict(p, n)))
    p = {"delta": 0.025, "n0": 0.15}
    grad = jax.grad(loss)(p)
    for key, h in (("delta", 1e-6), ("n0", 1e-5)):
        up, down = dict(p), dict(p)
        up[key] += h
        down[key] -= h
        fd = (float(loss(up)) - float(loss(down))) / (2 * h)
        assert abs(float(grad[key])) > 1e-3
        assert float(grad[key]) == pytest.approx(fd, rel=1e-6)


def test_bad_inputs():
    with pytest.raises(ValueError, match="kT must be > 0"):
        js.fit.hall_predictor(dirac, GRID, kT=0.0)
    with pytest.raises(TypeError, match="model_factory"):
        js.fit.hall_predictor(js.models.massive_dirac(V, 0.02), GRID, kT=1e-3)
    with pytest.raises(TypeError, match="k-grid"):
        js.fit.hall_predictor(dirac, np.zeros((10, 2)), kT=1e-3)
    predict = js.fit.hall_predictor(dirac, GRID, kT=1e-3)
    with pytest.raises(KeyError, match="doping=None"):
        predict({"delta": 0.02}, jnp.array([1e-4]))
    wrong = js.fit.hall_predictor(lambda p: p, GRID, kT=1e-3)
    with pytest.raises(TypeError, match="must return a js.Model"):
        wrong({"delta": 0.02, "n0": 0.0}, jnp.array([1e-4]))


def test_optimistix_solvers_fit_through_the_implicit_mu_solve():
    """optx.GaussNewton / LevenbergMarquardt on σ_xy(n) through μ(n): no error from the implicit
    solve inside their linearisation, and the default L-BFGS optimum (started near it: χ²
    of a Hall fit has other minima about the σ_xy peak)."""
    import optimistix as optx

    predict = js.fit.hall_predictor(dirac, js.kgrid.disk(RADIUS, 80, 2, scale=0.01),
                                    kT=js.units.kelvin_to_ev(30.0))
    n = jnp.linspace(-2.5, 2.5, 21) * js.fit.PER_1E12_CM2
    y = np.asarray(predict({"delta": 0.03, "n0": 0.2}, n)) + 0.005 * np.random.default_rng(3).normal(size=21)
    start = {"delta": 0.028, "n0": 0.18}
    ref = js.fit.fit(predict, start, n, y, 0.005, progress=False)
    for solver in (optx.GaussNewton(rtol=1e-10, atol=1e-10), optx.LevenbergMarquardt(rtol=1e-10, atol=1e-10)):
        res = js.fit.fit(predict, start, n, y, 0.005, optimizer=solver, progress=False)
        assert res.converged and res.chi2 == pytest.approx(ref.chi2, rel=1e-8)
        for k in start:
            assert float(res.params[k]) == pytest.approx(float(ref.params[k]), rel=1e-6)
