"""js.wavepacket.Magnus4, the exponential solver of method="full" and "manifold" (their default for two
bands): agreement with a tight lab-frame reference (2 and 3 bands, texture, time-dependent field), fourth
order, exact unitarity, a step count that does not follow the band splitting, and which solver each method
gets."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsemi as js

HBAR = js.units.HBAR
wp = js.wavepacket
evolve = wp.evolve
TIGHT = dict(solver=diffrax.Tsit5(), stepsize_controller=diffrax.PIDController(rtol=1e-12, atol=1e-13),
             max_steps=100_000)
MAGNUS = dict(solver=wp.Magnus4())


def _three(k, x, p):
    """A 3-band model: a textured Dirac block on orbitals (0, 1) coupled (g k) to a level at W."""
    d = p["delta"] * jnp.cos(0.3 * x[0])
    kx, ky = k[0], k[1]
    return jnp.array([[d, kx - 1j * ky, p["g"] * kx],
                      [kx + 1j * ky, -d, p["g"] * ky],
                      [p["g"] * kx, p["g"] * ky, p["W"] + 0.0 * kx]], dtype=complex)


THREE = js.Model(_three, dict(delta=0.1, g=0.3, W=0.4), 2, name="three")


def pulse(x, t):
    """A time- and position-dependent field (V/Å)."""
    return jnp.array([0.02 * jnp.cos(0.2 * t) + 0.002 * x[1], 0.01])


@pytest.mark.parametrize("model, band", [(js.models.massive_dirac(1.0, 0.1, texture_G=[0.3, 0.1]), 0),
                                         pytest.param(THREE, 1, marks=pytest.mark.slow)])
def test_matches_tight_reference(model, band):
    """x, k and χ at the save times (dense output inside steps) agree with Tsit5 at rtol 1e-12,
    for 2 bands (closed-form moments and exponential) and 3 bands (Opitz divided differences,
    expm), with a texture and a field E(x, t); ⟨χ|χ⟩ = 1 to rounding."""
    args = (model, [0.5, -0.2], [0.3, 0.1], 15.0, pulse)
    ts = jnp.array([0.0, 3.3, 7.0, 15.0])
    tr = evolve(*args, band=band, saveat=ts, **MAGNUS)
    ref = evolve(*args, band=band, saveat=ts, **TIGHT)
    for name, tol in (("x", 1e-6), ("k", 1e-7), ("chi", 1e-6)):
        np.testing.assert_allclose(np.asarray(getattr(tr, name)), np.asarray(getattr(ref, name)), atol=tol)
    np.testing.assert_allclose(np.asarray(tr.norm), 1.0, atol=1e-13)
    assert float(jnp.max(jnp.abs(tr.x[-1] - tr.x[0]))) > 0.5 and float(jnp.min(tr.populations[-1])) < 0.99


@pytest.mark.slow
def test_fourth_order():
    """Fixed steps h and h/2 on a textured Dirac cone in a field: the end-point error falls by
    ≥ 12 (2⁴ = 16 for fourth order; a third-order scheme gives 8)."""
    model = js.models.massive_dirac(1.0, 0.1, texture_G=[0.2, 0.0])
    args = (model, [1.0, 0.0], [0.2, 0.05], 10.0, [0.02, -0.01])
    ref = evolve(*args, band=0, saveat=2, **TIGHT)
    errors = []
    for dt in (0.5, 0.25):
        tr = evolve(*args, band=0, saveat=2, stepsize_controller=diffrax.ConstantStepSize(), dt0=dt, **MAGNUS)
        errors.append(max(float(jnp.max(jnp.abs(getattr(tr, name)[-1] - getattr(ref, name)[-1])))
                          for name in ("x", "k", "chi")))
    assert errors[0] / errors[1] > 12.0, errors


def test_error_estimate_is_the_returned_steps_own_error():
    """Step doubling: the estimate handed to the controller, (composed − full)/(2⁴ − 1), is the local error of
    the composed step that is returned — for x to 2 % at h = 0.25 fs (undivided it would be ~15×), and for χ an
    upper bound (its error falls faster than h⁵ on a linear sweep). One step against Tsit5 at rtol 1e-12."""
    from jaxsemi.wavepacket import _magnus as M
    from jaxsemi.wavepacket._full import pack, unpack

    model, h = js.models.massive_dirac(1.0, 0.3), 0.25
    x0, k0, field = jnp.zeros(2), jnp.array([0.4, 0.1]), jnp.array([0.2, 0.0])
    ref = evolve(model, x0, k0, h, field, band=0, saveat=2, **TIGHT)
    y1, err = jax.jit(lambda y: M.step(wp.Full(), (model, field, 0), 0.0, h, y)[:2])(
        {"x": x0, "k": k0, "chi": pack(ref.chi[0])})
    true_x = np.max(np.abs(np.asarray(y1["x"] - ref.x[-1])))
    assert true_x > 1e-9  # far above the reference's own error
    np.testing.assert_allclose(np.max(np.abs(np.asarray(err["x"]))), true_x, rtol=0.02)
    true_chi = np.max(np.abs(np.asarray(unpack(y1["chi"]) - ref.chi[-1])))
    assert true_chi < np.max(np.abs(np.asarray(unpack(err["chi"])))) < 5 * true_chi


def test_landau_zener_steps_do_not_follow_the_splitting():
    """The Landau–Zener sweep k_x: K → −K (v = 1 eV·Å, Δ = 0.3 eV, E = 0.2 V/Å): P matches
    exp(−π(Δ² + v²k_y²)/(vE)) to 1e-5 at K = 20, ⟨χ|χ⟩ = 1 to 1e-12 all along, and the step
    count grows less than linearly in K (the lab-frame Tsit5 step count grows as K²: 1321 and
    ~21 000 steps at K = 5 and 20)."""
    model = js.models.massive_dirac(1.0, 0.3)
    ky = np.array([0.0, 0.3])
    steps = []
    for K in (5.0, 20.0):
        tr = evolve(model, jnp.zeros(2), jnp.stack([np.full(2, K), ky], -1), 2 * HBAR * K / 0.2,
                    jnp.array([0.2, 0.0]), band=0, saveat=41, **MAGNUS)
        np.testing.assert_allclose(np.asarray(tr.norm), 1.0, atol=1e-12)
        steps.append(int(np.max(np.asarray(tr.stats["num_steps"]))))
    expected = np.exp(-np.pi * (0.09 + ky**2) / 0.2)
    np.testing.assert_allclose(np.asarray(tr.populations[:, -1, 1]), expected, atol=1e-5)
    assert steps[1] < 4 * steps[0] and steps[1] < 2000, steps


def test_default_pi_controller_rejects_fewer_steps_at_the_same_accuracy():
    """The default controller (PI, pcoeff 0.2 / icoeff 0.4) against diffrax's I controller on K = 20
    Landau–Zener sweeps at rtol 1e-8 (Magnus4): the error estimate rises steeply into the crossing, so the
    I controller rejects a fifth of its steps; the PI one fewer than half as many, no more steps in all,
    and populations as close to a tight solve (within 2× per run; 200 trajectories: 78 → 28 rejected,
    369 → 352.5 steps, largest error 6.2e-7 → 5.5e-7; here 4 trajectories: 3.6e-7 → 4.6e-7)."""
    model, K = js.models.massive_dirac(1.0, 0.3), 20.0
    k0 = jnp.stack([jnp.full(4, K), jnp.array([0.0, 0.1, 0.3, 0.5])], -1)

    def run(controller):
        tr = evolve(model, jnp.zeros(2), k0, 2 * HBAR * K / 0.2, jnp.array([0.2, 0.0]), band=0, saveat=2,
                    stepsize_controller=controller, **MAGNUS)
        return np.asarray(tr.populations[:, -1, 1]), {k: np.asarray(v) for k, v in tr.stats.items()}

    assert wp.SolverOptions().stepsize_controller == wp.default_controller()
    tight, _ = run(diffrax.PIDController(rtol=1e-12, atol=1e-13))
    (p_pi, pi), (p_i, i) = run(wp.default_controller()), run(diffrax.PIDController(rtol=1e-8, atol=1e-9))
    assert np.sum(pi["num_rejected_steps"]) < 0.5 * np.sum(i["num_rejected_steps"]), (pi, i)
    assert np.sum(pi["num_steps"]) <= np.sum(i["num_steps"]), (pi, i)
    assert np.max(np.abs(p_pi - tight)) < 2 * np.max(np.abs(p_i - tight)), (p_pi - tight, p_i - tight)


def test_norm_holds_to_rounding_over_thousands_of_steps():
    """⟨χ|χ⟩ − 1 stays below 2e-13 over a K = 320 Landau–Zener sweep (1470–2800 steps, dynamical phases
    ε h/ħ of ~10³ rad per step), 8 trajectories. (One exponential of the summed phases
    −i(ε τ/ħ + k₀) instead of the product of the two drifted 10× further: ~2e-13 median, 9e-13 max.)"""
    model, K = js.models.massive_dirac(1.0, 0.3), 320.0
    k0 = jnp.stack([jnp.full(8, K), jnp.linspace(0.0, 0.6, 8)], -1)
    tr = evolve(model, jnp.zeros(2), k0, 2 * HBAR * K / 0.2, jnp.array([0.2, 0.0]), band=0, saveat=2, **MAGNUS)
    assert int(np.min(np.asarray(tr.stats["num_steps"]))) > 1400
    np.testing.assert_allclose(np.asarray(tr.norm), 1.0, atol=2e-13, rtol=0)


def test_one_pass_without_texture_equals_three_passes():
    """Untextured 𝓗 in a constant field: k(t) = k0 − Et/ħ is known, so the step takes one pass
    and drops the ∂𝓗/∂x tangents. With the same fixed steps it gives what the general step (three
    refinement passes, all tangents — forced by an 𝓗 that 'depends' on x through 0·x) gives, to
    rounding, across a Landau–Zener crossing; a wrong node would show at the step's order (~1e-4)."""
    base = js.models.massive_dirac(1.0, 0.3)
    general = js.Model(lambda k, x, p: base.hamiltonian(k, x, p) + 0.0 * x[0], base.params, 2, name="0*x")
    args = (jnp.zeros(2), [3.0, 0.1], 2 * HBAR * 3.0 / 0.2, jnp.array([0.2, 0.0]))
    fixed = dict(stepsize_controller=diffrax.ConstantStepSize(), dt0=0.4, band=0, saveat=5, **MAGNUS)
    one, three = evolve(base, *args, **fixed), evolve(general, *args, **fixed)
    assert 0.01 < float(one.populations[-1, 1]) < 0.99
    for name in ("x", "k", "chi"):
        np.testing.assert_allclose(np.asarray(getattr(one, name)), np.asarray(getattr(three, name)), atol=1e-12)


