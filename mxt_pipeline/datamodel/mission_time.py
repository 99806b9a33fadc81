"""Mission time: TT seconds since MJDREF (constants.MJDREFI + MJDREFF), as dates."""

from __future__ import annotations

from astropy.time import Time

from mxt_pipeline import constants as C

__all__ = ["met_to_isot"]


def met_to_isot(met: float) -> str:
    """Convert mission time (TT seconds since MJDREF) to an ISO date in TT.

    Parameters
    ----------
    met : float
        Seconds since MJDREF (TT).

    Returns
    -------
    str
        ``YYYY-MM-DDThh:mm:ss.sss`` in the TT scale (as DATE-OBS with TIMESYS='TT').
    """
    t = Time(C.MJDREFI, C.MJDREFF + float(met) / 86400.0, format="mjd", scale="tt")
    return t.isot
