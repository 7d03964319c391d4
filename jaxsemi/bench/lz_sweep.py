"""Landau–Zener sweep side by side with the peer codes: full-band wavepackets per second for
jaxsemi (``js.wavepacket.evolve`` with its default solver, both ensemble modes), dynamiqs and
QuTiP on the same 2×2 Schrödinger problems.

The sweep: 𝓗 = v(k_x σ_x + k_y σ_y) + Δσ_z (``js.models.massive_dirac``), v = 1 eV·Å,
Δ = 0.3 eV, a field eE = 0.2 V/Å along x sweeps k_x from +K to −K in t1 = 2Kħ/(eE); one
trajectory per k_y in [0, 0.6] 1/Å, starting in the lower band. The upper-band population at
the end is compared with P = exp(−π(Δ² + v²k_y²)/(v eE)) (exact for K → ∞; at K = 5 the finite
sweep leaves ≈ 2e-4, at K = 20 ≈ 2e-6, so each code's own error is
``max_difference_to_tight_solve``, the distance from the populations of a Magnus4 solve at rtol
1e-12 / atol 1e-13). All codes integrate iħχ̇ = 𝓗(k_x(t), k_y)χ at rtol 1e-8 / atol 1e-9 (the
peers in the same units: H/ħ in 1/fs, t in fs; 𝓗 is taken from the jaxsemi model itself).

* jaxsemi: the lab-frame ``diffrax.Tsit5()`` and ``js.wavepacket.Magnus4()`` (the default of two-band
  models; ``SolverOptions()`` and the default solver are recorded), each with ``ensemble="vmap"`` and
  ``"shared"``, the default controller; if the default step budget runs out, that is recorded and
  the sweep is rerun with ``max_steps=BIG_BUDGET``. These control the error of the
  whole state (χ and the centre x, k). The peers integrate χ alone; ``magnus4_chi_norm_vmap`` and
  ``magnus4_chi_norm_shared`` are their task: Magnus4 with the controller's norm over χ only
  (``band_state_norm``) and ``evolve`` compiled to return χ(t1) alone (``_final_band_state``), as a user
  who needs only populations calls it: XLA then drops the centre's Hellmann–Feynman displacement, which
  does not act back on χ in a uniform field (the same steps and populations, ~1.7× faster at K = 20;
  until 2026-12-04 these runs computed the whole ``Trajectory``, x to 3.7e-4 Å of a tight solve). With
  ``"shared"`` the largest per-trajectory error sets one step sequence for the batch: about as many
  steps as the slowest vmapped trajectory takes (which sets a vmapped batch's time), and every
  trajectory takes the small steps any one needs (at K = 20 287 steps, error 7.8e-8; vmapped 230–283,
  mean 256, error 1.7e-6). ``magnus4_adiabatic_*``: the same four runs with the opt-in
  ``Magnus4(phase="adiabatic")`` (the drift of the band energies in the dynamical phase: far fewer steps
  in the sweep's wings).
* dynamiqs (``jaxsemi[peers]``): ``dq.sesolve`` under ``jax.jit``, batched over the N Hamiltonians
  (``modulated`` k_x(t) σ_x term + a batched constant, ``cartesian_batching=False``) with
  ``Tsit5`` and ``Dopri8`` (adaptive, same tolerances; its other ODE methods are Dopri5, a
  Tsit5-like pair, and the implicit Kvaerno3/5) and ``Expm``, its only exponential solver (no
  Magnus): exact propagators of a piecewise-constant 𝓗 at the interval midpoints (2nd order,
  fixed step, ``EXPM_INTERVALS_PER_K``·K intervals).
* QuTiP (``jaxsemi[peers]``): ``SESolver`` in a loop over k_y (QuTiP has no batched ``sesolve``);
  𝓗(t) = 𝓗₀ + t·𝓗₁ with a compiled linear-interpolation coefficient (exact for a linear
  sweep; no Python callback, no Cython compile needed), ``normalize_output=False`` so the norm
  drift shows; its default ``adams`` (SciPy zvode) and its own 9th-order Verner ``vern9``, the
  fastest of its seven ODE methods (adams, bdf, lsoda, dop853, vern7, vern9, tsit5) at ≤ 1e-5
  from the formula in a K = 20 pilot (bdf and adams miss 1e-5; the others are 1.1–2.9× slower).

Each configuration's ``jaxsemi_speedup`` is the fastest whole-state jaxsemi run over it,
``jaxsemi_speedup_chi_norm`` the fastest same-task run at rtol 1e-8 (``magnus4[_adiabatic]_chi_norm_*``) over it,
and ``jaxsemi_speedup_matched_accuracy`` the fastest same-task run at rtol 1e-8 (either mode and phase) or
tighter (vmap, ``MATCHING_TOLERANCES``) whose populations are at least as close to the tight solve as its own
(None if none is; ``jaxsemi_matched_run`` names it); each peer's
``fastest`` names its quickest configuration (check its errors too: on this sweep dynamiqs'
``Dopri8`` is its fastest at the same accuracy as ``Tsit5``); ``alternating_check`` measures the
matched ratio against dynamiqs' fastest once more in ``ALTERNATING_ROUNDS`` rounds of calls in turn
(medians and minima), which a load change cannot bias. Times are the minimum over
repeats (and over at least ``MIN_SECONDS`` of calls); the JAX codes' first call (compile + one run, ``first_call_seconds``) is reported apart
and excluded from ``trajectories_per_s``. ``mean_steps`` counts accepted + rejected steps per
trajectory (QuTiP does not expose its steps). Also reported: jaxsemi's steps for one
trajectory (k_y = 0) vs K, and whether the default step budget sufficed.

    pip install 'jaxsemi[peers]'    # dynamiqs 0.3.7, QuTiP 5.3.1 (compatible with jaxsemi's pins)
    python -m jaxsemi.bench --only lz_sweep [--quick]
"""

