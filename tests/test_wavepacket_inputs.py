"""js.wavepacket.evolve: bad input, batching (throw=False), result codes, progress meter."""

import diffrax
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
    with pytest.raises(RuntimeError, match="raise max_steps"):
        evolve(*args, band=0, max_steps=5, throw=True)
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


@pytest.fixture(scope="module")
def single(dirac):
    return evolve(dirac, [0.0, 0.0], [0.1, 0.0], 5.0, [0.01, 0.0], band=0, saveat=5)


def test_batch_chi0_callable_field_progress(dirac, single, capsys):
    """A (2, 3) batch from x0 (2, 1, d) and χ0 (3, n) (unnormalised, orbital basis), with the
    field as a function E(x, t) and the tqdm meter: element [1, 0] (χ0 = 3 × lower eigenstate)
    equals the single default-band run shifted by x0; the other χ0 are superpositions."""
    w, u = js.eigh(dirac, jnp.array([0.1, 0.0]))
    chi0 = jnp.stack([3.0 * u[:, 0], u[:, 0] + u[:, 1], u[:, 1]])
    x0 = jnp.array([[[0.0, 0.0]], [[1.0, -2.0]]])
    tr = evolve(dirac, x0, [0.1, 0.0], 5.0, lambda x, t: jnp.array([0.01, 0.0]), chi0=chi0, saveat=5,
                progress_meter=diffrax.TqdmProgressMeter())
    assert tr.x.shape == (2, 3, 5, 2) and tr.chi.shape == (2, 3, 5, 2) and tr.energy.shape == (2, 3, 5)
    np.testing.assert_allclose(np.asarray(tr.x[1, 0] - x0[1, 0]), np.asarray(single.x), atol=1e-9)
    np.testing.assert_allclose(np.asarray(tr.chi[0, 0]), np.asarray(single.chi), atol=1e-9)
    np.testing.assert_allclose(np.asarray(tr.norm), 1.0, atol=1e-8)  # χ0 normalised on input
    np.testing.assert_allclose(np.asarray(tr.populations[:, 1, 0, 0]), 0.5, atol=1e-12)  # χ0 ∝ u0 + u1
    np.testing.assert_allclose(np.asarray(tr.populations[:, 2, 0, 1]), 1.0, atol=1e-12)
    assert "100.00%" in capsys.readouterr().err
