"""Orbit and ephemerides for the simulated operations: satellite, Sun, Moon, SAA.

Everything here is deliberately low precision (a simulation of screening, not of
navigation), with the accuracy stated:

* **Orbit**: circular low Earth orbit (SVOM: about 625 km altitude, 30 deg inclination,
  public mission facts), with the nodal regression caused by the Earth's oblateness
  ``dOmega/dt = -3/2 n J2 (R_E / a)^2 cos i`` (Vallado, *Fundamentals of Astrodynamics*,
  eq. 9-41; about -6.4 deg/day here).  Inertial axes are the mean equator and
  equinox of J2000, identified with ICRS (the difference, tens of milliarcseconds, is
  irrelevant here).
* **Earth rotation**: Greenwich mean sidereal time of the IAU 1982 model in the
  linear form of the Astronomical Almanac, ``GMST = 280.46061837 + 360.98564736629 D``
  degrees, ``D`` days of UT1 since J2000.0; UT1 is taken as TT - 69.184 s (TT - UTC since
  2017, the leap seconds; |UT1 - UTC| < 0.9 s is neglected: 0.004 deg of longitude).
* **Sun**: low-precision formula of the Astronomical Almanac (section C), accurate to
  0.01 deg between 1950 and 2050, referred to J2000 by removing the general precession
  in longitude (1.3970 deg per century).
* **Moon**: low-precision geocentric series of the Astronomical Almanac (section D,
  six longitude and four latitude terms), accurate to about 0.3 deg; the parallax seen
  from low orbit (up to 1 deg) is neglected.
* **SAA**: an ellipse in geographic longitude/latitude (centre 40 W, 25 S; semi-axes
  50 deg in longitude, 22 deg in latitude), a rough outline of the inner-belt proton
  region at 600 km (AP8-type maps).  This is an assumption of the simulator, to be
  replaced by the mission's SAA contour when published.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from mxt_pipeline import constants as C
from mxt_pipeline.datamodel import GTI
from mxt_pipeline.errors import MXTInputError

__all__ = [
    "EARTH_RADIUS_KM",
    "MU_EARTH_KM3_S2",
    "J2_EARTH",
    "TT_MINUS_UT1_S",
    "X_RAY_ATMOSPHERE_KM",
    "Orbit",
    "SAARegion",
    "met_to_jd",
    "gmst_deg",
    "sun_direction",
    "moon_direction",
    "angle_between_deg",
    "earth_elevation_deg",
    "occulted",
    "bad_time_from_samples",
]

#: Equatorial radius of the Earth (km), gravitational parameter (km^3 s^-2), J2 (WGS-84).
EARTH_RADIUS_KM = 6378.137
MU_EARTH_KM3_S2 = 398600.4418
J2_EARTH = 1.08263e-3
#: TT - UT1 (s), taken as TT - UTC = 32.184 + 37 leap seconds (valid since 2017-01-01).
TT_MINUS_UT1_S = 69.184
#: Height below which the atmosphere absorbs X-rays along a grazing line of sight (km);
#: soft X-rays are absorbed at tangent heights of about 100 km (e.g. the occultation
#: studies of the upper atmosphere with X-ray telescopes).
X_RAY_ATMOSPHERE_KM = 100.0

_J2000_JD = 2451545.0
_DEG = math.pi / 180.0


def met_to_jd(met: np.ndarray | float) -> np.ndarray:
    """Julian date (TT) of mission times (TT seconds since MJD 57754)."""
    return 2400000.5 + C.MJDREFI + C.MJDREFF + np.asarray(met, dtype=float) / 86400.0


def gmst_deg(met: np.ndarray | float) -> np.ndarray:
    """Greenwich mean sidereal time (deg, 0-360) at mission times (see module docstring)."""
    d = met_to_jd(met) - TT_MINUS_UT1_S / 86400.0 - _J2000_JD
    return np.mod(280.46061837 + 360.98564736629 * d, 360.0)


def _ecliptic_to_equatorial(lam_deg: np.ndarray, beta_deg: np.ndarray, eps_deg: float | np.ndarray) -> np.ndarray:
    lam, beta, eps = lam_deg * _DEG, beta_deg * _DEG, np.asarray(eps_deg) * _DEG
    x = np.cos(beta) * np.cos(lam)
    y = np.cos(beta) * np.sin(lam)
    z = np.sin(beta)
    return np.stack([x, y * np.cos(eps) - z * np.sin(eps), y * np.sin(eps) + z * np.cos(eps)], axis=-1)


def sun_direction(met: np.ndarray | float) -> np.ndarray:
    """Geocentric unit vectors (N, 3) towards the Sun (J2000 equator), accuracy 0.01 deg."""
    n = np.atleast_1d(met_to_jd(met) - _J2000_JD)
    big_l = 280.460 + 0.9856474 * n
    g = (357.528 + 0.9856003 * n) * _DEG
    lam = big_l + 1.915 * np.sin(g) + 0.020 * np.sin(2 * g)
    lam_j2000 = lam - 1.3970 * n / 36525.0  # remove the precession since J2000
    return _ecliptic_to_equatorial(lam_j2000, np.zeros_like(lam), 23.4393)


def moon_direction(met: np.ndarray | float) -> np.ndarray:
    """Geocentric unit vectors (N, 3) towards the Moon (J2000 equator), accuracy about 0.3 deg."""
    t = np.atleast_1d(met_to_jd(met) - _J2000_JD) / 36525.0

    def s(a, b):
        return np.sin((a + b * t) * _DEG)

    lam = (
        218.32 + 481267.881 * t
        + 6.29 * s(135.0, 477198.87) - 1.27 * s(259.3, -413335.36) + 0.66 * s(235.7, 890534.22)
        + 0.21 * s(269.9, 954397.74) - 0.19 * s(357.5, 35999.05) - 0.11 * s(186.5, 966404.03)
    )  # fmt: skip
    beta = 5.13 * s(93.3, 483202.02) + 0.28 * s(228.2, 960400.89) - 0.28 * s(318.3, 6003.15) - 0.17 * s(217.6, -407332.21)
    return _ecliptic_to_equatorial(lam - 1.3970 * t, beta, 23.4393)


def angle_between_deg(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Angle (deg) between unit vectors, row by row (atan2 form, accurate at all angles)."""
    u = np.asarray(u, dtype=float).reshape(-1, 3)
    v = np.asarray(v, dtype=float).reshape(-1, 3)
    cross = np.linalg.norm(np.cross(u, v), axis=1)
    dot = np.sum(u * v, axis=1)
    return np.degrees(np.arctan2(cross, dot))


