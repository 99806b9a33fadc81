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

from .simkit import chi2_pvalue, det_position, quiet_context, sky_at

P_MIN = 1e-3


def _chip_box_in_det(ctx):
    """DET edges of the chip when RAW -> DET keeps the axes (rotation by a multiple of 90 deg)."""
    corners = np.array([[-0.5, -0.5], [255.5, -0.5], [-0.5, 255.5], [255.5, 255.5]])
    dy, dz = ctx.optics.raw_to_det(corners[:, 0], corners[:, 1])
    ys, zs = np.unique(np.round(dy, 6)), np.unique(np.round(dz, 6))
    if ys.size != 2 or zs.size != 2:
        return None
    return (ys[0], ys[1]), (zs[0], zs[1])


def _chip_fraction(ctx, y0, z0, energy, theta):
    """Share of the PSF falling on the chip (exact CDF differences over the chip box)."""
    box = _chip_box_in_det(ctx)
    if box is None:
        pytest.skip("the TELDEF rotates the chip by a non-right angle")
    (ylo, yhi), (zlo, zhi) = box
    return float(np.sum(ctx.optics.psf.pixel_fractions(np.array([ylo, yhi]), np.array([zlo, zhi]), y0, z0, energy, theta)))


@pytest.mark.parametrize("energy", [0.5, 1.5, 5.0])
def test_photon_positions_follow_the_caldb_psf(calset, energy):
    """Positions around a source vs ``PSFModel.pixel_fractions`` in a 41 x 41 pixel window.

    Conditional on the photons in the window (multinomial): chi-square, p > 1e-3.
    """
    ctx = quiet_context(calset, 1000.0)
    ra, dec = sky_at(4.0, -3.0)
    y0, z0 = det_position(ctx, ra, dec)
    theta = float(ctx.optics.offaxis_arcmin(y0, z0))
    line = GaussianLine(energy=energy, sigma=0.002)
    probe = Source("probe", ra, dec, 1.0, line)
    # Flux giving about 40000 photons on the chip.
    rate_per_flux = probe.norm * float(ctx.optics.area(energy) * ctx.optics.vignetting(energy, theta))
    src = Source("line", ra, dec, 40000.0 / (rate_per_flux * 1000.0), line)
    batch, stats = source_photons(src, ctx, np.random.default_rng(int(energy * 1000)), component=0)
    dy, dz = ctx.optics.raw_to_det(batch.rawy, batch.rawz)
    y_edges = np.round(y0) + np.arange(-20.5, 21.0)
    z_edges = np.round(z0) + np.arange(-20.5, 21.0)
    obs, _, _ = np.histogram2d(dy, dz, [y_edges, z_edges])
    frac = ctx.optics.psf.pixel_fractions(y_edges, z_edges, y0, z0, energy, theta)
    exp = frac / frac.sum() * obs.sum()
    assert obs.sum() > 20000
    assert chi2_pvalue(obs, exp, ddof=1) > P_MIN
    # The share of the chip in the window matches the PSF's (binomial, 4.5 sigma:
    # false failure < 1e-5).
    f_win = frac.sum() / _chip_fraction(ctx, y0, z0, energy, theta)
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
