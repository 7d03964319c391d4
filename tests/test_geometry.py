"""Band geometry: closed forms, sum rules, invariances, degeneracies, gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsemi as js
from jaxsemi.models._pauli import from_d


def _random_unitary(n, seed):
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n)))
    return jnp.asarray(q * (np.diag(r) / np.abs(np.diag(r))))


def _two_qwz(k, x, p):
    """Two coupled QWZ copies: 4 bands, lower pair and upper pair separated by a gap."""
    def h(m):
        return from_d(0.0, jnp.sin(k[0]), jnp.sin(k[1]), m + jnp.cos(k[0]) + jnp.cos(k[1]))
    c = p["c"] * jnp.eye(2)
    return jnp.block([[h(p["m1"]), c], [c, h(p["m2"])]])


@pytest.fixture(scope="module")
def four_band():
    return js.Model(_two_qwz, {"m1": 1.0, "m2": 1.5, "c": 0.1}, 2, np.eye(2), name="two_qwz")


def _degenerate(k, x, p):
    """QWZ ⊗ 1₂ in a randomly rotated orbital basis: every band exactly doubly degenerate."""
    h = jnp.kron(from_d(0.0, jnp.sin(k[0]), jnp.sin(k[1]), p["m"] + jnp.cos(k[0]) + jnp.cos(k[1])), jnp.eye(2))
    w = _random_unitary(4, 3)
    return w @ h @ jnp.conj(w.T)


@pytest.mark.parametrize("valley", [1, -1])
def test_dirac_curvature_closed_form(valley):
    v, delta = 2.0, 0.05
    model = js.models.massive_dirac(v, delta, valley=valley, tilt=0.7)
    k = jnp.array([[0.0, 0.0], [0.01, -0.03], [0.2, 0.1]])
    omega = js.berry_curvature(model, k)
    e = np.sqrt(v**2 * np.sum(np.asarray(k) ** 2, 1) + delta**2)
    expected_lower = valley * v**2 * delta / (2 * e**3)  # Xiao, Yao, Niu PRL 99, 236809 (2007)
    np.testing.assert_allclose(omega[:, 0, 0, 1], expected_lower, rtol=1e-12)
    np.testing.assert_allclose(omega[:, 1, 0, 1], -expected_lower, rtol=1e-12)
    np.testing.assert_allclose(omega[:, :, 1, 0], -omega[:, :, 0, 1], rtol=1e-12)
    np.testing.assert_allclose(omega[:, :, 0, 0], 0.0, atol=1e-12)


def test_curvature_sum_rule(four_band, haldane_topological):
    k = jnp.asarray(np.random.default_rng(0).uniform(-3, 3, (5, 2)))
    for model in (four_band, haldane_topological):
        omega = js.berry_curvature(model, k)
        assert np.max(np.abs(omega)) > 1e-3
        np.testing.assert_allclose(jnp.sum(omega, axis=-3), 0.0, atol=1e-10)


def test_mixed_curvatures_against_d_vector():
    """All four phase-space curvatures of a textured 2-band model vs Ω₋ = ½ d̂·(∂_a d̂ × ∂_b d̂).

    The reference differentiates only the d-vector (no eigenvectors), an independent route.
    """

    def d_of(k, x, p):
        return jnp.stack([
            p["v"] * k[0] + p["a"] * jnp.sin(p["g"] * x[1]),
            p["v"] * k[1] + p["a"] * x[0] * k[0],
            p["delta"] * jnp.cos(p["g"] * x[0]) + 0.3 * k[0] * x[1],
        ])

    params = {"v": 1.3, "a": 0.2, "g": 0.7, "delta": 0.15}
    model = js.Model(lambda k, x, p: from_d(0.0, *d_of(k, x, p)), params, 2)
    rng = np.random.default_rng(1)
    k, x = rng.uniform(-0.3, 0.3, 2), rng.uniform(-2, 2, 2)
    dk = jax.jacfwd(d_of, 0)(jnp.asarray(k), jnp.asarray(x), params)  # (3, 2)
    dx = jax.jacfwd(d_of, 1)(jnp.asarray(k), jnp.asarray(x), params)
    d = d_of(jnp.asarray(k), jnp.asarray(x), params)

    def ref(a, b):
        return 0.5 * jnp.einsum("i,ija->ja", d, jnp.cross(a[:, :, None], b[:, None, :], axis=0)) / jnp.linalg.norm(d) ** 3

    for kind, a, b in (("kk", dk, dk), ("kx", dk, dx), ("xk", dx, dk), ("xx", dx, dx)):
        omega = js.berry_curvature(model, k, x, kind=kind)
        expected = np.array([[ref(a[:, [i]], b[:, [j]])[0, 0] for j in range(2)] for i in range(2)])
        np.testing.assert_allclose(omega[0], expected, rtol=1e-10, atol=1e-12, err_msg=kind)
        np.testing.assert_allclose(omega[1], -expected, rtol=1e-10, atol=1e-12, err_msg=kind)
    assert abs(expected[0, 1]) > 1e-3


def test_basis_rotation_invariance(four_band):
    w = _random_unitary(4, 7)
    rotated = js.Model(lambda k, x, p: w @ _two_qwz(k, x, p) @ jnp.conj(w.T), four_band.params, 2, np.eye(2))
    k = jnp.asarray(np.random.default_rng(2).uniform(-3, 3, (4, 2)))
    np.testing.assert_allclose(js.berry_curvature(rotated, k), js.berry_curvature(four_band, k), atol=1e-10)
    np.testing.assert_allclose(
        js.nonabelian_curvature(rotated, k, [0, 1])[..., 0, 1].trace(axis1=-2, axis2=-1),
        js.nonabelian_curvature(four_band, k, [0, 1])[..., 0, 1].trace(axis1=-2, axis2=-1),
        atol=1e-10,
    )
    e1, _ = js.eigh(rotated, k)
    e0, _ = js.eigh(four_band, k)
    np.testing.assert_allclose(e1, e0, atol=1e-12)


def test_nonabelian_trace_equals_abelian_sum(four_band):
    k = jnp.asarray(np.random.default_rng(4).uniform(-3, 3, (6, 2)))
    f = js.nonabelian_curvature(four_band, k, [0, 1])
    omega = js.berry_curvature(four_band, k)
    np.testing.assert_allclose(jnp.trace(f[..., 0, 1], axis1=-2, axis2=-1), omega[:, 0, 0, 1] + omega[:, 1, 0, 1], atol=1e-10)
    # Hermitian matrix, antisymmetric in (a, b)
    np.testing.assert_allclose(f, jnp.conj(jnp.swapaxes(f, 1, 2)), atol=1e-12)
    np.testing.assert_allclose(f, -jnp.swapaxes(f, -1, -2), atol=1e-12)


def test_exact_degeneracy_finite_values_and_gradients():
    model = js.Model(_degenerate, {"m": 1.0}, 2, np.eye(2))
    qwz = js.models.qwz(1.0)
    k = jnp.array([0.4, -1.1])
    omega_qwz = js.berry_curvature(qwz, k)[0, 0, 1]

    def trace_f(m):
        f = js.nonabelian_curvature(model.with_params({"m": m}), k, [0, 1])
        return jnp.real(jnp.trace(f[:, :, 0, 1]))

    np.testing.assert_allclose(trace_f(1.0), 2 * omega_qwz, rtol=1e-10)
    per_band = js.berry_curvature(model, k)[:, 0, 1]
    assert np.all(np.isfinite(per_band))
    np.testing.assert_allclose(per_band[:2], omega_qwz, rtol=1e-10)  # group average
    grad = jax.grad(trace_f)(1.0)
    h = 1e-5
    fd = (trace_f(1.0 + h) - trace_f(1.0 - h)) / (2 * h)
    assert np.isfinite(grad)
    np.testing.assert_allclose(grad, fd, rtol=1e-6)
    grad_qwz = jax.grad(lambda m: 2 * js.berry_curvature(qwz.with_params({"m": m, "t": 1.0}), k)[0, 0, 1])(1.0)
    np.testing.assert_allclose(grad, grad_qwz, rtol=1e-8)


@pytest.mark.parametrize("which", ["four_band", "degenerate"])
def test_hall_curvature_from_one_rotation_equals_sum_over_states(which, four_band):
    """The Hall sums' Ω^{k_x k_y} from C = U†(∂_x𝓗 + i∂_y𝓗)U equals the sum over states of both
    rotated derivatives (``berry_curvature``), values and parameter gradients, also with degeneracies."""
    from jaxsemi._geometry import curvature_xy, hamiltonian_and_derivatives

    model = four_band if which == "four_band" else js.Model(_degenerate, {"m": 1.0}, 2, np.eye(2))
    k = jnp.asarray(np.random.default_rng(7).uniform(-3, 3, (4, 2)))
    weights = jnp.array([1.0, 0.7, 0.2, 0.0])  # a Fermi-like weight per band

    def one_rotation(p):
        m = model.with_params(p)
        return jax.vmap(lambda q: curvature_xy(*hamiltonian_and_derivatives(m, q, jnp.zeros(2), False)[:2])[1])(k)

    def sum_over_states(p):
        return js.berry_curvature(model.with_params(p), k)[..., 0, 1]

    assert np.max(np.abs(sum_over_states(model.params))) > 1e-2
    np.testing.assert_allclose(one_rotation(model.params), sum_over_states(model.params), rtol=1e-11, atol=1e-12)
    g1 = jax.grad(lambda p: jnp.sum(one_rotation(p) * weights))(model.params)
    g2 = jax.grad(lambda p: jnp.sum(sum_over_states(p) * weights))(model.params)
    for name in model.params:
        assert np.isfinite(g1[name])
        np.testing.assert_allclose(g1[name], g2[name], rtol=1e-9, atol=1e-11)


def test_connection_matches_curvature_sum(four_band):
    """Ω_n = i Σ_m (R_nm^x R_mn^y − R_nm^y R_mn^x) for off-diagonal connections (all pairs gapped)."""
    k = jnp.array([0.3, 0.9])
    r = js.berry_connection(four_band, k)
    omega = js.berry_curvature(four_band, k)[:, 0, 1]
    rebuilt = jnp.real(1j * (jnp.einsum("nm,mn->n", r[0], r[1]) - jnp.einsum("nm,mn->n", r[1], r[0])))
    np.testing.assert_allclose(rebuilt, omega, atol=1e-10)
    np.testing.assert_allclose(jnp.diagonal(r, axis1=-2, axis2=-1), 0.0)


def test_velocity_and_force_operators():
    v, delta, tilt = 1.5, 0.2, 0.4
    model = js.models.massive_dirac(v, delta, tilt=tilt, texture_G=[0.3, 0.0])
    k, x = jnp.array([0.1, 0.05]), jnp.array([1.0, 0.0])
    vel = js.velocity_matrix(model, k, x)
    d = np.array([v * 0.1, v * 0.05, delta * np.cos(0.3)])
    e = np.linalg.norm(d)
    # band velocity ∂ε±/∂ħk = (tilt x̂ ± v² k / e)/ħ
    np.testing.assert_allclose(vel[0, 1, 1], (tilt + v**2 * 0.1 / e) / js.units.HBAR, rtol=1e-12)
    np.testing.assert_allclose(vel[0, 0, 0], (tilt - v**2 * 0.1 / e) / js.units.HBAR, rtol=1e-12)
    force = js.force_matrix(model, k, x)
    # −∂ε±/∂x = ∓ d_z ∂d_z/∂x / e with ∂d_z/∂x = −Δ G sin(G x)
    dz_dx = -delta * 0.3 * np.sin(0.3)
    np.testing.assert_allclose(force[0, 1, 1], -d[2] * dz_dx / e, rtol=1e-12)
    np.testing.assert_allclose(force[1], 0.0, atol=1e-14)


def test_batch_shapes(haldane_topological):
    k = jnp.zeros((3, 4, 2)) + 0.1
    assert js.berry_curvature(haldane_topological, k).shape == (3, 4, 2, 2, 2)
    assert js.berry_curvature(haldane_topological, k, kind="kx").shape == (3, 4, 2, 2, 2)
    assert js.nonabelian_curvature(haldane_topological, k, 0).shape == (3, 4, 1, 1, 2, 2)
    e, u = js.eigh(haldane_topological, k)
    assert e.shape == (3, 4, 2) and u.shape == (3, 4, 2, 2)
    np.testing.assert_allclose(js.berry_curvature(haldane_topological, k, chunk_size=5),
                               js.berry_curvature(haldane_topological, k), atol=1e-13)


def test_two_band_closed_form_matches_lapack():
    from jaxsemi._eigh import eigh_2x2, eigh_general

    rng = np.random.default_rng(5)
    for _ in range(20):
        a = rng.normal(size=(2, 2)) + 1j * rng.normal(size=(2, 2))
        h = jnp.asarray(a + a.conj().T)
        w2, u2 = eigh_2x2(h)
        wl, ul = eigh_general(h)
        np.testing.assert_allclose(w2, wl, atol=1e-13)
        np.testing.assert_allclose(jnp.abs(jnp.einsum("in,in->n", jnp.conj(u2), ul)), 1.0, atol=1e-12)
        np.testing.assert_allclose(h @ u2, u2 * w2, atol=1e-12)
    # exactly degenerate and d ∥ −z: finite and unitary
    for h in (jnp.eye(2, dtype=complex), jnp.diag(jnp.array([-1.0, 1.0])).astype(complex)):
        w, u = eigh_2x2(h)
        np.testing.assert_allclose(u @ jnp.conj(u.T), np.eye(2), atol=1e-14)
        np.testing.assert_allclose(h @ u, u * w, atol=1e-14)


def _embedded(k, x, p):
    """The massive Dirac cone plus a decoupled band at +50 eV: forces the general (LAPACK) path."""
    h2 = from_d(p["tilt"] * k[0], p["v"] * k[0], p["v"] * k[1], p["delta"])
    return jnp.block([[h2, jnp.zeros((2, 1))], [jnp.zeros((1, 2)), 50.0 * jnp.ones((1, 1))]]).astype(complex)


def test_two_band_fast_path_equals_general_path_with_gradients():
    params = {"v": 1.3, "delta": 0.07, "tilt": 0.2}
    two = js.models.massive_dirac(1.3, 0.07, tilt=0.2)
    three = js.Model(_embedded, params, 2)
    k = jnp.array([[0.03, -0.02], [0.3, 0.1]])
    np.testing.assert_allclose(js.berry_curvature(two, k), js.berry_curvature(three, k)[:, :2], rtol=1e-12, atol=1e-11)
    np.testing.assert_allclose(jnp.diagonal(js.velocity_matrix(two, k), axis1=-2, axis2=-1),
                               jnp.diagonal(js.velocity_matrix(three, k), axis1=-2, axis2=-1)[..., :2], rtol=1e-12)

    def lower_curvature(model, p):
        return js.berry_curvature(model.with_params(p), k)[:, 0, 0, 1].sum()

    g2 = jax.grad(lambda p: lower_curvature(two, p))(params)
    g3 = jax.grad(lambda p: lower_curvature(three, p))(params)
    for name in params:
        np.testing.assert_allclose(g2[name], g3[name], rtol=1e-10, atol=1e-12)


def test_two_band_path_safe_at_gap_closing():
    gapless = js.models.massive_dirac(1.0, 0.0)
    k0 = jnp.zeros(2)
    e, u = js.eigh(gapless, k0)
    assert np.all(np.isfinite(e)) and np.all(np.isfinite(u))
    omega = js.berry_curvature(gapless, k0)
    np.testing.assert_allclose(omega, 0.0)  # degenerate pair: group average of the (empty) sums

    def energy_sum(delta):
        w, _ = js.eigh(js.models.massive_dirac(1.0, delta), jnp.array([0.0, 0.0]))
        return jnp.sum(w**2)  # = 2Δ², smooth through the closing

    assert np.isfinite(jax.grad(energy_sum)(0.0))
    np.testing.assert_allclose(jax.grad(energy_sum)(0.1), 0.4, rtol=1e-12)


@pytest.mark.parametrize("model", [js.models.massive_dirac(1.3, 0.07, valley=-1, tilt=0.2, texture_G=[0.3, 0.1]),
                                   js.models.qwz(-1.2, 0.9), js.models.haldane(1.0, 0.15, 1.1, 0.2)],
                         ids=lambda m: m.name)
def test_registered_d_vector_energies_equal_eigvalsh_with_gradients(model):
    """``band_energies`` from a model's registered d-vector (real arithmetic) equals the eigenvalues
    of its 𝓗, with the same parameter gradients, and ``two_band_d`` equals d read off 𝓗 (a swapped
    or sign-flipped component would move the textured characteristic's rates); a copy with an
    unregistered Hamiltonian takes the eigvalsh path; at a gap closing (Δ = 0, k = 0) both levels are
    0 and the gradient finite."""
    from jaxsemi._eigh import d_vector, eigvalsh
    from jaxsemi._geometry import band_energies, two_band_d
    from jaxsemi._model import D_FORMS, registered

    assert registered(D_FORMS, model) is not None
    copy = js.Model(lambda k, x, p: model.hamiltonian(k, x, p), model.params, model.dim)
    assert registered(D_FORMS, copy) is None
    x = jnp.array([2.0, -1.0])
    for k in (jnp.array([0.31, -0.17]), jnp.array([-1.2, 0.4])):
        expected = jnp.linalg.eigvalsh(model.hamiltonian(k, x, model.params))
        np.testing.assert_allclose(jnp.hstack(band_energies(model, k, x)), expected, rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(jnp.hstack(band_energies(copy, k, x)), expected, rtol=1e-13, atol=1e-14)
        for got, want in zip(two_band_d(model, k, x), d_vector(model.hamiltonian(k, x, model.params))):
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)

        def sq(p, m):
            return jnp.sum(jnp.hstack(band_energies(m.with_params(p), k, x)) * jnp.array([1.0, 3.0]))

        ga = jax.grad(sq)(model.params, model)
        gb = jax.grad(lambda p: jnp.sum(eigvalsh(model.hamiltonian(k, x, p)) * jnp.array([1.0, 3.0])))(model.params)
        for name in ga:
            np.testing.assert_allclose(ga[name], gb[name], rtol=1e-12, atol=1e-13)
    closing = js.models.massive_dirac(1.0, 0.0)
    np.testing.assert_allclose(jnp.hstack(band_energies(closing, jnp.zeros(2), jnp.zeros(2))), 0.0)
    assert np.isfinite(jax.grad(lambda d: band_energies(closing.with_params({**closing.params, "delta": d}),
                                                          jnp.zeros(2), jnp.zeros(2))[1])(0.0))


def test_textured_dirac_mixed_curvature_closed_form():
    """Ω^{k_a x_b} of massive_dirac with Δ(x) = Δ cos(G·x), by hand from the d-vector:
    d = (τ v k_x, v k_y, Δ cos(G·x)) ⇒ Ω₋^{k_a x_b} = ½ d·(∂_{k_a}d × ∂_{x_b}d)/|d|³,
    ∂_{k_x}d = (τv, 0, 0), ∂_{k_y}d = (0, v, 0), ∂_{x_b}d = (0, 0, −Δ G_b sin(G·x))."""
    v, delta, G = 1.4, 0.12, np.array([0.3, -0.2])
    for valley in (1, -1):
        model = js.models.massive_dirac(v, delta, valley=valley, texture_G=G)
        k, x = np.array([0.05, -0.08]), np.array([2.0, 1.5])
        gx = G @ x
        d = np.array([valley * v * k[0], v * k[1], delta * np.cos(gx)])
        dk = [np.array([valley * v, 0, 0]), np.array([0, v, 0])]
        dx = [np.array([0, 0, -delta * G[b] * np.sin(gx)]) for b in range(2)]
        ref = np.array([[0.5 * d @ np.cross(dk[a], dx[b]) / np.linalg.norm(d) ** 3 for b in range(2)] for a in range(2)])
        omega = js.berry_curvature(model, k, x, kind="kx")
        np.testing.assert_allclose(omega[0], ref, rtol=1e-10)
        np.testing.assert_allclose(omega[1], -ref, rtol=1e-10)
        np.testing.assert_allclose(js.berry_curvature(model, k, x, kind="xk")[0], -ref.T, rtol=1e-10)
        np.testing.assert_allclose(js.berry_curvature(model, k, x, kind="xx"), 0.0, atol=1e-14)
        assert np.max(np.abs(ref)) > 1e-2


def test_haldane_flux_phase_under_vmap_jit_and_derivatives():
    """φ enters through a cond (computed once per program, ``models.haldane._cos_sin``): the same 𝓗 batched,
    jitted and NaN-propagating, and its φ-derivative that of the closed form."""
    model = js.models.haldane(1.0, 0.15, 1.1, 0.2)
    k, x = jnp.array([0.3, -0.7]), jnp.zeros(2)

    def h(phi):
        return model.hamiltonian(k, x, {**model.params, "phi": phi})

    phis = jnp.array([0.2, 1.1, jnp.nan])
    looped = np.stack([np.asarray(h(p)) for p in phis])
    np.testing.assert_allclose(np.asarray(jax.vmap(h)(phis)), looped, rtol=0, atol=1e-15)  # NaN where NaN
    np.testing.assert_allclose(np.asarray(jax.jit(h)(phis[1])), looped[1], rtol=0, atol=1e-15)
    assert np.all(np.isnan(looped[2][0, 0])) and np.all(np.isfinite(looped[:2]))
    s3 = np.sqrt(3.0)
    nnn = np.array([[0.0, s3], [-1.5, -s3 / 2], [1.5, -s3 / 2]])  # A → A bonds (their set, up to sign)
    # ∂𝓗/∂φ = −2t₂ sin φ Σcos(b·k) − 2t₂ cos φ Σsin(b·k) σ_z (the Σsin changes sign with the bond set's orientation)
    slope = jax.jacfwd(h)(1.1)
    reverse = jax.jit(jax.grad(lambda p: jnp.real(h(p)[0, 0] + h(p)[1, 1])))(1.1)
    np.testing.assert_allclose(float(reverse), -4 * 0.15 * np.sin(1.1) * np.sum(np.cos(nnn @ np.asarray(k))), rtol=1e-12)
    np.testing.assert_allclose(np.real(np.asarray(slope[0, 0] + slope[1, 1])), float(reverse), rtol=1e-12)
    np.testing.assert_allclose(abs(np.real(np.asarray(slope[0, 0] - slope[1, 1])) / 2),
                               abs(2 * 0.15 * np.cos(1.1) * np.sum(np.sin(nnn @ np.asarray(k)))), rtol=1e-12)


def test_cross_product_derivatives_equal_jnp_cross():
    """``_eigh.cross`` (a custom tangent through skew matrices, so reverse mode has no pads) equals ``jnp.cross``
    with broadcasting, in forward and reverse mode, and under vmap; and it is the cross product (e_x × e_y = e_z)."""
    from jaxsemi._eigh import cross

    rng = np.random.default_rng(3)
    a, b = jnp.asarray(rng.normal(size=(4, 1, 3))), jnp.asarray(rng.normal(size=(5, 3)))
    np.testing.assert_allclose(cross(jnp.eye(3)[0], jnp.eye(3)[1]), [0.0, 0.0, 1.0])
    np.testing.assert_allclose(cross(a, b), jnp.cross(a, b), rtol=1e-15)
    da, db = jnp.asarray(rng.normal(size=a.shape)), jnp.asarray(rng.normal(size=b.shape))
    for f in (cross, jnp.cross):
        assert f(a, b).shape == (4, 5, 3)
    ours, ref = (jax.jvp(f, (a, b), (da, db)) for f in (cross, jnp.cross))
    np.testing.assert_allclose(ours[1], ref[1], rtol=1e-13, atol=1e-14)
    w = jnp.asarray(rng.normal(size=(4, 5, 3)))
    grads = [jax.grad(lambda a, b, f=f: jnp.sum(w * jnp.sin(f(a, b))), argnums=(0, 1))(a, b) for f in (cross, jnp.cross)]
    for g, h in zip(*grads):
        np.testing.assert_allclose(g, h, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(jax.jit(jax.vmap(cross))(a[:, 0], b[:4]), jnp.cross(a[:, 0], b[:4]), rtol=1e-15)
