"""``evolve``: one entry point for the wavepacket methods, batched, jitted, differentiable."""

from __future__ import annotations

import dataclasses
import functools as ft
import inspect
import warnings
from typing import Any, Callable, Optional, Union

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks, _sharding
from .._eigh import eigh as eigh_matrix
from .._geometry import eigh
from .._model import Model
from ._abelian import Abelian
from ._full import Full
from ._gradient_mode import differentiated
from ._magnus import Magnus4, WavepacketTerm
from ._manifold import Manifold
from ._method import AbstractAdiabaticMethod, AbstractMethod
from ._options import SolverOptions, default_adjoint
from ._trajectory import Result, Trajectory

_ALIASES = {"full": Full, "manifold": Manifold, "abelian": Abelian}
_ENSEMBLES = ("vmap", "shared")
#: "manifold" and "abelian" warn when ε (Eq. 37) exceeds this along a trajectory.
EPSILON_WARN = 0.2


def evolve(
    model: Model,
    x0,
    k0,
    t1,
    field: Union[Any, Callable],
    chi0=None,
    band=None,
    method: Union[str, AbstractMethod] = "full",
    bands=None,
    saveat: Union[None, int, Any, diffrax.SaveAt] = None,
    *,
    params=None,
    options: Optional[SolverOptions] = None,
    solver: Optional[diffrax.AbstractSolver] = None,
    stepsize_controller: Optional[diffrax.AbstractStepSizeController] = None,
    dt0=None,
    adjoint: Optional[diffrax.AbstractAdjoint] = None,
    max_steps: Optional[int] = None,
    gap_tol: float = 1e-3,
    progress_meter: Optional[diffrax.AbstractProgressMeter] = None,
    throw: Optional[bool] = None,
    ensemble: str = "vmap",
    mesh=None,
) -> Trajectory:
    """Evolve wavepackets from t = 0 to ``t1`` (fs) in a field E (V/Å); electrons, e = 1.

    Args:
        model: a ``js.Model`` with n bands in d dimensions.
        x0, k0: (..., d) initial centre (Å) and crystal momentum (1/Å).
        t1: final time in fs (> 0), a scalar or a (...) batch.
        field: E in V/Å, a constant (..., d) array or a JAX-traceable ``E(x, t) -> (d,)``
            (an ``eqx.Module`` callable makes its arrays differentiable).
        chi0: (..., n) initial band state in the orbital basis (normalised here); default the
            eigenstate ``band`` at (x0, k0).
        band: (...) band index (ascending energies) for the default χ0; "abelian" needs it
            (here or as ``Abelian(band)``).
        method: a method object, ``js.wavepacket.Full()`` (Eqs. 19–21 + 10), ``Manifold(bands)``
            (Eqs. 34 + 42), ``Abelian(band)`` (Eq. 43) or a user subclass of
            ``js.wavepacket.AbstractMethod``; or the aliases "full", "manifold" (with ``bands``)
            and "abelian".
        bands: the active manifold for the alias "manifold": a band index or contiguous
            sequence; default all bands.
        saveat: number of equally spaced save times (default 101), an array of times in
            [0, t1], or a ``diffrax.SaveAt`` (``ts``/``t0``/``t1``/``steps``; no dense output,
            no ``fn``; ``steps=True`` pads with ``inf`` times after the last step).
            A count scales with each trajectory's own t1; ``saveat=2`` (just the ends) is the
            cheapest (no interpolation inside steps).
        params: optional PyTree shaped like ``model.params`` with extra leading batch axes:
            a batch of parameters run in the same call.
        options: the diffrax settings, a ``js.wavepacket.SolverOptions`` (its defaults: the
            method's solver (``js.wavepacket.Magnus4()`` for "full" and "manifold" on two-band
            models, ``diffrax.Tsit5()`` otherwise),
            ``default_controller()`` = ``PIDController(rtol=1e-8, atol=1e-9, pcoeff=0.2, icoeff=0.4)``,
            for gradients in more than two input scalars ``js.wavepacket.default_adjoint`` (a
            ``StoredStepsAdjoint``: every step stored where the batch's ``max_steps`` states fit in 2²¹
            numbers, up to 16 two-band trajectories at the default budget; else the first up to 1024
            steps), forward mode for fewer,
            ``max_steps=16384``, ``NoProgressMeter``).
        solver, stepsize_controller, dt0, adjoint, max_steps, progress_meter: the same settings
            one by one; each one given replaces that field of ``options``. With the default adjoint,
            ``jax.grad``/``jax.jacrev`` in at most ``FORWARD_MODE_INPUTS`` = 2 real input scalars per
            trajectory (in all for ensemble="shared"; ∂P/∂Δ, ∂x(t1)/∂k0, a field amplitude a field
            function closes over) run in forward
            mode inside the gradient rule, with more in the ``StoredStepsAdjoint``'s reverse mode (the same
            numbers; ``js.wavepacket._gradient_mode``). ``jax.jacfwd``/``jax.jvp`` need
            ``adjoint=diffrax.ForwardMode()``.
        gap_tol: eV; adiabatic methods ("manifold", "abelian") stop (result ``gap_closed``) where
            the gap between the active and remote bands falls below it.
        throw: raise when a trajectory fails (step budget, solver failure). Default: True for
            a single trajectory, False for a batch (every element keeps its own ``result``);
            a closing gap is flagged, never raised. Under an outer jit/grad/vmap the codes
            are only returned. "manifold" and "abelian" warn where ε of Eq. 37 exceeds 0.2.
        ensemble: how a batch is integrated. "vmap" (default): each trajectory is its own
            diffrax solve with its own adaptive steps, vmapped. "shared": the whole batch is
            ONE diffrax ODE (state with a leading batch axis) with one adaptive step sequence;
            the step-size controller's norm (``PIDController.norm``, default RMS) is taken per
            trajectory and then maxed over the batch, so each trajectory meets the tolerances
            at least as strictly as alone. Much faster for large batches of similar
            trajectories; methods without a gap stop ("full") only, one t1 for the batch;
            ``result`` and ``stats`` are shared (one failure fails the whole batch). Controllers:
            ``PIDController`` (optionally in a ``ClipStepSizeController``) or ``ConstantStepSize``.

    The batch shape is the broadcast of the leading axes of x0, k0, t1, field, chi0, band and
    params; everything runs vmapped in one compiled call. Gradients of any output with respect to θ
    (``model.params`` or ``params``), x0, k0, χ0, the field and what a field function or the Hamiltonian function
    closes over flow through diffrax's adjoint (forward mode for at most two input scalars; closed-over traced
    values are moved into the inputs first: the adjoint differentiates its inputs only). With ``ensemble="vmap"``
    the batch is padded to a multiple of the device count and split over the devices of ``mesh`` (a
    ``jax.sharding.Mesh`` with one axis "k" or a sequence of devices; default ``js.set_devices``'s, else all of
    ``jax.devices()``); results are identical to one device.

    Bad values (t1 ≤ 0, NaN/inf in x0, k0, t1, the field, χ0 or the parameters, a zero χ0, a
    band out of range) raise a ``ValueError`` at once, or under jit/vmap/grad an error naming the
    input when the compiled program runs (``eqx.error_if``).

    ``evolve`` is traceable: called inside a ``jax.jit``-compiled function, only what that function
    returns is computed. A function returning ``chi`` or ``populations`` alone skips the centre's
    Hellmann–Feynman displacement where x does not act back on χ (no texture, a constant field):
    1.7× faster on the 200 Landau–Zener sweeps of ``jaxsemi bench --only lz_sweep`` at K = 20.

    Returns:
        a ``Trajectory``.
    """
    if not isinstance(model, Model):
        raise ValueError(f"model must be a js.Model, got {type(model).__name__}")
    scheme = _as_method(method, bands)
    if ensemble not in _ENSEMBLES:
        raise ValueError(f"ensemble must be one of {_ENSEMBLES}, got {ensemble!r}")
    if ensemble == "shared" and isinstance(scheme, AbstractAdiabaticMethod):
        raise ValueError(f"ensemble='shared' supports method='full' only (the gap-closing stop of {scheme.name!r} "
                         "is per trajectory): use ensemble='vmap'")
    options = _options(options, solver=solver, stepsize_controller=stepsize_controller, dt0=dt0,
                       adjoint=adjoint, max_steps=max_steps, progress_meter=progress_meter)
    if options.solver is None:
        options = dataclasses.replace(options, solver=scheme.default_solver(model.n_bands))
    if isinstance(options.solver, Magnus4) and not isinstance(scheme, (Full, Manifold)):
        raise ValueError(f"solver=Magnus4() integrates method='full' and 'manifold' only, got method "
                         f"{scheme.name!r}: use a diffrax solver (default diffrax.Tsit5())")
    d, n = model.dim, model.n_bands
    x0 = _checks.as_points(x0, d, "x0")
    k0 = _checks.as_points(k0, d, "k0")
    t1 = _check_t1(t1)
    if ensemble == "shared":
        t1 = _shared_t1(t1)
    field, field_batch = _check_field(field, x0, d)

    start, stop = scheme.active_bands(n)
    band = scheme.initial_band(band, chi0)
    if getattr(scheme, "band", None) is not None:  # e.g. Abelian(band): the band travels per trajectory in args,
        scheme = dataclasses.replace(scheme, band=None)  # not in the method, a static field of the compiled term
    if chi0 is None and band is None:
        raise ValueError(f"give chi0 (length {n}, orbital basis) or band (0..{n - 1})")
    if chi0 is not None and band is not None:
        raise ValueError("give chi0 or band, not both")

    band_arr = None
    if band is not None:
        band_arr = jnp.asarray(band)
        if not jnp.issubdtype(band_arr.dtype, jnp.integer):
            raise ValueError(f"band must be an integer (or integer array), got {band!r}")
        if _checks.is_concrete(band_arr):
            b = np.asarray(band_arr)
            if np.any(b < 0) or np.any(b >= n):
                raise ValueError(f"band index {b} out of range for a model with {n} bands")
            if np.any(b < start) or np.any(b >= stop):
                raise ValueError(f"band {b} is not in the active manifold [{start}, {stop})")
    if chi0 is not None:
        chi0 = _check_chi0(chi0, n)
        band_arr = jnp.zeros((), int)  # unused by the methods when chi0 is given

    _checks.check_finite(model.params, "model.params")
    pbatch = () if params is None else _params_batch(model.params, params)
    try:
        batch = np.broadcast_shapes(x0.shape[:-1], k0.shape[:-1], t1.shape, field_batch,
                                    () if chi0 is None else chi0.shape[:-1], band_arr.shape, pbatch)
    except ValueError as err:
        raise ValueError(f"batch shapes of x0, k0, t1, field, chi0/band and params do not broadcast: {err}") from err

    if (start, stop) != (0, n) and chi0 is not None and _checks.is_concrete(model, x0, k0, chi0):
        _check_in_manifold(model, (start, stop), x0, k0, chi0, batch)

    sub = _check_saveat(saveat, t1)
    if ensemble == "shared":
        options = eqx.tree_at(lambda o: o.stepsize_controller, options,
                              _batch_max_norm(options.stepsize_controller))
    config = _Config(scheme, options, float(gap_tol), chi0 is not None, params is not None, ensemble == "shared")

    x0, k0, t1 = _traced_checks(model, params, x0, k0, t1, field, chi0, band_arr, (start, stop))
    model, params = _hoisted(model, params)
    traj = _run(config, model, params, batch, x0, k0, t1, field, chi0, band_arr, sub, _sharding.get_mesh(mesh))

    throw = (batch == ()) if throw is None else throw
    magnus_hint = isinstance(scheme, (Full, Manifold)) and not isinstance(options.solver, Magnus4)
    _report(traj, throw, options.max_steps, magnus_hint)
    return traj


