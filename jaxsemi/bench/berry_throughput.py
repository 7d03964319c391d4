"""k-points per second for the intrinsic Hall conductivity σ_xy of the Haldane model.

One N×N Brillouin-zone grid (Γ included), one list of chemical potentials, kT = 0, three codes:

* jaxsemi: ``js.hall_conductivity`` for ``js.models.haldane`` (closed-form 2×2 path) and for
  the same model imported from PythTB (generic tight-binding path); compile excluded;
* WannierBerri (if installed): ``AHC`` Fermi-sea calculator on a ``System_R.from_pythtb`` system
  of the same PythTB model, one FFT block of N×N points, no symmetries, internal terms only;
* PythTB (if installed): its own Kubo curvature ``TBModel.berry_curvature`` per band and its
  energies, summed on the grid by numpy.

All three evaluate the same integral on the same points: σ_xy = −2π Σ_k w_k Σ_n f_n Ω_n (e²/h),
Ω_n by the Kubo (sum-over-states) formula with orbital positions in the Bloch phases, so their
values agree to round-off (the JSON reports the largest difference). Times are the minimum of
repeats with ``block_until_ready``. Prints JSON; ``--quick`` finishes in < 30 s.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile

import jax
import numpy as np

import jaxsemi as js

try:
    from ._common import best_time, script_main
except ImportError:  # run as a script
    from _common import best_time, script_main

S3 = np.sqrt(3.0)
PARAMS = dict(t1=1.0, t2=0.1, phi=1.2, mass=0.2)  # lower band C = +1: σ_xy = −1 in the gap
MU = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])  # increasing (WannierBerri requires it)


def _pythtb_haldane(pythtb, t1, t2, phi, mass):
    """``js.models.haldane`` as a PythTB model: A at (0, 1/3), B at A + δ₁ in the basis a₁, a₂
    (both in the home cell, so WannierBerri's wrapping of centres changes nothing), listed with
    a₁ ↔ a₂ swapped because PythTB requires a right-handed lattice."""
    lattice = np.array([[1.5, -S3 / 2], [1.5, S3 / 2]])
    model = pythtb.TBModel(pythtb.Lattice(lat_vecs=lattice, orb_vecs=[[1 / 3, 0.0], [0.0, 2 / 3]],
                                          periodic_dirs=[0, 1]))
    model.set_onsite([mass, -mass])
    hops = [(t1, 0, 1, (0, 0)), (t1, 0, 1, (1, -1)), (t1, 0, 1, (0, -1))]
    for r in [(1, 0), (0, -1), (-1, 1)]:
        hops += [(t2 * np.exp(1j * phi), 0, 0, r), (t2 * np.exp(-1j * phi), 1, 1, r)]
    for t, i, j, r in hops:
        model.set_hop(t, i, j, list(r))
    return model


def _jaxsemi(model, grid, repeats):
    mu = jax.numpy.asarray(MU)
    js.hall_conductivity(model, mu, grid).block_until_ready()  # compile
    seconds, sigma = best_time(lambda: js.hall_conductivity(model, mu, grid).block_until_ready(), repeats)
    return {"seconds": seconds, "kpoints_per_s": len(grid) / seconds, "sigma_xy": np.asarray(sigma).tolist()}


def _wannierberri(wb, ptb, n, repeats):
    with contextlib.redirect_stdout(io.StringIO()), tempfile.TemporaryDirectory() as tmp:
        system = wb.system.System_R.from_pythtb(ptb)
        grid = wb.Grid(system, NK=(n, n, 1), NKFFT=(n, n, 1), use_symmetry=False)
        calc = {"ahc": wb.calculators.static.AHC(Efermi=MU, tetra=False, kwargs_formula={"external_terms": False})}

        def once():
            res = wb.run(system, grid=grid, calculators=calc, parallel=False, use_irred_kpt=False,
                         symmetrize=False, file_Klist_path=os.path.join(tmp, "k"),
                         fout_name=os.path.join(tmp, "res"), print_progress_step_time=1e9)
            return res.results["ahc"].data[:, 2]  # σ_xy in S/m for the 3D stack, c = 1 Å

        seconds, sigma = best_time(once, repeats)
    c_m = system.real_lattice[2, 2] * js.units.ANGSTROM
    sigma = js.units.siemens_to_e2h(np.asarray(sigma) * c_m)
    return {"seconds": seconds, "kpoints_per_s": n * n / seconds, "sigma_xy": np.asarray(sigma).tolist(),
            "settings": "System_R.from_pythtb, Grid(NK=NKFFT=(N,N,1), use_symmetry=False), AHC(tetra=False, "
                        "external_terms=False), run(parallel=False, use_irred_kpt=False, symmetrize=False)"}


def _pythtb_sigma(ptb, n, repeats):
    frac = np.stack(np.meshgrid(np.arange(n) / n, np.arange(n) / n, indexing="ij"), -1).reshape(-1, 2)
    area = abs(np.linalg.det(2 * np.pi * np.linalg.inv(ptb.lat_vecs).T))
    weight = area / (n * n * (2 * np.pi) ** 2)

    def once():
        energies = ptb.solve_ham(frac)  # (N, n_bands) eV
        omega = np.stack([np.real(ptb.berry_curvature(frac, occ_idxs=[b], plane=(0, 1), cartesian=True))
                          for b in range(energies.shape[1])], -1)  # (N, n_bands) Å²
        occ = (energies[None] < MU[:, None, None]).astype(float)
        return -2 * np.pi * weight * np.einsum("mkn,kn->m", occ, omega)

    seconds, sigma = best_time(once, repeats)
    return {"seconds": seconds, "kpoints_per_s": n * n / seconds, "sigma_xy": sigma.tolist(),
            "settings": "TBModel.solve_ham + TBModel.berry_curvature(occ_idxs=[n], cartesian=True) per band"}


def run(quick: bool = False) -> dict:
    """Run the benchmark; ``quick`` uses a 48×48 grid (< 30 s), else 240×240 plus a 1200² jaxsemi run."""
    n = 48 if quick else 240
    repeats = 2 if quick else 3
    haldane = js.models.haldane(**PARAMS)
    grid = js.kgrid.brillouin_zone(haldane, n)
    out = {
        "benchmark": "berry_throughput",
        "what": "sigma_xy of the Haldane model (t1=1, t2=0.1, phi=1.2, M=0.2 eV) on an NxN BZ grid, "
                "5 chemical potentials, kT=0; seconds = min over repeats, compile excluded",
        "versions": {},
        "grid": [n, n],
        "n_k": n * n,
        "mu_eV": MU.tolist(),
        "method": "all codes: Kubo sum over states, orbital positions in the Bloch phases, same points",
        "jaxsemi": _jaxsemi(haldane, grid, repeats),
    }
    try:
        import pythtb
    except ImportError:
        pythtb = None
    if pythtb is not None:
        out["versions"]["pythtb"] = getattr(pythtb, "__version__", "unknown")
        ptb = _pythtb_haldane(pythtb, **PARAMS)
        out["jaxsemi_tight_binding"] = _jaxsemi(js.models.from_pythtb(ptb), grid, repeats)
        out["pythtb"] = _pythtb_sigma(ptb, n, repeats)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                import wannierberri as wb
        except ImportError:
            wb = None
        if wb is not None:
            out["versions"]["wannierberri"] = wb.__version__
            out["wannierberri"] = _wannierberri(wb, ptb, n, repeats)
    ref = np.asarray(out["jaxsemi"]["sigma_xy"])
    for key in ("jaxsemi_tight_binding", "pythtb", "wannierberri"):
        if key in out:
            out[key]["max_abs_diff_sigma_vs_jaxsemi"] = float(np.max(np.abs(np.asarray(out[key]["sigma_xy"]) - ref)))
            out[key]["jaxsemi_speedup"] = out["jaxsemi"]["kpoints_per_s"] / out[key]["kpoints_per_s"]
    if not quick:
        big = js.kgrid.brillouin_zone(haldane, 1200)
        out["jaxsemi_large_grid"] = {"grid": [1200, 1200], **_jaxsemi(haldane, big, 2)}
    return out


def main(argv=None):
    script_main(run, __doc__, argv)


if __name__ == "__main__":
    main()
