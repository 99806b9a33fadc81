"""Statistical tests of the simulator against the CALDB (fixed seeds, stated false-failure rates).

Every chi-square test fails when p < 1e-3: a false-failure rate of 0.1 % per test for a
correct simulator (the seeds are fixed, so a given code either passes or fails; the
rate says how likely a correct code would have been rejected).
"""

from __future__ import annotations

import numpy as np
import pytest

from mxt_pipeline.simulate.optics import on_chip
from mxt_pipeline.simulate.photons import EnergyTable
from mxt_pipeline.simulate.sources import Source, source_photons
from mxt_pipeline.simulate.spectra import GaussianLine, PowerLaw, energy_flux

from .simkit import chi2_pvalue, chip_fraction, det_position, quiet_context, sky_at

P_MIN = 1e-3


def _chip_fraction(ctx, y0, z0, energy, theta):
    """Share of the PSF falling on the chip."""
    return chip_fraction(ctx, y0, z0, energy, theta)


#: Half width of the window around the source (DET pixels, about 14.4') and its cells
#: (4 x 4 pixels): the window holds the CALDB spot (FWHM about 11') and the arm roots.
HALF_WINDOW = 64
CELL = 4


def _radial_model(psf, energy, theta, r_edges, step=0.25):
    """Share of the PSF in each annulus, from ``PSFModel.density`` on a fine grid (midpoint
    rule, 0.25 pixel cells): an evaluation path independent of ``pixel_fractions``."""
    x = np.arange(-r_edges[-1], r_edges[-1], step) + 0.5 * step
    yy, zz = np.meshgrid(x, x, indexing="ij")
    dens = np.asarray(psf.density(yy.ravel(), zz.ravel(), energy, theta), dtype=float) * step**2
    w, _ = np.histogram(np.hypot(yy.ravel(), zz.ravel()), r_edges, weights=dens)
    return w


@pytest.mark.parametrize("energy", [0.5, 1.5, 5.0])
def test_photon_positions_follow_the_caldb_psf(calset, energy):
    """Positions around a source vs the CALDB PSF at three energies (false failure 1e-3 each).

    * 2-D: counts in 4 x 4 pixel cells of a +-64 pixel window vs
      ``PSFModel.pixel_fractions`` (conditional on the photons in the window, chi-square);
    * radial profile: counts in 4-pixel annuli out to 64 pixels vs the annulus integrals
      of ``PSFModel.density`` (conditional, chi-square);
    * the share of the on-chip photons inside the window (binomial, 4.5 sigma).
    """
    ctx = quiet_context(calset, 1000.0)
    ra, dec = sky_at(4.0, -3.0)
    y0, z0 = det_position(ctx, ra, dec)
    theta = float(ctx.optics.offaxis_arcmin(y0, z0))
    line = GaussianLine(energy=energy, sigma=0.002)
    probe = Source("probe", ra, dec, 1.0, line)
    # Flux giving about 40000 photons at the focal plane.
    rate_per_flux = probe.norm * float(ctx.optics.area(energy) * ctx.optics.vignetting(energy, theta))
    src = Source("line", ra, dec, 40000.0 / (rate_per_flux * 1000.0), line)
    batch, stats = source_photons(src, ctx, np.random.default_rng(int(energy * 1000)), component=0)
    dy, dz = ctx.optics.raw_to_det(batch.rawy, batch.rawz)
    edges = np.arange(-HALF_WINDOW, HALF_WINDOW + 1, CELL, dtype=float)
    obs, _, _ = np.histogram2d(dy - y0, dz - z0, [edges, edges])
    frac = ctx.optics.psf.pixel_fractions(edges + y0, edges + z0, y0, z0, energy, theta)
    exp = frac / frac.sum() * obs.sum()
    assert obs.sum() > 15000
    assert chi2_pvalue(obs, exp, ddof=1) > P_MIN

    r_edges = np.arange(0.0, HALF_WINDOW + 1, CELL, dtype=float)
    r = np.hypot(dy - y0, dz - z0)
    obs_r, _ = np.histogram(r, r_edges)
    model_r = _radial_model(ctx.optics.psf, energy, theta, r_edges)
    assert chi2_pvalue(obs_r, model_r / model_r.sum() * obs_r.sum(), ddof=1) > P_MIN

    f_win = float(frac.sum()) / _chip_fraction(ctx, y0, z0, energy, theta)
    n = stats.photons_on_detector
    assert abs(obs.sum() - n * f_win) < 4.5 * np.sqrt(n * f_win * (1 - f_win)) + 1


def _flux_for(ctx, spec, theta, n_photons):
    """Flux (erg cm^-2 s^-1) giving about ``n_photons`` at the focal plane in the observation."""
    e = np.geomspace(0.2, 10.0, 400)
    probe = Source("probe", 0.0, 0.0, 1.0, spec)
    rate = np.trapezoid(probe.photon_spectrum(e) * ctx.optics.area(e) * ctx.optics.vignetting(e, np.full(e.size, theta)), e)
    return n_photons / (rate * (ctx.tstop - ctx.tstart))


