"""``SolverOptions``: the diffrax settings of ``evolve`` in one object."""

from __future__ import annotations

import dataclasses
from typing import Optional

import diffrax
import equinox as eqx


class SolverOptions(eqx.Module):
    """How ``js.wavepacket.evolve`` integrates (diffrax objects; times in fs).

    Attributes:
        solver: the ODE solver; default None: the method's ``default_solver(n_bands)``
            (``js.wavepacket.Magnus4()`` for "full" and "manifold" on two-band models, ``diffrax.Tsit5()``
            otherwise).
        stepsize_controller: default ``diffrax.PIDController(rtol=1e-8, atol=1e-9)``.
        dt0: the first step in fs; None lets the controller choose (needs an adaptive one).
        adjoint: how gradients flow through the solve (default ``RecursiveCheckpointAdjoint()``).
        max_steps: the step budget per solve (default 16384).
        progress_meter: default ``NoProgressMeter()``; ``diffrax.TqdmProgressMeter()`` for a bar.
    """

    solver: Optional[diffrax.AbstractSolver] = None
    stepsize_controller: diffrax.AbstractStepSizeController = dataclasses.field(
        default_factory=lambda: diffrax.PIDController(rtol=1e-8, atol=1e-9))
    dt0: Optional[float] = None
    adjoint: diffrax.AbstractAdjoint = dataclasses.field(default_factory=diffrax.RecursiveCheckpointAdjoint)
    max_steps: int = eqx.field(static=True, default=16384)
    progress_meter: diffrax.AbstractProgressMeter = dataclasses.field(default_factory=diffrax.NoProgressMeter)
