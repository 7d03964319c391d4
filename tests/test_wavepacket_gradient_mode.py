"""Reverse-mode gradients through ``evolve``'s default adjoint: forward mode inside the gradient rule where at
most ``FORWARD_MODE_INPUTS`` real scalars are differentiated, the stored-steps reverse mode otherwise — the
same derivatives either way, against central differences."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsemi as js
from jaxsemi.wavepacket import _gradient_mode

HBAR = js.units.HBAR
wp = js.wavepacket
MODEL = js.models.massive_dirac(1.0, 0.3)
T1 = 2 * HBAR * 1.5 / 0.2  # a Landau–Zener sweep k_x: 1.5 → −1.5 1/Å at E = 0.2 V/Å (~100 Magnus4 steps)


def _upper(v, delta, k0, field=jnp.array([0.2, 0.0]), **options):
    """P_upper and x(t1) of one sweep (or a batch, by the shape of k0)."""
    m = MODEL.with_params({**MODEL.params, "v": v, "delta": delta})
    tr = wp.evolve(m, jnp.zeros(2), k0, T1, field, band=0, saveat=2, **options)
    return jnp.stack([tr.populations[..., -1, 1], tr.x[..., -1, 0]])


def _central(f, z, h=1e-6):
    return (np.asarray(f(z + h)) - np.asarray(f(z - h))) / (2 * h)


@pytest.mark.timeout(900)
def test_few_inputs_take_forward_mode_and_agree_with_reverse_mode(monkeypatch):
    """∂(P, x)(t1)/∂Δ (one input scalar) and ∂x(t1)/∂k0 (two) go through forward mode and ∂/∂(v, Δ, k0) (four)
    through the default reverse-mode adjoint; the three routes give the same Jacobian entries (1e-9 relative:
    each route is compiled apart and may round its step sizes differently), and central differences agree to
    1e-5."""
    routes = []
    choose = _gradient_mode._forward_mode
    monkeypatch.setattr(_gradient_mode, "_forward_mode", lambda *a: routes.append(choose(*a)) or routes[-1])
    v, delta, k0 = 1.0, 0.3, jnp.array([1.5, 0.1])
    d_delta = np.asarray(jax.jit(jax.jacrev(lambda d: _upper(v, d, k0)))(delta))
    d_k0 = np.asarray(jax.jit(jax.grad(lambda k: _upper(v, delta, k)[1]))(k0))
    assert routes and all(routes)
    routes.clear()
    everything = np.asarray(jax.jit(jax.jacrev(lambda z: _upper(z[0], z[1], z[2:])))(jnp.array([v, delta, *k0])))
    assert routes and not any(routes)
    np.testing.assert_allclose(d_delta, everything[:, 1], rtol=1e-9)
    np.testing.assert_allclose(d_k0, everything[1, 2:], rtol=1e-9)
    fd_delta = _central(jax.jit(lambda d: _upper(v, d, k0)), delta)
    np.testing.assert_allclose(d_delta, fd_delta, rtol=1e-5)
    assert np.min(np.abs(d_delta)) > 0.1 and np.min(np.abs(d_k0)) > 1e-2


@pytest.mark.timeout(900)
def test_forward_mode_gradients_of_a_closed_over_field_and_of_batches():
    """The default adjoint's forward-mode route differentiates what a field function closes over (its arrays
    are made inputs) and runs under vmap: ∂P/∂E of a field amplitude, and ∂(ΣP)/∂Δ of a batch of two sweeps
    integrated one by one ("vmap") and as one ODE ("shared"), against central differences (1e-5); a complex
    χ0 and many inputs fall back to reverse mode."""
    k0 = jnp.array([1.5, 0.1])

    def with_amplitude(e):
        return _upper(1.0, 0.3, k0, field=lambda x, t: jnp.array([e, 0.0]))[0]

    grad = float(jax.jit(jax.grad(with_amplitude))(0.2))
    np.testing.assert_allclose(grad, _central(jax.jit(with_amplitude), 0.2), rtol=1e-5)
    assert abs(grad) > 0.1
    batch = jnp.array([[1.5, 0.0], [1.5, 0.2]])
    for ensemble in ("vmap", "shared"):
        def total(d, ensemble=ensemble):
            return jnp.sum(_upper(1.0, d, batch, ensemble=ensemble)[0])

        grad = float(jax.jit(jax.grad(total))(0.3))
        np.testing.assert_allclose(grad, _central(jax.jit(total), 0.3), rtol=1e-5)
    forward = _gradient_mode._forward_mode
    assert not forward({"chi0": jnp.ones(1, complex)}, None, False)
    assert not forward([jnp.ones(2), jnp.ones(())], None, False)
    assert forward([None, jnp.ones(2)], None, False)
    per = (jnp.ones((50, 2)), jnp.ones(50))  # counted per trajectory where batched
    assert forward((None, (per[0], None)), (None, per), True)
    assert not forward((jnp.ones(()), (per[0], None)), (None, per), True)
    assert forward((jnp.ones(()), (None, per[1])), (None, per), True)


def test_an_explicit_adjoint_is_kept(monkeypatch):
    """With ``adjoint=`` given, ``evolve`` differentiates through it: the gradient rule is not involved."""
    monkeypatch.setattr(_gradient_mode, "_by_mode", None)  # would fail if called
    value = jax.grad(lambda d: _upper(1.0, d, jnp.array([1.5, 0.1]), adjoint=diffrax.RecursiveCheckpointAdjoint(),
                                      max_steps=512)[0])(0.3)
    assert np.isfinite(float(value))


@pytest.mark.timeout(900)
def test_gradients_in_a_value_the_hamiltonian_closes_over():
    """A 𝓗 that closes over the differentiated value (not a parameter) differentiates like one that takes it as a
    parameter (the closure is hoisted into the parameters; diffrax's adjoint had raised CustomVJPException): the
    forward-mode route (one scalar) and vmap of grad equal the parameter's, the reverse-mode route (four: v, Δ,
    k0) central differences (1e-5)."""
    k0 = jnp.array([1.5, 0.1])

    def closed(z):  # z = (v, Δ[, k0]): v and Δ closed over, the rest of the parameters given
        h = lambda k, x, p: MODEL.hamiltonian(k, x, {**p, "v": z[0], "delta": z[1]})  # noqa: E731
        m = js.Model(h, {key: val for key, val in MODEL.params.items() if key not in ("v", "delta")}, 2)
        tr = wp.evolve(m, jnp.zeros(2), k0 if z.shape[0] == 2 else z[2:], T1, jnp.array([0.2, 0.0]), band=0,
                       saveat=2)
        return jnp.sum(tr.populations[..., -1, 1] + tr.x[..., -1, 0])

    def given(z):
        return jnp.sum(_upper(z[0], z[1], k0))

    z = jnp.array([1.0, 0.3])
    np.testing.assert_allclose(jax.grad(lambda d: closed(z.at[1].set(d)))(0.3),
                               jax.grad(lambda d: given(z.at[1].set(d)))(0.3), rtol=1e-12)
    deltas = jnp.array([0.25, 0.35])
    np.testing.assert_allclose(jax.vmap(jax.grad(lambda d: closed(z.at[1].set(d))))(deltas),
                               jax.vmap(jax.grad(lambda d: given(z.at[1].set(d))))(deltas), rtol=1e-12)
    zk = jnp.array([1.0, 0.3, 1.5, 0.1])
    reverse = np.asarray(jax.grad(closed)(zk))
    value = jax.jit(closed)
    central = [_central(lambda h, i=i: value(zk.at[i].add(h)), 0.0) for i in range(4)]
    np.testing.assert_allclose(reverse, central, rtol=1e-5)
    assert np.all(np.abs(reverse) > 1e-3)


@pytest.mark.timeout(900)
def test_one_call_differentiated_in_different_inputs_in_turn():
    """The same evolve call (a batch of two sweeps) differentiated in (v, Δ, k0) — reverse mode, four scalars
    per trajectory — then in Δ alone — forward mode — then in all again gives the first Jacobian again (a
    gradient rule inside evolve's jit had raised a ``safe_zip`` length error on the third: JAX memoises a
    custom_vjp per perturbation pattern but reads its residual layout from the latest one), and the
    forward-mode ∂x(t1)/∂k0 of the batch, two scalars per trajectory, equals the reverse-mode entries."""
    v, delta, k0 = jnp.asarray(1.0), jnp.asarray(0.3), jnp.array([[1.5, 0.1], [1.5, -0.2]])
    first = [np.asarray(a) for a in jax.jit(jax.jacrev(_upper, (0, 1, 2)))(v, delta, k0)]  # (2 outputs, 2, ...)
    d_delta = np.asarray(jax.grad(lambda d: jnp.sum(_upper(v, d, k0)))(delta))
    again = jax.jacrev(_upper, (0, 1, 2))(v, delta, k0)
    for a, b in zip(again, first):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(d_delta, first[1].sum(), rtol=1e-9)
    d_k0 = np.asarray(jax.jacrev(lambda k: _upper(v, delta, k)[1])(k0))  # (2 trajectories, 2, 2)
    np.testing.assert_allclose(d_k0, first[2][1], rtol=1e-9, atol=1e-12)
    assert np.min(np.abs(first[1])) > 1e-3 and np.min(np.abs(d_k0[[0, 1], [0, 1]])) > 1e-3
