"""Compare what the pipeline measured with what was simulated, for one run.

The comparison is pure: a ``truth.json`` document (:mod:`mxt_pipeline.io.truth`), the
source list (MXT-SOP-SKY rows) and, when available, light curves and calibrated events
in; a JSON-serialisable record out.  The campaign runner stores that record as the
run's ``result`` (:mod:`mxt_pipeline.campaign.tables` turns records into the
MXT_CAMPAIGN tables) and ``mxt compare`` prints it.

Definitions
-----------
Matching
    One-to-one between simulated sources and detections, minimising the total angular
    distance (:func:`scipy.optimize.linear_sum_assignment`).  A pair is allowed only
    when the distance is at most ``max(match_radius_arcsec, match_r90_factor *
    ERR_R90)``; the defaults, 120" (the localization requirement) and 2 R90, are
    choices of this tool.  Every simulated source takes part, out-of-field ones
    included (their cross arms reach the chip), so a detection of an out-of-field
    source is not a false detection; a detection matched to nothing is false.
Offset
    Great-circle distance from the simulated to the measured position, in arcsec and
    in units of the 90% error radius ``ERR_R90`` (statistical and systematic).
Counts ratio
    Sum over the bands of the fitted COUNTS (counts of the whole PSF) over the true
    counts: the source photons detected during the good time in the detection bands,
    divided by the fraction of the PSF on the chip, when the caller knows them (the
    campaign runs do); else ``photons_detected`` of the truth over the same fraction
    (``photons_on_detector / expected_photons``), times the share of the source's
    simulated time profile that falls in the good time (:func:`good_time_fraction`:
    the truth also counts the photons of slews and screened intervals).
Light curve
    The measured rates against the simulated time profile averaged over the good time
    of each bin, with one free normalisation (weighted least squares): chi-square per
    degree of freedom and its p-value.
Calibration lines
    For each simulated line, the centroid of a Gaussian plus constant fitted to the
    energies of the valid-pattern events (multiplicity-corrected) within
    ``line_window_kev`` of the line, minus the line energy (eV).
Verdicts
    ``PASS``, ``FAIL`` or ``N/A`` per quantity, with the tolerances of
    :class:`Tolerances` (detection: every ``detectable`` in-field source found and no
    false detection; position: every offset within the requirement; flux: every ratio
    within ``3 sigma + flux_systematic`` of 1; light curve: p-value above
    ``lc_min_pvalue``; lines: every residual within ``line_accuracy_ev`` plus 3 sigma).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import optimize, stats

from mxt_pipeline.datamodel import GTI
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.geometry import angular_separation_arcsec, radec_to_vectors
from mxt_pipeline.simulate import timeprofiles
from mxt_pipeline.simulate.ephemeris import Orbit
from mxt_pipeline.simulate.sources import occultation_time

__all__ = [
    "Tolerances",
    "PASS",
    "FAIL",
    "NA",
    "angular_separation_arcsec",
    "match_sources",
    "profile_bin_means",
    "light_curve_vs_profile",
    "good_time_fraction",
    "line_residuals",
    "compare_run",
    "chip_fraction",
]

PASS, FAIL, NA = "PASS", "FAIL", "N/A"

#: Localization requirement (Robinet+2026): better than 2 arcmin.
REQUIREMENT_ARCSEC = 120.0


def chip_fraction(source_truth: Mapping[str, Any]) -> float:
    """Share of a source's focal-plane photons that land on the chip (from its truth).

    ``photons_on_detector / expected_photons``: the PSF arms and halo reach beyond the
    chip, and the detection's COUNTS are counts of the whole PSF.  1 when unknown.
    """
    expected = float(source_truth.get("expected_photons", 0.0) or 0.0)
    on_chip = float(source_truth.get("photons_on_detector", 0.0) or 0.0)
    return on_chip / expected if expected > 0 and on_chip > 0 else 1.0


@dataclass(frozen=True)
class Tolerances:
    """Matching radius and the tolerances of the verdicts (see the module docstring)."""

    match_radius_arcsec: float = REQUIREMENT_ARCSEC
    match_r90_factor: float = 2.0
    requirement_arcsec: float = REQUIREMENT_ARCSEC
    flux_systematic: float = 0.1
    lc_min_pvalue: float = 1e-3
    line_accuracy_ev: float = 20.0
    line_window_kev: float = 0.3

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> Tolerances:
        """Tolerances with the fields found in ``options`` (other keys are ignored)."""
        opts = dict(options or {})
        return cls(**{k: float(opts[k]) for k in asdict(cls()) if k in opts})


def match_sources(
    true_ra: Sequence[float],
    true_dec: Sequence[float],
    found_ra: Sequence[float],
    found_dec: Sequence[float],
    found_r90: Sequence[float] | None = None,
    tol: Tolerances | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Match simulated sources to detections, one to one.

    Returns
    -------
    match : ndarray of int (n_true,)
        Index of the detection matched to each simulated source, -1 for none.
    distance : ndarray (n_true,)
        Its distance in arcsec (NaN for none).
    """
    tol = tol or Tolerances()
    n_t, n_f = len(true_ra), len(found_ra)
    match = np.full(n_t, -1, dtype=int)
    dist = np.full(n_t, np.nan)
    if n_t == 0 or n_f == 0:
        return match, dist
    sep = angular_separation_arcsec(np.asarray(true_ra, float)[:, None], np.asarray(true_dec, float)[:, None],
                                    np.asarray(found_ra, float)[None, :], np.asarray(found_dec, float)[None, :])  # fmt: skip
    r90 = np.zeros(n_f) if found_r90 is None else np.nan_to_num(np.asarray(found_r90, float))
    limit = np.maximum(tol.match_radius_arcsec, tol.match_r90_factor * r90)[None, :]
    allowed = sep <= limit
    # Forbidden pairs cost more than any set of allowed ones, so the assignment takes
    # as many allowed pairs as possible and then the closest.
    big = 1e3 * (np.nanmax(np.where(allowed, sep, 0.0)) + 1.0) * (min(n_t, n_f) + 1)
    rows, cols = optimize.linear_sum_assignment(np.where(allowed, sep, big))
    ok = allowed[rows, cols]
    match[rows[ok]] = cols[ok]
    dist[rows[ok]] = sep[rows[ok], cols[ok]]
    return match, dist


