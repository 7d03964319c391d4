"""js.fit.fit: recovery of known parameters, honest uncertainties, transforms, joint fits."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optimistix as optx
import pytest
import scipy.optimize

import jaxsemi as js

TRUE = {"a": 2.0, "b": 1.3, "c": 0.5}
START = {"a": 1.0, "b": 0.5, "c": 0.0}
X = np.linspace(0.0, 5.0, 60)
NOISE = 0.02


def decay(p, x):
    """y = a exp(−b x) + c: a smooth nonlinear closed form with an independent scipy reference."""
    return p["a"] * jnp.exp(-p["b"] * x) + p["c"]


def decay_np(x, a, b, c):
    return a * np.exp(-b * x) + c


def noisy(seed, noise=NOISE):
    rng = np.random.default_rng(seed)
    return np.asarray(decay(TRUE, X)) + noise * rng.normal(size=X.size)


def _values(tree):
    return np.array([float(tree[k]) for k in ("a", "b", "c")])


@pytest.fixture(scope="module")
def fit0():
    return js.fit.fit(decay, START, X, noisy(0), NOISE, progress=False)


def test_matches_scipy_curve_fit_values_and_covariance(fit0):
    """Same optimum and same (J^T W J)^-1 as scipy's independent implementation (absolute σ)."""
    y = noisy(0)
    popt, pcov = scipy.optimize.curve_fit(decay_np, X, y, p0=[1.0, 0.5, 0.0],
                                          sigma=np.full(X.size, NOISE), absolute_sigma=True)
    assert fit0.converged
    np.testing.assert_allclose(_values(fit0.params), popt, rtol=1e-6)
    np.testing.assert_allclose(fit0.covariance, pcov, rtol=1e-4)
    np.testing.assert_allclose(_values(fit0.stderr), np.sqrt(np.diag(pcov)), rtol=1e-4)
    r = (y - decay_np(X, *popt)) / NOISE
    assert fit0.chi2 == pytest.approx(r @ r, rel=1e-9)
    assert fit0.dof == X.size - 3 and not fit0.covariance_scaled
    np.testing.assert_allclose(fit0.residuals, y - decay_np(X, *_values(fit0.params)), atol=1e-12)
    assert fit0.loss_history[0] > fit0.loss_history[-1] == pytest.approx(fit0.chi2)


def test_unknown_sigma_scales_covariance_by_reduced_chi2():
    y = noisy(1)
    res = js.fit.fit(decay, START, X, y, progress=False)  # sigma=None: unit weights, scaled
    popt, pcov = scipy.optimize.curve_fit(decay_np, X, y, p0=[1.0, 0.5, 0.0])  # absolute_sigma=False
    assert res.covariance_scaled
    np.testing.assert_allclose(_values(res.params), popt, rtol=1e-6)
    np.testing.assert_allclose(res.covariance, pcov, rtol=1e-4)
    explicit = js.fit.fit(decay, START, X, y, NOISE, scale_covariance=True, progress=False)
    np.testing.assert_allclose(explicit.covariance, pcov, rtol=1e-4)  # σ-independent once scaled


def test_transforms_give_delta_method_stderr_in_user_parametrisation(fit0):
    """Positive (log) and Bounded (logistic) change the optimiser's path, not the answer:
    params and stderr are those of p itself (delta method), not of log p or logit p."""
    res = js.fit.fit(decay, START, X, noisy(0), NOISE, progress=False,
                     transforms={"b": js.fit.Positive(), "c": js.fit.Bounded(-1.0, 2.0)})
    np.testing.assert_allclose(_values(res.params), _values(fit0.params), rtol=1e-7)
    np.testing.assert_allclose(res.covariance, fit0.covariance, rtol=1e-5)
    # stderr of log b would be stderr_b / b ≈ 0.012, not 0.0155: the reported one is for b
    assert res.stderr["b"] == pytest.approx(fit0.stderr["b"], rel=1e-5)
    assert abs(res.stderr["b"] - res.stderr["b"] / res.params["b"]) > 0.1 * res.stderr["b"]


