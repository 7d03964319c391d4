"""Semiclassical wavepacket dynamics (paper Sec. II): one entry point, three methods.

``evolve(model, x0, k0, t1, field, chi0=None, band=None, method=..., bands=None, saveat=...)``
integrates from t = 0 to t1 (fs) with diffrax and returns a ``Trajectory``:

* ``"full"`` — Eqs. 19–21 with Eq. 10: (x, k, χ), χ in the orbital basis, no eigenbasis;
* ``"manifold"`` — Eqs. 34 and 42 on an active manifold, gauge-free with projectors;
* ``"abelian"`` — Eq. 43 for one band with all four Berry curvatures.

A batch runs vmapped (``ensemble="vmap"``, one adaptive solve per trajectory) or, for "full",
as one ODE with one shared step sequence (``ensemble="shared"``, faster for large ensembles).

Units: x in Å, k in 1/Å, t in fs, E in V/Å, energies in eV; electrons (charge −e, e = 1), so
ħk̇ = −E − ⟨∂𝓗/∂x⟩ and ⟨χ|𝓗|χ⟩ + E·x is conserved in a uniform static field.
"""

from ._evolve import evolve as evolve
from ._trajectory import Result as Result
from ._trajectory import Trajectory as Trajectory
