"""js.wavepacket.evolve(..., ensemble="shared"): the batch as one ODE with one step sequence."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsemi as js

HBAR = js.units.HBAR
evolve = js.wavepacket.evolve

#: Three Landau–Zener sweeps (gap Δ, field E, k_y per trajectory; k_x: +K → −K in T1) and five
#: trivial members (v = Δ = 0: 𝓗 = 0, the solver's error estimate vanishes).
DELTA = np.array([0.04, 0.05, 0.07, 0, 0, 0, 0, 0])
E = np.array([0.005, 0.01, 0.02, 0.01, 0.01, 0.01, 0.01, 0.01])
KY = np.array([0.0, 0.04, 0.0, 0, 0, 0, 0, 0])
V = np.array([1.0, 1.0, 1.0, 0, 0, 0, 0, 0])
T1 = 250.0


def _runs(solver):
    model = js.models.massive_dirac(1.0, 0.05)
    params = dict(v=jnp.asarray(V), delta=jnp.asarray(DELTA), tilt=jnp.zeros(8))
    k0 = jnp.stack([E * T1 / (2 * HBAR), KY], -1)
    field = jnp.stack([E, 0 * E], -1)
    return {ens: evolve(model, jnp.zeros(2), k0, jnp.full(8, T1), field, band=0, params=params, saveat=21,
                        ensemble=ens, solver=solver)
            for ens in ("vmap", "shared")}


@pytest.fixture(scope="module")
def runs():
    """The lab-frame Tsit5."""
    return _runs(diffrax.Tsit5())


@pytest.fixture(scope="module")
def default_runs():
    """The default solver of two bands, Magnus4."""
    return _runs(None)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("which, x_tol", [("runs", 5e-7), ("default_runs", 1e-6)])
def test_shared_reproduces_vmap_and_landau_zener(request, which, x_tol):
    """Per-trajectory params and fields: the shared ODE gives each trajectory's own solution and
    P = exp(−π(Δ² + v²k_y²)/(vE)). The tolerances are the solutions' own global errors at rtol = 1e-8
    against rtol = 1e-12: Tsit5 6e-7 in P, 5e-7 of max|x|, |k| (vmap ≤ 5.5e-7, the shared ones closer);
    Magnus4 (the default) 6e-7 in P (vmap 2.2e-7, shared 1.4e-7) and 1e-6 of max|x|, |k| (x: vmap
    5.3e-7, shared 2.9e-7, so the two differ by up to 8.2e-7; measured 7.5e-7). A trajectory driven
    with another member's Δ or E would be off by > 1e-2."""
    runs = request.getfixturevalue(which)
    vm, sh = runs["vmap"], runs["shared"]
    for name in ("t", "x", "k", "chi", "populations", "energy", "t_end", "x_end", "k_end"):
        assert getattr(sh, name).shape == getattr(vm, name).shape, name
    np.testing.assert_allclose(np.asarray(sh.populations), np.asarray(vm.populations), atol=6e-7)
    for name in ("x", "k"):
        a, b = np.asarray(getattr(sh, name)), np.asarray(getattr(vm, name))
        np.testing.assert_allclose(a, b, atol=x_tol * np.max(np.abs(b)))
    np.testing.assert_allclose(np.asarray(sh.t), np.asarray(vm.t), rtol=1e-14)
    expected = np.exp(-np.pi * (DELTA[:3] ** 2 + KY[:3] ** 2) / E[:3])
    np.testing.assert_allclose(np.asarray(sh.populations[:3, -1, 1]), expected, atol=2e-3)
    np.testing.assert_allclose(np.asarray(sh.populations[3:, -1, 1]), 0.0, atol=1e-12)  # 𝓗 = 0
    assert np.all(np.asarray(sh.succeeded))


@pytest.mark.timeout(60)
def test_shared_error_norm_is_max_over_batch(runs):
    """One step sequence, shared stats; its norm is the worst trajectory's, so the batch takes at
    least the steps of its hardest member alone (an RMS over the whole batch, diluted by the five
    trivial members, would take ~10 % fewer). Tsit5: Magnus4's steps follow the error estimate less
    smoothly (its shared sequence took 383 steps, its hardest member alone 395)."""
    vm, sh = runs["vmap"], runs["shared"]
    steps = np.asarray(sh.stats["num_steps"])
    assert steps.shape == (8,) and np.all(steps == steps[0])
    assert steps[0] >= np.max(np.asarray(vm.stats["num_steps"]))
    assert np.max(np.asarray(vm.stats["num_steps"])[3:]) < 100  # the trivial members are easy alone


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(t1=jnp.array([1.0, 2.0])), "needs one t1"),
        (dict(method="abelian"), "supports method='full' only"),
        (dict(method="manifold"), "supports method='full' only"),
        (dict(ensemble="magic"), "ensemble must be one of"),
        (dict(stepsize_controller=diffrax.StepTo(ts=[0.0, 1.0])), "needs a diffrax.PIDController"),
    ],
)
def test_shared_rejects(kwargs, match):
    args = {"t1": 1.0, "ensemble": "shared", **kwargs}
    with pytest.raises(ValueError, match=match):
        evolve(js.models.massive_dirac(1.0, 0.1), [0.0, 0.0], [[0.1, 0.0], [0.2, 0.0]], field=[0.01, 0.0],
               band=0, **args)


@pytest.mark.timeout(120)
def test_shared_gradient_against_finite_differences():
    """∂/∂(Δ₁, Δ₂, k0_x, E_x) of Σ_i [y_i(t1) + 10 P_upper,i(t1)] for two trajectories in a mass
    texture with per-trajectory Δ, through the shared ODE (fixed Euler steps: a smooth discrete
    solution, and the cheapest reverse-mode compile; the vmap mode's Tsit5 gradient is tested
    in test_wavepacket.py)."""
    model = js.models.massive_dirac(1.0, 0.1, texture_G=[0.05, 0.0])
    z0 = np.array([0.1, 0.07, 0.05, 0.004])

    def run(z):
        params = dict(v=jnp.ones(2), delta=z[:2], tilt=jnp.zeros(2), G=jnp.array([[0.05, 0.0]] * 2))
        tr = evolve(model, jnp.array([5.0, 0.0]), jnp.stack([z[2], 0.02]), 10.0, jnp.stack([z[3], -0.002]),
                    band=0, params=params, saveat=2, solver=diffrax.Euler(),
                    stepsize_controller=diffrax.ConstantStepSize(), dt0=0.1, max_steps=100, ensemble="shared")
        return jnp.sum(tr.x[:, -1, 1] + 10.0 * tr.populations[:, -1, 1])

    grad = np.asarray(jax.grad(run)(jnp.asarray(z0)))
    h = 1e-6
    fd = np.array([(run(jnp.asarray(z0 + h * e)) - run(jnp.asarray(z0 - h * e))) / (2 * h) for e in np.eye(4)])
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(grad) > 1e-3)  # every input matters
