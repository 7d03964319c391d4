"""Public transport API: ``current``, ``conductivity`` and ``hall_vs_field``.

Units (e = 1, carriers are electrons of charge −e): field E in V/Å, μ and kT in eV, τ in fs,
current density J in e/(fs·Å^{d−1}) — convert with ``js.units.current_2d_to_A_per_m`` or
``current_3d_to_A_per_m2``. Conductivities are returned in e²/h (2D) or (e²/h)/Å (3D) per
(V/Å)^{order−1}.

Continuum grids (docs/conventions.md §12): ``current`` does not subtract J(E = 0). A filled band on a finite
k-disk can carry a current by itself (a tilted cone: ∫_disk ∂ε/∂ħk ≠ 0) — an artefact of the
cutoff, E-independent, so every derivative ``conductivity`` returns is free of it;
``hall_vs_field`` subtracts J(0) explicitly.
"""

from __future__ import annotations

import itertools
import math
from typing import Optional, Union

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks, _sharding, units
from .._bloch import is_lattice
from .._model import Model, depends_on_x
from ..kspace import default_chunk
from ..kspace._reduce import grid_reduce, grid_reduce_params
from ._limits import warn_limits
from ._nonadiabatic import save_shared_slopes
from ._relaxation import CHARACTERISTIC_STEP, LAGUERRE_NODES, PHASES, Exact, lattice_tables, nodes_for, rule
from ._theory import ALIASES, AbstractTheory, as_theory

THEORIES = tuple(ALIASES)  # the alias strings of ``theory``
RELAXATIONS = ("first_order", "exact")


class _Setup(eqx.Module):
    """Validated, broadcast inputs: fields (B, d), mu/tau/kT (B,), x (d,), batch shape, the theory
    object and static options (the ``s`` of ``AbstractTheory.integrand``)."""

    fields: jax.Array
    mu: jax.Array
    tau: jax.Array
    kT: jax.Array
    x: jax.Array
    batch: tuple = eqx.field(static=True)
    theory: AbstractTheory
    textured: bool = eqx.field(static=True)
    relaxation: str = eqx.field(static=True, default="first_order")
    density: bool = eqx.field(static=True, default=False)
    nodes: int = eqx.field(static=True, default=LAGUERRE_NODES)  # of the exact relaxation's s-rule
    step: float = eqx.field(static=True, default=CHARACTERISTIC_STEP)  # ``Exact.characteristic_step``
    #: every row of ``fields`` is the same field (one was given for a batch of μ, τ or kT): a theory may compute
    #: what depends on the field alone once, from ``fields[:1]`` (reverse mode then does too)
    one_field: bool = eqx.field(static=True, default=False)
    #: a two-band lattice model's tables (``_relaxation.lattice_tables``) under ``relaxation="exact"``, computed once
    #: per call outside the points (None: computed where needed)
    lattices: Optional[tuple] = None


