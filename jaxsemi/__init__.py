"""jaxsemi: differentiable semiclassical wavepacket transport in crystals (JAX).

Units: eV, Å, fs, e = 1 (see ``jaxsemi.units``). float64 is switched on at import
(``jax_enable_x64``); set the environment variable ``JAXSEMI_X64=0`` before importing to keep
JAX's float32 default — jaxsemi then warns, because Berry curvatures at small gaps and
finite-difference checks need double precision.
"""

import os as _os
import warnings as _warnings

import jax as _jax

from ._xla_flags import add_cpu_flags as _add_cpu_flags

_add_cpu_flags()  # before anything starts the backend (``_xla_flags``)
if _os.environ.get("JAXSEMI_X64", "1") != "0":
    _jax.config.update("jax_enable_x64", True)
else:
    _warnings.warn(
        "jaxsemi is running in float32 (JAXSEMI_X64=0): Berry curvatures near small gaps, "
        "Chern numbers and gradient checks lose accuracy.",
        stacklevel=2,
    )

from . import distributed as distributed
from . import fit as fit
from . import kgrid as kgrid
from . import kspace as kspace
from . import models as models
from . import plot as plot
from . import transport as transport
from . import units as units
from . import wavepacket as wavepacket
from ._geometry import berry_connection as berry_connection
from ._geometry import berry_curvature as berry_curvature
from ._geometry import eigh as eigh
from ._geometry import force_matrix as force_matrix
from ._geometry import nonabelian_curvature as nonabelian_curvature
from ._geometry import velocity_matrix as velocity_matrix
from .kspace import AdaptiveResult as AdaptiveResult
from ._checks import ConvergenceWarning as ConvergenceWarning
from .kspace import integrate_adaptive as integrate_adaptive
from ._hall import hall_conductivity as hall_conductivity
from ._hall import hall_conductivity_adaptive as hall_conductivity_adaptive
from .kspace import integrate as integrate
from ._model import Model as Model
from ._model import bind as bind
from ._statistics import fermi as fermi
from ._topology import ChernWarning as ChernWarning
from ._topology import chern_number as chern_number
from ._sharding import SharedCoresWarning as SharedCoresWarning
from ._sharding import set_devices as set_devices
from ._threads import limit_blas_threads as limit_blas_threads
from .kgrid import KGrid as KGrid
from .kgrid import LatticeGrid as LatticeGrid

__version__ = "0.1.0"
