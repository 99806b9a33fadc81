"""TELDEF: the telescope definition (RAW -> DET -> off-axis angles).

* RAW -> DET: ``DET = R(rotation) . diag(fy, fz) . (RAW - centre)`` with ``fy = -1``
  when ``flip_y`` (likewise ``fz``): DET is in pixels from the optical axis;
* DET -> angles: ``angle = atan(DET * pixel / focal) + offset`` in arcmin (a flat focal
  plane at the focal length, so that without offsets DET is the gnomonic projection of
  the instrument frame), ``offset`` the boresight alignment of MXT in the satellite frame.

Every method is vectorised and exactly invertible.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mxt_pipeline import constants as C
from mxt_pipeline.caldb.products._base import CalibrationModel, as_float
from mxt_pipeline.errors import MXTCalibrationError

__all__ = ["Teldef"]

_RAD_TO_ARCMIN = 180.0 * 60.0 / np.pi


class Teldef(CalibrationModel):
    """Telescope definition (CALDB code name ``TELDEF``).

    Parameters
    ----------
    focal_mm : float
        Focal length in mm.
    pixel_mm : float
        Pixel pitch in mm.
    n_pix : (int, int)
        Pixels along RAWY and RAWZ.
    centre : (float, float)
        RAW position (RAWY, RAWZ; pixel k covers [k - 0.5, k + 0.5)) of the optical axis.
    rotation_deg : float
        Rotation from the (flipped) RAW axes to DET, degrees.
    flip_y, flip_z : bool
        RAW axis reversed before the rotation.
    offset_arcmin : (float, float)
        Boresight alignment offsets added to the angles (arcmin).
    """

    CODE = "TELDEF"
    CONTENT = "CALDB_TELDEF"
    INDEXED = {"TELDEF": "TELDEF"}

    def __init__(
        self,
        focal_mm: float = C.FOCAL_LENGTH_MM,
        pixel_mm: float = C.PIXEL_SIZE_MM,
        n_pix: tuple[int, int] = (C.N_PIX, C.N_PIX),
        centre: tuple[float, float] = (127.5, 127.5),
        rotation_deg: float = 0.0,
        flip_y: bool = False,
        flip_z: bool = False,
        offset_arcmin: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        if not (focal_mm > 0 and pixel_mm > 0):
            raise MXTCalibrationError(f"focal length {focal_mm} and pixel {pixel_mm} mm must be positive", hdu="TELDEF")
        self.focal_mm = float(focal_mm)
        self.pixel_mm = float(pixel_mm)
        self.n_pix = (int(n_pix[0]), int(n_pix[1]))
        self.centre = as_float(centre).reshape(2)
        self.rotation_deg = float(rotation_deg)
        self.flip_y = bool(flip_y)
        self.flip_z = bool(flip_z)
        self.offset = as_float(offset_arcmin).reshape(2)
        th = np.radians(self.rotation_deg)
        flip = np.diag([-1.0 if self.flip_y else 1.0, -1.0 if self.flip_z else 1.0])
        #: 2 x 2 matrix RAW offsets -> DET.
        self.matrix = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]]) @ flip
        #: Its inverse (DET -> RAW offsets).
        self.inverse = np.linalg.inv(self.matrix)

    # ---- aliases used by the consumers ------------------------------------------------------
    @property
    def focal_length_mm(self) -> float:
        """Alias of ``focal_mm``."""
        return self.focal_mm

    @property
    def pixel_size_mm(self) -> float:
        """Alias of ``pixel_mm``."""
        return self.pixel_mm

    @property
    def offset_arcmin(self) -> np.ndarray:
        """Alias of ``offset``."""
        return self.offset

    @property
    def pixel_scale_arcsec(self) -> float:
        """Angular size of one pixel on the axis (arcsec)."""
        return float(np.degrees(np.arctan(self.pixel_mm / self.focal_mm)) * 3600.0)

    @classmethod
    def default(cls) -> Teldef:
        """The TELDEF of the synthetic calibration set (latest epoch)."""
        from mxt_pipeline.caldb.synthetic.model import teldef_parameters

        return cls(**teldef_parameters())

    synthetic = default

    # ---- transforms -------------------------------------------------------------------------
    def raw_to_det(self, rawy: Any, rawz: Any) -> tuple[np.ndarray, np.ndarray]:
        """Continuous RAW (pixels) -> DET (pixels from the optical axis)."""
        dy = as_float(rawy) - self.centre[0]
        dz = as_float(rawz) - self.centre[1]
        m = self.matrix
        return m[0, 0] * dy + m[0, 1] * dz, m[1, 0] * dy + m[1, 1] * dz

    def det_to_raw(self, dety: Any, detz: Any) -> tuple[np.ndarray, np.ndarray]:
        """DET -> continuous RAW (inverse of :meth:`raw_to_det`)."""
        dety = as_float(dety)
        detz = as_float(detz)
        m = self.inverse
        return m[0, 0] * dety + m[0, 1] * detz + self.centre[0], m[1, 0] * dety + m[1, 1] * detz + self.centre[1]

    def det_to_angles(self, dety: Any, detz: Any) -> tuple[np.ndarray, np.ndarray]:
        """DET (pixels) -> angles (arcmin) in the instrument frame."""
        k = self.pixel_mm / self.focal_mm
        return (
            np.arctan(as_float(dety) * k) * _RAD_TO_ARCMIN + self.offset[0],
            np.arctan(as_float(detz) * k) * _RAD_TO_ARCMIN + self.offset[1],
        )

    def angles_to_det(self, angle_y: Any, angle_z: Any) -> tuple[np.ndarray, np.ndarray]:
        """Angles (arcmin) -> DET pixels (inverse of :meth:`det_to_angles`)."""
        k = self.pixel_mm / self.focal_mm
        return (
            np.tan((as_float(angle_y) - self.offset[0]) / _RAD_TO_ARCMIN) / k,
            np.tan((as_float(angle_z) - self.offset[1]) / _RAD_TO_ARCMIN) / k,
        )

    def offaxis_arcmin(self, dety: Any, detz: Any) -> np.ndarray:
        """Off-axis angle (arcmin) of DET positions: ``atan(r pixel / focal)``."""
        r = np.hypot(as_float(dety), as_float(detz))
        return np.arctan(r * self.pixel_mm / self.focal_mm) * _RAD_TO_ARCMIN

    # ---- tables -----------------------------------------------------------------------------
    def to_tables(self) -> dict[str, dict[str, np.ndarray]]:
        return {
            "TELDEF": {
                "FOCALLEN": [self.focal_mm], "PIXSIZE": [self.pixel_mm],
                "NPIX_Y": [self.n_pix[0]], "NPIX_Z": [self.n_pix[1]],
                "CEN_RAWY": [self.centre[0]], "CEN_RAWZ": [self.centre[1]],
                "ROTATION": [self.rotation_deg], "FLIP_Y": [self.flip_y], "FLIP_Z": [self.flip_z],
                "ALIGN_Y": [self.offset[0]], "ALIGN_Z": [self.offset[1]],
            }
        }  # fmt: skip

    @classmethod
    def from_tables(cls, tables: Mapping[str, Any], headers: Mapping[str, Any]) -> Teldef:
        t = tables["TELDEF"]
        if len(t) != 1:
            raise MXTCalibrationError(f"{len(t)} rows where 1 is expected", hdu="TELDEF")
        r = t[0]
        return cls(
            focal_mm=float(r["FOCALLEN"]), pixel_mm=float(r["PIXSIZE"]),
            n_pix=(int(r["NPIX_Y"]), int(r["NPIX_Z"])),
            centre=(float(r["CEN_RAWY"]), float(r["CEN_RAWZ"])), rotation_deg=float(r["ROTATION"]),
            flip_y=bool(r["FLIP_Y"]), flip_z=bool(r["FLIP_Z"]),
            offset_arcmin=(float(r["ALIGN_Y"]), float(r["ALIGN_Z"])),
        )  # fmt: skip

    def __repr__(self) -> str:
        return (f"Teldef(focal_mm={self.focal_mm}, pixel_mm={self.pixel_mm}, centre={tuple(self.centre)}, "
                f"rotation_deg={self.rotation_deg}, offset_arcmin={tuple(self.offset)})")  # fmt: skip
