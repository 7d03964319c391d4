"""k-points per second for the intrinsic Hall conductivity σ_xy of the Haldane model.

One N×N Brillouin-zone grid (Γ included), one list of chemical potentials, kT = 0, three codes:

* jaxsemi: ``js.hall_conductivity`` for ``js.models.haldane`` (closed-form 2×2 path) and for
  the same model imported from PythTB (generic tight-binding path); compile excluded;
* WannierBerri (``jaxsemi[interop]``): ``AHC`` Fermi-sea calculator on a ``System_R.from_pythtb`` system
  of the same PythTB model, one FFT block of N×N points, no symmetries, internal terms only;
* PythTB 2.x (``jaxsemi[interop]`` on Python >= 3.12): its own Kubo curvature
  ``TBModel.berry_curvature`` per band and its energies, summed on the grid by numpy. The PythTB
  model is built with either major (1.x has no Kubo curvature: only that run is skipped).

A second comparison (``wannierberri_haldane_ptb``, the project's goal: ≥ 300× WannierBerri)
takes WannierBerri's own test model ``wannierberri.models.Haldane_ptb(delta=0.2, hop1=-1,
hop2=0.15, phi=π/2)``, imports it with ``js.models.from_pythtb`` (the grid-structured Bloch
sum) and runs both codes on the same 300×300 grid.

All three evaluate the same integral on the same points: σ_xy = −2π Σ_k w_k Σ_n f_n Ω_n (e²/h),
Ω_n by the Kubo (sum-over-states) formula with orbital positions in the Bloch phases, so their
values agree to round-off (the JSON reports the largest difference). Times are the minimum of
repeats with ``block_until_ready``. ``--quick`` finishes in < 30 s.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile

import jax
import numpy as np

import jaxsemi as js
from jaxsemi.models.pythtb import _empty_model

from . import skipped
from ._common import best_time

S3 = np.sqrt(3.0)
PARAMS = dict(t1=1.0, t2=0.1, phi=1.2, mass=0.2)  # lower band C = +1: σ_xy = −1 in the gap
OTHERS = ("jaxsemi_tight_binding", "pythtb", "wannierberri")
MU = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])  # increasing (WannierBerri requires it)


def _pythtb_haldane(t1, t2, phi, mass):
    """``js.models.haldane`` as a PythTB model (1.x or 2.x API): A at (0, 1/3), B at A + δ₁ in
    the basis a₁, a₂ (both in the home cell, so WannierBerri's wrapping of centres changes
    nothing), listed with a₁ ↔ a₂ swapped because PythTB requires a right-handed lattice."""
    model = _empty_model([[1.5, -S3 / 2], [1.5, S3 / 2]], [[1 / 3, 0.0], [0.0, 2 / 3]])
    model.set_onsite([mass, -mass])
    hops = [(t1, 0, 1, (0, 0)), (t1, 0, 1, (1, -1)), (t1, 0, 1, (0, -1))]
    for r in [(1, 0), (0, -1), (-1, 1)]:
        hops += [(t2 * np.exp(1j * phi), 0, 0, r), (t2 * np.exp(-1j * phi), 1, 1, r)]
    for t, i, j, r in hops:
        model.set_hop(t, i, j, list(r))
    return model


def _jaxsemi(model, grid, repeats, mu=MU):
    mu = jax.numpy.asarray(mu)
    js.hall_conductivity(model, mu, grid).block_until_ready()  # compile
    seconds, sigma = best_time(lambda: js.hall_conductivity(model, mu, grid).block_until_ready(), repeats)
    return {"seconds": seconds, "kpoints_per_s": len(grid) / seconds, "sigma_xy": np.asarray(sigma).tolist()}


def _wannierberri(wb, ptb, n, repeats, mu=MU):
    with contextlib.redirect_stdout(io.StringIO()), tempfile.TemporaryDirectory() as tmp:
        system = wb.system.System_R.from_pythtb(ptb)
        grid = wb.Grid(system, NK=(n, n, 1), NKFFT=(n, n, 1), use_symmetry=False)
        calc = {"ahc": wb.calculators.static.AHC(Efermi=mu, tetra=False, kwargs_formula={"external_terms": False})}

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


def _pythtb_based(grid, n, repeats) -> tuple[dict, dict]:
    """Versions and results of the runs on the PythTB model: jaxsemi's generic tight-binding
    path, PythTB itself and WannierBerri, each ``{"status": "skipped: ..."}`` if it cannot run."""
    try:
        ptb = _pythtb_haldane(**PARAMS)
    except ModuleNotFoundError as err:
        return {}, {key: {"status": skipped(err.name)} for key in OTHERS}
    versions = {"pythtb": getattr(sys.modules["pythtb"], "__version__", "unknown")}
    out = {"jaxsemi_tight_binding": _jaxsemi(js.models.from_pythtb(ptb), grid, repeats),
           "pythtb": _pythtb_sigma(ptb, n, repeats) if hasattr(ptb, "berry_curvature") else
           {"status": "skipped: PythTB 1.x has no Kubo curvature (TBModel.berry_curvature needs pythtb 2, "
                      "which needs Python >= 3.12)"}}
    try:  # WannierBerri imports numba (which it does not declare) only when it computes
        with contextlib.redirect_stdout(io.StringIO()):
            import wannierberri as wb
        out["wannierberri"] = _wannierberri(wb, ptb, n, repeats)
        versions["wannierberri"] = wb.__version__
    except ModuleNotFoundError as err:
        out["wannierberri"] = {"status": skipped(err.name)}
    return versions, out


def _haldane_ptb(n, repeats) -> dict:
    """jaxsemi (``from_pythtb``) and WannierBerri on WannierBerri's ``Haldane_ptb``, one N×N grid."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import wannierberri as wb
            from wannierberri.models import Haldane_ptb
            ptb = Haldane_ptb(delta=0.2, hop1=-1, hop2=0.15, phi=np.pi / 2)
    except ModuleNotFoundError as err:
        return {"status": skipped(err.name)}
    model = js.models.from_pythtb(ptb, name="Haldane_ptb")
    ours = _jaxsemi(model, js.kgrid.brillouin_zone(model, n), repeats)
    theirs = _wannierberri(wb, ptb, n, repeats)
    return {"model": "wannierberri.models.Haldane_ptb(delta=0.2, hop1=-1, hop2=0.15, phi=pi/2) via "
                     "js.models.from_pythtb", "grid": [n, n], "jaxsemi": ours, "wannierberri": theirs,
            "max_abs_diff_sigma": float(np.max(np.abs(np.asarray(ours["sigma_xy"]) - theirs["sigma_xy"]))),
            "jaxsemi_speedup": ours["kpoints_per_s"] / theirs["kpoints_per_s"]}


