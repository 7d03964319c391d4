"""Weighted least-squares fits of any differentiable prediction with any optax optimizer or
optimistix least-squares solver."""

from __future__ import annotations

import warnings
from typing import Any, Callable, NamedTuple, Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import optimistix as optx
from jax.flatten_util import ravel_pytree
from tqdm import tqdm

from .. import _checks
from ._transforms import broadcast_transforms, forward_tree, inverse_tree

#: Optimiser steps run per compiled call (between progress-bar updates).
CHUNK = 25
#: Gauss–Newton eigenvalues (whitened coordinates) below RCOND × the largest are directions the
#: data do not determine: parameters along them get an infinite stderr.
RCOND = 1e-12
#: Default step budgets: L-BFGS and the optimistix solvers (Levenberg–Marquardt, Gauss–Newton)
#: converge in tens of steps; first-order optimisers need more.
DEFAULT_STEPS_LBFGS = 200
DEFAULT_STEPS_OTHER = 2000

_DEFAULT_OPTIMIZER: list = []


def default_optimizer() -> optax.GradientTransformationExtraArgs:
    """``optax.lbfgs()`` (memory 10, zoom line search), built once so compiled fits are reused."""
    if not _DEFAULT_OPTIMIZER:
        _DEFAULT_OPTIMIZER.append(optax.lbfgs())
    return _DEFAULT_OPTIMIZER[0]


class Term(NamedTuple):
    """One data set of a (joint) fit: ``predict(params, x)`` is compared with ``y ± sigma``.

    ``x`` is any PyTree the prediction needs (an array of μ or n, a dict, ...); ``y`` an array;
    ``sigma`` None (unit weights), a scalar or an array of ``y``'s shape, in ``y``'s units.
    """

    predict: Callable
    x: Any
    y: Any
    sigma: Any = None


# ----------------------------------------------------------------------------- validation


def _as_terms(predict, x, y, sigma) -> list[Term]:
    if callable(predict):
        if x is None or y is None:
            raise ValueError("fit(predict, params0, x, y, sigma) needs x and y")
        return [Term(predict, x, y, sigma)]
    try:
        raw = list(predict)
    except TypeError as err:
        raise ValueError("predict must be a function predict(params, x) or a sequence of "
                         "(predict, x, y[, sigma]) terms") from err
    if not raw:
        raise ValueError("a joint fit needs at least one (predict, x, y[, sigma]) term")
    if x is not None or y is not None or sigma is not None:
        raise ValueError("with a sequence of terms, give x, y and sigma inside each term, not to fit()")
    terms = []
    for i, t in enumerate(raw):
        if not isinstance(t, tuple) or len(t) not in (3, 4) or not callable(t[0]):
            raise ValueError(f"term {i} must be (predict, x, y) or (predict, x, y, sigma), got {t!r}")
        terms.append(Term(*t))
    return terms


def _array(value, name: str) -> jax.Array:
    """``value`` as a float array; ValueError naming ``name`` unless it holds real numbers."""
    try:
        arr = np.asarray(value)
    except ValueError as err:  # ragged nested lists
        raise ValueError(f"{name} must be an array of real numbers: {err}") from err
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be an array of real numbers, got {arr.dtype} values "
                         f"{value!r:.80}")
    return jnp.asarray(arr, dtype=float)


def _checked_params0(params0):
    """params0 as a PyTree of float arrays: non-empty, real, finite (ValueError otherwise)."""
    leaves = jax.tree_util.tree_leaves_with_path(params0)
    if not leaves:
        raise ValueError(f"params0 = {params0!r} has no parameters: give the starting values of "
                         "those to fit, e.g. params0={'a': 1.0, 'b': 0.5}")
    for path, leaf in leaves:
        kind = np.asarray(leaf).dtype.kind
        if kind not in "iuf":
            raise ValueError(
                f"params0{jax.tree_util.keystr(path)} = {leaf!r:.80} is not a real number (dtype "
                f"{np.asarray(leaf).dtype}); params0 holds only the floats to fit, settings and "
                "fixed values belong in predict")
    params0 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype=float), params0)
    _checks.check_finite(params0, "params0")
    return params0


