"""Tight-binding builder, Wannier90 hr.dat reader and PythTB import, checked against the
closed-form models, closed-form band structures and PythTB's own Hamiltonian and curvature."""

import jax
import numpy as np
import pytest

import jaxsemi as js
from jaxsemi.models.pythtb import _empty_model

S3 = np.sqrt(3.0)
HALDANE = dict(t1=1.0, t2=0.1, phi=1.2, mass=0.2)  # lower band C = +1
RNG = np.random.default_rng(7)
K = RNG.uniform(-3.0, 3.0, (16, 2))  # random cartesian k, 1/Å


def haldane_hoppings(t1, t2, phi):
    """Bonds of js.models.haldane: A at 0, B at δ₁ = a(1/2, √3/2) = (2/3)a₁ − (1/3)a₂."""
    hops = [(t1, 0, 1, (0, 0)), (t1, 0, 1, (-1, 1)), (t1, 0, 1, (-1, 0))]  # δ₁, δ₂, δ₃
    for r in [(0, 1), (-1, 0), (1, -1)]:  # b_i = a₂, −a₁, a₁ − a₂
        hops += [(t2 * np.exp(1j * phi), 0, 0, r), (t2 * np.exp(-1j * phi), 1, 1, r)]
    return hops


HALDANE_LATTICE = np.array([[1.5, S3 / 2], [1.5, -S3 / 2]])
HALDANE_ORBITALS = np.array([[0.0, 0.0], [2 / 3, -1 / 3]])


def haldane_tb(t1, t2, phi, mass, orbitals=HALDANE_ORBITALS):
    return js.models.tight_binding(HALDANE_LATTICE, orbitals, haldane_hoppings(t1, t2, phi), [mass, -mass])


@pytest.fixture(scope="module")
def pair():
    return haldane_tb(**HALDANE), js.models.haldane(**HALDANE)


# ------------------------------------------------------------------------ tight_binding


def test_tight_binding_reproduces_haldane(pair):
    tb, ref = pair
    np.testing.assert_allclose(tb(K), ref(K), atol=1e-13)
    np.testing.assert_allclose(js.berry_curvature(tb, K), js.berry_curvature(ref, K), atol=1e-11)
    assert float(js.chern_number(tb, 0, 18)) == pytest.approx(1.0, abs=1e-9)
    grid = js.kgrid.brillouin_zone(tb, 36)
    sigma = js.hall_conductivity(tb, [0.0, -0.5], grid)  # gap; inside the lower band
    np.testing.assert_allclose(sigma, js.hall_conductivity(ref, [0.0, -0.5], grid), atol=1e-12)
    assert float(sigma[0]) == pytest.approx(-1.0, abs=1e-4)  # C = +1 ⇒ σ_xy = −1 e²/h


def test_tight_binding_parameter_gradients_match_haldane(pair):
    """∂/∂M = ∂/∂ε_A − ∂/∂ε_B and ∂/∂t₁ = Σ_nn Re ∂/∂t of the lower-band curvature at one k."""
    tb, ref = pair
    k = np.array([0.7, -0.4])
    omega = lambda m: js.berry_curvature(m, k)[0, 0, 1]  # noqa: E731
    g_tb = jax.grad(lambda p: omega(tb.with_params(p)))(tb.params)
    g_ref = jax.grad(lambda p: omega(ref.with_params(p)))(ref.params)
    assert float(g_tb["onsite"][0] - g_tb["onsite"][1]) == pytest.approx(float(g_ref["mass"]), rel=1e-9)
    assert float(np.sum(np.real(g_tb["hoppings"][:3]))) == pytest.approx(float(g_ref["t1"]), rel=1e-9)
    # and against a central finite difference of the onsite energy of A
    h = 1e-5
    shift = lambda s: tb.with_params({**tb.params, "onsite": tb.params["onsite"] + np.array([s, 0.0])})  # noqa: E731
    fd = (omega(shift(h)) - omega(shift(-h))) / (2 * h)
    assert float(g_tb["onsite"][0]) == pytest.approx(float(fd), rel=1e-6)


def test_tight_binding_same_structure_shares_compiled_code(pair):
    tb, _ = pair
    other = haldane_tb(0.5, 0.3, -0.4, 0.1)
    assert other.hamiltonian == tb.hamiltonian and hash(other.hamiltonian) == hash(tb.hamiltonian)
    assert jax.tree_util.tree_structure(other) == jax.tree_util.tree_structure(tb)
    shifted = haldane_tb(0.5, 0.3, -0.4, 0.1, orbitals=HALDANE_ORBITALS + 0.1)
    assert shifted.hamiltonian != tb.hamiltonian  # geometry is part of the static structure