def _setup(model, field, mu, tau, grid, kT, x, theory, bands, relaxation="first_order",
           phase_space_density=False, nodes=LAGUERRE_NODES) -> _Setup:
    if not isinstance(model, Model):
        raise ValueError(f"model must be a jaxsemi Model, got {type(model).__name__}")
    theory = as_theory(theory, bands)
    step = CHARACTERISTIC_STEP
    if isinstance(relaxation, Exact):
        relaxation, step = "exact", float(relaxation.characteristic_step)
    elif not isinstance(relaxation, str) or relaxation not in RELAXATIONS:
        raise ValueError(f"relaxation must be one of {RELAXATIONS} or a js.transport.Exact(...), got {relaxation!r}")
    if not isinstance(phase_space_density, (bool, np.bool_)):
        raise TypeError(f"phase_space_density must be True or False, got {phase_space_density!r}")
    textured = depends_on_x(model)
    if relaxation == "exact" and not theory.exact_relaxation:
        raise ValueError(f"relaxation='exact' (the exact relaxation-time steady state) is not implemented for "
                         f"theory {theory.name!r}; use relaxation='first_order'")
    if relaxation == "exact" and textured and not theory.exact_relaxation_textured:
        raise ValueError(f"relaxation='exact' with a texture (an x-dependent model) is not implemented for theory "
                         f"{theory.name!r}: its steady state needs the backward characteristic of that theory's "
                         f"phase-space flow (for 'nonadiabatic', Eq. 62's flow of the hybridised bands); use "
                         f"relaxation='first_order' or a uniform model")
    if phase_space_density and not theory.phase_space_density:
        raise ValueError(f"phase_space_density is implemented for theory='ssct' and 'nonadiabatic', got theory "
                         f"{theory.name!r} (Eq. 52 integrates a filled manifold with weight 1)")
    if grid.dim != model.dim:
        raise ValueError(f"grid points are {grid.dim}D but the model is {model.dim}D")
    d = model.dim
    field = _checks.as_points(field, d, "field")
    mu, tau, kT = (_checks.as_array(a, float) for a in (mu, tau, kT))
    for name, a in (("mu", mu), ("tau", tau)):
        _checks.check_finite(a, name)
    if _checks.is_concrete(tau) and np.any(np.asarray(tau) < 0):
        raise ValueError(f"tau must be >= 0 fs, got {tau}")
    x = np.zeros(d, jnp.result_type(float)) if x is None else _checks.as_points(x, d, "x")
    if x.shape != (d,):
        raise ValueError(f"x must be one position of shape ({d},), got {x.shape}")
    theory.check(model)
    fermi_surface = theory.fermi_surface(model.n_bands)
    tau_off = _checks.is_concrete(tau) and not np.any(np.asarray(tau) != 0)
    _checks.check_kT(kT, positive=fermi_surface and not tau_off,
                     why="the relaxation-time terms δf, δg (Drude, Berry-curvature dipole) live on the Fermi surface")
    try:
        batch = np.broadcast_shapes(field.shape[:-1], mu.shape, tau.shape, kT.shape)
    except ValueError as err:
        raise ValueError(f"field batch {field.shape[:-1]}, mu {mu.shape}, tau {tau.shape} and kT "
                         f"{kT.shape} do not broadcast") from err
    _checks.check_finite(model.params, "model.params")  # with_params does not check
    def flat(a, shape=()):  # NumPy for host values (``as_array``)
        return (np if _checks.is_host(a) else jnp).broadcast_to(a, batch + shape).reshape((-1,) + shape)

    inputs = (flat(field, (d,)), flat(mu), flat(tau), flat(kT), x)
    if not _checks.is_concrete(model.params, inputs):
        inputs = _traced_checks(model, *inputs, fermi_surface)
    # the low-node rule at E = 0 is exact only in a uniform model (``_relaxation``)
    nodes = LAGUERRE_NODES if textured else nodes
    return _Setup(*inputs, tuple(batch), theory, textured, relaxation, bool(phase_space_density), nodes,
                  step, math.prod(field.shape[:-1]) == 1)


def _traced_checks(model, fields, mu, tau, kT, x, fermi_surface):
    """The value checks of ``_setup`` as run-time errors (``eqx.error_if``) for traced inputs,
    which skipped them: raised under jit/vmap/grad when the program runs."""
    return _checks.traced_error_if((fields, mu, tau, kT, x), [
        (_checks.not_finite(fields), "field contains NaN or inf"),
        (_checks.not_finite(mu), "mu contains NaN or inf"),
        (~jnp.all(jnp.isfinite(tau) & (tau >= 0)), "tau must be finite and >= 0 fs"),
        (~jnp.all(jnp.isfinite(kT) & (kT >= 0)), "kT must be finite and >= 0 eV"),
        (fermi_surface & jnp.any((kT == 0) & (tau != 0)),
         "kT must be > 0 eV where tau != 0: the relaxation-time terms δf, δg (Drude, Berry-curvature dipole) "
         "live on the Fermi surface and kT = 0 would silently drop them"),
        (_checks.not_finite(x), "x contains NaN or inf"),
        (_checks.not_finite(model.params), "model.params contains NaN or inf"),
    ])


_traces = 0


def trace_count() -> int:
    """Diagnostics: how many times the k-integral of ``current``/``conductivity``/``hall_vs_field``
    has been traced (each trace compiles a program). New values of the field, μ, τ, kT or model
    parameters reuse the program and leave the count unchanged; new shapes or options add one."""
    return _traces


