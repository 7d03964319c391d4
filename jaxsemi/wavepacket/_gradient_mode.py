"""Reverse-mode gradients through ``evolve``'s default adjoint, taken in forward mode where few inputs are
differentiated.

Reverse mode through an adaptive solve runs the solve, then walks its steps backwards, recomputing and transposing
each (``StoredStepsAdjoint``; on the CPU ~200 kernels a step against the forward's ~90, and one trajectory is
dispatch-bound): 3.1–3.5× the solve for ∂x(t1)/∂k0 of one Landau–Zener sweep. Forward mode carries one tangent per
differentiated input scalar beside the solve (``diffrax.ForwardMode``) and walks nothing back, so where at most
``FORWARD_MODE_INPUTS`` real scalars are differentiated (∂P/∂Δ, ∂x(t1)/∂k0, a field amplitude; counted per
trajectory of a vmapped batch, whose direction along one of its own scalars moves that scalar of every
trajectory at once) ``differentiated`` computes the solve's Jacobian in them in forward mode inside its
reverse-mode rule, and the backward pass contracts it with the cotangents; with more, or a complex one, it takes
the reverse mode of the default adjoint.
Measured on one K = 5 sweep (2026-12-06, 2-core CPU, medians of alternating calls): ∂P/∂Δ 1.3× the solve; x(t1) in
one input scalar (Δ, or one component of k0) 2.0–2.5×, in two 2.5–3.1×, three 3.3× and four 3.7×, against 3.1–3.4×
in reverse mode whatever their number (the tangent of the centre's Hellmann–Feynman increments costs as much for
one input as for two); ∂(ΣP)/∂Δ of 50 vmapped sweeps 1.35× against 2.9–3.2×. The compile is shorter too (∂P/∂Δ:
6.4–7.7 s against 10.8–14.5 s for the first call).

An input scalar counts where JAX differentiates it, which it decides by data flow: a slice of a
differentiated vector (``z[1:]`` of z = (Δ, k0)) counts even where its own tangent is zero. The two modes
differentiate the same discrete solve, but compiled apart they round the step-doubling error estimate
differently and the controller may take other steps (one K = 20 sweep: 460 against 453), so they agree to
the solve's accuracy, not to rounding (∂P/∂Δ there: −2.2924582 against −2.2924599, the formula −2.2924600).
"""

from __future__ import annotations

import dataclasses

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

#: Most differentiated real input scalars (per trajectory) whose gradient is taken in forward mode.
FORWARD_MODE_INPUTS = 2


def differentiated(fn, config, inputs, *static, batched: bool = False):
    """``fn(config, *inputs, *static)`` whose reverse-mode derivatives in ``inputs`` (a tuple of pytrees) are
    taken in forward mode where at most ``FORWARD_MODE_INPUTS`` real scalars of them are differentiated and
    ``config.options.adjoint`` is the default (None); ``config`` and ``static`` are not differentiated.

    ``batched``: ``inputs`` is (shared, per_trajectory), the leaves of per_trajectory and of fn's outputs carry a
    leading trajectory axis, and trajectory i's outputs depend on the shared inputs and its own slice alone (fn
    is a vmap); the differentiated scalars are then counted per trajectory, and forward mode carries one tangent
    per such scalar for the whole batch.

    Call it outside the package's own jitted functions (inside a caller's jit is fine: the caller's
    transformations then trace it directly): JAX 0.10.2 reads a custom_vjp's residual layout, when it transposes,
    from a store that its forward rule fills each time it is traced, and a custom_vjp inside a jitted function is
    traced once per perturbation pattern and memoised, so a process that differentiates the same jitted call in
    inputs A, then B, then A again pulls A's residuals back with B's layout (a ``safe_zip`` length error)."""
    if config.options.adjoint is not None:
        return fn(config, *inputs, *static)
    return _by_mode(inputs, fn, config, static, batched)


def _ravel(diff, inputs, batched):
    """The differentiated scalars, flat — (shared (ds,), per trajectory (n, dp)) where ``batched``, else (all
    (d,), None) — and the map back to ``diff``'s structure."""
    if not batched:
        flat, unravel = ravel_pytree(diff)
        return (flat, None), lambda v: unravel(v[0])
    (shared, per), n = diff, _trajectories(inputs[1])
    flat, unravel_shared = ravel_pytree(shared)
    leaves, tree = jax.tree_util.tree_flatten(per)
    rows = [leaf.reshape(n, -1) for leaf in leaves]
    flat_per = jnp.concatenate(rows, axis=1) if rows else jnp.zeros((n, 0), flat.dtype)
    ends = np.cumsum([r.shape[1] for r in rows])[:-1]

    def unravel(v):
        parts = jnp.split(v[1], ends, axis=1)
        return unravel_shared(v[0]), tree.unflatten(
            [part.reshape(leaf.shape).astype(leaf.dtype) for part, leaf in zip(parts, leaves)])

    return (flat, flat_per), unravel


