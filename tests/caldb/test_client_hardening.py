"""The FSC service client against real servers: documented errors on 4xx downloads,
no retry of 507, an overall download deadline, stale partial files removed.

Each test failed before its fix (``httpx.ResponseNotRead`` for a 4xx download, five
tries of a full disk, a download trickling for ever, hidden ``.part`` files left
behind by a killed client).
"""

from __future__ import annotations

import asyncio
import os
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route

from mxt_pipeline.caldb.service.server import AppThread
from mxt_pipeline.errors import (
    MXTAuthError,
    MXTCaldbNotFound,
    MXTServiceError,
    MXTServiceUnavailable,
)
from mxt_pipeline.pipelines.status import ProcessingStatus, status_for_exception
from mxt_pipeline.services.files import remove_stale_parts
from mxt_pipeline.services.http import RetryingClient

from .conftest import TOKEN, SleepRecorder


def client(url: str, token: str | None = TOKEN, **kw) -> RetryingClient:
    kw.setdefault("sleep", SleepRecorder(0.0))
    return RetryingClient(url, token=token, **kw)


@pytest.mark.parametrize(
    ("path", "token", "error", "status"),
    [("/api/v1/files/999999", TOKEN, MXTCaldbNotFound, 404),
     ("/api/v1/files/1", "expired-token", MXTAuthError, 401),
     ("/api/v1/files/1?token=x", TOKEN, MXTServiceError, 400)],
)  # fmt: skip
def test_download_4xx_raises_the_documented_error(served, tmp_path, path, token, error, status):
    sleeps = SleepRecorder(0.0)
    with client(served.url, token, sleep=sleeps) as c, pytest.raises(error, match=f"HTTP {status}") as info:
        c.download(path, tmp_path / "dl")
    assert sleeps.waits == []  # final, not retried
    assert list((tmp_path / "dl").iterdir()) == []
    if error is MXTAuthError:
        # An expired token ends the run AUTH_FAILED (14), in whichever phase.
        for phase in ("inputs", "preflight", "core"):
            assert status_for_exception(info.value, phase) is ProcessingStatus.AUTH_FAILED


@pytest.mark.parametrize("code", [501, 505, 507, 508])
def test_final_5xx_are_not_retried(code):
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(code, json={"detail": "no room"})

    sleeps = SleepRecorder(0.0)
    c = client("http://caldb.test", transport=httpx.MockTransport(handler), sleep=sleeps)
    with pytest.raises(MXTServiceError, match=f"HTTP {code}") as info:
        c.get_json("/x")
    assert not isinstance(info.value, MXTServiceUnavailable)
    assert len(calls) == 1 and sleeps.waits == []


def trickle_app() -> Starlette:
    async def slow(request):
        async def body():
            for _ in range(100):
                yield b"x" * 16
                await asyncio.sleep(0.1)

        return StreamingResponse(body(), headers={"Content-Disposition": 'attachment; filename="slow.fits"'})

    return Starlette(routes=[Route("/slow", slow)])


def test_download_has_an_overall_deadline(tmp_path):
    with AppThread(trickle_app()) as svc:
        c = client(svc.url, download_deadline=0.6, timeout=5.0)
        t0 = time.monotonic()
        with pytest.raises(MXTServiceUnavailable, match="overall deadline of 0.6 s"):
            c.download("/slow", tmp_path / "dl")
        elapsed = time.monotonic() - t0
    assert elapsed < 5.0  # each read is fast: only the overall deadline can stop it
    assert list((tmp_path / "dl").iterdir()) == []


def test_retries_stop_at_the_deadline(tmp_path):
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(503, headers={"Retry-After": "30"})

    sleeps = SleepRecorder(0.0)
    c = client("http://caldb.test", transport=httpx.MockTransport(handler), sleep=sleeps, download_deadline=10)
    with pytest.raises(MXTServiceUnavailable, match="overall deadline"):
        c.download("/x", tmp_path / "dl", filename="x.fits")
    assert len(calls) == 1 and sleeps.waits == []  # a 30 s wait would pass the 10 s deadline


def test_stale_partial_files_are_removed(served, tmp_path):
    dl = tmp_path / "dl"
    dl.mkdir()
    old = dl / ".mxt_rmf_20240101_v01.rmf.k3j2.part"
    old.write_bytes(b"half")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    fresh = dl / ".other.fits.a1b2.part"  # maybe a download running in another process
    fresh.write_bytes(b"half")
    keep = dl / "notes.part"  # not hidden: not ours
    keep.write_bytes(b"x")
    os.utime(keep, (0, 0))
    with client(served.url) as c:
        c.download("/api/v1/files/1", dl)
    assert not old.exists() and fresh.exists() and keep.exists()
    assert remove_stale_parts(dl, 0.0, now=time.time() + 10) == [fresh]