def _hoisted(model: Model, params):
    """(model, params) with the traced values 𝓗 closes over (a value the caller differentiates or vmaps, not a
    parameter) moved into the parameters: diffrax's adjoint differentiates its inputs only (a closure raised
    ``CustomVJPException``). A model without such values is returned as it is."""
    zeros = jnp.zeros(model.dim)
    fn, consts = jax.closure_convert(model.hamiltonian, zeros, zeros, model.params)
    if not consts:
        return model, params
    consts = tuple(consts)
    hoisted = Model(lambda k, x, p: fn(k, x, p[0], *p[1]), (model.params, consts), model.dim, model.lattice,
                    name=model.name)
    return hoisted, None if params is None else (params, consts)


def _as_method(method, bands) -> AbstractMethod:
    """The method object of ``method`` (an ``AbstractMethod`` or an alias, "manifold" with ``bands``)."""
    if isinstance(method, str) and method in _ALIASES:
        if method == "manifold":
            return Manifold(bands)
        method = _ALIASES[method]()
    if not isinstance(method, AbstractMethod):
        raise ValueError(f"method must be one of {tuple(_ALIASES)} or a js.wavepacket.AbstractMethod "
                         f"(Full(), Manifold(bands), Abelian(band)), got {method!r}")
    if bands is not None:
        raise ValueError(f"bands is only used by method='manifold' (a Manifold object carries its own bands), "
                         f"got method {method.name!r}")
    return method