def _checked(term: Term, params0, i: int):
    """(x, y, sigma, weighted) with float arrays; ValueError on any mismatch, before tracing."""
    where = f"term {i}: " if i >= 0 else ""
    y = _array(term.y, f"{where}y")
    _checks.check_finite(y, f"{where}y")
    x = jax.tree_util.tree_map(lambda a: _array(a, f"{where}x") if isinstance(
        a, (list, tuple, float, int, np.ndarray, np.generic)) else a, term.x)
    _checks.check_finite(x, f"{where}x")
    try:
        out = jax.eval_shape(term.predict, params0, x)
    except Exception as err:
        raise ValueError(f"{where}predict(params0, x) failed with {type(err).__name__}: {err} "
                         f"(params0 has parameters {_leaf_names(params0)})") from err
    if not hasattr(out, "shape") or out.shape != y.shape:
        raise ValueError(f"{where}predict(params0, x) has shape {getattr(out, 'shape', out)} but y has "
                         f"shape {y.shape}: x, y (and sigma) must describe the same points")
    if term.sigma is None:
        return x, y, jnp.ones_like(y), False
    sig = _array(term.sigma, f"{where}sigma")
    if sig.ndim and sig.shape != y.shape:
        raise ValueError(f"{where}sigma has shape {sig.shape} but y has shape {y.shape}")
    _checks.check_finite(sig, f"{where}sigma")
    if np.any(np.asarray(sig) <= 0):
        raise ValueError(f"{where}sigma must be > 0 everywhere (it is the standard error of y); "
                         f"got {int(np.sum(np.asarray(sig) <= 0))} values <= 0")
    return x, y, jnp.broadcast_to(sig, y.shape), True


def _leaf_names(tree) -> list[str]:
    names = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        parts = []
        for key in path:
            for attr in ("key", "name", "idx"):
                if hasattr(key, attr):
                    parts.append(str(getattr(key, attr)))
                    break
        base = ".".join(parts) or "p"
        size = int(np.size(leaf))
        names += [base] if np.ndim(leaf) == 0 else [f"{base}[{j}]" for j in range(size)]
    return names


# ----------------------------------------------------------------------------- the problem


class _Problem(eqx.Module):
    """Weighted residuals r(z) = (predict(p(z), x) − y)/σ in scaled unconstrained coordinates z.

    u = u0 + basis·z is the unconstrained parameter vector (``ravel_pytree`` of the transformed
    params0; ``unravel`` maps it back), p = transform(u) the user's PyTree.
    """

    predicts: tuple = eqx.field(static=True)
    unravel: Callable = eqx.field(static=True)
    xs: tuple
    ys: tuple
    sigmas: tuple
    transforms: Any
    u0: jax.Array
    basis: jax.Array

    def params(self, z):
        return forward_tree(self.transforms, self.unravel(self.u0 + self.basis @ z))

    def residuals(self, z):
        p = self.params(z)
        return jnp.concatenate([((f(p, x) - y) / s).reshape(-1) for f, x, y, s in
                                zip(self.predicts, self.xs, self.ys, self.sigmas)])

    def loss(self, z):
        r = self.residuals(z)
        return 0.5 * jnp.dot(r, r)


@eqx.filter_jit
def _jacobian(problem, z):
    return jax.jacfwd(problem.residuals)(z)


@eqx.filter_jit
def _residuals(problem, z):
    return problem.residuals(z)


