"""Small stand-ins for CALDB models, built from the documented CALDB contract.

Only what the calibration tests need while the bundled CALDB is incomplete; they follow
the method names and units of ``Teldef`` in the CALDB contract so that the code under
test cannot tell them apart from the real classes.
"""

from __future__ import annotations

import numpy as np

from mxt_pipeline import constants as C


class StandInTeldef:
    """A flat-detector telescope definition.

    RAW -> DET: ``DET = R(rotation) . diag(flip_y, flip_z) . (RAW - centre)``;
    DET -> angles: ``angle = atan(DET * pixel / focal) + offset`` (a flat focal plane
    at ``focal`` from the optics, so DET is exactly the gnomonic projection when the
    offsets are zero), angles in arcmin.
    """

    def __init__(
        self,
        centre=(127.5, 127.5),
        rotation_deg: float = 0.0,
        flip_y: bool = False,
        flip_z: bool = False,
        offset_arcmin=(0.0, 0.0),
        focal_mm: float = C.FOCAL_LENGTH_MM,
        pixel_mm: float = C.PIXEL_SIZE_MM,
    ):
        self.centre = np.asarray(centre, dtype=float)
        th = np.radians(rotation_deg)
        flip = np.diag([-1.0 if flip_y else 1.0, -1.0 if flip_z else 1.0])
        self.matrix = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]]) @ flip
        self.inverse = np.linalg.inv(self.matrix)
        self.offset = np.asarray(offset_arcmin, dtype=float)
        self.focal_mm = focal_mm
        self.pixel_mm = pixel_mm

    def raw_to_det(self, rawy, rawz):
        dy = np.asarray(rawy, dtype=float) - self.centre[0]
        dz = np.asarray(rawz, dtype=float) - self.centre[1]
        m = self.matrix
        return m[0, 0] * dy + m[0, 1] * dz, m[1, 0] * dy + m[1, 1] * dz

    def det_to_raw(self, dety, detz):
        m = self.inverse
        dety = np.asarray(dety, dtype=float)
        detz = np.asarray(detz, dtype=float)
        return m[0, 0] * dety + m[0, 1] * detz + self.centre[0], m[1, 0] * dety + m[1, 1] * detz + self.centre[1]

    def det_to_angles(self, dety, detz):
        k = self.pixel_mm / self.focal_mm
        to_arcmin = 180.0 * 60.0 / np.pi
        return (
            np.arctan(np.asarray(dety, dtype=float) * k) * to_arcmin + self.offset[0],
            np.arctan(np.asarray(detz, dtype=float) * k) * to_arcmin + self.offset[1],
        )

    def angles_to_det(self, angle_y, angle_z):
        k = self.pixel_mm / self.focal_mm
        to_rad = np.pi / (180.0 * 60.0)
        return (
            np.tan((np.asarray(angle_y, dtype=float) - self.offset[0]) * to_rad) / k,
            np.tan((np.asarray(angle_z, dtype=float) - self.offset[1]) * to_rad) / k,
        )


# ---- detector calibration stand-ins (CALDB contract: CTI, GAINOFF, PATTERN, BADPIX) ----


class StandInCTI:
    """CTI per transfer falling with energy as a power law: ``cti(E) = c1 * E ** -beta``.

    pnCCD-like magnitude: about 4 % loss of a 1.5 keV charge after 256 transfers.
    """

    def __init__(self, c1: float = 2.0e-4, beta: float = 0.5):
        self.c1 = c1
        self.beta = beta

    def cti(self, energy):
        e = np.maximum(np.asarray(energy, dtype=float), 1e-3)
        return self.c1 * e ** (-self.beta)

    def apply(self, energy, rawz):
        e = np.asarray(energy, dtype=float)
        return e * (1.0 - self.cti(e)) ** (np.asarray(rawz, dtype=float) + 1.0)

    def correct(self, energy_measured, rawz):
        """Exact inverse by Newton iterations on f(E) = apply(E) - E_measured."""
        em = np.asarray(energy_measured, dtype=float)
        n = np.asarray(rawz, dtype=float) + 1.0
        e = em.copy()
        for _ in range(30):
            c = self.cti(e)
            g = (1.0 - c) ** n
            # d/dE [E (1 - c1 E^-b)^n] = g + E n (1-c)^(n-1) * c1 b E^(-b-1)
            dg = g + n * (1.0 - c) ** (n - 1.0) * self.beta * c
            step = (e * g - em) / dg
            e = e - step
            if np.all(np.abs(step) < 1e-13):
                break
        return e


class StandInGainOffset:
    """Per-column gain (eV/ADU) and offset (ADU) drawn once from a fixed seed."""

    def __init__(self, seed: int = 11):
        rng = np.random.default_rng(seed)
        self.gain = 5.0 * (1.0 + 0.03 * rng.standard_normal(C.N_PIX))
        self.offset = 100.0 + 10.0 * rng.standard_normal(C.N_PIX)

    def to_energy(self, pha, rawy):
        y = np.asarray(rawy, dtype=np.intp)
        return (np.asarray(pha, dtype=float) - self.offset[y]) * self.gain[y] / 1000.0

    def to_pha(self, energy, rawy):
        y = np.asarray(rawy, dtype=np.intp)
        return self.offset[y] + np.asarray(energy, dtype=float) * 1000.0 / self.gain[y]


class StandInPattern:
    """Thresholds, Gaussian charge cloud and noise of the event-pattern model."""

    def __init__(self, primary_threshold=0.15, split_threshold=0.06, read_noise_ev=8.0):
        self.primary_threshold = primary_threshold
        self.split_threshold = split_threshold
        self.read_noise_ev = read_noise_ev

    def cloud_sigma_um(self, energy):
        return 7.0 + 1.0 * np.asarray(energy, dtype=float)


class StandInBadPixels:
    def __init__(self, pixels=()):
        self.pixels = np.asarray(pixels, dtype=int).reshape(-1, 2)

    def mask(self):
        m = np.zeros((C.N_PIX, C.N_PIX), dtype=bool)
        if self.pixels.size:
            m[self.pixels[:, 0], self.pixels[:, 1]] = True
        return m


class StandInMultiplicity:
    """Correction factors k_m(E) tabulated on an energy grid (interpolated in log E)."""

    def __init__(self, energies, factors):
        self.energies = np.asarray(energies, dtype=float)
        self.factors = np.asarray(factors, dtype=float)  # (4, n_energies)

    def factor(self, energy, multiplicity):
        e = np.log(np.clip(np.asarray(energy, dtype=float), self.energies[0], self.energies[-1]))
        m = np.clip(np.asarray(multiplicity, dtype=int), 1, 4)
        le = np.log(self.energies)
        out = np.empty(np.broadcast(e, m).shape)
        e, m = np.broadcast_arrays(e, m)
        for k in range(4):
            sel = m == k + 1
            out[sel] = np.interp(e[sel], le, self.factors[k])
        return out

    def correct(self, e_sum, mult):
        return np.asarray(e_sum, dtype=float) * self.factor(e_sum, mult)


class StandInCalibrationSet:
    """The models of one calibration set, by CALDB code name."""

    def __init__(self, teldef=None, cti=None, gainoff=None, multiplicity=None, pattern=None, badpix=None):
        self.teldef = teldef or StandInTeldef()
        self.cti = cti or StandInCTI()
        self.gainoff = gainoff or StandInGainOffset()
        self.pattern = pattern or StandInPattern()
        self.badpix = badpix or StandInBadPixels()
        self.multiplicity = multiplicity
