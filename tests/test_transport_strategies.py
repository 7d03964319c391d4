"""js.transport theory objects as public API: SSCT() / NonAbelian(bands) / NonAdiabatic(bands)
reproduce their string aliases (values and validity warnings), user subclasses of AbstractTheory
run through current / conductivity (a Drude-only theory against the closed-form Drude σ and the
SSCT σ_xx; a theory with an array field under jit and grad), bad theories and positional
arguments after the grid fail clearly."""

import warnings
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsemi as js

tr = js.transport
HBAR = js.units.HBAR
V, DELTA, MU, TAU, KT = 1.0, 0.1, 0.2, 10.0, 0.01  # eV·Å, eV, eV, fs, eV


@pytest.fixture(scope="module")
def dirac():
    return js.models.massive_dirac(V, DELTA, tilt=0.3)


@pytest.fixture(scope="module")
def grid():
    return js.kgrid.disk(1.0, 24, 12, scale=DELTA / V, breaks=[MU / V])


def _run(fn):
    """fn()'s value and the messages of the ValidityWarnings it issued."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = np.asarray(fn())
    return value, [str(w.message) for w in caught if issubclass(w.category, tr.ValidityWarning)]


# ----------------------------------------------------------------------------- built-in objects


@pytest.mark.parametrize("obj, alias, bands", [
    (tr.SSCT(), "ssct", None),
    (tr.NonAbelian(0), "nonabelian", 0),  # the filled lower band; the upper one SSCT
    (tr.NonAdiabatic(), "nonadiabatic", None),
    (tr.NonAdiabatic([1]), "nonadiabatic", [1]),  # band 0 outside the manifold: its SSCT current
])
def test_objects_reproduce_aliases(dirac, grid, obj, alias, bands):
    """theory=SSCT() / NonAbelian(bands) / NonAdiabatic(bands) give the string aliases' currents,
    conductivities and validity warnings; the field batch is large enough to warn (Eq. 37)."""
    fields = jnp.array([[0.0, 1e-4], [0.03, 0.01]])  # V/Å
    kw = dict(kT=KT, x=None)
    ref_j, ref_w = _run(lambda: tr.current(dirac, fields, MU, TAU, grid, theory=alias, bands=bands, **kw))
    obj_j, obj_w = _run(lambda: tr.current(dirac, fields, MU, TAU, grid, theory=obj, **kw))
    np.testing.assert_allclose(obj_j, ref_j, rtol=1e-12, atol=1e-12 * np.max(np.abs(ref_j)))
    assert obj_w == ref_w and ref_w  # the same warnings, and some
    ref_s = tr.conductivity(dirac, [0.0, 0.0], MU, TAU, grid, kT=KT, theory=alias, bands=bands, check=False)
    obj_s = tr.conductivity(dirac, [0.0, 0.0], MU, TAU, grid, kT=KT, theory=obj, check=False)
    np.testing.assert_allclose(np.asarray(obj_s), np.asarray(ref_s), rtol=1e-12, atol=1e-12)
    assert np.max(np.abs(np.asarray(ref_s))) > 0.1  # e²/h: not a trivial zero


def test_hall_vs_field_takes_objects(dirac, grid):
    e = jnp.array([1e-3, 3e-3])
    ref = tr.hall_vs_field(dirac, e, MU, TAU, grid, kT=KT, bands=[0, 1], check=False)
    obj = tr.hall_vs_field(dirac, e, MU, TAU, grid, kT=KT, theory=tr.NonAdiabatic([0, 1]), check=False)
    np.testing.assert_allclose(np.asarray(obj), np.asarray(ref), rtol=1e-12)


# ----------------------------------------------------------------------------- user subclasses


def _bands_and_velocities(model, k, x):
    """Energies ε_n (n,) eV and band velocities ∂ε_n/∂ħk (n, d) Å/fs (non-degenerate bands)."""
    energies = lambda kk: jnp.linalg.eigvalsh(model.hamiltonian(kk, x, model.params))  # noqa: E731
    return energies(k), jax.jacfwd(energies)(k).reshape(-1, k.shape[0]) / HBAR


class DrudeOnly(tr.AbstractTheory):
    """A user theory: only the Drude term, j = −e Σ_n δf_n v_n with δf_n = τ e ∂f⁰/∂ε E·v_n
    (Eq. 46c without Berry curvature; e = 1), and its linearisation limit max|δf|."""

    name: ClassVar[str] = "drude only"

    def _delta_f(self, model, k, s):
        eps, v = _bands_and_velocities(model, k, s.x)
        f0 = 1.0 / (1.0 + jnp.exp((eps[None] - s.mu[:, None]) / s.kT[:, None]))  # (B, n)
        slope = -f0 * (1.0 - f0) / s.kT[:, None]  # ∂f⁰/∂ε (B, n) 1/eV
        return s.tau[:, None] * slope * jnp.einsum("Bd,nd->Bn", s.fields, v), v

    def integrand(self, model, k, s):
        df, v = self._delta_f(model, k, s)
        return -jnp.einsum("Bn,nd->Bd", df, v)

    def validity(self, model, k, s):
        return {"occupation": jnp.max(jnp.abs(self._delta_f(model, k, s)[0]))}


def test_user_theory_drude_closed_form():
    """DrudeOnly on a parabolic band ε = A k²: σ = n e²τ/m exactly, with the 2D density
    n = kT ln(1 + e^{μ/kT})/(4πA) and 1/m = 2A/ħ², i.e. σ = τ kT ln(1 + e^{μ/kT})/ħ in e²/h,
    isotropic; a large δf is flagged by the user's own validity number."""
    a, mu, kT = 1.0, 0.1, 0.01  # eV·Å², eV, eV
    band = js.Model(lambda k, x, p: jnp.array([[p["a"] * (k @ k)]], complex), dict(a=a), 2, name="parabolic")
    grid = js.kgrid.disk(1.0, 96, 4, breaks=[np.sqrt(mu / a)])  # f⁰ ~ e^{−90} at the edge; cos² exact
    sigma = np.asarray(tr.conductivity(band, [0.0, 0.0], mu, TAU, grid, kT=kT, theory=DrudeOnly()))
    drude = TAU * kT * np.log1p(np.exp(mu / kT)) / HBAR
    np.testing.assert_allclose(sigma, drude * np.eye(2), rtol=1e-12, atol=1e-12 * drude)
    assert drude > 1.0  # e²/h
    _, quiet = _run(lambda: tr.current(band, [1e-5, 0.0], mu, TAU, grid, kT=kT, theory=DrudeOnly()))
    _, loud = _run(lambda: tr.current(band, [1e-2, 0.0], mu, TAU, grid, kT=kT, theory=DrudeOnly()))
    assert quiet == [] and len(loud) == 1 and "theory='drude only'" in loud[0] and "relaxation-time" in loud[0]


