"""The Cramer-Rao curve of the campaign report (detect.crlb through the band PSFs)."""

from __future__ import annotations

import numpy as np
import pytest

from mxt_pipeline import constants as C
from mxt_pipeline.campaign.execute import crlb_versus_counts
from mxt_pipeline.detect.bandpsf import DetectionCalibration
from mxt_pipeline.errors import MXTInputError
from tests.detect.psf_double import AnalyticLobsterPSF


def _cal(**kw):
    return DetectionCalibration(psf=AnalyticLobsterPSF(**kw), teldef=None)


def test_gaussian_psf_without_background_follows_sigma_over_sqrt_n():
    sigma = 3.0
    f = crlb_versus_counts(calibration=_cal(sigma=sigma, fractions=(1, 0, 0, 0)), counts=np.geomspace(10, 1e4, 7))
    n = np.array([30.0, 300.0, 5000.0])
    expected = np.sqrt((sigma**2 + 1 / 12) / n) * C.PIXEL_SCALE_ARCSEC
    assert f(n) == pytest.approx(expected, rel=5e-3)
    # Extrapolated beyond the grid with the same law.
    assert f(np.array([4e4]))[0] == pytest.approx(np.sqrt((sigma**2 + 1 / 12) / 4e4) * C.PIXEL_SCALE_ARCSEC, rel=5e-3)


def test_background_raises_the_bound_most_at_low_counts():
    cal = _cal()
    counts = np.geomspace(10, 1e4, 7)
    clean = crlb_versus_counts(calibration=cal, counts=counts)
    noisy = crlb_versus_counts(calibration=cal, counts=counts, background_per_pixel=[0.05, 0.02])
    n = np.array([20.0, 5000.0])
    ratio = noisy(n) / clean(n)
    assert np.all(ratio > 1.0) and ratio[0] > ratio[1]
    with pytest.raises(MXTInputError):
        crlb_versus_counts(calibration=cal, background_per_pixel=-1.0)


def test_true_counts_keep_detected_source_photons_in_gti_and_band():
    from types import SimpleNamespace

    from mxt_pipeline.campaign.execute import true_counts_in_gti
    from mxt_pipeline.datamodel import GTI

    # Components 0, 1 are sources, 2 is the background; photon 3 is not detected.
    ph = SimpleNamespace(
        time=np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 50.0, 7.0]),
        energy=np.array([1.0, 1.0, 1.0, 1.0, 12.0, 1.0, 1.0, 1.0]),
        component=np.array([0, 0, 1, 1, 1, 2, 0, 1]),
    )
    # Source 0 has half of its focal-plane photons on the chip: its whole-PSF counts double.
    sources = [{"expected_photons": 40.0, "photons_on_detector": 20}, {"expected_photons": 0.0}]
    ds = SimpleNamespace(scenario=SimpleNamespace(sources=[0, 1]), photons=ph, detected=np.array([0, 1, 2, 4, 5, 6, 7]),
                         truth={"sources": sources})  # fmt: skip
    counts = true_counts_in_gti(ds, GTI([0.0], [10.0]), 0.2, 10.0)
    assert counts.tolist() == [4.0, 2.0]  # photon 6 outside the GTI, 4 out of band, 3 undetected
