"""relaxation="exact": Chambers' steady state f = ∫(ds/τ)e^{−s/τ} f⁰(ε(k + eEs/ħ)) (SSCT, uniform).

Closed forms: Esaki–Tsu for a cosine band, the nonlinear Drude tensor of a tilted massive Dirac
cone, and the first order in τ equal to Eq. 46c. Units: E in V/Å, τ in fs, μ and kT in eV.
"""

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsemi as js
from jaxsemi import transport as tr
from jaxsemi._eigh import d_vector
from jaxsemi._geometry import point_geometry
from jaxsemi.transport import _relaxation
from jaxsemi.transport._nonadiabatic import _two_band_dressed, _two_band_dressed_by_vector, dressed_energies
from jaxsemi.transport._ssct import band_motion
from jaxsemi.units import HBAR, to_e2_over_h

V, DELTA, TILT = 1.0, 0.1, 0.3  # eV·Å, eV, eV·Å
MU, KT, TAU = 0.2, 0.01, 10.0
K_F = np.sqrt(MU**2 - DELTA**2) / V


def _cosine(k, x, p):
    return (-2 * p["J"] * jnp.cos(k[0]))[None, None].astype(complex)


@pytest.fixture(scope="module")
def chain():
    return js.Model(_cosine, {"J": 0.5}, 1, np.eye(1), name="cosine chain")  # a = 1 Å


@pytest.fixture(scope="module")
def tilted():
    return js.models.massive_dirac(V, DELTA, tilt=TILT)


@pytest.mark.parametrize("mu, kT", [(-0.6, 0.3), (0.2, 0.05), (0.9, 0.5)])
def test_esaki_tsu(chain, mu, kT):
    """j(E) = j_lin(E)/(1 + φ²), φ = eEaτ/ħ, at any filling and kT; negative slope past φ = 1."""
    tau = 5.0
    phi = np.array([0.1, 0.5, 1.0, 1.5, 2.0])
    fields = (phi * HBAR / tau)[:, None]  # V/Å, a = 1 Å
    grid = js.kgrid.brillouin_zone(chain, 256)  # aliasing of the m = 255 harmonic of f⁰: e^{-40}
    kw = dict(kT=kT, check=False)
    j_exact = np.asarray(tr.current(chain, fields, mu, tau, grid, relaxation="exact", **kw))[:, 0]
    j_lin = np.asarray(tr.current(chain, fields, mu, tau, grid, **kw))[:, 0]  # Eq. 46c: linear in E
    np.testing.assert_allclose(j_lin / fields[:, 0], j_lin[0] / fields[0, 0], rtol=1e-12)
    np.testing.assert_allclose(j_exact, j_lin / (1 + phi**2), rtol=1e-8)
    assert np.all(np.diff(j_exact[2:]) * np.sign(j_exact[2]) < 0)  # negative differential conductance
    assert abs(j_exact[-1]) < abs(j_exact[2])


def test_first_order_in_tau_is_eq_46c(tilted):
    """∂J/∂τ at τ = 0 (finite E) and σ = ∂J/∂E at E = 0 (any τ) equal relaxation='first_order'."""
    grid = js.kgrid.disk(1.5, 40, 16, scale=DELTA / V, breaks=[K_F])
    e = jnp.array([2e-3, -1e-3])

    def j_of(tau, relaxation):
        return tr.current(tilted, e, MU, tau, grid, kT=KT, relaxation=relaxation, check=False)

    slopes = {r: np.asarray(jax.jvp(lambda t: j_of(t, r), (0.0,), (1.0,))[1]) for r in ("exact", "first_order")}
    assert np.abs(slopes["exact"]).max() > 1e-6
    np.testing.assert_allclose(slopes["exact"], slopes["first_order"], rtol=1e-12, atol=1e-14)
    # at finite τ the two differ at O(τ²) (nonlinear Drude), not at O(τ)
    gap = [np.abs(np.asarray(j_of(t, "exact") - j_of(t, "first_order"))).max() for t in (1.0, 0.5)]
    np.testing.assert_allclose(gap[0] / gap[1], 4.0, rtol=0.05)
    kw = dict(kT=KT, check=False)
    sig = {r: np.asarray(tr.conductivity(tilted, [0.0, 0.0], MU, TAU, grid, relaxation=r, **kw))
           for r in ("exact", "first_order")}
    np.testing.assert_allclose(sig["exact"], sig["first_order"], rtol=1e-12, atol=1e-12)


def _third_derivatives(kx, ky):
    """∂³E/∂k_a∂k_b∂k_c of E = √(v²k² + Δ²) (the tilt is linear in k): (2, 2, 2, ...) in eV·Å³."""
    e = np.sqrt(V**2 * (kx**2 + ky**2) + DELTA**2)
    k = np.stack([kx, ky])
    eye = np.eye(2)[..., None, None]
    # ∂_a∂_b∂_c E = −v⁴(δ_ab k_c + δ_ac k_b + δ_bc k_a)/E³ + 3v⁶ k_a k_b k_c/E⁵
    sym = (np.einsum("ab...,c...->abc...", eye, k) + np.einsum("ac...,b...->abc...", eye, k)
           + np.einsum("bc...,a...->abc...", eye, k))
    return -V**4 * sym / e**3 + 3 * V**6 * np.einsum("a...,b...,c...->abc...", k, k, k) / e**5


