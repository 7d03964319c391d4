"""Input validation shared by every public entry point.

Shape and structure errors are raised as plain ``ValueError`` before any tracing.
Value checks (finiteness, Hermiticity, gaps) run eagerly when their inputs are concrete
and are skipped under a JAX transformation, where the caller has already been checked.
"""

from __future__ import annotations

from typing import Any, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(*trees: Any) -> bool:
    """True when no leaf of ``trees`` is a JAX tracer (values can be inspected)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(trees))


def check_finite(tree: Any, name: str) -> None:
    """Raise if a concrete PyTree holds NaN or inf."""
    if not is_concrete(tree):
        return
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        arr = np.asarray(leaf)
        if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
            where = jax.tree_util.keystr(path) or ""
            raise ValueError(f"{name}{where} contains NaN or inf: {arr!r}")


def check_kT(kT: Any, *, positive: bool = False, why: str = "") -> None:
    """kT in eV must be ≥ 0 (or > 0 when ``positive``); ``why`` says which term needs it."""
    check_finite(kT, "kT")
    if not is_concrete(kT):
        return
    arr = np.asarray(kT)
    if np.any(arr < 0):
        raise ValueError(f"kT must be >= 0 eV, got {arr}")
    if positive and np.any(arr <= 0):
        raise ValueError(
            f"kT must be > 0 eV here{': ' + why if why else ''} (the derivative of a step "
            "function is zero, so kT = 0 would silently drop Fermi-surface terms)"
        )


def as_points(k: Any, dim: int, name: str = "k") -> jax.Array:
    """Validate a batch of points with last axis ``dim``; returns a float array (..., dim)."""
    arr = jnp.asarray(k)
    if arr.ndim == 0 or arr.shape[-1] != dim:
        raise ValueError(
            f"{name} must have shape (..., {dim}) for a {dim}D model, got shape {arr.shape}"
        )
    if jnp.issubdtype(arr.dtype, jnp.complexfloating):
        raise ValueError(f"{name} must be real, got dtype {arr.dtype}")
    check_finite(arr, name)
    return arr.astype(jnp.result_type(float))


def band_slice(bands: Any, n_bands: int) -> tuple[int, int]:
    """Normalise a band index or a contiguous sequence of band indices to ``(start, stop)``."""
    if isinstance(bands, (int, np.integer)):
        idx = [int(bands)]
    else:
        try:
            idx = [int(b) for b in bands]
        except TypeError as err:
            raise ValueError(f"bands must be an int or a sequence of ints, got {bands!r}") from err
    if not idx:
        raise ValueError("bands must name at least one band")
    for b in idx:
        if not 0 <= b < n_bands:
            raise ValueError(f"band index {b} out of range for a model with {n_bands} bands")
    if idx != list(range(idx[0], idx[0] + len(idx))):
        raise ValueError(f"bands must be contiguous and increasing, got {idx}")
    return idx[0], idx[0] + len(idx)


def check_hermitian(h: np.ndarray, where: str, rtol: float = 1e-10) -> None:
    """Raise if the concrete matrix ``h`` is not Hermitian, saying how far it is."""
    h = np.asarray(h)
    dev = np.max(np.abs(h - np.conj(np.swapaxes(h, -1, -2))))
    scale = max(np.max(np.abs(h)), 1e-300)
    if dev > rtol * scale + 1e-14:
        raise ValueError(
            f"Hamiltonian is not Hermitian at {where}: max |H - H^dagger| = {dev:.3e} "
            f"(max |H| = {scale:.3e})"
        )


def check_gap_open(min_gap: float, where, start: int, stop: int, tol: float = 1e-6) -> None:
    """Raise if the smallest gap (eV) of the manifold [start, stop) to the other bands is < tol."""
    if min_gap < tol:
        raise ValueError(
            f"the gap between bands [{start}, {stop}) and the remaining bands closes on the grid: "
            f"{min_gap:.3e} eV at k = {np.asarray(where)} (1/Å); choose a different manifold"
        )


def check_manifold_gap(energies: np.ndarray, start: int, stop: int, points: np.ndarray,
                       tol: float = 1e-6) -> None:
    """Raise if the band manifold [start, stop) touches the remaining bands on a grid.

    ``energies`` (N, n) and ``points`` (N, d) are concrete; the message names the k of the
    smallest gap.
    """
    energies = np.asarray(energies)
    n = energies.shape[-1]
    gaps = []
    if start > 0:
        gaps.append(energies[:, start] - energies[:, start - 1])
    if stop < n:
        gaps.append(energies[:, stop] - energies[:, stop - 1])
    if not gaps:
        return
    gap = np.min(np.stack(gaps), axis=0)
    i = int(np.argmin(gap))
    check_gap_open(float(gap[i]), np.asarray(points)[i], start, stop, tol)


def check_int_sequence(n: Any, dim: int, name: str, minimum: int = 2) -> tuple[int, ...]:
    """An int or a length-``dim`` sequence of ints, each ≥ ``minimum``."""
    seq: Sequence[int] = (n,) * dim if isinstance(n, (int, np.integer)) else tuple(n)
    if len(seq) != dim:
        raise ValueError(f"{name} must be an int or a sequence of {dim} ints, got {n!r}")
    seq = tuple(int(s) for s in seq)
    if any(s < minimum for s in seq):
        raise ValueError(f"{name} needs at least {minimum} points per axis, got {seq}")
    return seq


# ------------------------------------------------ value checks that survive jit / vmap / grad


def traced_error_if(x: Any, checks: Sequence[tuple[Any, str]]) -> Any:
    """``x`` carrying one ``eqx.branched_error_if``: when the compiled program runs, it raises the
    ``msg`` of a failing ``(pred, msg)`` (``pred`` true anywhere, also under vmap). Use the
    returned value. Meant for traced inputs; concrete ones get a plain ``ValueError`` beforehand."""
    preds = jnp.stack([jnp.any(jnp.asarray(pred)) for pred, _ in checks])
    return eqx.branched_error_if(x, jnp.any(preds), jnp.argmax(preds), [msg for _, msg in checks])


def not_finite(tree: Any) -> jax.Array:
    """Scalar bool: some float or complex leaf of ``tree`` holds NaN or inf."""
    leaves = jax.tree_util.tree_leaves(tree)
    bad = [~jnp.all(jnp.isfinite(a)) for a in leaves if jnp.issubdtype(jnp.result_type(a), jnp.inexact)]
    return jnp.any(jnp.array(bad or [False]))