def test_solver_per_method():
    """"full" and "manifold" default to Magnus4 on two-band models (its closed-form su(2) step) and to
    Tsit5 beyond, "abelian" to Tsit5; ``evolve`` takes the default; Magnus4 gives "full" the same
    physics as Tsit5 in fewer steps and refuses the other methods."""
    model = js.models.massive_dirac(1.0, 0.1)
    for method in (wp.Full(), wp.Manifold()):
        assert isinstance(method.default_solver(2), wp.Magnus4)
        assert isinstance(method.default_solver(4), diffrax.Tsit5)
    assert isinstance(wp.Abelian(0).default_solver(2), diffrax.Tsit5)
    args = (model, [0.0, 0.0], [0.3, 0.05], 20.0, [0.01, 0.0])
    mag = evolve(*args, band=0, saveat=3)  # the default
    lab = evolve(*args, band=0, saveat=3, solver=diffrax.Tsit5())
    np.testing.assert_array_equal(np.asarray(mag.x), np.asarray(evolve(*args, band=0, saveat=3, **MAGNUS).x))
    np.testing.assert_allclose(np.asarray(mag.x), np.asarray(lab.x), atol=1e-6)
    assert int(mag.stats["num_steps"]) < int(lab.stats["num_steps"])
    with pytest.raises(ValueError, match="Magnus4.*method='full' and 'manifold' only"):
        evolve(*args, band=0, method="abelian", solver=wp.Magnus4())
    with pytest.raises(TypeError, match="Magnus4 integrates"):
        diffrax.diffeqsolve(diffrax.ODETerm(lambda t, y, a: y), wp.Magnus4(), 0.0, 1.0, 0.1, {"x": jnp.zeros(1)})


