"""The CALDB web service (Starlette).

Endpoints (all under ``/api/v1``; every one but ``health`` needs
``Authorization: Bearer <token>``):

``GET  /health``
    liveness, no authentication.
``GET  /nodes``
    the storage nodes (MXT, ECL, VT) with their file and dataset counts.
``GET  /search?instrume=MXT&codename=PSF&date=...&time=...&expr=...&detnam=-&filter=-``
    quzcif selection; answers ``{"count", "rows": [{"cif": {...}, "file_id",
    "sha256", "size", "type", ...}], "reason"}`` (``reason`` says why nothing matched),
    with an ``ETag`` of the answer (``If-None-Match`` with it: 304 while unchanged).
``GET  /files/{id}``
    the file, with ``X-Checksum-SHA256``, ``Content-Disposition`` and its checksum
    as ``ETag`` (``If-None-Match`` with it: 304).
``GET  /index/{node}``
    the node's ``caldb.indx``.
``PUT|POST /upload/{node}/{filename}``
    raw request body (``application/octet-stream``), optional ``X-Checksum-SHA256``;
    201 created, 200 unchanged (same bytes already stored), 400 bad name / content /
    checksum, 401 token, 409 conflict, 413 too large (an upload-class YAML file:
    1 MiB), 507 no room left on the service.

A request with a credential in its query string (``?token=...``) is refused (400)
and the access log never shows query values.  Stored files are served only when
their real path lies inside the root.

Errors are JSON ``{"detail": "..."}``.  Multipart forms are not accepted: Starlette
needs the optional ``python-multipart`` package for them, and a raw body carries the
same information (the name is in the URL, the metadata in the file).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qsl, quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from mxt_pipeline.caldb.select import CaldbQuery
from mxt_pipeline.caldb.service.auth import TokenSet, bearer_token
from mxt_pipeline.caldb.service.nodes import get_node
from mxt_pipeline.caldb.service.store import (
    CaldbStore,
    InsufficientStorage,
    UploadConflict,
    UploadTooLarge,
    check_upload_filename,
    is_disk_full,
)
from mxt_pipeline.caldb.service.upload import MAX_YAML_BYTES, is_upload_name
from mxt_pipeline.errors import MXTCaldbNotFound, MXTError, MXTFormatError, MXTInputError
from mxt_pipeline.services.http import CHECKSUM_HEADER

__all__ = ["create_app", "API_PREFIX", "SECRET_PARAMS", "AccessLog"]

log = logging.getLogger(__name__)
#: The access log (one line per request, without query values).
access_log = logging.getLogger("mxt_pipeline.caldb.service.access")

API_PREFIX = "/api/v1"

Handler = Callable[[Request], Awaitable[Response]]


#: Files up to this size are served from one read on the event loop, larger ones
#: streamed by ``FileResponse`` (in chunks, from a worker thread).
SMALL_FILE_BYTES = 256 * 1024


def _json_bytes(obj: object) -> bytes:
    """Compact UTF-8 JSON, as Starlette's JSONResponse writes it."""
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode("utf-8")


def _etag_matches(header: str | None, etag: str) -> bool:
    """True when an ``If-None-Match`` header names ``etag`` (or is ``*``); weak tags compare equal."""
    if not header:
        return False
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or etag in (t[2:] if t.startswith("W/") else t for t in tags)


def _disposition(filename: str) -> str:
    """``Content-Disposition`` of a download, as Starlette's FileResponse writes it."""
    quoted = quote(filename)
    if quoted != filename:
        return f"attachment; filename*=utf-8''{quoted}"
    return f'attachment; filename="{filename}"'


def _error(status: int, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers or None)


#: Query parameters that look like credentials: a request carrying one is refused
#: (a URL ends up in logs, proxies and browser histories; tokens travel in headers).
SECRET_PARAMS = frozenset({"token", "access_token", "bearer", "auth", "authorization", "api_key", "apikey"})


