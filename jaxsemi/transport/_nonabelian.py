"""Current of a fully occupied, degenerate band manifold (Eqs. 52–53) at one k-point.

Footnote 58 with Eq. 42 at zeroth order in ϵ (ẋ = ⟨∂𝓗/∂ħk⟩, ħk̇ = −eE − ⟨∂𝓗/∂x⟩):

    J_α = e Σ_{n∈a} Σ_β [𝓕_nn^{k_α x_β} ⟨n|∂𝓗/∂k_β|n⟩ − 𝓕_nn^{k_α k_β} (eE_β + ⟨n|∂𝓗/∂x_β|n⟩)] / ħ,

i.e. Eq. 52 with the 1/ħ its texture terms lack (docs/conventions.md §13); without a texture this is
Eq. 53, J = −(e²/ħ) ∫ Tr 𝓕^{kk} E. For an exactly degenerate manifold ⟨n|∂𝓗|n⟩ is the same for
every n, so the sum is Tr 𝓕 · ∂ε and does not depend on the basis inside the manifold.
"""

from __future__ import annotations

import jax.numpy as jnp

from .._geometry import PointGeometry, einsum, nonabelian_curvature_block
from ..units import HBAR


def nonabelian_current(geo: PointGeometry, fields, start: int, stop: int):
    """Eq. 52 integrand at one k for the manifold [start, stop): (B, d) in e·Å/fs."""
    w, dk, dx = geo.energies, geo.dk, geo.dx
    fkk = nonabelian_curvature_block(w, dk, dk, start, stop)  # (m, m, d, d) Å²
    tr_kk = jnp.real(einsum("nnab->nab", fkk))  # (m, d, d) diagonal elements
    push = fields[:, None, :]  # eE_β (B, 1, d), e = 1
    if dx is not None:
        fkx = jnp.real(einsum("nnab->nab", nonabelian_curvature_block(w, dk, dx, start, stop)))
        vel = jnp.real(jnp.diagonal(dk[:, start:stop, start:stop], axis1=1, axis2=2)).T  # (m, d)
        grad_x = jnp.real(jnp.diagonal(dx[:, start:stop, start:stop], axis1=1, axis2=2)).T
        push = push + grad_x[None]
        texture = einsum("nab,nb->a", fkx, vel)[None]
    else:
        texture = 0.0
    push = jnp.broadcast_to(push, (fields.shape[0],) + tr_kk.shape[:2])  # (B, m, d)
    return (texture - einsum("nab,Bnb->Ba", tr_kk, push)) / HBAR