@pytest.mark.parametrize("bands", [[0, 1], pytest.param([1], marks=pytest.mark.slow)])
def test_manifold_matches_tight_reference(bands):
    """method="manifold" on the textured 3-band model, field E(x, t): x, k, χ at the save times
    agree with Tsit5 at rtol 1e-12; ⟨χ|χ⟩ = 1 to rounding and χ stays in range(P) (the Kato
    Hamiltonian's frame keeps the remote bands empty). The lower pair (one remote band) and the
    middle band alone (two remote bands sharing one frame energy class: the class tables)."""
    args = (THREE, [0.5, -0.2], [0.3, 0.1], 15.0, pulse)
    ts = jnp.array([0.0, 3.3, 7.0, 15.0])
    kw = dict(band=1, method="manifold", bands=bands, saveat=ts)
    with pytest.warns(UserWarning, match="adiabaticity"):  # the remote level is close: ε ~ 1, same for both
        tr, ref = evolve(*args, **kw, **MAGNUS), evolve(*args, **kw, **TIGHT)
    for name, tol in (("x", 1e-6), ("k", 1e-8), ("chi", 1e-7)):
        np.testing.assert_allclose(np.asarray(getattr(tr, name)), np.asarray(getattr(ref, name)), atol=tol)
    np.testing.assert_allclose(np.asarray(tr.norm), 1.0, atol=1e-13)
    remote = [b for b in range(3) if b not in bands]
    assert float(jnp.max(tr.populations[:, remote])) < 1e-12
    assert float(jnp.max(jnp.abs(tr.x[-1] - tr.x[0]))) > 0.5
    if len(bands) > 1:  # a real transition inside the manifold
        assert float(jnp.min(tr.populations[-1, bands])) > 0.01