@eqx.filter_jit
def _run_chunk(problem, optimizer, z, state, prev, calm, n_max, rtol):
    """Up to ``n_max`` (≤ CHUNK) optimiser steps in one lax.while_loop, stopping early once the
    loss changed by ≤ rtol (relative) on two successive steps or stopped being finite."""
    uses_state = optax.tree.get(state, "value") is not None and optax.tree.get(state, "grad") is not None
    value_and_grad = (optax.value_and_grad_from_state(problem.loss) if uses_state
                      else jax.value_and_grad(problem.loss))

    def cond(c):
        i, _, _, _, calm, _, bad = c
        return (i < n_max) & (calm < 2) & ~bad

    def body(c):
        i, z, state, prev, calm, hist, _ = c
        value, grad = value_and_grad(z, state=state) if uses_state else value_and_grad(z)
        bad = ~jnp.isfinite(value) | ~jnp.all(jnp.isfinite(grad))
        calm = jnp.where(jnp.abs(prev - value) <= rtol * jnp.abs(value), calm + 1, 0)
        updates, new_state = optimizer.update(grad, state, z, value=value, grad=grad,
                                              value_fn=problem.loss)
        new_z = optax.apply_updates(z, updates)
        bad = bad | ~jnp.all(jnp.isfinite(new_z))
        keep = lambda new, old: jax.tree_util.tree_map(lambda a, b: jnp.where(bad, b, a), new, old)  # noqa: E731
        hist = hist.at[i].set(2.0 * value)
        return i + 1, keep(new_z, z), keep(new_state, state), value, calm, hist, bad

    hist = jnp.full((CHUNK,), jnp.nan)
    init = (jnp.asarray(0), z, state, prev, calm, hist, jnp.asarray(False))
    n, z, state, prev, calm, hist, bad = jax.lax.while_loop(cond, body, init)
    return z, state, prev, calm, n, hist, bad


@jax.custom_jvp
def _residuals_of(z, problem):
    """r(z) whose derivative in z is the materialised forward-mode Jacobian, J·t (``problem``
    is held fixed): optimistix 0.1.0's trust-region solvers (Levenberg–Marquardt, Dogleg)
    evaluate a zero-filled placeholder of the linearisation in their first step; through the
    raw prediction that re-runs an implicit solve (``density_to_mu``) on zeros, whose linear
    system then raises instead of giving a discarded NaN. A matrix of zeros is harmless."""
    return problem.residuals(z)


@_residuals_of.defjvp
def _residuals_of_jvp(primals, tangents):
    z, problem = primals
    return problem.residuals(z), jax.jacfwd(problem.residuals)(z) @ tangents[0]


@eqx.filter_jit
def _run_optimistix(problem, solver, max_steps):
    """The whole optimistix solve (least squares of the residuals, or a minimiser of ½|r|²) in
    one compiled call: (z, steps taken, optx.RESULTS)."""
    sol = optx.least_squares(_residuals_of, solver, jnp.zeros_like(problem.u0), args=problem,
                             max_steps=max_steps, throw=False)
    return sol.value, sol.stats["num_steps"], sol.result


# ----------------------------------------------------------------------------- the result


