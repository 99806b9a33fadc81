"""Science checks (harness/science.py): the clean golden products pass, and each check fails,
by name, on a product perturbed the way a realistic fault would perturb it.

The products are read from the blessed goldens ``sky_edges`` and ``gti_blocks`` (no
pipeline runs: each test costs the reading of a few small FITS files).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.stats import poisson_conf_interval

from harness import science as sci
from harness.config import load_config, repo_root
from harness.results import Status
from mxt_pipeline.datamodel import GTI
from mxt_pipeline.io import read_product

GOLDEN = repo_root() / "golden"
pytestmark = pytest.mark.skipif(not (GOLDEN / "sky_edges").is_dir() or not (GOLDEN / "gti_blocks").is_dir(),
                                reason="the sky_edges and gti_blocks goldens are not in this checkout")  # fmt: skip


@pytest.fixture(scope="module")
def config():
    return dict(load_config().raw.get("science") or {})


def _truth(name: str) -> dict:
    return json.loads((GOLDEN / name / "input" / "truth.json").read_text(encoding="utf-8"))


def _product(name: str, brick: str, port: str, content: str, index: int = 0):
    folder = GOLDEN / name / "expected" / brick
    doc = json.loads((folder / "OUTPUTS.json").read_text(encoding="utf-8"))
    return read_product(folder / doc["ports"][port][index]["path"], content)


def _failing(results, check: str) -> list:
    return [r for r in results if r.status == Status.FAIL and f":{check}:" in r.name]


def _statuses(results) -> set:
    return {r.status for r in results}


@pytest.mark.parametrize("name", ["sky_edges", "gti_blocks"])
def test_clean_goldens_pass_every_listed_check(name, config):
    wanted = config["datasets"][name]
    results = sci.science_checks(name, GOLDEN / name, {}, config, wanted)
    assert results and _statuses(results) == {Status.PASS}, [r.message for r in results if r.status != Status.PASS]
    assert {r.name.split(":")[1] for r in results} == set(wanted)


def test_unknown_check_is_a_failure(config):
    res = sci.science_checks("sky_edges", GOLDEN / "sky_edges", {}, config, ["positions", "bogus"])
    assert len(res) == 1 and res[0].status == Status.FAIL and "bogus" in res[0].message


# ------------------------------------------------------------------------------------
# Positions across RA 0/360
# ------------------------------------------------------------------------------------


def test_sources_straddle_ra_zero():
    """The golden is what it claims: sources on both sides of RA 0/360, at Dec > 80."""
    ras = [s["ra"] for s in _truth("sky_edges")["sources"]]
    assert min(ras) < 5.0 and max(ras) > 355.0
    assert all(s["dec"] > 80.0 for s in _truth("sky_edges")["sources"])


@pytest.mark.parametrize("fault", ["negative", "naive_mean", "swapped_sign"])
def test_positions_fail_on_a_wrong_ra_wrap(fault, config):
    sky = _product("sky_edges", "detect", "srclist", "MXT_SOP_SKY")
    tab = sky.table("SRCLIST")
    truth = _truth("sky_edges")
    assert _statuses(sci.positions_check(tab, truth, "sky_edges", config)) == {Status.PASS}
    ra = np.asarray(tab["RA"], float)
    soft = int(np.argmin(np.abs(((ra - 1.4879) + 180) % 360 - 180)))
    if fault == "negative":  # RA of the source east of 0 given as 1.5 - 360 instead of 1.5
        ra[soft] -= 360.0
    elif fault == "naive_mean":  # averaged across the seam without wrapping: (1.5 + 359.9) / 2
        ra[soft] = 0.5 * (ra[soft] + 359.9)
    else:  # RA offset applied with the wrong sign across the seam
        ra[soft] = 359.9 - (ra[soft] + 360.0 - 359.9)
    tab["RA"] = ra
    bad = _failing(sci.positions_check(tab, truth, "sky_edges", config), "positions")
    assert [r.name for r in bad] == ["sky_edges:positions:SOFT"]
    assert "SOFT" in bad[0].message


def test_positions_use_the_great_circle_distance(config):
    """At Dec 84 a 1.9 deg difference in RA is 12' on the sky: the check must not read RA
    differences as distances.  Move SOFT by 20" in RA (0.053 deg of RA here): it passes
    its 31" R90, where a plain RA difference (191") would fail it."""
    sky = _product("sky_edges", "detect", "srclist", "MXT_SOP_SKY")
    tab = sky.table("SRCLIST")
    truth = _truth("sky_edges")
    soft = next(s for s in truth["sources"] if s["name"] == "SOFT")
    i = int(np.argmin(np.abs(np.asarray(tab["RA"], float) - soft["ra"])))
    tab["RA"][i] = soft["ra"] + 20.0 / 3600.0 / np.cos(np.radians(soft["dec"]))
    tab["DEC"][i] = soft["dec"]
    res = [r for r in sci.positions_check(tab, truth, "sky_edges", config) if r.name.endswith("SOFT")]
    assert res[0].status == Status.PASS
    assert res[0].figures["offset_arcsec"] == pytest.approx(20.0, rel=1e-3)


# ------------------------------------------------------------------------------------
# Per-band counts
# ------------------------------------------------------------------------------------


def test_band_counts_fail_when_two_bands_are_swapped(config):
    sky = _product("sky_edges", "detect", "srclist", "MXT_SOP_SKY")
    tab, bands, sb = sky.table("SRCLIST"), sky.table("BANDS"), sky.table("SRCBANDS")
    truth = _truth("sky_edges")
    assert _statuses(sci.band_counts_check(tab, bands, sb, truth, "sky_edges", config)) == {Status.PASS}
    swapped = sb.copy()
    for sid in np.unique(sb["SRC_ID"]):
        rows = np.flatnonzero(sb["SRC_ID"] == sid)
        for col in ("COUNTS", "COUNTS_ERR", "RATE", "RATE_ERR"):
            swapped[col][rows] = np.asarray(sb[col])[rows[::-1]]
    bad = _failing(sci.band_counts_check(tab, bands, swapped, truth, "sky_edges", config), "band_counts")
    names = {r.name.split(":")[2] for r in bad}
    # The soft and the hard source fail in both bands, each named with its band.
    for src in ("SOFT", "HARD"):
        assert {f"{src} band 0.2-2 keV", f"{src} band 2-10 keV"} <= names


def test_band_counts_fail_when_one_band_moves(config):
    """One band's counts changed by a third (a background subtracted in the wrong band)."""
    sky = _product("sky_edges", "detect", "srclist", "MXT_SOP_SKY")
    tab, bands, sb = sky.table("SRCLIST"), sky.table("BANDS"), sky.table("SRCBANDS").copy()
    soft_id = int(tab["SRC_ID"][int(np.argmax(np.asarray(tab["COUNTS"], float)))])
    row = np.flatnonzero((sb["SRC_ID"] == soft_id) & (sb["BAND_ID"] == 1))[0]
    sb["COUNTS"][row] *= 0.6
    bad = _failing(sci.band_counts_check(tab, bands, sb, _truth("sky_edges"), "sky_edges", config), "band_counts")
    assert [r.name for r in bad] == ["sky_edges:band_counts:SOFT band 0.2-2 keV"]