def test_nonlinear_drude_of_a_tilted_cone(tilted):
    """χ_exact − χ_first = χ^ND_abc = −2(e³τ²/ħ³)∫f⁰ ∂³ε₊/∂k_a∂k_b∂k_c (no 1/2!: χ = ∂²J/∂E²).

    The reference is an independent polar quadrature (Gauss–Legendre panels × periodic
    trapezoid) of the analytic third derivative; the valence band is full (no contribution).
    """
    grid = js.kgrid.disk(2.0, 96, 64, scale=DELTA / V, breaks=[0.6 * K_F, 1.5 * K_F])
    kw = dict(order=2, kT=KT, check=False)
    chi = {r: np.asarray(tr.conductivity(tilted, [0.0, 0.0], MU, TAU, grid, relaxation=r, **kw))
           for r in ("exact", "first_order")}
    edges = np.array([0.0, 0.05, 0.1, 0.14, 0.18, 0.22, 0.26, 0.3, 0.5, 2.0])
    x, w = np.polynomial.legendre.leggauss(60)
    r = np.concatenate([0.5 * (b - a) * x + 0.5 * (b + a) for a, b in zip(edges[:-1], edges[1:])])
    wr = np.concatenate([0.5 * (b - a) * w for a, b in zip(edges[:-1], edges[1:])])
    th = 2 * np.pi * np.arange(512) / 512
    kx, ky = r[:, None] * np.cos(th), r[:, None] * np.sin(th)
    eps = TILT * kx + np.sqrt(V**2 * (kx**2 + ky**2) + DELTA**2)
    f0 = 0.5 * (1 - np.tanh((eps - MU) / (2 * KT)))
    weight = (wr * r)[:, None] * (2 * np.pi / 512) / (2 * np.pi) ** 2
    ref = to_e2_over_h(-2 * TAU**2 / HBAR**3 * np.einsum("rt,rt,abcrt->abc", weight, f0, _third_derivatives(kx, ky)))
    assert abs(ref[0, 0, 0]) > 1e-2 * np.abs(chi["first_order"]).max()  # a sizeable τ² term along the tilt
    np.testing.assert_allclose(chi["exact"] - chi["first_order"], ref, rtol=2e-4, atol=1e-6 * np.abs(ref).max())


def test_quadrature_converged_in_its_domain(tilted):
    """32 vs 64 Gauss–Laguerre nodes agree to 1e-9 for eEτ|v|/kT ≲ 1 and a cosine band at φ ≤ 1."""
    k = jnp.array([[0.15, 0.05], [0.2, -0.1], [0.1, 0.0]])
    args = (jnp.array([[0.001, 0.0005]]), jnp.array([MU]), jnp.array([TAU]), jnp.array([0.02]))
    occ = {n: np.asarray(jax.vmap(lambda kk: _relaxation.chambers_occupation(tilted, kk, jnp.zeros(2), *args, n))(k))
           for n in (32, 64)}
    assert np.abs(occ[32] - js.fermi(np.asarray(js.eigh(tilted, k)[0])[:, None], MU, 0.02)).max() > 1e-3
    np.testing.assert_allclose(occ[32], occ[64], atol=1e-9)


def test_finite_field_rule_is_the_heavy_half_of_32_nodes_with_exact_low_moments():
    """The finite-field rule keeps the 16 heaviest of the 32 Gauss–Laguerre nodes, weights moved by < 1e-8 in all
    (so f, a weighted mean of 0 ≤ f⁰ ≤ 1, moves by < 1e-8 from the 32-node rule), positive, with moments Σw u^m = m!
    to rounding for m ≤ 4 (the responses up to 4th order at small fields) and close beyond; the E = 0 rules stay
    whole."""
    u, w = _relaxation.rule(_relaxation.LAGUERRE_NODES)
    u32, w32 = np.polynomial.laguerre.laggauss(32)
    assert len(u) == 16 and np.all(w > 0)
    kept = np.isin(u32, u)
    assert kept.sum() == 16 and w32[kept].min() > w32[~kept].max()  # the heaviest
    assert np.abs(w - w32[kept]).sum() + w32[~kept].sum() < 1e-8
    for m in range(5):
        assert abs(np.sum(w * u**m) / math.factorial(m) - 1) < 1e-13, m
    for m, bound in zip(range(5, 9), (1e-6, 1e-5, 1e-4, 3e-4)):  # beyond the corrected ones, as documented
        assert abs(np.sum(w * u**m) / math.factorial(m) - 1) < bound, m
    assert len(_relaxation.rule(_relaxation.nodes_for(61))[0]) == _relaxation.nodes_for(61) == 31


