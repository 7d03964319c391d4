"""Input validation shared by every public entry point.

Type and shape errors are raised as plain ``TypeError``/``ValueError`` before any tracing.
Value checks (finiteness, temperature, Hermiticity, gaps) go through ``fail_if``: with
concrete inputs (an eager call, or ``jax.grad`` outside jit) they raise a ``ValueError``
that quotes the offending values; under ``jax.jit``/``vmap`` they become an
``equinox.error_if`` check compiled into the program, which raises when it runs (JAX
dispatches asynchronously: on a GPU the error surfaces when the result is waited for, e.g.
``jax.block_until_ready`` or ``np.asarray``; ``equinox.filter_jit`` waits itself). Every
check returns the value it checked: use the returned value, or the compiled check is dropped;
or pass ``defer=Deferred()`` to several checks and ``apply`` them at once to the inputs.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Optional, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


class ConvergenceWarning(RuntimeWarning):
    """A numerical result may be unconverged (a budget ran out or a grid is too coarse)."""


def is_concrete(*trees: Any) -> bool:
    """True when no leaf of ``trees`` is a JAX tracer (values can be inspected)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(trees))


def stop_gradient(tree: Any) -> Any:
    """``tree`` with the gradient stopped on every traced leaf (concrete leaves carry no gradient:
    they pass as they are, without an eager operation each)."""
    return jax.tree_util.tree_map(lambda a: jax.lax.stop_gradient(a) if isinstance(a, jax.core.Tracer) else a, tree)


class Deferred:
    """Traced checks gathered while validating inputs, compiled as one check by ``apply``.

    Apply it to the inputs before they are used (``params, mu = checks.apply((model.params,
    mu))``; not to a whole ``Model``, whose lattice must stay concrete):
    one ``equinox.branched_error_if`` instead of one per check, and it survives ``jax.grad``
    (a check on an output is dropped when the gradient does not need the output's value).
    """

    def __init__(self):
        self.pending: list[tuple[Any, str]] = []

    def apply(self, tree: Any) -> Any:
        """``tree`` carrying every gathered check (``traced_error_if``)."""
        return traced_error_if(tree, self.pending) if self.pending else tree


def concrete_eval(fn: Callable, *args: Any) -> Any:
    """``fn(*args)`` under ``jax.ensure_compile_time_eval``: a predicate computed from concrete
    inputs stays concrete inside jit (a bad constant fails at trace time, nothing is compiled
    for it). Call ``fail_if``/``equinox.error_if`` outside it (they misbehave inside)."""
    with jax.ensure_compile_time_eval():
        return fn(*args)


def fail_if(x: Any, pred: Any, msg: str, eager_msg: Optional[Callable[[], str]] = None,
            defer: Optional[Deferred] = None) -> Any:
    """Return ``x``, failing with ``msg`` if any ``pred`` is true.

    A concrete ``pred`` raises ``ValueError(eager_msg() or msg)`` at once; a traced one (under
    jit or vmap) compiles an ``equinox.error_if`` on ``x`` that raises ``msg`` when the
    program runs, or, with ``defer``, is gathered there and ``x`` is returned unchanged. A traced
    ``pred`` on an ``x`` without arrays has nothing to ride on and is not checked.
    """
    if is_concrete(pred):
        if np.any(np.asarray(pred)):
            raise ValueError(eager_msg() if eager_msg else msg)
        return x
    if defer is not None:
        defer.pending.append((pred, msg))
        return x
    if not any(eqx.is_array(leaf) for leaf in jax.tree_util.tree_leaves(x)):
        return x  # nothing to carry the check (a model without array parameters whose 𝓗 closes over a tracer)
    return eqx.error_if(x, jnp.any(pred), msg)


