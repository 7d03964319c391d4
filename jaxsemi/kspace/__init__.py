"""k-space: grids and adaptive-cubature domains, and the one chunked, device-sharded reduce
(sum / min / max / stack) that every k-sum of jaxsemi runs through."""

from ._adaptive import AdaptiveResult as AdaptiveResult
from ._adaptive import Domain as Domain
from ._adaptive import bz_domain as bz_domain
from ._adaptive import disk_domain as disk_domain
from ._adaptive import integrate_adaptive as integrate_adaptive
from ._reduce import default_chunk as default_chunk
from ._reduce import integrate as integrate
from ._reduce import reduce as reduce
from .grids import AbstractGrid as AbstractGrid
from .grids import KGrid as KGrid
from .grids import LatticeGrid as LatticeGrid
from .grids import brillouin_zone as brillouin_zone
from .grids import disk as disk
from .grids import line as line
from .grids import reciprocal as reciprocal