def test_derivatives_at_zero_field_use_the_exact_low_node_rule(tilted):
    """At E = 0 ``conductivity`` uses order//2 + 1 nodes: the same tensors as the 32-node rule
    (a traced field cannot be seen to be zero and keeps 32 nodes), orders 1–3."""
    grid = js.kgrid.disk(1.5, 24, 12, scale=DELTA / V, breaks=[K_F])
    assert [_relaxation.nodes_for(n) for n in (1, 2, 3, 4)] == [1, 2, 2, 3]
    for order in (1, 2, 3):
        def chi(e, order=order):
            return tr.conductivity(tilted, e, MU, TAU, grid, order=order, kT=KT, relaxation="exact", check=False)

        few, full = np.asarray(chi(jnp.zeros(2))), np.asarray(jax.jit(chi)(jnp.zeros(2)))
        assert np.abs(full).max() > 1e-3
        np.testing.assert_allclose(few, full, rtol=1e-10, atol=1e-12 * np.abs(full).max(), err_msg=str(order))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("theory", ["ssct", "nonadiabatic"])
def test_exact_gradients_match_finite_differences(tilted, theory):
    """∂J_x/∂(v, Δ, tilt, μ, τ, kT, E_x) of the exact steady state against central differences."""
    grid = js.kgrid.disk(1.5, 40, 16, scale=DELTA / V, breaks=[K_F])
    p0 = dict(tilted.params)

    def jx(p, mu, tau, kT, ex):
        e = jnp.stack([ex, jnp.asarray(5e-4)])
        return tr.current(tilted.with_params(p), e, mu, tau, grid, kT=kT, theory=theory, relaxation="exact",
                          check=False)[0]

    _assert_gradients_match_fd(jx, p0, ("v", "delta", "tilt"), atol=1e-14)


def _assert_gradients_match_fd(fn, p0, names, atol):
    """jax.grad of fn(p, mu, tau, kT, E_x) in every element of the parameters ``names`` and in μ, τ, kT, E_x
    against central differences (steps 1e-5, 1e-7 for E_x) at μ = MU, τ = TAU, kT = 0.02 eV, E_x = 1e-3 V/Å."""
    x0 = (MU, TAU, 0.02, 1e-3)
    scalars = ("mu", "tau", "kT", "ex")
    grads = jax.grad(fn, argnums=(0, 1, 2, 3, 4))(*(jax.tree_util.tree_map(jnp.asarray, (p0,) + x0)))
    flat = {**{(n, i): grads[0][n].reshape(-1)[i] for n in names for i in range(np.size(p0[n]))},
            **{(n, 0): g for n, g in zip(scalars, grads[1:])}}
    for (name, i), g in flat.items():
        h = 1e-7 if name == "ex" else 1e-5

        def at(step):
            p, rest = dict(p0), list(x0)
            if name in p:
                p[name] = jnp.asarray(p[name], dtype=float).reshape(-1).at[i].add(step).reshape(np.shape(p[name]))
            else:
                rest[scalars.index(name)] += step
            return float(fn(p, *map(jnp.asarray, rest)))

        fd = (at(h) - at(-h)) / (2 * h)
        np.testing.assert_allclose(float(g), fd, rtol=1e-5, atol=atol, err_msg=f"{name}[{i}]")


def test_options_are_checked(tilted, chain):
    grid = js.kgrid.disk(1.0, 8, 8)
    with pytest.raises(ValueError, match="relaxation must be one of"):
        tr.current(tilted, [0.0, 0.0], MU, TAU, grid, kT=KT, relaxation="chambers")
    with pytest.raises(ValueError, match=r"one of .* or a js.transport.Exact"):
        tr.current(tilted, [0.0, 0.0], MU, TAU, grid, kT=KT, relaxation=0.25)
    for step in (0.0, -0.1, np.nan, "0.1", True):
        with pytest.raises(ValueError, match=r"Exact\(characteristic_step=\.\.\.\) must be a positive number"):
            tr.Exact(characteristic_step=step)
    textured = js.models.massive_dirac(V, DELTA, texture_G=[0.02, 0.0])
    with pytest.raises(ValueError, match="with a texture .* not implemented for theory 'nonadiabatic'"):
        tr.conductivity(textured, [0.0, 0.0], MU, TAU, grid, kT=KT, theory="nonadiabatic", relaxation="exact")

    class Plain(tr.SSCT):
        exact_relaxation = False

    with pytest.raises(ValueError, match="'exact' .* not implemented for theory 'ssct'"):
        tr.current(tilted, [0.0, 0.0], MU, TAU, grid, kT=KT, theory=Plain(), relaxation="exact")
    with pytest.raises(ValueError, match="phase_space_density is implemented"):
        tr.current(tilted, [0.0, 0.0], MU, TAU, grid, kT=KT, theory="nonabelian", phase_space_density=True)
    with pytest.raises(TypeError, match="phase_space_density"):
        tr.current(tilted, [0.0, 0.0], MU, TAU, grid, kT=KT, phase_space_density="yes")
    # the exact f stays in [0, 1]: no linearisation warning where Eq. 46c's δf exceeds 0.5
    fine = js.kgrid.disk(1.5, 48, 16, scale=DELTA / V)
    with pytest.warns(tr.ValidityWarning, match="relaxation-time correction"):
        tr.current(tilted, [0.003, 0.0], MU, TAU, fine, kT=0.005)
    with warnings.catch_warnings():
        warnings.simplefilter("error", tr.ValidityWarning)
        tr.current(tilted, [0.003, 0.0], MU, TAU, fine, kT=0.005, relaxation="exact")
    # hall_vs_field passes the option through: the exact Hall secant of the tilted cone
    sig = tr.hall_vs_field(tilted, jnp.array([1e-4]), MU, TAU, grid, kT=KT, theory="ssct", relaxation="exact",
                           check=False)
    assert np.isfinite(np.asarray(sig)).all()


