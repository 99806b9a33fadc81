"""Backgrounds against expectations computed independently from the CALDB and the settings.

Scale tests at 4.5 sigma (Poisson; false failure < 1e-5 each), chi-square tests fail
when p < 1e-3 (false-failure rate 0.1 % each).
"""

from __future__ import annotations

import math

import numpy as np

from mxt_pipeline.simulate.background import (
    DETECTOR_AREA_CM2,
    CXBSettings,
    ParticleSettings,
    cxb_norm,
    cxb_photons,
    particle_events,
)
from mxt_pipeline.simulate.spectra import PowerLaw

from .simkit import chi2_pvalue, quiet_context

BANDS = ((0.3, 1.0, 0.6), (1.0, 2.5, 1.5), (2.5, 10.0, 4.0))  # keV: low, high, PSF energy


def _chip_box(ctx):
    corners = np.array([[-0.5, -0.5], [255.5, -0.5], [-0.5, 255.5], [255.5, 255.5]])
    dy, dz = ctx.optics.raw_to_det(corners[:, 0], corners[:, 1])
    return np.array([dy.min(), dy.max()]), np.array([dz.min(), dz.max()])


def _cxb_expected(ctx, settings: CXBSettings, cell_arcmin: float = 4.0) -> np.ndarray:
    """Photons per band on the chip: a sum over 4' cells of sky (solid angle x spectrum x
    area x vignetting x PSF share on the chip box) times the exposure."""
    h = settings.half_width_arcmin
    a = np.arange(-h, h, cell_arcmin) + 0.5 * cell_arcmin
    ay, az = (x.ravel() for x in np.meshgrid(a, a, indexing="ij"))
    rad = math.pi / (180.0 * 60.0)
    u, w = np.tan(ay * rad), np.tan(az * rad)
    d = cell_arcmin * rad
    # Solid angle of a cell of the (atan u, atan w) grid: du dw / (1 + u^2 + w^2)^(3/2).
    omega = d * d * (1 + u * u) * (1 + w * w) / (1 + u * u + w * w) ** 1.5
    dety, detz = ctx.optics.angles_to_det(ay, az)
    theta = ctx.optics.offaxis_arcmin(dety, detz)
    ybox, zbox = _chip_box(ctx)
    spec = PowerLaw(index=settings.index, nh=settings.nh)
    norm = cxb_norm(settings.index, settings.intensity_2_10)
    out = np.zeros(len(BANDS))
    for k, (lo, hi, e_psf) in enumerate(BANDS):
        e = np.linspace(lo, hi, 41)
        de = e[1] - e[0]
        chip = np.array([float(ctx.optics.psf.pixel_fractions(ybox, zbox, y, z, e_psf, t).sum())
                         for y, z, t in zip(dety, detz, theta)])  # fmt: skip
        vig = ctx.optics.vignetting(np.repeat(e, theta.size), np.tile(theta, e.size)).reshape(e.size, theta.size)
        dens = norm * spec.shape(e) * ctx.optics.area(e)
        wts = np.r_[0.5, np.ones(e.size - 2), 0.5] * de  # trapezoid
        per_cell = (wts * dens) @ vig
        out[k] = float(np.sum(omega * per_cell * chip))
    return out * (ctx.tstop - ctx.tstart)


def test_cxb_photons_on_the_chip_match_the_sky_integral(calset):
    ctx = quiet_context(calset, 20000.0)
    settings = CXBSettings()
    batch, info = cxb_photons(settings, ctx, np.random.default_rng(21), component=0)
    assert info["good_time"] == ctx.tstop - ctx.tstart
    exp = _cxb_expected(ctx, settings)
    obs = np.array([np.count_nonzero((batch.energy >= lo) & (batch.energy < hi)) for lo, hi, _ in BANDS])
    assert obs.sum() > 1000
    for o, m in zip(obs, exp):
        # 4.5 sigma plus 2 % for the band-averaged PSF share and the chip box.
        assert abs(o - m) < 4.5 * math.sqrt(m) + 0.02 * m, (obs, exp.round(1))


def test_particle_background_rate_spectrum_and_uniformity(calset):
    ctx = quiet_context(calset, 5000.0)
    settings = ParticleSettings(rate_cm2_s_kev=5e-3, e_min=0.2, e_max=12.0, mip_rate_cm2_s=0.1)
    batch, info = particle_events(settings, ctx, np.random.default_rng(22), component=0)
    t_exp = ctx.tstop - ctx.tstart
    # Continuum deposits: energy == charge only for the MIP points, so the continuum
    # is the set whose charge differs from the energy (Fano spread) - count it by rate.
    mu = settings.rate_cm2_s_kev * DETECTOR_AREA_CM2 * (settings.e_max - settings.e_min) * t_exp
    cont = batch.charge != batch.energy
    n = int(cont.sum())
    assert abs(n - mu) < 4.5 * math.sqrt(mu) + 1
    # Flat spectrum in 12 bins and uniform over 8 x 8 blocks of pixels (chi-square).
    e_obs, _ = np.histogram(batch.energy[cont], np.linspace(settings.e_min, settings.e_max, 13))
    assert chi2_pvalue(e_obs, np.full(12, n / 12.0)) > 1e-3
    blk, _, _ = np.histogram2d(batch.rawy[cont], batch.rawz[cont], [np.linspace(-0.5, 255.5, 9)] * 2)
    assert chi2_pvalue(blk, np.full(blk.shape, n / 64.0)) > 1e-3
    # MIP tracks: Poisson number at rate x area x time.
    mu_t = settings.mip_rate_cm2_s * DETECTOR_AREA_CM2 * t_exp
    assert abs(info["mip_tracks"] - mu_t) < 4.5 * math.sqrt(mu_t) + 1
