"""Fitting σ_xy(n) computed by jaxsemi itself: recovery, coverage, and the shipped example."""

import jax.numpy as jnp
import numpy as np
import pytest

import jaxsemi as js

V, DELTA, N0 = 2.5, 0.03, 0.2  # eV·Å, eV, 1e12 cm^-2 (the truth of the synthetic sets)
KT = float(js.units.kelvin_to_ev(30.0))
N = np.linspace(-2.5, 2.5, 31) * js.fit.PER_1E12_CM2  # Å^-2
NOISE = 0.005  # e²/h
MODEL = js.models.massive_dirac(V, DELTA)
GRID = js.kgrid.disk(0.4, 80, 2, scale=0.01)


def predict(p, n):
    """σ_xy (e²/h) at gate-induced density n (Å⁻²) of a massive Dirac cone (v fixed): μ from
    the density n + n₀ through the model's DOS at kT, then js.hall_conductivity."""
    model = MODEL.with_params({"v": V, "delta": p["delta"], "tilt": 0.0})
    mu = js.fit.density_to_mu(model, n + p["n0"] * js.fit.PER_1E12_CM2, GRID, KT)
    return js.hall_conductivity(model, mu, GRID, KT)


START = {"delta": 0.02, "n0": 0.0}


@pytest.fixture(scope="module")
def synthetic():
    """Noisy σ_xy(n) of the fit model itself at the true (Δ, n₀), one realisation per seed."""
    truth = np.asarray(predict({"delta": DELTA, "n0": N0}, jnp.asarray(N)))
    return lambda seed: truth + NOISE * np.random.default_rng(seed).normal(size=N.size)


@pytest.mark.timeout(300)
def test_recovers_gap_and_residual_doping_within_uncertainties(synthetic):
    res = js.fit.fit(predict, START, N, synthetic(7), NOISE, progress=False,
                     transforms={"delta": js.fit.Positive()})
    assert res.converged
    for k, truth in (("delta", DELTA), ("n0", N0)):
        assert abs(res.params[k] - truth) < 3 * res.stderr[k], (k, res.params[k], res.stderr[k])
        assert res.stderr[k] < 0.05 * truth  # the data do determine them
    assert 0.3 < res.reduced_chi2 < 2.0


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_one_sigma_coverage_over_50_noise_seeds(synthetic):
    """Honest stderr for a real jaxsemi prediction (implicit μ(n) solve + Hall integral):
    the truth lies within ±1σ in 55–80 % of the 100 (seed, parameter) cases."""
    hits = []
    for seed in range(50):
        res = js.fit.fit(predict, START, N, synthetic(1000 + seed), NOISE, progress=False,
                         transforms={"delta": js.fit.Positive()})
        hits += [abs(res.params["delta"] - DELTA) <= res.stderr["delta"],
                 abs(res.params["n0"] - N0) <= res.stderr["n0"]]
    frac = float(np.mean(hits))
    assert 0.55 <= frac <= 0.80, frac


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_example_csv_is_reproducible_from_its_documented_recipe():
    """The shipped file is exactly what make_example_data() produces from EXAMPLE (seed, model,
    parameters): the data are synthetic and the recipe in its header is the true one."""
    with open(js.fit.example_data_path(), encoding="utf-8") as fh:
        shipped = fh.read()
    assert js.fit.make_example_data() == shipped
    with pytest.raises(ValueError, match="unknown example settings"):
        js.fit.make_example_data(temperature=3.0)
