"""The pnCCD camera: charge clouds, pixel charge per frame, noise, CTI, gain/offset, thresholds.

Forward model of the CALDB signal chain (``CALDB_API``; the calibration chain inverts
it), for every photon absorbed in the detector:

1. **Charge**: ``q = E + N(0, sqrt(F w E))`` (keV), with the Fano factor of silicon
   ``F = 0.115`` and the pair-creation energy ``w = 3.65 eV`` (e.g. Lowe & Sareen 2007,
   NIM A 576, 367).  Done when the photon is generated (:func:`fano_charge`), with the
   generating component's random stream.
2. **Charge splitting** (:func:`split_charge`): a 2-D Gaussian cloud of the CALDB
   ``PATTERN`` width ``sigma(E)`` (microns; 75 micron pixels) centred on the photon's
   continuous RAW position, integrated exactly over the 3 x 3 pixels around the impact
   pixel (differences of the normal CDF); beyond one pixel from the impact pixel the
   cloud holds less than ``Phi(-1/sigma_pix)`` of the charge (below 1e-6 for the CALDB
   widths) and is neglected.  Shares below ``min_share_kev`` (1 eV) are dropped: they
   can never change a thresholded pixel value by more than a fraction of the noise.
3. **Frames and pile-up** (:func:`accumulate`): the charge of all photons that land in
   the same pixel during one 100 ms frame is summed (pile-up, whatever their source).
4. **Read noise**: Gaussian, rms ``read_noise`` of the CALDB ``PATTERN`` model, one
   draw per (frame, pixel) from a counter-based generator (a splitmix64 hash of the
   pixel key and the seed, then the inverse normal CDF), so a pixel's noise does not depend on the
   other photons simulated (adding a source leaves every other hit unchanged).
5. **CTI**: ``E_cti = CTIModel.apply(E, RAWZ)`` (loss at each of the RAWZ + 1
   transfers).
6. **Gain and offset**: ``PHA = rint(GainOffset.to_pha(E_cti, RAWY))`` ADU (the offset
   is included: the chain subtracts it), clipped to the 14-bit ADC range.
7. **On-board threshold**: a pixel is telemetered when its offset-subtracted value is
   at least ``onboard_threshold_kev`` converted with the column gain (the camera knows
   offsets and gains, not the CTI).  By default the threshold is the CALDB split
   threshold.  CALDB bad pixels are masked on board (never telemetered).
8. **Noise-only hits** (:func:`noise_hits`): pixels without charge exceed the threshold
   with probability ``Q = Phi(-thr / read_noise)``; their number per frame is Poisson
   ``(256^2 Q)`` and their values follow the normal tail beyond the threshold.
9. **Hot pixels** (not in the CALDB, for testing the chain's search): fire in each
   frame with a given probability, with an exponential amplitude of given mean.

A photon counts as *detected* (truth) when the largest share of its own charge in
one pixel reaches the CALDB primary threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from mxt_pipeline import constants as C
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.simulate.caldb_models import detector_parameters

__all__ = [
    "FANO_SI",
    "PAIR_ENERGY_EV",
    "HotPixel",
    "WarmColumn",
    "DetectorSettings",
    "DetectorModel",
    "fano_charge",
    "split_charge",
    "accumulate",
    "pixel_key",
    "unpack_key",
    "hash_normal",
    "noise_hits",
]

#: Fano factor of silicon and mean energy per electron-hole pair (eV).
FANO_SI = 0.115
PAIR_ENERGY_EV = 3.65

_NPIX = C.N_PIX
_PIX_UM = C.PIXEL_SIZE_MM * 1000.0
_OFFS = np.array([-1, 0, 1])


def fano_charge(energy_kev: np.ndarray, rng: np.random.Generator, fano: float = FANO_SI) -> np.ndarray:
    """Generated charge (keV equivalent) with Fano fluctuations, never negative."""
    e = np.asarray(energy_kev, dtype=float)
    sig = np.sqrt(fano * PAIR_ENERGY_EV * 1e-3 * e)
    return np.maximum(e + sig * rng.standard_normal(e.shape), 0.0)


_CELL_DY = np.repeat(_OFFS, 3)
_CELL_DZ = np.tile(_OFFS, 3)
#: Photons per block of :func:`split_charge`: the (block, 9) temporaries stay in cache
#: (measured 25 % faster than one pass over 1e6 photons).
_SPLIT_BLOCK = 1 << 15


def _split_block(y, z, q, inv, min_share_kev):
    iy = np.floor(y + 0.5)
    iz = np.floor(z + 0.5)
    fy = y - iy
    fz = z - iz
    n = y.size
    # Cumulative charge below the two inner pixel boundaries (k -/+ 0.5 from the impact
    # pixel centre); the outer pixels take the whole tails (charge is conserved exactly).
    py = np.empty((n, 3))
    pz = np.empty((n, 3))
    lo = ndtr((-0.5 - fy) * inv)
    hi = ndtr((0.5 - fy) * inv)
    py[:, 0] = lo
    py[:, 1] = hi - lo
    py[:, 2] = 1.0 - hi
    lo = ndtr((-0.5 - fz) * inv)
    hi = ndtr((0.5 - fz) * inv)
    pz[:, 0] = lo
    pz[:, 1] = hi - lo
    pz[:, 2] = 1.0 - hi
    py *= q[:, None]
    # The largest share is the product of the largest fractions along each axis.
    peak = np.maximum(np.maximum(py[:, 0], py[:, 1]), py[:, 2]) * np.maximum(np.maximum(pz[:, 0], pz[:, 1]), pz[:, 2])
    share = (py[:, :, None] * pz[:, None, :]).ravel()
    # flatnonzero on the flat array is several times faster than a 2-D nonzero.
    idx = np.flatnonzero(share >= min_share_kev)
    photon = idx // 9
    cell = idx - 9 * photon
    pix_y = iy.astype(np.int64)[photon] + _CELL_DY[cell]
    pix_z = iz.astype(np.int64)[photon] + _CELL_DZ[cell]
    return photon, pix_y, pix_z, share[idx], peak


def split_charge(rawy: np.ndarray, rawz: np.ndarray, charge: np.ndarray, sigma_pix: np.ndarray,
                 min_share_kev: float = 1e-3) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Share each photon's charge among the 3 x 3 pixels around its impact pixel.

    Parameters
    ----------
    rawy, rawz : ndarray
        Continuous RAW positions (pixel ``k`` covers ``[k - 0.5, k + 0.5)``).
    charge : ndarray
        Charge of each photon (keV).
    sigma_pix : ndarray or float
        Gaussian cloud width in pixels.
    min_share_kev : float
        Shares below this are dropped.

    Returns
    -------
    photon, pix_y, pix_z, share : ndarray
        One row per (photon, pixel) share kept, in photon order: the photon index, the
        pixel and the charge (keV).  Pixels may lie off the detector (the caller drops
        them).
    peak : ndarray
        Largest share of each photon (keV).
    """
    y = np.asarray(rawy, dtype=float).ravel()
    z = np.asarray(rawz, dtype=float).ravel()
    q = np.asarray(charge, dtype=float).ravel()
    inv = 1.0 / np.broadcast_to(np.asarray(sigma_pix, dtype=float), y.shape)
    parts = []
    for s in range(0, max(y.size, 1), _SPLIT_BLOCK):
        e = s + _SPLIT_BLOCK
        ph, py, pz, sh, pk = _split_block(y[s:e], z[s:e], q[s:e], inv[s:e], min_share_kev)
        parts.append((ph + s, py, pz, sh, pk))
    if len(parts) == 1:
        return parts[0]
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(5))  # type: ignore[return-value]


