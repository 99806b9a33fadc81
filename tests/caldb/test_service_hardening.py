"""The CALDB service under hostile or broken input: one test per defect found in review.

Each test failed before its fix: a code name that walked out of the root, YAML that
cost gigabytes, gzip FITS refused, symlinks followed out of the tree, a token in a
query string written to the log, 500 answers to client mistakes and to a full disk.
"""

from __future__ import annotations

import errno
import gzip
import logging
import os
import sqlite3
from pathlib import Path

import httpx
import pytest

from mxt_pipeline.caldb import CaDBIO
from mxt_pipeline.caldb.service.upload import MAX_YAML_BYTES, MAX_YAML_DEPTH, parse_upload_yaml
from mxt_pipeline.errors import MXTCaldbNotFound, MXTInputError, MXTServiceError

from .conftest import TOKEN, CalFile, SleepRecorder, files_under, write_cal_file

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def put(svc, node: str, name: str, body: bytes) -> httpx.Response:
    return httpx.put(f"{svc.url}/api/v1/upload/{node}/{name}", content=body, headers=AUTH, timeout=60)


def fits_bytes(tmp_path: Path, cnam: str, **extra) -> bytes:
    cf = CalFile("MXT", "BCF", "CTI", "x.fits", "2024-01-01")
    path = write_cal_file(tmp_path / "src", cf, extra={"CCNM0001": cnam, **extra})
    return path.read_bytes()


def outside(root: Path) -> set[Path]:
    """Every file in the parent of the root that is not under the root."""
    return {p for p in root.parent.rglob("*") if p.is_file() and root not in p.parents}


# ------------------------------------------------------------------ path traversal


@pytest.mark.parametrize(
    "cnam", ["../../../../../x", "CTI/../../ESCAPE", "..", "A" * 21, "cti lower", "CT\\I", "CTI.X"]
)
def test_code_name_cannot_leave_the_root(fresh_service, tmp_path, cnam):
    root = fresh_service.store.root
    body = fits_bytes(tmp_path, cnam)
    before, before_out = files_under(root / "data"), outside(root)
    r = put(fresh_service, "MXT", "mxt_cti_v01.fits", body)
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert "CCNM0001" in detail or "CAL_CNAM" in detail, detail
    assert files_under(root / "data") == before and outside(root) == before_out


@pytest.mark.parametrize(("clas", "keyword"), [("../X", "CAL_CLAS"), ("ABC", "CAL_CLAS"), ("X/Y", "CAL_CLAS")])
def test_class_must_be_a_caldb_class(fresh_service, tmp_path, clas, keyword):
    r = put(fresh_service, "MXT", "mxt_cti_v01.fits", fits_bytes(tmp_path, "CTI", CCLS0001=clas))
    assert r.status_code == 400 and keyword in r.json()["detail"], r.text


@pytest.mark.parametrize("name", ["a;b.fits", "x$(id).fits", "a'b.fits", "-x.fits"])
def test_file_names_follow_the_grammar(fresh_service, tmp_path, name):
    r = put(fresh_service, "MXT", name, fits_bytes(tmp_path, "CTI"))
    assert r.status_code == 400 and "file name" in r.json()["detail"]


def test_symlinked_folder_does_not_lead_writes_outside(fresh_service, tmp_path):
    root = fresh_service.store.root
    escape = tmp_path / "escape"
    escape.mkdir()
    (root / "data/svom/mxt/bcf/cti").symlink_to(escape, target_is_directory=True)
    r = put(fresh_service, "MXT", "mxt_cti_v01.fits", fits_bytes(tmp_path, "CTI"))
    assert r.status_code == 400 and "outside the CALDB root" in r.json()["detail"]
    assert list(escape.iterdir()) == []


def test_upload_errors_do_not_show_server_paths(fresh_service, tmp_path):
    body = fits_bytes(tmp_path, "CTI", CVSD0001=None)
    r = put(fresh_service, "MXT", "mxt_cti_v01.fits", body)
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert "CVSD0001" in detail and "mxt_cti_v01.fits" in detail
    assert str(fresh_service.store.root) not in detail and ".part" not in detail and "staging" not in detail


# ------------------------------------------------------------------ gzip FITS