def _options(options, **given) -> SolverOptions:
    """``options`` (default ``SolverOptions()``) with the settings given one by one (not None) replaced."""
    options = SolverOptions() if options is None else options
    if not isinstance(options, SolverOptions):
        raise ValueError(f"options must be a js.wavepacket.SolverOptions, got {type(options).__name__}")
    if given["max_steps"] is not None:
        given["max_steps"] = int(given["max_steps"])
    return dataclasses.replace(options, **{key: value for key, value in given.items() if value is not None})


class _Config(eqx.Module):
    scheme: AbstractMethod
    options: SolverOptions
    gap_tol: float = eqx.field(static=True)
    given_chi0: bool = eqx.field(static=True)
    batched_params: bool = eqx.field(static=True)
    shared: bool = eqx.field(static=True)


class _BatchMax(eqx.Module):
    """Error norm of a batched state: ``norm`` per trajectory (leading axis), then the max."""

    norm: Callable

    def __call__(self, y):
        return jnp.max(jax.vmap(self.norm)(y))


def _run(config, model, params, batch, x0, k0, t1, field, chi0, band, sub, mesh):
    """The batch's ``Trajectory`` (leading axes ``batch``): one jitted call where nothing is traced, else the
    gradient rule (``_gradient_mode``) around the jitted solve, outside it — inside a jit JAX 0.10.2 keeps a
    custom_vjp's residual layout in a store that goes stale where one process differentiates the same call in
    different inputs in turn (``_gradient_mode.differentiated``)."""
    if config.options.adjoint is None and callable(field) and not isinstance(field, eqx.Module):
        # its closed-over arrays (a differentiated amplitude) become leaves: the gradient rule differentiates
        # its inputs only
        converted = eqx.filter_closure_convert(field, x0.reshape(-1, x0.shape[-1])[0], jnp.zeros((), x0.dtype))
        field = converted if _traced(converted) else field
    if config.options.adjoint is not None or not _traced((model, params, x0, k0, t1, field, chi0, sub)):
        return _run_concrete(config, model, params, batch, x0, k0, t1, field, chi0, band, sub, mesh)
    return _batch(_differentiated, config, model, params, batch, x0, k0, t1, field, chi0, band, sub, mesh)


