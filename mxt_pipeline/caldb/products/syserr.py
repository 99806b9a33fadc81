"""SYSERR: the systematic error of the localisation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mxt_pipeline.caldb.products._base import CalibrationModel, as_float
from mxt_pipeline.errors import MXTCalibrationError

__all__ = ["Systematics"]


class Systematics(CalibrationModel):
    """Localisation systematic (CALDB code name ``SYSERR``).

    Parameters
    ----------
    localization_arcsec : float
        Systematic radius (arcsec) at confidence ``confidence``, added in quadrature to
        the statistical error radius.
    confidence : float
        Confidence level of the radius (0.9).
    """

    CODE = "SYSERR"
    CONTENT = "CALDB_SYSERR"
    INDEXED = {"SYSERR": "SYSERR"}

    def __init__(self, localization_arcsec: float = 25.0, confidence: float = 0.9) -> None:
        self.localization_arcsec = float(localization_arcsec)
        self.confidence = float(confidence)
        if not (self.localization_arcsec >= 0 and np.isfinite(self.localization_arcsec)):
            raise MXTCalibrationError("systematic radius must be >= 0", hdu="SYSERR", column="RADIUS")
        if not (0 < self.confidence < 1):
            raise MXTCalibrationError("confidence level must lie in (0, 1)", hdu="SYSERR", column="CONFLEV")

    @property
    def radius_arcsec(self) -> float:
        """Alias of ``localization_arcsec``."""
        return self.localization_arcsec

    def combine(self, r_stat_arcsec: Any) -> np.ndarray:
        """Total radius: ``sqrt(r_stat^2 + r_sys^2)`` (arcsec)."""
        return np.hypot(as_float(r_stat_arcsec), self.localization_arcsec)

    def to_tables(self) -> dict[str, dict[str, np.ndarray]]:
        return {"SYSERR": {"RADIUS": [self.localization_arcsec], "CONFLEV": [self.confidence]}}

    @classmethod
    def from_tables(cls, tables: Mapping[str, Any], headers: Mapping[str, Any]) -> Systematics:
        t = tables["SYSERR"]
        if len(t) != 1:
            raise MXTCalibrationError(f"{len(t)} rows where 1 is expected", hdu="SYSERR")
        return cls(float(t["RADIUS"][0]), float(t["CONFLEV"][0]))
