"""Landau–Zener sweep (``jaxsemi.bench._lz``): steps and speed of the full-band solver
``js.wavepacket.Magnus4`` (the two-band default) against the lab-frame ``diffrax.Tsit5`` in one run, for K = 5, 20,
80, 320 1/Å, and the cost and accuracy of its gradients.

Per K: trajectories/s (vmap; "shared" and Tsit5 for K ≤ 20), mean/max steps, the max error of
the upper-band population vs the LZ formula and the max |⟨χ|χ⟩ − 1|; the same for
``Magnus4(phase="adiabatic")`` (vmap and shared), ``adiabatic_over_frozen`` its trajectories/s over
the default's (vmap; the step counts beside it), and ``difference_to_frozen`` the largest population
difference between the two. Gradients (one trajectory,
K = 5, Magnus4, default adjoint and tolerances, ``jax.grad`` as a user writes it: one or two input scalars,
which the default adjoint takes in forward mode): ∂P/∂Δ and ∂x(t1)/∂k0 vs central differences
of tight (rtol 1e-11) solves, and each one's gradient/forward time (``dP_dDelta``, ``dx_dk0``: the ratio of
medians over alternating calls, and of the best times: ``_of_minima``), beside the default adjoint's reverse
mode (its ``StoredStepsAdjoint`` passed as ``adjoint=``, ``reverse_mode_*``); ``batch``: the same for ∂(Σ P)/∂Δ
of 50 trajectories; ``long_sweep``: ∂P/∂Δ of one K = 20 trajectory (~450 steps) with the default adjoint,
its reverse mode (every step stored) and diffrax's ``RecursiveCheckpointAdjoint()`` (180 checkpoints:
recomputed steps) against the formula, and their costs.

``moderate``: where the default stays Tsit5 — 50 two-band trajectories (k_y spread over 0.2 1/Å) in
runs of 100–1300 Tsit5 steps, with a mass texture, an E(x, t) pulse, or neither: time, first call
(compile + run) and mean steps of the solvers, ``magnus4_over_tsit5`` and ``adiabatic_over_frozen``
(time ratios; not with ``--quick``).

    python -m jaxsemi.bench --only wavepacket_steps [--quick]
"""

from __future__ import annotations

import time

import numpy as np

from . import _lz
from ._common import best_time, compare_times

KS = (5.0, 20.0, 80.0, 320.0)


def _sweep(K, n, ensemble, repeats, **kwargs):
    t = time.perf_counter()
    _lz.run_jaxsemi(K, n, ensemble, **kwargs)
    compile_s = time.perf_counter() - t
    best, (p, steps, norm) = best_time(lambda: _lz.run_jaxsemi(K, n, ensemble, **kwargs), repeats)
    err = np.abs(p - _lz.formula(_lz.sweep(K, n)["ky"]))
    return {"trajectories_per_s": n / best, "seconds": best, "compile_seconds": compile_s,
            "mean_steps": float(np.mean(steps)), "max_steps": int(np.max(steps)),
            "max_error_vs_lz_formula": float(np.max(err)), "max_norm_deviation": norm}


