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
    "time": "s", "dimensionless": "1",
}
_BASE = {
    "density": {"A^-2": 1.0, "Å^-2": 1.0, "cm^-2": 1e-16, "m^-2": 1e-20},
    "conductance": {"e2/h": 1.0, "e^2/h": 1.0, "S": 1.0 / units.E2_OVER_H_SI},
    "resistance": {"Ohm": 1.0, "ohm": 1.0, "Ohms": 1.0, "ohms": 1.0, "Ω": 1.0,
                   "h/e2": 1.0 / units.E2_OVER_H_SI,
                   "h/e^2": 1.0 / units.E2_OVER_H_SI},
    "field": {"T": 1.0, "Oe": 1e-4},  # oersted: μ0·H in vacuum (PPMS files)
    "voltage": {"V": 1.0},
    "current": {"A": 1.0},
    "energy": {"eV": 1.0},
    "temperature": {"K": 1.0},
    "length": {"m": 1.0},
    "time": {"s": 1.0, "sec": 1.0},
    "dimensionless": {"1": 1.0, "-": 1.0},
}
_PREFIX = {"": 1.0, "k": 1e3, "M": 1e6, "m": 1e-3, "u": 1e-6, "µ": 1e-6, "μ": 1e-6, "n": 1e-9}
_PREFIXABLE = {"S", "Ohm", "ohm", "Ohms", "ohms", "Ω", "T", "Oe", "V", "A", "eV", "K", "m", "s"}


