"""Transport theories as objects: ``AbstractTheory`` and the paper's three, ``SSCT``,
``NonAbelian`` and ``NonAdiabatic`` (aliases ``theory="ssct" | "nonabelian" | "nonadiabatic"``).

A theory gives ``current`` its per-k integrand and its per-k validity numbers; ``current``
sums the integrand over the grid (chunked, sharded, differentiable), maximises the numbers in the
same pass, and warns where a maximum breaks its limit (``_limits.LIMITS``).
"""

from __future__ import annotations

import abc
from typing import ClassVar, Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks
from .._geometry import band_energies, point_geometry, two_band_jet
from ._phase_space import ssct_density, two_band_density
from ._limits import manifold_limits, transition_limits
from ._nonabelian import nonabelian_current
from ._nonadiabatic import nonadiabatic_current
from ._relaxation import chambers_occupation, characteristic_occupation
from ._ssct import band_motion, ssct_current, two_band_motion


class AbstractTheory(eqx.Module):
    """A transport theory for ``js.transport.current(..., theory=...)``, like diffrax's solvers.

    A subclass is a final ``eqx.Module`` that sets the class variable ``name`` (used in
    messages) and implements ``integrand`` and ``validity``. Both get the model, one k-point
    (d,) in 1/Å and the validated inputs ``s`` of the call, with B the flattened batch:

    * ``s.fields`` (B, d) E in V/Å; ``s.mu``, ``s.tau``, ``s.kT`` (B,) in eV, fs, eV;
    * ``s.x`` (d,) the position in Å; ``s.textured`` whether 𝓗 depends on x;
    * ``s.relaxation`` (``"first_order"`` | ``"exact"``) and ``s.density`` (bool), the options
      ``relaxation`` and ``phase_space_density`` of ``current`` — accepted only where the
      class variables ``exact_relaxation`` / ``phase_space_density`` are True (default False;
      ``"exact"`` with a texture only where ``exact_relaxation_textured`` is True too);
      ``s.nodes`` the Gauss–Laguerre nodes of ``"exact"`` and ``s.step`` its characteristics' RK4 step
      (``Exact.characteristic_step``); ``s.lattices`` a two-band lattice model's k-independent tables of
      ``"exact"`` (``_relaxation.lattice_tables``), computed once per call, or None.

    Units: e = 1, electrons carry −e; J = Σ_k w_k j(k) over the grid weights w_k (1/Å^d).
    Array fields of a theory are traced like the model's parameters (jit, vmap, grad); the
    integrand must be differentiable in ``s.fields`` for ``conductivity``, which takes ∂ⁿj/∂Eⁿ per k by
    nested ``jacfwd``, or by one nested jvp per distinct index tuple where the class variable
    ``symmetric_field_derivatives`` is True and the grid is one chunk per device (the same numbers; faster where
    XLA shares their lower terms, which it does not across a loop over chunks).
    """

    name: eqx.AbstractClassVar[str]
    symmetric_field_derivatives: ClassVar[bool] = False
    exact_relaxation: ClassVar[bool] = False
    exact_relaxation_textured: ClassVar[bool] = False
    phase_space_density: ClassVar[bool] = False

    @abc.abstractmethod
    def integrand(self, model, k: jax.Array, s) -> jax.Array:
        """The current integrand j(k) (B, d) in e·Å/fs (J = Σ_k w_k j(k) in e/(fs·Å^{d−1}))."""

    @abc.abstractmethod
    def validity(self, model, k: jax.Array, s) -> dict:
        """The validity numbers at k, a dict of scalars, each maximised over the grid and compared
        with its threshold: any of ``"field"``, ``"texture"`` (Eq. 37), ``"occupation"`` (max|δf|),
        ``"characteristic"`` (the exact steady state's error estimate along a texture's characteristics),
        ``"inverse_intra_gap"`` (1/eV), ``"spread"`` (eV), ``"unfilled"`` (see ``_limits``); {} for none."""

    def integrand_and_validity(self, model, k: jax.Array, s) -> tuple[jax.Array, dict]:
        """``integrand`` and ``validity`` at k together: ``current`` with ``check=True`` sums the one and
        maximises the other in one pass over the grid. Default: the two methods (XLA merges work
        they repeat only where it can prove it equal); override it to share the eigen-decomposition."""
        return self.integrand(model, k, s), self.validity(model, k, s)

    def check(self, model) -> None:
        """Raise ``ValueError`` for a model the theory cannot take (before tracing). Default: none."""

    def fermi_surface(self, n_bands: int) -> bool:
        """Whether the current has relaxation-time (Fermi-surface) terms, which need kT > 0 eV
        where τ ≠ 0 (kT = 0 would silently drop them). Default True."""
        return True

    def linear_response(self) -> "AbstractTheory":
        """A theory with the same ∂J/∂E at E = 0 in a uniform system, cheaper to differentiate;
        ``conductivity(order=1)`` at E = 0 without a texture evaluates that one. Default: itself."""
        return self


