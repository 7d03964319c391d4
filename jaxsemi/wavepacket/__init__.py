"""Semiclassical wavepacket dynamics (paper Sec. II): one entry point, method objects.

``evolve(model, x0, k0, t1, field, chi0=None, band=None, method=..., bands=None, saveat=...)``
integrates from t = 0 to t1 (fs) with diffrax and returns a ``Trajectory``. The method is an
object, the way diffrax takes ``solver=Tsit5()`` (the strings are aliases):

* ``Full()`` / ``"full"`` — Eqs. 19–21 with Eq. 10: (x, k, χ), χ in the orbital basis, no eigenbasis;
* ``Manifold(bands)`` / ``"manifold"`` — Eqs. 34 and 42 on an active manifold, gauge-free with projectors;
* ``Abelian(band)`` / ``"abelian"`` — Eq. 43 for one band with all four Berry curvatures;
* a subclass of ``AbstractMethod`` (or ``AbstractAdiabaticMethod``, which stops where a gap closes).

"full" and "manifold" integrate two-band models with ``Magnus4`` by default, a unitary fourth-order
exponential integrator whose step count follows how fast 𝓗(x(t), k(t)) changes, not the band
splitting |𝓗|/ħ (fewer steps on long sweeps; for two bands a step is a closed-form su(2) rotation
costing ~2 Tsit5 steps, more with a texture); everything else defaults to ``diffrax.Tsit5`` (a general
Magnus4 step costs ~10 Tsit5 steps for a manifold of a 4-band model, ~100 for "full"). ``solver=``
picks either; ``solver=Magnus4(phase="adiabatic")`` also integrates the drift of the two band energies
exactly, so sweeps far beyond an avoided crossing take nearly K-independent step counts (on the
Landau–Zener sweep k_x: K → −K with v = 1 eV·Å, Δ = 0.3 eV: 1.6× / 2.9× / 6.9× faster than the
default at K = 20 / 80 / 320 1/Å, 1.1–1.2× slower at K = 5 and ~2× slower on short or textured runs).

The diffrax settings (solver, step-size controller, dt0, adjoint, max_steps, progress meter) are
one ``SolverOptions``; ``default_controller(rtol, atol)`` is the default PI step-size controller at
other tolerances. Without an ``adjoint``, ``jax.grad`` in at most two real input scalars per trajectory runs
in forward mode inside the gradient rule (one Landau–Zener sweep: ∂P/∂Δ 1.3× the solve, ∂x(t1)/∂k0 2.5–3×;
50 vmapped ones ∂(ΣP)/∂Δ 1.35×), and in more through ``default_adjoint(max_steps, state_floats)``, a
``StoredStepsAdjoint`` (every step stored where the batch's states fit in 2²¹ numbers, else the first up to
1024: the backward pass then walks the forward pass's own adaptive steps without treeverse's bookkeeping,
1.3–2.5× faster than treeverse). A batch runs vmapped (``ensemble="vmap"``, one adaptive solve per
trajectory) or, for "full", as one ODE with one shared step sequence (``ensemble="shared"``,
faster for large ensembles).

Units: x in Å, k in 1/Å, t in fs, E in V/Å, energies in eV; electrons (charge −e, e = 1), so
ħk̇ = −E − ⟨∂𝓗/∂x⟩ and ⟨χ|𝓗|χ⟩ + E·x is conserved in a uniform static field.
"""

from ._abelian import Abelian as Abelian
from ._adjoint import StoredStepsAdjoint as StoredStepsAdjoint
from ._evolve import evolve as evolve
from ._full import Full as Full
from ._magnus import Magnus4 as Magnus4
from ._manifold import Manifold as Manifold
from ._method import AbstractAdiabaticMethod as AbstractAdiabaticMethod
from ._method import AbstractMethod as AbstractMethod
from ._options import SolverOptions as SolverOptions
from ._options import default_adjoint as default_adjoint
from ._options import default_controller as default_controller
from ._trajectory import Result as Result
from ._trajectory import Trajectory as Trajectory
