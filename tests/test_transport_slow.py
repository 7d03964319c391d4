"""Heavier transport checks (``slow``): lattice models, 3D, texture and degenerate-manifold gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsemi as js
from jaxsemi import transport as tr
from jaxsemi.units import HBAR, to_e2_over_h

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_haldane_nonadiabatic_matches_ssct_and_quantised_hall():
    """Lattice Chern insulator: both theories give σ_xy = −C = −1 (μ in the gap) and agree to O(E)."""
    model = js.models.haldane(1.0, 0.1, np.pi / 2, 0.0)
    grid = js.kgrid.brillouin_zone(model, 30)
    kw = dict(kT=0.01, check=False)
    s_ss = tr.conductivity(model, [0.0, 0.0], 0.0, 10.0, grid, **kw)
    s_na = tr.conductivity(model, [0.0, 0.0], 0.0, 10.0, grid, theory="nonadiabatic", **kw)
    np.testing.assert_allclose(s_na, s_ss, atol=1e-10)
    np.testing.assert_allclose(s_ss[0, 1], -1.0, atol=2e-3)
    # a field of 2% of the gap per lattice spacing leaves the quantised plateau nearly intact
    sig = tr.hall_vs_field(model, jnp.array([0.01, -0.01]), 0.0, 10.0, grid, **kw)
    np.testing.assert_allclose(sig[0], sig[1], rtol=1e-10)
    np.testing.assert_allclose(sig, -1.0, atol=2e-2)


def _cubic(k, x, p):
    return (-2 * p["t"] * jnp.sum(jnp.cos(k)))[None, None].astype(complex)


def test_drude_3d_tight_binding_fermi_sea_identity():
    """3D single band: σ_xx = e²τ ∫(−f′)v_x² = (e²τ/ħ²) ∫ f ∂²ε/∂k_x² (periodic BZ), in (e²/h)/Å."""
    model = js.Model(_cubic, {"t": 0.5}, 3, np.eye(3), name="cubic")
    grid = js.kgrid.brillouin_zone(model, 24)  # the discrete sums converge exponentially for kT = 0.3
    mu, kT, tau = -0.8, 0.3, 5.0
    sigma = tr.conductivity(model, [0.0, 0.0, 0.0], mu, tau, grid, kT=kT, check=False)
    k = np.asarray(grid.points)
    eps = -2 * 0.5 * np.cos(k).sum(-1)
    f = 0.5 * (1 - np.tanh((eps - mu) / (2 * kT)))
    ref = to_e2_over_h(tau / HBAR**2 * np.sum(np.asarray(grid.weights) * f * 2 * 0.5 * np.cos(k[:, 0])))
    np.testing.assert_allclose(np.diag(sigma), [ref] * 3, rtol=1e-8)
    np.testing.assert_allclose(sigma - np.diag(np.diag(sigma)), 0.0, atol=1e-12 * ref)


def _fd(f, x0, h):
    return (f(x0 + h) - f(x0 - h)) / (2 * h)


def test_texture_gradients_nonadiabatic():
    """∂J/∂G and ∂J/∂x of the non-adiabatic current in a texture at finite field vs differences."""
    grid = js.kgrid.disk(1.5, 32, 12, scale=0.1)
    field = jnp.array([0.0, 0.002])

    def j_of(g, x):
        model = js.models.massive_dirac(1.0, 0.1, texture_G=[g, 0.0])
        return tr.current(model, field, 0.15, 10.0, grid, kT=0.01, x=jnp.array([x, 0.0]),
                          theory="nonadiabatic", check=False)[0]

    g0, x0 = 0.02, 40.0
    dg, dx = jax.grad(j_of, argnums=(0, 1))(g0, x0)
    np.testing.assert_allclose(dg, _fd(lambda g: j_of(g, x0), g0, 1e-6), rtol=1e-5)
    np.testing.assert_allclose(dx, _fd(lambda x: j_of(g0, x), x0, 1e-3), rtol=1e-5)


def test_degenerate_manifold_gradient_is_finite_and_correct():
    """Eq. 53 current of the exactly degenerate W(k)-rotated QWZ pair: NaN-free gradient = differences."""
    from test_transport import _w_qwz

    grid = js.kgrid.brillouin_zone(np.eye(2), 8)  # coarse: the grid error gives J a sizeable m-dependence
    e = jnp.array([0.0, 1e-3])

    def jx(m, theory):
        model = js.Model(_w_qwz, {"m": m, "a": 0.6}, 2, np.eye(2), name="rotated QWZ x 2")
        return tr.current(model, e, 0.0, 10.0, grid, kT=0.01, theory=theory, bands=(0, 1), check=False)[0]

    grads = {}
    for theory in ("nonabelian", "nonadiabatic"):
        grads[theory] = g = jax.grad(jx)(1.3, theory)
        assert np.isfinite(g) and abs(g) > 1e-3 * abs(float(jx(1.3, theory)))
        np.testing.assert_allclose(g, _fd(lambda m: jx(m, theory), 1.3, 1e-4), rtol=1e-5)
    np.testing.assert_allclose(grads["nonadiabatic"], grads["nonabelian"], rtol=1e-8)


def test_textured_ssct_of_a_3d_stack_is_the_2d_current():
    """A 3D model that is a k_z- and z-independent stack of a textured 2D cone: its SSCT current (6×6 systems of
    Eq. 43, solved by Cramer's rule) is the 2D current (4×4 systems, by the adjugate) times Σ_z w_z, first order
    and exact (backward characteristics), and so is its gradient in the texture's wavevector G."""
    field, x = jnp.array([0.003, 0.002]), jnp.array([10.0, 5.0])
    disk = js.kgrid.disk(2.0, 24, 8, scale=0.1)
    kz, wz = np.array([-0.2, 0.0, 0.2]), np.full(3, 0.2 / (2 * np.pi))
    points = np.concatenate([np.repeat(np.asarray(disk.points), 3, 0), np.tile(kz, len(disk))[:, None]], 1)
    stack_grid = js.KGrid(points, np.repeat(np.asarray(disk.weights), 3) * np.tile(wz, len(disk)))

    def currents(g, relaxation):
        cone = js.models.massive_dirac(1.0, 0.1, tilt=0.3, texture_G=g)
        stack = js.Model(lambda k, y, p: cone.hamiltonian(k[:2], y[:2], p), dict(cone.params), 3, name="stack")
        kw = dict(kT=0.01, relaxation=relaxation, check=False)
        j2 = tr.current(cone, field, 0.2, 10.0, disk, x=x, **kw)
        j3 = tr.current(stack, jnp.append(field, 0.0), 0.2, 10.0, stack_grid, x=jnp.append(x, 3.0), **kw)
        return j2, j3

    g = jnp.array([0.02, 0.01])
    for relaxation in ("first_order", "exact"):
        j2, j3 = currents(g, relaxation)
        assert np.max(np.abs(j2)) > 1e-6  # a current to compare
        np.testing.assert_allclose(j3[:2], j2 * wz.sum(), rtol=1e-9, atol=1e-12 * np.max(np.abs(j2)))
        np.testing.assert_allclose(j3[2], 0.0, atol=1e-12 * np.max(np.abs(j2)))
    d2, d3 = (jax.jacrev(lambda g, i=i: currents(g, "first_order")[i][0])(g) for i in (0, 1))
    assert np.max(np.abs(d2)) > 0
    np.testing.assert_allclose(d3, d2 * wz.sum(), rtol=1e-8, atol=1e-12 * np.max(np.abs(d2)))
