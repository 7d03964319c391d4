"""``hall_predictor``: σ_xy at a gate-induced carrier density, the prediction a Hall fit needs."""

from __future__ import annotations

from typing import Any, Callable, Optional

import jax

from .. import _checks
from .._carriers import density_to_mu
from .._hall import hall_conductivity
from .._model import Model
from ..kspace import AbstractGrid
from ._convert import PER_1E12_CM2


def hall_predictor(model_factory: Callable[[Any], Model], grid: AbstractGrid, *, kT,
                   doping: Optional[str] = "n0", doping_unit: float = PER_1E12_CM2, x=None,
                   filled_bands: Optional[int] = None) -> Callable[[Any, Any], jax.Array]:
    """``predict(params, n) -> σ_xy`` in e²/h at gate-induced densities ``n`` (Å⁻², any shape).

    The prediction, for ``js.fit.fit(predict, params0, data.x, data.y, ...)``:

    1. ``model = model_factory(params)`` (hold fixed parameters inside the factory, e.g.
       ``lambda p: js.models.massive_dirac(2.5, p["delta"])``);
    2. the carrier density is n + n₀, with the residual doping n₀ = ``params[doping]`` ·
       ``doping_unit`` (default: ``params["n0"]`` in 10¹² cm⁻²; ``doping=None``: n₀ = 0);
    3. μ solves ``carrier_density(model, μ) = n + n₀`` on ``grid`` at ``kT``
       (``js.fit.density_to_mu``; differentiable by the implicit-function theorem);
    4. σ_xy = ``js.hall_conductivity(model, μ, grid, kT)`` (2D model).

    Args:
        model_factory: ``params -> Model``, traceable (called inside the fit's jit).
        grid: one k-grid for the density and the Hall sum (``kgrid.disk`` for continuum models:
            its radius is the model's cut-off).
        kT: temperature in eV, > 0 (μ(n) goes through the thermally smeared density of states).
        doping: key of the residual-doping entry of a dict ``params``, or None.
        doping_unit: Å⁻² per unit of ``params[doping]``.
        x, filled_bands: as in ``js.fit.density_to_mu`` (position of a textured model; bands
            filled at neutrality, default half).

    ``predict`` is differentiable in ``params`` (and ``n``); build it once and reuse it, so that
    later fits and plots reuse the compiled programs.
    """
    if isinstance(model_factory, Model) or not callable(model_factory):
        raise TypeError("model_factory must be a function params -> Model (e.g. lambda p: "
                        f"model.with_params(p)), got {type(model_factory).__name__}")
    if not isinstance(grid, AbstractGrid):
        raise TypeError(f"grid must be a jaxsemi k-grid (js.kgrid.disk, brillouin_zone), got {type(grid).__name__}")
    _checks.check_kT(kT, positive=True, why="μ(n) is differentiated through the smeared DOS")

    def predict(params, n):
        model = model_factory(params)
        if not isinstance(model, Model):
            raise TypeError(f"model_factory(params) must return a js.Model, got {type(model).__name__}")
        if doping is not None:
            if doping not in params:
                raise KeyError(f"params has no residual-doping entry {doping!r} (keys {list(params)}); "
                               "pass doping=None to fit without one")
            n = n + params[doping] * doping_unit
        mu = density_to_mu(model, n, grid, kT, x, filled_bands=filled_bands)
        return hall_conductivity(model, mu, grid, kT, x)

    return predict