def run(quick: bool = False) -> dict:
    """Run the benchmark; ``quick`` uses 48×48 grids (< 30 s), else 240×240, 300×300 for
    ``Haldane_ptb`` and a 1200² jaxsemi run."""
    n = 48 if quick else 240
    repeats = 2 if quick else 3
    haldane = js.models.haldane(**PARAMS)
    grid = js.kgrid.brillouin_zone(haldane, n)
    reference = _jaxsemi(haldane, grid, repeats)
    versions, others = _pythtb_based(grid, n, repeats)
    out = {
        "benchmark": "berry_throughput",
        "what": "sigma_xy of the Haldane model (t1=1, t2=0.1, phi=1.2, M=0.2 eV) on an NxN BZ grid, "
                "5 chemical potentials, kT=0; seconds = min over repeats, compile excluded",
        "versions": versions,
        "grid": [n, n],
        "n_k": n * n,
        "mu_eV": MU.tolist(),
        "method": "all codes: Kubo sum over states, orbital positions in the Bloch phases, same points",
        "jaxsemi": reference,
        **others,
    }
    for res in others.values():
        if "sigma_xy" in res:
            res["max_abs_diff_sigma_vs_jaxsemi"] = float(np.max(np.abs(np.asarray(res["sigma_xy"]) -
                                                                       reference["sigma_xy"])))
            res["jaxsemi_speedup"] = reference["kpoints_per_s"] / res["kpoints_per_s"]
    out["wannierberri_haldane_ptb"] = _haldane_ptb(48 if quick else 300, repeats)
    if not quick:
        big = js.kgrid.brillouin_zone(haldane, 1200)
        out["jaxsemi_large_grid"] = {"grid": [1200, 1200], **_jaxsemi(haldane, big, 2)}
    return out