from __future__ import annotations

import time
import warnings

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

import jaxsemi as js

from . import skipped
from ._common import alternating_times, best_time

from ._lz import ATOL, DELTA, E, KY_MAX, RTOL, V
from ._lz import formula as lz_probability
from ._lz import sweep as _sweep

#: step budget of the rerun when ``evolve``'s default budget runs out
BIG_BUDGET = 1 << 23
#: (rtol, atol) of the reference solve (``tight_populations``)
TIGHT = (1e-12, 1e-13)
#: tighter (rtol, atol) of the peers' task for ``jaxsemi_speedup_matched_accuracy``
#: (a ladder of ~1.5–2× rungs: the matched figure is the cheapest rung that meets the peer's error)
MATCHING_TOLERANCES = tuple((r, r / 10) for r in (5e-9, 3e-9, 2e-9, 1e-9, 5e-10, 3e-10))
#: each timing is the best of ``repeats`` calls and of at least this many seconds of calls
MIN_SECONDS = 1.0
#: rounds of the alternating check of the headline ratio (``alternating_check``)
ALTERNATING_ROUNDS = 10
#: the opt-in adiabatic phase of Magnus4 (the band energies' drift in the dynamical phase)
ADIABATIC = js.wavepacket.Magnus4(phase="adiabatic")
#: dynamiqs ``Expm``: piecewise-constant intervals per unit of K (1/Å)
EXPM_INTERVALS_PER_K = 200
QUTIP_METHODS = ("adams", "vern9")


def sweep(K: float, n: int):
    """The sweep (``jaxsemi.bench._lz``) as t1 (fs), k_y (n,) and start points k0 (n, 2) (k_x = +K)."""
    s = _sweep(K, n)
    return s["t1"], s["ky"], s["k0"]


