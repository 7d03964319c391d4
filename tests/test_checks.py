"""Bad input fails early with a message that says what is wrong; units are exact."""

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
