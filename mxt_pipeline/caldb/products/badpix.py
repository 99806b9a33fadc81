"""BADPIX: the list of bad pixels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mxt_pipeline import constants as C
from mxt_pipeline.caldb.products._base import CalibrationModel
from mxt_pipeline.errors import MXTCalibrationError

__all__ = ["BadPixels", "BADPIX_TYPES"]

#: TYPE codes of the BADPIX table.
BADPIX_TYPES = {1: "dead", 2: "hot", 3: "flickering"}


class BadPixels(CalibrationModel):
    """Bad pixels (CALDB code name ``BADPIX``).

    Parameters
    ----------
    pixels : array (N, 2)
        (RAWY, RAWZ) of each bad pixel.
    types : array (N,), optional
        1 dead, 2 hot, 3 flickering (default 1).
    """

    CODE = "BADPIX"
    CONTENT = "CALDB_BADPIX"
    INDEXED = {"BADPIX": "BADPIX"}

    def __init__(self, pixels: Any = (), types: Any = None) -> None:
        self.pixels = np.asarray(pixels, dtype=np.int64).reshape(-1, 2)
        self.types = (np.ones(len(self.pixels), dtype=np.int64) if types is None
                      else np.asarray(types, dtype=np.int64).ravel())  # fmt: skip
        if self.types.size != len(self.pixels):
            raise MXTCalibrationError("one TYPE per pixel", hdu="BADPIX", column="TYPE")
        if self.pixels.size and (self.pixels.min() < 0 or self.pixels.max() >= C.N_PIX):
            raise MXTCalibrationError("pixel outside the chip", hdu="BADPIX", column="RAWY")
        if np.any(~np.isin(self.types, list(BADPIX_TYPES))):
            raise MXTCalibrationError(f"TYPE must be one of {sorted(BADPIX_TYPES)}", hdu="BADPIX", column="TYPE")

    def __len__(self) -> int:
        return len(self.pixels)

    def mask(self, types: Any = None) -> np.ndarray:
        """Bool image [RAWY, RAWZ] of the bad pixels (of the given TYPE codes; all by default)."""
        m = np.zeros((C.N_PIX, C.N_PIX), dtype=bool)
        sel = np.ones(len(self.pixels), bool) if types is None else np.isin(self.types, np.atleast_1d(types))
        m[self.pixels[sel, 0], self.pixels[sel, 1]] = True
        return m

    def to_tables(self) -> dict[str, dict[str, np.ndarray]]:
        order = np.lexsort((self.pixels[:, 1], self.pixels[:, 0])) if len(self.pixels) else np.zeros(0, np.intp)
        return {"BADPIX": {"RAWY": self.pixels[order, 0].astype(np.int16), "RAWZ": self.pixels[order, 1].astype(np.int16),
                           "TYPE": self.types[order].astype(np.int16)}}  # fmt: skip

    @classmethod
    def from_tables(cls, tables: Mapping[str, Any], headers: Mapping[str, Any]) -> BadPixels:
        t = tables["BADPIX"]
        return cls(np.column_stack([np.asarray(t["RAWY"]), np.asarray(t["RAWZ"])]), np.asarray(t["TYPE"]))
