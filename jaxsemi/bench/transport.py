"""Transport cost: σ_xy and its gradient (ratio), and non-adiabatic vs SSCT on the same grid.

Model: one tilted massive Dirac valley (v = 1 eV·Å, Δ = 0.1 eV, tilt 0.3 eV·Å), μ = 0.2 eV in
the band, kT = 0.01 eV, τ = 10 fs, on a k-disk (``n_r`` × ``n_theta`` points).

* ``sigma_xy``: σ_xy = ∂J_x/∂E_y at E = 0 (forward-mode autodiff of the current) and the
  gradient of σ_xy with respect to all parameters (v, Δ, tilt, μ, τ, kT; reverse mode over the
  forward-mode derivative), for ``ssct`` and ``nonadiabatic`` (at E = 0 evaluated through SSCT,
  ``NonAdiabatic.linear_response``); ``grad_ratio`` = t_grad / t_forward (project target ≤ 3), the ratio of
  the medians over calls alternating between the two (``grad_ratio_of_minima``: of the best times).
* ``current``: J at a finite field (eEv/Δ² = 0.5) for both theories, and the gradient of J_x with
  respect to all parameters (``grad_current_ratio``); ``nonadiabatic_over_ssct``. ``*_8_mu``: the same
  at 8 chemical potentials (0.15–0.3 eV) and that one field, as a fit against μ calls it, the gradient of
  Σ J_x (``grad_current_8_mu_ratio``).
* ``textured``: J at that field with a mass texture Δ(x) = Δ cos(G·x) at one x, SSCT and non-adiabatic, and the
  gradient of J_x in all parameters (``grad_current_ratio``; the texture's G among them); ``*_matrix``: the same
  cone written as a user writes a two-band model, a 2×2 matrix function (its d-vector then comes from 𝓗).
* ``chunked``: the gradient of J_x at that field over its forward where the k-sum runs in chunks, as every grid
  beyond one chunk (2¹⁴ k for a two-band first-order current) does: the cone on 4× the grid in 4 chunks (SSCT,
  non-adiabatic, and with the texture), the Haldane model's (``current_8_fields_haldane``'s parameters) at one
  field on the ``hall`` grid (6 chunks at 300²), and the exact J at the 8 fields of ``relaxation``, of the cone
  (chunks of 2¹⁹ shifted points: 5 at 12 800 k) and of the Haldane model on 120² (2¹⁷: 19 chunks) — reverse mode
  recomputes each chunk (``kspace.reduce_blocks(remat=...)``).
* ``hall``: ``js.hall_conductivity`` of the Haldane model (N×N Brillouin-zone grid, kT = 0.02 eV)
  and its gradient with respect to t₁, t₂, φ, M, μ and kT (``grad_ratio``); ``hall_600`` the same on 600²,
  where the values its gradient keeps for reverse mode (~84 B per point, ~30 MB) no longer fit the cache.
* ``relaxation``: SSCT with ``relaxation="exact"`` over ``"first_order"`` (project goal ≤ 5×; compiled,
  and ``called_*`` as a user calls them, Python-side checks included) for J
  at a batch of 8 fields and at one field, σ = ``conductivity(order=1)`` and χ =
  ``conductivity(order=2)`` at E = 0 (the exact (n//2 + 1)-node rule) and χ at a finite field (the
  16 heaviest nodes of the 32-point rule, moments to the 4th exact), SSCT and non-adiabatic, and the non-adiabatic σ at
  that field (``sigma_order1_at_field_nonadiabatic``: its field-dressed bands); and SSCT J at one field
  with a mass texture Δ(x) = Δ cos(G·x) (``current_1_field_textured``: an RK4 backward
  characteristic per k, band and field); J at the 8 fields in the Haldane model (t₁ = 1, t₂ = 0.15 eV,
  φ = π/2, M = 0.2 eV, μ = −0.3 eV) on a 120² Brillouin-zone grid, SSCT and non-adiabatic
  (``current_8_fields_haldane*``: a lattice model, whose shifted 𝓗 comes from a table of e^{is·ρ}).
* ``validity_check``: calls as a user makes them, with the default ``check=True`` (the grid maxima of
  the validity numbers, computed in the current's own pass) over ``check=False``
  (``checked_over_unchecked``): J at the 8 fields (cone and Haldane 120²), σ at E = 0 (non-adiabatic:
  its numbers beside SSCT's σ), χ at a finite field and the textured cone's exact J at one field (its
  characteristics' error estimate, ``"characteristic"``).

Everything is compiled first; times ``t_*`` are the best of the timed calls (``block_until_ready``); each
ratio compares calls made in turn (``compare_times``, up to 40 rounds, ~1 s of calls; ms-scale calls
move up to 2× with the machine's load, so best times taken one after the other gave ratios that moved as
much) by their medians, and also by their minima (``*_of_minima``). ``--quick`` uses a coarse grid (< 30 s).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

import jaxsemi as js

from ._common import compare_times

V, DELTA, TILT, MU, KT, TAU = 1.0, 0.1, 0.3, 0.2, 0.01, 10.0
TEXTURE_G, TEXTURE_X = (0.02, 0.01), (10.0, 5.0)  # 1/Å, Å: Δ(x) = Δ cos(G·x), G·x = 0.25
HALDANE_SHIFT = -0.5  # eV: μ = −0.3 eV, in the Haldane model's lower band


def run(quick: bool = False) -> dict:
    n_r, n_theta, rounds = (48, 16, 3) if quick else (200, 64, 40)
    model = js.models.massive_dirac(V, DELTA, tilt=TILT)
    k_f = (MU**2 - DELTA**2) ** 0.5 / V
    grid = js.kgrid.disk(2.0, n_r, n_theta, scale=DELTA / V, breaks=[0.8 * k_f, 1.3 * k_f])
    args = (dict(model.params), jnp.asarray(MU), jnp.asarray(TAU), jnp.asarray(KT))
    field = jnp.array([0.0, 0.5 * DELTA**2 / V])
    out = {"grid_points": len(grid), "n_r": n_r, "n_theta": n_theta}
    currents = {}
    for theory in ("ssct", "nonadiabatic"):
        def sigma_xy(p, mu, tau, kT, theory=theory):
            # a NumPy zero field stays concrete under jit: ``conductivity`` then takes its E = 0 shortcuts
            return js.transport.conductivity(model.with_params(p), np.zeros(2), mu, tau, grid, kT=kT,
                                             theory=theory)[0, 1]

        def current(p, mu, tau, kT, theory=theory):
            return js.transport.current(model.with_params(p), field, mu, tau, grid, kT=kT, theory=theory)

        sigma, value = _with_gradient(sigma_xy, args, rounds)
        cur, _ = _with_gradient(lambda *a: current(*a)[0], args, rounds)
        mus = jnp.linspace(0.15, 0.3, 8)
        cur_mu, _ = _with_gradient(lambda p, mu, tau, kT: jnp.sum(current(p, mu + mus - MU, tau, kT)[:, 0]), args, rounds)
        currents[theory] = cur["t_s"]
        out[theory] = {"sigma_xy_e2h": float(value), "t_sigma_s": sigma["t_s"], "t_grad_s": sigma["t_grad_s"],
                       "grad_ratio": sigma["ratio"], "grad_ratio_of_minima": sigma["ratio_of_minima"],
                       "t_current_s": cur["t_s"], "t_grad_current_s": cur["t_grad_s"],
                       "grad_current_ratio": cur["ratio"], "grad_current_ratio_of_minima": cur["ratio_of_minima"],
                       "t_current_8_mu_s": cur_mu["t_s"], "t_grad_current_8_mu_s": cur_mu["t_grad_s"],
                       "grad_current_8_mu_ratio": cur_mu["ratio"],
                       "grad_current_8_mu_ratio_of_minima": cur_mu["ratio_of_minima"]}
    out["textured"] = _textured_cost(grid, field, rounds)
    out["chunked"] = _chunked_cost(n_r, n_theta, field, 100 if quick else 300, rounds)
    out["hall"] = _hall_cost(100 if quick else 300, rounds)
    out["hall_600"] = _hall_cost(200 if quick else 600, min(rounds, 15))  # stored values past the last-level cache
    out["relaxation"] = _relaxation_cost(model, grid, rounds)
    out["validity_check"] = _check_cost(model, grid, rounds)
    out["nonadiabatic_over_ssct"] = currents["nonadiabatic"] / currents["ssct"]
    out["nonadiabatic_over_ssct_sigma"] = out["nonadiabatic"]["t_sigma_s"] / out["ssct"]["t_sigma_s"]
    return out


def _with_gradient(fn, args, rounds):
    """Times of jitted ``fn(*args)`` and of its gradient in all args (``compare_times``), and the value."""
    fwd, grad = jax.jit(fn), jax.jit(jax.grad(fn, argnums=tuple(range(len(args)))))
    value = jax.block_until_ready(fwd(*args))
    jax.block_until_ready(grad(*args))
    best, ratio, ratio_min = compare_times([lambda f=f: jax.block_until_ready(f(*args)) for f in (fwd, grad)], rounds)
    return {"t_s": best[0], "t_grad_s": best[1], "ratio": ratio[1], "ratio_of_minima": ratio_min[1]}, value


def _cone_matrix(k, x, p):
    """The textured tilted cone as a user writes a two-band model: a 2×2 matrix (no registered d-vector)."""
    mass = p["delta"] * jnp.cos(p["G"] @ x)
    off = p["v"] * (k[0] + 1j * k[1])
    return jnp.array([[p["tilt"] * k[0] + mass, jnp.conj(off)], [off, p["tilt"] * k[0] - mass]])


def _textured_cost(grid, field, rounds) -> dict:
    """J_x at ``field`` and x = TEXTURE_X of the cone with Δ(x) = Δ cos(G·x), and its gradient in all parameters:
    ``js.models.massive_dirac`` (its d-vector registered) and, ``*_matrix``, the same cone as a user's 2×2 matrix."""
    model = js.models.massive_dirac(V, DELTA, tilt=TILT, texture_G=TEXTURE_G)
    matrix = js.Model(_cone_matrix, dict(model.params), 2, name="textured cone as a 2×2 matrix")
    out = {}
    for suffix, m in (("", model), ("_matrix", matrix)):
        args = (dict(m.params), jnp.asarray(MU), jnp.asarray(TAU), jnp.asarray(KT))
        for theory in ("ssct", "nonadiabatic"):
            def current(p, mu, tau, kT, theory=theory, m=m):
                return js.transport.current(m.with_params(p), field, mu, tau, grid, kT=kT, x=TEXTURE_X,
                                            theory=theory)[0]

            t, _ = _with_gradient(current, args, rounds)
            out[theory + suffix] = {"t_current_s": t["t_s"], "t_grad_current_s": t["t_grad_s"],
                                    "grad_current_ratio": t["ratio"],
                                    "grad_current_ratio_of_minima": t["ratio_of_minima"]}
    return out