def check_finite(tree: Any, name: str, defer: Optional[Deferred] = None) -> Any:
    """Fail if a float or complex leaf of ``tree`` holds NaN or inf; returns ``tree``."""

    def one(path, leaf):
        arr = np.asarray(leaf) if isinstance(leaf, (float, complex)) else leaf
        if not (eqx.is_array(arr) and jnp.issubdtype(arr.dtype, jnp.inexact)):
            return leaf
        where = f"{name}{jax.tree_util.keystr(path)}"
        bad = (not np.all(np.isfinite(np.asarray(arr))) if is_concrete(arr)
               else concrete_eval(lambda a: ~jnp.all(jnp.isfinite(a)), arr))
        return fail_if(leaf, bad, f"{where} contains NaN or inf",
                       lambda: f"{where} contains NaN or inf: {np.asarray(stop_gradient(arr))!r}", defer)

    return jax.tree_util.tree_map_with_path(one, tree)


def check_kT(kT: Any, *, positive: bool = False, why: str = "", defer: Optional[Deferred] = None) -> Any:
    """kT in eV must be finite and ≥ 0 (> 0 when ``positive``; ``why`` says which term needs
    it); returns ``kT``."""
    kT = check_finite(kT, "kT", defer)
    shown = lambda: np.asarray(stop_gradient(kT))  # noqa: E731
    kT = fail_if(kT, concrete_eval(lambda t: t < 0, as_array(kT)), "kT must be >= 0 eV",
                 lambda: f"kT must be >= 0 eV, got {shown()}", defer)
    if positive:
        msg = (f"kT must be > 0 eV here{': ' + why if why else ''} (the derivative of a step "
               "function is zero, so kT = 0 would silently drop Fermi-surface terms)")
        kT = fail_if(kT, concrete_eval(lambda t: t <= 0, as_array(kT)), msg, defer=defer)
    return kT


def is_host(*trees: Any) -> bool:
    """True when no leaf of ``trees`` is a JAX array or tracer (Python numbers, NumPy arrays)."""
    return not any(isinstance(leaf, (jax.Array, jax.core.Tracer)) for leaf in jax.tree_util.tree_leaves(trees))


def as_array(a: Any, dtype: Any = None) -> Any:
    """``a`` as an array of ``dtype`` (``float``: JAX's default float): a NumPy array for host values
    (Python numbers, lists, NumPy arrays), a JAX array for JAX arrays and tracers. Checking and
    reshaping host values in NumPy spares an eager call the dispatch of each JAX operation (tens of
    µs each on a CPU, a kernel launch each on a GPU); the compiled program takes them as inputs
    either way. With ``dtype=float`` complex values raise a ``TypeError`` on every route (the dtype is
    known at trace time, so also under jit/vmap/grad)."""
    out = np.asarray(a) if is_host(a) else jnp.asarray(a)
    if dtype is float:
        if jnp.iscomplexobj(out):
            raise TypeError(f"expected real values, got complex {_short(out)}")
        dtype = jnp.result_type(float)  # float32 with JAXSEMI_X64=0, as JAX's default
    return out if dtype is None else out.astype(dtype)


def as_points(k: Any, dim: int, name: str = "k", defer: Optional[Deferred] = None) -> Any:
    """Validate a batch of points with last axis ``dim``; returns a float array (..., dim)
    (NumPy for host input, see ``as_array``)."""
    arr = as_array(k)
    if arr.ndim == 0 or arr.shape[-1] != dim:
        raise ValueError(
            f"{name} must have shape (..., {dim}) for a {dim}D model, got shape {arr.shape}"
        )
    if jnp.issubdtype(arr.dtype, jnp.complexfloating):
        raise ValueError(f"{name} must be real, got dtype {arr.dtype}")
    if not jnp.issubdtype(arr.dtype, jnp.number):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    return check_finite(arr, name, defer).astype(jnp.result_type(float))


def band_slice(bands: Any, n_bands: int) -> tuple[int, int]:
    """Normalise a band index or a contiguous sequence of band indices to ``(start, stop)``."""
    if isinstance(bands, (int, np.integer)):
        idx = [int(bands)]
    else:
        try:
            idx = [int(b) for b in bands]
        except TypeError as err:
            raise ValueError(f"bands must be an int or a sequence of ints, got {bands!r}") from err
    if not idx:
        raise ValueError("bands must name at least one band")
    for b in idx:
        if not 0 <= b < n_bands:
            raise ValueError(f"band index {b} out of range for a model with {n_bands} bands")
    if idx != list(range(idx[0], idx[0] + len(idx))):
        raise ValueError(f"bands must be contiguous and increasing, got {idx}")
    return idx[0], idx[0] + len(idx)


