"""Formatting and redirect rules of the console's pages (property tests against astropy)."""

from __future__ import annotations

from astropy import units as u
from astropy.coordinates import Angle
from hypothesis import given
from hypothesis import strategies as st

from mxt_pipeline.console.app import _fmt_dec, _fmt_number, _fmt_ra, _safe_next


@given(st.floats(0, 360, allow_nan=False, exclude_max=True))
def test_ra_is_astropy_sexagesimal_to_the_hundredth_second(ra):
    ref = Angle(ra * u.deg).to_string(unit=u.hourangle, sep="hms", precision=2, pad=True)
    got = _fmt_ra(ra)
    if ref.startswith("24h"):  # astropy keeps 24h00m00.00s where the sky wraps to 0h
        ref = "00" + ref[2:]
    assert got == ref


@given(st.floats(-90, 90, allow_nan=False))
def test_dec_is_astropy_sexagesimal_to_the_tenth_arcsecond(dec):
    ref = Angle(dec * u.deg).to_string(unit=u.deg, sep=("°", "'", '"'), precision=1, pad=True, alwayssign=True)
    got = _fmt_dec(dec)
    if ref.startswith("-00°00'00.0"):  # astropy signs a negative value rounding to zero
        ref = "+" + ref[1:]
    assert got == ref


def test_no_sixty_after_rounding():
    assert _fmt_ra(15.0 * (1 - 1e-9)) == "01h00m00.00s"
    assert _fmt_dec(1.0 - 1e-9) == "+01°00'00.0\""
    assert _fmt_dec(-0.5) == "-00°30'00.0\""


@given(st.text(max_size=40))
def test_login_redirects_stay_on_the_site(target):
    got = _safe_next(target)
    assert got.startswith("/") and not got.startswith("//") and "\\" not in got
    assert got in (target, "/")


def test_metrics_format():
    assert _fmt_number(17611) == "17611" and _fmt_number(0.50000003) == "0.5" and _fmt_number(True) == "True"
    assert _fmt_number("CALDB PSF") == "CALDB PSF" and _fmt_number(2900.87451) == "2901"