def _map_error(exc: Exception, root: Path | None = None) -> JSONResponse:
    """HTTP answer for an exception raised while handling a request.

    Client mistakes are 4xx (400 bad input, 404 unknown, 409 conflict, 413 too
    large), a full disk is 507 (the client must not retry it); 500 is left to bugs.
    The service's own paths are removed from every message.
    """

    def scrub(text: str) -> str:
        return text if root is None else text.replace(str(root), "<caldb>")

    if isinstance(exc, UploadTooLarge):
        return _error(413, scrub(exc.message))
    if isinstance(exc, (MXTInputError, MXTFormatError)):
        return _error(400, scrub(str(exc)))
    if isinstance(exc, MXTCaldbNotFound):
        return _error(404, scrub(exc.message))
    if isinstance(exc, UploadConflict):
        return _error(409, scrub(exc.message))
    if isinstance(exc, InsufficientStorage) or is_disk_full(exc):
        log.error("no room left to store an upload: %s", exc)
        return _error(507, "insufficient storage on the CALDB service; try again once space is freed")
    if isinstance(exc, RecursionError):
        return _error(400, "request too deeply nested")
    if isinstance(exc, MXTError):
        log.error("request failed: %s", exc)
        return _error(500, scrub(str(exc)))
    log.exception("internal error")
    return _error(500, "internal error")


