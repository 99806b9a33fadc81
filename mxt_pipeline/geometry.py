"""Shared geometry of MXT: RAW -> DET -> instrument angles -> RA/Dec -> sky X/Y, angular distances.

A ground-floor module (numpy/scipy and the data model only): calibration, detection,
light curves, simulation, the campaigns and the harness all use these transforms.  The
per-event column computation of the L2 calibration is
:func:`mxt_pipeline.calib.coordinates.event_coordinates`.

Frames and conventions (``docs/formats.md``, :mod:`mxt_pipeline.datamodel.attitude`):

* **RAW** ``(RAWY, RAWZ)``: CCD column and row, integers 0-255 for a hit.  As continuous
  coordinates, the integer value ``k`` is the *centre* of pixel ``k``, which covers
  ``[k - 0.5, k + 0.5)``; :func:`raw_pixel` turns a continuous coordinate into the
  pixel index.
* **DET** ``(DETY, DETZ)``: pixels from the optical axis, axes along the instrument +Y
  and +Z directions.  RAW <-> DET and DET <-> off-axis angles belong to the telescope
  definition (CALDB ``TELDEF``, class ``Teldef`` of :mod:`mxt_pipeline.caldb.products`):
  this module only calls its four documented methods ``raw_to_det``, ``det_to_raw``,
  ``det_to_angles`` and ``angles_to_det`` (angles in arcmin), so detector rotation,
  flips, optical-axis position and boresight misalignment live in one place.
* **Instrument frame**: unit vectors with the boresight along +X.  The off-axis angles
  of a direction ``v`` are ``ang_y = atan2(v_y, v_x)`` and ``ang_z = atan2(v_z, v_x)``
  (arcmin), so ``tan(ang_y) = v_y / v_x`` and the pair is exactly the gnomonic
  (tangent-plane) position of the direction on the instrument's focal plane.
* **ICRS**: the attitude quaternion QPARAM (x, y, z, w) rotates instrument vectors into
  ICRS; the rotation of each event is interpolated (spherical linear interpolation,
  :meth:`mxt_pipeline.datamodel.Attitude.rotation`) at the event time.
* **Sky** ``(X, Y)``: FITS tangent-plane (TAN, Calabretta & Greisen 2002, paper II)
  pixels about the nominal pointing ``(RA_NOM, DEC_NOM)``, reference pixel 256.5 on both
  axes, pixel size :data:`mxt_pipeline.constants.PIXEL_SCALE_ARCSEC`, RA increasing to
  the left (``TCDLT`` of X negative): the keywords written by
  :func:`mxt_pipeline.io.products.sky_column_keywords`.

Implementation notes: every transform goes through 3-vectors and rotation matrices
(no spherical-trigonometry special cases, no singularity at the poles).  Events share
frame times, so the attitude is interpolated once per distinct time and the matrices
are gathered per event.  The gnomonic projection is ``xi = v.e0 / v.p0``,
``eta = v.n0 / v.p0`` with ``p0, e0, n0`` the pointing, east and north unit vectors at
``(RA_NOM, DEC_NOM)``, identical to the TAN projection with ``LONPOLE = 180 deg``.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from scipy.spatial.transform import Rotation

from mxt_pipeline import constants as C
from mxt_pipeline.datamodel import Attitude
from mxt_pipeline.errors import MXTInputError

__all__ = [
    "TeldefLike",
    "angular_separation_arcsec",
    "SKY_REF_PIX",
    "radec_to_vectors",
    "vectors_to_radec",
    "radec_to_instrument",
    "instrument_to_radec",
    "vectors_to_angles",
    "angles_to_vectors",
    "rotation_matrices",
    "radec_to_det",
    "det_to_radec",
    "radec_to_raw",
    "raw_to_radec",
    "raw_pixel",
    "radec_to_sky",
    "sky_to_radec",
    "tangent_basis",
    "vectors_to_sky",
    "AttitudeLike",
    "apply_matrices",
    "sky_scale_rad",
    "times_like",
]

#: Reference pixel of the sky X/Y tangent plane (both axes), as in ``TCRPX``.
SKY_REF_PIX = 256.5

_ARCMIN = np.pi / (180.0 * 60.0)


class TeldefLike(Protocol):
    """The part of the CALDB ``Teldef`` model the coordinate transforms use."""

    def raw_to_det(self, rawy, rawz): ...

    def det_to_raw(self, dety, detz): ...

    def det_to_angles(self, dety, detz): ...

    def angles_to_det(self, angle_y, angle_z): ...


AttitudeLike = Attitude | Rotation


# ---- unit vectors <-> spherical coordinates ----------------------------------------------


def radec_to_vectors(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """ICRS unit vectors (N, 3) of right ascensions and declinations in degrees."""
    a = np.radians(np.asarray(ra, dtype=float))
    d = np.radians(np.asarray(dec, dtype=float))
    a, d = np.broadcast_arrays(np.atleast_1d(a), np.atleast_1d(d))
    cd = np.cos(d)
    return np.stack([cd * np.cos(a), cd * np.sin(a), np.sin(d)], axis=-1).reshape(-1, 3)


def vectors_to_radec(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Right ascension in [0, 360) and declination (degrees) of vectors (N, 3).

    The vectors need not be normalised.  ``atan2`` is used for both angles so that the
    result stays accurate near the poles (``arcsin`` loses precision there).
    """
    v = np.asarray(v, dtype=float).reshape(-1, 3)
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    ra = np.degrees(np.arctan2(y, x)) % 360.0
    dec = np.degrees(np.arctan2(z, np.hypot(x, y)))
    return ra, dec


