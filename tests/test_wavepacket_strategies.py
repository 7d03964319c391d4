"""js.wavepacket method objects and SolverOptions as public API: the objects reproduce their string
aliases, user subclasses of AbstractMethod / AbstractAdiabaticMethod run through evolve (closed-form
Bloch oscillation, a user stop condition), options vs keywords, and bad methods/options."""

from typing import ClassVar

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsemi as js

HBAR = js.units.HBAR
wp = js.wavepacket
evolve = wp.evolve
J, A, E = 0.5, 3.0, 0.01  # eV, Å, V/Å: the cosine band ε(k) = −2J cos(ka) in a field E ∥ x


@pytest.fixture(scope="module")
def dirac():
    return js.models.massive_dirac(1.0, 0.1)


@pytest.fixture(scope="module")
def cosine():
    """A one-orbital chain: the single band ε(k) = −2J cos(ka)."""
    return js.Model(lambda k, x, p: jnp.array([[-2.0 * p["J"] * jnp.cos(p["a"] * k[0])]], complex),
                    dict(J=J, a=A), 1, lattice=[[A]], name="cosine")


def _bloch_x(t, k0=0.0):
    """x(t) − x0 of the cosine band: k(t) = k0 − Et/ħ, x = (2J/E)[cos(a k(t)) − cos(a k0)] (e = 1)."""
    return 2.0 * J / E * (np.cos(A * (k0 - E * np.asarray(t) / HBAR)) - np.cos(A * k0))


# ----------------------------------------------------------------------------- built-in objects


@pytest.mark.parametrize("obj, alias", [
    (wp.Full(), dict(method="full", band=0)),
    (wp.Manifold([1]), dict(method="manifold", bands=[1])),  # band: the manifold's lowest by default
    (wp.Abelian(0), dict(method="abelian", band=0)),
])
def test_objects_reproduce_aliases(dirac, obj, alias):
    """method=Full() / Manifold(bands) / Abelian(band) give the string aliases' trajectories."""
    args = (dirac, [0.0, 0.0], [0.3, 0.05], 5.0, [0.005, 0.0])
    ref = evolve(*args, saveat=4, **alias)
    tr = evolve(*args, saveat=4, method=obj, **({"band": 0} if isinstance(obj, wp.Full) else {}))
    assert tr.method == ref.method == alias["method"]
    for name in ("x", "k", "chi", "populations", "energy"):
        np.testing.assert_allclose(np.asarray(getattr(tr, name)), np.asarray(getattr(ref, name)),
                                   rtol=1e-12, atol=1e-12)
    assert float(np.ptp(np.asarray(tr.k[:, 0]))) > 1e-3  # it moved


@pytest.mark.filterwarnings("error:A JAX array is being set as static")
def test_abelian_band_batch(dirac):
    """Abelian(band) with a (2,) band array is a per-trajectory batch, the same as band=[0, 1]; an
    out-of-range Abelian(band) is caught eagerly and, traced, under jit. The band array travels with
    the trajectories, not in the method (a static field of the compiled term: equinox warned)."""
    args = (dirac, [0.0, 0.0], [0.3, 0.05], 5.0, [0.005, 0.0])
    by_object = evolve(*args, method=wp.Abelian(jnp.array([0, 1])), saveat=3)
    by_keyword = evolve(*args, method="abelian", band=jnp.array([0, 1]), saveat=3)
    np.testing.assert_array_equal(np.asarray(by_object.x), np.asarray(by_keyword.x))
    assert by_object.x.shape == (2, 3, 2)
    assert float(by_object.energy[0, 0]) < 0 < float(by_object.energy[1, 0])  # lower, upper band
    with pytest.raises(ValueError, match="out of range"):
        evolve(*args, method=wp.Abelian(2))
    run = jax.jit(lambda b: evolve(*args, method=wp.Abelian(b), saveat=3).k_end)
    with pytest.raises(Exception, match="band index out of range"):
        jax.block_until_ready(run(2))


# ----------------------------------------------------------------------------- user subclasses


