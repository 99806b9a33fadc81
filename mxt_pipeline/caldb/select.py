"""Selection of calibration datasets from an index, with the rules of HEASoft ``quzcif``.

The rules (HEASoft ``HDgtcalf.c`` and the ``quzcif`` help, summarised in
docs/caldb.md):

1. TELESCOP and INSTRUME match exactly, case-insensitive.
2. DETNAM, FILTER and CAL_CNAM match when equal (case-insensitive) or when either the
   query or the row says ``NONE``; ``-`` in the query skips that selection.
3. Only rows of the requested quality (``CAL_QUAL == 0``) take part.
4. Boundary expression (``energy.eq.5``): see :mod:`mxt_pipeline.caldb.expressions`.
5. Time: ``now`` is the current UTC time, ``-`` means no time cut.  A row qualifies
   when ``REF_TIME <= requested time``; among the qualifying rows *all* those sharing
   the single latest REF_TIME are returned and older ones are dropped.  The latest
   REF_TIME is taken over every row that passed rules 1-4, as ``HDgtcalf`` does (so a
   query with code name ``-`` returns the most recently started datasets only).

Times are UTC calendar dates like the CIF's CAL_VSD/CAL_VST; :func:`met_to_datetime`
converts mission time (TT seconds since MJDREF) of an observation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from mxt_pipeline.caldb.cif import CifRow, mjd_to_datetime, ref_time_mjd
from mxt_pipeline.caldb.expressions import Expression, parse_expression
from mxt_pipeline.errors import MXTCaldbAmbiguous, MXTCaldbNotFound, MXTInputError

__all__ = [
    "CaldbQuery",
    "quzcif",
    "select",
    "requested_mjd",
    "met_to_datetime",
    "REF_TIME_TOLERANCE_D",
]

#: Two REF_TIMEs closer than this (days, about 9 ms) are the same validity start:
#: REF_TIME is a double computed from second-resolution strings.
REF_TIME_TOLERANCE_D = 1e-7

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")
_TIME_RE = re.compile(r"^\d{2}:\d{2}:\d{2}$")

DateLike = str | date | datetime | None


def met_to_datetime(met: float) -> datetime:
    """Convert mission time (TT seconds since MJDREF) to a naive UTC datetime.

    Uses astropy's TT to UTC conversion (leap seconds included), so the result can be
    compared with the UTC validity starts of the CALDB.
    """
    from astropy.time import Time

    from mxt_pipeline import constants as C

    t = Time(C.MJDREFI, C.MJDREFF + float(met) / 86400.0, format="mjd", scale="tt")
    return t.utc.to_datetime()


def _to_utc_naive(dt: datetime) -> datetime:
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


def requested_mjd(
    date_: DateLike = "now", time_: str | None = None, *, now: datetime | None = None
) -> float | None:
    """Return the MJD of a quzcif date/time request, or None for no time cut.

    Parameters
    ----------
    date_ : str, datetime.date, datetime.datetime or None
        ``'now'`` (also None), ``'-'`` (no time cut), ``'YYYY-MM-DD'``,
        ``'YYYY-MM-DDThh:mm:ss[.fff]'`` (a ``Z`` suffix is allowed), a date or a datetime
        (naive ones are UTC; aware ones are converted to UTC).  An astropy ``Time`` is
        accepted too.
    time_ : str, optional
        ``'hh:mm:ss'`` with a date-only ``date_`` (quzcif's separate time argument);
        ``'-'`` or None mean midnight.
    now : datetime, optional
        The current time (tests pin it); default ``datetime.now(UTC)``.

    Raises
    ------
    MXTInputError
        Naming the value that cannot be read.
    """
    if time_ is not None and time_ != "-" and not _TIME_RE.match(str(time_)):
        raise MXTInputError(f"requested time {time_!r} is not hh:mm:ss")
    if date_ is None or (isinstance(date_, str) and date_.strip().lower() == "now"):
        if time_ not in (None, "-"):
            raise MXTInputError("a time of day cannot be combined with date 'now'")
        current = _to_utc_naive(now) if now is not None else datetime.now(UTC).replace(tzinfo=None)
        return ref_time_mjd(current.strftime("%Y-%m-%d"), "00:00:00") + (
            current.hour * 3600 + current.minute * 60 + current.second + current.microsecond / 1e6
        ) / 86400.0
    if isinstance(date_, str) and date_.strip() == "-":
        return None
    if hasattr(date_, "utc") and hasattr(date_, "to_datetime"):  # astropy Time
        date_ = date_.utc.to_datetime()  # type: ignore[union-attr]
    if isinstance(date_, datetime):
        if time_ not in (None, "-"):
            raise MXTInputError("a time of day cannot be combined with a full date-time")
        dt = _to_utc_naive(date_)
    elif isinstance(date_, date):
        dt = datetime.combine(date_, datetime.min.time())
        if time_ not in (None, "-"):
            dt = datetime.combine(date_, datetime.strptime(time_, "%H:%M:%S").time())
    elif isinstance(date_, str):
        text = date_.strip()
        if _DATE_RE.match(text):
            clock = time_ if time_ not in (None, "-") else "00:00:00"
            try:
                dt = datetime.fromisoformat(f"{text}T{clock}")
            except ValueError:
                raise MXTInputError(f"requested date {text!r} {clock} is not a valid date") from None
        elif _DATETIME_RE.match(text):
            if time_ not in (None, "-"):
                raise MXTInputError("a time of day cannot be combined with a full date-time")
            try:
                dt = _to_utc_naive(datetime.fromisoformat(text.replace("Z", "+00:00")))
            except ValueError:
                raise MXTInputError(f"requested date {text!r} is not a valid date") from None
        else:
            raise MXTInputError(
                f"requested date {date_!r} is not 'now', '-', YYYY-MM-DD or YYYY-MM-DDThh:mm:ss"
            )
    else:
        raise MXTInputError(
            f"requested date of type {type(date_).__name__}: use a date string, a datetime, "
            "or met_to_datetime() for mission time"
        )
    days = (dt.date() - date(1858, 11, 17)).days
    return days + (dt.hour * 3600 + dt.minute * 60 + dt.second + dt.microsecond / 1e6) / 86400.0


def _describe_date(mjd: float | None) -> str:
    if mjd is None:
        return "any date"
    return mjd_to_datetime(mjd).strftime("%Y-%m-%dT%H:%M:%S")


def _match_none_or_equal(query: str, value: str) -> bool:
    if query == "-":
        return True
    q, v = query.strip().upper(), value.strip().upper()
    return q == v or q == "NONE" or v == "NONE"


@dataclass(frozen=True)
class CaldbQuery:
    """A quzcif query.

    ``date`` and ``time`` follow :func:`requested_mjd`; ``expr`` follows
    :func:`~mxt_pipeline.caldb.expressions.parse_expression`.  ``quality`` is the
    CAL_QUAL value selected (0, good data; None selects every quality).
    """

    telescop: str
    instrume: str
    codename: str = "-"
    detnam: str = "-"
    filter: str = "-"
    date: DateLike = "now"
    time: str | None = None
    expr: str | None = None
    quality: int | None = 0

    def expression(self) -> Expression:
        return parse_expression(self.expr)

    def mjd(self, now: datetime | None = None) -> float | None:
        return requested_mjd(self.date, self.time, now=now)

    def describe(self, mjd: float | None = None) -> str:
        """Words naming the query (for error messages)."""
        expr = parse_expression(self.expr).render()
        return (
            f"{self.telescop} {self.instrume} code name {self.codename.upper()} "
            f"(DETNAM {self.detnam}, FILTER {self.filter}) valid at {_describe_date(mjd)}"
            f" with expression {expr!r}"
        )


def _static_match(row: CifRow, q: CaldbQuery, expr: Expression) -> bool:
    if row.telescop.upper() != q.telescop.strip().upper():
        return False
    if row.instrume.upper() != q.instrume.strip().upper():
        return False
    if not _match_none_or_equal(q.codename, row.cal_cnam):
        return False
    if not _match_none_or_equal(q.detnam, row.detnam):
        return False
    if not _match_none_or_equal(q.filter, row.filter):
        return False
    if q.quality is not None and row.cal_qual != q.quality:
        return False
    return expr.matches(row.boundaries)


def _latest(rows: list[CifRow], mjd: float | None) -> list[CifRow]:
    if mjd is None:
        return rows
    valid = [r for r in rows if r.ref_time <= mjd + REF_TIME_TOLERANCE_D]
    if not valid:
        return []
    latest = max(r.ref_time for r in valid)
    return [r for r in valid if latest - r.ref_time <= REF_TIME_TOLERANCE_D]


def _order(rows: Iterable[CifRow]) -> list[CifRow]:
    return sorted(rows, key=lambda r: (-r.ref_time, r.cal_cnam, r.cal_dir, r.cal_file, r.cal_xno))


def quzcif(
    rows: Iterable[CifRow],
    telescop: str,
    instrume: str,
    codename: str = "-",
    detnam: str = "-",
    filter: str = "-",
    date: DateLike = "now",
    time: str | None = None,
    expr: str | None = None,
    *,
    quality: int | None = 0,
    now: datetime | None = None,
) -> list[CifRow]:
    """Return the rows a HEASoft ``quzcif`` query selects (possibly none).

    Parameters
    ----------
    rows : iterable of CifRow
        The index.
    telescop, instrume : str
        Mission and instrument (exact, case-insensitive).
    codename, detnam, filter : str
        Code name, detector, filter; ``-`` skips the selection, ``NONE`` on either side
        matches.
    date, time : see :func:`requested_mjd`
        Observation date (``'now'``, ``'-'``, ISO date or datetime).
    expr : str, optional
        Boundary expression such as ``'energy.eq.5.and.theta.le.10'``.
    quality : int or None
        CAL_QUAL selected (default 0; None for all).
    now : datetime, optional
        Pins ``'now'`` (tests).

    Returns
    -------
    list of CifRow
        Latest REF_TIME first, then by code name, directory, file and extension.
    """
    q = CaldbQuery(telescop, instrume, codename, detnam, filter, date, time, expr, quality)
    expression = q.expression()
    mjd = q.mjd(now)
    static = [r for r in rows if _static_match(r, q, expression)]
    return _order(_latest(static, mjd))


def _diagnose(rows: Sequence[CifRow], q: CaldbQuery, mjd: float | None) -> str:
    """Say why nothing matched: unknown code name, or every file starts too late."""
    inst = [r for r in rows if r.instrume.upper() == q.instrume.upper() and r.telescop.upper() == q.telescop.upper()]
    if not inst:
        return f"no {q.telescop} {q.instrume} dataset in the index"
    if q.codename != "-":
        named = [r for r in inst if _match_none_or_equal(q.codename, r.cal_cnam)]
        if not named:
            known = sorted({r.cal_cnam for r in inst})
            return f"code name {q.codename.upper()} not in the index (known: {', '.join(known)})"
        good = [r for r in named if q.quality is None or r.cal_qual == q.quality]
        if not good:
            return f"every {q.codename.upper()} dataset has CAL_QUAL != {q.quality}"
        if mjd is not None:
            first = min(r.ref_time for r in good)
            if first > mjd + REF_TIME_TOLERANCE_D:
                return f"the first {q.codename.upper()} dataset is valid from {_describe_date(first)}"
    return "no dataset satisfies the DETNAM/FILTER/boundary selection"


def select(
    rows: Sequence[CifRow],
    query: CaldbQuery,
    *,
    unique: bool = False,
    now: datetime | None = None,
) -> list[CifRow]:
    """Like :func:`quzcif`, but raise when nothing (or, with ``unique``, several) match.

    Parameters
    ----------
    rows : sequence of CifRow
        The index.
    query : CaldbQuery
        What to select.
    unique : bool
        Exactly one dataset (file and extension) is required.
    now : datetime, optional
        Pins ``'now'``.

    Raises
    ------
    MXTCaldbNotFound
        When no row matches; the message names instrument, code name, date and
        expression, and says why (unknown code name, not yet valid, ...).
    MXTCaldbAmbiguous
        With ``unique=True`` when several datasets match; lists them.
    """
    rows = list(rows)
    mjd = query.mjd(now)
    found = quzcif(
        rows, query.telescop, query.instrume, query.codename, query.detnam, query.filter,
        query.date, query.time, query.expr, quality=query.quality, now=now,
    )  # fmt: skip
    if not found:
        raise MXTCaldbNotFound(
            f"no calibration file for {query.describe(mjd)}: {_diagnose(rows, query, mjd)}"
        )
    if unique:
        distinct = {(r.relpath, r.cal_xno) for r in found}
        if len(distinct) > 1:
            listing = ", ".join(f"{p}[{x}]" for p, x in sorted(distinct))
            raise MXTCaldbAmbiguous(
                f"{len(distinct)} datasets match {query.describe(mjd)}: {listing}; "
                "narrow the query with DETNAM, FILTER or a boundary expression"
            )
    return found
