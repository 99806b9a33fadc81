"""Fixtures of the console's tests: an app on a generated root, a logged-in client."""

from __future__ import annotations

import re

import pytest

from mxt_pipeline.caldb.service.auth import TokenSet
from mxt_pipeline.console.app import ConsoleConfig, create_app
from mxt_pipeline.console.auth import OperatorTokens

#: The operator token of the tests (a made-up value, long like a real one).
TOKEN = "op-token-Zq8v1x3P0w7rT5uY2kLm"


def login(client, token: str = TOKEN, next_: str = "/"):
    """Log ``client`` in through the form, as a browser does; the response of the POST."""
    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return client.post("/login", data={"csrf_token": csrf, "token": token, "next": next_}, follow_redirects=False)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture
def make_client(tmp_path):
    """``make_client(root, **config)`` -> a TestClient on a console over ``root``."""
    import warnings

    with warnings.catch_warnings():
        # Starlette asks for httpx2 in its test client; httpx is what the project installs.
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from starlette.testclient import TestClient

    clients = []

    def make(root, **kw):
        kw.setdefault("reports", None)
        app = create_app(ConsoleConfig(root, OperatorTokens(TokenSet([TOKEN])), **kw))
        c = TestClient(app)
        c.__enter__()
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.__exit__(None, None, None)