def _traced(tree) -> bool:
    return any(isinstance(a, jax.core.Tracer) for a in jax.tree_util.tree_leaves(tree))


def _batch(solve, config, model, params, batch, x0, k0, t1, field, chi0, band, sub, mesh):
    """``solve``'s ``Trajectory`` of the inputs made one trajectory axis (``_split``), given leading axes
    ``batch``."""
    function = callable(field)  # else one constant field per trajectory, in ``per``
    t1, per = _split(config, model.params, params, batch, x0, k0, t1, None if function else field, chi0, band)
    out = solve(config, ((model, field if function else None, t1, sub), per), mesh)
    return jax.tree_util.tree_map(lambda a: a.reshape(batch + a.shape[1:]), out)


def _differentiated(config, inputs, mesh):
    return differentiated(_solve, config, inputs, mesh, batched=not config.shared)


_run_concrete = eqx.filter_jit(ft.partial(_batch, lambda config, inputs, mesh: _solve(config, *inputs, mesh)))


@eqx.filter_jit
def _split(config, reference, params, batch, x0, k0, t1, field, chi0, band):
    """t1 where it is one for all (else None), and (params, x0, k0, t1, field, chi0, band) per trajectory, each
    None or with one leading axis of prod(batch) trajectories (``reference``: the model's parameters; field:
    a constant one, or None)."""
    size = int(np.prod(batch, dtype=int))

    def flat(a, tail):
        if a is None:
            return None
        return jnp.broadcast_to(a, batch + a.shape[a.ndim - tail:]).reshape((size,) + a.shape[a.ndim - tail:])

    ps = None
    if config.batched_params:
        ps = jax.tree_util.tree_map(lambda p, ref: flat(p, jnp.ndim(ref)), params, reference)
    # A scalar t1 stays out of the vmap: vmapping a broadcast t1 into diffrax's loop sends XLA's
    # algebraic simplifier into a circular rewrite loop ("likely stuck" errors on stderr).
    t1, ts = (None, flat(t1, 0)) if t1.ndim else (t1, None)
    return t1, (ps, flat(x0, 1), flat(k0, 1), ts, flat(field, 1), flat(chi0, 1), flat(band, 0))


@eqx.filter_jit
def _solve(config, shared, per, mesh):
    """The ``Trajectory`` of the trajectories ``per`` (``_split``), leading axis one per trajectory."""
    model, field, t1, sub = shared
    ps, xs, ks, ts, fs, cs, bs = per
    size = xs.shape[0]
    if config.shared:
        return _integrate_shared(config, model, field, (ps, fs, bs), xs, ks, t1, cs, _save(config, sub, t1))
    per, _ = _sharding.shard_batch(per, size, mesh)  # over devices

    def one(p, x, k, t, f, c, b):
        t = t1 if t is None else t
        return _integrate_one(config, _member(model, field, p, f, b), x, k, t, c, _save(config, sub, t), size)

    return jax.tree_util.tree_map(lambda a: a[:size], jax.vmap(one)(*per))


