"""Active-manifold dynamics (Eqs. 34 and 42), gauge-free with projectors.

P(x, k) = Σ_{n∈a} |u_n⟩⟨u_n| projects on the active bands a = [start, stop). The band
pseudospin is kept as χ ∈ range(P) in the orbital basis and moved by Kato's adiabatic
(parallel-transport) generator, the gauge-free form of Eq. 34:

    χ̇ = −(i/ħ) P𝓗P χ + [Ṗ, P] χ,    Ṗ = Σ_β (∂P/∂x_β) ẋ_β + (∂P/∂k_β) k̇_β.

[Ṗ, P] is anti-Hermitian and maps range(P(t)) to range(P(t + dt)): the norm is kept and χ
never leaves the manifold; inside it only 𝓗 acts (intra-manifold transitions to all orders).
∂P comes from the resolvent, divided only by the inter-manifold gap:

    ∂P = Σ_{n∈a, l∉a} |u_l⟩⟨u_l|∂𝓗|u_n⟩⟨u_n| / (ε_n − ε_l) + h.c.

The centre of mass follows Eq. 42: the 2d×2d system of ``jaxsemi._eom.centre_of_mass_rates`` with
v = ⟨χ|∂𝓗/∂ħk|χ⟩, ⟨∂𝓗/∂x⟩ and ⟨χ|𝓕̂|χ⟩, where 𝓕̂^{αβ} = iP[∂_αP, ∂_βP]P is the remote-band
non-Abelian curvature of Eq. 40, evaluated with ``_geometry.nonabelian_curvature_block`` on
the manifold's components of χ (covariant matrix × covariant vector: gauge-free).
"""

from __future__ import annotations

from typing import ClassVar, Optional

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .. import _checks
from .._eigh import manifold_gap
from .._eom import centre_of_mass_rates
from .._geometry import nonabelian_curvature_block, point_geometry
from ..units import HBAR
from ._eom import adiabaticity, field_at
from ._full import expect, pack, unpack
from ._method import AbstractAdiabaticMethod


