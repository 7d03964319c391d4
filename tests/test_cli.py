"""The command line runs the embedded demo and writes its figure; ``bench`` writes its report
to the current folder."""

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxsemi import cli


def test_demo_runs_and_writes_outputs(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path), "--json"]) == 0
    out = capsys.readouterr().out
    assert "Valley Hall conductivity" in out
    summary = json.loads((tmp_path / "jaxsemi_demo.json").read_text())
    assert (tmp_path / "jaxsemi_demo_valley_hall.png").stat().st_size > 1000
    # in the gap the two valleys are ∓½ (minus the finite-cutoff correction); valley Hall ≈ −1
    i0 = summary["valley_hall"]["mu_eV"].index(0.0)
    assert abs(summary["valley_hall"]["sigma_K"][i0] + 0.5) < 0.01
    assert abs(summary["valley_hall"]["sigma_K"][i0] + summary["valley_hall"]["sigma_Kp"][i0]) < 1e-10
    wp = summary["wavepacket"]
    np.testing.assert_allclose(wp["upper_population"], wp["formula"], atol=2e-3)
    # adiabatic Hall is field independent; the non-adiabatic one falls below it at strong field
    na = summary["nonadiabatic_hall"]
    np.testing.assert_allclose(na["sigma_ssct"], na["sigma_ssct"][0], rtol=1e-9)
    assert abs(na["sigma_nonadiabatic"][0] - na["sigma_ssct"][0]) < 1e-3
    assert abs(na["sigma_nonadiabatic"][-1]) < 0.8 * abs(na["sigma_ssct"][-1])
    # the fit recovers the generating gap within a few standard errors
    fit = summary["fit"]
    assert abs(fit["delta"] - 0.025) < 6 * fit["delta_stderr"] and fit["reduced_chi2"] < 2


def test_info(capsys):
    assert cli.main(["info"]) == 0
    assert json.loads(capsys.readouterr().out)["x64"] is True


def test_bench_quick_writes_to_the_current_folder_only(tmp_path, monkeypatch, capsys):
    """The report lands in the working folder, never in the source tree's committed results;
    the Haldane σ_xy in the gap is −1 e²/h; comparisons without their extra say which to install."""
    committed = Path(cli.__file__).resolve().parents[1] / "benchmarks" / "results" / "bench_cpu.json"
    before = committed.read_bytes() if committed.exists() else None
    monkeypatch.chdir(tmp_path)
    assert cli.main(["bench", "--quick", "--only", "berry_throughput"]) == 0
    report_path = tmp_path / f"jaxsemi_bench_{jax.devices()[0].platform}.json"
    report = json.loads(report_path.read_text())
    out = capsys.readouterr().out
    assert "berry_throughput" in out and "jaxsemi.kpoints_per_s" in out and str(report_path) in out
    assert report["quick"] and list(report["benchmarks"]) == ["berry_throughput"]
    res = report["benchmarks"]["berry_throughput"]
    assert res["status"] == "ok" and abs(res["jaxsemi"]["sigma_xy"][res["mu_eV"].index(0.0)] + 1) < 1e-5
    for other in ("jaxsemi_tight_binding", "pythtb", "wannierberri"):
        assert (res[other].get("max_abs_diff_sigma_vs_jaxsemi", 1.0) < 1e-10
                or res[other]["status"] == "skipped: needs pip install 'jaxsemi[interop]'"
                or res[other]["status"].startswith("skipped: PythTB 1.x")), res[other]
    assert (committed.read_bytes() if committed.exists() else None) == before
    full = tmp_path / "full.json"
    full.write_text(json.dumps({"quick": False}, indent=1))
    assert cli.main(["bench", "--quick", "--only", "berry_throughput", "--out", str(full)]) == 2
    assert json.loads(full.read_text()) == {"quick": False}
    with pytest.raises(SystemExit):
        cli.main(["bench", "--only", "no_such_benchmark"])
