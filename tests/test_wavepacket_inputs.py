"""js.wavepacket.evolve: bad input (eagerly and under jit/vmap/grad), batching (throw=False), result
codes, progress meter, diffrax.SaveAt."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsemi as js

evolve = js.wavepacket.evolve


@pytest.fixture(scope="module")
def dirac():
    return js.models.massive_dirac(1.0, 0.1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(chi0=[1.0, 0.0, 0.0]), r"chi0 must have shape \(\.\.\., 2\)"),
        (dict(chi0=[0.0, 0.0]), "zero norm"),
        (dict(band=2), "out of range"),
        (dict(band=-1), "out of range"),
        (dict(), "give chi0"),
        (dict(band=0, chi0=[1.0, 0.0]), "not both"),
        (dict(band=0, t1=0.0), "t1 must be after t0"),
        (dict(band=0, t1=-1.0), "t1 must be after t0"),
        (dict(band=0, field=[np.nan, 0.0]), "NaN or inf"),
        (dict(band=0, field=lambda x, t: jnp.array([jnp.inf, 0.0])), "NaN or inf"),
        (dict(band=0, field=lambda x, t: jnp.zeros(3)), r"shape \(2,\)"),
        (dict(band=0, field=lambda t: jnp.zeros(2)), r"E\(x, t\) -> \(d,\)"),
        (dict(band=0, method="magic"), "method must be one of"),
        (dict(chi0=[1.0, 0.0], method="abelian"), "give band="),
        (dict(band=0, method="manifold", bands=[0, 2]), "out of range"),
        (dict(band=1, method="manifold", bands=[0]), "not in the active manifold"),
        (dict(band=0, bands=[0]), "only used by method='manifold'"),
        (dict(band=0, saveat=[0.0, 99.0]), "within"),
    ],
)
def test_bad_input(dirac, kwargs, match):
    args = dict(x0=[0.0, 0.0], k0=[0.1, 0.0], t1=kwargs.pop("t1", 1.0), field=kwargs.pop("field", [0.01, 0.0]))
    with pytest.raises(ValueError, match=match):
        evolve(dirac, **args, **kwargs)


def test_chi0_outside_manifold():
    m = js.models.qwz(1.0)
    with pytest.raises(ValueError, match="outside the active manifold"):
        evolve(m, [0.0, 0.0], [0.3, 0.1], 1.0, [0.01, 0.0], chi0=[1.0, 0.0], method="manifold", bands=[0])


def test_step_budget_message(dirac):
    """throw=True raises, saying what to raise; a batch (throw=False by default) warns and keeps codes."""
    args = (dirac, [0.0, 0.0], [0.1, 0.0], jnp.array([0.01, 50.0]), [0.01, 0.0])
    with pytest.raises(RuntimeError, match=r"raise max_steps.*solver=js\.wavepacket\.Magnus4\(\)"):
        evolve(*args, band=0, max_steps=5, throw=True, solver=diffrax.Tsit5())
    with pytest.raises(RuntimeError, match=r"rtol/atol\)$"):  # the default of two bands: already Magnus4
        evolve(*args, band=0, max_steps=2, throw=True)
    with pytest.warns(UserWarning, match="failed"):
        tr = evolve(*args, band=0, max_steps=5)
    assert np.asarray(tr.result == js.wavepacket.Result.max_steps_reached).tolist() == [False, True]


def test_batch_keeps_going_and_flags_gap_closing():
    """A batch over k_y: at k_y = 0 the Abelian band's gap 2√(v²k² + Δ²) = 2Δ = 4e-4 eV falls
    below gap_tol at k_x ≈ 0 and that trajectory stops there (flagged, with where); the other
    one runs to t1. A single trajectory raises for an exhausted step budget; a batch does not."""
    m = js.models.massive_dirac(1.0, 2e-4)
    k0 = jnp.array([[0.05, 0.0], [0.05, 0.05]])
    t1 = 2 * js.units.HBAR * 0.05 / 0.01
    with pytest.warns(UserWarning, match="gap closed"):
        tr = evolve(m, [0.0, 0.0], k0, t1, [0.01, 0.0], band=0, method="abelian", saveat=11)
    assert tr.t.shape == (2, 11) and tr.x.shape == (2, 11, 2) and tr.populations.shape == (2, 11, 2)
    assert np.asarray(tr.result == js.wavepacket.Result.gap_closed).tolist() == [True, False]
    assert np.asarray(tr.succeeded).tolist() == [False, True]
    assert float(tr.t_end[0]) < 0.6 * t1 and abs(float(tr.k_end[0, 0])) < 5e-3  # where: k_x ≈ 0
    assert np.all(np.isinf(np.asarray(tr.t[0, -3:]))) and np.all(np.isfinite(np.asarray(tr.x[1])))
    np.testing.assert_allclose(float(tr.t_end[1]), t1)


def test_batch_chi0_callable_field_progress(dirac, capsys):
    """A (2, 3) batch from x0 (2, 1, d) and χ0 (3, n) (unnormalised, orbital basis), with the
    field as a function E(x, t) and the tqdm meter: element [1, 0] (x0[1], χ0 = 3 × lower eigenstate)
    equals the single default-band run from x0[1] (not a shifted run from 0: x enters the step-size
    controller's relative tolerance); the other χ0 are superpositions."""
    w, u = js.eigh(dirac, jnp.array([0.1, 0.0]))
    chi0 = jnp.stack([3.0 * u[:, 0], u[:, 0] + u[:, 1], u[:, 1]])
    x0 = jnp.array([[[0.0, 0.0]], [[1.0, -2.0]]])
    field = lambda x, t: jnp.array([0.01, 0.0])  # noqa: E731
    single = evolve(dirac, x0[1, 0], [0.1, 0.0], 5.0, field, band=0, saveat=5)
    tr = evolve(dirac, x0, [0.1, 0.0], 5.0, field, chi0=chi0, saveat=5, progress_meter=diffrax.TqdmProgressMeter())
    assert tr.x.shape == (2, 3, 5, 2) and tr.chi.shape == (2, 3, 5, 2) and tr.energy.shape == (2, 3, 5)
    np.testing.assert_allclose(np.asarray(tr.x[1, 0]), np.asarray(single.x), atol=1e-9)
    np.testing.assert_allclose(np.asarray(tr.chi[1, 0]), np.asarray(single.chi), atol=1e-9)
    np.testing.assert_allclose(np.asarray(tr.norm), 1.0, atol=1e-8)  # χ0 normalised on input
    np.testing.assert_allclose(np.asarray(tr.populations[:, 1, 0, 0]), 0.5, atol=1e-12)  # χ0 ∝ u0 + u1
    np.testing.assert_allclose(np.asarray(tr.populations[:, 2, 0, 1]), 1.0, atol=1e-12)
    assert "100.00%" in capsys.readouterr().err


# ----------------------------------------------------------------------------- diffrax.SaveAt


K0, E_X = np.array([0.1, 0.05]), 0.01  # 1/Å, V/Å along x: free drift k(t) = k0 − E t/ħ (e = 1)


def _drift(t):
    return K0 - np.array([E_X, 0.0]) * np.asarray(t)[..., None] / js.units.HBAR


def test_saveat_objects(dirac):
    """SaveAt(ts=...), SaveAt(t1=True) and SaveAt(steps=True) save at the asked times, eagerly and
    under jit; k(t) follows the free drift and ε + E·x is conserved at every saved step."""
    run = lambda saveat: evolve(dirac, [0.0, 0.0], K0, 4.0, [E_X, 0.0], band=1, saveat=saveat)  # noqa: E731
    ts = jnp.array([0.0, 0.5, 2.0, 4.0])
    for tr in (run(diffrax.SaveAt(ts=ts)), jax.jit(lambda ts: run(diffrax.SaveAt(ts=ts)))(ts)):
        np.testing.assert_array_equal(np.asarray(tr.t), np.asarray(ts))
        np.testing.assert_allclose(np.asarray(tr.k), _drift(ts), rtol=1e-12)

    end = run(diffrax.SaveAt(t1=True))
    assert end.t.shape == (1,) and float(end.t[0]) == 4.0
    np.testing.assert_allclose(np.asarray(end.k[0]), _drift(4.0), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(end.x[0]), np.asarray(end.x_end), rtol=1e-14)

    steps = run(diffrax.SaveAt(steps=True))
    t = np.asarray(steps.t)
    done = np.isfinite(t)
    assert done.sum() == int(steps.stats["num_accepted_steps"]) >= 3
    assert np.all(np.diff(t[done]) > 0) and t[done][-1] == 4.0 and np.all(np.isinf(t[~done]))
    np.testing.assert_allclose(np.asarray(steps.k)[done], _drift(t[done]), rtol=1e-12)
    conserved = np.asarray(steps.energy)[done] + E_X * np.asarray(steps.x)[done, 0]
    assert np.ptp(conserved) < 1e-8 and np.ptp(np.asarray(steps.x)[done, 0]) > 1e-3


@pytest.mark.parametrize("ensemble", ["vmap", "shared"])
def test_saveat_two_saves_the_ends_as_reached(dirac, ensemble):
    """saveat=2 (the two ends, saved as reached, no interpolation) gives the ends of a saveat=3 run
    (interpolated at t1), and inf at t1 like it when the step budget runs out first."""
    k0 = np.stack([K0, 2 * K0])
    run = lambda count, **kw: evolve(dirac, [0.0, 0.0], k0, 4.0, [E_X, 0.0], band=1, saveat=count,  # noqa: E731
                                     ensemble=ensemble, **kw)
    ends, three = run(2), run(3)
    np.testing.assert_array_equal(np.asarray(ends.t), np.asarray(three.t)[:, [0, 2]])
    for a, b in ((ends.x, three.x), (ends.k, three.k), (ends.chi, three.chi)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b)[:, [0, 2]], rtol=0, atol=1e-13)
    np.testing.assert_allclose(np.asarray(ends.x[:, -1]), np.asarray(ends.x_end), rtol=0, atol=0)
    short = run(2, max_steps=2, throw=False)
    assert not np.any(np.asarray(short.succeeded))
    assert np.all(np.isinf(np.asarray(short.t[:, -1]))) and np.all(np.isinf(np.asarray(short.x[:, -1])))
    np.testing.assert_array_equal(np.asarray(short.t[:, 0]), 0.0)