def test_tight_binding_orbital_positions_enter_the_phase():
    """Moving both orbitals together leaves 𝓗(k) unchanged (only τ_j − τ_i enters); moving one
    changes the local curvature by a total derivative, so bands and the Chern number stay."""
    base, moved = haldane_tb(**HALDANE), haldane_tb(**HALDANE, orbitals=HALDANE_ORBITALS + [0.3, 0.1])
    np.testing.assert_allclose(moved(K), base(K), atol=1e-13)
    origin = haldane_tb(**HALDANE, orbitals=np.zeros((2, 2)))
    np.testing.assert_allclose(js.eigh(origin, K)[0], js.eigh(base, K)[0], atol=1e-12)
    assert np.max(np.abs(js.berry_curvature(origin, K) - js.berry_curvature(base, K))) > 1e-3
    assert float(js.chern_number(origin, 0, 18)) == pytest.approx(1.0, abs=1e-9)


def test_tight_binding_fcc_and_ssh_closed_forms():
    """3D fcc s band, ε + 4t Σ cos(k_i a/2) cos(k_j a/2); 1D SSH, ±|v + w e^{ika}|."""
    a, t, eps = 3.2, -0.7, 0.4
    lat = a / 2 * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]])
    bonds = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, -1, 0), (0, 1, -1), (1, 0, -1)]
    fcc = js.models.tight_binding(lat, [[0, 0, 0]], [(t, 0, 0, r) for r in bonds], [eps])
    k = RNG.uniform(-2, 2, (10, 3))
    c = np.cos(k * a / 2)
    expected = eps + 4 * t * (c[:, 0] * c[:, 1] + c[:, 1] * c[:, 2] + c[:, 2] * c[:, 0])
    np.testing.assert_allclose(js.eigh(fcc, k)[0][:, 0], expected, atol=1e-12)

    v, w, a1 = 0.8, 0.3, 2.0
    ssh = js.models.tight_binding([[a1]], [[0.0], [0.5]], [(v, 0, 1, (0,)), (w, 1, 0, (1,))], [0.0, 0.0])
    k1 = np.linspace(-2, 2, 9)[:, None]
    e = np.abs(v + w * np.exp(1j * k1[:, 0] * a1))
    np.testing.assert_allclose(js.eigh(ssh, k1)[0], np.stack([-e, e], -1), atol=1e-12)


@pytest.mark.parametrize(
    "hoppings, onsite, match",
    [
        ([(1.0, 0, 2, (0, 0))], [0, 0], "out of range"),
        ([(1.0, 0, 1, (0, 0, 0))], [0, 0], "R must be 2 integers"),
        ([(1.0, 0, 1, (0.5, 0))], [0, 0], "R must be 2 integers"),
        ([(1.0, 1, 1, (0, 0))], [0, 0], "own Hermitian partner"),
        ([(1.0, 0, 1, (1, 0)), (2.0, 1, 0, (-1, 0))], [0, 0], "Hermitian conjugate"),
        ([(1.0, 0, 1, (1, 0)), (2.0, 0, 1, (1, 0))], [0, 0], "repeats"),
        ([(np.nan, 0, 1, (1, 0))], [0, 0], "NaN"),
        ([(1.0, 0, 1)], [0, 0], r"\(t, i, j, R\)"),
        ([(1.0, 0.0, 1, (1, 0))], [0, 0], "must be ints"),
        ([], [0, 0, 0], r"onsite must have shape \(2,\)"),
        ([], [0, 1j], "real"),
    ],
)
def test_tight_binding_bad_input(hoppings, onsite, match):
    with pytest.raises(ValueError, match=match):
        js.models.tight_binding(np.eye(2), [[0, 0], [0.5, 0.5]], hoppings, onsite)


def test_tight_binding_bad_geometry():
    with pytest.raises(ValueError, match="orbitals must have shape"):
        js.models.tight_binding(np.eye(2), [[0, 0, 0]], [], [0])
    with pytest.raises(ValueError, match="lattice must be"):
        js.models.tight_binding(np.eye(2)[:1], [[0, 0]], [], [0])
    with pytest.raises(ValueError, match="linearly dependent"):
        js.models.tight_binding([[1, 0], [2, 0]], [[0, 0]], [], [0])


