"""Shared test set-up: float64, a CPU scheduler flag against batched-LAPACK stalls, a
``pytest.approx`` that refuses JAX arrays, fixtures."""

import os

# jaxlib 0.10.2 on 2 cores has stalled in programs with several batched LAPACK calls;
# this flag cured a reproducer. Must be set before jax is imported.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_enable_concurrency_optimized_scheduler=false")

import functools  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)


def _refuse_jax(value):
    if any(isinstance(leaf, jax.Array) for leaf in jax.tree_util.tree_leaves(value)):
        raise TypeError("pytest.approx with a JAX array: compare float(x) or np.asarray(x) "
                        "(pytest >= 9.2 fails on JAX arrays with rel=/abs=)")


@functools.cache
def _guarded(cls):
    def __eq__(self, actual):
        _refuse_jax(actual)
        return cls.__eq__(self, actual)

    return type(cls.__name__, (cls,), {"__eq__": __eq__, "__hash__": None})


def _approx_without_jax(expected, *args, **kwargs):
    """``pytest.approx`` that refuses JAX arrays on either side of the comparison."""
    _refuse_jax(expected)
    approx = _approx(expected, *args, **kwargs)
    approx.__class__ = _guarded(type(approx))
    return approx


_approx, pytest.approx = pytest.approx, _approx_without_jax

import jaxsemi as js  # noqa: E402


@pytest.fixture(scope="session")
def dirac():
    """A gapped Dirac valley: v = 1 eV·Å, Δ = 0.1 eV."""
    return js.models.massive_dirac(1.0, 0.1)


@pytest.fixture(scope="session")
def haldane_topological():
    return js.models.haldane(1.0, 0.1, 1.2, 0.2)


@pytest.fixture(autouse=True, scope="module")
def _fresh_compile_caches():
    """Drop compiled programs after each test module: one pytest process compiles hundreds of
    programs, and a full run once crashed inside XLA's CPU compiler at 81 % (segmentation fault in
    ``backend_compile_and_load``) on a test that passes on its own; modules share no programs."""
    yield
    jax.clear_caches()
    gc.collect()


def _run_on_cpu_devices(code: str, n_devices: int = 1, timeout: int = 300) -> dict:
    """Run ``code`` in a fresh Python on ``n_devices`` host-platform CPU devices and return the JSON
    object its last output line prints. ``JAX_PLATFORMS=cpu``: on a GPU machine the default
    backend would otherwise be the GPUs, and the device count would not be ``n_devices``."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={n_devices}".strip()
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                         timeout=timeout, cwd=pathlib.Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def run_on_cpu_devices():
    """``run(code, n_devices=1, timeout=300) -> dict``: ``code`` in a fresh Python on fake CPU devices."""
    return _run_on_cpu_devices
