"""Output checks: schema, fitsverify, localization, ensemble thresholds."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from hypothesis import given
from hypothesis import strategies as st

from harness import checks as chk
from harness.results import Status

from .products import srclist_columns, write_events_file, write_srclist_file


def test_schema_check(tmp_path):
    good = write_events_file(tmp_path / "good.fits", n=30)
    assert chk.schema_check(good, "calibrate").status == Status.PASS
    # A product that breaks its schema is never written by the pipeline's writers: make
    # one by hand, as a faulty external tool would (time sort removed).
    import shutil

    from astropy.io import fits

    bad = tmp_path / "bad.fits"
    shutil.copyfile(good, bad)
    with fits.open(bad, mode="update") as hdul:
        hdul["EVENTS"].data["TIME"] = hdul["EVENTS"].data["TIME"][::-1].copy()
    res = chk.schema_check(bad, "calibrate")
    assert res.status == Status.FAIL
    assert "calibrate" in res.message and "EVENTS/TIME" in res.message and "sort" in res.message.lower()


def test_fitsverify_check(tmp_path, fitsverify):
    good = write_events_file(tmp_path / "good.fits", n=10)
    assert chk.fitsverify_check(good, "calibrate").status == Status.PASS
    raw = bytearray(good.read_bytes())
    i = raw.find(b"TUNIT1  = 's       '")
    raw[i + 19] = 0x01  # a non-text character where the closing quote was
    bad = tmp_path / "bad.fits"
    bad.write_bytes(bytes(raw))
    res = chk.fitsverify_check(bad, "calibrate")
    assert res.status == Status.FAIL and res.figures["errors"] >= 1 and "calibrate" in res.message


def test_fitsverify_absent_is_a_skip(tmp_path, monkeypatch):
    import mxt_pipeline.io.fitsverify as fv

    monkeypatch.setattr(fv, "fitsverify_available", lambda: False)
    good = write_events_file(tmp_path / "good.fits", n=3)
    assert chk.fitsverify_check(good, "x").status == Status.SKIP


@given(ra1=st.floats(0, 360), dec1=st.floats(-89.9, 89.9), ra2=st.floats(0, 360), dec2=st.floats(-89.9, 89.9))
def test_separation_matches_astropy(ra1, dec1, ra2, dec2):
    ref = SkyCoord(ra1, dec1, unit="deg").separation(SkyCoord(ra2, dec2, unit="deg")).arcsec
    assert chk.angular_separation_arcsec(ra1, dec1, ra2, dec2) == pytest.approx(ref, abs=1e-6)


def _truth(tmp_path, sources):
    p = tmp_path / "truth.json"
    p.write_text(json.dumps({"sources": sources}))
    return p


def test_localization(tmp_path):
    arcsec = 1 / 3600
    cols = srclist_columns([150.0 + 20 * arcsec / np.cos(np.radians(30)), 150.5, 151.5], [30.0, 30.0 + 50 * arcsec, 31.0],
                           [30.0, 40.0, 20.0])  # fmt: skip
    src = write_srclist_file(tmp_path / "src.fits", cols)
    truth = _truth(tmp_path, [
        {"name": "a", "ra": 150.0, "dec": 30.0},  # found 20" away, R90 30": pass
        {"name": "b", "ra": 150.5, "dec": 30.0},  # found 50" away, R90 40": fail
        {"name": "c", "ra": 149.0, "dec": 29.0},  # not detected: fail
        {"name": "d", "ra": 10.0, "dec": 10.0, "in_fov": False},  # outside: ignored
    ])  # fmt: skip
    res = chk.localization_check(src, truth, "three", {"r90_factor": 1.0, "match_radius_arcsec": 600, "max_false": 0})
    by = {r.name: r for r in res}
    assert by["three:source a"].status == Status.PASS
    assert by["three:source a"].figures["offset_arcsec"] == pytest.approx(20.0, abs=0.05)
    assert by["three:source b"].status == Status.FAIL
    assert "position offset 50.0\"" in by["three:source b"].message and "ERR_R90 40.0\"" in by["three:source b"].message
    assert by["three:source c"].status == Status.FAIL and "not detected" in by["three:source c"].message
    assert "three:source d" not in by
    assert by["three:false detections"].status == Status.FAIL and by["three:false detections"].figures["n_false"] == 1
    res2 = chk.localization_check(src, truth, "three", {"r90_factor": 1.5, "match_radius_arcsec": 600, "max_false": 1})
    assert {r.name: r.status for r in res2}["three:source b"] == Status.PASS


def test_localization_empty_field(tmp_path):
    src = write_srclist_file(tmp_path / "src.fits", srclist_columns([], [], []))
    res = chk.localization_check(src, {"sources": []}, "empty", {"max_false": 0})
    assert [r.status for r in res] == [Status.PASS]


def test_ensemble_bounds():
    summary = {"r90_coverage": 0.88, "false_per_field": 0.9, "median_offset_arcsec": None}
    res = chk.ensemble_check(summary, {"r90_coverage": {"min": 0.8, "max": 0.97}, "false_per_field": {"max": 0.5},
                                       "median_offset_arcsec": {"max": 60}, "absent": {"min": 1}})  # fmt: skip
    st_ = {r.name: r.status for r in res}
    assert st_ == {"campaign:r90_coverage": Status.PASS, "campaign:false_per_field": Status.FAIL,
                   "campaign:median_offset_arcsec": Status.FAIL, "campaign:absent": Status.FAIL}  # fmt: skip
    assert "false_per_field = 0.9 outside [-inf, 0.5]" in [r.message for r in res][1]


def test_ensemble_nominal_proportion_allows_for_the_campaign_size():
    bounds = {"r90_coverage": {"nominal": 0.9, "level": 0.99, "n": "n_found"}}
    # 8 of 8 inside R90: consistent with 90 % (0.9**8 = 43 %).
    (r,) = chk.ensemble_check({"r90_coverage": 1.0, "n_found": 8}, bounds)
    assert r.status == Status.PASS and r.figures["k"] == 8 and r.figures["interval_lo"] < 0.9
    # 3 of 10: radii far too small.
    (r,) = chk.ensemble_check({"r90_coverage": 0.3, "n_found": 10}, bounds)
    assert r.status == Status.FAIL and "3/10" in r.message
    # 200 of 200: radii too large (the interval excludes 0.9).
    (r,) = chk.ensemble_check({"r90_coverage": 1.0, "n_found": 200}, bounds)
    assert r.status == Status.FAIL and r.figures["interval_lo"] > 0.9
    # No count to judge by, or nothing found: a failure, not a pass.
    assert chk.ensemble_check({"r90_coverage": 1.0}, bounds)[0].status == Status.FAIL
    assert chk.ensemble_check({"r90_coverage": 0.0, "n_found": 0}, bounds)[0].status == Status.FAIL