@pytest.mark.slow
def test_manifold_landau_zener_steps_do_not_follow_the_splitting():
    """A Dirac manifold (v = 1 eV·Å, Δ = 0.3 eV) coupled (g k) to a level 60 eV away, swept
    k_x: K → −K at E = 0.2 V/Å: the transition probability agrees with a tight Tsit5 run to 1e-8
    (K = 5), ⟨χ|χ⟩ = 1 to 1e-12, and the step count grows less than linearly from K = 5 to 20
    (Tsit5: 1295 and 20 234 steps for the 4-band version of this sweep)."""
    model = js.Model(lambda k, x, p: _three(k, jnp.zeros(2), p), dict(delta=0.3, g=0.3, W=60.0), 2, name="flat")
    steps = []
    for K in (5.0, 20.0):
        kw = dict(band=0, method="manifold", bands=[0, 1], saveat=5)
        args = (model, jnp.zeros(2), [K, 0.1], 2 * HBAR * K / 0.2, jnp.array([0.2, 0.0]))
        tr = evolve(*args, **kw, **MAGNUS)
        np.testing.assert_allclose(np.asarray(tr.norm), 1.0, atol=1e-12)
        steps.append(int(tr.stats["num_steps"]))
        if K == 5.0:
            ref = evolve(*args, **kw, **TIGHT)
            np.testing.assert_allclose(np.asarray(tr.populations), np.asarray(ref.populations), atol=1e-8)
            np.testing.assert_allclose(np.asarray(tr.x), np.asarray(ref.x), atol=1e-5)
            assert 0.05 < float(tr.populations[-1, 1]) < 0.95
    assert steps[1] < 4 * steps[0] and steps[1] < 2000, steps


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("phase", ["frozen", "adiabatic"])
def test_gradients_adaptive_against_finite_differences(phase):
    """∂P_LZ/∂Δ and ∂x(t1)/∂k0 through adaptive Magnus4 steps and the default adjoint agree with
    central differences to 1e-5 relative, with either phase (the adiabatic one through the Levin solve's
    own derivative; three input scalars: the default's reverse mode); ``jax.jacfwd`` with
    ``diffrax.ForwardMode`` (the route the default takes by itself for at most two) gives the same Jacobian to
    rounding."""
    model = js.models.massive_dirac(1.0, 0.3)
    t1 = 2 * HBAR * 3.0 / 0.2

    def run(z, adjoint=None):  # z = (Δ, k0x, k0y) → (P_upper, x, y) at t1
        m = model.with_params({**model.params, "delta": z[0]})
        tr = evolve(m, jnp.zeros(2), z[1:], t1, jnp.array([0.2, 0.0]), band=0, saveat=diffrax.SaveAt(t1=True),
                    solver=wp.Magnus4(phase=phase), adjoint=adjoint)
        return jnp.stack([tr.populations[-1, 1], tr.x[-1, 0], tr.x[-1, 1]])

    z0 = jnp.array([0.3, 3.0, 0.1])
    jac = np.asarray(jax.jit(jax.jacrev(run))(z0))
    forward = np.asarray(jax.jit(jax.jacfwd(lambda z: run(z, diffrax.ForwardMode())))(z0))
    np.testing.assert_allclose(forward, jac, rtol=0, atol=1e-12 * np.max(np.abs(jac)))  # seen: 3e-14 of it
    f = jax.jit(run)
    h = 1e-6
    fd = np.stack([(np.asarray(f(z0 + h * e)) - np.asarray(f(z0 - h * e))) / (2 * h) for e in np.eye(3)], 1)
    np.testing.assert_allclose(jac[0, 0], fd[0, 0], rtol=1e-5)  # ∂P/∂Δ
    np.testing.assert_allclose(jac[1:, 1:], fd[1:, 1:], rtol=1e-5)  # ∂x(t1)/∂k0
    assert abs(jac[0, 0]) > 0.5 and np.min(np.abs(jac[1:, 1:])) > 1e-2


def test_manifold_kato_hamiltonian_is_eq34_generator():
    """At one point, for χ in range(P): −(i/ħ)Kχ from Magnus4's manifold point equals the Manifold
    right-hand side's χ̇ (Eq. 34, Kato form) to rounding — a wrong ħ, sign or commutator order fails it;
    and without texture the Hellmann–Feynman tangent ∂𝓗/∂k − ħ𝓕^{kk}·k̇ carries all of ẋ (zero drift),
    which a wrong factor on the anomalous term breaks (𝓕^{kk}·k̇ ≠ 0 here)."""
    from jaxsemi.wavepacket import _magnus

    method = wp.Manifold([0, 1])
    flat = js.Model(lambda k, x, p: _three(k, jnp.zeros(2), p), THREE.params, 2, name="flat")
    x, k, field = jnp.array([0.5, -0.2]), jnp.array([0.3, 0.1]), jnp.array([0.02, 0.01])
    for model, textured in ((THREE, True), (flat, False)):
        u = js.eigh(model, k[None], x[None])[1][0]
        chi = u[:, :2] @ jnp.array([0.6, 0.8j])
        kato, _, _, drift, _ = _magnus._manifold_point(method, model, field, textured, x, k, chi, 0.0)
        chidot = method.rhs(0.0, {"x": x, "k": k, "chi": jnp.stack([jnp.real(chi), jnp.imag(chi)])},
                            (model, field, 0))["chi"]
        np.testing.assert_allclose(np.asarray(-1j / HBAR * kato @ chi), np.asarray(chidot[0] + 1j * chidot[1]),
                                   atol=1e-12)
        np.testing.assert_allclose(np.asarray(kato), np.asarray(jnp.conj(kato.T)), atol=1e-12)  # Hermitian
    np.testing.assert_allclose(np.asarray(drift), 0.0, atol=1e-13)
    node = method.node(flat, x, k)
    eta, xdot, _ = method.centre(node, chi, field)
    anomalous = xdot - wp._full.expect(eta, node[0].dk) / HBAR  # −⟨𝓕^{kk}⟩·k̇
    assert float(jnp.max(jnp.abs(anomalous))) > 1e-3


