"""Conversions from what is measured (resistances, gate voltages, lock-in voltages) to what
jaxsemi predicts (conductivities in e²/h, carrier densities in Å⁻², ∂ⁿJ/∂Eⁿ). The band
physics of n ↔ μ lives in ``jaxsemi._density`` (re-exported as ``js.fit.carrier_density`` and
``js.fit.density_to_mu``).

SI constants are the exact 2019 definitions from ``jaxsemi.units`` (e²/h = 3.8740458649×10⁻⁵ S).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import units

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