def _two_cosines(k, x, p):
    """Two decoupled cosine bands −2J₁cos k and c − 2J₂cos k (a = 1 Å), far apart: no hybridisation."""
    return jnp.diag(jnp.stack([-2 * p["J1"] * jnp.cos(k[0]), p["c"] - 2 * p["J2"] * jnp.cos(k[0])])).astype(complex)


def test_nonadiabatic_exact_is_esaki_tsu_without_hybridisation():
    """Without interband connection the dressed bands are the bare ones: every band follows Esaki–Tsu."""
    model = js.Model(_two_cosines, {"J1": 0.5, "J2": 0.3, "c": 2.0}, 1, np.eye(1))
    tau, phi = 5.0, np.array([0.5, 1.0, 2.0])
    fields = (phi * HBAR / tau)[:, None]
    grid = js.kgrid.brillouin_zone(model, 256)
    kw = dict(kT=0.3, theory="nonadiabatic", check=False)
    j_exact = np.asarray(tr.current(model, fields, 1.4, tau, grid, relaxation="exact", **kw))[:, 0]
    j_lin = np.asarray(tr.current(model, fields, 1.4, tau, grid, **kw))[:, 0]
    assert np.abs(j_lin).min() > 1e-3
    np.testing.assert_allclose(j_exact, j_lin / (1 + phi**2), rtol=1e-8)


def test_nonadiabatic_exact_first_order_in_tau_is_eq_57(tilted):
    """With hybridisation (the whole cone as manifold, eEv/Δ² = 0.2): ∂J/∂τ at τ = 0 and σ(E = 0) equal
    Eq. 57's, and the two differ at O(τ²) — g relaxes to g⁰ of the field-dressed bands 𝓔_i(k; E)."""
    grid = js.kgrid.disk(1.5, 40, 16, scale=DELTA / V, breaks=[K_F])
    e = jnp.array([2e-3, 1e-3])

    def j_of(tau, relaxation):
        return tr.current(tilted, e, MU, tau, grid, kT=KT, theory="nonadiabatic", relaxation=relaxation,
                          check=False)

    at_zero = {r: np.asarray(jax.jvp(lambda t: j_of(t, r), (0.0,), (1.0,))) for r in ("exact", "first_order")}
    # τ = 0: J of g⁰(𝓔(E)), not of g⁰(ε): the hybridisation changes it
    j_bare = np.asarray(tr.current(tilted, e, MU, 0.0, grid, kT=KT, relaxation="exact", check=False))
    assert np.abs(at_zero["exact"][0] - j_bare).max() > 1e-6 * np.abs(j_bare).max()
    np.testing.assert_allclose(at_zero["exact"], at_zero["first_order"], rtol=1e-11, atol=1e-15)
    gap = [np.abs(np.asarray(j_of(t, "exact") - j_of(t, "first_order"))).max() for t in (1.0, 0.5)]
    np.testing.assert_allclose(gap[0] / gap[1], 4.0, rtol=0.05)
    sig = {r: np.asarray(tr.conductivity(tilted, [0.0, 0.0], MU, TAU, grid, kT=KT, theory="nonadiabatic",
                                         relaxation=r, check=False)) for r in ("exact", "first_order")}
    np.testing.assert_allclose(sig["exact"], sig["first_order"], rtol=1e-11, atol=1e-12)
    # τ = 0: χ is the hybridisation alone, through the dressed bands' E-derivatives (at E = 0 too, where
    # |d × e|² has its double zero)
    for field in ([0.0, 0.0], e):
        chi = {r: np.asarray(tr.conductivity(tilted, field, MU, 0.0, grid, order=2, kT=KT, theory="nonadiabatic",
                                             relaxation=r, check=False)) for r in ("exact", "first_order")}
        assert np.abs(chi["exact"]).max() > 0.5
        np.testing.assert_allclose(chi["exact"], chi["first_order"], rtol=1e-12, atol=1e-13)


