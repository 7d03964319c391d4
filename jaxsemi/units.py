"""Physical constants and unit conversions.

jaxsemi works in eV, Å, fs and units of the elementary charge (``e = 1``):

* energy in eV, length in Å, crystal momentum in 1/Å, time in fs;
* electric field in V/Å (so ``-e E`` is a force in eV/Å);
* temperature as ``kT`` in eV;
* current density in e/(fs·Å^(d-1)) (2D: e/(fs·Å); 3D: e/(fs·Å²));
* conductivity in e²/h (2D) or (e²/h)/Å (3D).

All SI values are the exact 2019 SI definitions (e, h, k_B) unless stated otherwise.
"""

from __future__ import annotations

import math

#: Reduced Planck constant ħ in eV·fs.
HBAR = 0.6582119569509066
#: Elementary charge in C (exact).
E_CHARGE_SI = 1.602176634e-19
#: Planck constant in J·s (exact).
H_PLANCK_SI = 6.62607015e-34
#: Boltzmann constant in eV/K (exact: 1.380649e-23 J/K / e).
K_B = 1.380649e-23 / E_CHARGE_SI
#: Conductance quantum e²/h in S.
E2_OVER_H_SI = E_CHARGE_SI**2 / H_PLANCK_SI
#: e²/h in the internal unit e/(V·fs): e²/h = e/(2π ħ) with ħ in eV·fs.
E2_OVER_H_INTERNAL = 1.0 / (2.0 * math.pi * HBAR)
#: One e/fs in A.
E_PER_FS_TO_A = E_CHARGE_SI / 1e-15
#: Metres per Ångström.
ANGSTROM = 1e-10


def kelvin_to_ev(temperature_k):
    """Thermal energy ``k_B T`` in eV for a temperature in kelvin."""
    return K_B * temperature_k


def ev_to_kelvin(kT_ev):
    """Temperature in kelvin for a thermal energy ``kT`` in eV."""
    return kT_ev / K_B


def to_e2_over_h(sigma_internal):
    """Conductivity from the internal unit e/(V·fs·Å^(d-2)) to e²/h (·Å^(2-d))."""
    return sigma_internal / E2_OVER_H_INTERNAL


def from_e2_over_h(sigma_e2h):
    """Conductivity from e²/h (·Å^(2-d)) to the internal unit e/(V·fs·Å^(d-2))."""
    return sigma_e2h * E2_OVER_H_INTERNAL


def e2h_to_siemens(sigma_e2h):
    """2D (sheet) conductivity: e²/h → S."""
    return sigma_e2h * E2_OVER_H_SI


def siemens_to_e2h(sigma_s):
    """2D (sheet) conductivity: S → e²/h."""
    return sigma_s / E2_OVER_H_SI


def e2h_per_angstrom_to_siemens_per_m(sigma):
    """3D conductivity: (e²/h)/Å → S/m."""
    return sigma * E2_OVER_H_SI / ANGSTROM


def current_2d_to_A_per_m(j):
    """2D current density: e/(fs·Å) → A/m (1 e/(fs·Å) ≈ 1.602×10⁶ A/m)."""
    return j * E_PER_FS_TO_A / ANGSTROM


def current_3d_to_A_per_m2(j):
    """3D current density: e/(fs·Å²) → A/m²."""
    return j * E_PER_FS_TO_A / ANGSTROM**2


def v_per_m_to_v_per_angstrom(field):
    """Electric field: V/m → V/Å."""
    return field * ANGSTROM


def v_per_angstrom_to_v_per_m(field):
    """Electric field: V/Å → V/m."""
    return field / ANGSTROM


__all__ = [
    "HBAR", "E_CHARGE_SI", "H_PLANCK_SI", "K_B", "E2_OVER_H_SI", "E2_OVER_H_INTERNAL",
    "E_PER_FS_TO_A", "ANGSTROM", "kelvin_to_ev", "ev_to_kelvin", "to_e2_over_h",
    "from_e2_over_h", "e2h_to_siemens", "siemens_to_e2h", "e2h_per_angstrom_to_siemens_per_m",
    "current_2d_to_A_per_m", "current_3d_to_A_per_m2", "v_per_m_to_v_per_angstrom",
    "v_per_angstrom_to_v_per_m",
]