def parse_unit(unit: str) -> tuple[str, float]:
    """``"1e12 cm^-2"`` → ("density", 1e-4): the quantity and the factor to its canonical unit.

    A unit is an optional numeric multiplier (``1e12``, ``10^12``) and a base unit with an
    optional SI prefix (k, M, m, u/µ, n) for S, Ω, T, Oe, V, A, eV, K, m, s. Unknown units raise.
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
        comments: the file's comment lines and the lines skipped before the table (metadata
            such as temperature, geometry, lock-in settings).
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


_DELIMITERS = (",", ";", "\t", None)  # tried in this order; None = runs of whitespace
_MISSING = {"", "nan", "NaN", "NAN", "NA"}
_DECIMAL_COMMA = re.compile(r"^([+-]?(?:\d{1,3}(?:\.\d{3})+|\d*)),(\d+(?:[eE][+-]?\d+)?)$")


def _number(field: str) -> Optional[float]:
    """The value of a field (``"1.5"``, decimal comma ``"1,5"`` or ``"1.234,5"``; empty/``nan``/
    ``NA`` → NaN), or None for text. A field holds a comma only when the delimiter is not ``,``
    (or it was quoted)."""
    if field in _MISSING:
        return np.nan
    match = _DECIMAL_COMMA.match(field)
    if match:
        field = f"{match[1].replace('.', '')}.{match[2]}"
    try:
        return float(field)
    except ValueError:
        return None


def _fields(line: str, delimiter: Optional[str], header: bool = False) -> list[str]:
    if delimiter is None:
        return [t.strip() for t in _HEADER_TOKEN.findall(line)] if header else line.split()
    return [t.strip().strip('"').strip() for t in line.split(delimiter)]


def _trim(fields: list[str], width: int) -> list[str]:
    """Drop the empty field a trailing delimiter leaves (``1;2;``) when that is all that is extra."""
    return fields[:-1] if len(fields) == width + 1 and fields[-1] == "" else fields


@dataclasses.dataclass
class _Table:
    delimiter: Optional[str]
    line: int  # line number of the header
    header: list
    rows: list  # (line number, fields)
    bad: Optional[tuple]  # (line number, number of fields) of the first row of the wrong width
    comments: list  # comment lines, skipped lines and the preamble before the header


def _find_table(body, delimiter) -> Optional[_Table]:
    """The first line of text fields (≥ 2) followed by a row of numbers of the same width is
    the header; what precedes it is metadata (a title, settings), what follows must be rows."""
    for i in range(len(body) - 1):
        head = _fields(body[i][1], delimiter, header=True)
        head = head[:-1] if len(head) > 2 and head[-1] == "" else head
        values = [_number(f) for f in _trim(_fields(body[i + 1][1], delimiter), len(head))]
        if (len(head) >= 2 and len(values) == len(head) and any(_number(f) is None for f in head)
                and all(_number(f) is None or f == "" for f in head)
                and all(v is not None for v in values) and not all(np.isnan(values))):
            break
    else:
        return None
    rows, bad = [], None
    for number, line in body[i + 1:]:
        fields = _trim(_fields(line, delimiter), len(head))
        if len(fields) != len(head):
            bad = (number, len(fields))
            break
        rows.append((number, fields))
    return _Table(delimiter, body[i][0], head, rows, bad, [])


def _decode(path: str, encoding: Optional[str]) -> str:
    raw = open(path, "rb").read()
    if encoding is not None:
        try:
            return raw.decode(encoding).removeprefix("\ufeff")
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: cannot be read as {encoding} ({err}); pass the file's "
                             "encoding, e.g. encoding='latin-1' or 'cp1252'") from err
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text" export
        return raw.decode("utf-16").removeprefix("\ufeff")
    try:
        return raw.decode("utf-8-sig")  # drops Excel's byte-order mark
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # Windows instrument software: 'µA' is the single byte 0xB5


def _show(delimiter: Optional[str]) -> str:
    return "delimiter=' ' (whitespace)" if delimiter is None else f"delimiter={delimiter!r}"


def _read_table(path: str, delimiter, comment, skip_rows: int, encoding) -> _Table:
    lines = _decode(path, encoding).splitlines()
    prefixes = (comment,) if isinstance(comment, str) else tuple(comment)
    marker = next((i for i, line in enumerate(lines) if line.strip().lower() == "[data]"), -1)
    comments, body = [], []
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if number <= max(skip_rows, marker + 1):  # skipped lines and a PPMS [Header] section
            comments.append((number, stripped))
        elif stripped.startswith(prefixes):
            prefix = next(p for p in prefixes if stripped.startswith(p))
            comments.append((number, stripped[len(prefix):].strip()))
        else:
            body.append((number, stripped))
    tables = [t for t in (_find_table(body, d) for d in
                          (_DELIMITERS if delimiter == "auto" else (delimiter,))) if t is not None]
    if not tables:
        others = [_show(d) for d in _DELIMITERS if d != delimiter and _find_table(body, d)]
        hint = (f"; it reads with {' or '.join(others)}" if others and delimiter != "auto" else
                "; tried ',', ';', tab and whitespace delimiters")
        raise ValueError(f"{path}: found no header line ('name [unit]' fields) followed by a row of "
                         f"numbers{hint}. Pass skip_rows=N to skip N leading lines, comment=... "
                         "for comment lines, or delimiter=...")
    valid = [t for t in tables if t.bad is None]
    if len({(t.line, len(t.header)) for t in valid}) > 1:
        readings = "; ".join(f"{_show(t.delimiter)} gives {len(t.header)} columns {t.header}"
                             for t in valid)
        raise ValueError(f"{path}: the delimiter is ambiguous: {readings}. Pass delimiter=...")
    if valid:
        table = valid[0]
    else:
        table = max(tables, key=lambda t: len(t.rows))
        number, n_fields = table.bad
        raise ValueError(
            f"{path}, line {number}: {n_fields} fields but the header has {len(table.header)} "
            f"columns {table.header} (header at line {table.line}, {_show(table.delimiter)}); a "
            f"value is missing or extra, or, if the table starts at line {number}, pass "
            f"skip_rows={number - 1}")
    skipped = [(n, line) for n, line in body if n < table.line]
    table.comments = [text for _, text in sorted(comments + skipped)]
    return table


def load_hall_data(path, *, x: Optional[str] = None, y: Optional[str] = None,
                   sigma: Optional[str] = None, units: Optional[dict] = None,
                   delimiter: Optional[str] = None, comment=("#", "%"), skip_rows: int = 0,
                   encoding: Optional[str] = None, drop_nan: bool = False, sort: bool = False,
                   duplicates: str = "error") -> HallData:
    """Load a measured curve from a delimited text table with a header line (CSV, instrument
    exports).

    Header columns are ``name [unit]`` or ``name (unit)``, e.g. ``n [1e12 cm^-2]``,
    ``sigma_xy [e2/h]``, ``R_xy [Ohm]``, ``B [T]``, ``Magnetic Field (Oe)``, ``I (µA)``; units
    may instead be given as ``units={"n": "1e12 cm^-2"}`` (which overrides the header). Values
    are converted to the canonical units of ``CANONICAL`` (density Å⁻², conductance e²/h,
    resistance Ω, field T, ...).

    What instrument exports need is found automatically: the delimiter (``,``, ``;``, tab or
    whitespace), decimal commas (``1,5`` when the delimiter is not ``,``), the encoding
    (UTF-8 with or without Excel's byte-order mark, UTF-16 with a BOM, else Latin-1), and the
    table itself: the header is the first line of ≥ 2 text fields followed by a row of numbers
    of the same width, so a title and metadata lines above it (a lock-in export) are skipped;
    so is a Quantum Design PPMS ``[Header]`` section (everything up to ``[Data]``). Skipped
    lines and comment lines are kept in ``HallData.comments``.

    Args:
        x, y: column names of the abscissa and the data (default: first and second column).
        sigma: column of standard errors of y (default: a column named ``<y>_err``,
            ``err_<y>`` or ``d<y>`` if present, else None). Must have y's unit dimension.
        units: ``{column: unit}`` overriding or supplying header units.
        delimiter: None (default) detects it; ``" "`` splits on runs of whitespace.
        comment: prefix (or tuple of prefixes) of comment lines, default ``#`` and ``%``.
        skip_rows: number of leading lines of the file that are not part of the table.
        encoding: the file's text encoding (default: detected as above).
        drop_nan: rows with NaN in x, y or sigma raise by default; True drops them and
            records it in ``cleaning`` (with a warning).
        sort: an abscissa that is not strictly increasing raises by default; True sorts it
            (recorded). A decreasing sweep is also sorted only when asked.
        duplicates: ``"error"`` (default) or ``"average"`` — repeated x values are averaged
            (weighted by 1/sigma² when sigma is given; recorded).

    Columns other than x, y and sigma may hold text (PPMS's ``Comment`` column; read as NaN)
    or units that ``parse_unit`` does not know (kept unconverted, ``column_units`` None).

    Raises ValueError, naming the file and line, for rows with missing or extra fields, an
    ambiguous delimiter, non-numbers, unknown units or columns, columns without units, NaN rows,
    unsorted or duplicated abscissae.
    """
    if duplicates not in ("error", "average"):
        raise ValueError(f"duplicates must be 'error' or 'average', got {duplicates!r}")
    if not isinstance(skip_rows, (int, np.integer)) or skip_rows < 0:
        raise ValueError(f"skip_rows must be an integer >= 0, got {skip_rows!r}")
    sep = "auto" if delimiter is None else (None if delimiter == " " else delimiter)
    table = _read_table(str(path), sep, comment, int(skip_rows), encoding)
    names, given = [], {}
    for token in table.header:
        name, unit = _NAME_UNIT.match(token).groups()
        names.append(name)
        given[name] = unit or None
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicated column names {names}")
    for name, unit in (units or {}).items():
        if name not in given:
            raise ValueError(f"units names column {name!r}, but the columns are {names}")
        given[name] = unit

    x = names[0] if x is None else x
    if y is None:
        y = names[1]
    if sigma is None:
        sigma = next((c for c in (f"{y}_err", f"err_{y}", f"d{y}") if c in names), None)
    used = [name for name in (x, y, sigma) if name is not None]
    for role, name in (("x", x), ("y", y), ("sigma", sigma)):
        if name is not None and name not in names:
            raise ValueError(f"{role} column {name!r} not found; the columns are {names}")
        if name is not None and given[name] is None:
            raise ValueError(f"{path}: column {name!r} has no unit: write it in the header as "
                             f"'{name} [unit]' or pass units={{'{name}': '...'}}")

    columns, column_units, quantity = {}, {}, {}
    for j, name in enumerate(names):
        values = []
        for number, fields in table.rows:
            value = _number(fields[j])
            if value is None and name in used:
                raise ValueError(f"{path}, line {number}: not a number in column {name!r}: "
                                 f"{fields[j]!r}")
            values.append(np.nan if value is None else value)
        try:
            q, factor = parse_unit(given[name]) if given[name] is not None else (None, 1.0)
        except ValueError as err:
            if name in used:
                raise ValueError(f"{path}: column {name!r}: {err}") from err
            q, factor = None, 1.0  # an unused column with an unknown unit: kept as written
        columns[name] = np.asarray(values, float) * factor
        column_units[name], quantity[name] = (None if q is None else CANONICAL[q]), q
    if sigma is not None and quantity[sigma] != quantity[y]:
        raise ValueError(f"sigma column {sigma!r} is a {quantity[sigma]} but y {y!r} is a {quantity[y]}")
    comments = tuple(table.comments)

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