def test_conjugate_pairs_are_summed_when_allowed():
    one = js.models.tight_binding(np.eye(1), [[0.0]], [(0.5 + 0.2j, 0, 0, (1,))], [0.0])
    two = js.models.tight_binding(np.eye(1), [[0.0]], [(0.25 + 0.1j, 0, 0, (1,)), (0.25 - 0.1j, 0, 0, (-1,))],
                                  [0.0], allow_conjugate_pair=True)
    k = np.linspace(-3, 3, 7)[:, None]
    np.testing.assert_allclose(two(k), one(k), atol=1e-14)
    np.testing.assert_allclose(js.eigh(one, k)[0][:, 0], 2 * 0.5 * np.cos(k[:, 0]) - 2 * 0.2 * np.sin(k[:, 0]),
                               atol=1e-14)


# ------------------------------------------------------------------------ Wannier90


def hr_blocks(hoppings, onsite, n):
    """H(R)_mn = ⟨m,0|H|n,R⟩ of a tight-binding model, Hermitian partners included."""
    blocks = {(0, 0, 0): np.diag(np.asarray(onsite, complex))}
    for t, i, j, r in hoppings:
        r3 = tuple(r) + (0,) * (3 - len(r))
        minus = tuple(-v for v in r3)
        blocks.setdefault(r3, np.zeros((n, n), complex))[i, j] += t
        blocks.setdefault(minus, np.zeros((n, n), complex))[j, i] += np.conj(t)
    return blocks


def write_hr(path, blocks, degeneracy=None, pad=0):
    """Write Wannier90's format; ``pad`` zero blocks at far R, H(R) multiplied by deg(R)."""
    blocks = dict(blocks)
    n = next(iter(blocks.values())).shape[0]
    for p in range(pad):
        blocks[(7 + p, 0, 0)] = np.zeros((n, n))
    rs = list(blocks)
    deg = [(degeneracy or {}).get(r, 1) for r in rs]
    lines = ["written by test_models_interop", f"{n:12d}", f"{len(rs):12d}"]
    lines += ["".join(f"{d:5d}" for d in deg[i:i + 15]) for i in range(0, len(deg), 15)]
    for r, d in zip(rs, deg):
        for col in range(n):
            for row in range(n):
                v = blocks[r][row, col] * d
                lines.append(f"{r[0]:5d}{r[1]:5d}{r[2]:5d}{row + 1:5d}{col + 1:5d}{v.real:22.15f}{v.imag:22.15f}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def haldane_hr(tmp_path_factory):
    blocks = hr_blocks(haldane_hoppings(HALDANE["t1"], HALDANE["t2"], HALDANE["phi"]),
                       [HALDANE["mass"], -HALDANE["mass"]], 2)
    deg = {(0, 1, 0): 2, (0, -1, 0): 2, (1, -1, 0): 3, (-1, 1, 0): 3}
    return write_hr(tmp_path_factory.mktemp("w90") / "haldane_hr.dat", blocks, deg, pad=12)  # 19 R: 2 lines


def test_wannier90_haldane_roundtrip(haldane_hr, pair):
    """hr.dat has no orbital positions: H(k) equals the model with both orbitals at the origin
    (bands and local curvature), while energies, the Chern number and σ_xy in the gap equal
    those of js.models.haldane (positions in the phase)."""
    _, ref = pair
    lat3 = np.eye(3)
    lat3[:2, :2] = HALDANE_LATTICE
    w = js.models.from_wannier90(haldane_hr, lattice=lat3, dim=2)
    assert (w.dim, w.n_bands, w.params["hr"].shape) == (2, 2, (19, 2, 2))
    origin = haldane_tb(**HALDANE, orbitals=np.zeros((2, 2)))
    np.testing.assert_allclose(w(K), origin(K), atol=1e-13)
    np.testing.assert_allclose(js.berry_curvature(w, K), js.berry_curvature(origin, K), atol=1e-11)
    np.testing.assert_allclose(js.eigh(w, K)[0], js.eigh(ref, K)[0], atol=1e-12)
    assert float(js.chern_number(w, 0, 18)) == pytest.approx(1.0, abs=1e-9)
    grid = js.kgrid.brillouin_zone(w, 36)
    assert float(js.hall_conductivity(w, 0.0, grid)) == pytest.approx(float(js.hall_conductivity(ref, 0.0, grid)),
                                                                      abs=1e-8)


def test_wannier90_3d_fcc(tmp_path):
    """A 3D file (R3 ≠ 0) against the fcc closed form; dim=2 refuses it; default lattice = 1."""
    a, t = 3.2, -0.7
    lat = a / 2 * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]])
    bonds = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, -1, 0), (0, 1, -1), (1, 0, -1)]
    path = write_hr(tmp_path / "fcc_hr.dat", hr_blocks([(t, 0, 0, r) for r in bonds], [0.1], 1),
                    {(1, 0, 0): 4})
    m = js.models.from_wannier90(path, lattice=lat)
    k = RNG.uniform(-2, 2, (10, 3))
    c = np.cos(k * a / 2)
    np.testing.assert_allclose(js.eigh(m, k)[0][:, 0],
                               0.1 + 4 * t * (c[:, 0] * c[:, 1] + c[:, 1] * c[:, 2] + c[:, 2] * c[:, 0]), atol=1e-12)
    unit = js.models.from_wannier90(path)
    np.testing.assert_allclose(unit.lattice, np.eye(3))
    np.testing.assert_allclose(js.eigh(unit, k @ lat.T)[0], js.eigh(m, k)[0], atol=1e-12)  # k·R invariant
    with pytest.raises(ValueError, match="R3 = 0"):
        js.models.from_wannier90(path, dim=2)


