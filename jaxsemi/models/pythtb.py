"""Import of a PythTB tight-binding model (optional dependency ``pythtb``)."""

from __future__ import annotations

import numpy as np

from .._model import Model
from .tight_binding import tight_binding


def _read_v2(m):
    """PythTB ≥ 2.0 (``TBModel``): public properties."""
    if m.parameters:
        names = sorted({n for p in m.parameters for n in p["names"]})
        raise ValueError(f"the PythTB model has symbolic parameters {names}: fix them first with "
                         "model.with_parameters(...)")
    hops = [(h["amplitude"], h["from_orbital"], h["to_orbital"], h.get("lattice_vector", [0] * m.dim_r))
            for h in m.hoppings]
    return (m.lat_vecs, m.orb_vecs, list(m.periodic_dirs), m.dim_k, m.dim_r, m.nspin, m.onsite, hops)


def _read_v1(m):
    """PythTB 1.x (``tb_model``): the attributes its own routines use."""
    hops = [(h[0], h[1], h[2], h[3] if len(h) > 3 else [0] * m._dim_r) for h in m._hoppings]
    return (m._lat, m._orb, list(m._per), m._dim_k, m._dim_r, m._nspin, m._site_energies, hops)


def _empty_model(lattice, orbitals, periodic_dirs=None, spinful: bool = False):
    """An empty PythTB model with the installed API: 2.x ``TBModel(Lattice(...))`` or 1.x ``tb_model``.

    ``lattice`` (dim_r, dim_r) Å, ``orbitals`` (n_orb, dim_r) reduced; all directions periodic
    unless ``periodic_dirs`` says otherwise. ``set_onsite`` / ``set_hop`` work alike in both.
    """
    import pythtb

    lattice = np.asarray(lattice, dtype=float)
    per = list(range(len(lattice))) if periodic_dirs is None else list(periodic_dirs)
    if hasattr(pythtb, "TBModel"):
        return pythtb.TBModel(pythtb.Lattice(lat_vecs=lattice, orb_vecs=orbitals, periodic_dirs=per), spinful=spinful)
    return pythtb.tb_model(len(per), len(lattice), lattice, orbitals, per=per, nspin=2 if spinful else 1)


def from_pythtb(pythtb_model, *, name: str = "pythtb") -> Model:
    """A jaxsemi tight-binding model from a fully periodic PythTB model (1.x or 2.x).

    PythTB's convention is the one of ``js.models.tight_binding``: hoppings
    ⟨i, 0|𝓗|j, R⟩ with the conjugate added, orbital positions in the Bloch phases, so the
    Hamiltonian matrices agree at every k (PythTB's reduced k is k·a_i/2π here; jaxsemi's k is
    cartesian in 1/Å, the lattice in Å). Spinful models become 2·n_orb states ordered
    (orbital, spin), each orbital's two spin states at its position; off-diagonal spin parts
    of onsite blocks become R = 0 hoppings between them.
    """
    reader = _read_v2 if hasattr(pythtb_model, "orb_vecs") else _read_v1
    try:
        lat, orb, per, dim_k, dim_r, nspin, onsite, hops = reader(pythtb_model)
    except AttributeError as err:
        raise ValueError(f"not a PythTB model (TBModel or tb_model): {type(pythtb_model)!r}") from err
    if dim_k != dim_r or sorted(per) != list(range(dim_r)):
        raise ValueError(f"only fully periodic PythTB models are supported (dim_k = {dim_k}, "
                         f"dim_r = {dim_r}, periodic directions {per})")
    orb = np.asarray(orb, dtype=float).reshape(-1, dim_r)
    onsite = np.asarray(onsite)
    if nspin == 1:
        hoppings = [(complex(t), int(i), int(j), tuple(int(v) for v in r)) for t, i, j, r in hops]
        return tight_binding(lat, orb, hoppings, np.real(onsite), allow_conjugate_pair=True, name=name)
    # spinful: states 2i + s; every 2×2 block spreads over four (orbital, spin) pairs
    hoppings = []
    for t, i, j, r in hops:
        block = np.asarray(t, dtype=complex).reshape(2, 2)
        r = tuple(int(v) for v in r)
        hoppings += [(block[s, u], 2 * int(i) + s, 2 * int(j) + u, r) for s in range(2) for u in range(2)]
    blocks = onsite.reshape(-1, 2, 2)
    zero = (0,) * dim_r
    hoppings += [(blk[0, 1], 2 * i, 2 * i + 1, zero) for i, blk in enumerate(blocks)]
    eps = np.real(np.stack([blocks[:, 0, 0], blocks[:, 1, 1]], axis=1)).reshape(-1)
    return tight_binding(lat, np.repeat(orb, 2, axis=0), hoppings, eps, allow_conjugate_pair=True, name=name)
