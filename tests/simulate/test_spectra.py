"""Spectral models and the Morrison & McCammon (1983) absorption."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate

from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.simulate.spectra import (
    KEV_TO_ERG,
    MM83_COEFFS,
    MM83_EDGES_KEV,
    Blackbody,
    GaussianLine,
    PowerLaw,
    energy_flux,
    mm83_cross_section,
    normalisation_for_flux,
    photon_flux,
    spectrum_from_dict,
    transmission,
)


def test_cross_section_published_values():
    # sigma E^3 = c0 + c1 E + c2 E^2 (1e-24 cm^2), Table 2 of Morrison & McCammon 1983,
    # evaluated by hand at 1 keV (120.6 + 169.3 - 47.7) and 0.5 keV.
    assert mm83_cross_section(1.0) == pytest.approx(242.2e-24, rel=1e-12)
    assert mm83_cross_section(0.5) == pytest.approx((71.4 + 66.8 * 0.5 - 51.4 * 0.25) / 0.125 * 1e-24, rel=1e-12)
    # The commonly quoted value: about 2.4e-22 cm^2 per H atom at 1 keV.
    assert 2.3e-22 < mm83_cross_section(1.0) < 2.5e-22


def test_cross_section_jumps_up_at_every_edge():
    # An absorption edge adds a shell: sigma never drops when crossing an interval
    # boundary (0.1 keV is a fit boundary, continuous to 0.1 %).
    for k, e in enumerate(MM83_EDGES_KEV[1:-1], start=1):
        below = np.polyval(MM83_COEFFS[k - 1][::-1], e)
        above = np.polyval(MM83_COEFFS[k][::-1], e)
        assert above >= below * (1 - 1e-3), e
    assert mm83_cross_section(np.nextafter(0.532, 1)) > mm83_cross_section(np.nextafter(0.532, 0)) * 1.5


def test_cross_section_decreases_between_edges():
    for lo, hi in zip(MM83_EDGES_KEV[:-1], MM83_EDGES_KEV[1:]):
        e = np.linspace(lo, hi, 50)[:-1]
        assert np.all(np.diff(mm83_cross_section(e)) < 0)


def test_transmission_limits():
    e = np.geomspace(0.2, 10, 100)
    assert np.all(transmission(e, 0.0) == 1.0)
    t = transmission(e, 0.1)
    assert np.all((t > 0) & (t < 1))
    # Beer-Lambert: columns add.
    np.testing.assert_allclose(transmission(e, 0.3), transmission(e, 0.1) * transmission(e, 0.2), rtol=1e-12)
    with pytest.raises(MXTInputError):
        transmission(e, -1.0)
    with pytest.raises(MXTInputError):
        mm83_cross_section(0.0)


@given(st.floats(0.5, 3.5), st.floats(0.0, 0.5))
def test_powerlaw_flux_matches_quad(index, nh):
    spec = PowerLaw(index=index, nh=nh)
    ref, _ = integrate.quad(lambda e: e * spec.shape(e), 0.3, 10.0, points=list(MM83_EDGES_KEV[3:-1]), limit=200)
    assert energy_flux(spec) == pytest.approx(ref * KEV_TO_ERG, rel=2e-4)


def test_unabsorbed_powerlaw_analytic():
    spec = PowerLaw(index=2.0, nh=0.0)
    assert energy_flux(spec) == pytest.approx(np.log(10 / 0.3) * KEV_TO_ERG, rel=1e-6)
    assert photon_flux(spec) == pytest.approx(1 / 0.3 - 1 / 10, rel=1e-6)
    k = normalisation_for_flux(spec, 4e-11)
    assert k * energy_flux(spec) == pytest.approx(4e-11)


def test_blackbody_peak_and_flux():
    bb = Blackbody(kt=0.5)
    e = np.linspace(0.01, 5, 20000)
    # The photon spectrum E^2/(e^x - 1) peaks at x = 1.5936 (root of 2(1 - e^-x) = x).
    assert e[np.argmax(bb.unabsorbed(e))] == pytest.approx(1.5936 * 0.5, rel=2e-3)
    # Total energy flux of the Planck law: integral x^3/(e^x - 1) = pi^4/15.
    total = energy_flux(bb, (1e-4, 60.0)) / KEV_TO_ERG
    assert total == pytest.approx(np.pi**4 / 15 * 0.5**4, rel=1e-3)


def test_line_flux():
    line = GaussianLine(energy=1.487, sigma=0.0)
    assert energy_flux(line) == pytest.approx(1.487 * KEV_TO_ERG)
    wide = GaussianLine(energy=5.895, sigma=0.05)
    assert photon_flux(wide) == pytest.approx(1.0, rel=1e-4)
    assert photon_flux(GaussianLine(energy=12.0)) == 0.0


def test_spectrum_dict_round_trip_and_errors():
    for spec in (PowerLaw(1.7, 0.2), Blackbody(0.3, 0.01), GaussianLine(1.487, 0.01, 0.0)):
        assert spectrum_from_dict(spec.to_dict()) == spec
    with pytest.raises(MXTInputError, match="unknown spectral model"):
        spectrum_from_dict({"model": "bremss"})
    with pytest.raises(MXTInputError) as exc:
        spectrum_from_dict({"model": "powerlaw", "indx": 2})
    assert exc.value.keyword == "indx"
    with pytest.raises(MXTInputError):
        spectrum_from_dict({"model": "blackbody", "kt": -1})
    with pytest.raises(MXTInputError):
        normalisation_for_flux(PowerLaw(), -1.0)