@pytest.mark.timeout(400)
@pytest.mark.parametrize("theory", ["ssct", "nonadiabatic"])
def test_two_band_lattice_models_shift_by_a_phase_table(theory):
    """A two-band lattice model's shifted 𝓗 (and, non-adiabatic, eE·∂𝓗/∂k) come from one GEMM with the
    k-independent table of e^{is·ρ} (−ρ folded onto ρ), built once per call outside the points; the same exact
    currents and gradients in the parameters, τ and E as its unregistered copy (𝓗 and its jvp at every shifted
    point), over chunks: Haldane, QWZ, and a tight-binding honeycomb with orbital positions (which the dressed bands
    see through ∂𝓗/∂k) and complex hoppings."""
    honeycomb = js.models.tight_binding(
        [[1.5, 0.866], [1.5, -0.866]], [[1 / 3, 1 / 3], [2 / 3, 2 / 3]],
        [(-1.0, 0, 1, [0, 0]), (-1.0, 1, 0, [1, 0]), (-1.0, 1, 0, [0, 1]), (0.1 + 0.2j, 0, 0, [1, 0]),
         (0.1 - 0.2j, 1, 1, [1, 0]), (0.05j, 0, 0, [1, -1])], [0.3, -0.3])
    fields = jnp.array([[0.02, 0.01], [-0.01, 0.05]])
    for model, mu in [(js.models.haldane(1.0, 0.15, np.pi / 2, 0.2), -0.3), (js.models.qwz(1.0, -1.0), 1.2),
                      (honeycomb, 0.4)]:
        for positions in (False, True):
            r, c = _relaxation.lattice_pauli(model, positions)
            assert len(r) < 4 * len(_relaxation.lattice_form(model)[0])  # equal ρ summed, −ρ folded
        copy = js.Model(lambda k, x, p, m=model: m.hamiltonian(k, x, p), model.params, 2, model.lattice)
        assert _relaxation.lattice_pauli(copy) is None
        grid = js.kgrid.brillouin_zone(model.lattice, 12)

        def j(m, p, tau=10.0, fields=fields, mu=mu, grid=grid):
            return tr.current(m.with_params(p), fields, mu, tau, grid, kT=0.05, theory=theory, relaxation="exact",
                              check=False, chunk_size=50)

        fast, slow = j(model, model.params), j(copy, model.params)
        assert float(jnp.max(jnp.abs(slow))) > 1e-4
        np.testing.assert_allclose(fast, slow, rtol=1e-11, atol=1e-14)
        args = (dict(model.params), 10.0, fields)
        g_fast, g_slow = (jax.grad(lambda p, tau, e, m=m: j(m, p, tau, e)[1, 0], argnums=(0, 1, 2))(*args)
                          for m in (model, copy))
        assert float(jnp.abs(g_slow[1])) > 1e-7 and float(jnp.max(jnp.abs(g_slow[2]))) > 1e-4
        for a, b in zip(jax.tree_util.tree_leaves(g_fast), jax.tree_util.tree_leaves(g_slow)):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("split", [0.3, 1e-12])
def test_two_band_dressed_energies_closed_form_equals_eigh(split):
    """Eq. 61's 𝓔_± of a two-band manifold in closed form (no eigenvectors) equal the eigh path's: the same
    2×2 block inside a three-band 𝓗 whose third level is far and uncoupled (manifold [0, 2]), for a
    generic and an exactly degenerate 𝓗 (no connection there: 𝓔 = ε)."""
    rng = np.random.default_rng(7)
    sigma = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]])
    d = rng.normal(size=3)
    h = 0.2 * np.eye(2) + split * np.einsum("a,aij->ij", d / np.linalg.norm(d), sigma)
    dh = 0.05 * np.eye(2) + 0.07 * np.einsum("a,aij->ij", rng.normal(size=3), sigma)
    block = lambda m, far: jnp.asarray(np.pad(m, ((0, 1), (0, 1))) + np.diag([0, 0, far]))  # noqa: E731
    closed = np.hstack(_two_band_dressed(*d_vector(jnp.asarray(h)), d_vector(jnp.asarray(dh))[1]))
    general = np.asarray(dressed_energies(block(h, 50.0), block(dh, 0.0), 0, 2))
    np.testing.assert_allclose(closed, general, rtol=0, atol=1e-14)
    by_vector = np.hstack(_two_band_dressed_by_vector(*d_vector(jnp.asarray(h)), d_vector(jnp.asarray(dh))[1]))
    np.testing.assert_allclose(by_vector, general, rtol=0, atol=1e-14)
    hybridised = np.abs(closed - np.linalg.eigvalsh(h)).max()
    assert hybridised > 1e-3 if split > 1e-6 else hybridised < 1e-14


def test_nonabelian_exact_changes_only_the_bands_outside(tilted):
    """A filled manifold holds f = 1 under any relaxation: NonAbelian(0) exact − first order equals the
    SSCT difference (the lower band's share of which is e^{−30}-small)."""
    grid = js.kgrid.disk(1.5, 40, 16, scale=DELTA / V, breaks=[K_F])
    e = jnp.array([2e-3, -1e-3])
    j = {(t, r): np.asarray(tr.current(tilted, e, MU, TAU, grid, kT=KT, theory=t, bands=0 if t == "nonabelian"
                                       else None, relaxation=r, check=False))
         for t in ("nonabelian", "ssct") for r in ("exact", "first_order")}
    diff = j["ssct", "exact"] - j["ssct", "first_order"]
    assert np.abs(diff).max() > 1e-6
    np.testing.assert_allclose(j["nonabelian", "exact"] - j["nonabelian", "first_order"], diff, rtol=1e-10,
                               atol=1e-12 * np.abs(diff).max())


