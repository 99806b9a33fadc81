"""Column and header schemas derived from the product specs.

Column schemas are :mod:`pandera` DataFrame schemas (dtype kind, legal range, allowed
values, finiteness, sort order, table-level rules such as ``START < STOP``), run lazily
so that every failure is collected.  Header schemas check the required keywords, their
types and allowed values, and the OGIP conventions every product shares.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
import pandera.pandas as pa
from astropy.io import fits
from astropy.table import Table

from mxt_pipeline import constants as C
from mxt_pipeline.io.spec import ColumnSpec, HDUSpec, ProductSpec

__all__ = ["Violation", "column_schema", "check_table", "check_header", "table_to_frame"]


@dataclass(frozen=True)
class Violation:
    """One schema violation, located as precisely as possible."""

    file: str
    hdu: str | int | None
    message: str
    column: str | None = None
    keyword: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.hdu is not None:
            where += f"[{self.hdu}]"
        if self.column is not None:
            where += f" column {self.column}"
        if self.keyword is not None:
            where += f" keyword {self.keyword}"
        return f"{where}: {self.message}"


def _kind_check(cspec: ColumnSpec) -> pa.Check:
    if cspec.is_string:
        return pa.Check(lambda s: s.map(lambda v: isinstance(v, str)), name="is_string", element_wise=False)
    if cspec.is_integer:
        return pa.Check(lambda s: pd.api.types.is_integer_dtype(s.dtype), name=f"integer dtype ({cspec.tform})")
    if cspec.is_float:
        return pa.Check(lambda s: pd.api.types.is_numeric_dtype(s.dtype), name=f"numeric dtype ({cspec.tform})")
    return pa.Check(lambda s: pd.api.types.is_bool_dtype(s.dtype), name="boolean dtype")


def _column_checks(cspec: ColumnSpec) -> list[pa.Check]:
    checks = [_kind_check(cspec)]
    if cspec.is_string:
        if cspec.allowed is not None:
            checks.append(pa.Check.isin(list(cspec.allowed)))
        return checks
    if cspec.is_float and cspec.finite:
        checks.append(pa.Check(lambda s: pd.Series(np.isfinite(s.to_numpy(dtype=float)), index=s.index), name="finite (no NaN/inf)"))
    if cspec.tlmin is not None:
        checks.append(pa.Check.ge(cspec.tlmin))
    if cspec.tlmax is not None:
        checks.append(pa.Check.le(cspec.tlmax))
    if cspec.allowed is not None:
        checks.append(pa.Check.isin(list(cspec.allowed)))
    if cspec.sorted:
        checks.append(
            pa.Check(
                lambda s: pd.Series(np.r_[True, np.diff(s.to_numpy(dtype=float)) >= 0][: len(s)], index=s.index),
                name="sorted (non-decreasing; value smaller than its predecessor)",
            )
        )
    return checks


def _frame_checks(hspec: HDUSpec) -> list[pa.Check]:
    names = {c.name for c in hspec.columns}
    checks: list[pa.Check] = []
    if {"START", "STOP"} <= names:
        checks.append(
            pa.Check(lambda df: df["STOP"] >= df["START"], name="STOP >= START", element_wise=False)
        )
    if {"E_MIN", "E_MAX"} <= names:
        checks.append(pa.Check(lambda df: df["E_MAX"] > df["E_MIN"], name="E_MAX > E_MIN"))
    if {"ERR_R68", "ERR_R90"} <= names:
        checks.append(pa.Check(lambda df: df["ERR_R90"] >= df["ERR_R68"], name="ERR_R90 >= ERR_R68"))
    return checks


def _expand(cspec: ColumnSpec) -> list[str]:
    if cspec.repeat == 1:
        return [cspec.name]
    return [f"{cspec.name}_{k}" for k in range(cspec.repeat)]


@cache
def column_schema(hspec: HDUSpec) -> pa.DataFrameSchema:
    """Return the pandera schema of a table HDU.

    Vector columns are checked element by element as ``NAME_0``, ``NAME_1``, ...
    (pandas does not hold multidimensional columns; see :func:`table_to_frame`).
    """
    columns: dict[str, pa.Column] = {}
    for cspec in hspec.columns:
        for name in _expand(cspec):
            columns[name] = pa.Column(
                checks=_column_checks(cspec), nullable=not cspec.finite, required=cspec.required
            )
    return pa.DataFrameSchema(columns, checks=_frame_checks(hspec), strict=False, coerce=False)


def table_to_frame(table: Table) -> pd.DataFrame:
    """Convert a Table to a DataFrame, splitting vector columns into ``NAME_k``."""
    data: dict[str, np.ndarray] = {}
    for name in table.colnames:
        arr = np.asarray(table[name])
        if arr.ndim == 1:
            data[name] = arr
        else:
            # An explicit width: reshape(0, -1) is ambiguous for an empty table.
            flat = arr.reshape(len(arr), int(np.prod(arr.shape[1:], dtype=np.int64)))
            for k in range(flat.shape[1]):
                data[f"{name}_{k}"] = flat[:, k]
    return pd.DataFrame(data)


def _column_clean(arr: np.ndarray, cspec: ColumnSpec) -> bool:
    """Whether one finite numeric column passes every check of :func:`_column_checks`."""
    if cspec.is_integer:
        kind_ok = arr.dtype.kind in "iu"
    elif cspec.is_float:
        kind_ok = arr.dtype.kind in "iufcb"  # pandas' is_numeric_dtype
    else:
        kind_ok = arr.dtype.kind == "b"
    if not kind_ok:
        return False
    if arr.size == 0:
        return True
    if cspec.tlmin is not None and not arr.min() >= cspec.tlmin:
        return False
    if cspec.tlmax is not None and not arr.max() <= cspec.tlmax:
        return False
    if cspec.allowed is not None and not np.isin(arr, np.asarray(cspec.allowed)).all():
        return False
    return not (cspec.sorted and np.any(np.diff(arr.astype(float, copy=False)) < 0))


def _clean(table: Table, hspec: HDUSpec) -> bool:
    """A vectorised proof that a table passes its pandera schema, or False when unsure.

    pandera builds a DataFrame and runs each check as a pandas operation: some 5 s for
    a 4.5-million-event list that is read, written and read back by one brick.  A
    valid table is the common case, so it is recognised here with plain numpy
    reductions over the same rules.  Only tables where the rules are unambiguous are
    accepted: every spec column present, numeric, and finite (pandera skips nulls in a
    nullable column, a subtlety not repeated here).  Anything else, and every invalid
    table, goes to pandera, which then names each failure.  The two are compared
    on random tables in the tests.
    """
    present = set(table.colnames)
    columns: dict[str, np.ndarray] = {}
    for cspec in hspec.columns:
        if cspec.name not in present:
            return False
        if cspec.is_string:
            return False
        arr = np.asarray(table[cspec.name])
        if arr.ndim != (1 if cspec.repeat == 1 else 2) or (arr.dtype.kind in "fc" and not np.isfinite(arr).all()):
            return False
        if arr.ndim > 1 and cspec.sorted:
            return False  # each element sorted on its own: left to pandera
        if not _column_clean(arr.reshape(-1), cspec):
            return False
        columns[cspec.name] = arr
    for low, high, strict in (("START", "STOP", False), ("E_MIN", "E_MAX", True), ("ERR_R68", "ERR_R90", False)):
        if low in columns and high in columns:
            ok = columns[high] > columns[low] if strict else columns[high] >= columns[low]
            if not np.all(ok):
                return False
    return True


def check_table(table: Table, hspec: HDUSpec, file: str) -> list[Violation]:
    """Validate the values of one table; return every violation (empty when valid)."""
    if _clean(table, hspec):
        return []
    frame = table_to_frame(table)
    violations: list[Violation] = []
    try:
        column_schema(hspec).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        grouped: dict[tuple[str | None, str], list] = {}
        for _, row in cases.iterrows():
            col = row.get("column")
            col = None if col is None or (isinstance(col, float) and np.isnan(col)) else str(col)
            base = col.rsplit("_", 1)[0] if col and col not in frame.columns and "_" in col else col
            key = (base, str(row.get("check")))
            grouped.setdefault(key, []).append(row.get("failure_case"))
        for (col, check), fails in grouped.items():
            sample = ", ".join(repr(f) for f in fails[:5])
            more = f" (and {len(fails) - 5} more)" if len(fails) > 5 else ""
            violations.append(
                Violation(file, hspec.extname, f"fails {check}: {sample}{more}", column=col)
            )
    return violations


def _type_ok(value: object, want: type) -> bool:
    if want is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if want is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, want)


def check_header(
    header: fits.Header, hspec: HDUSpec | None, spec: ProductSpec, file: str, hdu: str | int
) -> list[Violation]:
    """Check one header against the product's keyword rules; return the violations."""
    out: list[Violation] = []

    def bad(keyword: str, message: str) -> None:
        out.append(Violation(file, hdu, message, keyword=keyword))

    fixed: dict[str, object] = {"TELESCOP": C.TELESCOP}
    if spec.content.startswith("CALDB_") and spec.content != "CALDB_CIF":
        # One CALDB format serves every SVOM storage node (MXT, ECLAIRs, VT).
        inst = header.get("INSTRUME")
        if inst is None:
            bad("INSTRUME", "required keyword missing")
        elif inst not in C.SVOM_INSTRUMENTS:
            bad("INSTRUME", f"is {inst!r}, must be one of {list(C.SVOM_INSTRUMENTS)}")
    elif spec.content != "CALDB_CIF":
        fixed["INSTRUME"] = C.INSTRUME
    for key, value in fixed.items():
        if key not in header:
            bad(key, "required keyword missing")
        elif header[key] != value:
            bad(key, f"is {header[key]!r}, must be {value!r}")
    for key in ("CREATOR", "DATE", "CHECKSUM", "DATASUM"):
        if key not in header:
            bad(key, "required keyword missing")
    keywords = spec.primary_keywords if hspec is None else hspec.keywords
    if hspec is not None:
        if header.get("HDUCLASS") != "OGIP":
            bad("HDUCLASS", f"is {header.get('HDUCLASS')!r}, must be 'OGIP'")
        if header.get("EXTNAME") != hspec.extname:
            bad("EXTNAME", f"is {header.get('EXTNAME')!r}, must be {hspec.extname!r}")
    for kspec in keywords:
        if kspec.name not in header:
            if kspec.required:
                bad(kspec.name, "required keyword missing")
            continue
        value = header[kspec.name]
        if not _type_ok(value, kspec.type):
            bad(kspec.name, f"value {value!r} is not of type {kspec.type.__name__}")
        elif kspec.value is not None and value != kspec.value:
            bad(kspec.name, f"is {value!r}, must be {kspec.value!r}")
        elif kspec.allowed is not None and value not in kspec.allowed:
            bad(kspec.name, f"is {value!r}, must be one of {list(kspec.allowed)}")
    timed = spec.timed if hspec is None else hspec.timed
    if timed:
        time_rules: dict[str, Callable[[object], bool]] = {
            "MJDREFI": lambda v: v == C.MJDREFI,
            "MJDREFF": lambda v: _type_ok(v, float) and float(v) == C.MJDREFF,
            "TIMESYS": lambda v: v == C.TIMESYS,
            "TIMEUNIT": lambda v: v == C.TIMEUNIT,
            "TIMEREF": lambda v: isinstance(v, str),
        }
        for key, rule in time_rules.items():
            if key not in header:
                bad(key, "required time keyword missing")
            elif not rule(header[key]):
                bad(key, f"invalid value {header[key]!r}")
        if "TSTART" in header or "TSTOP" in header:
            for key in ("TSTART", "TSTOP", "DATE-OBS", "DATE-END"):
                if key not in header:
                    bad(key, "required with TSTART/TSTOP")
            for key in ("TSTART", "TSTOP"):
                # Times must be finite numbers: a string here would be read as no time
                # range at all, and the CALDB date and the run key derive from it.
                if key in header and not (_type_ok(header[key], float) and np.isfinite(float(header[key]))):
                    bad(key, f"value {header[key]!r} is not a finite number of seconds")
            if _type_ok(header.get("TSTART"), float) and _type_ok(header.get("TSTOP"), float):
                if header["TSTOP"] < header["TSTART"]:
                    bad("TSTOP", "TSTOP < TSTART")
        else:
            bad("TSTART", "required time keyword missing")
    if hspec is not None and hspec.kind == "table":
        names = [header.get(f"TTYPE{i}") for i in range(1, header.get("TFIELDS", 0) + 1)]
        for i, name in enumerate(names, start=1):
            try:
                cspec = hspec.column(name)
            except KeyError:
                continue
            if cspec.is_integer:
                for key, want in ((f"TLMIN{i}", cspec.tlmin), (f"TLMAX{i}", cspec.tlmax)):
                    if want is not None and header.get(key) != want:
                        out.append(
                            Violation(file, hdu, f"{key} is {header.get(key)!r}, must be {want}", column=name, keyword=key)
                        )
    return out
