"""The exact relaxation-time steady state (Chambers' formula): uniform fields (SSCT and the
non-adiabatic theory's field-dressed bands, ``chambers_average``; two-band lattice models through a
k-independent table of e^{is·ρ}, ``lattice_chambers``) and SSCT with a texture
(``characteristic_occupation``).

Eq. A5 without its short-τ step: with ħk̇ = −eE the state at k was at k + eEs/ħ a time s
earlier, so the steady state of the relaxation-time Boltzmann equation is

    f_n(k) = ∫₀^∞ (ds/τ) e^{−s/τ} f⁰(ε_n(k + eEs/ħ))  ≈  Σ_i w_i f⁰(ε_n(k + eEτu_i/ħ)),

with the ``FIELD_NODES`` = 16 heaviest nodes (u ≤ 19.9) of the ``LAGUERRE_NODES``-point Gauss–Laguerre rule in
u = s/τ (the 16 others weigh 4.5e-10 together), their weights w_i moved by the least change that makes the moments
Σ w_i u_i^m = ∫u^m e^{−u} du = m! exact for m ≤ ``EXACT_MOMENTS`` = 4: 16 energy evaluations per k and field. All
weights move by 6.8e-9 in sum, so f, a weighted mean of 0 ≤ f⁰ ≤ 1, stays within 6.8e-9 of the 32-node rule's;
the τ-derivatives of f up to the 4th at τ = 0 (and so the responses up to 4th order at small fields) are exact to
rounding, its first order in τ is Eq. 46c exactly, and Σ w_i u_i^m is m! to 6e-7 (m = 5), 6e-6 (6) and 2e-4 (8).
``conductivity(order=n)`` at E = 0 uses the full, exact (n//2 + 1)-node rules (below): the exact n-th order
response for n < 2·LAGUERRE_NODES − 2 (Drude, nonlinear Drude, …). At finite field the integrand oscillates
with the Bloch frequency: for a cosine band, f⁰(ε(k + eEτu/ħ)) has harmonics e^{imφu}, φ = eEaτ/ħ, and the rule
is accurate to 5e-9 (relative) for mφ ≤ 2, 1.4e-4 for mφ = 3 (the current of a cosine band needs only m = 1). Off
a lattice the integrand is smooth on the scale kT/(eEτ|v|) in u: keep eEτ|v|/kT ≲ 1 for 1e-8 at each k. Beyond, the sum
over k is what the rule integrates — Σ_i w_i Σ_k w_k f⁰(ε(k + eEτu_i/ħ))ẋ(k), smooth in u — as long as the
k-grid resolves the Fermi surface at every shifted point (u ≲ 20), which a grid refined at μ alone does not.

With a texture the state at (x, k) was a time s earlier at (X_n, K_n)(−s), the backward
characteristic of Eq. 43 for band n; since Eq. 43 conserves ε_n + eE·x,

    f_n(x, k) = ∫₀^∞ (ds/τ) e^{−s/τ} f⁰(ε_n(x, k) + eE·(x − X_n(−s))),

with the same rule in u and X_n(−τu_i) from a fixed-step RK4 solve of dλ/du = −τλ̇ (steps
≤ ``CHARACTERISTIC_STEP``·e^{u/5} in u, at the same 16 nodes; for two bands the rates of Eq. 43 in
closed form, ``_two_band_rate``). The
conserved energy makes f = f⁰ exact at E = 0 whatever the step, and the error ∝ E·δX.
For a uniform model the characteristic is K = k + eEs/ħ and the two forms agree.

Derivatives at E = 0 need far fewer nodes: f⁰(ε(k + qu)) = Σ_m u^m (q·∇_k)^m f⁰/m! with
q = eEτ/ħ, and ∫u^m e^{−u} du = m!, so f = Σ_m (q·∇_k)^m f⁰(ε(k)) — a polynomial of degree n in
u fixes every E-derivative up to order n at E = 0. An N-node rule integrates u^m exactly for
m < 2N, so ``nodes_for(n) = n // 2 + 1`` nodes give ∂ⁿJ/∂Eⁿ at E = 0 exactly (the same numbers
as the finite-field rule, to rounding); ``conductivity`` uses it when its expansion point is E = 0 in a
uniform model (with a texture X_n(−τu) is not polynomial in u).
"""

