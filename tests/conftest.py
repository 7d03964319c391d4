"""Shared test set-up: float64, a CPU scheduler flag against batched-LAPACK stalls, fixtures."""

import os

# jaxlib 0.10.2 on 2 cores has stalled in programs with several batched LAPACK calls;
# this flag cured a reproducer. Must be set before jax is imported.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_enable_concurrency_optimized_scheduler=false")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jaxsemi as js  # noqa: E402


@pytest.fixture(scope="session")
def dirac():
    """A gapped Dirac valley: v = 1 eV·Å, Δ = 0.1 eV."""
    return js.models.massive_dirac(1.0, 0.1)


@pytest.fixture(scope="session")
def haldane_topological():
    return js.models.haldane(1.0, 0.1, 1.2, 0.2)
