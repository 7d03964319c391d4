"""Semiclassical transport (paper Sec. III): closed forms, limits the paper proves, invariances.

Units: E in V/Å, τ in fs, μ and kT in eV, J in e/(fs·Å), conductivities in e²/h (per (V/Å)^{n−1}).
"""

import warnings
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate as sint

import jaxsemi as js
from jaxsemi import transport as tr
from jaxsemi._geometry import abelian_curvature, point_geometry, two_band_jet
from jaxsemi.models._pauli import SX, SY, SZ
from jaxsemi.transport._current import field_derivatives
from jaxsemi.transport._limits import transition_limits
from jaxsemi.units import HBAR, to_e2_over_h

V, DELTA = 1.0, 0.1  # eV·Å, eV: hot spot of width Δ/v = 0.1 1/Å
MU_BAND, KT, TAU = 0.2, 0.005, 10.0
K_F = np.sqrt(MU_BAND**2 - DELTA**2) / V


@pytest.fixture(scope="module")
def disk():
    """Disk for the untilted/tilted Dirac valley: radius 2/Å, hot spot and Fermi surface resolved."""
    return js.kgrid.disk(2.0, 72, 48, scale=DELTA / V, breaks=[0.8 * K_F, 1.25 * K_F])


def _sigma_xy_reference(mu, kT, radius, valley=1):
    """σ_xy (e²/h) of one untilted valley from a 1D radial Fermi-sea integral (scipy quad).

    σ = −2π ∫d²k/(2π)² Σ_n f_n Ω_n = −∫_0^K k dk Σ_n f(ε_n) Ω_n with Ω_∓ = ±τv²Δ/(2E³).
    """
    def integrand(k):
        e = np.sqrt(V**2 * k**2 + DELTA**2)
        om = valley * V**2 * DELTA / (2 * e**3)
        f = lambda en: 0.5 * (1 - np.tanh((en - mu) / (2 * kT)))  # noqa: E731
        return -k * (f(-e) * om - f(e) * om)

    pts = [np.sqrt(max(mu**2 - DELTA**2, 0)) / V] if abs(mu) > DELTA else []
    return sint.quad(integrand, 0, radius, points=pts or None, limit=400, epsabs=1e-13, epsrel=1e-12)[0]


# ----------------------------------------------------------------------------- closed forms


def _parabolic(k, x, p):
    return (p["c"] * jnp.dot(k, k))[None, None].astype(complex)


@pytest.mark.timeout(300)
def test_drude_parabolic_band():
    """σ_xx = σ_yy = n e² τ / m, σ_xy = 0 for ε = ħ²k²/2m; n = kT ln(1 + e^{μ/kT}) m/(2πħ²)."""
    c, mu, kT, tau = 3.81, 0.1, 0.01, 20.0  # c = ħ²/2m (eV·Å², free electron)
    model = js.Model(_parabolic, {"c": c}, 2, name="parabolic")
    radius = np.sqrt((mu + 40 * kT) / c)
    grid = js.kgrid.disk(radius, 80, 8, breaks=[np.sqrt(mu / c)])
    sigma = tr.conductivity(model, [0.0, 0.0], mu, tau, grid, kT=kT, check=False)
    density = kT * np.log1p(np.exp(mu / kT)) / (4 * np.pi * c)  # 1/Å²
    drude = to_e2_over_h(density * tau * 2 * c / HBAR**2)  # n τ/m with 1/m = 2c/ħ²
    np.testing.assert_allclose(np.diag(sigma), [drude, drude], rtol=1e-7)
    assert abs(sigma[0, 1]) < 1e-9 * drude
    # the current itself is linear in E: J = σ E (no J(0) for a band bottom inside the disk)
    e = jnp.array([2e-4, -1e-4])
    j = tr.current(model, e, mu, tau, grid, kT=kT, check=False)
    np.testing.assert_allclose(to_e2_over_h(j), sigma @ e, rtol=1e-9)


@pytest.fixture(scope="module")
def radial_disk():
    """Isotropic integrands need few angles; the radial rule resolves kT at the Fermi surface."""
    return js.kgrid.disk(2.0, 144, 8, scale=DELTA / V, breaks=[0.8 * K_F, 1.25 * K_F])


@pytest.mark.parametrize("mu", [0.0, MU_BAND])
def test_dirac_linear_hall_closed_form(radial_disk, mu):
    """σ_xy of one massive Dirac valley (μ in the gap and in the band) against a radial integral."""
    model = js.models.massive_dirac(V, DELTA)
    sigma = tr.conductivity(model, [0.0, 0.0], mu, TAU, radial_disk, kT=KT, check=False)
    ref = _sigma_xy_reference(mu, KT, 2.0)
    np.testing.assert_allclose(sigma[0, 1], ref, rtol=2e-6)
    np.testing.assert_allclose(sigma[1, 0], -ref, rtol=2e-6)
    if mu == 0.0:  # T → 0 closed form −sgnΔ/2 (1 − Δ/E_cutoff)
        np.testing.assert_allclose(ref, -0.5 * (1 - DELTA / np.hypot(2.0 * V, DELTA)), rtol=1e-9)


# ----------------------------------------------------------------------------- theories agree


@pytest.fixture(scope="module")
def tilted():
    return js.models.massive_dirac(V, DELTA, tilt=0.3)


@pytest.mark.timeout(300)
def test_nonadiabatic_reduces_to_ssct_at_small_field(tilted, disk):
    """Without texture, nonadiabatic and SSCT agree to first order in E (Sec. III C 3)."""
    args = (MU_BAND, TAU, disk)
    s_ss = tr.conductivity(tilted, [0.0, 0.0], *args, kT=KT, check=False)
    # the non-adiabatic current's own derivative (``conductivity`` evaluates SSCT's at E = 0)
    s_na = to_e2_over_h(jax.jacfwd(lambda e: tr.current(tilted, e, *args, kT=KT, theory="nonadiabatic",
                                                        check=False))(jnp.zeros(2)))
    np.testing.assert_allclose(s_na, s_ss, rtol=1e-9, atol=1e-12)
    assert abs(s_ss[0, 1]) > 0.1 and s_ss[0, 0] > 1.0  # a Hall and a Drude part
    e = DELTA**2 / V * np.array([[0.02, 0.01], [0.01, 0.005], [0.0, 0.0]])  # E, E/2 and 0
    j_ss = tr.current(tilted, e, *args, kT=KT, check=False)
    j_na = tr.current(tilted, e, *args, kT=KT, theory="nonadiabatic", check=False)
    # J(0): the filled tilted band on the disk (J_y(0) = 0 by the k_y mirror: rounding, ~1e-18, on both sides)
    np.testing.assert_allclose(j_na[2], j_ss[2], rtol=1e-10, atol=1e-12 * float(np.abs(j_ss[2]).max()))
    j_ss, j_na, j0 = j_ss[:2], j_na[:2], j_ss[2]
    diff = np.linalg.norm(j_na - j_ss, axis=-1)
    assert np.all(diff < 0.05 * np.linalg.norm(j_ss - j0, axis=-1))
    assert diff[0] / diff[1] > 3.5  # the difference is (at least) second order in E


