"""Spacecraft attitude, auxiliary angle (ANG) samples and SAA intervals.

Quaternion convention (also in ``docs/formats.md``): ``QPARAM = (x, y, z, w)``, scalar
last (scipy's convention), the rotation taking instrument-frame vectors to ICRS.  The
boresight is the instrument +X axis; +Y and +Z are the DETY and DETZ directions.
``ROLL`` is the position angle of +Z, measured from north through east.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy.table import Table
from scipy.spatial.transform import Rotation, Slerp

from mxt_pipeline.datamodel.gti import GTI
from mxt_pipeline.datamodel.tables import TableModel
from mxt_pipeline.errors import MXTInputError

__all__ = ["Attitude", "AngleTable", "bad_quaternion", "QUATERNION_NORM_TOL", "SAAIntervals", "pointing_rotation", "rotation_to_pointing", "week_of"]

_WEEK_S = 7 * 86400.0

#: Largest accepted deviation of a QPARAM norm from 1 (``numpy.allclose`` with
#: ``atol=1e-6`` and its default ``rtol=1e-5``, the rule the reader always applied).
QUATERNION_NORM_TOL = 1.1e-5


def bad_quaternion(qparam: np.ndarray, tol: float = QUATERNION_NORM_TOL) -> tuple[int, str] | None:
    """The first row whose quaternion is not a finite unit quaternion, or None.

    Parameters
    ----------
    qparam : ndarray, shape (n, 4)
        Quaternions ``(x, y, z, w)``.
    tol : float
        Largest accepted ``|norm - 1|``.

    Returns
    -------
    (row, reason) or None
        ``row`` counts from 1, as FITS rows do; ``reason`` says what is wrong
        (a non-finite component, or the norm).
    """
    q = np.asarray(qparam, dtype=float).reshape(-1, 4)
    finite = np.all(np.isfinite(q), axis=1)
    norm = np.linalg.norm(np.where(finite[:, None], q, 0.0), axis=1)
    bad = ~finite | ~(np.abs(norm - 1.0) <= tol)
    if not bad.any():
        return None
    i = int(np.argmax(bad))
    if not finite[i]:
        return i + 1, f"QPARAM {q[i].tolist()} is not finite"
    return i + 1, f"QPARAM norm {norm[i]:.9g} is not 1 (tolerance {tol:g})"


def week_of(met: np.ndarray | float) -> np.ndarray:
    """Week number (whole weeks since MJDREF = 2017-01-01) of mission times."""
    return np.floor(np.asarray(met, dtype=float) / _WEEK_S).astype(int)


def pointing_rotation(ra: np.ndarray, dec: np.ndarray, roll: np.ndarray) -> Rotation:
    """Rotations (instrument -> ICRS) for boresight RA/Dec and roll, in degrees.

    The instrument frame is first aligned with (RA, Dec) = (0, 0) with +Z to the north
    and +Y to the east, then rotated: roll about +X (position angle of +Z increasing
    from north through east), declination about the (new) -Y axis, RA about the pole.
    """
    ra = np.atleast_1d(np.asarray(ra, dtype=float))
    dec = np.atleast_1d(np.asarray(dec, dtype=float))
    roll = np.atleast_1d(np.asarray(roll, dtype=float))
    # Intrinsic sequence: about Z by RA, about (new) Y by -Dec, about (new) X by -roll.
    # A positive roll turns +Z from north towards east, i.e. about +X by -roll
    # (+X points at the sky, so the sense is mirrored with respect to the sky view).
    angles = np.stack([ra, -dec, -roll], axis=-1)
    return Rotation.from_euler("ZYX", angles, degrees=True)


def rotation_to_pointing(rot: Rotation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boresight RA, Dec and roll (degrees) of instrument -> ICRS rotations."""
    x = np.atleast_2d(rot.apply(np.array([1.0, 0.0, 0.0]))).reshape(-1, 3)
    z = np.atleast_2d(rot.apply(np.array([0.0, 0.0, 1.0]))).reshape(-1, 3)
    ra = np.degrees(np.arctan2(x[:, 1], x[:, 0])) % 360.0
    dec = np.degrees(np.arcsin(np.clip(x[:, 2], -1.0, 1.0)))
    a, d = np.radians(ra), np.radians(dec)
    north = np.stack([-np.sin(d) * np.cos(a), -np.sin(d) * np.sin(a), np.cos(d)], axis=-1)
    east = np.stack([-np.sin(a), np.cos(a), np.zeros_like(a)], axis=-1)
    roll = np.degrees(np.arctan2(np.sum(z * east, axis=-1), np.sum(z * north, axis=-1))) % 360.0
    return ra, dec, roll


