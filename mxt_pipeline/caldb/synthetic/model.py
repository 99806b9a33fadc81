"""The physics of the synthetic MXT calibration set, from documented parameters.

Every number below is an assumption of the synthetic set, chosen from the public
instrument facts (docs/caldb.md, "Synthetic calibration set", lists them with their
sources); none is a measurement of the flight instrument.  The functions return the
CALDB models of :mod:`mxt_pipeline.caldb.products`; :mod:`.generate` writes them.
Results are rounded to 7 significant digits so that the written files do not depend on
the last bits of the floating-point library.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import numpy as np
from scipy import special

from mxt_pipeline import constants as C
from mxt_pipeline.caldb.products import (
    BadPixels,
    CTIModel,
    EffectiveArea,
    GainOffset,
    Multiplicity,
    PatternModel,
    PSFModel,
    ResponseMatrix,
    Systematics,
    Teldef,
    Vignetting,
)

__all__ = [
    "SEED", "EPOCHS", "LAUNCH", "teldef_parameters", "psf_model", "effarea_model", "vignet_model", "matrix_model",
    "cti_model", "gainoff_model", "multiplicity_model", "badpix_model", "pattern_model", "syserr_model",
    "rmf_sigma_kev", "reflection_probability", "synthetic_models", "epoch_index",
]  # fmt: skip

#: Seed of the per-column and per-pixel draws (gain, offset, bad pixels).
SEED = 20240622
#: SVOM launch date: validity start of the first version of every file.
LAUNCH = "2024-06-22"
#: Validity starts of the versions (UTC dates): launch, boresight update, first-year update.
EPOCHS = ("2024-06-22", "2024-10-01", "2025-06-01")

# ---- instrument parameters (assumptions, see docs/caldb.md) ------------------------------------
#: Spot FWHM on axis at 1.5 keV (arcmin) (Goetz+2022: about 11').
SPOT_FWHM_ARCMIN = 11.0
#: Logarithmic slope of the spot FWHM with energy, and its growth at 30' off axis.
SPOT_ENERGY_SLOPE = 0.04
SPOT_OFFAXIS_GROWTH = 0.05
#: Cauchy half-width of the arms along the arm, in units of the spot FWHM.
ARM_GAMMA_PER_FWHM = 0.9
#: Gaussian sigma of the halo of unreflected photons (arcmin).
HALO_SIGMA_ARCMIN = 30.0
#: Probability of a reflection by one wall set at low energy, and its energy cut-off (keV).
Q0 = 0.70
Q_CUTOFF_KEV = 6.0
#: Peak effective area (cm^2) (public figure about 27 cm^2 near 1 keV).
PEAK_AREA_CM2 = 27.0
#: Vignetting at 30' off axis and 1 keV, and the energy scale of its steepening (keV).
VIGNET_30 = 0.80
VIGNET_ENERGY_SCALE = 4.0
#: Fano factor, energy per electron-hole pair (keV), read noise (eV), split and primary thresholds.
FANO = 0.115
PAIR_KEV = 3.65e-3
READ_NOISE_EV = 8.0
SPLIT_KEV = 0.06
PRIMARY_KEV = 0.15
#: Target FWHM of the redistribution at 1.5 keV (keV): below the 80 eV requirement.
FWHM_15_KEV = 0.078
#: Mean pixels per event in the noise budget of the redistribution.
NOISE_PIXELS = 2.0
#: CTI per transfer at 1.5 keV for the versions, and its energy slope.
CTI_15 = (1.0e-5, 1.3e-5)
CTI_SLOPE = -0.5
#: Gain (eV/ADU) and offset (ADU) of the columns: mean and spread; drift of the second version.
GAIN_EV = 5.0
GAIN_SPREAD = 0.02
OFFSET_ADU = 100.0
OFFSET_SPREAD = 8.0
GAIN_DRIFT = -0.004
OFFSET_DRIFT = 1.5
#: Localisation systematic (arcsec, 90%): GCN circulars.
SYSERR_ARCSEC = 25.0
#: dC levels of the position errors near the detection threshold
#: (:mod:`mxt_pipeline.detect.levels`): ``L_p = W_p (1 + A_p exp(-(DET_ML - 10.5) / S_p))``,
#: calibrated on this set by ``python -m mxt_pipeline.acceptance.detection
#: --calibrate-levels 1000 --seed 7`` (on-axis sources of 50, 70, 100, 150, 300 and
#: 1000 counts over the bench background of 0.008 counts per pixel and band, 1000
#: detections each, 10 693 observations; the acceptance validation uses other seeds).
#: The fit (grid values): chi2 0.98 (90%) and 4.88 (68%) over the 6 fluxes; coverage of
#: the 90% level 0.899 / 0.903 / 0.903 / 0.901 / 0.902 / 0.908 (Wilks: 0.816 for 50
#: counts, 0.870 for 70, 0.896 for 100), worst deviations 0.008 (90%) and 0.017 (68%).
DC_LEVELS = {"ml_0": 10.5, "amp68": 0.9050, "scale68": 2.3429, "amp90": 0.9225, "scale90": 2.7351,
             "seed": 7, "cases": "50,70,100,150,300,1000", "background": 0.008}


def _q(x: Any, digits: int = 7) -> np.ndarray:
    """Round to ``digits`` significant digits (platform-independent file contents)."""
    a = np.asarray(x, dtype=float)
    out = np.zeros_like(a)
    nz = a != 0
    mag = np.floor(np.log10(np.abs(a[nz])))
    scale = 10.0 ** (digits - 1 - mag)
    out[nz] = np.round(a[nz] * scale) / scale
    return out


def epoch_index(when: Any = None) -> int:
    """Index in :data:`EPOCHS` of the version valid at ``when`` (None: the latest)."""
    if when is None or when == "now":
        return len(EPOCHS) - 1
    if isinstance(when, datetime):
        day = when.date().isoformat()
    elif isinstance(when, date):
        day = when.isoformat()
    else:
        day = str(when)[:10]
    idx = [i for i, e in enumerate(EPOCHS) if e <= day]
    if not idx:
        raise ValueError(f"no synthetic calibration before {EPOCHS[0]} (asked {day})")
    return idx[-1]


def _pixel_arcmin() -> float:
    return C.PIXEL_SCALE_ARCSEC / 60.0


# ---- TELDEF ------------------------------------------------------------------------------------


def teldef_parameters(version: int = -1) -> dict[str, Any]:
    """Keyword arguments of :class:`Teldef` of a version (0: launch; 1 and later: aligned).

    The optical axis falls 0.3 pixel from the chip centre, the chip is rotated by 0.12
    degrees; the in-flight alignment (second version) adds a boresight offset.
    """
    aligned = version != 0
    return {
        "focal_mm": C.FOCAL_LENGTH_MM,
        "pixel_mm": C.PIXEL_SIZE_MM,
        "n_pix": (C.N_PIX, C.N_PIX),
        "centre": (127.8, 127.2),
        "rotation_deg": 0.12,
        "flip_y": False,
        "flip_z": False,
        "offset_arcmin": (0.6, -0.4) if aligned else (0.0, 0.0),
    }


def other_teldef(instrument: str) -> Teldef:
    """TELDEF of the ECL and VT nodes (public design figures, stated assumptions).

    ECLAIRs: 80 x 80 CdTe pixels of 4.5 mm pitch, 460 mm below the coded mask; VT: a
    2048 x 2048 CCD of 13.5 micron pixels at 3600 mm focal length.
    """
    if instrument == "ECL":
        return Teldef(focal_mm=460.0, pixel_mm=4.5, n_pix=(80, 80), centre=(39.5, 39.5))
    if instrument == "VT":
        return Teldef(focal_mm=3600.0, pixel_mm=0.0135, n_pix=(2048, 2048), centre=(1023.5, 1023.5))
    raise ValueError(f"no TELDEF for {instrument}")


# ---- PSF ---------------------------------------------------------------------------------------

#: Energy and off-axis nodes of the PSF and vignetting tables.
PSF_ENERGIES = np.array([0.2, 0.5, 1.0, 1.5, 2.0, 3.0, 4.5, 6.0, 8.0, 10.0])
OFFAXIS_NODES = np.arange(0.0, 91.0, 5.0)


def reflection_probability(energy: Any) -> np.ndarray:
    """Probability that a photon is reflected by one wall set: ``Q0 / (1 + (E/Ec)^3)``."""
    return Q0 / (1.0 + (np.asarray(energy, dtype=float) / Q_CUTOFF_KEV) ** 3)


def spot_fwhm_arcmin(energy: Any, theta: Any) -> np.ndarray:
    """Spot FWHM (arcmin): 11' at 1.5 keV on axis, slowly growing with energy and angle."""
    e = np.asarray(energy, dtype=float)
    t = np.asarray(theta, dtype=float)
    return SPOT_FWHM_ARCMIN * (e / 1.5) ** SPOT_ENERGY_SLOPE * (1.0 + SPOT_OFFAXIS_GROWTH * (t / 30.0) ** 2)