def test_divided_differences_match_the_exponential_of_the_bidiagonal_matrix():
    """The n > 2 oscillatory tables' e[0, x^i, z^j] (closed-form recurrences / series by regime) equal
    exp of the bidiagonal matrix with diagonal (x, x, x, 0, z, …) (Opitz), computed by scipy, at imaginary
    nodes in every regime and on their boundaries (|x − z| and |x| at 1), to 1e-14; gradients finite."""
    from scipy.linalg import expm

    from jaxsemi.wavepacket import _magnus as M

    rng = np.random.default_rng(0)
    pairs = [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.5), (1.0 - 1e-12, 2.0), (3.0, 2.0 + 1e-12),
             (-40.0, 40.0), (300.0, 299.5), (1e-7, -2e-7)]
    for scale in (0.3, 1.0, 3.0, 30.0):
        a, b = rng.normal(size=(2, 6)) * scale
        pairs += list(zip(a, b)) + list(zip(a, a + 0.9 * rng.uniform(-1, 1, 6)))
    x, z = (1j * np.array(v) for v in zip(*pairs))
    got = np.asarray(jax.jit(M._divided_differences)(jnp.asarray(x), jnp.asarray(z)))

    def opitz(a, b):
        e = expm(np.diag([a, a, a, 0, b, b, b, b, b]) + np.eye(9, k=1))
        return np.array([e[3 - i, 3 + j] for i, j in M._IJ])

    want = np.stack([opitz(a, b) for a, b in zip(x, z)], 1)
    assert np.max(np.abs(got - want)) < 1e-14
    grad = jax.grad(lambda w: jnp.sum(jnp.abs(M._divided_differences(1j * w, 1j * (w + 1.0))) ** 2))
    assert np.all(np.isfinite(np.asarray(jax.vmap(grad)(jnp.array([0.0, 0.5, 1.0, 2.0])))))


def test_generic_tables_equal_the_two_band_rule():
    """The generic tables (divided differences), for two bands and restricted to two of three bands, equal
    the closed two-band (su(2)) rule (derived separately from two-node moments) in the entries it keeps,
    for splittings from ωτ ≪ 1 to ωτ ≫ 1."""
    from jaxsemi.wavepacket import _magnus as M

    for split, tau in [(1e-4, 0.3), (0.2, 0.5), (3.0, 0.7), (40.0, 0.9)]:
        eps3 = jnp.array([-split / 2, split / 2, 5.0])
        m1, d1, d2 = M._su2_tables((eps3[1] - eps3[0]) / HBAR * tau)  # θ = ω₁₀τ
        for eps in (eps3, eps3[:2]):
            m1_g, diff_g = M._tables(M._frequencies(eps), tau)
            for got, want in ((m1, m1_g[0, 1]), (d1, diff_g[:, 0, 1, 0].reshape(3, 3)),
                              (d2, diff_g[:, 0, 0, 1].reshape(3, 3))):
                np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-14)


def test_closed_form_derivatives_of_the_su2_functions_and_moments():
    """The hand-written derivatives of the su(2) step's functions of r² = |k|² (cos r, sin r/r, (1 − sin 2r/2r)/r²,
    (sin r/r)²) and of the two-band moments μ_j(iθ) (dμ_j/dθ = iμ_{j+1}) equal autodiff of the plain functions on
    both sides of every switch between series and closed form (autodiff of the closed forms cancels ~1e-16/r⁴:
    no points in 1e-4 < r² < 1e-3)."""
    from jaxsemi.wavepacket import _magnus as M

    for fn, points in ((M._su2_functions, [0.0, 3e-5, 2e-3, 0.3, M.SU2_SLOPE_SMALL * (1 - 1e-9),
                                              M.SU2_SLOPE_SMALL * (1 + 1e-9), 7.0, 90.0]),
                       (M._two_band_moments, [0.0, 0.4, M.SMALL_W * (1 - 1e-9), M.SMALL_W * (1 + 1e-9), -8.0, 55.0])):
        for x in points:
            got = jax.jvp(fn, (jnp.array(x),), (jnp.array(1.0),))[1]
            want = jax.jvp(fn.fun, (jnp.array(x),), (jnp.array(1.0),))[1]
            np.testing.assert_allclose(np.ravel(got), np.ravel(want), rtol=1e-9, atol=1e-12, err_msg=f"{fn.__name__}({x})")