def _intervals(gti) -> tuple[np.ndarray, np.ndarray]:
    if gti is None:
        return np.empty(0), np.empty(0)
    if hasattr(gti, "start") and hasattr(gti, "stop"):
        return np.asarray(gti.start, float), np.asarray(gti.stop, float)
    arr = np.asarray(gti, float).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def profile_bin_means(profile, lo: np.ndarray, hi: np.ndarray, gti=None, n_sub: int = 64) -> np.ndarray:
    """Mean of a time profile over the good time of each bin ``[lo, hi)``.

    The bin is sampled at ``n_sub`` mid-points; samples outside the GTI (when given)
    are left out.  A bin without good samples gets its plain mean.
    """
    lo = np.asarray(lo, float)
    hi = np.asarray(hi, float)
    frac = (np.arange(n_sub) + 0.5) / n_sub
    t = lo[:, None] + (hi - lo)[:, None] * frac[None, :]
    values = np.asarray(profile.value(t.ravel()), float).reshape(t.shape)
    start, stop = _intervals(gti)
    if start.size:
        k = np.searchsorted(start, t, side="right") - 1
        good = (k >= 0) & (t < stop[np.clip(k, 0, None)])
        n_good = good.sum(axis=1)
        mean_good = np.where(good, values, 0.0).sum(axis=1) / np.maximum(n_good, 1)
        return np.where(n_good > 0, mean_good, values.mean(axis=1))
    return values.mean(axis=1)