class FitResult(eqx.Module):
    """Result of :func:`fit`; ``print(result)`` shows a table of value ± stderr.

    Attributes:
        params: best-fit parameters, same PyTree as ``params0`` (user's parametrisation).
        stderr: one standard error per parameter, same PyTree: √diag(covariance). ``inf`` for
            a parameter the data do not determine (it, or a combination it enters, leaves χ²
            unchanged to first order: the Gauss–Newton matrix is singular); printed as
            "undetermined", and ``params`` then holds an arbitrary point of a flat valley.
        covariance: (P, P) Gauss–Newton covariance of the flattened parameters (order of
            ``names``), in the user's parametrisation (delta method through any transform);
            for an undetermined parameter its diagonal entry is ``inf`` and the rest of its
            row and column NaN.
        names: the P flattened parameter names.
        loss_history: χ² = Σ ((y − f)/σ)² at each step (numpy, length n_steps + 1); an
            optimistix solve records the start and the end only.
        residuals: y − f(params) in y's units (one array, or a tuple per term of a joint fit).
        weighted_residuals: (y − f)/σ, same layout.
        chi2, dof, reduced_chi2: final χ², N − P and χ²/(N − P).
        covariance_scaled: whether ``covariance`` was multiplied by χ²/(N − P).
        n_steps, converged, message: optimiser bookkeeping.
    """

    params: Any
    stderr: Any
    covariance: np.ndarray
    names: tuple = eqx.field(static=True)
    loss_history: np.ndarray = None
    residuals: Any = None
    weighted_residuals: Any = None
    chi2: float = eqx.field(static=True, default=float("nan"))
    dof: int = eqx.field(static=True, default=0)
    covariance_scaled: bool = eqx.field(static=True, default=False)
    n_steps: int = eqx.field(static=True, default=0)
    converged: bool = eqx.field(static=True, default=False)
    message: str = eqx.field(static=True, default="")

    @property
    def reduced_chi2(self) -> float:
        return self.chi2 / self.dof if self.dof > 0 else float("nan")

    @property
    def correlation(self) -> np.ndarray:
        """(P, P) correlation matrix cov_ij/(σ_i σ_j); NaN rows for undetermined parameters."""
        d = np.sqrt(np.diag(self.covariance))
        with np.errstate(invalid="ignore"):
            return self.covariance / np.outer(d, d)

    def __str__(self) -> str:
        values = np.concatenate([np.ravel(v) for v in jax.tree_util.tree_leaves(self.params)])
        errors = np.sqrt(np.diag(self.covariance))
        width = max([9] + [len(n) for n in self.names])
        lines = [
            f"FitResult: {self.message} after {self.n_steps} steps",
            f"  chi2 = {self.chi2:.6g}, dof = {self.dof}, chi2/dof = {self.reduced_chi2:.4g}; "
            + ("stderr scaled by sqrt(chi2/dof)" if self.covariance_scaled
               else "stderr from sigma as given (not rescaled)"),
            f"  {'parameter':<{width}}  {'value':>14}     {'stderr':<10}",
        ]
        for name, v, e in zip(self.names, values, errors):
            lines.append(f"  {name:<{width}}  {v:>14.7g}  ±  " + (
                "undetermined" if np.isinf(e) else f"{e:<10.3g}"))
        return "\n".join(lines)


# ----------------------------------------------------------------------------- public API


def _build(predict, params0, x, y, sigma, transforms):
    terms = _as_terms(predict, x, y, sigma)
    params0 = _checked_params0(params0)
    checked = [_checked(t, params0, i if len(terms) > 1 else -1) for i, t in enumerate(terms)]
    full = broadcast_transforms(transforms, params0)
    u_tree = inverse_tree(full, params0)
    _checks.check_finite(u_tree, "transformed params0")
    u0, unravel = ravel_pytree(u_tree)
    problem = _Problem(
        predicts=tuple(t.predict for t in terms), unravel=unravel,
        xs=tuple(c[0] for c in checked), ys=tuple(c[1] for c in checked),
        sigmas=tuple(c[2] for c in checked), transforms=full, u0=u0, basis=jnp.eye(u0.size),
    )
    return terms, problem, all(c[3] for c in checked)


def chi2(predict, params, x=None, y=None, sigma=None) -> jax.Array:
    """χ²(params) = Σ_terms Σ ((predict(params, x) − y)/σ)², the quantity :func:`fit` minimises.

    Same arguments as :func:`fit` (a single term, or a sequence of terms with x = y = None).
    Differentiable in ``params`` (e.g. ``jax.grad(lambda p: chi2(f, p, x, y, s))``). NaN/inf
    in concrete ``params`` raise ValueError; under jit/grad they propagate to a NaN χ².
    """
    terms = _as_terms(predict, x, y, sigma)
    _checks.check_finite(params, "params")
    total = 0.0
    for t in terms:
        s = 1.0 if t.sigma is None else jnp.asarray(t.sigma, dtype=float)
        r = (t.predict(params, t.x) - jnp.asarray(t.y, dtype=float)) / s
        total = total + jnp.sum(r**2)
    return total


