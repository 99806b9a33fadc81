"""A flat-detector telescope definition with the four methods of the CALDB contract."""

from __future__ import annotations

import numpy as np

from mxt_pipeline import constants as C


class FlatTeldef:
    """RAW -> DET: ``DET = R(rotation) (RAW - centre)``; DET -> angles gnomonic (arcmin)."""

    def __init__(self, centre=(127.5, 127.5), rotation_deg: float = 0.0):
        self.centre = np.asarray(centre, float)
        t = np.radians(rotation_deg)
        self.m = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        self.mi = self.m.T
        self.k = C.PIXEL_SIZE_MM / C.FOCAL_LENGTH_MM

    def raw_to_det(self, rawy, rawz):
        dy = np.asarray(rawy, float) - self.centre[0]
        dz = np.asarray(rawz, float) - self.centre[1]
        return self.m[0, 0] * dy + self.m[0, 1] * dz, self.m[1, 0] * dy + self.m[1, 1] * dz

    def det_to_raw(self, dety, detz):
        dety = np.asarray(dety, float)
        detz = np.asarray(detz, float)
        return (
            self.mi[0, 0] * dety + self.mi[0, 1] * detz + self.centre[0],
            self.mi[1, 0] * dety + self.mi[1, 1] * detz + self.centre[1],
        )

    def det_to_angles(self, dety, detz):
        to_arcmin = 180.0 * 60.0 / np.pi
        return np.arctan(np.asarray(dety, float) * self.k) * to_arcmin, np.arctan(np.asarray(detz, float) * self.k) * to_arcmin

    def angles_to_det(self, ay, az):
        to_rad = np.pi / (180.0 * 60.0)
        return np.tan(np.asarray(ay, float) * to_rad) / self.k, np.tan(np.asarray(az, float) * to_rad) / self.k
