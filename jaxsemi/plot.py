"""Matplotlib helpers: band structures, Berry-curvature maps, Hall curves, Chern phase diagrams.

matplotlib is imported only when a helper runs. Every helper draws on ``ax`` (a new figure
when None) and returns the Axes.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ._geometry import berry_curvature, eigh
from ._model import Model


def _axes(ax):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots()[1]


def k_path(nodes, n_per_segment: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points along straight segments through ``nodes`` (m, d) in 1/Å.

    Returns (points (N, d), distance along the path (N,) in 1/Å, distance at each node (m,)).
    """
    nodes = np.asarray(nodes, dtype=float)
    if nodes.ndim != 2 or nodes.shape[0] < 2:
        raise ValueError(f"nodes must have shape (m >= 2, d), got {nodes.shape}")
    if n_per_segment < 2:
        raise ValueError(f"n_per_segment must be >= 2, got {n_per_segment}")
    t = np.linspace(0.0, 1.0, n_per_segment)[:, None]
    segments = [a + t * (b - a) for a, b in zip(nodes[:-1], nodes[1:])]
    points = np.concatenate([s if i == 0 else s[1:] for i, s in enumerate(segments)])
    step = np.linalg.norm(np.diff(points, axis=0), axis=1)
    dist = np.concatenate([[0.0], np.cumsum(step)])
    ticks = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(nodes, axis=0), axis=1))])
    return points, dist, ticks


def bands(model: Model, nodes, labels: Optional[Sequence[str]] = None, *, n_per_segment: int = 60, x=None,
          ax=None, **line_kw):
    """Band energies (eV) along the k-path through ``nodes`` (m, d) [1/Å], one line per band."""
    points, dist, ticks = k_path(nodes, n_per_segment)
    if points.shape[1] != model.dim:
        raise ValueError(f"nodes must be {model.dim}D points for this model, got {points.shape[1]}D")
    energies = np.asarray(eigh(model, points, x)[0])
    ax = _axes(ax)
    line_kw.setdefault("color", "k")
    line_kw.setdefault("lw", 1.2)
    ax.plot(dist, energies, **line_kw)
    for t in ticks[1:-1]:
        ax.axvline(t, color="0.6", lw=0.6)
    ax.set_xticks(ticks)
    if labels is not None:
        if len(labels) != len(ticks):
            raise ValueError(f"{len(ticks)} nodes but {len(labels)} labels")
        ax.set_xticklabels(labels)
    ax.set_xlim(dist[0], dist[-1])
    ax.set_ylabel("energy (eV)")
    return ax


def berry_curvature_map(model: Model, band: int = 0, *, kx_range=None, ky_range=None, n: int = 101, x=None,
                        ax=None, cmap: str = "RdBu_r", colorbar: bool = True):
    """Map of the Abelian curvature Ω_n^{kx ky} (Å²) of band ``band`` of a 2D model.

    ``kx_range``, ``ky_range``: (min, max) in 1/Å; by default ±max|b_i| for lattice models
    (the whole first Brillouin zone and some more). ``n`` points per axis. The colour scale is
    symmetric about zero (red: Ω > 0).
    """
    if model.dim != 2:
        raise ValueError(f"berry_curvature_map needs a 2D model, got dim = {model.dim}")
    if not 0 <= band < model.n_bands:
        raise ValueError(f"band {band} out of range for a model with {model.n_bands} bands")
    if kx_range is None or ky_range is None:
        if model.lattice is None:
            raise ValueError("a continuum model needs kx_range and ky_range (1/Å)")
        kmax = float(np.max(np.linalg.norm(np.asarray(model.reciprocal_lattice), axis=1)))
        kx_range = (-kmax, kmax) if kx_range is None else kx_range
        ky_range = (-kmax, kmax) if ky_range is None else ky_range
    kx, ky = np.linspace(*kx_range, n), np.linspace(*ky_range, n)
    k = np.stack(np.meshgrid(kx, ky, indexing="xy"), -1)  # (n_y, n_x, 2)
    omega = np.asarray(berry_curvature(model, k, x)[..., band, 0, 1])
    vmax = float(np.max(np.abs(omega))) or 1.0
    ax = _axes(ax)
    mesh = ax.pcolormesh(kx, ky, omega, cmap=cmap, vmin=-vmax, vmax=vmax, shading="auto")
    ax.set_aspect("equal")
    ax.set_xlabel(r"$k_x$ (1/Å)")
    ax.set_ylabel(r"$k_y$ (1/Å)")
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax, label=rf"$\Omega_{band}$ (Å$^2$)")
    return ax


def hall_curve(mu, sigma, *, ax=None, label: Optional[str] = None, **line_kw):
    """σ_xy (e²/h) against the chemical potential μ (eV); ``sigma`` may be (n_mu,) or (n_mu, m)."""
    mu, sigma = np.asarray(mu, dtype=float), np.asarray(sigma, dtype=float)
    if mu.ndim != 1 or sigma.shape[:1] != mu.shape:
        raise ValueError(f"mu must be (n,) and sigma (n, ...), got {mu.shape} and {sigma.shape}")
    ax = _axes(ax)
    ax.plot(mu, sigma, label=label, **line_kw)
    ax.axhline(0.0, color="0.6", lw=0.6)
    ax.set_xlabel(r"$\mu$ (eV)")
    ax.set_ylabel(r"$\sigma_{xy}$ ($e^2/h$)")
    if label is not None:
        ax.legend()
    return ax


def chern_phase_diagram(x_values, y_values, chern, *, xlabel: str = "", ylabel: str = "", ax=None,
                        colorbar: bool = True):
    """Integer Chern numbers ``chern`` (n_y, n_x) on the grid ``x_values`` (n_x,) × ``y_values`` (n_y,).

    Values are rounded to the nearest integer; each integer gets its own colour.
    """
    x, y = np.asarray(x_values, dtype=float), np.asarray(y_values, dtype=float)
    c = np.rint(np.asarray(chern, dtype=float)).astype(int)
    if c.shape != (y.size, x.size):
        raise ValueError(f"chern must have shape (len(y_values), len(x_values)) = {(y.size, x.size)}, got {c.shape}")
    import matplotlib
    from matplotlib.colors import BoundaryNorm

    levels = np.arange(c.min(), c.max() + 1)
    norm = BoundaryNorm(np.append(levels, levels[-1] + 1) - 0.5, len(levels))
    ax = _axes(ax)
    mesh = ax.pcolormesh(x, y, c, cmap=matplotlib.colormaps["coolwarm"].resampled(len(levels)), norm=norm,
                         shading="auto")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax, ticks=levels, label="Chern number")
    return ax
