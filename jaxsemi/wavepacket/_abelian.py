"""Single-band (Abelian) dynamics, Eq. 43 with all four curvatures (kk, kx, xk, xx).

ẋ and k̇ appear on both sides, so each step solves the 2d×2d system of
``jaxsemi._eom.centre_of_mass_rates`` with F → Ω_n (Eq. 44, from ``_geometry.abelian_curvature``).
State: x (d,) Å, k (d,) 1/Å.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp

from .._eom import centre_of_mass_rates
from .._geometry import abelian_curvature, point_geometry
from ..units import HBAR
from ._eom import active_gap, adiabaticity, field_at


def _rates(model, x, k, e_field, band):
    geo = point_geometry(model, k, x, True)
    w, dk, dx = geo.energies, geo.dk, geo.dx
    v = jnp.real(dk[:, band, band]) / HBAR
    dhdx = jnp.real(dx[:, band, band])
    curv = [abelian_curvature(w, a, b)[band] for a, b in ((dk, dk), (dk, dx), (dx, dk), (dx, dx))]
    xdot, kdot = centre_of_mass_rates(v, dhdx, *curv, e_field)
    return geo, xdot, kdot


class Abelian(eqx.Module):
    """Eq. 43 for one band (``method="abelian"``)."""

    name = "abelian"

    def init(self, model, x0, k0, chi0):
        return {"x": x0, "k": k0}

    def rhs(self, t, y, args):
        model, field, band = args
        x, k = y["x"], y["k"]
        _, xdot, kdot = _rates(model, x, k, field_at(field, x, t), band)
        return {"x": xdot, "k": kdot}

    def stop_gap(self, model, y, band):
        w = point_geometry(model, y["k"], y["x"], False).energies
        return active_gap(w, jnp.arange(model.n_bands) == band)

    def observe(self, model, y, t, field, band):
        geo, xdot, kdot = _rates(model, y["x"], y["k"], field_at(field, y["x"], t), band)
        active = jnp.arange(model.n_bands) == band
        return {
            "chi": geo.states[:, band],
            "populations": active.astype(float),
            "energy": geo.energies[band],
            "gap": active_gap(geo.energies, active),
            "epsilon": adiabaticity(geo.energies, geo.dk, geo.dx, xdot, kdot, active),
        }
