"""Monte-Carlo validation of the detection, and calibration of its DET_ML threshold.

``python -m mxt_pipeline.detect.validation --n 200 --out reports/detection-validation.json``

Every observation is simulated from the model the detection fits: Poisson draws of the
expected band images (PSF of the band from the CALDB, the relative exposure of the chip
with the CALDB bad pixels, a flat background), on the 256 x 256 DET grid of the CALDB
TELDEF, with the optical axis at its nominal place.  Each case has its own stream of
random numbers (``numpy.random.SeedSequence(seed).spawn``), so results do not depend on
the number of worker processes.

Cases and what is measured (the acceptance criteria of the detection):

* ``onaxis_<N>`` for N = 50, 100, 300, 1000 source counts (0.2-10 keV, split over the
  bands as a power law of photon index 2 through the effective area), at a random
  sub-pixel position near the optical axis: the fraction of runs with the true position
  inside the statistical R90 (required 90 +/- 3%; the simulation has no systematic
  error, so the CALDB systematic is not added; a run where the source is not detected
  has no R90 and counts as a miss, the coverage among the detections is reported
  beside it), the median offset against the
  Cramer-Rao bound of the same observation (required within 1.2x), the detection rate;
  on the first ``n_reference`` runs, the agreement of the ML position with an
  independent MIGRAD fit of the dense model (required within 1% of the error radius);
* ``pair``: two sources of 200 counts, 1.5 spot FWHM apart in a random direction: both
  found (a distinct listed source within half a FWHM of each) in at least 90% of runs;
* ``empty``: background only: false sources per field at the default threshold (at
  most 1 per 100 fields);
* ``calibration`` (``--calibrate M``): M further empty fields run with a low threshold;
  every source found there is false; the expected number of false sources per field
  above a threshold t, ``n(t)``, has an exponential tail (DET_ML is minus the log of a
  tail probability), fitted by maximum likelihood above a pivot, and the threshold is
  the t where ``n(t)`` equals the target rate (half the allowed one, for margin).

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
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy import stats

from mxt_pipeline.detect.bands import DEFAULT_BANDS, EnergyBand
from mxt_pipeline.detect.blas import single_blas_thread
from mxt_pipeline.detect.crlb import position_bound
from mxt_pipeline.detect.errors import P_90
from mxt_pipeline.detect.likelihood import BandData
from mxt_pipeline.detect.pipeline import DetectionParameters, detect_in_problem
from mxt_pipeline.detect.problem import BandPSFLike, DetectionProblem

__all__ = [
    "STANDARD_BACKGROUND",
    "STANDARD_GOOD_TIME",
    "measure_empty_field_background",
    "ONAXIS_COUNTS",
    "ValidationSetup",
    "simulate_problem",
    "run_onaxis",
    "run_pair",
    "run_empty",
    "calibrate_threshold",
    "fit_exponential_tail",
    "summarise",
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
    from mxt_pipeline.calib.chain import ChainParams, calibrate
    from mxt_pipeline.detect.bandpsf import DetectionCalibration
    from mxt_pipeline.detect.images import build_images
    from mxt_pipeline.simulate.bench import simulate
    from mxt_pipeline.simulate.calibration import load_calibration
    from mxt_pipeline.simulate.cases import gp_scenario

    rate, per_pixel, good = [], [], []
    for seed in seeds:
        sc = replace(gp_scenario(int(seed), n_sources=1, duration=float(duration)), sources=[], object="empty field")
        calset, info = load_calibration(caldb, met=float(np.floor(sc.tstart / 86400.0) * 86400.0))
        ds = simulate(sc, int(seed), calset, caldb_info=info)
        chain = ChainParams(ra_nom=float(sc.pointing.ra), dec_nom=float(sc.pointing.dec), obs_id=sc.obs_id,
                            tstart=float(sc.tstart), tstop=float(sc.tstop))  # fmt: skip
        events, _ = calibrate(ds.passes, ds.attitude, ds.angles, list(ds.saa.values()), calset, chain)
        cal = DetectionCalibration.from_calset(calset)
        images = build_images(events, bands, cal.teldef, bad_mask=cal.bad_mask, attitude=ds.attitude)
        pix = np.array([c.sum() for c in images.counts], float) / images.exposure.sum()
        per_pixel.append(pix)
        rate.append(pix / images.livetime)
        good.append(images.livetime)
    return {"rate": np.array(rate), "per_pixel": np.array(per_pixel), "good_time": np.array(good)}


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

    @classmethod
    def from_caldb(cls, caldb=None, bands: Sequence[EnergyBand] = DEFAULT_BANDS, background: float = STANDARD_BACKGROUND,
                   params: DetectionParameters | None = None, crop: int | None = None) -> ValidationSetup:
        """The standard setup from a CALDB (default: ``$CALDB``, else the bundled set)."""
        from mxt_pipeline.detect.bandpsf import DetectionCalibration

        return cls.from_calibration(DetectionCalibration.from_caldb(caldb), bands, background, params, crop, "caldb")

    @classmethod
    def from_calibration(cls, cal, bands: Sequence[EnergyBand] = DEFAULT_BANDS, background: float = STANDARD_BACKGROUND,
                         params: DetectionParameters | None = None, crop: int | None = None,
                         name: str = "calibration") -> ValidationSetup:
        """The standard setup from calibration models (a ``DetectionCalibration``).

        ``crop`` keeps only the central ``crop x crop`` pixels around the optical axis
        (quicker simulations for the CI-sized tests; the full chip by default).
        """
        from mxt_pipeline.detect.images import chip_coverage, detector_grid

        params = params or DetectionParameters()
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
                   theta_of, name, tuple(bands), params)

    @property
    def n_bands(self) -> int:
        return len(self.psfs)

    def problem(self, bands: Sequence[BandData]) -> DetectionProblem:
        kwargs = {} if self.theta_of is None else {"theta_of": self.theta_of}
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


def _nearest(result, y, z):
    st = result.state
    if st.n_sources == 0:
        return -1, np.inf
    d = np.hypot(st.y - y, st.z - z)
    i = int(np.argmin(d))
    return i, float(d[i])


def run_onaxis(setup: ValidationSetup, total_counts: float, rng: np.random.Generator, *, reference: bool = False,
               params: DetectionParameters | None = None) -> dict:
    """One on-axis observation: detection, offset and radii of the source."""
    params = params or setup.params
    y0, z0 = rng.uniform(-0.5, 0.5, 2) + np.array(setup.axis)
    counts = total_counts * setup.band_fractions[None, :]
    prob = simulate_problem(setup, [y0], [z0], counts, rng)
    res = detect_in_problem(prob, params)
    i, d = _nearest(res, y0, z0)
    found = i >= 0 and d < 0.5 * setup.fwhm()
    out = {"found": bool(found), "n_sources": int(res.n_sources), "offset": d if found else None}
    if found:
        c = res.contours[i]
        out.update({"r68": c.radius68, "r90": c.radius90, "closed": bool(c.closed), "det_ml": float(res.state.det_ml[i]),
                    "inside90": bool(d < c.radius90), "inside68": bool(d < c.radius68)})
        if reference:
            from mxt_pipeline.detect.reference import iminuit_fit

            st = res.state
            ref = iminuit_fit(prob, st.y + 0.2, st.z - 0.2, st.counts * 1.1, st.background * 0.9, st.theta)
            out["reference_shift_r68"] = float(np.hypot(ref.y[i] - st.y[i], ref.z[i] - st.z[i]) / c.radius68)
            out["reference_shift_r90"] = float(np.hypot(ref.y[i] - st.y[i], ref.z[i] - st.z[i]) / c.radius90)
            out["reference_dcstat"] = float(ref.cstat - st.cstat)
            out["reference_valid"] = bool(ref.valid)
    return out


def run_pair(setup: ValidationSetup, counts_each: float, separation_fwhm: float, rng: np.random.Generator,
             params: DetectionParameters | None = None) -> dict:
    """Two sources ``separation_fwhm`` spot FWHM apart, random direction: both found?"""
    params = params or setup.params
    sep = separation_fwhm * setup.fwhm()
    phi = rng.uniform(0, np.pi)
    c0 = rng.uniform(-0.5, 0.5, 2)
    y = c0[0] + np.array([-0.5, 0.5]) * sep * np.cos(phi)
    z = c0[1] + np.array([-0.5, 0.5]) * sep * np.sin(phi)
    counts = counts_each * np.vstack([setup.band_fractions, setup.band_fractions])
    prob = simulate_problem(setup, y, z, counts, rng)
    res = detect_in_problem(prob, params)
    st = res.state
    both = False
    if st.n_sources >= 2:
        d = np.hypot(st.y[:, None] - y[None, :], st.z[:, None] - z[None, :])
        limit = 0.5 * setup.fwhm()
        # Distinct matches: the best assignment of two listed sources to the two truths.
        best = min(max(d[i, 0], d[j, 1]) for i in range(st.n_sources) for j in range(st.n_sources) if i != j)
        both = bool(best < limit)
    return {"both_found": both, "n_sources": int(st.n_sources), "angle": float(phi)}


def run_empty(setup: ValidationSetup, rng: np.random.Generator, params: DetectionParameters | None = None) -> dict:
    """Background only: the DET_ML of every (false) source listed."""
    params = params or setup.params
    prob = simulate_problem(setup, [], [], np.zeros((0, setup.n_bands)), rng)
    res = detect_in_problem(prob, params)
    return {"n_sources": int(res.n_sources), "det_ml": [float(v) for v in res.state.det_ml]}


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


def _init_worker(caldb) -> None:
    global _SETUP
    logging.basicConfig(level=logging.WARNING)
    _SETUP = ValidationSetup.from_caldb(caldb)


def _task(task: tuple) -> tuple:
    case, index, seed, extra = task
    rng = np.random.default_rng(seed)
    setup = _SETUP
    with single_blas_thread():
        t0 = time.perf_counter()
        if case.startswith("onaxis_"):
            out = run_onaxis(setup, float(case.split("_")[1]), rng, reference=extra.get("reference", False))
        elif case == "pair":
            out = run_pair(setup, 200.0, 1.5, rng)
        elif case == "empty":
            out = run_empty(setup, rng)
        elif case == "calibration":
            out = run_empty(setup, rng, replace(setup.params, det_ml_threshold=extra["low"]))
        else:
            raise ValueError(case)
        out["seconds"] = time.perf_counter() - t0
    return case, index, out


def _binomial_interval(k: int, n: int, cl: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval of a binomial fraction."""
    a = (1 - cl) / 2
    lo = stats.beta.ppf(a, k, n - k + 1) if k > 0 else 0.0
    hi = stats.beta.ppf(1 - a, k + 1, n - k) if k < n else 1.0
    return float(lo), float(hi)


