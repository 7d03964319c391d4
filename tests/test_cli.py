"""The command line runs the embedded demo and writes its figure."""

import json

import numpy as np

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
