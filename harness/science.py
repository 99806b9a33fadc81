"""Science checks of the golden replay: products against the truth and independent computations.

The replay (:mod:`harness.replay`) compares each product with the golden one within
numerical tolerances; it says that something moved, not whether the new value is
wrong.  These checks judge the replayed products on their own, with physical
tolerances stated in ``science`` of ``harness/config.yaml``, so that they stay valid
when a deliberate change (a new background model of the detection) moves the golden
outputs, and so that a fault changing one band, one limit or one interval fails a
check named after that quantity:

``positions``
    Every detected counterpart of a simulated source has ``0 <= RA < 360`` and
    ``|Dec| <= 90`` and lies within ``r90_factor x ERR_R90`` of the truth, measured as
    a great-circle distance (a position given as RA -0.1 or 360.1, or averaged
    across the RA 0/360 seam, fails).
``band_counts``
    For every matched source and every band of the ``BANDS`` extension, the fitted
    ``COUNTS`` of ``SRCBANDS`` against the truth: the source photons detected in that
    band of true energy (``photons_detected_bands`` of ``truth.json``) over the share
    of the PSF on the chip; passes when ``|C - T| <= n_sigma sqrt(COUNTS_ERR^2 + T) +
    systematic T`` (swapping two bands' values fails for a soft or a hard source).
``gti``
    The GTI of the L2 events against the good time rebuilt from the truth, by brute
    force on a time grid: the passes' coverage minus their lost telemetry, minus the
    SAA passages, minus the time the boresight is less than ``min_earth_elev_deg``
    above the limb (linear interpolation of the ANG samples, as documented for the
    screening); the exposure and the symmetric difference must agree to within the
    grid step per boundary.  Each gap origin (SAA, EARTH, TELEMETRY) of the ``GAPS``
    extension is compared the same way.
``lc_exposure``
    The bins of each light curve hold all the good time: the sum of ``FRACEXP x
    TIMEDEL`` equals the GTI exposure times the live fraction.
``lc_limits``
    ``RATE``, ``ERR_LO`` and ``ERR_HI`` recomputed from ``COUNTS``, the background
    counts (``BKG_RATE x exposure / AREARAT``), ``PSFFRAC`` and the exposure with
    :func:`astropy.stats.poisson_conf_interval` (``frequentist-confidence``, one
    sigma: the project's default ``ERRMETH``), combined as the product documents
    (source and background in quadrature, the lower error taking the background's
    upper one).
``lc_snr``
    Constant-S/N bins: every bin holds at least ``min_counts`` counts and reaches the
    target S/N ``(N - a N_b) / sqrt(N + a^2 N_b)`` within ``snr_tolerance`` (a
    segment's last bin, the merged remainder, excepted).
``lc_blocks``
    Bayesian blocks: :func:`astropy.stats.bayesian_blocks` (``events`` fitness, the
    golden's ``p0``) run on the source-circle events measured in good time; the
    blocks must split the events exactly as the product does (same number of
    blocks, same counts, interior edges within ``edge_tol_s``).
``lc_rate``
    The exposure-weighted mean rate of each light curve against the truth: the
    simulated focal-plane rate ``expected_photons`` over the integral of the time
    profile on the source's good time, times the profile averaged over each bin;
    passes within ``n_sigma`` statistical errors plus ``systematic`` (the PSF fraction
    of the source circle, the grade and energy selection).

Each function returns :class:`~harness.results.CheckResult` records of section
``science`` whose name is ``<dataset>:<check>:<item>`` and whose message names the
quantity (band, bin, gap origin) that failed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.results import CheckResult, Status
from mxt_pipeline.geometry import angular_separation_arcsec

__all__ = [
    "CHECKS",
    "DEFAULTS",
    "good_time_grid",
    "positions_check",
    "band_counts_check",
    "gti_check",
    "lc_exposure_check",
    "lc_limits_check",
    "lc_snr_check",
    "lc_blocks_check",
    "lc_rate_check",
    "science_checks",
]

SECTION = "science"
CHECKS = ("positions", "band_counts", "gti", "lc_exposure", "lc_limits", "lc_snr", "lc_blocks", "lc_rate")

#: Tolerances used when the configuration does not state them (``science`` section).
DEFAULTS: dict[str, Any] = {
    "positions": {"r90_factor": 1.0, "match_radius_arcsec": 600.0},
    "band_counts": {"n_sigma": 4.0, "systematic": 0.15},
    "gti": {"min_earth_elev_deg": 10.0, "grid_s": 0.01},
    "lc_limits": {"rtol": 1.0e-5},
    "lc_snr": {"snr_tolerance": 1.0e-6},
    "lc_blocks": {"edge_tol_s": 1.0e-3},
    "lc_rate": {"n_sigma": 4.0, "systematic": 0.15},
}


def _result(dataset: str, check: str, item: str, ok: bool, msg: str, figures: Mapping[str, Any] | None = None,
            details: str = "") -> CheckResult:  # fmt: skip
    return CheckResult(SECTION, f"{dataset}:{check}:{item}", Status.PASS if ok else Status.FAIL, msg,
                       dict(figures or {}), details=details)  # fmt: skip


def _opts(config: Mapping[str, Any], check: str) -> dict[str, Any]:
    return {**DEFAULTS.get(check, {}), **dict(config.get(check) or {})}


# --------------------------------------------------------------------------------------
# Truth helpers
# --------------------------------------------------------------------------------------


def _truth_sources(truth: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [dict(s) for s in truth.get("sources") or []]


def _chip_fraction(src: Mapping[str, Any]) -> float:
    expected = float(src.get("expected_photons") or 0.0)
    on_chip = float(src.get("photons_on_detector") or 0.0)
    return on_chip / expected if expected > 0 and on_chip > 0 else 1.0


def _match(srclist, truth: Mapping[str, Any], radius_arcsec: float) -> list[tuple[dict[str, Any], int | None, float]]:
    """Each in-field truth source with the index of its nearest detection (great circle)."""
    ra = np.asarray(srclist["RA"], float)
    dec = np.asarray(srclist["DEC"], float)
    out = []
    for src in _truth_sources(truth):
        if not src.get("in_fov", True):
            continue
        if ra.size == 0:
            out.append((src, None, math.inf))
            continue
        sep = angular_separation_arcsec(float(src["ra"]), float(src["dec"]), ra, dec)
        j = int(np.argmin(sep))
        out.append((src, j if sep[j] <= radius_arcsec else None, float(sep[j])))
    return out


def _intervals_mask(grid: np.ndarray, intervals: Sequence[Sequence[float]]) -> np.ndarray:
    """Grid points inside any half-open interval ``[a, b)`` (brute force, no interval algebra)."""
    inside = np.zeros(grid.size, bool)
    for a, b in intervals:
        inside |= (grid >= float(a)) & (grid < float(b))
    return inside


def good_time_grid(truth: Mapping[str, Any], ang_time: np.ndarray, ang_elev: np.ndarray, min_elev_deg: float,
                   step: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:  # fmt: skip
    """The good time of a simulated observation on a grid of midpoints, and each bad time.

    Parameters
    ----------
    truth : mapping
        ``truth.json``: ``tstart``, ``tstop``, ``passes`` (start, stop, lost) and
        ``bad_time.saa``.
    ang_time, ang_elev : ndarray
        The ANG samples: time and elevation of the boresight above the limb (deg).
    min_elev_deg : float
        Elevation limit of the screening.
    step : float
        Grid step (s).

    Returns
    -------
    (grid, masks)
        Grid midpoints, and boolean masks ``good``, ``TELEMETRY``, ``SAA``, ``EARTH``.
    """
    t0, t1 = float(truth["tstart"]), float(truth["tstop"])
    n = int(math.ceil((t1 - t0) / step))
    grid = t0 + (np.arange(n) + 0.5) * step
    covered = np.zeros(n, bool)
    for p in truth.get("passes") or []:
        inside = (grid >= float(p["start"])) & (grid < float(p["stop"]))
        inside &= ~_intervals_mask(grid, p.get("lost") or [])
        covered |= inside
    saa = _intervals_mask(grid, (truth.get("bad_time") or {}).get("saa") or [])
    t = np.asarray(ang_time, float)
    elev = np.interp(grid, t, np.asarray(ang_elev, float))
    earth = (elev < min_elev_deg) | (grid < t[0]) | (grid > t[-1])
    masks = {"TELEMETRY": ~covered, "SAA": saa, "EARTH": earth}
    masks["good"] = covered & ~saa & ~earth
    return grid, masks


def _gti_mask(grid: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    return _intervals_mask(grid, list(zip(np.asarray(start, float), np.asarray(stop, float))))


# --------------------------------------------------------------------------------------
# Source list
# --------------------------------------------------------------------------------------


def positions_check(srclist, truth: Mapping[str, Any], dataset: str, config: Mapping[str, Any]) -> list[CheckResult]:
    """Detected positions in range and within their R90 of the truth (great-circle distance)."""
    opts = _opts(config, "positions")
    out = []
    r90 = np.asarray(srclist["ERR_R90"], float)
    ra = np.asarray(srclist["RA"], float)
    dec = np.asarray(srclist["DEC"], float)
    for src, j, sep in _match(srclist, truth, float(opts["match_radius_arcsec"])):
        name = str(src.get("name"))
        if j is None:
            ok = not src.get("detectable", True)
            out.append(_result(dataset, "positions", name, ok, f"source {name}: no detection within "
                               f"{opts['match_radius_arcsec']:.0f}\" (nearest {sep:.0f}\")", {"nearest_arcsec": sep}))  # fmt: skip
            continue
        figs = {"ra": float(ra[j]), "dec": float(dec[j]), "offset_arcsec": sep, "err_r90_arcsec": float(r90[j])}
        if not (0.0 <= ra[j] < 360.0 and -90.0 <= dec[j] <= 90.0):
            out.append(_result(dataset, "positions", name, False,
                               f"source {name}: RA {ra[j]:.6f} / Dec {dec[j]:.6f} outside [0, 360) x [-90, 90]", figs))  # fmt: skip
            continue
        ok = sep <= float(opts["r90_factor"]) * r90[j]
        verb = "within" if ok else "beyond"
        out.append(_result(dataset, "positions", name, ok, f"source {name}: RA {ra[j]:.5f} Dec {dec[j]:.5f}, "
                           f"great-circle offset {sep:.1f}\" {verb} ERR_R90 {r90[j]:.1f}\"", figs))  # fmt: skip
    return out


def _gti_fraction(src: Mapping[str, Any], truth: Mapping[str, Any], gti) -> float:
    """Share of the source's simulated photons emitted inside the GTI (its time profile
    integrated on the GTI over its integral on the source's good time)."""
    from mxt_pipeline.simulate.timeprofiles import profile_from_dict

    if gti is None:
        return 1.0
    profile = profile_from_dict(src.get("profile"))
    start, stop = np.asarray(gti["START"], float), np.asarray(gti["STOP"], float)
    in_gti = float(np.sum(_profile_mean(profile, start, stop, (start, stop)) * (stop - start)))
    norm = _source_norm(profile, src, truth)
    return in_gti * norm / float(src["expected_photons"]) if src.get("expected_photons") else 1.0


