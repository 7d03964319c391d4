"""``AbstractMethod``: what ``evolve`` needs from a wavepacket method (state, right-hand side,
observables; for adiabatic methods the gap whose closing stops the run)."""

from __future__ import annotations

import abc
from typing import Any, Optional

import diffrax
import equinox as eqx
import jax


class AbstractMethod(eqx.Module):
    """A wavepacket method for ``js.wavepacket.evolve(..., method=...)``, like diffrax's solvers.

    A subclass is a final ``eqx.Module`` that sets the class variable ``name`` (``Trajectory.method``)
    and implements the abstract methods below. Units: x in Å, k in 1/Å, t in fs, E in V/Å, energies
    in eV (electrons, e = 1). ``model`` is a ``js.Model`` with n bands in d dimensions (its own
    ``params`` are those of the trajectory); ``field`` is a constant (d,) array or a callable
    E(x, t) -> (d,); ``band`` is the trajectory's integer band index (0 where a χ0 was given).
    A method without a stop condition runs to t1 and can run a batch as one ODE
    (``ensemble="shared"``); see ``AbstractAdiabaticMethod`` for one that stops.
    """

    name: eqx.AbstractClassVar[str]

    def default_solver(self, n_bands: int) -> diffrax.AbstractSolver:
        """The diffrax solver ``evolve`` uses on an ``n_bands`` model when none is given (here
        ``diffrax.Tsit5()``)."""
        return diffrax.Tsit5()

    @abc.abstractmethod
    def active_bands(self, n_bands: int) -> tuple[int, int]:
        """[start, stop): the bands followed in an n-band model. ``band`` must lie there and a
        given χ0 in their span; raise ``ValueError`` if they do not fit the model."""

    @abc.abstractmethod
    def initial_band(self, band: Optional[Any], chi0: Optional[Any]) -> Optional[Any]:
        """The band index (int or (...) integer array) whose eigenstate at (x0, k0) starts the run,
        from ``evolve``'s ``band`` and ``chi0`` (None where not given); None to start from ``chi0``.
        Raise ``ValueError`` for arguments the method cannot take."""

    @abc.abstractmethod
    def init(self, model, x0: jax.Array, k0: jax.Array, chi0: jax.Array) -> Any:
        """The initial state, a PyTree with at least ``"x"`` (d,) and ``"k"`` (d,), from the
        centre x0 (d,), k0 (d,) and the normalised band state χ0 (n,) in the orbital basis."""

    @abc.abstractmethod
    def rhs(self, t: jax.Array, y: Any, args: tuple) -> Any:
        """dy/dt (per fs) at time t of the state y, with ``args = (model, field, band)``."""

    @abc.abstractmethod
    def observe(self, model, y: Any, t: jax.Array, field, band: jax.Array) -> dict:
        """The saved observables of state y at time t: ``"chi"`` (n,) band state in the orbital
        basis, ``"populations"`` (n,) in the instantaneous eigenbasis, ``"energy"`` ⟨χ|𝓗|χ⟩ (eV),
        ``"gap"`` (eV) and ``"epsilon"`` (Eq. 37), the last two scalars or None."""


class AbstractAdiabaticMethod(AbstractMethod):
    """A method that follows active bands separated from the remote ones: the run stops
    (``Result.gap_closed``) where ``gap`` falls below ``evolve``'s ``gap_tol``."""

    @abc.abstractmethod
    def gap(self, model, y: Any, band: jax.Array) -> jax.Array:
        """The gap (eV, scalar) between the active and the remote bands at state y."""
