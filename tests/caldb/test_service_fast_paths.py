"""The CALDB service's fast read paths (issue #20, load): correct before fast.

Searches run from the node's rows in memory on the event loop, downloads of small
files are answered from one read, reads share one SQLite connection and a view
rebuild after an ingest reuses the unchanged rows.  Each test here fails if one of
these shortcuts serves something stale or wrong: an answer cached across an upload,
an ETag that does not follow the answer, a superseded dataset still marked good, a
read torn by a concurrent ingest.
"""

from __future__ import annotations

import threading

import httpx
import pytest

from mxt_pipeline.caldb.select import CaldbQuery
from mxt_pipeline.caldb.service import app as app_mod
from mxt_pipeline.caldb.service.store import CaldbStore

from .conftest import TOKEN
from .load import build_catalogue, code_name, yaml_name

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def upload_yaml(svc, name: str, text: str) -> httpx.Response:
    return httpx.put(f"{svc.url}/api/v1/upload/MXT/{name}", content=text.encode(), headers=AUTH, timeout=60)


def search(svc, code: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{svc.url}/api/v1/search", params={"instrume": "MXT", "codename": code},
                     headers={**AUTH, **headers}, timeout=30)  # fmt: skip


def test_search_answer_and_etag_change_after_an_upload(fresh_service):
    first = "MXT_EVTTHR_20250301T120000_v01.yaml"
    assert upload_yaml(fresh_service, first, "threshold_adu: 120\n").status_code == 201
    r1 = search(fresh_service, "evtthr")
    assert r1.status_code == 200 and [row["cif"]["CAL_FILE"] for row in r1.json()["rows"]] == [first]
    etag = r1.headers["etag"]
    assert r1.headers["cache-control"] == "no-cache"
    # Unchanged: 304 without a body, the same tag; the same again from the memory path.
    for _ in range(2):
        same = search(fresh_service, "evtthr", **{"If-None-Match": etag})
        assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == etag
    assert search(fresh_service, "evtthr", **{"If-None-Match": f"W/{etag}"}).status_code == 304
    assert search(fresh_service, "evtthr", **{"If-None-Match": '"other", ' + etag}).status_code == 304
    assert search(fresh_service, "evtthr", **{"If-None-Match": '"other"'}).status_code == 200
    # A new version supersedes the first: the same query with the old tag gets the new answer.
    second = "MXT_EVTTHR_20250301T120000_v02.yaml"
    assert upload_yaml(fresh_service, second, "threshold_adu: 125\n").status_code == 201
    r2 = search(fresh_service, "evtthr", **{"If-None-Match": etag})
    assert r2.status_code == 200 and r2.headers["etag"] != etag
    assert [row["cif"]["CAL_FILE"] for row in r2.json()["rows"]] == [second]
    # Other code names are unaffected by the upload but answered from the new rows too.
    assert search(fresh_service, "teldef").json()["count"] == 1


def test_download_etag_is_the_checksum_and_answers_304(fresh_service):
    row = search(fresh_service, "teldef").json()["rows"][0]
    url = f"{fresh_service.url}{row['download']}"
    r = httpx.get(url, headers=AUTH)
    assert r.status_code == 200 and r.headers["etag"] == f'"{row["sha256"]}"'
    assert r.headers["x-checksum-sha256"] == row["sha256"] and len(r.content) == row["size"]
    for tag in (f'"{row["sha256"]}"', f'W/"{row["sha256"]}"', "*"):
        nm = httpx.get(url, headers={**AUTH, "If-None-Match": tag})
        assert nm.status_code == 304 and nm.content == b"", tag
        assert nm.headers["x-checksum-sha256"] == row["sha256"]
    assert httpx.get(url, headers={**AUTH, "If-None-Match": '"0000"'}).content == r.content


