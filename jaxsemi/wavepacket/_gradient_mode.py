"""Reverse-mode gradients through ``evolve``'s default adjoint, taken in forward mode where few inputs are
differentiated.

Reverse mode through an adaptive solve runs the solve, then walks its steps backwards, recomputing and transposing
each (``StoredStepsAdjoint``; on the CPU ~200 kernels a step against the forward's ~90, and one trajectory is
dispatch-bound): 3.1–3.5× the solve for ∂x(t1)/∂k0 of one Landau–Zener sweep. Forward mode carries one tangent per
differentiated input scalar beside the solve (``diffrax.ForwardMode``) and walks nothing back, so where at most
``FORWARD_MODE_INPUTS`` real scalars are differentiated (∂P/∂Δ, ∂x(t1)/∂k0, a field amplitude) ``differentiated``
computes the solve's Jacobian in them in forward mode inside its reverse-mode rule, and the backward pass
contracts it with the cotangents; with more, or a complex one, it takes the reverse mode of the default adjoint.
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
from jax.flatten_util import ravel_pytree

#: Most differentiated real input scalars (per trajectory) whose gradient is taken in forward mode.
FORWARD_MODE_INPUTS = 2


def differentiated(fn, config, inputs, *static):
    """``fn(config, *inputs, *static)`` whose reverse-mode derivatives in ``inputs`` (a tuple of pytrees) are
    taken in forward mode where at most ``FORWARD_MODE_INPUTS`` real scalars of them are differentiated and
    ``config.options.adjoint`` is the default (None); ``config`` and ``static`` are not differentiated."""
    if config.options.adjoint is not None:
        return fn(config, *inputs, *static)
    return _by_mode(inputs, fn, config, static)


def _forward_mode(diff) -> bool:
    """Whether the differentiated leaves ``diff`` (None elsewhere) are few enough, and real, for forward mode."""
    leaves = jax.tree_util.tree_leaves(diff)
    return all(jnp.issubdtype(leaf.dtype, jnp.floating) for leaf in leaves) \
        and 0 < sum(leaf.size for leaf in leaves) <= FORWARD_MODE_INPUTS


def _with_adjoint(config, adjoint):
    return dataclasses.replace(config, options=dataclasses.replace(config.options, adjoint=adjoint))


@eqx.filter_custom_vjp
def _by_mode(inputs, fn, config, static):
    return fn(config, *inputs, *static)


@_by_mode.def_fwd
def _by_mode_fwd(perturbed, inputs, fn, config, static):
    diff, rest = eqx.partition(inputs, perturbed)
    if _forward_mode(diff):
        return _jacobian(diff, rest, fn, _with_adjoint(config, diffrax.ForwardMode()), static)
    return _pullback(diff, rest, fn, config, static)


def _jacobian(diff, rest, fn, config, static):
    """The outputs and their tangents (n, ...) along each of the n input scalars of ``diff``."""
    flat, unravel = ravel_pytree(diff)

    def run(v):
        return fn(config, *eqx.combine(unravel(v), rest), *static)

    basis = jnp.eye(flat.size, dtype=flat.dtype)
    return eqx.filter_vmap(lambda t: eqx.filter_jvp(run, (flat,), (t,)), out_axes=(None, eqx.if_array(0)))(basis)


def _pullback(diff, rest, fn, config, static):
    """The outputs, and the reverse-mode pullback with zeros standing in for the cotangents of outputs that are
    not differentiated (None in the backward pass)."""
    def run(d):
        return eqx.partition(fn(config, *eqx.combine(d, rest), *static), eqx.is_inexact_array)

    arrays, pullback, other = jax.vjp(run, diff, has_aux=True)
    return eqx.combine(arrays, other), (pullback, jax.tree_util.tree_map(jnp.zeros_like, arrays))


@_by_mode.def_bwd
def _by_mode_bwd(residuals, cotangents, perturbed, inputs, fn, config, static):
    diff, _ = eqx.partition(inputs, perturbed)
    if _forward_mode(diff):
        flat, unravel = ravel_pytree(diff)
        tangents, tree = jax.tree_util.tree_flatten(residuals, is_leaf=lambda a: a is None)
        given = tree.flatten_up_to(cotangents)
        pairs = [(t, c) for t, c in zip(tangents, given) if t is not None and c is not None]
        # the transpose of v ↦ Σ_i v_i ∂out/∂v_i, with JAX's conventions for complex outputs
        (grad,) = jax.linear_transpose(lambda v: [jnp.tensordot(v, t, 1) for t, _ in pairs], flat)(
            [c for _, c in pairs])
        return unravel(grad)
    pullback, zeros = residuals
    zeros, tree = jax.tree_util.tree_flatten(zeros, is_leaf=lambda a: a is None)
    given = tree.flatten_up_to(cotangents)
    return pullback(tree.unflatten([z if c is None else c for z, c in zip(zeros, given)]))[0]