def band_counts_check(srclist, bands, srcbands, truth: Mapping[str, Any], dataset: str,
                      config: Mapping[str, Any], gti=None) -> list[CheckResult]:  # fmt: skip
    """Per-band fitted counts of each matched source against the truth's photons per band.

    The truth counts the photons of the whole good time of the source; with ``gti``
    (the L2 GTI) they are scaled to the share of its time profile inside the GTI.
    """
    opts = _opts(config, "band_counts")
    radius = float(_opts(config, "positions")["match_radius_arcsec"])
    n_sigma, sys = float(opts["n_sigma"]), float(opts["systematic"])
    band_of = {int(b): (float(lo), float(hi)) for b, lo, hi in zip(bands["BAND_ID"], bands["E_MIN"], bands["E_MAX"])}
    sb_src = np.asarray(srcbands["SRC_ID"], int)
    sb_band = np.asarray(srcbands["BAND_ID"], int)
    out = []
    for src, j, _ in _match(srclist, truth, radius):
        per_band = src.get("photons_detected_bands")
        if j is None or not per_band:
            continue
        sid = int(srclist["SRC_ID"][j])
        frac = _chip_fraction(src) / _gti_fraction(src, truth, gti)
        for bid, (lo, hi) in sorted(band_of.items()):
            label = f"{lo:g}-{hi:g}"
            item = f"{src.get('name')} band {label} keV"
            if label not in per_band:
                out.append(_result(dataset, "band_counts", item, False, f"truth has no photons in band {label} keV"))
                continue
            rows = np.flatnonzero((sb_src == sid) & (sb_band == bid))
            if rows.size != 1:
                out.append(_result(dataset, "band_counts", item, False,
                                   f"SRCBANDS has {rows.size} row(s) for SRC_ID {sid}, band {label} keV"))  # fmt: skip
                continue
            c = float(srcbands["COUNTS"][rows[0]])
            err = float(srcbands["COUNTS_ERR"][rows[0]])
            expect = float(per_band[label]) / frac
            tol = n_sigma * err + sys * expect
            ok = abs(c - expect) <= tol
            figs = {"counts": c, "counts_err": err, "truth_counts": expect, "tolerance": tol}
            out.append(_result(dataset, "band_counts", item, ok,
                               f"source {src.get('name')} band {label} keV: COUNTS {c:.1f} +- {err:.1f} vs truth "
                               f"{expect:.1f} ({'within' if ok else 'beyond'} {tol:.1f})", figs))  # fmt: skip
    return out