def simulated_time(truth: Mapping[str, Any], source: Mapping[str, Any]):
    """The time over which the simulator produced a source's photons, as a GTI.

    The bench draws a source's photons only while the camera is on (the observation
    less the SAA passages, ``truth["bad_time"]["saa"]``) and the source itself is above
    the atmosphere (its own Earth occultation, recomputed here from the truth's orbit
    and the source position exactly as :func:`mxt_pipeline.simulate.sources.source_photons`
    does; the boresight's ``bad_time.earth`` when the orbit cannot be rebuilt).  Its
    ``photons_detected`` therefore already leaves these intervals out.
    """
    t0, t1 = float(truth["tstart"]), float(truth["tstop"])
    good = GTI([t0], [t1])
    bad = truth.get("bad_time") or {}
    saa = np.asarray(bad.get("saa") or [], float).reshape(-1, 2)
    if saa.size:
        good = good.subtract(GTI(saa[:, 0], saa[:, 1]))
    try:
        orbit = Orbit(**truth["orbit"])
        direction = radec_to_vectors(float(source["ra"]), float(source["dec"]))[0]
        occ = occultation_time(direction, orbit, t0, t1)
    except (KeyError, TypeError, ValueError, MXTInputError):
        earth = np.asarray(bad.get("earth") or [], float).reshape(-1, 2)
        occ = GTI(earth[:, 0], earth[:, 1]) if earth.size else None
    if occ is not None and len(occ):
        good = good.subtract(occ)
    return good


def good_time_fraction(truth: Mapping[str, Any], source: Mapping[str, Any], gti=None, n: int = 20000) -> float:
    """Fraction of a source's simulated photons that arrive inside the good time.

    The truth's ``photons_detected`` counts the photons the camera detected while it
    was on and the source was above the atmosphere (:func:`simulated_time`), during
    the slews and the screened intervals too; the detection sees only the GTI.  With
    the source's time profile (``truth["sources"][i]["profile"]``) the expected share
    of those photons inside the GTI is the profile integrated over the GTI *within the
    simulated time* over the profile integrated over the simulated time (midpoint rule
    on ``n`` steps), so that every excluded interval (SAA, Earth occultation) is
    counted once: dividing by the whole observation instead removed the occulted and
    SAA time a second time (issue 21, item 7).  1 without a GTI or a profile.
    """
    start, stop = _intervals(gti)
    t0, t1 = truth.get("tstart"), truth.get("tstop")
    if not start.size or not source.get("profile") or t0 is None or t1 is None or not float(t1) > float(t0):
        return 1.0
    t = float(t0) + (np.arange(n) + 0.5) * (float(t1) - float(t0)) / n
    w = np.clip(np.asarray(timeprofiles.profile_from_dict(source["profile"]).value(t), float), 0.0, None)
    if "ra" in source and "dec" in source:
        w = np.where(simulated_time(truth, source).contains(t), w, 0.0)
    k = np.searchsorted(start, t, side="right") - 1
    good = (k >= 0) & (t < stop[np.clip(k, 0, None)])
    total = float(w.sum())
    return float(w[good].sum() / total) if total > 0 else 1.0


