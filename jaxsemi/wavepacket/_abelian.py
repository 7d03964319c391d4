"""Single-band (Abelian) dynamics, Eq. 43 with all four curvatures (kk, kx, xk, xx).

ẋ and k̇ appear on both sides, so each step solves the 2d×2d system of
``jaxsemi._eom.centre_of_mass_rates`` with F → Ω_n (Eq. 44, from ``_geometry.abelian_curvature``).
State: x (d,) Å, k (d,) 1/Å.
"""

from __future__ import annotations

from typing import Any, ClassVar, Optional

import jax.numpy as jnp

from .._eigh import manifold_gap
from .._eom import centre_of_mass_rates
from .._geometry import abelian_curvature, point_geometry
from ..units import HBAR
from ._eom import adiabaticity, field_at
from ._method import AbstractAdiabaticMethod


def _rates(model, x, k, e_field, band):
    geo = point_geometry(model, k, x, True)
    w, dk, dx = geo.energies, geo.dk, geo.dx
    v = jnp.real(dk[:, band, band]) / HBAR
    dhdx = jnp.real(dx[:, band, band])
    curv = [abelian_curvature(w, a, b)[band] for a, b in ((dk, dk), (dk, dx), (dx, dk), (dx, dx))]
    xdot, kdot = centre_of_mass_rates(v, dhdx, *curv, e_field)
    return geo, xdot, kdot


class Abelian(AbstractAdiabaticMethod):
    """Eq. 43 for one band (alias ``method="abelian"``).

    Args:
        band: the band index (ascending energies), an int or a (...) integer array (one band per
            trajectory); default ``evolve``'s ``band=`` (give one of the two).

    No χ0 (the band state is the band's eigenvector); stops where the band's gap to the others
    closes. Saves the gap (eV) and ε of Eq. 37.
    """

    band: Optional[Any] = None
    name: ClassVar[str] = "abelian"

    def active_bands(self, n_bands):
        return 0, n_bands

    def initial_band(self, band, chi0):
        if chi0 is not None:
            raise ValueError("method='abelian' follows one band: give band=, not chi0")
        if band is not None and self.band is not None:
            raise ValueError("give the band as Abelian(band) or as band=, not both")
        return self.band if band is None else band

    def init(self, model, x0, k0, chi0):
        return {"x": x0, "k": k0}

    def rhs(self, t, y, args):
        model, field, band = args
        x, k = y["x"], y["k"]
        _, xdot, kdot = _rates(model, x, k, field_at(field, x, t), band)
        return {"x": xdot, "k": kdot}

    def gap(self, model, y, band):
        w = point_geometry(model, y["k"], y["x"], False).energies
        return manifold_gap(w, band, band + 1)

    def observe(self, model, y, t, field, band):
        geo, xdot, kdot = _rates(model, y["x"], y["k"], field_at(field, y["x"], t), band)
        active = jnp.arange(model.n_bands) == band
        return {
            "chi": geo.states[:, band],
            "populations": active.astype(float),
            "energy": geo.energies[band],
            "gap": manifold_gap(geo.energies, band, band + 1),
            "epsilon": adiabaticity(geo.energies, geo.dk, geo.dx, xdot, kdot, active),
        }