# --------------------------------------------------------------------------------------
# Good time
# --------------------------------------------------------------------------------------


def gti_check(gti, gaps, angles, truth: Mapping[str, Any], dataset: str, config: Mapping[str, Any]) -> list[CheckResult]:
    """The L2 GTI and each gap origin against the good time rebuilt from the truth."""
    opts = _opts(config, "gti")
    step = float(opts["grid_s"])
    grid, masks = good_time_grid(truth, np.asarray(angles["TIME"], float), np.asarray(angles["EARTH_ELV"], float),
                                 float(opts["min_earth_elev_deg"]), step)  # fmt: skip
    out = []

    def compare(item: str, got: np.ndarray, want: np.ndarray, n_bounds: int) -> None:
        tol = step * (n_bounds + 2)
        sym = float(np.count_nonzero(got != want)) * step
        exp_got, exp_want = float(got.sum()) * step, float(want.sum()) * step
        ok = sym <= tol
        figs = {"exposure_s": exp_got, "truth_exposure_s": exp_want, "symmetric_difference_s": sym, "tolerance_s": tol}
        out.append(_result(dataset, "gti", item, ok, f"{item}: {exp_got:.2f} s vs truth {exp_want:.2f} s, symmetric "
                           f"difference {sym:.2f} s ({'within' if ok else 'beyond'} {tol:.2f} s)", figs))  # fmt: skip

    got = _gti_mask(grid, gti["START"], gti["STOP"])
    compare("GTI exposure", got, masks["good"], 2 * len(gti) + 2 * int(np.count_nonzero(np.diff(masks["good"].astype(int)))))
    origins = np.char.strip(np.asarray(gaps["ORIGIN"]).astype(str)) if len(gaps) else np.array([], str)
    for origin in ("TELEMETRY", "SAA", "EARTH"):
        sel = origins == origin
        got = _gti_mask(grid, np.asarray(gaps["START"], float)[sel], np.asarray(gaps["STOP"], float)[sel])
        want = masks[origin]
        compare(f"{origin} gaps", got, want, 2 * int(sel.sum()) + 2 * int(np.count_nonzero(np.diff(want.astype(int)))))
    return out


