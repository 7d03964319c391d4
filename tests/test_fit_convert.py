"""js.fit conversions against hand-computed values, closed forms and a simulated lock-in."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate

import jaxsemi as js

E2H = 3.8740458649e-5  # e²/h in S (exact 2019 SI: e²/h with e, h exact)
E = 1.602176634e-19  # C, exact


def test_si_constants_are_exact():
    assert js.units.E2_OVER_H_SI == pytest.approx(E2H, rel=1e-10)
    assert js.fit.PER_1E12_CM2 == 1e-4  # 1e12 cm^-2 = 1e12 * 1e-16 Å^-2


def test_resistivity_to_conductivity_by_hand():
    sxx, sxy = js.fit.resistivity_to_conductivity(100.0, 2000.0)
    assert float(sxx) == pytest.approx(100.0 / (100.0**2 + 2000.0**2), rel=1e-14)
    assert float(sxy) == pytest.approx(-2000.0 / 4.01e6, rel=1e-14)
    # ν = 2 quantum Hall plateau: ρ_xx = 0, ρ_xy = h/(2e²) = 12906.4037... Ω → σ_xy = −2 e²/h
    sxx, sxy = js.fit.resistivity_to_conductivity(0.0, 1.0 / (2 * E2H))
    assert float(sxx) == 0.0
    assert float(js.units.siemens_to_e2h(sxy)) == pytest.approx(-2.0, rel=1e-10)
    # anisotropic: σ_xx = ρ_yy / (ρ_xx ρ_yy + ρ_xy²)
    sxx, _ = js.fit.resistivity_to_conductivity(100.0, 50.0, 400.0)
    assert float(sxx) == pytest.approx(400.0 / (4e4 + 2500.0), rel=1e-14)


def test_hall_bar_sheet_resistivity_by_hand():
    rho_xx, rho_xy = js.fit.sheet_resistivity(500.0, 20e-6, 5e-6, r_xy=-300.0)
    assert float(rho_xx) == pytest.approx(125.0)  # R W/L = 500 * 5/20
    assert float(rho_xy) == -300.0
    with pytest.raises(ValueError, match="> 0"):
        js.fit.sheet_resistivity(1.0, 0.0, 1.0)


def test_onsager_symmetrisation_separates_even_and_odd_parts():
    b = np.linspace(-2.0, 2.0, 41)
    y = 1000.0 + 30.0 * b + 5.0 * b**2 + 0.7 * b**3
    np.testing.assert_allclose(js.fit.symmetrize_field(b, y, "even"), 1000.0 + 5.0 * b**2, atol=1e-9)
    np.testing.assert_allclose(js.fit.symmetrize_field(b, y, "odd"), 30.0 * b + 0.7 * b**3, atol=1e-9)


def test_antisymmetrisation_of_hysteretic_sweeps():
    """Anomalous Hall loop: ρ_up(B) = R0 B + ρ_A s_up(B), ρ_down(B) = R0 B − ρ_A s_up(−B)."""
    b_up = np.linspace(-1.0, 1.0, 201)
    b_down = b_up[::-1]
    s_up = np.tanh((b_up - 0.3) / 0.05)  # magnetisation switches at +0.3 T going up
    rho_up = 50.0 * b_up + 800.0 * s_up + 7.0  # + an even offset (misaligned contacts)
    rho_down = 50.0 * b_down - 800.0 * np.tanh((-b_down - 0.3) / 0.05) + 7.0
    anti = js.fit.symmetrize_field(b_up, rho_up, "odd", b_other=b_down, y_other=rho_down)
    np.testing.assert_allclose(anti, 50.0 * b_up + 800.0 * s_up, atol=1e-9)
    with pytest.raises(ValueError, match="outside the swept range"):
        js.fit.symmetrize_field(np.linspace(-0.5, 1.0, 16), np.ones(16), "odd")
    with pytest.raises(ValueError, match="parity"):
        js.fit.symmetrize_field(b_up, rho_up, "symmetric")


def test_gate_to_density_by_hand():
    # C = 1.2e-3 F/m², ΔV = 10 V: n = 1.2e-2 / 1.602176634e-19 m^-2 = 7.4898109e16 m^-2
    n = js.fit.gate_to_density(12.0, 1.2e-3, v_cnp=2.0)
    assert float(n) == pytest.approx(1.2e-2 / E * 1e-20, rel=1e-14)
    assert float(n) / js.fit.PER_1E12_CM2 == pytest.approx(7.4898109, rel=1e-7)  # 1e12 cm^-2
    with pytest.raises(ValueError, match="capacitance"):
        js.fit.gate_to_density(1.0, -1.0)


V, DELTA, KT, RADIUS = 2.0, 0.05, 0.004, 0.3


@pytest.fixture(scope="module")
def dirac_grid():
    model = js.models.massive_dirac(V, DELTA)
    grid = js.kgrid.disk(RADIUS, 200, 2, scale=DELTA / V)
    return model, grid


def _radial_density(mu):
    """n(μ) = ∫_0^K k dk/2π [f(E₊−μ) + f(E₋−μ) − 1] for the isotropic cone (independent quad)."""
    def f(e):
        return 0.5 * (1 - np.tanh((e - mu) / (2 * KT)))

    def integrand(k):
        e = np.sqrt(V**2 * k**2 + DELTA**2)
        return k / (2 * np.pi) * (f(e) + f(-e) - 1.0)

    return scipy.integrate.quad(integrand, 0.0, RADIUS, limit=400, epsabs=1e-14, points=[0.03, 0.06])[0]


def test_carrier_density_matches_radial_integral_and_zero_t_limit(dirac_grid):
    model, grid = dirac_grid
    mu = np.array([-0.12, -0.06, 0.0, 0.07, 0.15])
    n = np.asarray(js.fit.carrier_density(model, mu, grid, KT, filled_bands=1))
    ref = np.array([_radial_density(m) for m in mu])
    np.testing.assert_allclose(n, ref, rtol=2e-6, atol=1e-12)
    # kT = 0: n = sgn μ (μ² − Δ²)/(4π v²) outside the gap (radial rule split at k_F)
    for m in (-0.12, 0.15):
        k_f = np.sqrt(m**2 - DELTA**2) / V
        split = js.kgrid.disk(RADIUS, 60, 2, scale=DELTA / V, breaks=[k_f])
        cold = float(js.fit.carrier_density(model, m, split, 0.0))
        assert cold == pytest.approx(np.sign(m) * (m**2 - DELTA**2) / (4 * np.pi * V**2), rel=1e-10)


def test_density_to_mu_inverts_and_has_implicit_derivatives(dirac_grid):
    model, grid = dirac_grid
    n = jnp.array([-3e-4, -1e-4, 5e-5, 2e-4])  # Å^-2 = −3 … 2 × 1e12 cm^-2
    mu = js.fit.density_to_mu(model, n, grid, KT)
    np.testing.assert_allclose(js.fit.carrier_density(model, mu, grid, KT), n, rtol=1e-10)

    def solve(theta):
        m = model.with_params({"v": theta[0], "delta": theta[1], "tilt": 0.0})
        return js.fit.density_to_mu(m, n * theta[3], grid, theta[2])

    theta = jnp.array([V, DELTA, KT, 1.0])
    jac = np.asarray(jax.jit(jax.jacfwd(solve))(theta))
    h = 1e-6 * np.asarray(theta)
    for i in range(4):
        fd = (np.asarray(solve(theta.at[i].add(h[i]))) - np.asarray(solve(theta.at[i].add(-h[i])))) / (2 * h[i])
        np.testing.assert_allclose(jac[:, i], fd, rtol=1e-6, atol=1e-10)
    # reverse mode agrees with forward mode
    rev = jax.jit(jax.grad(lambda t: jnp.sum(solve(t) * jnp.arange(1.0, 5.0))))(theta)
    np.testing.assert_allclose(rev, jac.T @ np.arange(1.0, 5.0), rtol=1e-10)


def test_density_to_mu_errors(dirac_grid):
    model, grid = dirac_grid
    with pytest.raises(ValueError, match="kT must be > 0"):
        js.fit.density_to_mu(model, 1e-4, grid, 0.0)
    with pytest.raises(ValueError, match="must lie in"):
        js.fit.density_to_mu(model, 1.0, grid, KT)
    # under jit the range cannot be checked before tracing: no root, NaN (as a NaN input gives)
    traced = np.asarray(jax.jit(lambda n: js.fit.density_to_mu(model, n, grid, KT))(jnp.array([1.0, 1e-4, jnp.nan])))
    assert np.isnan(traced[0]) and np.isfinite(traced[1]) and np.isnan(traced[2])
    with pytest.raises(ValueError, match="filled_bands"):
        js.fit.carrier_density(model, 0.0, grid, KT, filled_bands=3)


def test_hall_fit_loss_gradient_matches_finite_differences(dirac_grid):
    """χ² of σ_xy(n) through μ(n) (implicit solve) and js.hall_conductivity: jax.grad vs FD."""
    model, grid = dirac_grid
    n = jnp.linspace(-2e-4, 2e-4, 9)

    def predict(p, x):
        m = model.with_params({"v": p["v"], "delta": p["delta"], "tilt": 0.0})
        mu = js.fit.density_to_mu(m, x + p["n0"] * js.fit.PER_1E12_CM2, grid, p["kT"])
        return js.hall_conductivity(m, mu, grid, p["kT"])

    p = {"v": V, "delta": DELTA, "n0": 0.1, "kT": KT}
    y = np.asarray(predict({**p, "delta": 0.055, "n0": 0.0}, n))
    value_and_grad = jax.jit(jax.value_and_grad(lambda q: js.fit.chi2(predict, q, n, y, 0.01)))
    g = value_and_grad(p)[1]
    for k in p:
        h = 1e-6 * abs(p[k])
        fd = (value_and_grad({**p, k: p[k] + h})[0] - value_and_grad({**p, k: p[k] - h})[0]) / (2 * h)
        assert float(g[k]) == pytest.approx(float(fd), rel=1e-5), k


COLD_KT, COLD_R = 0.002, 0.15


@pytest.fixture(scope="module")
def cold_cone():
    """Massive Dirac cone at kT = 2 meV on a near-uniform radial grid fine enough (dk ≈ kT/4v) to
    resolve the Fermi edge; E(k = R) ≈ 0.3 eV is far above the μ ≤ 0.15 eV used."""
    return js.models.massive_dirac(V, DELTA), js.kgrid.disk(COLD_R, 300, 2, scale=COLD_R)


def _mu_cold(n, delta):
    """Sommerfeld is exact for the quadratic n₀(μ) = (μ² − Δ²)/(4πv²) (electron side, one
    valley, no spin): n = (μ² − Δ² + π²kT²/3)/(4πv²) up to terms of order exp(−(μ − Δ)/kT)."""
    return np.sqrt(delta**2 - np.pi**2 * COLD_KT**2 / 3 + 4 * np.pi * V**2 * n)


def test_second_derivatives_of_mu_of_n_match_closed_form_and_finite_differences(cold_cone):
    """d²μ/dn² and d²μ/dn dΔ through the implicit solve: exact to second order (the implicit
    function theorem applied again to the tangent), vs the Sommerfeld closed form
    μ = √(Δ² − π²kT²/3 + 4πv² n) and vs central differences of jax.grad."""
    model, grid = cold_cone

    def mu(n, delta):
        m = model.with_params({"v": V, "delta": delta, "tilt": 0.0})
        return js.fit.density_to_mu(m, n, grid, COLD_KT)

    grad = jax.jit(jax.grad(mu, argnums=(0, 1)))
    hess = jax.jit(jax.hessian(mu, argnums=(0, 1)))
    a = 4 * np.pi * V**2
    for n in (1.5e-4, 3e-4):
        m0 = _mu_cold(n, DELTA)
        assert float(mu(n, DELTA)) == pytest.approx(m0, rel=1e-6)
        (h_nn, h_nd), (h_dn, _) = hess(n, DELTA)
        assert float(h_nn) == pytest.approx(-a**2 / (4 * m0**3), rel=1e-4)  # ≈ −4e5 eV Å⁴
        assert float(h_nd) == pytest.approx(-a * DELTA / (2 * m0**3), rel=1e-4)
        assert float(h_dn) == pytest.approx(float(h_nd), rel=1e-10)
        dn, dd = 1e-7 * n, 1e-6 * DELTA
        fd_nn = (grad(n + dn, DELTA)[0] - grad(n - dn, DELTA)[0]) / (2 * dn)
        fd_nd = (grad(n, DELTA + dd)[0] - grad(n, DELTA - dd)[0]) / (2 * dd)
        assert float(h_nn) == pytest.approx(float(fd_nn), rel=1e-6)
        assert float(h_nd) == pytest.approx(float(fd_nd), rel=1e-6)


def test_hessian_of_hall_fit_loss_matches_finite_differences():
    """jax.hessian of χ²(Δ, n₀) of σ_xy(n) through μ(n) (js.fit.hall_predictor) vs central
    differences of jax.grad: the Gauss–Newton part and the curvature of μ(n) both enter."""
    predict = js.fit.hall_predictor(lambda p: js.models.massive_dirac(V, p["delta"]),
                                    js.kgrid.disk(0.4, 120, 2, scale=0.01), kT=KT)
    n = jnp.linspace(-2e-4, 2e-4, 7)
    p = {"delta": 0.04, "n0": 0.3}
    y = np.asarray(predict({"delta": 0.05, "n0": 0.0}, n))
    grad = jax.jit(jax.grad(lambda q: js.fit.chi2(predict, q, n, y, 0.01)))
    hess = jax.jit(jax.hessian(lambda q: js.fit.chi2(predict, q, n, y, 0.01)))(p)
    for k, h in (("delta", 1e-6), ("n0", 1e-5)):
        up, down = grad({**p, k: p[k] + h}), grad({**p, k: p[k] - h})
        for j in p:
            fd = (float(up[j]) - float(down[j])) / (2 * h)
            assert abs(float(hess[j][k])) > 1.0
            assert float(hess[j][k]) == pytest.approx(fd, rel=1e-5), (j, k)


def _lockin(signal, t, omega):
    """SR830-style demodulation at 2ω, rms: X = √2⟨V sin 2ωt⟩, Y = √2⟨V cos 2ωt⟩."""
    return np.sqrt(2) * np.mean(signal * np.sin(2 * omega * t)) + 1j * np.sqrt(2) * np.mean(
        signal * np.cos(2 * omega * t))


def test_second_harmonic_recovers_d2j_from_a_simulated_lockin():
    """Quasi-static sample: J_y = ½ J'' E_x², open-circuit E_y = −J_y/σ_yy, drive I₀ sin ωt."""
    d2j_si = 3.0e-9  # A·m/V²
    rho, width, length = 2000.0, 5e-6, 15e-6  # Ω (sheet), m, m
    i_rms = 10e-6
    omega = 2 * np.pi * 17.0
    t = np.linspace(0.0, 1.0, 200000, endpoint=False)  # 17 whole periods
    e_x = rho * (np.sqrt(2) * i_rms * np.sin(omega * t)) / width
    v_y = width * (-(0.5 * d2j_si * e_x**2) * rho)  # E_y = −J_y/σ_yy, σ_yy = 1/ρ
    reading = _lockin(v_y, t, omega)
    assert abs(reading.real) < 1e-6 * abs(reading.imag)  # all in −Y for a sin reference
    res = js.fit.second_harmonic_response(reading, i_rms, width=width, rho_xx=rho)
    assert float(res.d2j_de2_si) == pytest.approx(d2j_si, rel=1e-6)
    assert float(res.d2j_de2) == pytest.approx(d2j_si / 1.602176634e-14, rel=1e-6)  # e·Å/(fs·V²)
    e0 = rho * np.sqrt(2) * i_rms / width
    assert float(res.field_ratio) == pytest.approx(-0.25 * d2j_si * rho, rel=1e-6)  # E⊥(2ω)/E0²
    # voltage drive: V_∥ = E0 L (rms), same answer; peak amplitudes without √2
    by_v = js.fit.second_harmonic_response(reading, e0 * length / np.sqrt(2), width=width,
                                           drive_kind="voltage", length=length, rho_xx=rho)
    assert float(by_v.d2j_de2_si) == pytest.approx(d2j_si, rel=1e-6)
    peak = js.fit.second_harmonic_response(-reading.imag * np.sqrt(2), i_rms * np.sqrt(2), width=width,
                                           rho_xx=rho, amplitude="peak")
    assert float(peak.d2j_de2_si) == pytest.approx(d2j_si, rel=1e-6)
    # drive I₀ cos ωt, lock-in referenced to cos: cos² ωt = ½ + ½ cos 2ωt puts the signal in +X
    e_cos = rho * (np.sqrt(2) * i_rms * np.cos(omega * t)) / width
    v_cos = width * (-(0.5 * d2j_si * e_cos**2) * rho)
    cos_reading = np.sqrt(2) * np.mean(v_cos * np.cos(2 * omega * t)) + 1j * np.sqrt(2) * np.mean(
        v_cos * np.sin(2 * omega * t))
    cos_res = js.fit.second_harmonic_response(cos_reading, i_rms, width=width, rho_xx=rho, reference="cos")
    assert float(cos_res.d2j_de2_si) == pytest.approx(d2j_si, rel=1e-6)
    with pytest.warns(UserWarning, match="quadrature"):
        js.fit.second_harmonic_response(reading + abs(reading), i_rms, width=width, rho_xx=rho)
    with pytest.raises(ValueError, match="rho_xx"):
        js.fit.second_harmonic_response(reading, i_rms, width=width)