def fit(predict, params0, x=None, y=None, sigma=None, *, optimizer=None, steps: Optional[int] = None,
        transforms=None, scale_covariance: Optional[bool] = None, rtol: float = 1e-10,
        progress: Optional[bool] = None) -> FitResult:
    """Weighted least squares: minimise χ² = Σ ((predict(params, x) − y)/σ)² over ``params``.

    Args:
        predict: ``predict(params, x) -> array`` shaped like ``y``; any differentiable JAX
            computation (e.g. σ_xy(μ) by ``js.hall_conductivity``). For a **joint fit** of
            several data sets with shared parameters, pass a sequence of terms
            ``[(predict_1, x_1, y_1, sigma_1), (predict_2, x_2, y_2), ...]`` (or ``Term``s)
            and leave x, y, sigma as None; χ² is the sum over all terms.
        params0: starting parameters, any PyTree of floats (a dict such as
            ``{"delta": 0.03, "v": 3.0}``). Parameters to hold fixed belong in ``predict``.
        x, y, sigma: abscissae (any PyTree), data (array), standard errors of y (None = unit
            weights, a scalar, or an array of y's shape).
        optimizer: an optax optimizer (default ``optax.lbfgs()`` with its zoom line search)
            or an optimistix solver: ``optx.LevenbergMarquardt(rtol=1e-8, atol=1e-8)``,
            ``optx.GaussNewton(...)`` or any ``optx.AbstractLeastSquaresSolver`` (or
            ``optx.AbstractMinimiser``, which then minimises χ²/2). Which to use:

            * Gauss–Newton / Levenberg–Marquardt for small, well-posed least squares (a few
              parameters that the data determine, a start near the optimum): each step solves
              with the N×P residual Jacobian (P forward-mode columns), no line search, and
              converges quadratically near the optimum. Levenberg–Marquardt adds a trust
              region (safer from a poor start, more steps); where χ² has several minima (the
              sharp σ_xy(n) peak of a Hall fit) its path may end in another one than L-BFGS.
            * optax L-BFGS (default) for many parameters (a step needs one gradient, not P
              Jacobian columns), losses that are not sums of squares, and as the safe default.
            * optax Adam with a schedule for noisy or rough losses, e.g.
              ``optax.adam(optax.cosine_decay_schedule(1.0, 3000))`` with ``steps=3000``
              (learning rates are in whitened units, see below: 1 ≈ one standard error).

            An optimistix solve is one compiled call: no progress bar, ``loss_history`` holds
            the start and the end, and the solver's own rtol/atol (on the whitened
            parameters, 1 ≈ one standard error, and on χ²/2) decide convergence, not ``rtol``.
        steps: maximum optimiser steps (default 200 for the default L-BFGS and for optimistix
            solvers, 2000 for other optax optimizers).
        transforms: ``js.fit.Positive()``, ``js.fit.Bounded(lo, hi)`` or None per parameter
            (a PyTree prefix of ``params0``; for dict params a dict naming some keys).
        scale_covariance: multiply the covariance by χ²/(N − P) (the usual "reduced-χ²"
            scaling, right when σ is unknown or only relative). Default: scale when any term
            has ``sigma=None``, otherwise trust σ as absolute standard errors.
        rtol: (optax) stop when χ² changed by ≤ rtol·χ² on two successive steps.
        progress: tqdm progress bar: True shows it, False hides it, None shows it only when a
            fit runs longer than 2 s.

    The optimiser walks in z, u = u0 + B z, where u are the unconstrained (transformed)
    parameters and B whitens the Gauss–Newton matrix at the start (BᵀJ₀ᵀJ₀B = 1), so one
    learning rate suits parameters of any unit, correlated or not. An optax fit runs in blocks
    of 25 steps, each one compiled ``lax.while_loop``; define ``predict`` once (not as a fresh
    lambda per call) so that later fits reuse the compiled program.

    Uncertainties: covariance = (Jᵀ W J)⁻¹ (Gauss–Newton, W = diag(1/σ²), J = ∂f/∂p at the
    optimum), times χ²/(N − P) when scaled; ``stderr`` = √diag. For transformed parameters
    the covariance is propagated to the user's parametrisation by the delta method
    (Cov_p = T Cov_u Tᵀ, T = ∂p/∂u), i.e. a linearised, symmetric ± on p itself; it is
    unreliable where a parameter sits against a ``Bounded`` limit. A parameter the data do not
    determine (singular JᵀWJ, e.g. one that does not enter ``predict``) gets stderr ``inf``
    (with a warning) instead of the pseudo-inverse's meaningless 0.

    Raises ValueError before any fitting for an empty or non-numeric ``params0`` (it holds only
    the floats to fit), NaN/inf in params0, x, y or sigma, sigma ≤ 0, shapes of x, y and sigma
    that do not match, and a ``predict`` that fails, or is not finite or not differentiable, at
    params0.
    """
    _, problem, weighted = _build(predict, params0, x, y, sigma, transforms)
    n_data = sum(int(np.size(t)) for t in problem.ys)
    n_par = problem.u0.size
    if scale_covariance is None:
        scale_covariance = not weighted
    if n_data <= n_par:
        raise ValueError(f"{n_data} data points cannot determine {n_par} parameters")
    solver = isinstance(optimizer, (optx.AbstractLeastSquaresSolver, optx.AbstractMinimiser))
    if steps is None:
        steps = DEFAULT_STEPS_LBFGS if optimizer is None or solver else DEFAULT_STEPS_OTHER
    if optimizer is None:
        optimizer = default_optimizer()
    elif not solver:
        optimizer = optax.with_extra_args_support(optimizer)
    if int(steps) < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")

    names = _leaf_names(params0)
    problem = eqx.tree_at(lambda p: p.basis, problem, _whitening(problem, names))
    if solver:
        z, converged, done, message, history = _solve(problem, optimizer, int(steps))
    else:
        z, converged, done, message, history = _descend(problem, optimizer, int(steps), rtol, progress)
    r = np.asarray(_residuals(problem, z))
    chi2_final = float(r @ r)
    history.append(chi2_final)
    if not converged:
        warnings.warn(f"js.fit {message}; chi2 = {chi2_final:.6g}", stacklevel=2)

    cov_p, undetermined, p_best = _covariance(problem, z)
    dof = n_data - n_par
    if scale_covariance:
        cov_p = cov_p * chi2_final / dof
    if np.any(undetermined):
        warnings.warn(f"parameters {[n for n, u in zip(names, undetermined) if u]} are not "
                      "determined by the data (singular Gauss-Newton matrix): their stderr is "
                      "inf", stacklevel=2)
        cov_p[undetermined, :] = cov_p[:, undetermined] = np.nan
        cov_p[undetermined, undetermined] = np.inf
    stderr_flat = np.sqrt(np.clip(np.diag(cov_p), 0.0, None))
    stderr = jax.tree_util.tree_map(np.asarray, ravel_pytree(p_best)[1](stderr_flat))

    # r = (f − y)/σ term by term: weighted residuals (y − f)/σ = −r, residuals y − f = −σ r
    pieces = np.split(r, np.cumsum([np.size(yy) for yy in problem.ys])[:-1])
    wres = [-piece.reshape(np.shape(yy)) for piece, yy in zip(pieces, problem.ys)]
    resid = [w * np.asarray(s) for w, s in zip(wres, problem.sigmas)]
    single = callable(predict)
    return FitResult(
        params=p_best, stderr=stderr, covariance=cov_p, names=tuple(names),
        loss_history=np.asarray(history), residuals=resid[0] if single else tuple(resid),
        weighted_residuals=wres[0] if single else tuple(wres), chi2=chi2_final, dof=dof,
        covariance_scaled=bool(scale_covariance), n_steps=done, converged=converged,
        message=message,
    )