def test_transform_round_trip_and_errors():
    u = jnp.linspace(-3.0, 3.0, 7)
    for t in (js.fit.Positive(), js.fit.Bounded(-0.2, 0.7), js.fit.Identity()):
        np.testing.assert_allclose(t.inverse(t.forward(u)), u, atol=1e-12)
    assert np.all(np.asarray(js.fit.Bounded(-0.2, 0.7).forward(u)) > -0.2)
    with pytest.raises(ValueError, match="lower < upper"):
        js.fit.Bounded(1.0, 1.0)
    with pytest.raises(ValueError, match="inside the bounds"):
        js.fit.fit(decay, START, X, noisy(0), transforms={"c": js.fit.Bounded(0.0, 1.0)})
    with pytest.raises(ValueError, match="> 0"):
        js.fit.fit(decay, START, X, noisy(0), transforms={"c": js.fit.Positive()})
    with pytest.raises(ValueError, match="lacks"):
        js.fit.fit(decay, START, X, noisy(0), transforms={"d": js.fit.Positive()})


def line(p, x):
    return p["a"] * x + p["c"]


def exp_only(p, x):
    return p["a"] * jnp.exp(-p["b"] * x)


def test_joint_fit_shares_parameters():
    """Two data sets share 'a': the joint fit equals one fit of the stacked problem, its χ² is
    the sum over terms, and the shared parameter is better determined than from either set."""
    rng = np.random.default_rng(3)
    x1, x2 = np.linspace(0, 2, 25), np.linspace(0, 4, 30)
    y1 = np.asarray(line(TRUE, x1)) + 0.05 * rng.normal(size=x1.size)
    y2 = np.asarray(exp_only(TRUE, x2)) + 0.03 * rng.normal(size=x2.size)
    joint = js.fit.fit([(line, x1, y1, 0.05), js.fit.Term(exp_only, x2, y2, 0.03)], START, progress=False)

    def stacked(p, x):
        return jnp.concatenate([line(p, x["1"]), exp_only(p, x["2"])])

    sig = np.concatenate([np.full(x1.size, 0.05), np.full(x2.size, 0.03)])
    one = js.fit.fit(stacked, START, {"1": x1, "2": x2}, np.concatenate([y1, y2]), sig, progress=False)
    np.testing.assert_allclose(_values(joint.params), _values(one.params), rtol=1e-7)
    np.testing.assert_allclose(joint.covariance, one.covariance, rtol=1e-5)
    parts = [np.sum(w**2) for w in joint.weighted_residuals]
    assert joint.chi2 == pytest.approx(sum(parts), rel=1e-10)
    assert len(joint.residuals) == 2 and joint.residuals[1].shape == x2.shape
    alone = js.fit.fit(line, {"a": 1.0, "c": 0.0}, x1, y1, 0.05, progress=False)
    assert joint.stderr["a"] < alone.stderr["a"]
    for k in ("a", "b", "c"):
        assert abs(joint.params[k] - TRUE[k]) < 4 * joint.stderr[k]


def test_adam_with_schedule_reaches_the_lbfgs_optimum(fit0):
    res = js.fit.fit(decay, START, X, noisy(0), NOISE, progress=False,
                     optimizer=optax.adam(optax.cosine_decay_schedule(2.0, 3000)), steps=3000)
    assert res.chi2 == pytest.approx(fit0.chi2, rel=1e-6)
    np.testing.assert_allclose(_values(res.params), _values(fit0.params), rtol=1e-4)


SOLVERS = [optx.LevenbergMarquardt(rtol=1e-10, atol=1e-10), optx.GaussNewton(rtol=1e-10, atol=1e-10)]


