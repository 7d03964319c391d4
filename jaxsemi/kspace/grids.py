"""k-point grids with integration weights that include 1/(2π)^d.

A ``KGrid`` holds ``points`` (N, d) in 1/Å and ``weights`` (N,) such that
Σ_i w_i f(k_i) ≈ ∫ dᵈk/(2π)ᵈ f(k).
"""

from __future__ import annotations

import abc

from typing import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks
from .._lattice import reciprocal as reciprocal


class AbstractGrid(eqx.Module):
    """A set of integration points with weights that include 1/(2π)^d.

    Grids are read in chunks by index (``take``), so a sum over any number of points never
    holds more than one chunk of points in memory.
    """

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """Number of points."""

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Dimension d of k."""

    @abc.abstractmethod
    def take(self, idx: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Points (m, d) and weights (m,) for flat indices ``idx`` (m,); indices ≥ size weigh 0."""

    def __len__(self) -> int:
        return self.size


class KGrid(AbstractGrid):
    """Explicit integration points (N, d) [1/Å] and weights (N,) [Å^-d, include 1/(2π)^d]."""

    points: jax.Array
    weights: jax.Array
    shape: tuple = eqx.field(static=True, default=())

    def __check_init__(self):
        if self.points.ndim != 2 or self.weights.shape != self.points.shape[:1]:
            raise ValueError(
                f"KGrid needs points (N, d) and weights (N,), got {self.points.shape} and {self.weights.shape}"
            )
        if self.points.shape[0] == 0:
            raise ValueError("KGrid needs at least one point, got points of shape "
                             f"{self.points.shape}")
        if _checks.is_concrete(self.points, self.weights):  # traced grids are checked where used
            _checks.check_finite(self.points, "KGrid points")
            _checks.check_finite(self.weights, "KGrid weights")

    @property
    def size(self) -> int:
        return self.points.shape[0]

    @property
    def dim(self) -> int:
        return self.points.shape[1]

    def take(self, idx):
        inside = idx < self.size
        safe = jnp.where(inside, idx, 0)
        return self.points[safe], jnp.where(inside, self.weights[safe], 0.0)


class LatticeGrid(AbstractGrid):
    """Uniform grid of the Brillouin zone, generated on the fly from the reciprocal basis.

    k = Σ_j (i_j + shift_j)/n_j b_j; memory is O(1) in the number of points. ``points`` and
    ``weights`` materialise the full arrays (for plots and small grids).
    """

    basis: jax.Array  # (d, d) rows b_j in 1/Å
    shift: jax.Array  # (d,) in grid steps
    shape: tuple = eqx.field(static=True)

    def __check_init__(self):
        d = len(self.shape)
        if self.basis.shape != (d, d) or self.shift.shape != (d,):
            raise ValueError(f"LatticeGrid of shape {self.shape} needs basis ({d}, {d}) and shift ({d},), "
                             f"got {self.basis.shape} and {self.shift.shape}")
        if d == 0 or any(not isinstance(n, int) or n < 1 for n in self.shape):
            raise ValueError(f"LatticeGrid shape must be positive ints, one per axis, got {self.shape}")

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def dim(self) -> int:
        return len(self.shape)

    @property
    def weight(self) -> jax.Array:
        """Weight of every point: |det B| / (N (2π)^d)."""
        return jnp.abs(jnp.linalg.det(self.basis)) / (self.size * (2 * jnp.pi) ** self.dim)

    def take(self, idx):
        n = jnp.asarray(self.shape)
        digits = []
        rest = idx
        for m in reversed(self.shape):  # last axis fastest
            digits.append(rest % m)
            rest = rest // m
        frac = (jnp.stack(digits[::-1], -1) + self.shift) / n
        return frac @ self.basis, jnp.where(idx < self.size, self.weight, 0.0)

    @property
    def points(self) -> jax.Array:
        return self.take(jnp.arange(self.size))[0]

    @property
    def weights(self) -> jax.Array:
        return jnp.full((self.size,), self.weight)


