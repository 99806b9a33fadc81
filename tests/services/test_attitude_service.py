"""The attitude service on 127.0.0.1 and its client: coverage, token, retries, bad rows.

The archive is three ATT files written by the I/O layer: A and B back to back, then a
510 s hole before C.  Every answer is compared with the rows of the files themselves.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from astropy.io import fits

from mxt_pipeline.attitude.archive import AttitudeArchive
from mxt_pipeline.attitude.server import AttitudeServiceThread
from mxt_pipeline.calib.screening import ScreeningParams, attitude_bad_times
from mxt_pipeline.cli.main import main
from mxt_pipeline.datamodel import GTI, Attitude
from mxt_pipeline.datamodel.attitude import bad_quaternion
from mxt_pipeline.errors import MXTAuthError, MXTInputError, MXTServiceError, MXTServiceUnavailable
from mxt_pipeline.io.products import read_attitude, write_attitude
from mxt_pipeline.services.attitude import AttitudeClient, attitude_gaps, resolve_attitude_url

TOKEN = "att-7c1e0b9f42-MXT-secret-d83"
T0 = 3.0e8
#: (name, first sample offset, number of samples); 10 s sampling.
FILES = (("2026/att_a.fits", 0.0, 100), ("2026/att_b.fits", 1000.0, 100), ("att_c.fits", 2500.0, 100))


def _att(offset: float, n: int, obs_id: str) -> Attitude:
    t = T0 + offset + 10.0 * np.arange(n)
    ra = 150.0 + 1e-4 * (t - T0)  # a slow drift: every row differs
    return Attitude.from_pointing(t, ra, np.full(n, 30.0), np.full(n, 12.0), meta={"OBS_ID": obs_id})


def _write_archive(root: Path) -> Path:
    for i, (name, offset, n) in enumerate(FILES):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        write_attitude(root / name, _att(offset, n, f"0000000{i}"))
    return root


def _reference(root: Path) -> tuple[np.ndarray, np.ndarray]:
    atts = [read_attitude(root / name) for name, _, _ in FILES]
    return (np.concatenate([np.asarray(a["TIME"]) for a in atts]),
            np.concatenate([np.asarray(a["QPARAM"]) for a in atts]))  # fmt: skip


@pytest.fixture(scope="module")
def archive_root(tmp_path_factory) -> Path:
    return _write_archive(tmp_path_factory.mktemp("att_archive"))


@pytest.fixture(scope="module")
def service(archive_root):
    with AttitudeServiceThread(archive_root, [TOKEN]) as svc:
        yield svc


def _client(url: str, tmp_path: Path, **kw) -> AttitudeClient:
    kw.setdefault("sleep", lambda s: None)
    return AttitudeClient(url, token=kw.pop("token", TOKEN), cache_dir=tmp_path / "cache", **kw)


def test_rows_of_the_range_plus_one_sample_either_side(service, archive_root, tmp_path):
    t_ref, q_ref = _reference(archive_root)
    tstart, tstop = T0 + 995.0, T0 + 1203.0  # across the A/B boundary, between samples at both ends
    with _client(service.url, tmp_path) as client:
        got = client.fetch(tstart, tstop)
    t = np.asarray(got.attitude["TIME"])
    sel = (t_ref >= T0 + 990.0) & (t_ref <= T0 + 1210.0)
    np.testing.assert_array_equal(t, t_ref[sel])
    np.testing.assert_array_equal(np.asarray(got.attitude["QPARAM"]), q_ref[sel])
    assert t[0] < tstart < t[1] and t[-2] < tstop < t[-1]
    assert got.sources == ("2026/att_a.fits", "2026/att_b.fits")
    assert got.gaps == ()
    # The checksum is the file's, the product names its sources and the range asked.
    assert got.sha256 == __import__("hashlib").sha256(got.path.read_bytes()).hexdigest()
    hdr = fits.getheader(got.path, 0)
    assert (hdr["CONTENT"], hdr["REQSTART"], hdr["REQSTOP"], hdr["ATTSRCN"]) == ("MXT_ATT", tstart, tstop, 2)


def test_concurrent_clients_get_identical_correct_attitude(service, archive_root, tmp_path):
    t_ref, q_ref = _reference(archive_root)
    ranges = [(T0 + 100.0, T0 + 400.0), (T0 + 950.0, T0 + 1050.0), (T0 + 2600.0, T0 + 2700.0)] * 3

    def one(k: int):
        tstart, tstop = ranges[k]
        with _client(service.url, tmp_path / f"c{k}") as client:
            return k, client.fetch(tstart, tstop)

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(one, range(len(ranges))))
    by_range: dict[tuple[float, float], set[str]] = {}
    for k, got in results:
        tstart, tstop = ranges[k]
        i0 = np.searchsorted(t_ref, tstart, "right") - 1
        i1 = np.searchsorted(t_ref, tstop, "left")
        np.testing.assert_array_equal(np.asarray(got.attitude["TIME"]), t_ref[i0 : i1 + 1])
        np.testing.assert_array_equal(np.asarray(got.attitude["QPARAM"]), q_ref[i0 : i1 + 1])
        by_range.setdefault(ranges[k], set()).add(got.sha256)
    assert all(len(shas) == 1 for shas in by_range.values()), by_range  # identical bytes per range


def test_token_is_required_and_never_shown(service, tmp_path, caplog):
    for token in (None, "wrong-token"):
        waits: list[float] = []
        client = AttitudeClient(service.url, token=token, cache_dir=tmp_path, sleep=waits.append)
        with client, pytest.raises(MXTAuthError, match="HTTP 401") as err:
            client.fetch(T0, T0 + 10.0)
        assert err.value.status == 401 and waits == []  # final: not retried
    with caplog.at_level(logging.DEBUG), _client(service.url, tmp_path) as client:
        client.fetch(T0, T0 + 10.0)
        assert TOKEN not in repr(client)
    assert TOKEN not in caplog.text
    # A token in the URL is refused outright (it would end up in logs).
    r = httpx.get(f"{service.url}/api/v1/attitude", params={"tstart": T0, "tstop": T0 + 1, "token": TOKEN})
    assert r.status_code == 400


def test_no_coverage_is_a_clear_404(service, tmp_path):
    waits: list[float] = []
    with _client(service.url, tmp_path, sleep=waits.append) as client:
        for tstart, tstop in ((T0 - 500.0, T0 - 100.0), (T0 + 4000.0, T0 + 5000.0)):
            with pytest.raises(MXTServiceError, match="the service has none") as err:
                client.fetch(tstart, tstop)
            assert err.value.status == 404
            assert f"[{tstart:.3f}, {tstop:.3f}]" in str(err.value) and service.url in str(err.value)
    assert waits == []
    r = httpx.get(f"{service.url}/api/v1/attitude", params={"tstart": "nan", "tstop": T0},
                  headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert r.status_code == 400 and "tstart" in r.json()["detail"]


def test_an_archive_hole_is_reported_as_the_screening_s_attitude_gap(service, tmp_path):
    tstart, tstop = T0 + 1500.0, T0 + 2600.0  # B ends at +1990, C starts at +2500
    with _client(service.url, tmp_path) as client:
        got = client.fetch(tstart, tstop, max_gap_s=60.0)
    assert got.gaps == ((T0 + 1990.0, T0 + 2500.0),)
    assert "ATTITUDE gaps" in got.describe()
    # The calibration's screening finds the same hole: one rule, no filled-in rows.
    _, no_att = attitude_bad_times(got.attitude, tstart, tstop, ScreeningParams(max_attitude_gap_s=60.0))
    assert no_att == GTI([T0 + 1990.0], [T0 + 2500.0])
    # A range inside the hole: the samples on both sides, all of it a gap.
    with _client(service.url, tmp_path / "hole") as client:
        inside = client.fetch(T0 + 2100.0, T0 + 2200.0)
    np.testing.assert_array_equal(np.asarray(inside.attitude["TIME"]), [T0 + 1990.0, T0 + 2500.0])
    assert inside.gaps == ((T0 + 2100.0, T0 + 2200.0),)


def test_attitude_gaps_rule():
    t = np.array([0.0, 10.0, 100.0, 110.0])
    assert attitude_gaps(t, -5.0, 120.0, 60.0) == [(-5.0, 0.0), (10.0, 100.0), (110.0, 120.0)]
    assert attitude_gaps(t, 0.0, 10.0, 60.0) == []
    assert attitude_gaps(np.zeros(0), 1.0, 2.0, 60.0) == [(1.0, 2.0)]


def test_not_ready_and_busy_are_503_with_retry_after(archive_root, tmp_path):
    with AttitudeServiceThread(archive_root, [TOKEN], state_dir=tmp_path / "state", build=False) as svc:
        r = httpx.get(f"{svc.url}/api/v1/health")
        assert r.json() == {"status": "ok", "ready": False}
        # Not ready: every try is a 503 whose Retry-After the client honours.
        waits: list[float] = []
        with _client(svc.url, tmp_path, sleep=waits.append, max_tries=3) as client:
            with pytest.raises(MXTServiceUnavailable, match="after 3 tries, last: HTTP 503"):
                client.fetch(T0, T0 + 50.0)
        assert waits == [2.0, 2.0]
        # The index gets built during the client's wait: the retry succeeds.
        waits.clear()

        def build_then_wait(seconds: float) -> None:
            waits.append(seconds)
            svc.archive.refresh()

        with _client(svc.url, tmp_path / "b", sleep=build_then_wait) as client:
            assert len(client.fetch(T0, T0 + 50.0).attitude) == 6
        assert waits == [2.0]
        # Every slot taken: 503 "busy" with Retry-After 1; a slot freed during the wait.
        svc.slots.hold()
        waits.clear()
        released = threading.Event()

        def free_then_wait(seconds: float) -> None:
            waits.append(seconds)
            if not released.is_set():
                released.set()
                svc.slots.release()

        held = [svc.slots.hold() for _ in range(31)]  # 32 slots in all
        with _client(svc.url, tmp_path / "c", sleep=free_then_wait) as client:
            assert len(client.fetch(T0 + 10.0, T0 + 20.0).attitude) == 2
        assert waits == [1.0]
        for _ in held:
            svc.slots.release()


def _spoil(path: Path, row: int, value) -> None:
    """Set QPARAM of FITS row ``row`` (from 1), with the checksums updated."""
    with fits.open(path, mode="update", checksum=True) as hdul:
        hdul["ATTITUDE"].data["QPARAM"][row - 1] = value


@pytest.mark.parametrize(("value", "reason"), [(1.3, "norm 1.3 is not 1"), (np.nan, "is not finite")])
def test_a_bad_quaternion_is_refused_naming_file_and_row(archive_root, tmp_path, value, reason):
    root = tmp_path / "archive"
    shutil.copytree(archive_root, root)
    bad = root / "2026" / "att_b.fits"
    q = read_attitude(bad)["QPARAM"][6]
    _spoil(bad, 7, q * value)
    with AttitudeServiceThread(root, [TOKEN]) as svc:
        files = {f["file"]: f for f in svc.archive.files()}
        assert files["2026/att_b.fits"]["problem"].startswith("2026/att_b.fits[ATTITUDE] column QPARAM: row 7: ")
        assert reason in files["2026/att_b.fits"]["problem"] and files["att_c.fits"]["problem"] is None
        waits: list[float] = []
        with _client(svc.url, tmp_path, sleep=waits.append) as client:
            with pytest.raises(MXTServiceError, match=r"2026/att_b.fits\[ATTITUDE\] column QPARAM: row 7") as err:
                client.fetch(T0 + 1500.0, T0 + 1600.0)
            assert err.value.status == 422 and waits == []
            assert str(root) not in str(err.value)  # the service's paths stay on the service
            # Ranges that do not need the bad file are still served.
            assert client.fetch(T0 + 2600.0, T0 + 2700.0).sources == ("att_c.fits",)


def test_the_client_refuses_a_bad_quaternion_it_receives(archive_root, tmp_path):
    """A service of another make that let a bad row through: the client names service, range and row."""
    bad = tmp_path / "bad.fits"
    shutil.copy(archive_root / "att_c.fits", bad)
    _spoil(bad, 3, [0.0, 0.0, 0.0, 2.0])
    body = bad.read_bytes()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Disposition": 'attachment; filename="x.fits"'})

    client = AttitudeClient("http://att.test", token=TOKEN, cache_dir=tmp_path / "c",
                            transport=httpx.MockTransport(handler), sleep=lambda s: None)  # fmt: skip
    with client, pytest.raises(MXTInputError, match=r"from http://att.test: unusable answer: .*row 3: QPARAM norm 2") as err:
        client.fetch(T0 + 2500.0, T0 + 2550.0)
    assert "[300002500.000, 300002550.000]" in str(err.value) and err.value.column == "QPARAM"
    assert bad_quaternion(np.array([[0.0, 0.0, 0.0, 1.0], [np.nan, 0, 0, 1]])) == (2, "QPARAM [nan, 0.0, 0.0, 1.0] is not finite")


def test_index_follows_added_changed_and_removed_files(archive_root, tmp_path):
    root = tmp_path / "archive"
    shutil.copytree(archive_root, root)
    archive = AttitudeArchive(root, state_dir=tmp_path / "state")
    try:
        assert [f["file"] for f in archive.files()] == ["2026/att_a.fits", "2026/att_b.fits", "att_c.fits"]
        assert archive.refresh() == {"added": 0, "updated": 0, "removed": 0, "unchanged": 3, "refused": 0}
        write_attitude(root / "att_d.fits", _att(5000.0, 10, "00000009"))
        (root / "att_c.fits").unlink()
        assert archive.refresh() == {"added": 1, "updated": 0, "removed": 1, "unchanged": 2, "refused": 0}
        row = next(f for f in archive.files() if f["file"] == "att_d.fits")
        assert (row["tstart"], row["tstop"], row["nrows"]) == (T0 + 5000.0, T0 + 5090.0, 10)
        sel = archive.select(T0 + 5010.0, T0 + 5020.0)
        assert sel.sources == ("att_d.fits",) and len(sel.attitude) == 2
        # The index survives a restart: nothing is read again.
        archive.close()
        archive = AttitudeArchive(root, state_dir=tmp_path / "state", build=False)
        assert archive.refresh()["unchanged"] == 3
        with pytest.raises(MXTInputError, match="longer than"):
            archive.select(T0, T0 + 30 * 86400.0)
    finally:
        archive.close()


def test_attitude_url_resolution(monkeypatch):
    monkeypatch.delenv("MXT_ATTITUDE_URL", raising=False)
    assert resolve_attitude_url(None) is None
    monkeypatch.setenv("MXT_ATTITUDE_URL", "http://att.fsc:8510")
    assert resolve_attitude_url(None) == "http://att.fsc:8510"
    assert resolve_attitude_url("https://other") == "https://other"
    monkeypatch.setenv("MXT_ATTITUDE_URL", "att.fsc:8510")
    with pytest.raises(MXTInputError, match=r"\$MXT_ATTITUDE_URL must start with http"):
        resolve_attitude_url(None)


def test_the_attitude_commands(service, archive_root, tmp_path, capsys, monkeypatch):
    assert main(["attitude", "index", "--root", str(archive_root), "--state-dir", str(tmp_path / "state")]) == 0
    out, err = capsys.readouterr()
    assert [r["file"] for r in json.loads(out)] == [name for name, _, _ in sorted(FILES)]
    assert "3 added" in err
    monkeypatch.setenv("MXT_TOKEN", TOKEN)
    monkeypatch.setenv("MXT_ATTITUDE_URL", service.url)
    dest = tmp_path / "att.fits"
    assert main(["attitude", "fetch", str(T0 + 100.0), str(T0 + 200.0), "-o", str(dest)]) == 0
    out, err = capsys.readouterr()
    assert "11 rows from 2026/att_a.fits" in out and TOKEN not in out + err
    np.testing.assert_array_equal(read_attitude(dest)["TIME"], T0 + np.arange(100.0, 201.0, 10.0))
    monkeypatch.delenv("MXT_ATTITUDE_URL")
    assert main(["attitude", "fetch", "0", "1", "-o", str(dest)]) == 2
    assert "no attitude service: give --url or set MXT_ATTITUDE_URL" in capsys.readouterr().err


def test_the_client_s_own_scratch_folder_goes_with_it(service):
    client = AttitudeClient(service.url, token=TOKEN)
    with client:
        got = client.fetch(T0 + 10.0, T0 + 20.0)
        assert got.path.is_file()
    assert not got.path.parent.exists() and len(got.attitude) == 2