@pytest.mark.parametrize("solver", SOLVERS, ids=["LevenbergMarquardt", "GaussNewton"])
def test_optimistix_solvers_reach_the_scipy_and_default_optima(solver, fit0):
    """optimizer=optx.LevenbergMarquardt / GaussNewton: the same optimum, χ² and covariance as
    scipy (decay, absolute σ), np.polyfit (vector parameter) and the default L-BFGS (joint
    fit with a Positive transform); loss_history holds the start and the end."""
    y = noisy(0)
    res = js.fit.fit(decay, START, X, y, NOISE, optimizer=solver, progress=False)
    popt, pcov = scipy.optimize.curve_fit(decay_np, X, y, p0=[1.0, 0.5, 0.0],
                                          sigma=np.full(X.size, NOISE), absolute_sigma=True)
    assert res.converged and res.message == "converged" and 0 < res.n_steps < 100
    np.testing.assert_allclose(_values(res.params), popt, rtol=1e-8)
    np.testing.assert_allclose(res.covariance, pcov, rtol=1e-4)
    assert res.chi2 == pytest.approx(fit0.chi2, rel=1e-12)
    assert res.loss_history.shape == (2,) and res.loss_history[0] == pytest.approx(fit0.loss_history[0])

    rng = np.random.default_rng(5)
    coef = np.array([0.3, -1.0, 2.0])
    yp = np.polyval(coef, X) + 0.01 * rng.normal(size=X.size)
    poly = js.fit.fit(lambda p, x: jnp.polyval(p["coef"], x), {"coef": np.zeros(3)}, X, yp, 0.01,
                      optimizer=solver, progress=False)
    ref = np.polyfit(X, yp, 2, w=np.full(X.size, 100.0), cov="unscaled")
    np.testing.assert_allclose(poly.params["coef"], ref[0], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(poly.covariance, ref[1], rtol=1e-5)

    x1, x2 = np.linspace(0, 2, 25), np.linspace(0, 4, 30)
    y1 = np.asarray(line(TRUE, x1)) + 0.05 * rng.normal(size=x1.size)
    y2 = np.asarray(exp_only(TRUE, x2)) + 0.03 * rng.normal(size=x2.size)
    terms = [(line, x1, y1, 0.05), (exp_only, x2, y2, 0.03)]
    kw = {"transforms": {"b": js.fit.Positive()}, "progress": False}
    joint, default = js.fit.fit(terms, START, optimizer=solver, **kw), js.fit.fit(terms, START, **kw)
    np.testing.assert_allclose(_values(joint.params), _values(default.params), rtol=1e-7)
    np.testing.assert_allclose(joint.covariance, default.covariance, rtol=1e-5)
    assert joint.chi2 == pytest.approx(default.chi2, rel=1e-10)


def test_optimistix_minimiser_and_step_budget(fit0):
    """An optx minimiser (BFGS on χ²/2) also serves; a spent step budget warns, as for optax."""
    res = js.fit.fit(decay, START, X, noisy(0), NOISE, optimizer=optx.BFGS(rtol=1e-10, atol=1e-10),
                     progress=False)
    assert res.converged and res.chi2 == pytest.approx(fit0.chi2, rel=1e-10)
    np.testing.assert_allclose(_values(res.params), _values(fit0.params), rtol=1e-7)
    with pytest.warns(UserWarning, match=r"not converged \(step budget 2 used\)"):
        short = js.fit.fit(decay, START, X, noisy(0), NOISE, optimizer=SOLVERS[0], steps=2, progress=False)
    assert not short.converged and short.n_steps == 2 and short.chi2 > fit0.chi2


def test_result_prints_a_table(fit0):
    text = str(fit0)
    assert "converged" in text and "chi2/dof" in text
    for name in ("a", "b", "c"):
        assert any(line.split()[0] == name and "±" in line for line in text.splitlines()[3:])
    assert f"{float(fit0.params['b']):.7g}" in text
    corr = fit0.correlation
    np.testing.assert_allclose(np.diag(corr), 1.0)
    np.testing.assert_allclose(corr, corr.T)
    assert fit0.names == ("a", "b", "c")


def test_vector_parameters_and_names():
    def poly(p, x):
        return jnp.polyval(p["coef"], x)

    rng = np.random.default_rng(5)
    coef = np.array([0.3, -1.0, 2.0])
    y = np.polyval(coef, X) + 0.01 * rng.normal(size=X.size)
    res = js.fit.fit(poly, {"coef": np.zeros(3)}, X, y, 0.01, progress=False)
    ref = np.polyfit(X, y, 2, w=np.full(X.size, 100.0), cov="unscaled")
    np.testing.assert_allclose(res.params["coef"], ref[0], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(res.covariance, ref[1], rtol=1e-5)
    assert res.names == ("coef[0]", "coef[1]", "coef[2]") and res.stderr["coef"].shape == (3,)


def test_fit_input_errors():
    y = noisy(0)
    with pytest.raises(ValueError, match="same points"):
        js.fit.fit(decay, START, X[:-1], y)
    with pytest.raises(ValueError, match="sigma has shape"):
        js.fit.fit(decay, START, X, y, np.ones(5))
    with pytest.raises(ValueError, match="> 0"):
        js.fit.fit(decay, START, X, y, 0.0)
    with pytest.raises(ValueError, match="cannot determine"):
        js.fit.fit(decay, START, X[:3], y[:3])
    with pytest.raises(ValueError, match="inside each term"):
        js.fit.fit([(decay, X, y)], START, X, y)
    with pytest.raises(ValueError, match="NaN"):
        js.fit.fit(decay, START, X, np.where(X > 2, np.nan, y))
    with pytest.raises(ValueError, match="steps"):
        js.fit.fit(decay, START, X, y, steps=0)


def test_loss_gradient_of_chi2_matches_finite_differences():
    y = noisy(2)
    p = {"a": 1.7, "b": 0.9, "c": 0.3}
    g = jax.grad(lambda q: js.fit.chi2(decay, q, X, y, NOISE))(p)
    h = 1e-6
    for k in p:
        up = js.fit.chi2(decay, {**p, k: p[k] + h}, X, y, NOISE)
        dn = js.fit.chi2(decay, {**p, k: p[k] - h}, X, y, NOISE)
        assert float(g[k]) == pytest.approx(float(up - dn) / (2 * h), rel=1e-6)


def test_coverage_of_one_sigma_intervals_over_seeds():
    """Honest uncertainties: over 100 noise seeds, the true value lies within ±stderr in about
    68 % of (seed, parameter) cases — for a transformed parameter too (b is fitted in log b)."""
    hits = []
    for seed in range(100, 200):
        res = js.fit.fit(decay, START, X, noisy(seed, 0.05), 0.05, progress=False,
                         transforms={"b": js.fit.Positive()})
        hits += [abs(res.params[k] - TRUE[k]) <= res.stderr[k] for k in TRUE]
    frac = np.mean(hits)
    assert 0.55 <= frac <= 0.80, frac


def test_progress_bar_and_unconverged_warning(capsys):
    with pytest.warns(UserWarning, match="not converged"):
        res = js.fit.fit(decay, START, X, noisy(0), NOISE, steps=3, progress=True)
    assert not res.converged and res.n_steps == 3 and res.loss_history.size == 4
    assert "js.fit" in capsys.readouterr().err  # the tqdm bar


def test_params0_errors_name_the_argument():
    y = noisy(0)
    for bad, match in [({}, r"params0 = \{\} has no parameters"), (None, "params0 = None has no parameters"),
                       ({**START, "a": "1.0"}, r"params0\['a'\] = '1.0' is not a real number"),
                       ({**START, "b": 1j}, r"params0\['b'\] = 1j is not a real number"),
                       ({**START, "c": True}, r"params0\['c'\] = True is not a real number"),
                       ({**START, "a": np.nan}, r"params0\['a'\] contains NaN"),
                       ({"a": 1.0, "b": 0.5}, r"predict\(params0, x\) failed with KeyError: 'c' \(params0 "
                                              r"has parameters \['a', 'b'\]\)")]:
        with pytest.raises(ValueError, match=match):
            js.fit.fit(decay, bad, X, y, progress=False)
    with pytest.raises(ValueError, match=r"predict\(params0, x\) is NaN or inf at 60 of 60 data points"):
        js.fit.fit(lambda p, x: jnp.sqrt(p["a"] - 2.0) * x, {"a": 1.0}, X, y)
    with pytest.raises(ValueError, match=r"derivative of predict\(params, x\) is NaN or inf at params0"):
        js.fit.fit(lambda p, x: jnp.sqrt(p["a"]) * x + p["c"], {"a": 0.0, "c": 1.0}, X, y)
    with pytest.raises(ValueError, match=r"params\['a'\] contains NaN"):
        js.fit.chi2(decay, {**START, "a": np.nan}, X, y)
    assert np.isnan(float(jax.jit(lambda a: js.fit.chi2(decay, {**START, "a": a}, X, y))(np.nan)))
    with pytest.raises(ValueError, match="y must be an array of real numbers"):
        js.fit.fit(decay, START, X, ["1"] * X.size)
    with pytest.raises(ValueError, match=r"sigma contains NaN"):
        js.fit.fit(decay, START, X, y, np.where(X > 2, np.nan, 1.0))
    with pytest.raises(ValueError, match=r"term 1: sigma must be > 0 everywhere.*got 1 values <= 0"):
        js.fit.fit([(decay, X, y), (decay, X, y, np.where(X == X[3], -1.0, 1.0))], START)


def proportional(p, x):
    """b does not enter: the data cannot determine it."""
    return p["a"] * x


def sum_slope(p, x):
    """Only a + b enters: neither a nor b alone is determined, c is."""
    return (p["a"] + p["b"]) * x + p["c"]


@pytest.mark.filterwarnings("ignore:parameters \\['b'\\] do not change the prediction")
def test_undetermined_parameter_gets_infinite_stderr_and_is_printed_so():
    rng = np.random.default_rng(7)
    y = 2.0 * X + 0.01 * rng.normal(size=X.size)
    with pytest.warns(UserWarning, match=r"parameters \['b'\] are not determined by the data"):
        res = js.fit.fit(proportional, {"a": 1.0, "b": 0.5}, X, y, 0.01, progress=False)
    alone = js.fit.fit(proportional, {"a": 1.0}, X, y, 0.01, progress=False)
    assert res.converged and res.params["a"] == pytest.approx(float(alone.params["a"]), rel=1e-9)
    assert res.stderr["a"] == pytest.approx(float(alone.stderr["a"]), rel=1e-9)  # a is unaffected
    assert np.isinf(res.stderr["b"]) and res.params["b"] == 0.5  # b never moves
    assert np.isinf(res.covariance[1, 1]) and np.isnan(res.covariance[0, 1])
    assert res.correlation[0, 0] == pytest.approx(1.0) and np.isnan(res.correlation[1, 1])
    rows = {line.split()[0]: line for line in str(res).splitlines()[3:]}
    assert rows["b"].endswith("±  undetermined") and "undetermined" not in rows["a"]


def test_undetermined_combination_flags_both_of_its_parameters():
    rng = np.random.default_rng(8)
    y = 1.5 * X + 0.3 + 0.02 * rng.normal(size=X.size)
    with pytest.warns(UserWarning, match=r"\['a', 'b'\] are not determined"):
        res = js.fit.fit(sum_slope, {"a": 1.0, "b": 0.2, "c": 0.0}, X, y, 0.02, progress=False)
    ref = js.fit.fit(line, {"a": 1.0, "c": 0.0}, X, y, 0.02, progress=False)
    assert float(res.params["a"] + res.params["b"]) == pytest.approx(float(ref.params["a"]), rel=1e-9)
    assert np.isinf(res.stderr["a"]) and np.isinf(res.stderr["b"])
    assert res.stderr["c"] == pytest.approx(float(ref.stderr["c"]), rel=1e-6)