def _hamiltonians(model, K, ky):
    """(n, 2, 2) 𝓗(0, k_y) and ∂𝓗/∂k_x of the jaxsemi model (𝓗 is linear in k), and the lower
    eigenvector at (+K, k_y) and upper one at (−K, k_y), as numpy arrays."""
    h = jax.vmap(lambda k: model(k))
    h0 = np.asarray(h(jnp.stack([0 * ky, ky], -1)))
    hx = np.asarray(h(jnp.stack([1 + 0 * ky, ky], -1))) - h0
    start, end = np.linalg.eigh(h0 + K * hx)[1][..., 0], np.linalg.eigh(h0 - K * hx)[1][..., 1]
    return h0, hx, start, end


def _figures(psi, end, ky, reference=None) -> tuple[dict, np.ndarray]:
    """Error vs the LZ formula and |χ| drift of final states ``psi`` (n, 2), and the upper-band
    populations (n,) at −K."""
    p = np.abs(np.sum(end.conj() * psi, -1)) ** 2
    out = {"max_error_vs_lz_formula": float(np.max(np.abs(p - lz_probability(ky)))),
           "max_norm_drift": float(np.max(np.abs(np.linalg.norm(psi, axis=-1) - 1)))}
    if reference is not None:
        out["max_difference_to_tight_solve"] = float(np.max(np.abs(p - reference)))
    return out, p


def _timed(run, n, repeats, first_call=True) -> tuple[dict, np.ndarray]:
    """Time ``run() -> (psi, steps)``: the first call (JAX: compile + one run) apart, then the best
    of ``repeats`` calls (more for fast runs: at least ``MIN_SECONDS`` of calls)."""
    out = {}
    if first_call:
        t = time.perf_counter()
        run()
        out["first_call_seconds"] = time.perf_counter() - t
    seconds, (psi, steps) = best_time(run, repeats, MIN_SECONDS)
    out.update(seconds=seconds, trajectories_per_s=n / seconds)
    if steps is not None:
        out["mean_steps"] = float(np.mean(steps))
    return out, psi


def band_state_norm(error):
    """The RMS norm of the scaled error of χ alone (``PIDController(norm=...)``): the task of the
    peers, which integrate χ only; x and k are still computed, their error no longer sets the steps."""
    return optx.rms_norm(error["chi"])


@eqx.filter_jit
def _final_band_state(model, k0, t1, field, **settings):
    """``evolve`` compiled as a user who needs only the band state calls it: final χ (n, 2), steps and
    success. XLA drops what the outputs do not use — here the centre's Hellmann–Feynman displacement,
    which does not act back on χ in a uniform field without texture."""
    tr = js.wavepacket.evolve(model, jnp.zeros(2), k0, t1, field, **settings)
    return tr.chi[..., -1, :], tr.stats["num_steps"], tr.succeeded


def _jaxsemi_run(model, K, n, ensemble, max_steps=None, solver=None, norm=None, tolerances=(RTOL, ATOL)):
    """Final χ (n, 2), steps (n,) and whether all reached t1 (the budget-exhausted warning is
    silenced: the caller records it). ``norm``: the controller's error norm (None: its default);
    ``tolerances`` (rtol, atol) other than the sweep's replace the default controller's. With
    ``norm=band_state_norm`` (the peers' task) only χ is computed (``_final_band_state``), else the
    whole ``Trajectory`` (an eager call)."""
    t1, _, k0 = sweep(K, n)
    controller = None
    if norm is not None or tolerances != (RTOL, ATOL):
        controller = js.wavepacket.default_controller(*tolerances, norm=norm or optx.rms_norm)
    settings = dict(band=0, saveat=2, ensemble=ensemble, max_steps=max_steps, throw=False, solver=solver,
                    stepsize_controller=controller)
    if norm is band_state_norm:
        chi, steps, ok = _final_band_state(model, jnp.asarray(k0), t1, jnp.array([E, 0.0]), **settings)
    else:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "(?s).*failed.*max_steps_reached")
            tr = js.wavepacket.evolve(model, jnp.zeros(2), jnp.asarray(k0), t1, jnp.array([E, 0.0]), **settings)
        chi, steps, ok = tr.chi[..., -1, :], tr.stats["num_steps"], tr.succeeded
    chi = np.asarray(chi.block_until_ready())
    return chi, np.broadcast_to(np.asarray(steps), (n,)), bool(np.all(np.asarray(ok)))


