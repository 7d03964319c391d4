"""``js.wavepacket.Magnus4(phase="adiabatic")``: the drift of the band energies along a step joins the
dynamical phase, the oscillatory integrals by Levin collocation. Its Magnus exponent against closed forms
and quadrature, wide Landau–Zener sweeps against a tight reference (in a fraction of the frozen-phase
steps), textures and dense output, gap closings and bad input (gradients: test_wavepacket_magnus)."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

import jaxsemi as js
from jaxsemi.wavepacket import _magnus as M

HBAR = js.units.HBAR
wp = js.wavepacket
ADIABATIC = dict(solver=wp.Magnus4(phase="adiabatic"))
TIGHT_FROZEN = dict(solver=wp.Magnus4(), stepsize_controller=diffrax.PIDController(rtol=1e-12, atol=1e-13),
                    max_steps=100_000)


def _coef(d, f, a=(0.1, -0.05, 0.02)):
    """D(s) = Σ_p coef[p] s^p (3, 2, 2): diagonal a ∓ d/2 (d: drift of the splitting), coupling f."""
    return tuple(jnp.array([[a[p] - d[p] / 2, np.conj(f[p])], [f[p], a[p] + d[p] / 2]]) for p in range(3))


def _generators(eps, coef, tau):
    tables = M._su2_tables((eps[1] - eps[0]) / HBAR * tau)
    return (np.asarray(M._adiabatic_generator(coef, jnp.asarray(eps), tau)),
            np.asarray(M._su2_generator(jnp.stack(coef), tau, tables)))


def test_without_drift_the_adiabatic_exponent_is_the_frozen_one():
    """No drift of the splitting (D₁₁ − D₀₀ = 0): the phase is linear, the cubic collocation solves
    P' + iθP = g exactly for a quadratic coupling, so Ω equals the frozen-phase (Filon) exponent to
    rounding, over phases per sub-interval from LEVIN_MIN to 10³ rad."""
    coef = _coef((0.0, 0.0, 0.0), (0.3 + 0.1j, -0.2 + 0.05j, 0.04 - 0.02j))
    for split, tau in ((2.0, 0.4), (6.0, 0.5), (60.0, 3.0), (300.0, 2.0)):
        ada, frozen = _generators([-split / 2, split / 2], coef, tau)
        assert split * tau / HBAR >= M.LEVIN_MIN
        np.testing.assert_allclose(ada[:4], frozen, rtol=0, atol=1e-11 * np.max(np.abs(frozen)))
        assert ada[4] == 0.0


def test_below_levin_min_a_sub_interval_takes_the_frozen_generator():
    """Where the phase per sub-interval falls below LEVIN_MIN (a small splitting), the generator and its
    derivative are the frozen-phase ones (selected, not blended), with no σ_z phase."""
    coef = _coef((0.4, 0.9, -0.3), (0.3 + 0.1j, -0.2 + 0.05j, 0.04 - 0.02j))
    tan = _coef((0.1, -0.2, 0.3), (0.2j, 0.1 + 0.1j, -0.05 + 0j))
    eps, tau = jnp.array([-0.005, 0.005]), 0.6
    assert 0.01 * tau / HBAR < M.LEVIN_MIN
    tables = M._su2_tables((eps[1] - eps[0]) / HBAR * tau)
    ada = jax.jvp(lambda c: M._adiabatic_generator(c, eps, tau), (coef,), (tan,))
    frozen = jax.jvp(lambda c: M._su2_generator(jnp.stack(c), tau, tables), (coef,), (tan,))
    for a, f in zip(ada, frozen):
        np.testing.assert_array_equal(np.asarray(a[:4]), np.asarray(f))
        assert a[4] == 0.0


def test_drifting_phase_exponent_matches_quadrature():
    """With a drift (chirped phase u(s) = ∫(ε₁ − ε₀ + D₁₁ − D₀₀)ds/ħ), Ω₁ = −i(Re I σ_x + Im I σ_y),
    Ω₂'s σ_z part −Im J and the σ_z phase agree with adaptive quadrature of I = ∫e^{iu}f and
    J = ∫∫_{s₂<s₁} e^{iu₁}f₁e^{−iu₂}f̄₂ (f = D₁₀/ħ); the cubic collocation's error falls ≥ 10× per
    halving of the sub-interval (measured 84× and 185×: 8e-5 → 1e-6 at a splitting of 4 eV, 4e-5 → 2e-7
    at 40 eV, relative), the integrator's step doubling sees it."""
    d, f = (0.4, 0.9, -0.3), (0.3 + 0.1j, -0.2 + 0.05j, 0.04 - 0.02j)
    coef = _coef(d, f)
    for split, tau in ((4.0, 0.6), (40.0, 1.5)):
        u = lambda s: (split * s + d[0] * s + d[1] * s**2 / 2 + d[2] * s**3 / 3) / HBAR
        a = lambda s: np.exp(1j * u(s)) * (f[0] + f[1] * s + f[2] * s * s) / HBAR
        quad = lambda g, lo, hi: complex(*(integrate.quad(lambda s: part(g(s)), lo, hi, epsabs=1e-14, epsrel=1e-12,
                                                          limit=400)[0] for part in (np.real, np.imag)))
        errors = []
        for t in (tau, tau / 2):
            ada, _ = _generators([-split / 2, split / 2], coef, t)
            i1 = quad(a, 0.0, t)
            j2 = quad(lambda s1: a(s1) * np.conj(quad(a, 0.0, s1)), 0.0, t)
            ref = np.array([i1.real, i1.imag, -j2.imag])
            errors.append(np.max(np.abs(ada[1:4] - ref)) / np.max(np.abs(ref)))
            np.testing.assert_allclose(ada[4], -(d[0] * t + d[1] * t**2 / 2 + d[2] * t**3 / 3) / (2 * HBAR))
        assert errors[0] < 1e-4 and errors[1] < min(errors[0] / 10, 2e-6), errors