def check_model(model: Any, name: str = "model", defer: Optional[Deferred] = None):
    """A ``jaxsemi.Model`` with finite parameters (else TypeError / ValueError); returns it."""
    from ._model import Model

    if not isinstance(model, Model):
        raise TypeError(f"{name} must be a jaxsemi.Model, got {type(model).__name__} {_short(model)}")
    if is_concrete(model.params):
        check_finite(model.params, f"{name}.params")
        return model
    return model.with_params(check_finite(model.params, f"{name}.params", defer))


def check_grid(grid: Any, dim: Optional[int] = None, name: str = "grid", defer: Optional[Deferred] = None):
    """A k-grid (of ``dim``-dimensional points, if given) with finite points and weights; returns it."""
    from .kspace.grids import AbstractGrid

    if not isinstance(grid, AbstractGrid):
        raise TypeError(
            f"{name} must be a k-grid (js.kgrid.brillouin_zone(...), js.kgrid.disk(...) or "
            f"js.KGrid(points, weights)), got {type(grid).__name__} {_short(grid)}"
        )
    if dim is not None and grid.dim != dim:
        raise ValueError(f"{name} points are {grid.dim}D but the model is {dim}D")
    return check_finite(grid, name, defer)


def _short(obj: Any) -> str:
    """How to show a wrong argument: its shape for arrays, else a clipped repr."""
    if hasattr(obj, "shape"):
        return f"of shape {tuple(obj.shape)}"
    text = repr(obj)
    return text if len(text) <= 60 else text[:57] + "..."


def spread(n: int, m: int = 16) -> np.ndarray:
    """Up to ``m`` indices spread evenly over range(n) (where cheap checks look)."""
    return np.unique(np.linspace(0, n - 1, m).round().astype(int)) if n else np.zeros(0, int)


def check_hermitian_at(model, k, x, rtol: float = 1e-10, defer: Optional[Deferred] = None,
                       compiled: bool = True):
    """Fail if 𝓗(k_i, x_i) is not Hermitian at some of the points k, x (m, d); returns ``model``
    (under jit, its parameters carry the check). ``k`` may be a k-grid: then up to 16 of its points,
    spread over its flat index, taken inside the same compiled probe.

    The tolerance is max(rtol, 100 ε) relative to max |𝓗| at each point (ε of the dtype).
    ``compiled``: evaluate through a cached compiled function (cheap on repeated calls; pass
    False where each model would compile it once for a single use).
    """
    params, k, x = stop_gradient((model.params, k, x))
    deviation = _hermiticity if compiled else _hermiticity.__wrapped__
    dev, scale, bad, k = concrete_eval(deviation, model.hamiltonian, params, k, x, rtol)

    def eager_msg():
        i = int(np.argmax(np.where(np.asarray(bad), np.asarray(dev), -1.0)))
        ki, xi = (np.broadcast_to(np.asarray(a), np.shape(dev) + np.shape(a)[-1:])[i] for a in (k, x))
        where = f"k = {ki}, x = {xi}"
        return (f"Hamiltonian is not Hermitian at {where}: max |H - H^dagger| = {float(dev[i]):.3e} "
                f"(max |H| = {float(scale[i]):.3e})")

    checked = fail_if(model.params, bad, "Hamiltonian is not Hermitian at one of the checked points "
                      "(high-symmetry, random and grid points)", eager_msg, defer)
    return model if checked is model.params else model.with_params(checked)


