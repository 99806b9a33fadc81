"""Backgrounds: the cosmic X-ray background through the optics, particles in the detector,
and an optional on-board calibration source.

Cosmic X-ray background (:class:`CXBSettings`, :func:`cxb_photons`)
    An isotropic absorbed power law of photon index 1.41 whose 2-10 keV intensity is
    2.24e-11 erg cm^-2 s^-1 deg^-2 (De Luca & Molendi 2004, A&A 419, 837, XMM-Newton),
    i.e. about 11.4 photons cm^-2 s^-1 sr^-1 keV^-1 at 1 keV, absorbed by the Galactic
    column of the pointing.  Below about 1 keV the real sky adds the Galactic thermal
    foreground, not modelled here (an assumption: the simulated background is low at
    soft energies).  Sky directions are drawn uniformly (on the sphere) in a square of
    instrument angles of half-width ``half_width_arcmin`` around the boresight - wider
    than the 29' half-field, because the cross arms of the lobster-eye PSF bring photons
    from outside the field onto the chip - then go through effective area, vignetting
    and PSF like a point source's photons.  The whole field is taken as occulted when
    the boresight is behind the atmosphere.
Particle background (:class:`ParticleSettings`, :func:`particle_events`)
    Charged particles and secondaries deposit energy directly in the detector, not
    through the optics, so it is spread uniformly over the pixels and not vignetted.
    Two parts: (1) a flat continuum of X-ray-like deposits, ``rate_cm2_s_kev`` per cm^2
    of detector per keV between ``e_min`` and ``e_max`` (default 3e-3 counts s^-1 cm^-2
    keV^-1 over 0.2-12 keV: about 0.13 counts/s on the 3.7 cm^2 chip; an assumption of
    the order of the quiescent particle background of pnCCDs in orbit, not an MXT
    measurement); (2) minimum-ionising particle tracks at ``mip_rate_cm2_s`` per cm^2,
    isotropic (the flux through the detector plane goes as cos(theta)), each a straight
    track through the 450 micron depleted thickness of the pnCCD (eROSITA-type camera)
    losing 0.29 keV per micron (about 80 electron-hole pairs per micron, the most probable
    loss of a minimum-ionising particle in silicon); their projected length on the chip
    is ``450 um x tan(theta)``.  Tracks make multi-pixel events that the chain flags
    (invalid pattern, pile-up) or frames it rejects.
Calibration source (:class:`CalibrationSettings`)
    Lines (``energy`` keV, ``rate`` counts/s over the chip) illuminating the detector
    uniformly, e.g. Al K-alpha 1.487 keV and Mn K-alpha 5.895 keV; used for golden
    datasets that check the spectral calibration.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mxt_pipeline import constants as C
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.simulate.ephemeris import (
    X_RAY_ATMOSPHERE_KM,
    bad_time_from_samples,
    earth_elevation_deg,
)
from mxt_pipeline.simulate.optics import on_chip
from mxt_pipeline.simulate.photons import EnergyTable, PhotonBatch
from mxt_pipeline.simulate.sources import ObservationContext
from mxt_pipeline.simulate.spectra import KEV_TO_ERG, PowerLaw

__all__ = [
    "CXB_INDEX",
    "CXB_INTENSITY_2_10",
    "cxb_norm",
    "CXBSettings",
    "ParticleSettings",
    "CalibrationSettings",
    "cxb_photons",
    "particle_events",
    "calibration_events",
    "DETECTOR_AREA_CM2",
]

#: CXB photon index and 2-10 keV intensity (erg cm^-2 s^-1 deg^-2), De Luca & Molendi (2004).
CXB_INDEX = 1.41
CXB_INTENSITY_2_10 = 2.24e-11
#: Area of the 256 x 256 pixels of 75 micron (cm^2).
DETECTOR_AREA_CM2 = (C.N_PIX * C.PIXEL_SIZE_MM / 10.0) ** 2
#: Depleted thickness of the pnCCD (micron) and most probable MIP loss (keV/micron).
DEPLETION_UM = 450.0
MIP_LOSS_KEV_UM = 0.29

_SR_PER_DEG2 = (math.pi / 180.0) ** 2
_ARCMIN = math.pi / (180.0 * 60.0)


def cxb_norm(index: float = CXB_INDEX, intensity_2_10: float = CXB_INTENSITY_2_10) -> float:
    """Power-law normalisation (photons cm^-2 s^-1 sr^-1 keV^-1 at 1 keV) of the CXB."""
    a = 2.0 - index
    integral = (10.0**a - 2.0**a) / a  # integral of E^(1-index) over 2-10 keV
    return intensity_2_10 / (KEV_TO_ERG * integral * _SR_PER_DEG2)


def _check_keys(d: Mapping[str, Any], cls, where: str) -> dict[str, Any]:
    allowed = set(cls.__dataclass_fields__)
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise MXTInputError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}", keyword=unknown[0])
    return dict(d)


@dataclass(frozen=True)
class CXBSettings:
    """Cosmic X-ray background (see module docstring); ``nh`` in 1e22 cm^-2."""

    index: float = CXB_INDEX
    intensity_2_10: float = CXB_INTENSITY_2_10
    nh: float = 0.03
    half_width_arcmin: float = 60.0

    def __post_init__(self):
        if self.intensity_2_10 < 0 or self.nh < 0:
            raise MXTInputError("cxb: intensity and nh must be >= 0", keyword="intensity_2_10")
        if not (0 < self.half_width_arcmin <= 600):
            raise MXTInputError("cxb: half_width_arcmin must be in (0, 600]", keyword="half_width_arcmin")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CXBSettings:
        return cls(**{k: float(v) for k, v in _check_keys(d, cls, "background.cxb").items()})

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "norm_1kev_per_sr": cxb_norm(self.index, self.intensity_2_10)}


@dataclass(frozen=True)
class ParticleSettings:
    """Particle background in the detector (see module docstring)."""

    rate_cm2_s_kev: float = 3e-3
    e_min: float = 0.2
    e_max: float = 12.0
    mip_rate_cm2_s: float = 0.1

    def __post_init__(self):
        if self.rate_cm2_s_kev < 0 or self.mip_rate_cm2_s < 0 or not 0 < self.e_min < self.e_max:
            raise MXTInputError("particle: rates must be >= 0 and 0 < e_min < e_max", keyword="rate_cm2_s_kev")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ParticleSettings:
        return cls(**{k: float(v) for k, v in _check_keys(d, cls, "background.particle").items()})

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "detector_area_cm2": DETECTOR_AREA_CM2, "depletion_um": DEPLETION_UM,
                "mip_loss_kev_um": MIP_LOSS_KEV_UM}  # fmt: skip


@dataclass(frozen=True)
class CalibrationSettings:
    """Calibration lines over the whole chip: ``lines = ({"energy": keV, "rate": counts/s}, ...)``."""

    lines: tuple[Mapping[str, float], ...] = field(default_factory=tuple)

    def __post_init__(self):
        lines = []
        for ln in self.lines:
            try:
                e, r = float(ln["energy"]), float(ln["rate"])
            except (KeyError, TypeError, ValueError):
                raise MXTInputError("calibration: each line needs numeric 'energy' and 'rate'", keyword="lines") from None
            if not (e > 0 and r >= 0):
                raise MXTInputError("calibration: line energy must be > 0 and rate >= 0", keyword="lines")
            lines.append({"energy": e, "rate": r})
        object.__setattr__(self, "lines", tuple(lines))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CalibrationSettings:
        return cls(lines=tuple(_check_keys(d, cls, "background.calibration").get("lines", ())))

    def to_dict(self) -> dict[str, Any]:
        return {"lines": [dict(x) for x in self.lines]}


def _boresight_occulted(ctx: ObservationContext, step: float = 10.0):
    n = max(2, int(math.ceil((ctx.tstop - ctx.tstart) / step)) + 1)
    t = np.linspace(ctx.tstart, ctx.tstop, n)
    bore = ctx.attitude.rotation(t).apply(np.array([1.0, 0.0, 0.0])).reshape(-1, 3)
    elev = earth_elevation_deg(bore, ctx.orbit.position(t), X_RAY_ATMOSPHERE_KM)
    return bad_time_from_samples(t, elev < 0.0, elev)


def _uniform_times(rate: float, ctx: ObservationContext, rng: np.random.Generator, good) -> np.ndarray:
    """Poisson times of a constant rate over the good time."""
    n = rng.poisson(rate * (ctx.tstop - ctx.tstart))
    t = np.sort(ctx.tstart + rng.random(n) * (ctx.tstop - ctx.tstart))
    return t[good.contains(t)]


def cxb_photons(settings: CXBSettings, ctx: ObservationContext, rng: np.random.Generator, component: int,
                energy_step_kev: float = 0.005) -> tuple[PhotonBatch, dict[str, float]]:  # fmt: skip
    """CXB photons absorbed in the detector, and truth figures (rate at the focal plane)."""
    optics = ctx.optics
    h = settings.half_width_arcmin * _ARCMIN
    # Solid angle of the square |atan(v_y/v_x)|, |atan(v_z/v_x)| <= h: 4 asin(sin^2 h).
    omega = 4.0 * math.asin(math.sin(h) ** 2)
    spec = PowerLaw(index=settings.index, nh=settings.nh)
    norm = cxb_norm(settings.index, settings.intensity_2_10)
    e_lo, e_hi = optics.energy_range()
    # Envelope of the vignetting: its maximum over the off-axis angles of the region.
    probe = EnergyTable.from_function(lambda e: np.ones_like(e), max(e_lo, 0.05), e_hi, energy_step_kev)
    centres = 0.5 * (probe.edges[1:] + probe.edges[:-1])
    thetas = np.linspace(0.0, math.degrees(math.sqrt(2) * h) * 60.0, 17)
    ee, tt = np.meshgrid(centres, thetas, indexing="ij")
    v_env = optics.vignetting(ee.ravel(), tt.ravel()).reshape(ee.shape).max(axis=1)
    table = EnergyTable(probe.edges, norm * omega * spec.shape(centres) * optics.area(centres) * v_env)
    good = ctx.camera_on.subtract(_boresight_occulted(ctx))
    t = _uniform_times(table.total, ctx, rng, good)
    n = t.size
    # Directions uniform on the sphere: tangents (u, w) uniform in the square, kept
    # with probability (1 + u^2 + w^2)^(-3/2) (the Jacobian of the gnomonic plane).
    tan_h = math.tan(h)
    u = rng.uniform(-tan_h, tan_h, n)
    w = rng.uniform(-tan_h, tan_h, n)
    keep = rng.random(n) < (1.0 + u * u + w * w) ** -1.5
    k = table.sample_bins(n, rng)
    energy = table.edges[k] + rng.random(n) * table.widths[k]
    ang_y = np.arctan(u) / _ARCMIN
    ang_z = np.arctan(w) / _ARCMIN
    dety, detz = optics.angles_to_det(ang_y, ang_z)
    theta = optics.offaxis_arcmin(dety, detz)
    keep &= rng.random(n) * v_env[k] < optics.vignetting(centres[k], theta)
    t, energy, dety, detz, theta = t[keep], energy[keep], dety[keep], detz[keep], theta[keep]
    dy, dz = optics.scatter(energy, theta, rng)
    rawy, rawz = optics.det_to_raw(dety + dy, detz + dz)
    on = on_chip(rawy, rawz)
    energy = energy[on]
    batch = PhotonBatch(t[on], ctx.frame_of(t[on]), rawy[on], rawz[on], energy, ctx.detector.charge_of(energy, rng),
                        np.full(energy.size, component, dtype=np.int32))  # fmt: skip
    info = {"solid_angle_sr": omega, "photons_on_detector": int(on.sum()), "good_time": good.exposure}
    return batch, info


def _uniform_on_chip(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = -0.5, C.N_PIX - 0.5
    return rng.uniform(lo, hi, n), rng.uniform(lo, hi, n)


def particle_events(settings: ParticleSettings, ctx: ObservationContext, rng: np.random.Generator, component: int
                    ) -> tuple[PhotonBatch, dict[str, float]]:  # fmt: skip
    """Particle deposits in the detector (continuum and MIP track segments) while the camera is on."""
    parts = []
    rate_c = settings.rate_cm2_s_kev * DETECTOR_AREA_CM2 * (settings.e_max - settings.e_min)
    t = _uniform_times(rate_c, ctx, rng, ctx.camera_on)
    y, z = _uniform_on_chip(t.size, rng)
    e = rng.uniform(settings.e_min, settings.e_max, t.size)
    parts.append((t, y, z, e, ctx.detector.charge_of(e, rng)))
    n_tracks = 0
    if settings.mip_rate_cm2_s > 0:
        tt = _uniform_times(settings.mip_rate_cm2_s * DETECTOR_AREA_CM2, ctx, rng, ctx.camera_on)
        n_tracks = tt.size
        # Incidence angle of an isotropic flux through a plane: cos(theta) = sqrt(U).
        cos_t = np.sqrt(rng.random(n_tracks))
        tan_t = np.sqrt(1.0 - cos_t**2) / np.maximum(cos_t, 1e-3)
        length_pix = np.minimum(DEPLETION_UM * tan_t / (C.PIXEL_SIZE_MM * 1000.0), 2.0 * C.N_PIX)
        phi = rng.uniform(0.0, 2.0 * np.pi, n_tracks)
        y0, z0 = _uniform_on_chip(n_tracks, rng)
        # Deposits every quarter pixel along the projected track (at least one point):
        # each carries the energy lost on its share of the 3-D path.
        n_pts = np.maximum(1, np.ceil(length_pix * 4).astype(np.int64))
        path_um = DEPLETION_UM / cos_t  # 3-D path through the depleted layer
        trk = np.repeat(np.arange(n_tracks), n_pts)
        frac = (np.arange(trk.size) - np.repeat(np.cumsum(n_pts) - n_pts, n_pts) + 0.5) / n_pts[trk]
        py = y0[trk] + (frac - 0.5) * length_pix[trk] * np.cos(phi[trk])
        pz = z0[trk] + (frac - 0.5) * length_pix[trk] * np.sin(phi[trk])
        pe = MIP_LOSS_KEV_UM * path_um[trk] / n_pts[trk]
        inside = on_chip(py, pz)
        parts.append((tt[trk][inside], py[inside], pz[inside], pe[inside], pe[inside]))
    t = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    z = np.concatenate([p[2] for p in parts])
    e = np.concatenate([p[3] for p in parts])
    q = np.concatenate([p[4] for p in parts])
    batch = PhotonBatch(t, ctx.frame_of(t), y, z, e, q, np.full(t.size, component, dtype=np.int32))
    return batch, {"continuum_rate": rate_c, "mip_tracks": int(n_tracks)}


def calibration_events(settings: CalibrationSettings, ctx: ObservationContext, rng: np.random.Generator,
                       component: int) -> tuple[PhotonBatch, dict[str, float]]:  # fmt: skip
    """Calibration-line photons absorbed uniformly over the chip while the camera is on."""
    parts = []
    for line in settings.lines:
        t = _uniform_times(line["rate"], ctx, rng, ctx.camera_on)
        parts.append((t, np.full(t.size, line["energy"])))
    if not parts:
        return PhotonBatch.empty(), {"photons": 0}
    t = np.concatenate([p[0] for p in parts])
    e = np.concatenate([p[1] for p in parts])
    y, z = _uniform_on_chip(t.size, rng)
    batch = PhotonBatch(t, ctx.frame_of(t), y, z, e, ctx.detector.charge_of(e, rng),
                        np.full(t.size, component, dtype=np.int32))  # fmt: skip
    return batch, {"photons": int(t.size)}
