"""Loading measured Hall data (CSV or whitespace tables with a header) into canonical units."""

from __future__ import annotations

import dataclasses
import re
import warnings
from typing import Optional

import numpy as np

from .. import units

#: Canonical unit of each quantity (what ``HallData`` holds), and the accepted spellings with
#: their factor to it. Densities are in jaxsemi's Å⁻² (10¹² cm⁻² = 10⁻⁴ Å⁻²).
CANONICAL = {
    "density": "A^-2", "conductance": "e2/h", "resistance": "Ohm", "field": "T",
    "voltage": "V", "current": "A", "energy": "eV", "temperature": "K", "length": "m",
    "dimensionless": "1",
}
_BASE = {
    "density": {"A^-2": 1.0, "Å^-2": 1.0, "cm^-2": 1e-16, "m^-2": 1e-20},
    "conductance": {"e2/h": 1.0, "e^2/h": 1.0, "S": 1.0 / units.E2_OVER_H_SI},
    "resistance": {"Ohm": 1.0, "ohm": 1.0, "Ω": 1.0, "h/e2": 1.0 / units.E2_OVER_H_SI,
                   "h/e^2": 1.0 / units.E2_OVER_H_SI},
    "field": {"T": 1.0},
    "voltage": {"V": 1.0},
    "current": {"A": 1.0},
    "energy": {"eV": 1.0},
    "temperature": {"K": 1.0},
    "length": {"m": 1.0},
    "dimensionless": {"1": 1.0, "-": 1.0},
}
_PREFIX = {"": 1.0, "k": 1e3, "M": 1e6, "m": 1e-3, "u": 1e-6, "µ": 1e-6, "μ": 1e-6, "n": 1e-9}
_PREFIXABLE = {"S", "Ohm", "ohm", "Ω", "T", "V", "A", "eV", "K", "m"}


def parse_unit(unit: str) -> tuple[str, float]:
    """``"1e12 cm^-2"`` → ("density", 1e-4): the quantity and the factor to its canonical unit.

    A unit is an optional numeric multiplier (``1e12``, ``10^12``) and a base unit with an
    optional SI prefix (k, M, m, u/µ, n) for S, Ω, T, V, A, eV, K, m. Unknown units raise.
    """
    text = unit.strip()
    factor = 1.0
    match = re.match(r"^(?:10\^([+-]?\d+)|(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?))\s*(?:[x*·]\s*)?(.*)$", text)
    if match and (match.group(1) or match.group(2)) and match.group(3):
        factor = 10.0 ** int(match.group(1)) if match.group(1) else float(match.group(2))
        text = match.group(3).strip()
    text = text.replace("²", "^2").replace("⁻", "^-").replace("cm-2", "cm^-2").replace("m-2", "m^-2")
    for quantity, table in _BASE.items():
        if text in table:
            return quantity, factor * table[text]
    for prefix, scale in _PREFIX.items():
        if prefix and text.startswith(prefix) and text[len(prefix):] in _PREFIXABLE:
            rest = text[len(prefix):]
            for quantity, table in _BASE.items():
                if rest in table:
                    return quantity, factor * scale * table[rest]
    known = sorted({u for t in _BASE.values() for u in t})
    raise ValueError(f"unknown unit {unit!r}; known units are {known}, optionally with an SI prefix "
                     f"({', '.join(p for p in _PREFIX if p)}) and a multiplier such as '1e12 cm^-2'")


_HEADER_TOKEN = re.compile(r"[^\s\[\(]+(?:\s*[\[\(][^\]\)]*[\]\)])?")
_NAME_UNIT = re.compile(r"^\s*(.*?)\s*(?:[\[\(]\s*(.*?)\s*[\]\)])?\s*$")