@pytest.mark.parametrize("saveat, match", [
    (diffrax.SaveAt(ts=[0.0, 99.0]), "within"),
    (diffrax.SaveAt(dense=True), "no dense output"),
    (diffrax.SaveAt(ts=[0.0, 1.0], fn=lambda t, y, args: y["x"]), "custom `fn`"),
])
def test_saveat_object_errors(dirac, saveat, match):
    with pytest.raises(ValueError, match=match):
        evolve(dirac, [0.0, 0.0], K0, 1.0, [E_X, 0.0], band=0, saveat=saveat)


# ----------------------------------------------------------------------------- bad values under jit/vmap/grad


def test_field_callable_signature(dirac):
    """A field callable of the wrong arity is named, with the expected E(x, t), before tracing."""
    class Pulse(eqx.Module):
        amplitude: jax.Array

        def __call__(self, t):
            return jnp.array([self.amplitude, 0.0])

    for field in (lambda t: jnp.array([E_X, 0.0]), Pulse(jnp.asarray(E_X)), lambda x, t, extra: x):
        with pytest.raises(ValueError, match=r"E\(x, t\)"):
            evolve(dirac, [0.0, 0.0], K0, 1.0, field, band=0)
        with pytest.raises(ValueError, match=r"E\(x, t\)"):
            jax.jit(lambda k0: evolve(dirac, [0.0, 0.0], k0, 1.0, field, band=0).k_end)(K0)


