"""``SolverOptions``: the diffrax settings of ``evolve`` in one object."""

from __future__ import annotations

import dataclasses
from typing import Optional

import diffrax
import equinox as eqx

from ._adjoint import StoredStepsAdjoint

#: The default controller's PI coefficients, one of diffrax's suggested sets (its default is the I controller
#: pcoeff = 0, icoeff = 1). On the Landau–Zener sweeps of ``jaxsemi bench`` at rtol 1e-8 (2026-12-03): Magnus4
#: rejects 2.4–2.8× fewer steps, takes 4–10 % fewer in all at K = 20 and 80 (6 % more at K = 5), and the
#: largest error vs a tight solve is as small or smaller (K = 5 / 20 / 80, 100 / 200 / 20 trajectories:
#: 2.3e-8 / 6.2e-7 / 4.1e-6 → 8.9e-10 / 5.5e-7 / 1.5e-6); Tsit5 takes as many steps, 5× fewer rejected, 1.5×
#: smaller errors.
PI_COEFFICIENTS = {"pcoeff": 0.2, "icoeff": 0.4}


def default_controller(rtol: float = 1e-8, atol: float = 1e-9, **kwargs) -> diffrax.PIDController:
    """``diffrax.PIDController(rtol, atol, pcoeff=0.2, icoeff=0.4, **kwargs)``: ``evolve``'s default
    step-size controller (``PI_COEFFICIENTS``), for other tolerances or an error ``norm``."""
    return diffrax.PIDController(rtol=rtol, atol=atol, **{**PI_COEFFICIENTS, **kwargs})


#: The default adjoint's checkpoint budget, in numbers of the state y summed over a solve's trajectories
#: (two-band "full": 8 a trajectory). diffrax keeps ~32 bytes per such number and step (Full; ~8× more for the
#: adiabatic methods, which carry their gap event's dense output): 2^21 of them are ~64 MiB, every step of up
#: to 16 two-band trajectories at the default ``max_steps``.
CHECKPOINT_FLOATS = 1 << 21
#: Past that budget, at most this many steps stored: the buffer is filled and read whole once per solve (the
#: gradient of a K = 5 sweep of 50 vmapped trajectories, 186 steps: 0.5–2 ms of ~50 for 1024 of them), while the
#: steps of a longer run past the stored ones are recomputed (``default_adjoint``).
MAX_STORED_STEPS = 1024


def default_adjoint(max_steps: int, state_floats: int) -> StoredStepsAdjoint:
    """``evolve``'s reverse-mode adjoint where none is given (gradients in more than two input scalars; fewer
    are taken in forward mode, ``_gradient_mode``), for a solve whose state y has ``state_floats`` real numbers
    (all trajectories): ``StoredStepsAdjoint`` storing the state of every step where ``max_steps`` of them fit
    in ``CHECKPOINT_FLOATS``, else of as many first steps as fit, at most ``MAX_STORED_STEPS`` (at least one),
    steps past them checkpointed by treeverse (equinox's √(2·max_steps) checkpoints).

    Stored steps are what keeps adaptive gradients exact: a step recomputed from an earlier checkpoint in the
    backward pass is compiled apart from the forward pass and rounds differently (the step-doubling error
    estimate by ~1e-17), so its controller can take other steps (sizes 1e-9 apart from the first one, then
    0.15 fs apart in t), and the cotangents of one path are pulled back through the steps of the other.
    ∂P/∂Δ of one Landau–Zener sweep at K = 20 (450 Magnus4 steps, 2026-12-04): +3.10 with diffrax's default
    180 checkpoints, −1.67 with 100, −2.1 to −2.9 with 380–420, −2.2924609 (the formula: −2.2924600) with
    ≥ 445 or every step (2026-12-05: −2.3468 with the first 100 stored and treeverse after them). Storing every
    step also skips treeverse's bookkeeping, which costs in proportion to its checkpoint buffer: one K = 5 sweep's
    gradient 2.5× its forward solve against 6× with treeverse over 256 or 1024 checkpoints; 50 vmapped ones
    2.9× against 3.6–3.7× over 1024 (2026-12-05). A run of more steps than are stored (a large batch, or a
    long run) recomputes steps: pass ``adjoint=js.wavepacket.StoredStepsAdjoint(stored=max_steps)`` (memory
    permitting) or a smaller ``max_steps`` there."""
    fit = CHECKPOINT_FLOATS // state_floats
    if max_steps <= fit:
        return StoredStepsAdjoint(stored=max_steps)
    return StoredStepsAdjoint(stored=max(1, min(MAX_STORED_STEPS, fit)))


class SolverOptions(eqx.Module):
    """How ``js.wavepacket.evolve`` integrates (diffrax objects; times in fs).

    Attributes:
        solver: the ODE solver; default None: the method's ``default_solver(n_bands)``
            (``js.wavepacket.Magnus4()`` for "full" and "manifold" on two-band models, ``diffrax.Tsit5()``
            otherwise).
        stepsize_controller: default ``default_controller()``, a PI controller
            ``diffrax.PIDController(rtol=1e-8, atol=1e-9, pcoeff=0.2, icoeff=0.4)``.
        dt0: the first step in fs; None lets the controller choose (needs an adaptive one).
        adjoint: how gradients flow through the solve; default None: forward mode inside the gradient rule
            where at most two real input scalars per trajectory are differentiated (``_gradient_mode``), else
            ``default_adjoint``, a ``StoredStepsAdjoint`` that stores every step's state where the batch's
            ``max_steps`` states fit in ``CHECKPOINT_FLOATS`` = 2²¹ numbers (else the first steps' up to 1024,
            treeverse after them). Any adjoint given is used as it is.
        max_steps: the step budget per solve (default 16384).
        progress_meter: default ``NoProgressMeter()``; ``diffrax.TqdmProgressMeter()`` for a bar.
    """

    solver: Optional[diffrax.AbstractSolver] = None
    stepsize_controller: diffrax.AbstractStepSizeController = dataclasses.field(
        default_factory=default_controller)
    dt0: Optional[float] = None
    adjoint: Optional[diffrax.AbstractAdjoint] = None
    max_steps: int = eqx.field(static=True, default=16384)
    progress_meter: diffrax.AbstractProgressMeter = dataclasses.field(default_factory=diffrax.NoProgressMeter)
