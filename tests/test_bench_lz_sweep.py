"""The Landau–Zener peer benchmark (``jaxsemi.bench.lz_sweep``): its sweep gives the LZ
probability with jaxsemi, the peers get the same Hamiltonian, and a missing peer is a skip line.
No timing is asserted."""

import sys

import diffrax
import numpy as np
import pytest

import jaxsemi as js
from jaxsemi.bench import lz_sweep

MODEL = js.models.massive_dirac(lz_sweep.V, lz_sweep.DELTA)


def test_peer_hamiltonian_is_the_model():
    """The peers' 𝓗(k_x, k_y) = 𝓗₀ + k_x ∂𝓗/∂k_x equals v(k_x σ_x + k_y σ_y) + Δσ_z, and their
    start/end states are the lower band at +K and the upper band at −K."""
    K, ky = 5.0, np.array([0.0, 0.3])
    h0, hx, start, end = lz_sweep._hamiltonians(MODEL, K, ky)
    sx, sy, sz = np.array([[0, 1], [1, 0]]), np.array([[0, -1j], [1j, 0]]), np.diag([1.0, -1.0])
    for kx in (K, -K, 0.7):
        expected = lz_sweep.V * (kx * sx + ky[:, None, None] * sy) + lz_sweep.DELTA * sz
        np.testing.assert_allclose(h0 + kx * hx, expected, atol=1e-14)
    eps = np.hypot(lz_sweep.V * np.hypot(K, ky), lz_sweep.DELTA)
    h_start, h_end = h0 + K * hx, h0 - K * hx
    np.testing.assert_allclose(np.einsum("nij,nj->ni", h_start, start), -eps[:, None] * start, atol=1e-12)
    np.testing.assert_allclose(np.einsum("nij,nj->ni", h_end, end), eps[:, None] * end, atol=1e-12)


def test_sweep_gives_landau_zener_with_jaxsemi():
    """Three k_y of the K = 5 sweep with evolve's defaults: the upper-band population matches
    exp(−π(Δ² + v²k_y²)/(v eE)) (0.24 at k_y = 0, 8.5e-4 at k_y = 0.6) up to the finite-sweep
    remainder (≈ 2e-4 at K = 5); a factor 2 in the exponent or in ħ would be off by > 0.1."""
    K, n = 5.0, 3
    _, ky, _ = lz_sweep.sweep(K, n)
    chi, steps, ok = lz_sweep._jaxsemi_run(MODEL, K, n, "vmap")
    assert ok and np.all(steps > 0)
    figures, p = lz_sweep._figures(chi, lz_sweep._hamiltonians(MODEL, K, ky)[3], ky)
    expected = lz_sweep.lz_probability(ky)
    assert 0.2 < expected[0] < 0.3 and expected[-1] < 1e-3
    np.testing.assert_allclose(p, expected, atol=5e-4)
    assert figures["max_error_vs_lz_formula"] == pytest.approx(float(np.max(np.abs(p - expected))))
    assert figures["max_norm_drift"] < 1e-6


def test_tight_reference_is_converged():
    """The reference of ``max_difference_to_tight_solve`` (Magnus4 at rtol 1e-12) equals an independent
    lab-frame Tsit5 solve at rtol 1e-11 to 1e-9, far below the 1e-7 errors it measures (K = 5)."""
    K, n = 5.0, 2
    _, ky, _ = lz_sweep.sweep(K, n)
    end = lz_sweep._hamiltonians(MODEL, K, ky)[3]
    chi = lz_sweep._jaxsemi_run(MODEL, K, n, "vmap", 1 << 18, diffrax.Tsit5(), tolerances=(1e-11, 1e-12))[0]
    np.testing.assert_allclose(lz_sweep.tight_populations(MODEL, K, n, end, ky), lz_sweep._figures(chi, end, ky)[1],
                               atol=1e-9)


@pytest.mark.parametrize("peer, runner", [("dynamiqs", lz_sweep._dynamiqs), ("qutip", lz_sweep._qutip)])
def test_missing_peer_is_a_skip_line(monkeypatch, peer, runner):
    monkeypatch.setitem(sys.modules, peer, None)  # import raises ModuleNotFoundError(name=peer)
    assert runner(MODEL, 5.0, 2, 1, None) == {"status": "skipped: needs pip install 'jaxsemi[peers]'"}


