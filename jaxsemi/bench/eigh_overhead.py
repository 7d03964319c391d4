"""Cost of σ_xy per k-point relative to bare batched ``eigh``, for random Wannier models.

A seeded random Wannier90 model (``random_hr``): n orbitals at the cell origin of a square
lattice (1 Å), ≈ 400 in-plane R vectors (|R| ≤ 11), H(R) random complex with |H(R)| ∝
e^{−|R|/2}/√n, H(−R) = H(R)†; written as ``_hr.dat`` and read with ``js.models.from_wannier90``
(the grid-structured Bloch sum). For n = 8, 16, 32, times on the same N×N grid:

* ``eigh``: ``jax.vmap(jnp.linalg.eigh)`` of precomputed H(k) matrices (the floor any
  sum-over-states code pays);
* ``sigma_xy``: ``js.hall_conductivity`` (H and ∂H/∂k, eigh, rotations, curvature, sum), as called
  (Python-side checks and dispatch included) and compiled (``jax.jit`` over μ: ``*_compiled``; on a
  GPU the call's fixed cost of a few ms is larger than the sum on these grids);
* WannierBerri (``jaxsemi[interop]``, n = 32 only, or all with ``quick``): its ``AHC`` on the
  same model as a PythTB model, serial, as in ``berry_throughput``;
* ``one_core``: ``eigh`` and ``sigma_xy`` again in a child process pinned to one CPU (Linux).

overhead = t(sigma_xy)/t(eigh) − 1 (the project heads for ≤ 50 %), ``overhead_compiled`` likewise.
``eigh_in_program``: the same ``eigh`` of the same H(k), but as the second step of a program whose first is a
complex matrix product (H times an identity passed in as an argument); ``overhead_vs_eigh_in_program`` (and
``overhead_compiled_vs_eigh_in_program``) compare σ_xy with it.

Why bare ``eigh`` is the wrong floor on several cores (jaxlib 0.10.2): its batched LAPACK kernels
(``ParallelBatchMap`` in ``jaxlib/cpu/lapack_kernels.cc``) cut the batch into one chunk per thread of XLA's
intra-op pool, schedule every chunk on that pool and block the calling thread until they are done. A program
whose first step is the ``eigh`` calls it from the host thread, and both pool threads of a 2-core CPU run a
chunk. In any larger program the thunk executor has by then handed execution to a pool thread (an
asynchronous matrix product finishes there; independent work is offloaded there), so the pool thread that
calls the ``eigh`` blocks and the other pool thread runs both chunks one after the other: one core. Measured
(2026-12-06, n = 16, 2304 k): bare 42 ms, after a complex product of H by a constant unitary 80 ms (the product
alone 3.7 ms; after a real product, an FFT or elementwise work it stays 42 ms, as long as nothing ran on the pool
before it); in σ_xy's profile the ``eigh`` (86 ms) runs on pool thread A, blocked, while thread B runs the
independent ∂𝓗/∂k work (8 ms) and then the two chunks (38 and 40 ms). σ_xy's program builds H(k) by matrix
products and has independent work beside the ``eigh``, and nothing jaxsemi tried moves the call back to the host
thread: H(k) from
real instead of complex products (σ_xy 119 → 120 ms, alternating calls), two independent ``lax.map`` loops of
LAPACK calls small enough to run inline (≤ 200 000 estimated flops per call: 4 matrices of n = 16, one of
n = 32; 104 → 81 ms at n = 16, no gain at n = 32: the loops do not run concurrently) — and splitting over two
host-platform devices (``--xla_force_host_platform_device_count=2``) gives σ_xy no second core either: σ_xy of
the Haldane model on 1000² runs 1.07× faster on two (``scale``), an unbatched ``lax.map`` of ``eigvalsh`` over
2304 16-band H(k) takes 120 ms on one device and on two, and the batched ``vmap`` of it, 60 ms on one device,
never returns on two (``SharedCoresWarning``). So the overhead on all cores mixes jaxsemi's own cost with
that scheduling; ``overhead_vs_eigh_in_program`` and the ``one_core`` overhead (XLA sizes its pool from the
pinned affinity, so both run on one thread) are jaxsemi's own. ``--quick`` is short.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

import jaxsemi as js

from ._common import best_time

#: Largest |R| (lattice units) of the random models: 401 R vectors on the square lattice.
R_MAX = 11.3
#: Decay length (lattice units) of the random hoppings.
DECAY = 2.0
MU = np.array([-0.2, 0.0, 0.2])


def random_hr(n_bands: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """R (nR, 3) ints (R₃ = 0) and Hermitian H(R) (nR, n, n) eV of a seeded random model."""
    rng = np.random.default_rng(seed)
    m = int(R_MAX)
    grid = np.stack(np.meshgrid(np.arange(-m, m + 1), np.arange(-m, m + 1), indexing="ij"), -1).reshape(-1, 2)
    r = grid[np.linalg.norm(grid, axis=1) <= R_MAX]
    half = r[(r[:, 0] > 0) | ((r[:, 0] == 0) & (r[:, 1] > 0))]  # one of each ±R pair
    scale = np.exp(-np.linalg.norm(half, axis=1) / DECAY)[:, None, None] / np.sqrt(n_bands)
    h_half = scale * (rng.normal(size=(len(half), n_bands, n_bands))
                      + 1j * rng.normal(size=(len(half), n_bands, n_bands)))
    h0 = rng.normal(size=(n_bands, n_bands)) + 1j * rng.normal(size=(n_bands, n_bands))
    h0 = (h0 + h0.conj().T) / (2 * np.sqrt(n_bands))
    rvecs = np.concatenate([np.zeros((1, 2), int), half, -half])
    hr = np.concatenate([h0[None], h_half, np.conj(np.swapaxes(h_half, 1, 2))])
    return np.concatenate([rvecs, np.zeros((len(rvecs), 1), int)], 1), hr


def write_hr(path, rvecs, hr) -> None:
    """Write a Wannier90 ``_hr.dat`` (degeneracies 1)."""
    n_r, n = hr.shape[:2]
    lines = ["random model written by jaxsemi.bench.eigh_overhead", str(n), str(n_r)]
    lines += [" ".join(["1"] * len(chunk)) for chunk in np.array_split(np.ones(n_r), range(15, n_r, 15))]
    for r, h in zip(rvecs, hr):
        lines += [f"{r[0]} {r[1]} {r[2]} {a + 1} {b + 1} {h[a, b].real:.17e} {h[a, b].imag:.17e}"
                  for b in range(n) for a in range(n)]
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def random_model(n_bands: int, seed: int = 0) -> js.Model:
    """The random model of ``random_hr`` read back from a temporary ``_hr.dat`` (dim = 2)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "random_hr.dat")
        write_hr(path, *random_hr(n_bands, seed))
        return js.models.from_wannier90(path, np.eye(3), dim=2, name=f"random_wannier_{n_bands}")