@dataclasses.dataclass(frozen=True)
class HallData:
    """A measured curve y(x) ± sigma in canonical units, plus every column of the file.

    Attributes:
        x, y: abscissa and data (1D numpy, x strictly increasing), canonical units.
        sigma: standard errors of y (same unit) or None.
        x_name, y_name, x_unit, y_unit: column names and canonical units (see ``CANONICAL``:
            density Å⁻², conductance e²/h, resistance Ω, field T, voltage V, current A, ...).
        columns, column_units: all columns (canonical units; unit None where none was given).
        comments: the file's ``#`` lines (metadata such as temperature or geometry).
        cleaning: what was changed on load (dropped NaN rows, sorting, averaged duplicates);
            empty when the file was used as is.
        source: the path.
    """

    x: np.ndarray
    y: np.ndarray
    sigma: Optional[np.ndarray]
    x_name: str
    y_name: str
    x_unit: str
    y_unit: str
    columns: dict
    column_units: dict
    comments: tuple = ()
    cleaning: tuple = ()
    source: str = ""

    def __len__(self) -> int:
        return self.x.size

    def __repr__(self) -> str:
        err = "" if self.sigma is None else " ± sigma"
        clean = f", cleaning: {'; '.join(self.cleaning)}" if self.cleaning else ""
        return (f"HallData({self.y_name} [{self.y_unit}]{err} vs {self.x_name} [{self.x_unit}], "
                f"{len(self)} points from {self.source or 'arrays'}{clean})")


def _split_header(line: str, delimiter: Optional[str]) -> list[str]:
    if delimiter is not None:
        return [t.strip() for t in line.split(delimiter)]
    return [t.strip() for t in _HEADER_TOKEN.findall(line)]


def _read_table(path: str, delimiter: Optional[str], comment: str):
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    comments, header, rows = [], None, []
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(comment):
            comments.append(stripped[len(comment):].strip())
            continue
        if header is None:
            if delimiter is None and "," in stripped:
                delimiter = ","
            header = _split_header(stripped, delimiter)
            continue
        fields = stripped.split(delimiter) if delimiter is not None else stripped.split()
        if len(fields) != len(header):
            raise ValueError(f"{path}, line {number}: {len(fields)} fields but the header has "
                             f"{len(header)} columns {header}; a value is missing or extra")
        try:
            rows.append([float(f) if f.strip() not in ("", "nan", "NaN", "NA") else np.nan
                         for f in fields])
        except ValueError as err:
            raise ValueError(f"{path}, line {number}: not a number ({err})") from err
    if header is None or not rows:
        raise ValueError(f"{path}: no header line and data rows found")
    return header, np.asarray(rows, float).reshape(len(rows), len(header)), tuple(comments)