def field_derivatives(fn, x0, order: int, symmetric: bool):
    """∂ⁿf/∂xⁿ (..., d, …, d) at x0 (d,) of fn: x ↦ (f (...), aux), and aux at x0: n nested ``jacfwd``, or with
    ``symmetric`` and n ≥ 2 one nested jvp per sorted index tuple, C(n + d − 1, n) of them instead of dⁿ
    (jacfwd's batched tangents also repeat each lower derivative), traced together so that XLA computes their
    common lower terms once — where XLA does not duplicate those terms into each tuple's fusions again
    (``AbstractTheory``)."""
    if order == 0:
        return fn(x0)
    if not symmetric or order == 1:  # one batched jvp: the first derivatives share nothing more
        for _ in range(order):
            fn = jax.jacfwd(fn, has_aux=True)
        return fn(x0)

    def along(f, v):
        def derivative(x):
            (_, aux), (slope, _) = jax.jvp(f, (x,), (v,))
            return slope, aux
        return derivative

    d = x0.shape[0]
    tuples = list(itertools.combinations_with_replacement(range(d), order))
    values = []
    for indices in tuples:
        f = fn
        for a in indices:
            f = along(f, jnp.eye(d, dtype=x0.dtype)[a])
        value, aux = f(x0)
        values.append(value)
    position = {t: i for i, t in enumerate(tuples)}
    where = np.array([position[tuple(sorted(t))] for t in itertools.product(range(d), repeat=order)])
    tensor = jnp.stack(values)[where].reshape((d,) * order + values[0].shape)
    return jnp.moveaxis(tensor, tuple(range(order)), tuple(range(-order, 0))), aux


