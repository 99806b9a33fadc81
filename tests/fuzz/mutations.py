"""Corruptions of valid FITS products, drawn by hypothesis and applied to a copy.

A mutation is a plain tuple, so that a failure found by the fuzzer can be kept as a
hypothesis ``@example`` (the regression corpus) and read by a person:

``("truncate", frac)``
    keep the first ``frac`` of the bytes;
``("flip", ((pos_frac, xor), ...))``
    flip bytes anywhere after the first header block (checksums must catch it);
``("card", pos_frac, text)``
    overwrite one 80-character header card of the primary header with ``text``;
``("value", hdu, column, row, value)``
    set one cell (checksums rewritten: only the reader's own checks can refuse it);
``("retype", hdu, column, tform)``
    store a column with another FITS type (``E`` float32, ``J``, ``10A``, ...);
``("drop_column", hdu, column)``, ``("drop_hdu", hdu)``, ``("rows", hdu, how)``
    remove a column or an HDU, or change the rows: ``empty``, ``first``, ``reverse``,
    ``duplicate``;
``("keyword", hdu, key, value)``
    set a header keyword (``None`` deletes it), e.g. ``TSTART='abc'``.

``hdu`` and ``column`` are names or integers; integers are taken modulo what the file
holds, so any drawn tuple applies to any product.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from hypothesis import strategies as st

Mutation = tuple[Any, ...]

#: Values written into cells (cast to the column's type where they fit).
CELL_VALUES = (np.nan, np.inf, -np.inf, 0, -1, 1, 255, 256, 4096, 2**31 - 1, -(2**31), 1e300, -1e300, 3.0e8, 1e-300)
#: FITS formats a column may be rewritten with.
TFORMS = ("E", "D", "J", "I", "B", "K", "L", "10A")
#: Keywords worth corrupting and the values tried.
KEYWORDS = ("TSTART", "TSTOP", "MJDREFI", "MJDREFF", "TIMESYS", "TIMEUNIT", "CONTENT", "EXTNAME", "OBS_ID",
            "TELESCOP", "INSTRUME", "FRAMETIM", "RA_NOM", "DEC_NOM", "DATE-OBS", "DATE-END", "TLMIN1", "TLMAX1",
            "HDUCLASS", "WEEK", "PASS_ID", "ONTIME", "LIVETIME", "EXPOSURE")  # fmt: skip
KEYWORD_VALUES = (None, "abc", "", -1, 0, 1, 1e30, -1e30, True, 57754, 3.0e8, "2017-01-01T00:00:00")
ROW_EDITS = ("empty", "first", "reverse", "duplicate")


def mutations() -> st.SearchStrategy[Mutation]:
    """Every kind of mutation, with integer indices resolved against the file."""
    idx = st.integers(0, 63)
    return st.one_of(
        st.tuples(st.just("truncate"), st.floats(0.0, 0.999)),
        st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0.0, 0.999), st.integers(1, 255)),
                                            min_size=1, max_size=6).map(tuple)),  # fmt: skip
        st.tuples(st.just("card"), st.floats(0.0, 0.999), st.sampled_from(
            ("GARBAGE", "END", "SIMPLE  = F", "NAXIS   = 99", "BITPIX  = 7", "XTENSION= 'IMAGE   '", "=" * 80))),
        st.tuples(st.just("value"), idx, idx, st.integers(0, 10**6), st.sampled_from(CELL_VALUES)),
        st.tuples(st.just("retype"), idx, idx, st.sampled_from(TFORMS)),
        st.tuples(st.just("drop_column"), idx, idx),
        st.tuples(st.just("drop_hdu"), idx),
        st.tuples(st.just("rows"), idx, st.sampled_from(ROW_EDITS)),
        st.tuples(st.just("keyword"), idx, st.sampled_from(KEYWORDS), st.sampled_from(KEYWORD_VALUES)),
    )


def _pick(items: list, key: Any) -> Any:
    if isinstance(key, str):
        return key if key in items else None
    return items[key % len(items)] if items else None


def _table_hdus(hdul: fits.HDUList) -> list[str]:
    return [h.name for h in hdul[1:] if isinstance(h, fits.BinTableHDU)]


def _rebuild(hdu: fits.BinTableHDU, columns: list[fits.Column]) -> fits.BinTableHDU:
    """The HDU with new columns; the legal ranges (TLMIN/TLMAX) of kept columns kept."""
    header = hdu.header.copy()
    ranges = {}
    for i, name in enumerate(hdu.columns.names, start=1):
        ranges[name] = {k: header[f"{k}{i}"] for k in ("TLMIN", "TLMAX") if f"{k}{i}" in header}
    for key in list(header):
        if key[:5] in ("TTYPE", "TFORM", "TUNIT", "TLMIN", "TLMAX", "TDISP", "TNULL", "TSCAL", "TZERO") or key[:4] in (
            "TDIM",
        ):  # fmt: skip
            del header[key]
    new = fits.BinTableHDU.from_columns(columns, header=header, name=hdu.name)
    for j, c in enumerate(columns, start=1):
        for k, v in ranges.get(c.name, {}).items():
            new.header[f"{k}{j}"] = v
    return new


def _columns(hdu: fits.BinTableHDU, rows: np.ndarray | None = None) -> list[fits.Column]:
    out = []
    for c in hdu.columns:
        arr = np.asarray(hdu.data[c.name]) if hdu.data is not None else np.zeros(0)
        if rows is not None:
            arr = arr[rows]
        out.append(fits.Column(name=c.name, format=c.format, unit=c.unit, array=arr, dim=c.dim))
    return out


def _cast(arr: np.ndarray, tform: str) -> np.ndarray:
    code = tform[-1]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if code == "A":
            return np.asarray(arr).astype(str)
        if code == "L":
            return np.asarray(arr).astype(bool)
        dtype = {"E": "f4", "D": "f8", "J": "i4", "I": "i2", "B": "u1", "K": "i8"}[code]
        a = np.asarray(arr)
        if a.dtype.kind in "SU":
            a = np.zeros(a.shape[0])
        if dtype[0] in "iu":
            a = np.nan_to_num(a.astype("f8"), nan=0, posinf=0, neginf=0)
            info = np.iinfo(dtype)
            a = np.clip(a, info.min, info.max)
        return a.astype(dtype)


def _edit_hdul(hdul: fits.HDUList, m: Mutation) -> None:
    kind = m[0]
    tables = _table_hdus(hdul)
    if kind == "drop_hdu":
        name = _pick(tables, m[1])
        if name is not None:
            hdul.pop(hdul.index_of(name))
        return
    if kind == "keyword":
        hdus = list(range(len(hdul)))
        target = hdul[_pick(hdus, m[1]) if not isinstance(m[1], str) else hdul.index_of(m[1])]
        key, value = m[2], m[3]
        if value is None:
            if key in target.header:
                del target.header[key]
        else:
            target.header[key] = value
        return
    name = _pick(tables, m[1])
    if name is None:
        return
    hdu = hdul[name]
    names = list(hdu.columns.names)
    if kind == "rows":
        n = 0 if hdu.data is None else len(hdu.data)
        rows = {"empty": np.arange(0), "first": np.arange(min(n, 1)), "reverse": np.arange(n)[::-1],
                "duplicate": np.concatenate([np.arange(n), np.arange(n)])}[m[2]]  # fmt: skip
        hdul[name] = _rebuild(hdu, _columns(hdu, rows))
        return
    col = _pick(names, m[2])
    if col is None:
        return
    if kind == "value":
        data = hdu.data
        if data is None or len(data) == 0:
            return
        arr = data[col]
        row = m[3] % len(data)
        value = m[4]
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                if arr.dtype.kind in "iu":
                    if not np.isfinite(value):
                        return
                    info = np.iinfo(arr.dtype)
                    value = int(np.clip(value, info.min, info.max))
                elif arr.dtype.kind in "SUb":
                    return
                arr[row] = value
            except (OverflowError, ValueError, TypeError):
                return
        return
    if kind == "drop_column":
        cols = [c for c in _columns(hdu) if c.name != col]
        if cols:
            hdul[name] = _rebuild(hdu, cols)
        return
    if kind == "retype":
        cols = []
        for c in _columns(hdu):
            if c.name == col:
                arr = np.asarray(c.array)
                if arr.ndim > 1 and m[3] != "10A":
                    c = fits.Column(name=c.name, format=f"{arr.shape[1]}{m[3]}", unit=c.unit, array=_cast(arr, m[3]))
                elif arr.ndim > 1:
                    continue
                else:
                    c = fits.Column(name=c.name, format=m[3], unit=c.unit, array=_cast(arr, m[3]))
            cols.append(c)
        hdul[name] = _rebuild(hdu, cols)
        return
    raise ValueError(f"unknown mutation {m!r}")


def apply_mutation(src: Path, dst: Path, m: Mutation) -> Path:
    """Write ``src`` corrupted by ``m`` to ``dst``; return ``dst``."""
    raw = bytearray(Path(src).read_bytes())
    kind = m[0]
    if kind == "truncate":
        dst.write_bytes(bytes(raw[: int(len(raw) * m[1])]))
        return dst
    if kind == "flip":
        for frac, xor in m[1]:
            pos = 2880 + int((len(raw) - 2881) * frac)
            raw[pos] ^= xor
        dst.write_bytes(bytes(raw))
        return dst
    if kind == "card":
        n_cards = 36
        card = int(n_cards * m[1])
        text = m[2].ljust(80)[:80].encode("ascii")
        raw[card * 80 : card * 80 + 80] = text
        dst.write_bytes(bytes(raw))
        return dst
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(src, memmap=False) as hdul:
            copy = fits.HDUList([h.copy() for h in hdul])
        _edit_hdul(copy, m)
        try:
            copy.writeto(dst, checksum=True, overwrite=True, output_verify="silentfix")
        except (ValueError, TypeError, OSError, fits.VerifyError):
            # The corruption cannot even be written as FITS: the original stands in
            # (the case is then a plain success of the reader).
            dst.write_bytes(bytes(raw))
    return dst