def test_user_theory_drude_is_the_ssct_longitudinal_part(dirac, grid):
    """On a tilted massive Dirac cone, SSCT's symmetric σ is the Drude term (the Berry terms are
    antisymmetric at first order): DrudeOnly = SSCT's symmetric part, and has no Hall part."""
    drude = np.asarray(tr.conductivity(dirac, [0.0, 0.0], MU, TAU, grid, kT=KT, theory=DrudeOnly()))
    ssct = np.asarray(tr.conductivity(dirac, [0.0, 0.0], MU, TAU, grid, kT=KT, theory=tr.SSCT()))
    np.testing.assert_allclose(drude, 0.5 * (ssct + ssct.T), rtol=1e-10, atol=1e-10 * np.max(np.abs(ssct)))
    assert abs(ssct[0, 1] - ssct[1, 0]) > 0.1 and drude[0, 0] > 1.0  # a Hall part SSCT has and Drude lacks


class ScaledSSCT(tr.AbstractTheory):
    """A user theory with an array field: SSCT's current times ``factor`` (a traced leaf)."""

    factor: jax.Array
    name: ClassVar[str] = "scaled ssct"

    def integrand(self, model, k, s):
        return self.factor * tr.SSCT().integrand(model, k, s)

    def validity(self, model, k, s):
        return tr.SSCT().validity(model, k, s)


