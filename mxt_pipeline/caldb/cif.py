"""The calibration index file (CIF, ``caldb.indx``): rows, reading and writing.

A CIF is the HEASARC CALDB's table of contents (OGIP memo CAL/GEN/92-008, CIF version
1.1): a binary table ``EXTNAME='CIF'`` with one row per calibrated HDU.  Its exact
column formats are those of the ``CALDB_CIF`` product spec
(:mod:`mxt_pipeline.io.formats`), so that the file written here passes ``fitsverify``
and ``mxt validate``, and HEASoft tools (``quzcif``, ``caldbinfo``) can read it.

``REF_TIME`` is the validity start ``CAL_VSD``/``CAL_VST`` as a Modified Julian Date,
computed on the calendar (86400 s days, no leap seconds), as HEASoft's ``udcif`` does
for the UTC date and time strings.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time
from pathlib import Path

import numpy as np

from mxt_pipeline import constants as C
from mxt_pipeline.caldb.expressions import Boundary, parse_boundaries
from mxt_pipeline.errors import MXTFormatError, MXTInputError

__all__ = [
    "CifRow",
    "CIF_COLUMNS",
    "N_CBD",
    "CIF_VERSION",
    "MJD_EPOCH",
    "ref_time_mjd",
    "mjd_to_datetime",
    "read_cif",
    "write_cif",
]

#: CIF version written in CIFVERSN.
CIF_VERSION = "1.1"
#: Number of boundary strings per row (``CAL_CBD`` is 630A70: 9 x 70 characters).
N_CBD = 9
#: Day zero of the Modified Julian Date (MJD 0 = 1858-11-17T00:00:00).
MJD_EPOCH = datetime(1858, 11, 17)

#: Column names of the CIF, in file order.
CIF_COLUMNS = (
    "TELESCOP", "INSTRUME", "DETNAM", "FILTER", "CAL_DEV", "CAL_DIR", "CAL_FILE",
    "CAL_CLAS", "CAL_DTYP", "CAL_CNAM", "CAL_CBD", "CAL_XNO", "CAL_VSD", "CAL_VST",
    "REF_TIME", "CAL_QUAL", "CAL_DATE", "CAL_DESC",
)  # fmt: skip

_VSD_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_VST_RE = re.compile(r"^\d{2}:\d{2}:\d{2}$")


@functools.lru_cache(maxsize=1)
def _widths() -> dict[str, int]:
    """Character widths of the string columns, from the CALDB_CIF product spec.

    Looked up on first use: importing the io layer pulls in pandas and pandera, which
    a client that only selects files does not need at import time.
    """
    from mxt_pipeline.io.formats import get_spec

    spec = get_spec("CALDB_CIF")
    cols = spec.hdus[0].columns
    return {c.name: c.dtype.itemsize // 4 for c in cols if c.is_string}



def ref_time_mjd(vsd: str, vst: str = "00:00:00") -> float:
    """Return the MJD of a validity start date and time.

    Parameters
    ----------
    vsd : str
        ``YYYY-MM-DD``.
    vst : str
        ``hh:mm:ss``.

    Returns
    -------
    float
        Days since 1858-11-17T00:00:00 (calendar days of 86400 s).
    """
    d = _parse_vsd(vsd)
    t = _parse_vst(vst)
    days = (d - MJD_EPOCH.date()).days
    return days + (t.hour * 3600 + t.minute * 60 + t.second) / 86400.0


def mjd_to_datetime(mjd: float) -> datetime:
    """Inverse of :func:`ref_time_mjd` (calendar arithmetic, naive UTC datetime)."""
    from datetime import timedelta

    return MJD_EPOCH + timedelta(days=float(mjd))


def _parse_vsd(vsd: str) -> date:
    if not isinstance(vsd, str) or not _VSD_RE.match(vsd):
        raise MXTInputError(f"validity start date {vsd!r} is not YYYY-MM-DD")
    try:
        return date.fromisoformat(vsd)
    except ValueError:
        raise MXTInputError(f"validity start date {vsd!r} is not a calendar date") from None


def _parse_vst(vst: str) -> time:
    if not isinstance(vst, str) or not _VST_RE.match(vst):
        raise MXTInputError(f"validity start time {vst!r} is not hh:mm:ss")
    try:
        return time.fromisoformat(vst)
    except ValueError:
        raise MXTInputError(f"validity start time {vst!r} is not a time of day") from None


def _check_text(name: str, value: str) -> str:
    if not isinstance(value, str):
        raise MXTInputError(f"{name} must be a string, got {type(value).__name__}")
    value = value.rstrip()
    if any(not (32 <= ord(ch) < 127) for ch in value):
        raise MXTInputError(f"{name} {value!r} holds characters outside printable ASCII")
    width = _widths()[name]
    if len(value) > width:
        raise MXTInputError(f"{name} {value!r} is longer than {width} characters")
    return value


@dataclass(frozen=True)
class CifRow:
    """One row of a calibration index: one calibrated HDU of one file.

    Field names are the CIF column names in lower case.  ``cal_cbd`` always holds
    exactly nine strings (unused ones ``NONE``); ``ref_time`` defaults to the MJD of
    ``cal_vsd``/``cal_vst``.  ``cal_xno`` is the HDU number in the file; -1 marks a
    dataset that is not a FITS HDU (the YAML ``upload`` class).
    """

    telescop: str
    instrume: str
    cal_cnam: str
    cal_dir: str
    cal_file: str
    cal_vsd: str
    cal_vst: str = "00:00:00"
    detnam: str = "NONE"
    filter: str = "NONE"
    cal_dev: str = "ONLINE"
    cal_clas: str = "BCF"
    cal_dtyp: str = "DATA"
    cal_cbd: tuple[str, ...] = ("NONE",) * N_CBD
    cal_xno: int = 1
    ref_time: float | None = None
    cal_qual: int = 0
    cal_date: str = "2000-01-01"
    cal_desc: str = ""
    _boundaries: tuple[Boundary, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name.startswith("_") or f.name in ("cal_cbd", "cal_xno", "ref_time", "cal_qual"):
                continue
            object.__setattr__(self, f.name, _check_text(f.name.upper(), getattr(self, f.name)))
        cbd = tuple(self.cal_cbd)
        if len(cbd) > N_CBD:
            raise MXTInputError(f"CAL_CBD holds {len(cbd)} boundaries, at most {N_CBD} allowed")
        cbd = tuple(_check_text("CAL_CBD", s) or "NONE" for s in cbd) + ("NONE",) * (N_CBD - len(cbd))
        object.__setattr__(self, "cal_cbd", cbd)
        object.__setattr__(self, "_boundaries", parse_boundaries(cbd))
        if self.cal_clas not in ("BCF", "CPF"):
            raise MXTInputError(f"CAL_CLAS {self.cal_clas!r} must be BCF or CPF")
        if not self.cal_cnam:
            raise MXTInputError("CAL_CNAM (code name) is empty")
        if not self.cal_file:
            raise MXTInputError("CAL_FILE is empty")
        # CAL_DIR and CAL_FILE become a path under the CALDB root: nothing that could
        # leave it (an absolute path, a '..' part, a directory in the file name).
        if self.cal_dir.startswith("/") or ".." in self.cal_dir.split("/"):
            raise MXTInputError(f"CAL_DIR {self.cal_dir!r} must be a relative path without '..'")
        if "/" in self.cal_file or self.cal_file in (".", ".."):
            raise MXTInputError(f"CAL_FILE {self.cal_file!r} must be a bare file name")
        xno, qual = int(self.cal_xno), int(self.cal_qual)
        if not -1 <= xno <= 999:
            raise MXTInputError(f"CAL_XNO {xno} outside -1..999")
        if not 0 <= qual <= 5:
            raise MXTInputError(f"CAL_QUAL {qual} outside 0..5")
        object.__setattr__(self, "cal_xno", xno)
        object.__setattr__(self, "cal_qual", qual)
        _parse_vsd(self.cal_date)  # CAL_DATE has the CAL_VSD format
        computed = ref_time_mjd(self.cal_vsd, self.cal_vst)
        if self.ref_time is None:
            object.__setattr__(self, "ref_time", computed)
        else:
            object.__setattr__(self, "ref_time", float(self.ref_time))

    @property
    def boundaries(self) -> tuple[Boundary, ...]:
        """The parsed CAL_CBD boundaries (``NONE`` slots dropped)."""
        return self._boundaries

    @property
    def relpath(self) -> str:
        """``CAL_DIR/CAL_FILE``, the file's path relative to the CALDB root."""
        return f"{self.cal_dir}/{self.cal_file}" if self.cal_dir else self.cal_file

    @property
    def valid_from(self) -> datetime:
        """Validity start as a naive UTC datetime."""
        return datetime.combine(_parse_vsd(self.cal_vsd), _parse_vst(self.cal_vst))

    @property
    def is_fits(self) -> bool:
        """False for non-FITS datasets (``CAL_XNO == -1``, the YAML upload class)."""
        return self.cal_xno >= 0

    def with_quality(self, quality: int) -> CifRow:
        """A copy with ``CAL_QUAL`` set (superseding sets 5)."""
        return replace(self, cal_qual=quality)

    def as_record(self) -> dict[str, object]:
        """The row as a mapping of CIF column name to value."""
        return {
            name: (list(self.cal_cbd) if name == "CAL_CBD" else getattr(self, name.lower()))
            for name in CIF_COLUMNS
        }

    @classmethod
    def from_record(cls, record: dict[str, object]) -> CifRow:
        """Build a row from a mapping of CIF column name (any case) to value."""
        lower = {str(k).lower(): v for k, v in record.items()}
        kwargs = {name.lower(): lower[name.lower()] for name in CIF_COLUMNS if name.lower() in lower}
        if "cal_cbd" in kwargs:
            kwargs["cal_cbd"] = tuple(str(s) for s in kwargs["cal_cbd"])  # type: ignore[union-attr]
        return cls(**kwargs)  # type: ignore[arg-type]