def _save(config, sub, t):
    """The ``SubSaveAt`` of a solve to t (fs) for ``evolve``'s ``saveat`` as ``_check_saveat`` left it (``sub``)."""
    if isinstance(sub, int) and sub == 2 and not isinstance(config.scheme, AbstractAdiabaticMethod):
        return _ENDS
    return diffrax.SubSaveAt(ts=jnp.linspace(0.0, 1.0, sub) * t) if isinstance(sub, int) else sub


def _member(model, field, p, f, b):
    """(model, field, band) of one trajectory, the vector field's ``args``: its params p and
    constant field f where given per trajectory (else None), its band index b."""
    return model if p is None else model.with_params(p), field if f is None else f, b


def _initial_state(config, args, x0, k0, chi0):
    model, _, band = args
    if not config.given_chi0:
        chi0 = eigh_matrix(model.hamiltonian(k0, x0, model.params))[1][:, band]
    return config.scheme.init(model, x0, k0, chi0)


def _one(fn, y, args):
    return fn(y, args)


def _each_member(fn, y, args):
    """``fn(y_i, args_i)`` over the trajectories of an ensemble="shared" state (see ``_integrate_shared``)."""
    model, field, per = args
    return jax.vmap(lambda yi, a: fn(yi, _member(model, field, *a)))(y, per)


#: ``saveat=2`` without an event: the two ends saved as they are reached, not interpolated inside a
#: step (under vmap the interpolation runs whenever any trajectory saves: ~25 % of a Magnus4 sweep).
_ENDS = diffrax.SubSaveAt(t0=True, t1=True)


def _diffeqsolve(config, rhs, t1, y0, args, sub, event=None, copies=1):
    """diffrax's solution of dy/dt = rhs(t, y, args) from 0 to t1 (fs), saved at ``sub`` and t1; ``copies``:
    how many such solves run vmapped (for the default adjoint's checkpoint budget, ``default_adjoint``)."""
    opt = config.options
    adjoint = opt.adjoint
    if adjoint is None:
        adjoint = default_adjoint(opt.max_steps, copies * sum(np.size(a) for a in jax.tree_util.tree_leaves(y0)))
    term = WavepacketTerm(rhs, method=config.scheme, each=_each_member if config.shared else _one)
    sol = diffrax.diffeqsolve(
        term, opt.solver, 0.0, t1, opt.dt0, y0, args,
        saveat=diffrax.SaveAt(subs=[sub, diffrax.SubSaveAt(t1=True)]), stepsize_controller=opt.stepsize_controller,
        adjoint=adjoint, event=event, max_steps=opt.max_steps, throw=False, progress_meter=opt.progress_meter,
    )
    if not _is_ends(sub):
        return sol
    # a solve that stopped short did not reach t1: inf there, as diffrax leaves unreached save times
    (ts, t_end), (ys, y_end) = sol.ts, sol.ys
    ok = sol.result == diffrax.RESULTS.successful
    ts, ys = jax.tree_util.tree_map(lambda a: a.at[-1].set(jnp.where(ok, a[-1], jnp.inf)), (ts, ys))
    return eqx.tree_at(lambda s: (s.ts, s.ys), sol, ([ts, t_end], [ys, y_end]))


def _is_ends(sub) -> bool:
    """Whether ``sub`` saves the two ends alone (``_ENDS``; compared by value: the default adjoint's gradient
    rule passes it on as a copy)."""
    return sub.ts is None and sub.t0 is True and sub.t1 is True and not sub.steps and sub.fn is _ENDS.fn


def _integrate_one(config, args, x0, k0, t1, chi0, sub, copies):
    scheme = config.scheme
    y0 = _initial_state(config, args, x0, k0, chi0)
    event = None
    if isinstance(scheme, AbstractAdiabaticMethod):
        event = diffrax.Event(lambda t, y, args, **kw: scheme.gap(args[0], y, args[2]) < config.gap_tol)
    sol = _diffeqsolve(config, scheme.rhs, t1, y0, args, sub, event, copies)
    (ts, ys), (t_end, y_end) = zip(sol.ts, sol.ys)
    return _trajectory(scheme, args, y0, ts, ys, t_end, y_end, sol.result, sol.stats)