def pixel_key(frame: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Integer key ``(frame * 256 + y) * 256 + z`` (sorting by it sorts by frame, RAWY, RAWZ).

    Pixels must lie on the detector (0-255): the key is then the bit packing
    ``frame << 16 | y << 8 | z``, decoded by :func:`unpack_key` with shifts.
    """
    return (np.asarray(frame, dtype=np.int64) << 16) | (np.asarray(y, dtype=np.int64) << 8) | np.asarray(z, dtype=np.int64)


def unpack_key(key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame, RAWY and RAWZ of pixel keys."""
    return key >> 16, (key >> 8) & 0xFF, key & 0xFF


def accumulate(frame: np.ndarray, pix_y: np.ndarray, pix_z: np.ndarray, share: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Sum the charge per (frame, pixel): returns the sorted unique keys and their charge.

    The shares come frame-ordered (photons sorted by time), so the stable sort (timsort
    on nearly sorted keys) is close to linear.
    """
    key = pixel_key(frame, pix_y, pix_z)
    order = np.argsort(key, kind="stable")
    key = key[order]
    share = share[order]
    if key.size == 0:
        return key, share
    start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    return key[start], np.add.reduceat(share, start)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def hash_normal(key: np.ndarray, salt: int) -> np.ndarray:
    """Standard normal deviates, one per integer key, reproducible from (key, salt).

    A uniform in (0, 1) from the top 53 bits of a splitmix64 hash (Steele, Lea & Flood
    2014) of the salted key, then the inverse normal CDF.  The salt must differ from
    any other use of the same keys (the calibration chain's ADC dither hashes the pixel
    keys unsalted).
    """
    k = np.asarray(key).astype(np.uint64)
    with np.errstate(over="ignore"):
        s = _splitmix64(np.uint64(salt & 0xFFFFFFFFFFFFFFFF) + np.uint64(0x5D1E5EED))
        h = _splitmix64(k ^ s)
    u = ((h >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)
    return ndtri(u)


def noise_hits(frames: np.ndarray, threshold_kev: float, read_noise_kev: float, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Pixels of empty charge whose read noise alone exceeds the threshold.

    Parameters
    ----------
    frames : ndarray of int
        The frames the camera read (noise hits can occur in any of them).

    Returns
    -------
    frame, y, z, value_kev : ndarray
    """
    frames = np.asarray(frames, dtype=np.int64)
    if read_noise_kev <= 0 or frames.size == 0:
        e = np.empty(0, dtype=np.int64)
        return e, e, e, np.empty(0)
    q = float(ndtr(-threshold_kev / read_noise_kev))
    n = rng.poisson(frames.size * _NPIX * _NPIX * q)
    f = frames[rng.integers(0, frames.size, n)]
    y = rng.integers(0, _NPIX, n)
    z = rng.integers(0, _NPIX, n)
    # Normal tail beyond the threshold by inversion: x = -ndtri(u Q), u uniform in (0, 1].
    u = 1.0 - rng.random(n)
    value = -ndtri(u * q) * read_noise_kev
    return f, y, z, value


@dataclass(frozen=True)
class HotPixel:
    """A pixel firing in a fraction ``probability`` of the frames, amplitude ~ Exp(mean_kev)."""

    rawy: int
    rawz: int
    probability: float = 0.5
    mean_kev: float = 0.5

    def __post_init__(self):
        if not (0 <= self.rawy < _NPIX and 0 <= self.rawz < _NPIX):
            raise MXTInputError(f"hot pixel ({self.rawy}, {self.rawz}) outside the detector", keyword="hot_pixels")
        if not (0 <= self.probability <= 1) or self.mean_kev <= 0:
            raise MXTInputError("hot pixel probability must be in [0, 1] and mean_kev > 0", keyword="hot_pixels")


@dataclass(frozen=True)
class WarmColumn:
    """A column (RAWY) of warm or flickering pixels missing from the CALDB list.

    Each of its pixels in ``rawz_min..rawz_max`` fires on average
    ``hits_per_pixel`` times over the observation (Poisson, each pixel independently),
    with an amplitude ~ Exp(``mean_kev``) (those below the on-board threshold are
    lost).  ``flicker_frames = 0``: warm, the hits spread at random over the frames
    read; ``flicker_frames = k > 0``: flickering, every hit falls in one of ``k``
    frames drawn at random (the column switches on now and then).
    """

    rawy: int
    hits_per_pixel: float = 1.0
    mean_kev: float = 1.0
    flicker_frames: int = 0
    rawz_min: int = 0
    rawz_max: int = _NPIX - 1

    def __post_init__(self):
        if not 0 <= self.rawy < _NPIX:
            raise MXTInputError(f"warm column {self.rawy} outside the detector", keyword="warm_columns")
        if not 0 <= self.rawz_min <= self.rawz_max < _NPIX:
            raise MXTInputError("warm column rows must satisfy 0 <= rawz_min <= rawz_max < 256", keyword="warm_columns")
        if self.hits_per_pixel < 0 or self.mean_kev <= 0 or self.flicker_frames < 0:
            raise MXTInputError("warm column: hits_per_pixel >= 0, mean_kev > 0, flicker_frames >= 0",
                                keyword="warm_columns")  # fmt: skip

    def hits(self, frames_read: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """(frame, rawy, rawz, charge keV) of the column's hits."""
        frames = np.asarray(frames_read, dtype=np.int64)
        n_rows = self.rawz_max - self.rawz_min + 1
        n = int(rng.poisson(self.hits_per_pixel * n_rows)) if frames.size else 0
        if self.flicker_frames:
            frames = rng.choice(frames, size=min(self.flicker_frames, frames.size), replace=False)
        f = frames[rng.integers(0, frames.size, n)] if n else np.empty(0, np.int64)
        z = rng.integers(self.rawz_min, self.rawz_max + 1, n)
        return f, np.full(n, self.rawy), z, rng.exponential(self.mean_kev, n)


@dataclass(frozen=True)
class DetectorSettings:
    """Scenario-level detector options (the physics comes from the CALDB).

    Attributes
    ----------
    onboard_threshold_kev : float or None
        Telemetry threshold (None: the CALDB split threshold).
    noise_hits : bool
        Simulate noise-only pixels above the threshold.
    hot_pixels : sequence of HotPixel
        Hot pixels missing from the CALDB list.
    mask_bad_pixels : bool
        Do not telemeter the CALDB bad pixels.
    warm_columns : sequence of WarmColumn
        Warm or flickering columns missing from the CALDB list.
    """

    onboard_threshold_kev: float | None = None
    noise_hits: bool = True
    hot_pixels: tuple[HotPixel, ...] = field(default_factory=tuple)
    mask_bad_pixels: bool = True
    warm_columns: tuple[WarmColumn, ...] = field(default_factory=tuple)

    def __post_init__(self):
        hp = tuple(h if isinstance(h, HotPixel) else HotPixel(**h) for h in self.hot_pixels)
        object.__setattr__(self, "hot_pixels", hp)
        wc = tuple(c if isinstance(c, WarmColumn) else WarmColumn(**c) for c in self.warm_columns)
        object.__setattr__(self, "warm_columns", wc)
        if self.onboard_threshold_kev is not None and not self.onboard_threshold_kev > 0:
            raise MXTInputError("onboard_threshold_kev must be > 0", keyword="onboard_threshold_kev")

    def to_dict(self) -> dict[str, Any]:
        return {
            "onboard_threshold_kev": self.onboard_threshold_kev,
            "noise_hits": self.noise_hits,
            "hot_pixels": [vars(h).copy() for h in self.hot_pixels],
            "mask_bad_pixels": self.mask_bad_pixels,
            **({"warm_columns": [vars(c).copy() for c in self.warm_columns]} if self.warm_columns else {}),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> DetectorSettings:
        d = dict(d or {})
        unknown = sorted(set(d) - {"onboard_threshold_kev", "noise_hits", "hot_pixels", "mask_bad_pixels",
                                   "warm_columns"})  # fmt: skip
        if unknown:
            raise MXTInputError(f"detector: unknown key(s) {unknown}", keyword=unknown[0])
        hp = d.pop("hot_pixels", ()) or ()
        wc = d.pop("warm_columns", ()) or ()
        try:
            return cls(hot_pixels=tuple(HotPixel(**h) for h in hp), warm_columns=tuple(WarmColumn(**c) for c in wc), **d)
        except TypeError as exc:
            raise MXTInputError(f"detector: {exc}", keyword="hot_pixels") from None


@dataclass
class DetectorModel:
    """The camera's response, from the CALDB models (see the module docstring).

    Build with :meth:`from_calibration`; the attributes are plain callables and arrays
    so that the kernels can be tested with any model honouring the CALDB contract.
    """

    sigma_um: Callable[[np.ndarray], np.ndarray]
    read_noise_kev: float
    primary_threshold_kev: float
    split_threshold_kev: float
    onboard_threshold_kev: float
    cti_apply: Callable[[np.ndarray, np.ndarray], np.ndarray]
    to_pha: Callable[[np.ndarray, np.ndarray], np.ndarray]
    gain_ev_adu: np.ndarray
    offset_adu: np.ndarray
    masked: np.ndarray  # bool [RAWY, RAWZ]: not telemetered
    settings: DetectorSettings = field(default_factory=DetectorSettings)
    fano: float = FANO_SI

    @classmethod
    def from_calibration(cls, calset, settings: DetectorSettings | None = None) -> DetectorModel:
        """From a CALDB calibration set (``pattern``, ``cti``, ``gainoff``, ``badpix``)."""
        settings = settings or DetectorSettings()
        p = detector_parameters(calset)
        onboard = settings.onboard_threshold_kev if settings.onboard_threshold_kev is not None else p["split_threshold_kev"]
        masked = p["bad_mask"] if settings.mask_bad_pixels else np.zeros((_NPIX, _NPIX), dtype=bool)
        return cls(
            sigma_um=p["sigma_um"],
            read_noise_kev=p["read_noise_kev"],
            primary_threshold_kev=p["primary_threshold_kev"],
            split_threshold_kev=p["split_threshold_kev"],
            onboard_threshold_kev=float(onboard),
            cti_apply=p["cti_apply"],
            to_pha=p["to_pha"],
            gain_ev_adu=np.asarray(p["gain_ev_adu"], dtype=float),
            offset_adu=np.asarray(p["offset_adu"], dtype=float),
            masked=np.asarray(masked, dtype=bool),
            settings=settings,
        )

    def charge_of(self, energy_kev: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Fano-fluctuated charge of photons (step 1)."""
        return fano_charge(energy_kev, rng, self.fano)

    def respond(
        self,
        frame: np.ndarray,
        rawy: np.ndarray,
        rawz: np.ndarray,
        charge: np.ndarray,
        energy: np.ndarray,
        *,
        salt: int,
        frames_read: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Raw hits of photons absorbed in the detector (steps 2-9).

        Parameters
        ----------
        frame : ndarray of int
            Frame of each photon (photons sorted by frame for speed, not required).
        rawy, rawz : ndarray
            Continuous RAW positions.
        charge : ndarray
            Fano-fluctuated charge (keV), from :meth:`charge_of`.
        energy : ndarray
            True photon energies (keV), for the cloud width.
        salt : int
            Seed of the counter-based read noise.
        frames_read : ndarray of int, optional
            Frames read out (for noise-only and hot-pixel hits); None: no such hits.
        rng : Generator, optional
            Stream for noise-only and hot-pixel hits.

        Returns
        -------
        hits : dict
            ``FRAME``, ``RAWY``, ``RAWZ`` (int) and ``PHA`` (int ADU), sorted by
            (FRAME, RAWY, RAWZ).
        detected : ndarray of bool
            Per photon: its largest pixel share reaches the primary threshold.
        """
        frame = np.asarray(frame, dtype=np.int64)
        sigma_pix = np.asarray(self.sigma_um(np.asarray(energy, dtype=float)), dtype=float) / _PIX_UM
        photon, py, pz, share, peak = split_charge(rawy, rawz, charge, sigma_pix)
        detected = peak >= self.primary_threshold_kev
        on = (py >= 0) & (py < _NPIX) & (pz >= 0) & (pz < _NPIX)
        photon, py, pz, share = photon[on], py[on], pz[on], share[on]
        pf = frame[photon]
        extra = []
        if frames_read is not None and rng is not None:
            if self.settings.noise_hits:
                extra.append(noise_hits(frames_read, self.onboard_threshold_kev, self.read_noise_kev, rng))
            for hp in self.settings.hot_pixels:
                fired = np.asarray(frames_read)[rng.random(np.size(frames_read)) < hp.probability]
                extra.append((fired, np.full(fired.size, hp.rawy), np.full(fired.size, hp.rawz),
                              rng.exponential(hp.mean_kev, fired.size)))  # fmt: skip
            for wc in self.settings.warm_columns:
                extra.append(wc.hits(frames_read, rng))
        key, q = accumulate(pf, py, pz, share)
        f, y, z = unpack_key(key)
        # Read noise (counter-based: depends only on the pixel key and the salt).
        q = q + self.read_noise_kev * hash_normal(key, salt)
        if extra:
            ef = np.concatenate([e[0] for e in extra]).astype(np.int64)
            ey = np.concatenate([e[1] for e in extra]).astype(np.int64)
            ez = np.concatenate([e[2] for e in extra]).astype(np.int64)
            ev = np.concatenate([e[3] for e in extra]).astype(float)
            # A noise or hot-pixel hit on a pixel that already has charge adds to it.
            key2, q2 = accumulate(np.r_[f, ef], np.r_[y, ey], np.r_[z, ez], np.r_[q, ev])
            key, q = key2, q2
            f, y, z = unpack_key(key)
        pha, keep = self.digitise(q, y, z)
        hits = {"FRAME": f[keep], "RAWY": y[keep], "RAWZ": z[keep], "PHA": pha[keep]}
        return hits, detected

    def digitise(self, charge_kev: np.ndarray, rawy: np.ndarray, rawz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """CTI, gain/offset, ADC rounding and on-board threshold of pixel charges.

        Returns
        -------
        pha : ndarray of int
            ADU values (clipped to 0 - PHA_MAX).
        telemetered : ndarray of bool
            Above the on-board threshold and not masked.
        """
        q = np.maximum(np.asarray(charge_kev, dtype=float), 0.0)
        e_cti = np.asarray(self.cti_apply(q, rawz), dtype=float)
        pha = np.clip(np.rint(np.asarray(self.to_pha(e_cti, rawy), dtype=float)), 0, C.PHA_MAX).astype(np.int64)
        thr_adu = self.onboard_threshold_kev * 1000.0 / self.gain_ev_adu
        telemetered = (pha - self.offset_adu[rawy]) >= thr_adu[rawy]
        if self.masked.any():
            telemetered &= ~self.masked[rawy, rawz]
        return pha, telemetered