def _band_expectation(ctx, src, y0, z0, theta, edges, sub=8):
    """Photons per second in each energy bin: N(E) A(E) V(E, theta) x chip share of the PSF."""
    out = np.empty(edges.size - 1)
    for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        e = lo + (np.arange(sub) + 0.5) * (hi - lo) / sub
        chip = np.array([_chip_fraction(ctx, y0, z0, x, theta) for x in e[:: sub // 2]])
        dens = src.photon_spectrum(e) * ctx.optics.area(e) * ctx.optics.vignetting(e, np.full(e.size, theta))
        out[k] = np.mean(dens) * (hi - lo) * np.mean(chip)
    return out


def test_count_spectrum_matches_model_times_area(calset):
    """Energies of the photons on the chip vs ``N(E) A(E) V(E, theta)`` x chip share, 0.3-10 keV.

    30 log bins, conditional on the total: chi-square, p > 1e-3.
    """
    ctx = quiet_context(calset, 2000.0)
    ra, dec = sky_at(2.0, 5.0)
    y0, z0 = det_position(ctx, ra, dec)
    theta = float(ctx.optics.offaxis_arcmin(y0, z0))
    spec = PowerLaw(index=1.8, nh=0.2)
    src = Source("pl", ra, dec, _flux_for(ctx, spec, theta, 20000), spec)
    batch, _ = source_photons(src, ctx, np.random.default_rng(11), component=0)
    edges = np.geomspace(0.3, 10.0, 31)
    obs, _ = np.histogram(batch.energy, edges)
    exp = _band_expectation(ctx, src, y0, z0, theta, edges)
    exp *= obs.sum() / exp.sum()
    assert obs.sum() > 10000
    assert chi2_pvalue(obs, exp, ddof=1) > P_MIN


def test_detected_rate_matches_input_rate(calset):
    """Detected photons of true energy 1-10 keV vs rate x time (4.5 sigma Poisson; false failure < 1e-5).

    Above 1 keV the brightest pixel of a photon holds at least a quarter of 1 keV, far
    above the primary threshold: every photon on the chip is detected.
    """
    ctx = quiet_context(calset, 3000.0)
    ra, dec = sky_at(-6.0, 1.0)
    y0, z0 = det_position(ctx, ra, dec)
    theta = float(ctx.optics.offaxis_arcmin(y0, z0))
    spec = PowerLaw(index=2.0, nh=0.05)
    flux = _flux_for(ctx, spec, theta, 15000)
    src = Source("pl", ra, dec, flux, spec)
    batch, stats = source_photons(src, ctx, np.random.default_rng(5), component=0)
    hits, detected = ctx.detector.respond(batch.frame, batch.rawy, batch.rawz, batch.charge, batch.energy, salt=1)
    n_det = int(np.sum(detected & (batch.energy >= 1.0)))
    edges = np.linspace(1.0, 10.0, 91)
    mu = float(np.sum(_band_expectation(ctx, src, y0, z0, theta, edges))) * 3000.0
    assert abs(n_det - mu) < 4.5 * np.sqrt(mu), (n_det, mu)
    # Independent check of the flux scale: the source's photon spectrum carries the
    # requested energy flux.
    assert src.norm * energy_flux(spec) == pytest.approx(flux)
    # The truth's expected photons (whole band) agree with the photons on the chip,
    # corrected for the PSF share off the chip (4.5 sigma).
    e_lo, e_hi = ctx.optics.energy_range()
    tab = EnergyTable.from_function(
        lambda e: src.photon_spectrum(e) * ctx.optics.area(e) * ctx.optics.vignetting(e, np.full(e.size, theta)),
        max(e_lo, 0.05), e_hi,
    )  # fmt: skip
    assert stats.expected_photons == pytest.approx(tab.total * 3000.0, rel=1e-3)
    n_on = stats.photons_on_detector
    chip = _chip_fraction(ctx, y0, z0, 1.5, theta)
    assert abs(n_on - stats.expected_photons * chip) < 4.5 * np.sqrt(stats.expected_photons) + 0.02 * n_on


def test_photons_outside_the_field_leak_through_the_arms(calset):
    """A source 45' off-axis along DETY: its spot is off the chip, yet photons arrive,
    in the number the PSF puts on the chip (4.5 sigma), along the arm."""
    ctx = quiet_context(calset, 2000.0)
    ra, dec = sky_at(45.0, 0.0)
    y0, z0 = det_position(ctx, ra, dec)
    theta = float(ctx.optics.offaxis_arcmin(y0, z0))
    src = Source("far", ra, dec, 5e-9, GaussianLine(energy=1.5, sigma=0.002))
    batch, stats = source_photons(src, ctx, np.random.default_rng(2), component=0)
    assert not stats.in_fov
    assert np.all(on_chip(batch.rawy, batch.rawz))
    chip = _chip_fraction(ctx, y0, z0, 1.5, theta)
    mu = stats.expected_photons * chip
    assert mu > 50
    assert abs(stats.photons_on_detector - mu) < 4.5 * np.sqrt(mu) + 1