def tight_populations(model, K, n, end, ky):
    """Upper-band populations (n,) of a Magnus4 solve at ``TIGHT`` (rtol, atol): the reference of
    ``max_difference_to_tight_solve``."""
    chi = _jaxsemi_run(model, K, n, "vmap", BIG_BUDGET, js.wavepacket.Magnus4(), tolerances=TIGHT)[0]
    return _figures(chi, end, ky)[1]


def _jaxsemi(model, K, n, ensemble, end, ky, repeats, reference=None, solver=None, norm=None, tolerances=(RTOL, ATOL)):
    """One ensemble mode, solver (None: the default), error norm and tolerances; the default step
    budget first, ``BIG_BUDGET`` if it runs out. Returns the figures, the populations (n,) and the
    timed call."""
    t = time.perf_counter()
    ok = _jaxsemi_run(model, K, n, ensemble, solver=solver, norm=norm, tolerances=tolerances)[2]
    first = time.perf_counter() - t

    def call():
        return _jaxsemi_run(model, K, n, ensemble, None if ok else BIG_BUDGET, solver, norm, tolerances)

    res, psi = _timed(lambda: call()[:2], n, repeats, first_call=not ok)
    res["default_budget_ok"] = ok
    if ok:
        res["first_call_seconds"] = first
    else:
        res["max_steps"] = BIG_BUDGET
    figures, p = _figures(psi, end, ky, reference)
    return {**res, **figures}, p, call


def _dynamiqs(model, K, n, repeats, reference, calls=None) -> dict:
    """dynamiqs ``sesolve``, one batched call per method (stored in ``calls`` by name, if given);
    ``{"status": skipped}`` if missing."""
    try:
        import dynamiqs as dq
    except ModuleNotFoundError as err:
        return {"status": skipped(err.name)}
    dq.set_precision("double")
    t1, ky, _ = sweep(K, n)
    h0, hx, start, end = _hamiltonians(model, K, ky)
    hbar = js.units.HBAR
    const = dq.asqarray((h0 + K * hx) / hbar)  # (n, 2, 2), at t = 0
    slope = hx[0] / hbar  # k_x(t) = K − eE t/ħ; ∂𝓗/∂k_x does not depend on k_y
    psi0 = jnp.asarray(start[..., None])
    tsave = jnp.array([0.0, t1])
    n_int = int(EXPM_INTERVALS_PER_K * K)
    times = jnp.linspace(0.0, t1, n_int + 1)
    methods = {
        "tsit5": (dq.modulated(lambda t: -E * t / hbar, dq.asqarray(slope)) + const,
                  dq.method.Tsit5(rtol=RTOL, atol=ATOL, max_steps=BIG_BUDGET)),
        "dopri8": (dq.modulated(lambda t: -E * t / hbar, dq.asqarray(slope)) + const,
                   dq.method.Dopri8(rtol=RTOL, atol=ATOL, max_steps=BIG_BUDGET)),
        "expm_midpoint_pwc": (dq.pwc(times, -E * (times[1:] + times[:-1]) / (2 * hbar), dq.asqarray(slope)) + const,
                              dq.method.Expm()),
    }
    out = {"version": dq.__version__}
    for name, (H, method) in methods.items():
        @jax.jit
        def final(psi0, H=H, method=method):  # compiled as jaxsemi's same-task runs (~3 % faster than eager)
            res = dq.sesolve(H, psi0, tsave, method=method, cartesian_batching=False, progress_meter=False)
            return res.final_state.to_jax(), res.infos.nsteps

        def run(final=final):
            psi, steps = final(psi0)
            return np.asarray(psi)[..., 0], np.asarray(steps)

        timing, psi = _timed(run, n, 1 if name.startswith("expm") else repeats)
        out[name] = {**timing, **_figures(psi, end, ky, reference)[0]}
        if calls is not None:
            calls[name] = run
    out["expm_midpoint_pwc"]["intervals"] = n_int
    return out


