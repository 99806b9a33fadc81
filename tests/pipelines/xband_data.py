"""A small X-band dataset and a simple calibration set, to run the real X-band bricks.

Until the bundled synthetic CALDB and the simulation bench exist, the X-band bricks are
exercised on this dataset: one point source (a Gaussian spot of sigma 3 pixels, about 40": the MXT
spot is broad, so a source never looks like a hot pixel) and a flat background seen as
single-pixel hits (one event per frame, so patterns are trivially singles), split into ground-station
passes, with attitude, angle and weekly SAA files written through the I/O layer.  The
calibration set follows the CALDB contract's method names with simple physics: a flat
focal plane (gnomonic DET <-> angle), uniform gain and offset, a constant CTI with its
exact inverse, no multiplicity loss (single-pixel events), no bad pixel.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from astropy.table import Table

from mxt_pipeline import constants as C
from mxt_pipeline.datamodel import GTI, AngleTable, Attitude, RawHits, SAAIntervals, week_of
from mxt_pipeline.io.products import write_angles, write_attitude, write_raw_hits, write_saa

OBS_ID = "01020304"
RA_NOM, DEC_NOM = 150.0, 30.0
T0 = 3.0e8  # mission time of the start (2026-07-05)
LINE_KEV = 1.5


class FlatTeldef:
    """RAW -> DET: shift to the optical axis at (127.5, 127.5); DET <-> angles: gnomonic."""

    centre = 127.5

    def raw_to_det(self, rawy, rawz):
        return np.asarray(rawy, float) - self.centre, np.asarray(rawz, float) - self.centre

    def det_to_raw(self, dety, detz):
        return np.asarray(dety, float) + self.centre, np.asarray(detz, float) + self.centre

    def det_to_angles(self, dety, detz):
        k = C.PIXEL_SIZE_MM / C.FOCAL_LENGTH_MM
        return (np.degrees(np.arctan(np.asarray(dety, float) * k)) * 60.0,
                np.degrees(np.arctan(np.asarray(detz, float) * k)) * 60.0)  # fmt: skip

    def angles_to_det(self, ay, az):
        k = C.PIXEL_SIZE_MM / C.FOCAL_LENGTH_MM
        return (np.tan(np.radians(np.asarray(ay, float) / 60.0)) / k,
                np.tan(np.radians(np.asarray(az, float) / 60.0)) / k)  # fmt: skip


class ConstantCTI:
    """Loss per transfer ``c`` independent of energy: ``E_m = E (1 - c)^(RAWZ + 1)``."""

    def __init__(self, c: float = 1e-5):
        self.c = c

    def cti(self, energy):
        return np.full(np.shape(energy), self.c)

    def apply(self, energy, rawz):
        return np.asarray(energy, float) * (1.0 - self.c) ** (np.asarray(rawz, float) + 1.0)

    def correct(self, energy_measured, rawz):
        return np.asarray(energy_measured, float) / (1.0 - self.c) ** (np.asarray(rawz, float) + 1.0)


class UniformGainOffset:
    gain = np.full(C.N_PIX, 5.0)  # eV/ADU
    offset = np.full(C.N_PIX, 100.0)  # ADU

    def to_energy(self, pha, rawy):
        y = np.asarray(rawy, dtype=np.intp)
        return (np.asarray(pha, float) - self.offset[y]) * self.gain[y] / 1000.0

    def to_pha(self, energy, rawy):
        y = np.asarray(rawy, dtype=np.intp)
        return self.offset[y] + np.asarray(energy, float) * 1000.0 / self.gain[y]


class NoMultiplicityLoss:
    def factor(self, energy, multiplicity):
        return np.ones(np.broadcast(np.asarray(energy), np.asarray(multiplicity)).shape)

    def correct(self, e_sum, mult):
        return np.asarray(e_sum, float)


class Thresholds:
    primary_threshold = 0.15
    split_threshold = 0.06
    read_noise_ev = 8.0

    def cloud_sigma_um(self, energy):
        return 7.0 + np.asarray(energy, float)


class NoBadPixels:
    def mask(self):
        return np.zeros((C.N_PIX, C.N_PIX), bool)


class SimpleCalibrationSet:
    """The models of the calibration chain, by lower-case CALDB code name."""

    def __init__(self):
        self.teldef = FlatTeldef()
        self.cti = ConstantCTI()
        self.gainoff = UniformGainOffset()
        self.multiplicity = NoMultiplicityLoss()
        self.pattern = Thresholds()
        self.badpix = NoBadPixels()


def make_dataset(
    root: Path,
    *,
    duration: float = 1000.0,
    n_passes: int = 2,
    n_source: int = 1500,
    n_background: int = 500,
    source_offset_arcmin: tuple[float, float] = (3.0, -2.0),
    seed: int = 5,
    decay_index: float | None = None,
    psf_sigma_pix: float = 3.0,
) -> dict:
    """Write a dataset folder and return its truth (source RA/Dec, counts).

    With ``decay_index`` the source fades as ``(t - T0 + 100 s) ** -decay_index`` (an
    afterglow observed from 100 s after the trigger); several events may then share a
    frame (neighbouring hits of one frame form multi-pixel patterns, and a second hit on
    a pixel is dropped by ingestion: that is fine for timing runs).
    """
    rng = np.random.default_rng(seed)
    cal = SimpleCalibrationSet()
    root = Path(root)
    for sub in ("l1", "aux", "saa"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    t_att = T0 + np.arange(0.0, duration + 10.0, 10.0)
    att = Attitude.from_pointing(t_att, np.full(t_att.size, RA_NOM), np.full(t_att.size, DEC_NOM),
                                 np.zeros(t_att.size), meta={"OBS_ID": OBS_ID})  # fmt: skip
    write_attitude(root / "aux" / f"mxt_att_{OBS_ID}.fits", att)
    ang = AngleTable(Table({"TIME": t_att, "EARTH_ELV": np.full(t_att.size, 60.0), "SUN_ANGLE": np.full(t_att.size, 90.0),
                            "MOON_ANGLE": np.full(t_att.size, 90.0)}), meta={"OBS_ID": OBS_ID})  # fmt: skip
    write_angles(root / "aux" / f"mxt_ang_{OBS_ID}.fits", ang)
    saa_files = []
    for w in range(int(week_of(T0)), int(week_of(T0 + duration)) + 1):
        p = root / "saa" / f"mxt_saa_w{w}.fits"
        write_saa(p, SAAIntervals(Table({"START": np.zeros(0), "STOP": np.zeros(0)})), w)
        saa_files.append(f"saa/{p.name}")

    # Source position from its DET offset (flat teldef, fixed pointing).
    ay, az = source_offset_arcmin
    from mxt_pipeline.geometry import det_to_radec

    sdy, sdz = cal.teldef.angles_to_det(np.array([ay]), np.array([az]))
    src_ra, src_dec = det_to_radec(sdy, sdz, np.array([T0]), att, cal.teldef)
    n_frames = int(duration / C.FRAME_TIME_S)
    n = n_source + n_background
    if decay_index is None:
        frames = np.sort(rng.choice(n_frames, size=n, replace=False))
        is_src = rng.permutation(np.r_[np.ones(n_source, bool), np.zeros(n_background, bool)])
    else:
        # Inverse CDF of a power law in (t + t0) on [0, duration), t0 = 100 s.
        t0, a = 100.0, 1.0 - decay_index
        u = rng.uniform(size=n_source)
        ts = (t0**a + u * ((duration + t0) ** a - t0**a)) ** (1.0 / a) - t0
        f_src = np.minimum((ts / C.FRAME_TIME_S).astype(int), n_frames - 1)
        f_bkg = rng.integers(0, n_frames, n_background)
        order = np.argsort(np.r_[f_src, f_bkg], kind="stable")
        frames = np.r_[f_src, f_bkg][order]
        is_src = np.r_[np.ones(n_source, bool), np.zeros(n_background, bool)][order]
    rawy = np.where(is_src, np.rint(sdy[0] + 127.5 + rng.normal(0, psf_sigma_pix, n)), rng.integers(0, C.N_PIX, n))
    rawz = np.where(is_src, np.rint(sdz[0] + 127.5 + rng.normal(0, psf_sigma_pix, n)), rng.integers(0, C.N_PIX, n))
    rawy, rawz = np.clip(rawy, 0, 255).astype(int), np.clip(rawz, 0, 255).astype(int)
    e_meas = cal.cti.apply(np.full(n, LINE_KEV), rawz)
    pha = np.rint(cal.gainoff.to_pha(e_meas, rawy)).astype(int)
    time = T0 + frames * C.FRAME_TIME_S
    edges = T0 + np.linspace(0.0, duration, n_passes + 1)
    l1 = []
    order = rng.permutation(n_passes)  # pass numbers need not follow time order
    for k in range(n_passes):
        sel = (time >= edges[k]) & (time < edges[k + 1])
        tab = Table({"TIME": time[sel], "FRAME": frames[sel].astype(np.int32), "RAWY": rawy[sel].astype(np.int16),
                     "RAWZ": rawz[sel].astype(np.int16), "PHA": pha[sel].astype(np.int16)})  # fmt: skip
        pid = int(order[k]) + 1
        hits = RawHits(tab, gti=GTI([edges[k]], [edges[k + 1]]),
                       meta={"OBS_ID": OBS_ID, "PASS_ID": pid, "STATION": "KRN", "OBJECT": "TEST"})  # fmt: skip
        name = f"l1/mxt_l1_raw_{OBS_ID}_p{pid:02d}.fits"
        write_raw_hits(root / name, hits)
        l1.append(name)
    manifest = {
        "obs_id": OBS_ID, "object": "TEST", "ra_nom": RA_NOM, "dec_nom": DEC_NOM, "roll_nom": 0.0,
        "tstart": T0, "tstop": T0 + duration, "trigger_time": None,
        "files": {"l1": sorted(l1), "att": f"aux/mxt_att_{OBS_ID}.fits", "ang": f"aux/mxt_ang_{OBS_ID}.fits",
                  "saa": saa_files},
    }  # fmt: skip
    (root / "dataset.json").write_text(json.dumps(manifest, indent=2))
    truth = {"ra": float(src_ra[0]), "dec": float(src_dec[0]), "n_source": n_source, "n_background": n_background,
             "n_events": n}  # fmt: skip
    (root / "truth.json").write_text(json.dumps(truth))
    return truth


def sky_offset_arcsec(ra1, dec1, ra2, dec2) -> float:
    d1, d2 = math.radians(dec1), math.radians(dec2)
    c = math.sin(d1) * math.sin(d2) + math.cos(d1) * math.cos(d2) * math.cos(math.radians(ra1 - ra2))
    return math.degrees(math.acos(min(1.0, c))) * 3600.0


class GaussianPSF:
    """A circular Gaussian PSF of ``sigma`` pixels, as one separable term (detection API).

    The dataset's source photons are drawn from the same Gaussian, so the detection's
    model is exact for them.
    """

    def __init__(self, sigma: float = 3.0):
        self.sigma = float(sigma)

    def fwhm(self, theta: float = 0.0) -> float:
        return 2.0 * math.sqrt(2.0 * math.log(2.0)) * self.sigma

    def density(self, dy, dz, energy=None, theta=None):
        """Surface density per pixel^2 (the CALDB PSF contract's ``density``)."""
        r2 = np.asarray(dy, float) ** 2 + np.asarray(dz, float) ** 2
        return np.exp(-0.5 * r2 / self.sigma**2) / (2.0 * math.pi * self.sigma**2)

    def _frac(self, edges, c0, derivatives):
        from scipy import special

        x = (np.asarray(edges, float)[None, :] - np.atleast_1d(np.asarray(c0, float))[:, None]) / self.sigma
        f = np.diff(special.ndtr(x), axis=-1)[:, None, :]
        if not derivatives:
            return f, None
        pdf = np.exp(-0.5 * x * x) / (self.sigma * math.sqrt(2.0 * math.pi))
        return f, -np.diff(pdf, axis=-1)[:, None, :]

    def terms(self, y_edges, z_edges, y, z, theta=None, derivatives=False):
        from mxt_pipeline.detect.likelihood import SeparableTerms

        fy, dfy = self._frac(y_edges, y, derivatives)
        fz, dfz = self._frac(z_edges, z, derivatives)
        return SeparableTerms(np.ones((fy.shape[0], 1)), fy, fz, dfy, dfz)


class FlatEffectiveArea:
    def __call__(self, energy):
        return np.full(np.shape(energy), 30.0)


class NoVignetting:
    def __call__(self, energy, theta):
        return np.ones(np.broadcast(np.asarray(energy), np.asarray(theta)).shape)


class Systematics:
    localization_arcsec = 25.0


class SimpleFullCalibrationSet(SimpleCalibrationSet):
    """Adds the detection's models (PSF, EFFAREA, VIGNET, SYSERR) to the chain's."""

    def __init__(self, psf_sigma_pix: float = 3.0):
        super().__init__()
        self.psf = GaussianPSF(psf_sigma_pix)
        self.effarea = FlatEffectiveArea()
        self.vignet = NoVignetting()
        self.syserr = Systematics()
