"""Cost of σ_xy per k-point relative to bare batched ``eigh`` for n-band tight-binding models.

For random n-band square-lattice models (n = 8, 16, 32; nearest and next-nearest hoppings with
random complex amplitudes), times on the same k-points:

* ``eigh``: ``jax.vmap(jnp.linalg.eigh)`` of precomputed H(k) matrices (the floor any
  sum-over-states code pays);
* ``sigma_xy``: ``js.hall_conductivity`` (H and ∂H/∂k by autodiff, eigh, rotations, curvature, sum).

overhead = t(sigma_xy)/t(eigh) − 1 (the project heads for ≤ 50 %). ``--quick`` is short.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np

import jaxsemi as js

from ._common import best_time


def random_model(n_bands: int, seed: int = 0) -> js.Model:
    rng = np.random.default_rng(seed)
    hops = [(rng.normal(size=(n_bands, n_bands)) + 1j * rng.normal(size=(n_bands, n_bands))) / n_bands
            for _ in range(4)]
    onsite = np.diag(rng.normal(size=n_bands))
    params = {"onsite": jnp.asarray(onsite), "t": jnp.asarray(np.stack(hops))}
    shifts = np.array([[1, 0], [0, 1], [1, 1], [1, -1]], float)

    def h(k, x, p):
        phases = jnp.exp(1j * (jnp.asarray(shifts) @ k))
        m = jnp.einsum("r,rij->ij", phases, p["t"])
        return p["onsite"] + m + jnp.conj(m.T)

    return js.Model(h, params, 2, np.eye(2), name=f"random_{n_bands}")


def measure(n_bands: int, n_k: int, repeats: int) -> dict:
    model = random_model(n_bands)
    grid = js.kgrid.brillouin_zone(model, n_k)
    hk = jax.block_until_ready(model(grid.points))
    eigh = jax.jit(jax.vmap(jnp.linalg.eigh))
    jax.block_until_ready(eigh(hk))
    t_eigh, _ = best_time(lambda: jax.block_until_ready(eigh(hk)), repeats)
    sigma = lambda: jax.block_until_ready(js.hall_conductivity(model, 0.0, grid))  # noqa: E731
    sigma()
    t_sigma, value = best_time(sigma, repeats)
    n = grid.size
    return {"n_bands": n_bands, "n_k": n, "eigh_kpts_per_s": n / t_eigh, "sigma_kpts_per_s": n / t_sigma,
            "overhead": t_sigma / t_eigh - 1.0, "sigma_xy": float(value)}


def run(quick: bool = False) -> dict:
    sizes = [(8, 24), (16, 16)] if quick else [(8, 64), (16, 48), (32, 32)]
    return {"benchmark": "eigh_overhead",
            "results": [measure(n, k, 2 if quick else 3) for n, k in sizes]}
