"""Sources outside the field of view: their cross-arm response, the coupling of the
in-field sources on their arms, and their listing (OUT_OF_FOV, never in-field)."""

from __future__ import annotations

import numpy as np
import pytest

from mxt_pipeline.detect.bandpsf import DetectionCalibration
from mxt_pipeline.detect.bands import DEFAULT_BANDS
from mxt_pipeline.detect.images import detector_grid
from mxt_pipeline.detect.mlfit import MLState, neighbours
from mxt_pipeline.detect.outfield import arm_coupled, outside_field
from mxt_pipeline.detect.pipeline import DetectionParameters
from mxt_pipeline.detect.srclist import FLAG_OFF_CHIP, FLAG_OUT_OF_FOV

from .conftest import grid, simulate_problem
from .psf_double import AnalyticLobsterPSF


@pytest.fixture(scope="module")
def cal():
    return DetectionCalibration.from_caldb()


@pytest.mark.parametrize("factor", [1.1, 1.5])
def test_arm_response_of_a_source_beyond_the_field_follows_the_caldb_psf(cal, factor):
    """A source ``factor`` field half-widths from the centre: the light its arm puts on
    the chip, from the separable tables the fit uses, equals the CALDB model's own pixel
    integrals and a direct fine-grid integration of its density; it is a few percent of
    the source (significant for a bright one) and lies along the arm."""
    y_edges, z_edges = detector_grid(cal.teldef)
    half = 0.5 * (z_edges[-1] - z_edges[0])
    y0, z0 = 20.0, 0.5 * (z_edges[0] + z_edges[-1]) + factor * half
    # The fit may place a source there.
    (_, _), (_, zhi) = _bounds(y_edges, z_edges, DetectionParameters().margin)
    assert z0 < zhi
    ay, az = cal.teldef.det_to_angles(np.array([y0]), np.array([z0]))
    theta = float(np.hypot(ay, az)[0])
    yc = 0.5 * (y_edges[1:] + y_edges[:-1])
    for psf in cal.band_psfs(DEFAULT_BANDS, 2.0):
        image = psf.terms(y_edges, z_edges, [y0], [z0], theta).image(0)
        exact = psf.pixel_fractions(y_edges, z_edges, y0, z0, theta).sum()
        h = 0.5
        yy = np.arange(y_edges[0] + h / 2, y_edges[-1], h)
        zz = np.arange(z_edges[0] + h / 2, z_edges[-1], h)
        direct = psf.density(yy[:, None] - y0, zz[None, :] - z0, psf._key(theta)).sum() * h * h
        assert image.sum() == pytest.approx(exact, rel=1e-4)
        assert image.sum() == pytest.approx(direct, rel=1e-3)
        assert 0.01 < image.sum() < 0.5
        stripe = image[np.abs(yc - y0) < psf.fwhm(theta)].sum() / image.sum()
        assert stripe > 0.7


def _bounds(y_edges, z_edges, margin):
    return (y_edges[0] - margin, y_edges[-1] + margin), (z_edges[0] - margin, z_edges[-1] + margin)


def test_outside_field_is_the_grid_boundary():
    prob = simulate_problem(AnalyticLobsterPSF(), [], [], np.zeros((0, 1)), [0.01], rng=np.random.default_rng(0), n=64)
    e = grid(64)
    y = np.array([0.0, e[-1] - 1e-9, e[-1] + 1e-9, 0.0, e[0] - 1.0])
    z = np.array([0.0, 0.0, 0.0, e[-1] + 5.0, 0.0])
    assert list(outside_field(prob, y, z)) == [False, False, True, True, True]


def test_arm_coupling_links_an_out_of_field_source_to_the_sources_on_its_arms():
    psf = AnalyticLobsterPSF()
    prob = simulate_problem(psf, [], [], np.zeros((0, 1)), [0.01], rng=np.random.default_rng(0))
    w = prob.fwhm()
    # 0: out of field at z = 160; 1: in field on its arm (same y, far away);
    # 2: in field, off the arm; 3: in field, far from 1 and off any out-of-field arm.
    y = np.array([10.0, 10.0 + 0.5 * w, 10.0 + 3 * w, -60.0])
    z = np.array([160.0, -40.0, -40.0, 60.0])
    assert list(arm_coupled(prob, y, z, 0)) == [False, True, False, False]
    assert list(arm_coupled(prob, y, z, 1)) == [True, False, False, False]
    assert not np.any(arm_coupled(prob, y, z, 2))
    assert not np.any(arm_coupled(prob, y, z, 3))
    # The ML stage's neighbours include the coupling (far beyond the neighbour radius).
    state = MLState(y, z, np.zeros(4), np.ones((4, 1)), np.array([0.01]), 0.0, [])
    assert np.hypot(y[1] - y[0], z[1] - z[0]) > 3 * w
    assert list(neighbours(prob, state, 1, 1.0)) == [True, False, False, False]