def _descend(problem: _Problem, optimizer, steps: int, rtol: float, progress):
    """optax loop in compiled blocks of CHUNK steps (progress bar between blocks):
    (z, converged, steps taken, message, χ² before each step)."""
    z = jnp.zeros_like(problem.u0)
    state = optimizer.init(z)
    prev, calm = jnp.asarray(jnp.inf), jnp.asarray(0)
    history, done, bad = [], 0, False
    with tqdm(total=steps, desc="js.fit", disable=progress is False,
              delay=0.0 if progress else 2.0, leave=False) as bar:
        while done < steps:
            n_max = min(CHUNK, steps - done)
            z, state, prev, calm, n, hist, bad = _run_chunk(
                problem, optimizer, z, state, prev, calm, jnp.asarray(n_max), jnp.asarray(float(rtol)))
            n = int(n)
            history.extend(np.asarray(hist[:n]).tolist())
            done += n
            bar.update(n)
            bar.set_postfix(chi2=f"{2.0 * float(prev):.6g}", refresh=False)
            if bool(bad) or int(calm) >= 2:
                bar.total = done  # finished early: show the bar complete, not at done/steps
                bar.refresh()
                break
    converged = int(calm) >= 2 and not bool(bad)
    if converged:
        message = "converged"
    elif bool(bad):
        message = "stopped: loss or step not finite"
    else:
        message = f"not converged (step budget {steps} used)"
    return z, converged, done, message, history


