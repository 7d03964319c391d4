"""Time to fit σ_xy(n) of the example data: ``js.fit.fit`` vs ``scipy.optimize.least_squares``.

The problem (both sides identical): the shipped synthetic example (41 points of σ_xy vs gate
density), fitted with a massive Dirac cone of known velocity — parameters Δ and the residual
doping n₀; each prediction solves μ(n + n₀) through the model's DOS at 30 K and integrates
σ_xy(μ) on a k-disk (``n_r`` radial points).

* ``js.fit``: default optax L-BFGS + zoom line search, exact gradients (autodiff through the
  implicit μ solve), the optimiser loop compiled (lax.while_loop), plus the Gauss–Newton covariance.
* ``scipy``: ``least_squares`` (trust-region reflective) with the usual 2-point finite-difference
  Jacobian, calling the same jitted prediction; tolerances 1e-12.

A second case fits several synthetic sweeps jointly (shared Δ, one n₀ per sweep: 1 + K
parameters), where a finite-difference Jacobian costs K + 2 predictions per iteration while
the autodiff gradient costs about one.

Both are warmed up (compiled) first; times are the minimum over repeats; the final χ² of both
are reported and must agree (``same_loss``). ``--quick`` runs the single-sweep case on a coarse grid.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

import jaxsemi as js

from ._common import best_time

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


def _compare(predict, start, x, y, sigma, pack, unpack, repeats):
    """Time js.fit and scipy least_squares (2-point FD Jacobian) on one problem."""
    def js_fit():
        return js.fit.fit(predict, start, x, y, sigma, progress=False)

    js_fit()  # compile
    t_js, res = best_time(js_fit, repeats)

    xj = jax.tree_util.tree_map(jnp.asarray, x)
    jitted = jax.jit(lambda theta: predict(unpack(theta), xj))
    n_evals = [0]

    def residuals(theta):
        n_evals[0] += 1
        return ((np.asarray(jitted(jnp.asarray(theta))) - y) / sigma).ravel()

    def scipy_fit():
        n_evals[0] = 0
        return scipy.optimize.least_squares(residuals, pack(start), jac="2-point", x_scale="jac",
                                            ftol=1e-12, xtol=1e-12, gtol=1e-12)

    scipy_fit()  # compile the jitted prediction
    t_sp, sol = best_time(scipy_fit, repeats)
    chi2_sp = float(np.sum(sol.fun**2))
    return {
        "n_parameters": int(pack(start).size), "js_fit_s": t_js, "scipy_least_squares_s": t_sp,
        "speedup": t_sp / t_js, "js_chi2": res.chi2, "scipy_chi2": chi2_sp,
        "same_loss": bool(abs(res.chi2 - chi2_sp) <= 1e-6 * chi2_sp),
        "js_steps": res.n_steps, "scipy_function_evals": int(n_evals[0]),
        "max_param_difference": float(np.max(np.abs(pack(res.params) - sol.x))),
    }


def run(quick: bool = False) -> dict:
    n_r, repeats, n_samples = (60, 1, 0) if quick else (200, 3, 8)
    data, predict = make_problem(n_r)
    single = _compare(predict, START, data.x, data.y, data.sigma,
                      lambda p: np.array([p["delta"], p["n0"]], float),
                      lambda t: {"delta": t[0], "n0": t[1]}, repeats)
    single["problem"] = f"example sigma_xy(n), 41 points, fit delta and n0, disk n_r={n_r}"
    if quick:  # the smoke run: one case, coarse grid (the joint case compiles two more programs)
        return {"single_sweep": single}

    # Joint fit: n_samples devices of one material (shared Δ), each with its own residual doping.
    rng = np.random.default_rng(1)
    truth = {"delta": 0.025, "n0": jnp.asarray(rng.uniform(-0.4, 0.4, n_samples))}
    n = np.tile(data.x, (n_samples, 1))

    def joint(p, n):
        return predict({"delta": p["delta"], "n0": p["n0"][:, None]}, n)

    y = np.asarray(joint(truth, jnp.asarray(n))) + 0.005 * rng.normal(size=n.shape)
    # σ_xy(n) has a sharp peak at n = −n₀: start each n₀ there (a distant start finds a local minimum)
    start = {"delta": 0.02, "n0": jnp.asarray(-n[0, np.argmin(y, axis=1)] / js.fit.PER_1E12_CM2)}
    many = _compare(joint, start, n, y, np.full(n.shape, 0.005),
                    lambda p: np.concatenate([[float(p["delta"])], np.asarray(p["n0"], float)]),
                    lambda t: {"delta": t[0], "n0": t[1:]}, repeats)
    many["problem"] = (f"joint fit of {n_samples} synthetic sweeps (41 points each), shared delta, "
                       f"one n0 per sweep, disk n_r={n_r}")
    return {"single_sweep": single, "joint_sweeps": many,
            "note": "speedup = t(scipy)/t(js.fit) at the same final chi2; the predictions are the same "
                    "jitted JAX function on both sides, so the gain comes from autodiff gradients "
                    "(one pass for any number of parameters) vs P+1 evaluations per FD Jacobian."}