def _three_uniform(k, x, p):
    """A generic uniform three-band model, neither time-reversal nor inversion symmetric."""
    h = jnp.array([[p["m"] + jnp.cos(k[0]), jnp.sin(k[0]) + 0.3j * jnp.sin(k[1]), 0.4 * jnp.sin(k[1]) + 0.1j],
                   [0.0, -jnp.cos(k[1]) + 0.2 * jnp.sin(k[0]), 0.5 * jnp.sin(k[0] + k[1]) + 0.2j],
                   [0.0, 0.0, 0.6]], dtype=complex)
    return jnp.triu(h, 1) + jnp.conj(jnp.triu(h, 1)).T + jnp.diag(jnp.real(jnp.diag(h))).astype(complex)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("bands, relaxation", [(None, "first_order"), ([1, 2], "exact")])
def test_nonadiabatic_linear_response_is_ssct(bands, relaxation):
    """At E = 0 ``conductivity(order=1, theory="nonadiabatic")`` is evaluated through SSCT
    (``NonAdiabatic.linear_response``): it equals the forward-mode derivative of the non-adiabatic
    current itself, for the whole manifold and a two-band manifold with an SSCT band outside."""
    model = js.Model(_three_uniform, {"m": 0.3}, 2, name="three_uniform")
    grid = js.kgrid.disk(3.0, 20, 24)
    kw = dict(kT=0.05, theory="nonadiabatic", bands=bands, relaxation=relaxation, check=False)
    sigma = np.asarray(tr.conductivity(model, [0.0, 0.0], 0.1, 10.0, grid, **kw))
    direct = to_e2_over_h(jax.jacfwd(lambda e: tr.current(model, e, 0.1, 10.0, grid, **kw))(jnp.zeros(2)))
    np.testing.assert_allclose(sigma, np.asarray(direct), rtol=1e-10, atol=1e-12 * np.abs(sigma).max())
    assert abs(sigma[0, 1] - sigma[1, 0]) > 1e-2 and abs(sigma[0, 0]) > 1e-2  # a Hall and a Drude part


def _w_qwz(k, x, p):
    """QWZ⊗1₂ rotated by a k-dependent unitary W(k): an exactly degenerate pair, Tr 𝓕 ≠ 2Ω_QWZ."""
    h = (jnp.sin(k[0]) * SX + jnp.sin(k[1]) * SY + (p["m"] + jnp.cos(k[0]) + jnp.cos(k[1])) * SZ)
    h0 = jnp.kron(h, jnp.eye(2))
    # Hermitian involutions (anticommuting halves): e^{iθG} = cos θ + i sin θ G
    g1 = (jnp.kron(SX, SX) + jnp.kron(SZ, jnp.eye(2))) / np.sqrt(2)
    g2 = (jnp.kron(SY, SY) + jnp.kron(SX, jnp.eye(2))) / np.sqrt(2)
    t1, t2 = p["a"] * jnp.sin(k[0]), p["a"] * jnp.sin(k[1] + 0.3)
    w = (jnp.cos(t1) * jnp.eye(4) + 1j * jnp.sin(t1) * g1) @ (jnp.cos(t2) * jnp.eye(4) + 1j * jnp.sin(t2) * g2)
    return w @ h0 @ jnp.conj(w.T)


@pytest.mark.timeout(300)
def test_eq60_reproduces_eq53_for_filled_degenerate_manifold():
    """Sec. III C 2: with a fully occupied degenerate manifold Eq. 60 gives Eq. 53 (−e²/ħ ∫Tr 𝓕 E)."""
    model = js.Model(_w_qwz, {"m": 1.0, "a": 0.6}, 2, np.eye(2), name="rotated QWZ x 2")
    grid = js.kgrid.brillouin_zone(model, 16)
    k = grid.points
    tr_f = jnp.trace(js.nonabelian_curvature(model, k, (0, 1)), axis1=-4, axis2=-3)[..., 0, 1].real
    om = js.berry_curvature(js.models.qwz(1.0), k)[:, 0, 0, 1]
    assert float(jnp.max(jnp.abs(tr_f - 2 * om))) > 0.05  # W(k) makes 𝓕 differ locally from 2Ω
    e = jnp.array([1e-3, -2e-3])
    tr_f_integral = float(jnp.sum(grid.weights * tr_f))
    eq53 = -tr_f_integral / HBAR * jnp.array([e[1], -e[0]])  # J_α = −(e²/ħ) ∫Tr 𝓕^{αβ} E_β
    kw = dict(kT=0.01, bands=(0, 1))
    j_nab = tr.current(model, e, 0.0, TAU, grid, theory="nonabelian", **kw, check=False)
    j_na = tr.current(model, e, 0.0, TAU, grid, theory="nonadiabatic", **kw, check=False)
    np.testing.assert_allclose(j_nab, eq53, rtol=1e-9)
    np.testing.assert_allclose(j_na, eq53, rtol=1e-7)
    # σ_xy = −C_occ = +2 (two copies of the C = −1 QWZ band), within the grid's accuracy
    np.testing.assert_allclose(to_e2_over_h(j_na[0] / e[1]), 2.0, atol=2e-3)


# ----------------------------------------------------------------------------- textures


G_DIR = np.array([1.0, 0.0])
PHASE = 1.0  # G·x at the observation point: Δ(x) = Δ cos 1, ∂Δ/∂x = −ΔG sin 1


@pytest.fixture(scope="module")
def texture_grid():
    return js.kgrid.disk(1.5, 48, 16, scale=DELTA / V)


def _textured(g):
    model = js.models.massive_dirac(V, DELTA, texture_G=g * G_DIR)
    return model, PHASE / g * G_DIR


