"""The MXT-SOP-SKY product and the DS9 region file."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from mxt_pipeline.detect.bands import DEFAULT_BANDS
from mxt_pipeline.detect.srclist import (
    SRCLIST_COLUMNS,
    empty_source_table,
    region_text,
    write_region,
    write_srclist,
)
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.io import get_spec, read_product, validate_file


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
            "DET_ML": rng.uniform(10, 500, n),
            "QF": rng.integers(0, 5, n),
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
    if _vector_written(2):
        assert np.allclose(src["COUNTS"], t["COUNTS"], rtol=1e-6)
    else:
        # The registered format declares scalar COUNTS: band sums are written.
        assert np.allclose(src["COUNTS"], np.asarray(t["COUNTS"]).sum(axis=1), rtol=1e-6)
        assert np.allclose(src["COUNTS_ERR"], np.hypot(*np.asarray(t["COUNTS_ERR"]).T), rtol=1e-6)
    bands = prod.table("BANDS")
    assert list(bands["E_MIN"]) == pytest.approx([0.2, 2.0]) and list(bands["E_MAX"]) == pytest.approx([2.0, 10.0])
    hdr = prod.header("SRCLIST")
    assert hdr["NBANDS"] == 2 and hdr["SYSERR"] == 25.0 and hdr["MLTHRESH"] == 10.0


def test_empty_field_gives_a_valid_empty_list(tmp_path, fitsverify):
    path = write_srclist(tmp_path / "empty.fits", empty_source_table(2), DEFAULT_BANDS, obs_id="E", syserr_arcsec=25.0,
                         ml_threshold=10.0, tstart=0.0, tstop=10.0)
    assert validate_file(path) == []
    assert fitsverify(path).ok
    assert len(read_product(path, "MXT_SOP_SKY").table("SRCLIST")) == 0


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
