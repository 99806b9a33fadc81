"""L2 event coordinate columns: RAW -> DET -> RA/Dec -> sky X/Y in one pass.

The calibration-specific part of the coordinate chain: it computes every coordinate
column of the L2 events, with a compiled kernel when numba is installed.  The
transforms themselves (frames, conventions, projections) are the shared ground-floor
module :mod:`mxt_pipeline.geometry`.
"""

from __future__ import annotations

import numpy as np

from mxt_pipeline import constants as C
from mxt_pipeline.calib import _kernels
from mxt_pipeline.datamodel import Attitude
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.geometry import (
    SKY_REF_PIX,
    AttitudeLike,
    TeldefLike,
    angles_to_vectors,
    apply_matrices,
    rotation_matrices,
    sky_scale_rad,
    tangent_basis,
    times_like,
    vectors_to_radec,
    vectors_to_sky,
)

__all__ = ["event_coordinates"]


def event_coordinates(
    rawy: np.ndarray,
    rawz: np.ndarray,
    times: np.ndarray,
    attitude: AttitudeLike,
    teldef: TeldefLike,
    ra_nom: float,
    dec_nom: float,
    pixel_arcsec: float = C.PIXEL_SCALE_ARCSEC,
    *,
    engine: str = "auto",
) -> dict[str, np.ndarray]:
    """Every coordinate column of L2 events from continuous RAW positions, in one pass.

    Same transforms as :func:`raw_to_radec` and :func:`radec_to_sky`, sharing the ICRS
    vectors so the trigonometry is done once.  With ``engine="numba"`` (the default when
    numba is installed and ``attitude`` is an :class:`Attitude`) the attitude
    interpolation, rotation and projections run in one compiled loop
    (:func:`mxt_pipeline.calib._kernels.rotate_and_project`); the teldef is always
    applied through its own methods.

    Returns
    -------
    dict
        ``DETY``, ``DETZ`` (pixels), ``RA``, ``DEC`` (degrees), ``X``, ``Y`` (sky pixels).
    """
    dety, detz = teldef.raw_to_det(np.asarray(rawy, dtype=float), np.asarray(rawz, dtype=float))
    dety = np.asarray(dety, dtype=float)
    detz = np.asarray(detz, dtype=float)
    ay, az = teldef.det_to_angles(dety, detz)
    ay = np.ascontiguousarray(ay, dtype=float)
    az = np.ascontiguousarray(az, dtype=float)
    t = times_like(times, ay.size)
    if engine == "auto":
        engine = "numba" if (_kernels.HAVE_NUMBA and isinstance(attitude, Attitude)) else "numpy"
    if engine == "numba" and isinstance(attitude, Attitude) and ay.size:
        t_att = np.ascontiguousarray(attitude["TIME"], dtype=float)
        if t_att.size == 0:
            raise MXTInputError("empty attitude", hdu="ATTITUDE")
        quats = np.ascontiguousarray(np.asarray(attitude["QPARAM"], dtype=float).reshape(-1, 4))
        if t_att.size == 1:
            t_att = np.r_[t_att, t_att + 1.0]
            quats = np.vstack([quats, quats])
        p0, e0, n0 = tangent_basis(ra_nom, dec_nom)
        ra, dec, x, y = _kernels.rotate_and_project(
            ay, az, t, t_att, quats, p0, e0, n0, sky_scale_rad(pixel_arcsec), SKY_REF_PIX
        )
        return {"DETY": dety, "DETZ": detz, "RA": ra, "DEC": dec, "X": x, "Y": y}
    v = angles_to_vectors(ay, az)
    mats, idx = rotation_matrices(t, attitude)
    w = apply_matrices(mats, idx, v)
    ra, dec = vectors_to_radec(w)
    x, y = vectors_to_sky(w, ra_nom, dec_nom, pixel_arcsec)
    return {"DETY": dety, "DETZ": detz, "RA": ra, "DEC": dec, "X": x, "Y": y}