def light_curve_vs_profile(lc, profile, gti=None) -> dict[str, Any]:
    """Chi-square of a light curve against a profile with one free normalisation.

    Parameters
    ----------
    lc : LightCurve-like
        ``lo``, ``hi`` and ``rate_chi2`` with ``err_chi2`` (Mighell's chi-square data
        and error); ``rate`` with ``error``, the mean of the two errors, without them.
    profile : TimeProfile
        ``value(t)`` of the simulated source.
    gti : GTI or (n, 2) array, optional
        Good time (default ``lc.gti``).

    Returns
    -------
    dict
        ``chi2``, ``dof``, ``chi2_red``, ``pvalue``, ``norm`` (rate where the profile is
        1), ``n_bins``; NaN figures when fewer than two bins have a positive error.
    """
    lo, hi = np.asarray(lc.lo, float), np.asarray(lc.hi, float)
    # The chi-square error (Mighell 1999 weights) when the light curve has it: the mean
    # of the exact Poisson limits is conservative at low counts (reduced chi-square ~0.9).
    # Mighell's shifted rates go with it (no bias of the fitted normalisation).
    sigma = getattr(lc, "err_chi2", None)
    rate = np.asarray(lc.rate if sigma is None else lc.rate_chi2, float)
    err = np.asarray(lc.error if sigma is None else sigma, float)
    use = np.isfinite(rate) & np.isfinite(err) & (err > 0)
    nan = {"chi2": math.nan, "dof": 0, "chi2_red": math.nan, "pvalue": math.nan, "norm": math.nan,
           "n_bins": int(use.sum())}  # fmt: skip
    if use.sum() < 2:
        return nan
    shape = profile_bin_means(profile, lo[use], hi[use], gti if gti is not None else getattr(lc, "gti", None))
    w = 1.0 / err[use] ** 2
    den = float(np.sum(w * shape**2))
    if den <= 0:
        return nan
    norm = float(np.sum(w * rate[use] * shape) / den)
    chi2 = float(np.sum(w * (rate[use] - norm * shape) ** 2))
    dof = int(use.sum()) - 1
    return {"chi2": chi2, "dof": dof, "chi2_red": chi2 / dof, "pvalue": float(stats.chi2.sf(chi2, dof)),
            "norm": norm, "n_bins": int(use.sum())}  # fmt: skip


def _gauss_const(x, amp, mu, sigma, const):
    return amp * np.exp(-0.5 * ((x - mu) / sigma) ** 2) + const


def line_residuals(
    energy_kev: np.ndarray,
    line_energies_kev: Sequence[float],
    *,
    window_kev: float = 0.3,
    bin_ev: float = 5.0,
    min_counts: int = 50,
) -> list[dict[str, Any]]:
    """Measured centroid of each calibration line and its residual (eV).

    A Gaussian plus a constant is fitted (weighted least squares, Poisson weights) to
    the histogram of ``energy_kev`` within ``window_kev`` of each line.  Lines with
    fewer than ``min_counts`` events in their window, or whose fit fails, get NaN.
    """
    e = np.asarray(energy_kev, float)
    out = []
    for e0 in line_energies_kev:
        e0 = float(e0)
        sel = e[(e >= e0 - window_kev) & (e < e0 + window_kev)]
        rec = {"energy_kev": e0, "measured_kev": math.nan, "residual_ev": math.nan, "error_ev": math.nan,
               "fwhm_ev": math.nan, "n_events": int(sel.size)}  # fmt: skip
        if sel.size >= min_counts:
            edges = np.arange(e0 - window_kev, e0 + window_kev + 1e-9, bin_ev / 1000.0)
            n, _ = np.histogram(sel, edges)
            x = 0.5 * (edges[:-1] + edges[1:])
            mu0 = float(np.median(sel))
            s0 = max(float(stats.median_abs_deviation(sel, scale="normal")), bin_ev / 1000.0)
            p0 = [max(float(n.max()), 1.0), mu0, s0, max(float(np.percentile(n, 10)), 0.0)]
            try:
                p, cov = optimize.curve_fit(_gauss_const, x, n, p0=p0, sigma=np.sqrt(np.maximum(n, 1.0)),
                                            absolute_sigma=True, maxfev=4000)  # fmt: skip
                perr = np.sqrt(np.diag(cov))
                if np.all(np.isfinite(perr)) and abs(p[1] - e0) < window_kev and p[2] > 0:
                    rec.update(measured_kev=float(p[1]), residual_ev=float((p[1] - e0) * 1000.0),
                               error_ev=float(perr[1] * 1000.0), fwhm_ev=float(2.3548 * abs(p[2]) * 1000.0))  # fmt: skip
            except (RuntimeError, ValueError, optimize.OptimizeWarning):
                pass
        out.append(rec)
    return out


def _col(table, name: str, n: int, default: float = math.nan) -> np.ndarray:
    """A column as floats (per-band vectors summed), or ``default`` when absent."""
    if table is None or name not in getattr(table, "colnames", ()):
        return np.full(n, default)
    values = np.asarray(table[name], float)
    return values.reshape(n, -1).sum(axis=1) if n else np.zeros(0)


