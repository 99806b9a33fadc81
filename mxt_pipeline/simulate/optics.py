"""The lobster-eye optics seen by the simulator: effective area, vignetting, PSF, focal plane.

:class:`Optics` wraps the CALDB models (``EFFAREA``, ``VIGNET``, ``PSF``, ``TELDEF``) and
adds nothing to their physics:

* the photon rate of a source is ``integral N(E) A(E) V(E, theta) dE`` with the
  on-axis effective area ``A`` (optics x filter x detector quantum efficiency) and the
  vignetting ``V``;
* each photon is scattered by ``PSFModel.sample(E, theta)``, which returns the offset
  (DETY, DETZ pixels) from the source's focal-plane position at the photon's energy and
  off-axis angle: spot, cross arms along DETY and DETZ, halo.  A source outside the
  field has its spot off the chip, but its arms still cross it: those photons are kept
  like any other whose scattered position lands on the 256 x 256 pixels;
* focal-plane positions go DET -> RAW through ``Teldef.det_to_raw`` (continuous RAW,
  pixel ``k`` covering ``[k - 0.5, k + 0.5)``).

The off-axis angle is computed from the DET position (pixels from the optical axis):
``theta = atan(r p / f)`` with ``r`` the distance in pixels, ``p`` the pixel size and
``f`` the focal length of the TELDEF (``constants`` when the model does not expose
them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mxt_pipeline import constants as C

__all__ = ["Optics", "on_chip"]

_RAD_TO_ARCMIN = 180.0 * 60.0 / math.pi


def on_chip(rawy: np.ndarray, rawz: np.ndarray) -> np.ndarray:
    """True for continuous RAW positions on the 256 x 256 pixels."""
    lo, hi = -0.5, C.N_PIX - 0.5
    return (rawy >= lo) & (rawy < hi) & (rawz >= lo) & (rawz < hi)


@dataclass
class Optics:
    """Effective area, vignetting, PSF and telescope definition from the CALDB."""

    psf: Any
    effarea: Any
    vignetting_model: Any
    teldef: Any

    @property
    def pixel_over_focal(self) -> float:
        """Pixel size over focal length (radians per pixel at the axis)."""
        pix = getattr(self.teldef, "pixel_size_mm", None) or getattr(self.teldef, "pixel_mm", None) or C.PIXEL_SIZE_MM
        foc = getattr(self.teldef, "focal_length_mm", None) or getattr(self.teldef, "focal_mm", None) or C.FOCAL_LENGTH_MM
        return float(pix) / float(foc)

    def energy_range(self) -> tuple[float, float]:
        """Energy range (keV) of the effective-area table."""
        lo = np.asarray(self.effarea.energ_lo, dtype=float)
        hi = np.asarray(self.effarea.energ_hi, dtype=float)
        return float(lo[0]), float(hi[-1])

    def area(self, energy_kev: np.ndarray) -> np.ndarray:
        """On-axis effective area (cm^2)."""
        return np.asarray(self.effarea(np.asarray(energy_kev, dtype=float)), dtype=float)

    def vignetting(self, energy_kev: np.ndarray, theta_arcmin: np.ndarray) -> np.ndarray:
        """Vignetting in [0, 1] at each energy and off-axis angle."""
        return np.asarray(self.vignetting_model(np.asarray(energy_kev, dtype=float),
                                                np.asarray(theta_arcmin, dtype=float)), dtype=float)  # fmt: skip

    def offaxis_arcmin(self, dety: np.ndarray, detz: np.ndarray) -> np.ndarray:
        """Off-axis angle (arcmin) of DET positions (pixels from the optical axis)."""
        r = np.hypot(np.asarray(dety, dtype=float), np.asarray(detz, dtype=float))
        return np.arctan(r * self.pixel_over_focal) * _RAD_TO_ARCMIN

    def scatter(self, energy_kev: np.ndarray, theta_arcmin: np.ndarray, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """PSF offsets (DETY, DETZ pixels) of photons."""
        dy, dz = self.psf.sample(np.asarray(energy_kev, dtype=float), np.asarray(theta_arcmin, dtype=float), rng)
        return np.asarray(dy, dtype=float), np.asarray(dz, dtype=float)

    def det_to_raw(self, dety: np.ndarray, detz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y, z = self.teldef.det_to_raw(np.asarray(dety, dtype=float), np.asarray(detz, dtype=float))
        return np.asarray(y, dtype=float), np.asarray(z, dtype=float)

    def raw_to_det(self, rawy: np.ndarray, rawz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y, z = self.teldef.raw_to_det(np.asarray(rawy, dtype=float), np.asarray(rawz, dtype=float))
        return np.asarray(y, dtype=float), np.asarray(z, dtype=float)

    def angles_to_det(self, ang_y: np.ndarray, ang_z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y, z = self.teldef.angles_to_det(np.asarray(ang_y, dtype=float), np.asarray(ang_z, dtype=float))
        return np.asarray(y, dtype=float), np.asarray(z, dtype=float)

    def chip_half_width_arcmin(self) -> float:
        """Half the angular width of the chip (arcmin), about 29'."""
        return math.atan(0.5 * C.N_PIX * self.pixel_over_focal) * _RAD_TO_ARCMIN
