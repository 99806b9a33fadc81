"""The ``MXT_LC`` light-curve product (OGIP/93-003): write and read (the I/O layer).

The light-curve package makes :class:`~mxt_pipeline.lightcurve.rates.LightCurve` objects
in memory; this module is where they meet files.

RATE holds one row per bin with exposure (TIME is the bin centre, TIMEDEL its width);
GTI the good time; GAPS every excluded interval with its origin.  Besides the keywords
the format requires (SRC_ID, RA_OBJ, DEC_OBJ, E_MIN, E_MAX, BINNING), the RATE header
records how the rates were made: PSFFRAC (PSF fraction of the source circle), AREARAT
(source over background area), DEADFRAC (dead fraction of a frame), ERRMETH (error
method), SRCRAD/BKGRIN/BKGROUT (region radii, sky pixels), SRCAREAF (fraction of the
source circle on the chip) and, for GRBs, TRIGTIME (trigger, s since MJDREF).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mxt_pipeline.datamodel import GTI, GapList
from mxt_pipeline.errors import MXTFormatError
from mxt_pipeline.io.fits import read_product, write_product
from mxt_pipeline.lightcurve.rates import LightCurve

__all__ = ["write_light_curve", "read_light_curve", "light_curve_filename", "RATE_KEYWORDS"]

#: Keywords of the RATE header that round-trip through ``LightCurve.meta``.
RATE_KEYWORDS = (
    "SRC_ID", "RA_OBJ", "DEC_OBJ", "E_MIN", "E_MAX", "BINNING", "PSFFRAC", "AREARAT",
    "DEADFRAC", "ERRMETH", "SRCRAD", "BKGRIN", "BKGROUT", "SRCAREAF", "TRIGTIME",
)  # fmt: skip
_PRIMARY_KEYWORDS = ("OBS_ID", "OBJECT")


def light_curve_filename(lc: LightCurve) -> str:
    """The product's usual file name, ``mxt_lc_<OBS_ID>_src<SRC_ID>.fits``."""
    obs = str(lc.meta.get("OBS_ID", "unknown"))
    return f"mxt_lc_{obs}_src{int(lc.meta.get('SRC_ID', 0))}.fits"


def write_light_curve(path: str | os.PathLike[str], lc: LightCurve) -> Path:
    """Write a light curve as an ``MXT_LC`` product (atomically, through the I/O layer).

    ``lc.meta`` must hold SRC_ID, RA_OBJ, DEC_OBJ, E_MIN, E_MAX, BINNING and OBS_ID.
    """
    missing = [k for k in ("OBS_ID", "SRC_ID", "RA_OBJ", "DEC_OBJ", "E_MIN", "E_MAX", "BINNING") if k not in lc.meta]
    if missing:
        raise MXTFormatError(f"light-curve metadata lacks {missing}", file=path, hdu="RATE")
    header = {k: lc.meta[k] for k in _PRIMARY_KEYWORDS if k in lc.meta}
    rate_hdr = {}
    for key in RATE_KEYWORDS:
        if key in lc.meta:
            value = lc.meta[key]
            rate_hdr[key] = value.item() if isinstance(value, np.generic) else value
    tstart = lc.gti.tstart if len(lc.gti) else (float(lc.lo[0]) if len(lc) else 0.0)
    tstop = lc.gti.tstop if len(lc.gti) else (float(lc.hi[-1]) if len(lc) else 0.0)
    return write_product(
        path,
        "MXT_LC",
        {"RATE": lc.rate_table(), "GTI": lc.gti.to_table(), "GAPS": lc.gaps.to_table()},
        header=header,
        hdu_headers={"RATE": rate_hdr},
        tstart=tstart,
        tstop=tstop,
    )


def read_light_curve(path: str | os.PathLike[str]) -> LightCurve:
    """Read an ``MXT_LC`` product (validated) back into a :class:`LightCurve`.

    Counts and exposure are recovered from the columns: exposure = FRACEXP x TIMEDEL,
    background counts = BKG_RATE x exposure / AREARAT (rounded).
    """
    prod = read_product(path, "MXT_LC")
    rate = prod.table("RATE")
    hdr = prod.header("RATE")
    meta = {k: hdr[k] for k in RATE_KEYWORDS if k in hdr}
    meta.update({k: prod.primary_header[k] for k in _PRIMARY_KEYWORDS if k in prod.primary_header})
    time = np.asarray(rate["TIME"], dtype=float)
    width = np.asarray(rate["TIMEDEL"], dtype=float)
    exposure = np.asarray(rate["FRACEXP"], dtype=float) * width
    bkg_rate = np.asarray(rate["BKG_RATE"], dtype=float)
    area = float(meta.get("AREARAT", 0.0))
    nb = np.rint(bkg_rate * exposure / area).astype(np.int64) if area > 0 else np.zeros(time.size, np.int64)
    return LightCurve(
        lo=time - 0.5 * width,
        hi=time + 0.5 * width,
        counts=np.asarray(rate["COUNTS"], dtype=np.int64),
        bkg_counts=nb,
        exposure=exposure,
        rate=np.asarray(rate["RATE"], dtype=float),
        err_lo=np.asarray(rate["ERR_LO"], dtype=float),
        err_hi=np.asarray(rate["ERR_HI"], dtype=float),
        bkg_rate=bkg_rate,
        bkg_error=np.asarray(rate["BKG_ERROR"], dtype=float),
        gti=GTI.from_table(prod.table("GTI")),
        gaps=GapList.from_table(prod.table("GAPS")),
        meta=meta,
    )