# ------------------------------------------------------------------------------------
# Good time
# ------------------------------------------------------------------------------------


def _gti_inputs():
    evt = _product("gti_blocks", "calibrate", "events", "MXT_L2_EVT")
    manifest = json.loads((GOLDEN / "gti_blocks" / "input" / "dataset.json").read_text(encoding="utf-8"))
    ang = read_product(GOLDEN / "gti_blocks" / "input" / manifest["files"]["ang"], "MXT_ANG").table("ANG")
    return evt.table("GTI"), evt.table("GAPS"), ang, _truth("gti_blocks")


def test_gti_golden_has_overlapping_and_abutting_bad_times():
    truth = _truth("gti_blocks")
    saa, earth = truth["bad_time"]["saa"][0], truth["bad_time"]["earth"][0]
    assert saa[0] < earth[0] < saa[1] < earth[1]  # SAA and occultation overlap
    tel = truth["bad_time"]["telemetry"]
    assert any(a < saa[0] < b for a, b in tel)  # telemetry loss across the SAA entry
    starts = sorted(p["start"] for p in truth["passes"])
    stops = sorted(p["stop"] for p in truth["passes"])
    assert set(starts) & set(stops)  # two passes abut
    assert any(a < b for a, b in zip(starts[1:], stops[:-1]))  # two passes overlap


@pytest.mark.parametrize("fault", ["saa_union", "telemetry_kept", "earth_limit_0"])
def test_gti_fails_on_a_wrong_interval_operation(fault, config):
    gti, gaps, ang, truth = _gti_inputs()
    assert _statuses(sci.gti_check(gti, gaps, ang, truth, "gti_blocks", config)) == {Status.PASS}
    good = GTI(np.asarray(gti["START"], float), np.asarray(gti["STOP"], float))
    if fault == "saa_union":  # the SAA added to the good time instead of removed
        saa = GTI(*(np.asarray(x, float) for x in zip(*truth["bad_time"]["saa"])))
        wrong = good.union(saa)
    elif fault == "telemetry_kept":  # lost telemetry left in the good time
        tel = GTI(*(np.asarray(x, float) for x in zip(*truth["bad_time"]["telemetry"])))
        wrong = good.union(tel.subtract(GTI([truth["tstart"]], [truth["tstart"] + 900.0])))
    else:  # the occultation cut at the limb, not at the screening's 10 deg above it
        earth = GTI(*(np.asarray(x, float) for x in zip(*truth["bad_time"]["earth"])))
        span = GTI([truth["tstart"]], [truth["tstop"]])
        wrong = good.union(span.subtract(earth).intersect(GTI([truth["tstart"] + 2900.0], [truth["tstart"] + 2990.0])))
    tab = gti.copy()[:0]
    for a, b in zip(wrong.start, wrong.stop):
        tab.add_row((a, b))
    bad = _failing(sci.gti_check(tab, gaps, ang, truth, "gti_blocks", config), "gti")
    assert [r.name for r in bad] == ["gti_blocks:gti:GTI exposure"]