# --------------------------------------------------------------------------------------
# Light curves
# --------------------------------------------------------------------------------------


def _lc_arrays(rate) -> dict[str, np.ndarray]:
    cols = ("TIME", "TIMEDEL", "RATE", "ERR_LO", "ERR_HI", "FRACEXP", "COUNTS", "BKG_RATE")
    return {c: np.asarray(rate[c], float) for c in cols}


def _bkg_counts(a: Mapping[str, np.ndarray], area: float) -> np.ndarray:
    exposure = a["FRACEXP"] * a["TIMEDEL"]
    return np.round(a["BKG_RATE"] * exposure / area) if area > 0 else np.zeros_like(exposure)


def lc_exposure_check(rate, meta: Mapping[str, Any], gti, dataset: str, item: str) -> list[CheckResult]:
    """The bins of a light curve hold all the good time (times the live fraction)."""
    a = _lc_arrays(rate)
    got = float(np.sum(a["FRACEXP"] * a["TIMEDEL"]))
    live = 1.0 - float(meta.get("DEADFRAC", 0.0) or 0.0)
    want = float(np.sum(np.asarray(gti["STOP"], float) - np.asarray(gti["START"], float))) * live
    ok = abs(got - want) <= 1e-6 * max(want, 1.0)
    return [_result(dataset, "lc_exposure", item, ok, f"{item}: bins hold {got:.4f} s of exposure, GTI {want:.4f} s",
                    {"exposure_s": got, "gti_exposure_s": want})]  # fmt: skip