def _sort_key(row: CifRow) -> tuple:
    return (row.instrume, row.cal_cnam, row.ref_time, row.cal_dir, row.cal_file, row.cal_xno)


def write_cif(
    rows: Sequence[CifRow],
    path: str | os.PathLike[str],
    *,
    telescop: str | None = None,
    instrume: str | None = None,
    caldbver: str | None = None,
    sort: bool = True,
) -> Path:
    """Write a calibration index file atomically.

    Parameters
    ----------
    rows : sequence of CifRow
        The rows (may be empty).
    path : path-like
        Target file, e.g. ``<caldb>/data/svom/mxt/caldb.indx``.
    telescop, instrume : str, optional
        TELESCOP/INSTRUME of the file headers; default from the rows (SVOM/MXT when
        there are none).
    caldbver : str, optional
        CALDBVER keyword (default: ``<instrument><YYYYMMDD>`` of the newest CAL_DATE).
    sort : bool
        Order the rows by instrument, code name, REF_TIME, directory, file, extension
        (stable output, independent of scanning order).

    Returns
    -------
    pathlib.Path
    """
    from mxt_pipeline.io.fits import write_product

    rows = sorted(rows, key=_sort_key) if sort else list(rows)
    telescop = telescop or (rows[0].telescop if rows else C.TELESCOP)
    instrume = instrume or (rows[0].instrume if rows else C.INSTRUME)
    if caldbver is None:
        newest = max((r.cal_date for r in rows), default="2000-01-01")
        caldbver = f"{instrume.lower()}{newest.replace('-', '')}"
    columns: dict[str, object] = {}
    for name in CIF_COLUMNS:
        if name == "CAL_CBD":
            columns[name] = np.array([r.cal_cbd for r in rows], dtype="U70").reshape(len(rows), N_CBD)
        elif name in ("CAL_XNO", "CAL_QUAL"):
            columns[name] = np.array([getattr(r, name.lower()) for r in rows], dtype=np.int16)
        elif name == "REF_TIME":
            columns[name] = np.array([r.ref_time for r in rows], dtype=np.float64)
        else:
            width = _widths()[name]
            columns[name] = np.array([getattr(r, name.lower()) for r in rows], dtype=f"U{width}")
    return write_product(
        path,
        "CALDB_CIF",
        {"CIF": columns},
        header={"TELESCOP": telescop, "INSTRUME": instrume},
        hdu_headers={"CIF": {"CIFVERSN": CIF_VERSION, "CALDBVER": caldbver}},
    )


