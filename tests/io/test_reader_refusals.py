"""Readers refuse what would silently break science; one test per defect found by fuzzing.

Each of these files was accepted before: times stored as 32-bit floats, a string in
TSTART, empty tables declaring wrong column types, an L1 whose events all lie outside
its own GTI (it gave an L2 with no event, the full exposure and SUCCESS), and a 0-row
attitude file (a traceback in ``mxt validate`` and the calibration).
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import given
from hypothesis import strategies as st

from mxt_pipeline.datamodel import GTI, Attitude, RawHits
from mxt_pipeline.errors import MXTFormatError, MXTInputError, MXTSchemaError
from mxt_pipeline.io import validate_file
from mxt_pipeline.io.products import (
    check_events_in_gti,
    read_attitude,
    read_raw_hits,
    write_attitude,
    write_raw_hits,
)
from mxt_pipeline.pipelines.status import ProcessingStatus, status_for_exception

T0 = 3.0e8  # mission times are ~1e8 s: a float32 keeps 16-32 s of resolution there


def _hits(n: int = 40, t0: float = T0, gti: tuple[float, float] | None = None) -> RawHits:
    rng = np.random.default_rng(3)
    hits = RawHits.from_columns(
        meta={"OBS_ID": "1", "PASS_ID": 2, "STATION": "KRN"},
        TIME=np.sort(t0 + rng.uniform(0, 100, n)), FRAME=np.arange(n),
        RAWY=rng.integers(0, 256, n), RAWZ=rng.integers(0, 256, n), PHA=rng.integers(0, 4000, n),
    )  # fmt: skip
    hits.gti = GTI([gti[0]], [gti[1]]) if gti else GTI([t0], [t0 + 100.0])
    return hits


def _rewrite(src, dst, edit):
    with fits.open(src) as hdul:
        hdul = fits.HDUList([h.copy() for h in hdul])
    edit(hdul)
    hdul.writeto(dst, checksum=True, overwrite=True)
    return dst


def _recolumn(hdul, extname, name, fmt, cast, rows=None):
    hdu = hdul[extname]
    cols = []
    for c in hdu.columns:
        arr = np.asarray(hdu.data[c.name]) if rows is None else np.asarray(hdu.data[c.name])[:rows]
        if c.name == name:
            c = fits.Column(name=name, format=fmt, unit=c.unit, array=cast(arr))
        else:
            c = fits.Column(name=c.name, format=c.format, unit=c.unit, array=arr)
        cols.append(c)
    hdul[extname] = fits.BinTableHDU.from_columns(cols, header=hdu.header, name=extname)


@pytest.fixture
def l1(tmp_path):
    return write_raw_hits(tmp_path / "l1.fits", _hits())


def test_float32_times_are_refused(l1, tmp_path):
    bad = _rewrite(l1, tmp_path / "f32.fits", lambda h: _recolumn(h, "EVENTS", "TIME", "E", lambda a: a.astype("f4")))
    with pytest.raises(MXTFormatError) as info:
        read_raw_hits(bad)
    assert (info.value.hdu, info.value.column) == ("EVENTS", "TIME") and "float32" in info.value.message
    gti32 = _rewrite(l1, tmp_path / "g32.fits", lambda h: _recolumn(h, "GTI", "START", "E", lambda a: a.astype("f4")))
    with pytest.raises(MXTFormatError, match="float32"):
        read_raw_hits(gti32)
    assert any(v.column == "TIME" for v in validate_file(bad))


@pytest.mark.parametrize("value", ["abc", "3.0e8", True])
@pytest.mark.parametrize("key", ["TSTART", "TSTOP"])
def test_non_numeric_tstart_tstop_are_refused(l1, tmp_path, key, value):
    def edit(h):
        for hdu in h:
            if key in hdu.header:
                hdu.header[key] = value

    bad = _rewrite(l1, tmp_path / "tstr.fits", edit)
    with pytest.raises(MXTSchemaError) as info:
        read_raw_hits(bad)
    assert any(v.keyword == key and "finite number" in v.message for v in info.value.violations)


def test_observation_date_with_a_string_tstart_is_a_format_error(l1, tmp_path):
    from mxt_pipeline.pipelines.execute import observation_date

    bad = _rewrite(l1, tmp_path / "tstr.fits", lambda h: h[0].header.__setitem__("TSTART", "soon"))

    class _Inputs:
        manifest: dict = {}
        l1 = [bad]
        telemetry = ()

    class _Request:
        inputs = _Inputs()

    with pytest.raises(MXTFormatError) as info:
        observation_date(_Request())
    assert info.value.keyword == "TSTART" and str(bad) in str(info.value)
    assert status_for_exception(info.value, "inputs") is ProcessingStatus.BAD_INPUT


@pytest.mark.parametrize(("column", "fmt", "cast"), [
    ("RAWY", "10A", lambda a: a.astype(str)),
    ("TIME", "E", lambda a: a.astype("f4")),
    ("PHA", "D", lambda a: a.astype("f8")),
])  # fmt: skip
def test_empty_tables_with_wrong_column_types_are_refused(l1, tmp_path, column, fmt, cast):
    bad = _rewrite(l1, tmp_path / "empty_bad.fits", lambda h: _recolumn(h, "EVENTS", column, fmt, cast, rows=0))
    with pytest.raises(MXTFormatError) as info:
        read_raw_hits(bad)
    assert (info.value.hdu, info.value.column) == ("EVENTS", column)


def test_empty_tables_of_valid_type_are_read(tmp_path):
    path = write_raw_hits(tmp_path / "empty.fits", _hits(n=0))
    back = read_raw_hits(path)
    assert len(back) == 0 and back.table["TIME"].dtype == np.float64
    assert validate_file(path) == []


def test_l1_without_any_event_in_its_gti_is_refused(tmp_path):
    path = write_raw_hits(tmp_path / "off.fits", _hits(gti=(T0 + 5000.0, T0 + 6500.0)))
    with pytest.raises(MXTInputError, match="lies in the file's own GTI") as info:
        read_raw_hits(path)
    assert (info.value.hdu, info.value.column) == ("EVENTS", "TIME") and str(path) in str(info.value)
    # documented status: BAD_INPUT, exit 10
    assert status_for_exception(info.value, "core") is ProcessingStatus.BAD_INPUT
    # one event inside is enough: screening then keeps it
    assert len(read_raw_hits(write_raw_hits(tmp_path / "some.fits", _hits(gti=(T0 + 50.0, T0 + 6500.0))))) == 40


@given(
    times=st.lists(st.floats(0, 1000), min_size=1, max_size=30),
    edges=st.lists(st.floats(0, 1000), min_size=2, max_size=10, unique=True),
)
def test_events_in_gti_matches_a_direct_count(times, edges):
    edges = sorted(edges)
    gti = GTI(edges[0::2][: len(edges) // 2], edges[1::2][: len(edges) // 2])
    t = np.asarray(times)
    direct = any(((t >= a) & (t <= b)).any() for a, b in zip(gti.start, gti.stop))
    try:
        check_events_in_gti(t, gti, "x.fits")
        refused = False
    except MXTInputError:
        refused = True
    assert refused == (len(gti) > 0 and not direct)


def test_zero_row_attitude_is_a_clear_error(tmp_path):
    att = Attitude.from_pointing(np.arange(5.0), np.full(5, 10.0), np.full(5, 20.0), np.zeros(5), meta={"OBS_ID": "1"})
    path = write_attitude(tmp_path / "att.fits", att)

    def empty(h):
        h["ATTITUDE"] = fits.BinTableHDU(h["ATTITUDE"].data[:0], header=h["ATTITUDE"].header, name="ATTITUDE")

    bad = _rewrite(path, tmp_path / "att0.fits", empty)
    assert isinstance(validate_file(bad), list)  # no traceback
    with pytest.raises(MXTInputError, match="no row") as info:
        read_attitude(bad)
    assert info.value.hdu == "ATTITUDE" and str(bad) in str(info.value)
