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

    The file may carry a second extension, ``DCLEVELS``: the profile-likelihood levels
    of the 68.3% and 90% position contours as a function of DET_ML, calibrated by
    Monte-Carlo for sources near the detection threshold
    (:mod:`mxt_pipeline.detect.levels`; columns DET_ML, DC68, DC90).  Without it the
    detection uses Wilks' levels (2.30 and 4.61).

    Parameters
    ----------
    localization_arcsec : float
        Systematic radius (arcsec) at confidence ``confidence``, added in quadrature to
        the statistical error radius.
    confidence : float
        Confidence level of the radius (0.9).
    levels : mapping, optional
        ``{"DET_ML": ..., "DC68": ..., "DC90": ...}`` (equal-length 1-D arrays, DET_ML
        increasing, ``0 < DC68 < DC90``).
    levels_keywords : mapping, optional
        Header keywords of the DCLEVELS extension (provenance of the calibration).
    """

    CODE = "SYSERR"
    CONTENT = "CALDB_SYSERR"
    INDEXED = {"SYSERR": "SYSERR"}

    def __init__(self, localization_arcsec: float = 25.0, confidence: float = 0.9,
                 levels: Mapping[str, Any] | None = None, levels_keywords: Mapping[str, Any] | None = None) -> None:
        self.localization_arcsec = float(localization_arcsec)
        self.confidence = float(confidence)
        self.levels = None if levels is None else _check_levels(levels)
        self.levels_keywords = dict(levels_keywords or {})
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
        out = {"SYSERR": {"RADIUS": [self.localization_arcsec], "CONFLEV": [self.confidence]}}
        if self.levels is not None:
            out["DCLEVELS"] = dict(self.levels)
        return out

    def header_keywords(self) -> dict[str, dict[str, Any]]:
        return {"DCLEVELS": dict(self.levels_keywords)} if self.levels is not None and self.levels_keywords else {}

    @classmethod
    def from_tables(cls, tables: Mapping[str, Any], headers: Mapping[str, Any]) -> Systematics:
        t = tables["SYSERR"]
        if len(t) != 1:
            raise MXTCalibrationError(f"{len(t)} rows where 1 is expected", hdu="SYSERR")
        levels = keywords = None
        if "DCLEVELS" in tables:
            lv = tables["DCLEVELS"]
            missing = [c for c in _LEVEL_COLUMNS if c not in getattr(lv, "colnames", lv)]
            if missing:
                raise MXTCalibrationError(f"columns {missing} missing", hdu="DCLEVELS", column=missing[0])
            levels = {c: np.asarray(lv[c], float) for c in _LEVEL_COLUMNS}
            head = headers.get("DCLEVELS", {})
            keywords = {k: head[k] for k in _LEVEL_KEYWORDS if k in head}
        return cls(float(t["RADIUS"][0]), float(t["CONFLEV"][0]), levels, keywords)


_LEVEL_COLUMNS = ("DET_ML", "DC68", "DC90")
#: Provenance keywords of the DCLEVELS extension kept on reading.
_LEVEL_KEYWORDS = ("CALMETH", "MLTHRESH", "BKGPIX", "NSIMCASE", "SIMSEED", "AMP68", "SCALE68", "AMP90", "SCALE90")


def _check_levels(levels: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The DCLEVELS columns as float arrays, checked (names the column at fault)."""
    out = {}
    for c in _LEVEL_COLUMNS:
        if c not in levels:
            raise MXTCalibrationError("column missing", hdu="DCLEVELS", column=c)
        v = np.asarray(levels[c], float)
        if v.ndim != 1 or v.size == 0 or not np.all(np.isfinite(v)):
            raise MXTCalibrationError("a non-empty 1-D column of finite values is needed", hdu="DCLEVELS", column=c)
        out[c] = v
    if not out["DET_ML"].size == out["DC68"].size == out["DC90"].size:
        raise MXTCalibrationError("DET_ML, DC68 and DC90 differ in length", hdu="DCLEVELS")
    if np.any(np.diff(out["DET_ML"]) <= 0):
        raise MXTCalibrationError("DET_ML must increase", hdu="DCLEVELS", column="DET_ML")
    if np.any(out["DC68"] <= 0) or np.any(out["DC90"] <= out["DC68"]):
        raise MXTCalibrationError("levels must satisfy 0 < DC68 < DC90", hdu="DCLEVELS", column="DC90")
    return out