def _hermitian(v):
    """Hermitian 2×2 matrices (..., 2, 2) from real parameters (..., 4): v0 + v·σ."""
    return jnp.stack([jnp.stack([v[..., 0] + v[..., 3], v[..., 1] - 1j * v[..., 2]], -1),
                      jnp.stack([v[..., 1] + 1j * v[..., 2], v[..., 0] - v[..., 3]], -1)], -2)


@pytest.mark.parametrize("split", [0.0, 1e-6, 0.5, 20.0])
def test_su2_advance_equals_the_generic_step(split):
    """Two bands take the su(2) path (Ω₂ from 18 products, closed-form exponential, Hellmann–Feynman
    increments from the Bloch vector). Embedded as the decoupled first two bands of a three-band frame
    (the generic path: divided differences, 72-term Ω₂, spectral exponential, jvp), the states and
    increments after two half steps and after one full step agree to 1e-14, and so do their gradients
    with respect to the frame energies, the coefficients of D and of the tangents (second derivatives
    of the propagator), from degenerate frames to ωτ ≫ 1."""
    from jaxsemi.wavepacket import _magnus as M

    rng = np.random.default_rng(2)
    coef, tan = jnp.asarray(rng.normal(size=(3, 4)) * 0.2), jnp.asarray(rng.normal(size=(3, 2, 4)))
    c0 = rng.normal(size=2) + 1j * rng.normal(size=2)
    c0, weights, h = jnp.asarray(c0 / np.linalg.norm(c0)), jnp.asarray(rng.normal(size=(3, 2))), 0.6

    def run(eps, coef, tan, bands):
        pad = lambda a: jnp.zeros(a.shape[:-2] + (bands, bands), complex).at[..., :2, :2].set(a)  # noqa: E731
        plan = {"eps": jnp.append(eps, 7.0)[:bands], "coef": pad(_hermitian(coef)), "tan": pad(_hermitian(tan)),
                "c0": jnp.append(c0, 0.0)[:bands], "h": h}
        tables = [(tau, M._class_tables(plan["eps"], np.arange(bands), tau)) for tau in (h / 2, h)]
        out = [part for chain in M._advance(plan, (tables[0], tables[0]), (tables[1],)) for part in chain]
        return jnp.stack([c[:2] for c, _ in out]), jnp.stack([hf for _, hf in out])

    def loss(eps, coef, tan, bands):
        c, hf = run(eps, coef, tan, bands)
        return jnp.sum(weights * hf) + jnp.sum(jnp.abs(c - 0.3) ** 2)

    eps = jnp.array([-split / 2, split / 2])
    for got, want in zip(run(eps, coef, tan, 2), run(eps, coef, tan, 3)):
        assert float(jnp.max(jnp.abs(want))) > 0.1
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-14)
    grads = [jax.grad(loss, argnums=(0, 1, 2))(eps, coef, tan, bands) for bands in (2, 3)]
    for got, want in zip(*grads):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-13)


def test_spectral_exponential_derivatives_through_degeneracies():
    """n > 2 exponentials: exp(Ω) and its Fréchet derivative equal scipy's (block-matrix exponential), and the
    second derivative (reverse mode through a Hellmann–Feynman jvp) equals the one through jax's Padé ``expm``
    — at a generic Ω, at Ω = 0 and at a degenerate Ω split by the perturbation."""
    from jax.scipy.linalg import expm as pade
    from scipy.linalg import expm

    from jaxsemi.wavepacket import _magnus as M

    rng = np.random.default_rng(3)
    a, d = (rng.normal(size=(4, 4)) + 1j * rng.normal(size=(4, 4)) for _ in range(2))
    dom = jnp.asarray(d - d.conj().T)
    skew = lambda b: b - jnp.conj(b.T)  # noqa: E731
    for om in (skew(jnp.asarray(a)), jnp.zeros((4, 4), complex), jnp.diag(jnp.array([0.5j, 0.5j, -0.5j, 0.0]))):
        out, dout = jax.jvp(M._expm_spectral, (om,), (dom,))
        block = expm(np.block([[np.asarray(om), np.asarray(dom)], [np.zeros((4, 4)), np.asarray(om)]]))
        np.testing.assert_allclose(np.asarray(out), block[:4, :4], atol=1e-13)
        np.testing.assert_allclose(np.asarray(dout), block[:4, 4:], atol=1e-13)

        def increment(b, exp):  # a Hellmann–Feynman-like scalar of the Fréchet derivative
            return jnp.real(jnp.sum(jax.jvp(exp, (om + skew(b),), (dom,))[1] @ jnp.arange(1.0, 5.0)))

        b0 = jnp.zeros((4, 4), complex)
        got = jax.grad(increment)(b0, M._expm_spectral)
        want = jax.grad(increment)(b0, pade)
        assert np.max(np.abs(np.asarray(got - want))) < 1e-12 * max(1.0, float(np.max(np.abs(np.asarray(want)))))