class AccessLog:
    """ASGI middleware: refuses credentials in query strings, logs each request.

    The log line holds the method, the path, the names (not the values) of the query
    parameters, the status and the time taken; it replaces uvicorn's access log,
    which writes whole query strings.
    """

    def __init__(self, app, logger: logging.Logger | None = None) -> None:
        self.app = app
        self.log = logger or access_log

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        query = scope.get("query_string", b"").decode("latin-1")
        names = [k for k, _ in parse_qsl(query, keep_blank_values=True)]
        status = {"code": 0}
        logged: list[bool] = []

        def log_line() -> None:
            if logged:
                return
            logged.append(True)
            shown = "&".join(sorted(set(names)))
            self.log.info(
                "%s %s%s %d %.1f ms", scope.get("method", "?"), scope.get("path", "?"),
                f"?[{shown}]" if shown else "", status["code"], 1e3 * (time.perf_counter() - t0),
            )  # fmt: skip

        async def send_logged(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                # Written before the last bytes leave: once a client has its answer,
                # the line is in the log (a client reading the log right after its
                # request finds it; a line written after the send raced with that).
                log_line()
            await send(message)

        try:
            if any(n.lower() in SECRET_PARAMS for n in names):
                await _error(400, "credentials are not accepted in the URL; send 'Authorization: Bearer <token>'")(
                    scope, receive, send_logged
                )
            else:
                await self.app(scope, receive, send_logged)
        finally:
            log_line()  # an answer cut short, or none at all


def create_app(
    store: CaldbStore | str | os.PathLike[str],
    tokens: TokenSet,
    *,
    allow_anonymous: bool = False,
) -> Starlette:
    """Build the Starlette application serving ``store``.

    Parameters
    ----------
    store : CaldbStore or path-like
        The store, or the CALDB root to open one on.
    tokens : TokenSet
        Accepted bearer tokens.
    allow_anonymous : bool
        Serve without authentication (local development only; refused when tokens
        are given, to avoid half-protected services).
    """
    if not isinstance(store, CaldbStore):
        store = CaldbStore(store)
    if allow_anonymous and len(tokens):
        raise MXTInputError("allow_anonymous cannot be combined with tokens")
    if not allow_anonymous and not len(tokens):
        raise MXTInputError("no tokens configured: the service would refuse every request")

    def protected(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: Request) -> Response:
            if not allow_anonymous and not tokens.verify(bearer_token(request.headers.get("authorization"))):
                return _error(401, "missing or invalid token", **{"WWW-Authenticate": 'Bearer realm="caldb"'})
            try:
                return await handler(request)
            except Exception as exc:  # every failure becomes a JSON answer
                return _map_error(exc, store.root)

        return wrapper

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @protected
    async def nodes(request: Request) -> Response:
        return JSONResponse({"nodes": await run_in_threadpool(store.node_summary)})

    @protected
    async def search(request: Request) -> Response:
        p = request.query_params
        instrume = p.get("instrume")
        if not instrume:
            raise MXTInputError("query parameter 'instrume' is required (MXT, ECL, VT)")
        quality_text = p.get("quality", "0")
        if quality_text.lower() in ("any", "-"):
            quality = None
        else:
            try:
                quality = int(quality_text)
            except ValueError:
                raise MXTInputError(f"quality {quality_text!r} is not an integer or 'any'") from None
        time_ = p.get("time")
        query = CaldbQuery(
            telescop=p.get("telescop", store.telescop),
            instrume=get_node(instrume).instrument,
            codename=p.get("codename", "-").upper(),
            detnam=p.get("detnam", "-"),
            filter=p.get("filter", "-"),
            date=p.get("date", "now"),
            time=None if time_ in (None, "", "-") else time_,
            expr=p.get("expr") or None,
            quality=quality,
        )
        query.expression()  # a malformed expression or date is a 400, before any work
        query.mjd()
        # In memory, on the event loop (a thread hop costs more than the search); only
        # the re-read of a node's rows after an ingest goes to a worker thread.
        found = store.search_cached(query)
        rows, reason = found if found is not None else await run_in_threadpool(store.search, query)
        body = _json_bytes({"count": len(rows), "rows": rows, "reason": reason})
        # The ETag names the answer, not the catalogue: a client that sends it back
        # gets 304 while the same query still selects the same rows (no-cache: every
        # use revalidates, as ``date=now`` answers can change with the clock).
        etag = f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if _etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    @protected
    async def download(request: Request) -> Response:
        # One indexed lookup on the store's open connection, a stat and a realpath:
        # cheaper on the event loop than a thread hop.
        info = store.file_info(request.path_params["file_id"])
        # Stored files never change (a new version is a new name): their checksum is
        # a strong ETag.
        etag = f'"{info["sha256"]}"'
        headers = {CHECKSUM_HEADER: info["sha256"], "Cache-Control": "no-cache", "ETag": etag}
        if _etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        if info["size"] <= SMALL_FILE_BYTES:
            # Most calibration files are small: read at once instead of the chunked
            # FileResponse, whose every step (stat, open, each read) is a thread hop.
            try:
                with open(info["path"], "rb") as fh:
                    data = fh.read(SMALL_FILE_BYTES + 1)
            except FileNotFoundError:
                raise MXTCaldbNotFound(f"stored file {info['cal_file']} is missing on disk") from None
            if len(data) <= SMALL_FILE_BYTES:
                headers["Content-Disposition"] = _disposition(info["cal_file"])
                return Response(data, media_type="application/octet-stream", headers=headers)
        return FileResponse(info["path"], filename=info["cal_file"], media_type="application/octet-stream",
                            headers=headers)  # fmt: skip

    @protected
    async def index_file(request: Request) -> Response:
        node = get_node(request.path_params["node"])
        path = store.inside_root(node.index_relpath)
        if not path.is_file():
            raise MXTCaldbNotFound(f"no index yet for node {node.instrument}")
        return FileResponse(path, filename="caldb.indx", media_type="application/fits")

    @protected
    async def upload(request: Request) -> Response:
        node = get_node(request.path_params["node"]).instrument
        filename = check_upload_filename(request.path_params["filename"])
        # YAML costs far more memory to parse than FITS to scan: its own, lower limit,
        # applied from the announced length and while receiving.
        limit = min(store.max_upload_bytes, MAX_YAML_BYTES) if is_upload_name(filename) else store.max_upload_bytes
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise UploadTooLarge(f"{filename}: larger than {limit} bytes")
        declared = request.headers.get(CHECKSUM_HEADER)
        with store.staging_file() as (tmp, fh):
            digest = hashlib.sha256()
            size = 0
            try:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise UploadTooLarge(f"{filename}: larger than {limit} bytes")
                    digest.update(chunk)
                    fh.write(chunk)
            except ClientDisconnect:
                log.warning("upload of %s interrupted by the client; nothing stored", filename)
                return _error(400, "upload interrupted")

            def ingest() -> dict:
                fh.flush()
                os.fsync(fh.fileno())  # waits for the disk: not on the event loop
                return store.ingest_staged(node, filename, Path(tmp), digest.hexdigest(), size, declared)

            result = await run_in_threadpool(ingest)
        return JSONResponse(result, status_code=201 if result["status"] == "created" else 200)

    routes = [
        Route(f"{API_PREFIX}/health", health, methods=["GET"]),
        Route(f"{API_PREFIX}/nodes", nodes, methods=["GET"]),
        Route(f"{API_PREFIX}/search", search, methods=["GET"]),
        Route(f"{API_PREFIX}/files/{{file_id:int}}", download, methods=["GET"]),
        Route(f"{API_PREFIX}/index/{{node}}", index_file, methods=["GET"]),
        Route(f"{API_PREFIX}/upload/{{node}}/{{filename}}", upload, methods=["PUT", "POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.store = store
    app.add_middleware(AccessLog)
    return app
