"""Monte-Carlo validation of the detection, and calibration of its DET_ML threshold.

``python -m mxt_pipeline.acceptance.detection --n 200 --out reports/detection-validation.json``

Every observation is simulated from the model the detection fits: Poisson draws of the
expected band images (PSF of the band from the CALDB, the relative exposure of the chip
with the CALDB bad pixels, a flat background), on the 256 x 256 DET grid of the CALDB
TELDEF, with the optical axis at its nominal place.  Each case has its own stream of
random numbers (``numpy.random.SeedSequence(seed).spawn``), so results do not depend on
the number of worker processes.

Cases and what is measured (the acceptance criteria of the detection):

* ``onaxis_<N>`` for N = 50, 100, 300, 1000 source counts (0.2-10 keV, split over the
  bands as a power law of photon index 2 through the effective area), at a random
  sub-pixel position near the optical axis: the detection efficiency; the fraction of
  the DETECTED runs with the true position inside the statistical R90 (required
  90 +/- 3%, rule :data:`COVERAGE_RULE`; the simulation has no systematic error, so the
  CALDB systematic is not added; an R90 exists only for a detection), with the same
  fraction over all runs (a miss where the source is not detected) reported beside it
  for information; the median offset of the detected runs against the Cramer-Rao bound
  of the same observation (required within 1.2x); on the first ``n_reference`` runs,
  the agreement of the ML position with an independent MIGRAD fit of the dense model
  (required within 1% of the error radius).  With ``--min-detected K`` each on-axis
  case keeps drawing observations, continuing the same seed sequence, until K runs
  detect the source (rule :data:`STOPPING_RULE`);
* ``pair``: two sources of 200 counts, 1.5 spot FWHM apart in a random direction: both
  found (a distinct listed source within half a FWHM of each) in at least 90% of runs;
* ``empty``: background only: false sources per field at the default threshold (at
  most 1 per 100 fields);
* ``calibration`` (``--calibrate M``): M further empty fields run with a low threshold;
  every source found there is false; the expected number of false sources per field
  above a threshold t, ``n(t)``, has an exponential tail (DET_ML is minus the log of a
  tail probability), fitted by maximum likelihood above a pivot, and the threshold is
  the t where ``n(t)`` equals the target rate (half the allowed one, for margin);
* ``levels_<N>`` (``--calibrate-levels K``, instead of the validation): on-axis sources
  of N = 50, 70, 100, 150, 300, 1000 counts until K of each are listed, on their own
  random streams; the DET_ML and the dC of the true position of every listed source
  calibrate the dC levels of the position errors (:mod:`mxt_pipeline.detect.levels`),
  written with ``--write-syserr FILE`` as the DCLEVELS table of a CALDB SYSERR file.

Standard background: 0.008 counts per pixel in each band, measured on the simulation
bench itself (:func:`measure_empty_field_background`): the bench's standard
observation is its default GRB/GP case, a 10 ks pointing from a visible orbit
(``simulate.cases.gp_scenario``), whose good time after Earth occultation averages
4870 s (12 seeds, s.e.m. 290 s).  Simulated without sources (CXB and particle
background only, the bench's default ``CXBSettings`` and ``ParticleSettings``),
calibrated by the calibration chain and binned like the detection does (screening,
CALDB bad pixels), such a field gives 1.59e-6 (0.2-2 keV) and 1.67e-6 (2-10 keV) counts
per pixel per second of good time (s.e.m. 2%), i.e. 0.0078 and 0.0081 counts per pixel
over the mean good time: 0.008 in each band, about 520 counts per band over the chip.
Under the 50-pixel spot FWHM of the CALDB PSF (about 2000 pixels) that is about 16
background counts per band.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from astropy.table import Table

from mxt_pipeline import constants as C
from mxt_pipeline.binomial import clopper_pearson
from mxt_pipeline.caldb.products import CalibrationSet, Systematics
from mxt_pipeline.caldb.simulator import load_simulator_calibration as load_calibration
from mxt_pipeline.calib.chain import ChainParams, calibrate
from mxt_pipeline.datamodel import GTI, EventList
from mxt_pipeline.detect.bandpsf import DetectionCalibration
from mxt_pipeline.detect.bands import DEFAULT_BANDS, EnergyBand, format_bands
from mxt_pipeline.detect.blas import single_blas_thread
from mxt_pipeline.detect.crlb import position_bound
from mxt_pipeline.detect.images import (
    SKY_PHOTON_INDEX,
    DetectionImages,
    background_templates,
    build_images,
    chip_coverage,
    detector_grid,
)
from mxt_pipeline.detect.levels import (
    ErrorLevels,
    LevelCalibration,
    LevelFit,
    fit_levels,
    levels_from_fits,
)
from mxt_pipeline.detect.likelihood import BandData
from mxt_pipeline.detect.pipeline import DetectionParameters, detect_in_problem, pixel_scale_arcsec
from mxt_pipeline.detect.positions import profile_function
from mxt_pipeline.detect.problem import BandPSFLike, DetectionProblem
from mxt_pipeline.detect.radii import P_68, P_90
from mxt_pipeline.detect.reference import iminuit_fit
from mxt_pipeline.pipelines.bricks.detect import DETECT
from mxt_pipeline.pipelines.caldb_bundle import provider_from
from mxt_pipeline.simulate.bench import simulate
from mxt_pipeline.simulate.cases import gp_scenario

__all__ = [
    "STANDARD_BACKGROUND",
    "STANDARD_GOOD_TIME",
    "measure_empty_field_background",
    "ONAXIS_COUNTS",
    "ValidationSetup",
    "Listed",
    "BrickDetector",
    "events_from_images",
    "simulate_problem",
    "run_onaxis",
    "run_pair",
    "run_empty",
    "calibrate_threshold",
    "fit_exponential_tail",
    "summarise",
    "runs_needed",
    "next_batch",
    "coverage_verdict",
    "run_all",
    "COVERAGE_RULE",
    "STOPPING_RULE",
    "main",
]

log = logging.getLogger(__name__)

#: Background counts per pixel in each band of the standard validation observation
#: (the bench's empty 10 ks field, module docstring; :func:`measure_empty_field_background`).
STANDARD_BACKGROUND = 0.008
#: Mean good time (s) of the bench's standard 10 ks observation (12 seeds of ``gp_scenario``).
STANDARD_GOOD_TIME = 4870.0
#: Source counts (0.2-10 keV) of the on-axis cases.
ONAXIS_COUNTS = (50, 100, 300, 1000)


def measure_empty_field_background(seeds: Sequence[int], duration: float = 10000.0, caldb=None,
                                   bands: Sequence[EnergyBand] = DEFAULT_BANDS) -> dict:
    """Background of the bench's empty field, per pixel and band (the standard background).

    Each seed simulates the bench's GP field (``simulate.cases.gp_scenario``) without
    sources (CXB and particle background of the bench's defaults), runs the
    calibration chain and bins the events as the detection does
    (:func:`mxt_pipeline.detect.images.build_images`: screening, CALDB bad pixels,
    relative exposure).

    Parameters
    ----------
    seeds : sequence of int
        Seeds of the scenario and of the bench.
    duration : float
        Length of the observation (s); 10 ks is the bench's default GRB/GP case.
    caldb : optional
        CALDB of the simulation and the detection (default: ``$CALDB``, else bundled).
    bands : sequence of EnergyBand

    Returns
    -------
    dict
        ``rate`` (seeds, B): counts per pixel (relative exposure 1) per second of good
        time; ``per_pixel`` (seeds, B): counts per pixel over the observation's good
        time; ``good_time`` (seeds,): seconds.
    """
    rate, per_pixel, good = [], [], []
    for seed in seeds:
        images = bench_empty_field(int(seed), duration=duration, caldb=caldb, bands=bands)
        pix = np.array([c.sum() for c in images.counts], float) / images.exposure.sum()
        per_pixel.append(pix)
        rate.append(pix / images.livetime)
        good.append(images.livetime)
    return {"rate": np.array(rate), "per_pixel": np.array(per_pixel), "good_time": np.array(good)}


# --------------------------------------------------------------------------------------
# Sky-background study (issue 21, items 1 and 5): the bench's own background
# --------------------------------------------------------------------------------------

#: Off-axis cases: a 300-count source at 10', 20', 28' (random azimuth, at least
#: :data:`EDGE_MARGIN` pixels inside the chip) or near a chip edge.
SKY_CASES = ("offaxis_10", "offaxis_20", "offaxis_28", "offaxis_edge")
#: Faint on-axis sources over the standard background and five times it.
FAINT_CASES = ("faint50_bkg1", "faint50_bkg5")
#: Random streams of those cases (apart from CASES and LEVEL_CASES).
SKY_STREAM = 2000
#: Source counts of the off-axis cases.
OFFAXIS_COUNTS = 300.0
#: Least distance (pixels) of an off-axis source from the chip edge; the ``edge`` case
#: puts the source this far inside a random edge.
EDGE_MARGIN = 16.0


@functools.lru_cache(maxsize=4)
def _bench_calibration(caldb, day: int):
    return load_calibration(caldb, met=float(day * 86400.0))


def bench_background(seed: int, scale: float = 1.0, *, duration: float = 10000.0, caldb=None,
                     bands: Sequence[EnergyBand] = DEFAULT_BANDS) -> list[np.ndarray]:
    """Band images of the bench's empty field (vignetted CXB and particles), binned as the
    detection bins them (:func:`measure_empty_field_background`'s observation).

    ``scale`` multiplies the CXB intensity and both particle rates of the bench's
    defaults (5: five times the standard background).
    """
    images = bench_empty_field(seed, scale, duration=duration, caldb=caldb, bands=bands)
    return [np.asarray(c) for c in images.counts]


def bench_empty_field(seed: int, scale: float = 1.0, *, duration: float = 10000.0, caldb=None,
                      bands: Sequence[EnergyBand] = DEFAULT_BANDS) -> DetectionImages:
    """The bench's empty field, simulated, calibrated and binned as the detection bins it.

    The ``gp`` preset's observation of ``seed`` without its sources: vignetted CXB and
    particles, their rates times ``scale``; the calibration chain, then
    :func:`~mxt_pipeline.detect.images.build_images` (screening, CALDB bad pixels,
    relative exposure).
    """
    sc = replace(gp_scenario(int(seed), n_sources=1, duration=float(duration)), sources=[], object="empty field")
    if scale != 1.0:
        sc = replace(sc, cxb=replace(sc.cxb, intensity_2_10=sc.cxb.intensity_2_10 * scale),
                     particle=replace(sc.particle, rate_cm2_s_kev=sc.particle.rate_cm2_s_kev * scale,
                                      mip_rate_cm2_s=sc.particle.mip_rate_cm2_s * scale))  # fmt: skip
    calset, info = _bench_calibration(caldb, int(np.floor(sc.tstart / 86400.0)))
    ds = simulate(sc, int(seed), calset, caldb_info=info)
    chain = ChainParams(ra_nom=float(sc.pointing.ra), dec_nom=float(sc.pointing.dec), obs_id=sc.obs_id,
                        tstart=float(sc.tstart), tstop=float(sc.tstop))  # fmt: skip
    events, _ = calibrate(ds.passes, ds.attitude, ds.angles, list(ds.saa.values()), calset, chain)
    cal = DetectionCalibration.from_calset(calset)
    return build_images(events, bands, cal.teldef, bad_mask=cal.bad_mask, attitude=ds.attitude)


def sky_position(setup: ValidationSetup, case: str, rng: np.random.Generator) -> tuple[float, float]:
    """True DET position of a source of a sky-study case (module constants)."""
    ylo, yhi = setup.y_edges[0] + EDGE_MARGIN, setup.y_edges[-1] - EDGE_MARGIN
    zlo, zhi = setup.z_edges[0] + EDGE_MARGIN, setup.z_edges[-1] - EDGE_MARGIN
    kind = case.split("_")[1]
    if kind == "edge":
        side = int(rng.integers(4))
        along = float(rng.uniform(-0.5, 0.5) * 0.5 * (yhi - ylo))
        return [(ylo, along), (yhi, along), (along, zlo), (along, zhi)][side]
    if case.startswith("faint"):
        y0, z0 = rng.uniform(-0.5, 0.5, 2)
        return float(y0), float(z0)
    theta = float(kind)
    for _ in range(1000):
        phi = rng.uniform(0.0, 2.0 * np.pi)
        # Radius in DET pixels of the off-axis angle along that azimuth (the TELDEF's scale).
        r = theta * 60.0 / C.PIXEL_SCALE_ARCSEC
        for _it in range(3):
            th = float(setup.theta_of(np.r_[r * np.cos(phi)], np.r_[r * np.sin(phi)])[0]) if setup.theta_of else r
            r *= theta / max(th, 1e-9) if setup.theta_of else 1.0
        y, z = r * np.cos(phi), r * np.sin(phi)
        if ylo <= y <= yhi and zlo <= z <= zhi:
            return float(y), float(z)
    raise ValueError(f"no position {theta}' off axis on the chip")


def run_sky(setup: ValidationSetup, case: str, rng: np.random.Generator,
            detector: Callable[[DetectionProblem], Listed], caldb=None, truth_dc: bool = False) -> dict:
    """One observation of a sky-study case: the bench's background field (its own seed,
    from ``rng``) plus a source drawn from the CALDB PSF, detected by ``detector``.

    Records whether the source is found (a listed source within half a spot FWHM), its
    offset, the signed radial offset (fitted minus true distance from the optical axis,
    pixels: negative is toward the axis) and whether the truth is inside R90; with
    ``truth_dc``, for a found source, the kernel's ``dc_true``, ``counts_fit`` and
    ``b_eff`` (:func:`_truth_profile`).
    """
    scale = 5.0 if case.endswith("bkg5") else 1.0
    total = 50.0 if case.startswith("faint") else OFFAXIS_COUNTS
    y0, z0 = sky_position(setup, case, rng)
    seed_bg = int(rng.integers(0, 2**31 - 1))
    background = bench_background(seed_bg, scale, caldb=caldb, bands=setup.bands)
    theta = float(setup.theta_of(np.r_[y0], np.r_[z0])[0]) if setup.theta_of is not None else 0.0
    counts = total * setup.band_fractions
    bands = []
    for b, psf in enumerate(setup.psfs):
        frac = psf.pixel_fractions(setup.y_edges, setup.z_edges, y0, z0, theta)
        img = background[b] + rng.poisson(counts[b] * setup.exposure * frac)
        bands.append(BandData(np.where(setup.exposure > 0, img, 0), setup.exposure))
    prob = setup.problem(bands)
    listed = detector(prob)
    i, d = _nearest(listed, y0, z0)
    found = i >= 0 and d < 0.5 * setup.fwhm()
    out = {"found": bool(found), "n_sources": int(listed.n_sources), "y": y0, "z": z0, "theta": theta,
           "background_seed": seed_bg, "offset": d if found else None}
    if found:
        radial = float(np.hypot(listed.y[i], listed.z[i]) - np.hypot(y0, z0))
        out.update({"radial": radial, "r68": float(listed.r68[i]), "r90": float(listed.r90[i]),
                    "det_ml": float(listed.det_ml[i]), "inside90": bool(d < listed.r90[i]),
                    "inside68": bool(d < listed.r68[i])})
    if found and truth_dc:
        out.update(_truth_profile(setup, prob, y0, z0, listed.y[i], listed.z[i]))
    return out


def _truth_profile(setup: ValidationSetup, prob: DetectionProblem, y0: float, z0: float, y: float, z: float) -> dict:
    """The kernel's fit of the same problem: dC of the true position on the source's
    profile (independent of the error levels: any level function's coverage follows),
    the fitted counts and the background counts under the PSF,
    ``B_eff = sum_b (sum_p P_bp b_bp) / (sum_p P_bp^2)`` (``b`` the fitted background
    per pixel; for a Gaussian spot and a flat background ``b 4 pi sigma^2``)."""
    kernel = detect_in_problem(prob, setup.params)
    st = kernel.state
    if st.n_sources == 0:
        return {}
    k = int(np.argmin(np.hypot(st.y - y, st.z - z)))
    delta_c, _ = profile_function(prob, st, k, setup.params.ml_parameters())
    b_eff = 0.0
    for b, d in enumerate(prob.bands):
        frac = setup.psfs[b].pixel_fractions(setup.y_edges, setup.z_edges, st.y[k], st.z[k], float(st.theta[k]))
        p = frac * d.exposure
        b_eff += float((p * d.background_image(st.background[b])).sum() / max(float((p * p).sum()), 1e-300))
    return {"dc_true": float(delta_c(y0 - st.y[k], z0 - st.z[k])), "counts_fit": float(st.counts[k].sum()),
            "b_eff": b_eff, "det_ml_kernel": float(st.det_ml[k])}


def summarise_sky(results: Mapping[str, list[dict]], levels: ErrorLevels | None = None) -> dict:
    """Figures and verdicts of the sky-study cases (issue 21 goals).

    Off-axis: the mean signed radial offset of the detected runs within 2 SEM of zero,
    and R90 coverage 0.90 +/- 0.03 (:data:`COVERAGE_RULE`); faint sources: the coverage.
    Where the runs carry ``dc_true`` (faint cases), the coverage of the contour at the
    ``levels`` (the brick's, :class:`~mxt_pipeline.detect.levels.ErrorLevels`) is given
    too, with the factor on the 90% level that would have held 90% of this sample
    (``level90_factor_needed``: the 90% quantile of ``dc_true / L90(DET_ML)``).
    """
    out: dict = {"cases": {}, "criteria": {}}
    scale = C.PIXEL_SCALE_ARCSEC
    for name, runs in results.items():
        found = [r for r in runs if r["found"]]
        n, k = len(runs), len(found)
        inside = int(sum(r["inside90"] for r in found))
        verdict = coverage_verdict(inside, k)
        case = {"runs": n, "detected": k, "detection_efficiency": k / n if n else float("nan"),
                "detection_efficiency_ci95": clopper_pearson(k, n), "inside90": inside,
                "coverage90_detected": verdict["value"], "coverage90_detected_ci95": verdict["ci95"],
                "coverage68_detected": (sum(r["inside68"] for r in found) / k) if k else float("nan"),
                "median_theta_arcmin": float(np.median([r["theta"] for r in runs])) if runs else float("nan"),
                "seconds_per_run": float(np.mean([r["seconds"] for r in runs])) if runs else float("nan")}
        if name.startswith("offaxis_") and k:
            radial = np.array([r["radial"] for r in found]) * scale
            mean = float(radial.mean())
            sem = float(radial.std(ddof=1) / np.sqrt(k)) if k > 1 else float("inf")
            case.update({"mean_radial_offset_arcsec": mean, "sem_radial_offset_arcsec": sem,
                         "median_offset_arcsec": float(np.median([r["offset"] for r in found]) * scale)})
            out["criteria"][f"{name}: mean radial offset within 2 SEM of 0"] = {
                "value": mean, "requirement": f"|mean| <= 2 SEM = {2 * sem:.3g} arcsec", "n": k,
                "pass": bool(abs(mean) <= 2 * sem)}
        with_dc = [r for r in found if r.get("dc_true") is not None]
        if with_dc and levels is not None:
            l90 = np.array([levels.at(r["det_ml"])[1] for r in with_dc])
            ratio = np.array([r["dc_true"] for r in with_dc]) / l90
            k_in = int(np.sum(ratio <= 1.0))
            case.update({"dc_runs": len(with_dc), "coverage90_dc_level": k_in / len(with_dc),
                         "coverage90_dc_level_ci95": clopper_pearson(k_in, len(with_dc)),
                         "level90_factor_needed": float(np.quantile(ratio, 0.9)),
                         "median_det_ml": float(np.median([r["det_ml"] for r in with_dc])),
                         "median_counts_fit": float(np.median([r["counts_fit"] for r in with_dc])),
                         "median_b_eff": float(np.median([r["b_eff"] for r in with_dc]))})
        out["cases"][name] = case
        out["criteria"][f"{name}: R90 coverage (detected runs)"] = verdict
    return out


def sky_markdown(report: Mapping) -> str:
    """The sky study's report as markdown (figures, binomial intervals, command)."""
    lines = ["# Detection with a background that follows the sky (issue 21, items 1 and 5)", "",
             f"Command: `{report['settings']['command']}`", "",
             "Background: the bench's empty field (vignetted CXB and particles, simulated, calibrated and binned "
             "as `mxt run` does), one field per run on its own seed; source drawn from the CALDB PSF; "
             "detected by the `detect` brick of `mxt run`.  Offsets in arcsec; radial: fitted minus true "
             "distance from the optical axis (negative: toward the axis).", "",
             "| case | runs | detected | R90 coverage (95% CI) | mean radial offset +/- SEM | median offset | s/run |",
             "|---|---|---|---|---|---|---|"]
    for name, c in report["cases"].items():
        lo, hi = c["coverage90_detected_ci95"]
        radial = (f"{c['mean_radial_offset_arcsec']:+.1f} +/- {c['sem_radial_offset_arcsec']:.1f}"
                  if "mean_radial_offset_arcsec" in c else "-")
        med = f"{c['median_offset_arcsec']:.1f}" if "median_offset_arcsec" in c else "-"
        lines.append(f"| {name} | {c['runs']} | {c['detected']} | {c['coverage90_detected']:.3f} "
                     f"({lo:.3f}-{hi:.3f}) | {radial} | {med} | {c['seconds_per_run']:.1f} |")
    faint = {k: c for k, c in report["cases"].items() if "dc_runs" in c}
    if faint:
        lines += ["", "Faint cases: the kernel's dC at the true position against the brick's 90% level "
                  "L90(DET_ML) (CALDB DCLEVELS).", "",
                  "| case | runs with dC | dC_true <= L90 (95% CI) | L90 factor for 90% | median DET_ML | "
                  "median fitted counts | median B_eff |", "|---|---|---|---|---|---|---|"]
        for name, c in faint.items():
            lo, hi = c["coverage90_dc_level_ci95"]
            lines.append(f"| {name} | {c['dc_runs']} | {c['coverage90_dc_level']:.3f} ({lo:.3f}-{hi:.3f}) | "
                         f"{c['level90_factor_needed']:.2f} | {c['median_det_ml']:.1f} | "
                         f"{c['median_counts_fit']:.0f} | {c['median_b_eff']:.0f} |")
    lines += ["", "| criterion | value | requirement | verdict |", "|---|---|---|---|"]
    for k, v in report["criteria"].items():
        lines.append(f"| {k} | {v['value']:.4g} | {v['requirement']} | {'PASS' if v['pass'] else 'FAIL'} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# Process settings
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# The simulated observation
# --------------------------------------------------------------------------------------


@dataclass
class ValidationSetup:
    """What the simulations and the detection share: grid, exposure, band PSFs."""

    y_edges: np.ndarray
    z_edges: np.ndarray
    exposure: np.ndarray
    psfs: list[BandPSFLike]
    band_fractions: np.ndarray  # (B,) share of the source counts in each band
    background: np.ndarray  # (B,) counts per pixel
    theta_of: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    name: str = "caldb"
    bands: tuple[EnergyBand, ...] = DEFAULT_BANDS
    params: DetectionParameters = field(default_factory=DetectionParameters)
    teldef: object | None = None
    #: ``f(theta) -> (S, B)``: band-averaged vignetting of the sky background component
    #: (the detection's two-component background, :func:`~mxt_pipeline.detect.images.background_templates`).
    sky_vignetting: Callable[[np.ndarray], np.ndarray] | None = None

    @classmethod
    def from_caldb(cls, caldb=None, bands: Sequence[EnergyBand] = DEFAULT_BANDS, background: float = STANDARD_BACKGROUND,
                   params: DetectionParameters | None = None, crop: int | None = None) -> ValidationSetup:
        """The standard setup from a CALDB (default: ``$CALDB``, else the bundled set)."""
        return cls.from_calibration(DetectionCalibration.from_caldb(caldb), bands, background, params, crop, "caldb")

    @classmethod
    def from_calibration(cls, cal, bands: Sequence[EnergyBand] = DEFAULT_BANDS, background: float = STANDARD_BACKGROUND,
                         params: DetectionParameters | None = None, crop: int | None = None,
                         name: str = "calibration") -> ValidationSetup:
        """The standard setup from calibration models (a ``DetectionCalibration``).

        ``crop`` keeps only the central ``crop x crop`` pixels around the optical axis
        (quicker simulations for the CI-sized tests; the full chip by default).
        """
        # The validated configuration of the CALDB (threshold and dC levels), as the
        # detect brick assembles it.
        params = (params or DetectionParameters()).for_calibration(cal)
        y_edges, z_edges = detector_grid(cal.teldef)
        if crop is not None:
            iy = int(np.clip(np.searchsorted(y_edges, 0.0) - crop // 2, 0, y_edges.size - 1 - crop))
            iz = int(np.clip(np.searchsorted(z_edges, 0.0) - crop // 2, 0, z_edges.size - 1 - crop))
            y_edges, z_edges = y_edges[iy : iy + crop + 1], z_edges[iz : iz + crop + 1]
        exposure = chip_coverage(y_edges, z_edges, cal.teldef, cal.bad_mask, subsample=params.subsample)
        psfs = cal.band_psfs(bands, params.photon_index)
        fractions = cal.band_count_fractions(bands, params.photon_index)

        def theta_of(y, z):
            ay, az = cal.teldef.det_to_angles(y, z)
            return np.hypot(ay, az)

        return cls(y_edges, z_edges, exposure, psfs, np.asarray(fractions, float), np.full(len(bands), float(background)),
                   theta_of, name, tuple(bands), params, cal.teldef, cal.band_vignetting(bands, SKY_PHOTON_INDEX))

    @property
    def n_bands(self) -> int:
        return len(self.psfs)

    def problem(self, bands: Sequence[BandData]) -> DetectionProblem:
        """The detection problem of band images, with the detection's background templates."""
        kwargs = {} if self.theta_of is None else {"theta_of": self.theta_of}
        if self.sky_vignetting is not None and self.theta_of is not None:
            templates = background_templates(self.exposure, self.y_edges, self.z_edges, self.theta_of,
                                             self.sky_vignetting, len(bands))
            bands = [BandData(b.counts, b.exposure, t) for b, t in zip(bands, templates)]
        return DetectionProblem(self.y_edges, self.z_edges, bands, self.psfs, margin=self.params.margin, **kwargs)

    def fwhm(self) -> float:
        return max(float(p.fwhm(0.0)) for p in self.psfs)

    @property
    def axis(self) -> tuple[float, float]:
        """DET position of the optical axis (0, 0 by definition of DET)."""
        return 0.0, 0.0


def simulate_problem(setup: ValidationSetup, y: Sequence[float], z: Sequence[float], counts: np.ndarray,
                     rng: np.random.Generator) -> DetectionProblem:
    """Poisson band images of point sources over the setup's background.

    ``counts`` (S, B) are the expected counts of each source per band over the whole
    PSF (what the fit estimates); the images are drawn from
    ``g * sum_s N_s P_b(. | y_s, z_s) + B_b g``, with ``P_b`` the PSF's own
    ``pixel_fractions`` (for the CALDB PSF, its exact pixel integrals, independent of the
    separable tables the fit uses).
    """
    y = np.asarray(y, float)
    z = np.asarray(z, float)
    counts = np.asarray(counts, float).reshape(y.size, setup.n_bands)
    theta = setup.theta_of(y, z) if (setup.theta_of is not None and y.size) else np.zeros(y.size)
    bands = []
    for b, psf in enumerate(setup.psfs):
        mean = setup.background[b] * setup.exposure
        for s in range(y.size):
            frac = psf.pixel_fractions(setup.y_edges, setup.z_edges, y[s], z[s], float(theta[s]))
            mean = mean + counts[s, b] * setup.exposure * frac
        bands.append(BandData(rng.poisson(mean), setup.exposure))
    return setup.problem(bands)


@dataclass(frozen=True)
class Listed:
    """The sources a detection listed, in DET pixels (what the acceptance judges)."""

    y: np.ndarray
    z: np.ndarray
    r68: np.ndarray
    r90: np.ndarray
    det_ml: np.ndarray
    closed: np.ndarray

    @property
    def n_sources(self) -> int:
        return int(self.y.size)

    @classmethod
    def from_result(cls, result) -> Listed:
        """From the kernel's :class:`~mxt_pipeline.detect.pipeline.DetectionResult`."""
        st = result.state
        c = result.contours
        return cls(np.asarray(st.y, float), np.asarray(st.z, float), np.array([x.radius68 for x in c], float),
                   np.array([x.radius90 for x in c], float), np.asarray(st.det_ml, float),
                   np.array([bool(x.closed) for x in c], bool))  # fmt: skip

    @classmethod
    def from_table(cls, table, teldef) -> Listed:
        """From the source table of the ``detect`` brick (DETY, DETZ, R68_STAT, R90_STAT).

        The statistical radii are in arcsec there; they go back to DET pixels through the
        same local pixel scale (:func:`~mxt_pipeline.detect.pipeline.pixel_scale_arcsec`).
        """
        def col(name, dtype=float):
            return np.asarray(table[name], dtype) if len(table) else np.zeros(0, dtype)

        y, z = col("DETY"), col("DETZ")
        scale = pixel_scale_arcsec(teldef, y, z) if y.size else np.ones(0)
        return cls(y, z, col("R68_STAT") / scale, col("R90_STAT") / scale, col("DET_ML"),
                   col("CONTOUR_CLOSED", bool))  # fmt: skip


def events_from_images(setup: ValidationSetup, images: Sequence[np.ndarray]) -> EventList:
    """An L2 event list whose band images, binned as the detection bins, are ``images``.

    Each count becomes one event at the centre of its DET pixel (RAW through the
    setup's TELDEF), with the band's central energy (geometric mean of its edges), a
    single-pixel pattern and no flag, spread evenly over one good-time interval of
    :data:`STANDARD_GOOD_TIME`; RA_NOM = DEC_NOM = 0 and sky X/Y equal to DET (the
    study judges DET positions).  No random number is drawn: the observation is the
    Poisson draw of :func:`simulate_problem`.
    """
    if setup.teldef is None:
        raise ValueError("the setup has no TELDEF: events need one (ValidationSetup.from_calibration)")
    yc = 0.5 * (setup.y_edges[1:] + setup.y_edges[:-1])
    zc = 0.5 * (setup.z_edges[1:] + setup.z_edges[:-1])
    ys, zs, es = [], [], []
    for band, img in zip(setup.bands, images, strict=True):
        iy, iz = np.nonzero(img)
        n = np.asarray(img)[iy, iz].astype(np.int64)
        ys.append(np.repeat(yc[iy], n))
        zs.append(np.repeat(zc[iz], n))
        es.append(np.full(int(n.sum()), np.sqrt(band.e_min * band.e_max)))
    y, z, energy = np.concatenate(ys), np.concatenate(zs), np.concatenate(es)
    t = (np.arange(y.size) + 0.5) * (STANDARD_GOOD_TIME / max(y.size, 1))
    rawy, rawz = setup.teldef.det_to_raw(y, z)
    pi = np.floor(energy * 1000.0 / C.PI_CHANNEL_EV).astype(np.int32)
    table = Table({
        "TIME": t, "FRAME": np.floor(t / C.FRAME_TIME_S).astype(np.int64),
        "RAWY": np.floor(rawy).astype(np.int16), "RAWZ": np.floor(rawz).astype(np.int16),
        "DETY": y, "DETZ": z, "X": y, "Y": z, "RA": np.zeros(y.size), "DEC": np.zeros(y.size),
        "PHA": pi, "PI": pi, "ENERGY": energy, "PATTERN": np.zeros(y.size, np.int16),
        "MULTIPLICITY": np.ones(y.size, np.int16), "STATUS": np.zeros(y.size, np.int32),
    })  # fmt: skip
    return EventList(table, gti=GTI([0.0], [STANDARD_GOOD_TIME]),
                     meta={"RA_NOM": 0.0, "DEC_NOM": 0.0, "OBS_ID": "ACCEPTANCE", "ONTIME": STANDARD_GOOD_TIME})  # fmt: skip


class BrickDetector:
    """The acceptance study's detector: the ``detect`` brick of ``mxt run``.

    The brick's declared defaults, the CALDB's validated threshold and error levels,
    and its own images and exposure map (built from the events, as for real data).

    Parameters
    ----------
    setup : ValidationSetup
        Grid, bands and TELDEF of the simulated observations.
    caldb : optional
        The CALDB (root, URL, client or provider; default ``$CALDB``, else the bundled one).
    parameters : mapping, optional
        Overrides of the brick's parameters (as ``mxt run -p detect.NAME=VALUE``).
    """

    def __init__(self, setup: ValidationSetup, caldb=None, parameters: Mapping[str, object] | None = None) -> None:
        self.setup = setup
        self.provider = provider_from(caldb)
        self.parameters = {"bands": format_bands(setup.bands), **dict(parameters or {})}

    def detect_events(self, events: EventList, attitude=None, **overrides):
        """Run the brick on an event list (in memory); returns the brick's result."""
        inputs = {"events": events} if attitude is None else {"events": events, "attitude": attitude}
        return DETECT.run_standalone(inputs, {**self.parameters, **overrides}, ".", caldb=self.provider,
                                     persist=False)  # fmt: skip

    def __call__(self, problem: DetectionProblem, **overrides) -> Listed:
        events = events_from_images(self.setup, [b.counts for b in problem.bands])
        result = self.detect_events(events, **overrides)
        return Listed.from_table(result.values["srclist"].table, self.setup.teldef)


def _nearest(listed: Listed, y, z):
    if listed.n_sources == 0:
        return -1, np.inf
    d = np.hypot(listed.y - y, listed.z - z)
    i = int(np.argmin(d))
    return i, float(d[i])


def run_onaxis(setup: ValidationSetup, total_counts: float, rng: np.random.Generator, *, reference: bool = False,
               params: DetectionParameters | None = None, truth_dc: bool = False,
               detector: Callable[[DetectionProblem], Listed] | None = None) -> dict:
    """One on-axis observation: detection, offset and radii of the source.

    ``detector`` lists the sources of the simulated problem: a :class:`BrickDetector`
    in the acceptance study (the ``detect`` brick); None runs the kernel
    (:func:`~mxt_pipeline.detect.pipeline.detect_in_problem` with ``params``), which
    the kernel's own statistical tests use with analytic PSF doubles.

    ``truth_dc`` adds ``dc_true``, the dC of the true position on the source's profile
    (what the level calibration needs); ``reference`` compares the ML position with an
    independent MIGRAD fit of the same problem.  Both need the kernel's fit state, so
    they run the kernel on the same problem; with a brick detector the kernel's
    position is also compared with the brick's (``brick_shift_r68``: the brick sees the
    same observation as the study simulated).
    """
    params = params or setup.params
    y0, z0 = rng.uniform(-0.5, 0.5, 2) + np.array(setup.axis)
    counts = total_counts * setup.band_fractions[None, :]
    prob = simulate_problem(setup, [y0], [z0], counts, rng)
    kernel = detect_in_problem(prob, params) if (detector is None or truth_dc or reference) else None
    listed = Listed.from_result(kernel) if detector is None else detector(prob)
    i, d = _nearest(listed, y0, z0)
    found = i >= 0 and d < 0.5 * setup.fwhm()
    out = {"found": bool(found), "n_sources": int(listed.n_sources), "offset": d if found else None}
    if found:
        r68, r90 = float(listed.r68[i]), float(listed.r90[i])
        out.update({"r68": r68, "r90": r90, "closed": bool(listed.closed[i]), "det_ml": float(listed.det_ml[i]),
                    "inside90": bool(d < r90), "inside68": bool(d < r68)})
    if found and kernel is not None:
        st = kernel.state
        k, _ = _nearest(Listed.from_result(kernel), listed.y[i], listed.z[i])
        if detector is not None and k >= 0:
            out["brick_shift_r68"] = float(np.hypot(st.y[k] - listed.y[i], st.z[k] - listed.z[i]) / out["r68"])
        if truth_dc and k >= 0:
            # Independent of the levels used for the radii.
            delta_c, _ = profile_function(prob, st, k, params.ml_parameters())
            out["dc_true"] = float(delta_c(y0 - st.y[k], z0 - st.z[k]))
        if reference and k >= 0:
            c = kernel.contours[k]
            ref = iminuit_fit(prob, st.y + 0.2, st.z - 0.2, st.counts * 1.1, st.background * 0.9, st.theta)
            out["reference_shift_r68"] = float(np.hypot(ref.y[k] - st.y[k], ref.z[k] - st.z[k]) / c.radius68)
            out["reference_shift_r90"] = float(np.hypot(ref.y[k] - st.y[k], ref.z[k] - st.z[k]) / c.radius90)
            out["reference_dcstat"] = float(ref.cstat - st.cstat)
            out["reference_valid"] = bool(ref.valid)
    return out


def run_pair(setup: ValidationSetup, counts_each: float, separation_fwhm: float, rng: np.random.Generator,
             params: DetectionParameters | None = None,
             detector: Callable[[DetectionProblem], Listed] | None = None) -> dict:
    """Two sources ``separation_fwhm`` spot FWHM apart, random direction: both found?"""
    params = params or setup.params
    sep = separation_fwhm * setup.fwhm()
    phi = rng.uniform(0, np.pi)
    c0 = rng.uniform(-0.5, 0.5, 2)
    y = c0[0] + np.array([-0.5, 0.5]) * sep * np.cos(phi)
    z = c0[1] + np.array([-0.5, 0.5]) * sep * np.sin(phi)
    counts = counts_each * np.vstack([setup.band_fractions, setup.band_fractions])
    prob = simulate_problem(setup, y, z, counts, rng)
    st = Listed.from_result(detect_in_problem(prob, params)) if detector is None else detector(prob)
    both = False
    if st.n_sources >= 2:
        d = np.hypot(st.y[:, None] - y[None, :], st.z[:, None] - z[None, :])
        limit = 0.5 * setup.fwhm()
        # Distinct matches: the best assignment of two listed sources to the two truths.
        best = min(max(d[i, 0], d[j, 1]) for i in range(st.n_sources) for j in range(st.n_sources) if i != j)
        both = bool(best < limit)
    return {"both_found": both, "n_sources": int(st.n_sources), "angle": float(phi)}


def run_empty(setup: ValidationSetup, rng: np.random.Generator, params: DetectionParameters | None = None,
              detector: Callable[..., Listed] | None = None) -> dict:
    """Background only: the DET_ML of every (false) source listed.

    With a detector, ``params`` only sets its DET_ML threshold (the threshold
    calibration lists sources below the default one).
    """
    params = params or setup.params
    prob = simulate_problem(setup, [], [], np.zeros((0, setup.n_bands)), rng)
    if detector is None:
        listed = Listed.from_result(detect_in_problem(prob, params))
    else:
        listed = detector(prob, det_ml_threshold=params.threshold)
    return {"n_sources": int(listed.n_sources), "det_ml": [float(v) for v in listed.det_ml]}


# --------------------------------------------------------------------------------------
# Threshold calibration
# --------------------------------------------------------------------------------------


def fit_exponential_tail(values: np.ndarray, n_fields: int, pivot: float) -> tuple[float, float]:
    """Rate per field above ``pivot`` and e-folding scale of an exponential tail.

    ``n(t) = n(pivot) exp(-(t - pivot) / tau)`` for t >= pivot; the maximum-likelihood
    scale of exponential exceedances is their mean excess.
    """
    v = np.asarray(values, float)
    exc = v[v >= pivot] - pivot
    if exc.size == 0:
        return 0.0, 1.0
    return exc.size / n_fields, float(max(exc.mean(), 1e-3))


def calibrate_threshold(det_ml_values: np.ndarray, n_fields: int, target_rate: float, pivot: float | None = None) -> dict:
    """Threshold with ``target_rate`` false sources per field (exponential tail fit).

    Parameters
    ----------
    det_ml_values : ndarray
        DET_ML of every source found in ``n_fields`` empty fields at a low threshold.
    target_rate : float
        Wanted false sources per field.
    pivot : float, optional
        Start of the tail fit; default the value exceeded in 10% of the fields (at
        least 20 sources above it when possible).
    """
    v = np.sort(np.asarray(det_ml_values, float))[::-1]
    if pivot is None:
        k = max(min(20, v.size), int(np.ceil(0.1 * n_fields)))
        pivot = float(v[min(k, v.size) - 1]) if v.size else 0.0
    rate, tau = fit_exponential_tail(v, n_fields, pivot)
    threshold = pivot + tau * np.log(max(rate, 1e-12) / target_rate) if rate > target_rate else pivot
    empirical = float(np.sum(v >= threshold)) / n_fields
    return {"threshold": float(threshold), "pivot": float(pivot), "rate_at_pivot": float(rate), "tau": float(tau),
            "target_rate": float(target_rate), "empirical_rate_at_threshold": empirical, "n_fields": int(n_fields),
            "n_false_sources": int(v.size)}


# --------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------

_SETUP: ValidationSetup | None = None
_DETECTOR: BrickDetector | None = None
_CALDB = None


def _init_worker(caldb) -> None:
    global _SETUP, _DETECTOR, _CALDB
    logging.basicConfig(level=logging.WARNING)
    _CALDB = caldb
    _SETUP = ValidationSetup.from_caldb(caldb)
    _DETECTOR = BrickDetector(_SETUP, caldb)


def _task(task: tuple) -> tuple:
    case, index, seed, extra = task
    rng = np.random.default_rng(seed)
    setup, detector = _SETUP, _DETECTOR
    with single_blas_thread():
        t0 = time.perf_counter()
        if case.startswith("levels_"):
            # The level calibration calibrates the kernel's dC of the true position.
            out = run_onaxis(setup, float(case.split("_")[1]), rng, truth_dc=True)
        elif case.startswith(ONAXIS_PREFIXES):
            out = run_onaxis(setup, float(case.split("_")[1]), rng, reference=extra.get("reference", False),
                             detector=detector)
        elif case in SKY_CASES or case in FAINT_CASES:
            out = run_sky(setup, case, rng, detector, caldb=_CALDB, truth_dc=case in FAINT_CASES)
        elif case == "pair":
            out = run_pair(setup, 200.0, 1.5, rng, detector=detector)
        elif case == "empty":
            out = run_empty(setup, rng, detector=detector)
        elif case == "calibration":
            out = run_empty(setup, rng, replace(setup.params, det_ml_threshold=extra["low"]), detector=detector)
        else:
            raise ValueError(case)
        out["seconds"] = time.perf_counter() - t0
    return case, index, out


# --------------------------------------------------------------------------------------
# Acceptance rules
# --------------------------------------------------------------------------------------

#: Required R90 coverage and its tolerance (issue: 90 +/- 3%).
COVERAGE_TARGET = 0.90
COVERAGE_TOLERANCE = 0.03
#: Required bound on the median offset over the Cramer-Rao median offset.
MAX_OFFSET_OVER_CRB = 1.2
#: The rule of the coverage verdict, as written into the report.
COVERAGE_RULE = (
    "PASS iff (a) the point estimate k/n of the fraction of DETECTED runs whose true position "
    "lies inside the statistical R90 is within 0.90 +/- 0.03 inclusive (|k/n - 0.90| <= 0.03), "
    "AND (b) its exact (Clopper-Pearson) 95% binomial interval overlaps [0.87, 0.93], AND "
    "(c) n >= min_detected (n >= 1 when min_detected is 0).  (b) is implied by (a), since the "
    "Clopper-Pearson interval always contains k/n; it is kept as the stated rule.  Whether "
    "0.90 itself lies in the interval is reported (ci95_contains_target) but is not part of "
    "the verdict.  The same figures over ALL runs (a run without a detection has no R90 and "
    "counts as a miss) are reported as criteria_all_runs, for information."
)
STOPPING_RULE = (
    "Per on-axis case, observation i uses seed SeedSequence(seed, spawn_key=(case, i)) "
    "(the same sequence as a fixed --n run, which is therefore a prefix); the number of runs "
    "kept is the smallest N >= --n such that at least --min-detected of runs 0..N-1 detect "
    "the source, or --max-runs if that comes first.  Runs drawn beyond N are discarded, so "
    "the result does not depend on --workers or on the batch sizes."
)


def runs_needed(found: Sequence[bool], n_min: int, k_min: int) -> int | None:
    """Number of runs kept by the stopping rule, from the detection flags in seed order.

    Parameters
    ----------
    found : sequence of bool
        Whether run i (in seed order) detected the source.
    n_min : int
        Runs required in any case (``--n``).
    k_min : int
        Detected runs required (``--min-detected``; 0: none).

    Returns
    -------
    int or None
        The smallest N >= ``n_min`` with at least ``k_min`` detections among the first N
        runs, or None when ``found`` is too short to decide.
    """
    flags = np.asarray(found, bool)
    if k_min <= 0:
        return n_min if flags.size >= n_min else None
    cum = np.cumsum(flags)
    hit = np.flatnonzero(cum >= k_min)
    if hit.size == 0:
        return None
    n = max(int(n_min), int(hit[0]) + 1)
    return n if flags.size >= n else None


def next_batch(n_runs: int, n_detected: int, n_min: int, k_min: int, max_runs: int,
               min_batch: int = 16) -> int:
    """How many more runs to draw for a case (0: its sample is complete).

    The first batch brings the case to ``n_min`` runs; later batches aim at the missing
    detections with the efficiency measured so far (``(k + 1) / (n + 2)``, 10% margin,
    at least ``min_batch``), never beyond ``max_runs`` in total.  The batch size changes
    only the wasted work, not the result (:func:`runs_needed` truncates).
    """
    if n_runs >= max_runs:
        return 0
    if n_runs < n_min:
        return min(n_min, max_runs) - n_runs
    if n_detected >= k_min:
        return 0
    efficiency = (n_detected + 1.0) / (n_runs + 2.0)
    want = int(np.ceil(1.1 * (k_min - n_detected) / efficiency))
    return int(min(max(want, min_batch), max_runs - n_runs))


def coverage_verdict(inside: int, n: int, min_n: int = 1, target: float = COVERAGE_TARGET,
                     tolerance: float = COVERAGE_TOLERANCE, cl: float = 0.95) -> dict:
    """Verdict of the R90 coverage criterion (rule: :data:`COVERAGE_RULE`).

    Parameters
    ----------
    inside : int
        Runs with the true position inside R90.
    n : int
        Runs judged (the detected runs for the verdict).
    min_n : int
        Runs required for a verdict (``--min-detected``, at least 1).

    Returns
    -------
    dict
        ``value`` (k/n), ``ci95``, ``n``, ``point_within``, ``ci95_overlaps``,
        ``ci95_contains_target``, ``enough_runs``, ``pass``.
    """
    lo, hi = clopper_pearson(inside, n, cl)
    value = inside / n if n > 0 else float("nan")
    # Inclusive band, compared in counts so that 174 of 200 (0.87) is inside.
    point = bool(n > 0 and abs(inside - target * n) <= tolerance * n + 1e-9 * n)
    overlap = bool(n > 0 and lo <= target + tolerance and hi >= target - tolerance)
    enough = bool(n >= max(int(min_n), 1))
    return {"value": value, "ci95": (lo, hi), "n": int(n), "inside": int(inside),
            "requirement": f"{target - tolerance:.2f}-{target + tolerance:.2f}",
            "point_within": point, "ci95_overlaps": overlap,
            "ci95_contains_target": bool(n > 0 and lo <= target <= hi), "enough_runs": enough,
            "pass": bool(point and overlap and enough)}


def summarise(setup: ValidationSetup, results: dict[str, list[dict]], min_detected: int = 0) -> dict:
    """Figures of every case and the pass/fail of each acceptance criterion.

    The on-axis criteria are judged on the detected runs (:data:`COVERAGE_RULE`);
    ``criteria_all_runs`` holds the coverage over all runs (misses included), for
    information only.
    """
    out: dict = {"cases": {}, "criteria": {}, "criteria_all_runs": {}}
    fwhm = setup.fwhm()
    for name, runs in results.items():
        if name.startswith("onaxis_"):
            total = float(name.split("_")[1])
            counts = total * setup.band_fractions
            bound = position_bound(setup.psfs, setup.y_edges, setup.z_edges, 0.0, 0.0, counts, setup.background,
                                   exposure=setup.exposure)
            found = [r for r in runs if r["found"]]
            n_runs, n_found = len(runs), len(found)
            offsets = np.array([r["offset"] for r in found])
            inside = int(sum(r["inside90"] for r in found))
            inside68 = int(sum(r["inside68"] for r in found))
            med = float(np.median(offsets)) if found else float("nan")
            ratio = med / bound.median_offset
            ref = [r for r in found if "reference_shift_r68" in r]
            verdict = coverage_verdict(inside, n_found, min_n=min_detected)
            all_runs = coverage_verdict(inside, n_runs, min_n=1)
            nan = float("nan")
            case = {
                "runs": n_runs,
                "detected": n_found,
                "detection_efficiency": n_found / n_runs if n_runs else nan,
                "detection_efficiency_ci95": clopper_pearson(n_found, n_runs),
                "inside90": inside,
                # The basis of the verdict: the runs that give an R90.
                "coverage90_detected": verdict["value"],
                "coverage90_detected_ci95": verdict["ci95"],
                # Unconditional: a run without a detection has no R90 and is a miss.
                "coverage90_all_runs": all_runs["value"],
                "coverage90_all_runs_ci95": all_runs["ci95"],
                "coverage68_detected": inside68 / n_found if n_found else nan,
                "coverage68_all_runs": inside68 / n_runs if n_runs else nan,
                "median_offset_pix": med,
                "crb_median_offset_pix": bound.median_offset,
                "median_offset_over_crb": ratio,
                "median_r90_pix": float(np.median([r["r90"] for r in found])) if found else nan,
                "crb_r90_pix": bound.radius90,
                "extra_sources_per_run": float(np.mean([r["n_sources"] - r["found"] for r in runs])) if runs else nan,
                "seconds_per_run": float(np.mean([r["seconds"] for r in runs])) if runs else nan,
            }
            if min_detected > 0 and n_found > 1 and n_runs > 1:
                # Inverse (negative-binomial) sampling: n_found / n_runs is biased up by
                # about p(1-p)/k; (k - 1) / (n - 1) is the unbiased estimate.
                case["detection_efficiency_unbiased"] = (n_found - 1) / (n_runs - 1)
            brick = [r["brick_shift_r68"] for r in found if "brick_shift_r68" in r]
            if brick:
                # The brick's position against the kernel's on the same simulated problem.
                case["brick_vs_kernel_runs"] = len(brick)
                case["brick_vs_kernel_max_shift_over_r68"] = float(max(brick))
            if ref:
                shifts = np.array([r["reference_shift_r68"] for r in ref])
                case["reference_runs"] = len(ref)
                case["reference_max_shift_over_r68"] = float(shifts.max())
                case["reference_max_shift_over_r90"] = float(max(r["reference_shift_r90"] for r in ref))
                case["reference_min_dcstat"] = float(min(r["reference_dcstat"] for r in ref))
                out["criteria"][f"{name}: ML = MIGRAD within 1% of R68"] = {
                    "value": float(shifts.max()), "requirement": "< 0.01", "pass": bool(shifts.max() < 0.01)}
            out["cases"][name] = case
            out["criteria"][f"{name}: R90 coverage (detected runs)"] = verdict
            out["criteria"][f"{name}: median offset / CRB (detected runs)"] = {
                "value": ratio, "requirement": f"<= {MAX_OFFSET_OVER_CRB}", "n": n_found,
                "pass": bool(n_found >= max(min_detected, 1) and ratio <= MAX_OFFSET_OVER_CRB)}
            out["criteria_all_runs"][f"{name}: R90 coverage (all runs)"] = all_runs
        elif name == "pair":
            k = sum(r["both_found"] for r in runs)
            frac = k / len(runs)
            out["cases"][name] = {"runs": len(runs), "both_found": frac, "ci95": clopper_pearson(k, len(runs)),
                                  "separation_pix": 1.5 * fwhm,
                                  "seconds_per_run": float(np.mean([r["seconds"] for r in runs]))}
            out["criteria"]["pair 1.5 FWHM, 200 counts: both found"] = {"value": frac, "requirement": ">= 0.90",
                                                                       "pass": bool(frac >= 0.90)}
        elif name == "empty":
            n_false = sum(r["n_sources"] for r in runs)
            rate = n_false / len(runs)
            out["cases"][name] = {"runs": len(runs), "false_sources": n_false, "per_field": rate,
                                  "threshold": setup.params.det_ml_threshold,
                                  "seconds_per_run": float(np.mean([r["seconds"] for r in runs]))}
            out["criteria"]["empty fields: false sources per field"] = {"value": rate, "requirement": "<= 0.01",
                                                                        "pass": bool(rate <= 0.01)}
        elif name == "calibration":
            values = np.concatenate([np.asarray(r["det_ml"], float) for r in runs]) if runs else np.zeros(0)
            out["cases"][name] = calibrate_threshold(values, len(runs), target_rate=0.005)
    return out


#: The cases in the order of their random streams (``SeedSequence(seed).spawn``).
CASES = tuple(f"onaxis_{c}" for c in ONAXIS_COUNTS) + ("pair", "empty")
#: Source counts of the cases of the dC-level calibration (``--calibrate-levels``).
LEVEL_COUNTS = (50, 70, 100, 150, 300, 1000)
#: Those cases; their random streams start at :data:`LEVEL_STREAM` (apart from CASES).
LEVEL_CASES = tuple(f"levels_{c}" for c in LEVEL_COUNTS)
LEVEL_STREAM = 1000
#: Case-name prefixes of on-axis sources (the stopping rule applies to them).
ONAXIS_PREFIXES = ("onaxis_", "levels_")


def _stream(case: str) -> int:
    """Random stream of a case."""
    if case in CASES:
        return CASES.index(case)
    if case in LEVEL_CASES:
        return LEVEL_STREAM + LEVEL_CASES.index(case)
    if case == "calibration":
        return len(CASES)
    if case in SKY_CASES + FAINT_CASES:
        return SKY_STREAM + (SKY_CASES + FAINT_CASES).index(case)
    raise ValueError(f"unknown case {case!r}")


def calibrate_levels(results: Mapping[str, list[dict]], ml_0: float) -> tuple[ErrorLevels, dict[str, LevelFit]]:
    """Fit the dC levels (:func:`~mxt_pipeline.detect.levels.fit_levels`) to on-axis runs.

    Parameters
    ----------
    results : mapping
        Case -> runs (as :func:`run_onaxis` returns them); the detected runs are used.
    ml_0 : float
        DET_ML threshold of the runs.

    Returns
    -------
    levels : ErrorLevels
    fits : dict
        ``"68"`` and ``"90"`` -> :class:`~mxt_pipeline.detect.levels.LevelFit`.
    """
    samples = {}
    for case, runs in results.items():
        found = [r for r in runs if r.get("found")]
        if found:
            samples[case] = (np.array([r["det_ml"] for r in found]), np.array([r["dc_true"] for r in found]))
    fits = {"68": fit_levels(samples, P_68, ml_0), "90": fit_levels(samples, P_90, ml_0)}
    return levels_from_fits(fits["68"], fits["90"]), fits


def _run_seed(seed: int, stream: int, index: int) -> int:
    """Seed of run ``index`` of stream ``stream``: ``SeedSequence(seed).spawn(.)[stream].spawn(.)[index]``."""
    return int(np.random.SeedSequence(seed, spawn_key=(stream, index)).generate_state(1)[0])


def _case_tasks(case: str, start: int, count: int, seed: int, n_reference: int) -> list[tuple]:
    stream = _stream(case)
    return [(case, i, _run_seed(seed, stream, i), {"reference": case.startswith("onaxis_") and i < n_reference})
            for i in range(start, start + count)]


def _tasks(n: int, seed: int, calibrate: int, n_reference: int, low: float) -> list[tuple]:
    """The fixed-size tasks: ``n`` runs of every case and ``calibrate`` calibration fields."""
    tasks = [t for case in CASES for t in _case_tasks(case, 0, n, seed, n_reference)]
    tasks += [("calibration", i, _run_seed(seed, _stream("calibration"), i), {"low": low}) for i in range(calibrate)]
    return tasks


def run_all(n: int, seed: int, execute: Callable[[list[tuple]], list[tuple]], *, min_detected: int = 0,
            max_runs: int = 5000, calibrate: int = 0, n_reference: int = 20, low: float = 5.0,
            progress: Callable[[str], None] | None = None,
            cases: Sequence[str] = CASES) -> tuple[dict[str, list[dict]], dict]:
    """Run every case, the on-axis ones until the stopping rule (:data:`STOPPING_RULE`) holds.

    Parameters
    ----------
    n : int
        Runs of every case (at least, for the on-axis cases).
    seed : int
        Root seed.
    execute : callable
        Runs a list of tasks ``(case, index, seed, extra)``, returns ``(case, index, out)``
        in any order (a process pool, or :func:`_task` in a loop).
    min_detected : int
        Detected runs wanted in each on-axis case (0: ``n`` runs).
    max_runs : int
        Cap on the runs of an on-axis case.
    cases : sequence of str
        The cases run (default :data:`CASES`; :data:`LEVEL_CASES` for the level
        calibration).

    Returns
    -------
    results : dict
        Case -> runs in seed order (truncated to the stopping point).
    stopping : dict
        Case -> ``runs_kept``, ``runs_drawn``, ``reason`` ("n", "min_detected", "max_runs").
    """
    onaxis = [c for c in cases if c.startswith(ONAXIS_PREFIXES)]
    drawn: dict[str, dict[int, dict]] = {c: {} for c in cases}
    pending = [t for c in cases for t in _case_tasks(c, 0, n, seed, n_reference)]
    pending += [("calibration", i, _run_seed(seed, _stream("calibration"), i), {"low": low}) for i in range(calibrate)]
    drawn["calibration"] = {}
    round_ = 0
    while pending:
        round_ += 1
        for case, i, out in execute(pending):
            drawn[case][i] = out
        pending = []
        for case in onaxis:
            runs = drawn[case]
            n_runs = len(runs)
            flags = [runs[i]["found"] for i in range(n_runs)]
            if runs_needed(flags, n, min_detected) is not None:
                continue
            more = next_batch(n_runs, int(sum(flags)), n, min_detected, max_runs)
            pending += _case_tasks(case, n_runs, more, seed, n_reference)
        if progress is not None:
            state = ", ".join(f"{c}: {sum(r['found'] for r in drawn[c].values())}/{len(drawn[c])}" for c in onaxis)
            progress(f"round {round_} done ({state}); next {len(pending)} runs")
    results: dict[str, list[dict]] = {}
    stopping: dict[str, dict] = {}
    for case, runs in drawn.items():
        ordered = [runs[i] for i in range(len(runs))]
        if not ordered:
            continue
        if case in onaxis:
            kept = runs_needed([r["found"] for r in ordered], n, min_detected)
            reason = ("n" if kept == n else "min_detected") if kept is not None else "max_runs"
            kept = len(ordered) if kept is None else kept
            stopping[case] = {"runs_kept": kept, "runs_drawn": len(ordered), "reason": reason}
            ordered = ordered[:kept]
        results[case] = ordered
    return results, stopping


@contextlib.contextmanager
def _executor(workers: int, caldb, on_done: Callable[[], None]) -> Iterator[Callable[[list[tuple]], list[tuple]]]:
    """``execute(tasks)`` on a process pool of ``workers``, or in this process."""
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers, initializer=_init_worker, initargs=(caldb,)) as pool:

            def execute(tasks: list[tuple]) -> list[tuple]:
                out = []
                for item in pool.imap_unordered(_task, tasks, chunksize=2):
                    out.append(item)
                    on_done()
                return out

            yield execute
        return
    _init_worker(caldb)

    def execute(tasks: list[tuple]) -> list[tuple]:
        out = []
        for task in tasks:
            out.append(_task(task))
            on_done()
        return out

    yield execute


def level_report(setup: ValidationSetup, results: dict[str, list[dict]], stopping: dict,
                 seed: int) -> tuple[dict, LevelCalibration]:
    """Report of a dC-level calibration and the calibration (``--calibrate-levels``)."""
    ml_0 = setup.params.det_ml_threshold
    levels, fits = calibrate_levels(results, ml_0)
    calibration = LevelCalibration.from_fits(fits["68"], fits["90"], float(setup.background[0]), seed)
    report = {
        "method": "per-flux coverage of dC(true position) <= W_p (1 + A exp(-(DET_ML - ml_0) / S)), least squares in binomial errors",
        "ml_0": ml_0,
        "background_per_pixel": setup.background.tolist(),
        "seed": seed,
        "stopping": stopping,
        "fits": {k: asdict(v) for k, v in fits.items()},
        "levels": asdict(levels),
        "detection_efficiency": {c: float(np.mean([r["found"] for r in runs])) for c, runs in results.items()},
        # The calibration sample itself, so that the fit can be redone or checked.
        "samples": {c: {"det_ml": [r["det_ml"] for r in runs if r["found"]],
                        "dc_true": [r["dc_true"] for r in runs if r["found"]]} for c, runs in results.items()},
    }
    return report, calibration


def write_levels_syserr(path: Path, calibration: LevelCalibration, caldb=None) -> Path:
    """A SYSERR CALDB file: the CALDB's systematic and validity, with the new DCLEVELS table."""
    current = CalibrationSet.from_caldb(caldb).syserr
    model = Systematics(current.localization_arcsec, current.confidence, calibration.table(), calibration.keywords())
    return model.to_fits(path, current.meta)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the Monte-Carlo and write the JSON report."""
    ap = argparse.ArgumentParser(prog="python -m mxt_pipeline.acceptance.detection", description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="observations per case")
    ap.add_argument("--min-detected", type=int, default=0,
                    help="on-axis cases: keep drawing until this many runs detect the source (and >= --n runs)")
    ap.add_argument("--max-runs", type=int, default=5000, help="cap on the runs of an on-axis case")
    ap.add_argument("--out", type=Path, default=Path("reports/detection-validation.json"))
    ap.add_argument("--seed", type=int, default=20240622)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--calibrate", type=int, default=0, help="empty fields for the threshold calibration")
    ap.add_argument("--low-threshold", type=float, default=5.0, help="DET_ML threshold of the calibration runs")
    ap.add_argument("--reference", type=int, default=20, help="runs per on-axis case checked against MIGRAD")
    ap.add_argument("--calibrate-levels", type=int, default=0, metavar="K",
                    help="instead of the validation: calibrate the dC levels of the position errors on the "
                         "on-axis cases LEVEL_COUNTS, K detected runs each (use a seed other than the validation's)")
    ap.add_argument("--write-syserr", type=Path, default=None,
                    help="with --calibrate-levels: write a SYSERR CALDB file holding the calibrated levels")
    ap.add_argument("--sky", type=int, default=0, metavar="N",
                    help="instead of the validation: the sky-background study (off-axis and faint cases on the "
                         "bench's own background), N runs per case; writes OUT and OUT with .md")
    ap.add_argument("--sky-cases", default=",".join(SKY_CASES + FAINT_CASES),
                    help="comma-separated cases of --sky (default: all)")
    ap.add_argument("--sky-from", type=Path, nargs="+", default=None, metavar="REPORT",
                    help="re-summarise the runs of saved --sky reports (merged; no simulation) into OUT")
    ap.add_argument("--caldb", default=None)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    done = [0]

    def log_progress() -> None:
        done[0] += 1
        if done[0] % 50 == 0:
            print(f"{done[0]} runs, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)

    def progress(msg: str) -> None:
        print(f"{msg}, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)

    setup = ValidationSetup.from_caldb(args.caldb)
    if args.sky_from:
        merged: dict[str, list[dict]] = {}
        commands = []
        for path in args.sky_from:
            saved = json.loads(Path(path).read_text())
            commands.append(saved["settings"]["command"])
            for case, runs in saved["runs"].items():
                merged.setdefault(case, []).extend(runs)
        report = summarise_sky(merged, setup.params.error_levels or ErrorLevels())
        report["settings"] = {"command": " && ".join(commands), "resummarised_from": [str(p) for p in args.sky_from]}
        report["runs"] = merged
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, default=float) + "\n")
        args.out.with_suffix(".md").write_text(sky_markdown(report))
        return 0
    if args.sky > 0:
        cases = tuple(c for c in args.sky_cases.split(",") if c)
        unknown = sorted(set(cases) - set(SKY_CASES + FAINT_CASES))
        if unknown:
            ap.error(f"unknown --sky-cases {unknown}; known: {list(SKY_CASES + FAINT_CASES)}")
        with _executor(args.workers, args.caldb, log_progress) as execute:
            results, _ = run_all(args.sky, args.seed, execute, n_reference=0, progress=progress, cases=cases)
        report = summarise_sky(results, setup.params.error_levels or ErrorLevels())
        report["settings"] = {
            "command": "python -m mxt_pipeline.acceptance.detection " + " ".join(
                a for a in (argv if argv is not None else sys.argv[1:])),
            "n_per_case": args.sky, "seed": args.seed, "coverage_rule": COVERAGE_RULE,
            "offaxis_counts": OFFAXIS_COUNTS, "edge_margin_pix": EDGE_MARGIN, "pixel_arcsec": C.PIXEL_SCALE_ARCSEC,
            "bands_kev": [[b.e_min, b.e_max] for b in setup.bands], "band_fractions": setup.band_fractions.tolist(),
            "wall_seconds": time.perf_counter() - t0, "workers": args.workers,
        }
        report["runs"] = results
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, default=float) + "\n")
        args.out.with_suffix(".md").write_text(sky_markdown(report))
        for k, v in report["criteria"].items():
            print(f"{'PASS' if v['pass'] else 'FAIL'}  {k}: {v['value']:.4g} (required {v['requirement']})")
        return 0
    if args.calibrate_levels > 0:
        with _executor(args.workers, args.caldb, log_progress) as execute:
            results, stopping = run_all(args.calibrate_levels, args.seed, execute, min_detected=args.calibrate_levels,
                                        max_runs=args.max_runs, n_reference=0, progress=progress, cases=LEVEL_CASES)
        report, calibration = level_report(setup, results, stopping, args.seed)
        report["wall_seconds"] = time.perf_counter() - t0
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, default=float) + "\n")
        for key, fit in report["fits"].items():
            print(f"level {key}%: A = {fit['amplitude']:.3f}, S = {fit['scale']:.3f}, worst |coverage - p| = "
                  f"{fit['worst_deviation']:.4f}")
            for case in fit["coverage"]:
                print(f"    {case}: {fit['coverage'][case]:.3f} (Wilks {fit['coverage_wilks'][case]:.3f}, "
                      f"n = {fit['runs'][case]})")
        if args.write_syserr is not None:
            print(f"wrote {write_levels_syserr(args.write_syserr, calibration, args.caldb)}")
        return 0

    kwargs = {"min_detected": args.min_detected, "max_runs": args.max_runs, "calibrate": args.calibrate,
              "n_reference": args.reference, "low": args.low_threshold, "progress": progress}
    with _executor(args.workers, args.caldb, log_progress) as execute:
        results, stopping = run_all(args.n, args.seed, execute, **kwargs)
    report = summarise(setup, results, min_detected=args.min_detected)
    report["settings"] = {
        "n_per_case": args.n,
        "min_detected": args.min_detected,
        "max_runs": args.max_runs,
        "stopping": stopping,
        "stopping_rule": STOPPING_RULE,
        "coverage_rule": COVERAGE_RULE,
        "seed": args.seed,
        "bands_kev": [[b.e_min, b.e_max] for b in setup.bands],
        "band_fractions": setup.band_fractions.tolist(),
        "background_per_pixel": setup.background.tolist(),
        "spot_fwhm_pix": setup.fwhm(),
        "parameters": asdict(setup.params),
        "detector": "the detect brick of mxt run (declared defaults, CALDB DCLEVELS levels and threshold), "
                    "on event lists binned to the simulated images",
        "p90": P_90,
        "wall_seconds": time.perf_counter() - t0,
        "workers": args.workers,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=float) + "\n")
    failed = [k for k, v in report["criteria"].items() if not v["pass"]]
    for k, v in report["criteria"].items():
        extra = f", n={v['n']}" if "n" in v else ""
        print(f"{'PASS' if v['pass'] else 'FAIL'}  {k}: {v['value']:.4g} (required {v['requirement']}{extra})")
    for k, v in report["criteria_all_runs"].items():
        print(f"info  {k}: {v['value']:.4g} (n={v['n']}; within {v['requirement']}: {v['point_within']})")
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