def _qutip(model, K, n, repeats, reference) -> dict:
    """QuTiP ``SESolver`` looped over k_y, per method; ``{"status": skipped}`` if missing."""
    try:
        import qutip
    except ModuleNotFoundError as err:
        return {"status": skipped(err.name)}
    t1, ky, _ = sweep(K, n)
    h0, hx, start, end = _hamiltonians(model, K, ky)
    hbar = js.units.HBAR
    linear = qutip.coefficient(np.array([0.0, t1]), tlist=np.array([0.0, t1]), order=1)  # c(t) = t, compiled
    ramp = qutip.Qobj(-E / hbar**2 * hx[0])
    out = {"version": qutip.__version__}
    for method in QUTIP_METHODS:
        options = {"method": method, "rtol": RTOL, "atol": ATOL, "nsteps": BIG_BUDGET, "normalize_output": False,
                   "store_states": False, "store_final_state": True, "progress_bar": ""}

        def run(options=options):
            psi = [qutip.SESolver(qutip.QobjEvo([qutip.Qobj((h0[i] + K * hx[i]) / hbar), [ramp, linear]]),
                                  options=options).run(qutip.Qobj(start[i]), [0.0, t1]).final_state.full()[:, 0]
                   for i in range(n)]
            return np.stack(psi), None

        timing, psi = _timed(run, n, repeats, first_call=False)
        out[method] = {**timing, **_figures(psi, end, ky, reference)[0]}
    return out


def alternating_check(res, calls, peer_calls) -> dict:
    """The matched-accuracy ratio against dynamiqs' fastest configuration again, from
    ``ALTERNATING_ROUNDS`` rounds that call the two in turn (medians and minima): a load change during
    the run cannot favour either code."""
    peer = res["dynamiqs"]["fastest"]
    mine = res["dynamiqs"][peer]["jaxsemi_matched_run"]
    if mine is None:
        return {"status": "no jaxsemi run as accurate as dynamiqs' fastest"}
    t_mine, t_peer = alternating_times([calls[mine], peer_calls[peer]], ALTERNATING_ROUNDS)
    return {"jaxsemi": mine, "dynamiqs": peer, "rounds": ALTERNATING_ROUNDS,
            "ratio_of_medians": float(np.median(t_peer) / np.median(t_mine)),
            "ratio_of_minima": float(t_peer.min() / t_mine.min())}


def steps_vs_K(model, Ks, solver) -> dict:
    """jaxsemi's steps for one trajectory (k_y = 0) per K, and whether the default budget held."""
    out = {}
    for K in Ks:
        ok = _jaxsemi_run(model, K, 1, "vmap", solver=solver)[2]
        steps = _jaxsemi_run(model, K, 1, "vmap", None if ok else BIG_BUDGET, solver)[1]
        out[f"K={K:g}"] = {"steps": int(steps[0]), "default_budget_ok": ok}
    return out


