"""Energy bands of the detection images.

A band is a half-open energy interval ``[e_min, e_max)`` in keV. The detection runs on
one image per band; the default pair (0.2-2 keV, 2-10 keV) splits the MXT range
(0.2-10 keV, Goetz+2022) where the effective area of the micro-pore optics falls and the
PSF changes (fewer double reflections at high energy), so the two images carry
different PSFs and a multi-band fit gains over a single broad band.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from mxt_pipeline import constants as C
from mxt_pipeline.errors import MXTInputError

__all__ = ["EnergyBand", "DEFAULT_BANDS", "parse_bands", "as_bands", "format_bands"]


@dataclass(frozen=True, order=True)
class EnergyBand:
    """One detection band ``[e_min, e_max)`` in keV."""

    e_min: float
    e_max: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.e_min) and np.isfinite(self.e_max)):
            raise MXTInputError(f"band edges must be finite: {self.e_min}-{self.e_max}")
        if not 0.0 <= self.e_min < self.e_max:
            raise MXTInputError(f"band {self.e_min}-{self.e_max} keV: need 0 <= E_MIN < E_MAX")

    @property
    def label(self) -> str:
        """``'0.2-2'`` style label (the CLI syntax)."""
        return f"{self.e_min:g}-{self.e_max:g}"

    def contains(self, energy: np.ndarray) -> np.ndarray:
        """Boolean mask of the energies (keV) inside the band."""
        e = np.asarray(energy, dtype=float)
        return (e >= self.e_min) & (e < self.e_max)

    def energy_grid(self, n: int = 9) -> np.ndarray:
        """``n`` energies (keV) at the centres of equal log-energy slices of the band.

        Used to average the PSF over the band; the lower edge 0 is replaced by the
        instrument's low threshold so the logarithm stays defined.
        """
        lo = max(self.e_min, C.ENERGY_MIN_KEV * 0.5)
        edges = np.geomspace(lo, self.e_max, n + 1)
        return np.sqrt(edges[:-1] * edges[1:])


#: The default detection bands: soft 0.2-2 keV and hard 2-10 keV.
DEFAULT_BANDS: tuple[EnergyBand, ...] = (EnergyBand(0.2, 2.0), EnergyBand(2.0, 10.0))


def format_bands(bands: Iterable[EnergyBand]) -> str:
    """The CLI syntax of bands, ``'0.2-2,2-10'`` (inverse of :func:`parse_bands`)."""
    return ",".join(b.label for b in bands)


def parse_bands(text: str) -> tuple[EnergyBand, ...]:
    """Parse the CLI syntax ``'0.2-2,2-10'`` into bands.

    Parameters
    ----------
    text : str
        Comma-separated ``lo-hi`` pairs in keV.

    Returns
    -------
    tuple of EnergyBand

    Raises
    ------
    MXTInputError
        On a malformed pair, an empty band, or overlapping bands.
    """
    bands = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        parts = item.split("-")
        if len(parts) != 2:
            raise MXTInputError(f"band {item!r}: expected 'E_MIN-E_MAX' in keV")
        try:
            lo, hi = float(parts[0]), float(parts[1])
        except ValueError:
            raise MXTInputError(f"band {item!r}: edges are not numbers") from None
        bands.append(EnergyBand(lo, hi))
    return as_bands(bands)


def as_bands(bands: Iterable[EnergyBand | Sequence[float]] | str | None) -> tuple[EnergyBand, ...]:
    """Normalise bands given as EnergyBand objects, ``(lo, hi)`` pairs or a CLI string.

    ``None`` gives :data:`DEFAULT_BANDS`. Bands must not overlap (a photon is counted in
    one image only, so the band images are independent Poisson data).
    """
    if bands is None:
        return DEFAULT_BANDS
    if isinstance(bands, str):
        return parse_bands(bands)
    out = tuple(b if isinstance(b, EnergyBand) else EnergyBand(float(b[0]), float(b[1])) for b in bands)
    if not out:
        raise MXTInputError("at least one energy band is needed")
    ordered = sorted(out)
    for a, b in zip(ordered[:-1], ordered[1:]):
        if b.e_min < a.e_max:
            raise MXTInputError(f"bands {a.label} and {b.label} keV overlap")
    return out
