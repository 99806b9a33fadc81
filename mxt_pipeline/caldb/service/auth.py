"""Bearer-token authentication of the CALDB service.

The service accepts the FSC tokens listed in a token file (one per line, ``#``
comments) and/or the environment variable ``MXT_CALDB_TOKENS`` (tokens separated by
commas or blanks).  Only SHA-256 digests of the tokens are kept in memory; a
presented token is hashed and compared with every digest using
:func:`hmac.compare_digest` (constant time, and no early exit over the list), so the
comparison leaks neither the token nor which one matched.  Tokens are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from mxt_pipeline.errors import MXTInputError

__all__ = ["TokenSet", "SERVICE_TOKENS_ENV", "load_tokens", "require_tokens", "bearer_token"]

log = logging.getLogger(__name__)

#: Environment variable listing the tokens the service accepts.
SERVICE_TOKENS_ENV = "MXT_CALDB_TOKENS"

_SPLIT = re.compile(r"[\s,]+")


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class TokenSet:
    """The accepted tokens, kept as SHA-256 digests."""

    __slots__ = ("_digests",)

    def __init__(self, tokens: Iterable[str]) -> None:
        digests = {_digest(t) for t in (t.strip() for t in tokens) if t}
        self._digests = tuple(sorted(digests))

    def __len__(self) -> int:
        return len(self._digests)

    def __repr__(self) -> str:
        return f"TokenSet({len(self)} token(s))"

    def verify(self, presented: str | None) -> bool:
        """True when ``presented`` is one of the tokens (constant-time comparisons)."""
        if not presented:
            return False
        candidate = _digest(presented)
        ok = False
        for d in self._digests:
            ok |= hmac.compare_digest(candidate, d)
        return ok


def require_tokens(tokens: TokenSet, *, allow_anonymous: bool, env_var: str = SERVICE_TOKENS_ENV) -> None:
    """Refuse to serve without a token to accept (unless ``allow_anonymous``).

    Raises
    ------
    MXTInputError
        No token, with the variable and option that give them.
    """
    if not len(tokens) and not allow_anonymous:
        raise MXTInputError(
            f"the service has no token to accept: set {env_var} (tokens separated by commas or spaces) or "
            "give --token-file FILE (one per line); --allow-anonymous serves without any (local development "
            "only).  MXT_TOKEN is the client's variable: the token it sends must be one of these"
        )


def load_tokens(
    token_file: str | os.PathLike[str] | None = None, *, env: bool = True, env_var: str = SERVICE_TOKENS_ENV
) -> TokenSet:
    """Read the accepted tokens from ``token_file`` and the variable ``env_var``
    (``$MXT_CALDB_TOKENS`` for the CALDB service, ``$MXT_ATTITUDE_TOKENS`` for the
    attitude service).

    A token file readable by group or others is accepted with a warning (it should
    be ``chmod 600``).

    Raises
    ------
    MXTInputError
        When the token file cannot be read (the message never shows its content).
    """
    tokens: list[str] = []
    if token_file is not None:
        path = Path(token_file)
        try:
            text = path.read_text(encoding="utf-8")
            mode = path.stat().st_mode
        except (OSError, UnicodeDecodeError) as exc:
            raise MXTInputError(f"cannot read the token file ({type(exc).__name__})", file=path) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("token file %s is readable by group or others; chmod 600 it", path)
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                tokens.append(line)
    if env:
        tokens += [t for t in _SPLIT.split(os.environ.get(env_var, "")) if t]
    return TokenSet(tokens)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