def run(quick: bool = False) -> dict:
    """``quick``: 8 trajectories at K = 5, steps for K = 5, 20; else 200 at K = 5 and 20, steps up to K = 320."""
    n, Ks, scan, repeats = (8, (5.0,), (5.0, 20.0), 1) if quick else (200, (5.0, 20.0), (5.0, 20.0, 80.0, 320.0), 3)
    model = js.models.massive_dirac(V, DELTA)
    defaults = js.wavepacket.SolverOptions()
    ctrl = defaults.stepsize_controller
    solver = defaults.solver or js.wavepacket.Full().default_solver(model.n_bands)  # None: the method's own
    out = {
        "benchmark": "lz_sweep (Landau-Zener, full band, jaxsemi vs dynamiqs vs QuTiP)",
        "what": f"v={V} eV A, Delta={DELTA} eV, eE={E} V/A, k_x from +K to -K, one trajectory per k_y in "
                f"[0, {KY_MAX}] 1/A; rtol/atol {RTOL}/{ATOL}; error of the upper-band population vs "
                "exp(-pi(Delta^2+v^2 k_y^2)/(v eE)); seconds = min over repeats, compile excluded",
        "trajectories": n,
        "jaxsemi_defaults": {"solver": type(solver).__name__, "max_steps": defaults.max_steps,
                             "rtol_atol": [getattr(ctrl, "rtol", None), getattr(ctrl, "atol", None)]},
    }
    for K in Ks:
        _, ky, _ = sweep(K, n)
        end = _hamiltonians(model, K, ky)[3]
        res, calls = {}, {}
        reference = tight_populations(model, K, n, end, ky)

        def measure(name, mode, *settings):  # settings: solver, norm, tolerances as in _jaxsemi
            res[name], _, calls[name] = _jaxsemi(model, K, n, mode, end, ky, repeats, reference, *settings)

        for mode in ("vmap", "shared"):
            measure(f"jaxsemi_tsit5_{mode}", mode, diffrax.Tsit5())
        magnus = (("magnus4", js.wavepacket.Magnus4()), ("magnus4_adiabatic", ADIABATIC))
        for norm, suffix in ((None, ""), (band_state_norm, "_chi_norm")):
            for name, solver in magnus:
                for mode in ("vmap", "shared"):
                    measure(f"jaxsemi_{name}{suffix}_{mode}", mode, solver, norm)
        best = max(res[f"jaxsemi_{cfg}"]["trajectories_per_s"] for cfg in (
            "tsit5_vmap", "tsit5_shared", "magnus4_vmap", "magnus4_shared", "magnus4_adiabatic_vmap",
            "magnus4_adiabatic_shared"))
        ladder = [f"jaxsemi_{name}_chi_norm_{mode}" for name in ("magnus4", "magnus4_adiabatic")
                  for mode in ("vmap", "shared")]
        same_task = max(res[r]["trajectories_per_s"] for r in ladder)
        for rtol, atol in MATCHING_TOLERANCES:
            ladder.append(f"jaxsemi_magnus4_chi_norm_vmap_rtol{rtol:g}")
            measure(ladder[-1], "vmap", js.wavepacket.Magnus4(), band_state_norm, (rtol, atol))
        peer_calls = {}
        res["dynamiqs"] = _dynamiqs(model, K, n, repeats, reference, peer_calls)
        res["qutip"] = _qutip(model, K, n, repeats, reference)
        for peer in ("dynamiqs", "qutip"):
            configs = {k: v for k, v in res[peer].items() if isinstance(v, dict)}
            for cfg in configs.values():
                cfg["jaxsemi_speedup"] = best / cfg["trajectories_per_s"]
                cfg["jaxsemi_speedup_chi_norm"] = same_task / cfg["trajectories_per_s"]
                matched = [r for r in ladder
                           if res[r]["max_difference_to_tight_solve"] <= cfg["max_difference_to_tight_solve"]]
                fastest = max(matched, key=lambda r: res[r]["trajectories_per_s"], default=None)
                cfg["jaxsemi_matched_run"] = fastest
                cfg["jaxsemi_speedup_matched_accuracy"] = (
                    None if fastest is None else res[fastest]["trajectories_per_s"] / cfg["trajectories_per_s"])
            if configs:
                res[peer]["fastest"] = max(configs, key=lambda k: configs[k]["trajectories_per_s"])
        if peer_calls:
            res["alternating_check"] = alternating_check(res, calls, peer_calls)
        out[f"K={K:g}"] = res
    out["jaxsemi_tsit5_steps_vs_K"] = steps_vs_K(model, scan, diffrax.Tsit5())
    out["jaxsemi_magnus4_steps_vs_K"] = steps_vs_K(model, scan, js.wavepacket.Magnus4())
    return out
