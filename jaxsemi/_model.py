"""``Model``: a pure JAX Hamiltonian 𝓗(k, x; θ) with its parameters, dimension and lattice."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import _checks, _lattice


@dataclasses.dataclass(frozen=True)
class bind:
    """A Hamiltonian function with static keyword options, equal by value.

    ``bind(fn, valley=1)`` behaves like ``functools.partial`` but two equal bindings compare
    and hash equal, so rebuilding a model with new parameters never triggers a recompile.
    """

    fn: Callable
    options: tuple = ()

    def __init__(self, fn: Callable, **options: Any):
        object.__setattr__(self, "fn", fn)
        object.__setattr__(self, "options", tuple(sorted(options.items())))

    def __call__(self, k, x, params):
        return self.fn(k, x, params, **dict(self.options))


#: Two-band Hamiltonian function → its d-vector function ``(k, x, params, **options) -> (d₀, d_x, d_y, d_z)``
#: (eV, 𝓗 = d₀ + d·σ; filled by ``jaxsemi.models._pauli.pauli_form``).
D_FORMS: dict[Callable, Callable] = {}


def registered(table: dict, model) -> Optional[tuple[Callable, dict]]:
    """``(entry, options)`` of ``table`` for the model's Hamiltonian function — a plain function, or
    one used through ``bind`` (then with its options) — or None where it is not registered."""
    ham = model.hamiltonian
    fn, options = (ham.fn, dict(ham.options)) if isinstance(ham, bind) else (ham, {})
    return (table[fn], options) if fn in table else None


class Model(eqx.Module):
    """A crystal Hamiltonian 𝓗(k, x; θ).

    Args:
        hamiltonian: pure JAX function ``hamiltonian(k, x, params) -> (n, n)`` Hermitian
            matrix in eV, for one crystal momentum ``k`` (d,) in 1/Å and one position ``x``
            (d,) in Å. Models without spatial texture ignore ``x``.
        params: any PyTree of parameters θ (differentiable).
        dim: spatial dimension d ∈ {1, 2, 3}.
        lattice: optional (d, d) array whose rows are primitive vectors in Å.
        name: a label used in reprs and plots.

    ``model(k, x=None)`` evaluates 𝓗 on any batch of points ``k`` (..., d).
    """

    hamiltonian: Callable = eqx.field(static=True)
    params: Any
    dim: int = eqx.field(static=True)
    lattice: Optional[jax.Array]
    n_bands: int = eqx.field(static=True)
    name: str = eqx.field(static=True)

    def __init__(self, hamiltonian: Callable, params: Any, dim: int, lattice=None, *,
                 name: str = "model"):
        if dim not in (1, 2, 3):
            raise ValueError(f"dim must be 1, 2 or 3, got {dim!r}")
        if not callable(hamiltonian):
            raise ValueError("hamiltonian must be a function hamiltonian(k, x, params)")
        if lattice is not None:
            if _checks.is_concrete(lattice):
                lattice = _lattice.check_lattice(lattice, dim)
            lattice = jnp.asarray(lattice, dtype=float)
            if lattice.shape != (dim, dim):
                raise ValueError(f"lattice must have shape ({dim}, {dim}), got {lattice.shape}")
        params = jax.tree_util.tree_map(
            lambda p: jnp.asarray(p) if isinstance(p, (int, float, complex, np.ndarray, np.generic)) else p,
            params,
        )
        params = _checks.check_finite(params, "params")
        zeros = jnp.zeros((dim,))
        try:
            shape = jax.eval_shape(hamiltonian, zeros, zeros, params)
        except Exception as err:  # the function itself is broken: say so clearly
            raise ValueError(f"hamiltonian(k, x, params) failed for k, x of shape ({dim},): {err}") from err
        if len(shape.shape) != 2 or shape.shape[0] != shape.shape[1]:
            raise ValueError(f"hamiltonian must return a square (n, n) matrix, got shape {shape.shape}")
        self.hamiltonian = hamiltonian
        self.params = params
        self.dim = dim
        self.lattice = lattice
        self.n_bands = int(shape.shape[0])
        self.name = name
        self.params = _checks.check_hermitian_at(self, *self._probe_points(), compiled=False).params

    def _probe_points(self) -> tuple[jax.Array, jax.Array]:
        """k, x (m, d) where Hermiticity is checked: Γ (k = 0), for a lattice every k with
        reduced coordinates in {0, 1/3, 1/2, 2/3} (zone-boundary and corner points), at x = 0;
        and three random (k, x) in [-1, 1]^d."""
        if self.lattice is None:
            k = jnp.zeros((1, self.dim))
        else:
            axes = np.meshgrid(*[np.array([0.0, 1 / 3, 0.5, 2 / 3])] * self.dim, indexing="ij")
            k = jnp.asarray(np.stack([a.ravel() for a in axes], -1)) @ self.reciprocal_lattice
        rng = np.random.default_rng(0)
        k_rand, x_rand = rng.uniform(-1.0, 1.0, (2, 3, self.dim))
        return (jnp.concatenate([k, jnp.asarray(k_rand)]),
                jnp.concatenate([jnp.zeros_like(k), jnp.asarray(x_rand)]))

    def __call__(self, k, x=None) -> jax.Array:
        """𝓗 at points ``k`` (..., d) [1/Å] and ``x`` (..., d) [Å] (default x = 0): (..., n, n) eV."""
        k = _checks.as_points(k, self.dim, "k")
        x = jnp.zeros_like(k) if x is None else _checks.as_points(x, self.dim, "x")
        k, x = jnp.broadcast_arrays(k, x)
        flat = jax.vmap(lambda kk, xx: self.hamiltonian(kk, xx, self.params))(
            k.reshape(-1, self.dim), x.reshape(-1, self.dim)
        )
        return flat.reshape(k.shape[:-1] + flat.shape[-2:])

    def with_params(self, params: Any) -> "Model":
        """The same model with new parameters (no checks, no recompilation)."""
        return eqx.tree_at(lambda m: m.params, self, params)

    @property
    def reciprocal_lattice(self) -> jax.Array:
        """(d, d) rows are reciprocal vectors b_i in 1/Å with a_i·b_j = 2π δ_ij."""
        if self.lattice is None:
            raise ValueError(f"model {self.name!r} has no lattice (a continuum model)")
        return _lattice.reciprocal(self.lattice)


def depends_on_x(model: Model) -> bool:
    """Whether 𝓗(k, x) depends on x, read from the jaxpr (conservative for nested calls).

    Cached per (Hamiltonian, dimension, structure, shapes and dtypes of the parameters): tracing
    costs ~2 ms, most of a transport call's Python overhead, and the answer cannot depend on
    parameter values (a model is traced under jit, so it cannot branch on them)."""
    leaves, treedef = jax.tree_util.tree_flatten(model.params)
    try:
        hash(model.hamiltonian)
        cacheable = all(hasattr(leaf, "shape") and hasattr(leaf, "dtype") for leaf in leaves)
    except TypeError:
        cacheable = False
    if not cacheable:
        zeros = jnp.zeros(model.dim)
        return _reaches_output(jax.make_jaxpr(lambda x: model.hamiltonian(zeros, x, model.params))(zeros).jaxpr)
    avals = tuple((tuple(leaf.shape), jnp.dtype(leaf.dtype)) for leaf in leaves)
    return _cached_x_dependence(model.hamiltonian, model.dim, treedef, avals)


@functools.lru_cache(maxsize=256)
def _cached_x_dependence(hamiltonian, dim, treedef, avals) -> bool:
    params = jax.tree_util.tree_unflatten(treedef, [jax.ShapeDtypeStruct(*a) for a in avals])
    zeros = jnp.zeros(dim)
    return _reaches_output(jax.make_jaxpr(lambda x, p: hamiltonian(zeros, x, p))(zeros, params).jaxpr)


def _reaches_output(jaxpr) -> bool:
    """Whether the jaxpr's first input reaches an output."""
    live = {id(jaxpr.invars[0])}
    for eqn in jaxpr.eqns:
        if any(id(v) in live for v in eqn.invars):
            live.update(id(v) for v in eqn.outvars)
    return any(id(v) in live for v in jaxpr.outvars)