def _gradients():
    import functools

    import diffrax
    import jax
    import jax.numpy as jnp

    import jaxsemi as js

    s = _lz.sweep(5.0, 1)
    model = js.models.massive_dirac(_lz.V, _lz.DELTA)

    def solve(delta, k0, **options):
        m = model.with_params({**model.params, "delta": delta})
        return js.wavepacket.evolve(m, jnp.zeros(2), k0, s["t1"], jnp.asarray(s["field"]), band=0,
                                    saveat=diffrax.SaveAt(t1=True), solver=js.wavepacket.Magnus4(), **options)

    delta0, k00 = jnp.asarray(_lz.DELTA), jnp.array([5.0, 0.1])
    # each gradient against the forward solve of its own quantity, as a user writes them: one input scalar (Δ)
    # or two (k0), so the default adjoint takes them in forward mode; ``reverse_mode_*``: the default's reverse
    # mode, asked for by passing its adjoint
    reverse = {"adjoint": js.wavepacket.default_adjoint(16384, 8)}
    quantities = {"dP_dDelta": (lambda d, **o: solve(d, k00, **o).populations[-1, 1], delta0),
                  "dx_dk0": (lambda k, **o: solve(delta0, k, **o).x[-1, 0], k00)}
    timing = {}
    for name, (f, arg) in quantities.items():
        fns = [jax.jit(f), jax.jit(jax.grad(f)), jax.jit(jax.grad(functools.partial(f, **reverse)))]
        values = [np.asarray(jax.block_until_ready(g(arg))) for g in fns]
        # a forward solve takes ~1 ms, and single calls that short move 3× between repeats: alternating calls
        calls = [lambda fn=fn, a=arg: jax.block_until_ready(fn(a)) for fn in fns]
        times, ratios, ratios_min = compare_times(calls, 40)
        timing[name] = {"gradient_over_forward_ratio": ratios[1],
                        "gradient_over_forward_ratio_of_minima": ratios_min[1],
                        "forward_seconds": times[0], "gradient_seconds": times[1],
                        "reverse_mode_over_forward_ratio": ratios[2],
                        "reverse_mode_over_forward_ratio_of_minima": ratios_min[2], "reverse_mode_seconds": times[2],
                        "max_rel_difference_to_reverse_mode": float(np.max(np.abs(values[1] - values[2])
                                                                           / np.abs(values[2])))}

    def run(z, **options):  # (Δ, k0) → (P_upper, x(t1))
        tr = solve(z[0], z[1:], **options)
        return jnp.concatenate([tr.populations[-1, 1:], tr.x[-1]])

    z0 = jnp.concatenate([delta0[None], k00])
    j = np.zeros((3, 3))  # the default's gradients as a user takes them: ∂P/∂Δ alone, ∂x(t1)/∂k0 alone
    j[0, 0] = float(jax.jit(jax.grad(quantities["dP_dDelta"][0]))(delta0))
    j[1:, 1:] = np.asarray(jax.jit(jax.jacrev(lambda k: solve(delta0, k).x[-1]))(k00))

    def central(f, h=1e-6):
        return np.stack([(np.asarray(f(z0 + h * e)) - np.asarray(f(z0 - h * e))) / (2 * h) for e in np.eye(3)], 1)

    # the reference: central differences of a tight solve (at the default rtol 1e-8 the differences
    # of two adaptive solves 2e-6 apart carry ~2e-5 of step-sequence noise themselves)
    tight = jax.jit(lambda z: run(z, stepsize_controller=diffrax.PIDController(rtol=1e-11, atol=1e-12),
                                  max_steps=1 << 18))
    ref, loose = central(tight), central(jax.jit(run))
    rel, rel_loose = np.abs(j - ref) / np.abs(ref), np.abs(j - loose) / np.abs(loose)
    return {**timing, "rel_error_dP_dDelta": float(rel[0, 0]), "max_rel_error_dx_dk0": float(np.max(rel[1:, 1:])),
            "reference": "central differences (h = 1e-6) of solves at rtol 1e-11 / atol 1e-12",
            "max_rel_error_vs_differences_at_rtol_1e-8": float(max(rel_loose[0, 0], np.max(rel_loose[1:, 1:]))),
            "batch": _batch_gradient(model, s), "long_sweep": _long_sweep_gradient(model)}


