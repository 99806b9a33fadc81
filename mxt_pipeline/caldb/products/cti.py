"""CTI: charge transfer inefficiency, energy and row dependent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mxt_pipeline.caldb.products._base import CalibrationModel, as_float
from mxt_pipeline.errors import MXTCalibrationError

__all__ = ["CTIModel"]


class CTIModel(CalibrationModel):
    """Fractional charge loss per transfer (CALDB code name ``CTI``).

    ``cti(E)`` is interpolated linearly in (log E, log CTI) between the nodes and held
    constant beyond them.  A charge ``E`` collected at row ``RAWZ`` is read after
    ``RAWZ + 1`` transfers: ``apply(E, RAWZ) = E (1 - cti(E)) ** (RAWZ + 1)``;
    :meth:`correct` inverts it (fixed-point iteration, to 1e-12 relative).

    Parameters
    ----------
    energy : array
        Energy nodes (keV), increasing.
    cti : array
        Loss per transfer at the nodes, in [0, 1).
    """

    CODE = "CTI"
    CONTENT = "CALDB_CTI"
    INDEXED = {"CTI": "CTI"}

    def __init__(self, energy: Any, cti: Any) -> None:
        self.energy = as_float(energy).ravel()
        self.cti_values = as_float(cti).ravel()
        if self.energy.size == 0 or self.energy.size != self.cti_values.size:
            raise MXTCalibrationError("ENERGY and CTI must have the same non-zero length", hdu="CTI", column="CTI")
        if np.any(self.energy <= 0) or np.any(np.diff(self.energy) <= 0):
            raise MXTCalibrationError("energy nodes must be positive and increasing", hdu="CTI", column="ENERGY")
        if np.any(self.cti_values <= 0) or np.any(self.cti_values >= 1e-2):
            raise MXTCalibrationError("CTI per transfer must lie in (0, 0.01)", hdu="CTI", column="CTI")
        self._le = np.log(self.energy)
        self._lc = np.log(self.cti_values)

    def cti(self, energy: Any) -> np.ndarray:
        """Loss per transfer at ``energy`` (keV)."""
        le = np.log(np.maximum(as_float(energy), 1e-6))
        return np.exp(np.interp(le, self._le, self._lc))

    def apply(self, energy: Any, rawz: Any) -> np.ndarray:
        """Charge (keV) left after the transfers from row ``rawz``."""
        e = as_float(energy)
        return e * (1.0 - self.cti(e)) ** (as_float(rawz) + 1.0)

    def correct(self, energy_measured: Any, rawz: Any) -> np.ndarray:
        """Charge before the transfers that ``apply`` maps to ``energy_measured``."""
        em = as_float(energy_measured)
        n = as_float(rawz) + 1.0
        e = np.array(em, dtype=float, copy=True)
        for _ in range(60):
            new = em / (1.0 - self.cti(e)) ** n
            if np.all(np.abs(new - e) <= 1e-12 * np.maximum(np.abs(new), 1e-12)):
                return new
            e = new
        return e

    def to_tables(self) -> dict[str, dict[str, np.ndarray]]:
        return {"CTI": {"ENERGY": self.energy, "CTI": self.cti_values}}

    @classmethod
    def from_tables(cls, tables: Mapping[str, Any], headers: Mapping[str, Any]) -> CTIModel:
        t = tables["CTI"]
        return cls(t["ENERGY"], t["CTI"])
