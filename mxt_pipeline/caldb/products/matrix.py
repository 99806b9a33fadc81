"""MATRIX: the redistribution matrix (OGIP RMF) and its EBOUNDS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mxt_pipeline.caldb.products._base import CalibrationModel, as_float
from mxt_pipeline.errors import MXTCalibrationError
from mxt_pipeline.io.formats import RMF_WIDTH

__all__ = ["ResponseMatrix"]


class ResponseMatrix(CalibrationModel):
    """Redistribution of photon energy into PI channels (CALDB code name ``MATRIX``).

    Row ``i`` (energy bin ``[energ_lo[i], energ_hi[i])``) holds the probability of
    each channel from ``f_chan[i]`` for ``n_chan[i]`` channels (one group per row, as
    in the file).

    Parameters
    ----------
    energ_lo, energ_hi : array (nE,)
        Energy bins (keV).
    f_chan, n_chan : array (nE,)
        First channel and number of channels of each row.
    matrix : array (nE, width)
        Probabilities, the first ``n_chan[i]`` values of row ``i`` used.
    e_min, e_max : array (nC,)
        Energy range of each channel (keV).
    """

    CODE = "MATRIX"
    CONTENT = "CALDB_MATRIX"
    CAL_CLASS = "CPF"
    INDEXED = {"MATRIX": "MATRIX", "EBOUNDS": "EBOUNDS"}

    def __init__(self, energ_lo: Any, energ_hi: Any, f_chan: Any, n_chan: Any, matrix: Any,
                 e_min: Any, e_max: Any) -> None:  # fmt: skip
        self.energ_lo = as_float(energ_lo).ravel()
        self.energ_hi = as_float(energ_hi).ravel()
        self.f_chan = np.asarray(f_chan, dtype=np.int64).ravel()
        self.n_chan = np.asarray(n_chan, dtype=np.int64).ravel()
        self.matrix = as_float(matrix).reshape(self.energ_lo.size, -1)
        self.e_min = as_float(e_min).ravel()
        self.e_max = as_float(e_max).ravel()
        n = self.energ_lo.size
        if not (self.energ_hi.size == self.f_chan.size == self.n_chan.size == n):
            raise MXTCalibrationError("one F_CHAN and N_CHAN per energy bin", hdu="MATRIX", column="F_CHAN")
        if np.any(self.energ_hi <= self.energ_lo):
            raise MXTCalibrationError("ENERG_HI must exceed ENERG_LO", hdu="MATRIX", column="ENERG_HI")
        if np.any(self.n_chan > self.matrix.shape[1]) or np.any(self.n_chan < 0):
            raise MXTCalibrationError("N_CHAN exceeds the MATRIX width", hdu="MATRIX", column="N_CHAN")
        if np.any(self.f_chan < 0) or np.any(self.f_chan + self.n_chan > self.e_min.size):
            raise MXTCalibrationError("channels beyond DETCHANS", hdu="MATRIX", column="F_CHAN")
        if not np.all(np.isfinite(self.matrix)) or np.any(self.matrix < 0):
            raise MXTCalibrationError("probabilities must be finite and >= 0", hdu="MATRIX", column="MATRIX")
        if self.e_max.size != self.e_min.size or np.any(self.e_max <= self.e_min):
            raise MXTCalibrationError("E_MAX must exceed E_MIN", hdu="EBOUNDS", column="E_MAX")

    @property
    def n_channels(self) -> int:
        """DETCHANS."""
        return int(self.e_min.size)

    @property
    def energy(self) -> np.ndarray:
        """Centres of the energy bins (keV)."""
        return 0.5 * (self.energ_lo + self.energ_hi)

    @property
    def channel_energy(self) -> np.ndarray:
        """Centres of the channels (keV)."""
        return 0.5 * (self.e_min + self.e_max)

    def dense(self) -> np.ndarray:
        """The full matrix (nE, DETCHANS)."""
        n, w = self.matrix.shape
        out = np.zeros((n, self.n_channels))
        cols = self.f_chan[:, None] + np.arange(w)[None, :]
        used = np.arange(w)[None, :] < self.n_chan[:, None]
        rows = np.broadcast_to(np.arange(n)[:, None], (n, w))
        out[rows[used], cols[used]] = self.matrix[used]
        return out

    def row_sums(self) -> np.ndarray:
        """Sum of each row (1 for a redistribution-only matrix)."""
        used = np.arange(self.matrix.shape[1])[None, :] < self.n_chan[:, None]
        return np.where(used, self.matrix, 0.0).sum(axis=1)

    def fold(self, counts: Any) -> np.ndarray:
        """Expected counts per channel of ``counts`` per energy bin (nE,) or (..., nE)."""
        return as_float(counts) @ self.dense()

    def fwhm(self, energy: Any) -> np.ndarray:
        """FWHM (keV) of the redistribution at ``energy`` (from the rows' variance, Gaussian)."""
        ch = self.channel_energy
        d = self.dense()
        s = d.sum(axis=1)
        mean = d @ ch / s
        var = d @ ch**2 / s - mean**2 - np.diff(self.e_min[:2]).item() ** 2 / 12.0 if self.n_channels > 1 else 0.0
        sig = np.sqrt(np.maximum(var, 0.0))
        return np.interp(as_float(energy), self.energy, 2.0 * np.sqrt(2.0 * np.log(2.0)) * sig)

    def sample_channels(self, energy: Any, rng: np.random.Generator) -> np.ndarray:
        """A PI channel for each photon energy (keV), drawn from its energy bin's row."""
        e = as_float(energy).ravel()
        i = np.clip(np.searchsorted(self.energ_hi, e, side="right"), 0, self.energ_lo.size - 1)
        cdf = np.cumsum(np.where(np.arange(self.matrix.shape[1])[None, :] < self.n_chan[:, None], self.matrix, 0.0),
                        axis=1)  # fmt: skip
        u = rng.random(e.size) * cdf[i, -1]
        k = (cdf[i] <= u[:, None]).sum(axis=1)
        return self.f_chan[i] + np.minimum(k, self.n_chan[i] - 1)

    def header_keywords(self) -> dict[str, dict[str, Any]]:
        return {"MATRIX": {"DETCHANS": self.n_channels}, "EBOUNDS": {"DETCHANS": self.n_channels}}

    def to_tables(self) -> dict[str, dict[str, np.ndarray]]:
        n = self.energ_lo.size
        mat = np.zeros((n, RMF_WIDTH))
        w = min(RMF_WIDTH, self.matrix.shape[1])
        if np.any(self.n_chan > RMF_WIDTH):
            raise MXTCalibrationError(f"rows wider than {RMF_WIDTH} channels", hdu="MATRIX", column="N_CHAN")
        mat[:, :w] = self.matrix[:, :w]
        return {
            "MATRIX": {"ENERG_LO": self.energ_lo, "ENERG_HI": self.energ_hi,
                       "N_GRP": (self.n_chan > 0).astype(np.int16), "F_CHAN": self.f_chan.astype(np.int32),
                       "N_CHAN": self.n_chan.astype(np.int32), "MATRIX": mat},
            "EBOUNDS": {"CHANNEL": np.arange(self.n_channels, dtype=np.int32), "E_MIN": self.e_min, "E_MAX": self.e_max},
        }  # fmt: skip

    @classmethod
    def from_tables(cls, tables: Mapping[str, Any], headers: Mapping[str, Any]) -> ResponseMatrix:
        m = tables["MATRIX"]
        e = tables["EBOUNDS"]
        ch = np.asarray(e["CHANNEL"])
        if not np.array_equal(ch, np.arange(ch.size)):
            raise MXTCalibrationError("channels must be 0..DETCHANS-1 in order", hdu="EBOUNDS", column="CHANNEL")
        return cls(m["ENERG_LO"], m["ENERG_HI"], m["F_CHAN"], m["N_CHAN"], m["MATRIX"], e["E_MIN"], e["E_MAX"])