def test_nonadiabatic_zero_current_at_zero_field_with_texture(texture_grid):
    """Sec. III C 3: Eqs. 57–60 give no current without a field, texture or not."""
    model, x = _textured(0.02)
    j_na = tr.current(model, [0.0, 0.0], MU_BAND, TAU, texture_grid, kT=KT, x=x, theory="nonadiabatic", check=False)
    j_ss = tr.current(model, [0.0, 0.0], MU_BAND, TAU, texture_grid, kT=KT, x=x, check=False)
    assert float(jnp.linalg.norm(j_ss)) > 1e-8
    assert float(jnp.linalg.norm(j_na)) < 1e-12 * float(jnp.linalg.norm(j_ss)) + 1e-18


@pytest.mark.timeout(300)
def test_ssct_equilibrium_current_in_texture(texture_grid):
    """SSCT at E = 0 with a texture: δf ≡ 0 (τ-independent J) and J = −Σ∫f⁰ẋ is first order in ∇.

    Reconciles with the paper's δf′ (Eq. 69b): it vanishes identically (checked pointwise), so
    the SSCT current at E = 0 is the equilibrium term −Σ∫f⁰ δṽ with δṽ = −Ω^{KX}v_b − Ω^{KK}F_b/ħ
    (Eq. 68c), linear in the texture gradient (Sec. III C 3 calls it second order, docs/conventions.md §14).
    """
    zero = [0.0, 0.0]
    j = {}
    for g in (0.02, 0.01):
        model, x = _textured(g)
        j[g] = np.asarray(tr.current(model, zero, MU_BAND, TAU, texture_grid, kT=KT, x=x, check=False))
    model, x = _textured(0.02)
    j_tau = tr.current(model, zero, MU_BAND, 3 * TAU, texture_grid, kT=KT, x=x, check=False)
    np.testing.assert_allclose(j_tau, j[0.02], rtol=1e-12, atol=1e-20)  # δf ≡ 0
    assert abs(j[0.02][0]) < 1e-10 * abs(j[0.02][1])  # transverse to the gradient ∇Δ ∥ x
    np.testing.assert_allclose(j[0.02][1] / j[0.01][1], 2.0, rtol=2e-2)  # ∝ G (first order)

    # independent first-order formula from the core band geometry on the same grid (one program)
    def geometry(kk):
        geo = point_geometry(model, kk, x, True)
        curv = [abelian_curvature(geo.energies, *ab) for ab in
                ((geo.dk, geo.dk), (geo.dk, geo.dx), (geo.dx, geo.dk), (geo.dx, geo.dx))]
        diag = lambda m: jnp.real(jnp.diagonal(m, axis1=-2, axis2=-1))  # noqa: E731
        return geo.energies, diag(geo.dk) / HBAR, -diag(geo.dx), *curv

    w, vb, fb, okk, okx, oxk, oxx = jax.jit(jax.vmap(geometry))(texture_grid.points)  # vb, fb (N, d, n)
    dv = -jnp.einsum("Nnab,Nbn->Nna", okx, vb) - jnp.einsum("Nnab,Nbn->Nna", okk, fb) / HBAR
    df_ = HBAR * jnp.einsum("Nnab,Nbn->Nna", oxx, vb) + jnp.einsum("Nnab,Nbn->Nna", oxk, fb)
    dfprime = -jnp.einsum("Nan,Nna->Nn", fb, dv) + jnp.einsum("Nan,Nna->Nn", vb, df_)  # Eq. 69b bracket
    scale = jnp.max(jnp.abs(fb)) * jnp.max(jnp.abs(dv))
    assert float(jnp.max(jnp.abs(dfprime))) < 1e-10 * float(scale)
    f0 = js.fermi(w, MU_BAND, KT)
    ref = -jnp.einsum("N,Nn,Nna->a", texture_grid.weights, f0, jnp.moveaxis(vb, -1, -2) + dv)
    np.testing.assert_allclose(j[0.02], ref, rtol=3e-2, atol=1e-10 * abs(j[0.02][1]))


# ----------------------------------------------------------------------------- non-adiabatic Hall


@pytest.mark.timeout(300)
def test_nonadiabatic_hall_odd_and_nonlinear(disk):
    """One valley, μ in the gap: J_x(E_y) is odd in E, linear for eEv/Δ² ≪ 1, then deviates."""
    model = js.models.massive_dirac(V, DELTA)
    s = np.array([0.05, 0.1, 1.0, 4.0])
    strengths = np.concatenate([s, -s]) * DELTA**2 / V
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tr.ValidityWarning)
        sig_na = np.asarray(tr.hall_vs_field(model, strengths, 0.0, TAU, disk, kT=KT, check=False))
        sig_ss = np.asarray(tr.hall_vs_field(model, strengths, 0.0, TAU, disk, kT=KT, theory="ssct", check=False))
    lin = float(tr.conductivity(model, [0.0, 0.0], 0.0, TAU, disk, kT=KT, check=False)[0, 1])
    np.testing.assert_allclose(sig_na[:4], sig_na[4:], rtol=1e-10)  # σ even ⇔ J odd in E
    np.testing.assert_allclose(sig_ss, lin, rtol=1e-9)  # SSCT stays linear (μ in the gap)
    dev = np.abs(sig_na[:4] / lin - 1)
    assert dev[0] < 1e-3 and np.all(np.diff(dev) > 0)
    np.testing.assert_allclose(dev[1] / dev[0], 4.0, rtol=0.1)  # deviation ∝ (eEv/Δ²)²
    assert dev[3] > 0.1


def _generic_pair(k, x, p):
    """A two-band 𝓗 = d₀ + d·σ, nonlinear in k, x and mixed (∂²d/∂k∂k, ∂²d/∂k∂x ≠ 0)."""
    g = p["G"] @ x
    d0 = p["t"] * jnp.sin(k[0]) + 0.1 * k[1] ** 2
    d = (jnp.sin(k[0]) + p["a"] * k[1] ** 2 * jnp.cos(g), jnp.sin(k[1]) * (1 + 0.3 * jnp.sin(g)),
         p["m"] * jnp.cos(g) + 1 - jnp.cos(k[0]) - jnp.cos(k[1]) + 0.2 * k[0] * k[1])
    return d0 * jnp.eye(2) + d[0] * SX + d[1] * SY + d[2] * SZ


def _generic_pair_and_far_level(k, x, p):
    """``_generic_pair`` and an uncoupled level at 20 eV: the manifold (0, 1) has no remote couplings."""
    return jnp.zeros((3, 3), complex).at[:2, :2].set(_generic_pair(k, x, p)).at[2, 2].set(20.0)


