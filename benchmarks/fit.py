"""Time to fit σ_xy(n) of the example data: ``js.fit.fit`` vs ``scipy.optimize.least_squares``.

The problem (both sides identical): the shipped synthetic example (41 points of σ_xy vs gate
density), fitted with a massive Dirac cone of known velocity — parameters Δ and the residual
doping n₀; each prediction solves μ(n + n₀) through the model's DOS at 30 K and integrates
σ_xy(μ) on a k-disk (``n_r`` radial points).

* ``js.fit``: default optax L-BFGS + zoom line search, exact gradients (autodiff through the
  implicit μ solve), the optimiser loop compiled (lax.while_loop), plus the Gauss–Newton covariance.
* ``scipy``: ``least_squares`` (trust-region reflective) with the usual 2-point finite-difference
  Jacobian, calling the same jitted prediction; tolerances 1e-12.

Both are warmed up (compiled) first; times are the minimum over repeats; the final χ² of both
are reported and must agree (``same_loss``). Prints JSON; ``--quick`` uses a coarse grid.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

import jaxsemi as js

try:
    from ._common import environment
except ImportError:  # run as a script
    from _common import environment

V = 2.5  # eV·Å, held fixed (σ_xy(n) of a Dirac cone fixes only Δ/v at T = 0)
KT = float(js.units.kelvin_to_ev(30.0))
START = {"delta": 0.02, "n0": 0.0}


def make_problem(n_r: int):
    data = js.fit.load_example_data()
    model = js.models.massive_dirac(V, START["delta"])
    grid = js.kgrid.disk(0.4, n_r, 2, scale=0.01)

    def predict(p, n):
        m = model.with_params({"v": V, "delta": p["delta"], "tilt": 0.0})
        mu = js.fit.density_to_mu(m, n + p["n0"] * js.fit.PER_1E12_CM2, grid, KT)
        return js.hall_conductivity(m, mu, grid, KT)

    return data, predict


def _best(fn, repeats):
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def run(quick: bool = False) -> dict:
    n_r, repeats = (60, 2) if quick else (200, 3)
    data, predict = make_problem(n_r)
    x, y, s = jnp.asarray(data.x), np.asarray(data.y), np.asarray(data.sigma)

    def js_fit():
        return js.fit.fit(predict, START, data.x, data.y, data.sigma, progress=False)

    js_fit()  # compile
    t_js, res = _best(js_fit, repeats)

    jitted = jax.jit(lambda theta: predict({"delta": theta[0], "n0": theta[1]}, x))
    n_evals = [0]

    def residuals(theta):
        n_evals[0] += 1
        return (np.asarray(jitted(jnp.asarray(theta))) - y) / s

    def scipy_fit():
        n_evals[0] = 0
        return scipy.optimize.least_squares(residuals, [START["delta"], START["n0"]], jac="2-point",
                                            x_scale="jac", ftol=1e-12, xtol=1e-12, gtol=1e-12)

    scipy_fit()  # compile the jitted prediction
    t_sp, sol = _best(scipy_fit, repeats)
    chi2_sp = float(np.sum(sol.fun**2))
    return {
        "problem": f"sigma_xy(n) example, 41 points, 2 parameters, disk n_r={n_r}",
        "js_fit_s": t_js, "scipy_least_squares_s": t_sp, "speedup": t_sp / t_js,
        "js_chi2": res.chi2, "scipy_chi2": chi2_sp,
        "same_loss": bool(abs(res.chi2 - chi2_sp) <= 1e-6 * chi2_sp),
        "js_steps": res.n_steps, "scipy_function_evals": int(n_evals[0]),
        "js_params": {k: float(v) for k, v in res.params.items()},
        "scipy_params": {"delta": float(sol.x[0]), "n0": float(sol.x[1])},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(json.dumps({"environment": environment(), "fit": run(args.quick)}, indent=1))


if __name__ == "__main__":
    main()