class Attitude(TableModel):
    """Attitude samples (ATT) with interpolation of the pointing at any time."""

    CONTENT = "MXT_ATT"
    EXTNAME = "ATTITUDE"

    def __init__(self, table: Table | None = None, *, meta: dict[str, Any] | None = None):
        super().__init__(table, meta=meta)
        t = self["TIME"]
        if len(t) and not np.all(np.diff(t) > 0):
            raise MXTInputError("attitude times must be strictly increasing", hdu="ATTITUDE", column="TIME")
        q = self["QPARAM"].reshape(-1, 4) if len(t) else np.zeros((0, 4))
        found = bad_quaternion(q)
        if found is not None:
            row, reason = found
            raise MXTInputError(f"QPARAM must be unit quaternions: row {row}: {reason}", hdu="ATTITUDE",
                                column="QPARAM")
        self._slerp: Slerp | None = None

    @classmethod
    def from_pointing(cls, time: np.ndarray, ra: np.ndarray, dec: np.ndarray, roll: np.ndarray, meta=None) -> Attitude:
        """Build from boresight RA/Dec/roll samples (degrees)."""
        rot = pointing_rotation(ra, dec, roll)
        ra2, dec2, roll2 = rotation_to_pointing(rot)
        table = Table({"TIME": np.asarray(time, dtype=float), "QPARAM": rot.as_quat(), "RA": ra2, "DEC": dec2, "ROLL": roll2})
        return cls(table, meta=meta)

    def rotation(self, times: np.ndarray) -> Rotation:
        """Instrument -> ICRS rotation at ``times`` (slerp between samples; clamped at the ends)."""
        t = self["TIME"]
        if len(t) == 0:
            raise MXTInputError("empty attitude", hdu="ATTITUDE")
        rots = Rotation.from_quat(self["QPARAM"])
        times = np.clip(np.asarray(times, dtype=float), t[0], t[-1])
        if len(t) == 1:
            q0 = rots.as_quat().reshape(-1, 4)[0]
            return Rotation.from_quat(np.repeat(q0[None, :], np.size(times), axis=0))
        if self._slerp is None:
            self._slerp = Slerp(t, rots)
        return self._slerp(times)

    def pointing(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boresight RA, Dec and roll (degrees) at ``times``."""
        return rotation_to_pointing(self.rotation(times))

    def stable(self, max_rate_arcsec_s: float) -> GTI:
        """Intervals where the boresight moves slower than ``max_rate_arcsec_s``."""
        t = self["TIME"]
        if len(t) < 2:
            return GTI(t[:1], t[:1] + 0.0)
        rots = Rotation.from_quat(self["QPARAM"])
        x = rots.apply(np.array([1.0, 0.0, 0.0]))
        ang = np.degrees(np.arccos(np.clip(np.sum(x[1:] * x[:-1], axis=1), -1, 1))) * 3600.0
        rate = ang / np.diff(t)
        ok = rate <= max_rate_arcsec_s
        return GTI(t[:-1][ok], t[1:][ok])


class AngleTable(TableModel):
    """Boresight angles to the Earth limb, Sun and Moon (ANG)."""

    CONTENT = "MXT_ANG"
    EXTNAME = "ANG"

    def above_limb(self, min_elevation_deg: float) -> GTI:
        """Intervals with the boresight more than ``min_elevation_deg`` above the limb.

        Samples are joined by linear interpolation; crossings are located to the sample
        precision of the table.
        """
        t = self["TIME"]
        e = self["EARTH_ELV"].astype(float)
        if len(t) == 0:
            return GTI.empty()
        if len(t) == 1:
            return GTI(t, t + 0.0)
        ok = e >= min_elevation_deg
        # Crossing times by linear interpolation between neighbouring samples.
        change = np.flatnonzero(ok[1:] != ok[:-1])
        tc = t[change] + (min_elevation_deg - e[change]) * (t[change + 1] - t[change]) / (
            e[change + 1] - e[change]
        )
        bounds = np.r_[t[0], tc, t[-1]]
        states = np.r_[ok[0], ok[change + 1]]
        return GTI(bounds[:-1][states], bounds[1:][states])


class SAAIntervals(TableModel):
    """Passages through the South Atlantic Anomaly (one weekly SAA file)."""

    CONTENT = "MXT_SAA"
    EXTNAME = "SAA"

    def as_bad_time(self) -> GTI:
        return GTI(self["START"], self["STOP"])
