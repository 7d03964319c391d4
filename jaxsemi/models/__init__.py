"""Model library: one file per family."""

from .dirac import massive_dirac as massive_dirac
from .haldane import haldane as haldane
from .qwz import qwz as qwz
