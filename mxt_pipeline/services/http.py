"""An HTTP client for the FSC services: bearer token, retries, safe downloads.

Every FSC service client (the CALDB's :class:`~mxt_pipeline.caldb.CaDBIO`, the science
database queries of the calibration chain) goes through :class:`RetryingClient`:

* the token is sent as ``Authorization: Bearer ...`` by an :class:`httpx.Auth` object,
  so it is in no URL, no log line, no ``repr`` and no exception message (messages the
  server sends back are scrubbed of it too);
* connection errors, timeouts, HTTP 408, 425, 429 and 5xx (but 501, 505, 507 and 508,
  which a retry cannot fix) are retried with exponential
  backoff and jitter (:class:`RetryPolicy`), honouring ``Retry-After`` (capped);
  after ``max_tries`` attempts :class:`~mxt_pipeline.errors.MXTServiceUnavailable`;
* other answers are final: 400 -> :class:`~mxt_pipeline.errors.MXTServiceError`,
  401/403 -> :class:`~mxt_pipeline.errors.MXTAuthError`, 404 ->
  :class:`~mxt_pipeline.errors.MXTCaldbNotFound`, any other 4xx -> MXTServiceError;
* :meth:`RetryingClient.download` streams into a hidden temporary file in the
  download folder, checks the SHA-256 the server announces (header
  ``X-Checksum-SHA256``) and the one the caller expects, then renames atomically; a
  file already there with the expected checksum is not downloaded again; the local
  name is sanitised so nothing is written outside the folder.
"""

from __future__ import annotations

import email.message
import email.utils
import hashlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from mxt_pipeline._version import __version__
from mxt_pipeline.errors import (
    MXTAuthError,
    MXTCaldbNotFound,
    MXTServiceError,
    MXTServiceUnavailable,
)
from mxt_pipeline.services.files import (
    cached_file,
    partial_file,
    remove_stale_parts,
    safe_filename,
    target_in,
)
from mxt_pipeline.services.tokens import Secret

__all__ = ["RetryPolicy", "RetryingClient", "BearerAuth", "CHECKSUM_HEADER", "RETRY_STATUSES", "FINAL_5XX"]

log = logging.getLogger(__name__)

#: Response header carrying the hex SHA-256 of a downloaded file.
CHECKSUM_HEADER = "X-Checksum-SHA256"
#: Statuses retried besides every 5xx: request timeout, too early, too many requests.
RETRY_STATUSES = frozenset({408, 425, 429})
#: Default overall time limit of one download, retries included (seconds).
DOWNLOAD_DEADLINE = 600.0
#: Hidden partial files older than this are left by a killed client and removed.
STALE_PART_AGE = 2 * DOWNLOAD_DEADLINE
#: 5xx answers that another try cannot fix: not implemented, HTTP version, insufficient
#: storage (the service's disk is full: retrying only adds load), loop detected.
FINAL_5XX = frozenset({501, 505, 507, 508})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter.

    The wait before attempt ``k + 1`` (after ``k`` failures) is
    ``d = min(backoff_max, backoff_base * backoff_factor ** (k - 1))`` scaled by a
    uniform factor in ``[1 - jitter, 1]`` ("equal jitter" for ``jitter = 0.5``: it
    spreads clients that failed together while keeping the exponential growth).  A
    ``Retry-After`` from the server replaces it, capped at ``retry_after_max``.
    """

    max_tries: int = 5
    backoff_base: float = 0.5
    backoff_factor: float = 2.0
    backoff_max: float = 30.0
    jitter: float = 0.5
    retry_after_max: float = 60.0

    def __post_init__(self) -> None:
        if self.max_tries < 1:
            raise ValueError("max_tries must be at least 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must lie in [0, 1]")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.retry_after_max < 0:
            raise ValueError("delays must be non-negative")

    def delay(self, failures: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait after ``failures`` failed attempts (``failures >= 1``)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_max)
        d = min(self.backoff_max, self.backoff_base * self.backoff_factor ** (failures - 1))
        return d * (1.0 - self.jitter * rng.random())


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


class BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer <token>`` to each request; its repr hides the token."""

    def __init__(self, token: Secret) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request):
        request.headers["Authorization"] = f"Bearer {self._token.reveal()}"
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(token=***)"