from __future__ import annotations

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.ad_checkpoint import checkpoint_name

from .._bloch import entry_pattern, lattice_form
from .._eigh import _safe_sqrt
from .._eom import centre_of_mass_rates
from .._geometry import band_energies, einsum, point_geometry, two_band_geometry, two_band_jet
from .._statistics import fermi
from ..models._pauli import PAULI
from ..units import HBAR
from ._ssct import band_by_band, band_motion, occupation_and_slope

#: Gauss–Laguerre nodes of the rule the finite-field s-quadrature starts from.
LAGUERRE_NODES = 32
#: Nodes of that rule the finite-field quadrature keeps: the heaviest (the 16 others weigh 4.5e-10 together).
FIELD_NODES = 16
#: The kept weights are corrected, by the least change, so that Σ w u^m = m! for m ≤ EXACT_MOMENTS.
EXACT_MOMENTS = 4
#: Largest RK4 step in u = s/τ along a backward characteristic (textured models).
CHARACTERISTIC_STEP = 0.25
#: ``checkpoint_name`` of a lattice model's k-independent shift phases e^{is·ρ} (``shift_table``), which the
#: current's rematerialised chunks keep where the table is built inside the points (``transport._current``)
PHASES = "lattice_shift_phases"


class Exact(eqx.Module):
    """``relaxation=Exact(...)``: the exact relaxation-time steady state with its numerical settings
    (``relaxation="exact"`` is ``Exact()``).

    Args:
        characteristic_step: the largest RK4 step in u = s/τ along a textured model's backward characteristics
            (the steps grow as step·e^{u/5}; uniform models take no steps and ignore it). The default 0.25
            (31 steps) reaches ~1e-8 in f where a texture changes little over a mean free path; the error falls
            as step⁴ and the cost rises as 1/step. Halve it for textures whose mass or field changes sign within
            a few mean free paths of x (``docs/transport_orders.md``: at G = 0.05/Å in the benchmark's cone
            the default gives 2e-7, 0.0625 gives 2e-9). ``check=True`` estimates the error along the way and warns
            above 1e-6 in f (the validity number ``"characteristic"``).
    """

    characteristic_step: float = eqx.field(static=True, default=CHARACTERISTIC_STEP)

    def __check_init__(self):
        step = self.characteristic_step
        if isinstance(step, bool) or not isinstance(step, (int, float, np.floating, np.integer)) \
                or not math.isfinite(step) or step <= 0:
            raise ValueError(f"Exact(characteristic_step=...) must be a positive number (a step in u = s/τ), got "
                             f"{step!r}")