def psf_model() -> PSFModel:
    """The lobster-eye PSF on the (energy, off-axis) grid.

    Fractions from the reflection probability ``q`` of each wall set: two reflections
    ``q^2`` (spot), one ``q (1 - q)`` per arm, none ``(1 - q)^2`` (halo), normalised to
    the photons reaching the focal plane.
    """
    ee, tt = np.meshgrid(PSF_ENERGIES, OFFAXIS_NODES, indexing="ij")
    fwhm_pix = spot_fwhm_arcmin(ee, tt) / _pixel_arcmin()
    sig = fwhm_pix / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    q = reflection_probability(ee)
    f_spot = _q(q * q)
    f_arm = _q(q * (1.0 - q))
    f_halo = 1.0 - f_spot - 2.0 * f_arm  # exact complement: the fractions sum to 1
    params = {
        "spot_sigma": _q(sig), "arm_gamma": _q(ARM_GAMMA_PER_FWHM * fwhm_pix), "arm_sigma": _q(sig),
        "halo_sigma": _q(np.full(ee.shape, HALO_SIGMA_ARCMIN / _pixel_arcmin())),
        "f_spot": f_spot, "f_arm_y": f_arm, "f_arm_z": f_arm, "f_halo": f_halo,
    }  # fmt: skip
    return PSFModel(PSF_ENERGIES, OFFAXIS_NODES, params)


