"""X-band bricks that need no calibration: burst identification and the field image."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table
from hypothesis import given
from hypothesis import strategies as st

from mxt_pipeline.datamodel import GTI, EventList
from mxt_pipeline.detect.bands import EnergyBand
from mxt_pipeline.detect.srclist import empty_source_table
from mxt_pipeline.geometry import angular_separation_arcsec as angular_distance_arcsec
from mxt_pipeline.pipelines import BrickStatus
from mxt_pipeline.pipelines.bricks.burst import BURST, match_burst
from mxt_pipeline.pipelines.bricks.codecs import SourceList
from mxt_pipeline.pipelines.bricks.images import IMAGE_PREVIEW, sky_image
from mxt_pipeline.pipelines.runtime import BurstPosition, Target


@given(st.floats(0, 360), st.floats(-89.9, 89.9), st.floats(0, 360), st.floats(-89.9, 89.9))
def test_angular_distance_matches_astropy(ra1, dec1, ra2, dec2):
    ref = SkyCoord(ra1, dec1, unit="deg").separation(SkyCoord(ra2, dec2, unit="deg")).arcsec
    assert angular_distance_arcsec(ra1, dec1, ra2, dec2) == pytest.approx(ref, abs=1e-6, rel=1e-9)


def _sources(rows):
    t = empty_source_table(2)
    for ra, dec, r90, ml in rows:
        t.add_row({"SRC_ID": len(t) + 1, "RA": ra, "DEC": dec, "ERR_R68": r90 / 1.6, "ERR_R90": r90, "RAWY": 1, "RAWZ": 1,
                   "X": 256.5, "Y": 256.5, "OFFAXIS": 0, "COUNTS": [10, 5], "COUNTS_ERR": [3, 2], "RATE": 0.1,
                   "RATE_ERR": 0.01, "DET_ML": ml, "QF": 3})  # fmt: skip
    return t


def test_match_burst_rules():
    # Trigger at (100, 20) with 2' radius. Source 1 at 1' (compatible, DET_ML 30), source 2 at
    # 3' (compatible through the 1.5 factor: 1.5*hypot(120, 60) = 201" > 180", DET_ML 80),
    # source 3 at 10' (not compatible, the brightest).
    d = 1 / 60
    t = _sources([(100 + d / np.cos(np.radians(20)), 20, 60, 30), (100, 20 + 3 * d, 60, 80), (100, 20 + 10 * d, 60, 500)])
    idx, dist = match_burst(t, 100.0, 20.0, 120.0, 1.5)
    assert idx == 1
    np.testing.assert_allclose(dist, [60, 180, 600], rtol=1e-3)
    assert match_burst(t, 100.0, 20.0, 120.0, 0.5)[0] == 0  # only the closest fits a tight match
    assert match_burst(t, 200.0, -20.0, 120.0, 1.5)[0] is None
    assert match_burst(_sources([]), 0, 0, 1, 1)[0] is None
    # A source fitted off the chip (FLAGS OFF_CHIP) is never the burst: the next one is.
    t["FLAGS"][1] = 1
    assert match_burst(t, 100.0, 20.0, 120.0, 1.5)[0] == 0
    for flag in (2, 4, 4 | 8):  # masked area, out of the field (with or without PAIR)
        t["FLAGS"][1] = flag
        assert match_burst(t, 100.0, 20.0, 120.0, 1.5)[0] == 0
    t["FLAGS"][1] = 8  # the fainter member of a confused pair is an in-field source
    assert match_burst(t, 100.0, 20.0, 120.0, 1.5)[0] == 1


def _events(n=2000, seed=0, ra_nom=100.0, dec_nom=20.0):
    rng = np.random.default_rng(seed)
    t = EventList.empty_table()
    cols = {c: np.zeros(n, dtype=t[c].dtype) for c in t.colnames}
    cols["TIME"] = np.sort(rng.uniform(0, 1000, n))
    cols["X"] = rng.normal(300, 3, n).astype(np.float32)
    cols["Y"] = rng.normal(200, 3, n).astype(np.float32)
    cols["ENERGY"] = rng.uniform(0.3, 9, n).astype(np.float32)
    cols["MULTIPLICITY"] = np.ones(n, np.int16)
    meta = {"OBS_ID": "00000042", "RA_NOM": ra_nom, "DEC_NOM": dec_nom, "OBJECT": "GRB"}
    return EventList(Table(cols), gti=GTI([0.0], [1000.0]), meta=meta)


def test_burst_brick_end_to_end(tmp_path):
    import json

    ev = _events()
    src = SourceList(_sources([(100.01, 20.0, 30, 50)]), [EnergyBand(0.2, 2), EnergyBand(2, 10)], "00000042", 25.0, 9.0)
    target = Target("00000042", "XBAND-CP", burst_id="sb1", burst_position=BurstPosition(100.0, 20.0, 5.0))
    res = BURST.run_standalone({"srclist": src, "events": ev, "target": target}, out_dir=tmp_path)
    doc = json.loads((tmp_path / "mxt_burst_00000042.json").read_text())
    assert res.status is BrickStatus.SUCCESS and doc["detected"] and doc["source"]["src_id"] == 1
    assert doc["burst_id"] == "sb1" and doc["trigger"]["origin"] == "trigger"
    assert doc["source"]["offset_from_trigger_arcsec"] == pytest.approx(0.01 * np.cos(np.radians(20)) * 3600, rel=1e-4)
    # Without a trigger position: the nominal pointing; a source far away is not the burst.
    far = SourceList(_sources([(101.0, 20.0, 30, 50)]), src.bands, "00000042", 25.0, 9.0)
    res = BURST.run_standalone({"srclist": far, "events": ev}, {"default_radius_arcmin": 20}, tmp_path / "b")
    doc = json.loads((tmp_path / "b" / "mxt_burst_00000042.json").read_text())
    assert not doc["detected"] and doc["trigger"]["origin"] == "pointing"
    assert res.status is BrickStatus.DEGRADED and "no detected source" in res.warnings[0]


def test_sky_image_counts():
    rng = np.random.default_rng(3)
    x, y = rng.uniform(90, 420, 5000), rng.uniform(90, 420, 5000)
    img, xe, ye = sky_image(x, y, 160.0, 2.0)
    assert img.shape == (160, 160) and xe[0] == 96.5 and xe[-1] == 416.5
    inside = (x >= 96.5) & (x < 416.5) & (y >= 96.5) & (y < 416.5)
    assert img.sum() == inside.sum()
    ref, _, _ = np.histogram2d(y, x, bins=(ye, xe))
    np.testing.assert_array_equal(img, ref)


def test_image_preview_png(tmp_path):
    ev = _events()
    src = SourceList(_sources([(100.0, 20.0, 30, 50)]), [EnergyBand(0.2, 2), EnergyBand(2, 10)], "00000042", 25.0, 9.0)
    res = IMAGE_PREVIEW.run_standalone({"events": ev, "srclist": src}, {"e_min": 2.0}, tmp_path)
    png = (tmp_path / "mxt_img_00000042.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert res.metrics["n_events_shown"] == int(np.sum(ev["ENERGY"] >= 2.0))
    again = IMAGE_PREVIEW.run_standalone({"events": ev, "srclist": src}, {"e_min": 2.0}, tmp_path / "2")
    assert again.outputs[0].sha256 == res.outputs[0].sha256  # deterministic bytes (resume gives the same file)
