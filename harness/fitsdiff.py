"""FITS-aware comparison of a product with its reference, with tolerances and statistics.

Written for the regression harness after the practice of the JWST regression tests and
astropy's ``FITSDiff`` (see ``docs/harness.md``), with these choices:

* HDUs are matched by ``(EXTNAME, EXTVER)`` (EXTVER defaults to 1; the primary HDU is
  ``PRIMARY``), not by position, so an inserted HDU shows up as one extra HDU instead
  of shifting every comparison.
* Headers: every keyword is compared except the structural ones (BITPIX, NAXISn,
  TFIELDS, ...) and those that change on every run (``ignore_keywords`` of the config:
  DATE, CREATOR, CHECKSUM, DATASUM, ...). Column-numbered keywords (TLMIN3, TCRVL7)
  are renamed after their column (``TLMIN(RAWZ)``), so that a reordered table does not
  read as a changed header. Numeric keywords use the keyword tolerance.
* Tables: column names, order, units, formats (TFORM), row counts, then values, with
  the tolerance of the (product, HDU, column); ``NaN == NaN`` and ``inf == inf``; vector
  columns element by element. Tables with different row counts are not compared value
  by value (no row matching is attempted: an event list that lost rows is a different
  product, and the row-count difference says so).
* Images: shape, data type and values with the HDU's tolerance.
* Every difference is collected (nothing stops at the first) with statistics: how many
  values differ, the largest and mean absolute difference, the largest relative one,
  and where the worst one is. :meth:`FileDiff.account` turns them into a readable text.

A value ``a`` of the file under test differs from the reference value ``b`` when
``|a - b| > atol + rtol * |b|`` (astropy's convention, ``b`` the reference).

The harness compares any FITS file, including foreign and damaged ones, so this module
reads files with astropy directly rather than through :mod:`mxt_pipeline.io` (whose
readers refuse files that fail their schema: a diff must still describe them).
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from harness.config import HarnessConfig, Tolerance, load_config

__all__ = ["Difference", "ValueStats", "FileDiff", "diff_fits", "compare_values"]

#: Keywords describing the layout of an HDU: compared through the data, not the header.
_STRUCTURAL = re.compile(
    r"^(SIMPLE|BITPIX|NAXIS\d*|EXTEND|XTENSION|PCOUNT|GCOUNT|TFIELDS|THEAP|ZIMAGE|END)$"
)
#: Prefixes of column-numbered keywords (FITS standard, OGIP and WCS conventions).
_COLUMN_PREFIXES = (
    "TTYPE", "TFORM", "TUNIT", "TDIM", "TNULL", "TSCAL", "TZERO", "TDISP", "TLMIN",
    "TLMAX", "TDMIN", "TDMAX", "TCTYP", "TCRVL", "TCRPX", "TCDLT", "TCUNI", "TCROT",
    "TCRDE", "TCSYE", "TCNAM", "TCD", "TPC", "TBCOL",
)  # fmt: skip
_COLUMN_KEY = re.compile(r"^(" + "|".join(sorted(_COLUMN_PREFIXES, key=len, reverse=True)) + r")(\d+)$")
#: Column keywords compared as column properties (names, formats, units, dims).
_COLUMN_DESCRIPTORS = {"TTYPE", "TFORM", "TUNIT", "TDIM"}
#: Keywords whose cards may repeat: compared as ordered lists.
_COMMENTARY = {"HISTORY", "COMMENT", ""}


@dataclass
class ValueStats:
    """Statistics of the differences between two arrays of equal shape."""

    n_total: int
    n_differ: int
    n_rows_differ: int
    tolerance: Tolerance | None
    max_abs: float | None = None
    mean_abs: float | None = None
    max_rel: float | None = None
    #: Elements where exactly one side is NaN (or the infinities differ).
    n_special: int = 0
    worst_index: tuple[int, ...] | None = None
    worst_test: Any = None
    worst_ref: Any = None

    def describe(self) -> str:
        """One line: how many differ, beyond which tolerance, and the worst case."""
        frac = self.n_differ / self.n_total if self.n_total else 0.0
        parts = [f"{self.n_differ} of {self.n_total} values differ ({frac:.2%})"]
        if self.tolerance is not None:
            parts[0] += f" beyond {self.tolerance}"
        else:
            parts[0] += " (exact comparison)"
        if self.n_special:
            parts.append(f"{self.n_special} NaN/inf mismatch(es)")
        if self.max_abs is not None:
            parts.append(f"max |diff| {self.max_abs:.6g}")
        if self.mean_abs is not None:
            parts.append(f"mean |diff| {self.mean_abs:.6g}")
        if self.max_rel is not None:
            parts.append(f"max rel {self.max_rel:.3g}")
        if self.worst_index is not None:
            where = ",".join(str(i) for i in self.worst_index)
            parts.append(f"worst at [{where}]: {self.worst_test!r} vs {self.worst_ref!r}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_total": self.n_total,
            "n_differ": self.n_differ,
            "n_rows_differ": self.n_rows_differ,
            "rtol": None if self.tolerance is None else self.tolerance.rtol,
            "atol": None if self.tolerance is None else self.tolerance.atol,
            "max_abs": self.max_abs,
            "mean_abs": self.mean_abs,
            "max_rel": self.max_rel,
            "n_special": self.n_special,
            "worst_index": list(self.worst_index) if self.worst_index is not None else None,
            "worst_test": _jsonable(self.worst_test),
            "worst_ref": _jsonable(self.worst_ref),
        }


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


@dataclass
class Difference:
    """One difference between the file under test and the reference.

    Attributes
    ----------
    kind : str
        ``file``, ``hdu``, ``keyword``, ``column``, ``rows``, ``values``, ``image``.
    hdu : str
        ``EXTNAME`` (``EXTNAME,EXTVER`` when EXTVER is not 1); empty for ``file``.
    name : str
        The keyword or column concerned (empty when none).
    message : str
        What differs, in words.
    stats : ValueStats or None
        For ``values`` and ``image`` differences.
    """

    kind: str
    hdu: str
    name: str
    message: str
    stats: ValueStats | None = None

    def line(self) -> str:
        where = f"[{self.hdu}]" if self.hdu else ""
        what = {
            "keyword": f" keyword {self.name}",
            "column": f" column {self.name}",
            "values": f" column {self.name}",
            "image": " image",
            "rows": " rows",
        }.get(self.kind, f" {self.name}" if self.name else "")
        body = "; ".join(x for x in (self.message, self.stats.describe() if self.stats else "") if x)
        text = f"{where}{what}: {body}".strip().lstrip(": ")
        return text

    def to_dict(self) -> dict[str, Any]:
        out = {"kind": self.kind, "hdu": self.hdu, "name": self.name, "message": self.message}
        if self.stats is not None:
            out["stats"] = self.stats.to_dict()
        return out


@dataclass
class FileDiff:
    """All differences between one file and its reference."""

    test: str
    reference: str
    content: str | None = None
    differences: list[Difference] = field(default_factory=list)
    n_hdus_compared: int = 0
    n_values_compared: int = 0

    @property
    def identical(self) -> bool:
        """True when nothing differs beyond the tolerances."""
        return not self.differences

    def names(self) -> set[str]:
        """Every HDU, column and keyword named by a difference (for tests and summaries)."""
        out: set[str] = set()
        for d in self.differences:
            if d.hdu:
                out.add(d.hdu)
            if d.name:
                out.add(d.name)
        return out

    def summary(self) -> str:
        """One line: identical, or how many differences in which HDUs/columns."""
        if self.identical:
            return f"identical within tolerances ({self.n_hdus_compared} HDUs, {self.n_values_compared} values)"
        where = sorted({f"{d.hdu}:{d.name}" if d.name else d.hdu or d.kind for d in self.differences})
        shown = ", ".join(where[:8]) + (" ..." if len(where) > 8 else "")
        return f"{len(self.differences)} difference(s): {shown}"

    def account(self) -> str:
        """The readable account: header line, then one line per difference."""
        label = f" ({self.content})" if self.content else ""
        lines = [f"FITS diff{label}: {self.test}", f"     reference: {self.reference}"]
        if self.identical:
            lines.append(f"  {self.summary()}")
        else:
            lines.append(f"  {len(self.differences)} difference(s):")
            lines += [f"  - {d.line()}" for d in self.differences]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "reference": self.reference,
            "content": self.content,
            "identical": self.identical,
            "n_hdus_compared": self.n_hdus_compared,
            "n_values_compared": self.n_values_compared,
            "differences": [d.to_dict() for d in self.differences],
        }


# --------------------------------------------------------------------------------------
# Value comparison
# --------------------------------------------------------------------------------------


def _is_numeric(arr: np.ndarray) -> bool:
    return arr.dtype.kind in "iuf"


def compare_values(
    test: np.ndarray, ref: np.ndarray, tol: Tolerance | None
) -> ValueStats:
    """Compare two arrays of equal shape element by element.

    Parameters
    ----------
    test, ref : numpy.ndarray
        Values under test and reference values (same shape; the first axis is the row).
    tol : Tolerance or None
        None compares exactly (integers, booleans, strings); numeric arrays are compared
        with ``|a - b| <= atol + rtol * |b|``, NaN equal to NaN and inf equal to an inf
        of the same sign.

    Returns
    -------
    ValueStats
    """
    test = np.asarray(test)
    ref = np.asarray(ref)
    if test.shape != ref.shape:
        raise ValueError(f"shapes differ: {test.shape} vs {ref.shape}")
    n_total = int(ref.size)
    if n_total == 0:
        return ValueStats(0, 0, 0, tol)
    numeric = _is_numeric(test) and _is_numeric(ref)
    if numeric:
        a = test.astype(np.float64)
        b = ref.astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.abs(a - b)
        nan_a, nan_b = np.isnan(a), np.isnan(b)
        same_special = (nan_a & nan_b) | (np.isinf(a) & np.isinf(b) & (a == b))
        if tol is None:
            bad = ~((a == b) | same_special)
        else:
            with np.errstate(invalid="ignore", over="ignore"):
                ok = diff <= tol.atol + tol.rtol * np.abs(b)
            bad = ~(ok | same_special)
    else:
        if test.dtype.kind in "SU" or ref.dtype.kind in "SU":
            a_s = np.char.rstrip(test.astype(str))
            b_s = np.char.rstrip(ref.astype(str))
            bad = a_s != b_s
        else:
            bad = test != ref
        diff = None
    bad = np.asarray(bad)
    n_differ = int(bad.sum())
    rows_bad = bad.reshape(bad.shape[0], -1).any(axis=1) if bad.ndim > 1 else bad
    stats = ValueStats(n_total, n_differ, int(rows_bad.sum()), tol if numeric else None)
    if numeric and diff is not None:
        stats.n_special = int((bad & ~np.isfinite(diff)).sum())
        finite = np.isfinite(diff)
        if finite.any():
            fin = diff[finite]
            stats.mean_abs = float(fin.mean())
            stats.max_abs = float(fin.max())
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                rel = diff / np.abs(b)
            rel_ok = np.isfinite(rel)
            if rel_ok.any():
                stats.max_rel = float(rel[rel_ok].max())
    if n_differ:
        if numeric and diff is not None:
            # The worst differing element: largest |diff|, a NaN mismatch counting most.
            score = np.where(bad, np.nan_to_num(diff, nan=np.inf, posinf=np.inf), -1.0)
            flat = int(np.argmax(score))
        else:
            flat = int(np.argmax(bad))
        idx = np.unravel_index(flat, bad.shape)
        stats.worst_index = tuple(int(i) for i in idx)
        stats.worst_test = _jsonable(test[idx])
        stats.worst_ref = _jsonable(ref[idx])
    return stats


def _values_equal(a: Any, b: Any, tol: Tolerance) -> bool:
    """Equality of two header values: numbers with the keyword tolerance."""
    num = (int, float, np.integer, np.floating)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, num) and isinstance(b, num):
        fa, fb = float(a), float(b)
        if np.isnan(fa) and np.isnan(fb):
            return True
        return abs(fa - fb) <= tol.atol + tol.rtol * abs(fb)
    if isinstance(a, str) and isinstance(b, str):
        return a.rstrip() == b.rstrip()
    return type(a) is type(b) and a == b


# --------------------------------------------------------------------------------------
# HDU matching
# --------------------------------------------------------------------------------------


def _hdu_key(hdu: Any, index: int) -> tuple[str, int]:
    name = str(hdu.header.get("EXTNAME", "")).strip().upper()
    if not name:
        name = "PRIMARY" if index == 0 else f"HDU{index}"
    try:
        ver = int(hdu.header.get("EXTVER", 1))
    except (TypeError, ValueError):
        ver = 1
    return name, ver


def _label(key: tuple[str, int]) -> str:
    return key[0] if key[1] == 1 else f"{key[0]},{key[1]}"


def _index_hdus(hdul: fits.HDUList) -> dict[tuple[str, int], Any]:
    out: dict[tuple[str, int], Any] = {}
    for i, hdu in enumerate(hdul):
        key = _hdu_key(hdu, i)
        while key in out:  # duplicate (EXTNAME, EXTVER): keep both, distinguished
            key = (key[0], key[1] + 1000)
        out[key] = hdu
    return out


# --------------------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------------------


def _column_names(hdu: Any) -> dict[int, str]:
    if not isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)):
        return {}
    return {i + 1: c.name.upper() for i, c in enumerate(hdu.columns)}


def _header_items(hdu: Any, cfg: HarnessConfig) -> dict[str, list[Any]]:
    """Keyword -> list of values, column-numbered keywords renamed by column."""
    cols = _column_names(hdu)
    out: dict[str, list[Any]] = {}
    for card in hdu.header.cards:
        key = card.keyword.upper()
        if _STRUCTURAL.match(key) or cfg.keyword_ignored(key):
            continue
        m = _COLUMN_KEY.match(key)
        if m and cols:
            prefix, num = m.group(1), int(m.group(2))
            if prefix in _COLUMN_DESCRIPTORS:
                continue
            if num in cols:
                key = f"{prefix}({cols[num]})"
        if key in _COMMENTARY:
            key = key or "BLANK"
            value: Any = str(card.value)
        else:
            value = card.value
        out.setdefault(key, []).append(value)
    return out


def _diff_headers(test: Any, ref: Any, label: str, cfg: HarnessConfig) -> list[Difference]:
    a = _header_items(test, cfg)
    b = _header_items(ref, cfg)
    out: list[Difference] = []
    for key in b:
        if key not in a:
            out.append(Difference("keyword", label, key, f"missing (reference {b[key][0]!r})"))
    for key in a:
        if key not in b:
            out.append(Difference("keyword", label, key, f"not in the reference (value {a[key][0]!r})"))
    tol = cfg.tolerances.keywords
    for key in b:
        if key not in a:
            continue
        va, vb = a[key], b[key]
        if len(va) != len(vb):
            out.append(Difference("keyword", label, key, f"{len(va)} cards vs {len(vb)} in the reference"))
            continue
        for x, y in zip(va, vb):
            if not _values_equal(x, y, tol):
                out.append(Difference("keyword", label, key, f"{x!r} vs reference {y!r}"))
                break
    return out


# --------------------------------------------------------------------------------------
# Tables and images
# --------------------------------------------------------------------------------------


def _diff_table(
    test: Any, ref: Any, label: str, extname: str, content: str | None, cfg: HarnessConfig
) -> tuple[list[Difference], int]:
    out: list[Difference] = []
    tcols = {c.name.upper(): c for c in test.columns}
    rcols = {c.name.upper(): c for c in ref.columns}
    tnames = [n for n in tcols if not cfg.column_ignored(extname, n)]
    rnames = [n for n in rcols if not cfg.column_ignored(extname, n)]
    for n in rnames:
        if n not in tcols:
            out.append(Difference("column", label, n, "missing"))
    for n in tnames:
        if n not in rcols:
            out.append(Difference("column", label, n, "not in the reference"))
    common_t = [n for n in tnames if n in rcols]
    common_r = [n for n in rnames if n in tcols]
    if common_t != common_r:
        out.append(
            Difference("column", label, "", f"column order {common_t} vs reference {common_r}")
        )
    comparable: list[str] = []
    for n in common_r:
        ct, cr = tcols[n], rcols[n]
        unit_t, unit_r = (ct.unit or "").strip(), (cr.unit or "").strip()
        if unit_t != unit_r:
            out.append(Difference("column", label, n, f"unit {unit_t!r} vs reference {unit_r!r}"))
        fmt_t, fmt_r = str(ct.format).strip().upper(), str(cr.format).strip().upper()
        if fmt_t != fmt_r:
            out.append(Difference("column", label, n, f"format {fmt_t} vs reference {fmt_r}"))
        dim_t, dim_r = (ct.dim or "").replace(" ", ""), (cr.dim or "").replace(" ", "")
        if dim_t != dim_r:
            out.append(Difference("column", label, n, f"TDIM {dim_t!r} vs reference {dim_r!r}"))
        comparable.append(n)
    nt = 0 if test.data is None else len(test.data)
    nr = 0 if ref.data is None else len(ref.data)
    if nt != nr:
        out.append(
            Difference("rows", label, "", f"{nt} rows vs {nr} in the reference; values not compared")
        )
        return out, 0
    n_values = 0
    if nr == 0:
        return out, 0
    for n in comparable:
        a = np.asarray(test.data[n])
        b = np.asarray(ref.data[n])
        if a.shape != b.shape:
            out.append(Difference("column", label, n, f"shape {a.shape[1:]} vs reference {b.shape[1:]}"))
            continue
        if _is_numeric(a) != _is_numeric(b):
            out.append(Difference("column", label, n, f"type {a.dtype} vs reference {b.dtype}"))
            continue
        tol, explicit = cfg.tolerances.resolve(content, extname, n)
        exact = not (a.dtype.kind == "f" or b.dtype.kind == "f") and not explicit
        use_tol = None if exact or not _is_numeric(a) else tol
        stats = compare_values(a, b, use_tol)
        n_values += stats.n_total
        if stats.n_differ:
            out.append(Difference("values", label, n, "", stats))
    return out, n_values


def _diff_image(
    test: Any, ref: Any, label: str, extname: str, content: str | None, cfg: HarnessConfig
) -> tuple[list[Difference], int]:
    a, b = test.data, ref.data
    if a is None and b is None:
        return [], 0
    if a is None or b is None:
        which = "no data" if a is None else "data"
        return [Difference("image", label, "", f"{which} where the reference has the opposite")], 0
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return [Difference("image", label, "", f"shape {a.shape} vs reference {b.shape}")], 0
    out: list[Difference] = []
    if a.dtype.kind != b.dtype.kind or a.dtype.itemsize != b.dtype.itemsize:
        out.append(Difference("image", label, "", f"data type {a.dtype} vs reference {b.dtype}"))
    tol, explicit = cfg.tolerances.resolve(content, extname, None)
    exact = not (a.dtype.kind == "f" or b.dtype.kind == "f") and not explicit
    stats = compare_values(a, b, None if exact else tol)
    if stats.n_differ:
        out.append(Difference("image", label, "", "pixel values", stats))
    return out, stats.n_total


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------


def _open(path: Path) -> fits.HDUList:
    with warnings.catch_warnings():
        # A damaged checksum is reported by the golden manifest check; here we still
        # want to describe the content.
        warnings.simplefilter("ignore")
        hdul = fits.open(path, memmap=False, lazy_load_hdus=False)
        for hdu in hdul:
            _ = hdu.data
    return hdul


def diff_fits(
    test: str | os.PathLike[str],
    reference: str | os.PathLike[str],
    config: HarnessConfig | None = None,
) -> FileDiff:
    """Compare a FITS file with its reference.

    Parameters
    ----------
    test : path-like
        The file under test (a fresh output).
    reference : path-like
        The expected file (golden).
    config : HarnessConfig, optional
        Tolerances and ignored keywords/HDUs/columns; default ``harness/config.yaml``.

    Returns
    -------
    FileDiff
        Every difference found. An unreadable file is one ``file`` difference.
    """
    cfg = config or load_config()
    test_p, ref_p = Path(test), Path(reference)
    result = FileDiff(str(test_p), str(ref_p))
    opened: list[fits.HDUList] = []
    try:
        hduls = []
        for which, p in (("test", test_p), ("reference", ref_p)):
            try:
                h = _open(p)
            except Exception as exc:  # astropy raises OSError, ValueError, TypeError...
                result.differences.append(
                    Difference("file", "", "", f"{which} file unreadable: {type(exc).__name__}: {exc}")
                )
                continue
            opened.append(h)
            hduls.append(h)
        if len(hduls) != 2:
            return result
        th, rh = hduls
        content = str(rh[0].header.get("CONTENT", "") or th[0].header.get("CONTENT", "")).strip() or None
        result.content = content
        ti, ri = _index_hdus(th), _index_hdus(rh)
        for key in ri:
            if key not in ti and not cfg.hdu_ignored(key[0]):
                result.differences.append(Difference("hdu", _label(key), "", "HDU missing"))
        for key in ti:
            if key not in ri and not cfg.hdu_ignored(key[0]):
                result.differences.append(Difference("hdu", _label(key), "", "HDU not in the reference"))
        order_t = [k for k in ti if k in ri]
        order_r = [k for k in ri if k in ti]
        if order_t != order_r:
            result.differences.append(
                Difference("file", "", "", f"HDU order {[_label(k) for k in order_t]} vs reference {[_label(k) for k in order_r]}")
            )
        for key, rhdu in ri.items():
            if key not in ti or cfg.hdu_ignored(key[0]):
                continue
            thdu = ti[key]
            label = _label(key)
            result.n_hdus_compared += 1
            result.differences += _diff_headers(thdu, rhdu, label, cfg)
            t_tab = isinstance(thdu, (fits.BinTableHDU, fits.TableHDU))
            r_tab = isinstance(rhdu, (fits.BinTableHDU, fits.TableHDU))
            if t_tab != r_tab:
                result.differences.append(
                    Difference("hdu", label, "", f"{type(thdu).__name__} vs reference {type(rhdu).__name__}")
                )
                continue
            if r_tab:
                diffs, n = _diff_table(thdu, rhdu, label, key[0], content, cfg)
            else:
                diffs, n = _diff_image(thdu, rhdu, label, key[0], content, cfg)
            result.differences += diffs
            result.n_values_compared += n
    finally:
        for h in opened:
            h.close()
    return result