def summarise(setup: ValidationSetup, results: dict[str, list[dict]]) -> dict:
    """Figures of every case and the pass/fail of each acceptance criterion."""
    out: dict = {"cases": {}, "criteria": {}}
    fwhm = setup.fwhm()
    for name, runs in results.items():
        if name.startswith("onaxis_"):
            total = float(name.split("_")[1])
            counts = total * setup.band_fractions
            bound = position_bound(setup.psfs, setup.y_edges, setup.z_edges, 0.0, 0.0, counts, setup.background,
                                   exposure=setup.exposure)
            found = [r for r in runs if r["found"]]
            offsets = np.array([r["offset"] for r in found])
            inside = int(sum(r["inside90"] for r in found))
            cov = inside / len(runs) if runs else float("nan")
            med = float(np.median(offsets)) if found else float("nan")
            ref = [r for r in found if "reference_shift_r68" in r]
            case = {
                "runs": len(runs),
                "detected": len(found),
                "coverage90": cov,
                "coverage90_ci95": _binomial_interval(inside, len(runs)),
                # Not the criterion (a run without a detection is a miss there): the
                # coverage among the runs where the source was found.
                "coverage90_detected": inside / len(found) if found else float("nan"),
                "coverage68": sum(r["inside68"] for r in found) / len(runs),
                "median_offset_pix": med,
                "crb_median_offset_pix": bound.median_offset,
                "median_offset_over_crb": med / bound.median_offset,
                "median_r90_pix": float(np.median([r["r90"] for r in found])) if found else float("nan"),
                "crb_r90_pix": bound.radius90,
                "extra_sources_per_run": float(np.mean([r["n_sources"] - r["found"] for r in runs])),
                "seconds_per_run": float(np.mean([r["seconds"] for r in runs])),
            }
            if ref:
                shifts = np.array([r["reference_shift_r68"] for r in ref])
                case["reference_runs"] = len(ref)
                case["reference_max_shift_over_r68"] = float(shifts.max())
                case["reference_max_shift_over_r90"] = float(max(r["reference_shift_r90"] for r in ref))
                case["reference_min_dcstat"] = float(min(r["reference_dcstat"] for r in ref))
                out["criteria"][f"{name}: ML = MIGRAD within 1% of R68"] = {
                    "value": float(shifts.max()), "requirement": "< 0.01", "pass": bool(shifts.max() < 0.01)}
            out["cases"][name] = case
            out["criteria"][f"{name}: R90 coverage"] = {"value": cov, "requirement": "0.87-0.93",
                                                       "pass": bool(0.87 <= cov <= 0.93)}
            out["criteria"][f"{name}: median offset / CRB"] = {"value": med / bound.median_offset,
                                                              "requirement": "<= 1.2",
                                                              "pass": bool(med / bound.median_offset <= 1.2)}
        elif name == "pair":
            k = sum(r["both_found"] for r in runs)
            frac = k / len(runs)
            out["cases"][name] = {"runs": len(runs), "both_found": frac, "ci95": _binomial_interval(k, len(runs)),
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


def _tasks(n: int, seed: int, calibrate: int, n_reference: int, low: float) -> list[tuple]:
    cases = [f"onaxis_{c}" for c in ONAXIS_COUNTS] + ["pair", "empty"]
    seqs = np.random.SeedSequence(seed).spawn(len(cases) + 1)
    tasks = []
    for case, ss in zip(cases, seqs[:-1]):
        for i, child in enumerate(ss.spawn(n)):
            extra = {"reference": case.startswith("onaxis_") and i < n_reference}
            tasks.append((case, i, int(child.generate_state(1)[0]), extra))
    for i, child in enumerate(seqs[-1].spawn(calibrate)):
        tasks.append(("calibration", i, int(child.generate_state(1)[0]), {"low": low}))
    return tasks


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the Monte-Carlo and write the JSON report."""
    ap = argparse.ArgumentParser(prog="python -m mxt_pipeline.detect.validation", description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200, help="observations per case")
    ap.add_argument("--out", type=Path, default=Path("reports/detection-validation.json"))
    ap.add_argument("--seed", type=int, default=20240622)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--calibrate", type=int, default=0, help="empty fields for the threshold calibration")
    ap.add_argument("--low-threshold", type=float, default=5.0, help="DET_ML threshold of the calibration runs")
    ap.add_argument("--reference", type=int, default=20, help="runs per on-axis case checked against MIGRAD")
    ap.add_argument("--caldb", default=None)
    args = ap.parse_args(argv)
    tasks = _tasks(args.n, args.seed, args.calibrate, args.reference, args.low_threshold)
    t0 = time.perf_counter()
    results: dict[str, list] = {}
    if args.workers > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(args.workers, initializer=_init_worker, initargs=(args.caldb,)) as pool:
            for k, (case, i, out) in enumerate(pool.imap_unordered(_task, tasks, chunksize=2)):
                results.setdefault(case, []).append((i, out))
                if (k + 1) % 50 == 0:
                    print(f"{k + 1}/{len(tasks)} runs, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    else:
        _init_worker(args.caldb)
        for k, task in enumerate(tasks):
            case, i, out = _task(task)
            results.setdefault(case, []).append((i, out))
            if (k + 1) % 50 == 0:
                print(f"{k + 1}/{len(tasks)} runs, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    ordered = {case: [o for _, o in sorted(runs, key=lambda r: r[0])] for case, runs in results.items()}
    setup = ValidationSetup.from_caldb(args.caldb)
    report = summarise(setup, ordered)
    report["settings"] = {
        "n_per_case": args.n,
        "seed": args.seed,
        "bands_kev": [[b.e_min, b.e_max] for b in setup.bands],
        "band_fractions": setup.band_fractions.tolist(),
        "background_per_pixel": setup.background.tolist(),
        "spot_fwhm_pix": setup.fwhm(),
        "parameters": asdict(setup.params),
        "p90": P_90,
        "wall_seconds": time.perf_counter() - t0,
        "workers": args.workers,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=float) + "\n")
    failed = [k for k, v in report["criteria"].items() if not v["pass"]]
    for k, v in report["criteria"].items():
        print(f"{'PASS' if v['pass'] else 'FAIL'}  {k}: {v['value']:.4g} (required {v['requirement']})")
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