def test_t1_not_after_zero_under_transformations(dirac):
    """t1 ≤ 0 (or NaN) would integrate backwards and report success: it raises under jit, vmap, grad."""
    def k_end(t1):
        return evolve(dirac, [0.0, 0.0], K0, t1, [E_X, 0.0], band=0, saveat=3).k_end[0]

    jitted = jax.jit(k_end)
    np.testing.assert_allclose(float(jitted(1.0)), _drift(1.0)[0], rtol=1e-12)  # good input runs
    np.testing.assert_allclose(float(jax.grad(k_end)(1.0)), -E_X / js.units.HBAR, rtol=1e-10)
    for bad in (-1.0, 0.0, np.nan):
        with pytest.raises(Exception, match="t1 must be after t0"):
            jax.block_until_ready(jitted(bad))
    with pytest.raises(Exception, match="t1 must be after t0"):
        jax.block_until_ready(jax.vmap(k_end)(jnp.array([1.0, -1.0])))
    with pytest.raises(Exception, match="t1 must be after t0"):
        jax.block_until_ready(jax.grad(k_end)(-1.0))


def test_bad_values_raise_under_jit(dirac):
    """NaN/inf in x0, k0, the field, model.params, params or χ0, a zero χ0 and an out-of-range band
    raise with the input's name when traced (one compiled program each, bad values swapped in)."""
    good = dict(model=dirac, p=dirac.params, x0=jnp.zeros(2), k0=jnp.asarray(K0), E=jnp.array([E_X, 0.0]),
                c=jnp.array([1.0, 0.0], complex))
    run = eqx.filter_jit(lambda model, p, x0, k0, E, c: evolve(model, x0, k0, 1.0, E, chi0=c, params=p,
                                                               saveat=3).k_end)
    np.testing.assert_allclose(np.asarray(run(**good)), _drift(1.0), rtol=1e-12)
    nan_params = {**dirac.params, "delta": jnp.asarray(np.nan)}
    for key, bad, match in [("x0", jnp.array([np.nan, 0.0]), "x0 contains NaN"),
                            ("k0", jnp.array([0.1, np.inf]), "k0 contains NaN"),
                            ("E", jnp.array([np.nan, 0.0]), "field contains NaN"),
                            ("model", dirac.with_params(nan_params), "model.params contains NaN"),
                            ("p", nan_params, "params contains NaN"),
                            ("c", jnp.array([np.nan, 0.0], complex), "chi0 contains NaN"),
                            ("c", jnp.zeros(2, complex), "zero norm")]:
        with pytest.raises(Exception, match=match):
            jax.block_until_ready(run(**{**good, key: bad}))

    field = eqx.filter_jit(lambda amp: evolve(dirac, [0.0, 0.0], K0, 1.0, lambda x, t: jnp.array([amp, 0.0]),
                                              band=0, saveat=3).k_end)
    with pytest.raises(Exception, match=r"field\(x0, 0\) contains NaN"):
        jax.block_until_ready(field(jnp.asarray(np.inf)))
    band = jax.jit(lambda b: evolve(dirac, [0.0, 0.0], K0, 1.0, [E_X, 0.0], band=b, saveat=3).k_end)
    for b in (2, -1):
        with pytest.raises(Exception, match="band index out of range"):
            jax.block_until_ready(band(b))
    # eagerly, a NaN in a model's parameters set by with_params (which does not check) is caught too
    with pytest.raises(ValueError, match="model.params"):
        evolve(dirac.with_params(nan_params), [0.0, 0.0], K0, 1.0, [E_X, 0.0], band=0)