def test_small_and_streamed_downloads_answer_the_same(fresh_service, monkeypatch):
    """The one-read answer of small files and FileResponse agree on body and headers."""
    row = search(fresh_service, "teldef").json()["rows"][0]
    url = f"{fresh_service.url}{row['download']}"
    small = httpx.get(url, headers=AUTH)
    monkeypatch.setattr(app_mod, "SMALL_FILE_BYTES", 16)  # every file is "large" now
    streamed = httpx.get(url, headers=AUTH)
    assert small.status_code == streamed.status_code == 200
    assert small.content == streamed.content and len(small.content) == row["size"] > 16
    for h in ("content-disposition", "content-type", "x-checksum-sha256", "etag", "content-length", "cache-control"):
        assert small.headers[h] == streamed.headers[h], h
    assert small.headers["content-disposition"] == f'attachment; filename="{row["cif"]["CAL_FILE"]}"'


def test_searches_leave_the_event_loop_only_to_reread_rows(fresh_service, monkeypatch):
    """Current rows: no worker thread per search; after an ingest, one re-read."""
    hops: list[str] = []
    real = app_mod.run_in_threadpool

    async def counting(func, *args, **kwargs):
        hops.append(getattr(func, "__name__", repr(func)))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(app_mod, "run_in_threadpool", counting)
    search(fresh_service, "teldef")  # may build the rows
    hops.clear()
    for _ in range(5):
        assert search(fresh_service, "teldef").status_code == 200
        assert httpx.get(f"{fresh_service.url}/api/v1/files/1", headers=AUTH).status_code == 200
    assert hops == []
    assert upload_yaml(fresh_service, "MXT_EVTTHR_20250301T120000_v01.yaml", "a: 1\n").status_code == 201
    hops.clear()
    assert search(fresh_service, "evtthr").json()["count"] == 1
    assert hops == ["search"]


def test_view_rebuild_reuses_unchanged_rows_and_updates_superseded_ones(tmp_path):
    root = tmp_path / "caldb"
    build_catalogue(root, 5)
    store = CaldbStore(root)
    q = CaldbQuery(telescop="SVOM", instrume="MXT", codename=code_name(2), quality=None)
    (row,) = store.search(q)[0]
    assert store.search_cached(q) is not None
    before = {r.cal_file: r for r in store._view("MXT").rows}
    src = tmp_path / "src"
    src.mkdir()
    v2 = src / yaml_name(2, version=2)
    v2.write_text("threshold_adu: 7\n")
    store.ingest_path("MXT", v2.name, v2)
    assert store.search_cached(q) is None  # stale rows are never answered
    found = {r["cif"]["CAL_FILE"]: r["cif"]["CAL_QUAL"] for r in store.search(q)[0]}
    assert found == {row["cif"]["CAL_FILE"]: 5, v2.name: 0}
    after = {r.cal_file: r for r in store._view("MXT").rows}
    assert after[row["cif"]["CAL_FILE"]].cal_qual == 5 and before[row["cif"]["CAL_FILE"]].cal_qual == 0
    # The untouched rows are the very same objects (not parsed and checked again).
    untouched = [n for n in before if n != row["cif"]["CAL_FILE"]]
    assert untouched and all(after[n] is before[n] for n in untouched)
    # The index written by the ingest holds the superseded quality too.
    from mxt_pipeline.caldb.cif import read_cif
    from mxt_pipeline.caldb.index import index_path

    quals = {r.cal_file: r.cal_qual for r in read_cif(index_path(root, "SVOM", "MXT"))}
    assert quals[row["cif"]["CAL_FILE"]] == 5 and quals[v2.name] == 0
    store.close()
    assert store.search(q)[0]  # a read after close opens a new connection


