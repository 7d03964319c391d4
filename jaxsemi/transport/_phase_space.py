"""Phase-space density of states D (Xiao, Shi & Niu, PRL 95, 137204 (2005)) at one k-point.

Eq. 43 is the flow of the symplectic form ω = ω₀ + Berry curvature; it conserves the measure
D dx dk with D the Pfaffian of ω. In the variables of ``_eom`` (ħ scaled out),

    D_n = √det [[1 + Ω^{kx}, Ω^{kk}], [−Ω^{xx}, 1 − Ω^{xk}]] = 1 + Σ_α Ω_n^{k_α x_α} + O(∇²),

exact for the single-band flow (Liouville: ∇_λ·(D λ̇) = 0, λ = (x, k)); D = 1 without a texture.
Computed as |Pf ω| = √det ω: the Pfaffian changes sign only where |Ω^{kx}| ~ 1, far outside the
texture limit of Eq. 37 (``ValidityWarning``). For two bands the Berry 2-form is pulled back
from the Bloch sphere (Ω∧Ω = 0) and D = 1 + Σ_α Ω^{k_α x_α} exactly.
Eqs. 47 and 60 weight states by 1; ``phase_space_density=True`` weights them by D.

The non-adiabatic theory has no single-band 2-form: its hybridised bands move by Eq. 62 with
the remote-band curvatures ⟨𝓕⟩^{(i)} of the manifold, and D_i = 1 + Σ_α ⟨η_i|𝓕^{k_α x_α}|η_i⟩
is the first-order density of the same flow; Σ_i D_i = N_a + Tr 𝓕^{kx} is the manifold's
state count, independent of the basis inside it. For a one-band manifold it is the first
order of the SSCT D.
"""

from __future__ import annotations

import jax.numpy as jnp

from .._geometry import PointGeometry, abelian_curvature, einsum


def ssct_density(geo: PointGeometry):
    """Liouville density D_n (n,) of Eq. 43 for every band (textured geometry: dx given)."""
    dk, dx, w = geo.dk, geo.dx, geo.energies
    eye = jnp.eye(dk.shape[0])
    okk, okx, oxk, oxx = (abelian_curvature(w, a, b) for a, b in ((dk, dk), (dk, dx), (dx, dk), (dx, dx)))
    omega = jnp.block([[eye + okx, okk], [-oxx, eye - oxk]])  # (n, 2d, 2d), det = Pf(ω)²
    return jnp.sqrt(jnp.maximum(jnp.linalg.det(omega), 0.0))  # |Pf ω|; round-off can make det(ω) = Pf² < 0


def two_band_density(omega):
    """``ssct_density`` of a two-band model, |1 + Σ_α Ω^{k_α x_α}| (2,) (exact: Ω∧Ω = 0), from the curvatures in
    λ = (k, x) (2, 2d, 2d) of ``_geometry.two_band_geometry``."""
    d = omega.shape[-1] // 2
    return jnp.abs(1.0 + jnp.trace(omega[:, :d, d:], axis1=1, axis2=2))


def manifold_density(eta, fkx):
    """D_i = 1 + Σ_α ⟨η_i|𝓕^{k_α x_α}|η_i⟩ (B, m) for eta (B, m, m) (columns), fkx (m, m, d, d)."""
    trace = einsum("nmaa->nm", fkx)
    return 1.0 + jnp.real(einsum("Bmi,mn,Bni->Bi", jnp.conj(eta), trace, eta))
