"""What the detection takes from the CALDB: band PSFs, band vignetting, geometry, systematics.

:class:`DetectionCalibration` gathers the calibration models the detection uses (CALDB
contract, ``mxt_pipeline.caldb.products``): PSF, TELDEF, BADPIX, EFFAREA, VIGNET and
SYSERR.  Band quantities are averages over the band weighted by the expected count
spectrum of a source: an (unabsorbed) power law of photon index ``photon_index``
folded through the on-axis effective area, ``w(E) = A(E) E^-Gamma dE`` on a
logarithmic energy grid.  Photon index 2 is the typical GRB afterglow (Nousek et al.
2006); the PSF changes slowly with energy, so the band PSF depends little on it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mxt_pipeline.detect.bands import EnergyBand
from mxt_pipeline.detect.levels import WILKS, ErrorLevels
from mxt_pipeline.detect.likelihood import SeparableTerms
from mxt_pipeline.detect.problem import BandPSFLike
from mxt_pipeline.detect.tabulated import TabulatedSeparable
from mxt_pipeline.errors import MXTCaldbError, MXTCalibrationError

__all__ = ["DetectionCalibration", "BandPSF", "spectral_weights"]


def _model(calset, code: str, names: tuple[str, ...], required: bool = False):
    """The model of CALDB code ``code`` in a calibration set (attribute or mapping)."""
    for name in (*names, code):
        if isinstance(calset, Mapping) and name in calset:
            return calset[name]
        value = getattr(calset, name, None)
        if value is not None:
            return value
    if required:
        raise MXTCalibrationError(f"the calibration set has no {code} model")
    return None

#: Band PSFs by (PSF model, effective area, bands, photon index): the models are kept
#: with the entry, so the identities in the key stay valid.
_BAND_PSF_CACHE: dict[tuple, tuple] = {}
_BAND_PSF_CACHE_SIZE = 8

#: Energies per band for the averages (the PSF changes slowly with energy; 6 log-spaced
#: energies resolve a band of a decade to a few percent in energy).
N_ENERGIES = 6


def spectral_weights(band: EnergyBand, effective_area: Callable[[np.ndarray], np.ndarray] | None, photon_index: float,
                     n: int = N_ENERGIES) -> tuple[np.ndarray, np.ndarray]:
    """Energies (keV) and normalised weights of the expected counts within a band.

    ``w_i = A(E_i) E_i^-Gamma dE_i`` on ``n`` logarithmic slices of the band; without an
    effective area, ``A = 1``.
    """
    lo = max(band.e_min, 0.05)
    edges = np.geomspace(lo, band.e_max, n + 1)
    energy = np.sqrt(edges[:-1] * edges[1:])
    area = np.ones(n) if effective_area is None else np.asarray(effective_area(energy), float)
    w = np.maximum(area, 0.0) * energy ** (-photon_index) * np.diff(edges)
    if not np.any(w > 0):
        raise MXTCalibrationError(f"effective area is zero over the band {band.label} keV")
    return energy, w / w.sum()


class BandPSF:
    """The PSF of one band as separable terms, from the CALDB PSF model.

    The band density is the weighted mixture of the model's densities over the band's
    energies, ``D_b(dy, dz) = sum_i w_i PSF.density(dy, dz, E_i, theta)``; its separable
    terms come from :class:`~mxt_pipeline.detect.tabulated.TabulatedSeparable`, built
    once per off-axis angle key and cached.  Lobster-eye PSFs vary slowly across the
    field (CALDB contract), so the angle is quantised: by default the angles 0 to
    ``max_theta`` are cut into segments over which the band's spot FWHM changes by at
    most ``fwhm_tol`` (relative) and which are at most ``max_key_step`` arcmin long,
    and every angle of a segment uses the PSF at the segment's middle (a PSF flat near
    the axis needs one table for the whole centre of the field); with ``theta_step``
    the angle is rounded to multiples of it instead.  ``pixel_fractions`` is the
    model's own exact method, mixed the same way at the same key angle (used by
    simulations and by the reference fits).

    Parameters
    ----------
    psf : PSFModel-like
        Provides ``density(dy, dz, energy, theta)``, ``pixel_fractions(y_edges, z_edges,
        y0, z0, energy, theta)`` and ``fwhm_spot(energy, theta)``.
    energy, weights : ndarray
        Energies (keV) and weights of the band average.
    theta_step : float, optional
        Arcmin between the off-axis angles at which tables are built (uniform keys);
        None (default) for the FWHM-adaptive keys.
    fwhm_tol : float
        Most relative change of the spot FWHM within one adaptive key segment.
    max_key_step, max_theta : float
        Longest adaptive segment and the largest angle segmented (arcmin); angles
        beyond ``max_theta`` use the last segment.
    extent : float
        Half-width in pixels of the tables: 512 covers the chip from any allowed source
        position (256 pixels plus the 128-pixel margin on either side is at most 384
        pixels away).  A table holds two sets of rank x 16k values (about 1.5 MB for
        rank 6); ``max_tables`` are kept (least recently used dropped).
    """

    def __init__(self, psf, energy: np.ndarray, weights: np.ndarray, *, theta_step: float | None = None,
                 fwhm_tol: float = 0.01, max_key_step: float = 10.0, max_theta: float = 120.0,
                 extent: float = 512.0, max_tables: int = 96) -> None:
        self.psf = psf
        self.energy = np.asarray(energy, float)
        self.weights = np.asarray(weights, float)
        self.theta_step = None if theta_step is None else float(theta_step)
        self.fwhm_tol = float(fwhm_tol)
        self.max_key_step = float(max_key_step)
        self.max_theta = float(max_theta)
        self.extent = float(extent)
        self._tables: OrderedDict[float, TabulatedSeparable] = OrderedDict()
        self._max_tables = int(max_tables)
        self._segments: tuple[np.ndarray, np.ndarray] | None = None

    def _fwhm_curve(self, theta: np.ndarray) -> np.ndarray:
        """Band spot FWHM at many angles (one vectorised call per energy when possible)."""
        out = np.zeros(theta.size)
        for e, w in zip(self.energy, self.weights):
            try:
                f = np.broadcast_to(np.asarray(self.psf.fwhm_spot(e, theta), float), theta.shape)
            except (TypeError, ValueError):  # a model taking scalar angles only
                f = np.array([float(self.psf.fwhm_spot(e, float(t))) for t in theta])
            out += w * f
        return out

    def key_segments(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower edges (arcmin) of the adaptive angle segments and their key angles."""
        if self._segments is None:
            grid = np.arange(0.0, self.max_theta + 0.125, 0.25)
            fwhm = self._fwhm_curve(grid)
            starts = [0]
            for i in range(1, grid.size):
                j = starts[-1]
                if abs(fwhm[i] / fwhm[j] - 1.0) > self.fwhm_tol or grid[i] - grid[j] > self.max_key_step:
                    starts.append(i)
            lo = grid[starts]
            hi = np.r_[lo[1:], grid[-1]]
            self._segments = (lo, 0.5 * (lo + hi))
        return self._segments

    def keys(self, theta: np.ndarray) -> np.ndarray:
        """Key angle (arcmin) of the table used at each off-axis angle."""
        theta = np.maximum(np.asarray(theta, float), 0.0)
        if self.theta_step is not None:
            return np.round(theta / self.theta_step) * self.theta_step
        lo, mid = self.key_segments()
        return mid[np.clip(np.searchsorted(lo, theta, side="right") - 1, 0, lo.size - 1)]

    def _key(self, theta: float) -> float:
        return float(self.keys(np.array([float(theta)]))[0])

    def density(self, dy: np.ndarray, dz: np.ndarray, theta: float = 0.0) -> np.ndarray:
        """Band-averaged density (probability per pixel^2)."""
        out = 0.0
        for e, w in zip(self.energy, self.weights):
            out = out + w * np.asarray(self.psf.density(dy, dz, e, theta), float)
        return out

    def table(self, theta: float) -> TabulatedSeparable:
        """The separable table at the rounded off-axis angle (built on first use)."""
        key = self._key(theta)
        if key in self._tables:
            self._tables.move_to_end(key)
            return self._tables[key]
        tab = TabulatedSeparable(lambda dy, dz: self.density(dy, dz, key), self.fwhm(key), extent=self.extent)
        self._tables[key] = tab
        if len(self._tables) > self._max_tables:
            self._tables.popitem(last=False)
        return tab

    def terms(self, y_edges, z_edges, y, z, theta=0.0, derivatives=False) -> SeparableTerms:
        """Separable terms of sources at (y, z), each with the table of its angle."""
        y = np.atleast_1d(np.asarray(y, float))
        z = np.atleast_1d(np.asarray(z, float))
        theta = np.broadcast_to(np.atleast_1d(np.asarray(theta, float)), y.shape)
        keys = self.keys(theta)
        uniq = np.unique(keys)
        if uniq.size == 1:
            return self.table(float(uniq[0])).terms(y_edges, z_edges, y, z, 0.0, derivatives)
        parts = {}
        for k in uniq:
            sel = np.flatnonzero(keys == k)
            parts[float(k)] = (sel, self.table(float(k)).terms(y_edges, z_edges, y[sel], z[sel], 0.0, derivatives))
        rank = max(t.w.shape[1] for _, t in parts.values())
        ny, nz = len(y_edges) - 1, len(z_edges) - 1
        w = np.zeros((y.size, rank))
        fy = np.zeros((y.size, rank, ny))
        fz = np.zeros((y.size, rank, nz))
        dfy = np.zeros((y.size, rank, ny)) if derivatives else None
        dfz = np.zeros((y.size, rank, nz)) if derivatives else None
        for sel, t in parts.values():
            r = t.w.shape[1]
            # Missing terms of a lower-rank table have weight 0.
            w[sel, :r] = t.w
            fy[sel, :r] = t.fy
            fz[sel, :r] = t.fz
            if derivatives:
                dfy[sel, :r] = t.dfy
                dfz[sel, :r] = t.dfz
        return SeparableTerms(w, fy, fz, dfy, dfz)

    def pixel_fractions(self, y_edges, z_edges, y0, z0, theta=0.0) -> np.ndarray:
        """Exact pixel fractions from the CALDB model, mixed over the band.

        The PSF is taken at the rounded angle, as in :meth:`terms`: both describe the
        same model, one through the CALDB's own pixel integrals, the other through the
        separable tables.
        """
        key = self._key(theta)
        out = 0.0
        for e, w in zip(self.energy, self.weights):
            out = out + w * np.asarray(self.psf.pixel_fractions(y_edges, z_edges, y0, z0, e, key), float)
        return out

    def fwhm(self, theta: float = 0.0) -> float:
        """Weighted mean spot FWHM (pixels) over the band."""
        f = np.array([float(self.psf.fwhm_spot(e, theta)) for e in self.energy])
        return float(f @ self.weights)


