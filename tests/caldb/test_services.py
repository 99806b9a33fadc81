"""The shared service layer: token resolution, retries, error mapping, safe downloads."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mxt_pipeline.errors import (
    MXTAuthError,
    MXTCaldbNotFound,
    MXTInputError,
    MXTServiceError,
    MXTServiceUnavailable,
)
from mxt_pipeline.services import RetryingClient, RetryPolicy, Secret, resolve_token, safe_filename
from mxt_pipeline.services.files import target_in
from mxt_pipeline.services.http import CHECKSUM_HEADER, parse_retry_after

from .conftest import TOKEN, SleepRecorder, files_under

# ------------------------------------------------------------------ tokens


def test_token_precedence(tmp_path, monkeypatch):
    rd = tmp_path / "runtime_data.json"
    rd.write_text(json.dumps({"token": "from-file", "other": 1}))
    monkeypatch.setenv("MXT_TOKEN", "from-env")
    assert resolve_token("explicit", rd) == "explicit"
    assert resolve_token(None, rd) == "from-file"
    assert resolve_token(None, {"token": "from-mapping"}) == "from-mapping"
    assert resolve_token(None, {"no_token": 1}) == "from-env"
    assert resolve_token() == "from-env"
    assert resolve_token(Secret("wrapped")) == "wrapped"
    monkeypatch.delenv("MXT_TOKEN")
    assert resolve_token() is None
    assert resolve_token("  ", {}) is None  # no token given anywhere
    with pytest.raises(MXTInputError, match="'token' of runtime data is blank"):
        resolve_token("  ", {"token": "  "})  # given, but blank: refused by name


def test_runtime_data_errors_do_not_leak(tmp_path):
    bad = tmp_path / "runtime_data.json"
    bad.write_text('{"token": "' + TOKEN + '" oops}')
    with pytest.raises(MXTInputError) as info:
        resolve_token(None, bad)
    assert TOKEN not in str(info.value) and "not valid JSON" in str(info.value)
    with pytest.raises(MXTInputError, match="not found"):
        resolve_token(None, tmp_path / "missing.json")
    with pytest.raises(MXTInputError, match="must be a string"):
        resolve_token(None, {"token": 12345})
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(MXTInputError, match="JSON object"):
        resolve_token(None, tmp_path / "list.json")


def test_secret_never_shows():
    s = Secret(TOKEN)
    assert TOKEN not in repr(s) + str(s) + f"{s}" + f"{s!r}" + f"{s:>20}"
    assert s.reveal() == TOKEN and s == Secret(TOKEN) and s != Secret("other")
    with pytest.raises(TypeError):
        pickle.dumps(s)
    client = RetryingClient("http://127.0.0.1:9", token=TOKEN)
    assert TOKEN not in repr(client) and "***" in repr(client)
    client.close()


# ------------------------------------------------------------------ backoff


@given(st.integers(1, 20), st.floats(0.0, 1.0), st.integers(0, 2**32 - 1))
def test_backoff_bounds(failures, jitter, seed):
    p = RetryPolicy(backoff_base=0.5, backoff_factor=2.0, backoff_max=30.0, jitter=jitter)
    d = min(30.0, 0.5 * 2.0 ** (failures - 1))
    wait = p.delay(failures, random.Random(seed))
    assert d * (1 - jitter) - 1e-12 <= wait <= d + 1e-12


def test_retry_after_replaces_backoff_and_is_capped():
    p = RetryPolicy(retry_after_max=5.0)
    rng = random.Random(0)
    assert p.delay(1, rng, retry_after=0.25) == 0.25
    assert p.delay(1, rng, retry_after=3600.0) == 5.0


def test_parse_retry_after():
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


# ------------------------------------------------------------------ retrying client


def scripted(responses):
    """A MockTransport answering from a list (callables get the request)."""
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        item = responses[min(len(calls), len(responses)) - 1]
        if isinstance(item, Exception):
            raise item
        return item(request) if callable(item) else item

    return httpx.MockTransport(handler), calls


def make_client(responses, sleeps=None, **kw):
    transport, calls = scripted(responses)
    client = RetryingClient(
        "http://caldb.test", token=TOKEN, transport=transport, sleep=sleeps or SleepRecorder(0.0),
        rng=random.Random(1), **kw,
    )  # fmt: skip
    return client, calls


def test_503_twice_then_200_is_retried():
    sleeps = SleepRecorder(0.0)
    client, calls = make_client(
        [httpx.Response(503), httpx.Response(503, headers={"Retry-After": "0.05"}), httpx.Response(200, json={"ok": 1})],
        sleeps,
    )
    assert client.get_json("/x") == {"ok": 1}
    assert len(calls) == 3
    assert len(sleeps.waits) == 2
    assert 0.25 <= sleeps.waits[0] <= 0.5  # backoff 0.5 s with jitter 0.5
    assert sleeps.waits[1] == 0.05  # Retry-After honoured
    assert all(c.headers["Authorization"] == f"Bearer {TOKEN}" for c in calls)


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, MXTServiceError), (401, MXTAuthError), (403, MXTAuthError), (404, MXTCaldbNotFound), (409, MXTServiceError)],
)
def test_client_errors_are_final(status, error):
    sleeps = SleepRecorder(0.0)
    client, calls = make_client([httpx.Response(status, json={"detail": "nope"})], sleeps)
    with pytest.raises(error, match=f"HTTP {status}: nope"):
        client.get_json("/x")
    assert len(calls) == 1 and sleeps.waits == []


@pytest.mark.parametrize(
    "failure",
    [httpx.Response(500), httpx.Response(502), httpx.Response(429), httpx.Response(408),
     httpx.ConnectError("refused"), httpx.ReadTimeout("slow")],
)  # fmt: skip
def test_transient_failures_exhaust_into_unavailable(failure):
    sleeps = SleepRecorder(0.0)
    client, calls = make_client([failure], sleeps, max_tries=4)
    with pytest.raises(MXTServiceUnavailable, match="failed after 4 tries"):
        client.get_json("/x")
    assert len(calls) == 4 and len(sleeps.waits) == 3
    # Exponential growth (jitter factor within [0.5, 1]).
    assert sleeps.waits[2] > sleeps.waits[0]


def test_server_echoing_the_token_is_scrubbed():
    client, _ = make_client([httpx.Response(400, json={"detail": f"bad header Bearer {TOKEN}"})])
    with pytest.raises(MXTServiceError) as info:
        client.get_json("/x")
    assert TOKEN not in str(info.value) and "***" in str(info.value)


def test_redirects_are_not_followed():
    client, calls = make_client([httpx.Response(302, headers={"Location": "http://evil.test/"})])
    with pytest.raises(MXTServiceError, match="redirect"):
        client.get_json("/x")
    assert len(calls) == 1


# ------------------------------------------------------------------ downloads

PAYLOAD = b"SIMPLE  = T" + bytes(range(256)) * 8
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def file_response(body=PAYLOAD, name="cal.fits", sha=SHA, status=200):
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if sha is not None:
        headers[CHECKSUM_HEADER] = sha
    return httpx.Response(status, content=body, headers=headers)


def test_download_atomic_checksum_and_cache(tmp_path):
    client, calls = make_client([file_response()])
    out = client.download("/files/1", tmp_path / "dl", expected_sha256=SHA)
    assert out == tmp_path / "dl" / "cal.fits" and out.read_bytes() == PAYLOAD
    assert oct(out.stat().st_mode & 0o777) == oct(0o644)
    # Second call with the name known: served from the cache, no request.
    again = client.download("/files/1", tmp_path / "dl", filename="cal.fits", expected_sha256=SHA)
    assert again == out and len(calls) == 1
    assert files_under(tmp_path) == {Path("dl/cal.fits")}


def test_corrupted_download_is_retried_then_refused(tmp_path):
    corrupt = file_response(body=PAYLOAD[:-1] + b"X")
    client, calls = make_client([corrupt, file_response()])
    assert client.download("/f", tmp_path, expected_sha256=SHA).read_bytes() == PAYLOAD
    assert len(calls) == 2
    client, calls = make_client([corrupt], max_tries=3)
    with pytest.raises(MXTServiceUnavailable, match="checksum mismatch"):
        client.download("/f", tmp_path / "x")
    assert files_under(tmp_path / "x") == set()  # no partial file left


def test_stale_cached_file_is_replaced(tmp_path):
    (tmp_path / "cal.fits").write_bytes(b"old content")
    client, calls = make_client([file_response()])
    out = client.download("/f", tmp_path, filename="cal.fits", expected_sha256=SHA)
    assert out.read_bytes() == PAYLOAD and len(calls) == 1


EVIL_NAMES = ["../../evil", "..", "../", "/etc/passwd", "\\\\server\\share\\x", "C:\\evil", "a/../../b",
              "", "   ", ".hidden", "x\x00y", "./.."]  # fmt: skip


@pytest.mark.parametrize("name", EVIL_NAMES)
def test_server_file_names_cannot_escape(tmp_path, name):
    inner = tmp_path / "a" / "b" / "dl"
    client, _ = make_client([file_response(name=name)])
    with pytest.raises(MXTServiceError):
        client.download("/f", inner)
    with pytest.raises(MXTServiceError):
        client.download("/f", inner, filename=name)
    assert files_under(tmp_path) == set()


def test_directory_parts_are_dropped(tmp_path):
    client, _ = make_client([file_response(name="sub/dir/cal.fits")])
    assert client.download("/f", tmp_path).relative_to(tmp_path) == Path("cal.fits")


@given(st.text(max_size=30))
def test_safe_filename_property(name):
    """Whatever the text, the result is a plain child name of the folder, or refused."""
    try:
        base = safe_filename(name)
    except MXTServiceError:
        return
    assert base and "/" not in base and "\\" not in base
    assert base not in (".", "..") and not base.startswith(".")
    folder = Path("/tmp/mxt-folder")
    target = target_in(folder, name)
    assert os.path.dirname(os.path.normpath(target)) == str(folder)
