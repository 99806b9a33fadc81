"""Point sources on the sky and the photons they put on the detector.

A :class:`Source` has a position (RA/Dec, deg), a flux (erg cm^-2 s^-1 in 0.3-10 keV
where its time profile equals 1), a spectrum and a time profile.  Its photons
(:func:`source_photons`) are made as SIXTE does for a point source (arrival time from
the light curve, energy from the spectrum times the effective area, vignetting, PSF),
with two refinements:

* the vignetting ``V(E, theta)`` varies during the observation (jitter, slew), so
  energies are drawn from ``N(E) A(E) V_env(E)`` with ``V_env`` the largest vignetting
  over the off-axis angles the source takes, and each photon is then kept with
  probability ``V(E, theta(t)) / V_env(E)`` at its own off-axis angle (thinning: exact);
* photons arriving while the camera is off (SAA) or while the source is behind the
  Earth's X-ray opaque atmosphere are not detected.

The focal-plane position of the source is taken at the time of the photon's frame (the
attitude moves by far less than a pixel during one 100 ms frame when settled).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mxt_pipeline import constants as C
from mxt_pipeline.datamodel import GTI, Attitude
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.geometry import radec_to_det, radec_to_vectors
from mxt_pipeline.simulate.detector import DetectorModel
from mxt_pipeline.simulate.ephemeris import (
    X_RAY_ATMOSPHERE_KM,
    Orbit,
    bad_time_from_samples,
    earth_elevation_deg,
)
from mxt_pipeline.simulate.optics import Optics, on_chip
from mxt_pipeline.simulate.photons import EnergyTable, PhotonBatch, arrival_times
from mxt_pipeline.simulate.spectra import (
    FLUX_BAND_KEV,
    Spectrum,
    normalisation_for_flux,
    spectrum_from_dict,
)
from mxt_pipeline.simulate.timeprofiles import Constant, TimeProfile, profile_from_dict

__all__ = ["Source", "ObservationContext", "source_photons", "SourceStats", "occultation_time"]


@dataclass(frozen=True, eq=False)
class Source:
    """A point source (see the module docstring)."""

    name: str
    ra: float
    dec: float
    flux: float
    spectrum: Spectrum
    profile: TimeProfile = field(default_factory=Constant)
    flux_band: tuple[float, float] = FLUX_BAND_KEV

    def __post_init__(self):
        if not (math.isfinite(self.ra) and math.isfinite(self.dec) and -90 <= self.dec <= 90):
            raise MXTInputError(f"source {self.name!r}: RA/Dec must be finite with |Dec| <= 90", keyword="dec")
        if not (self.flux >= 0 and math.isfinite(self.flux)):
            raise MXTInputError(f"source {self.name!r}: flux must be finite and >= 0", keyword="flux")

    @property
    def norm(self) -> float:
        """Spectral normalisation giving ``flux`` in ``flux_band`` (photons cm^-2 s^-1 keV^-1 scale)."""
        return normalisation_for_flux(self.spectrum, self.flux, self.flux_band)

    def photon_spectrum(self, energy_kev: np.ndarray) -> np.ndarray:
        """Photons cm^-2 s^-1 keV^-1 where the profile equals 1."""
        return self.norm * self.spectrum.shape(energy_kev)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ra": float(self.ra),
            "dec": float(self.dec),
            "flux": float(self.flux),
            "flux_band": [float(x) for x in self.flux_band],
            "spectrum": self.spectrum.to_dict(),
            "profile": self.profile.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, data_dir=None) -> Source:
        """From the scenario form ``{name, ra, dec, flux, spectrum, profile}``."""
        missing = [k for k in ("ra", "dec", "flux", "spectrum") if k not in d]
        if missing:
            raise MXTInputError(f"source {d.get('name', '?')!r}: missing key(s) {missing}", keyword=missing[0])
        unknown = sorted(set(d) - {"name", "ra", "dec", "flux", "spectrum", "profile", "flux_band"})
        if unknown:
            raise MXTInputError(f"source {d.get('name', '?')!r}: unknown key(s) {unknown}", keyword=unknown[0])
        try:
            ra, dec, flux = float(d["ra"]), float(d["dec"]), float(d["flux"])
        except (TypeError, ValueError):
            raise MXTInputError(f"source {d.get('name', '?')!r}: ra, dec, flux must be numbers", keyword="ra") from None
        band = tuple(float(x) for x in d.get("flux_band", FLUX_BAND_KEV))
        return cls(
            name=str(d.get("name", "src")),
            ra=ra,
            dec=dec,
            flux=flux,
            spectrum=spectrum_from_dict(d["spectrum"]),
            profile=profile_from_dict(d.get("profile"), data_dir=data_dir),
            flux_band=band,  # type: ignore[arg-type]
        )


@dataclass
class ObservationContext:
    """What every component needs to make its photons."""

    tstart: float
    tstop: float
    optics: Optics
    detector: DetectorModel
    attitude: Attitude
    orbit: Orbit
    camera_on: GTI
    frametime: float = C.FRAME_TIME_S

    def frame_of(self, t: np.ndarray) -> np.ndarray:
        return np.floor((np.asarray(t, dtype=float) - self.tstart) / self.frametime).astype(np.int64)

    def frame_time(self, frame: np.ndarray) -> np.ndarray:
        """Mid-time of frames (the TIME written for their hits)."""
        return self.tstart + (np.asarray(frame, dtype=float) + 0.5) * self.frametime

    def frames_read(self) -> np.ndarray:
        """Frames whose mid-time falls while the camera is on."""
        n = int(math.floor((self.tstop - self.tstart) / self.frametime + 1e-9))
        f = np.arange(n, dtype=np.int64)
        return f[self.camera_on.contains(self.frame_time(f))]


def occultation_time(direction: np.ndarray, orbit: Orbit, tstart: float, tstop: float, step: float = 10.0) -> GTI:
    """Intervals when a fixed sky direction (unit vector) is behind the Earth's atmosphere."""
    n = max(2, int(math.ceil((tstop - tstart) / step)) + 1)
    t = np.linspace(tstart, tstop, n)
    d = np.repeat(np.asarray(direction, dtype=float).reshape(1, 3), n, axis=0)
    elev = earth_elevation_deg(d, orbit.position(t), X_RAY_ATMOSPHERE_KM)
    return bad_time_from_samples(t, elev < 0.0, elev)


