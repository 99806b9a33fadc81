"""What a reprocessing changed: source matching, angular distances, light-curve comparison."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from hypothesis import given
from hypothesis import strategies as st

from mxt_pipeline.console.diff import angular_distance_arcsec, diff_collections, match_sources
from mxt_pipeline.console.scan import SourceRow
from tests.console.fakeroot import make_collection

_ra = st.floats(0, 360, allow_nan=False, exclude_max=True)
_dec = st.floats(-89.9, 89.9, allow_nan=False)


@given(_ra, _dec, _ra, _dec)
def test_angular_distance_matches_astropy(ra1, dec1, ra2, dec2):
    ref = SkyCoord(ra1 * u.deg, dec1 * u.deg).separation(SkyCoord(ra2 * u.deg, dec2 * u.deg)).arcsec
    assert angular_distance_arcsec(ra1, dec1, ra2, dec2) == pytest.approx(ref, abs=1e-6, rel=1e-9)


@given(_ra, _dec, st.floats(0, 100), st.floats(0, 2 * np.pi))
def test_small_offsets_are_measured_to_the_milliarcsecond(ra, dec, offset_arcsec, angle):
    c = SkyCoord(ra * u.deg, dec * u.deg)
    moved = c.directional_offset_by(angle * u.rad, offset_arcsec * u.arcsec)
    got = angular_distance_arcsec(ra, dec, moved.ra.deg, moved.dec.deg)
    assert got == pytest.approx(offset_arcsec, abs=1e-3)


_src = st.builds(lambda i, ra, dec: SourceRow(i, ra, dec, 30.0, 50.0), st.integers(1, 99),
                 st.floats(10, 10.2), st.floats(20, 20.2))  # fmt: skip


@given(st.lists(_src, max_size=6), st.lists(_src, max_size=6), st.floats(1, 2000))
def test_matching_uses_each_source_once_within_the_radius(new, old, radius):
    changes = match_sources(new, old, radius)
    matched = [c for c in changes if c.kind == "matched"]
    assert all(c.moved_arcsec <= radius for c in matched)
    assert sorted(map(id, [c.new for c in changes if c.new])) == sorted(map(id, new))
    assert sorted(map(id, [c.old for c in changes if c.old])) == sorted(map(id, old))
    for c in matched:
        assert c.moved_arcsec == pytest.approx(angular_distance_arcsec(c.new.ra, c.new.dec, c.old.ra, c.old.dec))


def test_matching_prefers_the_closest_pairs():
    a_new, b_new = SourceRow(1, 10.0, 20.0, 30, 9), SourceRow(2, 10.01, 20.0, 30, 9)
    a_old = SourceRow(1, 10.0, 20.0 + 1 / 3600, 30, 9)  # 1" from a_new, ~34" from b_new
    changes = match_sources([b_new, a_new], [a_old], 120.0)
    m = [c for c in changes if c.kind == "matched"]
    assert len(m) == 1 and m[0].new is a_new and m[0].moved_arcsec == pytest.approx(1.0, abs=1e-6)
    assert [c.kind for c in changes if c.kind != "matched"] == ["new"]


def _lc(path, rate):
    cols = [fits.Column("TIME", "D", array=np.arange(5.0)), fits.Column("RATE", "E", array=np.asarray(rate, float))]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="RATE")]).writeto(path)


def test_diff_of_two_collections(tmp_path):
    old = make_collection(tmp_path, obs_id="G1", sources=[(1, 100.0, 30.0, 25.0, 400.0), (2, 101.0, 30.0, 40.0, 20.0)])
    new = make_collection(tmp_path, obs_id="G1", counter=2, caldb_version="20260101-aaaaaa",
                          sources=[(1, 100.0, 30.0 + 2 / 3600, 60.0, 410.0)])  # fmt: skip
    _lc(old / "mxt_lc_G1_src1.fits", [1, 2, 3, 4, 5])
    _lc(new / "mxt_lc_G1_src1.fits", [1, 2, 3, 4, 9])
    _lc(old / "mxt_lc_G1_src2.fits", [1, 1, 1, 1, 1])
    d = diff_collections(new, old)
    first = next(c for c in d.sources if c.kind == "matched")
    assert first.moved_arcsec == pytest.approx(2.0, abs=1e-6)
    assert first.r90_change == pytest.approx(35.0) and first.det_ml_change == pytest.approx(10.0)
    assert [c.kind for c in d.sources] == ["matched", "gone"]
    lcs = {x["file"]: x for x in d.light_curves}
    assert not lcs["mxt_lc_G1_src1.fits"]["identical"] and any("RATE" in line for line in lcs["mxt_lc_G1_src1.fits"]["lines"])
    assert lcs["mxt_lc_G1_src2.fits"]["summary"] == "light curve gone"


def test_identical_light_curves_are_identical(tmp_path):
    old = make_collection(tmp_path, obs_id="G2")
    new = make_collection(tmp_path, obs_id="G2", counter=2)
    _lc(old / "mxt_lc_G2_src1.fits", [1, 2, 3, 4, 5])
    _lc(new / "mxt_lc_G2_src1.fits", [1, 2, 3, 4, 5])
    assert diff_collections(new, old).light_curves[0]["identical"]
