"""Every reader refuses truncated, corrupted or malformed files with an MXTError naming the file."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mxt_pipeline.datamodel import (
    GTI,
    AngleTable,
    Attitude,
    EventList,
    GapList,
    RawHits,
    SAAIntervals,
)
from mxt_pipeline.errors import MXTError, MXTFormatError, MXTSchemaError
from mxt_pipeline.io import read_product
from mxt_pipeline.io.fits import _ones_complement_sum
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


def _make_all(folder):
    """Write one small valid product of each type; return {reader: path}."""
    rng = np.random.default_rng(0)
    n = 50
    hits = RawHits.from_columns(
        meta={"OBS_ID": "1", "PASS_ID": 2, "STATION": "KRN"},
        TIME=np.sort(rng.uniform(0, 10, n)),
        FRAME=np.arange(n),
        RAWY=rng.integers(0, 256, n),
        RAWZ=rng.integers(0, 256, n),
        PHA=rng.integers(0, 4000, n),
    )
    hits.gti = GTI([0.0], [10.0])
    att = Attitude.from_pointing(np.arange(5.0), np.full(5, 10.0), np.full(5, 20.0), np.zeros(5), meta={"OBS_ID": "1"})
    ang = AngleTable.from_columns(
        meta={"OBS_ID": "1"}, TIME=np.arange(5.0), EARTH_ELV=np.ones(5), SUN_ANGLE=np.ones(5), MOON_ANGLE=np.ones(5)
    )
    saa = SAAIntervals.from_columns(START=np.array([1.0]), STOP=np.array([2.0]))
    ev = EventList(gti=GTI([0.0], [10.0]), gaps=GapList([10.0], [20.0], ["EARTH"]), meta={"OBS_ID": "1", "RA_NOM": 0.0, "DEC_NOM": 0.0})
    return {
        read_raw_hits: write_raw_hits(folder / "l1.fits", hits),
        read_attitude: write_attitude(folder / "att.fits", att),
        read_angles: write_angles(folder / "ang.fits", ang),
        read_saa: write_saa(folder / "saa.fits", saa, week=0),
        read_events: write_events(folder / "l2.fits", ev),
    }


READERS = [read_raw_hits, read_attitude, read_angles, read_saa, read_events]


@pytest.fixture(scope="module")
def products(tmp_path_factory):
    return _make_all(tmp_path_factory.mktemp("valid"))


@pytest.mark.parametrize("reader", READERS, ids=lambda r: r.__name__)
def test_valid_files_read(products, reader):
    reader(products[reader])


@pytest.mark.parametrize("reader", READERS, ids=lambda r: r.__name__)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frac=st.floats(0.0, 0.999))
def test_truncated_files_are_refused(products, tmp_path_factory, reader, frac):
    data = products[reader].read_bytes()
    bad = tmp_path_factory.mktemp("trunc") / "truncated.fits"
    bad.write_bytes(data[: int(len(data) * frac)])
    with pytest.raises(MXTError) as info:
        reader(bad)
    assert str(bad) in str(info.value)


@pytest.mark.parametrize("reader", READERS, ids=lambda r: r.__name__)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_bytes_are_refused(products, tmp_path_factory, reader, data):
    raw = bytearray(products[reader].read_bytes())
    # Flip bytes in the data part (after the first header block): checksums catch it.
    # Distinct positions, so that two flips cannot cancel each other.
    positions = data.draw(st.lists(st.integers(2880, len(raw) - 1), min_size=1, max_size=8, unique=True))
    for pos in positions:
        raw[pos] ^= data.draw(st.integers(1, 255))
    bad = tmp_path_factory.mktemp("corrupt") / "corrupt.fits"
    bad.write_bytes(bytes(raw))
    with pytest.raises(MXTError) as info:
        reader(bad)
    assert str(bad) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(MXTFormatError, match="file not found"):
        read_raw_hits(tmp_path / "nope.fits")


def test_not_fits(tmp_path):
    p = tmp_path / "text.fits"
    p.write_text("hello, I am not FITS")
    with pytest.raises(MXTFormatError) as info:
        read_events(p)
    assert str(p) in str(info.value)


def test_wrong_product_type(products):
    with pytest.raises(MXTFormatError, match="MXT_L1_RAW") as info:
        read_events(products[read_raw_hits])
    assert info.value.keyword == "CONTENT"


def _rewrite(src, dst, edit):
    with fits.open(src) as hdul:
        hdul = fits.HDUList([h.copy() for h in hdul])
    edit(hdul)
    hdul.writeto(dst, checksum=True, overwrite=True)
    return dst


def test_missing_hdu_named(products, tmp_path):
    bad = _rewrite(products[read_raw_hits], tmp_path / "nogti.fits", lambda h: h.pop(2))
    with pytest.raises(MXTFormatError) as info:
        read_raw_hits(bad)
    assert info.value.hdu == "GTI" and str(bad) in str(info.value)


def test_missing_column_named(products, tmp_path):
    def drop_pha(hdul):
        cols = [c for c in hdul["EVENTS"].columns if c.name != "PHA"]
        new = fits.BinTableHDU.from_columns(cols, header=hdul["EVENTS"].header, name="EVENTS")
        del new.header["TLMIN5"], new.header["TLMAX5"]
        hdul["EVENTS"] = new

    bad = _rewrite(products[read_raw_hits], tmp_path / "nopha.fits", drop_pha)
    with pytest.raises(MXTFormatError) as info:
        read_raw_hits(bad)
    assert (info.value.hdu, info.value.column) == ("EVENTS", "PHA")


def test_wrong_dtype_named(products, tmp_path):
    def float_rawy(hdul):
        cols = []
        for c in hdul["EVENTS"].columns:
            if c.name == "RAWY":
                c = fits.Column(name="RAWY", format="10A", array=np.asarray(c.array).astype(str))
            cols.append(c)
        hdul["EVENTS"] = fits.BinTableHDU.from_columns(cols, header=hdul["EVENTS"].header, name="EVENTS")

    bad = _rewrite(products[read_raw_hits], tmp_path / "strrawy.fits", float_rawy)
    with pytest.raises(MXTFormatError) as info:
        read_raw_hits(bad)
    assert info.value.column == "RAWY"


def test_nan_times_are_refused_with_every_violation(products, tmp_path):
    def nan_time(hdul):
        hdul["EVENTS"].data["TIME"][3] = np.nan
        hdul["EVENTS"].data["RAWY"][4] = 300  # out of the legal 0..255 too

    bad = _rewrite(products[read_raw_hits], tmp_path / "nan.fits", nan_time)
    with pytest.raises(MXTSchemaError) as info:
        read_raw_hits(bad)
    cols = {v.column for v in info.value.violations}
    assert {"TIME", "RAWY"} <= cols
    assert str(bad) in str(info.value)


def test_empty_event_list_is_a_valid_product(tmp_path):
    ev = EventList(gti=GTI.empty(), meta={"OBS_ID": "9", "RA_NOM": 0.0, "DEC_NOM": 0.0})
    path = write_events(tmp_path / "empty.fits", ev)
    back = read_events(path)
    assert len(back) == 0 and len(back.gti) == 0
    assert read_product(path).content == "MXT_L2_EVT"


def test_failed_write_leaves_previous_file(tmp_path, products):
    from mxt_pipeline.io import write_product

    target = tmp_path / "keep.fits"
    target.write_bytes(products[read_raw_hits].read_bytes())
    before = target.read_bytes()
    with pytest.raises(MXTFormatError):
        write_product(target, "MXT_L1_RAW", {"EVENTS": {"TIME": [0.0]}, "GTI": GTI.empty().to_table()})
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.fits"]  # no temporary left behind


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), max_size=300))
def test_ones_complement_sum_matches_the_definition(words):
    """The FITS checksum sum (32-bit ones' complement, end-around carry) of any words.

    Reference: Seaman et al., the FITS checksum proposal, folded in plain integers.
    """
    expected = 0
    for w in words:
        expected += w
        expected = (expected & 0xFFFFFFFF) + (expected >> 32)
    block = np.array(words, dtype=">u4")
    assert _ones_complement_sum(block) == expected