def _integrate_shared(config, model, field, per, xs, ks, t1, cs, sub):
    """The batch as one ODE: the state's leaves carry a leading batch axis, the vector field is the
    single-trajectory ``scheme.rhs`` vmapped over it, ``per`` = (params, field, band) per trajectory
    (see ``_member``), and the controller's norm is already ``_BatchMax``."""
    scheme = config.scheme
    y0 = jax.vmap(lambda a, x, k, c: _initial_state(config, _member(model, field, *a), x, k, c))(
        per, xs, ks, cs)

    def rhs(t, y, args):
        model, field, per = args
        return jax.vmap(lambda yi, a: scheme.rhs(t, yi, _member(model, field, *a)))(y, per)

    sol = _diffeqsolve(config, rhs, t1, y0, (model, field, per), sub)
    (ts, ys), (t_end, y_end) = zip(sol.ts, sol.ys)  # ys, y_end: (T, batch, ...), (1, batch, ...)
    def one(a, y0, ys, y_end):
        return _trajectory(scheme, _member(model, field, *a), y0, ts, ys, t_end, y_end, sol.result, sol.stats)

    return jax.vmap(one, in_axes=(0, 0, 1, 1))(per, y0, ys, y_end)


def _trajectory(scheme, args, y0, ts, ys, t_end, y_end, code, stats):
    """One trajectory's ``Trajectory`` from its saved states ys (T, ...) and end state (1, ...)."""
    model, field, band = args

    def observe(t, y):
        ok = jnp.isfinite(t)
        safe = jax.tree_util.tree_map(lambda a, a0: jnp.where(ok, a, a0), y, y0)
        obs = scheme.observe(model, safe, jnp.where(ok, t, 0.0), field, band)
        return jax.tree_util.tree_map(lambda v: jnp.where(ok, v, jnp.inf), obs)

    obs = jax.vmap(observe)(ts, ys)
    result = Result.where(
        code == diffrax.RESULTS.successful, Result.successful,
        Result.where(code == diffrax.RESULTS.event_occurred, Result.gap_closed,
                     Result.where(code == diffrax.RESULTS.max_steps_reached, Result.max_steps_reached,
                                  Result.failed)))
    stats = {key: stats[key] for key in ("num_steps", "num_accepted_steps", "num_rejected_steps")}
    return Trajectory(ts, ys["x"], ys["k"], obs["chi"], obs["populations"], obs["energy"], obs["gap"],
                      obs["epsilon"], t_end[0], y_end["x"][0], y_end["k"][0], result, stats, scheme.name)


# ----------------------------------------------------------------------------- validation


def _traced_checks(model, params, x0, k0, t1, field, chi0, band, bounds):
    """(x0, k0, t1) carrying run-time errors (``eqx.error_if``, under jit/vmap/grad) for the value
    checks that traced inputs skipped above: t1 > 0, finite inputs, a normalised χ0 (the one given,
    normalised: NaN where its norm was 0) and ``band`` within ``bounds`` = [start, stop)."""
    at_start = field(jnp.asarray(x0.reshape(-1, x0.shape[-1])[0]), jnp.zeros(())) if callable(field) else field
    if _checks.is_concrete(model.params, params, x0, k0, t1, at_start, chi0, band):
        return x0, k0, t1
    return _checks.traced_error_if((x0, k0, t1), [
        (~(t1 > 0.0), "t1 must be after t0 = 0 fs (and finite)"),
        (_checks.not_finite(x0), "x0 contains NaN or inf"),
        (_checks.not_finite(k0), "k0 contains NaN or inf"),
        (_checks.not_finite(at_start), "field contains NaN or inf" if at_start is field else
         "field(x0, 0) contains NaN or inf"),
        (_checks.not_finite(model.params), "model.params contains NaN or inf"),
        (_checks.not_finite(params), "params contains NaN or inf"),
        (_checks.not_finite(chi0), "chi0 contains NaN or inf or has zero norm"),
        (jnp.any((band < bounds[0]) | (band >= bounds[1])),
         f"band index out of range: must be in [{bounds[0]}, {bounds[1]}) (the bands, or the active manifold)"),
    ])


def _check_t1(t1):
    arr = jnp.asarray(t1, dtype=jnp.result_type(float))
    _checks.check_finite(arr, "t1")
    if _checks.is_concrete(arr) and not np.all(np.asarray(arr) > 0.0):
        raise ValueError(f"t1 must be after t0 = 0 fs, got t1 = {np.asarray(arr)}")
    return arr


