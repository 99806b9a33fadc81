"""Synthetic L2 event lists for the light-curve tests (independent of the simulator).

A fixed pointing whose sky pixels are the RAW pixels shifted by (128, 128), a source
scattered by a circular Gaussian spot, a flat background over the chip, event times on
0.1 s frames, and good time broken by gaps of known origin.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from astropy.table import Table

from mxt_pipeline import constants as C
from mxt_pipeline.datamodel import GTI, EventList, GapList
from mxt_pipeline.lightcurve.extract import gaussian_spot_eef, source_region

#: Sky pixel = RAW pixel + SKY_OFFSET (both axes).
SKY_OFFSET = 128.0

#: FWHM (pixels) of the Gaussian spot of these test sources; the extraction of the
#: tests is told the same PSF (``PSF_EEF``) and, for a compact Gaussian spot, a circle
#: holding 80 % of it (``REGION``).
SPOT_FWHM_PIX = 18.6
PSF_EEF = gaussian_spot_eef(SPOT_FWHM_PIX)
REGION = source_region(PSF_EEF, fraction=0.8)


def orbit_gaps(t_end: float, *, period: float = 5700.0, earth: float = 1500.0, saa_every: int = 3,
               saa: float = 600.0, telemetry: tuple[float, float] | None = (2000.0, 2400.0)) -> GapList:
    """Earth occultations once per orbit, an SAA passage every few orbits, one telemetry gap."""
    starts, stops, origins = [], [], []
    k = 0
    t = period - earth
    while t < t_end:
        starts.append(t)
        stops.append(min(t + earth, t_end))
        origins.append("EARTH")
        if k % saa_every == 0 and t + earth + saa < t_end:
            starts.append(t + earth + 200.0)
            stops.append(t + earth + 200.0 + saa)
            origins.append("SAA")
        t += period
        k += 1
    if telemetry is not None:
        starts.append(telemetry[0])
        stops.append(telemetry[1])
        origins.append("TELEMETRY")
    return GapList(starts, stops, origins)


def gti_from_gaps(t_start: float, t_end: float, gaps: GapList) -> GTI:
    """Good time: the span minus every gap."""
    return GTI([t_start], [t_end]).subtract(gaps.as_bad_time())


def draw_times(rate: Callable[[np.ndarray], np.ndarray], rate_max: float, gti: GTI,
               rng: np.random.Generator) -> np.ndarray:
    """Inhomogeneous Poisson arrival times inside the GTIs (thinning), on 0.1 s frames."""
    out = []
    for a, b in zip(gti.start, gti.stop):
        n = rng.poisson(rate_max * (b - a))
        t = rng.uniform(a, b, n)
        t = t[rng.uniform(0, rate_max, n) < rate(t)]
        out.append(t)
    t = np.sort(np.concatenate(out)) if out else np.empty(0)
    # Frame times: the start of the 0.1 s frame that holds the photon, kept inside the GTI.
    framed = np.floor(t / C.FRAME_TIME_S) * C.FRAME_TIME_S
    return np.where(gti.contains(framed), framed, t)


def make_event_list(
    gti: GTI,
    gaps: GapList,
    rng: np.random.Generator,
    *,
    sources: list[tuple[float, float, Callable[[np.ndarray], np.ndarray], float]],
    bkg_rate: float = 0.05,
    psf_sigma: float = SPOT_FWHM_PIX / 2.3548,
) -> EventList:
    """An L2 event list: each source ``(rawy, rawz, rate(t), rate_max)`` plus flat background.

    ``bkg_rate`` is counts/s over the whole chip.
    """
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("TIME", "RAWY", "RAWZ")}
    for y0, z0, rate, rmax in sources:
        t = draw_times(rate, rmax, gti, rng)
        cols["TIME"].append(t)
        cols["RAWY"].append(y0 + rng.normal(0, psf_sigma, t.size))
        cols["RAWZ"].append(z0 + rng.normal(0, psf_sigma, t.size))
    tb = draw_times(lambda t: np.full_like(t, bkg_rate), bkg_rate, gti, rng)
    cols["TIME"].append(tb)
    cols["RAWY"].append(rng.uniform(-0.5, C.N_PIX - 0.5, tb.size))
    cols["RAWZ"].append(rng.uniform(-0.5, C.N_PIX - 0.5, tb.size))
    time = np.concatenate(cols["TIME"])
    rawy_c = np.concatenate(cols["RAWY"])
    rawz_c = np.concatenate(cols["RAWZ"])
    on = (rawy_c >= -0.5) & (rawy_c < C.N_PIX - 0.5) & (rawz_c >= -0.5) & (rawz_c < C.N_PIX - 0.5)
    time, rawy_c, rawz_c = time[on], rawy_c[on], rawz_c[on]
    order = np.argsort(time, kind="stable")
    time, rawy_c, rawz_c = time[order], rawy_c[order], rawz_c[order]
    n = time.size
    energy = rng.uniform(0.3, 9.0, n).astype(np.float32)
    table = Table(
        {
            "TIME": time,
            "FRAME": np.floor(time / C.FRAME_TIME_S).astype(np.int32),
            "RAWY": np.rint(rawy_c).astype(np.int16),
            "RAWZ": np.rint(rawz_c).astype(np.int16),
            "DETY": (rawy_c - 127.5).astype(np.float32),
            "DETZ": (rawz_c - 127.5).astype(np.float32),
            "X": (rawy_c + SKY_OFFSET).astype(np.float32),
            "Y": (rawz_c + SKY_OFFSET).astype(np.float32),
            "RA": 150.0 + (rawy_c - 127.5) * 13.57 / 3600.0,
            "DEC": 20.0 + (rawz_c - 127.5) * 13.57 / 3600.0,
            "PHA": (energy * 100).astype(np.int32),
            "PI": np.clip(energy * 100, 0, 1023).astype(np.int16),
            "ENERGY": energy,
            "PATTERN": np.zeros(n, np.int16),
            "MULTIPLICITY": np.ones(n, np.int16),
            "STATUS": np.zeros(n, np.int32),
        }
    )
    meta = {"OBS_ID": "LCTEST01", "RA_NOM": 150.0, "DEC_NOM": 20.0, "FRAMETIM": C.FRAME_TIME_S, "OBJECT": "TEST"}
    return EventList(table, gti=gti, gaps=gaps, meta=meta)


def source_list(positions: list[tuple[float, float]]) -> Table:
    """A minimal source list (SRC_ID, RA, DEC, X, Y, ERR_R90) for RAW positions."""
    y = np.array([p[0] for p in positions], float)
    z = np.array([p[1] for p in positions], float)
    return Table(
        {
            "SRC_ID": np.arange(1, y.size + 1, dtype=np.int32),
            "RA": 150.0 + (y - 127.5) * 13.57 / 3600.0,
            "DEC": 20.0 + (z - 127.5) * 13.57 / 3600.0,
            "X": y + SKY_OFFSET,
            "Y": z + SKY_OFFSET,
            "ERR_R90": np.full(y.size, 30.0),
        }
    )


def write_source_list(path, positions: list[tuple[float, float]], *, obs_id: str = "LCTEST01"):
    """Write a one-band MXT-SOP-SKY file for RAW positions (what ``mxt lightcurve`` reads).

    Detection columns the light curves do not use hold neutral values.
    """
    from mxt_pipeline.detect.bands import EnergyBand
    from mxt_pipeline.detect.srclist import SRCLIST_COLUMNS
    from mxt_pipeline.io.formats import get_spec
    from mxt_pipeline.io.srclist_product import write_srclist

    base = source_list(positions)
    n = len(base)
    cols = {}
    for spec in get_spec("MXT_SOP_SKY").hdu("SRCLIST").columns:
        cols[spec.name] = np.asarray(base[spec.name]) if spec.name in base.colnames else np.ones(n, dtype=spec.dtype)
    for name in ("COUNTS", "COUNTS_ERR", "RATE_BAND", "RATE_BAND_ERR"):
        cols[name] = np.ones((n, 1), dtype=np.float32)
    table = Table({k: cols[k] for k in (*SRCLIST_COLUMNS, "RATE_BAND", "RATE_BAND_ERR")})
    return write_srclist(path, table, [EnergyBand(0.2, 10.0)], obs_id=obs_id, syserr_arcsec=25.0, ml_threshold=10.0,
                         tstart=0.0, tstop=20000.0)