@eqx.filter_jit
def _hermiticity(hamiltonian, params, k, x, rtol):
    """max |H − H†| (m,), max |H| (m,), whether the first exceeds the tolerance, per point (k and x
    broadcast against each other), and the points k (a grid: ``spread`` of its points)."""
    from .kspace.grids import AbstractGrid

    if isinstance(k, AbstractGrid):
        k = k.take(jnp.asarray(spread(k.size)))[0]
    h = jax.vmap(lambda kk, xx: hamiltonian(kk, xx, params))(*jnp.broadcast_arrays(k, x))
    dev = jnp.max(jnp.abs(h - jnp.conj(jnp.swapaxes(h, -1, -2))), axis=(-2, -1))
    scale = jnp.max(jnp.abs(h), axis=(-2, -1))
    tol = max(rtol, 100 * float(jnp.finfo(h.dtype).eps))
    return dev, scale, dev > tol * scale + 1e-14, k


def check_gap_open(x: Any, gap, points, start: int, stop: int, tol: float = 1e-6,
                   defer: Optional[Deferred] = None) -> Any:
    """Fail if a gap (eV) of the manifold [start, stop) to the other bands, sampled at ``points``
    (``gap`` (N,), ``points`` (N, d)), is < tol; returns ``x``."""
    msg = f"the gap between bands [{start}, {stop}) and the remaining bands closes on the grid"

    def eager_msg():
        i = int(np.argmin(np.asarray(gap)))
        return (f"{msg}: {float(gap[i]):.3e} eV at k = {np.asarray(points)[i]} (1/Å); "
                "choose a different manifold")

    return fail_if(x, concrete_eval(lambda g: jnp.min(g) < tol, gap),
                   f"{msg} (< {tol:g} eV); choose a different manifold", eager_msg, defer)


def check_int_sequence(n: Any, dim: int, name: str, minimum: int = 2) -> tuple[int, ...]:
    """An int or a length-``dim`` sequence of ints, each ≥ ``minimum``."""
    try:
        seq: Sequence[int] = (operator.index(n),) * dim if np.ndim(n) == 0 else tuple(operator.index(s) for s in n)
    except TypeError as err:
        raise ValueError(f"{name} must be an int or a sequence of {dim} ints, got {n!r}") from err
    if len(seq) != dim:
        raise ValueError(f"{name} must be an int or a sequence of {dim} ints, got {n!r}")
    if any(s < minimum for s in seq):
        raise ValueError(f"{name} needs at least {minimum} points per axis, got {seq}")
    return seq


# ------------------------------------------------ value checks that survive jit / vmap / grad


def traced_error_if(x: Any, checks: Sequence[tuple[Any, str]]) -> Any:
    """``x`` carrying one ``eqx.branched_error_if``: when the compiled program runs, it raises the
    ``msg`` of a failing ``(pred, msg)`` (``pred`` true anywhere, also under vmap). Use the
    returned value. Meant for traced inputs; concrete ones get a plain ``ValueError`` beforehand.

    The check rides on the traced leaves of ``x`` (on all of them only where none is traced): concrete ones
    (a grid or a model closed over by ``jax.jit``) stay concrete, so the static fast paths they select
    (``_bloch.structure`` reads a concrete grid basis) still apply — routed through the check, a 32-band σ_xy
    under ``jax.jit`` lost the grid-structured Bloch sum and took 1.8× as long."""
    preds = jnp.stack([jnp.any(jnp.asarray(pred)) for pred, _ in checks])
    leaves, treedef = jax.tree_util.tree_flatten(x)
    traced = [i for i, leaf in enumerate(leaves) if isinstance(leaf, jax.core.Tracer)] or list(range(len(leaves)))
    checked = eqx.branched_error_if([leaves[i] for i in traced], jnp.any(preds), jnp.argmax(preds),
                                    [msg for _, msg in checks])
    for i, leaf in zip(traced, checked):
        leaves[i] = leaf
    return jax.tree_util.tree_unflatten(treedef, leaves)


def not_finite(tree: Any) -> jax.Array:
    """Scalar bool: some float or complex leaf of ``tree`` holds NaN or inf."""
    leaves = jax.tree_util.tree_leaves(tree)
    bad = [~jnp.all(jnp.isfinite(a)) for a in leaves if jnp.issubdtype(jnp.result_type(a), jnp.inexact)]
    return jnp.any(jnp.array(bad or [False]))
