"""The PSF correction of the light curves follows each source's spectrum."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate

from mxt_pipeline.caldb.products import CalibrationSet
from mxt_pipeline.lightcurve.extract import (
    density_eef,
    fraction_vs_energy,
    source_region,
    spectral_psf_fraction,
)


@pytest.fixture(scope="module")
def caldb_psf():
    return CalibrationSet.from_caldb(None, codes=("PSF",)).psf


@pytest.fixture(scope="module")
def circle(caldb_psf):
    region = source_region(caldb_psf)
    return region, fraction_vs_energy(caldb_psf, region.radius)


def test_fraction_vs_energy_matches_the_psf_at_its_grid_and_between(caldb_psf, circle):
    region, f = circle
    # At 1.5 keV the circle holds the fraction it was sized for.
    assert f(1.5) == pytest.approx(region.psf_fraction, abs=0.01)
    for e in (0.5, 2.2, 4.0, 7.0):  # between grid points: interpolation in log E
        assert f(e) == pytest.approx(density_eef(caldb_psf.density, e)(region.radius), abs=0.01)
    # The lobster-eye spot holds less of the flux at high energy.
    assert f(7.0) < f(4.0) < f(1.5)


def _photons(rng, index, n, e_lo=0.3, e_hi=10.0):
    """Energies of a power law of photon index ``index`` (inverse transform)."""
    u = rng.uniform(size=n)
    g = 1.0 - index
    return (e_lo**g + u * (e_hi**g - e_lo**g)) ** (1.0 / g)


@pytest.mark.parametrize("index", [0.5, 2.0, 3.5])
def test_spectral_fraction_recovers_the_spectrum_weighted_fraction(circle, index):
    """Photons fall in the circle with probability f(E); background is removed as for the rates."""
    _, f = circle
    rng = np.random.default_rng(11)
    energy = _photons(rng, index, 40_000)
    src = energy[rng.uniform(size=energy.size) < f(energy)]
    area = 0.2  # circle over annulus
    bkg_annulus = rng.uniform(0.3, 10.0, 20_000)
    bkg_circle = rng.uniform(0.3, 10.0, rng.poisson(area * bkg_annulus.size))
    measured = spectral_psf_fraction(f, np.r_[src, bkg_circle], bkg_annulus, area, 0.3, 10.0, default=0.5)
    # Independent reference: the fraction integrated over the spectrum.
    g = 1.0 - index
    norm = (10.0**g - 0.3**g) / g
    expected = integrate.quad(lambda e: e**-index * f(e), 0.3, 10.0, limit=200)[0] / norm
    assert measured == pytest.approx(expected, rel=0.03)
    # A hard source is not corrected at 1.5 keV's fraction.
    if index < 1.0:
        assert measured < f(1.5) - 0.05


@given(frac=st.floats(0.05, 1.0), n_src=st.integers(0, 200), n_bkg=st.integers(0, 200), area=st.floats(0.0, 2.0),
       seed=st.integers(0, 2**32 - 1))  # fmt: skip
def test_spectral_fraction_is_bounded_and_exact_for_a_flat_psf(frac, n_src, n_bkg, area, seed):
    rng = np.random.default_rng(seed)
    src = rng.uniform(0.2, 10.0, n_src)
    bkg = rng.uniform(0.2, 10.0, n_bkg)
    flat = lambda e: np.full(np.shape(e), frac)  # noqa: E731
    out = spectral_psf_fraction(flat, src, bkg, area, 0.2, 10.0, default=0.42)
    if n_src - area * n_bkg > 0:
        assert out == pytest.approx(frac, rel=1e-9)
    else:
        assert out == 0.42  # no net signal: the fraction at one energy

    def steep(e):
        return np.interp(np.log(e), np.log([0.2, 10.0]), [0.9, 0.1])

    out = spectral_psf_fraction(steep, src, bkg, area, 0.2, 10.0, default=0.5)
    assert 0.1 - 1e-12 <= out <= 0.9 + 1e-12