def _shared_t1(t1):
    """The one end time (scalar, fs) of an ensemble='shared' batch."""
    if t1.ndim == 0:
        return t1
    if _checks.is_concrete(t1) and np.all(np.asarray(t1) == np.asarray(t1).flat[0]):
        return t1.reshape(-1)[0]
    raise ValueError("ensemble='shared' integrates the batch as one ODE and needs one t1 for all "
                     f"trajectories (a scalar), got t1 of shape {t1.shape} not known to be one value: "
                     "use ensemble='vmap'")


def _batch_max_norm(controller):
    """``controller`` with its error norm applied per trajectory and maxed over the batch."""
    if isinstance(controller, diffrax.ConstantStepSize):
        return controller
    if isinstance(controller, diffrax.ClipStepSizeController):
        return eqx.tree_at(lambda c: c.controller, controller, _batch_max_norm(controller.controller))
    if isinstance(controller, diffrax.PIDController):
        return eqx.tree_at(lambda c: c.norm, controller, _BatchMax(controller.norm))
    raise ValueError("ensemble='shared' needs a diffrax.PIDController (optionally wrapped in a "
                     f"ClipStepSizeController) or ConstantStepSize, got {type(controller).__name__}")


def _check_field(field, x0, d):
    """Returns the field (array or callable) and its batch shape."""
    if callable(field):
        _check_field_signature(field)
        xs = jnp.asarray(x0.reshape(-1, d)[0])  # a user's field(x, t) may use JAX array methods
        shape = jax.eval_shape(field, xs, jnp.zeros(()))
        if shape.shape != (d,):
            raise ValueError(f"field(x, t) must return shape ({d},) (V/Å), got {shape.shape}")
        if _checks.is_concrete(field, xs):
            _checks.check_finite(field(xs, jnp.zeros(())), "field(x0, 0)")
        return field, ()
    arr = _checks.as_points(field, d, "field")  # raises on NaN/inf
    return arr, arr.shape[:-1]


def _check_field_signature(field):
    """A callable field must take (x, t): say so before tracing rather than with an arity error."""
    try:
        sig = inspect.signature(field)
    except (TypeError, ValueError):  # no signature to read (some builtins): the trace will tell
        return
    try:
        sig.bind(None, None)
    except TypeError as err:
        raise ValueError(f"field must be a function E(x, t) -> (d,) in V/Å of the centre x (d,) in Å and the "
                         f"time t (scalar) in fs, got a callable with signature {sig} ({err})") from err


def _check_chi0(chi0, n):
    chi0 = jnp.asarray(chi0)
    if chi0.ndim == 0 or chi0.shape[-1] != n:
        raise ValueError(f"chi0 must have shape (..., {n}) (orbital basis of a {n}-band model), got {chi0.shape}")
    chi0 = chi0.astype(jnp.result_type(complex))
    _checks.check_finite(chi0, "chi0")
    norm = jnp.linalg.norm(chi0, axis=-1, keepdims=True)
    if _checks.is_concrete(norm) and np.any(np.asarray(norm) < 1e-12):
        raise ValueError("chi0 has zero norm")
    return chi0 / norm


def _check_in_manifold(model, bounds, x0, k0, chi0, batch):
    """Raise if a concrete χ0 has weight outside the active bands ``bounds`` = [start, stop) at (x0, k0)."""
    start, stop = bounds
    size = int(np.prod(batch, dtype=int))
    xs = jnp.broadcast_to(x0, batch + x0.shape[-1:]).reshape(size, -1)
    ks = jnp.broadcast_to(k0, batch + k0.shape[-1:]).reshape(size, -1)
    cs = jnp.broadcast_to(chi0, batch + chi0.shape[-1:]).reshape(size, -1)
    u = eigh(model, ks, xs)[1][..., start:stop]  # (size, n, m)
    inside = jnp.einsum("bim,bjm,bj->bi", u, jnp.conj(u), cs)
    outside = np.asarray(jnp.linalg.norm(cs - inside, axis=-1))
    if np.max(outside) > 1e-6:
        raise ValueError(
            f"chi0 has weight {np.max(outside):.2e} outside the active manifold "
            f"[{start}, {stop}) at (x0, k0)")


def _params_batch(ref, params):
    ref_leaves, ref_tree = jax.tree_util.tree_flatten(ref)
    leaves, tree = jax.tree_util.tree_flatten(params)
    if tree != ref_tree:
        raise ValueError(f"params must have the structure of model.params {ref_tree}, got {tree}")
    shapes = {tuple(jnp.shape(p))[: jnp.ndim(p) - jnp.ndim(r)] for p, r in zip(leaves, ref_leaves)}
    for p, r in zip(leaves, ref_leaves):
        if jnp.shape(p)[jnp.ndim(p) - jnp.ndim(r):] != jnp.shape(r):
            raise ValueError(f"a params leaf of shape {jnp.shape(p)} does not end with model's {jnp.shape(r)}")
    if len(shapes) != 1:
        raise ValueError(f"every params leaf needs the same leading batch shape, got {sorted(shapes)}")
    _checks.check_finite(params, "params")
    return shapes.pop()