class BandVelocity(wp.AbstractMethod):
    """A user method: the lowest band's velocity ẋ = ∂ε/∂ħk and ħk̇ = −E, no Berry curvature."""

    name: ClassVar[str] = "band velocity"

    def active_bands(self, n_bands):
        return 0, n_bands

    def initial_band(self, band, chi0):
        return band

    def init(self, model, x0, k0, chi0):
        return {"x": x0, "k": k0}

    def _energy(self, model, y):
        return jnp.linalg.eigvalsh(model.hamiltonian(y["k"], y["x"], model.params))[0]

    def rhs(self, t, y, args):
        model, field, band = args
        velocity = jax.grad(lambda k: self._energy(model, {**y, "k": k}))(y["k"]) / HBAR
        return {"x": velocity, "k": -(field(y["x"], t) if callable(field) else field) / HBAR}

    def observe(self, model, y, t, field, band):
        n = model.n_bands
        return {"chi": jnp.ones(n, complex) / np.sqrt(n), "populations": jnp.ones(n) / n,
                "energy": self._energy(model, y), "gap": None, "epsilon": None}


@pytest.mark.timeout(120)
def test_user_method_bloch_oscillation(cosine):
    """A user subclass of AbstractMethod runs through evolve, vmapped and as one shared ODE (it has
    no stop condition), and follows the closed-form Bloch oscillation over a period; the built-in
    Abelian method agrees (a 1D band has no Berry curvature)."""
    tb = 2 * np.pi * HBAR / (E * A)
    ts = tb * np.linspace(0.0, 1.0, 9)
    k0 = jnp.array([[0.0], [0.4]])
    for ensemble in ("vmap", "shared"):
        tr = evolve(cosine, [0.0], k0, tb, [E], band=0, method=BandVelocity(), saveat=ts, ensemble=ensemble)
        assert tr.method == "band velocity" and np.all(np.asarray(tr.succeeded))
        for i, k in enumerate((0.0, 0.4)):
            np.testing.assert_allclose(np.asarray(tr.x[i, :, 0]), _bloch_x(ts, k), atol=1e-5 * 4 * J / E)
    assert float(np.min(np.asarray(tr.x[0, :, 0]))) < -0.99 * 4 * J / E  # the full amplitude −4J/E
    ab = evolve(cosine, [0.0], k0, tb, [E], method=wp.Abelian(0), saveat=ts)
    np.testing.assert_allclose(np.asarray(ab.x), np.asarray(tr.x), atol=1e-5 * 4 * J / E)


class Walled(wp.AbstractAdiabaticMethod):
    """A user adiabatic method: the Abelian dynamics, stopped at a wall x = −L (its "gap" is x + L)."""

    wall: float
    inner: wp.Abelian = wp.Abelian()
    name: ClassVar[str] = "walled"

    def active_bands(self, n_bands):
        return self.inner.active_bands(n_bands)

    def initial_band(self, band, chi0):
        return self.inner.initial_band(band, chi0)

    def init(self, model, x0, k0, chi0):
        return self.inner.init(model, x0, k0, chi0)

    def rhs(self, t, y, args):
        return self.inner.rhs(t, y, args)

    def observe(self, model, y, t, field, band):
        return self.inner.observe(model, y, t, field, band)

    def gap(self, model, y, band):
        return y["x"][0] + self.wall


@pytest.mark.timeout(120)
def test_user_stop_condition(cosine):
    """A user AbstractAdiabaticMethod's ``gap`` stops the run: from the band bottom the packet
    reaches x = −2J/E (half its amplitude) at a k = −π/2, t = πħ/(2Ea) = T_B/4; the run stops at
    the end of that solver step with ``gap_closed``, on the closed-form path, and the saved path
    up to there is the Abelian one it delegates to."""
    wall = 2.0 * J / E
    tb = 2 * np.pi * HBAR / (E * A)
    with pytest.warns(UserWarning, match="gap closed"):
        tr = evolve(cosine, [0.0], [0.0], 0.5 * tb, [E], band=0, method=Walled(wall), saveat=11)
    assert tr.method == "walled" and tr.result == wp.Result.gap_closed
    t_end = float(tr.t_end)
    assert tb / 4 - 1e-3 < t_end < 0.3 * tb  # past the wall (1e-3 fs: gap_tol / |ẋ|), well before t1
    assert float(tr.x_end[0]) < -wall + 1e-3
    np.testing.assert_allclose(float(tr.x_end[0]), _bloch_x(t_end), atol=1e-6 * wall)
    ref = evolve(cosine, [0.0], [0.0], 0.5 * tb, [E], band=0, method="abelian", saveat=11)
    done = np.isfinite(np.asarray(tr.t))
    np.testing.assert_array_equal(done, np.linspace(0.0, 0.5 * tb, 11) <= t_end)  # saves up to t_end
    assert done.sum() >= 6 and np.all(np.isinf(np.asarray(tr.x)[~done]))
    np.testing.assert_allclose(np.asarray(tr.x)[done], np.asarray(ref.x)[done], rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="supports method='full' only"):
        evolve(cosine, [0.0], [[0.0], [0.1]], tb, [E], band=0, method=Walled(wall), ensemble="shared")