def _counts_err(table, n: int) -> np.ndarray:
    if table is not None and n and "COUNTS_ERR" in table.colnames:
        return np.sqrt((np.asarray(table["COUNTS_ERR"], float).reshape(n, -1) ** 2).sum(axis=1))
    return np.full(n, math.nan)


def _verdict(flags: Sequence[bool]) -> str:
    return NA if len(flags) == 0 else (PASS if all(flags) else FAIL)


def compare_run(
    truth: Mapping[str, Any],
    srclist,
    *,
    true_counts: Sequence[float] | None = None,
    light_curves: Mapping[int, Any] | None = None,
    events_energy_kev: np.ndarray | None = None,
    gti=None,
    tol: Tolerances | None = None,
) -> dict[str, Any]:
    """Compare the pipeline output of one run with its truth.

    Parameters
    ----------
    truth : mapping
        The ``truth.json`` document of the simulation.
    srclist : astropy Table or None
        Detected sources (SRC_ID, RA, DEC, ERR_R90, COUNTS, COUNTS_ERR, DET_ML).
    true_counts : sequence of float, optional
        Source photons that could have been detected, per simulated source (see the
        module docstring); default ``photons_detected`` of the truth.
    light_curves : mapping SRC_ID -> LightCurve, optional
        Measured light curves of the detections.
    events_energy_kev : ndarray, optional
        Energies of the valid-pattern calibrated events (calibration-line residuals).
    gti : GTI or (n, 2) array, optional
        Good time of the observation (profile averages; default each light curve's).
    tol : Tolerances, optional

    Returns
    -------
    dict
        ``sources`` (one dict per simulated source: ``name``, ``true_ra``,
        ``true_dec``, ``true_counts``, ``offaxis_arcmin``, ``in_fov``, ``detectable``,
        ``found``, ``src_id``, ``found_ra``, ``found_dec``, ``offset_arcsec``,
        ``err_r90_arcsec``, ``offset_r90``, ``counts_ratio``, ``counts_ratio_err``,
        ``det_ml``, ``light_curve``), ``detections`` (SRC_ID, RA, DEC, DET_ML,
        ``matched``: simulated source index or -1), ``n_found``, ``n_false``,
        ``lc_chi2_red`` (of the in-field source with the most true counts that has a
        light curve), ``lines``, ``line_residual_ev`` (largest residual in absolute
        value, sign kept), ``verdicts``.
    """
    tol = tol or Tolerances()
    src_truth = list(truth.get("sources", []))
    n_t = len(src_truth)
    n_f = 0 if srclist is None else len(srclist)
    if true_counts is None:
        t_counts = np.array([float(s.get("photons_detected", 0.0)) / chip_fraction(s) for s in src_truth])
        t_counts = t_counts * np.array([good_time_fraction(truth, s, gti) for s in src_truth])
    else:
        t_counts = np.asarray(true_counts, float)
        if t_counts.shape != (n_t,):
            raise MXTInputError(f"true_counts holds {t_counts.size} values for {n_t} simulated sources")
    f_ra, f_dec = _col(srclist, "RA", n_f), _col(srclist, "DEC", n_f)
    f_r90 = _col(srclist, "ERR_R90", n_f)
    f_counts, f_cerr = _col(srclist, "COUNTS", n_f), _counts_err(srclist, n_f)
    f_ml = _col(srclist, "DET_ML", n_f)
    f_id = _col(srclist, "SRC_ID", n_f, 0.0).astype(int) if n_f else np.zeros(0, int)
    match, dist = match_sources([s["ra"] for s in src_truth], [s["dec"] for s in src_truth], f_ra, f_dec, f_r90, tol)

    sources = []
    for i, s in enumerate(src_truth):
        j = int(match[i])
        found = j >= 0
        rec = {
            "name": s.get("name"),
            "true_ra": float(s["ra"]),
            "true_dec": float(s["dec"]),
            "true_counts": float(t_counts[i]),
            "offaxis_arcmin": float(s.get("offaxis_arcmin", math.nan)),
            "in_fov": bool(s.get("in_fov", False)),
            "detectable": bool(s.get("detectable", False)),
            "found": found,
            "src_id": int(f_id[j]) if found else None,
            "found_ra": float(f_ra[j]) if found else None,
            "found_dec": float(f_dec[j]) if found else None,
            "offset_arcsec": float(dist[i]) if found else None,
            "err_r90_arcsec": float(f_r90[j]) if found else None,
            "offset_r90": float(dist[i] / f_r90[j]) if found and f_r90[j] > 0 else None,
            "counts": float(f_counts[j]) if found else None,
            "counts_ratio": float(f_counts[j] / t_counts[i]) if found and t_counts[i] > 0 else None,
            "counts_ratio_err": float(f_cerr[j] / t_counts[i]) if found and t_counts[i] > 0 else None,
            "det_ml": float(f_ml[j]) if found else None,
            "light_curve": None,
        }
        if found and light_curves and int(f_id[j]) in light_curves and s.get("profile"):
            lc = light_curves[int(f_id[j])]
            rec["light_curve"] = light_curve_vs_profile(lc, timeprofiles.profile_from_dict(s["profile"]), gti)
        sources.append(rec)

    matched_to = np.full(n_f, -1, dtype=int)
    for i, j in enumerate(match):
        if j >= 0:
            matched_to[j] = i
    detections = [
        {"src_id": int(f_id[j]), "ra": float(f_ra[j]), "dec": float(f_dec[j]), "det_ml": float(f_ml[j]),
         "err_r90_arcsec": float(f_r90[j]), "matched": int(matched_to[j])}  # fmt: skip
        for j in range(n_f)
    ]
    n_false = int(np.sum(matched_to < 0))
    n_found = int(np.sum(match >= 0))

    lc_src = [r for r in sources if r["in_fov"] and r["light_curve"] and np.isfinite(r["light_curve"]["chi2_red"])]
    lc_best = max(lc_src, key=lambda r: r["true_counts"])["light_curve"] if lc_src else None

    lines: list[dict[str, Any]] = []
    cal = (truth.get("background") or {}).get("calibration") or {}
    line_e = [float(ln["energy"]) for ln in cal.get("lines", []) if float(ln.get("rate", 0.0)) > 0]
    if events_energy_kev is not None and line_e:
        lines = line_residuals(events_energy_kev, line_e, window_kev=tol.line_window_kev)
    good_lines = [ln for ln in lines if np.isfinite(ln["residual_ev"])]
    worst = max(good_lines, key=lambda ln: abs(ln["residual_ev"]))["residual_ev"] if good_lines else None

    infield = [r for r in sources if r["in_fov"]]
    verdicts = {
        "detection": _verdict([r["found"] for r in infield if r["detectable"]] + [n_false == 0]),
        "position": _verdict([r["offset_arcsec"] <= tol.requirement_arcsec for r in infield if r["found"]]),
        "flux": _verdict([
            abs(r["counts_ratio"] - 1.0) <= 3.0 * (r["counts_ratio_err"] or 0.0) + tol.flux_systematic
            for r in infield if r["found"] and r["counts_ratio"] is not None
        ]),  # fmt: skip
        "light_curve": _verdict([r["light_curve"]["pvalue"] >= tol.lc_min_pvalue for r in lc_src]),
        "calibration_lines": _verdict([
            abs(ln["residual_ev"]) <= tol.line_accuracy_ev + 3.0 * ln["error_ev"] for ln in good_lines
        ]),  # fmt: skip
    }
    return {
        "sources": sources,
        "detections": detections,
        "n_found": n_found,
        "n_false": n_false,
        "lc_chi2_red": None if lc_best is None else lc_best["chi2_red"],
        "lc_pvalue": None if lc_best is None else lc_best["pvalue"],
        "lines": lines,
        "line_residual_ev": worst,
        "verdicts": verdicts,
        "tolerances": asdict(tol),
    }