# ---- attitude ----------------------------------------------------------------------------


def rotation_matrices(times: np.ndarray | float, attitude: AttitudeLike) -> tuple[np.ndarray, np.ndarray]:
    """Instrument -> ICRS rotation matrices at ``times``, computed once per distinct time.

    Parameters
    ----------
    times : array_like
        Event times (s, mission time).  Ignored when ``attitude`` is a fixed rotation.
    attitude : Attitude or scipy.spatial.transform.Rotation
        Attitude history (interpolated by slerp, clamped at its ends) or one fixed
        rotation (a single rotation, or one rotation per event).

    Returns
    -------
    matrices : ndarray, shape (U, 3, 3)
        One matrix per distinct time (or the given rotations).
    index : ndarray of int, shape (N,)
        For each input time, the row of ``matrices`` that applies.
    """
    t = np.atleast_1d(np.asarray(times, dtype=float))
    if isinstance(attitude, Rotation):
        mats = attitude.as_matrix().reshape(-1, 3, 3)
        if mats.shape[0] == 1:
            return mats, np.zeros(t.size, dtype=np.intp)
        if mats.shape[0] != t.size:
            raise MXTInputError(
                f"{mats.shape[0]} rotations given for {t.size} times; give one or one per time"
            )
        return mats, np.arange(t.size)
    if t.size == 0:
        return np.zeros((0, 3, 3)), np.zeros(0, dtype=np.intp)
    if not np.all(np.isfinite(t)):
        raise MXTInputError("event times must be finite", column="TIME")
    # Frames of 100 ms: a whole observation has few distinct times compared with its
    # hits, and np.unique on sorted times is cheap.
    uniq, inverse = np.unique(t, return_inverse=True)
    mats = attitude.rotation(uniq).as_matrix().reshape(-1, 3, 3)
    return mats, inverse.reshape(-1)


def apply_matrices(mats: np.ndarray, index: np.ndarray, v: np.ndarray, *, inverse: bool = False) -> np.ndarray:
    """Apply ``mats[index]`` (or its transpose) to vectors ``v`` (N, 3), row by row.

    Written as nine gathered products rather than ``einsum`` over an (N, 3, 3) gather:
    the matrices are few, the events many, and this keeps the temporary memory at a few
    N-vectors.
    """
    out = np.empty_like(v)
    for i in range(3):
        acc = None
        for j in range(3):
            m = mats[:, j, i] if inverse else mats[:, i, j]
            term = m[index] * v[:, j] if mats.shape[0] > 1 else m[0] * v[:, j]
            acc = term if acc is None else acc + term
        out[:, i] = acc
    return out


def radec_to_instrument(ra: np.ndarray, dec: np.ndarray, rotation: Rotation) -> np.ndarray:
    """Instrument-frame unit vectors (N, 3) of sky positions, for instrument -> ICRS ``rotation``."""
    mats, idx = rotation_matrices(np.zeros(np.size(ra)), rotation)
    return apply_matrices(mats, idx, radec_to_vectors(ra, dec), inverse=True)


def instrument_to_radec(vectors: np.ndarray, rotation: Rotation) -> tuple[np.ndarray, np.ndarray]:
    """RA and Dec (degrees) of instrument-frame vectors (N, 3) under ``rotation``."""
    v = np.asarray(vectors, dtype=float).reshape(-1, 3)
    mats, idx = rotation_matrices(np.zeros(len(v)), rotation)
    return vectors_to_radec(apply_matrices(mats, idx, v))


