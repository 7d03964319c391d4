"""Full-band dynamics (Eqs. 19–21 with Eq. 10): no eigenbasis, no gauge inside the integration.

State: x (d,) Å, k (d,) 1/Å and χ (n,) in the orbital basis (stored as (2, n) real/imag).

    iħχ̇ = 𝓗(x, k)χ,   ẋ = ⟨χ|∂𝓗/∂ħk|χ⟩,   ħk̇ = −E(x, t) − ⟨χ|∂𝓗/∂x|χ⟩   (e = 1).
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp

from .._eigh import eigh
from .._geometry import hamiltonian_and_derivatives
from ..units import HBAR
from ._eom import field_at
from ._method import AbstractMethod


def pack(chi):
    return jnp.stack([jnp.real(chi), jnp.imag(chi)])


def unpack(c):
    return c[0] + 1j * c[1]


def expect(chi, ops):
    """Re ⟨χ|O_a|χ⟩ for a stack of operators (d, n, n) → (d,).

    Contractions here are broadcast products and sums, not einsum/matmul: vmapped over an
    ensemble, XLA turns those into tiny batched matrix products, ~4× slower on CPU.
    """
    return jnp.real(jnp.sum(jnp.conj(chi)[:, None] * ops * chi, axis=(-2, -1)))


def apply(h, chi):
    """h χ for an (n, n) matrix and an (n,) vector (broadcast sum, see ``expect``)."""
    return jnp.sum(h * chi, axis=-1)


class Full(AbstractMethod):
    """All bands, no eigenbasis: Eqs. 19–21 + Eq. 10 (alias ``method="full"``).

    Starts from ``chi0`` or the eigenstate ``band``; no stop condition (runs to t1). The saved
    ``gap`` and ``epsilon`` are None. Default solver: ``js.wavepacket.Magnus4()`` (unitary, a step
    count that does not follow the band splitting) for two bands, ``diffrax.Tsit5()`` (lab frame)
    beyond, where a Magnus4 step costs ~100 Tsit5 steps (``solver=`` picks either).
    """

    name: ClassVar[str] = "full"

    def default_solver(self, n_bands):
        from ._magnus import default_solver  # _magnus builds on this module

        return default_solver(n_bands)

    def active_bands(self, n_bands):
        return 0, n_bands

    def initial_band(self, band, chi0):
        return band

    def init(self, model, x0, k0, chi0):
        return {"x": x0, "k": k0, "chi": pack(chi0)}

    def rhs(self, t, y, args):
        model, field, _ = args
        x, k, chi = y["x"], y["k"], unpack(y["chi"])
        h, dk, dx = hamiltonian_and_derivatives(model, k, x, True)
        xdot = expect(chi, dk) / HBAR
        kdot = (-field_at(field, x, t) - expect(chi, dx)) / HBAR
        return {"x": xdot, "k": kdot, "chi": pack(-1j / HBAR * apply(h, chi))}

    def observe(self, model, y, t, field, band):
        chi = unpack(y["chi"])
        w, u = eigh(model.hamiltonian(y["k"], y["x"], model.params))
        pops = jnp.abs(jnp.conj(u.T) @ chi) ** 2
        return {"chi": chi, "populations": pops, "energy": jnp.dot(w, pops), "gap": None, "epsilon": None}