def _pair_models(textured):
    """Parameters, a 6² grid, three fields, x (None uniform) and the models {2: ``_generic_pair``, 3: the pair and
    an uncoupled far level} as functions of the parameters: a closed form and the eigen path on the same bands."""
    p = {"t": 0.3, "a": 0.4, "m": 0.5, "G": jnp.array([0.05, 0.02])}
    x = jnp.array([3.0, -7.0]) if textured else None
    at = (lambda f: f) if textured else (lambda f: lambda k, _, q: f(k, jnp.array([3.0, -7.0]), q))  # uniform: x fixed
    models = {n: (lambda q, f=at(f): js.Model(f, q, 2, np.eye(2))) for n, f in
              ((2, _generic_pair), (3, _generic_pair_and_far_level))}
    return p, js.kgrid.brillouin_zone(np.eye(2), 6), jnp.array([[0.05, -0.02], [0.0, 0.08], [-0.1, 0.03]]), x, models


def _assert_closed_form_is_eigen_path(fn, p):
    """fn(q, n) of the two-band closed form (n = 2) equals the eigen path's (n = 3), values and parameter gradients."""
    closed, general = np.asarray(fn(p, 2)), np.asarray(fn(p, 3))
    assert np.abs(closed).max() > 1e-3
    np.testing.assert_allclose(closed, general, rtol=1e-10, atol=1e-12 * np.abs(general).max())
    grads = [jax.grad(lambda q: jnp.sum(fn(q, n) * jnp.array([1.0, -0.7])))(p) for n in (2, 3)]
    for name in p:
        np.testing.assert_allclose(grads[0][name], grads[1][name], rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("textured", [False, True])
def test_two_band_nonadiabatic_closed_form_equals_eigen_path(textured):
    """Eqs. 61–63 of a two-band model in closed form (dressed Bloch vector b = d + d × e/2|d|²) equal the
    general path (eigh of H̄_a, perturbation-theory slopes) on the same pair inside a three-band 𝓗 with an
    uncoupled far level — currents at three fields (Eq. 57, with D where textured, and exact relaxation
    without texture) and their parameter gradients. Flipping the sign of d × e fails it (checked)."""
    p, grid, e, x, models = _pair_models(textured)
    options = [dict(relaxation="first_order", phase_space_density=textured)]
    if not textured:
        options.append(dict(relaxation="exact"))
    for opts in options:
        def j(q, n):
            return tr.current(models[n](q), e, 0.1, TAU, grid, kT=0.05, x=x, theory="nonadiabatic",
                              bands=None if n == 2 else (0, 1), check=False, **opts)

        _assert_closed_form_is_eigen_path(j, p)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("textured", [False, True])
def test_two_band_ssct_closed_form_equals_eigen_path(textured):
    """SSCT of a two-band model from its d-vector (slopes ∂d₀ ∓ d̂·∂d, curvatures Ω_∓ = ±d·(∂_a d × ∂_b d)/2|d|³,
    ``two_band_motion``) equals the eigen path on the same pair inside a three-band 𝓗 with an uncoupled far level
    (empty, f⁰ ~ e^{−400}): currents at three fields (Eq. 46c, with D where textured), σ at E = 0 and their
    parameter gradients. Flipping the sign of the curvatures fails it (checked)."""
    p, grid, e, x, models = _pair_models(textured)
    kw = dict(kT=0.05, x=x, phase_space_density=textured, check=False)
    _assert_closed_form_is_eigen_path(lambda q, n: tr.current(models[n](q), e, 0.1, TAU, grid, **kw), p)
    _assert_closed_form_is_eigen_path(lambda q, n: tr.conductivity(models[n](q), [0.0, 0.0], 0.1, TAU, grid, **kw), p)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("d", [2, 3])
def test_textured_rates_unrolled_over_bands_equal_vmapped(d, monkeypatch):
    """Eq. 43 for every band and field (``_ssct._rates``) solved band by band (3D, n ≤ ``UNROLLED_BANDS``) equals
    the same under a vmap over bands (2D, larger n), for 3 bands and 2 fields with random curvatures, and equals
    the 2d×2d systems solved by LAPACK."""
    from jaxsemi.transport import _ssct

    rng = np.random.default_rng(d)
    n = 3
    vb, fb, fields = rng.normal(size=(n, d)), rng.normal(size=(n, d)), rng.normal(size=(2, d))
    antisym = [m - np.swapaxes(m, 1, 2) for m in rng.normal(size=(2, n, d, d))]
    f_kx = 0.1 * rng.normal(size=(n, d, d))
    curvatures = (antisym[0], f_kx, -np.swapaxes(f_kx, 1, 2), 0.01 * antisym[1])
    monkeypatch.setattr(_ssct, "band_by_band", lambda n, d: True)
    unrolled = _ssct._rates(vb, fb, curvatures, fields)
    monkeypatch.setattr(_ssct, "band_by_band", lambda n, d: False)
    vmapped = _ssct._rates(vb, fb, curvatures, fields)
    eye = np.eye(d)
    for b in range(2):
        for i in range(n):
            a = np.block([[eye + curvatures[1][i], curvatures[0][i]],
                          [-HBAR * curvatures[3][i], HBAR * (eye - curvatures[2][i])]])
            y = np.linalg.solve(a, np.concatenate([vb[i], -fields[b] + fb[i]]))
            for ours in (unrolled, vmapped):
                np.testing.assert_allclose(np.concatenate([ours[0][b, i], ours[1][b, i]]), y, rtol=1e-11, atol=1e-12)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("textured", [False, True])
def test_two_band_validity_numbers_closed_form_equal_eigen_path(textured):
    """The Eq. 37 numbers of a two-band model from its d-vector (|Δf⁰| |d̂ × e|/(2|d|)², no eigenvectors) equal those
    of the eigen path (|Δf⁰| |eE·R_k|/gap and the texture's ħR_x·v + R_k·F) at every point of a grid, for three
    fields and μ; at a band touching both are 0. Flipping the sign of the force term, or taking one band's motion for both
    bands, in the texture number fails it (checked)."""
    p, grid, e, x, models = _pair_models(textured)
    x = jnp.zeros(2) if x is None else x
    mu, kT = jnp.array([0.1, -0.2, 0.4]), jnp.full(3, 0.05)

    def both(model, k):
        return [transition_limits(point, e, mu, kT, 0, 0) for point in
                (two_band_jet(model, k, x, textured), point_geometry(model, k, x, textured))]

    closed, eigen = jax.vmap(lambda k: both(models[2](p), k))(grid.points)
    assert set(closed) == set(eigen) == ({"field", "texture"} if textured else {"field"})
    for key in closed:
        assert np.asarray(eigen[key]).max() > 1e-3
        np.testing.assert_allclose(np.asarray(closed[key]), np.asarray(eigen[key]), rtol=1e-10, atol=0, err_msg=key)
    touching = both(js.models.massive_dirac(1.0, 0.0), jnp.zeros(2))  # d = 0: no gap, no transition
    assert all(float(v) == 0.0 for limits in touching for v in limits.values())


@pytest.mark.timeout(300)
def test_one_field_for_a_batch_equals_the_field_repeated():
    """One field for a batch of μ and τ (the dressed bands computed once, ``_Setup.one_field``) gives the
    currents, field derivatives and parameter gradients of the same field given once per row — the two-band
    closed form and the general manifold path, first-order and exact relaxation."""
    p = {"t": 0.3, "a": 0.4, "m": 0.5, "G": jnp.array([0.05, 0.02])}
    grid = js.kgrid.brillouin_zone(np.eye(2), 5)
    field, mus, taus = jnp.array([0.05, -0.02]), jnp.array([-0.2, 0.1, 0.3]), jnp.array([TAU, 2 * TAU, TAU])
    uniform = {n: (lambda q, f=f: js.Model(lambda k, _, r: f(k, jnp.array([3.0, -7.0]), r), q, 2, np.eye(2)))
               for n, f in ((2, _generic_pair), (3, _generic_pair_and_far_level))}
    for n, relaxation in ((2, "first_order"), (2, "exact"), (3, "first_order")):
        kw = dict(kT=0.05, theory="nonadiabatic", bands=None if n == 2 else (0, 1), relaxation=relaxation, check=False)

        def j(q, e):
            return tr.current(uniform[n](q), e, mus, taus, grid, **kw)

        one, rows = j(p, field), j(p, jnp.broadcast_to(field, (3, 2)))
        assert np.abs(np.asarray(rows)).max() > 1e-4
        np.testing.assert_allclose(np.asarray(one), np.asarray(rows), rtol=1e-12, atol=1e-15)
        grads = [jax.grad(lambda q: jnp.sum(j(q, e) * jnp.array([1.0, -0.7])))(p) for e in (field, jnp.stack([field] * 3))]
        for name in p:
            np.testing.assert_allclose(grads[0][name], grads[1][name], rtol=1e-11, atol=1e-15, err_msg=f"{n} {name}")
        chi = [tr.conductivity(uniform[n](p), e, mus, taus, grid, order=2, **kw) for e in (field, jnp.stack([field] * 3))]
        np.testing.assert_allclose(np.asarray(chi[0]), np.asarray(chi[1]), rtol=1e-11, atol=1e-13)


# ----------------------------------------------------------------------------- second order


def _dipole(model, grid, valley, mu, kT):
    """D_b = Σ_n ∫dk f⁰_n ∂Ω_n/∂k_b with the analytic ∂Ω of the massive Dirac cone (Å)."""
    k = grid.points
    w, _ = js.eigh(model, k)
    e = jnp.sqrt(V**2 * jnp.sum(k**2, -1) + DELTA**2)
    d_om_upper = 3 * valley * V**4 * DELTA * k / (2 * e[:, None] ** 5)  # ∂Ω_+/∂k (lower: −)
    f0 = js.fermi(w, mu, kT)
    return jnp.einsum("N,N,Nb->b", grid.weights, f0[:, 1] - f0[:, 0], d_om_upper)


def _chi_from_dipole(dip):
    eps = np.array([[0.0, 1.0], [-1.0, 0.0]])
    chi = TAU / HBAR**2 * (np.einsum("ac,b->abc", eps, dip) + np.einsum("ab,c->abc", eps, dip))
    return to_e2_over_h(chi)


@pytest.fixture(scope="module")
def bcd_grid():
    return js.kgrid.disk(2.0, 96, 64, scale=DELTA / V, breaks=[0.8 * K_F, 1.3 * K_F])


@pytest.mark.timeout(300)
def test_berry_curvature_dipole_and_time_reversed_valleys(tilted, bcd_grid):
    """χ = ∂²J/∂E² (autodiff) = (e³τ/ħ²)(ε_ac D_b + ε_ab D_c); the TR partner doubles it, cancels σ_xy."""
    kT = 0.01
    chi = np.asarray(tr.conductivity(tilted, [0.0, 0.0], MU_BAND, TAU, bcd_grid, order=2, kT=kT, check=False))
    dip = np.asarray(_dipole(tilted, bcd_grid, 1, MU_BAND, kT))
    assert abs(dip[0]) > 1e-3 and abs(dip[1]) < 1e-12  # tilt along x: dipole along x
    np.testing.assert_allclose(chi, _chi_from_dipole(dip), rtol=1e-4, atol=1e-6 * np.abs(chi).max())
    partner = js.models.massive_dirac(V, DELTA, valley=-1, tilt=-0.3)
    chi_p = np.asarray(tr.conductivity(partner, [0.0, 0.0], MU_BAND, TAU, bcd_grid, order=2, kT=kT, check=False))
    np.testing.assert_allclose(chi + chi_p, 2 * chi, rtol=1e-9, atol=1e-12 * np.abs(chi).max())
    sig = tr.conductivity(tilted, [0.0, 0.0], MU_BAND, TAU, bcd_grid, kT=kT, check=False)
    sig_p = tr.conductivity(partner, [0.0, 0.0], MU_BAND, TAU, bcd_grid, kT=kT, check=False)
    assert abs(float(sig[0, 1])) > 0.1
    np.testing.assert_allclose((sig + sig_p)[0, 1], 0.0, atol=1e-10)
    np.testing.assert_allclose((sig + sig_p)[0, 0], 2 * sig[0, 0], rtol=1e-10)


@pytest.mark.parametrize("dim", [2, 3])
def test_symmetric_field_derivatives_equal_nested_jacfwd(dim):
    """``conductivity``'s per-k ∂ⁿj/∂Eⁿ by one nested jvp per sorted index tuple (SSCT's
    ``symmetric_field_derivatives``) equal nested jacfwd at every order to 3, index by index (mixed
    partials differ here), with the validity numbers (aux) at the expansion point."""
    rng = np.random.default_rng(dim)
    a, x0 = jnp.asarray(rng.normal(size=(4, dim))), jnp.asarray(rng.normal(size=dim))

    def fn(x):
        y = a @ x
        out = jnp.stack([jnp.sin(y[0]) * jnp.cos(y[1]) * jnp.exp(0.3 * y[2] * x[0]), jnp.cos(y[3]) * x[-1] ** 3])
        return out, {"m": jnp.max(y)}

    for order in range(4):
        sym, aux = field_derivatives(fn, x0, order, True)
        ref, aux_ref = field_derivatives(fn, x0, order, False)
        assert sym.shape == ref.shape == (2,) + (dim,) * order
        np.testing.assert_allclose(np.asarray(sym), np.asarray(ref), rtol=1e-12, atol=1e-12)
        assert float(aux["m"]) == float(aux_ref["m"]) == float(jnp.max(a @ x0))
    assert abs(float(sym[0, 0, 0, 1] - sym[0, 0, 1, 1])) > 1e-3  # the tensor is not one number repeated


# ----------------------------------------------------------------------------- gradients, batching


@pytest.fixture(scope="module")
def small_disk():
    return js.kgrid.disk(1.5, 40, 16, scale=DELTA / V, breaks=[K_F])


@pytest.mark.parametrize("relaxation", ["first_order", "exact"])
def test_field_derivatives_per_tuple_in_one_chunk_equal_jacfwd_over_chunks(tilted, small_disk, relaxation):
    """χ at a field of SSCT (``symmetric_field_derivatives``): per-tuple jvps where the grid is one chunk,
    nested jacfwd where it is several (``_total``), the same tensor."""
    field, kw = [0.004, -0.002], dict(kT=KT, relaxation=relaxation, check=False)
    one = np.asarray(tr.conductivity(tilted, field, MU_BAND, TAU, small_disk, order=2, **kw))
    chunks = np.asarray(tr.conductivity(tilted, field, MU_BAND, TAU, small_disk, order=2, chunk_size=97, **kw))
    assert np.abs(one).max() > 1e-3 and abs(one[0, 0, 1]) > 1e-6
    np.testing.assert_allclose(chunks, one, rtol=1e-12, atol=1e-12 * np.abs(one).max())


def _curved_textured_cone(k, x, p):
    """The textured cone with a k_x² mass term: slopes of d that differ from k to k."""
    mass = p["delta"] * jnp.cos(p["G"] @ x) + p["b"] * k[0] ** 2
    off = p["v"] * (k[0] + 1j * k[1])
    return jnp.array([[mass, jnp.conj(off)], [off, -mass]])


def test_textured_nonadiabatic_saves_only_slopes_shared_by_every_k(monkeypatch):
    """The textured current's rematerialisation keeps the non-adiabatic closed form's d-slopes where they are the same
    at every k (a linear cone) and recomputes them where they are not (a k² term); the gradient equals the one that
    recomputes everything, to rounding."""
    from jaxsemi.transport import _current, _nonadiabatic

    grid = js.kgrid.disk(1.5, 14, 6, scale=0.1)
    field, x = jnp.array([0.0, 0.002]), jnp.array([10.0, 5.0])
    linear = js.models.massive_dirac(V, DELTA, texture_G=(0.02, 0.01))
    curved = js.Model(_curved_textured_cone, dict(linear.params, b=0.5), 2, name="curved textured cone")

    def gradient(model):
        def j(p):
            return tr.current(model.with_params(p), field, MU_BAND, TAU, grid, kT=KT, x=x, theory="nonadiabatic",
                              check=False)[0]
        return jax.grad(j)(dict(model.params))

    def recorded(model, policy):
        decisions = []

        def recording(prim, *avals, **params):
            saved = policy(prim, *avals, **params)
            if params.get("name") == _nonadiabatic.SLOPES:
                decisions.append(saved)
            return saved

        monkeypatch.setattr(_current, "save_shared_slopes", recording)
        jax.clear_caches()  # the policy is read when the current is traced: trace it afresh
        return gradient(model), decisions

    for model, shared in ((linear, True), (curved, False)):
        kept, decisions = recorded(model, _nonadiabatic.save_shared_slopes)
        assert decisions and all(d == shared for d in decisions), (model.name, decisions)
        recomputed, never = recorded(model, lambda *a, **kw: False)
        assert never and not any(never)
        assert max(np.abs(np.asarray(g)).max() for g in kept.values()) > 0  # a gradient to compare
        for name in kept:
            g = np.asarray(kept[name])
            assert np.all(np.isfinite(g))
            np.testing.assert_allclose(g, recomputed[name], rtol=1e-12, atol=1e-12 * np.abs(g).max(), err_msg=name)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("theory, textured", [("ssct", False), ("ssct", True),
                                              pytest.param("nonadiabatic", False, marks=pytest.mark.slow)])
def test_gradients_match_finite_differences(tilted, small_disk, theory, textured):
    """∂/∂(v, Δ, tilt, μ, τ, kT) of the finite-field Hall current against central differences; ``textured``: with a
    mass texture Δ cos(G·x) at one x, also ∂/∂G (Eq. 43's 4×4 phase-space solve and its own tangent)."""
    e = jnp.array([0.0, 0.3 * DELTA**2 / V])
    model = js.models.massive_dirac(V, DELTA, tilt=0.3, texture_G=(0.2, 0.1)) if textured else tilted
    x = (3.0, 1.5) if textured else None

    def hall(p, mu, tau, kT):
        j = tr.current(model.with_params(p), e, mu, tau, small_disk, kT=kT, x=x, theory=theory, check=False)
        return j[0]

    p0 = dict(model.params)
    args = (p0, jnp.asarray(MU_BAND), jnp.asarray(TAU), jnp.asarray(0.01))
    grads = jax.grad(hall, argnums=(0, 1, 2, 3))(*args)
    flat = {**{(k, i): g for k in p0 for i, g in enumerate(np.atleast_1d(grads[0][k]))},
            ("mu", 0): grads[1], ("tau", 0): grads[2], ("kT", 0): grads[3]}
    assert len(flat) == (8 if textured else 6)
    for (name, i), g in flat.items():
        h = 1e-5

        def at(step):
            p, mu, tau, kT = dict(p0), MU_BAND, TAU, 0.01
            if name in p:
                p[name] = p[name] + step * (np.arange(p[name].size) == i).reshape(p[name].shape)
            elif name == "mu":
                mu += step
            elif name == "tau":
                tau += step
            else:
                kT += step
            return float(hall(p, jnp.asarray(mu), jnp.asarray(tau), jnp.asarray(kT)))

        fd = (at(h) - at(-h)) / (2 * h)
        floor = 10 * np.finfo(float).eps * abs(float(hall(*args))) / h  # round-off of the difference
        np.testing.assert_allclose(float(g), fd, rtol=1e-5, atol=floor, err_msg=f"{name}[{i}]")


def test_derivatives_through_a_hamiltonian_closing_over_the_variable(small_disk):
    """A user's 𝓗 that closes over the differentiated value (not a parameter) differentiates like one that takes it
    as a parameter: reverse and forward mode, and forward mode with the validity check on (the current's sum
    differentiates its points' tangents by a rule of its own, which must see values closed over too)."""
    e = jnp.array([0.0, 0.3 * DELTA**2 / V])

    def cone(k, v, delta):
        off = v * (k[0] + 1j * k[1])
        return jnp.array([[0.3 * k[0] + delta, jnp.conj(off)], [off, 0.3 * k[0] - delta]])

    def closed(v, check):
        model = js.Model(lambda k, x, p: cone(k, v, p["delta"]), {"delta": DELTA}, 2)
        return tr.current(model, e, MU_BAND, TAU, small_disk, kT=KT, check=check)

    def parameter(v):
        model = js.Model(lambda k, x, p: cone(k, p["v"], p["delta"]), {"v": v, "delta": DELTA}, 2)
        return tr.current(model, e, MU_BAND, TAU, small_disk, kT=KT, check=False)

    reference = np.asarray(jax.jacrev(parameter)(V))
    assert np.abs(reference).max() > 1e-3 * np.abs(np.asarray(parameter(V))).max()
    for derivative, check in ((jax.jacrev, False), (jax.jacfwd, False), (jax.jacfwd, True)):
        np.testing.assert_allclose(derivative(lambda v: closed(v, check))(V), reference, rtol=1e-12, atol=0)


def test_a_hamiltonian_closing_over_the_variable_runs_under_jit_and_vmap(small_disk):
    """A model built inside a jitted or vmapped function, its 𝓗 closing over the traced value and its params empty:
    its Hermiticity check has no array to ride on (it had raised equinox's "No arrays to thread error on to"), and
    the validity limits the current computes are still traced after the call (not read, not warned on). grad of the
    vmap too (the closure's tracer is hoisted out of the k-sum, ``grid_reduce_params``)."""
    e = jnp.array([0.0, 0.3 * DELTA**2 / V])

    def current(v):
        off = lambda k: v * (k[0] + 1j * k[1])  # noqa: E731
        model = js.Model(lambda k, x, p: jnp.array([[0.3 * k[0] + DELTA, jnp.conj(off(k))],
                                                    [off(k), 0.3 * k[0] - DELTA]]), {}, 2)
        return tr.current(model, e, MU_BAND, TAU, small_disk, kT=KT)[0]

    vs = jnp.array([0.9, 1.1])
    eager = np.array([[float(current(v)), float(jax.grad(current)(v))] for v in vs])
    np.testing.assert_allclose(jax.jit(current)(vs[0]), eager[0, 0], rtol=1e-12)
    np.testing.assert_allclose(jax.vmap(current)(vs), eager[:, 0], rtol=1e-12)
    np.testing.assert_allclose(jax.vmap(jax.grad(current))(vs), eager[:, 1], rtol=1e-12)
    np.testing.assert_allclose(jax.grad(lambda v: jnp.sum(jax.vmap(current)(v)))(vs), eager[:, 1], rtol=1e-12)
    assert abs(eager[1, 0] - eager[0, 0]) > 1e-8 * abs(eager[0, 0]) and np.all(eager[:, 1] != 0)  # v matters


def test_batches_broadcast_and_reuse_the_compiled_program(tilted, small_disk):
    """A batch of fields × μ equals the loop; new μ/τ/kT/field values do not recompile."""
    fields = jnp.array([[1e-4, 0.0], [0.0, 2e-4], [1e-4, -1e-4]])
    mus = jnp.array([0.15, 0.2, 0.25])
    batched = tr.current(tilted, fields[:, None, :], mus[None, :], TAU, small_disk, kT=KT, check=False)
    assert batched.shape == (3, 3, 2)
    before = tr.trace_count()
    for i in range(3):
        for j in range(3):
            one = tr.current(tilted, fields[i], mus[j], TAU, small_disk, kT=KT, check=False)
            np.testing.assert_allclose(one, batched[i, j], rtol=1e-12, atol=1e-15)
    tr.current(tilted, fields[2] * 3, 0.3, 2 * TAU, small_disk, kT=2 * KT, check=False)
    assert tr.trace_count() - before <= 1  # one program for every scalar batch
    before = tr.trace_count()
    tr.current(tilted, fields[0], jnp.linspace(0.1, 0.3, 7), TAU, small_disk, kT=KT, check=False)
    assert tr.trace_count() - before == 1  # a new batch shape is a new program: the counter counts


# ----------------------------------------------------------------------------- errors and warnings


def test_errors_and_validity_warnings(dirac, small_disk):
    with pytest.raises(ValueError, match="kT must be > 0"):
        tr.current(dirac, [0.0, 1e-4], 0.2, TAU, small_disk)
    with pytest.raises(ValueError, match="theory"):
        tr.current(dirac, [0.0, 1e-4], 0.2, TAU, small_disk, kT=KT, theory="quantum")
    with pytest.raises(ValueError, match="field"):
        tr.current(dirac, [0.0, 1e-4, 0.0], 0.2, TAU, small_disk, kT=KT)
    with pytest.raises(ValueError, match="broadcast"):
        tr.current(dirac, jnp.zeros((3, 2)), jnp.zeros(4), TAU, small_disk, kT=KT)
    # τ = 0 needs no Fermi-surface terms: kT = 0 is allowed (intrinsic Hall current only)
    j = tr.current(dirac, [0.0, 1e-4], 0.0, 0.0, small_disk)
    assert np.isfinite(np.asarray(j)).all()
    with pytest.warns(tr.ValidityWarning, match="Eq. 37"):  # eEv/Δ² = 2: SSCT out of its depth
        tr.current(dirac, [0.0, 2 * DELTA**2 / V], 0.0, TAU, small_disk, kT=KT)
    with warnings.catch_warnings():
        warnings.simplefilter("error", tr.ValidityWarning)  # inside the manifold E is kept to all orders
        tr.current(dirac, [0.0, 2 * DELTA**2 / V], 0.0, TAU, small_disk, kT=KT, theory="nonadiabatic")
    with pytest.warns(tr.ValidityWarning, match="not fully occupied"):
        tr.current(dirac, [0.0, 1e-4], MU_BAND, TAU, small_disk, kT=KT, theory="nonabelian", bands=1)
    # eager value errors, each before anything is traced
    nan_params = {**dirac.params, "delta": jnp.asarray(np.nan)}
    for kwargs, match in [(dict(tau=-1.0), "tau must be >= 0"), (dict(kT=-0.01), "kT must be >= 0"),
                          (dict(mu=np.inf), "mu contains NaN"), (dict(field=[np.nan, 0.0]), "field contains NaN"),
                          (dict(model=dirac.with_params(nan_params)), r"model.params\[.delta.\] contains NaN")]:
        args = dict(model=dirac, field=[0.0, 1e-4], mu=0.2, tau=TAU, grid=small_disk, kT=KT, check=False)
        with pytest.raises(ValueError, match=match):
            tr.current(**{**args, **kwargs})


@pytest.mark.timeout(120)
def test_nonadiabatic_warns_where_eq55_divides_by_a_tiny_gap():
    """Eq. 55 divides by the gaps inside the manifold: a two-band cone whose levels at k = 0 are 2e-7 eV apart (above
    the 1e-9 eV degeneracy tolerance, below the 1e-6 eV limit) warns — the closed-form two-band manifold, whose gap
    comes from the d-vector, not an eigen-decomposition; at 2Δ = 2e-3 eV it does not."""
    grid = js.kgrid.KGrid(jnp.array([[0.0, 0.0], [0.05, 0.0], [0.0, 0.05]]), jnp.full(3, 1e-3))
    kw = dict(kT=KT, theory="nonadiabatic")
    with pytest.warns(tr.ValidityWarning, match="2.00e-07 eV apart"):
        tr.current(js.models.massive_dirac(V, 1e-7), [1e-4, 0.0], 0.2, TAU, grid, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", tr.ValidityWarning)
        tr.current(js.models.massive_dirac(V, 1e-3), [1e-4, 0.0], 0.2, TAU, grid, **kw)


def test_validity_limits_come_from_the_same_pass(dirac, small_disk):
    """With check=True the grid maxima of the validity numbers ride in the current's own program
    (one pass, one eigen-decomposition per k): the current is that of check=False, and the
    limits still warn — for ``conductivity`` too, where they are read at the primal point of its
    forward-mode derivative, and its E = 0 shortcut reports the asked theory's numbers."""
    strong = [0.0, 2 * DELTA**2 / V]  # eEv/Δ² = 2
    with pytest.warns(tr.ValidityWarning, match="Eq. 37"):
        checked = np.asarray(tr.current(dirac, strong, 0.0, TAU, small_disk, kT=KT))
    np.testing.assert_allclose(checked, np.asarray(tr.current(dirac, strong, 0.0, TAU, small_disk, kT=KT, check=False)),
                               rtol=1e-13, atol=0)
    with pytest.warns(tr.ValidityWarning, match="Eq. 37"):
        sigma = np.asarray(tr.conductivity(dirac, strong, 0.0, TAU, small_disk, kT=KT))
    np.testing.assert_allclose(sigma, np.asarray(tr.conductivity(dirac, strong, 0.0, TAU, small_disk, kT=KT,
                                                                 check=False)), rtol=1e-13, atol=0)

    class Flagged(tr.SSCT):  # SSCT with an always-broken limit, computed through its cheaper linear response
        name: ClassVar[str] = "flagged"

        def validity(self, model, k, s):
            return {"spread": jnp.ones(())}

        def linear_response(self):
            return tr.SSCT()

    with pytest.warns(tr.ValidityWarning, match="theory='flagged'.*spread"):
        tr.conductivity(dirac, [0.0, 0.0], 0.2, TAU, small_disk, kT=KT, theory=Flagged())


def test_bad_values_raise_under_transformations(dirac, small_disk):
    """Under jit, vmap and grad the value checks become run-time errors (eqx.error_if) with the
    eager messages, instead of garbage: NaN/inf inputs, τ < 0, kT < 0, kT = 0 with τ ≠ 0, E = 0
    in ``hall_vs_field``. Good values through the same compiled program match the eager call. Each
    bad call is waited for (``block_until_ready``): dispatch is asynchronous, and on a GPU the error
    surfaces only then."""
    good = dict(model=dirac, field=jnp.array([0.0, 1e-4]), mu=jnp.asarray(0.2), tau=jnp.asarray(TAU),
                kT=jnp.asarray(KT), x=jnp.zeros(2))
    run = eqx.filter_jit(lambda model, field, mu, tau, kT, x: tr.current(model, field, mu, tau, small_disk, kT=kT, x=x))
    eager = tr.current(dirac, [0.0, 1e-4], 0.2, TAU, small_disk, kT=KT, check=False)
    np.testing.assert_allclose(np.asarray(run(**good)), np.asarray(eager), rtol=1e-12)
    no_tau = run(**{**good, "tau": jnp.asarray(0.0), "kT": jnp.asarray(0.0)})  # kT = 0 is fine without τ
    np.testing.assert_allclose(np.asarray(no_tau), np.asarray(tr.current(dirac, [0.0, 1e-4], 0.2, 0.0, small_disk)),
                               rtol=1e-12)
    nan = jnp.asarray(np.nan)
    for key, bad, match in [("field", jnp.array([np.nan, 0.0]), "field contains NaN"),
                            ("mu", jnp.asarray(np.inf), "mu contains NaN"),
                            ("tau", jnp.asarray(-1.0), "tau must be finite and >= 0"),
                            ("tau", nan, "tau must be finite and >= 0"),
                            ("kT", jnp.asarray(-0.01), "kT must be finite and >= 0"),
                            ("kT", nan, "kT must be finite and >= 0"),
                            ("kT", jnp.asarray(0.0), "kT must be > 0 eV where tau != 0"),
                            ("x", jnp.array([0.0, np.inf]), "x contains NaN"),
                            ("model", dirac.with_params({**dirac.params, "v": nan}), "model.params contains NaN")]:
        with pytest.raises(Exception, match=match):
            jax.block_until_ready(run(**{**good, key: bad}))

    with pytest.raises(Exception, match="mu contains NaN"):
        jax.block_until_ready(jax.vmap(lambda mu: tr.current(dirac, [0.0, 1e-4], mu, TAU, small_disk, kT=KT))(
            jnp.array([0.2, np.nan])))
    with pytest.raises(Exception, match="tau must be finite and >= 0"):
        jax.block_until_ready(jax.grad(lambda tau: tr.current(dirac, [0.0, 1e-4], 0.2, tau, small_disk, kT=KT)[0])(-1.0))
    with pytest.raises(Exception, match="kT must be > 0 eV where tau != 0"):
        jax.block_until_ready(jax.jit(lambda kT: tr.conductivity(dirac, [0.0, 0.0], 0.2, TAU, small_disk, kT=kT))(0.0))
    with pytest.raises(Exception, match="field strengths must be non-zero"):
        jax.block_until_ready(jax.jit(lambda e: tr.hall_vs_field(dirac, e, 0.2, TAU, small_disk, kT=KT))(0.0))