# ---- instrument vectors <-> off-axis angles -------------------------------------------------


def vectors_to_angles(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Off-axis angles (arcmin) of instrument vectors: ``atan2(v_y, v_x)``, ``atan2(v_z, v_x)``."""
    v = np.asarray(v, dtype=float).reshape(-1, 3)
    return (
        np.arctan2(v[:, 1], v[:, 0]) / _ARCMIN,
        np.arctan2(v[:, 2], v[:, 0]) / _ARCMIN,
    )


def angles_to_vectors(ang_y: np.ndarray, ang_z: np.ndarray) -> np.ndarray:
    """Unit instrument vectors (N, 3) of off-axis angles (arcmin), inverse of :func:`vectors_to_angles`.

    Valid for ``|ang| < 90 deg`` (directions in front of the telescope).
    """
    ty = np.tan(np.atleast_1d(np.asarray(ang_y, dtype=float)) * _ARCMIN)
    tz = np.tan(np.atleast_1d(np.asarray(ang_z, dtype=float)) * _ARCMIN)
    ty, tz = np.broadcast_arrays(ty, tz)
    inv = 1.0 / np.sqrt(1.0 + ty * ty + tz * tz)
    return np.stack([inv, ty * inv, tz * inv], axis=-1).reshape(-1, 3)


# ---- DET / RAW <-> RA/Dec ----------------------------------------------------------------------


def times_like(times: np.ndarray | float, n: int) -> np.ndarray:
    """Times as one value per position: a single time is broadcast to ``n`` positions."""
    t = np.atleast_1d(np.asarray(times, dtype=float))
    if t.size == 1 and n != 1:
        t = np.full(n, t[0])
    if t.size != n:
        raise MXTInputError(f"{t.size} times for {n} positions", column="TIME")
    return t


def det_to_radec(
    dety: np.ndarray, detz: np.ndarray, times: np.ndarray | float, attitude: AttitudeLike, teldef: TeldefLike
) -> tuple[np.ndarray, np.ndarray]:
    """RA/Dec (degrees) of detector positions (DET pixels) at ``times``.

    DET -> off-axis angles through ``teldef.det_to_angles``, then the instrument vector
    rotated into ICRS by the attitude interpolated at each time.
    """
    ay, az = teldef.det_to_angles(np.asarray(dety, dtype=float), np.asarray(detz, dtype=float))
    v = angles_to_vectors(ay, az)
    mats, idx = rotation_matrices(times_like(times, len(v)), attitude)
    return vectors_to_radec(apply_matrices(mats, idx, v))


def radec_to_det(
    ra: np.ndarray, dec: np.ndarray, times: np.ndarray | float, attitude: AttitudeLike, teldef: TeldefLike
) -> tuple[np.ndarray, np.ndarray]:
    """Detector position (DETY, DETZ pixels) where a sky position is seen at ``times``.

    Inverse of :func:`det_to_radec`.  Positions behind the telescope (``v_x <= 0``) have
    no image and give NaN.
    """
    u = radec_to_vectors(ra, dec)
    mats, idx = rotation_matrices(times_like(times, len(u)), attitude)
    v = apply_matrices(mats, idx, u, inverse=True)
    ay, az = vectors_to_angles(v)
    behind = v[:, 0] <= 0.0
    if np.any(behind):
        ay = np.where(behind, np.nan, ay)
        az = np.where(behind, np.nan, az)
    dety, detz = teldef.angles_to_det(ay, az)
    return np.asarray(dety, dtype=float), np.asarray(detz, dtype=float)


def raw_to_radec(
    rawy: np.ndarray, rawz: np.ndarray, times: np.ndarray | float, attitude: AttitudeLike, teldef: TeldefLike
) -> tuple[np.ndarray, np.ndarray]:
    """RA/Dec (degrees) of continuous RAW positions (pixel ``k`` centred on ``k``)."""
    dety, detz = teldef.raw_to_det(np.asarray(rawy, dtype=float), np.asarray(rawz, dtype=float))
    return det_to_radec(dety, detz, times, attitude, teldef)


def radec_to_raw(
    ra: np.ndarray, dec: np.ndarray, times: np.ndarray | float, attitude: AttitudeLike, teldef: TeldefLike
) -> tuple[np.ndarray, np.ndarray]:
    """Continuous RAW position (RAWY, RAWZ) of sky positions; :func:`raw_pixel` gives the pixel."""
    dety, detz = radec_to_det(ra, dec, times, attitude, teldef)
    rawy, rawz = teldef.det_to_raw(dety, detz)
    return np.asarray(rawy, dtype=float), np.asarray(rawz, dtype=float)


def raw_pixel(coord: np.ndarray) -> np.ndarray:
    """Pixel index (int) of a continuous RAW coordinate: ``floor(coord + 0.5)``.

    Pixel ``k`` covers ``[k - 0.5, k + 0.5)``; the result may fall outside 0-255 (off
    the detector); NaN inputs give -1.
    """
    c = np.asarray(coord, dtype=float)
    out = np.floor(c + 0.5)
    return np.where(np.isfinite(out), out, -1).astype(np.int64)


# ---- sky tangent plane ---------------------------------------------------------------------


def tangent_basis(ra_nom: float, dec_nom: float) -> np.ndarray:
    """Rows: pointing ``p0``, east ``e0`` and north ``n0`` unit vectors at (RA_NOM, DEC_NOM)."""
    a, d = np.radians(float(ra_nom)), np.radians(float(dec_nom))
    p0 = np.array([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)])
    e0 = np.array([-np.sin(a), np.cos(a), 0.0])
    n0 = np.array([-np.sin(d) * np.cos(a), -np.sin(d) * np.sin(a), np.cos(d)])
    return np.stack([p0, e0, n0])


def sky_scale_rad(pixel_arcsec: float) -> float:
    """Radians per sky pixel."""
    return np.radians(pixel_arcsec / 3600.0)


def vectors_to_sky(
    v: np.ndarray, ra_nom: float, dec_nom: float, pixel_arcsec: float = C.PIXEL_SCALE_ARCSEC
) -> tuple[np.ndarray, np.ndarray]:
    """Sky pixels (X, Y) of ICRS vectors (N, 3): gnomonic projection about the nominal pointing.

    Directions 90 degrees or more from the nominal pointing have no tangent-plane image
    and give NaN.
    """
    v = np.asarray(v, dtype=float).reshape(-1, 3)
    p0, e0, n0 = tangent_basis(ra_nom, dec_nom)
    den = v @ p0
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(den > 0.0, 1.0 / den, np.nan)
    s = sky_scale_rad(pixel_arcsec)
    # X runs against RA (TCDLT < 0), Y along Dec.
    x = SKY_REF_PIX - (v @ e0) * inv / s
    y = SKY_REF_PIX + (v @ n0) * inv / s
    return x, y


def radec_to_sky(
    ra: np.ndarray, dec: np.ndarray, ra_nom: float, dec_nom: float, pixel_arcsec: float = C.PIXEL_SCALE_ARCSEC
) -> tuple[np.ndarray, np.ndarray]:
    """Sky pixels (X, Y) of RA/Dec (degrees); see :func:`vectors_to_sky`."""
    return vectors_to_sky(radec_to_vectors(ra, dec), ra_nom, dec_nom, pixel_arcsec)


def sky_to_radec(
    x: np.ndarray, y: np.ndarray, ra_nom: float, dec_nom: float, pixel_arcsec: float = C.PIXEL_SCALE_ARCSEC
) -> tuple[np.ndarray, np.ndarray]:
    """RA/Dec (degrees) of sky pixels; inverse of :func:`radec_to_sky`."""
    s = sky_scale_rad(pixel_arcsec)
    xi = -(np.atleast_1d(np.asarray(x, dtype=float)) - SKY_REF_PIX) * s
    eta = (np.atleast_1d(np.asarray(y, dtype=float)) - SKY_REF_PIX) * s
    xi, eta = np.broadcast_arrays(xi, eta)
    p0, e0, n0 = tangent_basis(ra_nom, dec_nom)
    v = p0[None, :] + xi[:, None] * e0[None, :] + eta[:, None] * n0[None, :]
    return vectors_to_radec(v)


def angular_separation_arcsec(ra1: Any, dec1: Any, ra2: Any, dec2: Any) -> np.ndarray:
    """Great-circle distance (arcsec) between positions in degrees, broadcast.

    Vincenty's formula: exact at every distance, from coincident points to antipodes.
    """
    r1, d1, r2, d2 = (np.radians(np.asarray(v, dtype=float)) for v in (ra1, dec1, ra2, dec2))
    dra = r2 - r1
    num = np.hypot(np.cos(d2) * np.sin(dra), np.cos(d1) * np.sin(d2) - np.sin(d1) * np.cos(d2) * np.cos(dra))
    den = np.sin(d1) * np.sin(d2) + np.cos(d1) * np.cos(d2) * np.cos(dra)
    return np.degrees(np.arctan2(num, den)) * 3600.0