def _total(model, grid, s: _Setup, chunk_size, mesh, check: bool = False, asked: Optional[AbstractTheory] = None,
           order: int = 0):
    """Σ_k w_k j(k) (B, d), or with ``order`` n > 0 its n-th derivative in the field ∂ⁿJ/∂Eⁿ (B, d, …, d) at
    ``s.fields`` (per k, ``field_derivatives``); with ``check`` also the grid maxima of the validity numbers
    from the same pass, (J, {name: max}): ``s.theory``'s (sharing its per-k work), or ``asked``'s if given
    (the theory a user asked for where ``s.theory`` is its cheaper ``linear_response()``)."""
    global _traces
    _traces += 1  # Python side effect: runs at trace time only

    def at_field(m, setup, k, e):
        t = setup if order == 0 else eqx.tree_at(lambda t: t.fields, setup, setup.fields + e)
        if not check:
            return t.theory.integrand(m, k, t), {}
        if asked is None:
            j, limits = t.theory.integrand_and_validity(m, k, t)
        else:
            j, limits = t.theory.integrand(m, k, t), asked.validity(m, k, t)
        return j, jax.lax.stop_gradient(limits)  # read, never differentiated

    chunk = chunk_size or _default_chunk(model, s)
    # the per-tuple jvps only in one chunk: in a loop over chunks XLA hoists each tuple's copy of the
    # k-independent work out of the loop as a value of its own, and can no longer merge what the tuples share
    # (tilted cone, χ at a field, 51 200 k in 4 chunks: exact 28.7 ms per tuple vs 17.2 by jacfwd, first order
    # 5.0 vs 3.0; in one chunk of 12 800 k 3.9 vs 4.7 and 0.67 vs 0.70, order 3 exact 7.5 vs 13.6)
    symmetric = s.theory.symmetric_field_derivatives and -(-grid.size // mesh.size) <= chunk

    # a lattice model's k-independent tables once, outside the points (closed over: the points share their tangents);
    # a field derivative (``order``) moves the field at each point, and the tables with it
    lattices = lattice_tables(model, s.fields, s.tau, s.nodes) if (s.relaxation == "exact" and not s.textured
                                                                    and order == 0) else None

    def per_k(model_and_setup, k):
        m, setup = model_and_setup
        if lattices is not None:
            setup = eqx.tree_at(lambda t: t.lattices, setup, lattices, is_leaf=lambda v: v is None)
        j, limits = field_derivatives(lambda e: at_field(m, setup, k, e), jnp.zeros(model.dim, s.fields.dtype),
                                      order, symmetric)
        return (j, limits) if check else j

    how = ("sum", "max") if check else "sum"
    # remat: reverse mode recomputes each chunk instead of storing every chunk's per-point values, so a gradient's
    # memory stays flat in the grid and its time falls (51 200 k in 4 chunks, gradient of J: tilted cone SSCT
    # 6.6 → 3.6 ms, non-adiabatic 23.7 → 6.9; Haldane 300² 46 → 21 and 75 → 27; the cone's exact J at 8 fields,
    # 12 800 k in 5 chunks, 129 → 27) — keeping a lattice model's shift phases where its tables are built inside the
    # points (field derivatives): recomputed, XLA fuses their sine and cosine into every point's cotangent of the
    # hoppings (Haldane 60² in 9 chunks, gradient of the exact σ_xy at a field: SSCT 33.4 → 27.8 ms, non-adiabatic
    # 75.1 → 63.6 ms with them kept; on J, before its tables moved out of the points, 495 → 169 ms)
    if s.textured:  # per-point tangents would repeat a texture's x-only work (cos G·x) at every k: the textured
        # cone's non-adiabatic gradient 1.35× slower. Rematerialise the per-k work in reverse mode instead: residuals
        # of the eigen-solves and k-derivatives are cheaper to recompute than to store (non-adiabatic 9× → 6×), all
        # but the non-adiabatic closed form's d-slopes where they are the same at every k
        return grid_reduce(jax.checkpoint(lambda k: per_k((model, s), k), policy=save_shared_slopes), grid, how, chunk,
                           mesh, remat=True)
    # uniform systems: each k accumulates its own parameter cotangents, summed over the grid once per parameter
    return grid_reduce_params(per_k, (model, s), grid, how, chunk, mesh,
                              remat=jax.checkpoint_policies.save_only_these_names(PHASES))


#: Shifted points per chunk of a two-band model with ``relaxation="exact"`` (closed-form, fused energies).
TWO_BAND_SHIFTED = 2**19
#: The same for a two-band lattice model, whose shifted d-vectors are a GEMM output written to memory.
LATTICE_SHIFTED = 2**17
#: The same for a two-band continuum model's field-dressed bands (``theory="nonadiabatic"``).
DRESSED_SHIFTED = 2**18


def _default_chunk(model, s: _Setup) -> int:
    """k-points per chunk: ``default_chunk``'s; with ``relaxation="exact"`` each k carries B·N shifted
    points, and a chunk holds ``default_chunk``'s worth of shifted 𝓗 (n > 2, materialised for eigh) or
    ``TWO_BAND_SHIFTED`` two-band SSCT energies (closed form, fused), ``DRESSED_SHIFTED`` two-band non-adiabatic
    dressed bands, ``LATTICE_SHIFTED`` for a two-band lattice model, either theory
    (``_relaxation._shifted_lattice_d``). Measured (compiled, alternating calls): tilted cone, 12 800 k, SSCT J at
    8 fields (2026-12-03) 21.5 ms at the earlier 97 k-points per chunk (16 384 shifted points), 13.0 at 2048 and
    4096, 23.7 at 16 384; since the energies fuse with their Fermi sums (``band_energies``) 7.7 ms at 3120 (this
    rule), 9.6 / 7.9 / 7.5 / 7.0 ms at 800 / 1600 / 6400 / 12 800. Non-adiabatic (2026-12-06; 2¹⁴ shifted points
    before, the budget of an n = 2 eigh) at 2¹⁴ / 2¹⁶ / 2¹⁷ / 2¹⁸ / 2¹⁹ shifted points: J at 8 fields 20.3 / 13.4 /
    13.2 / 12.8 / 13.4 ms, σ at a field 5.8 / 4.2 / 4.2 / 3.9 / 13.0, χ at a field 13.0 / 11.7 / 11.0 / 10.6 /
    20.6 (its forward-mode tangents no longer fit the cache at 2¹⁹). Haldane, 120² grid, J at 8 fields: 42 ms at
    3120 k-points per chunk, 31–33 at 512–780 (this rule), 36 at 390. All with the 21-node finite-field rule (B·N =
    168 at 8 fields); the 16 nodes since 2026-12-07 take the same budgets (4096 / 2048 / 1024 k-points per chunk at 8
    fields), not re-tuned."""
    n = model.n_bands
    if s.relaxation != "exact":
        return default_chunk(n)
    shifted = s.fields.shape[0] * len(rule(s.nodes)[0])
    budget = default_chunk(n)
    if n == 2 and is_lattice(model):
        budget = LATTICE_SHIFTED
    elif n == 2 and s.theory.name == "ssct":
        budget = TWO_BAND_SHIFTED
    elif n == 2 and s.theory.name == "nonadiabatic":
        budget = DRESSED_SHIFTED
    return max(16, min(default_chunk(n), budget // shifted))


_current_jit = eqx.filter_jit(_total)


@eqx.filter_jit
def _derivative_jit(model, grid, s: _Setup, order: int, chunk_size, mesh, check: bool, asked=None):
    """∂ⁿJ/∂Eⁿ at ``s.fields`` (B, d, …, d) and, with ``check``, the validity maxima there ({} without)."""
    out = _total(model, grid, s, chunk_size, mesh, check, asked, order)
    return out if check else (out, {})


def _checked(model, grid, s: _Setup, check: bool) -> bool:
    """Whether this call checks the validity limits: asked for, and not under a JAX transformation."""
    return bool(check) and _checks.is_concrete(model, grid, s)


def _warn(limits: dict, name: str) -> None:
    """Warn where ``limits`` exceed the theory's validity; limits an outer jit or vmap still traces (a model whose
    𝓗 closes over a traced value, which ``_checked`` cannot see) cannot be read and are skipped."""
    if _checks.is_concrete(limits):
        warn_limits({key: float(v) for key, v in limits.items()}, name)


def current(model: Model, field, mu, tau, grid, *, kT=0.0, x=None, theory: Union[str, AbstractTheory] = "ssct",
            bands=None, relaxation: Union[str, Exact] = "first_order", phase_space_density: bool = False,
            chunk_size: Optional[int] = None, check: bool = True, mesh=None) -> jax.Array:
    """Semiclassical current density J(x) in e/(fs·Å^{d−1}) (electrons carry −e; e = 1).

    Args:
        model: a ``Model`` (any dimension).
        field: electric field E (..., d) in V/Å.
        mu: chemical potential(s) in eV; tau: relaxation time(s) in fs; kT: temperature(s) in
            eV. ``field[..., :]``, ``mu``, ``tau`` and ``kT`` broadcast to one batch shape.
        grid: a k-grid (``kgrid.brillouin_zone`` for lattice models, ``kgrid.disk`` for
            continuum ones — use ``scale=Δ/v`` and ``breaks=[k_F]``).

    Everything after ``grid`` is keyword-only (the same in ``conductivity`` and ``hall_vs_field``).
        x: one position (d,) in Å (default 0) at which J(x) of a textured model is evaluated.
        theory: a theory object — ``SSCT()`` (Eqs. 43, 46–47: every band on its own),
            ``NonAbelian(bands)`` (Eqs. 52–53: a fully occupied degenerate manifold),
            ``NonAdiabatic(bands)`` (Eqs. 54–63: hybridised bands of the manifold, all orders in
            E) or a user subclass of ``AbstractTheory`` — or the alias ``"ssct"``,
            ``"nonabelian"``, ``"nonadiabatic"``.
        bands: with an alias string, the active manifold (an index or a contiguous sequence);
            ``None`` = all bands. J = J_theory(manifold) + the SSCT currents of the bands outside
            it. No effect for ``"ssct"``; a theory object carries its own bands.
        relaxation: ``"first_order"`` (default, Eqs. 46c/57: first order in τ) or ``"exact"``
            (Chambers' steady state f = ∫(ds/τ)e^{−s/τ} f⁰(ε(k + eEs/ħ)), all orders in τ and
            E; SSCT with a texture: along the backward characteristics of Eq. 43 (an RK4 solve
            per k, band and field; ``Exact(characteristic_step=...)`` sets its step); non-adiabatic:
            over the field-dressed bands 𝓔_i(k; E), uniform systems only; see ``docs/transport_orders.md``).
            Past eEτ|v|/kT ≈ 1 its accuracy rests on the grid resolving the Fermi surface at every
            shifted point k + eEτu/ħ (u ≲ 20), not only at μ: refine it (a disk's angular points) until
            the result stops moving (a tilted cone at eEτ|v|/kT ≈ 10: J 1e-5 and ∂²J/∂E² 14 % off on
            a 200×64 disk, 2e-7 and 2e-4 on 800×256).
        phase_space_density: weight states by the phase-space density D = 1 + Σ_α Ω^{k_α x_α}
            + … (Xiao–Shi–Niu; exact Liouville measure for SSCT, first order for the
            non-adiabatic manifold). Default False: Eqs. 47 and 60 as published. D = 1 without
            a texture, so it only matters for textured models.
        chunk_size: k-points per chunk (bounded memory); default 2²⁰/n² for n bands (256 to 16384),
            divided by the B·N shifted points per k (fields × nodes) with ``relaxation="exact"``.
        mesh: devices the k-points are split over (a ``jax.sharding.Mesh`` with one axis "k"
            or a sequence of devices); default ``js.set_devices``'s, else all devices.
        check: test the validity limits on the grid and warn (``ValidityWarning``), in the same
            pass over the grid as the current; skipped automatically under JAX transformations.

    Returns J with shape batch + (d,). Differentiable in the model parameters, field, μ, τ and
    kT; new values of any of them reuse the compiled program. The Fermi-surface terms need
    kT > 0 whenever τ ≠ 0. Bad values (NaN/inf, τ < 0, kT < 0, kT = 0 with τ ≠ 0) raise a
    ``ValueError`` at once, or under jit/vmap/grad an error naming the input when the
    compiled program runs (``eqx.error_if``). J(E = 0) is not subtracted (see the
    module notes on continuum grids). With a texture at E = 0, ``"nonadiabatic"`` gives J = 0
    (Sec. III C 3), while ``"ssct"`` gives the equilibrium current −e Σ∫f⁰ẋ of Eq. 43, first
    order in the texture gradient and independent of τ (δf ≡ 0 there, docs/conventions.md §14).
    """
    s = _setup(model, field, mu, tau, grid, kT, x, theory, bands, relaxation, phase_space_density)
    check = _checked(model, grid, s, check)
    out = _current_jit(model, grid, s, chunk_size, _sharding.get_mesh(mesh), check)
    if check:
        out, limits = out
        _warn(limits, s.theory.name)
    return out.reshape(s.batch + (model.dim,))


def conductivity(model: Model, field, mu, tau, grid, *, order: int = 1, kT=0.0, x=None,
                 theory: Union[str, AbstractTheory] = "ssct", bands=None, relaxation: Union[str, Exact] = "first_order", phase_space_density: bool = False,
                 chunk_size: Optional[int] = None, check: bool = True, mesh=None) -> jax.Array:
    """Response tensor ∂ⁿJ_a/∂E_b…∂E_c at ``field`` by forward-mode autodiff of ``current``.

    Exactly the n-th derivative — no 1/n!: J = J(0) + σ·E + ½ χ:EE + …, so the second-order
    tensor ``order=2`` is χ_abc = ∂²J_a/∂E_b∂E_c. For a Berry-curvature dipole
    D_b = Σ_n ∫dk f⁰_n ∂Ω_n/∂k_b (2D, SSCT), χ_abc = (e³τ/ħ²)(ε_ac D_b + ε_ab D_c), which is
    2(χ^SF_abc + χ^SF_acb) with Sodemann–Fu's χ^SF_abc = −ε_adc e³τ D_bd/(2ħ²) at ω → 0 (their
    static response j = χ^SF(E E* + E E)).

    What each option contains (uniform system; details in ``docs/transport_orders.md``):

    ==========================  =========  =====  ===  ===============  ===============
    theory, relaxation          intrinsic  Drude  BCD  nonlinear Drude  hybridisation
    ==========================  =========  =====  ===  ===============  ===============
    ssct, "first_order"         E¹         E¹τ    E²τ  —                —
    ssct, "exact"               E¹         E¹τ    E²τ  E²τ², all Eⁿτⁿ   —
    nonabelian (full manifold)  E¹         —      —    —                —
    nonadiabatic, first_order   E¹         E¹τ    E²τ  —                all orders in E
    nonadiabatic, "exact"       E¹         E¹τ    E²τ  E²τ², all Eⁿτⁿ   all orders in E
    ==========================  =========  =====  ===  ===============  ===============

    (``"exact"`` on a non-Abelian manifold changes only the SSCT bands outside it: a filled
    manifold keeps f = 1. Non-adiabatic ``"exact"``: uniform systems only; SSCT ``"exact"`` with a
    texture adds, at E = 0, nothing to the equilibrium current — f = f⁰ there.)

    So with the default ``relaxation="first_order"`` χ = ∂²J/∂E² has no τ² term (χ_xxx = 0 for a
    cone tilted along x); ``relaxation="exact"`` adds χ^ND_abc = −2(e³τ²/ħ³)∫f⁰∂³ε/∂k_a∂k_b∂k_c
    and is exact for every order n < 62 at E = 0 (where it costs about as much as first order:
    an (n//2 + 1)-node rule in s gives the same derivatives as the 21-node rule a finite field
    needs). No option contains the field-induced (Berry-connection polarisability) E²τ⁰ term or
    any frequency dependence.
    ``phase_space_density`` changes only textured results. The linear response at E = 0 of a
    uniform system is the same tensor in SSCT and the non-adiabatic theory (Sec. III C 3), so
    ``order=1`` there evaluates ``theory.linear_response()`` — SSCT's (~2× cheaper, its gradient ~5×). Both E = 0
    shortcuts need a concrete zero ``field`` (a list or NumPy array; inside jit ``jnp.zeros`` is
    traced and the general path gives the same numbers, slower).

    Arguments as in ``current`` (keyword-only after ``grid``); ``field`` (..., d) is the point of
    expansion (0 for linear response); ``order`` (int ≥ 1) the derivative order n. Returns batch + (d,) + (d,)·order, in e²/h·(Å/V)^{order−1} (2D) or
    (e²/h)/Å·(Å/V)^{order−1} (3D) — ``units.to_e2_over_h`` of ∂ⁿJ/∂Eⁿ. σ_xy = ``[..., 0, 1]``.
    """
    if not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"order must be a positive int, got {order!r}")
    # at E = 0 an (order//2 + 1)-node rule gives the same derivatives as the finite-field rule (``_relaxation``)
    at_zero = _checks.is_concrete(field) and not np.any(np.asarray(field))
    s = _setup(model, field, mu, tau, grid, kT, x, theory, bands, relaxation, phase_space_density,
               nodes_for(order) if at_zero else LAGUERRE_NODES)
    mesh = _sharding.get_mesh(mesh)
    check = _checked(model, grid, s, check)
    asked = None
    if at_zero and order == 1 and not s.textured:  # the same tensor from a cheaper theory (non-adiabatic: SSCT)
        asked = s.theory  # whose validity numbers apply
        s = eqx.tree_at(lambda t: t.theory, s, s.theory.linear_response())
    out, limits = _derivative_jit(model, grid, s, int(order), chunk_size, mesh, check, asked)
    if check:
        _warn(limits, (s.theory if asked is None else asked).name)
    return units.to_e2_over_h(out.reshape(s.batch + out.shape[1:]))


def hall_vs_field(model: Model, strength, mu, tau, grid, *, kT=0.0, x=None,
                  theory: Union[str, AbstractTheory] = "nonadiabatic", bands=None, relaxation: Union[str, Exact] = "first_order", phase_space_density: bool = False,
                  chunk_size: Optional[int] = None, check: bool = True, mesh=None) -> jax.Array:
    """Hall conductivity at finite field, σ_xy(E) = [J_x(E ŷ) − J_x(0)] / E, in e²/h (2D).

    ``strength`` (...) is E in V/Å (non-zero); it broadcasts with ``mu``, ``tau`` and ``kT``.
    The secant σ_xy(E) → ``conductivity(...)[..., 0, 1]`` as E → 0 and shows how the
    non-adiabatic Hall response departs from linear response once eE·v/Δ² is not small.
    """
    if model.dim != 2:
        raise ValueError(f"hall_vs_field needs a 2D model, got dim = {model.dim}")
    strength = jnp.asarray(strength, dtype=float)
    if _checks.is_concrete(strength) and np.any(np.asarray(strength) == 0):
        raise ValueError("field strengths must be non-zero (σ_xy(E) = ΔJ_x/E)")
    if not _checks.is_concrete(strength):
        strength = _checks.traced_error_if(strength, [(jnp.any(strength == 0), "field strengths must be non-zero "
                                                       "(σ_xy(E) = ΔJ_x/E)")])
    fields = jnp.stack([jnp.zeros_like(strength), strength], -1)
    both = jnp.stack([fields, jnp.zeros_like(fields)])  # J(E ŷ) and J(0) in one batch
    j = current(model, both, mu, tau, grid, kT=kT, x=x, theory=theory, bands=bands, relaxation=relaxation,
                phase_space_density=phase_space_density, chunk_size=chunk_size, check=check, mesh=mesh)
    return units.to_e2_over_h((j[0, ..., 0] - j[1, ..., 0]) / strength)