def _disguised(k, x, p):
    """The tilted cone with a 0·x term: x-dependent by its jaxpr, so it takes the textured path."""
    return js.models.massive_dirac(V, DELTA, tilt=TILT).hamiltonian(k, x, p) + 0.0 * x[0] * jnp.eye(2)


TEXTURED_X = jnp.array([10.0, 5.0])  # Å; G·x = 0.25 for G = (0.02, 0.01) 1/Å


@pytest.fixture(scope="module")
def textured():
    return js.models.massive_dirac(V, DELTA, tilt=TILT, texture_G=[0.02, 0.01])


def test_textured_path_of_a_uniform_model_is_chambers(tilted):
    """Backward characteristics of an x-independent model: K = k + eEs/ħ, the uniform formula (to 1e-10)."""
    model = js.Model(_disguised, dict(tilted.params), 2)
    grid = js.kgrid.disk(1.5, 16, 8, scale=DELTA / V, breaks=[K_F])
    e = jnp.array([[1e-3, 5e-4], [-2e-3, 0.0]])
    kw = dict(kT=KT, relaxation="exact", check=False)
    j_char = np.asarray(tr.current(model, e, MU, TAU, grid, x=TEXTURED_X, **kw))
    j_uniform = np.asarray(tr.current(tilted, e, MU, TAU, grid, **kw))
    np.testing.assert_allclose(j_char, j_uniform, rtol=1e-10, atol=1e-11 * np.abs(j_uniform).max())


