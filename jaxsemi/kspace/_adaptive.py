"""Adaptive 2D cubature for Berry-curvature hot spots, with an error estimate.

Each cell of a rectangle in parameter space u is integrated with the tensor product of the
15-point Gauss–Kronrod rule (225 points); the embedded 7-point Gauss rule gives, per
direction, an error estimate |K⊗K − G⊗K| and |K⊗K − K⊗G|. The cells with the largest errors
are halved along their worse direction until Σ errors ≤ max(atol, rtol·|value|) or the point
budget is spent (QUADPACK-style global adaptivity, made anisotropic so that a line-like hot
spot — |k| ≲ Δ/v in polar coordinates — is not refined along the line). The error estimate is
conservative: the Kronrod value is usually far more accurate than |K − G|.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks
from .._checks import ConvergenceWarning
from .._lattice import reciprocal

# QUADPACK qk15 nodes (descending, the last is 0) and weights.
_XGK = np.array([0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
                 0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
                 0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
                 0.207784955007898467600689403773245, 0.0])
_WGK = np.array([0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
                 0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
                 0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
                 0.204432940075298892414161999234649, 0.209482141084727828012999174891714])
_WG = np.array([0.129484966168869693270611432679082, 0.279705391489276667901467771423780,
                0.381830050505118944950369775488975, 0.417959183673469387755102040816327])
KRONROD_NODES = np.concatenate([-_XGK[:-1], _XGK[::-1]])  # 15 nodes on [-1, 1], ascending
KRONROD_WEIGHTS = np.concatenate([_WGK[:-1], _WGK[::-1]])
GAUSS_WEIGHTS = np.zeros(15)
GAUSS_WEIGHTS[1::2] = np.concatenate([_WG[:-1], _WG[::-1]])  # Gauss nodes are the odd Kronrod nodes


class Domain(eqx.Module):
    """A rectangle ``lo ≤ u ≤ hi`` (2,) in parameter space mapped to k-space.

    ``kind`` "affine": k = u @ basis (basis (2, 2), rows in 1/Å); "polar": u = (r, θ),
    k = center + r (cos θ, sin θ). The Jacobian includes 1/(2π)², so ∫ over the domain is
    ∫ d²k/(2π)².
    """

    lo: jax.Array
    hi: jax.Array
    basis: jax.Array
    center: jax.Array
    kind: str = eqx.field(static=True)

    def to_k(self, u):
        """k (2,) and Jacobian |∂k/∂u|/(2π)² at a parameter point u (2,)."""
        if self.kind == "affine":
            return u @ self.basis, jnp.abs(jnp.linalg.det(self.basis)) / (2 * jnp.pi) ** 2
        r, t = u[0], u[1]
        return self.center + r * jnp.stack([jnp.cos(t), jnp.sin(t)]), r / (2 * jnp.pi) ** 2


def bz_domain(lattice) -> Domain:
    """The Brillouin zone of a 2D lattice (rows in Å, or a Model) as a unit cell in reduced k."""
    b = reciprocal(lattice)
    if b.shape != (2, 2):
        raise ValueError("adaptive integration is implemented for 2D models")
    return Domain(jnp.zeros(2), jnp.ones(2), jnp.asarray(b), jnp.zeros(2), "affine")


def disk_domain(radius: float, center=(0.0, 0.0)) -> Domain:
    """The disk |k − center| ≤ radius (1/Å) in polar coordinates, for continuum models."""
    if not radius > 0:
        raise ValueError(f"radius must be > 0 1/Å, got {radius}")
    return Domain(jnp.array([0.0, 0.0]), jnp.array([float(radius), 2 * np.pi]), jnp.eye(2),
                  jnp.asarray(center, dtype=float), "polar")


class AdaptiveResult(eqx.Module):
    """``value`` of the integral, its estimated absolute ``error``, ``n_points`` evaluated,
    ``n_cells``, and whether the tolerance was met (``converged``; False when ``max_points``
    ran out first)."""

    value: float
    error: float
    n_points: int
    n_cells: int
    converged: bool = True

    def __str__(self) -> str:
        note = "" if self.converged else ", tolerance not met"
        return f"{self.value:.12g} ± {self.error:.2g} ({self.n_points} points, {self.n_cells} cells{note})"


#: Cells per compiled batch (225 points each).
_BATCH = 1024


@eqx.filter_jit
def _cells(f: Callable, args: Any, domain: Domain, lo, hi):
    """(value, error along u₀, error along u₁) of ∫ f over each cell; lo, hi (m, 2) are the
    cell corners as fractions of the domain rectangle."""
    x = jnp.asarray(KRONROD_NODES)
    span = domain.hi - domain.lo
    half = 0.5 * (hi - lo) * span  # (m, 2)
    mid = domain.lo + 0.5 * (hi + lo) * span
    u0 = mid[:, None, 0] + half[:, None, 0] * x  # (m, 15)
    u1 = mid[:, None, 1] + half[:, None, 1] * x
    uu = jnp.stack(jnp.broadcast_arrays(u0[:, :, None], u1[:, None, :]), -1)  # (m, 15, 15, 2)

    def point(u):
        k, jac = domain.to_k(u)
        return f(k, args) * jac

    vals = jax.vmap(point)(uu.reshape(-1, 2)).reshape(uu.shape[:3])
    area = half[:, 0] * half[:, 1]
    wk, wg = jnp.asarray(KRONROD_WEIGHTS), jnp.asarray(GAUSS_WEIGHTS)
    kk = jnp.einsum("mij,i,j->m", vals, wk, wk) * area
    gk = jnp.einsum("mij,i,j->m", vals, wg, wk) * area
    kg = jnp.einsum("mij,i,j->m", vals, wk, wg) * area
    return kk, jnp.abs(kk - gk), jnp.abs(kk - kg)


def _evaluate(f, args, domain, lo, hi):
    """``_cells`` over any number of cells, in padded batches of bucketed sizes (few compiles)."""
    outs = []
    for s in range(0, lo.shape[0], _BATCH):
        l, h = lo[s:s + _BATCH], hi[s:s + _BATCH]
        m = l.shape[0]
        pad = (1 << max(4, int(np.ceil(np.log2(m))))) - m
        out = _cells(f, args, domain, jnp.asarray(np.concatenate([l, np.repeat(l[:1], pad, 0)])),
                     jnp.asarray(np.concatenate([h, np.repeat(h[:1], pad, 0)])))
        outs.append([o[:m] for o in out])
    return [jnp.concatenate(o) for o in zip(*outs)]


def integrate_adaptive(f: Callable, args: Any, domain: Domain, *, rtol: float = 1e-6,
                       atol: float = 0.0, max_points: int = 5_000_000, initial: int = 4) -> AdaptiveResult:
    """∫ d²k/(2π)² f(k, args) over ``domain`` to the requested tolerance.

    ``f(k, args) -> scalar`` for one point k (2,); ``args`` is a PyTree of arrays passed through
    (so the compiled cell rule is reused for new parameter values). Stops when the summed
    error estimate is ≤ max(atol, rtol·|value|), or warns (``ConvergenceWarning``) and returns
    ``converged=False`` when ``max_points`` runs out first.

    Differentiable in ``args`` and ``domain`` (``jax.grad`` outside jit): the cells are
    refined on concrete copies of the inputs, then ``value`` is a differentiable sum over
    these fixed cells. Under ``jax.jit`` or ``vmap`` with traced inputs there are no values to
    refine on, and a TypeError says so.
    """
    if not rtol > 0:
        raise ValueError(f"rtol must be > 0, got {rtol}")
    if not atol >= 0:
        raise ValueError(f"atol must be >= 0, got {atol}")
    initial = _checks.check_int_sequence(initial, 1, "initial", minimum=1)[0]
    needed = initial**2 * 225 + 450
    if not max_points >= needed:
        raise ValueError(f"max_points must allow the {initial}×{initial} initial cells and one refinement "
                         f"({needed} points), got {max_points}")
    fixed = _checks.stop_gradient((args, domain))
    if not _checks.is_concrete(fixed):
        raise TypeError(
            "adaptive integration chooses its cells from concrete values and cannot run on traced "
            "inputs (inside jax.jit or jax.vmap); call it outside jit (jax.grad works), or "
            "integrate on a fixed grid (js.integrate, js.hall_conductivity)"
        )
    lo, hi, res = _refine(f, *fixed, rtol, atol, max_points, initial)
    if not res.converged:
        warnings.warn(f"adaptive integration stopped at max_points = {max_points}: estimated error "
                      f"{res.error:.3g} > target {max(atol, rtol * abs(res.value)):.3g}",
                      ConvergenceWarning, stacklevel=2)
    if _checks.is_concrete(args, domain):
        return res
    value = jnp.sum(_evaluate(f, args, domain, lo, hi)[0])  # differentiable sum over fixed cells
    return AdaptiveResult(value, res.error, res.n_points, res.n_cells, res.converged)


def _refine(f, args, domain, rtol, atol, max_points, initial):
    """Cells lo, hi (m, 2) (fractions of the domain) and the result, by global refinement."""
    g = np.linspace(0.0, 1.0, initial + 1)
    a, b = np.meshgrid(g[:-1], g[:-1], indexing="ij")
    lo = np.stack([a.ravel(), b.ravel()], -1)
    hi = lo + 1.0 / initial

    def evaluate(lo, hi):
        return [np.asarray(o) for o in _evaluate(f, args, domain, lo, hi)]

    val, e0, e1 = evaluate(lo, hi)
    n_points = lo.shape[0] * 225
    while True:
        err = e0 + e1
        total, total_err = float(np.sum(val)), float(np.sum(err))
        converged = total_err <= max(atol, rtol * abs(total))
        if converged or n_points + 450 > max_points:
            return lo, hi, AdaptiveResult(total, total_err, n_points, lo.shape[0], converged)
        n_split = int(min(lo.shape[0], max(16, lo.shape[0] // 4), (max_points - n_points) // 450))
        order = np.argsort(err)[::-1]
        pick, keep = order[:n_split], order[n_split:]
        axis = (e1[pick] > e0[pick]).astype(int)  # halve along the worse direction
        plo, phi = lo[pick], hi[pick]
        cut = plo.copy()
        cut[np.arange(n_split), axis] = 0.5 * (plo + phi)[np.arange(n_split), axis]
        left_hi = phi.copy()
        left_hi[np.arange(n_split), axis] = cut[np.arange(n_split), axis]
        new_lo = np.concatenate([plo, cut])
        new_hi = np.concatenate([left_hi, phi])
        nv, n0, n1 = evaluate(new_lo, new_hi)
        n_points += new_lo.shape[0] * 225
        lo = np.concatenate([lo[keep], new_lo])
        hi = np.concatenate([hi[keep], new_hi])
        val = np.concatenate([val[keep], nv])
        e0 = np.concatenate([e0[keep], n0])
        e1 = np.concatenate([e1[keep], n1])
