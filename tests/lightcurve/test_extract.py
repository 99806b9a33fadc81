"""Extraction: region sizing from the PSF, region areas, and rates from simulated L2 events."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from mxt_pipeline import constants as C
from mxt_pipeline.datamodel import GTI
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.lightcurve.extract import (
    DEFAULT_EEF_FRACTION,
    SourceRegion,
    density_eef,
    extract_light_curves,
    gaussian_spot_eef,
    select_events,
    sky_to_raw,
    source_events,
    source_region,
)

from .simulated import REGION, SKY_OFFSET


def test_default_region_encloses_the_documented_fraction():
    """Without a PSF the CALDB's is used: the default circle holds half of it."""
    from mxt_pipeline.caldb.products import CalibrationSet

    region = source_region()
    psf = CalibrationSet.from_caldb(None, codes=("PSF",)).psf
    assert region.psf_fraction == pytest.approx(DEFAULT_EEF_FRACTION, rel=1e-6)
    assert psf.encircled_fraction(region.radius, 1.5, 0.0, n=1024)[0] == pytest.approx(DEFAULT_EEF_FRACTION, abs=2e-3)
    assert source_region(psf).radius == pytest.approx(region.radius)
    assert (region.bkg_inner, region.bkg_outer) == pytest.approx((3 * region.radius, 5 * region.radius))


def test_density_eef_of_a_gaussian_matches_the_analytic_fraction():
    """Polar integration of a circular Gaussian density against 1 - exp(-r^2 / 2 s^2)."""
    s = 6.0

    def density(dy, dz, energy, theta):
        return np.exp(-0.5 * (dy**2 + dz**2) / s**2) / (2 * np.pi * s**2)

    eef = density_eef(density)
    for r in (1.0, 3.0, 6.0, 12.0, 30.0):
        assert eef(r) == pytest.approx(-np.expm1(-0.5 * (r / s) ** 2), abs=1e-4)
    assert eef(0.0) == 0.0 and eef(300.0) == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(MXTInputError):
        density_eef(lambda dy, dz, e, t: 2.0 * density(dy, dz, e, t))


def test_region_from_a_psf_callable_object_or_radius():
    eef = gaussian_spot_eef(10.0)
    r = source_region(eef, fraction=0.5)
    assert eef(r.radius) == pytest.approx(0.5, abs=1e-6)

    class Psf:
        def encircled_fraction(self, radius):
            return 1.0 - 1.0 / (1.0 + (radius / 5.0) ** 2)  # a King-like profile

    r = source_region(Psf(), fraction=0.75)
    assert r.radius == pytest.approx(5.0 * np.sqrt(3.0), rel=1e-6)
    r = source_region(radius=7.0, psf_fraction=0.6)
    assert (r.radius, r.psf_fraction) == (7.0, 0.6)
    assert source_region(eef, radius=7.0).psf_fraction == pytest.approx(eef(7.0))
    with pytest.raises(MXTInputError):
        source_region("not a psf")
    with pytest.raises(MXTInputError):
        source_region(fraction=1.0)
    with pytest.raises(MXTInputError):
        SourceRegion(radius=5.0, psf_fraction=0.8, bkg_inner=4.0, bkg_outer=9.0)


