"""Operator authentication of the console: token login, session cookie, CSRF tokens.

The console accepts the same FSC tokens as the project's services and applies the
same rules (:mod:`mxt_pipeline.services.tokens`, :mod:`mxt_pipeline.caldb.service.auth`):
the accepted tokens come from a token file (one per line, ``#`` comments, ``chmod
600``) and from ``$MXT_TOKEN``; only their SHA-256 digests are kept; comparisons are
constant-time; no token is ever logged or written into a page.

How a browser gets in: ``GET /login`` shows a form; the operator pastes the token;
``POST /login`` checks it and answers with a random session identifier in an
``HttpOnly; SameSite=Strict`` cookie (the token itself never goes back to the
browser).  Scripts use ``Authorization: Bearer <token>`` instead, on every request.

CSRF: every session has its own random CSRF token, put in a hidden field of each form
(and sent as ``X-CSRF-Token`` by the page's script); a POST authenticated by the
session cookie is refused without it.  The login form, which has no session yet, uses
a signed double-submit token tied to a pre-session cookie.  A POST authenticated by a
Bearer header needs no CSRF token: a browser never adds that header on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from mxt_pipeline.caldb.service.auth import TokenSet, bearer_token, load_tokens
from mxt_pipeline.errors import MXTInputError
from mxt_pipeline.services.tokens import resolve_token

__all__ = [
    "SESSION_COOKIE",
    "PRELOGIN_COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "Session",
    "SessionStore",
    "LoginThrottle",
    "OperatorTokens",
    "operator_tokens",
    "csrf_ok",
    "bearer_token",
]

SESSION_COOKIE = "mxt_console_session"
PRELOGIN_COOKIE = "mxt_console_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
#: A session ends after this long without a request (seconds).
SESSION_IDLE_S = 8 * 3600.0


class OperatorTokens:
    """Accepted tokens from several sources, each kept as digests by a :class:`TokenSet`."""

    __slots__ = ("_sets",)

    def __init__(self, *sets: TokenSet) -> None:
        self._sets = tuple(s for s in sets if len(s))

    def __len__(self) -> int:
        return sum(len(s) for s in self._sets)

    def __repr__(self) -> str:
        return f"OperatorTokens({len(self)} token(s))"

    def verify(self, presented: str | None) -> bool:
        """True when ``presented`` is one of the tokens (every set is checked: no early exit)."""
        ok = False
        for s in self._sets:
            ok |= s.verify(presented)
        return ok


def operator_tokens(token_file: str | os.PathLike[str] | None = None) -> OperatorTokens:
    """The tokens the console accepts: those of ``token_file`` and ``$MXT_TOKEN``.

    Raises
    ------
    MXTInputError
        When there is none (the console would refuse every operator) or the token
        file cannot be read (the message never shows its content).
    """
    from_file = load_tokens(Path(token_file), env=False) if token_file is not None else TokenSet([])
    env = resolve_token()
    result = OperatorTokens(from_file, TokenSet([env] if env else []))
    if not len(result):
        raise MXTInputError(
            "no operator token configured: set MXT_TOKEN or give --token-file (one token per line)"
        )
    return result


@dataclass
class Session:
    """A logged-in browser: random identifier, its CSRF token, last activity."""

    sid: str
    csrf: str
    created: float
    last_seen: float


@dataclass
class SessionStore:
    """Sessions in memory (a restart logs everyone out, which is the safe default)."""

    idle_s: float = SESSION_IDLE_S
    _sessions: dict[str, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def _digest(self, sid: str) -> str:
        # Sessions are stored under a keyed hash: a dump of the store gives no cookie.
        return hmac.new(self._key, sid.encode(), hashlib.sha256).hexdigest()

    def create(self) -> Session:
        now = time.monotonic()
        sid = secrets.token_urlsafe(32)
        s = Session(sid, secrets.token_urlsafe(32), now, now)
        with self._lock:
            # Forget the sessions idle for too long (browsers that never came back).
            for key in [k for k, v in self._sessions.items() if now - v.last_seen > self.idle_s]:
                del self._sessions[key]
            self._sessions[self._digest(sid)] = s
        return s

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        now = time.monotonic()
        key = self._digest(sid)
        with self._lock:
            s = self._sessions.get(key)
            if s is None:
                return None
            if now - s.last_seen > self.idle_s:
                del self._sessions[key]
                return None
            s.last_seen = now
            return s

    def drop(self, sid: str | None) -> None:
        if sid:
            with self._lock:
                self._sessions.pop(self._digest(sid), None)

    # ---- login form CSRF (no session yet): HMAC of the pre-login cookie ----------------
    def login_csrf(self, prelogin: str) -> str:
        return hmac.new(self._key, b"login:" + prelogin.encode(), hashlib.sha256).hexdigest()

    def check_login_csrf(self, prelogin: str | None, presented: str | None) -> bool:
        if not prelogin or not presented:
            return False
        return hmac.compare_digest(self.login_csrf(prelogin), presented)


def csrf_ok(session: Session, presented: str | None) -> bool:
    """True when ``presented`` is the session's CSRF token (constant time)."""
    return bool(presented) and hmac.compare_digest(session.csrf.encode(), str(presented).encode())


class LoginThrottle:
    """At most ``limit`` failed logins per client address in ``window_s`` seconds."""

    def __init__(self, limit: int = 5, window_s: float = 60.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, client: str) -> bool:
        now = time.monotonic()
        with self._lock:
            q = self._fails.get(client)
            while q and now - q[0] > self.window_s:
                q.popleft()
            return bool(q) and len(q) >= self.limit

    def failed(self, client: str) -> None:
        with self._lock:
            self._fails.setdefault(client, deque()).append(time.monotonic())

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._fails.pop(client, None)