def _trajectories(per) -> int:
    return next(a.shape[0] for a in jax.tree_util.tree_leaves(per) if eqx.is_array(a))


def _forward_mode(diff, inputs, batched) -> bool:
    """Whether the differentiated leaves ``diff`` (None elsewhere) are few enough (per trajectory where
    ``batched``), and real, for forward mode."""
    leaves = jax.tree_util.tree_leaves(diff)
    if not all(jnp.issubdtype(leaf.dtype, jnp.floating) for leaf in leaves):
        return False
    if batched:
        n = _trajectories(inputs[1])
        count = sum(leaf.size for leaf in jax.tree_util.tree_leaves(diff[0])) \
            + sum(leaf.size // n for leaf in jax.tree_util.tree_leaves(diff[1]))
    else:
        count = sum(leaf.size for leaf in leaves)
    return 0 < count <= FORWARD_MODE_INPUTS


def _with_adjoint(config, adjoint):
    return dataclasses.replace(config, options=dataclasses.replace(config.options, adjoint=adjoint))


@eqx.filter_custom_vjp
def _by_mode(inputs, fn, config, static, batched):
    return fn(config, *inputs, *static)


def _partition(inputs, perturbed):
    """(differentiated leaves as arrays — a Python float differentiated eagerly comes as one — None elsewhere,
    the rest)."""
    diff, rest = eqx.partition(inputs, perturbed)
    return jax.tree_util.tree_map(jnp.asarray, diff), rest


@_by_mode.def_fwd
def _by_mode_fwd(perturbed, inputs, fn, config, static, batched):
    diff, rest = _partition(inputs, perturbed)
    if _forward_mode(diff, inputs, batched):
        return _jacobian(diff, rest, inputs, fn, _with_adjoint(config, diffrax.ForwardMode()), static, batched)
    return _pullback(diff, rest, fn, config, static)


def _jacobian(diff, rest, inputs, fn, config, static, batched):
    """The outputs and their tangents (m, ...) along each of the m differentiated scalars (of one trajectory:
    a per-trajectory direction moves that scalar of every trajectory at once)."""
    (flat, flat_per), unravel = _ravel(diff, inputs, batched)

    def run(v, v_per):
        return fn(config, *eqx.combine(unravel((v, v_per)), rest), *static)

    m = flat.size + (0 if flat_per is None else flat_per.shape[1])
    basis = jnp.eye(m, dtype=flat.dtype)
    along = basis[:, :flat.size]
    along_per = None if flat_per is None else jnp.broadcast_to(
        basis[:, None, flat.size:].astype(flat_per.dtype), (m,) + flat_per.shape)
    return eqx.filter_vmap(lambda t, t_per: eqx.filter_jvp(run, (flat, flat_per), (t, t_per)),
                           out_axes=(None, eqx.if_array(0)))(along, along_per)


def _pullback(diff, rest, fn, config, static):
    """The outputs, and the reverse-mode pullback with zeros standing in for the cotangents of outputs that are
    not differentiated (None in the backward pass)."""
    def run(d):
        return eqx.partition(fn(config, *eqx.combine(d, rest), *static), eqx.is_inexact_array)

    arrays, pullback, other = jax.vjp(run, diff, has_aux=True)
    return eqx.combine(arrays, other), (pullback, jax.tree_util.tree_map(jnp.zeros_like, arrays))


@_by_mode.def_bwd
def _by_mode_bwd(residuals, cotangents, perturbed, inputs, fn, config, static, batched):
    diff, _ = _partition(inputs, perturbed)
    if _forward_mode(diff, inputs, batched):
        (flat, flat_per), unravel = _ravel(diff, inputs, batched)
        tangents, tree = jax.tree_util.tree_flatten(residuals, is_leaf=lambda a: a is None)
        given = tree.flatten_up_to(cotangents)
        pairs = [(t, c) for t, c in zip(tangents, given) if t is not None and c is not None]

        def along(v, v_per):  # Σ_j v_j ∂out/∂v_j, v_per weighting each trajectory's own tangents
            return [jnp.tensordot(v, t[:flat.size], 1) + (
                0 if v_per is None else jnp.einsum("nj,jn...->n...", v_per, t[flat.size:])) for t, _ in pairs]

        # its transpose, with JAX's conventions for complex outputs
        return unravel(jax.linear_transpose(along, flat, flat_per)([c for _, c in pairs]))
    pullback, zeros = residuals
    zeros, tree = jax.tree_util.tree_flatten(zeros, is_leaf=lambda a: a is None)
    given = tree.flatten_up_to(cotangents)
    return pullback(tree.unflatten([z if c is None else c for z, c in zip(zeros, given)]))[0]
