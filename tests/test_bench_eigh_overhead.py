"""The eigh-overhead benchmark (``jaxsemi.bench.eigh_overhead``): its one-core child process runs pinned to one
CPU and computes the same σ_xy as the parent. No timing is asserted."""

import os

import numpy as np
import pytest

from jaxsemi.bench import eigh_overhead


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="pinning a process needs os.sched_setaffinity")
def test_one_core_child_is_pinned_and_computes_the_same_sigma():
    here = eigh_overhead.measure(4, 6, 1, False)
    child = eigh_overhead.measure_one_core(4, 6, 1)
    assert child["cpus"] == 1 and child["cpu"] in os.sched_getaffinity(0)
    assert child["n_k"] == here["n_k"] == 36
    for report in (here, child):  # the in-program eigh is timed beside the bare one
        assert report["eigh_in_program_kpts_per_s"] > 0 and np.isfinite(report["overhead_vs_eigh_in_program"])
    assert np.max(np.abs(here["sigma_xy"])) > 1e-3  # a model with Hall response, so equality below means something
    np.testing.assert_allclose(child["sigma_xy"], here["sigma_xy"], rtol=0, atol=1e-12)