# ---- EFFAREA, VIGNET ---------------------------------------------------------------------------

#: Energy bins of the ARF and RMF: 0.2-10 keV in 20 eV.
ENERGY_EDGES = np.round(np.arange(0.2, 10.0 + 1e-9, 0.02), 6)

#: Absorption edges of the optical-blocking filter (polyimide and aluminium) and of the
#: detector entrance window: (edge keV, optical depth just above the edge, jump ratio).
FILTER_EDGES = (
    (0.284, 1.20, 8.0),  # C K (polyimide)
    (0.410, 0.30, 8.0),  # N K (polyimide)
    (0.543, 0.35, 8.0),  # O K (polyimide)
    (1.560, 0.06, 10.0),  # Al K (aluminium filter)
    (1.839, 0.04, 10.0),  # Si K (entrance window)
)
#: Ir M edge of the coating: fractional reflectivity drop above 2.04 keV.
IR_M_EDGE = (2.04, 0.10)
#: Silicon depletion depth (micron) and absorption length at 10 keV (micron).
DEPLETION_UM = 450.0
SI_LENGTH_10KEV_UM = 134.0


def _edge_depth(energy: np.ndarray, edge: float, tau: float, jump: float) -> np.ndarray:
    """Optical depth ``tau (E/edge)^-2.7`` above the edge, ``jump`` times less below."""
    t = tau * (energy / edge) ** -2.7
    return np.where(energy >= edge, t, t / jump)


def area_curve(energy: Any) -> np.ndarray:
    """Unnormalised effective area: optics reflectivity x filter transmission x detector QE."""
    e = np.asarray(energy, dtype=float)
    refl = 1.0 / (1.0 + (e / 3.0) ** 2.5)
    edge, drop = IR_M_EDGE
    refl = refl * np.where(e >= edge, 1.0 - drop * np.exp(-(e - edge) / 1.5), 1.0)
    tau = sum(_edge_depth(e, *p) for p in FILTER_EDGES)
    length = SI_LENGTH_10KEV_UM * (e / 10.0) ** 2.75 * np.where(e >= 1.839, 1.0, 10.0)
    qe = 1.0 - np.exp(-DEPLETION_UM / length)
    return refl * np.exp(-tau) * qe


def effarea_model() -> EffectiveArea:
    """On-axis effective area: :func:`area_curve` scaled to a peak of 27 cm^2."""
    lo, hi = ENERGY_EDGES[:-1], ENERGY_EDGES[1:]
    a = area_curve(0.5 * (lo + hi))
    return EffectiveArea(lo, hi, _q(a * PEAK_AREA_CM2 / a.max()))


VIGNET_ENERGIES = np.array([0.2, 0.5, 1.0, 2.0, 3.0, 5.0, 7.0, 10.0])


