"""The simulation bench: a scenario and a seed -> an L1 dataset directory with its truth.

:func:`simulate` is pure (scenario, seed and calibration models in; in-memory products
out).  Writing the dataset and running a scenario file end to end are the I/O layer's
(:mod:`mxt_pipeline.io.simulated_dataset`).  The dataset layout (``docs/simulation.md``)::

    DATASET/dataset.json                    manifest (the calibration chain reads it)
    DATASET/l1/mxt_l1_raw_<OBS_ID>_p<NN>.fits  one L1 raw file per ground-station pass
    DATASET/aux/mxt_att_<OBS_ID>.fits       attitude
    DATASET/aux/mxt_ang_<OBS_ID>.fits       Earth/Sun/Moon angles
    DATASET/saa/mxt_saa_w<WEEK>.fits        weekly SAA files
    DATASET/truth.json                      every input and the truth figures
    DATASET/scenario.yaml                   the scenario as run

Random numbers: one :class:`numpy.random.SeedSequence` per component, made from the
seed and a fixed key (``spawn_key``): the attitude, the passes, the CXB, the particles,
the calibration source, the noise hits, and each source by its index.  Appending a
source therefore leaves the photons of every other component unchanged, and the read
noise of a pixel is a hash of (seed, frame, pixel) (:func:`.detector.hash_normal`), so
their hits do not change either (except where two photons share a pixel).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.table import Table

from mxt_pipeline._version import __version__
from mxt_pipeline.datamodel import GTI, AngleTable, Attitude, RawHits, SAAIntervals
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.simulate.background import calibration_events, cxb_photons, particle_events
from mxt_pipeline.simulate.detector import DetectorModel
from mxt_pipeline.simulate.ephemeris import (
    X_RAY_ATMOSPHERE_KM,
    bad_time_from_samples,
    earth_elevation_deg,
)
from mxt_pipeline.simulate.operations import (
    make_angles,
    make_attitude,
    plan_passes,
    split_into_passes,
    weekly_saa,
)
from mxt_pipeline.simulate.optics import Optics
from mxt_pipeline.simulate.photons import PhotonBatch
from mxt_pipeline.simulate.scenario import Scenario
from mxt_pipeline.simulate.sources import ObservationContext, source_photons

__all__ = ["SimulatedDataset", "simulate", "scenario_manifest", "component_seed", "DETECTABLE_COUNTS", "TRUTH_BANDS",
           "band_counts"]

log = logging.getLogger(__name__)

#: Detected photons above which a source in the field counts as ``detectable`` in the
#: truth (a source of 30 counts stands out at 5 sigma above the background expected
#: in its PSF core for the default background; an assumption of the comparison tools).
DETECTABLE_COUNTS = 30
#: Energy bands (keV, true photon energy, half-open) in which ``truth.json`` counts each
#: source's detected photons (``photons_detected_bands``): the default detection bands
#: (:data:`mxt_pipeline.detect.bands.DEFAULT_BANDS`, not imported: the simulator does
#: not depend on the pipeline), so per-band measurements can be compared with them.
TRUTH_BANDS: tuple[tuple[float, float], ...] = ((0.2, 2.0), (2.0, 10.0))

# Fixed spawn keys of the random streams (never reuse or renumber one).
_KEY_ATTITUDE = 1
_KEY_PASSES = 2
_KEY_CXB = 3
_KEY_PARTICLE = 4
_KEY_CALIBRATION = 5
_KEY_NOISE = 6
_KEY_SALT = 7
_KEY_SOURCE = 100


def component_seed(seed: int, *key: int) -> np.random.SeedSequence:
    """The seed sequence of one component: ``SeedSequence(seed, spawn_key=key)``."""
    if not (isinstance(seed, (int, np.integer)) and seed >= 0):
        raise MXTInputError(f"the seed must be an integer >= 0, got {seed!r}", keyword="seed")
    return np.random.SeedSequence(int(seed), spawn_key=tuple(int(k) for k in key))


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(component_seed(seed, *key))


@dataclass
class SimulatedDataset:
    """Everything a simulation produced, in memory."""

    scenario: Scenario
    seed: int
    passes: list[RawHits]
    attitude: Attitude
    angles: AngleTable
    saa: dict[int, SAAIntervals]
    truth: dict[str, Any]
    photons: PhotonBatch
    detected: np.ndarray
    hits: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_hits(self) -> int:
        return int(self.hits["TIME"].size) if self.hits else 0


def _intervals(g: GTI) -> list[list[float]]:
    return [[float(a), float(b)] for a, b in zip(g.start, g.stop)]


def band_counts(component: np.ndarray, energy: np.ndarray, n_components: int,
                bands: tuple[tuple[float, float], ...] = TRUTH_BANDS) -> np.ndarray:  # fmt: skip
    """Detected photons per component and energy band.

    Parameters
    ----------
    component : ndarray of int
        Component index of each detected photon.
    energy : ndarray of float
        True energy (keV) of each detected photon.
    n_components : int
        Number of components (rows of the result).
    bands : tuple of (lo, hi)
        Half-open energy bands ``[lo, hi)`` in keV.

    Returns
    -------
    ndarray of int, shape (n_components, len(bands))
    """
    comp = np.asarray(component, dtype=np.int64)
    e = np.asarray(energy, dtype=float)
    out = np.zeros((n_components, len(bands)), dtype=np.int64)
    for k, (lo, hi) in enumerate(bands):
        inside = (e >= lo) & (e < hi)
        out[:, k] = np.bincount(comp[inside], minlength=n_components)[:n_components]
    return out


def simulate(
    scenario: Scenario,
    seed: int,
    calset: Any,
    *,
    caldb_info: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> SimulatedDataset:
    """Simulate one observation (pure: no file is read or written).

    Parameters
    ----------
    scenario : Scenario
    seed : int
        Root seed (>= 0).
    calset : CalibrationSet
        CALDB models ``psf``, ``effarea``, ``vignet``, ``teldef``, ``pattern``, ``cti``,
        ``gainoff``, ``badpix``.
    caldb_info : mapping, optional
        ``{"root": ..., "date": ..., "files": {CODE: path}}`` recorded in the truth.
    progress : callable, optional
        Called with the name of each stage as it starts (progress bars).

    Returns
    -------
    SimulatedDataset
    """
    step = progress or (lambda _name: None)
    sc = scenario
    tstart, tstop = float(sc.tstart), float(sc.tstop)

    step("attitude")
    attitude = make_attitude(sc.pointing, tstart, tstop, _rng(seed, _KEY_ATTITUDE), dt=sc.attitude_dt, obs_id=sc.obs_id)
    step("orbit")
    saa = weekly_saa(sc.orbit, sc.saa_region, tstart, tstop)
    if not sc.saa:
        # SAA switched off: the weekly files still exist (the chain asks for them), empty.
        saa = {w: SAAIntervals(Table({"START": np.empty(0), "STOP": np.empty(0)}), meta={"WEEK": w}) for w in saa}
    # GTI sorts and merges its input: one construction is the union of the weeks.
    saa_bad = GTI(np.concatenate([np.asarray(t["START"], float) for t in saa.values()] or [np.empty(0)]),
                  np.concatenate([np.asarray(t["STOP"], float) for t in saa.values()] or [np.empty(0)]))  # fmt: skip
    span = GTI([tstart], [tstop])
    camera_on = span.subtract(saa_bad)
    angles = make_angles(sc.orbit, attitude, tstart, tstop, dt=sc.ang_dt, obs_id=sc.obs_id)

    optics = Optics(calset.psf, calset.effarea, calset.vignet, calset.teldef)
    detector = DetectorModel.from_calibration(calset, sc.detector)
    ctx = ObservationContext(tstart, tstop, optics, detector, attitude, sc.orbit, camera_on, sc.frametime)

    batches: list[PhotonBatch] = []
    src_truth = []
    for i, src in enumerate(sc.sources):
        step(f"source {src.name}")
        batch, stats = source_photons(src, ctx, _rng(seed, _KEY_SOURCE, i), component=i)
        batches.append(batch)
        src_truth.append((src, stats))
    background: dict[str, Any] = {"cxb": None, "particle": None, "calibration": None}
    comp_names = [s.name for s in sc.sources]
    components = (
        ("cxb", "cosmic X-ray background", sc.cxb, cxb_photons, _KEY_CXB),
        ("particle", "particle background", sc.particle, particle_events, _KEY_PARTICLE),
        ("calibration", "calibration source", sc.calibration, calibration_events, _KEY_CALIBRATION),
    )
    for key, label, settings, make, rng_key in components:
        if settings is None:
            continue
        step(label)
        batch, info = make(settings, ctx, _rng(seed, rng_key), component=len(comp_names))
        comp_names.append(key.upper())
        batches.append(batch)
        background[key] = {**settings.to_dict(), **info}
    photons = PhotonBatch.concat(batches)

    step("detector")
    salt = int(component_seed(seed, _KEY_SALT).generate_state(1, np.uint64)[0])
    hits, detected = detector.respond(
        photons.frame, photons.rawy, photons.rawz, photons.charge, photons.energy,
        salt=salt, frames_read=ctx.frames_read(), rng=_rng(seed, _KEY_NOISE),
    )  # fmt: skip
    hits["TIME"] = ctx.frame_time(hits["FRAME"])
    n_det = np.bincount(photons.component[detected], minlength=len(comp_names)) if len(photons) else np.zeros(len(comp_names), int)
    n_det_bands = band_counts(photons.component[detected], photons.energy[detected], len(comp_names))

    step("passes")
    pass_specs = plan_passes(sc.passes, tstart, tstop, _rng(seed, _KEY_PASSES), frametime=sc.frametime)
    l1 = split_into_passes(hits, pass_specs, _rng(seed, _KEY_PASSES, 1), obs_id=sc.obs_id,
                           object_name=sc.object or None, frametime=sc.frametime)  # fmt: skip
    coverage = GTI(np.concatenate([p.gti.start for p in l1] or [np.empty(0)]),
                   np.concatenate([p.gti.stop for p in l1] or [np.empty(0)]))  # fmt: skip
    telemetry_bad = span.subtract(coverage)

    # Boresight behind the atmosphere (truth of the Earth occultation).
    t_ang = np.asarray(angles["TIME"], dtype=float)
    bore = attitude.rotation(t_ang).apply(np.array([1.0, 0.0, 0.0])).reshape(-1, 3)
    elev = earth_elevation_deg(bore, sc.orbit.position(t_ang), X_RAY_ATMOSPHERE_KM)
    earth_bad = bad_time_from_samples(t_ang, elev < 0, elev)

    sources_truth = []
    for i, (src, stats) in enumerate(src_truth):
        stats.photons_detected = int(n_det[i])
        d = src.to_dict()
        d.update(stats.to_dict())
        d["photons_detected_bands"] = {f"{lo:g}-{hi:g}": int(n_det_bands[i, k]) for k, (lo, hi) in enumerate(TRUTH_BANDS)}
        d["detectable"] = bool(stats.in_fov and stats.photons_detected >= DETECTABLE_COUNTS)
        sources_truth.append(d)
    counts_per_pass = {str(p.meta["PASS_ID"]): len(p) for p in l1}
    ra_nom, dec_nom, roll_nom = sc.pointing.ra, sc.pointing.dec, sc.pointing.roll
    truth = {
        "schema": "mxt-sim-truth",
        "schema_version": 1,
        "software": {"name": "mxt_pipeline", "version": __version__},
        "seed": int(seed),
        "obs_id": sc.obs_id,
        "object": sc.object,
        "tstart": tstart,
        "tstop": tstop,
        "trigger_time": sc.trigger_time,
        "pointing": {
            "ra": float(ra_nom), "dec": float(dec_nom), "roll": float(roll_nom),
            "jitter_arcsec": float(sc.pointing.jitter_arcsec), "jitter_tau_s": float(sc.pointing.jitter_tau_s),
            "slew": None if sc.pointing.slew is None else {k: float(v) for k, v in vars(sc.pointing.slew).items()},
        },  # fmt: skip
        "orbit": sc.orbit.to_dict(),
        "saa_region": sc.saa_region.to_dict(),
        "sources": sources_truth,
        "background": background,
        "detector": {
            **sc.detector.to_dict(),
            "onboard_threshold_kev_used": detector.onboard_threshold_kev,
            "primary_threshold_kev": detector.primary_threshold_kev,
            "split_threshold_kev": detector.split_threshold_kev,
            "read_noise_kev": detector.read_noise_kev,
            "fano": detector.fano,
            "frametime": sc.frametime,
            "components": comp_names,
            # Charge deposits absorbed in the detector per component (photons; for the
            # particles, continuum events plus the quarter-pixel points of MIP tracks).
            "deposits_per_component": [int(x) for x in np.bincount(photons.component, minlength=len(comp_names))],
            "detected_per_component": [int(x) for x in n_det],
        },
        "passes": [p.to_dict() for p in pass_specs],
        "bad_time": {
            "saa": _intervals(saa_bad.intersect(span)) if len(saa_bad) else [],
            "earth": _intervals(earth_bad),
            "telemetry": _intervals(telemetry_bad),
        },
        "caldb": {
            "root": None if not caldb_info or caldb_info.get("root") is None else str(caldb_info["root"]),
            "date": str((caldb_info or {}).get("date", "")),
            "files": {str(k): str(v) for k, v in ((caldb_info or {}).get("files") or {}).items()},
        },
        "counts": {
            "hits": int(hits["TIME"].size),
            "frames": int(np.unique(hits["FRAME"]).size),
            "hits_per_pass": counts_per_pass,
        },
        "scenario": sc.to_dict(),
    }
    log.info("simulated %s: %d photons, %d hits, %d passes", sc.obs_id, len(photons), hits["TIME"].size, len(l1))
    return SimulatedDataset(sc, int(seed), l1, attitude, angles, saa, truth, photons, detected, hits)


def scenario_manifest(sc: Scenario) -> dict[str, Any]:
    """The ``dataset.json`` keys of a scenario's observation (without the file list)."""
    return {
        "obs_id": sc.obs_id,
        "object": sc.object,
        "ra_nom": float(sc.pointing.ra),
        "dec_nom": float(sc.pointing.dec),
        "roll_nom": float(sc.pointing.roll),
        "tstart": float(sc.tstart),
        "tstop": float(sc.tstop),
        "trigger_time": sc.trigger_time,
    }
