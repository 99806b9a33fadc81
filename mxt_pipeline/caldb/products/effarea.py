"""EFFAREA: the on-axis effective area (an OGIP ARF)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mxt_pipeline.caldb.products._base import CalibrationModel, as_float
from mxt_pipeline.errors import MXTCalibrationError

__all__ = ["EffectiveArea"]


class EffectiveArea(CalibrationModel):
    """On-axis effective area ``A(E)`` in cm^2 (CALDB code name ``EFFAREA``).

    Calling the model interpolates linearly between bin centres (the first and last
    bins are flat out to their outer edges); outside ``[energ_lo[0], energ_hi[-1]]``
    (to 1e-6 relative) the area is 0.

    Parameters
    ----------
    energ_lo, energ_hi : array
        Contiguous energy bins (keV).
    specresp : array
        Effective area per bin (cm^2), >= 0.
    """

    CODE = "EFFAREA"
    CONTENT = "CALDB_EFFAREA"
    INDEXED = {"SPECRESP": "EFFAREA"}

    def __init__(self, energ_lo: Any, energ_hi: Any, specresp: Any) -> None:
        self.energ_lo = as_float(energ_lo).ravel()
        self.energ_hi = as_float(energ_hi).ravel()
        self.specresp = as_float(specresp).ravel()
        n = self.energ_lo.size
        if n == 0 or self.energ_hi.size != n or self.specresp.size != n:
            raise MXTCalibrationError("ENERG_LO, ENERG_HI and SPECRESP must have the same non-zero length",
                                      hdu="SPECRESP", column="SPECRESP")  # fmt: skip
        if np.any(self.energ_hi <= self.energ_lo) or np.any(self.energ_lo[1:] < self.energ_hi[:-1] - 1e-6):
            raise MXTCalibrationError("energy bins must be increasing and not overlap", hdu="SPECRESP", column="ENERG_LO")
        if not np.all(np.isfinite(self.specresp)) or np.any(self.specresp < 0):
            raise MXTCalibrationError("effective area must be finite and >= 0", hdu="SPECRESP", column="SPECRESP")
        self._centre = 0.5 * (self.energ_lo + self.energ_hi)

    @property
    def area(self) -> np.ndarray:
        """Alias of ``specresp`` (cm^2 per bin)."""
        return self.specresp

    @property
    def energy(self) -> np.ndarray:
        """Bin centres (keV)."""
        return self._centre

    def __call__(self, energy: Any) -> np.ndarray:
        """Effective area (cm^2) at ``energy`` (keV)."""
        e = as_float(energy)
        a = np.interp(e, self._centre, self.specresp)
        # The bin edges are stored in single precision: a relative 1e-6 tolerance keeps
        # the nominal band ends (0.2 and 10 keV) inside.
        inside = (e >= self.energ_lo[0] * (1 - 1e-6)) & (e <= self.energ_hi[-1] * (1 + 1e-6))
        return np.where(inside, a, 0.0)

    evaluate = __call__

    def peak(self) -> tuple[float, float]:
        """(energy keV, area cm^2) of the largest tabulated area."""
        i = int(np.argmax(self.specresp))
        return float(self._centre[i]), float(self.specresp[i])

    def to_tables(self) -> dict[str, dict[str, np.ndarray]]:
        return {"SPECRESP": {"ENERG_LO": self.energ_lo, "ENERG_HI": self.energ_hi, "SPECRESP": self.specresp}}

    @classmethod
    def from_tables(cls, tables: Mapping[str, Any], headers: Mapping[str, Any]) -> EffectiveArea:
        t = tables["SPECRESP"]
        return cls(t["ENERG_LO"], t["ENERG_HI"], t["SPECRESP"])