def lc_limits_check(rate, meta: Mapping[str, Any], dataset: str, item: str, config: Mapping[str, Any]) -> list[CheckResult]:
    """RATE and its limits recomputed with astropy's exact Poisson limits (``frequentist-confidence``)."""
    from astropy.stats import poisson_conf_interval

    method = str(meta.get("ERRMETH", "")).strip().upper()
    if method != "FREQUENTIST":
        return [CheckResult(SECTION, f"{dataset}:lc_limits:{item}", Status.SKIP, f"ERRMETH {method}: no astropy reference")]
    rtol = float(_opts(config, "lc_limits")["rtol"])
    a = _lc_arrays(rate)
    area = float(meta.get("AREARAT", 0.0) or 0.0)
    psf = float(meta.get("PSFFRAC", 1.0) or 1.0)
    n = a["COUNTS"]
    nb = _bkg_counts(a, area)
    scale = a["FRACEXP"] * a["TIMEDEL"] * psf
    lo, hi = poisson_conf_interval(n, interval="frequentist-confidence", sigma=1)
    blo, bhi = poisson_conf_interval(nb, interval="frequentist-confidence", sigma=1)
    want = {
        "RATE": (n - area * nb) / scale,
        "ERR_LO": np.hypot(n - lo, area * (bhi - nb)) / scale,
        "ERR_HI": np.hypot(hi - n, area * (nb - blo)) / scale,
    }
    out = []
    for col, ref in want.items():
        got = a[col]
        bad = np.flatnonzero(np.abs(got - ref) > rtol * np.abs(ref) + 1e-12)
        figs = {"bins": int(got.size), "bins_differing": int(bad.size)}
        if bad.size:
            k = int(bad[0])
            msg = (f"{item}: {col} differs from astropy in {bad.size} of {got.size} bins; first bin {k} "
                   f"(COUNTS {int(n[k])}): {got[k]:.6g} vs {ref[k]:.6g}")  # fmt: skip
        else:
            msg = f"{item}: {col} of {got.size} bins agrees with astropy within rtol {rtol:g}"
        out.append(_result(dataset, "lc_limits", f"{item} {col}", not bad.size, msg, figs))
    return out


def lc_snr_check(rate, meta: Mapping[str, Any], params: Mapping[str, Any], dataset: str, item: str,
                 config: Mapping[str, Any] | None = None) -> list[CheckResult]:  # fmt: skip
    """Constant-S/N bins: each holds ``min_counts`` and reaches the target S/N.

    Counted over the bin's own edges (its counts and background counts in the product),
    every bin reaches the target, except the last bin of each segment: it holds the
    remainder of the segment, merged into it when the remainder alone falls short.
    ``snr_tolerance`` (configuration) only absorbs the rounding of the product's columns.
    """
    if str(meta.get("BINNING", "")).strip().upper() != "SNR":
        return []
    a = _lc_arrays(rate)
    area = float(meta.get("AREARAT", 0.0) or 0.0)
    n = a["COUNTS"]
    nb = _bkg_counts(a, area)
    var = n + area**2 * nb
    snr = np.where(var > 0, (n - area * nb) / np.sqrt(np.where(var > 0, var, 1.0)), 0.0)
    target = float(params.get("target_snr", 3.0))
    min_counts = int(params.get("min_counts", 15))
    # The last bin of a segment (no next bin within max_gap; a segment's only bin too)
    # holds the remainder merged into it and may fall short.
    lo = a["TIME"] - 0.5 * a["TIMEDEL"]
    hi = a["TIME"] + 0.5 * a["TIMEDEL"]
    max_gap = float(params.get("max_gap_s", 1000.0))
    last_of_segment = ~np.r_[lo[1:] - hi[:-1] <= max_gap, False]
    allowance = float(_opts(config or {}, "lc_snr")["snr_tolerance"])
    short = ((n < min_counts) | (snr < target - allowance)) & ~last_of_segment
    bad = np.flatnonzero(short)
    figs = {"bins": int(n.size), "bins_short": int(bad.size), "min_snr": float(snr.min()) if snr.size else 0.0}
    if bad.size:
        k = int(bad[0])
        msg = f"{item}: {bad.size} bin(s) below S/N {target:g} or {min_counts} counts; first bin {k}: {int(n[k])} counts, S/N {snr[k]:.2f}"
    else:
        msg = (f"{item}: every one of {n.size} bins holds >= {min_counts} counts at S/N >= {target:g} - {allowance:g} "
               f"(lowest {figs['min_snr']:.3f})")
    return [_result(dataset, "lc_snr", item, not bad.size, msg, figs)]