def _batch_gradient(model, s, n=50):
    """∂(Σ P_upper)/∂Δ of n trajectories (k_y ∈ [0, 0.6], vmap, default solver and adjoint — forward mode, one
    input — and its reverse mode): gradient/forward times and the errors against central differences of tight
    solves (batches gave NaN before 2026-12-03)."""
    import diffrax
    import jax
    import jax.numpy as jnp

    import jaxsemi as js

    k0 = jnp.asarray(_lz.sweep(5.0, n)["k0"])

    def total(delta, **options):
        m = model.with_params({**model.params, "delta": delta})
        tr = js.wavepacket.evolve(m, jnp.zeros(2), k0, s["t1"], jnp.asarray(s["field"]), band=0, saveat=2, **options)
        return jnp.sum(tr.populations[:, -1, 1])

    reverse = js.wavepacket.default_adjoint(16384, 8 * n)  # the default's reverse mode, asked for by name
    fns = [jax.jit(total), jax.jit(jax.grad(total)), jax.jit(jax.grad(lambda d: total(d, adjoint=reverse)))]
    values = [float(f(_lz.DELTA)) for f in fns]
    (t_fwd, t_grad, t_reverse), (_, ratio, ratio_reverse), (_, ratio_min, ratio_reverse_min) = compare_times(
        [lambda f=f: jax.block_until_ready(f(_lz.DELTA)) for f in fns], 40)
    g = values[1]
    tight = jax.jit(lambda d: total(d, stepsize_controller=diffrax.PIDController(rtol=1e-11, atol=1e-12),
                                    max_steps=1 << 18))
    h = 1e-6
    ref = (float(tight(_lz.DELTA + h)) - float(tight(_lz.DELTA - h))) / (2 * h)
    return {"trajectories": n, "gradient_over_forward_ratio": ratio, "gradient_over_forward_ratio_of_minima": ratio_min,
            "forward_seconds": t_fwd,
            "gradient_seconds": t_grad, "reverse_mode_over_forward_ratio": ratio_reverse,
            "reverse_mode_over_forward_ratio_of_minima": ratio_reverse_min, "reverse_mode_seconds": t_reverse,
            "finite": bool(np.isfinite(g)), "rel_error_dsumP_dDelta": abs(g - ref) / abs(ref),
            "rel_error_dsumP_dDelta_reverse_mode": abs(values[2] - ref) / abs(ref)}


def _long_sweep_gradient(model, K=20.0):
    """∂P/∂Δ of one sweep at K = 20 (~450 steps, more than diffrax's default 180 checkpoints) with the default
    adjoint (forward mode), its reverse mode (every step stored) and diffrax's ``RecursiveCheckpointAdjoint()``,
    against the formula's −2πΔ/(vE)·P, and their gradient/forward times (medians of alternating calls)."""
    import diffrax
    import jax
    import jax.numpy as jnp

    import jaxsemi as js

    s = _lz.sweep(K, 1)

    def upper(delta, **options):
        m = model.with_params({**model.params, "delta": delta})
        return js.wavepacket.evolve(m, jnp.zeros(2), jnp.asarray(s["k0"][0]), s["t1"], jnp.asarray(s["field"]),
                                    band=0, saveat=2, **options).populations[-1, 1]

    fns = [jax.jit(upper), jax.jit(jax.grad(upper)),
           jax.jit(jax.grad(lambda d: upper(d, adjoint=diffrax.RecursiveCheckpointAdjoint()))),
           jax.jit(jax.grad(lambda d: upper(d, adjoint=js.wavepacket.default_adjoint(16384, 8))))]
    values = [float(f(_lz.DELTA)) for f in fns]
    _, ratio, _ = compare_times([lambda f=f: jax.block_until_ready(f(_lz.DELTA)) for f in fns], 40)
    formula = -2 * np.pi * _lz.DELTA / (_lz.V * _lz.E) * float(_lz.formula(0.0))
    return {"K": K, "dP_dDelta_formula": formula, "dP_dDelta_default_adjoint": values[1],
            "dP_dDelta_diffrax_default_180_checkpoints": values[2], "dP_dDelta_reverse_mode_every_step": values[3],
            "gradient_over_forward_ratio": ratio[1], "diffrax_default_gradient_over_forward_ratio": ratio[2],
            "reverse_mode_every_step_gradient_over_forward_ratio": ratio[3]}


