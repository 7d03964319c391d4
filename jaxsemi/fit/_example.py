"""Synthetic example data: σ_xy vs carrier density of a magnetic topological-insulator surface.

The data are **synthetic** (no measurement): made by :func:`make_example_data` from a model
richer than the massive Dirac cone a user would fit to them,

    𝓗(k) = D k² + v (k_x σ_y − k_y σ_x) + [m + λ (k_x³ − 3 k_x k_y²)] σ_z,

a Dirac surface state with an exchange mass m (breaks time reversal, so σ_xy ≠ 0), a
particle–hole asymmetric D k² and hexagonal warping λ, at a finite temperature, with a
residual doping n₀ and Gaussian noise. Parameter values are illustrative magnitudes for such a
surface (MnBi₂Te₄-like), not measured values; D is small enough (2D·k < v on the disk) that the
lower band falls monotonically out to the k-cutoff. The generating settings are ``EXAMPLE``.
"""

from __future__ import annotations

import importlib.resources
import io
from typing import Optional

import jax.numpy as jnp
import numpy as np

from .. import units
from .._carriers import density_to_mu
from .._hall import hall_conductivity
from .._model import Model, bind
from ..kspace import disk
from ..models._pauli import from_d
from ._convert import PER_1E12_CM2
from ._data import HallData, load_hall_data

#: Everything that defines the example file (energies eV, v eV·Å, D eV·Å², λ eV·Å³, k 1/Å,
#: densities 10¹² cm⁻², σ e²/h).
EXAMPLE = {
    "v": 2.5, "m": 0.025, "D": 2.5, "warping": 10.0, "temperature_K": 30.0,
    "n0": 0.15, "noise": 0.005, "seed": 20251129, "n_min": -2.5, "n_max": 2.5, "n_points": 41,
    "radius": 0.4, "n_r": 400, "n_theta": 24,
}

FILENAME = "hall_example.csv"


def _surface(k, x, p):
    kx, ky = k[0], k[1]
    mass = p["m"] + p["warping"] * (kx**3 - 3 * kx * ky**2)
    return from_d(p["D"] * (kx**2 + ky**2), -p["v"] * ky, p["v"] * kx, mass)


def magnetic_surface(v, m, D=0.0, warping=0.0) -> Model:
    """The generating model: D k² + v(k_x σ_y − k_y σ_x) + [m + λ(k_x³ − 3k_x k_y²)] σ_z (2D continuum).

    Same winding as ``massive_dirac(v, m, valley=+1)``: with D = λ = 0 it is that model rotated
    by 90° in k, so σ_xy(μ in gap) = −sgn(m)/2 (1 − |m|/E_cutoff) e²/h.
    """
    return Model(bind(_surface), {"v": v, "m": m, "D": D, "warping": warping}, 2,
                 name="magnetic_TI_surface")


def make_example_data(path: Optional[str] = None, **overrides) -> str:
    """Generate the example CSV text (and write it to ``path`` if given); returns the text.

    n_true = n + n₀ on ``n_points`` densities n in [n_min, n_max] (the abscissa is the gate-induced
    density, the sample has a residual doping n₀); μ(n_true) from the model's own density of
    states at kT (``density_to_mu``), σ_xy(μ) by ``js.hall_conductivity`` on a disk of radius
    ``radius`` (n_r × n_theta points), plus Gaussian noise of standard deviation ``noise``
    drawn with ``numpy.random.default_rng(seed)``.
    """
    cfg = {**EXAMPLE, **overrides}
    unknown = set(overrides) - set(EXAMPLE)
    if unknown:
        raise ValueError(f"unknown example settings {sorted(unknown)}; known: {sorted(EXAMPLE)}")
    model = magnetic_surface(cfg["v"], cfg["m"], cfg["D"], cfg["warping"])
    grid = disk(cfg["radius"], cfg["n_r"], cfg["n_theta"], scale=cfg["m"] / cfg["v"])
    kT = units.kelvin_to_ev(cfg["temperature_K"])
    n = np.linspace(cfg["n_min"], cfg["n_max"], cfg["n_points"])
    mu = density_to_mu(model, jnp.asarray((n + cfg["n0"]) * PER_1E12_CM2), grid, kT, filled_bands=1)
    sigma = np.asarray(hall_conductivity(model, mu, grid, kT))
    rng = np.random.default_rng(cfg["seed"])
    noisy = sigma + cfg["noise"] * rng.normal(size=n.size)
    out = io.StringIO()
    out.write(
        "# SYNTHETIC DATA (not a measurement), made by jaxsemi.fit.make_example_data().\n"
        "# Model: H = D k^2 + v (kx sy - ky sx) + [m + lam (kx^3 - 3 kx ky^2)] sz, one Dirac surface\n"
        "#   state with exchange mass m (breaks time reversal), particle-hole asymmetry D, warping lam.\n"
        f"# Parameters (illustrative, not measured): v = {cfg['v']} eV*A, m = {cfg['m']} eV, "
        f"D = {cfg['D']} eV*A^2, lam = {cfg['warping']} eV*A^3\n"
        f"# T = {cfg['temperature_K']} K; residual doping n0 = {cfg['n0']} (1e12 cm^-2): true density = n + n0\n"
        f"# mu(n + n0) from the model's density of states; sigma_xy = js.hall_conductivity on a k-disk of\n"
        f"#   radius {cfg['radius']} 1/A ({cfg['n_r']} x {cfg['n_theta']} points)\n"
        f"# Noise: Gaussian, std {cfg['noise']} e2/h, numpy default_rng(seed={cfg['seed']})\n"
        "n [1e12 cm^-2],sigma_xy [e2/h],sigma_xy_err [e2/h]\n"
    )
    for ni, si in zip(n, noisy):
        out.write(f"{ni:.4f},{si:.7f},{cfg['noise']}\n")
    text = out.getvalue()
    if path is not None:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    return text


def example_data_path() -> str:
    """Path of the shipped example CSV (``jaxsemi/fit/data/hall_example.csv``)."""
    return str(importlib.resources.files("jaxsemi.fit") / "data" / FILENAME)


def load_example_data() -> HallData:
    """The example σ_xy (e²/h) vs gate-induced density (Å⁻²; ×1e4 for 10¹² cm⁻²), with errors."""
    return load_hall_data(example_data_path())
