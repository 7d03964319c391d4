"""``SolverOptions``: the diffrax settings of ``evolve`` in one object."""

from __future__ import annotations

import dataclasses
from typing import Optional

import diffrax
import equinox as eqx

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


class SolverOptions(eqx.Module):
    """How ``js.wavepacket.evolve`` integrates (diffrax objects; times in fs).

    Attributes:
        solver: the ODE solver; default None: the method's ``default_solver(n_bands)``
            (``js.wavepacket.Magnus4()`` for "full" and "manifold" on two-band models, ``diffrax.Tsit5()``
            otherwise).
        stepsize_controller: default ``default_controller()``, a PI controller
            ``diffrax.PIDController(rtol=1e-8, atol=1e-9, pcoeff=0.2, icoeff=0.4)``.
        dt0: the first step in fs; None lets the controller choose (needs an adaptive one).
        adjoint: how gradients flow through the solve (default ``RecursiveCheckpointAdjoint()``).
        max_steps: the step budget per solve (default 16384).
        progress_meter: default ``NoProgressMeter()``; ``diffrax.TqdmProgressMeter()`` for a bar.
    """

    solver: Optional[diffrax.AbstractSolver] = None
    stepsize_controller: diffrax.AbstractStepSizeController = dataclasses.field(
        default_factory=default_controller)
    dt0: Optional[float] = None
    adjoint: diffrax.AbstractAdjoint = dataclasses.field(default_factory=diffrax.RecursiveCheckpointAdjoint)
    max_steps: int = eqx.field(static=True, default=16384)
    progress_meter: diffrax.AbstractProgressMeter = dataclasses.field(default_factory=diffrax.NoProgressMeter)