def test_user_theory_with_array_field_under_jit_and_grad(dirac, grid):
    field = jnp.array([0.0, 1e-3])
    ref = np.asarray(tr.current(dirac, field, MU, TAU, grid, kT=KT))
    run = eqx.filter_jit(lambda f: tr.current(dirac, field, MU, TAU, grid, kT=KT, theory=ScaledSSCT(f)))
    np.testing.assert_allclose(np.asarray(run(jnp.asarray(2.0))), 2.0 * ref, rtol=1e-12)
    before = tr.trace_count()
    run(jnp.asarray(3.0))
    assert tr.trace_count() == before  # a new factor reuses the program
    grad = jax.grad(lambda f: tr.current(dirac, field, MU, TAU, grid, kT=KT, theory=ScaledSSCT(f))[1])(1.0)
    np.testing.assert_allclose(float(grad), ref[1], rtol=1e-12)
    assert abs(ref[1]) > 1e-6


# ----------------------------------------------------------------------------- bad input


def test_bad_theories_fail_clearly(dirac, grid):
    args = (dirac, [0.0, 1e-4], MU, TAU, grid)
    for bad in ("quantum", tr.SSCT, js.wavepacket.Full(), None):
        with pytest.raises(ValueError, match="theory must be one of"):
            tr.current(*args, kT=KT, theory=bad)
    with pytest.raises(ValueError, match="bands is only used with a theory string"):
        tr.conductivity(*args, kT=KT, theory=tr.NonAdiabatic(), bands=[0])
    with pytest.raises(ValueError, match="band index 5 out of range"):
        tr.current(*args, kT=KT, theory=tr.NonAbelian(5))
    with pytest.raises(ValueError, match="contiguous"):
        tr.current(*args, kT=KT, theory=tr.NonAdiabatic([1, 0]))
    with pytest.raises(ValueError, match="relaxation='exact'.*'drude only'"):
        tr.current(*args, kT=KT, theory=DrudeOnly(), relaxation="exact")
    with pytest.raises(ValueError, match="phase_space_density is implemented.*'drude only'"):
        tr.current(*args, kT=KT, theory=DrudeOnly(), phase_space_density=True)
    with pytest.raises(ValueError, match="kT must be > 0"):  # a user theory has Fermi-surface terms by default
        tr.current(*args, theory=DrudeOnly())

    class Unknown(DrudeOnly):
        def validity(self, model, k, s):
            return {"wavepacket size": jnp.zeros(())}

    with pytest.raises(ValueError, match="unknown validity number 'wavepacket size'"):
        tr.current(*args, kT=KT, theory=Unknown())

    class NoIntegrand(tr.AbstractTheory):
        name: ClassVar[str] = "incomplete"

        def validity(self, model, k, s):
            return {}

    with pytest.raises(TypeError, match="integrand"):
        NoIntegrand()


def test_arguments_after_grid_are_keyword_only(dirac, grid):
    """current / conductivity / hall_vs_field take only model, field (strength), mu, tau, grid by
    position: a positional kT (or order) is a TypeError, not a silent mix-up."""
    with pytest.raises(TypeError, match="positional"):
        tr.current(dirac, [0.0, 1e-4], MU, TAU, grid, KT)
    with pytest.raises(TypeError, match="positional"):
        tr.conductivity(dirac, [0.0, 0.0], MU, TAU, grid, 1)
    with pytest.raises(TypeError, match="positional"):
        tr.hall_vs_field(dirac, 1e-3, MU, TAU, grid, KT)
