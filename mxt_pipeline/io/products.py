"""Read and write the domain objects of :mod:`mxt_pipeline.datamodel` as products.

One pair of functions per product type; each is a few lines over
:func:`~mxt_pipeline.io.fits.write_product` and :func:`~mxt_pipeline.io.fits.read_product`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mxt_pipeline import constants as C
from mxt_pipeline.datamodel import (
    GTI,
    AngleTable,
    Attitude,
    EventList,
    GapList,
    RawHits,
    SAAIntervals,
)
from mxt_pipeline.errors import MXTError, MXTInputError
from mxt_pipeline.io.fits import read_product, write_product

__all__ = [
    "write_raw_hits",
    "read_raw_hits",
    "write_attitude",
    "read_attitude",
    "write_saa",
    "read_saa",
    "write_angles",
    "read_angles",
    "write_events",
    "read_events",
    "sky_column_keywords",
    "check_events_in_gti",
    "check_attitude_rows",
    "located",
]

PathLike = str | os.PathLike[str]


@contextlib.contextmanager
def located(path: PathLike) -> Iterator[None]:
    """Name ``path`` in an MXTError raised without a file (by the in-memory models).

    The datamodel classes check their content (sorted times, unit quaternions, ...)
    without knowing where it came from; a reader adds the file so that the message
    says which file to fix.
    """
    try:
        yield
    except MXTError as exc:
        if exc.file is not None:
            raise
        try:
            new = type(exc)(exc.message, file=path, hdu=exc.hdu, column=exc.column, keyword=exc.keyword)
        except TypeError:  # a subclass with another signature
            new = MXTInputError(exc.message, file=path, hdu=exc.hdu, column=exc.column, keyword=exc.keyword)
        raise new from exc


def _time_range(*arrays: np.ndarray, gti: GTI | None = None) -> tuple[float | None, float | None]:
    if gti is not None and len(gti):
        return gti.tstart, gti.tstop
    vals = [np.asarray(a, dtype=float) for a in arrays if len(a)]
    if not vals:
        return None, None
    return float(min(v.min() for v in vals)), float(max(v.max() for v in vals))


def _meta_keys(meta: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: meta[k] for k in keys if k in meta}


# ---- L1 raw ------------------------------------------------------------------------------


def write_raw_hits(path: PathLike, hits: RawHits) -> Path:
    """Write one pass of raw hits as an L1 raw event file.

    ``hits.meta`` must hold OBS_ID, PASS_ID and STATION; FRAMETIM defaults to 0.1 s.
    """
    tstart, tstop = _time_range(hits["TIME"], gti=hits.gti)
    if tstart is None:
        tstart = tstop = 0.0
    header = _meta_keys(hits.meta, ("OBS_ID",))
    primary = _meta_keys(hits.meta, ("PASS_ID", "STATION", "OBJECT"))
    return write_product(
        path,
        "MXT_L1_RAW",
        {"EVENTS": hits.table, "GTI": hits.gti.to_table()},
        header={**header, **primary},
        hdu_headers={"EVENTS": {"FRAMETIM": float(hits.meta.get("FRAMETIM", C.FRAME_TIME_S))}},
        tstart=tstart,
        tstop=tstop,
    )


def read_raw_hits(path: PathLike) -> RawHits:
    """Read an L1 raw event file (validated)."""
    with located(path):
        prod = read_product(path, "MXT_L1_RAW")
        hdr = prod.primary_header
        meta = {k: hdr[k] for k in ("OBS_ID", "PASS_ID", "STATION", "OBJECT") if k in hdr}
        meta["FRAMETIM"] = float(prod.header("EVENTS").get("FRAMETIM", C.FRAME_TIME_S))
        meta["FILE"] = str(path)
        hits = RawHits(prod.table("EVENTS"), gti=GTI.from_table(prod.table("GTI")), meta=meta)
        check_events_in_gti(hits.table["TIME"], hits.gti, path)
        return hits


def check_events_in_gti(times: np.ndarray, gti: GTI, path: PathLike, hdu: str = "EVENTS") -> None:
    """Refuse an event list none of whose events lies in its own good time.

    Such a file is self-contradictory (its times and its GTI disagree: a wrong time
    origin, a GTI of another pass); processed, it would give an empty event list with
    the full GTI as exposure and exit SUCCESS, a silently wrong result.  A file
    without any event, or without any good time, is legal.

    Raises
    ------
    MXTInputError
        Naming the file, the HDU and both time ranges.
    """
    times = np.asarray(times, dtype=np.float64)
    if times.size == 0 or len(gti) == 0:
        return
    start, stop = np.asarray(gti.start, dtype=np.float64), np.asarray(gti.stop, dtype=np.float64)
    order = np.argsort(start)
    start, stop = start[order], stop[order]
    k = np.searchsorted(start, times, side="right") - 1
    inside = (k >= 0) & (times <= stop[np.clip(k, 0, None)])
    if not inside.any():
        raise MXTInputError(
            f"none of the {times.size} events (TIME {times.min():.3f}..{times.max():.3f}) lies in the file's own "
            f"GTI ({start[0]:.3f}..{stop.max():.3f}): times and GTI disagree",
            file=path, hdu=hdu, column="TIME",
        )  # fmt: skip


def check_attitude_rows(att: Attitude, path: PathLike) -> None:
    """Refuse an attitude file without any sample: no pointing can be derived from it."""
    if len(att.table) == 0:
        raise MXTInputError(
            "the attitude table has no row: no pointing can be derived", file=path, hdu="ATTITUDE"
        )


# ---- auxiliary ------------------------------------------------------------------------------


def write_attitude(path: PathLike, att: Attitude) -> Path:
    """Write an attitude file."""
    tstart, tstop = _time_range(att["TIME"])
    return write_product(
        path, "MXT_ATT", {"ATTITUDE": att.table}, header=_meta_keys(att.meta, ("OBS_ID",)),
        tstart=tstart, tstop=tstop,
    )


def read_attitude(path: PathLike) -> Attitude:
    """Read an attitude file (validated)."""
    with located(path):
        prod = read_product(path, "MXT_ATT")
        att = Attitude(prod.table("ATTITUDE"), meta={"OBS_ID": prod.primary_header.get("OBS_ID"), "FILE": str(path)})
        check_attitude_rows(att, path)
        return att


def write_saa(path: PathLike, saa: SAAIntervals, week: int) -> Path:
    """Write the SAA file of one week (WEEK counts weeks since MJDREF)."""
    start = week * 7 * 86400.0
    return write_product(
        path, "MXT_SAA", {"SAA": saa.table}, header={"WEEK": int(week)},
        tstart=start, tstop=start + 7 * 86400.0,
    )


def read_saa(path: PathLike) -> SAAIntervals:
    """Read one weekly SAA file (validated)."""
    with located(path):
        prod = read_product(path, "MXT_SAA")
        return SAAIntervals(prod.table("SAA"), meta={"WEEK": prod.primary_header.get("WEEK"), "FILE": str(path)})


def write_angles(path: PathLike, ang: AngleTable) -> Path:
    """Write an ANG file."""
    tstart, tstop = _time_range(ang["TIME"])
    return write_product(
        path, "MXT_ANG", {"ANG": ang.table}, header=_meta_keys(ang.meta, ("OBS_ID",)),
        tstart=tstart, tstop=tstop,
    )


def read_angles(path: PathLike) -> AngleTable:
    """Read an ANG file (validated)."""
    with located(path):
        prod = read_product(path, "MXT_ANG")
        return AngleTable(prod.table("ANG"), meta={"OBS_ID": prod.primary_header.get("OBS_ID"), "FILE": str(path)})


# ---- L2 events ------------------------------------------------------------------------------


def sky_column_keywords(ra_nom: float, dec_nom: float, pixel_arcsec: float = C.PIXEL_SCALE_ARCSEC,
                        ref_pix: float = 256.5) -> dict[str, dict[str, Any]]:
    """The column WCS keywords of the sky columns X and Y (tangent plane)."""
    scale = pixel_arcsec / 3600.0
    return {
        "X": {"TCTYP": "RA---TAN", "TCUNI": "deg", "TCRPX": ref_pix, "TCRVL": float(ra_nom), "TCDLT": -scale},
        "Y": {"TCTYP": "DEC--TAN", "TCUNI": "deg", "TCRPX": ref_pix, "TCRVL": float(dec_nom), "TCDLT": scale},
    }


def write_events(path: PathLike, events: EventList) -> Path:
    """Write an L2 event file (EVENTS, GTI, GAPS).

    ``events.meta`` must hold OBS_ID, RA_NOM and DEC_NOM; ONTIME, LIVETIME and EXPOSURE
    default to the GTI sum; the X/Y sky WCS keywords are written from RA_NOM/DEC_NOM.
    """
    meta = events.meta
    tstart, tstop = _time_range(events["TIME"], gti=events.gti)
    if tstart is None:
        tstart = tstop = 0.0
    ontime = float(meta.get("ONTIME", events.gti.exposure))
    evt_hdr = {
        "FRAMETIM": float(meta.get("FRAMETIM", C.FRAME_TIME_S)),
        "ONTIME": ontime,
        "LIVETIME": float(meta.get("LIVETIME", ontime)),
        "EXPOSURE": float(meta.get("EXPOSURE", ontime)),
    }
    header = _meta_keys(meta, ("OBS_ID", "RA_NOM", "DEC_NOM", "OBJECT"))
    return write_product(
        path,
        "MXT_L2_EVT",
        {"EVENTS": events.table, "GTI": events.gti.to_table(), "GAPS": events.gaps.to_table()},
        header=header,
        hdu_headers={"EVENTS": evt_hdr},
        column_keywords={"EVENTS": sky_column_keywords(meta["RA_NOM"], meta["DEC_NOM"])},
        tstart=tstart,
        tstop=tstop,
    )


def read_events(path: PathLike) -> EventList:
    """Read an L2 event file (validated)."""
    with located(path):
        prod = read_product(path, "MXT_L2_EVT")
        hdr = prod.primary_header
        evh = prod.header("EVENTS")
        meta = {k: hdr[k] for k in ("OBS_ID", "RA_NOM", "DEC_NOM", "OBJECT") if k in hdr}
        meta.update({k: evh[k] for k in ("FRAMETIM", "ONTIME", "LIVETIME", "EXPOSURE") if k in evh})
        meta["FILE"] = str(path)
        return EventList(
            prod.table("EVENTS"),
            gti=GTI.from_table(prod.table("GTI")),
            gaps=GapList.from_table(prod.table("GAPS")),
            meta=meta,
        )
