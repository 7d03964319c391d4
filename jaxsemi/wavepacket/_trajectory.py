"""``Trajectory``: the saved wavepacket path, its band state and how the solve ended."""

from __future__ import annotations

from typing import Optional

import equinox as eqx
import jax
import jax.numpy as jnp


class Result(eqx.Enumeration):
    """How one wavepacket integration ended (vmappable: one code per batch element)."""

    successful = ""
    max_steps_reached = (
        "the solver step budget ran out before t1: raise `max_steps` (or loosen the "
        "step-size controller's tolerances)"
    )
    gap_closed = (
        "the gap between the active bands and the remote bands fell below `gap_tol` along the "
        "trajectory: the integration stopped there (see Trajectory.t_end, x_end, k_end); "
        "use method='full' or a larger manifold"
    )
    failed = "the ODE solver failed (step size underflow or non-finite values)"


class Trajectory(eqx.Module):
    """A wavepacket trajectory; leading axes ``...`` are the batch shape of the inputs.

    Attributes:
        t: (..., T) save times in fs (``inf`` for save times after an early stop).
        x: (..., T, d) centre position in Å.
        k: (..., T, d) crystal momentum in 1/Å.
        chi: (..., T, n) band state in the orbital basis (for ``"abelian"`` the band's
            eigenvector, in the eigen-solver's gauge).
        populations: (..., T, n) |⟨u_n|χ⟩|² in the instantaneous eigenbasis (ascending bands).
        energy: (..., T) ⟨χ|𝓗|χ⟩ in eV (without the potential energy of the field; for a
            uniform static field ``energy + E·x`` is conserved, e = 1).
        gap: (..., T) eV, gap between the active bands and the others (``None`` for "full").
        epsilon: (..., T) the adiabaticity parameter ε of Eq. 37, max over active m and
            remote l of |ħ[K]_lm / (ε_l − ε_m)| (``None`` for "full"); the manifold and
            Abelian equations hold for ε ≪ 1.
        t_end, x_end, k_end: where the integration stopped: t1, or where ``result`` says
            it had to stop (gap closing, step budget).
        result: a ``Result`` code per trajectory.
        stats: solver statistics (``num_steps``, ``num_accepted_steps``, ``num_rejected_steps``).
        method: the method's name: "full", "manifold", "abelian" or a user method's ``name``.
    """

    t: jax.Array
    x: jax.Array
    k: jax.Array
    chi: jax.Array
    populations: jax.Array
    energy: jax.Array
    gap: Optional[jax.Array]
    epsilon: Optional[jax.Array]
    t_end: jax.Array
    x_end: jax.Array
    k_end: jax.Array
    result: Result
    stats: dict
    method: str = eqx.field(static=True)

    @property
    def norm(self) -> jax.Array:
        """(..., T) ⟨χ|χ⟩ (1 up to the solver's error)."""
        return jnp.sum(jnp.abs(self.chi) ** 2, axis=-1)

    @property
    def succeeded(self) -> jax.Array:
        """(...) True where the integration reached t1."""
        return self.result == Result.successful

    def __str__(self) -> str:
        batch = self.t.shape[:-1]
        return (
            f"Trajectory(method={self.method!r}, batch={batch}, saves={self.t.shape[-1]}, "
            f"bands={self.chi.shape[-1]}, steps={jnp.max(self.stats['num_steps'])}, "
            f"succeeded={int(jnp.sum(self.succeeded))}/{int(jnp.size(self.succeeded.astype(int)))})"
        )
