"""Parameter transforms: fit an unconstrained u, report p = forward(u) in the user's units.

Uncertainties are always reported for p (the user's parametrisation), by the delta method:
Cov_p = T Cov_u Tᵀ with T = ∂p/∂u at the optimum. For the Gauss–Newton covariance this equals
(J_pᵀ W J_p)⁻¹ computed directly in p, so a transform changes *where the optimiser walks*, not
the reported ±: a linearised, symmetric standard error. Near a bound (p → lower/upper of
``Bounded``) T → 0 and the linearisation breaks down; treat such stderr as unreliable.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


class AbstractTransform(eqx.Module):
    """p = forward(u) maps the unconstrained real line onto the allowed range of p."""

    @abc.abstractmethod
    def forward(self, u):
        """Unconstrained u → parameter p (elementwise)."""

    @abc.abstractmethod
    def inverse(self, p):
        """Parameter p → unconstrained u (elementwise); ValueError if p is out of range."""


class Identity(AbstractTransform):
    """No constraint: p = u."""

    def forward(self, u):
        return u

    def inverse(self, p):
        return p


class Positive(AbstractTransform):
    """p > 0 through p = exp(u): the optimiser walks in log p (natural for scales: v, |Δ|, τ, kT)."""

    def forward(self, u):
        return jnp.exp(u)

    def inverse(self, p):
        arr = np.asarray(p)
        if np.any(arr <= 0):
            raise ValueError(f"Positive parameter needs an initial value > 0, got {arr}")
        return jnp.log(p)


class Bounded(AbstractTransform):
    """lower < p < upper through p = lower + (upper − lower)·sigmoid(u)."""

    lower: float
    upper: float

    def __init__(self, lower, upper):
        if not float(lower) < float(upper):
            raise ValueError(f"Bounded needs lower < upper, got ({lower}, {upper})")
        self.lower = float(lower)
        self.upper = float(upper)

    def forward(self, u):
        return self.lower + (self.upper - self.lower) * jax.nn.sigmoid(u)

    def inverse(self, p):
        arr = np.asarray(p)
        if np.any(arr <= self.lower) or np.any(arr >= self.upper):
            raise ValueError(
                f"Bounded({self.lower}, {self.upper}) parameter needs an initial value strictly "
                f"inside the bounds, got {arr}"
            )
        t = (jnp.asarray(p) - self.lower) / (self.upper - self.lower)
        return jnp.log(t) - jnp.log1p(-t)


def _is_transform(t) -> bool:
    return t is None or isinstance(t, AbstractTransform)


def broadcast_transforms(transforms, params):
    """A full PyTree of transforms matching ``params`` (one per leaf).

    ``transforms`` is None, a single transform (applied to every leaf), or a PyTree prefix of
    ``params`` with transforms or None (= Identity) as leaves; for dict parameters a dict naming
    only some keys is enough (the others are unconstrained).
    """
    if transforms is None:
        transforms = Identity()
    if isinstance(transforms, dict) and isinstance(params, dict):
        unknown = set(transforms) - set(params)
        if unknown:
            raise ValueError(f"transforms name parameters that params0 lacks: {sorted(unknown)}")
        transforms = {key: transforms.get(key) for key in params}
    try:
        full = jax.tree_util.tree_map(
            lambda t, sub: jax.tree_util.tree_map(lambda _: t or Identity(), sub),
            transforms, params, is_leaf=_is_transform,
        )
    except ValueError as err:
        raise ValueError(f"transforms must be a PyTree prefix of params0: {err}") from err
    return full


def forward_tree(transforms, u):
    return jax.tree_util.tree_map(lambda t, x: t.forward(x), transforms, u, is_leaf=_is_transform)


def inverse_tree(transforms, p):
    return jax.tree_util.tree_map(lambda t, x: t.inverse(x), transforms, p, is_leaf=_is_transform)