def read_cif(path: str | os.PathLike[str], *, validate: bool = True) -> list[CifRow]:
    """Read a calibration index file.

    Parameters
    ----------
    path : path-like
        A ``caldb.indx`` (any file whose calibration table has ``EXTNAME='CIF'``).
    validate : bool
        Also run the ``CALDB_CIF`` schema checks (``mxt validate`` rules); turn off to
        read indexes written by other tools.

    Returns
    -------
    list of CifRow
        In file order.

    Raises
    ------
    MXTFormatError
        When the file is not a readable CIF or a row is malformed (names the row).
    """
    from mxt_pipeline.io.fits import read_product

    product = read_product(path, "CALDB_CIF", validate=False)
    table = product.table("CIF")
    if validate:
        _validate(product, len(table))
    cols = {name: np.asarray(table[name]) for name in CIF_COLUMNS}
    rows = []
    for i in range(len(table)):
        record = {name.lower(): cols[name][i] for name in CIF_COLUMNS}
        cbd = record["cal_cbd"]
        record["cal_cbd"] = tuple(str(s) for s in np.atleast_1d(cbd))
        for key in ("cal_xno", "cal_qual"):
            record[key] = int(record[key])
        record["ref_time"] = float(record["ref_time"])
        for key, value in list(record.items()):
            if isinstance(value, np.str_):
                record[key] = str(value)
        try:
            rows.append(CifRow(**record))  # type: ignore[arg-type]
        except MXTInputError as exc:
            raise MXTFormatError(f"row {i + 1}: {exc.message}", file=path, hdu="CIF") from None
    return rows


def _validate(product, nrows: int) -> None:
    """Run the CALDB_CIF schema checks; for an empty index only the header checks.

    The column checks of the io layer expand the 630A70 CAL_CBD column into nine
    sub-columns, which an empty table read back does not have, so a valid empty index
    would be refused; it has no values to check anyway.
    """
    from mxt_pipeline.errors import MXTSchemaError
    from mxt_pipeline.io.formats import get_spec
    from mxt_pipeline.io.schemas import check_header
    from mxt_pipeline.io.validate import raise_for_violations

    spec = get_spec("CALDB_CIF")
    if nrows:
        raise_for_violations(product, spec)
        return
    file = str(product.path)
    violations = check_header(product.primary_header, None, spec, file, 0)
    violations += check_header(product.header("CIF"), spec.hdus[0], spec, file, "CIF")
    if violations:
        raise MXTSchemaError(
            f"{len(violations)} schema violation(s) in CALDB_CIF", violations, file=product.path
        )


def iter_relpaths(rows: Iterable[CifRow]) -> list[str]:
    """Distinct ``CAL_DIR/CAL_FILE`` of ``rows`` in first-seen order."""
    seen: dict[str, None] = {}
    for r in rows:
        seen.setdefault(r.relpath, None)
    return list(seen)