def vignet_model() -> Vignetting:
    """``V = VIGNET_30 ^ ((theta/30')^2 g(E))``, ``g(1 keV) = 1`` and steeper at high energy
    (the critical angle falls with energy, so fewer pores reflect an off-axis source)."""
    ee, tt = np.meshgrid(VIGNET_ENERGIES, OFFAXIS_NODES, indexing="ij")
    g = np.sqrt(1.0 + (ee / VIGNET_ENERGY_SCALE) ** 2) / math.sqrt(1.0 + (1.0 / VIGNET_ENERGY_SCALE) ** 2)
    v = np.exp(math.log(VIGNET_30) * (tt / 30.0) ** 2 * g)
    return Vignetting(VIGNET_ENERGIES, OFFAXIS_NODES, _q(v))


# ---- MATRIX ------------------------------------------------------------------------------------


def _sigma_cal_kev() -> float:
    """Residual calibration broadening fixing the FWHM at 1.5 keV to :data:`FWHM_15_KEV`."""
    s_tot = FWHM_15_KEV / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    rest = s_tot**2 - FANO * PAIR_KEV * 1.5 - NOISE_PIXELS * (READ_NOISE_EV / 1000.0) ** 2
    return math.sqrt(rest)


def rmf_sigma_kev(energy: Any) -> np.ndarray:
    """Gaussian sigma (keV) of the redistribution: Fano + read noise + calibration residual."""
    e = np.asarray(energy, dtype=float)
    return np.sqrt(FANO * PAIR_KEV * e + NOISE_PIXELS * (READ_NOISE_EV / 1000.0) ** 2 + _sigma_cal_kev() ** 2)


def matrix_model() -> ResponseMatrix:
    """Gaussian redistribution into 10 eV PI channels, each row normalised to 1."""
    from mxt_pipeline.io.formats import RMF_WIDTH

    lo, hi = ENERGY_EDGES[:-1], ENERGY_EDGES[1:]
    centre = 0.5 * (lo + hi)
    sig = rmf_sigma_kev(centre)
    width = C.PI_CHANNEL_EV / 1000.0
    first = np.maximum(np.floor((centre - 5.0 * sig) / width), 0).astype(np.int64)
    last = np.minimum(np.ceil((centre + 5.0 * sig) / width), C.N_PI_CHANNELS - 1).astype(np.int64)
    n = np.minimum(last - first + 1, RMF_WIDTH)
    k = first[:, None] + np.arange(RMF_WIDTH)[None, :]
    lo_e = k * width
    prob = special.ndtr((lo_e + width - centre[:, None]) / sig[:, None]) - special.ndtr((lo_e - centre[:, None]) / sig[:, None])
    prob = np.where(np.arange(RMF_WIDTH)[None, :] < n[:, None], prob, 0.0)
    prob = prob / prob.sum(axis=1, keepdims=True)
    ch = np.arange(C.N_PI_CHANNELS)
    return ResponseMatrix(lo, hi, first, n, prob.astype(np.float32), _q(ch * width), _q((ch + 1) * width))


# ---- detector: CTI, GAINOFF, PATTERN, MULTIPLICITY, BADPIX ---------------------------------------

CTI_ENERGIES = np.geomspace(0.05, 20.0, 12)


def cti_model(version: int = -1) -> CTIModel:
    """CTI per transfer ``c (E / 1.5 keV)^-0.5``; ``c`` grows with the radiation dose."""
    c = CTI_15[version]
    return CTIModel(_q(CTI_ENERGIES), _q(c * (CTI_ENERGIES / 1.5) ** CTI_SLOPE))


def gainoff_model(version: int = -1) -> GainOffset:
    """Per-column gain and offset; the second version drifts (gain -0.4 %, offset +1.5 ADU)."""
    rng = np.random.default_rng(SEED)
    gain = GAIN_EV * (1.0 + GAIN_SPREAD * rng.standard_normal(C.N_PIX))
    offset = OFFSET_ADU + OFFSET_SPREAD * rng.standard_normal(C.N_PIX)
    if version % 2 == 1 or version == -1:
        gain = gain * (1.0 + GAIN_DRIFT) * (1.0 + 0.001 * rng.standard_normal(C.N_PIX))
        offset = offset + OFFSET_DRIFT + 0.5 * rng.standard_normal(C.N_PIX)
    return GainOffset(_q(gain), _q(offset))


def pattern_model() -> PatternModel:
    """Thresholds, read noise and charge cloud ``sigma = 7 + 1 um/keV * E`` (pnCCD-like)."""
    e = np.array([0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0])
    return PatternModel(PRIMARY_KEV, SPLIT_KEV, READ_NOISE_EV, e, 7.0 + 1.0 * e)


