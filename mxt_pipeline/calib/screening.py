"""Time screening: good time intervals from pass coverage, SAA, Earth, attitude, bad frames.

Every excluded interval keeps its origin (:class:`~mxt_pipeline.datamodel.GapList`,
origins from :data:`mxt_pipeline.constants.GAP_ORIGINS`); gaps of different origins may
overlap and are all kept, so a light curve can say why each stretch is missing.

* **TELEMETRY**: time inside the observation ``[tstart, tstop)`` not covered by any
  downlinked pass (union of the L1 GTIs).
* **SAA**: passages listed by the weekly SAA files of the science database, requested
  by week number ``floor(MET / 604800)`` from a local folder or a URL
  (:class:`mxt_pipeline.services.saa.SAAArchive`); this module takes the intervals,
  never the files.
* **EARTH**: boresight less than ``min_earth_elev_deg`` above the Earth limb (ANG file,
  linear interpolation between samples).
* **SLEW**: boresight moving faster than ``max_slew_rate_arcsec_s`` between attitude
  samples (the attitude is not settled: events would be smeared).
* **ATTITUDE**: no attitude knowledge: before the first or after the last sample, or
  between samples more than ``max_attitude_gap_s`` apart (interpolation not trusted).
* **BADFRAME**: frames with more than ``max_hits_per_frame`` hits (particle showers,
  readout faults; an X-ray frame of MXT holds a few tens of hits at most).

Default limits (:class:`ScreeningParams`) are assumptions of this pipeline, not mission
values: Earth elevation 10 deg (a margin above the limb, whose X-ray-opaque atmosphere
would otherwise occult the field), slew rate 30 arcsec/s (3" of motion in a 100 ms
frame, a fifth of a 13.6" pixel), attitude sample gap 60 s, 2000 hits per frame (3 % of
the pixels; an X-ray frame holds a few tens of hits at most).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mxt_pipeline.datamodel import GTI, AngleTable, Attitude, GapList, SAAIntervals
from mxt_pipeline.errors import MXTInputError

__all__ = [
    "ScreeningParams",
    "ScreeningResult",
    "saa_bad_time",
    "attitude_bad_times",
    "bad_frame_time",
    "screen",
]


@dataclass(frozen=True)
class ScreeningParams:
    """Limits of the time screening (see the module docstring for their justification)."""

    min_earth_elev_deg: float = 10.0
    max_slew_rate_arcsec_s: float = 30.0
    max_attitude_gap_s: float = 60.0
    max_hits_per_frame: int = 2000


@dataclass
class ScreeningResult:
    """Good time and gaps of an observation."""

    gti: GTI
    gaps: GapList
    tstart: float
    tstop: float
    exposure_by_origin: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "tstart": self.tstart,
            "tstop": self.tstop,
            "ontime": self.gti.exposure,
            "n_gti": len(self.gti),
            "lost_by_origin": self.exposure_by_origin,
        }


def saa_bad_time(saa) -> GTI:
    """Union of SAA passages: one SAAIntervals, a list of them, or a GTI (None: none)."""
    if saa is None:
        return GTI.empty()
    if isinstance(saa, GTI):
        return saa
    if isinstance(saa, SAAIntervals):
        saa = [saa]
    out = GTI.empty()
    for s in saa:
        out = out.union(s.as_bad_time() if isinstance(s, SAAIntervals) else s)
    return out


def attitude_bad_times(attitude: Attitude, tstart: float, tstop: float, params: ScreeningParams) -> tuple[GTI, GTI]:
    """(SLEW, ATTITUDE) bad times inside ``[tstart, tstop)``.

    SLEW: consecutive samples whose boresight rate exceeds the limit.  ATTITUDE: times
    outside the sampled span and sample gaps longer than ``max_attitude_gap_s``.
    """
    t = np.asarray(attitude["TIME"], dtype=float)
    window = GTI([tstart], [tstop])
    if t.size == 0:
        return GTI.empty(), window
    known = GTI([t[0]], [t[-1]]) if t.size > 1 else GTI.empty()
    if t.size > 1:
        dt = np.diff(t)
        long_gap = dt > params.max_attitude_gap_s
        known = known.subtract(GTI(t[:-1][long_gap], t[1:][long_gap]))
    no_att = window.subtract(known) if len(known) else window
    if t.size > 1:
        fast = known.subtract(attitude.stable(params.max_slew_rate_arcsec_s))
        slew = fast.intersect(window)
    else:
        slew = GTI.empty()
    return slew, no_att


def earth_bad_time(angles: AngleTable | None, tstart: float, tstop: float, params: ScreeningParams) -> GTI:
    """Time with the boresight below the Earth-elevation limit, inside ``[tstart, tstop)``.

    Without ANG samples covering a time, that time is counted as bad (unknown Earth
    position is not good time).
    """
    window = GTI([tstart], [tstop])
    if angles is None or len(angles) == 0:
        return window
    good = angles.above_limb(params.min_earth_elev_deg)
    return window.subtract(good)


def bad_frame_time(frame_times: np.ndarray, frame_hits: np.ndarray, frametime: float, max_hits: int) -> GTI:
    """Intervals ``[t, t + FRAMETIM)`` of frames with more than ``max_hits`` hits."""
    t = np.asarray(frame_times, dtype=float)
    bad = np.asarray(frame_hits) > max_hits
    return GTI(t[bad], t[bad] + frametime)


def screen(
    coverage: GTI,
    tstart: float,
    tstop: float,
    attitude: Attitude,
    angles: AngleTable | None,
    saa,
    *,
    frame_times: np.ndarray | None = None,
    frame_hits: np.ndarray | None = None,
    frametime: float = 0.1,
    params: ScreeningParams | None = None,
) -> ScreeningResult:
    """Good time of an observation and every gap with its origin.

    Parameters
    ----------
    coverage : GTI
        Union of the GTIs of the downlinked passes.
    tstart, tstop : float
        Observation span (the manifest's TSTART/TSTOP, or the coverage span).
    attitude : Attitude
    angles : AngleTable or None
    saa : SAAIntervals, list of them, GTI or None
        SAA passages (:meth:`mxt_pipeline.services.saa.SAAArchive.for_range`).
    frame_times, frame_hits : ndarray, optional
        Time and number of hits of every frame (for BADFRAME).
    frametime : float
        Frame duration (s).
    params : ScreeningParams, optional

    Returns
    -------
    ScreeningResult
        ``gti`` = coverage minus every bad time; ``gaps`` = each bad time with its
        origin, clipped to ``[tstart, tstop)``.
    """
    if not (np.isfinite(tstart) and np.isfinite(tstop)) or tstop < tstart:
        raise MXTInputError(f"bad observation span [{tstart}, {tstop}]", keyword="TSTART/TSTOP")
    params = params or ScreeningParams()
    window = GTI([tstart], [tstop])
    bad = {
        "TELEMETRY": window.subtract(coverage) if len(coverage) else window,
        "SAA": saa_bad_time(saa).intersect(window),
        "EARTH": earth_bad_time(angles, tstart, tstop, params),
    }
    bad["SLEW"], bad["ATTITUDE"] = attitude_bad_times(attitude, tstart, tstop, params)
    if frame_times is not None and frame_hits is not None:
        bad["BADFRAME"] = bad_frame_time(frame_times, frame_hits, frametime, params.max_hits_per_frame).intersect(window)
    gti = coverage.intersect(window)
    gaps = GapList.empty()
    for origin, b in bad.items():
        gti = gti.subtract(b)
        gaps = gaps.concat(GapList.from_bad_time(b, origin))
    lost = {origin: b.exposure for origin, b in bad.items()}
    return ScreeningResult(gti=gti, gaps=gaps, tstart=float(tstart), tstop=float(tstop), exposure_by_origin=lost)