@dataclass(frozen=True)
class Orbit:
    """Circular orbit: altitude (km), inclination, right ascension of the ascending node
    and argument of latitude at ``epoch`` (deg; epoch a mission time)."""

    altitude_km: float = 625.0
    inclination_deg: float = 30.0
    raan_deg: float = 0.0
    arg_lat_deg: float = 0.0
    epoch: float = 0.0

    def __post_init__(self):
        if not (150.0 <= self.altitude_km <= 40000.0):
            raise MXTInputError(f"orbit altitude must be 150-40000 km, got {self.altitude_km}", keyword="altitude_km")
        if not (0.0 <= self.inclination_deg <= 180.0):
            raise MXTInputError("orbit inclination must be 0-180 deg", keyword="inclination_deg")

    @property
    def radius_km(self) -> float:
        return EARTH_RADIUS_KM + self.altitude_km

    @property
    def mean_motion(self) -> float:
        """rad/s."""
        return math.sqrt(MU_EARTH_KM3_S2 / self.radius_km**3)

    @property
    def period_s(self) -> float:
        return 2 * math.pi / self.mean_motion

    @property
    def raan_rate(self) -> float:
        """Nodal regression (rad/s) from J2."""
        return -1.5 * self.mean_motion * J2_EARTH * (EARTH_RADIUS_KM / self.radius_km) ** 2 * math.cos(
            self.inclination_deg * _DEG
        )

    def position(self, met: np.ndarray | float) -> np.ndarray:
        """Inertial position (N, 3) in km."""
        dt = np.atleast_1d(np.asarray(met, dtype=float)) - self.epoch
        u = self.arg_lat_deg * _DEG + self.mean_motion * dt
        node = self.raan_deg * _DEG + self.raan_rate * dt
        inc = self.inclination_deg * _DEG
        cu, su, co, so = np.cos(u), np.sin(u), np.cos(node), np.sin(node)
        r = self.radius_km
        return r * np.stack([cu * co - su * math.cos(inc) * so, cu * so + su * math.cos(inc) * co, su * math.sin(inc)], axis=-1)

    def geographic(self, met: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Longitude in [-180, 180) and latitude (deg) of the sub-satellite point (spherical Earth)."""
        p = self.position(met)
        lon = np.degrees(np.arctan2(p[:, 1], p[:, 0])) - gmst_deg(met)
        lat = np.degrees(np.arcsin(p[:, 2] / np.linalg.norm(p, axis=1)))
        return (lon + 180.0) % 360.0 - 180.0, lat

    def to_dict(self) -> dict:
        return asdict(self)


def earth_elevation_deg(direction: np.ndarray, sat_pos_km: np.ndarray, limb_height_km: float = 0.0) -> np.ndarray:
    """Elevation (deg) of unit ``direction`` vectors above the Earth limb seen from ``sat_pos_km``.

    ``limb_height_km`` raises the limb (the X-ray opaque atmosphere); negative results
    mean the direction is occulted.
    """
    p = np.asarray(sat_pos_km, dtype=float).reshape(-1, 3)
    r = np.linalg.norm(p, axis=1)
    nadir_angle = angle_between_deg(direction, -p / r[:, None])
    limb = np.degrees(np.arcsin(np.clip((EARTH_RADIUS_KM + limb_height_km) / r, -1.0, 1.0)))
    return nadir_angle - limb


def occulted(direction: np.ndarray, sat_pos_km: np.ndarray) -> np.ndarray:
    """True where a line of sight passes below the X-ray opaque atmosphere (100 km)."""
    return earth_elevation_deg(direction, sat_pos_km, X_RAY_ATMOSPHERE_KM) < 0.0


@dataclass(frozen=True)
class SAARegion:
    """Elliptical SAA outline in geographic coordinates (deg), see the module docstring."""

    lon0: float = -40.0
    lat0: float = -25.0
    semi_lon: float = 50.0
    semi_lat: float = 22.0

    def level(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """``(dlon/a)^2 + (dlat/b)^2 - 1``: negative inside the SAA (longitude wrap-safe)."""
        dlon = (np.asarray(lon, dtype=float) - self.lon0 + 180.0) % 360.0 - 180.0
        dlat = np.asarray(lat, dtype=float) - self.lat0
        return (dlon / self.semi_lon) ** 2 + (dlat / self.semi_lat) ** 2 - 1.0

    def passages(self, orbit: Orbit, t0: float, t1: float, step: float = 10.0) -> GTI:
        """Intervals inside the SAA between ``t0`` and ``t1`` (crossings interpolated linearly)."""
        n = max(2, int(math.ceil((t1 - t0) / step)) + 1)
        t = np.linspace(t0, t1, n)
        lon, lat = orbit.geographic(t)
        level = self.level(lon, lat)
        return bad_time_from_samples(t, level < 0.0, level)

    def to_dict(self) -> dict:
        return asdict(self)


def bad_time_from_samples(t: np.ndarray, bad: np.ndarray, level: np.ndarray | None = None) -> GTI:
    """Intervals where a sampled condition holds; crossings at the zero of ``level``
    (linear interpolation) or at mid-samples when ``level`` is None."""
    t = np.asarray(t, dtype=float)
    bad = np.asarray(bad, dtype=bool)
    if t.size == 0:
        return GTI.empty()
    change = np.flatnonzero(bad[1:] != bad[:-1])
    if level is None:
        tc = 0.5 * (t[change] + t[change + 1])
    else:
        l0, l1 = level[change], level[change + 1]
        frac = np.where(l1 != l0, l0 / (l0 - l1), 0.5)
        tc = t[change] + np.clip(frac, 0.0, 1.0) * (t[change + 1] - t[change])
    bounds = np.r_[t[0], tc, t[-1]]
    states = np.r_[bad[0], bad[change + 1]]
    return GTI(bounds[:-1][states], bounds[1:][states])
