"""Building caldb.indx from the files' CALDB keywords; the local CaDBIO backend."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from mxt_pipeline.caldb import CaDBIO, build_index, read_cif, scan_calibration_files
from mxt_pipeline.caldb.cif import ref_time_mjd
from mxt_pipeline.caldb.config import config_path, find_entry, read_config
from mxt_pipeline.errors import MXTCaldbAmbiguous, MXTCaldbError, MXTCaldbNotFound, MXTFormatError
from mxt_pipeline.io import validate_file
from mxt_pipeline.services.files import sha256_file

from .conftest import TINY_FILES, CalFile, write_cal_file


def test_index_rows_from_keywords(tiny_caldb):
    rows = read_cif(tiny_caldb / "data/svom/mxt/caldb.indx")
    n_hdus = sum(len(cf.cbds) for cf in TINY_FILES if cf.inst == "MXT")
    assert len(rows) == n_hdus
    psf = sorted((r for r in rows if r.cal_cnam == "PSF"), key=lambda r: r.cal_xno)
    assert [r.cal_xno for r in psf] == [1, 2]
    assert psf[0].cal_cbd[:2] == ("ENERGY(0.2-2)keV", "THETA(0-30)arcmin")
    assert psf[0].cal_dir == "data/svom/mxt/bcf/psf"
    teldef2 = next(r for r in rows if r.cal_file == "mxt_teldef_20250601_v02.fits")
    assert (teldef2.cal_vsd, teldef2.cal_vst) == ("2025-06-01", "12:00:00")
    assert teldef2.ref_time == ref_time_mjd("2025-06-01", "12:00:00")
    matrix = next(r for r in rows if r.cal_cnam == "MATRIX")
    assert matrix.cal_clas == "CPF" and matrix.cal_dir == "data/svom/mxt/cpf/matrix"
    badpix = next(r for r in rows if r.cal_cnam == "BADPIX")
    assert badpix.detnam == "CCD1" and badpix.filter == "NONE"
    quality = {r.cal_file: r.cal_qual for r in rows if r.cal_cnam == "SYSERR"}
    assert quality == {"mxt_syserr_v01.fits": 5, "mxt_syserr_v02.fits": 0}
    assert {r.cal_date for r in rows} == {"2025-01-01"}  # SOURCE_DATE_EPOCH


def test_index_files_pass_fitsverify_and_validate(tiny_caldb, fitsverify):
    for inst in ("mxt", "ecl", "vt"):
        path = tiny_caldb / f"data/svom/{inst}/caldb.indx"
        result = fitsverify(path)
        assert result.errors == 0, result.output
        assert validate_file(path) == []


def test_dated_copy_and_config(tiny_caldb):
    idx = tiny_caldb / "data/svom/mxt/caldb.indx"
    dated = tiny_caldb / "data/svom/mxt/index/caldb.indx20250101"
    assert filecmp.cmp(idx, dated, shallow=False)
    entries = read_config(config_path(tiny_caldb))
    mxt = find_entry(entries, "svom", "mxt")
    assert mxt is not None and mxt.line() == "SVOM MXT CALDB data/svom/mxt caldb.indx CALDB data/svom/mxt"
    assert mxt.cif_path({"CALDB": str(tiny_caldb)}) == idx
    assert {e.instrument for e in entries} == {"MXT", "ECL", "VT"}


def _cards(path: Path) -> list:
    """Header cards of every HDU, without the checksums (astropy stamps the wall-clock
    time in their comments, which SOURCE_DATE_EPOCH does not pin)."""
    from astropy.io import fits

    with fits.open(path) as hdul:
        return [
            [(c.keyword, c.value, c.comment) for c in h.header.cards if c.keyword not in ("CHECKSUM", "DATASUM")]
            for h in hdul
        ]


def test_rebuild_reproduces_the_index(tiny_caldb):
    idx = tiny_caldb / "data/svom/mxt/caldb.indx"
    rows, cards = read_cif(idx), _cards(idx)
    build_index(tiny_caldb, "SVOM", "MXT", {"mxt_syserr_v01.fits": 5})
    assert read_cif(idx) == rows and _cards(idx) == cards


def test_quality_override_by_path_and_unknown_name(tiny_caldb):
    rows = scan_calibration_files(
        tiny_caldb, quality={"data/svom/mxt/bcf/teldef/mxt_teldef_20250601_v02.fits": 5}
    )
    assert {r.cal_file for r in rows if r.cal_qual == 5} == {"mxt_teldef_20250601_v02.fits"}
    with pytest.raises(MXTCaldbError, match="not_there.fits"):
        scan_calibration_files(tiny_caldb, quality={"not_there.fits": 5})


def test_non_calibration_content_is_skipped(tiny_caldb):
    (tiny_caldb / "data/svom/mxt/bcf/teldef/README.txt").write_text("notes")
    (tiny_caldb / "data/svom/mxt/bcf/teldef/.hidden.fits").write_bytes(b"SIMPLE  = junk")
    assert len(scan_calibration_files(tiny_caldb)) == len(read_cif(tiny_caldb / "data/svom/mxt/caldb.indx"))


@pytest.mark.parametrize(
    ("extra", "keyword", "fragment"),
    [
        ({"CBD10001": "ENERGY(5-1)keV"}, "CBD10001", "min > max"),
        ({"CVSD0001": None}, "CVSD0001", "required calibration keyword missing"),
        ({"CVSD0001": "2024/01/01"}, "CVSD0001", "not YYYY-MM-DD"),
        ({"CVST0001": "12h00"}, "CVST0001", "not hh:mm:ss"),
        ({"INSTRUME": "ECL"}, "INSTRUME", "expected 'MXT'"),
        ({"CCLS0001": "CPF"}, "CCLS0001", "BCF tree"),
        ({"CCNM0001": 12}, "CCNM0001", "must be a string"),
    ],
)
def test_bad_keywords_are_located(tiny_caldb, extra, keyword, fragment):
    cf = CalFile("MXT", "BCF", "GAINOFF", "mxt_gainoff_v01.fits", "2024-01-01")
    path = write_cal_file(tiny_caldb, cf, extra=extra)
    with pytest.raises(MXTFormatError) as info:
        scan_calibration_files(tiny_caldb)
    err = info.value
    assert err.file == str(path) and err.hdu == 1
    assert err.keyword == keyword
    assert fragment in err.message


def test_upload_yaml_in_tree_is_indexed(tiny_caldb):
    up = tiny_caldb / "data/svom/mxt/upload/evtthr"
    up.mkdir(parents=True)
    (up / "MXT_EVTTHR_20250301T120000_v01.yaml").write_text("threshold: 100\n")
    (up / "MXT_EVTTHR_20250301T120000_v02.yaml").write_text("threshold: 120\n")
    rows = [r for r in scan_calibration_files(tiny_caldb) if r.cal_cnam == "EVTTHR"]
    assert {(r.cal_file, r.cal_qual, r.cal_xno) for r in rows} == {
        ("MXT_EVTTHR_20250301T120000_v01.yaml", 5, -1),
        ("MXT_EVTTHR_20250301T120000_v02.yaml", 0, -1),
    }
    (up / "MXT_EVTTHR_20250401T000000_v01.yaml").write_text("- not a mapping\n")
    with pytest.raises(MXTFormatError, match="must be a mapping"):
        scan_calibration_files(tiny_caldb)


# ------------------------------------------------------------------ local CaDBIO


def test_local_client_every_code_name(tiny_caldb, tmp_path):
    client = CaDBIO(caldb=tiny_caldb)
    for cnam in ("TELDEF", "PSF", "MATRIX", "BADPIX", "SYSERR"):
        paths = client.search("MXT", cnam.lower())
        assert paths and all(p.is_file() and p.is_relative_to(tiny_caldb) for p in paths)
    # With a download folder the files are copied there (identical bytes).
    out = client.search("MXT", "teldef", download_path=tmp_path / "dl")
    assert out == [tmp_path / "dl" / "mxt_teldef_20250601_v02.fits"]
    src = tiny_caldb / "data/svom/mxt/bcf/teldef/mxt_teldef_20250601_v02.fits"
    assert sha256_file(out[0]) == sha256_file(src)


def test_local_client_selection(tiny_caldb):
    client = CaDBIO(caldb=tiny_caldb)
    old = client.search("MXT", "TELDEF", date="2025-05-31")
    assert [p.name for p in old] == ["mxt_teldef_20240101_v01.fits"]
    path, xno = client.search_one("MXT", "psf", expr="energy.eq.5")
    assert (path.name, xno) == ("mxt_psf_20240101_v01.fits", 2)
    with pytest.raises(MXTCaldbAmbiguous):
        client.search_one("MXT", "psf")
    assert [p.name for p in client.search("MXT", "syserr")] == ["mxt_syserr_v02.fits"]
    with pytest.raises(MXTCaldbNotFound, match="GAINOFF"):
        client.search("MXT", "gainoff")
    assert [p.name for p in client.search("vt", "teldef")] == ["vt_teldef_v01.fits"]


def test_local_backend_default_root(monkeypatch, tiny_caldb):
    monkeypatch.setenv("CALDB", str(tiny_caldb))
    client = CaDBIO()
    assert not client.is_remote and client.backend.root == Path(tiny_caldb)
    assert client.search("ECL", "TELDEF")[0].name == "ecl_teldef_v01.fits"


def test_local_backend_missing_index(tmp_path):
    with pytest.raises(MXTCaldbError, match="no calibration index for SVOM MXT"):
        CaDBIO(caldb=tmp_path).search("MXT", "teldef")


def test_local_index_reread_after_change(tiny_caldb):
    client = CaDBIO(caldb=tiny_caldb)
    assert client.search("MXT", "teldef")[0].name == "mxt_teldef_20250601_v02.fits"
    build_index(tiny_caldb, quality={"mxt_teldef_20250601_v02.fits": 5, "mxt_syserr_v01.fits": 5})
    assert client.search("MXT", "teldef")[0].name == "mxt_teldef_20240101_v01.fits"


def test_missing_indexed_file(tiny_caldb):
    (tiny_caldb / "data/svom/mxt/cpf/matrix/mxt_rmf_20240101_v01.rmf").unlink()
    with pytest.raises(MXTCaldbError, match="missing"):
        CaDBIO(caldb=tiny_caldb).search("MXT", "matrix")