def _edit(path, fn):
    lines = path.read_text().splitlines()
    path.write_text("\n".join(fn(lines)) + "\n")
    return path


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda ls: ls[:2], "found 2 lines"),
        (lambda ls: ls[:1] + ["3"] + ls[2:], "matrix-element lines"),  # num_wann wrong
        (lambda ls: ls[:4] + ls[5:], "degeneracy lines"),  # a degeneracy line missing
        (lambda ls: ls[:-1], "found 75"),  # a matrix element missing
        (lambda ls: ls[:2] + ["x"] + ls[3:], "nrpts"),
        (lambda ls: ls[:5] + [ls[5].rsplit(None, 1)[0]] + ls[6:], "7 columns"),
        (lambda ls: ls[:5] + [ls[5].replace("    1    1 ", "    1    3 ", 1)] + ls[6:], "1..2"),
        (lambda ls: ls[:5] + [ls[6]] + ls[6:], "exactly once"),
        (lambda ls: ls[:5] + [ls[5].replace("    0    0    0", "   40    0    0", 1)] + ls[6:], "distinct R"),
        (lambda ls: ls[:3] + [ls[3] + "    1"] + ls[4:], "degeneracies"),
    ],
)
def test_wannier90_malformed(tmp_path, haldane_hr, edit, match):
    path = tmp_path / "bad_hr.dat"
    path.write_text(haldane_hr.read_text())
    with pytest.raises(ValueError, match=match):
        js.models.from_wannier90(_edit(path, edit), dim=2)


def test_wannier90_non_hermitian_file(tmp_path):
    blocks = hr_blocks([(0.5, 0, 1, (1, 0))], [0.0, 0.0], 2)
    blocks[(1, 0, 0)][0, 1] = 0.7  # its partner at −R still says 0.5
    with pytest.raises(ValueError, match="not Hermitian"):
        js.models.from_wannier90(write_hr(tmp_path / "nh_hr.dat", blocks), dim=2)


# ------------------------------------------------------------------------ PythTB


@pytest.fixture(scope="module")
def pythtb():
    return pytest.importorskip("pythtb")


def needs_pythtb2(pythtb):
    if not hasattr(pythtb, "TBModel"):
        pytest.skip(f"PythTB {pythtb.__version__} (1.x) lacks this API; pythtb 2 needs Python >= 3.12")


def _ptb_haldane(t1, t2, phi, mass):
    """js.models.haldane as a PythTB model (installed major): both orbitals shifted into the
    home cell, and a₁ ↔ a₂ swapped (PythTB wants a right-handed lattice)."""
    m = _empty_model(HALDANE_LATTICE[::-1], [[1 / 3, 0.0], [0.0, 2 / 3]])
    m.set_onsite([mass, -mass])
    for t, i, j, r in haldane_hoppings(t1, t2, phi):
        m.set_hop(t, i, j, list(r[::-1]))
    return m


