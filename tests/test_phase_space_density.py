"""phase_space_density=True: states weighted by the Liouville density D of Eq. 43's flow.

Checks: with D the E = 0 SSCT current of a textured QWZ model is the magnetisation current
(e/ħ)∂_x∫G Ω computed independently; D = 1 when the eigenstates do not depend on x; Liouville's
theorem ∇_λ·(D λ̇) = 0 (two and three bands); the non-adiabatic D (one- and two-band manifolds);
gradients against differences. Units: E in V/Å, μ and kT in eV, τ in fs, x in Å.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsemi as js
from jaxsemi import transport as tr
from jaxsemi._geometry import abelian_curvature, nonabelian_curvature_block, point_geometry
from jaxsemi.models._pauli import from_d
from jaxsemi.transport._phase_space import manifold_density, ssct_density
from jaxsemi.transport._ssct import band_motion
from jaxsemi.units import HBAR

MU, KT, TAU = 1.5, 0.1, 10.0  # μ in the upper QWZ band


def _qwz_texture(k, x, p):
    """QWZ with a mass texture m(x) = m + δm cos(G x₁) and an exchange field b sin(G x₂) σ_x."""
    m = p["m"] + p["dm"] * jnp.cos(p["G"] * x[0])
    return from_d(0.0, jnp.sin(k[0]) + p["b"] * jnp.sin(p["G"] * x[1]), jnp.sin(k[1]),
                  m + jnp.cos(k[0]) + jnp.cos(k[1]))


def _model(g, b=0.0):
    """b = 0: the states depend on x through m(x₁) only, and D = 1 + Σ_α Ω^{k_α x_α} exactly."""
    return js.Model(_qwz_texture, {"m": 1.0, "dm": 0.3, "G": g, "b": b}, 2, np.eye(2), name="textured QWZ")


@pytest.fixture(scope="module")
def grid():
    return js.kgrid.brillouin_zone(np.eye(2), 64)


def test_equilibrium_current_is_a_magnetisation_current(grid):
    """J(E = 0) with D equals −(e/ħ)Σ_b ∂_{x_b} M_ab, M_ab = Σ_n∫G_n Ω_n^{k_a k_b}, G = −kT ln(1 + e^{−(ε−μ)/kT}).

    M is a k-integral at neighbouring x (central difference), independent of the current code.
    Without D the current differs by a factor ≈ 2.5 (the paper's Eq. 47 weights states by 1).
    """
    g = 0.02
    model, x0 = _model(g), 1.0 / g

    def magnetisation(x):
        x = jnp.array([x, 0.0])
        w, _ = js.eigh(model, grid.points, x)
        omega = js.berry_curvature(model, grid.points, x)[..., 0, 1]  # Ω^{k_x k_y} (N, n)
        grand = -KT * jnp.logaddexp(0.0, -(w - MU) / KT)
        return float(jnp.sum(grid.weights[:, None] * grand * omega))

    h = 1e-4 / g
    ref_y = (magnetisation(x0 + h) - magnetisation(x0 - h)) / (2 * h) / HBAR  # J_y = −(1/ħ)∂_x M_yx
    kw = dict(kT=KT, x=jnp.array([x0, 0.0]), check=False)
    j_d = np.asarray(tr.current(model, [0.0, 0.0], MU, TAU, grid, phase_space_density=True, **kw))
    j_1 = np.asarray(tr.current(model, [0.0, 0.0], MU, TAU, grid, **kw))
    np.testing.assert_allclose(j_d[1], ref_y, rtol=1e-7)
    assert abs(j_d[0]) < 1e-10 * abs(j_d[1])  # J ⟂ ∇m: divergence-free
    assert abs(j_1[1] / j_d[1] - 1) > 0.3


def _potential_slope(k, x, p):
    """Tilted massive Dirac cone in a linear potential U'x₁: x-dependent energies, x-independent states."""
    h = from_d(p["tilt"] * k[0], p["v"] * k[0], p["v"] * k[1], p["delta"])
    return h + p["slope"] * x[0] * jnp.eye(2)


@pytest.mark.parametrize("theory", ["ssct", "nonadiabatic"])
def test_density_is_one_without_a_texture_of_the_states(theory):
    """A potential gradient is textured (F_b ≠ 0) but has Ω^{kx} = 0: D = 1 and nothing changes."""
    model = js.Model(_potential_slope, {"v": 1.0, "delta": 0.1, "tilt": 0.3, "slope": 0.002}, 2)
    grid = js.kgrid.disk(1.5, 40, 16, scale=0.1, breaks=[0.17])
    kw = dict(kT=0.01, x=jnp.array([3.0, 0.0]), theory=theory, check=False)
    j = {d: np.asarray(tr.current(model, [1e-3, 2e-3], 0.2, TAU, grid, phase_space_density=d, **kw))
         for d in (True, False)}
    assert np.abs(j[False]).max() > 1e-6
    np.testing.assert_allclose(j[True], j[False], rtol=1e-13, atol=1e-18)


def _three_band(k, x, p):
    """A generic textured three-band lattice model (no Bloch-sphere structure: Ω∧Ω ≠ 0)."""
    a, b = p["a"] * jnp.cos(p["G"] * x[0]), p["b"] * jnp.sin(p["G"] * x[1])
    h = jnp.array([[jnp.cos(k[0]) + a, jnp.sin(k[0]) + 0.3j * jnp.sin(k[1]), 0.4 * jnp.sin(k[1]) + 1j * b],
                   [0.0, -jnp.cos(k[1]), 0.5 * jnp.sin(k[0] + k[1]) + 0.2j],
                   [0.0, 0.0, 0.6 + b]], dtype=complex)
    return jnp.triu(h, 1) + jnp.conj(jnp.triu(h, 1)).T + jnp.diag(jnp.real(jnp.diag(h))).astype(complex)


@pytest.mark.parametrize("which", ["qwz", "three_band"])
def test_liouville_theorem(which):
    """∇_λ·(D λ̇) = 0 at finite E in a strong 2D texture (∫D f conserved by the flow), ∇_λ·λ̇ ≠ 0.

    For three bands D (the Pfaffian) differs from its first order 1 + Σ_α Ω^{k_α x_α}, and only
    the Pfaffian makes the flow divergence-free.
    """
    if which == "qwz":
        model, bands = _model(0.3, 0.4), (0, 1)
    else:
        model, bands = js.Model(_three_band, {"a": 0.4, "b": 0.3, "G": 0.5}, 2, np.eye(2)), (0, 1, 2)
    field = jnp.array([[0.02, -0.01]])

    def flow(lam, band, density):
        x, k = lam[:2], lam[2:]
        geo = point_geometry(model, k, x, True)
        xdot, kdot, _, _ = band_motion(geo, field)
        d = {"none": 1.0, "pfaffian": ssct_density(geo)[band],
             "first": 1 + jnp.trace(abelian_curvature(geo.energies, geo.dk, geo.dx)[band])}[density]
        return d * jnp.concatenate([xdot[0, band], kdot[0, band]])

    div = jax.jit(lambda lam, band, density: jnp.trace(jax.jacfwd(flow)(lam, band, density)), static_argnums=(1, 2))
    for lam in ([1.0, 0.3, 0.4, -1.2], [2.5, -1.0, 2.0, 0.7], [4.0, 0.0, -0.3, 2.9]):
        lam = jnp.asarray(lam)
        for band in bands:
            plain = abs(float(div(lam, band, "none")))
            assert plain > 1e-5
            assert abs(float(div(lam, band, "pfaffian"))) < 1e-9 * plain
            if which == "three_band":
                assert abs(float(div(lam, band, "first"))) > 1e-4 * plain


def test_nonadiabatic_density_is_first_order_of_the_liouville_density():
    """One-band manifold: D_i = 1 + Σ_α 𝓕^{k_α x_α} = 1 + Tr Ω^{kx}, ∝ G. For two bands the Berry
    2-form is pulled back from the Bloch sphere (Ω∧Ω = 0), so the Pfaffian is that too, exactly."""
    k, x = jnp.array([0.4, -1.1]), jnp.array([7.0, 3.0])
    firsts = []
    for g in (0.2, 0.1):
        geo = point_geometry(_model(g, 0.4), k, x * 0.2 / g, True)
        fkx = nonabelian_curvature_block(geo.energies, geo.dk, geo.dx, 1, 2)
        d_man = manifold_density(jnp.ones((1, 1, 1), complex), fkx)[0, 0]
        first = 1 + jnp.trace(abelian_curvature(geo.energies, geo.dk, geo.dx)[1])
        np.testing.assert_allclose(float(d_man), float(first), rtol=1e-13)
        np.testing.assert_allclose(float(ssct_density(geo)[1]), float(first), rtol=1e-12)
        firsts.append(abs(float(first - 1)))
    np.testing.assert_allclose(firsts[0] / firsts[1], 2.0, rtol=0.02)  # D − 1 ∝ G


@pytest.mark.timeout(300)
def test_density_gradients_match_finite_differences():
    """∂J_y/∂(m, δm, G, μ, kT, x) of the textured current with D (E ≠ 0) against differences."""
    grid = js.kgrid.brillouin_zone(np.eye(2), 20)
    p0 = {"m": 1.0, "dm": 0.3, "G": 0.05, "b": 0.2}
    e = jnp.array([1e-3, 0.0])

    def jy(p, mu, kT, x):
        model = js.Model(_qwz_texture, p, 2, np.eye(2))
        return tr.current(model, e, mu, TAU, grid, kT=kT, x=jnp.stack([x, 0.3 * x]), phase_space_density=True,
                          check=False)[1]

    x0 = (p0, MU, KT, 10.0)  # x = (x₁, 0.3 x₁)
    grads = jax.grad(jy, argnums=(0, 1, 2, 3))(*jax.tree_util.tree_map(jnp.asarray, x0))
    flat = {**{n: grads[0][n] for n in p0}, "mu": grads[1], "kT": grads[2], "x": grads[3]}
    for name, g in flat.items():
        h = 1e-3 if name == "x" else 1e-5

        def at(step):
            p, rest = dict(p0), list(x0[1:])
            if name in p:
                p[name] = p[name] + step
            else:
                rest[("mu", "kT", "x").index(name)] += step
            return float(jy(p, *map(jnp.asarray, rest)))

        fd = (at(h) - at(-h)) / (2 * h)
        np.testing.assert_allclose(float(g), fd, rtol=1e-5, atol=1e-13, err_msg=name)


@pytest.mark.timeout(300)
def test_nonadiabatic_density_of_a_two_band_manifold():
    """Manifold (1, 2) of the three-band texture: Σ_i D_i = 2 + Tr 𝓕^{kx} in any basis of the manifold;
    D changes the current at finite E; its gradients match differences."""
    p0 = {"a": 0.4, "b": 0.3, "G": 0.5}
    model = js.Model(_three_band, p0, 2, np.eye(2))
    geo = point_geometry(model, jnp.array([0.3, -0.8]), jnp.array([1.0, 2.0]), True)
    fkx = nonabelian_curvature_block(geo.energies, geo.dk, geo.dx, 1, 3)
    q, _ = jnp.linalg.qr(jnp.array([[1.0, 0.4 + 0.3j], [-0.2j, 0.7]]))  # another basis of the manifold
    sums = [float(jnp.sum(manifold_density(eta[None], fkx))) for eta in (jnp.eye(2, dtype=complex), q)]
    trace = 2 + float(jnp.real(jnp.einsum("nnaa->", fkx)))
    np.testing.assert_allclose(sums, [trace, trace], rtol=1e-13)
    assert abs(trace - 2) > 1e-4

    grid = js.kgrid.brillouin_zone(np.eye(2), 10)
    e = jnp.array([0.01, 0.005])

    def jx(a, x, density=True):
        m = js.Model(_three_band, {**p0, "a": a}, 2, np.eye(2))
        return tr.current(m, e, 0.0, TAU, grid, kT=0.2, x=jnp.stack([x, 0.5]), theory="nonadiabatic", bands=(1, 2),
                          phase_space_density=density, check=False)[0]

    with_d, without = float(jx(0.4, 1.0)), float(jx(0.4, 1.0, False))
    assert abs(with_d - without) > 1e-3 * abs(without)
    grads = jax.grad(jx, argnums=(0, 1))(jnp.asarray(0.4), jnp.asarray(1.0))
    for i, (g, h) in enumerate(zip(grads, (1e-5, 1e-4))):
        step = [(h, 0.0), (0.0, h)][i]
        fd = (float(jx(0.4 + step[0], 1.0 + step[1])) - float(jx(0.4 - step[0], 1.0 - step[1]))) / (2 * h)
        np.testing.assert_allclose(float(g), fd, rtol=1e-5, atol=1e-12)