def test_reads_on_the_shared_connection_while_ingests_go_on(tmp_path):
    """8 threads search and look files up on the shared connection while a 9th ingests.

    Every search of a code name sees exactly one good dataset (the latest version it
    can see, never none and never two), every file lookup succeeds, nothing raises.
    """
    root = tmp_path / "caldb"
    n = 12
    build_catalogue(root, n)
    store = CaldbStore(root)
    src = tmp_path / "src"
    src.mkdir()
    stop = threading.Event()
    errors: list[BaseException] = []
    seen: list[int] = []

    def reader(seed: int) -> None:
        try:
            k = 0
            while not stop.is_set():
                i = (seed + k) % n
                k += 1
                q = CaldbQuery(telescop="SVOM", instrume="MXT", codename=code_name(i))
                res = store.search_cached(q) if k % 2 else None
                rows, reason = res if res is not None else store.search(q)
                assert reason is None and len(rows) == 1, (i, rows, reason)
                info = store.file_info(rows[0]["file_id"])
                assert info["sha256"] == rows[0]["sha256"] and info["path"].is_file()
                seen.append(rows[0]["version"])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    try:
        for version in (2, 3):
            for i in range(n):
                f = src / yaml_name(i, version=version)
                f.write_text(f"threshold_adu: {version}\n")
                assert store.ingest_path("MXT", f.name, f)["status"] == "created"
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors[0]
    assert {1, 3} <= set(seen)
    for i in range(n):
        (row,) = store.search(CaldbQuery(telescop="SVOM", instrume="MXT", codename=code_name(i)))[0]
        assert row["version"] == 3


@pytest.mark.parametrize(("header", "match"), [(None, False), ("", False), ('"a"', True), ('W/"a"', True),
                                               ('"b", "a"', True), ("*", True), ('"b"', False), ("a", False)])  # fmt: skip
def test_if_none_match_parsing(header, match):
    assert app_mod._etag_matches(header, '"a"') is match


@pytest.mark.parametrize("same_bytes", [True, False])
def test_an_ingest_that_another_process_wins_answers_like_a_second_upload(tmp_path, monkeypatch, same_bytes):
    """Two stores (two processes) on one root upload the same name at the same time.

    The second reaches its transaction after the first committed: it answers 200
    ``unchanged`` (same bytes) or 409 "already stored" (other bytes), as if it had come
    second, and stores nothing.  Before, the check ran only before the transaction: a
    YAML upload got a misleading 409 ("v01 is not newer than the stored v01") and a
    FITS one would reach the database's unique path (a 500).
    """
    import mxt_pipeline.caldb.service.store as store_mod
    from mxt_pipeline.caldb.service.store import UploadConflict

    root = tmp_path / "caldb"
    build_catalogue(root, 2)
    first, second = CaldbStore(root), CaldbStore(root)
    src = tmp_path / "src"
    src.mkdir()
    name = yaml_name(7)
    mine, theirs = src / "mine", src / "theirs"
    mine.mkdir()
    theirs.mkdir()
    (mine / name).write_text("threshold_adu: 1\n")
    (theirs / name).write_text("threshold_adu: 1\n" if same_bytes else "threshold_adu: 2\n")
    real = store_mod._identity
    raced: list[dict] = []
    started: list[bool] = []

    def other_process_first(path):
        if not started:  # between the first check and the transaction of ``second``
            started.append(True)
            raced.append(first.ingest_path("MXT", name, theirs / name))
        return real(path)

    monkeypatch.setattr(store_mod, "_identity", other_process_first)
    if same_bytes:
        answer = second.ingest_path("MXT", name, mine / name)
        assert answer["status"] == "unchanged" and answer["file_id"] == raced[0]["file_id"]
    else:
        with pytest.raises(UploadConflict, match="already stored with other content"):
            second.ingest_path("MXT", name, mine / name)
    assert raced[0]["status"] == "created"
    (row,) = second.search(CaldbQuery(telescop="SVOM", instrume="MXT", codename=code_name(7)))[0]
    assert row["file_id"] == raced[0]["file_id"]
    assert (root / raced[0]["path"]).read_text() == (theirs / name).read_text()
    import sqlite3

    with sqlite3.connect(second.db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM pending").fetchone()[0] == 0