def load_hall_data(path, *, x: Optional[str] = None, y: Optional[str] = None,
                   sigma: Optional[str] = None, units: Optional[dict] = None,
                   delimiter: Optional[str] = None, comment: str = "#", drop_nan: bool = False,
                   sort: bool = False, duplicates: str = "error") -> HallData:
    """Load a measured curve from a CSV or whitespace table with one header line.

    Header columns are ``name [unit]`` or ``name (unit)``, e.g. ``n [1e12 cm^-2]``,
    ``sigma_xy [e2/h]``, ``R_xy [Ohm]``, ``B [T]``, ``Vg [V]``, ``I [uA]``; units may instead
    be given as ``units={"n": "1e12 cm^-2"}`` (which overrides the header). Lines starting
    with ``comment`` are kept in ``HallData.comments``. Values are converted to the canonical
    units of ``CANONICAL`` (density Å⁻², conductance e²/h, resistance Ω, ...).

    Args:
        x, y: column names of the abscissa and the data (default: first and second column).
        sigma: column of standard errors of y (default: a column named ``<y>_err``,
            ``err_<y>`` or ``d<y>`` if present, else None). Must have y's unit dimension.
        delimiter: None detects ``,`` in the header, else splits on whitespace.
        drop_nan: rows with NaN in x, y or sigma raise by default; True drops them and
            records it in ``cleaning`` (with a warning).
        sort: an abscissa that is not strictly increasing raises by default; True sorts it
            (recorded). A decreasing sweep is also sorted only when asked.
        duplicates: ``"error"`` (default) or ``"average"`` — repeated x values are averaged
            (weighted by 1/sigma² when sigma is given; recorded).

    Raises ValueError for rows with missing or extra fields, non-numbers, unknown units or
    columns, columns without units, NaN rows, unsorted or duplicated abscissae.
    """
    if duplicates not in ("error", "average"):
        raise ValueError(f"duplicates must be 'error' or 'average', got {duplicates!r}")
    header, table, comments = _read_table(str(path), delimiter, comment)
    names, given = [], {}
    for token in header:
        name, unit = _NAME_UNIT.match(token).groups()
        names.append(name)
        given[name] = unit or None
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicated column names {names}")
    for name, unit in (units or {}).items():
        if name not in given:
            raise ValueError(f"units names column {name!r}, but the columns are {names}")
        given[name] = unit
    columns, column_units, quantity = {}, {}, {}
    for j, name in enumerate(names):
        unit = given[name]
        if unit is None:
            columns[name], column_units[name], quantity[name] = table[:, j], None, None
            continue
        q, factor = parse_unit(unit)
        columns[name], column_units[name], quantity[name] = table[:, j] * factor, CANONICAL[q], q

    x = names[0] if x is None else x
    if y is None:
        if len(names) < 2:
            raise ValueError(f"{path}: need at least two columns, got {names}")
        y = names[1]
    if sigma is None:
        sigma = next((c for c in (f"{y}_err", f"err_{y}", f"d{y}") if c in columns), None)
    for role, name in (("x", x), ("y", y), ("sigma", sigma)):
        if name is None:
            continue
        if name not in columns:
            raise ValueError(f"{role} column {name!r} not found; the columns are {names}")
        if column_units[name] is None:
            raise ValueError(f"column {name!r} has no unit: write it in the header as "
                             f"'{name} [unit]' or pass units={{'{name}': '...'}}")
    if sigma is not None and quantity[sigma] != quantity[y]:
        raise ValueError(f"sigma column {sigma!r} is a {quantity[sigma]} but y {y!r} is a {quantity[y]}")

    xs, ys = columns[x], columns[y]
    ss = None if sigma is None else columns[sigma]
    cleaning = []
    bad = ~np.isfinite(xs) | ~np.isfinite(ys) | (np.zeros_like(xs, bool) if ss is None else ~np.isfinite(ss))
    if np.any(bad):
        rows = (np.flatnonzero(bad) + 1).tolist()
        if not drop_nan:
            raise ValueError(f"{path}: NaN or missing values in data rows {rows} (counting data rows "
                             "from 1); fix the file or pass drop_nan=True")
        cleaning.append(f"dropped {len(rows)} rows with NaN (data rows {rows})")
        keep = ~bad
        xs, ys = xs[keep], ys[keep]
        ss = None if ss is None else ss[keep]
    if ss is not None and np.any(ss <= 0):
        raise ValueError(f"{path}: sigma column {sigma!r} must be > 0, got rows "
                         f"{(np.flatnonzero(ss <= 0) + 1).tolist()}")
    steps = np.diff(xs)
    if np.any(steps < 0):
        if not sort:
            first = int(np.flatnonzero(steps < 0)[0]) + 2
            raise ValueError(f"{path}: abscissa {x!r} is not increasing (data row {first}); pass "
                             "sort=True to sort it")
        order = np.argsort(xs, kind="stable")
        xs, ys = xs[order], ys[order]
        ss = None if ss is None else ss[order]
        cleaning.append(f"sorted by {x}")
    if np.any(np.diff(xs) == 0):
        dup = np.unique(xs[1:][np.diff(xs) == 0])
        if duplicates == "error":
            raise ValueError(f"{path}: duplicated abscissa values {x} = {dup.tolist()} "
                             f"[{column_units[x]}]; pass duplicates='average' to average them")
        xs, ys, ss = _average_duplicates(xs, ys, ss)
        cleaning.append(f"averaged repeated {x} values {dup.tolist()}")
    if cleaning:
        warnings.warn(f"load_hall_data({path}): " + "; ".join(cleaning), stacklevel=2)
    return HallData(xs, ys, ss, x, y, column_units[x], column_units[y], columns, column_units,
                    comments, tuple(cleaning), str(path))


def _average_duplicates(x, y, s):
    ux, inverse = np.unique(x, return_inverse=True)
    w = np.ones_like(y) if s is None else 1.0 / s**2
    wsum = np.bincount(inverse, w)
    ym = np.bincount(inverse, w * y) / wsum
    return ux, ym, None if s is None else 1.0 / np.sqrt(wsum)
