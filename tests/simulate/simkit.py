"""Small building blocks of the statistical tests: a quiet observation context, chi-square."""

from __future__ import annotations

import numpy as np
from scipy import stats

from mxt_pipeline.datamodel import GTI
from mxt_pipeline.geometry import radec_to_det
from mxt_pipeline.simulate.cases import _offset_position
from mxt_pipeline.simulate.detector import DetectorModel
from mxt_pipeline.simulate.ephemeris import Orbit
from mxt_pipeline.simulate.operations import Pointing, make_attitude
from mxt_pipeline.simulate.optics import Optics, on_chip
from mxt_pipeline.simulate.sources import ObservationContext

T0 = 3.0e8
#: Boresight at the pole of the test orbit (node 0, inclination 30 deg): never occulted.
POLE_RA, POLE_DEC = 270.0, 60.0


def quiet_context(calset, duration: float = 2000.0, *, jitter: float = 0.0, roll: float = 0.0) -> ObservationContext:
    """An observation that loses no time: no SAA, target at the orbit pole."""
    pointing = Pointing(ra=POLE_RA, dec=POLE_DEC, roll=roll, jitter_arcsec=jitter)
    att = make_attitude(pointing, T0, T0 + duration, np.random.default_rng(0))
    optics = Optics(calset.psf, calset.effarea, calset.vignet, calset.teldef)
    det = DetectorModel.from_calibration(calset)
    return ObservationContext(T0, T0 + duration, optics, det, att, Orbit(raan_deg=0.0, epoch=T0),
                              GTI([T0], [T0 + duration]))  # fmt: skip


def sky_at(dy_arcmin: float, dz_arcmin: float, roll: float = 0.0) -> tuple[float, float]:
    """RA/Dec at instrument angles from the test boresight."""
    return _offset_position(POLE_RA, POLE_DEC, roll, dy_arcmin, dz_arcmin)


def det_position(ctx: ObservationContext, ra: float, dec: float) -> tuple[float, float]:
    y, z = radec_to_det(np.array([ra]), np.array([dec]), ctx.tstart, ctx.attitude, ctx.optics.teldef)
    return float(y[0]), float(z[0])


def chip_cells(ctx: ObservationContext, step: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A DET grid covering the chip: edges along DETY and DETZ, and the cells whose centre
    maps onto the 256 x 256 RAW pixels (the TELDEF may rotate the chip by any angle)."""
    cache = ctx.__dict__.setdefault("_chip_cells", {})
    if step not in cache:
        corners = np.array([[-0.5, -0.5], [255.5, -0.5], [-0.5, 255.5], [255.5, 255.5]])
        dy, dz = ctx.optics.raw_to_det(corners[:, 0], corners[:, 1])
        ye = np.arange(np.floor(dy.min()) - step, np.ceil(dy.max()) + 2 * step, step)
        ze = np.arange(np.floor(dz.min()) - step, np.ceil(dz.max()) + 2 * step, step)
        yc, zc = np.meshgrid(0.5 * (ye[1:] + ye[:-1]), 0.5 * (ze[1:] + ze[:-1]), indexing="ij")
        ry, rz = ctx.optics.det_to_raw(yc.ravel(), zc.ravel())
        cache[step] = (ye, ze, on_chip(ry, rz).reshape(yc.shape))
    return cache[step]


def chip_fraction(ctx: ObservationContext, y0: float, z0: float, energy: float, theta: float) -> float:
    """Share of the CALDB PSF of a source at DET (y0, z0) that falls on the chip.

    Exact cell integrals (``PSFModel.pixel_fractions``) on a 1-pixel DET grid, summed over
    the cells whose centre is on the chip: the cells the chip edge cuts count in or out
    by their centre, an error that averages out along the edge (far below the Poisson
    errors of the tests).
    """
    ye, ze, on = chip_cells(ctx)
    frac = np.asarray(ctx.optics.psf.pixel_fractions(ye, ze, y0, z0, energy, theta), dtype=float)
    return float(frac[on].sum())


def chi2_pvalue(observed: np.ndarray, expected: np.ndarray, *, min_expected: float = 5.0, ddof: int = 0) -> float:
    """Pearson chi-square p-value; bins expecting fewer than ``min_expected`` are pooled.

    ``expected`` must sum to the observed total when the comparison is conditional
    (multinomial): pass ``ddof=1`` then.
    """
    o = np.asarray(observed, dtype=float).ravel()
    e = np.asarray(expected, dtype=float).ravel()
    small = e < min_expected
    if small.any():
        o = np.r_[o[~small], o[small].sum()]
        e = np.r_[e[~small], e[small].sum()]
    chi2 = float(np.sum((o - e) ** 2 / e))
    return float(stats.chi2.sf(chi2, o.size - ddof))