def test_gti_fails_on_a_gap_of_the_wrong_origin(config):
    gti, gaps, ang, truth = _gti_inputs()
    wrong = gaps.copy()
    origin = np.char.strip(np.asarray(wrong["ORIGIN"]).astype(str))
    wrong["ORIGIN"][origin == "SAA"] = "EARTH"
    bad = _failing(sci.gti_check(gti, wrong, ang, truth, "gti_blocks", config), "gti")
    assert {r.name for r in bad} == {"gti_blocks:gti:SAA gaps", "gti_blocks:gti:EARTH gaps"}


def test_good_time_grid_matches_interval_algebra():
    """The brute-force grid against the GTI algebra of the datamodel on the golden truth."""
    _, _, ang, truth = _gti_inputs()
    grid, masks = sci.good_time_grid(truth, np.asarray(ang["TIME"], float), np.asarray(ang["EARTH_ELV"], float), 10.0, 0.01)
    span = GTI([truth["tstart"]], [truth["tstop"]])
    bad = GTI.empty()
    for key in ("saa", "telemetry"):
        for a, b in truth["bad_time"][key]:
            bad = bad.union(GTI([a], [b]))
    assert masks["SAA"].sum() * 0.01 == pytest.approx(sum(b - a for a, b in truth["bad_time"]["saa"]), abs=0.02)
    no_earth = span.subtract(bad)
    only_earth = masks["EARTH"] & ~masks["SAA"] & ~masks["TELEMETRY"]
    assert (masks["good"] | only_earth).sum() * 0.01 == pytest.approx(no_earth.exposure, abs=0.1)


# ------------------------------------------------------------------------------------
# Light curves
# ------------------------------------------------------------------------------------


def _lc(name: str, index: int = 0):
    lc = _product(name, "lightcurves", "light_curves", "MXT_LC", index)
    return lc.table("RATE").copy(), dict(lc.header("RATE"))


def test_lc_limits_fail_on_one_changed_limit(config):
    rate, meta = _lc("sky_edges")
    assert _statuses(sci.lc_limits_check(rate, meta, "sky_edges", "lc", config)) == {Status.PASS}
    rate["ERR_HI"][3] *= 1.02
    bad = _failing(sci.lc_limits_check(rate, meta, "sky_edges", "lc", config), "lc_limits")
    assert [r.name for r in bad] == ["sky_edges:lc_limits:lc ERR_HI"] and "bin 3" in bad[0].message


def test_lc_limits_fail_on_gehrels_limits_in_a_frequentist_product(config):
    """Gehrels' approximate upper limit N + 1 + sqrt(N + 3/4) differs from the exact one
    (astropy) by under 1 %: still a failure of the limits, named."""
    rate, meta = _lc("sky_edges")
    n = np.asarray(rate["COUNTS"], float)
    scale = np.asarray(rate["FRACEXP"] * rate["TIMEDEL"], float) * float(meta["PSFFRAC"])
    exact_hi = poisson_conf_interval(n, interval="frequentist-confidence", sigma=1)[1] - n
    assert np.allclose(exact_hi, np.asarray(rate["ERR_HI"]) * scale, rtol=0.2)
    area = float(meta["AREARAT"])
    nb = np.round(np.asarray(rate["BKG_RATE"]) * np.asarray(rate["FRACEXP"] * rate["TIMEDEL"]) / area)
    b_lo = nb - nb * (1 - 1 / (9 * np.maximum(nb, 1)) - 1 / (3 * np.sqrt(np.maximum(nb, 1)))) ** 3 * (nb > 0)
    rate["ERR_HI"] = np.hypot(1 + np.sqrt(n + 0.75), area * b_lo) / scale
    bad = _failing(sci.lc_limits_check(rate, meta, "sky_edges", "lc", config), "lc_limits")
    assert "sky_edges:lc_limits:lc ERR_HI" in {r.name for r in bad}