def _check_saveat(saveat, t1):
    if saveat is None or isinstance(saveat, (int, np.integer)):
        count = 101 if saveat is None else int(saveat)
        if count < 2:
            raise ValueError(f"saveat as a count needs at least 2 times, got {count}")
        return count
    if isinstance(saveat, diffrax.SaveAt):
        if saveat.dense or not isinstance(saveat.subs, diffrax.SubSaveAt):
            raise ValueError("saveat: pass a SaveAt with ts/t0/t1/steps (no dense output, no subs trees)")
        if saveat.subs.fn is not diffrax.SubSaveAt(t1=True).fn:  # diffrax's default: save the state
            raise ValueError("saveat: a custom `fn` is not supported (the Trajectory needs the state)")
        if saveat.subs.ts is None:
            return saveat.subs
        return eqx.tree_at(lambda s: s.ts, saveat.subs, _check_save_times(saveat.subs.ts, t1))
    return diffrax.SubSaveAt(ts=_check_save_times(saveat, t1))


def _check_save_times(ts, t1):
    """Save times (fs), increasing within [0, t1] (checked here when concrete, else by diffrax)."""
    ts = jnp.asarray(ts, dtype=jnp.result_type(float))
    if ts.ndim != 1:
        raise ValueError(f"saveat times must be a 1D array, got shape {ts.shape}")
    if _checks.is_concrete(ts, t1):
        a = np.asarray(ts)
        if np.any(a < 0) or np.any(a > np.min(np.asarray(t1))) or np.any(np.diff(a) < 0):
            raise ValueError(f"saveat times must be increasing within [0, t1 = {np.min(np.asarray(t1))}] fs")
    return ts


def _report(traj: Trajectory, throw: bool, max_steps: int, magnus_hint: bool = False) -> None:
    """Raise or warn about failed trajectories, a closing gap and a large ε (concrete values only);
    ``magnus_hint``: a lab-frame solver of "full"/"manifold", whose steps follow |𝓗|/ħ."""
    if not _checks.is_concrete(traj.result):
        return
    counts = {name: int(np.sum(np.asarray(traj.result == getattr(Result, name))))
              for name in ("max_steps_reached", "gap_closed", "failed")}
    hard = counts["max_steps_reached"] + counts["failed"]
    if throw and hard:
        why = "the ODE solver failed (step size underflow or non-finite values)"
        if counts["max_steps_reached"]:
            why = (f"the step budget max_steps = {max_steps} ran out before t1: raise max_steps "
                   "(or loosen the step-size controller's rtol/atol)")
            if magnus_hint:
                why += ("; for long sweeps or large band splittings solver=js.wavepacket.Magnus4() takes steps "
                        "that follow how fast 𝓗 changes, not |𝓗|/ħ")
        raise RuntimeError(f"wavepacket integration failed for {hard} trajectory(ies): {why}")
    if not throw and hard:
        warnings.warn(f"{hard} trajectory(ies) failed ({counts}); see Trajectory.result", stacklevel=3)
    if not _checks.is_concrete(traj.x_end, traj.k_end, traj.epsilon):
        return
    if counts["gap_closed"]:
        closed = np.asarray(traj.result == Result.gap_closed)
        x_at = np.asarray(traj.x_end)[closed].reshape(-1, traj.x_end.shape[-1])[0]
        k_at = np.asarray(traj.k_end)[closed].reshape(-1, traj.k_end.shape[-1])[0]
        warnings.warn(
            f"{counts['gap_closed']} trajectory(ies) stopped where the active manifold's gap closed "
            f"(first at x = {x_at} Å, k = {k_at} 1/Å); see Trajectory.result, t_end, x_end, k_end",
            stacklevel=3)
    if traj.epsilon is not None:
        eps = np.asarray(traj.epsilon)
        eps = eps[np.isfinite(eps)]
        if eps.size and eps.max() > EPSILON_WARN:
            warnings.warn(
                f"the adiabaticity parameter ε of Eq. 37 reaches {eps.max():.2f} (> {EPSILON_WARN}) along "
                f"the trajectory: method={traj.method!r} assumes ε ≪ 1 (field energy and motion slow on the "
                "scale of the gap to the remote bands); compare with method='full' (Trajectory.epsilon)",
                stacklevel=3)
