"""The calibration index file: rows, REF_TIME, FITS round trip, fitsverify, mxt validate."""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time
from hypothesis import given, settings
from hypothesis import strategies as st

from mxt_pipeline.caldb.cif import CIF_COLUMNS, CifRow, read_cif, ref_time_mjd, write_cif
from mxt_pipeline.errors import MXTFormatError, MXTInputError
from mxt_pipeline.io import validate_file


def row(**kw) -> CifRow:
    base = dict(
        telescop="SVOM", instrume="MXT", cal_cnam="PSF", cal_dir="data/svom/mxt/bcf/psf",
        cal_file="psf.fits", cal_vsd="2024-01-01",
    )  # fmt: skip
    base.update(kw)
    return CifRow(**base)


@given(
    st.dates(min_value=date(1900, 1, 1), max_value=date(2199, 12, 31)),
    st.integers(0, 86399),
)
def test_ref_time_matches_astropy(d, seconds):
    """REF_TIME is calendar MJD: compare with astropy in TAI (a scale without leap seconds)."""
    vst = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    expected = Time(f"{d.isoformat()}T{vst}", scale="tai").mjd
    assert ref_time_mjd(d.isoformat(), vst) == pytest.approx(expected, abs=1e-9)


def test_row_defaults_and_padding():
    r = row(cal_cbd=("ENERGY(1-2)keV",))
    assert r.cal_cbd == ("ENERGY(1-2)keV",) + ("NONE",) * 8
    assert r.ref_time == ref_time_mjd("2024-01-01")
    assert r.relpath == "data/svom/mxt/bcf/psf/psf.fits"
    assert [b.param for b in r.boundaries] == ["ENERGY"]
    assert r.with_quality(5).cal_qual == 5


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        ({"cal_file": "x" * 41}, "longer than 40"),
        ({"cal_cnam": "A" * 21}, "longer than 20"),
        ({"cal_vsd": "2024-13-01"}, "not a calendar date"),
        ({"cal_vsd": "01/01/24"}, "not YYYY-MM-DD"),
        ({"cal_vst": "25:00:00"}, "not a time of day"),
        ({"cal_desc": "caf\u00e9"}, "printable ASCII"),
        ({"cal_xno": 1000}, "outside -1..999"),
        ({"cal_qual": 6}, "outside 0..5"),
        ({"cal_clas": "USR"}, "BCF or CPF"),
        ({"cal_cbd": ("ENERGY(5-1)keV",)}, "min > max"),
        ({"cal_cbd": ("NONE",) * 10}, "at most 9"),
    ],
)
def test_row_validation(kw, fragment):
    with pytest.raises(MXTInputError, match=fragment.replace("(", r"\(").replace(".", r"\.")):
        row(**kw)


# ------------------------------------------------------------------ FITS round trip

ascii_text = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=10)
cbd_text = st.sampled_from(
    ["NONE", "ENERGY(0.2-10)keV", "THETA(0-30)arcmin", "GRADE(0,1-4)", "DATAMODE(PC)", "TEMP(-120--100)C"]
)


@st.composite
def cif_rows(draw) -> CifRow:
    d = date(2020, 1, 1) + timedelta(days=draw(st.integers(0, 3650)))
    s = draw(st.integers(0, 86399))
    return CifRow(
        telescop="SVOM",
        instrume=draw(st.sampled_from(["MXT", "ECL", "VT"])),
        cal_cnam=draw(st.from_regex(r"[A-Z][A-Z0-9_]{0,19}", fullmatch=True)),
        cal_dir="data/svom/mxt/" + draw(st.from_regex(r"[a-z]{1,20}", fullmatch=True)),
        cal_file=draw(ascii_text).replace("/", "_") + ".fits",  # a bare file name
        cal_vsd=d.isoformat(),
        cal_vst=f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}",
        detnam=draw(st.sampled_from(["NONE", "CCD1", "CCD2"])),
        filter=draw(st.sampled_from(["NONE", "OPEN", "THIN"])),
        cal_clas=draw(st.sampled_from(["BCF", "CPF"])),
        cal_cbd=tuple(draw(st.lists(cbd_text, max_size=9))),
        cal_xno=draw(st.integers(-1, 999)),
        cal_qual=draw(st.sampled_from([0, 5])),
        cal_date="2025-01-01",
        cal_desc=draw(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=70)).rstrip(),
    )


@settings(max_examples=20, deadline=None)
@given(st.lists(cif_rows(), min_size=0, max_size=12))
def test_cif_write_read_round_trip(rows):
    with tempfile.TemporaryDirectory() as tmp:
        path = write_cif(rows, Path(tmp) / "caldb.indx", telescop="SVOM", instrume="MXT", sort=False)
        assert read_cif(path) == rows


def test_cif_file_format(tmp_path, fitsverify):
    rows = [
        row(cal_cbd=("ENERGY(0.2-2)keV", "THETA(0-30)arcmin"), cal_xno=1),
        row(cal_cbd=("ENERGY(2-10)keV",), cal_xno=2),
        row(cal_cnam="EVTTHR", cal_dir="data/svom/mxt/upload/evtthr",
            cal_file="MXT_EVTTHR_20250301T120000_v01.yaml", cal_xno=-1),  # fmt: skip
    ]
    path = write_cif(rows, tmp_path / "caldb.indx", caldbver="mxt20250101")
    result = fitsverify(path)
    assert result.errors == 0 and result.warnings == 0, result.output
    assert validate_file(path) == []
    with fits.open(path) as hdul:
        hdu = hdul["CIF"]
        assert hdu.header["CIFVERSN"] == "1.1"
        assert hdu.header["CALDBVER"] == "mxt20250101"
        assert tuple(hdu.columns.names) == CIF_COLUMNS
        formats = dict(zip(hdu.columns.names, hdu.columns.formats))
        assert formats["CAL_CBD"] == "630A70"
        assert hdu.header[f"TDIM{CIF_COLUMNS.index('CAL_CBD') + 1}"] == "(70,9)"
        assert formats["CAL_FILE"] == "40A" and formats["REF_TIME"] == "D" and formats["CAL_XNO"] == "I"
        np.testing.assert_array_equal(hdu.data["CAL_XNO"], [-1, 1, 2])  # sorted: EVTTHR < PSF


def test_empty_cif_is_valid_fits(tmp_path, fitsverify):
    path = write_cif([], tmp_path / "caldb.indx", instrume="VT")
    assert fitsverify(path).errors == 0
    assert read_cif(path) == []


def test_read_cif_names_the_bad_row(tmp_path):
    path = write_cif([row(), row(cal_file="b.fits")], tmp_path / "caldb.indx")
    with fits.open(path, mode="update") as hdul:
        hdul["CIF"].data["CAL_VSD"][1] = "2024-02-30"
        hdul["CIF"].add_checksum()
    with pytest.raises(MXTFormatError, match="row 2"):
        read_cif(path, validate=False)


def test_read_cif_refuses_other_files(tmp_path):
    bad = tmp_path / "notcif.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column(name="A", format="D", array=[1.0])], name="DATA")]).writeto(bad)  # fmt: skip
    with pytest.raises(MXTFormatError):
        read_cif(bad)