def _ssct_part(model, k, s, start: int, stop: int, geo=None, check: bool = False):
    """SSCT currents (Eq. 47) of the bands outside [start, stop) (B, d), their max|δf| (B,), the point data of
    their validity numbers (``transition_limits``): a two-band model's ``TwoBandJet`` (closed form from the
    d-vector, no eigen-solver), else the point geometry ``geo`` (computed here where None) — and, with ``check``,
    the validity numbers of the exact steady state's characteristics ({"characteristic": error estimate} or {})."""
    n = model.n_bands
    outside = (jnp.arange(n) < start) | (jnp.arange(n) >= stop)
    density = None
    if n == 2:
        point = two_band_jet(model, k, s.x, s.textured)
        energies, motion, omega = two_band_motion(point, s.fields)
        if s.density and s.textured:
            density = two_band_density(omega)
    else:
        point = point_geometry(model, k, s.x, s.textured) if geo is None else geo
        energies, motion = point.energies, band_motion(point, s.fields)
        if s.density and s.textured:
            density = ssct_density(point)
    exact = s.relaxation == "exact"
    occupation, limits = None, {}
    if exact and s.textured:  # along the backward characteristics of Eq. 43
        occupation = characteristic_occupation(model, k, s.x, energies, s.fields, s.mu, s.tau, s.kT, s.nodes,
                                               s.step, check)
        if check:
            occupation, error = occupation
            limits = {"characteristic": jnp.max(jnp.where(outside[None], error, 0.0))}
    elif exact:
        occupation = chambers_occupation(model, k, s.x, s.fields, s.mu, s.tau, s.kT, s.nodes, s.lattices)
    j, dmax = ssct_current(energies, motion, s.fields, s.mu, s.tau, s.kT, outside, occupation, density)
    # the exact f stays in [0, 1]: the linearisation limit (``occupation``) does not apply
    return j, jnp.zeros_like(dmax) if exact else dmax, point, limits


class SSCT(AbstractTheory):
    """Single-band semiclassical transport, Eqs. 43 and 46–47: every band on its own (alias
    ``theory="ssct"``). Takes ``relaxation="exact"`` (with a texture along the backward
    characteristics of Eq. 43) and ``phase_space_density``."""

    name: ClassVar[str] = "ssct"
    # tilted cone, 200×64 disk, χ at a field: 4.0 vs 5.6 ms exact, equal first order; jacfwd is faster for the
    # non-adiabatic theory (its exact χ at a field 21 vs 32 ms), whose tuples' fusions each recompute the tanh
    symmetric_field_derivatives: ClassVar[bool] = True
    exact_relaxation: ClassVar[bool] = True
    exact_relaxation_textured: ClassVar[bool] = True
    phase_space_density: ClassVar[bool] = True

    def integrand(self, model, k, s):
        return _ssct_part(model, k, s, 0, 0)[0]

    def integrand_and_validity(self, model, k, s):
        j, dmax, point, limits = _ssct_part(model, k, s, 0, 0, check=True)
        return j, {**transition_limits(point, s.fields, s.mu, s.kT, 0, 0), "occupation": jnp.max(dmax), **limits}

    def validity(self, model, k, s):
        return self.integrand_and_validity(model, k, s)[1]


class _Manifold(AbstractTheory):
    """A theory of the active manifold ``bands`` (None: all); the other bands get SSCT currents."""

    bands: Optional[tuple[int, ...]] = eqx.field(static=True)
    _own_limits: eqx.AbstractClassVar[tuple[str, ...]]  # its keys of ``_limits.manifold_limits``

    def __init__(self, bands=None):
        self.bands = None if bands is None else tuple(np.atleast_1d(np.asarray(bands)).tolist())

    def active_bands(self, n_bands: int) -> tuple[int, int]:
        """[start, stop) of the manifold in an n-band model (``ValueError`` if it does not fit)."""
        return (0, n_bands) if self.bands is None else _checks.band_slice(self.bands, n_bands)

    def check(self, model):
        self.active_bands(model.n_bands)

    @abc.abstractmethod
    def _manifold(self, model, k, s, start, stop):
        """The manifold's current (B, d), max|δg| (B,) and the point geometry (None where the manifold is
        every band of a two-band model, in closed form)."""

    def _parts(self, model, k, s, check: bool = False):
        start, stop = self.active_bands(model.n_bands)
        j, dmax, geo = self._manifold(model, k, s, start, stop)
        limits = {}
        if stop - start < model.n_bands:
            j_out, d_out, _, limits = _ssct_part(model, k, s, start, stop, geo, check)
            j, dmax = j + j_out, jnp.maximum(dmax, d_out)
        return j, dmax, geo, start, stop, limits

    def integrand(self, model, k, s):
        return self._parts(model, k, s)[0]

    def integrand_and_validity(self, model, k, s):
        j, dmax, geo, start, stop, outside = self._parts(model, k, s, check=True)
        limits = {"occupation": jnp.max(dmax), **outside}
        if geo is None:  # every band of a two-band model in the manifold: no pair outside it, one gap
            energies = jnp.hstack(band_energies(model, k, s.x))
        else:
            energies = geo.energies
            limits.update(transition_limits(geo, s.fields, s.mu, s.kT, start, stop))
        own = manifold_limits(energies, s.mu, s.kT, start, stop)
        return j, {**limits, **{key: own[key] for key in self._own_limits}}

    def validity(self, model, k, s):
        return self.integrand_and_validity(model, k, s)[1]