def test_gzip_fits_upload_is_accepted(fresh_service, tmp_path):
    body = gzip.compress(fits_bytes(tmp_path, "CTI"))
    r = put(fresh_service, "MXT", "mxt_cti_v01.fits.gz", body)
    assert r.status_code == 201, r.text
    assert r.json()["path"] == "data/svom/mxt/bcf/cti/mxt_cti_v01.fits.gz"
    with CaDBIO(url=fresh_service.url, token=TOKEN, sleep=SleepRecorder()) as c:
        [got] = c.search("MXT", "cti", tmp_path / "dl")
    assert got.read_bytes() == body


def test_gzip_content_needs_a_gz_name(fresh_service, tmp_path):
    r = put(fresh_service, "MXT", "mxt_cti_v01.fits", gzip.compress(fits_bytes(tmp_path, "CTI")))
    assert r.status_code == 400 and ".gz" in r.json()["detail"]


def test_corrupt_gzip_is_a_400(fresh_service, tmp_path):
    body = gzip.compress(fits_bytes(tmp_path, "CTI"))[:200]
    r = put(fresh_service, "MXT", "mxt_cti_v01.fits.gz", body)
    assert r.status_code == 400, r.text


# ------------------------------------------------------------------ YAML limits

YAML_NAME = "MXT_EVTTHR_20250301T120000_v01.yaml"


def test_deep_yaml_is_refused_before_it_is_built(fresh_service):
    deep = ("a: " + "[" * 20000 + "]" * 20000 + "\n").encode()
    r = put(fresh_service, "MXT", YAML_NAME, deep)
    assert r.status_code == 400 and f"deeper than {MAX_YAML_DEPTH}" in r.json()["detail"]
    flow = ("a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 200)) + "  " * 200 + "x: 1\n").encode()
    r = put(fresh_service, "MXT", YAML_NAME, flow)
    assert r.status_code == 400 and "deeper than" in r.json()["detail"]


def test_large_yaml_is_a_413_before_it_is_read(fresh_service):
    body = b"a: 1\n" + b"# padding\n" * (MAX_YAML_BYTES // 10 + 1)
    r = put(fresh_service, "MXT", YAML_NAME, body)
    assert r.status_code == 413 and str(MAX_YAML_BYTES) in r.json()["detail"]
    assert list(fresh_service.store.staging_dir.iterdir()) == []


def test_yaml_aliases_are_refused():
    bomb = b"a: &a [1, 1, 1]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n"
    with pytest.raises(MXTInputError, match="aliases"):
        parse_upload_yaml(bomb, YAML_NAME)


def test_yaml_within_limits_still_parses():
    doc = "\n".join(f"k{i}: {i}" for i in range(5000)).encode()
    assert parse_upload_yaml(doc, YAML_NAME)["k4999"] == 4999


def test_yaml_node_count_is_limited():
    doc = ("a: [" + ",".join("1" for _ in range(100_001)) + "]\n").encode()
    assert len(doc) < MAX_YAML_BYTES
    with pytest.raises(MXTInputError, match="YAML nodes"):
        parse_upload_yaml(doc, YAML_NAME)


# ------------------------------------------------------------------ 4xx/507, not 500


@pytest.mark.parametrize("fid", [2**63, 2**64 + 5, 0])
def test_huge_or_zero_file_id_is_a_404(served, fid):
    r = httpx.get(f"{served.url}/api/v1/files/{fid}", headers=AUTH)
    assert r.status_code == 404, r.text


def test_broken_symlink_in_the_tree_is_a_404(fresh_service, tmp_path):
    root = fresh_service.store.root
    target = root / "data/svom/vt/bcf/teldef/vt_teldef_v01.fits"
    target.unlink()
    target.symlink_to(tmp_path / "gone.fits")
    with sqlite3.connect(fresh_service.store.db_path) as conn:
        (fid,) = conn.execute("SELECT id FROM files WHERE cal_file = 'vt_teldef_v01.fits'").fetchone()
    r = httpx.get(f"{fresh_service.url}/api/v1/files/{fid}", headers=AUTH)
    assert r.status_code == 404 and "missing on disk" in r.json()["detail"]


def test_symlink_out_of_the_root_is_not_served(fresh_service, tmp_path):
    root = fresh_service.store.root
    secret = tmp_path / "secret.txt"
    secret.write_text("not for clients")
    target = root / "data/svom/vt/bcf/teldef/vt_teldef_v01.fits"
    target.unlink()
    target.symlink_to(secret)
    with sqlite3.connect(fresh_service.store.db_path) as conn:
        (fid,) = conn.execute("SELECT id FROM files WHERE cal_file = 'vt_teldef_v01.fits'").fetchone()
    r = httpx.get(f"{fresh_service.url}/api/v1/files/{fid}", headers=AUTH)
    assert r.status_code == 404 and "not for clients" not in r.text


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG])
def test_full_disk_is_a_507_and_not_retried(fresh_service, tmp_path, monkeypatch, code):
    import mxt_pipeline.caldb.service.store as store_mod

    def full(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(store_mod.os, "replace", full)
    f = tmp_path / YAML_NAME
    f.write_text("threshold_adu: 120\n")
    sleeps = SleepRecorder()
    with CaDBIO(url=fresh_service.url, token=TOKEN, sleep=sleeps, max_tries=4) as c:
        with pytest.raises(MXTServiceError, match="HTTP 507") as info:
            c.upload(f)
    assert info.value.status == 507 and sleeps.waits == []  # not retried as transient
    assert str(fresh_service.store.root) not in str(info.value)


# ------------------------------------------------------------------ tokens in URLs


def test_token_in_query_string_is_refused_and_not_logged(served, caplog):
    caplog.set_level(logging.INFO)
    for path in ("search?instrume=MXT&token=", "files/1?access_token=", "health?TOKEN="):
        r = httpx.get(f"{served.url}/api/v1/{path}{TOKEN}", headers=AUTH)
        assert r.status_code == 400 and "Authorization" in r.json()["detail"]
    httpx.get(f"{served.url}/api/v1/search?instrume=MXT&codename=PSF", headers=AUTH)
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("mxt_pipeline"))
    assert "GET /api/v1/search?[codename&instrume] 200" in text
    assert "GET /api/v1/files/1?[access_token] 400" in text
    assert TOKEN not in text and "PSF" not in text