def _solve(problem: _Problem, solver, steps: int):
    """One optimistix solve: (z, converged, steps taken, message, [χ² at the start])."""
    r0 = np.asarray(_residuals(problem, jnp.zeros_like(problem.u0)))
    z, done, result = _run_optimistix(problem, solver, steps)
    converged, done = bool(result == optx.RESULTS.successful), int(done)
    if converged:
        message = "converged"
    elif done >= steps:
        message = f"not converged (step budget {steps} used)"
    else:
        message = f"stopped: {optx.RESULTS[result]}"
    return z, converged, done, message, [float(r0 @ r0)]


def _whitening(problem: _Problem, names) -> jax.Array:
    """Basis B with Bᵀ (J₀ᵀJ₀) B = 1 at the start (J₀ = ∂r/∂u): in z the χ² is locally isotropic,
    so one learning rate suits parameters of any unit and L-BFGS's first step is Gauss–Newton's.
    Eigenvalues are clipped at 1e-8 of the largest, so unconstrained directions stay finite.
    Raises ValueError where the prediction or its derivative is not finite at params0."""
    z0 = jnp.zeros(problem.u0.size)
    r0 = np.asarray(_residuals(problem, z0))
    if not np.all(np.isfinite(r0)):
        raise ValueError(f"predict(params0, x) is NaN or inf at {np.sum(~np.isfinite(r0))} of "
                         f"{r0.size} data points: start from params0 where the model is defined")
    j0 = np.asarray(_jacobian(problem, z0))
    if not np.all(np.isfinite(j0)):  # forward mode spreads 0·inf to every column: name none
        raise ValueError("the derivative of predict(params, x) is NaN or inf at params0 (e.g. sqrt "
                         "or log at 0): start from another params0, or keep the parameter off the "
                         "singular point with a transform such as Positive()")
    curvature = np.sum(j0**2, axis=0)
    dead = [n for n, c in zip(names, curvature) if not c > 0]
    if dead:
        warnings.warn(f"parameters {dead} do not change the prediction at params0", stacklevel=3)
    d = np.where(curvature > 0, 1.0 / np.sqrt(np.where(curvature > 0, curvature, 1.0)), 1.0)
    lam, vec = np.linalg.eigh((j0 * d).T @ (j0 * d))
    lam = np.maximum(lam, 1e-8 * max(lam.max(), 1e-300))
    return jnp.asarray((d[:, None] * vec) / np.sqrt(lam))


def _covariance(problem: _Problem, z):
    """Gauss–Newton covariance (Jᵀ J)⁻¹ in z, carried to the user's parameters: Cov_p = A Cov_z Aᵀ
    with A = ∂p/∂z (transform Jacobian times the whitening basis). Directions of JᵀJ with
    eigenvalue ≤ RCOND × the largest are left out; a parameter that moves along one of them
    (relative weight > 1e-6 in its row of A) is returned as undetermined (boolean mask)."""
    jz = np.asarray(_jacobian(problem, z))
    a = np.asarray(jax.jacfwd(lambda zz: ravel_pytree(problem.params(zz))[0])(z))
    lam, vec = np.linalg.eigh(jz.T @ jz)
    null = lam <= RCOND * max(lam.max(), 0.0)
    cov_z = (vec[:, ~null] / lam[~null]) @ vec[:, ~null].T
    leak = np.linalg.norm(a @ vec[:, null], axis=1)
    undetermined = leak > 1e-6 * np.linalg.norm(a, axis=1)
    return a @ cov_z @ a.T, undetermined, jax.tree_util.tree_map(np.asarray, problem.params(z))
