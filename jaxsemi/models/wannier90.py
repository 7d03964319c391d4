"""Wannier90 ``seedname_hr.dat`` reader."""

from __future__ import annotations

import os

import jax.numpy as jnp
import numpy as np

from .. import _bloch
from .._model import Model, bind
from .tight_binding import _as_static, bloch_sum

_PER_LINE = 15  # degeneracies per line in hr.dat


def _hr(k, x, p, r_cart):
    return bloch_sum(k, r_cart, p["hr"])


@_bloch.register(_hr)
def _hr_form(p, r_cart):
    n = p["hr"].shape[-1]
    return np.asarray(r_cart, dtype=float), p["hr"], np.zeros((n, len(r_cart[0])))


def _fail(path, msg):
    raise ValueError(f"{os.fspath(path)}: malformed Wannier90 hr.dat file: {msg}")


def read_hr(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse ``seedname_hr.dat``: R (nR, 3) ints, degeneracies (nR,), H(R) (nR, n, n) in eV.

    H(R)_mn = ⟨m, 0|𝓗|n, R⟩ as written in the file (not yet divided by the degeneracy).
    """
    with open(path) as fh:
        lines = fh.read().splitlines()
    if len(lines) < 3:
        _fail(path, f"expected a header, num_wann and nrpts lines, found {len(lines)} lines")
    try:
        num_wann, nrpts = int(lines[1].split()[0]), int(lines[2].split()[0])
    except (ValueError, IndexError):
        _fail(path, f"lines 2 and 3 must hold num_wann and nrpts, got {lines[1]!r} and {lines[2]!r}")
    if num_wann < 1 or nrpts < 1:
        _fail(path, f"num_wann = {num_wann} and nrpts = {nrpts} must be positive")
    n_deg_lines = -(-nrpts // _PER_LINE)
    deg_lines = lines[3:3 + n_deg_lines]
    try:
        deg = np.array([int(v) for line in deg_lines for v in line.split()], dtype=int)
    except ValueError:
        _fail(path, f"the {n_deg_lines} degeneracy lines after nrpts must hold integers")
    if deg.shape != (nrpts,) or any(len(line.split()) > _PER_LINE for line in deg_lines):
        _fail(path, f"expected {nrpts} degeneracies, {_PER_LINE} per line on {n_deg_lines} lines, "
                    f"found {deg.size}")
    if np.any(deg < 1):
        _fail(path, "degeneracies must be positive integers")
    body = [line for line in lines[3 + n_deg_lines:] if line.strip()]
    expected = nrpts * num_wann**2
    if len(body) != expected:
        _fail(path, f"expected nrpts·num_wann² = {nrpts}·{num_wann}² = {expected} matrix-element lines, "
                    f"found {len(body)}")
    rows = [line.split() for line in body]
    bad = next((i for i, row in enumerate(rows) if len(row) != 7), None)
    if bad is not None:
        _fail(path, f"matrix-element line {bad + 1} must have 7 columns 'R1 R2 R3 m n Re Im': {body[bad]!r}")
    try:
        data = np.array(rows, dtype=float)
    except ValueError:
        _fail(path, "matrix-element lines must be numbers 'R1 R2 R3 m n Re Im'")
    ints = data[:, :5]
    if not np.all(ints == np.round(ints)):
        _fail(path, "R1 R2 R3 m n must be integers")
    ints = ints.astype(int)
    mn = ints[:, 3:5]
    if mn.min() < 1 or mn.max() > num_wann:
        _fail(path, f"orbital indices m, n must lie in 1..{num_wann}")
    rvecs, first, r_idx = np.unique(ints[:, :3], axis=0, return_index=True, return_inverse=True)
    r_idx = np.ravel(r_idx)
    if len(rvecs) != nrpts:
        _fail(path, f"nrpts = {nrpts} but the file holds {len(rvecs)} distinct R vectors")
    counts = np.zeros((nrpts, num_wann, num_wann), dtype=int)
    np.add.at(counts, (r_idx, mn[:, 0] - 1, mn[:, 1] - 1), 1)
    if np.any(counts != 1):
        r = rvecs[np.argwhere(counts != 1)[0, 0]]
        _fail(path, f"R = {r.tolist()} does not list every (m, n) exactly once")
    hr = np.zeros((nrpts, num_wann, num_wann), dtype=complex)
    hr[r_idx, mn[:, 0] - 1, mn[:, 1] - 1] = data[:, 5] + 1j * data[:, 6]
    # the degeneracies follow the order in which R vectors first appear in the file
    deg_by_r = np.empty(nrpts, dtype=int)
    deg_by_r[np.argsort(first)] = deg
    return rvecs, deg_by_r, hr


def from_wannier90(path, lattice=None, dim: int = 3, *, name: str | None = None) -> Model:
    """Model from a Wannier90 ``seedname_hr.dat`` file.

    𝓗(k) = Σ_R e^{ik·R} H(R)/deg(R) with R = Σ_i R_i a_i in Å and k cartesian (1/Å); the
    Wannier centres are not in hr.dat, so the phases carry lattice vectors only (orbitals at
    the origin of their cell: energies and Chern numbers are unaffected, the local Berry
    curvature is that of this gauge).

    Args:
        path: the ``_hr.dat`` file (header, num_wann, nrpts, degeneracies 15 per line, then
            ``R1 R2 R3 m n Re Im`` lines).
        lattice: primitive vectors as rows in Å, (3, 3) — or (2, 2), or (3, 3) with in-plane
            a1, a2, for ``dim=2``. Default: the identity (1 Å cubic cell), i.e. k in units
            of the reciprocal basis divided by 2π.
        dim: 3, or 2 to drop R3 (every R3 must then be 0).

    Parameters (differentiable): ``{"hr": (nR, n, n)}`` = H(R)/deg(R) in eV.
    """
    if dim not in (2, 3):
        raise ValueError(f"dim must be 2 or 3, got {dim!r}")
    lat = np.eye(dim) if lattice is None else np.asarray(lattice, dtype=float)
    if dim == 2 and lat.shape == (3, 3):
        if np.any(lat[:2, 2] != 0):
            raise ValueError("for dim=2 the first two lattice vectors must lie in the xy plane")
        lat = lat[:2, :2]
    if lat.shape != (dim, dim):
        raise ValueError(f"lattice must have shape ({dim}, {dim}) for dim={dim}, got {lat.shape}")
    rvecs, deg, hr = read_hr(path)
    if dim == 2:
        if np.any(rvecs[:, 2] != 0):
            raise ValueError(f"{os.fspath(path)}: dim=2 needs every R3 = 0, found R = "
                             f"{rvecs[np.argmax(rvecs[:, 2] != 0)].tolist()}")
        rvecs = rvecs[:, :2]
    params = {"hr": jnp.asarray(hr / deg[:, None, None])}
    label = name or os.path.basename(os.fspath(path))
    return Model(bind(_hr, r_cart=_as_static(rvecs @ lat)), params, dim, lat, name=label)
