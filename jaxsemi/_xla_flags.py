"""XLA:CPU flag jaxsemi adds at import, before JAX starts its backend.

jaxlib 0.10.2 hands small reductions — jaxsemi's sums over 2–8 bands and over the three
components of a d-vector — to YNNPACK ("ynn_fusion" kernels), which run them several times
slower than XLA's own loop fusions. Measured on the project's 2-core CPU (A/B, same code, back to back):
σ_xy of the Haldane model on a 300² grid 17.7 → 10.3 ms, χ = ∂²J/∂E² of a tilted Dirac cone
with ``relaxation="exact"`` 68 → 18 ms. ``--xla_cpu_experimental_ynn_fusion_type=-reduce``
keeps reductions in XLA (other YNNPACK fusions are untouched); the whole A/B is in
``benchmarks/results/ynn_reduce/``.

Added to ``XLA_FLAGS`` only for the jaxlib it was tested with (XLA aborts on a flag it does not
know), only if ``XLA_FLAGS`` does not already set that option (set it yourself to override), and
only if no JAX backend has started yet (later it would have no effect, so nothing is changed).
"""

from __future__ import annotations

import os
from importlib import metadata

#: The flag and the jaxlib versions it is known to exist in.
YNN_REDUCE_OFF = "--xla_cpu_experimental_ynn_fusion_type=-reduce"
TESTED_JAXLIB = ("0.10.2",)


def add_cpu_flags() -> bool:
    """Append ``YNN_REDUCE_OFF`` to ``XLA_FLAGS`` where that is safe; True if it was added."""
    from jax._src import xla_bridge

    flags = os.environ.get("XLA_FLAGS", "")
    try:
        jaxlib = metadata.version("jaxlib")
    except metadata.PackageNotFoundError:
        return False
    if (jaxlib not in TESTED_JAXLIB or "xla_cpu_experimental_ynn_fusion_type" in flags
            or xla_bridge.backends_are_initialized()):
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {YNN_REDUCE_OFF}".strip()
    return True