def _good_coordinate(t: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Good time elapsed since the first GTI start (times inside the GTIs)."""
    before = np.r_[0.0, np.cumsum(stop - start)[:-1]]
    k = np.clip(np.searchsorted(start, t, side="right") - 1, 0, start.size - 1)
    return before[k] + np.minimum(t - start[k], stop[k] - start[k])


def _real_time(u: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_good_coordinate`; a good-time boundary maps to the later GTI's start."""
    cum = np.cumsum(stop - start)
    before = np.r_[0.0, cum[:-1]]
    k = np.clip(np.searchsorted(cum, u, side="right"), 0, start.size - 1)
    return start[k] + (u - before[k])


def source_circle_events(events, gti, srclist, meta: Mapping[str, Any]) -> np.ndarray:
    """Sorted times of the light curve's events: band, grade, status, GTI and source circle."""
    from mxt_pipeline.lightcurve.extract import DEFAULT_STATUS_MASK, MAX_IMAGING_PATTERN

    sid = int(meta["SRC_ID"])
    row = int(np.flatnonzero(np.asarray(srclist["SRC_ID"], int) == sid)[0])
    x0, y0 = float(srclist["X"][row]), float(srclist["Y"][row])
    t = np.asarray(events["TIME"], float)
    e = np.asarray(events["ENERGY"], float)
    ok = (e >= float(meta["E_MIN"])) & (e < float(meta["E_MAX"]))
    ok &= np.asarray(events["PATTERN"]) <= MAX_IMAGING_PATTERN
    ok &= (np.asarray(events["STATUS"]).astype(np.int64) & DEFAULT_STATUS_MASK) == 0
    ok &= _gti_mask(t, gti["START"], gti["STOP"])
    ok &= np.hypot(np.asarray(events["X"], float) - x0, np.asarray(events["Y"], float) - y0) < float(meta["SRCRAD"])
    return np.sort(t[ok])


def lc_blocks_check(rate, meta: Mapping[str, Any], src_times: np.ndarray, gti, p0: float, dataset: str, item: str,
                    config: Mapping[str, Any]) -> list[CheckResult]:  # fmt: skip
    """Bayesian blocks of the product against :func:`astropy.stats.bayesian_blocks` in good time."""
    from astropy.stats import bayesian_blocks
    from astropy.stats.bayesian_blocks import Events

    if str(meta.get("BINNING", "")).strip().upper() != "BLOCKS":
        return []
    tol = float(_opts(config, "lc_blocks")["edge_tol_s"])
    start, stop = np.asarray(gti["START"], float), np.asarray(gti["STOP"], float)
    u, x = np.unique(_good_coordinate(src_times, start, stop), return_counts=True)
    total = float(np.sum(stop - start))
    # The product's cells reach the GTI bounds (not the first and last events, astropy
    # issue 14017): astropy gets the same cells as zero-count times at both bounds,
    # and the prior of the product's number of cells (the distinct event times).
    ncp = Events(p0=p0).compute_ncp_prior(u.size)
    t_in = np.r_[0.0 if u[0] > 0 else [], u, total if u[-1] < total else []]
    x_in = np.r_[0 if u[0] > 0 else [], x, 0 if u[-1] < total else []]
    edges_u = bayesian_blocks(t_in, x_in, fitness="events", ncp_prior=ncp)
    ref_inner = _real_time(np.asarray(edges_u[1:-1], float), start, stop)
    ref_counts = np.diff(np.r_[0, np.searchsorted(src_times, ref_inner, side="left"), src_times.size])
    a = _lc_arrays(rate)
    lo = a["TIME"] - 0.5 * a["TIMEDEL"]
    inner = lo[1:]
    counts = a["COUNTS"].astype(int)
    figs = {"blocks": int(counts.size), "astropy_blocks": int(ref_counts.size)}
    if counts.size != ref_counts.size:
        msg = (f"{item}: {counts.size} blocks vs {ref_counts.size} from astropy; edges "
               f"{np.round(inner - start[0], 2).tolist()} vs astropy {np.round(ref_inner - start[0], 2).tolist()} (s from the first GTI)")  # fmt: skip
        return [_result(dataset, "lc_blocks", item, False, msg, figs)]
    d_edge = np.abs(inner - ref_inner)
    worst = float(d_edge.max()) if d_edge.size else 0.0
    figs["max_edge_difference_s"] = worst
    ok = worst <= tol and bool(np.all(counts == ref_counts))
    if ok:
        msg = f"{item}: {counts.size} blocks, edges and counts as astropy's (edges within {worst:.2g} s)"
    else:
        k = int(np.argmax(np.r_[d_edge, 0.0] + (counts != ref_counts)))
        msg = (f"{item}: block edges or counts differ from astropy: edge difference up to {worst:.3g} s "
               f"(tolerance {tol:g} s); COUNTS {counts.tolist()} vs astropy {ref_counts.tolist()}; first at block {k}")  # fmt: skip
    return [_result(dataset, "lc_blocks", item, ok, msg, figs)]


def _profile_mean(profile: Any, lo: np.ndarray, hi: np.ndarray, good: tuple[np.ndarray, np.ndarray], n: int = 64) -> np.ndarray:
    """Mean of a time profile over the good time of each bin (midpoint rule on the bin's good part)."""
    out = np.empty(lo.size)
    gs, ge = good
    for i, (a, b) in enumerate(zip(lo, hi)):
        s = np.maximum(gs, a)
        e = np.minimum(ge, b)
        keep = e > s
        if not keep.any():
            out[i] = np.nan
            continue
        tot = 0.0
        dur = 0.0
        for x, y in zip(s[keep], e[keep]):
            t = x + (np.arange(n) + 0.5) * (y - x) / n
            tot += float(np.mean(profile.value(t))) * (y - x)
            dur += y - x
        out[i] = tot / dur
    return out


def _source_norm(profile: Any, src: Mapping[str, Any], truth: Mapping[str, Any], n: int = 4096) -> float:
    """Focal-plane photon rate where the profile is 1: expected photons over the profile's
    integral on the source's good time (span minus SAA and Earth occultation)."""
    t0, t1 = float(truth["tstart"]), float(truth["tstop"])
    grid = t0 + (np.arange(n) + 0.5) * (t1 - t0) / n
    bad = truth.get("bad_time") or {}
    good = ~_intervals_mask(grid, list(bad.get("saa") or []) + list(bad.get("earth") or []))
    integral = float(np.sum(profile.value(grid[good]))) * (t1 - t0) / n
    return float(src["expected_photons"]) / integral if integral > 0 else math.nan


def lc_rate_check(rate, meta: Mapping[str, Any], gti, srclist, truth: Mapping[str, Any], dataset: str, item: str,
                  config: Mapping[str, Any]) -> list[CheckResult]:  # fmt: skip
    """Exposure-weighted mean rate of a light curve against the simulated rate."""
    from mxt_pipeline.simulate.timeprofiles import profile_from_dict

    opts = _opts(config, "lc_rate")
    radius = float(_opts(config, "positions")["match_radius_arcsec"])
    sid = int(meta["SRC_ID"])
    row = int(np.flatnonzero(np.asarray(srclist["SRC_ID"], int) == sid)[0])
    src = next((s for s, j, _ in _match(srclist, truth, radius) if j == row), None)
    if src is None:
        return [_result(dataset, "lc_rate", item, True, f"{item}: SRC_ID {sid} matches no simulated source: no truth rate")]
    a = _lc_arrays(rate)
    lo = a["TIME"] - 0.5 * a["TIMEDEL"]
    hi = a["TIME"] + 0.5 * a["TIMEDEL"]
    exposure = a["FRACEXP"] * a["TIMEDEL"]
    profile = profile_from_dict(src.get("profile"))
    model = _source_norm(profile, src, truth) * _profile_mean(profile, lo, hi, (np.asarray(gti["START"], float),
                                                                              np.asarray(gti["STOP"], float)))  # fmt: skip
    psf = float(meta.get("PSFFRAC", 1.0) or 1.0)
    got = float(np.sum(a["RATE"] * exposure))
    want = float(np.nansum(model * exposure))
    # Statistical error of the net counts, as rate x exposure (source and background).
    area = float(meta.get("AREARAT", 0.0) or 0.0)
    sigma = math.sqrt(float(np.sum(a["COUNTS"])) + area**2 * float(np.sum(_bkg_counts(a, area)))) / psf
    tol = float(opts["n_sigma"]) * sigma + float(opts["systematic"]) * want
    ok = abs(got - want) <= tol
    tot_exp = float(exposure.sum())
    figs = {"mean_rate": got / tot_exp, "truth_mean_rate": want / tot_exp, "tolerance_rate": tol / tot_exp}
    return [_result(dataset, "lc_rate", item, ok,
                    f"{item} (source {src.get('name')}): mean RATE {got / tot_exp:.4g} ct/s vs truth {want / tot_exp:.4g} "
                    f"({'within' if ok else 'beyond'} {tol / tot_exp:.3g})", figs)]  # fmt: skip


# --------------------------------------------------------------------------------------
# One dataset
# --------------------------------------------------------------------------------------


def _port_files(folder: Path, port: str) -> list[Path]:
    doc = json.loads((folder / "OUTPUTS.json").read_text(encoding="utf-8"))
    return [folder / e["path"] for e in doc["ports"].get(port, [])]


def _params(gdir: Path, brick: str) -> dict[str, Any]:
    """The parameters the golden run of ``brick`` was made with (frozen in the golden data)."""
    path = gdir / "expected" / brick / "OUTPUTS.json"
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text(encoding="utf-8")).get("config", {}).get("params", {}))


