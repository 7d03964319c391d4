"""k-point grids with integration weights that include 1/(2π)^d (the public ``js.kgrid`` names;
the code lives in ``jaxsemi.kspace``).

A ``KGrid`` holds ``points`` (N, d) in 1/Å and ``weights`` (N,) such that
Σ_i w_i f(k_i) ≈ ∫ dᵈk/(2π)ᵈ f(k).
"""

from .kspace import AbstractGrid as AbstractGrid
from .kspace import Domain as Domain
from .kspace import KGrid as KGrid
from .kspace import LatticeGrid as LatticeGrid
from .kspace import brillouin_zone as brillouin_zone
from .kspace import bz_domain as bz_domain
from .kspace import disk as disk
from .kspace import disk_domain as disk_domain
from .kspace import line as line
from .kspace import reciprocal as reciprocal
