"""The detection with the real CALDB models of the bundled synthetic CALDB.

``DetectionCalibration.from_caldb()`` with no argument goes through the CALDB layer
(``CaDBIO`` without ``$CALDB`` serves the bundled ``fixtures_caldb/``) to the model
classes of :mod:`mxt_pipeline.caldb.products`.  These tests check that the detection's
calibration path reproduces those models exactly (band PSF tables against the model's
own pixel integrals), and run ``mxt detect`` end to end on events scattered with the
CALDB PSF through the CALDB TELDEF, with no test double anywhere.
"""

from __future__ import annotations

import numpy as np
import pytest

from mxt_pipeline.caldb import products
from mxt_pipeline.detect.bandpsf import BandPSF, DetectionCalibration
from mxt_pipeline.detect.bands import DEFAULT_BANDS
from mxt_pipeline.detect.images import detector_grid


@pytest.fixture(scope="module")
def calset(monkeypatch_module):
    monkeypatch_module.delenv("CALDB", raising=False)
    monkeypatch_module.delenv("MXT_CALDB_URL", raising=False)
    return products.CalibrationSet.from_caldb()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def cal(calset):
    return DetectionCalibration.from_calset(calset)


def test_from_caldb_without_arguments_uses_the_bundled_models(calset, cal):
    # The default path (no CALDB given) and an explicit CalibrationSet give the same models.
    default = DetectionCalibration.from_caldb()
    assert type(default.psf) is type(calset.psf) is products.PSFModel
    assert type(cal.teldef).__name__ == "Teldef"
    assert default.syserr_arcsec == cal.syserr_arcsec == pytest.approx(calset.syserr.localization_arcsec)
    assert np.array_equal(default.bad_mask, calset.badpix.mask())
    assert cal.bad_mask.shape == (256, 256) and cal.bad_mask.any()
    # The effective area and vignetting are the CALDB's callables.
    assert cal.effective_area(np.array([1.0]))[0] == pytest.approx(calset.effarea(np.array([1.0]))[0])
    vig = cal.band_vignetting(DEFAULT_BANDS)(np.array([0.0, 30.0]))
    assert np.allclose(vig[0], 1.0) and np.all(vig[1] < 1.0)


def test_band_psf_tables_reproduce_the_caldb_pixel_integrals(cal):
    # The separable tables built from PSFModel.density against the model's own exact
    # pixel_fractions, mixed over the band at the same key angle, on the DET grid.
    y_edges, z_edges = detector_grid(cal.teldef)
    for psf in cal.band_psfs(DEFAULT_BANDS):
        assert isinstance(psf, BandPSF)
        for y0, z0 in ((0.3, -0.7), (70.2, -95.6)):
            ay, az = cal.teldef.det_to_angles(y0, z0)
            theta = float(np.hypot(ay, az))
            exact = psf.pixel_fractions(y_edges, z_edges, y0, z0, theta)
            tab = psf.terms(y_edges, z_edges, [y0], [z0], theta).image(0)
            assert np.abs(tab - exact).max() < 1e-6 * exact.max()
            assert tab.sum() == pytest.approx(exact.sum(), rel=1e-5)


def test_angle_keys_hold_the_spot_width_within_tolerance(cal):
    # Every off-axis angle uses the table of its segment's key angle: the CALDB spot
    # FWHM at any angle is within the tolerance of the one at its key.
    psf = cal.band_psfs(DEFAULT_BANDS)[0]
    theta = np.linspace(0.0, 60.0, 241)
    keys = psf.keys(theta)
    f = np.array([psf.fwhm(t) for t in theta])
    fk = np.array([psf.fwhm(k) for k in keys])
    assert np.all(np.abs(f / fk - 1.0) <= psf.fwhm_tol + 1e-9)
    assert np.all(np.abs(keys - theta) <= 0.5 * psf.max_key_step + 0.25)
    # The PSF barely changes near the axis: one table serves the centre of the field.
    assert np.unique(psf.keys(np.linspace(0.0, 8.0, 33))).size == 1