def _ptb_kane_mele(delta, t, soc, rashba):
    """PythTB's Kane–Mele example (spinful honeycomb), built with the installed major."""
    m = _empty_model([[1, 0], [1 / 2, S3 / 2]], [[1 / 3, 1 / 3], [2 / 3, 2 / 3]], spinful=True)
    m.set_onsite([delta, -delta])
    sx, sy, sz = np.eye(4)[1:]
    for r in ([0, 0], [0, -1], [-1, 0]):
        m.set_hop(t, 0, 1, r)
    for s, r in ((-1, [0, 1]), (1, [1, 0]), (-1, [1, -1])):
        m.set_hop(s * 1j * soc * sz, 0, 0, r)
        m.set_hop(-s * 1j * soc * sz, 1, 1, r)
    for amp, r in (((sx - S3 * sy) / 2, [0, 0]), (-sx, [0, -1]), ((sx + S3 * sy) / 2, [-1, 0])):
        m.set_hop(1j * rashba * amp, 0, 1, r, mode="add")
    return m


def _ptb_hamiltonian(ptb, kred):
    """PythTB's own H(k) at reduced k, spin flattened (orbital, spin), with either major."""
    if hasattr(ptb, "hamiltonian"):
        return ptb.hamiltonian(kred, flatten_spin_axis=True)
    n = ptb.get_num_orbitals() * ptb._nspin
    return np.stack([ptb._gen_ham(k).reshape(n, n) for k in kred])


def test_from_pythtb_haldane(pythtb, pair):
    _, ref = pair
    ptb = _ptb_haldane(**HALDANE)
    m = js.models.from_pythtb(ptb)
    np.testing.assert_allclose(m(K), ref(K), atol=1e-13)
    kred = K @ HALDANE_LATTICE[::-1].T / (2 * np.pi)  # PythTB's reduced k
    np.testing.assert_allclose(m(K), _ptb_hamiltonian(ptb, kred), atol=1e-13)


def test_from_pythtb_haldane_curvature_matches_pythtb_kubo(pythtb):
    needs_pythtb2(pythtb)
    ptb = _ptb_haldane(**HALDANE)
    kred = K @ HALDANE_LATTICE[::-1].T / (2 * np.pi)
    omega_ptb = ptb.berry_curvature(kred, occ_idxs=[0], plane=(0, 1), cartesian=True)  # Kubo, Å²
    omega = js.berry_curvature(js.models.from_pythtb(ptb), K)[:, 0, 0, 1]
    np.testing.assert_allclose(omega, np.real(omega_ptb), rtol=1e-9, atol=1e-12)


def test_from_pythtb_spinful_kane_mele(pythtb):
    ptb = _ptb_kane_mele(0.7, 1.0, 0.3, 0.25)
    ptb.set_onsite([[0.0, 0.1, 0.2, 0.0], [0.0, 0.0, 0.0, 0.3]], mode="add")  # a Zeeman term mixing spins
    m = js.models.from_pythtb(ptb)
    b = 2 * np.pi * np.linalg.inv([[1, 0], [1 / 2, S3 / 2]]).T
    kred = RNG.uniform(0, 1, (8, 2))
    assert m.n_bands == 4
    h = _ptb_hamiltonian(ptb, kred)
    np.testing.assert_allclose(m(kred @ b), h, atol=1e-13)
    assert np.max(np.abs(h[:, 0, 1])) > 0.05  # spin mixing is present, not only its absence checked
    if hasattr(pythtb, "models"):  # pythtb 2 ships the same model
        from pythtb.models import kane_mele

        np.testing.assert_allclose(_ptb_hamiltonian(kane_mele(0.7, 1.0, 0.3, 0.25), kred),
                                   _ptb_hamiltonian(_ptb_kane_mele(0.7, 1.0, 0.3, 0.25), kred), atol=1e-14)


def test_from_pythtb_refuses(pythtb):
    ribbon = _empty_model(np.eye(2), [[0, 0]], periodic_dirs=[0])
    with pytest.raises(ValueError, match="fully periodic"):
        js.models.from_pythtb(ribbon)
    with pytest.raises(ValueError, match="not a PythTB model"):
        js.models.from_pythtb(object())


def test_from_pythtb_refuses_symbolic_parameters(pythtb):
    needs_pythtb2(pythtb)
    symbolic = _empty_model(np.eye(2), [[0, 0]])
    symbolic.set_onsite("U", ind_i=0)
    with pytest.raises(ValueError, match="symbolic parameters"):
        js.models.from_pythtb(symbolic)
