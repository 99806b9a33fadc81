"""The MXT-SOP-SKY product and the DS9 region file: tables in memory, files through the I/O layer."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from mxt_pipeline.detect.bands import DEFAULT_BANDS, EnergyBand
from mxt_pipeline.detect.srclist import SRCLIST_COLUMNS, empty_source_table, region_text
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.io import get_spec, read_product, validate_file
from mxt_pipeline.io.srclist_product import write_region, write_srclist


def _table(n=3, n_bands=2):
    rng = np.random.default_rng(1)
    r68 = rng.uniform(20, 40, n)
    rows = Table(
        {
            "SRC_ID": np.arange(1, n + 1),
            "RA": rng.uniform(0, 360, n),
            "DEC": rng.uniform(-80, 80, n),
            "ERR_R68": r68,
            "ERR_R90": 1.4 * r68,
            "RAWY": rng.uniform(0, 255, n),
            "RAWZ": rng.uniform(0, 255, n),
            "X": rng.uniform(0, 512, n),
            "Y": rng.uniform(0, 512, n),
            "OFFAXIS": rng.uniform(0, 30, n),
            "COUNTS": rng.uniform(10, 500, (n, n_bands)),
            "COUNTS_ERR": rng.uniform(1, 30, (n, n_bands)),
            "RATE": rng.uniform(0.01, 1, n),
            "RATE_ERR": rng.uniform(0.001, 0.1, n),
            "RATE_BAND": rng.uniform(0.01, 1, (n, n_bands)),
            "RATE_BAND_ERR": rng.uniform(0.001, 0.1, (n, n_bands)),
            "DET_ML": rng.uniform(10, 500, n),
            "QF": rng.integers(0, 5, n),
            "FLAGS": rng.integers(0, 3, n).astype(np.int16),
        }
    )
    assert set(rows.colnames) == set(empty_source_table(n_bands).colnames)
    return rows


def _vector_written(n_bands):
    return get_spec("MXT_SOP_SKY").hdu("SRCLIST").column("COUNTS").repeat == n_bands


def test_roundtrip_and_validation(tmp_path, fitsverify):
    t = _table()
    path = write_srclist(tmp_path / "src.fits", t, DEFAULT_BANDS, obs_id="OBS1", syserr_arcsec=25.0, ml_threshold=10.0,
                         tstart=0.0, tstop=1000.0)
    assert validate_file(path) == []
    res = fitsverify(path)
    assert res.ok, res.output
    prod = read_product(path, "MXT_SOP_SKY")
    src = prod.table("SRCLIST")
    assert list(src.colnames) == list(SRCLIST_COLUMNS)
    for c in ("RA", "DEC", "DET_ML", "ERR_R90"):
        assert np.allclose(src[c], t[c], rtol=1e-6)
    # SRCLIST holds the band sums (errors in quadrature) ...
    assert not _vector_written(2)
    assert np.allclose(src["COUNTS"], np.asarray(t["COUNTS"]).sum(axis=1), rtol=1e-6)
    assert np.allclose(src["COUNTS_ERR"], np.hypot(*np.asarray(t["COUNTS_ERR"]).T), rtol=1e-6)
    # ... and SRCBANDS every band of every source, row s * n_bands + b.
    per = prod.table("SRCBANDS")
    assert list(per["SRC_ID"]) == [1, 1, 2, 2, 3, 3]
    assert list(per["BAND_ID"]) == [1, 2, 1, 2, 1, 2]
    for col, target in (("COUNTS", "COUNTS"), ("COUNTS_ERR", "COUNTS_ERR"), ("RATE_BAND", "RATE"),
                        ("RATE_BAND_ERR", "RATE_ERR")):
        assert np.allclose(np.asarray(per[target]).reshape(3, 2), t[col], rtol=1e-6)
    bands = prod.table("BANDS")
    assert list(bands["E_MIN"]) == pytest.approx([0.2, 2.0]) and list(bands["E_MAX"]) == pytest.approx([2.0, 10.0])
    hdr = prod.header("SRCLIST")
    assert hdr["NBANDS"] == 2 and hdr["SYSERR"] == 25.0 and hdr["MLTHRESH"] == 10.0


def test_empty_field_gives_a_valid_empty_list(tmp_path, fitsverify):
    path = write_srclist(tmp_path / "empty.fits", empty_source_table(2), DEFAULT_BANDS, obs_id="E", syserr_arcsec=25.0,
                         ml_threshold=10.0, tstart=0.0, tstop=10.0)
    assert validate_file(path) == []
    res = fitsverify(path)
    assert res.ok, res.output
    prod = read_product(path, "MXT_SOP_SKY")
    assert len(prod.table("SRCLIST")) == 0 and len(prod.table("SRCBANDS")) == 0
    assert len(prod.table("BANDS")) == 2


@pytest.mark.parametrize("n_bands", [1, 3])
def test_any_number_of_bands_fits_the_format(tmp_path, fitsverify, n_bands):
    bands = [EnergyBand(lo, hi) for lo, hi in ((0.2, 1.0), (1.0, 3.0), (3.0, 10.0))[:n_bands]]
    t = _table(2, n_bands)
    path = write_srclist(tmp_path / "b.fits", t, bands, obs_id="B", syserr_arcsec=25.0, ml_threshold=10.0,
                         tstart=0.0, tstop=10.0)
    assert validate_file(path) == []
    assert fitsverify(path).ok
    per = read_product(path, "MXT_SOP_SKY").table("SRCBANDS")
    assert len(per) == 2 * n_bands
    assert np.allclose(np.asarray(per["COUNTS"]).reshape(2, n_bands), t["COUNTS"], rtol=1e-6)


def test_band_columns_of_the_wrong_size_are_refused(tmp_path):
    t = _table(2, 2)
    with pytest.raises(MXTInputError, match="COUNTS holds 4 values for 2 sources x 1 bands"):
        write_srclist(tmp_path / "x.fits", t, DEFAULT_BANDS[:1], obs_id="X", syserr_arcsec=25.0, ml_threshold=10.0)


def test_missing_columns_are_refused(tmp_path):
    t = _table()
    t.remove_column("DET_ML")
    with pytest.raises(MXTInputError):
        write_srclist(tmp_path / "x.fits", t, DEFAULT_BANDS, obs_id="X", syserr_arcsec=25.0, ml_threshold=10.0)


def test_region_file(tmp_path):
    t = _table(2)
    t["RA"][1] = np.nan
    text = region_text(t)
    assert text.startswith("# Region file format: DS9 version 4.1")
    circles = [line for line in text.splitlines() if line.startswith("circle(")]
    assert len(circles) == 1
    ra, dec, r = circles[0][len("circle(") : circles[0].index(")")].split(",")
    assert float(ra) == pytest.approx(t["RA"][0], abs=1e-6)
    assert float(dec) == pytest.approx(t["DEC"][0], abs=1e-6)
    assert r.endswith('"') and float(r[:-1]) == pytest.approx(t["ERR_R90"][0], abs=0.01)
    assert "no sky position" in text
    path = write_region(tmp_path / "r.reg", t)
    assert path.read_text() == text
