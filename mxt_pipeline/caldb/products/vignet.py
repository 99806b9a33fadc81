"""VIGNET: effective area off axis relative to on axis, V(E, theta)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mxt_pipeline.caldb.products._base import CalibrationModel, as_float, bilinear, grid_from_nodes
from mxt_pipeline.errors import MXTCalibrationError

__all__ = ["Vignetting"]


class Vignetting(CalibrationModel):
    """Vignetting ``V(E, theta)`` in [0, 1] (CALDB code name ``VIGNET``).

    Bilinear in (log E, theta) between the nodes, clamped at the grid ends.

    Parameters
    ----------
    energy : array (nE,)
        Energy nodes (keV).
    theta : array (nT,)
        Off-axis nodes (arcmin); the first must be 0.
    values : array (nE, nT)
        Relative area, 1 on axis.
    """

    CODE = "VIGNET"
    CONTENT = "CALDB_VIGNET"
    INDEXED = {"VIGNET": "VIGNET"}

    def __init__(self, energy: Any, theta: Any, values: Any) -> None:
        self.energy = as_float(energy).ravel()
        self.theta = as_float(theta).ravel()
        self.values = np.asarray(as_float(values).reshape(self.energy.size, self.theta.size))
        if np.any(self.energy <= 0) or np.any(np.diff(self.energy) <= 0):
            raise MXTCalibrationError("energy nodes must be positive and increasing", hdu="VIGNET", column="ENERGY")
        if self.theta[0] != 0 or np.any(np.diff(self.theta) <= 0):
            raise MXTCalibrationError("off-axis nodes must start at 0 and increase", hdu="VIGNET", column="THETA")
        if not np.all(np.isfinite(self.values)) or np.any(self.values < 0) or np.any(self.values > 1):
            raise MXTCalibrationError("vignetting must lie in [0, 1]", hdu="VIGNET", column="VIGNET")
        self._log_e = np.log(self.energy)

    def __call__(self, energy: Any, theta: Any) -> np.ndarray:
        """Relative area at (energy keV, theta arcmin), broadcast together."""
        le = np.log(np.maximum(as_float(energy), 1e-6))
        return bilinear(self._log_e, self.theta, self.values, le, np.abs(as_float(theta)))

    evaluate = __call__

    def to_tables(self) -> dict[str, dict[str, np.ndarray]]:
        ee, tt = np.meshgrid(self.energy, self.theta, indexing="ij")
        return {"VIGNET": {"ENERGY": ee.ravel(), "THETA": tt.ravel(), "VIGNET": self.values.ravel()}}

    @classmethod
    def from_tables(cls, tables: Mapping[str, Any], headers: Mapping[str, Any]) -> Vignetting:
        t = tables["VIGNET"]
        e, th, (v,) = grid_from_nodes(as_float(t["ENERGY"]), as_float(t["THETA"]), [as_float(t["VIGNET"])],
                                      hdu="VIGNET", names=["VIGNET"])  # fmt: skip
        return cls(e, th, v)