class NonAbelian(_Manifold):
    """A fully occupied, degenerate manifold, Eqs. 52–53 (alias ``theory="nonabelian"``). Takes
    ``relaxation="exact"``: the filled manifold's occupation is 1 whatever the relaxation, so it
    changes only the SSCT bands outside the manifold.

    Args:
        bands: the manifold, a band index or a contiguous increasing sequence; None = all bands.
            The bands outside it get SSCT currents. Warns where the manifold is not degenerate
            or not filled on the grid.
    """

    name: ClassVar[str] = "nonabelian"
    exact_relaxation: ClassVar[bool] = True
    exact_relaxation_textured: ClassVar[bool] = True
    _own_limits: ClassVar[tuple[str, ...]] = ("spread", "unfilled")

    def _manifold(self, model, k, s, start, stop):
        geo = point_geometry(model, k, s.x, s.textured)
        return nonabelian_current(geo, s.fields, start, stop), jnp.zeros_like(s.mu), geo

    def fermi_surface(self, n_bands):
        start, stop = self.active_bands(n_bands)
        return stop - start < n_bands  # a filled manifold has no Fermi surface; the SSCT bands do


class NonAdiabatic(_Manifold):
    """Hybridised bands of the manifold, Eqs. 54–63, all orders in E inside it (alias
    ``theory="nonadiabatic"``). Takes ``phase_space_density`` and, in a uniform system,
    ``relaxation="exact"``: g_i = ∫(ds/τ)e^{−s/τ} g⁰(𝓔_i(k + eEs/ħ; E)) over the field-dressed bands.

    Args:
        bands: the manifold, a band index or a contiguous increasing sequence; None = all bands.
            The bands outside it get SSCT currents.
    """

    name: ClassVar[str] = "nonadiabatic"
    _own_limits: ClassVar[tuple[str, ...]] = ("inverse_intra_gap",)
    phase_space_density: ClassVar[bool] = True
    exact_relaxation: ClassVar[bool] = True

    def linear_response(self):
        """``SSCT()``: without a texture Eq. 61's hybridisation moves the energies 𝓔_i at O(E²) only
        (V has no diagonal), and its O(E) part of ṽ_i is the intra-manifold anomalous velocity
        (e/ħ)E×Ω_i, so at E = 0 the linear current is SSCT's term by term (Sec. III C 3) — with
        either relaxation, as g_i and f_n then differ at O(E²) too. SSCT's σ costs ~2× less
        to evaluate and to differentiate in the parameters than the forward-mode derivative of the
        non-adiabatic current (two-band tilted cone of ``jaxsemi bench``'s ``transport``, whose non-adiabatic
        theory is closed form; ~5× less to differentiate through the eigen-decompositions of the general path)."""
        return SSCT()

    def _manifold(self, model, k, s, start, stop):
        return nonadiabatic_current(model, k, s.x, s.fields, s.mu, s.tau, s.kT, start, stop, s.textured, s.density,
                                    s.nodes if s.relaxation == "exact" else None, s.one_field, s.lattices)



ALIASES = {"ssct": SSCT, "nonabelian": NonAbelian, "nonadiabatic": NonAdiabatic}


def as_theory(theory, bands) -> AbstractTheory:
    """The theory object of ``theory`` (an ``AbstractTheory`` or an alias string with ``bands``)."""
    if isinstance(theory, str) and theory in ALIASES:
        return SSCT() if theory == "ssct" else ALIASES[theory](bands)  # bands has no effect for "ssct"
    if not isinstance(theory, AbstractTheory):
        raise ValueError(f"theory must be one of {tuple(ALIASES)} or a js.transport.AbstractTheory (SSCT(), "
                         f"NonAbelian(bands), NonAdiabatic(bands)), got {theory!r}")
    if bands is not None:
        raise ValueError(f"bands is only used with a theory string (a NonAbelian / NonAdiabatic object carries "
                         f"its own bands), got theory {theory.name!r}")
    return theory
