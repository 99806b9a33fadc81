"""Authentication tokens of the FSC services: one token for every service.

The scheduler hands each pipeline run a ``runtime_data.json`` holding the token (key
``"token"`` at the top level); interactive users set ``MXT_TOKEN``.  The token is a
secret: it is kept in a :class:`Secret`, whose ``repr``/``str`` never show it, and it
is only revealed when an HTTP request header is built.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mxt_pipeline.errors import MXTInputError

__all__ = ["TOKEN_ENV", "RUNTIME_DATA_KEY", "Secret", "resolve_token"]

#: Environment variable holding the token for interactive use.
TOKEN_ENV = "MXT_TOKEN"
#: Top-level key of ``runtime_data.json`` holding the token.
RUNTIME_DATA_KEY = "token"


class Secret:
    """A string that does not show itself: ``repr``, ``str`` and ``format`` print ``***``.

    ``reveal()`` returns the value for the one place that needs it (the request
    header).  Pickling is refused so a secret does not end up in a file by accident.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise MXTInputError("a token must be a non-empty string")
        self._value = value

    def reveal(self) -> str:
        """The secret value."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return hmac.compare_digest(self._value.encode(), other._value.encode())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # no hash derived from the secret

    def __reduce__(self):
        raise TypeError("a Secret cannot be pickled")


def _from_runtime_data(runtime_data: Any) -> str | None:
    if isinstance(runtime_data, Mapping):
        data = runtime_data
        source = "runtime data"
    else:
        path = Path(runtime_data)
        source = str(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise MXTInputError("runtime data file not found", file=path) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            # The position only: the text around it could be the token itself.
            where = f" at line {exc.lineno} column {exc.colno}" if hasattr(exc, "lineno") else ""
            raise MXTInputError(f"runtime data file is not valid JSON{where}", file=path) from None
        if not isinstance(data, Mapping):
            raise MXTInputError("runtime data file must hold a JSON object", file=path)
    value = data.get(RUNTIME_DATA_KEY)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MXTInputError(
            f"key {RUNTIME_DATA_KEY!r} of {source} must be a string (got {type(value).__name__})"
        )
    return value.strip() or None


def resolve_token(
    token: str | Secret | None = None,
    runtime_data: str | os.PathLike[str] | Mapping[str, Any] | None = None,
) -> str | None:
    """Return the token to send to the FSC services, or None when there is none.

    Order: the explicit ``token``; the top-level ``"token"`` of ``runtime_data`` (a
    path to ``runtime_data.json`` or its parsed mapping); the ``MXT_TOKEN`` environment
    variable; None.

    Raises
    ------
    MXTInputError
        When ``runtime_data`` is given but cannot be read, or its token is not a
        string.  The message never contains the token or the file's text.
    """
    if isinstance(token, Secret):
        return token.reveal()
    if token is not None and token.strip():
        return token.strip()
    if runtime_data is not None:
        found = _from_runtime_data(runtime_data)
        if found:
            return found
    env = os.environ.get(TOKEN_ENV, "").strip()
    return env or None
