"""PATTERN: thresholds of the event reconstruction, read noise and charge-cloud width."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mxt_pipeline.caldb.products._base import CalibrationModel, as_float
from mxt_pipeline.errors import MXTCalibrationError
from mxt_pipeline.io.formats import PATTERN_INVALID

__all__ = ["PatternModel", "PATTERN_PIXELS"]

#: Pixels of each EPIC-pn pattern code (0 single, 1-4 doubles, 5-8 triples, 9-12
#: quadruples; 13 any other shape).
PATTERN_PIXELS = (1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 0)


class PatternModel(CalibrationModel):
    """Event-pattern parameters (CALDB code name ``PATTERN``).

    Parameters
    ----------
    primary_threshold, split_threshold : float
        keV: a component's brightest hit must reach the primary threshold; hits below
        the split threshold belong to no event.
    read_noise_ev : float
        Read noise per pixel (eV rms).
    energy, cloud_sigma : array
        Charge-cloud Gaussian sigma (micron) vs energy (keV), interpolated linearly.
    imaging, spectral : sequence of int
        Pattern codes valid for imaging (0-12) and spectroscopy (0-4).
    """

    CODE = "PATTERN"
    CONTENT = "CALDB_PATTERN"
    INDEXED = {"PATTERN": "PATTERN"}

    def __init__(self, primary_threshold: float = 0.15, split_threshold: float = 0.06, read_noise_ev: float = 8.0,
                 energy: Any = (0.1, 10.0), cloud_sigma: Any = (7.1, 17.0),
                 imaging: Any = tuple(range(13)), spectral: Any = tuple(range(5))) -> None:  # fmt: skip
        self.primary_threshold = float(primary_threshold)
        self.split_threshold = float(split_threshold)
        self.read_noise_ev = float(read_noise_ev)
        self.energy = as_float(energy).ravel()
        self.cloud_sigma = as_float(cloud_sigma).ravel()
        self.imaging = tuple(int(p) for p in imaging)
        self.spectral = tuple(int(p) for p in spectral)
        if not (0 <= self.split_threshold <= self.primary_threshold):
            raise MXTCalibrationError(
                f"thresholds must satisfy 0 <= split ({self.split_threshold}) <= primary ({self.primary_threshold}) keV",
                hdu="PATTERN", keyword="SPLT_THR",
            )
        if self.read_noise_ev < 0:
            raise MXTCalibrationError("read noise must be >= 0", hdu="PATTERN", keyword="RDNOISE")
        if self.energy.size != self.cloud_sigma.size or self.energy.size == 0 or np.any(np.diff(self.energy) <= 0):
            raise MXTCalibrationError("ENERGY must increase, one CLOUDSIG per node", hdu="PATTERN", column="ENERGY")
        if np.any(self.cloud_sigma <= 0):
            raise MXTCalibrationError("cloud sigma must be positive", hdu="PATTERN", column="CLOUDSIG")

    @property
    def primary_threshold_kev(self) -> float:
        """Alias of ``primary_threshold``."""
        return self.primary_threshold

    @property
    def split_threshold_kev(self) -> float:
        """Alias of ``split_threshold``."""
        return self.split_threshold

    @property
    def read_noise_kev(self) -> float:
        """Read noise in keV."""
        return self.read_noise_ev / 1000.0

    def cloud_sigma_um(self, energy: Any) -> np.ndarray:
        """Charge-cloud sigma (micron) at ``energy`` (keV)."""
        return np.interp(as_float(energy), self.energy, self.cloud_sigma)

    def header_keywords(self) -> dict[str, dict[str, Any]]:
        return {"PATTERN": {"PRIM_THR": self.primary_threshold, "SPLT_THR": self.split_threshold,
                            "RDNOISE": self.read_noise_ev}}  # fmt: skip

    def to_tables(self) -> dict[str, dict[str, np.ndarray]]:
        codes = np.arange(PATTERN_INVALID + 1)
        return {
            "PATTERN": {"ENERGY": self.energy, "CLOUDSIG": self.cloud_sigma},
            "GRADES": {"PATTERN": codes.astype(np.int16), "NPIX": np.array(PATTERN_PIXELS, dtype=np.int16),
                       "IMAGING": np.isin(codes, self.imaging), "SPECTRAL": np.isin(codes, self.spectral)},
        }  # fmt: skip

    @classmethod
    def from_tables(cls, tables: Mapping[str, Any], headers: Mapping[str, Any]) -> PatternModel:
        t = tables["PATTERN"]
        h = headers["PATTERN"]
        g = tables["GRADES"]
        codes = np.asarray(g["PATTERN"])
        return cls(
            primary_threshold=float(h["PRIM_THR"]), split_threshold=float(h["SPLT_THR"]),
            read_noise_ev=float(h["RDNOISE"]), energy=t["ENERGY"], cloud_sigma=t["CLOUDSIG"],
            imaging=codes[np.asarray(g["IMAGING"], bool)], spectral=codes[np.asarray(g["SPECTRAL"], bool)],
        )  # fmt: skip