def brillouin_zone(lattice, n, shift: float | Sequence[float] = 0.0) -> LatticeGrid:
    """Uniform Monkhorst–Pack-type grid of the Brillouin zone (generated lazily, O(1) memory).

    Args:
        lattice: (d, d) primitive vectors as rows (Å), or a ``Model`` with a lattice.
        n: points per reciprocal axis (int or d ints, each ≥ 2).
        shift: offset of the grid in units of one grid step (0 includes Γ).

    Points are k = Σ_j (i_j + shift_j)/n_j b_j, ordered with the last axis fastest;
    ``grid.shape`` is ``tuple(n)``.
    """
    b = np.asarray(reciprocal(lattice))
    d = b.shape[0]
    ns = _checks.check_int_sequence(n, d, "n")
    try:
        shifts = np.broadcast_to(np.asarray(shift, float), (d,))
    except (TypeError, ValueError) as err:
        raise ValueError(f"shift must be a number or {d} numbers (grid steps), got {shift!r}") from err
    if not np.all(np.isfinite(shifts)):
        raise ValueError(f"shift must be finite (grid steps), got {shift!r}")
    return LatticeGrid(jnp.asarray(b), jnp.asarray(shifts), ns)


def disk(radius: float, n_r: int, n_theta: int, *, center=(0.0, 0.0), scale: float | None = None,
         breaks: Sequence[float] = ()) -> KGrid:
    """Polar grid on a 2D disk |k − center| ≤ radius for continuum models.

    Radially, Gauss–Legendre nodes in u with |k − center| = scale·sinh(u): nodes are dense
    within ``scale`` of the centre (set it to the width of the Berry-curvature hot spot,
    e.g. Δ/v for a massive Dirac cone) and spread out beyond. ``breaks`` are radii where the
    integrand has a kink or a step (a Fermi surface at kT = 0): the radial rule is split
    there so that it stays spectrally accurate. Angularly, ``n_theta`` equally spaced
    angles (exact for trigonometric polynomials of degree < n_theta).
    """
    if not radius > 0:
        raise ValueError(f"radius must be > 0 1/Å, got {radius}")
    _checks.check_int_sequence((n_r, n_theta), 2, "(n_r, n_theta)")
    s = float(radius if scale is None else scale)
    if not s > 0:
        raise ValueError(f"scale must be > 0 1/Å, got {scale}")
    cuts = sorted(float(b) for b in breaks if 0 < float(b) < radius)
    u_edges = np.arcsinh(np.array([0.0, *cuts, radius]) / s)
    lengths = np.diff(u_edges)
    counts = np.maximum(2, np.round(n_r * lengths / lengths.sum()).astype(int))
    us, dus = [], []
    for (u0, u1), m in zip(zip(u_edges[:-1], u_edges[1:]), counts):
        x, wx = np.polynomial.legendre.leggauss(int(m))
        us.append(0.5 * (u1 - u0) * x + 0.5 * (u1 + u0))
        dus.append(0.5 * (u1 - u0) * wx)
    u, du = np.concatenate(us), np.concatenate(dus)
    r = s * np.sinh(u)
    dr = s * np.cosh(u) * du
    theta = 2 * np.pi * np.arange(n_theta) / n_theta
    rr, tt = np.meshgrid(r, theta, indexing="ij")
    points = np.stack([rr * np.cos(tt), rr * np.sin(tt)], -1).reshape(-1, 2) + np.asarray(center, float)
    weights = np.repeat(r * dr / (2 * np.pi * n_theta), n_theta)
    return KGrid(jnp.asarray(points), jnp.asarray(weights), (len(r), n_theta))


def line(start, stop, n: int) -> jax.Array:
    """n points (n, d) on the straight segment from ``start`` to ``stop`` (both included)."""
    start, stop = np.asarray(start, float), np.asarray(stop, float)
    t = np.linspace(0.0, 1.0, n)[:, None]
    return jnp.asarray(start + t * (stop - start))
