"""The FITS diff: a file equals itself; perturbations within tolerance pass, beyond fail,
and the account names the HDU, the column or the keyword."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.config import Tolerance, from_mapping
from harness.fitsdiff import compare_values, diff_fits

from .products import (
    campaign_columns,
    event_columns,
    write_campaign_file,
    write_events_file,
)


def _config(products=None, **fitsdiff):
    raw = {"fitsdiff": {"ignore_keywords": ["DATE", "CREATOR", "CHECKSUM", "DATASUM"], "products": products or {}, **fitsdiff}}
    return from_mapping(raw)


# ---- properties -------------------------------------------------------------------------
# Each example writes two products through the I/O layer (~0.1 s each with astropy's
# header machinery): the file-level properties run 15 examples each to keep the harness
# tests within their CI budget; the array-level property below explores more.
_FILES = settings(max_examples=15)


@_FILES
@given(n=st.integers(0, 300), seed=st.integers(0, 2**16))
def test_file_equals_itself_and_its_rewrite(n, seed):
    cfg = _config()
    with tempfile.TemporaryDirectory() as tmp:
        a = write_events_file(Path(tmp) / "a.fits", n=n, seed=seed)
        assert diff_fits(a, a, cfg).identical
        # A second write differs in DATE, CHECKSUM, DATASUM only: all ignored.
        from mxt_pipeline.io.fits import source_date_epoch

        with source_date_epoch(1000000000):
            b = write_events_file(Path(tmp) / "b.fits", n=n, seed=seed)
        assert fits.getval(a, "DATE") != fits.getval(b, "DATE")
        d = diff_fits(b, a, cfg)
        assert d.identical, d.account()
        assert d.n_values_compared == n * 16 + 2  # EVENTS columns + one GTI row


@_FILES
@given(n=st.integers(1, 120), seed=st.integers(0, 2**16))
def test_nan_equals_nan(n, seed):
    with tempfile.TemporaryDirectory() as tmp:
        cols = campaign_columns(n, seed)
        a = write_campaign_file(Path(tmp) / "a.fits", cols)
        b = write_campaign_file(Path(tmp) / "b.fits", {k: v.copy() for k, v in cols.items()})
        d = diff_fits(b, a, _config())
        assert d.identical, d.account()


_TOL = st.tuples(st.sampled_from([0.0, 1e-9, 1e-6, 1e-3]), st.sampled_from([0.0, 1e-8, 1e-4, 0.1]))


@_FILES
@given(tol=_TOL.filter(lambda t: t[0] + t[1] > 0), seed=st.integers(0, 2**16),
       frac=st.floats(-0.9, 0.9), k=st.integers(1, 50))  # fmt: skip
def test_perturbation_within_tolerance_passes(tol, seed, frac, k):
    rtol, atol = tol
    cfg = _config({"MXT_L2_EVT": {"EVENTS": {"RA": {"rtol": rtol, "atol": atol}}}})
    cols = event_columns(60, seed)
    rows = np.random.default_rng(seed).choice(60, size=min(k, 60), replace=False)
    pert = {kk: v.copy() for kk, v in cols.items()}
    b = cols["RA"][rows]
    pert["RA"][rows] = b + frac * (atol + rtol * np.abs(b))
    with tempfile.TemporaryDirectory() as tmp:
        ref = write_events_file(Path(tmp) / "ref.fits", cols)
        test = write_events_file(Path(tmp) / "test.fits", pert)
        d = diff_fits(test, ref, cfg)
    assert d.identical, d.account()


@_FILES
@given(tol=_TOL.filter(lambda t: t[0] + t[1] > 0), seed=st.integers(0, 2**16),
       factor=st.floats(1.5, 1e3), sign=st.sampled_from([-1.0, 1.0]), k=st.integers(1, 50))  # fmt: skip
def test_perturbation_beyond_tolerance_fails_and_names_column(tol, seed, factor, sign, k):
    rtol, atol = tol
    cfg = _config({"MXT_L2_EVT": {"EVENTS": {"RA": {"rtol": rtol, "atol": atol}}}})
    cols = event_columns(60, seed)
    rows = np.random.default_rng(seed).choice(60, size=min(k, 60), replace=False)
    pert = {kk: v.copy() for kk, v in cols.items()}
    b = cols["RA"][rows]
    pert["RA"][rows] = b + sign * factor * (atol + rtol * np.abs(b))
    with tempfile.TemporaryDirectory() as tmp:
        ref = write_events_file(Path(tmp) / "ref.fits", cols)
        test = write_events_file(Path(tmp) / "test.fits", pert)
        d = diff_fits(test, ref, cfg)
    assert not d.identical
    assert len(d.differences) == 1
    diff = d.differences[0]
    assert (diff.kind, diff.hdu, diff.name) == ("values", "EVENTS", "RA")
    assert diff.stats.n_differ == len(rows)
    expected_max = factor * (atol + rtol * np.abs(b)).max()
    assert diff.stats.max_abs == pytest.approx(expected_max, rel=1e-6)
    assert diff.stats.worst_index[0] in set(rows.tolist())
    assert "[EVENTS] column RA" in d.account()
    assert f"{len(rows)} of 60 values differ" in d.account()


@_FILES
@given(seed=st.integers(0, 2**16), factor=st.floats(3.0, 1e3))
def test_float32_column_beyond_tolerance(seed, factor):
    """ENERGY is float32: a perturbation beyond tolerance survives the float32 rounding."""
    cfg = _config({"MXT_L2_EVT": {"EVENTS": {"ENERGY": {"rtol": 1e-4, "atol": 0.0}}}})
    cols = event_columns(40, seed)
    pert = {k: v.copy() for k, v in cols.items()}
    pert["ENERGY"][7] = np.float32(cols["ENERGY"][7] * (1 + factor * 1e-4))
    with tempfile.TemporaryDirectory() as tmp:
        ref = write_events_file(Path(tmp) / "ref.fits", cols)
        test = write_events_file(Path(tmp) / "test.fits", pert)
        d = diff_fits(test, ref, cfg)
    assert [(x.hdu, x.name, x.stats.n_differ) for x in d.differences] == [("EVENTS", "ENERGY", 1)]
    assert d.differences[0].stats.worst_index == (7,)


_KEYWORDS = {
    # (HDU, keyword): a changed value
    ("PRIMARY", "OBS_ID"): "00000043",
    ("EVENTS", "ONTIME"): 1000.5,
    ("EVENTS", "FRAMETIM"): 0.2,
    ("PRIMARY", "RA_NOM"): 150.001,
}


@_FILES
@given(item=st.sampled_from(sorted(_KEYWORDS)), seed=st.integers(0, 1000))
def test_changed_keyword_is_named(item, seed):
    hdu, key = item
    with tempfile.TemporaryDirectory() as tmp:
        ref = write_events_file(Path(tmp) / "ref.fits", n=20, seed=seed)
        test = Path(tmp) / "test.fits"
        with fits.open(ref) as hdul:
            hdul[hdu].header[key] = _KEYWORDS[item]
            hdul.writeto(test)
        d = diff_fits(test, ref, _config())
    assert [(x.kind, x.hdu, x.name) for x in d.differences] == [("keyword", hdu, key)]
    assert f"[{hdu}] keyword {key}" in d.account()


# ---- examples -------------------------------------------------------------------------


def test_integer_column_exact_unless_named(tmp_path):
    cols = event_columns(50, 3)
    pert = {k: v.copy() for k, v in cols.items()}
    pert["PI"][[4, 9]] += 1
    ref = write_events_file(tmp_path / "ref.fits", cols)
    test = write_events_file(tmp_path / "test.fits", pert)
    # A generous float default does not hide an off-by-one channel...
    d = diff_fits(test, ref, _config(default={"rtol": 0.5, "atol": 10.0}))
    assert [(x.name, x.stats.n_differ) for x in d.differences] == [("PI", 2)]
    # ... a tolerance naming the column does.
    d2 = diff_fits(test, ref, _config({"MXT_L2_EVT": {"EVENTS": {"PI": {"atol": 1}}}}))
    assert d2.identical


def test_tolerance_resolution_order():
    cfg = _config({
        "*": {"*": {"TIME": {"atol": 1}, "*": {"rtol": 2}}, "EVENTS": {"*": {"rtol": 3}}},
        "MXT_L2_EVT": {"*": {"TIME": {"atol": 4}}, "EVENTS": {"TIME": {"atol": 5}, "*": {"rtol": 6}}},
    })  # fmt: skip
    t = cfg.tolerances
    assert t.resolve("MXT_L2_EVT", "EVENTS", "TIME") == (Tolerance(0, 5), True)
    assert t.resolve("MXT_L2_EVT", "GTI", "TIME") == (Tolerance(0, 4), True)
    assert t.resolve("MXT_LC", "RATE", "TIME") == (Tolerance(0, 1), True)
    assert t.resolve("MXT_L2_EVT", "EVENTS", "PI") == (Tolerance(6, 0), False)
    assert t.resolve("MXT_LC", "EVENTS", "PI") == (Tolerance(3, 0), False)
    assert t.resolve("MXT_LC", "RATE", "PI") == (Tolerance(2, 0), False)
    assert _config().tolerances.resolve("X", "Y", "Z") == (Tolerance(1e-5, 1e-7), False)
    with pytest.raises(ValueError):
        Tolerance(-1.0, 0.0)
    with pytest.raises(ValueError):
        Tolerance.from_any({"rtol": 1, "btol": 2})


def test_structure_differences_are_all_named(tmp_path):
    ref = write_events_file(tmp_path / "ref.fits", n=30)
    test = tmp_path / "test.fits"
    with fits.open(ref) as hdul:
        ev = hdul["EVENTS"]
        cols = [c for c in ev.columns if c.name != "PATTERN"]  # one column removed
        cols = [cols[1], cols[0], *cols[2:]]  # two swapped
        cols[2] = fits.Column(name=cols[2].name, format=cols[2].format, unit="mm", array=ev.data[cols[2].name])
        extra = fits.Column(name="EXTRA", format="E", array=np.zeros(len(ev.data)))
        new = fits.BinTableHDU.from_columns([*cols, extra], header=ev.header, name="EVENTS")
        gti = hdul["GTI"].copy()
        gti.header["EXTVER"] = 2
        fits.HDUList([hdul[0], new, hdul["GAPS"], gti]).writeto(test)
    d = diff_fits(test, ref, _config())
    got = {(x.kind, x.hdu, x.name) for x in d.differences}
    assert ("column", "EVENTS", "PATTERN") in got
    assert ("column", "EVENTS", "EXTRA") in got
    assert ("column", "EVENTS", "RAWY") in got  # unit changed
    assert ("column", "EVENTS", "") in got  # order
    assert ("hdu", "GTI", "") in got  # missing
    assert ("hdu", "GTI,2", "") in got  # not in the reference
    text = d.account()
    assert "PATTERN: missing" in text and "unit 'mm' vs reference 'pixel'" in text


def test_hdus_matched_by_name_not_position(tmp_path):
    ref = write_events_file(tmp_path / "ref.fits", n=30)
    test = tmp_path / "test.fits"
    with fits.open(ref) as hdul:
        fits.HDUList([hdul[0], hdul["GAPS"], hdul["GTI"], hdul["EVENTS"]]).writeto(test)
    d = diff_fits(test, ref, _config())
    # Only the order is reported: every HDU is found and compared by its name.
    assert [x.kind for x in d.differences] == ["file"]
    assert "HDU order" in d.differences[0].message
    assert d.n_hdus_compared == 4


def test_row_count_and_column_keywords(tmp_path):
    ref = write_events_file(tmp_path / "ref.fits", n=30)
    short = write_events_file(tmp_path / "short.fits", n=29)
    d = diff_fits(short, ref, _config())
    kinds = [x.kind for x in d.differences]
    assert kinds == ["rows"]
    # A changed TLMIN is named after its column, not its number.
    test = tmp_path / "tl.fits"
    with fits.open(ref) as hdul:
        i = hdul["EVENTS"].columns.names.index("RAWZ") + 1
        hdul["EVENTS"].header[f"TLMAX{i}"] = 511
        hdul.writeto(test)
    d2 = diff_fits(test, ref, _config())
    assert [(x.hdu, x.name) for x in d2.differences] == [("EVENTS", "TLMAX(RAWZ)")]


def test_images_and_vector_columns(tmp_path):
    img = np.arange(64, dtype=np.float32).reshape(8, 8)
    ref, test, shape = tmp_path / "ref.fits", tmp_path / "test.fits", tmp_path / "shape.fits"
    vec = np.tile(np.array([0.0, 0.0, 0.0, 1.0]), (5, 1))
    tab = fits.BinTableHDU.from_columns([fits.Column(name="QPARAM", format="4D", array=vec)], name="ATTITUDE")
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(img, name="EXPMAP"), tab]).writeto(ref)
    img2 = img.copy()
    img2[3, 5] += 1.0
    vec2 = vec.copy()
    vec2[2, 1] = 1e-3
    tab2 = fits.BinTableHDU.from_columns([fits.Column(name="QPARAM", format="4D", array=vec2)], name="ATTITUDE")
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(img2, name="EXPMAP"), tab2]).writeto(test)
    d = diff_fits(test, ref, _config())
    by = {(x.kind, x.hdu): x for x in d.differences}
    assert by[("image", "EXPMAP")].stats.worst_index == (3, 5)
    assert by[("image", "EXPMAP")].stats.n_differ == 1
    assert by[("values", "ATTITUDE")].stats.worst_index == (2, 1)
    assert by[("values", "ATTITUDE")].stats.n_rows_differ == 1
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(img[:4], name="EXPMAP"), tab]).writeto(shape)
    d2 = diff_fits(shape, ref, _config())
    assert [x.kind for x in d2.differences] == ["image"] and "shape" in d2.differences[0].message


def test_unreadable_file_is_a_difference_not_a_crash(tmp_path):
    ref = write_events_file(tmp_path / "ref.fits", n=5)
    bad = tmp_path / "bad.fits"
    bad.write_bytes(b"not a FITS file at all" * 200)
    d = diff_fits(bad, ref, _config())
    assert not d.identical and d.differences[0].kind == "file"
    assert "test file unreadable" in d.account()


@given(
    b=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200),
    rtol=st.floats(0, 1e-2),
    atol=st.floats(0, 1.0),
    data=st.data(),
)
def test_compare_values_counts_exactly_the_elements_beyond_tolerance(b, rtol, atol, data):
    b = np.asarray(b)
    scale = atol + rtol * np.abs(b)
    frac = np.asarray(data.draw(st.lists(st.sampled_from([0.0, 0.5, -0.5, 2.0, -3.0]), min_size=b.size, max_size=b.size)))
    # A perturbation below the float64 resolution of b is absorbed by the addition
    # (1e6 + 2e-206 == 1e6): a is then b itself and nothing can differ.  Only elements
    # whose tolerance is a few ulp of b or more are perturbed, so that a - b is
    # frac * scale to within one rounding and the expected count is exact.
    resolvable = scale >= 8 * np.spacing(np.abs(b) + 4 * scale)
    frac = np.where(resolvable, frac, 0.0)
    a = b + frac * scale
    s = compare_values(a, b, Tolerance(rtol, atol))
    beyond = np.abs(frac) > 1
    assert s.n_differ == int(beyond.sum())
    assert compare_values(b, b, Tolerance(rtol, atol)).n_differ == 0


def test_compare_values_special_values():
    a = np.array([1.0, np.nan, np.inf, -np.inf, 2.0, np.nan])
    b = np.array([1.0, np.nan, np.inf, np.inf, np.nan, 3.0])
    s = compare_values(a, b, Tolerance(0.0, 0.1))
    assert s.n_differ == 3 and s.n_special == 3
    s2 = compare_values(np.array(["a ", "b"]), np.array(["a", "c"]), None)
    assert s2.n_differ == 1 and s2.worst_index == (1,)
    with pytest.raises(ValueError):
        compare_values(np.zeros(3), np.zeros(4), None)
