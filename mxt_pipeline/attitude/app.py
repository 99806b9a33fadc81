"""The attitude web service (Starlette): reconstructed attitude by time range.

Same family as the CALDB service (:mod:`mxt_pipeline.caldb.service.app`): one bearer
token, the same access log without query values, credentials refused in URLs, JSON
errors ``{"detail": "..."}``.  Endpoints, under ``/api/v1`` (all but ``health`` need
``Authorization: Bearer <token>``):

``GET /health``
    liveness and readiness ``{"status": "ok", "ready": bool}``, no authentication.
``GET /attitude?tstart=T0&tstop=T1``
    the attitude rows of ``[T0, T1]`` (mission seconds) plus one sample either side,
    as an MXT_ATT FITS product.  Headers: ``X-Checksum-SHA256`` (of the body, also the
    ``ETag``), ``X-MXT-Attitude-Sources`` (the archive files used, comma-separated,
    URL-quoted), ``Content-Disposition``.  The product's primary header repeats the
    sources (``ATTSRCN`` and ``ATTSR001``...) and the range asked (``REQSTART``,
    ``REQSTOP``).
``GET /files``
    the index: ``{"count", "files": [{"file", "tstart", "tstop", "nrows", "sha256",
    "size", "problem"}]}``.
``POST /reindex``
    scan the archive now (it is also rescanned periodically); answers the counts.

Statuses: 400 bad parameters; 401 missing or wrong token; 404 no attitude for the
range; 422 the range needs an unusable archive file (bad quaternion, bad TIME, not an
MXT_ATT product: the detail names the file and the row); 503 with ``Retry-After`` while
the index is being built or when every request slot is taken.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mxt_pipeline.attitude.archive import (
    AttitudeArchive,
    AttitudeSelection,
    BadArchiveFile,
    NoCoverage,
    NotReady,
    Slots,
)
from mxt_pipeline.caldb.service.app import AccessLog
from mxt_pipeline.caldb.service.auth import TokenSet, bearer_token
from mxt_pipeline.errors import MXTError, MXTInputError
from mxt_pipeline.io.fits import source_date_epoch, write_product
from mxt_pipeline.services.http import CHECKSUM_HEADER

__all__ = ["create_app", "API_PREFIX", "SOURCES_HEADER", "DEFAULT_SLOTS", "attitude_fits_bytes"]

log = logging.getLogger(__name__)
#: The access log (one line per request, without query values).
access_log = logging.getLogger("mxt_pipeline.attitude.access")

API_PREFIX = "/api/v1"
#: Response header listing the archive files an answer comes from.
SOURCES_HEADER = "X-MXT-Attitude-Sources"
#: Requests served at once before the service answers 503 (overloaded).
DEFAULT_SLOTS = 32
#: Seconds a client is asked to wait while the index is built / when overloaded.
RETRY_AFTER_NOT_READY = 2
RETRY_AFTER_BUSY = 1
#: Answers kept, by index generation and range (clients of one run ask the same range).
ANSWER_CACHE = 32

Handler = Callable[[Request], Awaitable[Response]]

_WRITE_LOCK = threading.Lock()


def _error(status: int, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers or None)


def attitude_fits_bytes(selection: AttitudeSelection, scratch_dir) -> bytes:
    """The MXT_ATT product of a selection, as bytes (written through the I/O layer).

    Parameters
    ----------
    selection : AttitudeSelection
    scratch_dir : path-like
        Folder for the temporary file (removed before returning).
    """
    att = selection.attitude
    t = att["TIME"]
    header = {"OBS_ID": str(att.meta.get("OBS_ID") or "MULTIPLE"), "REQSTART": selection.tstart, "REQSTOP": selection.tstop, "ATTSRCN": len(selection.sources)}
    for i, name in enumerate(selection.sources, 1):
        header[f"ATTSR{i:03d}"] = name
    # DATE is the newest source's modification time, not the clock: the same archive
    # answers the same range with the same bytes (a run's key holds their checksum).
    # The epoch is process-wide: one answer written at a time.
    with _WRITE_LOCK, source_date_epoch(selection.epoch), tempfile.TemporaryDirectory(dir=scratch_dir,
                                                                                      prefix=".answer-") as tmp:
        path = write_product(f"{tmp}/att.fits", "MXT_ATT", {"ATTITUDE": att.table}, header=header,
                             tstart=float(t[0]), tstop=float(t[-1]))  # fmt: skip
        return path.read_bytes()


def _time_param(request: Request, name: str) -> float:
    text = request.query_params.get(name)
    if text is None:
        raise MXTInputError(f"query parameter {name!r} is required (mission seconds)", keyword=name)
    try:
        value = float(text)
    except ValueError:
        raise MXTInputError(f"{name} {text!r} is not a number", keyword=name) from None
    if not math.isfinite(value):
        raise MXTInputError(f"{name} {text!r} is not finite", keyword=name)
    return value


def create_app(
    archive: AttitudeArchive,
    tokens: TokenSet,
    *,
    allow_anonymous: bool = False,
    slots: Slots | None = None,
) -> Starlette:
    """Build the Starlette application serving ``archive``.

    Parameters
    ----------
    archive : AttitudeArchive
        The indexed ATT files (its index may still be building: 503 until ready).
    tokens : TokenSet
        Accepted bearer tokens.
    allow_anonymous : bool
        Serve without authentication (local development only; refused with tokens).
    slots : Slots, optional
        Concurrent attitude requests allowed (default :data:`DEFAULT_SLOTS`); one more
        is answered 503 with ``Retry-After``.

    Raises
    ------
    MXTInputError
        No token and not ``allow_anonymous``, or both.
    """
    if allow_anonymous and len(tokens):
        raise MXTInputError("allow_anonymous cannot be combined with tokens")
    if not allow_anonymous and not len(tokens):
        raise MXTInputError("no tokens configured: the service would refuse every request")
    slots = slots or Slots(DEFAULT_SLOTS)
    answers: OrderedDict[tuple[int, float, float], tuple[bytes, str, tuple[str, ...]]] = OrderedDict()
    answers_lock = threading.Lock()
    hidden = ((str(archive.state_dir.resolve()), "<state>"), (str(archive.state_dir), "<state>"),
              (str(archive.root), "<archive>"))  # fmt: skip

    def scrub(text: str) -> str:
        for path, shown in hidden:
            text = text.replace(path, shown)
        return text

    def protected(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: Request) -> Response:
            if not allow_anonymous and not tokens.verify(bearer_token(request.headers.get("authorization"))):
                return _error(401, "missing or invalid token", **{"WWW-Authenticate": 'Bearer realm="attitude"'})
            try:
                return await handler(request)
            except NotReady as exc:
                return _error(503, exc.message, **{"Retry-After": str(RETRY_AFTER_NOT_READY)})
            except NoCoverage as exc:
                return _error(404, exc.message)
            except BadArchiveFile as exc:
                return _error(422, scrub(exc.message))
            except MXTInputError as exc:  # the request's parameters
                return _error(400, scrub(str(exc)))
            except MXTError as exc:
                log.error("request failed: %s", exc)
                return _error(500, scrub(str(exc)))
            except Exception:
                log.exception("internal error")
                return _error(500, "internal error")

        return wrapper

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "ready": archive.ready})

    @protected
    async def files(request: Request) -> Response:
        rows = await run_in_threadpool(archive.files)
        return JSONResponse({"count": len(rows), "files": rows})

    @protected
    async def reindex(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(archive.refresh))

    def answer(tstart: float, tstop: float) -> tuple[bytes, str, tuple[str, ...]]:
        key = (archive.generation, tstart, tstop)
        with answers_lock:
            found = answers.get(key)
        if found is not None:
            return found
        selection = archive.select(tstart, tstop)
        body = attitude_fits_bytes(selection, archive.state_dir)
        result = (body, hashlib.sha256(body).hexdigest(), selection.sources)
        with answers_lock:
            # Two threads answering the same range keep the first answer: identical bytes for all.
            result = answers.setdefault(key, result)
            while len(answers) > ANSWER_CACHE:
                answers.popitem(last=False)
        return result

    @protected
    async def attitude(request: Request) -> Response:
        tstart, tstop = _time_param(request, "tstart"), _time_param(request, "tstop")
        with slots.take() as got:
            if not got:
                return _error(503, "the attitude service is busy; retry", **{"Retry-After": str(RETRY_AFTER_BUSY)})
            body, sha, sources = await run_in_threadpool(answer, tstart, tstop)
        headers = {
            CHECKSUM_HEADER: sha,
            "ETag": f'"{sha}"',
            "Cache-Control": "no-cache",
            SOURCES_HEADER: ",".join(quote(s, safe="/") for s in sources),
            "Content-Disposition": f'attachment; filename="mxt_att_{tstart:.3f}_{tstop:.3f}.fits"',
        }
        return Response(body, media_type="application/fits", headers=headers)

    routes = [
        Route(f"{API_PREFIX}/health", health, methods=["GET"]),
        Route(f"{API_PREFIX}/attitude", attitude, methods=["GET"]),
        Route(f"{API_PREFIX}/files", files, methods=["GET"]),
        Route(f"{API_PREFIX}/reindex", reindex, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.archive = archive
    app.state.slots = slots
    app.add_middleware(AccessLog, logger=access_log)
    return app
