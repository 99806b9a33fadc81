"""The token appears in no log line, exception message, repr or written file."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mxt_pipeline.caldb import CaDBIO
from mxt_pipeline.caldb.service import ServiceThread, TokenSet
from mxt_pipeline.caldb.service.server import AppThread
from mxt_pipeline.errors import MXTError

from .conftest import TOKEN, SleepRecorder, attach_to_service_loggers


def echo_app() -> Starlette:
    """A careless server that puts the request's Authorization header in its errors."""

    async def search(request: Request):
        return JSONResponse({"detail": f"rejected {request.headers.get('authorization')}"}, status_code=400)

    async def flaky(request: Request):
        return JSONResponse({"detail": f"overloaded for {request.headers.get('authorization')}"}, status_code=503)

    return Starlette(routes=[Route("/api/v1/search", search), Route("/api/v1/files/{i:int}", flaky)])


def test_token_never_leaks(tiny_caldb, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    extra = attach_to_service_loggers(caplog.handler)
    secrets_dir = tmp_path / "secrets"  # the token's legitimate home, not scanned
    secrets_dir.mkdir()
    runtime_data = secrets_dir / "runtime_data.json"
    runtime_data.write_text(json.dumps({"token": TOKEN}))
    work = tmp_path / "work"
    errors: list[BaseException] = []
    reprs: list[str] = []

    def attempt(fn):
        try:
            return fn()
        except MXTError as exc:
            errors.append(exc)
            return None

    try:
        with ServiceThread(tiny_caldb, [TOKEN], log_level="debug") as svc, AppThread(echo_app()) as echo:
            good = CaDBIO(url=svc.url, runtime_data=runtime_data, sleep=SleepRecorder(0.0), max_tries=2)
            reprs += [repr(good), repr(good.backend), repr(good.backend.client), repr(svc), repr(TokenSet([TOKEN]))]
            attempt(lambda: good.search("MXT", "teldef", work / "dl"))
            attempt(lambda: good.search("MXT", "psf", work / "dl", expr="energy.eq.1"))
            attempt(lambda: good.search("MXT", "nothing", work / "dl"))  # 200, none found
            attempt(lambda: good.search("MXT", "psf", expr="bad expression"))  # 400
            up = work / "MXT_EVTTHR_20250301T120000_v01.yaml"
            up.parent.mkdir(parents=True, exist_ok=True)
            up.write_text("threshold: 1\n")
            attempt(lambda: good.upload(up))
            bad_up = work / "MXT_EVTTHR_BROKEN.yaml"
            bad_up.write_text("x: 1\n")
            attempt(lambda: good.upload(bad_up, "MXT"))  # 400 naming the problem
            wrong = CaDBIO(url=svc.url, token="wrong-" + TOKEN[::-1], sleep=SleepRecorder(0.0))
            attempt(lambda: wrong.search("MXT", "teldef"))  # 401
            careless = CaDBIO(url=echo.url, runtime_data=runtime_data, sleep=SleepRecorder(0.0), max_tries=2)
            attempt(lambda: careless.search("MXT", "teldef"))
            attempt(lambda: careless.backend.client.download("/api/v1/files/1", work / "dl2"))
            reprs.append(repr(careless))
            httpx.get(f"{svc.url}/api/v1/search?instrume=MXT", headers={"Authorization": f"Bearer {TOKEN}"})
            for c in (good, wrong, careless):
                c.close()
    finally:
        for lg in extra:
            lg.removeHandler(caplog.handler)

    assert len(errors) >= 5  # the failures above did happen
    texts = [caplog.text]
    texts += [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    texts += [str(e) for e in errors] + [repr(e) for e in errors] + reprs
    assert any("HTTP 401" in t for t in texts) and any("***" in t for t in texts)
    for text in texts:
        assert TOKEN not in text
    scanned = 0
    for root in (work, tiny_caldb):
        for path in root.rglob("*"):
            if path.is_file():
                scanned += 1
                assert TOKEN.encode() not in path.read_bytes(), path
    assert scanned > 10  # downloads, uploads, index files, SQLite database


def test_service_needs_a_token_to_start(tiny_caldb, monkeypatch):
    from mxt_pipeline.caldb.service.server import serve
    from mxt_pipeline.errors import MXTInputError

    monkeypatch.delenv("MXT_CALDB_TOKENS", raising=False)
    with pytest.raises(MXTInputError, match="no token to accept"):
        serve(tiny_caldb, port=0)


def test_token_file_and_env(tmp_path, monkeypatch):
    from mxt_pipeline.caldb.service.auth import bearer_token, load_tokens

    f = tmp_path / "tokens"
    f.write_text("# accepted tokens\nalpha\n\nbeta\n")
    f.chmod(0o600)
    monkeypatch.setenv("MXT_CALDB_TOKENS", "gamma, delta")
    tokens = load_tokens(f)
    assert len(tokens) == 4
    assert all(tokens.verify(t) for t in ("alpha", "beta", "gamma", "delta"))
    assert not tokens.verify("alph") and not tokens.verify("") and not tokens.verify(None)
    assert "alpha" not in repr(tokens)
    assert bearer_token("Bearer abc") == "abc" and bearer_token("Basic abc") is None
    assert bearer_token("bearer  abc ") == "abc" and bearer_token(None) is None