@pytest.mark.slow
def test_manifold_gradients_against_finite_differences():
    """A two-band manifold of the three-band model (n > 2: spectral exponentials with Daleckii–Krein
    derivatives, closed-form tables): ∂(P, x)(t1)/∂(Δ, k0) through Magnus4 and the default adjoint at rtol 1e-9
    agree with central differences of tight solves to 2e-5 relative (at 1e-8 the solve's own error, 3e-5,
    shows)."""
    def run(z, rtol=1e-9):
        m = THREE.with_params({**THREE.params, "delta": z[0]})
        tr = evolve(m, jnp.zeros(2), z[1:], 2 * HBAR * 2.0 / 0.2, jnp.array([0.2, 0.0]), band=0, method="manifold",
                    bands=[0, 1], saveat=diffrax.SaveAt(t1=True), max_steps=1 << 16,
                    stepsize_controller=diffrax.PIDController(rtol=rtol, atol=rtol / 10), **MAGNUS)
        return jnp.concatenate([tr.populations[-1, :1], tr.x[-1]])

    z0 = jnp.array([0.1, 2.0, 0.1])
    jac = np.asarray(jax.jit(jax.jacrev(run))(z0))
    tight = jax.jit(lambda z: run(z, rtol=1e-11))
    h = 1e-6
    fd = np.stack([(np.asarray(tight(z0 + h * e)) - np.asarray(tight(z0 - h * e))) / (2 * h) for e in np.eye(3)], 1)
    np.testing.assert_allclose(jac, fd, rtol=2e-5)
    assert np.min(np.abs(fd)) > 0.1


@pytest.mark.timeout(600)
@pytest.mark.parametrize("ensemble", ["vmap", "shared"])
def test_batch_gradients_are_finite_and_match_finite_differences(ensemble):
    """A batch of trajectories that finish at different steps: vmapped, diffrax keeps stepping the
    finished ones with t0 = t1, and their h = 0 once put 1/h into the discarded branch — every gradient
    of a batch was NaN (single runs were fine). ∂(P, y)(t1)/∂Δ of two sweeps, default solver and adjoint
    (forward mode: one input), against central differences of tight solves: 1e-5 relative at rtol 1e-9
    (measured ≤ 4.6e-7). At the default rtol 1e-8 the derivative's own discretisation error, which no
    controller bounds, spreads over 1e-6–1.6e-4 for Δ ∈ [0.04, 0.06] in forward and reverse mode alike
    (2026-12-06; at Δ = 0.05 2.1e-5 and 2.0e-6: the two modes round their step sizes apart)."""
    model = js.models.massive_dirac(1.0, 0.05)
    k0 = jnp.array([[1.9, 0.0], [1.9, 0.03]])

    def run(delta, rtol=1e-9):
        m = model.with_params({**model.params, "delta": delta})
        tr = evolve(m, jnp.zeros(2), k0, 250.0, jnp.array([0.01, 0.0]), band=0, saveat=2, ensemble=ensemble,
                    stepsize_controller=diffrax.PIDController(rtol=rtol, atol=rtol / 10), max_steps=1 << 16)
        return jnp.concatenate([tr.populations[:, -1, 1], tr.x[:, -1, 1]])

    grad = np.asarray(jax.jacrev(run)(0.05))
    tight = jax.jit(lambda d: run(d, rtol=1e-11))
    h = 1e-6
    fd = (np.asarray(tight(0.05 + h)) - np.asarray(tight(0.05 - h))) / (2 * h)
    assert np.all(np.isfinite(grad)), grad
    np.testing.assert_allclose(grad, fd, rtol=1e-5)
    assert np.min(np.abs(fd)) > 1.0


def test_default_adjoint_stores_every_step_of_small_batches(monkeypatch):
    """``default_adjoint``: every step stored while ``max_steps`` states of the whole batch fit in
    ``CHECKPOINT_FLOATS`` numbers, else as many first steps as fit up to ``MAX_STORED_STEPS`` (at least one);
    ``evolve`` sizes it by the batch's state (8 numbers a two-band trajectory)."""
    from jaxsemi.wavepacket import _evolve, _options

    assert wp.default_adjoint(16384, 8) == wp.StoredStepsAdjoint(stored=16384)
    assert wp.default_adjoint(16384, 16 * 8) == wp.StoredStepsAdjoint(stored=16384)  # 2^21 numbers
    assert wp.default_adjoint(16384, 500 * 8).stored == (1 << 21) // 4000 == 524  # as many as fit
    assert wp.default_adjoint(16384, 50 * 8).stored == _options.MAX_STORED_STEPS == 1024
    assert wp.default_adjoint(16384, 10**7).stored == 1
    assert wp.default_adjoint(16384, 50 * 8).checkpoints is None  # equinox's √(2·steps) past them
    seen = []
    monkeypatch.setattr(_evolve, "default_adjoint", lambda *a: seen.append(a) or wp.default_adjoint(*a))
    k0 = jnp.array([[1.0, 0.0], [1.0, 0.1], [1.0, 0.2]])
    evolve(js.models.massive_dirac(1.0, 0.3), jnp.zeros(2), k0, 5.0, jnp.array([0.1, 0.0]), band=0, saveat=2,
           max_steps=777)
    assert seen == [(777, 3 * 8)]
    seen.clear()
    explicit = diffrax.RecursiveCheckpointAdjoint(checkpoints=5)
    evolve(js.models.massive_dirac(1.0, 0.3), jnp.zeros(2), k0, 5.0, jnp.array([0.1, 0.0]), band=0, saveat=2,
           max_steps=778, adjoint=explicit)
    assert seen == []