def test_faint_source_on_the_arm_of_a_bright_out_of_field_one(cal):
    """A 150-count source on the arm of a 6000-count source whose spot lies 1 FWHM beyond
    the chip edge: the faint one is found in the field, the bright one is listed
    OUT_OF_FOV (and OFF_CHIP) with QF 0, and nothing else is listed in the field."""
    from mxt_pipeline.acceptance.detection import ValidationSetup
    from mxt_pipeline.acceptance.detection import simulate_problem as simulate
    from mxt_pipeline.detect.pipeline import detect_in_problem, source_table

    setup = ValidationSetup.from_calibration(cal)
    fwhm = setup.fwhm()
    yf, zf = 30.0, -20.0
    yb, zb = yf + 2.0, setup.z_edges[-1] + fwhm
    counts = np.array([150.0, 6000.0])[:, None] * setup.band_fractions[None, :]
    prob = simulate(setup, [yf, yb], [zf, zb], counts, np.random.default_rng(11))
    result = detect_in_problem(prob, setup.params)
    table = source_table(result, setup.bands, livetime=1000.0, to_radec=lambda y, z: (y * 0, z * 0), ra_nom=0.0,
                         dec_nom=0.0)  # fmt: skip
    oof = (np.asarray(table["FLAGS"]) & FLAG_OUT_OF_FOV) != 0
    assert oof.sum() == 1
    assert np.all(np.asarray(table["FLAGS"])[oof] & FLAG_OFF_CHIP) and np.all(np.asarray(table["QF"])[oof] == 0)
    assert table["DETZ"][oof][0] > setup.z_edges[-1] and abs(table["DETY"][oof][0] - yb) < 0.5 * fwhm
    inside = ~oof
    assert inside.sum() == 1
    assert np.hypot(table["DETY"][inside][0] - yf, table["DETZ"][inside][0] - zf) < 0.5 * fwhm


def test_out_of_fov_and_pair_flags_are_written_to_the_product_and_documented(tmp_path, fitsverify):
    """FLAGS 5 (OFF_CHIP | OUT_OF_FOV) and 8 (PAIR) survive the MXT-SOP-SKY writer, the
    file passes the spec validation and fitsverify, and docs/formats.md names both bits."""
    from pathlib import Path

    from mxt_pipeline.detect.srclist import FLAG_PAIR, empty_source_table
    from mxt_pipeline.io import read_product, validate_file
    from mxt_pipeline.io.srclist_product import write_srclist

    table = empty_source_table(2)
    for k, flags in enumerate([0, FLAG_OFF_CHIP | FLAG_OUT_OF_FOV, FLAG_PAIR]):
        table.add_row({"SRC_ID": k + 1, "RA": 10.0 + k, "DEC": 5.0, "ERR_R68": 20.0, "ERR_R90": 30.0, "RAWY": 100.0,
                       "RAWZ": 100.0 if flags != 5 else 300.0, "X": 1.0, "Y": 1.0, "OFFAXIS": 10.0,
                       "COUNTS": [10.0, 5.0], "COUNTS_ERR": [3.0, 2.0], "RATE": 0.1, "RATE_ERR": 0.01,
                       "RATE_BAND": [0.07, 0.03], "RATE_BAND_ERR": [0.01, 0.01], "DET_ML": 20.0,
                       "QF": 0 if flags == 5 else 3, "FLAGS": flags})  # fmt: skip
    path = write_srclist(tmp_path / "src.fits", table, DEFAULT_BANDS, obs_id="OOF", syserr_arcsec=25.0,
                         ml_threshold=10.0, tstart=0.0, tstop=1000.0)  # fmt: skip
    assert validate_file(path) == []
    res = fitsverify(path)
    assert res.ok, res.output
    src = read_product(path, "MXT_SOP_SKY").table("SRCLIST")
    assert list(src["FLAGS"]) == [0, 5, 8]
    doc = (Path(__file__).resolve().parents[2] / "docs" / "formats.md").read_text()
    assert "4 OUT_OF_FOV" in doc and "8 PAIR" in doc


def test_edge_source_is_refitted_outside_when_the_arm_says_so():
    """A source fitted just inside the edge where an out-of-field source's arm enters
    the chip is moved outside (lower C); a genuine in-field source near the edge stays."""
    from mxt_pipeline.detect.mlfit import MLParameters, fit_sources
    from mxt_pipeline.detect.outfield import relocate_edge_sources

    psf = AnalyticLobsterPSF(sigma=6.0, arm_gamma=12.0, fractions=(0.45, 0.25, 0.25, 0.05))
    rng = np.random.default_rng(3)
    w = 2.3548 * psf.sigma
    edge = grid(128)[-1]
    prob = simulate_problem(psf, [10.0], [edge + 1.2 * w], [[6000.0]], [0.01], rng=rng, n=128)
    inside = fit_sources(prob, [10.0], [edge - 0.7 * w], move=np.array([False]), counts=np.array([[500.0]]),
                         background=np.array([0.01]))  # fmt: skip
    assert not outside_field(prob, inside.y, inside.z)[0]
    moved = relocate_edge_sources(prob, inside, MLParameters())
    assert outside_field(prob, moved.y, moved.z)[0] and moved.cstat < inside.cstat
    assert abs(moved.y[0] - 10.0) < 0.5 * w
    # A real in-field source half a FWHM inside the edge keeps its place.
    prob2 = simulate_problem(psf, [10.0], [edge - 0.5 * w], [[600.0]], [0.01], rng=rng, n=128)
    fit = fit_sources(prob2, [10.0], [edge - 0.5 * w])
    kept = relocate_edge_sources(prob2, fit, MLParameters())
    assert not outside_field(prob2, kept.y, kept.z)[0] and kept.cstat == fit.cstat