MULT_ENERGIES = np.geomspace(0.2, 10.0, 16)


def _axis_shares(u: np.ndarray, s: float) -> np.ndarray:
    """Shares of a Gaussian cloud at ``u`` in [0, 1) in pixels -1, 0, +1 (tails outside)."""
    left = special.ndtr(-u / s)
    right = 1.0 - special.ndtr((1.0 - u) / s)
    return np.stack([left, 1.0 - left - right, right], axis=-1)


def multiplicity_model(pattern: PatternModel | None = None, n_pos: int = 48) -> Multiplicity:
    """``k_m(E) = E / <E_sum | m>`` of a Gaussian charge cloud on the pixel grid.

    Impact points uniform over a pixel (``n_pos`` x ``n_pos`` midpoints); the cloud of
    the PATTERN width is integrated over the 3 x 3 pixels; hits below the split
    threshold are lost; events whose brightest hit is below the primary threshold or of
    multiplicity above 4 are left out.  A multiplicity never produced at an energy takes
    the factor of the nearest energy that produces it (1 if none).
    """
    pattern = pattern or pattern_model()
    u = (np.arange(n_pos) + 0.5) / n_pos
    factors = np.full((4, MULT_ENERGIES.size), np.nan)
    for j, energy in enumerate(MULT_ENERGIES):
        s = float(pattern.cloud_sigma_um(energy)) / (C.PIXEL_SIZE_MM * 1000.0)
        a = _axis_shares(u, s)  # (n, 3)
        hits = energy * a[:, None, :, None] * a[None, :, None, :]  # (n, n, 3, 3)
        hits = hits.reshape(n_pos * n_pos, 9)
        above = hits >= pattern.split_threshold
        mult = above.sum(axis=1)
        ok = hits.max(axis=1) >= pattern.primary_threshold
        e_sum = np.where(above, hits, 0.0).sum(axis=1)
        for m in range(1, 5):
            sel = ok & (mult == m)
            if sel.any():
                factors[m - 1, j] = energy / e_sum[sel].mean()
    for m in range(4):
        row = factors[m]
        good = np.flatnonzero(np.isfinite(row))
        if good.size == 0:
            factors[m] = 1.0
            continue
        nearest = good[np.abs(np.arange(row.size)[:, None] - good[None, :]).argmin(axis=1)]
        factors[m] = row[nearest]
    return Multiplicity(_q(MULT_ENERGIES), _q(factors))


def badpix_model(version: int = -1) -> BadPixels:
    """Dead pixels, a dead column segment, hot and flickering pixels; later versions add
    hot pixels (radiation damage)."""
    rng = np.random.default_rng(SEED + 1)
    pix = rng.choice(C.N_PIX * C.N_PIX, size=17, replace=False)
    yz = np.column_stack([pix // C.N_PIX, pix % C.N_PIX])
    types = np.array([1] * 6 + [2] * 4 + [3] * 2 + [2] * 5)
    n = 12 if version == 0 else 17
    column = np.column_stack([np.full(10, 201), np.arange(10)])  # dead segment next to the readout
    return BadPixels(np.r_[yz[:n], column], np.r_[types[:n], np.ones(10, dtype=int)])


def syserr_model() -> Systematics:
    """25" at 90% (GCN circulars 41243, 44468), with the calibrated dC levels (DCLEVELS)."""
    from mxt_pipeline.detect.levels import LevelCalibration

    cal = LevelCalibration(**DC_LEVELS)
    table = {name: _q(column) for name, column in cal.table().items()}
    return Systematics(SYSERR_ARCSEC, 0.9, table, cal.keywords())


# ---- in memory ---------------------------------------------------------------------------------


def synthetic_models(when: Any = None) -> dict[str, Any]:
    """The models of the synthetic set valid at ``when`` (None: the latest), by attribute name."""
    i = epoch_index(when)
    late = EPOCHS[i] >= "2025-06-01"
    pattern = pattern_model()
    return {
        "teldef": Teldef(**teldef_parameters(0 if i == 0 else 1)),
        "psf": psf_model(),
        "effarea": effarea_model(),
        "vignet": vignet_model(),
        "matrix": matrix_model(),
        "cti": cti_model(1 if late else 0),
        "gainoff": gainoff_model(1 if late else 0),
        "multiplicity": multiplicity_model(pattern),
        "badpix": badpix_model(1 if late else 0),
        "pattern": pattern,
        "syserr": syserr_model(),
    }
