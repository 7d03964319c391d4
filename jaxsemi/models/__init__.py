"""Model library: one file per family."""

from .dirac import massive_dirac as massive_dirac
from .haldane import haldane as haldane
from .qwz import qwz as qwz
from .tight_binding import tight_binding as tight_binding
from .wannier90 import from_wannier90 as from_wannier90
from .pythtb import from_pythtb as from_pythtb