def _fake_table(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    ry = rng.uniform(-0.5, 255.5, n)
    rz = rng.uniform(-0.5, 255.5, n)
    return Table({"TIME": np.sort(rng.uniform(0, 100, n)), "X": ry + SKY_OFFSET, "Y": rz + SKY_OFFSET,
                  "RAWY": np.rint(ry), "RAWZ": np.rint(rz), "ENERGY": rng.uniform(0.1, 12, n),
                  "PATTERN": rng.integers(0, 14, n), "STATUS": rng.choice([0, 0, 0, 4, 8, 1, 64], n)})  # fmt: skip


def _lens(r1: float, r2: float, d: float) -> float:
    """Area of the intersection of two circles of radii r1, r2 with centres d apart."""
    a1 = r1**2 * np.arccos((d * d + r1 * r1 - r2 * r2) / (2 * d * r1))
    a2 = r2**2 * np.arccos((d * d + r2 * r2 - r1 * r1) / (2 * d * r2))
    return a1 + a2 - 0.5 * np.sqrt((-d + r1 + r2) * (d + r1 - r2) * (d - r1 + r2) * (d + r1 + r2))


def _chord_band(radius: float, half: float) -> float:
    """Area of a disc of ``radius`` within ``|y| < half`` of a diameter."""
    return 2.0 * (half * np.sqrt(radius**2 - half**2) + radius**2 * np.arcsin(half / radius))


def test_region_areas_are_geometric():
    """Region areas equal their closed forms: circle and annulus exactly (polar midpoint
    rule), the cuts (cross arms, another source's circle, the chip edge) within 0.2 %."""
    table = _fake_table()
    affine = sky_to_raw(table)
    np.testing.assert_allclose(affine[:2], np.eye(2), atol=0.01)  # sky = raw + offset
    sel = np.ones(len(table), bool)
    src = {"SRC_ID": 1, "RA": 0.0, "DEC": 0.0, "X": 128.0 + SKY_OFFSET, "Y": 128.0 + SKY_OFFSET}
    region = SourceRegion(radius=10.0, psf_fraction=0.8, bkg_inner=30.0, bkg_outer=50.0, exclude_arms=False)
    se = source_events(table, sel, src, region, np.empty((0, 2)), affine)
    assert se.src_area == pytest.approx(np.pi * 100.0, rel=1e-9)
    assert se.bkg_area == pytest.approx(np.pi * (2500.0 - 900.0), rel=1e-9)
    assert se.area_ratio == pytest.approx(100.0 / 1600.0, rel=1e-9)
    assert se.src_area_fraction == pytest.approx(1.0, rel=1e-12)
    # Cutting the cross arms removes, from the annulus, two perpendicular bands of half
    # width 10 through the source (their square overlap lies inside the inner hole).
    arms = SourceRegion(radius=10.0, psf_fraction=0.8, bkg_inner=30.0, bkg_outer=50.0)
    with_arms = source_events(table, sel, src, arms, np.empty((0, 2)), affine)
    strips = 2 * (_chord_band(50.0, 10.0) - _chord_band(30.0, 10.0))
    assert with_arms.bkg_area == pytest.approx(se.bkg_area - strips, rel=2e-3)
    # Events in the regions are those within the radii.
    r = np.hypot(np.asarray(table["X"]) - src["X"], np.asarray(table["Y"]) - src["Y"])
    assert se.src_times.size == np.count_nonzero(r < 10.0)
    assert se.bkg_times.size == np.count_nonzero((r >= 30.0) & (r < 50.0))
    # Another source 40 pixels away: its exclusion circle (radius 15) straddles both
    # edges of the annulus, so what is cut is the circle's part between radii 30 and 50.
    other = np.array([[128.0 + 40.0 + SKY_OFFSET, 128.0 + SKY_OFFSET]])
    cut = source_events(table, sel, src, region, other, affine)
    removed = _lens(50.0, 15.0, 40.0) - _lens(30.0, 15.0, 40.0)
    assert cut.bkg_area == pytest.approx(se.bkg_area - removed, rel=2e-3)
    # A source 5.5 pixels from the chip edge (RAW -0.5) keeps the disc minus a
    # circular segment of height 4.5.
    edge = dict(src, X=5.0 + SKY_OFFSET)
    h = 10.0 - 5.5
    segment = 100.0 * np.arccos(1 - h / 10.0) - (10.0 - h) * np.sqrt(2 * 10.0 * h - h * h)
    on_edge = source_events(table, sel, edge, region, np.empty((0, 2)), affine)
    assert on_edge.src_area_fraction == pytest.approx(1.0 - segment / (np.pi * 100.0), rel=2e-3)
    assert on_edge.src_area == pytest.approx(np.pi * 100.0 - segment, rel=2e-3)


@settings(max_examples=20, deadline=None)
@given(
    x=st.floats(-20.0, 275.0),
    y=st.floats(-20.0, 275.0),
    radius=st.floats(1.0, 20.0),
    inner=st.floats(1.0, 3.0),
    width=st.floats(0.5, 2.0),
)
def test_region_area_properties(x, y, radius, inner, width):
    """Any source position and region size: areas are non-negative, at most the full
    circle and annulus, exact when the regions lie wholly on the chip, and the reported
    on-chip fraction of the source circle is its area over the full circle."""
    table = _fake_table(n=50)
    affine = np.array([[1.0, 0.0], [0.0, 1.0], [-SKY_OFFSET, -SKY_OFFSET]])  # sky = raw + offset
    region = SourceRegion(radius=radius, psf_fraction=0.5, bkg_inner=inner * radius,
                          bkg_outer=(inner + width) * radius, exclude_arms=False)  # fmt: skip
    src = {"SRC_ID": 1, "RA": 0.0, "DEC": 0.0, "X": x + SKY_OFFSET, "Y": y + SKY_OFFSET}
    se = source_events(table, np.ones(len(table), bool), src, region, np.empty((0, 2)), affine)
    full_src = np.pi * radius**2
    full_bkg = np.pi * (region.bkg_outer**2 - region.bkg_inner**2)
    assert 0.0 <= se.src_area <= full_src * (1 + 1e-12)
    assert 0.0 <= se.bkg_area <= full_bkg * (1 + 1e-12)
    assert se.src_area == pytest.approx(se.src_area_fraction * full_src, rel=1e-12, abs=1e-12)
    margin = min(x + 0.5, y + 0.5, C.N_PIX - 0.5 - x, C.N_PIX - 0.5 - y)
    if margin > radius:
        assert se.src_area == pytest.approx(full_src, rel=1e-9)
    if margin > region.bkg_outer:
        assert se.bkg_area == pytest.approx(full_bkg, rel=1e-9)


def test_event_selection():
    table = _fake_table()
    gti = GTI([0.0], [50.0])
    ok = select_events(table, gti, e_min=0.5, e_max=8.0)
    e = np.asarray(table["ENERGY"])
    want = (e >= 0.5) & (e < 8.0) & (np.asarray(table["PATTERN"]) <= 12)
    want &= np.isin(np.asarray(table["STATUS"]), [0, 4, 8]) & (np.asarray(table["TIME"]) < 50.0)
    np.testing.assert_array_equal(ok, want)
    with pytest.raises(MXTInputError, match="ENERGY"):
        select_events(Table({"TIME": [1.0]}), gti)


def test_constant_source_rate_recovered(observation):
    """Source 2 is constant at 0.3 counts/s (simulated with the default Gaussian spot):
    background-subtracted, PSF-corrected rates agree with it (chi-square, p > 0.001)."""
    events, srclist = observation
    (lc,) = extract_light_curves(events, srclist, binning_method="fixed", bin_width=500.0, src_ids=[2],
                                 region=REGION)
    assert lc.meta["SRC_ID"] == 2 and lc.meta["BINNING"] == "FIXED"
    sigma = np.where(lc.rate < 0.3, lc.err_hi, lc.err_lo)
    chi2 = np.sum(((lc.rate - 0.3) / sigma) ** 2)
    assert stats.chi2.sf(chi2, len(lc)) > 0.001
    mean = np.sum(lc.rate * lc.exposure) / lc.exposure.sum()
    assert mean == pytest.approx(0.3, rel=0.08)
    # The background estimate (flat 0.05 counts/s over the chip) scaled to the source
    # circle is unbiased: within 3 sigma of its truth.  A bin may hold no background
    # count (about 3 expected per bin): its estimate is then 0, finite, never NaN.
    assert np.all(np.isfinite(lc.bkg_rate)) and np.all(lc.bkg_rate >= 0)
    src_area = np.pi * lc.meta["SRCRAD"] ** 2 * lc.meta["SRCAREAF"]
    truth = 0.05 * src_area / C.N_PIX**2
    b_mean = np.sum(lc.bkg_rate * lc.exposure) / lc.exposure.sum()
    b_sigma = lc.meta["AREARAT"] * np.sqrt(lc.bkg_counts.sum()) / lc.exposure.sum()
    assert lc.bkg_counts.sum() > 30
    assert abs(b_mean - truth) < 3 * b_sigma


@pytest.mark.parametrize("method", ["snr", "blocks"])
def test_grb_light_curve_decays(observation, method):
    events, srclist = observation
    (lc,) = extract_light_curves(events, srclist, binning_method=method, target_snr=4.0, src_ids=[1],
                                 region=REGION)
    assert len(lc) >= 4
    rho = stats.spearmanr(lc.time, lc.rate).statistic
    assert rho < -0.8
    # Blocks and S/N bins cover the good time; none is a pure gap.
    assert np.all(lc.fracexp > 0)
    assert lc.exposure.sum() == pytest.approx(events.gti.exposure, rel=1e-9)


def test_extraction_input_errors(observation):
    events, srclist = observation
    with pytest.raises(MXTInputError, match="SRC_ID"):
        extract_light_curves(events, Table({"RA": [1.0]}))
    with pytest.raises(MXTInputError, match="binning"):
        extract_light_curves(events, srclist, binning_method="weekly")