# ------------------------------------------------------------------ search index


def test_search_sees_uploads_at_once_and_keeps_the_reason(fresh_service, tmp_path):
    with CaDBIO(url=fresh_service.url, token=TOKEN, sleep=SleepRecorder()) as c:
        with pytest.raises(MXTCaldbNotFound, match=r"code name CTI not in the index \(known: .*TELDEF"):
            c.search("MXT", "cti", tmp_path / "dl")
        assert put(fresh_service, "MXT", "mxt_cti_v01.fits", fits_bytes(tmp_path, "CTI")).status_code == 201
        assert [p.name for p in c.search("MXT", "cti", tmp_path / "dl")] == ["mxt_cti_v01.fits"]
        # A second store on the same root (another process) sees the change too.
        from mxt_pipeline.caldb.select import CaldbQuery
        from mxt_pipeline.caldb.service.store import CaldbStore

        other = CaldbStore(fresh_service.store.root)
        q = CaldbQuery(telescop="SVOM", instrume="MXT", codename="CTI", date="now")
        assert len(other.search(q)[0]) == 1
        assert put(fresh_service, "MXT", "mxt_cti_v02.fits", fits_bytes(tmp_path, "CTI")).status_code == 201
        assert sorted(r["cif"]["CAL_FILE"] for r in other.search(q)[0]) == ["mxt_cti_v02.fits"]


# ------------------------------------------------------------------ the index grammar


@pytest.mark.parametrize(("cal_dir", "cal_file"), [("../../../../x", "f.fits"), ("/etc", "f.fits"),
                                                   ("data/svom/mxt/../../..", "f.fits"), ("data", "../f.fits"),
                                                   ("data", "a/b.fits"), ("data", "..")])  # fmt: skip
def test_index_rows_cannot_point_outside_the_root(cal_dir, cal_file):
    from mxt_pipeline.caldb.cif import CifRow

    with pytest.raises(MXTInputError, match="CAL_DIR|CAL_FILE"):
        CifRow(telescop="SVOM", instrume="MXT", detnam="NONE", filter="NONE", cal_dev="ONLINE", cal_dir=cal_dir,
               cal_file=cal_file, cal_clas="BCF", cal_dtyp="DATA", cal_cnam="CTI", cal_cbd=(), cal_xno=1,
               cal_vsd="2024-01-01", cal_vst="00:00:00", cal_qual=0, cal_date="2024-01-01", cal_desc="")  # fmt: skip
