"""The real CALDB service on 127.0.0.1 driven through CaDBIO, and misbehaving servers."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mxt_pipeline.caldb import CaDBIO, read_cif
from mxt_pipeline.caldb.service.server import AppThread
from mxt_pipeline.errors import (
    MXTAuthError,
    MXTCaldbNotFound,
    MXTServiceError,
    MXTServiceUnavailable,
)
from mxt_pipeline.io import validate_file
from mxt_pipeline.services.files import sha256_file

from .conftest import TINY_FILES, TOKEN, SleepRecorder, files_under


def client(url: str, **kw) -> CaDBIO:
    kw.setdefault("token", TOKEN)
    kw.setdefault("sleep", SleepRecorder(0.01))
    return CaDBIO(url=url, **kw)


def source(root: Path, name: str) -> Path:
    return next(root / cf.relpath for cf in TINY_FILES if cf.name == name)


# ------------------------------------------------------------------ search and download


def test_search_and_download_every_code_name(served, tmp_path):
    root = served.store.root
    with client(served.url) as c:
        for inst, cnam in sorted({(cf.inst, cf.cnam) for cf in TINY_FILES}):
            paths = c.search(inst, cnam.lower(), download_path=tmp_path / inst)
            assert paths, (inst, cnam)
            for p in paths:
                assert p.parent == tmp_path / inst
                assert sha256_file(p) == sha256_file(source(root, p.name))


def test_selection_by_validity_date_across_version_change(served, tmp_path):
    with client(served.url) as c:
        before = c.search("MXT", "teldef", tmp_path, date="2025-06-01", time="11:59:59")
        after = c.search("MXT", "teldef", tmp_path, date="2025-06-01T12:00:00")
        assert [p.name for p in before] == ["mxt_teldef_20240101_v01.fits"]
        assert [p.name for p in after] == ["mxt_teldef_20250601_v02.fits"]
        # Aware datetimes are converted to UTC (14:00 at UTC+2 is the 12:00 UTC change).
        cest = timezone(timedelta(hours=2))
        aware = c.search("MXT", "teldef", tmp_path, date=datetime(2025, 6, 1, 14, 0, 0, tzinfo=cest))
        assert [p.name for p in aware] == ["mxt_teldef_20250601_v02.fits"]
        aware = c.search("MXT", "teldef", tmp_path, date=datetime(2025, 6, 1, 13, 59, 59, tzinfo=cest))
        assert [p.name for p in aware] == ["mxt_teldef_20240101_v01.fits"]
        assert [p.name for p in c.search("MXT", "syserr", tmp_path)] == ["mxt_syserr_v02.fits"]
        path, xno = c.search_one("MXT", "psf", tmp_path, expr="energy.eq.1.5.and.theta.le.10")
        assert (path.name, xno) == ("mxt_psf_20240101_v01.fits", 1)


def test_not_found_names_the_query(served):
    with client(served.url) as c, pytest.raises(MXTCaldbNotFound) as info:
        c.search("MXT", "teldef", date="2020-01-01", expr="energy.eq.3")
    msg = str(info.value)
    assert all(s in msg for s in ("MXT", "TELDEF", "2020-01-01", "energy.eq.3", "valid from 2024-01-01"))


def test_bad_query_is_a_400(served):
    with client(served.url) as c:
        with pytest.raises(MXTServiceError, match="HTTP 400.*PARAM.OP.VALUE"):
            c.search("MXT", "psf", expr="energy.is.5")
        with pytest.raises(MXTServiceError, match="HTTP 400.*unknown instrument"):
            c.search("XRT", "teldef")


def test_fifty_concurrent_clients(served, tmp_path):
    """50 threads, each with its own client, some sharing a download folder."""
    root = served.store.root
    cases = [
        ("teldef", {"date": "2025-01-01"}, "mxt_teldef_20240101_v01.fits"),
        ("teldef", {"date": "2025-07-01"}, "mxt_teldef_20250601_v02.fits"),
        ("psf", {"expr": "energy.eq.5"}, "mxt_psf_20240101_v01.fits"),
        ("matrix", {}, "mxt_rmf_20240101_v01.rmf"),
        ("syserr", {}, "mxt_syserr_v02.fits"),
    ]

    def work(i: int) -> tuple[int, list[Path]]:
        cnam, kw, _ = cases[i % len(cases)]
        with client(served.url) as c:
            return i, c.search("MXT", cnam, tmp_path / f"dl{i % 7}", **kw)

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(work, range(50)))
    assert len(results) == 50
    for i, paths in results:
        expected = cases[i % len(cases)][2]
        assert [p.name for p in paths] == [expected]
        assert sha256_file(paths[0]) == sha256_file(source(root, expected))
    assert not [p for p in tmp_path.rglob("*.part")]


# ------------------------------------------------------------------ authentication


def test_wrong_token_fails_at_once(served):
    sleeps = SleepRecorder()
    with client(served.url, token="not-the-token", sleep=sleeps) as c, pytest.raises(MXTAuthError, match="401"):
        c.search("MXT", "teldef")
    assert sleeps.waits == []


def test_missing_token_fails_before_any_request(served):
    with pytest.raises(MXTAuthError, match="no token"):
        CaDBIO(url=served.url)
    with CaDBIO(url=served.url, use_tokens=False) as c, pytest.raises(MXTAuthError, match="no token was sent"):
        c.search("MXT", "teldef")


def test_token_from_runtime_data_and_env(served, tmp_path, monkeypatch):
    rd = tmp_path / "runtime_data.json"
    rd.write_text(json.dumps({"token": TOKEN}))
    with CaDBIO(url=served.url, runtime_data=rd) as c:
        assert c.search("MXT", "matrix", tmp_path)
    monkeypatch.setenv("MXT_TOKEN", TOKEN)
    monkeypatch.setenv("MXT_CALDB_URL", served.url)
    with CaDBIO() as c:
        assert c.is_remote and c.search("ECL", "teldef", tmp_path)


def test_health_needs_no_token_but_everything_else_does(served):
    assert httpx.get(f"{served.url}/api/v1/health").json() == {"status": "ok"}
    for path in ("/api/v1/nodes", "/api/v1/search?instrume=MXT", "/api/v1/files/1", "/api/v1/index/MXT"):
        r = httpx.get(served.url + path)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    r = httpx.get(f"{served.url}/api/v1/index/MXT", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.content.startswith(b"SIMPLE")
    nodes = httpx.get(f"{served.url}/api/v1/nodes", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert [n["instrument"] for n in nodes["nodes"]] == ["MXT", "ECL", "VT"]


# ------------------------------------------------------------------ misbehaving servers


class FlakyServer:
    """Answers 503 (with Retry-After) ``failures`` times, then like the real service."""

    def __init__(self, real_url: str, failures: int = 2, retry_after: str | None = "0.05") -> None:
        self.real_url = real_url
        self.failures = failures
        self.retry_after = retry_after
        self.calls = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        self.calls += 1
        if self.calls <= self.failures:
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            response: Response = JSONResponse({"detail": "busy"}, status_code=503, headers=headers)
        else:
            # Proxy to the real service.
            headers = {k.decode(): v.decode() for k, v in scope["headers"] if k.lower() == b"authorization"}
            qs = scope["query_string"].decode()
            async with httpx.AsyncClient() as http:
                r = await http.get(f"{self.real_url}{scope['path']}" + (f"?{qs}" if qs else ""), headers=headers)
            keep = {k: v for k, v in r.headers.items() if k.lower() not in ("content-length", "transfer-encoding")}
            response = Response(r.content, status_code=r.status_code, headers=keep)
        await response(scope, receive, send)


def test_503_twice_then_200_is_retried_to_success(served, tmp_path):
    flaky = FlakyServer(served.url, failures=2)
    sleeps = SleepRecorder(cap=0.05)
    with AppThread(flaky) as fake, client(fake.url, sleep=sleeps) as c:
        paths = c.search("MXT", "teldef", tmp_path)
    assert [p.name for p in paths] == ["mxt_teldef_20250601_v02.fits"]
    assert sleeps.waits == [0.05, 0.05]  # Retry-After honoured
    assert flaky.calls == 4  # 2 x 503, search, download


def test_persistent_503_exhausts_retries(served):
    flaky = FlakyServer(served.url, failures=100, retry_after=None)
    sleeps = SleepRecorder(cap=0.0)
    with AppThread(flaky) as fake, client(fake.url, sleep=sleeps, max_tries=3) as c:
        with pytest.raises(MXTServiceUnavailable, match="failed after 3 tries.*HTTP 503"):
            c.search("MXT", "teldef")
    assert flaky.calls == 3 and len(sleeps.waits) == 2


def test_401_from_a_server_is_not_retried():
    calls = []

    async def deny(request):
        calls.append(1)
        return JSONResponse({"detail": "token expired"}, status_code=401)

    app = Starlette(routes=[Route("/api/v1/search", deny)])
    with AppThread(app) as fake, client(fake.url) as c:
        with pytest.raises(MXTAuthError, match="token expired"):
            c.search("MXT", "teldef")
    assert calls == [1]


def test_unreachable_service_is_unavailable():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    sleeps = SleepRecorder(cap=0.0)
    with client(f"http://127.0.0.1:{port}", sleep=sleeps, max_tries=3) as c:
        with pytest.raises(MXTServiceUnavailable, match="connection error"):
            c.search("MXT", "teldef")
    assert len(sleeps.waits) == 2


def evil_app(cal_file: str, disposition: str) -> Starlette:
    body = b"SIMPLE  = T evil payload"
    sha = hashlib.sha256(body).hexdigest()
    row = {
        "TELESCOP": "SVOM", "INSTRUME": "MXT", "DETNAM": "NONE", "FILTER": "NONE", "CAL_DEV": "ONLINE",
        "CAL_DIR": "data/svom/mxt/bcf/teldef", "CAL_FILE": cal_file, "CAL_CLAS": "BCF", "CAL_DTYP": "DATA",
        "CAL_CNAM": "TELDEF", "CAL_CBD": ["NONE"] * 9, "CAL_XNO": 1, "CAL_VSD": "2024-01-01",
        "CAL_VST": "00:00:00", "REF_TIME": 60310.0, "CAL_QUAL": 0, "CAL_DATE": "2024-01-01", "CAL_DESC": "",
    }  # fmt: skip

    async def search(request):
        return JSONResponse({"count": 1, "rows": [{"cif": row, "file_id": 1, "sha256": sha, "size": len(body)}]})

    async def download(request):
        return Response(body, headers={"Content-Disposition": f'attachment; filename="{disposition}"',
                                       "X-Checksum-SHA256": sha})  # fmt: skip

    return Starlette(routes=[Route("/api/v1/search", search), Route("/api/v1/files/{i:int}", download)])


@pytest.mark.parametrize(
    ("cal_file", "disposition"),
    [("../../evil", "../../evil"), ("/tmp/evil", "evil"), ("..", ".."), ("ok.fits", "../../evil")],
)
def test_server_cannot_write_outside_download_path(tmp_path, cal_file, disposition):
    target = tmp_path / "deep" / "er" / "download"
    with AppThread(evil_app(cal_file, disposition)) as fake, client(fake.url) as c:
        if cal_file == "ok.fits":
            # The row's name is used; the header's traversal name is never followed.
            assert c.search("MXT", "teldef", target) == [target / "ok.fits"]
        else:
            with pytest.raises(MXTServiceError, match="file name"):
                c.search("MXT", "teldef", target)
    outside = {p for p in files_under(tmp_path) if not str(p).startswith("deep/er/download/")}
    assert outside == set()
    assert files_under(target) <= {Path("ok.fits")}


# ------------------------------------------------------------------ uploads


def db_count(svc) -> int:
    with sqlite3.connect(svc.store.db_path) as conn:
        return conn.execute("SELECT COUNT(*) FROM datasets").fetchone()[0]


def test_yaml_upload_is_onboard_and_indexed(fresh_service, tmp_path, fitsverify):
    root = fresh_service.store.root
    f = tmp_path / "MXT_EVTTHR_20250301T120000_v01.yaml"
    f.write_text("threshold_adu: 120\nsplit_adu: 30\n")
    with client(fresh_service.url) as c:
        result = c.upload(f)
        assert result["status"] == "created" and result["type"] == "onboard"
        assert c.upload(f)["status"] == "unchanged"  # idempotent: a retried upload is harmless
        with pytest.raises(MXTCaldbNotFound, match="valid from 2025-03-01T12:00:00"):
            c.search("MXT", "evtthr", tmp_path / "dl", date="2025-03-01T11:59:59")
        entries = c.entries("MXT", "evtthr", date="2025-03-01T12:00:00")
        assert [e.product_type for e in entries] == ["onboard"]
        assert entries[0].row.cal_xno == -1 and entries[0].extra["valid_from"] == "2025-03-01T12:00:00"
        [got] = c.search("MXT", "evtthr", tmp_path / "dl")
        assert got.read_bytes() == f.read_bytes()
        # v02 with the same validity start supersedes v01.
        f2 = tmp_path / "MXT_EVTTHR_20250301T120000_v02.yaml"
        f2.write_text("threshold_adu: 125\nsplit_adu: 30\n")
        assert c.upload(f2)["superseded"] == ["data/svom/mxt/upload/evtthr/MXT_EVTTHR_20250301T120000_v01.yaml"]
        assert [p.name for p in c.search("MXT", "evtthr", tmp_path / "dl")] == [f2.name]
        f.write_text("threshold_adu: 99\n")  # same name, other content
        with pytest.raises(MXTServiceError, match="HTTP 409.*already stored with other content"):
            c.upload(f)
        (tmp_path / "MXT_EVTTHR_20250401T000000_v03.yaml").write_text("threshold_adu: 130\n")
        c.upload(tmp_path / "MXT_EVTTHR_20250401T000000_v03.yaml")
        (tmp_path / "MXT_EVTTHR_20250401T000000_v02.yaml").write_text("threshold_adu: 128\n")
        with pytest.raises(MXTServiceError, match="HTTP 409.*v02 is not newer than the stored .*v03"):
            c.upload(tmp_path / "MXT_EVTTHR_20250401T000000_v02.yaml")
    idx = root / "data/svom/mxt/caldb.indx"
    rows = {r.cal_file: r for r in read_cif(idx)}
    assert rows[f.name].cal_qual == 5 and rows[f2.name].cal_qual == 0
    assert "MXT_EVTTHR_20250401T000000_v02.yaml" not in rows
    assert fitsverify(idx).errors == 0 and validate_file(idx) == []


BAD_NAMES = [
    ("MXT_EVTTHR_20250301T120000.yaml", "four fields"),
    ("MXT_EVTTHR_20250301T120000_v1.yaml", "version 'v1'"),
    ("MXT_evtthr_20250301T120000_v01.yaml", "code name 'evtthr'"),
    ("XRT_EVTTHR_20250301T120000_v01.yaml", "unknown instrument 'XRT'"),
    ("MXT_EVTTHR_20250230T120000_v01.yaml", "not a valid date"),
    ("MXT_EVTTHR_2025-03-01_v01.yaml", "not YYYYMMDDTHHMMSS"),
    ("MXT_EVTTHR_20250301T120000_v00.yaml", "at least v01"),
    ("MXT_EVTTHR_20250301T120000_v01.yml", "must end with '.yaml'"),
    ("ECL_EVTTHR_20250301T120000_v01.yaml", "sent to the MXT node"),
]


@pytest.mark.parametrize(("name", "problem"), BAD_NAMES)
def test_malformed_upload_names_are_refused(fresh_service, tmp_path, name, problem):
    root = fresh_service.store.root
    before_files, before_rows = files_under(root / "data"), db_count(fresh_service)
    before_index = (root / "data/svom/mxt/caldb.indx").read_bytes()
    f = tmp_path / name
    f.write_text("a: 1\n")
    with client(fresh_service.url) as c, pytest.raises(MXTServiceError, match="HTTP 400") as info:
        c.upload(f, "MXT")
    assert problem in str(info.value)
    assert files_under(root / "data") == before_files and db_count(fresh_service) == before_rows
    assert (root / "data/svom/mxt/caldb.indx").read_bytes() == before_index
    assert list(fresh_service.store.staging_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "problem"),
    [("a: [1, 2\n", "malformed YAML at line 2"), ("- 1\n- 2\n", "must be a mapping, found list"),
     ("", "found nothing"), ("{}\n", "mapping is empty"), (b"\xff\xfe", "not UTF-8"),
     ("a: 1\n---\nb: 2\n", "malformed YAML")],
)  # fmt: skip
def test_malformed_yaml_is_refused(fresh_service, tmp_path, content, problem):
    f = tmp_path / "MXT_EVTTHR_20250301T120000_v01.yaml"
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    with client(fresh_service.url) as c, pytest.raises(MXTServiceError, match="HTTP 400") as info:
        c.upload(f)
    assert problem in str(info.value)
    assert not (fresh_service.store.root / "data/svom/mxt/upload").exists()


@pytest.mark.parametrize("when", ["before", "after"])
def test_upload_failing_half_way_leaves_nothing(fresh_service, tmp_path, monkeypatch, when):
    """The index rewrite fails after the file was moved into place: all is undone.

    ``before``: the index write itself fails (the old index stays as it was, byte for
    byte).  ``after``: the new index was written, then the step fails (the index is
    rewritten from the rolled-back database: same rows).
    """
    import mxt_pipeline.caldb.service.store as store_mod

    root = fresh_service.store.root
    idx = root / "data/svom/mxt/caldb.indx"
    before = (files_under(root / "data"), db_count(fresh_service), idx.read_bytes())
    rows_before = read_cif(idx)
    calls = []

    def broken_write_index(rows, *args, **kwargs):
        calls.append(len(rows))
        if len(calls) == 1:
            if when == "after":
                real(rows, *args, **kwargs)
            raise OSError("disk full while writing caldb.indx")
        return real(rows, *args, **kwargs)

    real = store_mod.write_index
    monkeypatch.setattr(store_mod, "write_index", broken_write_index)
    f = tmp_path / "MXT_EVTTHR_20250301T120000_v01.yaml"
    f.write_text("threshold_adu: 120\n")
    with client(fresh_service.url, max_tries=1) as c:
        with pytest.raises(MXTServiceUnavailable, match="HTTP 500"):
            c.upload(f)
        with pytest.raises(MXTCaldbNotFound):
            c.search("MXT", "evtthr")
    assert read_cif(idx) == rows_before
    if when == "before":
        assert (files_under(root / "data"), db_count(fresh_service), idx.read_bytes()) == before
    else:
        assert (files_under(root / "data"), db_count(fresh_service)) == before[:2]
        assert calls == [len(rows_before) + 1, len(rows_before)]
    assert not (root / "data/svom/mxt/upload").exists()  # no stray file, no empty folder
    assert list(fresh_service.store.staging_dir.iterdir()) == []
    with sqlite3.connect(fresh_service.store.db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM pending").fetchone()[0] == 0
    # The same upload succeeds once the disk is back.
    with client(fresh_service.url) as c:
        assert c.upload(f)["status"] == "created"


def test_interrupted_ingest_is_repaired_at_start(tiny_caldb):
    """A crash between the rename and the commit: the next start removes the file."""
    from mxt_pipeline.caldb.service.store import CaldbStore

    store = CaldbStore(tiny_caldb)
    stray = tiny_caldb / "data/svom/mxt/upload/evtthr/MXT_EVTTHR_20250301T120000_v01.yaml"
    stray.parent.mkdir(parents=True)
    stray.write_text("a: 1\n")
    with sqlite3.connect(store.db_path) as conn:
        conn.execute("INSERT INTO pending (path, instrume) VALUES (?, 'MXT')",
                     ("data/svom/mxt/upload/evtthr/MXT_EVTTHR_20250301T120000_v01.yaml",))  # fmt: skip
    CaldbStore(tiny_caldb)
    assert not stray.exists()


def test_checksum_and_size_checks(fresh_service, tmp_path):
    url = f"{fresh_service.url}/api/v1/upload/MXT/MXT_EVTTHR_20250301T120000_v01.yaml"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = httpx.put(url, content=b"a: 1\n", headers={**auth, "X-Checksum-SHA256": "0" * 64})
    assert r.status_code == 400 and "checksum mismatch" in r.json()["detail"]
    r = httpx.put(url, content=b"a: 1\n" + b"#" * (1 << 20), headers=auth)
    assert r.status_code == 413
    r = httpx.put(f"{fresh_service.url}/api/v1/upload/MXT/.hidden", content=b"x", headers=auth)
    assert r.status_code == 400
    assert not (fresh_service.store.root / "data/svom/mxt/upload").exists()


def test_fits_upload_supersedes_same_dataset(fresh_service, tmp_path):
    from .conftest import CalFile, write_cal_file

    cf = CalFile("MXT", "BCF", "SYSERR", "mxt_syserr_v03.fits", "2024-01-01")
    path = write_cal_file(tmp_path, cf, seed=3)
    with client(fresh_service.url) as c:
        result = c.upload(path, "MXT")
        assert result["path"] == "data/svom/mxt/bcf/syserr/mxt_syserr_v03.fits"
        assert result["superseded"] == ["data/svom/mxt/bcf/syserr/mxt_syserr_v02.fits"]
        assert [p.name for p in c.search("MXT", "syserr", tmp_path / "dl")] == ["mxt_syserr_v03.fits"]
        bad = write_cal_file(tmp_path / "bad", CalFile("MXT", "BCF", "CTI", "mxt_cti.fits", "2024-01-01"),
                             extra={"CVSD0001": None})  # fmt: skip
        with pytest.raises(MXTServiceError, match="HTTP 400.*CVSD0001"):
            c.upload(bad, "MXT")
        other = tmp_path / "notes.txt"
        other.write_text("hello")
        with pytest.raises(MXTServiceError, match="neither a FITS file nor"):
            c.upload(other, "MXT")


def test_local_upload_uses_the_same_store(tiny_caldb, tmp_path):
    f = tmp_path / "VT_FILTERS_20250101T000000_v01.yaml"
    f.write_text("filters: [r, b]\n")
    c = CaDBIO(caldb=tiny_caldb)
    assert c.upload(f)["type"] == "onboard"
    assert [p.name for p in c.search("VT", "filters")] == [f.name]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [({"rows": "nope"}, "no 'rows' list"), ({"rows": [{"cif": {"CAL_FILE": "x"}}]}, "malformed search row"),
     ({"rows": [{"cif": {}, "sha256": "short"}]}, "malformed search row"), ([1, 2], "no 'rows' list")],
)  # fmt: skip
def test_malformed_search_answers_are_refused(body, fragment):
    async def search(request):
        return JSONResponse(body)

    with AppThread(Starlette(routes=[Route("/api/v1/search", search)])) as fake, client(fake.url) as c:
        with pytest.raises(MXTServiceError, match=fragment):
            c.search("MXT", "teldef")