def test_mxt_detect_end_to_end_with_the_caldb_models(calset, tmp_path, monkeypatch, fitsverify):
    from mxt_pipeline.cli.main import main
    from mxt_pipeline.io import read_product, validate_file
    from mxt_pipeline.io.products import write_attitude, write_events

    from .test_pipeline import _observation, _sep_arcsec

    monkeypatch.delenv("CALDB", raising=False)
    monkeypatch.delenv("MXT_CALDB_URL", raising=False)
    rng = np.random.default_rng(12)
    sources = [(10.0, -20.0, 600), (-60.0, 55.0, 400)]
    # Mission time 3e8 s (2026): inside the validity of every bundled CALDB file.
    ev, _, att, truth = _observation(rng, sources, bkg_per_pixel=0.01, calset=calset, t0=3.0e8)
    l2 = write_events(tmp_path / "l2.fits", ev)
    att.meta["OBS_ID"] = "TEST"
    att_path = write_attitude(tmp_path / "att.fits", att)
    out = tmp_path / "src.fits"
    # No --caldb: the default CALDB (the bundled one here) is used, nothing patched.
    assert main(["detect", str(l2), "--out", str(out), "--att", str(att_path)]) == 0
    assert validate_file(out) == []
    res = fitsverify(out)
    assert res.ok, res.output
    prod = read_product(out, "MXT_SOP_SKY")
    src = prod.table("SRCLIST")
    assert len(src) == 2
    assert prod.header("SRCLIST")["SYSERR"] == pytest.approx(calset.syserr.localization_arcsec)
    # Each simulated source listed within 2.5 ERR_R90 (the statistical part alone is
    # not in the product); the brighter first, RAWY/RAWZ through the CALDB TELDEF.
    for k, (ra, dec) in enumerate(truth):
        sep = _sep_arcsec(np.full(len(src), ra), np.full(len(src), dec), np.asarray(src["RA"]), np.asarray(src["DEC"]))
        i = int(np.argmin(sep))
        assert i == k
        assert sep[i] < 2.5 * src["ERR_R90"][i]
        ry, rz = calset.teldef.det_to_raw(sources[k][0], sources[k][1])
        assert np.hypot(src["RAWY"][i] - ry, src["RAWZ"][i] - rz) < 3.0 * src["ERR_R90"][i] / 13.5
    per = prod.table("SRCBANDS")
    counts = np.asarray(per["COUNTS"]).reshape(2, 2)
    assert np.allclose(counts.sum(axis=1), src["COUNTS"], rtol=1e-5)
    # Photons drawn uniformly in 0.3-9.5 keV: about 18% below 2 keV.
    assert 0.08 < counts[0, 0] / counts[0].sum() < 0.3


def test_ml_fit_equals_migrad_with_the_caldb_psf(cal):
    # One observation with the CALDB band PSFs (central 128 x 128 pixels): the ML
    # position agrees with MIGRAD on the dense model of the PSF's exact pixel integrals.
    from mxt_pipeline.acceptance.detection import ValidationSetup, run_onaxis

    setup = ValidationSetup.from_calibration(cal, crop=128, name="caldb")
    r = run_onaxis(setup, 300.0, np.random.default_rng(3), reference=True)
    assert r["found"] and r["reference_valid"]
    assert r["reference_shift_r68"] < 0.01
    assert abs(r["reference_dcstat"]) < 1e-2
    # The same observation with the dC of the true position (level calibration): the
    # profile is about quadratic at 300 counts, dC ~ 4.61 (offset / R90)^2.
    assert "dc_true" not in r
    t = run_onaxis(setup, 300.0, np.random.default_rng(3), truth_dc=True)
    assert t["offset"] == r["offset"] and t["r90"] == r["r90"]
    assert t["dc_true"] == pytest.approx(4.605 * (t["offset"] / t["r90"]) ** 2, rel=0.5, abs=0.05)


def test_detect_sources_uses_the_caldb_dc_levels(calset):
    # A faint source (DET_ML a few units above the threshold): the CALDB's calibrated
    # levels widen its radii against Wilks' levels, by about the square root of the
    # level ratio at its DET_ML; its position does not change.
    from dataclasses import replace

    from mxt_pipeline.detect.levels import WILKS
    from mxt_pipeline.detect.pipeline import DetectionParameters, detect_sources

    from .test_pipeline import _observation

    rng = np.random.default_rng(3)
    ev, _, _, _ = _observation(rng, [(5.0, -8.0, 90)], bkg_per_pixel=0.004, calset=calset, t0=3.0e8)
    cal = DetectionCalibration.from_calset(calset)
    listed = detect_sources(ev, cal)
    plain = detect_sources(ev, cal, params=replace(DetectionParameters(), error_levels=WILKS))
    assert listed.meta["ERRLEVEL"].startswith("CALDB mxt_syserr_") and plain.meta["ERRLEVEL"] == "Wilks"
    assert len(listed) == len(plain) >= 1
    assert listed["DETY"][0] == plain["DETY"][0] and listed["DET_ML"][0] == plain["DET_ML"][0]
    l68, l90 = cal.error_levels.at(float(listed["DET_ML"][0]))
    ratio = float(listed["R90_STAT"][0] / plain["R90_STAT"][0])
    assert ratio > 1.0
    assert ratio == pytest.approx(np.sqrt(l90 / 4.605), rel=0.1)
    assert float(listed["R68_STAT"][0] / plain["R68_STAT"][0]) == pytest.approx(np.sqrt(l68 / 2.296), rel=0.1)
