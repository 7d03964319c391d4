"""``jaxsemi demo`` as a user runs it (a fresh process): every section prints, stderr stays clean."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.timeout(600)
def test_demo_stderr_has_no_xla_noise(tmp_path):
    """The batched Landau–Zener wavepackets once made XLA's algebraic simplifier log ~12
    "likely stuck in a circular simplification loop" errors (a t1 broadcast into the vmapped
    diffrax loop); the demo must print its tables and nothing of the kind."""
    run = subprocess.run([sys.executable, "-m", "jaxsemi.cli", "demo", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=540)
    assert run.returncode == 0, run.stderr[-2000:]
    for title in ("Valley Hall conductivity", "Landau–Zener", "Non-adiabatic Hall", "Fit of a massive Dirac"):
        assert title in run.stdout
    noise = [line for line in run.stderr.splitlines() if "algebraic_simplifier" in line or "likely stuck" in line]
    assert not noise, "\n".join(noise[:3])