def _moderate(repeats, n=50) -> dict:
    """Tsit5 and Magnus4 (both phases) on runs where 𝓗 changes at a rate comparable with the splitting
    (``moderate``)."""
    import diffrax
    import jax
    import jax.numpy as jnp

    import jaxsemi as js

    dirac = js.models.massive_dirac
    cases = {  # model, k0, t1 (fs), field (V/Å or E(x, t))
        "texture_slow_drift": (dirac(1.0, 0.1, texture_G=(0.05, 0.0)), (1.0, 0.05), 40.0, jnp.array([0.02, 0.0])),
        "texture_K5_sweep": (dirac(1.0, 0.3, texture_G=(0.02, 0.01)), (5.0, 0.1), 10 * js.units.HBAR / 0.2,
                             jnp.array([0.2, 0.0])),
        "uniform_drift": (dirac(1.0, 0.1), (0.3, 0.05), 50.0, jnp.array([0.01, 0.0])),
        "pulse_E_of_t": (dirac(1.0, 0.1), (0.3, 0.05), 50.0, lambda x, t: jnp.array([0.01 * jnp.sin(0.1 * t), 0.0])),
    }
    out = {"trajectories": n}
    for name, (model, k0, t1, field) in cases.items():
        ks = jnp.asarray(k0) + jnp.stack([jnp.zeros(n), jnp.linspace(0.0, 0.2, n)], -1)
        row = {}
        for label, solver in (("tsit5", diffrax.Tsit5()), ("magnus4", js.wavepacket.Magnus4()),
                              ("magnus4_adiabatic", js.wavepacket.Magnus4(phase="adiabatic"))):
            def go(solver=solver):
                tr = js.wavepacket.evolve(model, jnp.zeros(2), ks, t1, field, band=0, saveat=2, solver=solver,
                                          max_steps=1 << 18)
                return jax.block_until_ready(tr.x_end), tr.stats["num_steps"]

            t = time.perf_counter()
            go()
            first = time.perf_counter() - t
            best, (_, steps) = best_time(go, repeats)
            row[label] = {"seconds": best, "first_call_seconds": first, "mean_steps": float(np.mean(steps))}
        row["magnus4_over_tsit5"] = row["magnus4"]["seconds"] / row["tsit5"]["seconds"]
        row["adiabatic_over_frozen"] = row["magnus4_adiabatic"]["seconds"] / row["magnus4"]["seconds"]
        out[name] = row
    return out


def run(quick: bool = False) -> dict:
    import diffrax

    import jaxsemi as js

    n = 20 if quick else _lz.sweep(0.0)["ky"].size
    repeats = 1 if quick else 2
    out = {"trajectories": n, "sweep": _lz.__doc__.split("\n\n")[1].replace("\n", " "), "by_K": {}}
    for K in KS[:2] if quick else KS:
        magnus, adiabatic = js.wavepacket.Magnus4(), js.wavepacket.Magnus4(phase="adiabatic")
        row = {"magnus4_vmap": _sweep(K, n, "vmap", repeats, solver=magnus)}
        for ensemble in ("vmap", "shared"):
            row[f"magnus4_adiabatic_{ensemble}"] = _sweep(K, n, ensemble, repeats, solver=adiabatic)
        row["adiabatic_over_frozen"] = (row["magnus4_adiabatic_vmap"]["trajectories_per_s"]
                                        / row["magnus4_vmap"]["trajectories_per_s"])
        row["difference_to_frozen"] = float(np.max(np.abs(_lz.run_jaxsemi(K, n, solver=adiabatic)[0]
                                                          - _lz.run_jaxsemi(K, n, solver=magnus)[0])))
        if K <= 20:
            row["magnus4_shared"] = _sweep(K, n, "shared", repeats, solver=magnus)
            row["tsit5_vmap"] = _sweep(K, n, "vmap", repeats, solver=diffrax.Tsit5(), max_steps=1 << 17)
            row["speedup_vs_tsit5"] = (row["magnus4_vmap"]["trajectories_per_s"]
                                       / row["tsit5_vmap"]["trajectories_per_s"])
        out["by_K"][f"K={K:g}"] = row
    out["gradients"] = _gradients()
    if not quick:  # eight more compiles
        out["moderate"] = _moderate(3)
    out["note"] = "timings from one run; rerun on a quiet machine for the published figures"
    return out
