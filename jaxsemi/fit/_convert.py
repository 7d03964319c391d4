"""Conversions from what is measured (resistances, gate voltages, lock-in voltages) to what
jaxsemi predicts (conductivities in e²/h, carrier densities in Å⁻², μ in eV, ∂ⁿJ/∂Eⁿ).

SI constants are the exact 2019 definitions from ``jaxsemi.units`` (e²/h = 3.8740458649×10⁻⁵ S).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks, units
from .._geometry import eigh
from .._model import Model
from .._statistics import fermi
from ..kspace import KGrid

#: One 10¹² cm⁻² in Å⁻² (1 cm⁻² = 10⁻¹⁶ Å⁻²).
PER_1E12_CM2 = 1e-4
#: One m⁻² in Å⁻².
PER_M2 = 1e-20
#: J in A·m/V² (2D SI) per e·Å/(fs·V²) (jaxsemi's unit for ∂²J/∂E² in 2D): e/(fs·Å) → A/m is
#: e/1e-15 s / 1e-10 m, and 1/(V/Å)² → 1/(V/m)² is 1e-20.
D2J_INTERNAL_TO_SI_2D = units.E_PER_FS_TO_A / units.ANGSTROM * units.ANGSTROM**2


# ----------------------------------------------------------------------------- transport tensors


def resistivity_to_conductivity(rho_xx, rho_xy, rho_yy=None):
    """Invert the 2D resistivity tensor ρ = [[ρ_xx, ρ_xy], [−ρ_xy, ρ_yy]] (Onsager, B-odd ρ_xy).

    Returns ``(sigma_xx, sigma_xy)``: σ_xx = ρ_yy/D, σ_xy = −ρ_xy/D, D = ρ_xx ρ_yy + ρ_xy²,
    in S when ρ is in Ω (sheet values; divide by e²/h with ``js.units.siemens_to_e2h``).
    ``rho_yy`` defaults to ρ_xx (isotropic sample). A quantum Hall plateau ρ_xx = 0,
    ρ_xy = h/(νe²) gives σ_xy = −ν e²/h.
    """
    rho_xx = jnp.asarray(rho_xx, dtype=float)
    rho_xy = jnp.asarray(rho_xy, dtype=float)
    rho_yy = rho_xx if rho_yy is None else jnp.asarray(rho_yy, dtype=float)
    det = rho_xx * rho_yy + rho_xy**2
    return rho_yy / det, -rho_xy / det


def sheet_resistivity(r_xx, length, width, r_xy=None):
    """Hall-bar resistances → sheet resistivities: ρ_xx = R_xx·W/L (Ω/□), ρ_xy = R_xy.

    ``length`` is the distance between the longitudinal voltage probes and ``width`` the
    channel width (same unit). Returns ρ_xx, or ``(rho_xx, rho_xy)`` when ``r_xy`` is given
    (in 2D the Hall resistance needs no geometric factor).
    """
    if not (float(length) > 0 and float(width) > 0):
        raise ValueError(f"length and width must be > 0, got {length}, {width}")
    rho_xx = jnp.asarray(r_xx, dtype=float) * (float(width) / float(length))
    return rho_xx if r_xy is None else (rho_xx, jnp.asarray(r_xy, dtype=float))


def symmetrize_field(b, y, parity: str, *, b_other=None, y_other=None):
    """Onsager (anti)symmetrisation of a field sweep: [y(B) ± y′(−B)]/2 at every B of the sweep.

    ``parity="even"`` (ρ_xx, +) or ``"odd"`` (ρ_xy, −). ``y′`` is the same sweep, or — for
    magnets with hysteresis — the sweep in the opposite direction (``b_other``, ``y_other``):
    the anomalous Hall part of an up-sweep is [ρ_up(B) − ρ_down(−B)]/2. y′(−B) is linearly
    interpolated; a −B outside the range of y′ raises. Returns an array shaped like ``y``.
    """
    if parity not in ("even", "odd"):
        raise ValueError(f"parity must be 'even' or 'odd', got {parity!r}")
    b, y = np.asarray(b, float), np.asarray(y, float)
    bo = b if b_other is None else np.asarray(b_other, float)
    yo = y if y_other is None else np.asarray(y_other, float)
    for name, (bb, yy) in {"sweep": (b, y), "other sweep": (bo, yo)}.items():
        if bb.ndim != 1 or bb.shape != yy.shape:
            raise ValueError(f"{name}: B and y must be 1D of the same length, got {bb.shape}, {yy.shape}")
        if not (np.all(np.isfinite(bb)) and np.all(np.isfinite(yy))):
            raise ValueError(f"{name} contains NaN or inf")
    order = np.argsort(bo)
    bs = bo[order]
    if np.any(np.diff(bs) == 0):
        raise ValueError("the sweep used for −B has duplicated field values; average them first")
    if np.min(-b) < bs[0] - 1e-12 or np.max(-b) > bs[-1] + 1e-12:
        raise ValueError(f"−B for B in [{b.min()}, {b.max()}] is outside the swept range "
                         f"[{bs[0]}, {bs[-1]}]: cannot (anti)symmetrise without extrapolating")
    mirrored = np.interp(-b, bs, yo[order])
    return 0.5 * (y + mirrored) if parity == "even" else 0.5 * (y - mirrored)


def gate_to_density(v_gate, capacitance, v_cnp=0.0):
    """Gate voltage (V) → carrier density (Å⁻²): n = C (V_g − V_cnp)/e.

    ``capacitance`` is the gate capacitance per area in F/m² (for a parallel-plate dielectric
    ε₀ε_r/d); ``v_cnp`` the charge-neutrality voltage. Positive n = electrons added.
    Multiply by 1e4 for units of 10¹² cm⁻².
    """
    if not float(capacitance) > 0:
        raise ValueError(f"capacitance must be > 0 F/m^2, got {capacitance}")
    v = jnp.asarray(v_gate, dtype=float)
    return capacitance * (v - v_cnp) / units.E_CHARGE_SI * PER_M2


# ----------------------------------------------------------------------------- density ↔ μ


def _filled(model: Model, filled_bands) -> int:
    nf = model.n_bands // 2 if filled_bands is None else int(filled_bands)
    if not 0 <= nf <= model.n_bands:
        raise ValueError(f"filled_bands must be in [0, {model.n_bands}], got {filled_bands}")
    return nf


def _density_from_energies(energies, weights, mu, kT, nf):
    """Σ_i w_i (Σ_n f(ε_n(k_i) − μ) − nf) for each μ (...,)."""
    occ = fermi(energies[:, None, :], mu.reshape(-1)[None, :, None], kT)  # (N, n_mu, n)
    return jnp.tensordot(weights, jnp.sum(occ, -1) - nf, axes=1).reshape(mu.shape)


def carrier_density(model: Model, mu, grid: KGrid, kT=0.0, x=None, *, filled_bands=None) -> jax.Array:
    """Carrier density relative to charge neutrality, n(μ) = ∫dk Σ_n f⁰(ε_n − μ) − N_filled ∫dk 1.

    Args:
        model, grid: the model and its k-grid (a disk for continuum models; weights include
            1/(2π)^d, so n is per unit cell area in Å⁻² in 2D). No spin or valley degeneracy
            is added: sum models (or multiply) for that.
        mu: chemical potential(s) in eV, any shape; kT ≥ 0 in eV.
        filled_bands: bands filled at neutrality (default n_bands // 2).

    Positive n = electrons, negative = holes. Multiply a 2D result by 1e4 for 10¹² cm⁻².
    For a massive Dirac cone at kT = 0: n = (μ² − Δ²)/(4π v²) sgn μ outside the gap.
    """
    nf = _filled(model, filled_bands)
    mu = jnp.asarray(mu, dtype=float)
    _checks.check_kT(kT)
    x = None if x is None else _checks.as_points(x, model.dim, "x")
    energies = eigh(model, grid.points, x)[0]
    return _density_from_energies(energies, grid.weights, mu, jnp.asarray(kT, dtype=float), nf)


def density_to_mu(model: Model, n, grid: KGrid, kT, x=None, *, filled_bands=None,
                  max_iterations: int = 200) -> jax.Array:
    """Chemical potential μ (eV) at which :func:`carrier_density` equals ``n`` (Å⁻², any shape).

    Solved on the band energies of the grid by Newton's method safeguarded with bisection of
    [min ε − 40kT, max ε + 40kT] (to |Δμ| ≤ 1e-13 eV), then differentiated by the
    implicit-function theorem, ∂μ/∂θ = −(∂n/∂θ)/(∂n/∂μ), through one Newton step whose slope
    is held constant: first derivatives with respect to the model parameters, ``n`` and kT
    are exact (higher ones are not). Needs kT > 0 (∂n/∂μ is the thermally smeared density of
    states); ``n`` must lie strictly between the densities of the empty and the full grid.
    Where the smeared DOS underflows to zero (μ deep inside a gap at low kT) μ is any point of
    the gap and its derivative is set to zero.
    """
    _checks.check_kT(kT, positive=True, why="μ(n) is differentiated through the smeared DOS")
    nf = _filled(model, filled_bands)
    n = jnp.asarray(n, dtype=float)
    _checks.check_finite(n, "n")
    if _checks.is_concrete(n, grid):
        total = float(np.sum(np.asarray(grid.weights)))
        lo, hi = -nf * total, (model.n_bands - nf) * total
        if np.any(np.asarray(n) <= lo) or np.any(np.asarray(n) >= hi):
            raise ValueError(f"carrier density n must lie in ({lo:.4g}, {hi:.4g}) Å^-2 for this grid "
                             f"(empty to full), got range [{np.min(n):.4g}, {np.max(n):.4g}]")
    x = None if x is None else _checks.as_points(x, model.dim, "x")
    energies = eigh(model, grid.points, x)[0]
    return _solve_mu(energies, grid.weights, n, jnp.asarray(kT, dtype=float), nf, max_iterations)


@eqx.filter_jit
def _solve_mu(energies, weights, n, kT, nf, max_iterations):
    e_fix, kt_fix = jax.lax.stop_gradient(energies), jax.lax.stop_gradient(kT)
    n_fix = jax.lax.stop_gradient(n)

    def density_and_slope(mu):
        return jax.jvp(lambda m: _density_from_energies(e_fix, weights, m, kt_fix, nf), (mu,),
                       (jnp.ones_like(mu),))

    def step(state):
        i, lo, hi, mu, _ = state
        dens, slope = density_and_slope(mu)
        above = dens > n_fix
        lo, hi = jnp.where(above, lo, mu), jnp.where(above, mu, hi)
        newton = mu - (dens - n_fix) / jnp.where(slope > 0, slope, 1.0)
        ok = (slope > 0) & (newton > lo) & (newton < hi)
        new = jnp.where(ok, newton, 0.5 * (lo + hi))
        return i + 1, lo, hi, new, jnp.max(jnp.abs(new - mu))

    lo = jnp.full(n.shape, jnp.min(e_fix) - 40 * kt_fix)
    hi = jnp.full(n.shape, jnp.max(e_fix) + 40 * kt_fix)
    init = (0, lo, hi, 0.5 * (lo + hi), jnp.asarray(jnp.inf))
    _, _, _, mu0, _ = jax.lax.while_loop(lambda s: (s[0] < max_iterations) & (s[4] > 1e-13), step, init)
    mu0 = jax.lax.stop_gradient(mu0)
    _, slope = density_and_slope(mu0)
    mismatch = _density_from_energies(energies, weights, mu0, kT, nf) - n
    # Deep in a gap the smeared DOS underflows to 0: μ is then pinned by the bracket alone.
    slope = jax.lax.stop_gradient(jnp.where(slope > 0, slope, jnp.inf))
    return mu0 - mismatch / slope


# ----------------------------------------------------------------------------- second harmonic


class SecondHarmonic(NamedTuple):
    """Second-order Hall response from a 2ω measurement (quasi-static, ωτ ≪ 1).

    Attributes:
        field_ratio: E_⊥^{2ω}/(E_∥^ω)² in m/V (peak amplitudes), the ratio usually reported.
        d2j_de2: ∂²J_⊥/∂E_∥² in e·Å/(fs·V²) — directly comparable with
            ``js.transport.conductivity(..., order=2)`` (no 1/2!) of a 2D model.
        d2j_de2_si: the same in A·m/V².
    """

    field_ratio: jax.Array
    d2j_de2: jax.Array
    d2j_de2_si: jax.Array


def second_harmonic_response(v_2w, drive, *, width, drive_kind: str = "current", rho_xx=None,
                             length=None, sigma_yy=None, amplitude: str = "rms",
                             reference: str = "sin", max_quadrature: float = 0.1) -> SecondHarmonic:
    """Transverse second-harmonic voltage V_⊥^{2ω} → the DC second-order response ∂²J_⊥/∂E_∥².

    Theory (DC, valid for ωτ ≪ 1 so that the response follows the field adiabatically):
    J_⊥ = ½ (∂²J_⊥/∂E²) E_∥² with E_∥(t) = E₀ cos ωt gives J_⊥^{2ω} = ¼ (∂²J_⊥/∂E²) E₀² at 2ω.
    In an open-circuit Hall probe the transverse current vanishes, so E_⊥^{2ω} = −J_⊥^{2ω}/σ_⊥⊥
    (first-order Hall angle neglected) and V_⊥^{2ω} = W E_⊥^{2ω}. Hence
    ∂²J_⊥/∂E² = −4 σ_⊥⊥ E_⊥^{2ω}/E₀².

    Args:
        v_2w: lock-in reading at 2ω in V. Real: the quasi-static component (sign as read).
            Complex X + iY: with a drive I₀ sin ωt and the lock-in referenced to it
            (``reference="sin"``, usual), sin² ωt = ½ − ½ cos 2ωt puts the quasi-static signal
            in −Y (phase −90°); with a cos ωt reference (``"cos"``) it is +X. A large other
            quadrature (> ``max_quadrature`` of the signal) warns: ωτ ≪ 1 fails or capacitive
            pick-up.
        drive: the first-harmonic drive: current I (A) for ``drive_kind="current"`` (needs
            ``rho_xx``, sheet Ω, then E₀ = ρ_xx I/W) or longitudinal voltage V_∥^ω (V) for
            ``"voltage"`` (needs ``length``, the probe distance, then E₀ = V/L).
        width: channel width W in m (transverse probe separation).
        sigma_yy: transverse sheet conductivity in S (default 1/ρ_xx, isotropic; needed for
            a voltage drive when ``rho_xx`` is not given).
        amplitude: ``"rms"`` (lock-in and AC-source convention: multiplied by √2 to peak) or
            ``"peak"``; it applies to both ``v_2w`` and ``drive``.
    """
    if amplitude not in ("rms", "peak"):
        raise ValueError(f"amplitude must be 'rms' or 'peak', got {amplitude!r}")
    if reference not in ("sin", "cos"):
        raise ValueError(f"reference must be 'sin' or 'cos', got {reference!r}")
    if drive_kind not in ("current", "voltage"):
        raise ValueError(f"drive_kind must be 'current' or 'voltage', got {drive_kind!r}")
    if not float(width) > 0:
        raise ValueError(f"width must be > 0 m, got {width}")
    v = np.asarray(v_2w)
    if np.iscomplexobj(v):
        signal = -v.imag if reference == "sin" else v.real
        other = v.real if reference == "sin" else v.imag
        if np.any(np.abs(other) > max_quadrature * np.abs(signal)):
            warnings.warn("the 2ω signal has a large out-of-phase quadrature: the quasi-static "
                          "(ωτ ≪ 1) theory may not apply, or there is capacitive pick-up", stacklevel=2)
        v = signal
    to_peak = np.sqrt(2.0) if amplitude == "rms" else 1.0
    v_peak = np.asarray(v, float) * to_peak
    drive_peak = np.asarray(drive, float) * to_peak
    if drive_kind == "current":
        if rho_xx is None:
            raise ValueError("a current drive needs rho_xx (sheet resistivity, Ohm) to give E = rho I / W")
        e0 = float(rho_xx) * drive_peak / float(width)
    else:
        if length is None:
            raise ValueError("a voltage drive needs length (longitudinal probe distance, m)")
        e0 = drive_peak / float(length)
    if sigma_yy is None:
        if rho_xx is None:
            raise ValueError("give sigma_yy (S) or rho_xx (Ohm) for the transverse conductivity")
        sigma_yy = 1.0 / float(rho_xx)
    e_perp = v_peak / float(width)
    d2j_si = -4.0 * float(sigma_yy) * e_perp / e0**2
    return SecondHarmonic(jnp.asarray(e_perp / e0**2), jnp.asarray(d2j_si / D2J_INTERNAL_TO_SI_2D),
                          jnp.asarray(d2j_si))