@pytest.mark.timeout(300)
def test_two_band_characteristics_in_closed_form_equal_the_eigen_path():
    """The backward characteristics of a two-band model move by Eq. 43 in closed form (d-vector slopes and
    curvatures Ω_∓ = ±d·(∂_a d × ∂_b d)/2|d|³); the same pair inside a three-band 𝓗 with an uncoupled far level
    takes the eigen path: equal currents at two fields and equal parameter gradients."""
    from test_transport import _generic_pair, _generic_pair_and_far_level

    p = {"t": 0.3, "a": 0.4, "m": 0.5, "G": jnp.array([0.05, 0.02])}
    grid = js.kgrid.brillouin_zone(np.eye(2), 4)
    e = jnp.array([[0.01, -0.004], [0.0, 0.008]])

    def j(q, f):
        return tr.current(js.Model(f, q, 2, np.eye(2)), e, 0.1, 3.0, grid, kT=0.05, x=jnp.array([3.0, -7.0]),
                          relaxation="exact", check=False)

    closed, general = np.asarray(j(p, _generic_pair)), np.asarray(j(p, _generic_pair_and_far_level))
    assert np.abs(closed).max() > 1e-3
    np.testing.assert_allclose(closed, general, rtol=1e-10, atol=1e-12 * np.abs(general).max())
    grads = [jax.grad(lambda q: jnp.sum(j(q, f) * jnp.array([1.0, -0.7])))(p)
             for f in (_generic_pair, _generic_pair_and_far_level)]
    for name in p:
        np.testing.assert_allclose(grads[0][name], grads[1][name], rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.timeout(300)
def test_characteristics_band_by_band_equal_vmapped_over_bands(monkeypatch):
    """The characteristics' rates taken band by band (3D, n ≤ ``UNROLLED_BANDS``) or under a vmap over bands (2D,
    larger n) give the same occupations: a three-band textured model, two fields, two points."""
    from test_transport import _generic_pair_and_far_level

    model = js.Model(_generic_pair_and_far_level, {"t": 0.3, "a": 0.4, "m": 0.5, "G": jnp.array([0.05, 0.02])}, 2,
                     np.eye(2))
    x, e = jnp.array([3.0, -7.0]), jnp.array([[0.01, -0.004], [0.0, 0.008]])
    mu, tau, kT = jnp.array([0.1, 0.2]), jnp.array([3.0, 2.0]), jnp.array([0.05, 0.04])

    def occupations():
        out = []
        for k in jnp.array([[0.3, -0.2], [-0.5, 0.7]]):
            energies = point_geometry(model, k, x, True).energies
            out.append(_relaxation.characteristic_occupation(model, k, x, energies, e, mu, tau, kT))
        return np.asarray(out)

    monkeypatch.setattr(_relaxation, "band_by_band", lambda n, d: True)
    unrolled = occupations()
    monkeypatch.setattr(_relaxation, "band_by_band", lambda n, d: False)
    vmapped = occupations()
    assert unrolled.shape == (2, 2, 3) and np.ptp(unrolled) > 1e-2
    np.testing.assert_allclose(unrolled, vmapped, rtol=0, atol=1e-14)


@pytest.mark.slow
def test_textured_characteristic_against_an_adaptive_solve(textured):
    """f_n(x, k) against Dopri8 (rtol 1e-12) backward characteristics, ε_n(X, K) evaluated directly (not
    through the conserved ε + eE·x) and a 64-node rule: agreement to 1e-8 where δf ~ 1e-2."""
    diffrax = pytest.importorskip("diffrax")
    kT, e = 0.02, jnp.array([[1e-3, 5e-4]])
    u, w = np.polynomial.laguerre.laggauss(64)
    keep = w > 1e-30
    u, w = u[keep], w[keep]

    def reference(k, band):
        def rhs(s, lam, args):
            xdot, kdot, _, _ = band_motion(point_geometry(textured, lam[2:], lam[:2], True), e)
            return -jnp.concatenate([xdot[0, band], kdot[0, band]])

        sol = diffrax.diffeqsolve(diffrax.ODETerm(rhs), diffrax.Dopri8(), 0.0, TAU * u[-1], 0.1,
                                  jnp.concatenate([TEXTURED_X, k]), saveat=diffrax.SaveAt(ts=jnp.asarray(TAU * u)),
                                  stepsize_controller=diffrax.PIDController(rtol=1e-12, atol=1e-12), max_steps=100000)
        eps = jax.vmap(lambda kk, xx: js.eigh(textured, kk, xx)[0])(sol.ys[:, 2:], sol.ys[:, :2])[:, band]
        return float(np.sum(w * np.asarray(js.fermi(eps, MU, kT))))

    for k in jnp.array([[0.15, 0.05], [0.2, -0.1], [-0.1, 0.12]]):
        geo = point_geometry(textured, k, TEXTURED_X, True)
        f = np.asarray(_relaxation.characteristic_occupation(textured, k, TEXTURED_X, geo.energies, e,
                                                             jnp.array([MU]), jnp.array([TAU]), jnp.array([kT]))[0])
        ref = np.array([reference(k, b) for b in (0, 1)])
        assert np.abs(ref - np.asarray(js.fermi(geo.energies, MU, kT))).max() > 2e-3
        np.testing.assert_allclose(f, ref, rtol=0, atol=1e-8)


@pytest.mark.slow
def test_textured_first_order_in_tau_is_eq_46c(textured):
    """With a texture: ∂J/∂τ at τ = 0 (finite E) equals Eq. 46c's, the gap is O(τ²), and at E = 0 the
    exact f is f⁰ (ε + eE·x conserved): the same equilibrium current as first order."""
    grid = js.kgrid.disk(1.5, 16, 8, scale=DELTA / V, breaks=[K_F])
    e = jnp.array([2e-3, -1e-3])

    def j_of(tau, relaxation, field=e):
        return tr.current(textured, field, MU, tau, grid, kT=KT, x=TEXTURED_X, relaxation=relaxation, check=False)

    slopes = {r: np.asarray(jax.jvp(lambda t: j_of(t, r), (0.0,), (1.0,))[1]) for r in ("exact", "first_order")}
    assert np.abs(slopes["exact"]).max() > 1e-6
    np.testing.assert_allclose(slopes["exact"], slopes["first_order"], rtol=1e-10, atol=1e-14)
    gap = [np.abs(np.asarray(j_of(t, "exact") - j_of(t, "first_order"))).max() for t in (0.4, 0.2)]
    np.testing.assert_allclose(gap[0] / gap[1], 4.0, rtol=0.05)
    j0 = {r: np.asarray(j_of(TAU, r, jnp.zeros(2))) for r in ("exact", "first_order")}
    assert np.abs(j0["first_order"]).max() > 1e-6  # the texture's equilibrium current
    np.testing.assert_allclose(j0["exact"], j0["first_order"], rtol=1e-13, atol=1e-16)


@pytest.mark.timeout(300)
def test_textured_characteristic_step_converges_as_rk4():
    """``Exact(characteristic_step=h)`` along the characteristics of a texture 2.5× the fixture's (G = (0.05, 0.025)/Å):
    the current's error against h = 1/32 falls by > 30× from h = 1/4 to 1/16 (RK4: 256×; 1.2e-9 → 1.1e-11 relative,
    measured), the default is accurate to 1e-8 and ``"exact"`` is ``Exact()``. The errors are ≥ 10⁴× below the
    exact − first-order difference the option exists to resolve."""
    strong = js.models.massive_dirac(V, DELTA, tilt=TILT, texture_G=[0.05, 0.025])
    grid = js.kgrid.disk(1.5, 16, 8, scale=DELTA / V, breaks=[K_F])
    e = jnp.array([0.1 * DELTA**2 / V, 0.0])

    def j(relaxation):
        return np.asarray(tr.current(strong, e, MU, TAU, grid, kT=KT, x=TEXTURED_X, relaxation=relaxation,
                                     check=False))

    ref = j(tr.Exact(1 / 32))
    scale = np.abs(ref).max()
    errors = [np.abs(j(tr.Exact(h)) - ref).max() / scale for h in (1 / 4, 1 / 8, 1 / 16)]
    assert errors[0] > errors[1] > errors[2] and errors[0] / errors[2] > 30, errors
    assert errors[0] < 1e-8
    np.testing.assert_array_equal(j("exact"), j(tr.Exact()))
    assert np.abs(ref - j("first_order")).max() / scale > 1e4 * errors[0]


@pytest.mark.timeout(300)
def test_characteristic_error_estimate_bounds_the_error_and_flags_unresolved_characteristics():
    """The ``"characteristic"`` estimate of f's error (the embedded third-order RK solution) on a 16×8 disk, strong
    texture (G = (0.05, 0.025)/Å): its grid maximum above the true error's (against step 1/32) and falling with the
    step (~h³) — not at each point: at step 1/8 one point's error, 8.3e-8, comes from a node at u ≈ 17 whose long
    step lands elsewhere (the same for steps 0.125–0.15, 1e-12 outside), where the estimate is 4e-10 — and at
    eEv/Δ² = 0.5 along y, where the characteristics reach |d| ≈ Δ/6 and f does not converge with the step, above
    1e-4 at both steps. ``current`` warns (default ``check``) at the default step, not at 1/8."""
    strong = js.models.massive_dirac(V, DELTA, tilt=TILT, texture_G=[0.05, 0.025])
    grid = js.kgrid.disk(1.5, 16, 8, scale=DELTA / V, breaks=[K_F])
    fields = jnp.array([[0.1 * DELTA**2 / V, 0.0], [0.0, 0.5 * DELTA**2 / V]])
    b = (jnp.full(2, MU), jnp.full(2, TAU), jnp.full(2, KT))

    def occupations(step, estimate):
        def at(k):
            energies = point_geometry(strong, k, TEXTURED_X, True).energies
            return _relaxation.characteristic_occupation(strong, k, TEXTURED_X, energies, fields, *b, step=step,
                                                         estimate=estimate)
        return jax.tree.map(np.asarray, jax.jit(jax.vmap(at))(grid.points))  # (k, B, n)

    ref = occupations(1 / 32, False)
    (f1, e1), (f2, e2) = occupations(0.25, True), occupations(0.125, True)
    for f, e in ((f1, e1), (f2, e2)):  # measured: true 2.2e-7, 8.3e-8; estimated 2.3e-6, 4.7e-7
        true = np.abs(f - ref)[:, 0]
        assert 1e-8 < true.max() < e[:, 0].max() < 30 * true.max(), (true.max(), e[:, 0].max())
        assert e[:, 1].max() > 1e-4 and np.abs(f - ref)[:, 1].max() > 1e-3  # unresolved: 5e-3 and 4.5e-3
    assert 3.0 < e1[:, 0].max() / e2[:, 0].max() < 12.0
    np.testing.assert_allclose(f1, occupations(0.25, False), rtol=0, atol=1e-15)  # the estimate changes nothing

    def warned(relaxation):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tr.current(strong, fields[0], MU, TAU, grid, kT=KT, x=TEXTURED_X, relaxation=relaxation)
        return [str(w.message) for w in caught if issubclass(w.category, tr.ValidityWarning)]

    assert any("characteristics of relaxation='exact' are not resolved" in m for m in warned("exact"))
    assert warned(tr.Exact(0.125)) == []


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_textured_exact_gradients_match_finite_differences(textured):
    """∂J_y/∂(v, Δ, tilt, G, μ, τ, kT, E_x) along the backward characteristics against central differences."""
    grid = js.kgrid.disk(1.2, 12, 8, scale=DELTA / V, breaks=[K_F])
    p0 = dict(textured.params)

    def jy(p, mu, tau, kT, ex):
        e = jnp.stack([ex, jnp.asarray(5e-4)])
        return tr.current(textured.with_params(p), e, mu, tau, grid, kT=kT, x=TEXTURED_X, relaxation="exact",
                          check=False)[1]

    _assert_gradients_match_fd(jy, p0, ("v", "delta", "tilt", "G"), atol=1e-12)


@pytest.mark.slow
def test_textured_nonabelian_exact_changes_only_the_bands_outside(textured):
    """With a texture too: NonAbelian(0) exact − first order equals the SSCT difference (filled lower band)."""
    grid = js.kgrid.disk(1.5, 16, 8, scale=DELTA / V, breaks=[K_F])
    e = jnp.array([2e-3, -1e-3])
    j = {(t, r): np.asarray(tr.current(textured, e, MU, TAU, grid, kT=KT, x=TEXTURED_X, theory=t,
                                       bands=0 if t == "nonabelian" else None, relaxation=r, check=False))
         for t in ("nonabelian", "ssct") for r in ("exact", "first_order")}
    diff = j["ssct", "exact"] - j["ssct", "first_order"]
    assert np.abs(diff).max() > 1e-6
    np.testing.assert_allclose(j["nonabelian", "exact"] - j["nonabelian", "first_order"], diff, rtol=1e-9,
                               atol=1e-11 * np.abs(diff).max())
