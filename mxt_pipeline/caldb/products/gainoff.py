"""GAINOFF: gain and offset of the amplifier of each CCD column (RAWY)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mxt_pipeline import constants as C
from mxt_pipeline.caldb.products._base import CalibrationModel, as_float
from mxt_pipeline.errors import MXTCalibrationError

__all__ = ["GainOffset"]


class GainOffset(CalibrationModel):
    """Gain (eV/ADU) and offset (ADU) per column (CALDB code name ``GAINOFF``).

    ``E = (PHA - offset[RAWY]) * gain[RAWY] / 1000`` keV, and back.

    Parameters
    ----------
    gain, offset : array (256,)
        Per RAWY.
    """

    CODE = "GAINOFF"
    CONTENT = "CALDB_GAINOFF"
    INDEXED = {"GAINOFF": "GAINOFF"}

    def __init__(self, gain: Any, offset: Any) -> None:
        self.gain = as_float(gain).ravel()
        self.offset = as_float(offset).ravel()
        if self.gain.size != C.N_PIX or self.offset.size != C.N_PIX:
            raise MXTCalibrationError(f"{self.gain.size} columns where {C.N_PIX} are expected", hdu="GAINOFF",
                                      column="GAIN")  # fmt: skip
        if not np.all(np.isfinite(self.gain)) or np.any(self.gain <= 0):
            raise MXTCalibrationError("gains must be positive", hdu="GAINOFF", column="GAIN")
        if not np.all(np.isfinite(self.offset)):
            raise MXTCalibrationError("offsets must be finite", hdu="GAINOFF", column="OFFSET")

    @property
    def gain_ev_adu(self) -> np.ndarray:
        """Alias of ``gain``."""
        return self.gain

    @property
    def offset_adu(self) -> np.ndarray:
        """Alias of ``offset``."""
        return self.offset

    def to_energy(self, pha: Any, rawy: Any) -> np.ndarray:
        """Energy (keV) of a pixel value ``pha`` (ADU, may be fractional) of column ``rawy``."""
        y = np.asarray(rawy, dtype=np.intp)
        return (as_float(pha) - self.offset[y]) * self.gain[y] / 1000.0

    def to_pha(self, energy: Any, rawy: Any) -> np.ndarray:
        """Pixel value (ADU, not rounded) of a charge ``energy`` (keV) in column ``rawy``."""
        y = np.asarray(rawy, dtype=np.intp)
        return self.offset[y] + as_float(energy) * 1000.0 / self.gain[y]

    def to_tables(self) -> dict[str, dict[str, np.ndarray]]:
        return {"GAINOFF": {"RAWY": np.arange(C.N_PIX, dtype=np.int16), "GAIN": self.gain, "OFFSET": self.offset}}

    @classmethod
    def from_tables(cls, tables: Mapping[str, Any], headers: Mapping[str, Any]) -> GainOffset:
        t = tables["GAINOFF"]
        y = np.asarray(t["RAWY"], dtype=np.intp)
        if y.size != C.N_PIX or not np.array_equal(np.sort(y), np.arange(C.N_PIX)):
            raise MXTCalibrationError(f"RAWY must list each of the {C.N_PIX} columns once", hdu="GAINOFF", column="RAWY")
        gain = np.empty(C.N_PIX)
        off = np.empty(C.N_PIX)
        gain[y] = t["GAIN"]
        off[y] = t["OFFSET"]
        return cls(gain, off)
