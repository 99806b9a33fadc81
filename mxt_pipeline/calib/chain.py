"""The calibration chain: L1 raw passes -> L2 calibrated, screened events.

:func:`calibrate` is a pure function on in-memory data; the ``calibrate`` brick
(:mod:`mxt_pipeline.pipelines.bricks.calibrate`) runs it on a dataset's files.  Steps:

1. ingest (:mod:`.ingest`): merge the passes, drop duplicated frames, sort;
2. screening (:mod:`.screening`): GTI = pass coverage minus SAA, Earth, slew, missing
   attitude and bad frames, each gap with its origin; hits outside the GTI are dropped;
3. bad pixels (:mod:`.badpix`): CALDB list + hot pixels found in the data;
4. hit energies (:mod:`.energy`): gain/offset of the column, CTI of the row;
5. events (:mod:`.patterns`): split/primary thresholds, 8-connected grouping, pattern
   codes, multiplicity;
6. event energies: sum of the hits, multiplicity correction, PI;
7. STATUS bits; coordinates (:mod:`.coordinates`): DET, RA/Dec, sky X/Y from the charge
   centroid of the event, the teldef and the attitude at the event time.
"""

from __future__ import annotations

import logging
import time as _time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from astropy.table import Table

from mxt_pipeline import constants as C
from mxt_pipeline.calib import _kernels
from mxt_pipeline.calib import badpix as bp
from mxt_pipeline.calib.coordinates import event_coordinates
from mxt_pipeline.calib.energy import (
    CTIInverseTable,
    dither_for_keys,
    event_energies,
    hit_energies,
    pi_channels,
)
from mxt_pipeline.calib.ingest import IngestReport, merge_passes
from mxt_pipeline.calib.patterns import MAX_MULTIPLICITY_STORED, pixel_keys, reconstruct
from mxt_pipeline.calib.screening import ScreeningParams, screen
from mxt_pipeline.datamodel import AngleTable, Attitude, EventList, RawHits
from mxt_pipeline.errors import MXTCalibrationError, MXTInputError
from mxt_pipeline.geometry import radec_to_vectors, vectors_to_radec
from mxt_pipeline.io.formats import PATTERN_INVALID, STATUS_BITS