def test_abstract_methods_are_required():
    """A subclass that leaves an abstract method out cannot be built (here: the stop condition)."""
    class NoGap(wp.AbstractAdiabaticMethod):
        name: ClassVar[str] = "no gap"

        def active_bands(self, n_bands):
            return 0, n_bands

        def initial_band(self, band, chi0):
            return band

        def init(self, model, x0, k0, chi0):
            return {"x": x0, "k": k0}

        def rhs(self, t, y, args):
            return y

        def observe(self, model, y, t, field, band):
            return {}

    with pytest.raises(TypeError, match="gap"):
        NoGap()
    with pytest.raises(TypeError):
        wp.AbstractMethod()


# ----------------------------------------------------------------------------- SolverOptions


def test_options_object_vs_keywords(dirac):
    """SolverOptions(...) and the keywords give identical runs; a keyword replaces its field of
    ``options``; the defaults are SolverOptions()'s."""
    args = (dirac, [0.0, 0.0], [0.3, 0.05], 5.0, [0.005, 0.0])
    fixed = dict(solver=diffrax.Euler(), stepsize_controller=diffrax.ConstantStepSize(), dt0=0.05, max_steps=200)
    by_keywords = evolve(*args, band=0, saveat=3, **fixed)
    by_options = evolve(*args, band=0, saveat=3, options=wp.SolverOptions(**fixed))
    overridden = evolve(*args, band=0, saveat=3, options=wp.SolverOptions(**{**fixed, "max_steps": 5}), max_steps=200)
    for tr in (by_options, overridden):
        np.testing.assert_array_equal(np.asarray(tr.x), np.asarray(by_keywords.x))
        np.testing.assert_array_equal(np.asarray(tr.chi), np.asarray(by_keywords.chi))
    assert int(by_options.stats["num_steps"]) == 100  # 5 fs in fixed 0.05 fs steps
    with pytest.raises(RuntimeError, match="max_steps = 5 ran out"):
        evolve(*args, band=0, saveat=3, options=wp.SolverOptions(**{**fixed, "max_steps": 5}))
    default = evolve(*args, band=0, saveat=3)
    np.testing.assert_array_equal(np.asarray(evolve(*args, band=0, saveat=3, options=wp.SolverOptions()).x),
                                  np.asarray(default.x))
    assert int(default.stats["num_steps"]) < 100  # adaptive Tsit5, not the Euler steps


# ----------------------------------------------------------------------------- bad methods and options


@pytest.mark.parametrize("kwargs, match", [
    (dict(method="magic", band=0), r"method must be one of \('full', 'manifold', 'abelian'\) or a js.wavepacket"),
    (dict(method=diffrax.Tsit5(), band=0), "method must be one of .*got Tsit5"),
    (dict(method=wp.Full, band=0), "method must be one of"),  # the class, not an object
    (dict(method=wp.Full(), band=0, options="fast"), "options must be a js.wavepacket.SolverOptions"),
    (dict(method=wp.Abelian(0), band=0), "Abelian\\(band\\) or as band=, not both"),
    (dict(method=wp.Abelian(), chi0=[1.0, 0.0]), "give band="),
    (dict(method=wp.Manifold([0]), bands=[0]), "carries its own bands"),
    (dict(method=wp.Manifold([0, 2])), "out of range"),
    (dict(method=wp.Manifold([1]), band=0), "not in the active manifold"),
    (dict(method=wp.Abelian(0), ensemble="shared"), "supports method='full' only"),
])
def test_bad_method(dirac, kwargs, match):
    with pytest.raises(ValueError, match=match):
        evolve(dirac, [0.0, 0.0], [0.1, 0.0], 1.0, [0.01, 0.0], **kwargs)