def _chunked_cost(n_r, n_theta, field, n_haldane, rounds) -> dict:
    """Gradient of J_x in all parameters over its forward where the k-sum runs in several chunks (module doc)."""
    k_f = (MU**2 - DELTA**2) ** 0.5 / V
    big = js.kgrid.disk(2.0, 4 * n_r, n_theta, scale=DELTA / V, breaks=[0.8 * k_f, 1.3 * k_f])
    fields = jnp.stack([jnp.linspace(0.01, 0.1, 8), jnp.zeros(8)], -1) * DELTA**2 / V
    haldane = js.models.haldane(1.0, 0.15, np.pi / 2, 0.2)
    cases = {"ssct": (js.models.massive_dirac(V, DELTA, tilt=TILT), big, field, {}),
             "nonadiabatic": (js.models.massive_dirac(V, DELTA, tilt=TILT), big, field, {}),
             "textured_nonadiabatic": (js.models.massive_dirac(V, DELTA, tilt=TILT, texture_G=TEXTURE_G), big, field,
                                       dict(x=TEXTURE_X)),
             "haldane_ssct": (haldane, js.kgrid.brillouin_zone(haldane.lattice, n_haldane), field, {}),
             "haldane_nonadiabatic": (haldane, js.kgrid.brillouin_zone(haldane.lattice, n_haldane), field, {}),
             "exact_8_fields": (js.models.massive_dirac(V, DELTA, tilt=TILT),
                                js.kgrid.disk(2.0, n_r, n_theta, scale=DELTA / V, breaks=[0.8 * k_f, 1.3 * k_f]),
                                fields, dict(relaxation="exact")),
             "exact_8_fields_haldane": (haldane, js.kgrid.brillouin_zone(haldane.lattice,
                                                                          120 if n_r * n_theta > 5000 else 32),
                                        fields, dict(relaxation="exact"))}
    out = {}
    for name, (m, g, e, kw) in cases.items():
        shift = HALDANE_SHIFT if m is haldane else 0.0
        theory = "nonadiabatic" if "nonadiabatic" in name else "ssct"
        chunk = -(-len(g) // 4) if g is big else None  # the default's split of 51 200 k, also on --quick's grid

        def current(p, mu, tau, kT, m=m, g=g, e=e, kw=kw, theory=theory, chunk=chunk, shift=shift):
            return jnp.sum(js.transport.current(m.with_params(p), e, mu + shift, tau, g, kT=kT, theory=theory,
                                                chunk_size=chunk, **kw)[..., 0])

        t, _ = _with_gradient(current, (dict(m.params), jnp.asarray(MU), jnp.asarray(TAU), jnp.asarray(KT)), rounds)
        out[name] = {"grid_points": len(g), "t_current_s": t["t_s"], "t_grad_current_s": t["t_grad_s"],
                     "grad_current_ratio": t["ratio"], "grad_current_ratio_of_minima": t["ratio_of_minima"]}
    return out


def _hall_cost(n, rounds) -> dict:
    """σ_xy of the Haldane model on an n×n grid and its gradient in (t₁, t₂, φ, M), μ and kT."""
    model = js.models.haldane(1.0, 0.1, 1.2, 0.2)
    grid = js.kgrid.brillouin_zone(model.lattice, n)

    def sigma(p, mu, kT):
        return js.hall_conductivity(model.with_params(p), mu, grid, kT=kT)

    t, value = _with_gradient(sigma, (dict(model.params), jnp.asarray(0.1), jnp.asarray(0.02)), rounds)
    return {"grid_points": n * n, "sigma_xy_e2h": float(value), "t_sigma_s": t["t_s"], "t_grad_s": t["t_grad_s"],
            "grad_ratio": t["ratio"], "grad_ratio_of_minima": t["ratio_of_minima"]}


def _check_cost(model, grid, rounds) -> dict:
    """Called times with ``check=True`` (default) and ``check=False``, and their ratio (``compare_times``)."""
    fields = jnp.stack([jnp.linspace(0.01, 0.1, 8), jnp.zeros(8)], -1) * DELTA**2 / V
    haldane = js.models.haldane(1.0, 0.15, np.pi / 2, 0.2)
    haldane_grid = js.kgrid.brillouin_zone(haldane.lattice, 120 if len(grid) > 5000 else 32)
    textured = js.models.massive_dirac(V, DELTA, tilt=TILT, texture_G=TEXTURE_G)
    tr = js.transport
    jobs = {"current_8_fields": lambda c: tr.current(model, fields, MU, TAU, grid, kT=KT, check=c),
            "current_8_fields_haldane": lambda c: tr.current(haldane, fields, MU + HALDANE_SHIFT, TAU, haldane_grid,
                                                             kT=KT, check=c),
            "sigma_order1_nonadiabatic": lambda c: tr.conductivity(model, np.zeros(2), MU, TAU, grid, kT=KT,
                                                                   theory="nonadiabatic", check=c),
            "chi_order2_at_field": lambda c: tr.conductivity(model, fields[-1], MU, TAU, grid, order=2, kT=KT,
                                                             check=c),
            "current_1_field_textured_exact": lambda c: tr.current(textured, fields[-1], MU, TAU, grid, kT=KT,
                                                                   x=TEXTURE_X, relaxation="exact", check=c)}
    out = {}
    for name, job in jobs.items():
        fns = [lambda c=c: jax.block_until_ready(job(c)) for c in (False, True)]
        for fn in fns:
            fn()  # compile
        best, ratio, ratio_min = compare_times(fns, rounds)
        out[name] = {"t_unchecked_s": best[0], "t_checked_s": best[1], "checked_over_unchecked": ratio[1],
                     "checked_over_unchecked_of_minima": ratio_min[1]}
    return out


def _relaxation_cost(model, grid, rounds) -> dict:
    """Times of the exact (Chambers) steady state over Eq. 46c's first order, SSCT, same grid: compiled
    (``jax.jit`` over μ; the cost of the computation, ``exact_over_first_order``) and called as a user
    calls them (``called_*``: plus the Python-side checks and dispatch of each call, both options — 2–6 ms before
    ``depends_on_x`` was cached, ~2 ms less since)."""
    fields = jnp.stack([jnp.linspace(0.01, 0.1, 8), jnp.zeros(8)], -1) * DELTA**2 / V
    textured = js.models.massive_dirac(V, DELTA, tilt=TILT, texture_G=TEXTURE_G)
    haldane = js.models.haldane(1.0, 0.15, np.pi / 2, 0.2)  # a lattice model: shifted energies by a phase table
    haldane_grid = js.kgrid.brillouin_zone(haldane.lattice, 120 if len(grid) > 5000 else 32)
    kw = dict(kT=KT, check=False)

    def response(order, field, theory="ssct"):
        return lambda r, mu: js.transport.conductivity(model, field, mu, TAU, grid, order=order, relaxation=r,
                                                       theory=theory, **kw)

    jobs = {"current_8_fields": lambda r, mu: js.transport.current(model, fields, mu, TAU, grid, relaxation=r, **kw),
            "current_1_field": lambda r, mu: js.transport.current(model, fields[-1], mu, TAU, grid, relaxation=r,
                                                                  **kw),
            "sigma_order1": response(1, np.zeros(2)), "chi_order2": response(2, np.zeros(2)),
            "chi_order2_at_field": response(2, fields[-1]),
            "chi_order2_at_field_nonadiabatic": response(2, fields[-1], "nonadiabatic"),
            "sigma_order1_at_field_nonadiabatic": response(1, fields[-1], "nonadiabatic"),
            "current_1_field_textured": lambda r, mu: js.transport.current(textured, fields[-1], mu, TAU, grid,
                                                                           x=TEXTURE_X, relaxation=r, **kw),
            "current_8_fields_haldane": lambda r, mu: js.transport.current(haldane, fields, mu + HALDANE_SHIFT,
                                                                           TAU, haldane_grid, relaxation=r, **kw),
            "current_8_fields_haldane_nonadiabatic": lambda r, mu: js.transport.current(
                haldane, fields, mu + HALDANE_SHIFT, TAU, haldane_grid, relaxation=r, theory="nonadiabatic", **kw)}
    mu = jnp.asarray(MU)
    out = {}
    for name, job in jobs.items():
        out[name] = {}
        for how, wrap in (("", jax.jit), ("called_", lambda f: f)):
            fns = [wrap(functools.partial(job, r)) for r in ("first_order", "exact")]
            for fn in fns:
                jax.block_until_ready(fn(mu))  # compile
            best, ratio, ratio_min = compare_times([lambda fn=fn: jax.block_until_ready(fn(mu)) for fn in fns], rounds)
            out[name].update({f"{how}t_first_order_s": best[0], f"{how}t_exact_s": best[1],
                              f"{how}exact_over_first_order": ratio[1],
                              f"{how}exact_over_first_order_of_minima": ratio_min[1]})
    return out
