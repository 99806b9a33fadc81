"""Write random valid products to FITS and read them back identical."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from mxt_pipeline.datamodel import AngleTable, EventList, SAAIntervals
from mxt_pipeline.io import read_product, validate_file
from mxt_pipeline.io.products import (
    read_angles,
    read_attitude,
    read_events,
    read_raw_hits,
    read_saa,
    write_angles,
    write_attitude,
    write_events,
    write_raw_hits,
    write_saa,
)

from .strategies import attitudes, gap_lists, gtis, raw_hits


@settings(max_examples=40)
@given(hits=raw_hits())
def test_raw_hits_round_trip(tmp_path_factory, hits):
    path = tmp_path_factory.mktemp("rt") / "l1.fits"
    write_raw_hits(path, hits)
    back = read_raw_hits(path)
    for name in ("TIME", "FRAME", "RAWY", "RAWZ", "PHA"):
        assert np.array_equal(back[name], hits[name]), name
        assert back[name].dtype == hits[name].dtype
    assert back.gti == hits.gti
    assert back.meta["PASS_ID"] == hits.meta["PASS_ID"]
    assert validate_file(path) == []


@settings(max_examples=40)
@given(gti=gtis(), gaps=gap_lists())
def test_gti_and_gaps_round_trip(tmp_path_factory, gti, gaps):
    path = tmp_path_factory.mktemp("rt") / "l2.fits"
    ev = EventList(gti=gti, gaps=gaps, meta={"OBS_ID": "00001", "RA_NOM": 12.5, "DEC_NOM": -33.0})
    write_events(path, ev)
    back = read_events(path)
    assert back.gti == gti
    assert np.array_equal(back.gaps.start, gaps.start)
    assert np.array_equal(back.gaps.stop, gaps.stop)
    assert list(back.gaps.origin) == list(gaps.origin)
    assert len(back) == 0


@settings(max_examples=40)
@given(att=attitudes())
def test_attitude_round_trip(tmp_path_factory, att):
    path = tmp_path_factory.mktemp("rt") / "att.fits"
    write_attitude(path, att)
    back = read_attitude(path)
    for name in ("TIME", "QPARAM", "RA", "DEC", "ROLL"):
        assert np.array_equal(back[name], att[name]), name
    t = att["TIME"]
    mid = 0.5 * (t[0] + t[-1])
    np.testing.assert_allclose(back.pointing(np.array([mid]))[0], att.pointing(np.array([mid]))[0])


def test_l2_events_round_trip_with_rows(tmp_path):
    rng = np.random.default_rng(3)
    n = 500
    cols = {
        "TIME": np.sort(rng.uniform(0, 1e4, n)),
        "FRAME": rng.integers(0, 10**5, n),
        "RAWY": rng.integers(0, 256, n),
        "RAWZ": rng.integers(0, 256, n),
        "DETY": rng.normal(0, 50, n),
        "DETZ": rng.normal(0, 50, n),
        "X": rng.uniform(0, 512, n),
        "Y": rng.uniform(0, 512, n),
        "RA": rng.uniform(0, 360, n),
        "DEC": rng.uniform(-90, 90, n),
        "PHA": rng.integers(0, 30000, n),
        "PI": rng.integers(0, 1024, n),
        "ENERGY": rng.uniform(0.2, 10, n),
        "PATTERN": rng.integers(0, 14, n),
        "MULTIPLICITY": rng.integers(1, 5, n),
        "STATUS": rng.integers(0, 128, n),
    }
    from mxt_pipeline.datamodel import GTI, GapList

    ev = EventList.from_columns(meta={"OBS_ID": "7", "RA_NOM": 1.0, "DEC_NOM": 2.0}, **cols)
    ev.gti = GTI([0.0], [1e4])
    ev.gaps = GapList([1e4], [2e4], ["SAA"])
    path = write_events(tmp_path / "l2.fits", ev)
    back = read_events(path)
    for name, values in cols.items():
        np.testing.assert_array_equal(back[name], np.asarray(values).astype(back[name].dtype))
    prod = read_product(path)
    hdr = prod.header("EVENTS")
    assert hdr["TCTYP7"] == "RA---TAN" and hdr["TCTYP8"] == "DEC--TAN"
    assert hdr["ONTIME"] == 1e4


def test_saa_and_angles_round_trip(tmp_path):
    saa = SAAIntervals.from_columns(START=np.array([10.0, 500.0]), STOP=np.array([20.0, 700.0]))
    write_saa(tmp_path / "saa.fits", saa, week=3)
    back = read_saa(tmp_path / "saa.fits")
    assert back.meta["WEEK"] == 3
    assert np.array_equal(back["START"], saa["START"])
    ang = AngleTable.from_columns(
        meta={"OBS_ID": "1"},
        TIME=np.arange(10.0),
        EARTH_ELV=np.linspace(-20, 20, 10),
        SUN_ANGLE=np.full(10, 90.0),
        MOON_ANGLE=np.full(10, 45.0),
    )
    write_angles(tmp_path / "ang.fits", ang)
    back_ang = read_angles(tmp_path / "ang.fits")
    assert np.allclose(back_ang["EARTH_ELV"], ang["EARTH_ELV"])