def test_levin_solve_against_a_dense_solve():
    """The collocation solve (multilinear closed form of (D + i diag θ)⁻¹) equals numpy's dense solve on
    phases the Levin branch takes (one sign, |θ| ≥ LEVIN_MIN), and its custom derivative is the
    derivative of that solve."""
    rng = np.random.default_rng(3)
    for sign in (1.0, -1.0):
        theta = sign * (M.LEVIN_MIN + rng.uniform(0, 30, 4))
        g = rng.normal(size=4) + 1j * rng.normal(size=4)
        dtheta, dg = rng.normal(size=4), rng.normal(size=4) + 1j * rng.normal(size=4)
        a = M._LEVIN_D + 1j * np.diag(theta)
        ref = np.linalg.solve(a, g)
        (pr, pi), (dpr, dpi) = jax.jvp(M._levin_solve, (jnp.asarray(theta), jnp.asarray(g.real), jnp.asarray(g.imag)),
                                       (jnp.asarray(dtheta), jnp.asarray(dg.real), jnp.asarray(dg.imag)))
        np.testing.assert_allclose(np.asarray(pr + 1j * pi), ref, rtol=1e-12, atol=0)
        np.testing.assert_allclose(np.asarray(dpr + 1j * dpi), np.linalg.solve(a, dg - 1j * dtheta * ref), rtol=1e-11)


@pytest.mark.slow  # ~2 min here: two gradient compiles
def test_shared_landau_zener_sweep_matches_the_vmapped_one():
    """K = 20, 3 trajectories as one ensemble="shared" ODE (the crossing needs the fallback, the wings do
    not): populations within 5e-7 of the vmapped adiabatic solve and 1e-5 of the LZ formula, and ∂ΣP/∂Δ
    through the shared batch within 1e-4 of the vmapped one."""
    model, K = js.models.massive_dirac(1.0, 0.3), 20.0
    ky = np.array([0.0, 0.3, 0.6])

    def run(delta, ensemble):
        m = model.with_params({**model.params, "delta": delta})
        return wp.evolve(m, jnp.zeros(2), jnp.stack([np.full(3, K), ky], -1), 2 * HBAR * K / 0.2,
                         jnp.array([0.2, 0.0]), band=0, saveat=2, ensemble=ensemble, **ADIABATIC).populations[:, -1, 1]

    shared, vmapped = np.asarray(run(0.3, "shared")), np.asarray(run(0.3, "vmap"))
    np.testing.assert_allclose(shared, vmapped, rtol=0, atol=5e-7)
    np.testing.assert_allclose(shared, np.exp(-np.pi * (0.09 + ky**2) / 0.2), rtol=0, atol=1e-5)
    g_shared, g_vmap = (float(jax.grad(lambda d: jnp.sum(run(d, e)))(0.3)) for e in ("shared", "vmap"))
    np.testing.assert_allclose(g_shared, g_vmap, rtol=1e-4)