@dataclass
class SourceStats:
    """Truth figures of one source."""

    offaxis_arcmin: float
    in_fov: bool
    rawy: float
    rawz: float
    expected_photons: float
    photons_on_detector: int = 0
    photons_detected: int = 0
    good_time: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "offaxis_arcmin": float(self.offaxis_arcmin),
            "in_fov": bool(self.in_fov),
            "raw_position": [float(self.rawy), float(self.rawz)],
            "expected_photons": float(self.expected_photons),
            "photons_on_detector": int(self.photons_on_detector),
            "photons_detected": int(self.photons_detected),
            "good_time": float(self.good_time),
        }


def _theta_envelope(optics: Optics, energies: np.ndarray, thetas: np.ndarray) -> np.ndarray:
    """Largest vignetting over a set of off-axis angles, per energy."""
    tgrid = np.unique(np.r_[np.linspace(thetas.min(), thetas.max(), 9), np.quantile(thetas, [0.25, 0.5, 0.75])])
    ee, tt = np.meshgrid(energies, tgrid, indexing="ij")
    v = optics.vignetting(ee.ravel(), tt.ravel()).reshape(ee.shape)
    return v.max(axis=1)


def source_photons(source: Source, ctx: ObservationContext, rng: np.random.Generator, component: int,
                   energy_step_kev: float = 0.005) -> tuple[PhotonBatch, SourceStats]:  # fmt: skip
    """Photons of one source absorbed in the detector, and its truth figures.

    Parameters
    ----------
    source : Source
    ctx : ObservationContext
    rng : numpy.random.Generator
        The source's own stream (spawned from the seed by source index).
    component : int
        Component number written in the batch.
    energy_step_kev : float
        Bin width of the energy table (see :class:`~.photons.EnergyTable`).
    """
    optics = ctx.optics
    # Where the source falls during the observation (on a subsample of the attitude).
    t_att = np.asarray(ctx.attitude["TIME"], dtype=float)
    stride = max(1, t_att.size // 2000)
    t_s = t_att[::stride]
    dety_s, detz_s = radec_to_det(np.full(t_s.size, source.ra), np.full(t_s.size, source.dec), t_s, ctx.attitude,
                                  optics.teldef)  # fmt: skip
    if np.any(~np.isfinite(dety_s)):
        raise MXTInputError(f"source {source.name!r} is behind the telescope", keyword="ra")
    theta_s = optics.offaxis_arcmin(dety_s, detz_s)
    mid = t_s.size // 2
    rawy_mid, rawz_mid = optics.det_to_raw(dety_s[mid:mid + 1], detz_s[mid:mid + 1])
    in_fov = bool(on_chip(rawy_mid, rawz_mid)[0])

    e_lo, e_hi = optics.energy_range()
    e_lo = max(e_lo, 0.05)
    edges_probe = EnergyTable.from_function(lambda e: np.ones_like(e), e_lo, e_hi, energy_step_kev)
    centres = 0.5 * (edges_probe.edges[1:] + edges_probe.edges[:-1])
    v_env = _theta_envelope(optics, centres, theta_s)
    base = source.photon_spectrum(centres) * optics.area(centres)
    table = EnergyTable(edges_probe.edges, base * v_env)

    # Good time of this source: camera on and the source above the atmosphere.
    direction = radec_to_vectors(source.ra, source.dec)[0]
    occ = occultation_time(direction, ctx.orbit, ctx.tstart, ctx.tstop)
    good = ctx.camera_on.subtract(occ) if len(occ) else ctx.camera_on
    # Expected photons at the focal plane: the rate at the median off-axis angle times
    # the profile integrated over the good time.
    v_med = optics.vignetting(centres, np.full(centres.size, float(np.median(theta_s))))
    rate_med = float(np.sum(base * v_med * table.widths))
    prof_int = sum(source.profile.integral(a, b) for a, b in zip(good.start, good.stop))
    stats = SourceStats(float(np.median(theta_s)), in_fov, float(rawy_mid[0]), float(rawz_mid[0]),
                        rate_med * prof_int, good_time=good.exposure)  # fmt: skip

    rate0 = table.total
    t = arrival_times(source.profile, rate0, ctx.tstart, ctx.tstop, rng) if rate0 > 0 else np.empty(0)
    t = t[good.contains(t)]
    if t.size == 0:
        return PhotonBatch.empty(), stats
    k = table.sample_bins(t.size, rng)
    energy = table.edges[k] + rng.random(t.size) * table.widths[k]
    frame = ctx.frame_of(t)
    tf = ctx.frame_time(frame)
    dety, detz = radec_to_det(np.full(t.size, source.ra), np.full(t.size, source.dec), tf, ctx.attitude, optics.teldef)
    theta = optics.offaxis_arcmin(dety, detz)
    # Vignetting thinning at the bin centre (the energy density is constant per bin).
    keep = rng.random(t.size) * v_env[k] < optics.vignetting(centres[k], theta)
    t, energy, frame, dety, detz, theta = t[keep], energy[keep], frame[keep], dety[keep], detz[keep], theta[keep]
    dy, dz = optics.scatter(energy, theta, rng)
    rawy, rawz = optics.det_to_raw(dety + dy, detz + dz)
    on = on_chip(rawy, rawz)
    stats.photons_on_detector = int(on.sum())
    energy = energy[on]
    charge = ctx.detector.charge_of(energy, rng)
    batch = PhotonBatch(t[on], frame[on], rawy[on], rawz[on], energy, charge,
                        np.full(energy.size, component, dtype=np.int32))  # fmt: skip
    return batch, stats