def science_checks(dataset: str, gdir: Path, folders: Mapping[str, Path], config: Mapping[str, Any],
                   checks: Sequence[str] | None = None) -> list[CheckResult]:  # fmt: skip
    """Run the science checks of one golden dataset on its replayed brick outputs.

    Parameters
    ----------
    dataset : str
        Dataset name (labels of the results).
    gdir : Path
        The golden dataset (``input/truth.json``, the ANG file, the golden parameters).
    folders : mapping
        Output folder of each replayed brick (``calibrate``, ``detect``,
        ``lightcurves``); a brick without one is checked on its golden output.
    config : mapping
        The ``science`` section of the configuration.
    checks : sequence of str, optional
        Which checks (default: all of :data:`CHECKS`).

    Returns
    -------
    list of CheckResult
    """
    from mxt_pipeline.io import read_product

    wanted = tuple(checks) if checks is not None else CHECKS
    unknown = sorted(set(wanted) - set(CHECKS))
    if unknown:
        return [CheckResult(SECTION, f"{dataset}:config", Status.FAIL, f"unknown science check(s) {unknown}; known: {list(CHECKS)}")]

    def folder(brick: str) -> Path:
        f = folders.get(brick)
        return f if f is not None and (f / "OUTPUTS.json").exists() else gdir / "expected" / brick

    truth = json.loads((gdir / "input" / "truth.json").read_text(encoding="utf-8"))
    out: list[CheckResult] = []
    evt_files = _port_files(folder("calibrate"), "events")
    events = read_product(evt_files[0], "MXT_L2_EVT") if evt_files else None
    src_files = _port_files(folder("detect"), "srclist") if (folder("detect") / "OUTPUTS.json").exists() else []
    sky = read_product(src_files[0], "MXT_SOP_SKY") if src_files else None
    if sky is not None:
        srclist = sky.table("SRCLIST")
        if "positions" in wanted:
            out += positions_check(srclist, truth, dataset, config)
        if "band_counts" in wanted:
            out += band_counts_check(srclist, sky.table("BANDS"), sky.table("SRCBANDS"), truth, dataset, config,
                                     events.table("GTI") if events is not None else None)
    if events is not None and "gti" in wanted:
        manifest = json.loads((gdir / "input" / "dataset.json").read_text(encoding="utf-8"))
        ang_rel = (manifest.get("files") or {}).get("ang")
        ang = read_product(gdir / "input" / ang_rel, "MXT_ANG").table("ANG") if ang_rel else None
        if ang is None:
            out.append(_result(dataset, "gti", "ANG", False, "no ANG file in the golden input: the Earth screening cannot be rebuilt"))
        else:
            out += gti_check(events.table("GTI"), events.table("GAPS"), ang, truth, dataset, config)
    lc_dir = folder("lightcurves")
    lc_files = _port_files(lc_dir, "light_curves") if (lc_dir / "OUTPUTS.json").exists() else []
    params = _params(gdir, "lightcurves")
    for path in lc_files:
        lc = read_product(path, "MXT_LC")
        rate = lc.table("RATE")
        meta = dict(lc.header("RATE"))
        item = path.stem
        gti = events.table("GTI") if events is not None else lc.table("GTI")
        if "lc_exposure" in wanted:
            out += lc_exposure_check(rate, meta, gti, dataset, item)
        if "lc_limits" in wanted:
            out += lc_limits_check(rate, meta, dataset, item, config)
        if "lc_snr" in wanted:
            out += lc_snr_check(rate, meta, params, dataset, item, config)
        if "lc_blocks" in wanted and events is not None and sky is not None:
            t = source_circle_events(events.table("EVENTS"), gti, sky.table("SRCLIST"), meta)
            out += lc_blocks_check(rate, meta, t, gti, float(params.get("p0", 0.05)), dataset, item, config)
        if "lc_rate" in wanted and sky is not None:
            out += lc_rate_check(rate, meta, gti, sky.table("SRCLIST"), truth, dataset, item, config)
    return out