@dataclass
class DetectionCalibration:
    """The calibration models the detection uses.

    Attributes
    ----------
    psf : PSFModel-like, or a BandPSFLike used for every band
    teldef : Teldef-like
    bad_mask : ndarray of bool (256, 256) or None
        Dead pixels, [RAWY, RAWZ].
    effective_area : callable or None
        ``A(E)`` in cm^2 on axis.
    vignetting : callable or None
        ``V(E, theta)`` in [0, 1].
    syserr_arcsec : float
        Localisation systematic (90% radius) added in quadrature.
    error_levels : ErrorLevels
        dC levels of the 68% and 90% contours versus DET_ML (the CALDB SYSERR file's
        DCLEVELS table; Wilks' levels without one).
    ml_threshold : float or None
        The DET_ML threshold at which the error levels were calibrated (keyword
        MLTHRESH of the DCLEVELS table): the validated detector configuration, used
        as the threshold unless a caller overrides it.  None without DCLEVELS.
    """

    psf: object
    teldef: object
    bad_mask: np.ndarray | None = None
    effective_area: Callable[[np.ndarray], np.ndarray] | None = None
    vignetting: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    syserr_arcsec: float = 25.0
    error_levels: ErrorLevels = WILKS
    ml_threshold: float | None = None

    # ---- construction from the CALDB ------------------------------------------------------
    @classmethod
    def from_calset(cls, calset) -> DetectionCalibration:
        """From a ``CalibrationSet`` of :mod:`mxt_pipeline.caldb.products`.

        The models are looked up by their CALDB code name (``calset.psf``,
        ``calset.teldef``, ...; a mapping by code name works too).  PSF and TELDEF are
        required; without BADPIX no pixel is masked, without EFFAREA the band averages
        weight energies by the power law alone, without VIGNET rates are not
        vignetting-corrected, without SYSERR the 25" of the MXT alerts is used; the
        dC levels of the position errors come from the SYSERR file's DCLEVELS table
        (Wilks' levels without one).
        """
        psf = _model(calset, "PSF", ("psf", "psf_model"), required=True)
        teldef = _model(calset, "TELDEF", ("teldef",), required=True)
        badpix = _model(calset, "BADPIX", ("badpix", "bad_pixels", "badpixels"))
        effarea = _model(calset, "EFFAREA", ("effarea", "effective_area", "arf"))
        vignet = _model(calset, "VIGNET", ("vignet", "vignetting"))
        syserr = _model(calset, "SYSERR", ("syserr", "systematics"))
        mask = None if badpix is None else np.asarray(badpix.mask(), bool)
        sys_arcsec = 25.0 if syserr is None else float(syserr.localization_arcsec)
        levels = WILKS
        threshold = None
        table = getattr(syserr, "levels", None)
        if table is not None:
            origin = f"CALDB {Path(syserr.source).name}" if getattr(syserr, "source", None) else "CALDB SYSERR"
            levels = ErrorLevels.from_arrays(table["DET_ML"], table["DC68"], table["DC90"], origin)
            keywords = getattr(syserr, "levels_keywords", None) or {}
            if keywords.get("MLTHRESH") is not None:
                threshold = float(keywords["MLTHRESH"])
                if not np.isfinite(threshold) or threshold < 0:
                    raise MXTCalibrationError(f"MLTHRESH must be a finite DET_ML >= 0, got {threshold}",
                                              hdu="DCLEVELS", keyword="MLTHRESH")
        return cls(psf=psf, teldef=teldef, bad_mask=mask, effective_area=effarea, vignetting=vignet,
                   syserr_arcsec=sys_arcsec, error_levels=levels, ml_threshold=threshold)

    @classmethod
    def from_caldb(cls, caldb=None, date=None) -> DetectionCalibration:
        """The calibration valid at ``date`` (mission time; None: the latest) in a CALDB.

        ``caldb`` is a CALDB root, a service URL or a ``CaDBIO`` client; None uses the
        default of the CALDB layer (``$CALDB``, else the bundled fixtures).
        """
        try:
            from mxt_pipeline.caldb.products import CalibrationSet
        except ImportError as exc:
            raise MXTCaldbError(f"the CALDB calibration models are not available: {exc}") from exc
        return cls.from_calset(CalibrationSet.from_caldb(caldb, date))

    # ---- band averages ----------------------------------------------------------------------
    def band_psfs(self, bands: Sequence[EnergyBand], photon_index: float = 2.0) -> list[BandPSFLike]:
        """One PSF per band."""
        if hasattr(self.psf, "terms"):
            return [self.psf] * len(bands)  # type: ignore[list-item]
        key = (id(self.psf), id(self.effective_area), tuple(bands), float(photon_index))
        hit = _BAND_PSF_CACHE.get(key)
        if hit is not None and hit[0] is self.psf and hit[1] is self.effective_area:
            return list(hit[2])
        out = []
        for band in bands:
            energy, w = spectral_weights(band, self.effective_area, photon_index)
            out.append(BandPSF(self.psf, energy, w))
        # The band PSFs tabulate their separable terms on first use (most of a faint
        # source's detection time); models loaded once per process (the CALDB
        # provider's cache) keep their tables across runs: a campaign or an acceptance
        # study pays the tabulation once.
        if len(_BAND_PSF_CACHE) >= _BAND_PSF_CACHE_SIZE:
            _BAND_PSF_CACHE.pop(next(iter(_BAND_PSF_CACHE)))
        _BAND_PSF_CACHE[key] = (self.psf, self.effective_area, tuple(out))
        return out

    def band_count_fractions(self, bands: Sequence[EnergyBand], photon_index: float = 2.0) -> np.ndarray:
        """Share of a source's counts in each band (power law through the effective area)."""
        totals = []
        for band in bands:
            lo = max(band.e_min, 0.05)
            edges = np.geomspace(lo, band.e_max, N_ENERGIES + 1)
            energy = np.sqrt(edges[:-1] * edges[1:])
            area = np.ones(energy.size) if self.effective_area is None else np.asarray(self.effective_area(energy), float)
            totals.append(float(np.sum(area * energy ** (-photon_index) * np.diff(edges))))
        totals = np.asarray(totals)
        return totals / totals.sum()

    def band_vignetting(self, bands: Sequence[EnergyBand], photon_index: float = 2.0) -> Callable[[np.ndarray], np.ndarray]:
        """``f(theta) -> (S, B)``: vignetting of source directions, averaged per band."""
        weights = [spectral_weights(b, self.effective_area, photon_index) for b in bands]
        vig = self.vignetting

        def f(theta: np.ndarray) -> np.ndarray:
            theta = np.atleast_1d(np.asarray(theta, float))
            if vig is None:
                return np.ones((theta.size, len(bands)))
            out = np.empty((theta.size, len(bands)))
            for b, (energy, w) in enumerate(weights):
                v = np.asarray(vig(energy[None, :], theta[:, None]), float)
                out[:, b] = v @ w
            return out

        return f
