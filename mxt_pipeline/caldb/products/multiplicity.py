"""MULTIPLICITY: energy correction of split events (charge lost below the split threshold)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mxt_pipeline.caldb.products._base import CalibrationModel, as_float
from mxt_pipeline.errors import MXTCalibrationError

__all__ = ["Multiplicity"]

MAX_MULTIPLICITY = 4


class Multiplicity(CalibrationModel):
    """Factors ``k_m(E)`` for events of multiplicity m = 1..4 (CALDB code ``MULTIPLICITY``).

    ``correct(E_sum, m) = E_sum * k_m(E_sum)``, ``k`` interpolated linearly in log E and
    held constant beyond the nodes; ``m`` is clipped to 1..4.

    Parameters
    ----------
    energies : array (nE,)
        Energy nodes (keV), increasing.
    factors : array (4, nE)
        ``k_m`` at the nodes, row m - 1.
    """

    CODE = "MULTIPLICITY"
    CONTENT = "CALDB_MULTIPLICITY"
    INDEXED = {"MULTIPLICITY": "MULTIPLICITY"}

    def __init__(self, energies: Any, factors: Any) -> None:
        self.energies = as_float(energies).ravel()
        self.factors = as_float(factors).reshape(MAX_MULTIPLICITY, self.energies.size)
        if np.any(self.energies <= 0) or np.any(np.diff(self.energies) <= 0):
            raise MXTCalibrationError("energy nodes must be positive and increasing", hdu="MULTIPLICITY",
                                      column="ENERGY")  # fmt: skip
        if not np.all(np.isfinite(self.factors)) or np.any(self.factors <= 0):
            raise MXTCalibrationError("factors must be positive", hdu="MULTIPLICITY", column="FACTOR")
        self._le = np.log(self.energies)

    @property
    def energy(self) -> np.ndarray:
        """Alias of ``energies``."""
        return self.energies

    def factor(self, energy: Any, multiplicity: Any) -> np.ndarray:
        """``k_m(E)`` at each (energy keV, multiplicity), broadcast together."""
        e, m = np.broadcast_arrays(as_float(energy), np.asarray(multiplicity))
        le = np.log(np.maximum(e, 1e-6))
        m = np.clip(m.astype(np.intp), 1, MAX_MULTIPLICITY)
        out = np.empty(e.shape)
        for k in range(MAX_MULTIPLICITY):
            sel = m == k + 1
            out[sel] = np.interp(le[sel], self._le, self.factors[k])
        return out

    def correct(self, e_sum: Any, mult: Any) -> np.ndarray:
        """Corrected event energy (keV)."""
        return as_float(e_sum) * self.factor(e_sum, mult)

    def to_tables(self) -> dict[str, dict[str, np.ndarray]]:
        return {"MULTIPLICITY": {"ENERGY": self.energies, "FACTOR": self.factors.T}}

    @classmethod
    def from_tables(cls, tables: Mapping[str, Any], headers: Mapping[str, Any]) -> Multiplicity:
        t = tables["MULTIPLICITY"]
        return cls(t["ENERGY"], as_float(t["FACTOR"]).T)