def test_lc_snr_fails_on_a_short_bin(config):
    rate, meta = _lc("sky_edges")
    params = {"target_snr": 3.0, "min_counts": 1, "max_gap_s": 1000.0}
    assert _statuses(sci.lc_snr_check(rate, meta, params, "sky_edges", "lc", config)) == {Status.PASS}
    rate["COUNTS"][5] = 5  # a bin closed at S/N 2 (a target of 2 instead of 3)
    bad = _failing(sci.lc_snr_check(rate, meta, params, "sky_edges", "lc", config), "lc_snr")
    assert bad and "bin 5" in bad[0].message


def test_lc_exposure_fails_when_a_bin_loses_good_time(config):
    rate, meta = _lc("gti_blocks")
    gti = _product("gti_blocks", "calibrate", "events", "MXT_L2_EVT").table("GTI")
    assert _statuses(sci.lc_exposure_check(rate, meta, gti, "gti_blocks", "lc")) == {Status.PASS}
    rate["FRACEXP"][-2] *= 0.9  # a gap counted twice in one block
    assert _failing(sci.lc_exposure_check(rate, meta, gti, "gti_blocks", "lc"), "lc_exposure")


def _blocks_inputs():
    rate, meta = _lc("gti_blocks")
    evt = _product("gti_blocks", "calibrate", "events", "MXT_L2_EVT")
    sky = _product("gti_blocks", "detect", "srclist", "MXT_SOP_SKY")
    gti = evt.table("GTI")
    t = sci.source_circle_events(evt.table("EVENTS"), gti, sky.table("SRCLIST"), meta)
    return rate, meta, t, gti


@pytest.mark.parametrize("fault", ["merged", "edge_moved", "p0"])
def test_lc_blocks_fail_on_wrong_blocks(fault, config):
    rate, meta, t, gti = _blocks_inputs()
    assert _statuses(sci.lc_blocks_check(rate, meta, t, gti, 0.05, "gti_blocks", "lc", config)) == {Status.PASS}
    p0 = 0.05
    if fault == "merged":  # two blocks merged into one
        lo = np.asarray(rate["TIME"] - 0.5 * rate["TIMEDEL"])
        hi = np.asarray(rate["TIME"] + 0.5 * rate["TIMEDEL"])
        keep = np.ones(len(rate), bool)
        keep[2] = False
        hi[1] = hi[2]
        rate = rate[keep]
        lo, hi = lo[keep], hi[keep]
        rate["TIME"], rate["TIMEDEL"] = 0.5 * (lo + hi), hi - lo
        rate["COUNTS"][1] += 1  # any count: the number of blocks already differs
    elif fault == "edge_moved":  # an edge one event later (the events of the next frame)
        lo = np.asarray(rate["TIME"] - 0.5 * rate["TIMEDEL"])
        hi = np.asarray(rate["TIME"] + 0.5 * rate["TIMEDEL"])
        k = int(np.searchsorted(t, hi[3]))
        new = 0.5 * (t[k] + t[k + 1])
        hi[3] = lo[4] = new
        rate["TIME"], rate["TIMEDEL"] = 0.5 * (lo + hi), hi - lo
    else:  # the product made with another prior than the golden's p0
        p0 = 0.5
    bad = _failing(sci.lc_blocks_check(rate, meta, t, gti, p0, "gti_blocks", "lc", config), "lc_blocks")
    assert [r.name for r in bad] == ["gti_blocks:lc_blocks:lc"]


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_lc_rate_fails_on_a_wrong_psf_correction(factor, config):
    """Rates halved (PSF-fraction correction dropped) or doubled fail against the truth."""
    truth = _truth("gti_blocks")
    gti = _product("gti_blocks", "calibrate", "events", "MXT_L2_EVT").table("GTI")
    srclist = _product("gti_blocks", "detect", "srclist", "MXT_SOP_SKY").table("SRCLIST")
    rate, meta = _lc("gti_blocks")
    assert _statuses(sci.lc_rate_check(rate, meta, gti, srclist, truth, "gti_blocks", "lc", config)) == {Status.PASS}
    rate["RATE"] *= factor
    assert _failing(sci.lc_rate_check(rate, meta, gti, srclist, truth, "gti_blocks", "lc", config), "lc_rate")


def test_good_coordinate_round_trip():
    start, stop = np.array([0.0, 10.0, 30.0]), np.array([5.0, 20.0, 31.0])
    t = np.array([0.0, 4.9, 10.0, 19.5, 30.5])
    u = sci._good_coordinate(t, start, stop)
    assert np.allclose(u, [0.0, 4.9, 5.0, 14.5, 15.5])
    assert np.allclose(sci._real_time(u, start, stop), t)
    # A boundary between two GTIs maps to the start of the later one.
    assert sci._real_time(np.array([5.0, 15.0]), start, stop).tolist() == [10.0, 30.0]


def test_checks_list_is_documented():
    doc = (repo_root() / "docs" / "harness.md").read_text(encoding="utf-8")
    for check in sci.CHECKS:
        assert f"`{check}`" in doc, check
    assert Path(sci.__file__).name == "science.py"
