"""A detection problem: band images on a detector grid, their PSFs, and the search range.

The detection works in detector coordinates (DETY, DETZ in pixels from the optical
axis), where the cross arms of the lobster-eye PSF lie along the two axes (CALDB PSF
contract).  :class:`DetectionProblem` gathers what both stages need: the pixel edges of
the grid, one :class:`~mxt_pipeline.detect.likelihood.BandData` per band, one PSF per
band, and how to turn a detector position into the off-axis angle at which the PSF is
evaluated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from mxt_pipeline import constants as C
from mxt_pipeline.detect.likelihood import BandData, CashModel, SeparableTerms
from mxt_pipeline.errors import MXTInputError

__all__ = ["BandPSFLike", "DetectionProblem", "default_theta"]


class BandPSFLike(Protocol):
    """The PSF of one detection band as separable terms (see ``bandpsf.py``)."""

    def terms(
        self,
        y_edges: np.ndarray,
        z_edges: np.ndarray,
        y: np.ndarray,
        z: np.ndarray,
        theta: np.ndarray | float = 0.0,
        derivatives: bool = False,
    ) -> SeparableTerms:
        """Pixel fractions of sources at (y, z) as separable terms on the given edges."""
        ...

    def fwhm(self, theta: float = 0.0) -> float:
        """FWHM of the central spot in pixels."""
        ...

    def pixel_fractions(
        self, y_edges: np.ndarray, z_edges: np.ndarray, y0: float, z0: float, theta: float = 0.0
    ) -> np.ndarray:
        """Dense (ny, nz) pixel fractions of one source (the CALDB method; references)."""
        ...


def default_theta(y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Off-axis angle (arcmin) of DET positions with the nominal pixel scale."""
    return np.hypot(np.asarray(y, float), np.asarray(z, float)) * C.PIXEL_SCALE_ARCSEC / 60.0


@dataclass
class DetectionProblem:
    """Band images on a detector grid with their PSFs.

    Parameters
    ----------
    y_edges, z_edges : ndarray
        Pixel edges of the grid along DETY and DETZ (pixels, increasing, uniform step).
    bands : sequence of BandData
        One image per band, indexed [y, z].
    psfs : sequence of BandPSFLike
        One PSF per band.
    theta_of : callable, optional
        ``theta_of(y, z) -> arcmin``; default: radius times the nominal pixel scale.
    margin : float
        How far (pixels) outside the grid a source position may lie: a source outside
        the field still puts its cross arms on the detector.
    """

    y_edges: np.ndarray
    z_edges: np.ndarray
    bands: Sequence[BandData]
    psfs: Sequence[BandPSFLike]
    theta_of: Callable[[np.ndarray, np.ndarray], np.ndarray] = default_theta
    margin: float = 128.0
    model: CashModel = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.y_edges = np.asarray(self.y_edges, dtype=float)
        self.z_edges = np.asarray(self.z_edges, dtype=float)
        if len(self.bands) != len(self.psfs):
            raise MXTInputError(f"{len(self.bands)} band images but {len(self.psfs)} PSFs")
        shape = (self.y_edges.size - 1, self.z_edges.size - 1)
        for b in self.bands:
            if b.shape != shape:
                raise MXTInputError(f"band image shape {b.shape} does not match the grid {shape}")
        for edges in (self.y_edges, self.z_edges):
            step = np.diff(edges)
            if np.any(step <= 0) or not np.allclose(step, step[0]):
                raise MXTInputError("detection grid edges must increase with a uniform step")
        self.model = CashModel(self.bands, self._terms)

    def with_background_shape(self, background: np.ndarray) -> DetectionProblem:
        """The problem with one background component per band: the current components
        combined with the amplitudes ``background`` (B, K) (itself when K = 1).

        The combined template of band b is ``sum_k B_bk t_bk``, so an amplitude of 1
        reproduces the given background; a band whose amplitudes are all 0 keeps no
        background.
        """
        if self.model.n_components == 1:
            return self
        amp = self.model.background_amplitudes(background)
        bands = [BandData(d.counts, d.exposure, d.background_image(amp[b])[None]) for b, d in enumerate(self.bands)]
        return DetectionProblem(self.y_edges, self.z_edges, bands, self.psfs, self.theta_of, self.margin)

    def _terms(self, b: int, y: np.ndarray, z: np.ndarray, theta: np.ndarray, derivatives: bool) -> SeparableTerms:
        return self.psfs[b].terms(self.y_edges, self.z_edges, y, z, theta, derivatives)

    # ---- geometry ---------------------------------------------------------------------------
    @property
    def n_bands(self) -> int:
        return len(self.bands)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.y_edges.size - 1, self.z_edges.size - 1)

    @property
    def pixel(self) -> float:
        """Grid step (detector pixels per image pixel)."""
        return float(self.y_edges[1] - self.y_edges[0])

    @property
    def y_centres(self) -> np.ndarray:
        return 0.5 * (self.y_edges[1:] + self.y_edges[:-1])

    @property
    def z_centres(self) -> np.ndarray:
        return 0.5 * (self.z_edges[1:] + self.z_edges[:-1])

    @property
    def bounds(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """Allowed range of source positions along y and z (grid plus margin)."""
        return (
            (self.y_edges[0] - self.margin, self.y_edges[-1] + self.margin),
            (self.z_edges[0] - self.margin, self.z_edges[-1] + self.margin),
        )

    def inside(self, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """True where (y, z) lies on the grid."""
        y = np.asarray(y, float)
        z = np.asarray(z, float)
        return (
            (y >= self.y_edges[0]) & (y < self.y_edges[-1]) & (z >= self.z_edges[0]) & (z < self.z_edges[-1])
        )

    def theta(self, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Off-axis angles (arcmin) at which the PSF of sources at (y, z) is evaluated."""
        return np.atleast_1d(np.asarray(self.theta_of(np.asarray(y, float), np.asarray(z, float)), float))

    def fwhm(self) -> float:
        """Spot FWHM (pixels) on axis, the largest over the bands."""
        return max(float(p.fwhm(0.0)) for p in self.psfs)