@pytest.mark.slow
@pytest.mark.parametrize("peer, runner", [("dynamiqs", lz_sweep._dynamiqs), ("qutip", lz_sweep._qutip)])
def test_peer_solves_the_same_sweep(peer, runner):
    """With ``jaxsemi[peers]`` installed: every peer configuration reproduces the LZ formula
    and the populations of a tight jaxsemi solve (the fixed-step dynamiqs ``Expm`` to its 2nd-order error)."""
    pytest.importorskip(peer)
    K, n = 5.0, 2
    _, ky, _ = lz_sweep.sweep(K, n)
    reference = lz_sweep.tight_populations(MODEL, K, n, lz_sweep._hamiltonians(MODEL, K, ky)[3], ky)
    configs = {k: v for k, v in runner(MODEL, K, n, 1, reference).items() if k != "version"}
    assert len(configs) == {"dynamiqs": 3, "qutip": len(lz_sweep.QUTIP_METHODS)}[peer]
    for name, res in configs.items():
        assert res["max_error_vs_lz_formula"] < 5e-4, name
        assert res["max_difference_to_tight_solve"] < (1e-5 if name.startswith("expm") else 1e-6), name
        assert res["max_norm_drift"] < 1e-5, name


def test_band_state_norm_leaves_the_steps_to_chi():
    """Magnus4 with the controller's norm over χ alone (the peers' task, ``band_state_norm``):
    at K = 5 it takes 83 and 99 steps against 184 and 132 under whole-state control (there x's
    Hellmann–Feynman increment sets them), with the same upper-band population (6e-9) and x(t1)
    still within 4e-5 Å (|x(t1)| ≈ 17 Å)."""
    import diffrax
    import jax.numpy as jnp

    s = lz_sweep._sweep(5.0, 2)

    def run(norm):
        ctrl = diffrax.PIDController(rtol=lz_sweep.RTOL, atol=lz_sweep.ATOL, **({} if norm is None else {"norm": norm}))
        tr = js.wavepacket.evolve(MODEL, jnp.zeros(2), jnp.asarray(s["k0"]), s["t1"], jnp.asarray(s["field"]), band=0,
                                  saveat=2, solver=js.wavepacket.Magnus4(), stepsize_controller=ctrl)
        return (np.asarray(tr.populations[:, -1, 1]), np.asarray(tr.x[:, -1]), np.asarray(tr.stats["num_steps"]))

    (p_all, x_all, n_all), (p_chi, x_chi, n_chi) = run(None), run(lz_sweep.band_state_norm)
    assert np.all(n_chi < 0.8 * n_all) and np.sum(n_chi) < 0.65 * np.sum(n_all), (n_chi, n_all)
    np.testing.assert_allclose(p_chi, p_all, atol=2e-8)
    assert np.max(np.abs(x_all)) > 10.0
    np.testing.assert_allclose(x_chi, x_all, atol=1e-4)


def test_peers_task_returns_the_band_state_of_the_whole_solve():
    """The peers' task (``norm=band_state_norm``) compiles ``evolve`` returning χ(t1) alone
    (``_final_band_state``; XLA drops the centre's Hellmann–Feynman displacement): the same steps and
    the same χ as the eager whole-``Trajectory`` call with that norm (K = 5, two trajectories)."""
    import jax.numpy as jnp

    s = lz_sweep._sweep(5.0, 2)
    ctrl = js.wavepacket.default_controller(lz_sweep.RTOL, lz_sweep.ATOL, norm=lz_sweep.band_state_norm)
    tr = js.wavepacket.evolve(MODEL, jnp.zeros(2), jnp.asarray(s["k0"]), s["t1"], jnp.asarray(s["field"]), band=0,
                              saveat=2, stepsize_controller=ctrl)
    chi, steps, ok = lz_sweep._jaxsemi_run(MODEL, 5.0, 2, "vmap", norm=lz_sweep.band_state_norm)
    assert ok and chi.shape == (2, 2)
    np.testing.assert_array_equal(steps, np.asarray(tr.stats["num_steps"]))
    np.testing.assert_allclose(chi, np.asarray(tr.chi[:, -1]), rtol=0, atol=1e-12)