def pythtb_model(rvecs, hr):
    """The same model as a PythTB model (orbitals at the origin; one hopping per (i, j, R) of
    one R of each ±R pair, the R = 0 upper triangle, onsite = diag H(0)). PythTB 1.x's
    ``set_hop`` searches all earlier hoppings, so there the list is filled directly."""
    from jaxsemi.models.pythtb import _empty_model

    n = hr.shape[1]
    model = _empty_model(np.eye(2), np.zeros((n, 2)))
    zero = np.all(rvecs == 0, axis=1)
    model.set_onsite(np.real(np.diagonal(hr[zero][0])).tolist())
    half = (rvecs[:, 0] > 0) | ((rvecs[:, 0] == 0) & (rvecs[:, 1] > 0))
    hops = [(hr[zero][0][i, j], i, j, [0, 0]) for i in range(n) for j in range(i + 1, n)]
    hops += [(h[i, j], i, j, list(r[:2])) for r, h in zip(rvecs[half], hr[half]) for i in range(n) for j in range(n)]
    if hasattr(model, "_hoppings") and not hasattr(model, "orb_vecs"):  # PythTB 1.x
        model._hoppings.extend([[complex(t), i, j, np.array(r)] for t, i, j, r in hops])
    else:
        for t, i, j, r in hops:
            model.set_hop(complex(t), i, j, r)
    return model


def _wannierberri(rvecs, hr, n_k, repeats):
    """σ_xy k-points/s and values of WannierBerri on the PythTB form of the model (or a skip)."""
    from . import skipped
    from .berry_throughput import _wannierberri as run_wb

    import contextlib
    import io
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import wannierberri as wb
        ptb = pythtb_model(rvecs, hr)
    except ModuleNotFoundError as err:
        return {"status": skipped(err.name)}
    return run_wb(wb, ptb, n_k, repeats, MU)