def nodes_for(order: int) -> int:
    """Fewest nodes whose rule gives every E-derivative up to ``order`` at E = 0 exactly."""
    return min(order // 2 + 1, LAGUERRE_NODES - 1)


@functools.lru_cache(maxsize=None)
def rule(nodes: int):
    """Nodes u (N,) and weights w (N,) of the ``nodes``-point Gauss–Laguerre rule; for ``nodes ==
    LAGUERRE_NODES`` the finite-field rule: its ``FIELD_NODES`` heaviest nodes, weights corrected (the least-squares
    change) so that its moments 0…``EXACT_MOMENTS`` are exact."""
    # numpy, not jnp: importing jaxsemi must not start the JAX backend (distributed.initialize comes first)
    u, w = np.polynomial.laguerre.laggauss(nodes)
    if nodes != LAGUERRE_NODES:
        return u, w
    keep = np.sort(np.argsort(-w)[:FIELD_NODES])
    u, w = u[keep], w[keep]
    powers = np.arange(EXACT_MOMENTS + 1)
    moments = u[None, :] ** powers[:, None] / np.array([math.factorial(m) for m in powers])[:, None]  # u^m/m!
    return u, w + moments.T @ np.linalg.solve(moments @ moments.T, 1 - moments @ w)


def _shifts(fields, tau, nodes: int, fields_major: bool = False):
    """The k-shifts eEτu_i/ħ (N, B, d) 1/Å of the ``nodes``-point rule, or (B, N, d) ``fields_major``, and its
    weights (N,). Each layout computed in its own order: a transpose of the other made the tilted cone's exact J at
    8 fields 1.3× slower (``chambers_average``)."""
    u, w = rule(nodes)
    if fields_major:
        return (tau[:, None] * u[None, :] / HBAR)[..., None] * fields[:, None, :], w
    return (u[:, None] * tau[None, :] / HBAR)[..., None] * fields[None, :, :], w


def _node_average(parts, w, mu, kT, axis: int = 0):
    """Σ_i w_i f⁰ (B, n) of shifted energies given as a tuple of parts in band order, each (N, B) or
    (N, B, m) eV, or with ``axis=1`` (B, N) or (B, N, m); a fused reduction per part (~3× faster than a dot here)."""
    def average(e):
        shape = [1] * e.ndim
        shape[1 - axis] = -1
        f0 = fermi(e, mu.reshape(shape), kT.reshape(shape))
        shape = [1] * e.ndim
        shape[axis] = -1
        return jnp.sum(w.reshape(shape) * f0, axis=axis).reshape(mu.shape[0], -1)

    return jnp.concatenate([average(e) for e in parts], -1)


def chambers_average(energy_fn, k, fields, mu, tau, kT, nodes: int = LAGUERRE_NODES, field_free: bool = False):
    """Σ_i w_i f⁰(ε(k + eEτu_i/ħ; E)) (B, n): the exact steady state of bands ε = ``energy_fn(k, E)``
    ((d,), (d,) → the n energies in eV as a tuple of parts in band order, scalars or (m,) arrays:
    ``_geometry.band_energies``) for fields (B, d) V/Å, mu/tau/kT (B,), with the ``nodes``-point
    rule (fewer only for derivatives at E = 0, ``nodes_for``). ``field_free``: ``energy_fn`` ignores E (SSCT).

    How XLA:CPU vectorises the B·N shifted points depends on their layout, and the fastest differs (tilted cone,
    12 800 k, 16 nodes, compiled, against the 21-node rule nested (B, N) in the same process): energies of k alone
    as one batch of B·N points, fields major (J at 8 fields 0.76–0.84×; nested with the nodes major 1.13–1.15×,
    nested (B, N) 1.01–1.09×); the dressed energies (one jvp along E per point) nested with the nodes major, which
    keeps E's tangents shared (χ at a field 0.75–0.81×; as one batch 1.75–1.86×)."""
    shifts, w = _shifts(fields, tau, nodes, fields_major=field_free)  # (B, N, d) or (N, B, d)
    if field_free:
        b, n, d = shifts.shape
        flat = jax.vmap(energy_fn, in_axes=(0, None))((k + shifts).reshape(b * n, d), fields[0])
        return _node_average(tuple(p.reshape((b, n) + p.shape[1:]) for p in flat), w, mu, kT, axis=1)
    parts = jax.vmap(jax.vmap(energy_fn), in_axes=(0, None))(k + shifts, fields)  # each (N, B) or (N, B, m)
    return _node_average(parts, w, mu, kT)


def lattice_pauli(model, positions: bool = False):
    """(ρ (m, d) Å, c (m, 4) complex eV) with (d₀, d)(k) = Re Σ_ρ e^{ik·ρ} c(ρ) for a two-band lattice model
    (``_bloch.lattice_form``), else None. Entry (i, j) of 𝓗 sits at ρ = R + τ_j − τ_i; without
    ``positions`` at ρ = R — 𝓗 up to the gauge D = diag(e^{ik·τ}), enough for energies, not for
    k-derivatives. Equal ρ are summed and each −ρ folded onto ρ, exactly: Re(e^{−iθ}c) = Re(e^{iθ}c*). Only
    the entries the form can set give a ρ (``_bloch.entry_pattern``; not the 0 of H_ij(R) for every (i, j) of each
    R: the Haldane model's ρ with positions are 7, not 11, and its non-adiabatic exact J at 8 fields on 120² takes
    30.3–30.7 instead of 34.0–35.4 ms, best of 20 calls in alternating processes)."""
    form = lattice_form(model) if model.n_bands == 2 else None
    if form is None:
        return None
    r, hr, tau = form
    tau = np.asarray(tau) if positions else np.zeros_like(np.asarray(tau))
    pattern = entry_pattern(model)
    pairs = [(i, j) for i in range(2) for j in range(2)]
    vectors = np.concatenate([(np.asarray(r) + tau[j] - tau[i])[pattern[:, i, j]] for i, j in pairs])
    coefficients = jnp.concatenate([PAULI[None, :, j, i] * hr[pattern[:, i, j], i, j, None] / 2
                                    for i, j in pairs])  # Tr(σ_a 𝓗)/2
    keys = [tuple(v) for v in np.round(vectors, 9) + 0.0]  # +0.0: −0.0 → 0.0
    present = set(keys)

    def negative(key):
        return tuple(-np.asarray(key) + 0.0)

    kept = sorted({max(key, negative(key)) if negative(key) in present else key for key in keys})  # of ρ, −ρ the larger
    index = {key: i for i, key in enumerate(kept)}
    folded = np.array([key not in index for key in keys])  # rows whose −ρ is kept
    target = np.array([index[negative(key) if f else key] for key, f in zip(keys, folded)])
    c = jnp.where(folded[:, None], jnp.conj(coefficients), coefficients)
    return jnp.asarray(np.array(kept)), jnp.zeros((len(kept), 4), c.dtype).at[target].add(c)


def shift_table(lattice, fields, tau, nodes: int, dressed: bool = False):
    """The k-independent table (ρ (m, d), W (2m, N·B·c)) of a two-band lattice model (``lattice_pauli``) at the
    shifts eEτu_i/ħ of fields (B, d) V/Å, tau (B,) fs and the ``nodes``-point rule: c = 4 columns (d₀, d), or with
    ``dressed`` 7, also the σ-part of eE·∂d/∂k (the dressing needs no eE·∂d₀/∂k; 7 columns, not 8: Haldane 120², J
    at 8 fields −3 %). With e^{i(k+s)·ρ} = e^{ik·ρ}e^{is·ρ}, W of e^{is·ρ}c(ρ) (and of i(ρ·eE)e^{is·ρ}c(ρ)) makes
    each k one row [cos k·ρ, sin k·ρ] (2m,) times W (``_shifted_lattice_d``): no trigonometry per shifted point
    (through the model's 𝓗 a sine and cosine per R each)."""
    r, c = lattice
    shifts, _ = _shifts(fields, tau, nodes)
    angle = shifts @ r.T  # s·ρ (N, B, m)
    # e^{is·ρ}, named as its real parts (``checkpoint_name`` takes no complex values)
    phases = jax.lax.complex(*(checkpoint_name(f(angle), PHASES) for f in (jnp.cos, jnp.sin)))
    table = phases[..., None] * c  # e^{is·ρ}c(ρ) (N, B, m, 4)
    if dressed:  # ρ·eE (1, B, m)
        table = jnp.concatenate([table, 1j * (fields @ r.T)[None, :, :, None] * table[..., 1:]], -1)  # (N, B, m, 7)
    table = jnp.moveaxis(table, -2, 0)  # (m, N, B, 4 or 7)
    w = jnp.concatenate([table.real, -table.imag])  # Re(e^{iθ}T) = cos·Re T − sin·Im T
    return r, w.reshape(2 * r.shape[0], -1)


def lattice_tables(model, fields, tau, nodes: int):
    """``shift_table`` of a two-band lattice model for SSCT (``lattice_pauli`` without positions) and dressed for
    the non-adiabatic theory (with positions), else None. ``current`` computes them once per call, outside the
    points (``_Setup.lattices``): inside, the points' own tangents of τ, E and the hoppings made reverse mode
    repeat the table's work at every point (Haldane 120², exact J at 8 fields: gradient SSCT 163 → 46 ms,
    non-adiabatic 463 → 135 ms)."""
    lattice = lattice_pauli(model)
    if lattice is None:
        return None
    return (shift_table(lattice, fields, tau, nodes),
            shift_table(lattice_pauli(model, positions=True), fields, tau, nodes, dressed=True))


def _shifted_lattice_d(table, k, shape):
    """The shifted d-vectors (d₀, d) (and with a dressed table eE·∂d/∂k's σ-part) at k (d,) 1/Å, reshaped to
    ``shape`` (N, B, c): one row [cos k·ρ, sin k·ρ] times the ``shift_table`` W (per k only the 2m phases; with the
    k-dependent factor e^{ik·ρ}c(ρ) per k instead, XLA:CPU recomputed each phase's sine and cosine for all 8 of its
    products with c: Haldane 120², non-adiabatic J at 8 fields, best of 30 calls 42–44 → 37–38 ms)."""
    r, w = table
    phase = r @ k  # (m,)
    return (jnp.concatenate([jnp.cos(phase), jnp.sin(phase)]) @ w).reshape(shape)


def lattice_chambers(table, k, mu, kT, nodes: int = LAGUERRE_NODES, bands=None):
    """Σ_i w_i f⁰ (B, 2) of a two-band lattice model's shifted bands from its ``shift_table`` (of the same
    ``nodes``): d₀ ∓ |d| (SSCT), or ``bands(d (4,), e (3,))`` → (lower, upper) eV of d and e = eE·∂d/∂k (the
    non-adiabatic dressed bands; a ``dressed`` table of the model with positions). k (d,) 1/Å; mu/kT (B,) eV.
    Nodes major, fields minor (Haldane 120², J at 8 fields with 16 nodes, against the 21-node rule with the fields
    major in the same process: 0.88–0.90× SSCT, 0.75–0.78× non-adiabatic; with the fields major 1.10–1.13× SSCT)."""
    u, w = rule(nodes)
    out = _shifted_lattice_d(table, k, (len(u), mu.shape[0], -1))
    if bands is None:
        dn = _safe_sqrt(jnp.sum(out[..., 1:] ** 2, -1))
        parts = (out[..., 0] - dn, out[..., 0] + dn)
    else:
        parts = jax.vmap(jax.vmap(bands))(out[..., :4], out[..., 4:])
    return _node_average(parts, w, mu, kT)


def chambers_occupation(model, k, x, fields, mu, tau, kT, nodes: int = LAGUERRE_NODES, lattices=None):
    """Exact SSCT occupations f_n(k) (B, n) of the model's bands (``chambers_average``); a two-band lattice
    model's from one GEMM per k (``lattice_chambers``: Haldane J at 8 fields 270 → 29 ms), with its
    ``lattice_tables`` if given (else built here)."""
    if lattices is not None:
        return lattice_chambers(lattices[0], k, mu, kT, nodes)
    lattice = lattice_pauli(model)
    if lattice is None:
        return chambers_average(lambda kk, e: band_energies(model, kk, x), k, fields, mu, tau, kT, nodes,
                                field_free=True)
    return lattice_chambers(shift_table(lattice, fields, tau, nodes), k, mu, kT, nodes)


@functools.lru_cache(maxsize=None)
def _characteristic_steps(nodes: int, step: float):
    """RK4 steps in u (S,) and the weight of the node each step ends on (S,; 0 between nodes).

    Steps grow as ``step``·e^{u/5}: a local error at u reaches the nodes beyond it, of total weight
    ≈ e^{−u}, and RK4 makes h⁴ of it per unit u, so the fewest steps ∫du/h at a fixed ∫h⁴e^{−u}du take
    h⁵ ∝ e^{u} (31 steps to u = 19.9 instead of 87 at a constant step; 39 with e^{u/8}, at the same error:
    it comes from the first steps, which the short gaps between the first nodes set)."""
    u, w = rule(nodes)
    sizes, weights, start = [], [], 0.0
    for end, weight in zip(u, w):
        count = int(np.ceil((end - start) / (step * np.exp(start / 5))))
        sizes += [(end - start) / count] * count
        weights += [0.0] * (count - 1) + [weight]
        start = end
    return np.array(sizes), np.array(weights)


def _two_band_rate(model, lam, field, band):
    """(ẋ, k̇) (2d,) in Å/fs and 1/(Å·fs) of band 0 or 1 of a two-band model at λ = (x, k) (Å, 1/Å) in the field
    (d,) V/Å, by Eq. 43 with the band's slopes and curvatures in closed form (``two_band_geometry``)."""
    d = lam.shape[0] // 2
    _, slope, omega = two_band_geometry(two_band_jet(model, lam[d:], lam[:d], True),
                                        jnp.where(band == 0, -1.0, 1.0)[None])
    # splits, not slices (reverse mode transposes a slice into a pad of the whole array: ``_ssct.two_band_motion``)
    vk, vx = jnp.split(jnp.squeeze(slope, 0), 2)  # in (k, x)
    (kk, kx), (xk, xx) = (jnp.split(rows, 2, 1) for rows in jnp.split(jnp.squeeze(omega, 0), 2))
    xdot, kdot = centre_of_mass_rates(vk / HBAR, vx, kk, kx, xk, xx, field)
    return jnp.concatenate([xdot, kdot])


def characteristic_occupation(model, k, x, energies, fields, mu, tau, kT, nodes: int = LAGUERRE_NODES,
                              step: float = CHARACTERISTIC_STEP, estimate: bool = False):
    """Exact SSCT occupations f_n(x, k) (B, n) of a textured model along the backward characteristics
    of Eq. 43; ``energies`` (n,) the bands ε_n(x, k) in eV, fields (B, d) V/Å, mu/tau/kT (B,). With ``estimate``
    also an estimate of their error (B, n): each step's RK4 minus the embedded third-order solution of the same
    stages and the next step's first (k₅ = the slope at the step's end), h(k₄ − k₅)/6, in eE·δX, summed along the
    characteristic and weighted at each node by w_i |∂f⁰/∂ε| (the validity number ``"characteristic"``)."""
    sizes, weights = _characteristic_steps(nodes, step)
    d, n = model.dim, energies.shape[0]

    def rate(lam, field, band):  # (ẋ, k̇) of one band at λ = (x, k)
        if n == 2:
            return _two_band_rate(model, lam, field, band)
        xdot, kdot, _, _ = band_motion(point_geometry(model, lam[d:], lam[:d], True), field[None])
        return jnp.concatenate([xdot[0, band], kdot[0, band]])

    per_field = jax.vmap(rate, in_axes=(0, 0, None))
    if not band_by_band(n, d):
        rates = jax.vmap(per_field, in_axes=(1, None, 0), out_axes=1)  # over fields, bands
    else:  # (``_ssct.UNROLLED_BANDS``)
        def rates(lam, fields, bands):
            return jnp.stack([per_field(lam[:, i], fields, i) for i in range(n)], 1)
    bands = jnp.arange(n)

    def rhs(lam):  # dλ/du = −τλ̇ (B, n, 2d)
        return -tau[:, None, None] * rates(lam, fields, bands)

    def rk4(lam, k1, h):  # one step of dλ/du = −τλ̇ from λ with slope k1; the new λ and k₄
        k2 = rhs(lam + 0.5 * h * k1)
        k3 = rhs(lam + 0.5 * h * k2)
        k4 = rhs(lam + h * k3)
        return lam + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4), k4

    def shifted(lam):  # the conserved ε_n + eE·(x − X_n) (B, n) eV
        return energies + einsum("Bd,Bnd->Bn", fields, x - lam[..., :d])

    def plain(carry, hw):  # the node sum where a step reaches a node
        lam, f = carry
        h, weight = hw
        lam, _ = rk4(lam, rhs(lam), h)
        return (lam, f + weight * fermi(shifted(lam), mu[:, None], kT[:, None])), None

    def estimated(carry, hw):  # the same, k₁ the last step's k₅, and the error estimate (only checked, forward:
        lam, k1, f, drift, error = carry  # carrying k₁ made the current's gradient 1.16× slower)
        h, weight = hw
        lam, k4 = rk4(lam, k1, h)
        k5 = rhs(lam)
        drift = drift + jnp.abs(einsum("Bd,Bnd->Bn", fields, h / 6 * (k4 - k5)[..., :d]))  # |eE·δX| (eV)
        occ, slope = occupation_and_slope(shifted(lam), mu[:, None], kT[:, None])  # f⁰, ∂f⁰/∂ε
        return (lam, k5, f + weight * occ, drift, error + weight * jnp.abs(slope) * drift), None

    start = jnp.broadcast_to(jnp.concatenate([x, k]), (fields.shape[0], n, 2 * d))
    zero = jnp.zeros((fields.shape[0], n))
    steps = (jnp.asarray(sizes), jnp.asarray(weights))
    if not estimate:
        return jax.lax.scan(plain, (start, zero), steps)[0][1]
    (_, _, f, _, error), _ = jax.lax.scan(estimated, (start, rhs(start), zero, zero, zero), steps)
    return f, error