class Manifold(AbstractAdiabaticMethod):
    """Eqs. 34 + 42 on an active manifold (alias ``method="manifold"`` with ``bands=``).

    Args:
        bands: the active bands, a band index or a contiguous increasing sequence of them
            (ascending energies); default all bands of the model.

    Starts from ``chi0`` (in the manifold's span at (x0, k0)) or the eigenstate ``band``
    (default: the manifold's lowest band); stops where the manifold's gap to the other bands
    closes. Saves the gap (eV) and ε of Eq. 37. Default solver: ``js.wavepacket.Magnus4()``,
    unitary exponential steps with the Kato Hamiltonian, for two-band models, ``diffrax.Tsit5()``
    beyond (a Magnus4 step there costs ~10 Tsit5 steps at n = 4; fewer steps on long sweeps; ``solver=``
    picks either; docs/conventions.md §11).
    """

    bands: Optional[tuple[int, ...]] = eqx.field(static=True)
    name: ClassVar[str] = "manifold"

    def __init__(self, bands=None):
        self.bands = None if bands is None else tuple(np.atleast_1d(np.asarray(bands)).tolist())

    def default_solver(self, n_bands):
        from ._magnus import default_solver  # _magnus builds on this module

        return default_solver(n_bands)

    def active_bands(self, n_bands):
        return _checks.band_slice(range(n_bands) if self.bands is None else self.bands, n_bands)

    def initial_band(self, band, chi0):
        if band is None and chi0 is None:
            return (self.bands or (0,))[0]
        return band

    def active_mask(self, n):
        """(n,) bool: which of the n bands (ascending energies) are active."""
        start, stop = self.active_bands(n)
        i = jnp.arange(n)
        return (i >= start) & (i < stop)

    def init(self, model, x0, k0, chi0):
        start, stop = self.active_bands(model.n_bands)
        u = point_geometry(model, k0, x0, False).states[:, start:stop]
        chi = (u @ jnp.conj(u.T)) @ chi0  # the projection on the manifold
        return {"x": x0, "k": k0, "chi": pack(chi / jnp.linalg.norm(chi))}

    def node(self, model, x, k):
        """What does not depend on χ at (x, k): the eigen-geometry and the remote-band curvature
        blocks 𝓕^{k k}, 𝓕^{k x}, 𝓕^{x k}, 𝓕^{x x} (m, m, d, d) of the manifold (m bands)."""
        start, stop = self.active_bands(model.n_bands)
        geo = point_geometry(model, k, x, True)
        blocks = tuple(nonabelian_curvature_block(geo.energies, a, b, start, stop)
                       for a, b in ((geo.dk, geo.dk), (geo.dk, geo.dx), (geo.dx, geo.dk), (geo.dx, geo.dx)))
        return geo, blocks

    def centre(self, node, chi, e_field):
        """η = U†χ (n,) and the Eq. 42 rates ẋ (d,) Å/fs, k̇ (d,) 1/(Å·fs) at a ``node``."""
        (geo, blocks), (start, stop) = node, self.active_bands(node[0].energies.shape[0])
        eta = jnp.conj(geo.states.T) @ chi  # components in the eigenbasis
        eta_a = eta[start:stop]
        xdot, kdot = centre_of_mass_rates(
            expect(eta, geo.dk) / HBAR, expect(eta, geo.dx),
            *(jnp.real(jnp.einsum("n,nmab,m->ab", jnp.conj(eta_a), f, eta_a)) for f in blocks), e_field)
        return eta, xdot, kdot

    def kato(self, geo, xdot, kdot):
        """U†ṖU (n, n): the projector's rate in the eigenbasis, from the resolvent factor
        (a_j − a_i)/(ε_j − ε_i), nonzero only across the manifold edge."""
        w = geo.energies
        act = self.active_mask(w.shape[0]).astype(w.dtype)
        cross = act[None, :] - act[:, None]
        diff = w[None, :] - w[:, None]
        s = jnp.where(cross != 0, cross / jnp.where(cross != 0, diff, 1.0), 0.0)
        return s * (jnp.einsum("a,anm->nm", xdot, geo.dx) + jnp.einsum("a,anm->nm", kdot, geo.dk))

    def _rates(self, model, x, k, chi, e_field):
        node = self.node(model, x, k)
        return (node[0],) + self.centre(node, chi, e_field)

    def rhs(self, t, y, args):
        model, field, _ = args
        x, k, chi = y["x"], y["k"], unpack(y["chi"])
        geo, eta, xdot, kdot = self._rates(model, x, k, chi, field_at(field, x, t))
        w = geo.energies
        act = self.active_mask(w.shape[0]).astype(w.dtype)
        pdot = self.kato(geo, xdot, kdot)
        eta_dot = -1j / HBAR * w * act * eta + pdot @ (act * eta) - act * (pdot @ eta)
        return {"x": xdot, "k": kdot, "chi": pack(geo.states @ eta_dot)}

    def gap(self, model, y, band):
        w = point_geometry(model, y["k"], y["x"], False).energies
        return manifold_gap(w, *self.active_bands(model.n_bands))

    def observe(self, model, y, t, field, band):
        chi = unpack(y["chi"])
        geo, eta, xdot, kdot = self._rates(model, y["x"], y["k"], chi, field_at(field, y["x"], t))
        pops = jnp.abs(eta) ** 2
        active = self.active_mask(model.n_bands)
        return {
            "chi": chi,
            "populations": pops,
            "energy": jnp.dot(geo.energies, pops),
            "gap": manifold_gap(geo.energies, *self.active_bands(model.n_bands)),
            "epsilon": adiabaticity(geo.energies, geo.dk, geo.dx, xdot, kdot, active),
        }
