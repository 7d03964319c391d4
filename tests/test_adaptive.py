"""Adaptive k-refinement resolves Berry-curvature hot spots with far fewer points."""

import numpy as np
import pytest

import jaxsemi as js


def test_polynomial_exactness_and_error_estimate():
    """A degree-(13, 13) polynomial is integrated exactly by one cell of both rules."""
    import jax.numpy as jnp

    dom = js.kgrid.Domain(jnp.zeros(2), jnp.ones(2), jnp.eye(2) * 2 * np.pi, jnp.zeros(2), "affine")
    res = js.integrate_adaptive(lambda k, a: (k[0] / (2 * np.pi)) ** 13 * (k[1] / (2 * np.pi)) ** 5 * a, 3.0, dom,
                                initial=1)
    np.testing.assert_allclose(res.value, 3.0 / 14 / 6, rtol=1e-13)
    assert res.n_points == 225 and res.error < 1e-13


def test_dirac_1mev_gap_to_1e6():
    v, delta, k_max = 1.0, 0.0005, 1.0  # 1 meV gap, hot spot of width Δ/v = 5e-4 1/Å
    model = js.models.massive_dirac(v, delta)
    res = js.hall_conductivity_adaptive(model, 0.0, js.kgrid.disk_domain(k_max), rtol=1e-6)
    exact = -0.5 * (1 - delta / np.hypot(v * k_max, delta))
    assert abs(res.value - exact) <= 1e-6 * abs(exact)
    assert abs(res.value - exact) <= res.error + 1e-15  # the estimate bounds the true error
    assert res.n_points < 300_000
    # a uniform polar grid with as many points is far off
    n_r = int(np.sqrt(res.n_points))
    uniform = js.KGrid(*_uniform_polar(k_max, n_r, 4))
    assert abs(float(js.hall_conductivity(model, 0.0, uniform)) - exact) > 1e-4


def _uniform_polar(k_max, n_r, n_t):
    import jax.numpy as jnp

    r = (np.arange(n_r) + 0.5) * k_max / n_r
    t = 2 * np.pi * np.arange(n_t) / n_t
    rr, tt = np.meshgrid(r, t, indexing="ij")
    pts = np.stack([rr * np.cos(tt), rr * np.sin(tt)], -1).reshape(-1, 2)
    w = np.repeat(r * (k_max / n_r) / (2 * np.pi * n_t), n_t)
    return jnp.asarray(pts), jnp.asarray(w)


@pytest.mark.timeout(300)
def test_haldane_near_transition_to_1e6():
    a = 3 * np.sqrt(3) * 0.1
    model = js.models.haldane(1.0, 0.1, np.pi / 2, a - 0.002)  # Dirac mass 2 meV at one valley
    res = js.hall_conductivity_adaptive(model, 0.0, rtol=1e-6)
    assert abs(res.value + 1.0) < 1e-6  # Chern insulator: exactly −1 e²/h
    uniform_n = int(np.sqrt(res.n_points))
    uniform = float(js.hall_conductivity(model, 0.0, js.kgrid.brillouin_zone(model, uniform_n)))
    assert abs(uniform + 1.0) > 1e-2, uniform


def _dirac_sigma(delta, **kw):
    model = js.models.massive_dirac(1.0, delta)
    return js.hall_conductivity_adaptive(model, 0.0, js.kgrid.disk_domain(1.0), **kw)


def test_gradient_through_fixed_cells_matches_closed_form_and_finite_differences():
    """σ = −½(1 − Δ/E), E = √(v²k_max² + Δ²): dσ/dΔ = v²k_max²/(2E³)."""
    import jax

    delta = 0.1
    grad = jax.grad(lambda d: _dirac_sigma(d, rtol=1e-10).value)(delta)
    h = 1e-5
    fd = (_dirac_sigma(delta + h, rtol=1e-10).value - _dirac_sigma(delta - h, rtol=1e-10).value) / (2 * h)
    np.testing.assert_allclose(float(grad), 0.5 / np.hypot(1.0, delta) ** 3, rtol=1e-9)
    np.testing.assert_allclose(float(grad), fd, rtol=1e-7)
    with pytest.raises(TypeError, match="cannot run on traced inputs.*outside jit.*fixed grid"):
        jax.jit(lambda d: _dirac_sigma(d).value)(delta)
    with pytest.raises(TypeError, match="cannot run on traced inputs"):
        jax.vmap(lambda d: _dirac_sigma(d).value)(np.array([0.1, 0.2]))


@pytest.mark.parametrize("kw,match", [({"rtol": 0.0}, "rtol must be > 0"), ({"atol": -1e-3}, "atol must be >= 0"),
                                      ({"max_points": 3000}, "max_points must allow")])
def test_bad_tolerances_name_the_argument(kw, match):
    with pytest.raises(ValueError, match=match):
        _dirac_sigma(0.1, **kw)


def test_budget_running_out_warns_and_says_so():
    with pytest.warns(js.ConvergenceWarning, match=r"stopped at max_points = 5000: estimated error"):
        res = _dirac_sigma(0.0005, rtol=1e-12, max_points=5000)
    assert not res.converged and "tolerance not met" in str(res)
    assert res.error > 1e-12 * abs(res.value)
    assert _dirac_sigma(0.1, rtol=1e-6).converged