def test_wide_landau_zener_sweep_in_a_fraction_of_the_steps():
    """K = 80 (k_x from +80 to −80 1/Å, v = 1 eV·Å, Δ = 0.3 eV, E = 0.2 V/Å), 3 trajectories at the
    default rtol 1e-8: the upper-band populations within 5e-7 of a tight frozen-phase solve and within
    1e-5 of exp(−π(Δ² + v²k_y²)/(vE)), x(t1) within 5e-4 Å (|x(t1)| up to 200 Å), ⟨χ|χ⟩ = 1 to 1e-12
    — as close as the default frozen-phase solve (measured 1.2e-7–2.3e-7 and 1.9e-4 Å against
    1.2e-7–1.8e-7 and 3.8e-4 Å) — in fewer than a third of its steps (143–169 against 648–1091)."""
    model, K = js.models.massive_dirac(1.0, 0.3), 80.0
    ky = np.array([0.0, 0.3, 0.6])
    args = (model, jnp.zeros(2), jnp.stack([np.full(3, K), ky], -1), 2 * HBAR * K / 0.2, jnp.array([0.2, 0.0]))
    ada = wp.evolve(*args, band=0, saveat=2, **ADIABATIC)
    frozen = wp.evolve(*args, band=0, saveat=2)
    ref = wp.evolve(*args, band=0, saveat=2, **TIGHT_FROZEN)
    p, p_ref = np.asarray(ada.populations[:, -1, 1]), np.asarray(ref.populations[:, -1, 1])
    np.testing.assert_allclose(p, p_ref, rtol=0, atol=5e-7)
    np.testing.assert_allclose(p, np.exp(-np.pi * (0.09 + ky**2) / 0.2), rtol=0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(ada.x[:, -1]), np.asarray(ref.x[:, -1]), rtol=0, atol=5e-4)
    np.testing.assert_allclose(np.asarray(ada.norm), 1.0, rtol=0, atol=1e-12)
    steps, frozen_steps = np.asarray(ada.stats["num_steps"]), np.asarray(frozen.stats["num_steps"])
    assert np.all(3 * steps < frozen_steps), (steps, frozen_steps)


def test_texture_field_and_dense_output_match_a_tight_reference():
    """A textured Dirac cone in a field E(x, t) (three refinement passes, ∂𝓗/∂x tangents), saved inside
    steps: x, k, χ agree with Tsit5 at rtol 1e-12 as the frozen phase does."""
    model = js.models.massive_dirac(1.0, 0.1, texture_G=[0.3, 0.1])
    field = lambda x, t: jnp.array([0.02 * jnp.cos(0.2 * t) + 0.002 * x[1], 0.01])
    args = (model, [0.5, -0.2], [0.3, 0.1], 15.0, field)
    ts = jnp.array([0.0, 3.3, 7.0, 15.0])
    tr = wp.evolve(*args, band=0, saveat=ts, **ADIABATIC)
    ref = wp.evolve(*args, band=0, saveat=ts, solver=diffrax.Tsit5(),
                    stepsize_controller=diffrax.PIDController(rtol=1e-12, atol=1e-13), max_steps=100_000)
    for name, tol in (("x", 1e-6), ("k", 1e-7), ("chi", 1e-6)):
        np.testing.assert_allclose(np.asarray(getattr(tr, name)), np.asarray(getattr(ref, name)), atol=tol)
    np.testing.assert_allclose(np.asarray(tr.norm), 1.0, atol=1e-13)
    assert float(jnp.min(tr.populations[-1])) < 0.99


def test_through_a_band_touching():
    """A massless cone (Δ = 0) swept through its Dirac point: the frames there are degenerate, the phase
    per sub-interval falls below LEVIN_MIN and those sub-intervals take the frozen moments — finite
    values and gradients, P = 1 (the Landau–Zener limit), the frozen-phase result."""
    model = js.models.massive_dirac(1.0, 0.0)
    t1 = 2 * HBAR * 2.0 / 0.2

    def run(v):
        m = model.with_params({**model.params, "v": v})
        return wp.evolve(m, jnp.zeros(2), jnp.array([2.0, 0.0]), t1, jnp.array([0.2, 0.0]), band=0, saveat=2,
                         **ADIABATIC).populations[-1, 1]

    p, dp = jax.value_and_grad(run)(1.0)
    frozen = wp.evolve(model, jnp.zeros(2), jnp.array([2.0, 0.0]), t1, jnp.array([0.2, 0.0]), band=0, saveat=2)
    np.testing.assert_allclose(float(p), 1.0, atol=1e-7)
    np.testing.assert_allclose(float(p), float(frozen.populations[-1, 1]), atol=1e-8)
    assert np.isfinite(float(dp))


def test_bad_phase_and_more_than_two_bands_raise():
    """An unknown phase is refused when the solver is built; "adiabatic" on a three-band step says so."""
    with pytest.raises(ValueError, match="phase must be 'frozen' or 'adiabatic'"):
        wp.Magnus4(phase="lab")
    three = js.Model(lambda k, x, p: jnp.diag(jnp.array([-1.0, 0.0, 1.0]) + p["a"] * k[0]).astype(complex)
                     + 0.1 * jnp.ones((3, 3)), {"a": jnp.array([0.1, 0.2, 0.3])}, 2, name="three levels")
    with pytest.raises(ValueError, match="two-band steps only"):
        wp.evolve(three, jnp.zeros(2), jnp.zeros(2), 1.0, jnp.array([0.1, 0.0]), band=0, **ADIABATIC)
