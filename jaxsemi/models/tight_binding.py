"""Generic tight-binding models: lattice, orbitals, onsite energies and hoppings (PythTB-style)."""

from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
import numpy as np

from .. import _bloch, _checks
from .._lattice import check_lattice
from .._model import Model, bind


def bloch_sum(k, r_cart, blocks):
    """Σ_R e^{ik·R} blocks_R: (n, n) for k (d,) 1/Å, static R vectors ``r_cart`` (nR, d) Å."""
    phases = jnp.exp(1j * (jnp.asarray(r_cart, dtype=float).reshape(-1, k.shape[0]) @ k))
    return jnp.tensordot(phases, blocks, axes=1)


def _tight_binding(k, x, p, r_cart, tau, hop_r, hop_i, hop_j):
    n = len(tau)
    t = jnp.zeros((len(r_cart), n, n), dtype=complex)
    idx = tuple(np.asarray(v, dtype=int) for v in (hop_r, hop_i, hop_j))
    t = t.at[idx].add(p["hoppings"])
    inner = bloch_sum(k, r_cart, t)  # Σ_R e^{ik·R} t_ij(R)
    d = jnp.exp(1j * (jnp.asarray(tau, dtype=float) @ k))  # e^{ik·τ_i}
    h = jnp.conj(d)[:, None] * inner * d[None, :]
    return h + jnp.conj(h.T) + jnp.diag(p["onsite"].astype(h.dtype))


@_bloch.register(_tight_binding)
def _tight_binding_form(p, r_cart, tau, hop_r, hop_i, hop_j):
    """H(R) of every bond, its Hermitian partner (j, i, −R) and the onsite energies at R = 0."""
    n, d = len(tau), len(tau[0])
    r = np.asarray(r_cart, dtype=float).reshape(-1, d)[np.asarray(hop_r, dtype=int)]
    i, j = np.asarray(hop_i, dtype=int), np.asarray(hop_j, dtype=int)
    diag = np.arange(n)
    r_cart, hr = _bloch.assemble(np.concatenate([r, -r, np.zeros((n, d))]), np.concatenate([i, j, diag]),
                                 np.concatenate([j, i, diag]),
                                 jnp.concatenate([p["hoppings"], jnp.conj(p["hoppings"]),
                                                  p["onsite"].astype(complex)]), n)
    return r_cart, hr, np.asarray(tau)


def _as_static(arr) -> tuple:
    return tuple(tuple(float(v) for v in row) for row in np.asarray(arr))


def tight_binding(lattice, orbitals, hoppings: Sequence, onsite, *, allow_conjugate_pair: bool = False,
                  name: str = "tight_binding") -> Model:
    """Tight-binding model with orbital positions in the Bloch phases (PythTB convention).

    Args:
        lattice: (d, d) primitive vectors as rows, Å.
        orbitals: (n_orb, d) orbital positions τ_i in reduced (fractional) coordinates.
        hoppings: sequence of ``(t, i, j, R)``: ⟨i, 0|𝓗|j, R⟩ = t in eV (complex allowed), R a
            length-d sequence of integers (reduced lattice vector). The Hermitian conjugate
            ⟨j, R|𝓗|i, 0⟩ = t* is added automatically, so give each bond once; a hopping that
            is its own conjugate (i = j, R = 0) belongs in ``onsite``.
        onsite: (n_orb,) real onsite energies, eV.
        allow_conjugate_pair: accept (and sum) both a bond and its conjugate partner
            (j, i, −R), or the same bond twice, as PythTB does with this flag.

    𝓗_ij(k) = ε_i δ_ij + Σ_bonds [t e^{ik·(R + τ_j − τ_i)} + h.c.], with k cartesian (1/Å) and
    R, τ converted to Å. The structure (bonds, positions) is static: models that share it share
    compiled code. Parameters (differentiable): ``{"hoppings": (n_hop,), "onsite": (n_orb,)}``.
    """
    lat = check_lattice(lattice)
    dim = lat.shape[0]
    orb = np.asarray(orbitals, dtype=float)
    if orb.ndim == 1 and dim == 1:
        orb = orb[:, None]
    if orb.ndim != 2 or orb.shape[1] != dim or orb.shape[0] < 1:
        raise ValueError(f"orbitals must have shape (n_orb, {dim}) (reduced coordinates), got {orb.shape}")
    n_orb = orb.shape[0]
    eps = np.asarray(onsite)
    if eps.shape != (n_orb,):
        raise ValueError(f"onsite must have shape ({n_orb},) for {n_orb} orbitals, got {eps.shape}")
    if np.iscomplexobj(eps):
        raise ValueError("onsite energies must be real (a Hermitian diagonal)")
    _checks.check_finite(eps, "onsite")

    amps, hop_i, hop_j, hop_rvec = [], [], [], []
    seen: dict = {}
    for idx, hop in enumerate(hoppings):
        try:
            t, i, j, r = hop
        except (TypeError, ValueError) as err:
            raise ValueError(f"hopping {idx} must be a tuple (t, i, j, R), got {hop!r}") from err
        if not all(isinstance(v, (int, np.integer)) for v in (i, j)):
            raise ValueError(f"hopping {idx}: orbital indices must be ints, got i={i!r}, j={j!r}")
        if not (0 <= i < n_orb and 0 <= j < n_orb):
            raise ValueError(f"hopping {idx}: orbital index out of range 0..{n_orb - 1}: i={i}, j={j}")
        r_arr = np.atleast_1d(np.asarray(r))
        if r_arr.shape != (dim,) or not np.all(np.equal(np.mod(r_arr, 1), 0)):
            raise ValueError(f"hopping {idx}: R must be {dim} integers (reduced lattice vector), got {r!r}")
        r_int = tuple(int(v) for v in r_arr)
        if i == j and not any(r_int):
            raise ValueError(f"hopping {idx}: (i={i}, j={j}, R=0) is its own Hermitian partner: use onsite")
        key, partner = (int(i), int(j), r_int), (int(j), int(i), tuple(-v for v in r_int))
        for other in (key, partner):
            if other in seen and not allow_conjugate_pair:
                raise ValueError(
                    f"hopping {idx} (i={i}, j={j}, R={r_int}) repeats hopping {seen[other]} or its "
                    "Hermitian conjugate, which is added automatically (pass allow_conjugate_pair=True to sum them)"
                )
        seen.setdefault(key, idx)
        amps.append(t)
        hop_i.append(int(i))
        hop_j.append(int(j))
        hop_rvec.append(r_int)

    amps_arr = jnp.asarray(np.asarray(amps) if amps else np.zeros(0))
    _checks.check_finite(amps_arr, "hoppings")
    r_unique, hop_r = (np.unique(np.asarray(hop_rvec), axis=0, return_inverse=True) if hop_rvec
                       else (np.zeros((0, dim), int), np.zeros(0, int)))
    static = dict(
        r_cart=_as_static(r_unique @ lat),
        tau=_as_static(orb @ lat),
        hop_r=tuple(int(v) for v in np.ravel(hop_r)),
        hop_i=tuple(hop_i),
        hop_j=tuple(hop_j),
    )
    params = {"hoppings": amps_arr, "onsite": jnp.asarray(eps, dtype=float)}
    return Model(bind(_tight_binding, **static), params, dim, lat, name=name)
