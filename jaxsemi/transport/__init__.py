"""Semiclassical transport: currents and response tensors of a wavepacket gas (paper Sec. III).

* ``current(model, field, mu, tau, grid, *, kT, x, theory, bands)`` → J in e/(fs·Å^{d−1}), with
  ``theory`` = ``SSCT()`` (Eqs. 43, 46–47), ``NonAbelian(bands)`` (Eqs. 52–53),
  ``NonAdiabatic(bands)`` (Eqs. 54–63) — aliases ``"ssct"``, ``"nonabelian"``,
  ``"nonadiabatic"`` with ``bands=`` — or a user subclass of ``AbstractTheory`` (its per-k
  integrand and validity numbers);
* ``conductivity(model, field, mu, tau, grid, *, order=n, ...)`` → ∂ⁿJ/∂Eⁿ (no 1/n!) by
  autodiff, in e²/h·(Å/V)^{n−1};
* options ``relaxation="first_order" | "exact" | Exact(characteristic_step=...)`` (Chambers' steady state,
  ``_relaxation``) and
  ``phase_space_density`` (Liouville density D, ``_phase_space``); see ``docs/transport_orders.md``;
* ``hall_vs_field`` → σ_xy(E) = ΔJ_x/E_y in e²/h;
* ``ValidityWarning`` flags results outside the limits of the theory (see ``_limits``);
* ``trace_count()`` (diagnostics) counts traces of the k-integral: new input values must not add any.
"""

from ._current import THEORIES as THEORIES
from ._current import conductivity as conductivity
from ._current import current as current
from ._current import hall_vs_field as hall_vs_field
from ._current import trace_count as trace_count
from ._limits import ValidityWarning as ValidityWarning
from ._relaxation import Exact as Exact
from ._theory import SSCT as SSCT
from ._theory import AbstractTheory as AbstractTheory
from ._theory import NonAbelian as NonAbelian
from ._theory import NonAdiabatic as NonAdiabatic
