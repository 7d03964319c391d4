"""``import jaxsemi`` keeps small reductions out of YNNPACK (``jaxsemi._xla_flags``), unless the user
chose otherwise or a backend already runs. Each case is a fresh process: XLA reads its flags once."""

import os
import subprocess
import sys

import pytest

# compiles a reduction over a short axis (a d-vector's |d|²) and reports whether YNNPACK got it
PROBE = """
import os, sys
{before}
import jaxsemi, jax, jax.numpy as jnp
text = jax.jit(lambda a: jnp.sum(a * a, axis=0)).lower(jnp.ones((3, 4096))).compile().as_text()
print(os.environ.get("XLA_FLAGS", ""), "|", "__ynn_fusion" in text)
"""


def _probe(flags=None, before=""):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if flags is not None:
        env["XLA_FLAGS"] = flags
    env["JAX_PLATFORMS"] = "cpu"
    out = subprocess.run([sys.executable, "-c", PROBE.format(before=before)], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.strip().splitlines()[-1]
    flags_seen, ynn = out.split("|")
    return flags_seen.strip(), ynn.strip() == "True"


@pytest.mark.timeout(300)
def test_reductions_stay_in_xla_unless_the_user_sets_the_option():
    flags, ynn = _probe()
    assert flags == "--xla_cpu_experimental_ynn_fusion_type=-reduce" and not ynn
    # other flags are kept
    flags, ynn = _probe("--xla_cpu_enable_concurrency_optimized_scheduler=false")
    assert flags.split() == ["--xla_cpu_enable_concurrency_optimized_scheduler=false",
                             "--xla_cpu_experimental_ynn_fusion_type=-reduce"] and not ynn
    # the user's own choice wins — and shows the option matters: YNNPACK then takes the reduction
    flags, ynn = _probe("--xla_cpu_experimental_ynn_fusion_type=+reduce")
    assert flags == "--xla_cpu_experimental_ynn_fusion_type=+reduce" and ynn
    # a backend started before jaxsemi was imported: the flags are left alone (they could not act)
    flags, ynn = _probe(before="import jax; jax.numpy.ones(1).block_until_ready()")
    assert flags == "" and ynn