def measure(n_bands: int, n_k: int, repeats: int, with_wannierberri: bool) -> dict:
    rvecs, hr = random_hr(n_bands)
    model = random_model(n_bands)
    grid = js.kgrid.brillouin_zone(model, n_k)
    hk = jax.block_until_ready(model(grid.points))
    eigh = jax.jit(jax.vmap(jnp.linalg.eigh))
    jax.block_until_ready(eigh(hk))
    t_eigh, _ = best_time(lambda: jax.block_until_ready(eigh(hk)), repeats)
    # the identity as an argument, not a constant XLA could fold away: the product runs, then the eigh
    in_program = jax.jit(lambda h, one: jax.vmap(jnp.linalg.eigh)(h @ one))
    one = jnp.eye(n_bands, dtype=hk.dtype)
    jax.block_until_ready(in_program(hk, one))
    t_in_program, _ = best_time(lambda: jax.block_until_ready(in_program(hk, one)), repeats)
    mu = jnp.asarray(MU)
    sigma = lambda: jax.block_until_ready(js.hall_conductivity(model, mu, grid))  # noqa: E731
    sigma()
    t_sigma, value = best_time(sigma, repeats)
    compiled = jax.jit(lambda m: js.hall_conductivity(model, m, grid))
    jax.block_until_ready(compiled(mu))
    t_compiled, _ = best_time(lambda: jax.block_until_ready(compiled(mu)), repeats)
    n = grid.size
    out = {"n_bands": n_bands, "n_R": len(rvecs), "n_k": n, "eigh_kpts_per_s": n / t_eigh,
           "sigma_kpts_per_s": n / t_sigma, "overhead": t_sigma / t_eigh - 1.0,
           "eigh_in_program_kpts_per_s": n / t_in_program, "overhead_vs_eigh_in_program": t_sigma / t_in_program - 1.0,
           "sigma_compiled_kpts_per_s": n / t_compiled, "overhead_compiled": t_compiled / t_eigh - 1.0,
           "overhead_compiled_vs_eigh_in_program": t_compiled / t_in_program - 1.0,
           "sigma_xy": np.asarray(value).tolist()}
    if with_wannierberri:
        wb = _wannierberri(rvecs, hr, n_k, repeats)
        if "sigma_xy" in wb:
            wb["max_abs_diff_sigma_vs_jaxsemi"] = float(np.max(np.abs(np.asarray(wb["sigma_xy"]) - out["sigma_xy"])))
            wb["jaxsemi_speedup"] = out["sigma_kpts_per_s"] / wb["kpoints_per_s"]
        out["wannierberri"] = wb
    return out


def measure_one_core(n_bands: int, n_k: int, repeats: int) -> dict:
    """``measure`` (without WannierBerri) in a child process pinned to one CPU, or a skip where the system
    cannot pin one (no ``os.sched_setaffinity``)."""
    if not hasattr(os, "sched_setaffinity"):
        return {"status": "skipped: needs os.sched_setaffinity (Linux)"}
    cpu = min(os.sched_getaffinity(0))
    code = ("import json, os, sys; os.sched_setaffinity(0, {int(sys.argv[1])}); import jaxsemi as js; "
            "from jaxsemi.bench.eigh_overhead import measure; js.limit_blas_threads(1); "
            "print(json.dumps({**measure(*map(int, sys.argv[2:]), False), 'cpus': len(os.sched_getaffinity(0))}))")
    # pinned before JAX starts: XLA sizes its thread pool from the affinity
    child = subprocess.run([sys.executable, "-c", code, str(cpu), str(n_bands), str(n_k), str(repeats)],
                           capture_output=True, text=True)
    if child.returncode:
        raise RuntimeError(f"the one-core child process failed:\n{child.stderr[-3000:]}")
    return {"cpu": cpu, **json.loads(child.stdout.strip().splitlines()[-1])}  # "cpus": 1, the child's affinity


def run(quick: bool = False) -> dict:
    sizes = [(8, 24), (16, 24)] if quick else [(8, 64), (16, 48), (32, 48)]
    repeats = 2 if quick else 3
    return {"benchmark": "eigh_overhead",
            "what": f"random Wannier models (hr.dat, |R| <= {R_MAX}, decay {DECAY}); sigma_xy at mu = "
                    f"{MU.tolist()} eV, kT = 0, vs vmap(eigh) of the same H(k); seconds = min over repeats",
            "results": [{**measure(n, k, repeats, quick or n == 32), "one_core": measure_one_core(n, k, repeats)}
                        for n, k in sizes]}
