"""quzcif selection rules: matching, quality, validity dates, expressions, errors."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from astropy.time import Time
from hypothesis import given
from hypothesis import strategies as st

from mxt_pipeline.caldb.cif import CifRow, ref_time_mjd
from mxt_pipeline.caldb.select import (
    CaldbQuery,
    met_to_datetime,
    quzcif,
    requested_mjd,
    select,
)
from mxt_pipeline.errors import MXTCaldbAmbiguous, MXTCaldbNotFound, MXTInputError


def r(cnam="TELDEF", file="f.fits", vsd="2024-01-01", vst="00:00:00", **kw) -> CifRow:
    return CifRow(
        telescop=kw.pop("telescop", "SVOM"), instrume=kw.pop("instrume", "MXT"), cal_cnam=cnam,
        cal_dir=f"data/svom/mxt/bcf/{cnam.lower()}", cal_file=file, cal_vsd=vsd, cal_vst=vst, **kw,
    )  # fmt: skip


INDEX = [
    r(file="teldef_v1.fits", vsd="2024-01-01"),
    r(file="teldef_v2.fits", vsd="2025-06-01", vst="12:00:00"),
    r("PSF", "psf_v1.fits", cal_cbd=("ENERGY(0.2-2)keV",), cal_xno=1),
    r("PSF", "psf_v1.fits", cal_cbd=("ENERGY(2-10)keV",), cal_xno=2),
    r("BADPIX", "badpix_ccd1.fits", detnam="CCD1"),
    r("BADPIX", "badpix_ccd2.fits", detnam="CCD2"),
    r("BADPIX", "badpix_all.fits", vsd="2023-01-01"),
    r("SYSERR", "syserr_v1.fits", cal_qual=5),
    r("SYSERR", "syserr_v2.fits"),
    r("EFFAREA", "effarea_thin.fits", filter="THIN"),
    r("TELDEF", "ecl_teldef.fits", instrume="ECL"),
]
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def files(rows) -> list[str]:
    return [x.cal_file for x in rows]


def q(codename="TELDEF", **kw) -> list[CifRow]:
    return quzcif(INDEX, kw.pop("telescop", "SVOM"), kw.pop("instrume", "MXT"), codename, now=NOW, **kw)


def test_telescop_instrument_and_codename_case_insensitive():
    assert files(q("teldef", instrume="mxt", telescop="svom")) == ["teldef_v2.fits"]
    assert files(q("TELDEF", instrume="ECL")) == ["ecl_teldef.fits"]
    assert q("TELDEF", instrume="VT") == []
    assert q("TELDEF", telescop="SWIFT") == []


def test_version_change_by_validity_date():
    assert files(q(date="2025-06-01", time="11:59:59")) == ["teldef_v1.fits"]
    assert files(q(date="2025-06-01", time="12:00:00")) == ["teldef_v2.fits"]  # REF_TIME <= t
    assert files(q(date="2025-06-01T12:00:01")) == ["teldef_v2.fits"]
    assert files(q(date=date(2024, 12, 31))) == ["teldef_v1.fits"]
    assert files(q(date="now")) == ["teldef_v2.fits"]
    assert files(q(date="-")) == ["teldef_v2.fits", "teldef_v1.fits"]  # no time cut, newest first


def test_now_is_the_current_time():
    just_before = datetime(2025, 6, 1, 11, 0, tzinfo=UTC)
    rows = quzcif(INDEX, "SVOM", "MXT", "TELDEF", now=just_before)
    assert files(rows) == ["teldef_v1.fits"]


@given(seconds=st.integers(0, 86399), micro=st.integers(0, 999999), day=st.integers(0, 3000))
def test_now_resolves_to_the_instant_to_the_second(seconds, micro, day):
    """'now' is the current instant, time of day included (astropy's MJD of it), so a
    file valid from this afternoon is not selected this morning."""
    now = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=day, seconds=seconds, microseconds=micro)
    want = Time(now.replace(tzinfo=None), scale="utc").mjd
    assert requested_mjd("now", now=now) == pytest.approx(want, abs=1e-6 / 86400.0 + 1e-9)


@given(seconds=st.integers(0, 86399), micro=st.integers(0, 999999), day=st.integers(0, 3000),
       form=st.sampled_from(["datetime", "iso", "astropy"]))  # fmt: skip
def test_a_full_date_time_resolves_to_its_instant(seconds, micro, day, form):
    """A date-time query (datetime, ISO string with fraction, astropy Time) is its own
    instant to the microsecond, as astropy counts MJD."""
    at = datetime(2020, 1, 1) + timedelta(days=day, seconds=seconds, microseconds=micro)
    query = {"datetime": at, "iso": at.isoformat(timespec="microseconds"),
             "astropy": Time(at, scale="utc")}[form]  # fmt: skip
    assert requested_mjd(query) == pytest.approx(Time(at, scale="utc").mjd, abs=2e-6 / 86400.0)


def test_detnam_and_filter_none_rules():
    # Query NONE matches every row; a row NONE matches every query.
    assert sorted(files(q("BADPIX", detnam="CCD1"))) == ["badpix_ccd1.fits"]  # latest REF_TIME only
    assert sorted(files(q("BADPIX", detnam="CCD1", date="2023-06-01"))) == ["badpix_all.fits"]
    assert sorted(files(q("BADPIX", detnam="NONE"))) == ["badpix_ccd1.fits", "badpix_ccd2.fits"]
    assert sorted(files(q("BADPIX", detnam="ccd2"))) == ["badpix_ccd2.fits"]
    # No CCD9 file: the detector-independent (NONE) file is the latest valid one.
    assert sorted(files(q("BADPIX", detnam="CCD9"))) == ["badpix_all.fits"]
    assert files(q("EFFAREA", filter="THIN")) == ["effarea_thin.fits"]
    assert files(q("EFFAREA", filter="NONE")) == ["effarea_thin.fits"]
    assert files(q("EFFAREA", filter="THICK")) == []


def test_detnam_none_row_matches_unknown_detector():
    """A DETNAM=NONE row serves any detector when it is the latest valid one."""
    rows = [r("BADPIX", "all.fits", vsd="2025-01-01"), r("BADPIX", "c1.fits", vsd="2024-01-01", detnam="CCD1")]
    assert files(quzcif(rows, "SVOM", "MXT", "BADPIX", detnam="CCD9", now=NOW)) == ["all.fits"]
    assert files(quzcif(rows, "SVOM", "MXT", "BADPIX", detnam="CCD1", now=NOW)) == ["all.fits"]


def test_quality_zero_only():
    assert files(q("SYSERR")) == ["syserr_v2.fits"]
    assert sorted(files(q("SYSERR", quality=None))) == ["syserr_v1.fits", "syserr_v2.fits"]


def test_boundary_expression_selection():
    assert [x.cal_xno for x in q("PSF", expr="energy.eq.1.5")] == [1]
    assert [x.cal_xno for x in q("PSF", expr="energy.eq.2")] == [1, 2]  # inclusive on both sides
    assert [x.cal_xno for x in q("PSF", expr="energy.gt.2")] == [2]
    assert q("PSF", expr="energy.eq.20") == []
    # Rows without an ENERGY boundary are not restricted in energy.
    assert files(q("TELDEF", expr="energy.eq.20")) == ["teldef_v2.fits"]


def test_codename_dash_returns_latest_of_everything():
    got = q("-", date="2024-06-01")
    assert {x.ref_time for x in got} == {ref_time_mjd("2024-01-01")}


def test_select_not_found_message_names_the_query():
    query = CaldbQuery("SVOM", "MXT", "PSF", date="2025-02-03T04:05:06", expr="energy.eq.99")
    with pytest.raises(MXTCaldbNotFound) as info:
        select(INDEX, query, now=NOW)
    msg = str(info.value)
    for part in ("MXT", "PSF", "2025-02-03T04:05:06", "energy.eq.99"):
        assert part in msg


@pytest.mark.parametrize(
    ("query", "why"),
    [
        (CaldbQuery("SVOM", "MXT", "NOPE"), "not in the index (known: BADPIX"),
        (CaldbQuery("SVOM", "MXT", "TELDEF", date="2020-01-01"), "valid from 2024-01-01T00:00:00"),
        (CaldbQuery("SVOM", "VT", "TELDEF"), "no SVOM VT dataset"),
    ],
)
def test_select_not_found_says_why(query, why):
    with pytest.raises(MXTCaldbNotFound, match=why.replace("(", r"\(")):
        select(INDEX, query, now=NOW)


def test_select_unique_and_ambiguous():
    one = select(INDEX, CaldbQuery("SVOM", "MXT", "PSF", expr="energy.eq.5"), unique=True, now=NOW)
    assert [x.cal_xno for x in one] == [2]
    with pytest.raises(MXTCaldbAmbiguous, match=r"psf_v1.fits\[1\].*psf_v1.fits\[2\]"):
        select(INDEX, CaldbQuery("SVOM", "MXT", "PSF"), unique=True, now=NOW)


# ------------------------------------------------------------------ requested time


def test_requested_mjd_formats():
    base = ref_time_mjd("2025-03-04", "05:06:07")
    assert requested_mjd("2025-03-04", "05:06:07") == base
    assert requested_mjd("2025-03-04T05:06:07") == base
    assert requested_mjd("2025-03-04 05:06:07") == base
    assert requested_mjd("2025-03-04T05:06:07Z") == base
    assert requested_mjd(datetime(2025, 3, 4, 5, 6, 7)) == base
    cet = timezone(timedelta(hours=1))
    assert requested_mjd(datetime(2025, 3, 4, 6, 6, 7, tzinfo=cet)) == base
    assert requested_mjd(Time("2025-03-04T05:06:07", scale="utc")) == pytest.approx(base, abs=1e-9)
    assert requested_mjd("-") is None
    assert requested_mjd("now", now=datetime(2025, 3, 4, 5, 6, 7)) == base


@pytest.mark.parametrize(
    ("date_", "time_"),
    [("2025-02-30", None), ("yesterday", None), ("2025-03-04", "5:06"), ("2025-03-04T05:06:07", "01:00:00"),
     ("now", "01:00:00"), (12345.0, None)],
)  # fmt: skip
def test_requested_mjd_errors(date_, time_):
    with pytest.raises(MXTInputError):
        requested_mjd(date_, time_)


def test_met_to_datetime_uses_tt_to_utc():
    # MET 0 is 2017-01-01T00:00:00 TT, still before the leap second that ended 2016:
    # TT - UTC = 32.184 s + 36 s (TAI - UTC) = 68.184 s.
    assert met_to_datetime(0.0) == datetime(2016, 12, 31, 23, 58, 51, 816000)
    # A day later TAI - UTC is 37 s.
    assert met_to_datetime(86400.0) == datetime(2017, 1, 1, 23, 58, 50, 816000)


# ----------------------------------------------------------------------- properties

day = st.integers(0, 5)


@st.composite
def indexes(draw) -> list[CifRow]:
    n = draw(st.integers(0, 15))
    out = []
    for i in range(n):
        d = date(2024, 1, 1) + timedelta(days=draw(day))
        out.append(
            r(
                draw(st.sampled_from(["TELDEF", "PSF"])), f"f{i}.fits", d.isoformat(),
                detnam=draw(st.sampled_from(["NONE", "CCD1", "CCD2"])),
                cal_qual=draw(st.sampled_from([0, 0, 5])),
            )  # fmt: skip
        )
    return out


@given(indexes(), st.sampled_from(["TELDEF", "PSF", "-"]), st.sampled_from(["-", "NONE", "CCD1"]), day)
def test_latest_valid_rule(rows, codename, detnam, qday):
    """Invariants of the time rule, checked against the definition."""
    t = (date(2024, 1, 1) + timedelta(days=qday)).isoformat()
    got = quzcif(rows, "SVOM", "MXT", codename, detnam, date=t)
    t_mjd = ref_time_mjd(t)

    def eligible(x: CifRow) -> bool:
        return (
            x.cal_qual == 0
            and (codename == "-" or x.cal_cnam == codename)
            and (detnam in ("-", "NONE") or x.detnam in ("NONE", detnam))
            and x.ref_time <= t_mjd
        )

    cands = [x for x in rows if eligible(x)]
    if not cands:
        assert got == []
        return
    latest = max(x.ref_time for x in cands)
    assert sorted(files(got)) == sorted(files(x for x in cands if x.ref_time == latest))