def test_stored_steps_adjoint_goes_on_past_its_stored_steps():
    """``StoredStepsAdjoint``: a vmapped solve of more steps than are stored goes on (treeverse over
    ``checkpoints`` after them, behind a cond taken only then) to the values of a solve with every step stored;
    where treeverse keeps all of its steps too, or the cond is not taken (the default for large batches), the
    gradient is the same (1e-12); a solve that runs out of ``max_steps`` fails there as with one loop; bad sizes
    are refused."""
    model = js.models.massive_dirac(1.0, 0.3)
    k0 = jnp.array([[1.5, 0.0], [1.5, 0.2]])

    def run(delta, adjoint, max_steps=4096):
        m = model.with_params({**model.params, "delta": delta})
        tr = evolve(m, jnp.zeros(2), k0, 2 * HBAR * 1.5 / 0.2, jnp.array([0.2, 0.0]), band=0, saveat=2,
                    adjoint=adjoint, max_steps=max_steps, throw=False)
        return jnp.concatenate([tr.populations[:, -1, 1], tr.x[:, -1, 0]]), (tr.stats["num_steps"], tr.result)

    every = wp.StoredStepsAdjoint(stored=4096)
    split = wp.StoredStepsAdjoint(stored=20, checkpoints=200)
    (value, (steps, _)), (value_split, (steps_split, _)) = run(0.3, every), run(0.3, split)
    assert np.all(np.asarray(steps) > 40), steps  # both loops run
    np.testing.assert_array_equal(np.asarray(steps_split), np.asarray(steps))
    np.testing.assert_allclose(np.asarray(value_split), np.asarray(value), rtol=1e-13, atol=1e-15)
    jac = np.asarray(jax.jit(jax.jacrev(lambda d: run(d, every)[0]))(0.3))
    assert np.min(np.abs(jac)) > 0.01, jac
    for adjoint in (split, wp.StoredStepsAdjoint(stored=int(np.max(np.asarray(steps))) + 1, checkpoints=8)):
        np.testing.assert_allclose(np.asarray(jax.jit(jax.jacrev(lambda d: run(d, adjoint)[0]))(0.3)), jac, rtol=1e-12)
    budget = int(np.max(np.asarray(steps))) - 5
    with pytest.warns(UserWarning, match="max_steps_reached"):
        failed = run(0.3, wp.StoredStepsAdjoint(stored=20, checkpoints=8), max_steps=budget)[1][1]
    assert not np.all(np.asarray(failed == wp.Result.successful))
    for bad in (dict(stored=0), dict(stored=5, checkpoints=0)):
        with pytest.raises(ValueError, match="stored >= 1"):
            wp.StoredStepsAdjoint(**bad)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_default_gradient_of_a_long_adaptive_sweep_matches_landau_zener():
    """∂P/∂Δ of a Landau–Zener sweep of 450 adaptive Magnus4 steps (K = 20 1/Å), default adjoint (forward mode:
    one input) and its reverse mode (``default_adjoint``: every step stored), against the formula's
    −2πΔ/(vE)·P: 1e-5 relative (measured 8e-7 and 3e-8). With diffrax's default √(2·max_steps) = 180
    checkpoints the backward pass recomputed steps, their controller took other ones, and the gradient came
    out +3.10; with every step stored it is the solve's own."""
    model = js.models.massive_dirac(1.0, 0.3)
    K, field = 20.0, 0.2

    def upper(delta, adjoint=None):
        m = model.with_params({**model.params, "delta": delta})
        tr = evolve(m, jnp.zeros(2), jnp.array([K, 0.0]), 2 * HBAR * K / field, jnp.array([field, 0.0]), band=0,
                    saveat=2, adjoint=adjoint)
        return tr.populations[-1, 1], tr.stats["num_steps"]

    (p, steps) = jax.jit(upper)(0.3)
    formula = np.exp(-np.pi * 0.3**2 / field)
    assert int(steps) > 180 and abs(float(p) - formula) < 1e-5
    for adjoint in (None, wp.default_adjoint(16384, 8)):
        grad = jax.jit(jax.grad(lambda d, a=adjoint: upper(d, a)[0]))(0.3)
        np.testing.assert_allclose(float(grad), -2 * np.pi * 0.3 / field * formula, rtol=1e-5)