__all__ = ["ChainParams", "CalibrationReport", "calibrate"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChainParams:
    """Settings of one run of the chain.

    Attributes
    ----------
    ra_nom, dec_nom : float, optional
        Nominal pointing (deg) of the sky X/Y tangent plane; default: the mean boresight
        of the attitude.
    obs_id, object : str, optional
        Written in the L2 headers (default: from the L1 files).
    tstart, tstop : float, optional
        Observation span (s); default: the span of the pass coverage.  Time in the span
        not covered by a pass is a TELEMETRY gap.
    split_threshold_kev, primary_threshold_kev : float, optional
        Override the CALDB PATTERN thresholds.
    cti_correction, multiplicity_correction, adc_dither, hot_pixel_search : bool
        Switch steps off (diagnostics and tests).
    hot_pixel_alpha : float
        Nominal false hot-pixel flags per observation (also of each test of the warm
        and flickering pixel and column search).
    warm_pixel_search : bool
        Search the valid events for warm and flickering pixels and columns
        (:func:`mxt_pipeline.calib.badpix.find_warm_pixels`) and flag them HOTPIX.
    screening : ScreeningParams
    """

    ra_nom: float | None = None
    dec_nom: float | None = None
    obs_id: str | None = None
    object: str | None = None
    tstart: float | None = None
    tstop: float | None = None
    split_threshold_kev: float | None = None
    primary_threshold_kev: float | None = None
    cti_correction: bool = True
    multiplicity_correction: bool = True
    adc_dither: bool = True
    hot_pixel_search: bool = True
    hot_pixel_alpha: float = 1e-3
    warm_pixel_search: bool = True
    screening: ScreeningParams = field(default_factory=ScreeningParams)


@dataclass
class CalibrationReport:
    """What the chain did: ingestion, screening, pixels, reconstruction, timing."""

    ingest: IngestReport
    screening: dict[str, Any] = field(default_factory=dict)
    n_hits_outside_gti: int = 0
    n_hits_in_gti: int = 0
    n_caldb_bad_pixels: int = 0
    hot_pixels: list[list[int]] = field(default_factory=list)
    pixel_search: dict[str, Any] = field(default_factory=dict)
    n_hits_below_split: int = 0
    n_components_below_primary: int = 0
    n_events: int = 0
    pattern_counts: dict[int, int] = field(default_factory=dict)
    status_counts: dict[str, int] = field(default_factory=dict)
    thresholds_kev: dict[str, float] = field(default_factory=dict)
    steps: dict[str, bool] = field(default_factory=dict)
    timing_s: dict[str, float] = field(default_factory=dict)

    def to_dict(self, *, include_timing: bool = False) -> dict[str, Any]:
        """The report as a JSON-ready dict.

        ``timing_s`` (wall-clock seconds per step) is left out unless asked for: the
        report is a published product, and two identical runs must write it byte for
        byte the same.  The chain logs the timings instead (the run's log is kept
        beside the collection, not in it).
        """
        d = asdict(self)
        d["pattern_counts"] = {str(k): v for k, v in self.pattern_counts.items()}
        if not include_timing:
            d.pop("timing_s", None)
        return d


# --------------------------------------------------------------------------------------
# Calibration set access
# --------------------------------------------------------------------------------------


def _models(calset) -> dict[str, Any]:
    """The CALDB models the chain uses, from a ``CalibrationSet`` (attributes by code name)."""
    out = {}
    for name in ("teldef", "cti", "gainoff", "multiplicity", "pattern", "badpix"):
        model = getattr(calset, name, None)
        if model is None and name in ("teldef", "gainoff", "pattern"):
            raise MXTCalibrationError(f"the calibration set lacks {name.upper()}", hdu=name.upper())
        out[name] = model
    return out


def _thresholds(pattern, params: ChainParams) -> tuple[float, float]:
    split = params.split_threshold_kev
    primary = params.primary_threshold_kev
    if split is None:
        split = float(pattern.split_threshold)
    if primary is None:
        primary = float(pattern.primary_threshold)
    if not (0 <= split <= primary):
        raise MXTCalibrationError(
            f"thresholds must satisfy 0 <= split ({split}) <= primary ({primary}) keV", hdu="PATTERN"
        )
    return split, primary


def nominal_pointing(attitude: Attitude) -> tuple[float, float]:
    """Mean boresight direction (RA, Dec in deg) of an attitude history (wrap-safe)."""
    if len(attitude) == 0:
        raise MXTInputError("empty attitude", hdu="ATTITUDE")
    v = radec_to_vectors(attitude["RA"], attitude["DEC"]).mean(axis=0)
    ra, dec = vectors_to_radec(v[None, :])
    return float(ra[0]), float(dec[0])


# --------------------------------------------------------------------------------------
# The chain
# --------------------------------------------------------------------------------------


def _frame_index(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start index and number of hits of every frame in hits sorted by frame."""
    if frame.size == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    starts = np.flatnonzero(np.r_[True, frame[1:] != frame[:-1]])
    counts = np.diff(np.r_[starts, frame.size])
    return starts, counts


def _empty_events() -> Table:
    return EventList.empty_table()


def calibrate_hits(
    hits: dict[str, np.ndarray],
    attitude: Attitude,
    models: dict[str, Any],
    *,
    ra_nom: float,
    dec_nom: float,
    split: float,
    primary: float,
    status_map: np.ndarray,
    cti_inverse: CTIInverseTable | None,
    multiplicity_correction: bool = True,
    dither: bool = True,
) -> tuple[Table, dict[str, Any]]:
    """Reconstruction, spectral calibration and coordinates of canonical sorted hits.

    The computational core of the chain (what the benchmark times): no I/O, no
    screening.

    Parameters
    ----------
    hits : dict of ndarray
        TIME, FRAME, RAWY, RAWZ, PHA, sorted by (FRAME, RAWY, RAWZ).
    attitude : Attitude
    models : dict
        ``teldef``, ``gainoff``, ``multiplicity`` (CALDB models).
    ra_nom, dec_nom : float
        Sky tangent point.
    split, primary : float
        Thresholds (keV).
    status_map : ndarray of int32, shape (256, 256)
        STATUS bits per pixel (:func:`mxt_pipeline.calib.badpix.pixel_status_map`).
    cti_inverse : CTIInverseTable or None
        None switches the CTI correction off.
    multiplicity_correction, dither : bool

    Returns
    -------
    table : astropy Table
        The L2 EVENTS columns.
    info : dict
        Reconstruction counts.
    """
    frame = hits["FRAME"]
    y = hits["RAWY"]
    z = hits["RAWZ"]
    pha = hits["PHA"]
    key = pixel_keys(frame, y, z)
    u = dither_for_keys(key) if dither else None
    e_hit = hit_energies(pha, y, z, models["gainoff"], cti_inverse, u)
    rec = reconstruct(frame, y, z, e_hit, split, primary, key=key)
    info = {"n_below_split": rec.n_below_split, "n_below_primary": rec.n_below_primary}
    if rec.n_events == 0:
        return _empty_events(), info
    main = rec.main_hit
    mult = rec.multiplicity
    # Per-event sums of E, E*RAWY, E*RAWZ (charge centroid, continuous RAW: the hit
    # energies weight the pixel centres) and PHA.
    if _kernels.HAVE_NUMBA:
        e_sum, eys, ezs, pha_sum = _kernels.event_sums(rec.event_of_hit, rec.n_events, e_hit, y, z, pha)
    else:
        e_sum = rec.event_sum(e_hit)
        eys = rec.event_sum(e_hit * y)
        ezs = rec.event_sum(e_hit * z)
        pha_sum = rec.event_sum(pha)
    inv = 1.0 / np.where(e_sum > 0, e_sum, 1.0)
    yc = eys * inv
    zc = ezs * inv
    single = mult == 1
    yc[single] = y[main[single]]
    zc[single] = z[main[single]]
    energy = event_energies(e_sum, mult, models["multiplicity"] if multiplicity_correction else None)

    # STATUS: OR of the pixel bits of the hits (only hits with bits set are reduced).
    hit_bits = status_map.ravel()[np.asarray(y, dtype=np.intp) * C.N_PIX + z]
    flagged = np.flatnonzero((hit_bits != 0) & (rec.event_of_hit >= 0))
    status = np.zeros(rec.n_events, dtype=np.int32)
    if flagged.size:
        np.bitwise_or.at(status, rec.event_of_hit[flagged], hit_bits[flagged])
    status[rec.pattern == PATTERN_INVALID] |= STATUS_BITS["INVALID_PATTERN"]
    status[mult > 4] |= STATUS_BITS["PILEUP"]
    status[(energy < C.ENERGY_MIN_KEV) | (energy > C.ENERGY_MAX_KEV)] |= STATUS_BITS["OUT_OF_BAND"]

    t = hits["TIME"][main]
    coords = event_coordinates(yc, zc, t, attitude, models["teldef"], ra_nom, dec_nom)
    table = Table(
        {
            "TIME": t,
            "FRAME": frame[main].astype(np.int32),
            "RAWY": y[main].astype(np.int16),
            "RAWZ": z[main].astype(np.int16),
            "DETY": coords["DETY"].astype(np.float32),
            "DETZ": coords["DETZ"].astype(np.float32),
            "X": coords["X"].astype(np.float32),
            "Y": coords["Y"].astype(np.float32),
            "RA": coords["RA"],
            "DEC": coords["DEC"],
            "PHA": np.rint(pha_sum).astype(np.int32),
            "PI": pi_channels(energy),
            "ENERGY": energy.astype(np.float32),
            "PATTERN": rec.pattern.astype(np.int16),
            "MULTIPLICITY": np.minimum(mult, MAX_MULTIPLICITY_STORED).astype(np.int16),
            "STATUS": status,
        },
        copy=False,
    )
    info["n_events"] = rec.n_events
    return table, info


#: STATUS bits that keep an event out of the warm-pixel search (and of the images).
_SEARCH_REJECT = (STATUS_BITS["BADPIX"] | STATUS_BITS["HOTPIX"] | STATUS_BITS["INVALID_PATTERN"]
                  | STATUS_BITS["OUT_OF_BAND"] | STATUS_BITS["PILEUP"])  # fmt: skip


def _flag_warm_pixels(table: Table, known: np.ndarray, alpha: float) -> dict[str, Any]:
    """Search the valid events for warm and flickering pixels and columns; flag them.

    Events whose main pixel is flagged get HOTPIX (so the detection, the light curves
    and the spectra leave them out, and the detection masks the pixel in its exposure)
    and those whose main pixel neighbours one get NEAR_BADPIX, as for the pixels of the
    first search.  Returns the calibration report's ``pixel_search`` entry.
    """
    status = np.asarray(table["STATUS"])
    sel = (np.asarray(table["PATTERN"]) < PATTERN_INVALID) & ((status & _SEARCH_REJECT) == 0)
    y = np.asarray(table["RAWY"], dtype=np.intp)
    z = np.asarray(table["RAWZ"], dtype=np.intp)
    found = bp.find_warm_pixels(y[sel], z[sel], np.asarray(table["FRAME"])[sel], known, alpha=alpha)
    out = found.to_dict()
    out["n_events_flagged"] = 0
    if found.mask.any():
        new_map = bp.pixel_status_map(known, found.mask | known)
        add = new_map[y, z] & (STATUS_BITS["HOTPIX"] | STATUS_BITS["NEAR_BADPIX"])
        add = np.where(found.mask[y, z], STATUS_BITS["HOTPIX"], add & STATUS_BITS["NEAR_BADPIX"])
        table["STATUS"] = (status | add).astype(status.dtype)
        out["n_events_flagged"] = int(np.count_nonzero(found.mask[y, z] & sel))
    out["n_events_searched"] = int(sel.sum())
    return out


def calibrate(
    raw_hits_list: Sequence[RawHits],
    attitude: Attitude,
    angles: AngleTable | None,
    saa,
    calset,
    params: ChainParams | None = None,
) -> tuple[EventList, CalibrationReport]:
    """Calibrate an observation: L1 raw passes -> L2 event list (pure, in memory).

    Parameters
    ----------
    raw_hits_list : sequence of RawHits
        One per ground-station pass, any order.
    attitude : Attitude
    angles : AngleTable or None
        Earth/Sun/Moon angles (None: no Earth screening possible, the whole span is an
        EARTH gap).
    saa : SAAIntervals, list of them, GTI or None
        SAA passages over the observation (:meth:`SAAArchive.for_range`).
    calset : CalibrationSet
        CALDB models: ``teldef``, ``cti``, ``gainoff``, ``multiplicity``, ``pattern``,
        ``badpix``.
    params : ChainParams, optional

    Returns
    -------
    events : EventList
        EVENTS sorted by time with GTI and GAPS; ``meta`` has OBS_ID, OBJECT, RA_NOM,
        DEC_NOM, FRAMETIM, ONTIME, LIVETIME, EXPOSURE.
    report : CalibrationReport

    Raises
    ------
    MXTInputError
        Inconsistent passes or empty attitude.
    MXTCalibrationError
        Missing calibration models or inconsistent thresholds.
    """
    params = params or ChainParams()
    clock = {}
    t0 = _time.perf_counter()
    models = _models(calset)
    split, primary = _thresholds(models["pattern"], params)

    merged, ingest_report = merge_passes(raw_hits_list)
    report = CalibrationReport(ingest=ingest_report)
    report.thresholds_kev = {"split": split, "primary": primary}
    report.steps = {
        "cti_correction": params.cti_correction,
        "multiplicity_correction": params.multiplicity_correction,
        "adc_dither": params.adc_dither,
        "hot_pixel_search": params.hot_pixel_search,
        "warm_pixel_search": params.warm_pixel_search,
    }
    clock["ingest"] = _time.perf_counter() - t0

    # ---- screening -----------------------------------------------------------------
    t1 = _time.perf_counter()
    hits = {k: np.asarray(merged[k]) for k in ("TIME", "FRAME", "RAWY", "RAWZ", "PHA")}
    frametime = float(merged.meta.get("FRAMETIM", C.FRAME_TIME_S))
    coverage = merged.gti
    tstart = params.tstart if params.tstart is not None else (coverage.tstart if len(coverage) else 0.0)
    tstop = params.tstop if params.tstop is not None else (coverage.tstop if len(coverage) else tstart)
    starts, counts = _frame_index(hits["FRAME"])
    frame_times = hits["TIME"][starts]
    scr = screen(
        coverage, tstart, tstop, attitude, angles, saa,
        frame_times=frame_times, frame_hits=counts, frametime=frametime, params=params.screening,
    )  # fmt: skip
    report.screening = scr.to_dict()
    frame_ok = scr.gti.contains(frame_times)
    hit_ok = np.repeat(frame_ok, counts)
    report.n_hits_outside_gti = int(hit_ok.size - np.count_nonzero(hit_ok))
    if not hit_ok.all():
        hits = {k: v[hit_ok] for k, v in hits.items()}
    report.n_hits_in_gti = int(hits["TIME"].size)
    clock["screening"] = _time.perf_counter() - t1

    # ---- bad and hot pixels ----------------------------------------------------------
    t2 = _time.perf_counter()
    bad = bp.caldb_bad_mask(models["badpix"])
    report.n_caldb_bad_pixels = int(bad.sum())
    hot = np.zeros_like(bad)
    if params.hot_pixel_search and hits["TIME"].size:
        found = bp.find_hot_pixels(bp.pixel_counts(hits["RAWY"], hits["RAWZ"]), bad, alpha=params.hot_pixel_alpha)
        hot = found.mask & ~bad
        report.hot_pixels = found.pixels.tolist()
    status_map = bp.pixel_status_map(bad, hot)
    clock["pixels"] = _time.perf_counter() - t2

    # ---- reconstruction, calibration, coordinates ---------------------------------------
    t3 = _time.perf_counter()
    if params.ra_nom is not None and params.dec_nom is not None:
        ra_nom, dec_nom = float(params.ra_nom), float(params.dec_nom)
    else:
        ra_nom, dec_nom = nominal_pointing(attitude)
    cti_inverse = CTIInverseTable.from_model(models["cti"]) if (params.cti_correction and models["cti"] is not None) else None
    if params.cti_correction and models["cti"] is None:
        raise MXTCalibrationError("CTI correction requested but the calibration set has no CTI", hdu="CTI")
    if params.multiplicity_correction and models["multiplicity"] is None:
        raise MXTCalibrationError(
            "multiplicity correction requested but the calibration set has no MULTIPLICITY", hdu="MULTIPLICITY"
        )
    table, info = calibrate_hits(
        hits, attitude, models, ra_nom=ra_nom, dec_nom=dec_nom, split=split, primary=primary,
        status_map=status_map, cti_inverse=cti_inverse,
        multiplicity_correction=params.multiplicity_correction, dither=params.adc_dither,
    )  # fmt: skip
    clock["events"] = _time.perf_counter() - t3
    if params.warm_pixel_search and len(table):
        t4 = _time.perf_counter()
        report.pixel_search = _flag_warm_pixels(table, bad | hot, params.hot_pixel_alpha)
        clock["warm_pixels"] = _time.perf_counter() - t4
    report.n_hits_below_split = info["n_below_split"]
    report.n_components_below_primary = info["n_below_primary"]
    report.n_events = len(table)
    pat = np.bincount(np.asarray(table["PATTERN"], dtype=np.intp), minlength=PATTERN_INVALID + 1)
    report.pattern_counts = {int(k): int(v) for k, v in enumerate(pat)}
    st = np.asarray(table["STATUS"])
    report.status_counts = {name: int(np.count_nonzero(st & bit)) for name, bit in STATUS_BITS.items()}
    report.timing_s = clock
    log.info("calibration step times: %s", ", ".join(f"{k} {v:.3f} s" for k, v in clock.items()))

    meta = {
        "RA_NOM": ra_nom,
        "DEC_NOM": dec_nom,
        "FRAMETIM": frametime,
        "ONTIME": scr.gti.exposure,
        # Frame-store pnCCD: no dead time between frames (assumption, docs/calibration.md).
        "LIVETIME": scr.gti.exposure,
        "EXPOSURE": scr.gti.exposure,
    }
    obs_id = params.obs_id or merged.meta.get("OBS_ID")
    if obs_id is None:
        raise MXTInputError("no OBS_ID in the L1 files nor in the parameters", keyword="OBS_ID")
    meta["OBS_ID"] = str(obs_id)
    obj = params.object or merged.meta.get("OBJECT")
    if obj:
        meta["OBJECT"] = str(obj)
    events = EventList(table, gti=scr.gti, gaps=scr.gaps, meta=meta)
    return events, report