class _Retry(Exception):
    """One failed attempt worth retrying."""

    def __init__(self, reason: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


def _filename_from_disposition(value: str | None) -> str | None:
    if not value:
        return None
    msg = email.message.Message()
    msg["content-disposition"] = value
    return msg.get_filename()


class RetryingClient:
    """HTTP client of one FSC service.

    Parameters
    ----------
    base_url : str
        Service root, e.g. ``https://fsc.example/caldb``.
    token : str or Secret, optional
        Bearer token (see :func:`~mxt_pipeline.services.tokens.resolve_token`); None
        sends no Authorization header.
    max_tries : int
        Attempts per request (first try included).
    timeout : float
        Seconds for connecting and for each read.
    policy : RetryPolicy, optional
        Backoff settings (``max_tries`` overrides its own).
    sleep : callable, optional
        Waits between attempts (tests inject a recorder).
    rng : random.Random, optional
        Source of the jitter.
    transport : httpx.BaseTransport, optional
        For tests (``httpx.MockTransport``).
    download_deadline : float
        Seconds one :meth:`download` may take in all, retries and waits included
        (``timeout`` bounds each read only: a server trickling bytes would otherwise
        hold a run for ever).
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | Secret | None = None,
        max_tries: int = 5,
        timeout: float = 30.0,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
        user_agent: str | None = None,
        download_deadline: float = DOWNLOAD_DEADLINE,
    ) -> None:
        if not download_deadline > 0:
            raise ValueError("download_deadline must be positive")
        self.download_deadline = float(download_deadline)
        base = policy or RetryPolicy()
        self.policy = RetryPolicy(
            max_tries=max_tries, backoff_base=base.backoff_base, backoff_factor=base.backoff_factor,
            backoff_max=base.backoff_max, jitter=base.jitter, retry_after_max=base.retry_after_max,
        )  # fmt: skip
        self.base_url = base_url.rstrip("/")
        self._token = None if token is None else (token if isinstance(token, Secret) else Secret(token))
        self._sleep = sleep
        self._rng = rng or random.Random()
        if user_agent is None:
            user_agent = f"mxt_pipeline/{__version__}"
        self._client = httpx.Client(
            base_url=self.base_url,
            auth=BearerAuth(self._token) if self._token is not None else None,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            headers={"User-Agent": user_agent},
            follow_redirects=False,
        )

    # ------------------------------------------------------------------ plumbing

    def __repr__(self) -> str:
        tok = "***" if self._token is not None else None
        return f"RetryingClient(base_url={self.base_url!r}, token={tok}, max_tries={self.policy.max_tries})"

    def __enter__(self) -> RetryingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def scrub(self, text: str) -> str:
        """Remove the token from text a server sent back (it could echo headers)."""
        if self._token is not None:
            text = text.replace(self._token.reveal(), "***")
        return text

    def _error_message(self, resp: httpx.Response) -> str:
        detail = ""
        try:
            body = resp.json()
            if isinstance(body, Mapping):
                detail = str(body.get("detail") or body.get("error") or "")
        except (ValueError, UnicodeDecodeError):
            detail = resp.text[:300] if resp.headers.get("content-type", "").startswith("text/") else ""
        return self.scrub(detail.strip())

    def _final_error(self, resp: httpx.Response, what: str) -> Exception:
        status = resp.status_code
        detail = self._error_message(resp)
        msg = f"{what}: HTTP {status}" + (f": {detail}" if detail else "")
        if status in (401, 403):
            hint = "" if self._token is not None else " (no token was sent: set MXT_TOKEN)"
            return MXTAuthError(msg + hint, status=status)
        if status == 404:
            return MXTCaldbNotFound(msg)
        return MXTServiceError(msg, status=status)

    def _classify(self, resp: httpx.Response, what: str) -> None:
        """Raise _Retry for a retryable status, the mapped error for other failures."""
        status = resp.status_code
        if status < 400:
            if status >= 300:
                raise MXTServiceError(f"{what}: unexpected redirect HTTP {status}", status=status)
            return
        if (status >= 500 and status not in FINAL_5XX) or status in RETRY_STATUSES:
            raise _Retry(
                f"HTTP {status}", status, parse_retry_after(resp.headers.get("Retry-After"))
            )
        raise self._final_error(resp, what)

    def _with_retries(self, what: str, attempt: Callable[[], Any], deadline: float | None = None) -> Any:
        last: _Retry | None = None
        for n in range(1, self.policy.max_tries + 1):
            try:
                return attempt()
            except _Retry as exc:
                last = exc
            except httpx.TimeoutException as exc:
                last = _Retry(f"timeout ({type(exc).__name__})")
            except httpx.TransportError as exc:
                last = _Retry(f"connection error ({type(exc).__name__})")
            if n == self.policy.max_tries:
                break
            wait = self.policy.delay(n, self._rng, last.retry_after)
            if deadline is not None and time.monotonic() + wait > deadline:
                raise MXTServiceUnavailable(
                    f"{what}: overall deadline of {self.download_deadline:g} s reached after {n} tries, "
                    f"last: {last.reason}",
                    status=last.status,
                )
            log.info("%s: %s; retry %d/%d in %.2f s", what, last.reason, n, self.policy.max_tries - 1, wait)
            self._sleep(wait)
        assert last is not None
        raise MXTServiceUnavailable(
            f"{what}: failed after {self.policy.max_tries} tries, last: {last.reason}",
            status=last.status,
        )

    def _what(self, method: str, path: str) -> str:
        return f"{method} {self.base_url}{path if path.startswith('/') else '/' + path}"

    # ------------------------------------------------------------------ requests

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send a request with retries; return the successful (2xx) response.

        ``content`` must be bytes so that it can be sent again on a retry.
        """
        what = self._what(method, path)

        def attempt() -> httpx.Response:
            resp = self._client.request(method, path, params=params, content=content, headers=headers)
            self._classify(resp, what)
            return resp

        return self._with_retries(what, attempt)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET ``path`` and decode its JSON body (MXTServiceError when it is not JSON)."""
        resp = self.request("GET", path, params=params)
        try:
            return resp.json()
        except ValueError:
            raise MXTServiceError(
                f"{self._what('GET', path)}: the answer is not JSON", status=resp.status_code
            ) from None

    def download(
        self,
        path: str,
        download_path: str | Path,
        *,
        filename: str | None = None,
        expected_sha256: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Path:
        """Download ``path`` into the folder ``download_path``; return the local file.

        Parameters
        ----------
        path : str
            Resource path under the base URL.
        download_path : path-like
            Folder receiving the file (created). Nothing is ever written outside it.
        filename : str, optional
            Local name (sanitised); default the ``Content-Disposition`` name.
        expected_sha256 : str, optional
            Hex SHA-256 the file must have; with ``filename`` a file already present
            with this checksum is returned without any request.

        Raises
        ------
        MXTServiceError
            Unsafe or missing file name; checksum mismatch on every try; a final
            HTTP error (400 and other 4xx: MXTServiceError, 401/403:
            :class:`~mxt_pipeline.errors.MXTAuthError`, 404:
            :class:`~mxt_pipeline.errors.MXTCaldbNotFound`).
        MXTServiceUnavailable
            Retries exhausted, or the overall ``download_deadline`` reached.

        Notes
        -----
        Hidden partial files (``.NAME.*.part``) older than twice the deadline, left
        in the folder by a client that was killed, are removed first.
        """
        folder = Path(download_path)
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_parts(folder, max(STALE_PART_AGE, 2 * self.download_deadline))
        deadline = time.monotonic() + self.download_deadline
        expected = expected_sha256.lower() if expected_sha256 else None
        if filename is not None:
            target = target_in(folder, filename)
            if cached_file(target, expected):
                log.debug("cached: %s", target)
                return target
        what = self._what("GET", path)

        def attempt() -> Path:
            with self._client.stream("GET", path, params=params) as resp:
                if resp.status_code >= 300:
                    resp.read()  # the error detail is in the body; a streamed body is not read yet
                self._classify(resp, what)
                name = filename or _filename_from_disposition(resp.headers.get("Content-Disposition"))
                if name is None:
                    raise MXTServiceError(f"{what}: the server sent no file name")
                dest = target_in(folder, safe_filename(name))
                announced = (resp.headers.get(CHECKSUM_HEADER) or "").strip().lower() or None
                if cached_file(dest, expected or announced):
                    return dest
                digest = hashlib.sha256()
                with partial_file(dest) as (_tmp, fh):
                    for chunk in resp.iter_bytes():
                        if time.monotonic() > deadline:
                            raise MXTServiceUnavailable(
                                f"{what}: overall deadline of {self.download_deadline:g} s reached while receiving"
                            )
                        digest.update(chunk)
                        fh.write(chunk)  # type: ignore[attr-defined]
                    got = digest.hexdigest()
                    for label, want in (("announced", announced), ("expected", expected)):
                        if want is not None and got != want:
                            # Corruption in transit is worth another try; the partial
                            # file is removed by partial_file.
                            raise _Retry(f"checksum mismatch ({label} {want[:12]}..., got {got[:12]}...)")
                return dest

        return self._with_retries(what, attempt, deadline)
