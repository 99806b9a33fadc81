"""The CALDB web service (Starlette).

Endpoints (all under ``/api/v1``; every one but ``health`` needs
``Authorization: Bearer <token>``):

``GET  /health``
    liveness, no authentication.
``GET  /nodes``
    the storage nodes (MXT, ECL, VT) with their file and dataset counts.
``GET  /search?instrume=MXT&codename=PSF&date=...&time=...&expr=...&detnam=-&filter=-``
    quzcif selection; answers ``{"count", "rows": [{"cif": {...}, "file_id",
    "sha256", "size", "type", ...}], "reason"}`` (``reason`` says why nothing matched).
``GET  /files/{id}``
    the file, streamed, with ``X-Checksum-SHA256`` and ``Content-Disposition``.
``GET  /index/{node}``
    the node's ``caldb.indx``.
``PUT|POST /upload/{node}/{filename}``
    raw request body (``application/octet-stream``), optional ``X-Checksum-SHA256``;
    201 created, 200 unchanged (same bytes already stored), 400 bad name / content /
    checksum, 401 token, 409 conflict, 413 too large.

Errors are JSON ``{"detail": "..."}``.  Multipart forms are not accepted: Starlette
needs the optional ``python-multipart`` package for them, and a raw body carries the
same information (the name is in the URL, the metadata in the file).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

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
    UploadConflict,
    UploadTooLarge,
    check_upload_filename,
)
from mxt_pipeline.errors import MXTCaldbNotFound, MXTError, MXTFormatError, MXTInputError
from mxt_pipeline.services.http import CHECKSUM_HEADER

__all__ = ["create_app", "API_PREFIX"]

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"

Handler = Callable[[Request], Awaitable[Response]]


def _error(status: int, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers or None)


def _map_error(exc: Exception) -> JSONResponse:
    """HTTP answer for an exception raised while handling a request."""
    if isinstance(exc, UploadTooLarge):
        return _error(413, exc.message)
    if isinstance(exc, (MXTInputError, MXTFormatError)):
        return _error(400, str(exc) if isinstance(exc, MXTFormatError) else exc.message)
    if isinstance(exc, MXTCaldbNotFound):
        return _error(404, exc.message)
    if isinstance(exc, UploadConflict):
        return _error(409, exc.message)
    if isinstance(exc, MXTError):
        log.error("request failed: %s", exc)
        return _error(500, str(exc))
    log.exception("internal error")
    return _error(500, "internal error")


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
                return _map_error(exc)

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
        rows, reason = await run_in_threadpool(store.search, query)
        return JSONResponse({"count": len(rows), "rows": rows, "reason": reason})

    @protected
    async def download(request: Request) -> Response:
        info = await run_in_threadpool(store.file_info, request.path_params["file_id"])
        return FileResponse(
            info["path"],
            filename=info["cal_file"],
            media_type="application/octet-stream",
            headers={CHECKSUM_HEADER: info["sha256"], "Cache-Control": "no-cache"},
        )

    @protected
    async def index_file(request: Request) -> Response:
        node = get_node(request.path_params["node"])
        path = store.root / node.index_relpath
        if not path.is_file():
            raise MXTCaldbNotFound(f"no index yet for node {node.instrument}")
        return FileResponse(path, filename="caldb.indx", media_type="application/fits")

    @protected
    async def upload(request: Request) -> Response:
        node = get_node(request.path_params["node"]).instrument
        filename = check_upload_filename(request.path_params["filename"])
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > store.max_upload_bytes:
            raise UploadTooLarge(f"{filename}: larger than {store.max_upload_bytes} bytes")
        declared = request.headers.get(CHECKSUM_HEADER)
        with store.staging_file() as (tmp, fh):
            digest = hashlib.sha256()
            size = 0
            try:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > store.max_upload_bytes:
                        raise UploadTooLarge(f"{filename}: larger than {store.max_upload_bytes} bytes")
                    digest.update(chunk)
                    fh.write(chunk)
            except ClientDisconnect:
                log.warning("upload of %s interrupted by the client; nothing stored", filename)
                return _error(400, "upload interrupted")
            fh.flush()
            os.fsync(fh.fileno())
            result = await run_in_threadpool(
                store.ingest_staged, node, filename, Path(tmp), digest.hexdigest(), size, declared
            )
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
    return app
