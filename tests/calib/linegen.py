"""A small forward model of calibration-line events, for the calibration-chain tests.

Photon of energy E at a continuous RAW position (uniform over the detector) ->
Fano-noise charge -> Gaussian charge cloud (``pattern.cloud_sigma_um``) integrated over
the 3x3 pixels around the impact -> per-pixel charge summed over the photons of a frame
-> CTI losses (``cti.apply``) -> read noise -> ADU (``gainoff.to_pha``), rounded ->
on-board threshold.  The simulation bench of the project models much more (PSF,
background, pile-up ...); this generator exists so that the chain's inversion of the
CALDB signal chain can be tested on its own.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from mxt_pipeline import constants as C
from mxt_pipeline.calib.patterns import pixel_keys
from mxt_pipeline.geometry import raw_pixel

#: Fano factor and pair-creation energy of silicon (e.g. Lowe & Sareen 2007).
FANO = 0.115
W_EV = 3.65


def charge_fractions(y, z, sigma_pix):
    """Fractions (N, 3, 3) of a Gaussian cloud centred at (y, z) in the 3x3 pixels around it."""
    iy, iz = raw_pixel(y), raw_pixel(z)
    k = np.array([-1, 0, 1])

    def frac(c, ic):
        lo = (ic[:, None] + k - 0.5 - c[:, None]) / sigma_pix[:, None]
        return ndtr(lo + 1.0 / sigma_pix[:, None]) - ndtr(lo)

    return frac(y, iy)[:, :, None] * frac(z, iz)[:, None, :], iy, iz


def make_line_hits(
    energy_kev: float | np.ndarray,
    n_photons: int,
    rng: np.random.Generator,
    calset,
    *,
    photons_per_frame: int = 8,
    onboard_threshold_kev: float = 0.03,
    frame0: int = 0,
    t0: float = 1.0e8,
    apply_cti: bool = True,
    positions: tuple[np.ndarray, np.ndarray] | None = None,
    frames: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Raw hits of ``n_photons`` photons of ``energy_kev`` spread over the detector.

    Returns
    -------
    hits : dict
        TIME, FRAME, RAWY, RAWZ, PHA (int), sorted by pixel key.
    truth : dict
        Per photon: ENERGY, FRAME, Y, Z (continuous RAW), and per hit the true charge
        (``HIT_CHARGE``) and the charge with read noise before transfer losses
        (``HIT_NOISY_CHARGE``), aligned with ``hits``.
    """
    e = np.broadcast_to(np.asarray(energy_kev, dtype=float), (n_photons,)).copy()
    if positions is None:
        y = rng.uniform(-0.5, C.N_PIX - 0.5, n_photons)
        z = rng.uniform(-0.5, C.N_PIX - 0.5, n_photons)
    else:
        y, z = (np.asarray(p, dtype=float) for p in positions)
    frame = frame0 + np.arange(n_photons) // photons_per_frame if frames is None else np.asarray(frames)
    # Charge with Fano noise (keV).
    q = e + rng.standard_normal(n_photons) * np.sqrt(FANO * W_EV * e * 1000.0) / 1000.0
    sigma_pix = calset.pattern.cloud_sigma_um(e) / (C.PIXEL_SIZE_MM * 1000.0)
    frac, iy, iz = charge_fractions(y, z, sigma_pix)
    k = np.array([-1, 0, 1])
    py = (iy[:, None, None] + k[None, :, None]) + 0 * k[None, None, :]
    pz = (iz[:, None, None] + 0 * k[None, :, None]) + k[None, None, :]
    charge = q[:, None, None] * frac
    pf = np.broadcast_to(frame[:, None, None], charge.shape)
    inside = (py >= 0) & (py < C.N_PIX) & (pz >= 0) & (pz < C.N_PIX)
    key = pixel_keys(pf[inside], py[inside], pz[inside])
    ukey, inv = np.unique(key, return_inverse=True)
    pix_charge = np.bincount(inv, weights=charge[inside])
    W = C.N_PIX + 2
    hz = ukey % W - 1
    hy = (ukey // W) % W - 1
    hf = ukey // (W * W)
    # Read noise expressed as charge (keV): the measured value of a pixel is the noisy
    # charge after transfer losses.
    noisy = pix_charge + rng.standard_normal(pix_charge.size) * calset.pattern.read_noise_ev / 1000.0
    measured = calset.cti.apply(np.maximum(noisy, 1e-6), hz) if apply_cti else noisy.copy()
    keep = measured >= onboard_threshold_kev
    pha = np.rint(calset.gainoff.to_pha(measured[keep], hy[keep]))
    pha = np.clip(pha, 0, C.PHA_MAX).astype(np.int64)
    hits = {
        "TIME": t0 + hf[keep] * C.FRAME_TIME_S,
        "FRAME": hf[keep],
        "RAWY": hy[keep],
        "RAWZ": hz[keep],
        "PHA": pha,
    }
    truth = {
        "ENERGY": e,
        "FRAME": frame,
        "Y": y,
        "Z": z,
        "HIT_CHARGE": pix_charge[keep],
        "HIT_NOISY_CHARGE": noisy[keep],
    }
    return hits, truth


#: EPIC-pn pattern of a set of pixel offsets from the brightest pixel, written out
#: shape by shape (independent of the bit-mask table of the pipeline).
_DOUBLES = {(0, 1): 1, (1, 0): 2, (0, -1): 3, (-1, 0): 4}
_QUADRANTS = [(1, 1), (1, -1), (-1, -1), (-1, 1)]


def epic_pattern(offsets: set[tuple[int, int]]) -> int:
    """Pattern code of a set of (dy, dz) offsets (the brightest pixel (0, 0) included)."""
    others = offsets - {(0, 0)}
    if not others:
        return 0
    if len(others) == 1:
        return _DOUBLES.get(next(iter(others)), 13)
    for k, (sy, sz) in enumerate(_QUADRANTS):
        if others == {(sy, 0), (0, sz)}:
            return 5 + k
        if others == {(sy, 0), (0, sz), (sy, sz)}:
            return 9 + k
    return 13
